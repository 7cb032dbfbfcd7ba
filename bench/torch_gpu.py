"""PyTorch peer of igrc's CUDA backend for bench/gpu_check.sh: one TRADES+IGR
train step of SmallCNN (models/mnist_smallcnn_trades_igr.json) or the CIFAR
ResNet-18 (models/resnet18_trades_igr.json), as the graph files and
/work/shared/paper/SPEC.md define them, in eager mode or under torch.compile;
synthetic data of the model's input shape; throughput (images/s, warm-up
excluded, median of repeats, CUDA events on a GPU) and peak memory
(torch.cuda.max_memory_allocated on a GPU, the peak resident set on the CPU).

The objective (SPEC section 3, objectives/trades.json, igr.json):
  x~   = PGD on KL(p(x) || p(x')) (sum), net in eval mode, start
         x + 0.001 N(0,1) projected, steps of alpha sign(grad), clip to the
         eps-ball around x and to [0,1]; x~ detached
  loss = CE(f(x), y) + beta KL(p(x) || p(x~)) (batch mean, gradient through
         both) + lambda mean_b(1 - cos(IG(x_b), IG(x~_b)))
  IG   = x (1/m) sum_k grad z_y((k/m) x), m path points as one batch of m B
         rows in training mode (batch-norm statistics per group of B rows,
         no running-statistics update), differentiated again.
lambda is the plain setting (1), as in igrc compiled with -D igr_warmup=0
(bench/gpu_bench.py does). The loss is differentiated with respect to the
weights only (backward(inputs=params)): the IG path points require gradients,
and a plain backward() would also back-propagate into them, work igrc does
not do. Under torch.compile the network is compiled wherever it is
differentiated once (the attack, the two loss forwards); the IG path stays
eager because AOTAutograd has no double backward.

Data and weights: with --data DIR (a data set in igrc's format, from
bench/synth_data.py) step i takes batch i mod K of the K = n / B batches in
the order igrc's `train --seed 0` visits them in its first epoch (all K
batches are put on the device first: a few MB in the peak, and no host sync
per step); with --weights FILE (safetensors, PyTorch names) the network
starts from those weights. bench/gpu_bench.py gives both
sides the same: `--save-init FILE` writes the --seed initialisation and
exits, igrc trains from it with --init-from, so the two sides' first steps
see the same weights and batch and their losses must agree (within the PGD
start's noise and rounding). Without --data every step draws a new batch
(uniform pixels and labels) on the device. Never one fixed batch: training on
it memorises it (ResNet-18 at SGD lr 0.1 within ~10 steps) and its loss falls
where igrc's, on new batches, does not.

  python3 bench/torch_gpu.py --model smallcnn --mode eager --device cuda
  python3 bench/torch_gpu.py --self-test        (CPU checks of the objective)
Prints one line per mode: 'torch MODEL MODE IMG_PER_S PEAK_BYTES LOSS1 LOSS',
LOSS1 the first step's loss, LOSS the last step's; with --json PATH also
writes the rows as JSON (every step's loss in 'losses'; 'loss_mean' the mean
over the warm-up and the first repeat, the W + N steps whose mean igrc's
last.json reports)."""
import argparse
import json
import math
import os
import random
import resource
import statistics
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import igrc_exe  # noqa: E402  (safetensors)
from run_cpu_bench import read_idx  # noqa: E402  (IDX files)
import synth_data  # noqa: E402
from run_cpu_bench import igrc_permutation  # noqa: E402

# ---- networks (models/nets/*.json) ---------------------------------------

# While > 1, batch-norm layers in training mode take their statistics per
# group of B = rows / IG_GROUPS rows and leave the running statistics alone
# (SPEC section 1: the m path points as m separate calls).
IG_GROUPS = 1


class GroupBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x):
        m = IG_GROUPS
        if not self.training or m == 1:
            return super().forward(x)
        b, c = x.shape[0] // m, x.shape[1]
        # groups side by side as channels: one batch_norm call, stats per (group, channel)
        xg = x.view(m, b, c, *x.shape[2:]).transpose(0, 1).reshape(b, m * c, *x.shape[2:])
        y = F.batch_norm(xg, None, None, self.weight.repeat(m), self.bias.repeat(m), True, 0.0, self.eps)
        return y.view(b, m, c, *x.shape[2:]).transpose(0, 1).reshape(x.shape)


class SmallCNN(nn.Module):
    """models/nets/smallcnn.json; init as SPEC section 4."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 32, 3)
        self.conv3, self.conv4 = nn.Conv2d(32, 64, 3), nn.Conv2d(64, 64, 3)
        self.fc1, self.fc2, self.fc3 = nn.Linear(1024, 200), nn.Linear(200, 200), nn.Linear(200, 10)
        for c in (self.conv1, self.conv2, self.conv3, self.conv4):
            nn.init.kaiming_normal_(c.weight)
            nn.init.zeros_(c.bias)
        for f in (self.fc1, self.fc2):
            bound = 1 / math.sqrt(f.in_features)
            nn.init.uniform_(f.weight, -bound, bound)
            nn.init.uniform_(f.bias, -bound, bound)
        nn.init.zeros_(self.fc3.weight)
        nn.init.zeros_(self.fc3.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.max_pool2d(F.relu(self.conv4(F.relu(self.conv3(x)))), 2).flatten(1)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        return self.fc3(F.relu(self.fc2(x)))


class BasicBlock(nn.Module):
    """basic_block / basic_block_proj of models/nets/resnet18.json."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = GroupBatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = GroupBatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, 0, bias=False),
                                          GroupBatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """The CIFAR ResNet-18 of models/nets/resnet18.json (11,173,962 parameters)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = GroupBatchNorm2d(64)
        layers, cin = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, planes, stride), BasicBlock(planes, planes, 1)))
            cin = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(512, 10)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


# The model files' settings (models/*.json, objectives/{trades,igr}.json).
MODELS = {
    "smallcnn": dict(net=SmallCNN, shape=(1, 28, 28), eps=0.3, alpha=0.01, pgd_steps=40, beta=1.0,
                     opt=lambda p: torch.optim.Adam(p, lr=1e-4)),
    "resnet18": dict(net=ResNet18, shape=(3, 32, 32), eps=8 / 255, alpha=0.007, pgd_steps=10, beta=6.0,
                     opt=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4)),
}
IG_STEPS, LAMBDA = 10, 1.0

# ---- the objective ------------------------------------------------------


def kl_rows(z_p, z_q):
    """KL(softmax(z_p) || softmax(z_q)) per row; gradient through both."""
    lp, lq = F.log_softmax(z_p, 1), F.log_softmax(z_q, 1)
    return (lp.exp() * (lp - lq)).sum(1)


def trades_pgd(net, x, cfg):
    """x~: PGD on the summed KL against the fixed p(x), net in eval mode."""
    was = net.training
    net.eval()
    with torch.no_grad():
        z_nat = net(x)
    lo, hi = x - cfg["eps"], x + cfg["eps"]
    xa = torch.min(torch.max(x + 0.001 * torch.randn_like(x), lo), hi).clamp(0, 1)
    for _ in range(cfg["pgd_steps"]):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(kl_rows(z_nat, net(xa)).sum(), xa)
        xa = torch.min(torch.max(xa.detach() + cfg["alpha"] * g.sign(), lo), hi).clamp(0, 1)
    net.train(was)
    return xa.detach()


def integrated_gradients(net, x, y, m=IG_STEPS):
    """Signed IG with the zero baseline, m path points (k/m) x, k = 1..m, as
    one batch of m B rows; create_graph so the loss can differentiate it."""
    global IG_GROUPS
    alphas = torch.arange(1, m + 1, dtype=x.dtype, device=x.device).div_(m).view(m, 1, 1, 1, 1)
    path = (alphas * x.unsqueeze(0)).reshape(-1, *x.shape[1:]).requires_grad_(True)
    IG_GROUPS = m
    try:
        z = net(path)
    finally:
        IG_GROUPS = 1
    target = z.gather(1, y.repeat(m).view(-1, 1)).sum()
    g, = torch.autograd.grad(target, path, create_graph=True)
    return x * g.view(m, *x.shape).mean(0)


def cosine_rows(a, b):
    """a.b / max(|a| |b|, 1e-8) per sample (SPEC section 2: zero IG gives 0)."""
    a, b = a.flatten(1), b.flatten(1)
    return (a * b).sum(1) / torch.clamp(a.norm(dim=1) * b.norm(dim=1), min=1e-8)


def trades_igr_loss(net, net_c, x, y, cfg):
    """net_c: the network used where it is differentiated once (compiled or net)."""
    xa = trades_pgd(net_c, x, cfg)
    z, za = net_c(x), net_c(xa)
    base = F.cross_entropy(z, y) + cfg["beta"] * kl_rows(z, za).mean()
    igr = (1 - cosine_rows(integrated_gradients(net, x, y), integrated_gradients(net, xa, y))).mean()
    return base + LAMBDA * igr


def backward_weights(loss, params):
    """d loss / d weights only: not into the IG path points (which require
    gradients for the IG itself) nor any other input."""
    loss.backward(inputs=params)


# ---- timing -------------------------------------------------------------


class Timer:
    """CUDA events on a GPU (the device's own clock), perf_counter on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def start(self):
        if self.cuda:
            self.t0 = torch.cuda.Event(enable_timing=True)
            self.t0.record()
        else:
            self.t0 = time.perf_counter()

    def stop(self):
        if self.cuda:
            t1 = torch.cuda.Event(enable_timing=True)
            t1.record()
            t1.synchronize()
            return self.t0.elapsed_time(t1) / 1e3
        return time.perf_counter() - self.t0


def peak_bytes(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load_data(d, shape):
    """The training images of d in igrc's formats (runtime/io/dataset.c): MNIST
    IDX or CIFAR-10 binary batches; pixels / 255, labels as int64 (CPU tensors)."""
    if shape[0] == 1:
        (n, h, w), im = read_idx(os.path.join(d, "train-images-idx3-ubyte"))
        _, lb = read_idx(os.path.join(d, "train-labels-idx1-ubyte"))
        x = torch.frombuffer(bytearray(im), dtype=torch.uint8).view(n, 1, h, w)
        y = torch.frombuffer(bytearray(lb), dtype=torch.uint8)
    else:
        recs = b""
        for k in range(1, 6):  # data_batch_1..5.bin, those present, in order
            if os.path.exists(os.path.join(d, f"data_batch_{k}.bin")):
                with open(os.path.join(d, f"data_batch_{k}.bin"), "rb") as f:
                    recs += f.read()
        r = torch.frombuffer(bytearray(recs), dtype=torch.uint8).view(-1, 3073)
        x, y = r[:, 1:].reshape(-1, *shape), r[:, 0]
    return x.float().div_(255), y.long()


def load_weights(net, path):
    """Weights from a safetensors file under PyTorch's names (optimiser state ignored)."""
    sd = {k: torch.from_numpy(v.copy()) for k, v in igrc_exe.read_safetensors(path).items()
          if not k.startswith("optim.")}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"{path}: missing {missing[:3]}, unexpected {unexpected[:3]}")


def save_init(args):
    """The --seed initialisation, as bench() makes it, to args.save_init."""
    torch.manual_seed(args.seed)
    net = MODELS[args.model]["net"]()
    igrc_exe.write_safetensors(args.save_init, {k: v.numpy() for k, v in net.state_dict().items()
                                                if not k.endswith("num_batches_tracked")})


def bench(args, mode, device):
    torch.manual_seed(args.seed)
    cfg = MODELS[args.model]
    net = cfg["net"]()
    if args.weights:
        load_weights(net, args.weights)
    net = net.to(device).train()
    net_c = net
    if mode == "compile":
        if not hasattr(torch, "compile"):
            raise RuntimeError(f"torch {torch.__version__} has no torch.compile")
        net_c = torch.compile(net, mode=args.compile_mode)
    params = list(net.parameters())
    opt = cfg["opt"](params)
    if args.data:
        xs, ys = load_data(args.data, cfg["shape"])
        nb = len(xs) // args.batch
        if nb < 1:
            raise RuntimeError(f"{args.data}: {len(xs)} images, fewer than one batch of {args.batch}")
        order = torch.tensor(igrc_permutation(len(xs), 0, 0)[:nb * args.batch]).view(nb, args.batch)
        batches = [(xs[i].to(device), ys[i].to(device)) for i in order]  # on the device: no host sync per step
    else:
        gen = torch.Generator(device=device)
        gen.manual_seed(args.seed + 1)
    losses = []  # detached, read after the timing (no host sync per step)

    def step():
        if args.data:
            x, y = batches[len(losses) % nb]
        else:
            x = torch.rand(args.batch, *cfg["shape"], device=device, generator=gen)
            y = torch.randint(0, 10, (args.batch,), device=device, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss = trades_igr_loss(net, net_c, x, y, cfg)
        backward_weights(loss, params)
        opt.step()
        losses.append(loss.detach())

    for _ in range(args.warmup):  # torch.compile compiles here
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    timer, rates = Timer(device), []
    for _ in range(args.repeats):
        timer.start()
        for _ in range(args.steps):
            step()
        rates.append(args.steps * args.batch / timer.stop())
    losses = [v.item() for v in losses]
    if not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"{args.model} {mode}: the loss is {losses}")
    first = losses[:args.warmup + args.steps]
    return {"impl": f"torch-{mode}", "model": args.model, "batch": args.batch, "steps": args.steps,
            "repeats": args.repeats, "img_per_s": statistics.median(rates), "img_per_s_all": rates,
            "peak_bytes": peak_bytes(device), "loss_step1": losses[0], "loss_mean": sum(first) / len(first),
            "loss": losses[-1], "losses": losses, "data": args.data, "weights": args.weights,
            "device": str(device), "torch": torch.__version__}


# ---- self-test (runs on the CPU) ---------------------------------------


def check(cond, what):
    print(f"  {'ok  ' if cond else 'FAIL'} {what}")
    return cond


def self_test():
    """The objective's definitions, checked on small CPU inputs."""
    global IG_GROUPS
    torch.manual_seed(1)
    ok = True
    bn = GroupBatchNorm2d(4).train()
    nn.init.uniform_(bn.weight), nn.init.uniform_(bn.bias)
    x = torch.randn(3 * 5, 4, 6, 6) * 2 + 1
    IG_GROUPS = 3
    grouped = bn(x)
    IG_GROUPS = 1
    ref = torch.cat([F.batch_norm(x[5 * k:5 * (k + 1)], None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
                     for k in range(3)])
    ok &= check(torch.allclose(grouped, ref, atol=1e-5), "grouped batch-norm = one call per group")
    ok &= check(torch.equal(bn.running_mean, torch.zeros(4)), "grouped batch-norm leaves running stats")
    net = SmallCNN().eval()  # eval: IG of one fixed function; biases make it non-homogeneous
    nn.init.normal_(net.fc3.weight, std=0.1), nn.init.normal_(net.fc3.bias)
    xs, ys = torch.rand(4, 1, 28, 28), torch.tensor([3, 7, 1, 0])
    with torch.no_grad():
        gap = (net(xs) - net(torch.zeros_like(xs))).gather(1, ys.view(-1, 1)).squeeze(1)
    err = [((integrated_gradients(net, xs, ys, m=m).flatten(1).sum(1) - gap).abs() / gap.abs()).max().item()
           for m in (2, 256)]
    ok &= check(err[1] < 0.03 and err[1] < err[0] / 10,
                f"IG completeness: sum IG -> z_y(x)-z_y(0), worst rel. error {err[0]:.3g} at m=2, {err[1]:.3g} at m=256")
    a = torch.zeros(2, 5, requires_grad=True)
    c = cosine_rows(a, torch.randn(2, 5))
    c.sum().backward()
    ok &= check(torch.equal(c.detach(), torch.zeros(2)) and bool(torch.isfinite(a.grad).all()),
                "cosine of a zero IG is 0 with a finite gradient")
    u, v = torch.randn(3, 7), torch.randn(3, 7)
    ok &= check(torch.allclose(cosine_rows(u, v), F.cosine_similarity(u, v)), "cosine matches F.cosine_similarity")
    p, q = torch.randn(4, 10), torch.randn(4, 10)
    want = F.kl_div(F.log_softmax(q, 1), F.softmax(p, 1), reduction="none").sum(1)
    ok &= check(torch.allclose(kl_rows(p, q), want, atol=1e-6), "KL(p || q) rows match F.kl_div")
    xs, cfg = torch.rand(4, 1, 28, 28), MODELS["smallcnn"]
    xa = trades_pgd(SmallCNN(), xs, dict(cfg, pgd_steps=3))
    inside = bool(((xa - xs).abs() <= cfg["eps"] + 1e-6).all() and (xa >= 0).all() and (xa <= 1).all())
    ok &= check(inside and not xa.requires_grad, "PGD stays in the eps-ball and [0,1], detached")
    ok &= check(sum(p.numel() for p in ResNet18().parameters()) == 11173962, "ResNet-18 has 11,173,962 parameters")
    with tempfile.TemporaryDirectory() as d:  # igrc's data formats, as bench/synth_data.py writes them
        rng = random.Random(0)
        synth_data.idx_files(d, "train", 3, rng)
        synth_data.cifar_file(os.path.join(d, "data_batch_1.bin"), 2, rng)
        mx, my = load_data(d, (1, 28, 28))
        cx, cy = load_data(d, (3, 32, 32))
        with open(os.path.join(d, "train-images-idx3-ubyte"), "rb") as f:
            m2 = f.read()[16 + 784:16 + 2 * 784]
        with open(os.path.join(d, "data_batch_1.bin"), "rb") as f:
            c1 = f.read()[3073:]
        init = os.path.join(d, "init.safetensors")
        save_init(argparse.Namespace(seed=3, model="smallcnn", save_init=init))
        torch.manual_seed(3)
        want, got = SmallCNN(), SmallCNN()
        load_weights(got, init)
    ok &= check(mx.shape == (3, 1, 28, 28) and cx.shape == (2, 3, 32, 32) and
                mx[1].flatten().mul(255).round().tolist() == list(m2) and int(cy[1]) == c1[0] and
                cx[1].flatten().mul(255).round().tolist() == list(c1[1:]) and bool((my < 10).all()),
                "data sets read as igrc reads them (MNIST IDX, CIFAR-10 records, pixels / 255)")
    ok &= check(all(torch.equal(a, b) for a, b in zip(want.state_dict().values(), got.state_dict().values())),
                "--save-init writes the seed's initialisation, --weights loads it")
    net = SmallCNN().train()
    nn.init.normal_(net.fc3.weight, std=0.1)
    params = list(net.parameters())
    loss = trades_igr_loss(net, net, xs, torch.tensor([3, 7, 1, 0]), dict(cfg, pgd_steps=1))
    leaves, seen, todo = [], set(), [loss.grad_fn]
    while todo:  # the graph's leaves that are not weights: the IG path points
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        v = getattr(fn, "variable", None)
        if v is not None and not any(v is p for p in params):
            leaves.append(v)
        todo += [f for f, _ in fn.next_functions]
    backward_weights(loss, params)
    ok &= check(len(leaves) == 2 and all(v.grad is None for v in leaves) and all(p.grad is not None for p in params),
                f"the loss is differentiated into every weight and not into the {len(leaves)} IG path inputs")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="smallcnn")
    ap.add_argument("--mode", choices=["eager", "compile", "both"], default="both")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    ap.add_argument("--repeats", type=int, default=3, help="the median of this many timings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode")
    ap.add_argument("--json", help="write the rows here as JSON")
    ap.add_argument("--data", help="train on this data set's batches in igrc's order (default: new random ones)")
    ap.add_argument("--weights", help="start from these weights (safetensors, PyTorch names)")
    ap.add_argument("--save-init", metavar="FILE", help="write the --seed initialisation of --model here and exit")
    ap.add_argument("--self-test", action="store_true", help="check the objective on the CPU and exit")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(0 if self_test() else 1)
    if args.save_init:
        save_init(args)
        sys.exit(0)
    if min(args.batch, args.steps, args.repeats) < 1 or args.warmup < 0:
        ap.error("--batch, --steps and --repeats must be >= 1, --warmup >= 0")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_gpu.py: error: --device cuda but torch.cuda.is_available() is False")
    rows, failed = [], False
    for mode in (["eager", "compile"] if args.mode == "both" else [args.mode]):
        try:
            r = bench(args, mode, device)
        except Exception as e:  # one mode failing must not hide the other's numbers
            print(f"torch_gpu.py: error: {args.model} {mode}: {type(e).__name__}: {e}", file=sys.stderr)
            r, failed = {"impl": f"torch-{mode}", "model": args.model, "error": f"{type(e).__name__}: {e}"}, True
        else:
            print(f"torch {args.model} {mode} {r['img_per_s']:.1f} {r['peak_bytes']} "
                  f"{r['loss_step1']:.6g} {r['loss']:.6g}", flush=True)
        rows.append(r)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
