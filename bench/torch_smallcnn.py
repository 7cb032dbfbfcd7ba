"""PyTorch peer of bench/run_cpu_bench.py: the work of igrc's SmallCNN
executables, done the way a careful PyTorch user would, and no more.

  train KIND  train_step of models/mnist_smallcnn_KIND.json (standard, at,
              trades, trades_igr): batch 128, Adam (lr 1e-4, betas 0.9/0.999,
              eps 1e-8); PGD 40 steps, eps 0.3, alpha 0.01, the network in
              eval mode during the attack (AT: CE summed, uniform start;
              TRADES: KL(p(x) || p(x~)) summed, p(x) once, start
              x + 0.001 N(0,1)); TRADES beta 1 with the KL term differentiated
              through both branches; IGR: lambda 1, two 10-point IG paths
              (right Riemann sum, zero baseline, label logit, training mode)
              with double backprop, 1 - cos (eps 1e-8) averaged.
              Batches: igrc's permutation of the data directory's training
              images (run_cpu_bench.igrc_permutation), so step i sees the
              images igrc's step i sees.
  eval        PGD-20 (eps 0.3, alpha 0.01, uniform start, CE) then one
              forward, per batch of 128 test images, the network in eval mode.
  ifia        the IFIA attack of tests/reference/ifia_reference.py in float32
              (the protocol of igrc's `attrib`, SPEC section 6): saliency and
              surrogate with m path points, k 100, Kendall selection, in
              batches of --batch images.
  select      the indices of the first --n test images the weights classify
              correctly (the IFIA row's images).

Gradients are taken only where igrc takes them: the attacks differentiate
with respect to x with the weights' requires_grad off; the training loss is
differentiated with respect to the weights only (backward(inputs=...)), not
into x or x~. Every command prints one JSON line; "value" is img/s (train)
or seconds per image (eval, ifia), timed after warm-up."""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "reference"))
import ifia_reference as ref  # noqa: E402  (SmallCNN with PyTorch's parameter names, IDX, safetensors)
from run_cpu_bench import igrc_permutation, read_idx, find_idx  # noqa: E402

EPS, ALPHA, PGD_STEPS, BETA, IG_STEPS = 0.3, 0.01, 40, 1.0, 10


def load_split(data, split):
    (n, h, w), im = read_idx(find_idx(data, f"{split}-images-idx3-ubyte"))
    _, lb = read_idx(find_idx(data, f"{split}-labels-idx1-ubyte"))
    x = np.frombuffer(im, dtype=np.uint8).reshape(n, 1, h, w).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(x), torch.from_numpy(np.frombuffer(lb, dtype=np.uint8).astype(np.int64))


def network(weights, train):
    net = ref.SmallCNN("relu")
    sd, _ = ref.read_safetensors(weights)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items() if not k.startswith("optim.")})
    return net.train(train)


def frozen(net, on):
    for p in net.parameters():
        p.requires_grad_(not on)


def pgd(net, x, loss_fn, start, steps=PGD_STEPS, alpha=ALPHA):
    """steps sign-gradient steps from clip01(x + start) in eval mode, w.r.t. x only."""
    was = net.training
    net.eval()
    frozen(net, True)
    xa = (x + start).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(loss_fn(net(xa)), xa)
        xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - EPS), x + EPS).clamp(0, 1)
    frozen(net, False)
    net.train(was)
    return xa.detach()


def ig(net, x, y, m=IG_STEPS):
    """IG of the label logit, zero baseline, path points k/m (k = 1..m),
    differentiable with respect to the weights (create_graph)."""
    alphas = (torch.arange(1, m + 1, dtype=x.dtype) / m).view(m, 1, 1, 1, 1)
    path = (alphas * x.unsqueeze(0)).reshape(-1, *x.shape[1:]).requires_grad_(True)
    z = net(path).view(m, x.shape[0], -1)
    logit = z.gather(2, y.view(1, -1, 1).expand(m, -1, 1)).sum()
    g, = torch.autograd.grad(logit, path, create_graph=True)
    return x * g.view(m, *x.shape).mean(0)


def loss_of(kind, net, x, y):
    if kind == "standard":
        return F.cross_entropy(net(x), y)
    if kind == "at":
        xa = pgd(net, x, lambda z: F.cross_entropy(z, y, reduction="sum"), torch.empty_like(x).uniform_(-EPS, EPS))
        return F.cross_entropy(net(xa), y)
    with torch.no_grad():
        net.eval()
        p_nat = F.softmax(net(x), 1)
        net.train()
    kl = lambda z: F.kl_div(F.log_softmax(z, 1), p_nat, reduction="sum")  # noqa: E731
    xa = pgd(net, x, kl, 0.001 * torch.randn_like(x))
    z, za = net(x), net(xa)
    loss = F.cross_entropy(z, y) + BETA * F.kl_div(F.log_softmax(za, 1), F.softmax(z, 1), reduction="batchmean")
    if kind == "trades_igr":
        a, b = ig(net, x, y), ig(net, xa, y)
        loss = loss + (1 - F.cosine_similarity(a.flatten(1), b.flatten(1), eps=1e-8)).mean()
    return loss


def peak_rss():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cmd_train(a):
    torch.manual_seed(0)
    x, y = load_split(a.data, "train")
    total = a.warmup + a.steps
    if len(x) < total * 128:
        sys.exit(f"{a.data}: {len(x)} training images, {total} steps of 128 need {total * 128}")
    perm = torch.tensor(igrc_permutation(len(x), 0, 0))
    net = network(a.weights, True)
    net.drop.p = a.dropout
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    times, losses = [], []
    for i in range(total):
        t0 = time.perf_counter()
        idx = perm[i * 128:(i + 1) * 128]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_of(a.kind, net, xb, yb)
        loss.backward(inputs=params)
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    dt = sum(times[a.warmup:])
    print(json.dumps({"row": a.kind, "value": a.steps * 128 / dt, "step_s": times, "loss": losses,
                      "peak_rss": peak_rss()}))


def cmd_eval(a):
    torch.manual_seed(0)
    x, y = load_split(a.data, "t10k")
    net = network(a.weights, False)
    frozen(net, True)
    total = a.warmup + a.batches
    if len(x) < total * 128:
        sys.exit(f"{a.data}: {len(x)} test images, {total} batches of 128 need {total * 128}")
    times, correct = [], 0
    for b in range(total):
        t0 = time.perf_counter()
        xb, yb = x[b * 128:(b + 1) * 128], y[b * 128:(b + 1) * 128]
        xa = pgd(net, xb, lambda z: F.cross_entropy(z, yb), torch.empty_like(xb).uniform_(-EPS, EPS), steps=20)
        with torch.no_grad():
            c = int((net(xa).argmax(1) == yb).sum())
        times.append(time.perf_counter() - t0)
        if b >= a.warmup:
            correct += c
    print(json.dumps({"row": "eval", "value": sum(times[a.warmup:]) / (a.batches * 128), "batch_s": times,
                      "pgd_accuracy": correct / (a.batches * 128), "peak_rss": peak_rss()}))


def cmd_ifia(a):
    x, y = load_split(a.data, "t10k")
    x, y = x[:a.n], y[:a.n]
    net = ref.load_smallcnn(a.weights, "relu", torch.float32)
    sur = ref.surrogate_of(net)
    res, times = [], []
    t0 = time.perf_counter()
    for s in range(0, a.n, a.batch):
        t1 = time.perf_counter()
        res += ref.ifia_attack(net, x[s:s + a.batch], y[s:s + a.batch], k=100, eps=EPS, alpha=ALPHA,
                               steps=a.steps, m=a.m, m_sur=a.m, select="kendall", sur=sur)
        times.append(time.perf_counter() - t1)
    dt = time.perf_counter() - t0
    s = ref.summarise(res)
    print(json.dumps({"row": "ifia", "value": dt / a.n, "batch_s": times, "attacked": s["attacked"],
                      "topk": s["topk_intersection"], "kendall": s["kendall_tau"], "peak_rss": peak_rss()}))


def cmd_select(a):
    x, y = load_split(a.data, "t10k")
    net = ref.load_smallcnn(a.weights, "relu", torch.float32)
    with torch.no_grad():
        ok = (net(x).argmax(1) == y).nonzero().flatten()[:a.n]
    if len(ok) < a.n:
        sys.exit(f"only {len(ok)} correctly classified test images")
    print(json.dumps({"indices": ok.tolist()}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("kind", choices=("standard", "at", "trades", "trades_igr"))
    t.add_argument("--warmup", type=int, default=2)
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--dropout", type=float, default=0.5, help="0: the equal-work check's network")
    e = sub.add_parser("eval")
    e.add_argument("--warmup", type=int, default=1)
    e.add_argument("--batches", type=int, default=4)
    i = sub.add_parser("ifia")
    i.add_argument("--n", type=int, default=16)
    i.add_argument("--batch", type=int, default=16)
    i.add_argument("--steps", type=int, default=200)
    i.add_argument("--m", type=int, default=10)
    s = sub.add_parser("select")
    s.add_argument("--n", type=int, default=16)
    for q in (t, e, i, s):
        q.add_argument("--data", required=True, help="a directory of MNIST IDX files")
        q.add_argument("--weights", required=True, help="safetensors weights (PyTorch names)")
        q.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    {"train": cmd_train, "eval": cmd_eval, "ifia": cmd_ifia, "select": cmd_select}[a.cmd](a)


if __name__ == "__main__":
    main()
