#!/usr/bin/python3
"""PyTorch interop both ways, end to end (ctest: test_torch_interop).

igrc -> PyTorch: SmallCNN (models/mnist_smallcnn_standard.json) is compiled,
trained for a few steps from a directory outside the repository (so the
executable finds MNIST through the source tree compiled into its runtime),
and exported with `MODEL export`; the file loads into a PyTorch SmallCNN with
load_state_dict(strict=True), whose logits on 100 MNIST test images match
`igrc exec --params` and whose correct count matches `MODEL eval`.

PyTorch -> igrc: a SmallCNN trained briefly in PyTorch is saved with
torch.save, converted by scripts/pt_to_safetensors.py as F32 and as BF16,
and run by `igrc exec --params` and `MODEL eval --ckpt`: the same logits and
the same correct count as PyTorch (BF16 against the BF16-rounded module).

Run with a Python that has torch (IGRC_TORCH_PYTHON, default /usr/bin/python3):
    test_torch_interop.py --igrc build/tools/igrc/igrc --source .
Without torch it says so and fails.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from torch_nets import SmallCNN  # next to this script
except ImportError as e:
    print(f"test_torch_interop: FAIL: python3-torch is missing ({e}); install it "
          "(apt-get install python3-torch) or set IGRC_TORCH_PYTHON to a Python with torch",
          file=sys.stderr)
    sys.exit(1)

N_IMAGES = 100
TOL = 1e-5  # max |logit difference| allowed between igrc and PyTorch


# models/nets/smallcnn.json's "act" param -> PyTorch's functional form (defaults:
# GELU's exact erf form, ELU alpha 1, LeakyReLU negative_slope 0.01)
ACTIVATIONS = {"gelu": F.gelu, "silu": F.silu, "elu": F.elu, "leaky_relu": F.leaky_relu}


def run(cmd, cwd=None, env=None):
    """Runs cmd; its output goes to our stderr (where ctest looks for
    sanitizer reports); a non-zero exit fails the test."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    sys.stderr.write(p.stdout + p.stderr)
    sys.stderr.write(f"[{time.monotonic() - t0:.1f} s: {' '.join(os.path.basename(c) for c in cmd[:2])}]\n")
    if p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {' '.join(cmd)}")
    return p


def read_idx(path):
    for name in (path, path + ".gz"):
        if os.path.exists(name):
            with (gzip.open if name.endswith(".gz") else open)(name, "rb") as f:
                raw = f.read()
            rank = raw[3]
            dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
            return torch.frombuffer(bytearray(raw[4 + 4 * rank:]), dtype=torch.uint8).reshape(dims)
    raise AssertionError(f"{path}[.gz] not found")


def mnist(source, split, n):
    d = os.path.join(source, "data", "mnist")
    prefix = "t10k" if split == "test" else "train"
    x = read_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte"))[:n]
    y = read_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte"))[:n]
    return x.float().div(255).unsqueeze(1), y.long()


def igrc_logits(st, args, work, x, params, tag, defines=()):
    """Logits of `igrc exec --fn predict` (the CPU backend) on x."""
    xin, out = os.path.join(work, f"x_{tag}.safetensors"), os.path.join(work, f"l_{tag}.safetensors")
    st.save_safetensors({"x": x.contiguous()}, xin)
    run([args.igrc, "exec", os.path.join(args.source, "models/nets/smallcnn.json"), "--fn",
         "predict", "--inputs", xin, "-o", out, "--params", params, "--batch", str(len(x)),
         "--backend", "cpu"] + [a for d in defines for a in ("-D", d)])
    return st.load_safetensors(out)[0]["logits"]


def eval_correct(exe, ckpt, work, tag):
    """Correct predictions of `MODEL eval --attacks natural` on the first images."""
    js = os.path.join(work, f"eval_{tag}.json")
    run([exe, "eval", "--ckpt", ckpt, "--data", "mnist", "--attacks", "natural", "--n",
         str(N_IMAGES), "--json", js, "--threads", "2"], cwd=work)
    with open(js) as f:
        return int(json.load(f)["results"][0]["correct"])


def compare(name, got, want):
    diff = (got.double() - want.double()).abs().max().item()
    print(f"{name}: max |logit difference| {diff:.3g} (allowed {TOL:g})")
    if not diff <= TOL:
        raise AssertionError(f"{name}: logits differ by {diff:.3g} > {TOL:g}")


def igrc_to_torch(st, args, work, exe, x, y):
    run([exe, "train", "--data", "mnist", "--limit", "1024", "--epochs", "1", "--lr", "0.002",
         "--out", "run", "--threads", "2"], cwd=work, env=outside_env())
    run([exe, "export", "--out", "W.safetensors"], cwd=work)  # the weights of ./run
    weights = os.path.join(work, "W.safetensors")
    sd, meta = st.load_safetensors(weights)
    if meta.get("program") != "mnist_smallcnn_standard" or any(k.startswith("optim.") for k in sd):
        raise AssertionError(f"{weights}: metadata {meta}, tensors {list(sd)}")
    model = SmallCNN().eval()
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        want = model(x)
    compare("export -> PyTorch, igrc exec --params", igrc_logits(st, args, work, x, weights, "e"),
            want)
    correct = int((want.argmax(1) == y).sum())
    got = eval_correct(exe, os.path.join(work, "run", "checkpoint.safetensors"), work, "e")
    print(f"export -> PyTorch: correct {correct}/{N_IMAGES} in PyTorch, {got} by MODEL eval")
    if got != correct:
        raise AssertionError(f"MODEL eval counts {got} correct, PyTorch {correct}")


def torch_trained(source):
    """SmallCNN trained briefly in PyTorch (Adam, 30 steps of 64 images)."""
    torch.manual_seed(0)
    model = SmallCNN()
    xs, ys = mnist(source, "train", 30 * 64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(30):
        opt.zero_grad()
        F.cross_entropy(model(xs[i * 64:(i + 1) * 64]), ys[i * 64:(i + 1) * 64]).backward()
        opt.step()
    return model.eval()


def torch_to_igrc(st, args, work, exe, x, y, model, dtype, tag):
    """model's state_dict saved in dtype, converted, run by igrc; compared with
    the module holding the same (rounded) values."""
    sd = {k: v.to(dtype) for k, v in model.state_dict().items()}
    pt, conv = os.path.join(work, f"{tag}.pt"), os.path.join(work, f"{tag}.safetensors")
    torch.save(sd, pt)
    run([args.python, os.path.join(args.source, "scripts/pt_to_safetensors.py"), pt, conv])
    ref = SmallCNN().eval()
    ref.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    with torch.no_grad():
        want = ref(x)
    compare(f"PyTorch {dtype} -> igrc exec --params", igrc_logits(st, args, work, x, conv, tag),
            want)
    correct = int((want.argmax(1) == y).sum())
    got = eval_correct(exe, conv, work, tag)
    print(f"PyTorch {dtype} -> MODEL eval --ckpt: correct {got}, PyTorch {correct}")
    if got != correct:
        raise AssertionError(f"MODEL eval counts {got} correct, PyTorch {correct}")
    return correct


def activations_match(st, args, work, x, model):
    """The SmallCNN with each of the other activations, in PyTorch and in igrc
    (`-D act=NAME`), on the same trained weights: the logits must agree."""
    weights = os.path.join(work, "acts.safetensors")
    st.save_safetensors({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    for name, fn in ACTIVATIONS.items():
        ref = SmallCNN(fn).eval()
        ref.load_state_dict(model.state_dict(), strict=True)
        with torch.no_grad():
            want = ref(x)
        compare(f"act={name}: igrc exec against PyTorch",
                igrc_logits(st, args, work, x, weights, f"act_{name}", [f"act={name}"]), want)


def outside_env():
    """The environment of a user outside the repository: no data hints."""
    env = dict(os.environ)
    env.pop("IGRC_DATA", None)
    env.pop("IGRC_SOURCE_DIR", None)
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igrc", required=True)
    ap.add_argument("--source", required=True)
    args = ap.parse_args()
    args.python = sys.executable
    args.source = os.path.abspath(args.source)
    sys.path.insert(0, os.path.join(args.source, "scripts"))
    import pt_to_safetensors as st

    torch.set_num_threads(2)
    x, y = mnist(args.source, "test", N_IMAGES)
    with tempfile.TemporaryDirectory(prefix="igrc-interop-") as work:
        exe = os.path.join(work, "smallcnn")
        run([args.igrc, "compile", os.path.join(args.source, "models/mnist_smallcnn_standard.json"),
             "-o", exe])
        igrc_to_torch(st, args, work, exe, x, y)
        model = torch_trained(args.source)
        acc = torch_to_igrc(st, args, work, exe, x, y, model, torch.float32, "pt32")
        torch_to_igrc(st, args, work, exe, x, y, model, torch.bfloat16, "pt16")
        activations_match(st, args, work, x, model)
        if acc < 60:
            raise AssertionError(f"the PyTorch model got only {acc}/{N_IMAGES}: not trained")
    print("test_torch_interop: ok")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"test_torch_interop: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
