"""Checks igrc's CUDA backend against its CPU backend on whole training steps
(bench/gpu_check.sh, stage `check`). Each model is compiled once with --target
cuda; its initial weights are written out once (a CPU step at learning rate 0)
and every run starts from them with --init-from, on the same synthetic
batches and seed. Three scenarios:

  trades_igr, 1 step     every checkpoint tensor (weights, Adam's m and v)
                         within --weight-rtol, and the loss within --loss-rtol
  standard, 2 steps      the same, across a second optimiser step
  trades_igr, 3 steps    the mean loss within --loss-rtol; the tensors are
                         shown, not checked

A tensor passes when |cuda - cpu|_2 <= rtol |cpu|_2 + 1e-7 sqrt(n) (the floor
covers tensors still ~0, such as fc3 one step after its zero init).

Why not TRADES+IGR weights over several steps: that trajectory is chaotic in
f32. The backends round sums in different orders (~1e-6 relative); PGD's
sign(), ReLU kinks, the IGR cosine of two nearly equal IGs (1 - cos cancels)
and Adam's normalised first steps turn such differences into O(1) changes of
later gradients. Measured on the CPU alone: starting from the same weights
times (1 + 1e-6 N(0,1)) moves Adam's v of fc3 by 62% (relative L2) after 3
steps, while after 1 step every tensor stays within 0.002 of the tolerance.
So every run here is also repeated on the CPU from that perturbed start, and
its distance from the CPU run is printed as the rounding spread each check
has to stay inside. With --device cpu (an executable built without the CUDA
target) that perturbed run is the side under test: a dry run of the script
that shows each check's margin over rounding noise.

With --tf32 the matrix units round operands to 10-bit mantissas (~5e-4
relative): pass --loss-rtol 1e-2 --weight-rtol 1e-2.

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


SCENARIOS = [
    # (model, steps, whether every checkpoint tensor is checked or only the loss)
    ("models/mnist_smallcnn_trades_igr.json", 1, True),
    ("models/mnist_smallcnn_standard.json", 2, True),
    ("models/mnist_smallcnn_trades_igr.json", 3, False),
]
PERTURB = 1e-6  # relative size of the rounding-spread start's perturbation


def initial_weights(exe, data, work, dev_args):
    """The executable's seed-0 initialisation, from one CPU step at learning
    rate 0 (parameters only), and a copy times (1 + PERTURB N(0,1))."""
    os.makedirs(work, exist_ok=True)
    run = os.path.join(work, "run")
    igrc_exe.train(exe, data, 1, run, dev_args + ["--lr", "0"])
    params = {k: v for k, v in igrc_exe.read_safetensors(os.path.join(run, "checkpoint.safetensors")).items()
              if not k.startswith("optim.")}
    rng = np.random.default_rng(1)
    pert = {k: (v * (1 + PERTURB * rng.standard_normal(v.shape))).astype(v.dtype) if v.dtype == np.float32 else v
            for k, v in params.items()}
    paths = (os.path.join(work, "init.safetensors"), os.path.join(work, "init-perturbed.safetensors"))
    igrc_exe.write_safetensors(paths[0], params)
    igrc_exe.write_safetensors(paths[1], pert)
    return paths


def run_side(exe, data, steps, out, dev_args, init):
    last, _ = igrc_exe.train(exe, data, steps, out, dev_args + ["--init-from", init])
    return last, igrc_exe.read_safetensors(os.path.join(out, "checkpoint.safetensors"))


def scenario(a, model, steps, check_tensors, built, work):
    """Runs one scenario; returns whether it passed, after printing it."""
    cuda = a.device == "cuda"
    name = os.path.splitext(os.path.basename(model))[0]
    if model not in built:
        exe = os.path.join(work, name)
        igrc_exe.compile_model(a.igrc, model, exe, cuda, a.gpu_arch, a.tf32, a.batch)
        data = igrc_exe.synth(model, work, (a.batch or 128) * max(s for _, s, _ in SCENARIOS))
        built[model] = (exe, data) + initial_weights(exe, data, os.path.join(work, name + "-init"), igrc_exe.device_args(cuda, "cpu"))
    exe, data, init, init_pert = built[model]
    cpu_args = igrc_exe.device_args(cuda, "cpu")
    tag = os.path.join(work, f"{name}-{steps}")
    ref = run_side(exe, data, steps, tag + "-cpu", cpu_args, init)
    spread = run_side(exe, data, steps, tag + "-cpu-perturbed", cpu_args, init_pert)
    other = "cuda" if cuda else "cpu, perturbed start"
    got = run_side(exe, data, steps, tag + "-cuda", igrc_exe.device_args(cuda, "cuda"), init) if cuda else spread
    rows, worst = compare(ref[1], got[1], a.weight_rtol)
    _, spread_worst = compare(ref[1], spread[1], a.weight_rtol)
    loss_rel = abs(got[0]["loss"] - ref[0]["loss"]) / max(abs(ref[0]["loss"]), 1e-30)
    spread_loss = abs(spread[0]["loss"] - ref[0]["loss"]) / max(abs(ref[0]["loss"]), 1e-30)
    print(f"{name}: {steps} train step{'s' if steps > 1 else ''}, batch {a.batch or 128}, cpu vs {other}")
    print(f"  mean loss   cpu {ref[0]['loss']:.9g}   {other} {got[0]['loss']:.9g}   rel. diff {loss_rel:.3g}"
          f" (tolerance {a.loss_rtol:g}; rounding spread {spread_loss:.3g})")
    print(f"  checksum    cpu {checksum(ref[1]):.9g}   {other} {checksum(got[1]):.9g}"
          f"   (sum |w| over {len(ref[1])} tensors)")
    print(f"  tensors     worst error/tolerance {worst:.3g} (tolerance {a.weight_rtol:g} relative L2; "
          f"rounding spread {spread_worst:.3g}){'' if check_tensors else ': shown, not checked'}")
    for n, rel, ratio in rows[:3]:
        print(f"    {n:<40} rel. L2 {rel:.3g}  error/tolerance {ratio:.3g}")
    bad = [n for n, _, r in rows if not r <= 1] if check_tensors else []
    ok = math.isfinite(got[0]["loss"]) and loss_rel <= a.loss_rtol and not bad
    if not ok:
        why = [f"loss rel. diff {loss_rel:.3g} > {a.loss_rtol:g}"] if not loss_rel <= a.loss_rtol else []
        why += [f"{len(bad)} tensors beyond tolerance ({', '.join(bad[:5])})"] if bad else []
        print(f"  FAIL: {'; '.join(why) or 'the loss is not finite'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--igrc", required=True)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--batch", type=int, help="compile at this batch (default: the model files')")
    ap.add_argument("--loss-rtol", type=float, default=1e-3)
    ap.add_argument("--weight-rtol", type=float, default=1e-3)
    ap.add_argument("--gpu-arch")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--work", help="keep the executables, data and runs here")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="igrc-train-check-")
    os.makedirs(work, exist_ok=True)
    built, failed = {}, []
    try:
        for model, steps, check_tensors in SCENARIOS:
            if not scenario(a, model, steps, check_tensors, built, work):
                failed.append(f"{os.path.basename(model)} {steps} step(s)")
    except igrc_exe.RunError as e:
        sys.exit(f"gpu_train_check.py: error: {e}")
    if failed:
        print(f"gpu_train_check.py: FAIL: {', '.join(failed)}", file=sys.stderr)
    print(f"  {'FAIL' if failed else 'PASS'}  (runs in {work})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
