"""Checks, on a GPU machine, what the CPU tests cannot (bench/gpu_check.sh,
stage `evalcheck`): one executable compiled from
models/mnist_smallcnn_standard.json with --target cuda and
train.micro_batch, trained until it memorises 256 synthetic images (the GPU
machine has no MNIST; random labels cannot generalise, so eval runs on
those same images), then
  - eval with every attack (natural, fgsm, pgd, cw and AutoAttack's apgd-ce,
    apgd-t, fab-t, square, autoattack at small counts) with --device cpu and
    --device cuda: the robust counts may differ only by sign() and ReLU
    flips, so each attack's count within --max-diff images of the CPU's;
    Square must make no gradient call on either device;
  - data-parallel training on the GPU: the same steps as one process and,
    when mpirun is there, as `mpirun -np 2` (both ranks on the visible
    GPUs by local rank): every checkpoint tensor within 1e-3 relative of
    the one-process CUDA run (summation order on the device is the
    kernels', not fixed across ranks, so bits may differ).
--device cpu runs the same script with CPU-only executables (a dry run:
the two sides must agree exactly).

  python3 bench/gpu_eval_check.py --igrc build/tools/igrc/igrc [--device cuda]"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import igrc_exe
from gpu_train_check import compare

ATTACKS = "natural,fgsm,pgd,cw,apgd-ce,apgd-t,fab-t,square,autoattack"
SMALL = ["--aa-iters", "10", "--aa-targets", "2", "--square-queries", "50"]


def memorise_set(model, work):
    """256 synthetic images as both the training and the test split."""
    d = igrc_exe.synth(model, work, 256)
    for kind in ("images-idx3", "labels-idx1"):
        shutil.copyfile(os.path.join(d, f"train-{kind}-ubyte"), os.path.join(d, f"t10k-{kind}-ubyte"))
    return d


def evaluate(exe, run, data, dev_args, n, out):
    igrc_exe.run([exe, "eval", "--out", run, "--data", data, "--n", str(n), "--attacks", ATTACKS, "--eps", "0.03",
                  "--json", out] + SMALL + dev_args)
    with open(out) as f:
        return {r["attack"]: r for r in json.load(f)["results"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--igrc", required=True)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--gpu-arch")
    ap.add_argument("--n", type=int, default=128, help="images for eval (of the 256)")
    ap.add_argument("--max-diff", type=int, default=2, help="images an attack's count may differ by")
    ap.add_argument("--work")
    a = ap.parse_args()
    cuda = a.device == "cuda"
    work = a.work or tempfile.mkdtemp(prefix="igrc-eval-check-")
    model = "models/mnist_smallcnn_standard.json"
    exe = os.path.join(work, "smallcnn")
    failed = []
    try:
        cmd = [a.igrc, "compile", model, "-o", exe, "-D", "train.micro_batch=32"]
        if cuda:
            cmd += ["--target", "cuda"] + (["--gpu-arch", a.gpu_arch] if a.gpu_arch else [])
        igrc_exe.run(cmd)
        data = memorise_set(model, work)
        cpu, dev = igrc_exe.device_args(cuda, "cpu"), igrc_exe.device_args(cuda, a.device)
        run = os.path.join(work, "run")
        igrc_exe.run([exe, "train", "--data", data, "--epochs", "60", "--lr", "5e-3", "--out", run] + cpu)
        ref = evaluate(exe, run, data, cpu, a.n, os.path.join(work, "cpu.json"))
        got = evaluate(exe, run, data, dev, a.n, os.path.join(work, "dev.json"))
        tol = a.max_diff if cuda else 0
        print(f"eval, {a.n} images at eps 0.03, cpu vs {a.device} (correct counts; tolerance {tol})")
        for k, r in ref.items():
            d = abs(got[k]["correct"] - r["correct"])
            ok = d <= tol and (k != "square" or got[k].get("gradient_calls") == 0)
            print(f"  {k:<11} {r['correct']:5.0f} {got[k]['correct']:5.0f}  {'ok' if ok else 'FAIL'}")
            if not ok:
                failed.append(f"eval {k}")
        one = os.path.join(work, "dp-one")
        igrc_exe.train(exe, data, 2, one, dev)
        ck1 = igrc_exe.read_safetensors(os.path.join(one, "checkpoint.safetensors"))
        mpirun = shutil.which("mpirun")
        if not mpirun:
            print("data-parallel: no mpirun here; only the one-process run was made")
        else:
            two = os.path.join(work, "dp-two")
            igrc_exe.run([mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2", exe, "train", "--data",
                          data, "--epochs", "1", "--batches", "2", "--seed", "0", "--out", two] + dev)
            rows, worst = compare(ck1, igrc_exe.read_safetensors(os.path.join(two, "checkpoint.safetensors")),
                                  1e-3 if cuda else 0)
            print(f"data-parallel on {a.device}: mpirun -np 2 vs one process, 2 steps: worst error/tolerance "
                  f"{worst:.3g} ({rows[0][0]})")
            if not (worst <= 1 if cuda else worst == 0):
                failed.append("data-parallel")
    except igrc_exe.RunError as e:
        sys.exit(f"gpu_eval_check.py: error: {e}")
    print(f"  {'FAIL: ' + ', '.join(failed) if failed else 'PASS'}  (runs in {work})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
