"""Checks igrc's CUDA backend against its CPU backend on whole training steps
(bench/gpu_check.sh, stage `check`): one executable compiled with --target
cuda trains the same few steps twice from the same seed on the same
(synthetic) batches, with --device cpu and with --device cuda, and the two
runs must agree:
  - the mean training loss (last.json) within --loss-rtol relative, and
  - every tensor of the checkpoint (parameters, batch-norm and optimiser
    state) within --weight-rtol: |cuda - cpu|_2 <= rtol |cpu|_2 + 1e-7 sqrt(n)
    (the absolute floor covers tensors that are still ~0, such as fc3 one
    Adam step after its zero init).
Both defaults are 1e-3: the backends round f32 sums in different orders
(~1e-6 relative per op); the attack's sign() and ReLU kinks turn a few such
roundings into whole-element differences (measured between the CPU backend
and the interpreter, test_conformance: under 0.03% of a gradient's
elements), and three steps of Adam carry them into the weights at the size
of the learning rate. With --tf32 the matrix units round operands to 10-bit
mantissas (~5e-4 relative): pass --loss-rtol 1e-2 --weight-rtol 1e-2.

--device cpu runs both sides on the CPU with an executable built without
the CUDA target: a check of this script (the two runs must match exactly).

  python3 bench/gpu_train_check.py --igrc build/tools/igrc/igrc [--device cuda]"""
import argparse
import math
import os
import sys
import tempfile

import numpy as np

import igrc_exe


def compare(ref, got, rtol):
    """Per-tensor relative L2 errors; returns (rows, worst ratio to the tolerance)."""
    rows, worst = [], 0.0
    for name, a in ref.items():
        if name not in got:
            raise igrc_exe.RunError(f"the cuda checkpoint lacks tensor '{name}'")
        a, b = a.astype(np.float64), got[name].astype(np.float64)
        if a.shape != b.shape:
            raise igrc_exe.RunError(f"tensor '{name}': shape {b.shape} on cuda, {a.shape} on cpu")
        if not np.isfinite(b).all():
            rows.append((name, math.inf, math.inf))
            worst = math.inf
            continue
        diff, norm = float(np.linalg.norm(b - a)), float(np.linalg.norm(a))
        ratio = diff / (rtol * norm + 1e-7 * math.sqrt(a.size))
        rows.append((name, diff / norm if norm > 0 else diff, ratio))
        worst = max(worst, ratio)
    return sorted(rows, key=lambda r: -r[2]), worst


def checksum(t):
    return sum(float(np.abs(v.astype(np.float64)).sum()) for v in t.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--igrc", required=True)
    ap.add_argument("--model", default="models/mnist_smallcnn_trades_igr.json")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, help="compile at this batch (default: the model file's)")
    ap.add_argument("--loss-rtol", type=float, default=1e-3)
    ap.add_argument("--weight-rtol", type=float, default=1e-3)
    ap.add_argument("--gpu-arch")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--work", help="keep the executable, data and runs here")
    a = ap.parse_args()
    if a.steps < 1:
        ap.error("--steps must be >= 1")
    cuda = a.device == "cuda"
    work = a.work or tempfile.mkdtemp(prefix="igrc-train-check-")
    os.makedirs(work, exist_ok=True)
    name = os.path.splitext(os.path.basename(a.model))[0]
    try:
        exe = os.path.join(work, name)
        igrc_exe.compile_model(a.igrc, a.model, exe, cuda, a.gpu_arch, a.tf32, a.batch)
        batch = a.batch or 128
        data = igrc_exe.synth(a.model, work, batch * a.steps)
        runs, sides = {}, [("cpu", "cpu"), ("cuda" if cuda else "cpu2", a.device)]
        for key, dev in sides:
            last, _ = igrc_exe.train(exe, data, a.steps, os.path.join(work, f"run-{key}"),
                                     igrc_exe.device_args(cuda, dev))
            ckpt = igrc_exe.read_safetensors(os.path.join(work, f"run-{key}", "checkpoint.safetensors"))
            runs[key] = (last, ckpt)
    except igrc_exe.RunError as e:
        sys.exit(f"gpu_train_check.py: error: {e}")
    (lr, cr), (lg, cg) = runs["cpu"], runs[sides[1][0]]
    other = "cuda" if cuda else "cpu (second run)"
    try:
        rows, worst = compare(cr, cg, a.weight_rtol)
    except igrc_exe.RunError as e:
        sys.exit(f"gpu_train_check.py: error: {e}")
    loss_rel = abs(lg["loss"] - lr["loss"]) / max(abs(lr["loss"]), 1e-30)
    print(f"{name}: {a.steps} train steps, batch {batch}, cpu vs {other}")
    print(f"  mean loss   cpu {lr['loss']:.9g}   {other} {lg['loss']:.9g}   rel. diff {loss_rel:.3g}"
          f" (tolerance {a.loss_rtol:g})")
    print(f"  checksum    cpu {checksum(cr):.9g}   {other} {checksum(cg):.9g}   (sum |w| over {len(cr)} tensors)")
    print(f"  tensors     worst error/tolerance {worst:.3g} (tolerance {a.weight_rtol:g} relative L2)")
    for n, rel, ratio in rows[:3]:
        print(f"    {n:<40} rel. L2 {rel:.3g}  error/tolerance {ratio:.3g}")
    bad = [n for n, _, r in rows if not r <= 1]
    ok = math.isfinite(lg["loss"]) and loss_rel <= a.loss_rtol and not bad
    if not ok:
        why = [f"loss rel. diff {loss_rel:.3g} > {a.loss_rtol:g}"] if not loss_rel <= a.loss_rtol else []
        why += [f"{len(bad)} tensors beyond tolerance ({', '.join(bad[:5])})"] if bad else []
        print(f"gpu_train_check.py: FAIL: {'; '.join(why)}", file=sys.stderr)
    print(f"  {'PASS' if ok else 'FAIL'}  (runs in {work})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
