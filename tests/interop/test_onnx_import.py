#!/usr/bin/python3
"""ONNX import end to end (ctest: test_onnx_import).

PyTorch exports three networks to ONNX (torch.onnx.export, opset 17, a
dynamic batch axis, batch norms kept with TrainingMode.PRESERVE):

- SmallCNN, models/nets/smallcnn.json's architecture;
- the CIFAR ResNet-18 of models/nets/resnet18.json, a plain nn.Module
  written here (kuangliu's names), with random batch-norm statistics;
- a small net that uses every operator the importer supports.

Each goes through `igrc import`, then `igrc exec --fn predict --params` on
random images (ResNet-18 and the all-ops net compiled by the CPU backend,
SmallCNN, whose CPU-backend run test_torch_interop checks, interpreted): the logits equal PyTorch's within TOL relative (to the
largest logit), and the parameter count equals PyTorch's. SmallCNN's and
ResNet-18's graphs keep PyTorch's parameter names. The imported ResNet-18
and the all-ops net are included with objectives/trades_igr.json by model
files that `igrc check` accepts and `igrc compile --emit ir` takes through
the pass pipeline (IGR's second-order autodiff). A hand-built graph
(onnx.helper, opset 18) covers what PyTorch does not emit (Identity,
Dropout, Gemm with transB 0 and alpha, Sub and Div with the constant first,
Clip with one bound, ReduceMean's axes as an input, Reshape with 0, Elu,
Neg, Abs) against numpy. Malformed, truncated, unsupported and old-opset
files are errors naming the file (and the node).

Run with a Python that has torch and onnx (IGRC_TORCH_PYTHON, default
/usr/bin/python3):
    test_onnx_import.py --igrc build/tools/igrc/igrc --source .
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import onnx
    from onnx import helper, TensorProto, numpy_helper
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from torch_nets import SmallCNN  # next to this script
except ImportError as e:
    print(f"test_onnx_import: FAIL: {e}; install python3-torch and python3-onnx "
          "(scripts/setup.sh) or set IGRC_TORCH_PYTHON", file=sys.stderr)
    sys.exit(1)

TOL = 1e-5  # max |logit difference| / max |logit|
BATCH = 4


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """models/nets/resnet18.json (CIFAR: 3x3 stem, no max-pool)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin, layers = 64, []
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, planes, stride),
                                        BasicBlock(planes, planes, 1)))
            cin = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(512, 10)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))  # Shape, Gather, ..., Reshape


class AllOps(nn.Module):
    """Every operator PyTorch exports that the importer maps: Conv,
    BatchNormalization, Relu, Mul (by a parameter), ConvTranspose, Mul
    broadcasting two computed values (squeeze-and-excitation), LeakyRelu, Add, Sub,
    Sigmoid, Tanh, GELU's Erf pattern, Softplus, Div, Pad, MaxPool,
    AveragePool, Concat, Clip, GlobalAveragePool, ReduceMean, Transpose,
    Reshape, MatMul + Add (Linear on a 3-D input), Flatten, Gemm, MatMul,
    Softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.up = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)
        self.gain = nn.Parameter(torch.randn(8, 1, 1))
        self.proj = nn.Linear(16, 8)
        self.fc = nn.Linear(40, 12)
        self.mix = nn.Parameter(torch.randn(12, 10) / 4)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x))) * self.gain
        y = y + F.avg_pool2d(self.up(y), 2)
        y = y * torch.sigmoid(F.adaptive_avg_pool2d(y, 1))  # Mul broadcasting [B,8,1,1]
        y = F.leaky_relu(y, 0.1) + 0.5
        y = torch.sigmoid(y) - torch.tanh(y)
        y = F.softplus(F.gelu(y * 3)) / 2.0
        y = F.pad(y, (1, 1, 1, 1))
        a = F.max_pool2d(y, 2)
        b = F.avg_pool2d(y, 3, stride=2, padding=1, count_include_pad=False)
        c = torch.clamp(torch.cat([a, b], 1), 0.05, 0.6)
        g = F.adaptive_avg_pool2d(c, 1)
        m = c.mean(dim=(2, 3))
        t = self.proj(c.permute(0, 2, 3, 1).reshape(-1, 25, 16)).mean(dim=1)
        h = self.fc(torch.cat([g.flatten(1), m, t], 1))
        return F.softmax(h @ self.mix, dim=1)


def run(cmd, expect=0):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(p.stdout + p.stderr)
    sys.stderr.write(f"[{time.monotonic() - t0:.1f} s: {' '.join(os.path.basename(c) for c in cmd[:2])}]\n")
    if p.returncode != expect:
        raise AssertionError(f"exit {p.returncode} (expected {expect}): {' '.join(cmd)}")
    return p


def randomise_bn(model, gen):
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=gen))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=gen))
                mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=gen))
                mod.running_var.copy_(1 + torch.rand(mod.running_var.shape, generator=gen))


def export(model, x, path):
    torch.onnx.export(model, x, path, opset_version=17, input_names=["input"],
                      output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE)


def import_onnx(args, onnx_path, work, tag):
    net, weights = os.path.join(work, f"{tag}.json"), os.path.join(work, f"{tag}.safetensors")
    p = run([args.igrc, "import", onnx_path, "-o", net, "--weights", weights])
    found = re.search(r"parameters: (\d+)", p.stdout)
    if not found:
        raise AssertionError(f"igrc import printed no parameter count: {p.stdout!r}")
    return net, weights, int(found.group(1))


def igrc_logits(st, args, work, net, weights, x, tag, backend="cpu"):
    """predict on x: compiled by the CPU backend (LLVM), or run by the
    reference interpreter (quicker for small nets under the sanitizers)."""
    xin, out = os.path.join(work, f"x_{tag}.safetensors"), os.path.join(work, f"l_{tag}.safetensors")
    st.save_safetensors({"x": x.contiguous()}, xin)
    run([args.igrc, "exec", net, "--fn", "predict", "--inputs", xin, "-o", out, "--params",
         weights, "--batch", str(len(x)), "--backend", backend])
    return st.load_safetensors(out)[0]["logits"]


def compare(name, got, want):
    scale = want.double().abs().max().item()
    rel = (got.double() - want.double()).abs().max().item() / max(scale, 1e-30)
    print(f"{name}: max |logit difference| / max |logit| = {rel:.3g} (allowed {TOL:g})")
    if not rel <= TOL:
        raise AssertionError(f"{name}: logits differ by {rel:.3g} relative > {TOL:g}")
    return rel


def round_trip(st, args, work, name, model, shape, gen, backend="cpu"):
    model.eval()
    x = torch.rand(shape, generator=gen)
    path = os.path.join(work, f"{name}.onnx")
    export(model, x, path)
    net, weights, nparams = import_onnx(args, path, work, name)
    want_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: parameters {nparams} imported, {want_params} in PyTorch")
    if nparams != want_params:
        raise AssertionError(f"{name}: parameter counts differ")
    with torch.no_grad():
        want = model(x)
    compare(f"{name} ({backend})", igrc_logits(st, args, work, net, weights, x, name, backend),
            want)
    return net, weights


def check_names(name, weights, st, model):
    got = set(st.load_safetensors(weights)[0])
    want = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    if got != want:
        raise AssertionError(f"{name}: weight names differ from the state_dict: "
                             f"{sorted(got ^ want)[:8]}")
    print(f"{name}: {len(got)} weights named as PyTorch's state_dict")


def trades_igr_check(args, work, net, tag):
    """The imported network with objectives/trades_igr.json: igrc check,
    then the pass pipeline (IGR's second-order autodiff) to IR."""
    model = os.path.join(work, f"{tag}_trades_igr.json")
    with open(model, "w") as f:
        f.write('{"igrc": 1, "include": ["%s", "%s"], "data": "cifar10",\n'
                ' "params": {"eps": 0.031, "alpha": 0.007, "pgd_steps": 2, "beta": 6.0}}\n'
                % (os.path.basename(net),
                   os.path.join(os.path.abspath(args.source), "models/objectives/trades_igr.json")))
    p = run([args.igrc, "check", model, "--batch", "2"])
    if "train_step" not in p.stdout:
        raise AssertionError(f"the {tag} TRADES+IGR model has no train_step entry point")
    run([args.igrc, "compile", model, "--batch", "2", "--emit", "ir", "-o",
         os.path.join(work, f"{tag}_trades_igr.ir")])
    print(f"{tag} + objectives/trades_igr.json: igrc check and compile --emit ir pass")


def save_graph(nodes, inits, path, in_shape, out_shape, opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    if opset <= 17:  # Debian's onnx 1.12 knows opsets up to 17
        onnx.checker.check_model(m)
    onnx.save(m, path)


def const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
        np.asarray(value, dtype=np.float32 if isinstance(value, float) else np.int64)))


def hand_built(st, args, work, gen):
    """Ops and forms PyTorch's exporter does not produce, against numpy."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        const("ratio", 0.25),
        helper.make_node("Dropout", ["i", "ratio"], ["d"]),
        helper.make_node("Reshape", ["d", "shape"], ["r"]),              # [B,2,3] -> [B,6]
        helper.make_node("Gemm", ["r", "w", "b"], ["g"], alpha=0.5, transB=0),
        const("two", 2.0),
        helper.make_node("Sub", ["two", "g"], ["s"]),
        helper.make_node("Clip", ["s", "lo"], ["c"]),
        const("three", 3.0),
        helper.make_node("Div", ["three", "c"], ["q"]),
        helper.make_node("Reshape", ["q", "shape2"], ["q3"]),            # [B,5] -> [B,5,1]
        const("axes", [2]),
        helper.make_node("ReduceMean", ["q3", "axes"], ["m"], keepdims=0),
        helper.make_node("Elu", ["m"], ["e"], alpha=0.5),
        helper.make_node("Neg", ["e"], ["n"]),
        helper.make_node("Abs", ["n"], ["out"]),
    ]
    inits = {"w": w, "b": b, "shape": np.array([0, 6], np.int64),
             "shape2": np.array([-1, 5, 1], np.int64), "lo": np.array(-0.5, np.float32)}
    path = os.path.join(work, "hand.onnx")
    save_graph(nodes, inits, path, ["N", 2, 3], ["N", 5], opset=18)
    net, weights, nparams = import_onnx(args, path, work, "hand")
    x = torch.rand((BATCH, 2, 3), generator=gen)
    xn = x.numpy().reshape(BATCH, 6)
    q = 3.0 / np.maximum(2.0 - (0.5 * xn @ w + b), -0.5)
    want = np.abs(np.where(q > 0, q, 0.5 * (np.exp(q) - 1)))
    if nparams != w.size + b.size:
        raise AssertionError(f"hand: {nparams} parameters, expected {w.size + b.size}")
    compare("hand-built graph (interp)", igrc_logits(st, args, work, net, weights, x, "hand", "interp"),
            torch.from_numpy(want))


def expect_error(args, path, work, *needles):
    p = run([args.igrc, "import", path, "-o", os.path.join(work, "bad.json")], expect=2)
    msg = p.stderr.strip()
    for s in (os.path.basename(path),) + needles:
        if s not in msg:
            raise AssertionError(f"the error for {path} does not mention {s!r}: {msg}")
    print(f"error as expected: {msg[:160]}{'...' if len(msg) > 160 else ''}")


def bad_files(args, work):
    good = open(os.path.join(work, "smallcnn.onnx"), "rb").read()
    cases = {"garbage.onnx": b"\xff\xfe not a protobuf \x00\x01" * 7,
             "truncated.onnx": good[:len(good) // 2],
             "empty.onnx": b""}
    for name, data in cases.items():
        with open(os.path.join(work, name), "wb") as f:
            f.write(data)
    expect_error(args, os.path.join(work, "garbage.onnx"), work, "malformed")
    expect_error(args, os.path.join(work, "truncated.onnx"), work, "malformed or truncated")
    expect_error(args, os.path.join(work, "empty.onnx"), work, "graph")
    unsupported = os.path.join(work, "unsupported.onnx")
    save_graph([helper.make_node("HardSwish", ["x"], ["out"], name="hs")], {}, unsupported,
               ["N", 4], ["N", 4])
    expect_error(args, unsupported, work, "node 0 'hs' (HardSwish)", "not supported",
                 "supported: Conv, ConvTranspose, Gemm")
    batchmath = os.path.join(work, "batchmath.onnx")  # x.view(x.size(0) * 2, -1)
    save_graph([helper.make_node("Shape", ["x"], ["s"]), const("zero", 0),
                helper.make_node("Gather", ["s", "zero"], ["b"]), const("two", 2),
                helper.make_node("Mul", ["b", "two"], ["m"], name="double_batch"),
                const("axes", [0]), helper.make_node("Unsqueeze", ["m", "axes"], ["u"]),
                const("rest", [-1]), helper.make_node("Concat", ["u", "rest"], ["shp"], axis=0),
                helper.make_node("Reshape", ["x", "shp"], ["out"])], {}, batchmath,
               ["N", 4], ["N", 2])
    expect_error(args, batchmath, work, "'double_batch' (Mul)", "dynamic batch size")
    old = os.path.join(work, "opset11.onnx")
    save_graph([helper.make_node("Relu", ["x"], ["out"])], {}, old, ["N", 4], ["N", 4], opset=11)
    expect_error(args, old, work, "opset 11")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igrc", required=True)
    ap.add_argument("--source", required=True)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.source, "scripts"))
    import pt_to_safetensors as st
    torch.manual_seed(0)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="igrc_onnx_") as work:
        small = SmallCNN()
        # SmallCNN on the CPU backend: test_torch_interop; here the interpreter
        _, w = round_trip(st, args, work, "smallcnn", small, (BATCH, 1, 28, 28), gen, "interp")
        check_names("smallcnn", w, st, small)
        resnet = ResNet18()
        randomise_bn(resnet, gen)
        net, w = round_trip(st, args, work, "resnet18", resnet, (2, 3, 32, 32), gen)
        check_names("resnet18", w, st, resnet)
        trades_igr_check(args, work, net, "resnet18")
        allops = AllOps()
        randomise_bn(allops, gen)
        net, _ = round_trip(st, args, work, "allops", allops, (BATCH, 3, 8, 8), gen)
        trades_igr_check(args, work, net, "allops")
        hand_built(st, args, work, gen)
        bad_files(args, work)
    print("test_onnx_import: OK")


if __name__ == "__main__":
    main()
