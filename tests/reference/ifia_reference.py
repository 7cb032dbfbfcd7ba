"""Independent PyTorch reference of the IFIA top-k attribution attack and its metrics.

Written from the published definitions only (the project's paper notes, /work/shared/paper/SPEC.md
section 1 and section 6; Ghorbani et al. 2019, "Interpretation of neural networks is fragile";
Chen et al. 2019, "Robust attribution regularization") and igrc's user documentation
(docs/cli.md, docs/graph-format.md), never from igrc's sources. It exists to check igrc's
numbers, so every choice below names its source, and nothing is tuned to match igrc.

Protocol (SPEC section 6, IFIA top-k), as implemented by `ifia_attack`:
  1. Skip images the ReLU network misclassifies. S0 = saliency of x0; M = top-k pixels of S0.
  2. D(x) = sum_{p in M} S~_p(x) / sum_q S~_q(x), S~ the saliency of a copy of the network with
     every ReLU replaced by softplus (beta 1), m_sur path points (double backprop through IG).
  3. No random start. x <- clip_[0,1](x0 + clip_[-eps,eps](x - alpha*sign(grad_x D) - x0)).
  4. Every iterate x_1..x_steps is a candidate unless the ReLU network's predicted label changed;
     keep the candidate with the lowest Kendall tau-b(S0, S(x)) (or, with select="topk", the
     lowest top-k intersection; ties: the earliest iterate). None: intersection = tau = 1.
  5. Metrics per attacked image, then the mean over attacked images.
x0 itself is not a candidate ("continue from every iterate": the iterates are what the steps
produce). The attack target is the label (= the prediction, misclassified images are skipped).

Integrated gradients (SPEC section 1): zero baseline, path points z_k = (k/m) x for k = 1..m
(alpha = 0 excluded, alpha = 1 included: the right Riemann sum), IG = x * (1/m) sum_k grad z_y(z_k),
z_y the pre-softmax logit of the label. igrc's docs do not restate the rule, they refer to SPEC;
`rule` keeps the alternatives (left, midpoint, trapezoid) for experiments only.
Saliency (SPEC section 1 and 6): A_p = sum over channels |IG_{p,c}|. The evaluation's extra
normalisation S = H*W*A/sum(A) is a positive per-image scale: it changes neither the top-k set nor
Kendall's tau, so the metrics use A directly; the attack's D normalises to sum 1 explicitly.

Precision: float64 by default (a reference should not add its own rounding); dtype=torch.float32
is available to mimic igrc's f32. See tests/reference/README.md for the measured differences.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# safetensors (read and write by hand: 8-byte little-endian header length, JSON header, raw data)

_ST_DTYPES = {
    "F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64,
    "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_, "F16": np.float16, "I16": np.int16,
}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    base = 8 + n
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, d in header.items():
        dt = np.dtype(_ST_DTYPES[d["dtype"]]).newbyteorder("<")
        lo, hi = d["data_offsets"]
        a = np.frombuffer(blob, dtype=dt, count=(hi - lo) // dt.itemsize, offset=base + lo)
        out[name] = a.reshape(d["shape"]).astype(dt.newbyteorder("="), copy=True)
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    header = {}
    chunks = []
    off = 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _ST_NAMES[np.dtype(a.dtype)], "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


# ----------------------------------------------------------------------------------------------
# MNIST (IDX files)

def read_idx(path):
    import gzip
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        blob = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", blob[:4])
    assert zero == 0 and dtype_code == 0x08, "only unsigned-byte IDX files"
    dims = struct.unpack(">" + "I" * ndim, blob[4:4 + 4 * ndim])
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist_test(data_dir, n):
    """First n test images scaled to [0, 1] (byte / 255, as igrc's --data does) and labels."""
    def find(name):
        for p in (os.path.join(data_dir, name), os.path.join(data_dir, name + ".gz")):
            if os.path.exists(p):
                return p
        raise FileNotFoundError(os.path.join(data_dir, name))
    x = read_idx(find("t10k-images-idx3-ubyte"))[:n].astype(np.float32) / np.float32(255.0)
    y = read_idx(find("t10k-labels-idx1-ubyte"))[:n].astype(np.int64)
    return x.reshape(n, 1, 28, 28), y


# ----------------------------------------------------------------------------------------------
# SmallCNN (TRADES' network; SPEC section 4, models/nets/smallcnn.json): 3x3 convs, no padding,
# stride 1; maxpool 2 (stride 2); flatten NCHW; fc (16 w2)-h-h-10; dropout is off (eval mode).
# The published widths are w1 32, w2 64, h 200; the graph file's width1, width2 and hidden
# settings change them, and load_smallcnn takes them from the checkpoint's shapes.

class SmallCNN(nn.Module):
    def __init__(self, act="relu", w1=32, w2=64, hidden=200):
        super().__init__()
        self.act_name = act
        self.widths = (w1, w2, hidden)
        self.conv1 = nn.Conv2d(1, w1, 3)
        self.conv2 = nn.Conv2d(w1, w1, 3)
        self.conv3 = nn.Conv2d(w1, w2, 3)
        self.conv4 = nn.Conv2d(w2, w2, 3)
        self.fc1 = nn.Linear(16 * w2, hidden)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 10)

    def act(self, t):
        if self.act_name == "relu":
            return F.relu(t)
        if self.act_name == "softplus":
            return F.softplus(t, beta=1.0)   # log(1 + exp(t)), beta 1 (SPEC section 6)
        raise ValueError(self.act_name)

    def forward(self, x):
        a = self.act
        h = a(self.conv1(x))
        h = F.max_pool2d(a(self.conv2(h)), 2)
        h = a(self.conv3(h))
        h = F.max_pool2d(a(self.conv4(h)), 2)
        h = torch.flatten(h, 1)
        h = self.drop(a(self.fc1(h)))
        h = a(self.fc2(h))
        return self.fc3(h)


def load_smallcnn(ckpt_path, act="relu", dtype=torch.float64):
    """SmallCNN in eval mode with an igrc checkpoint's weights (tensors optim.* ignored)."""
    tensors, _ = read_safetensors(ckpt_path)
    out = {k: v.shape[0] for k, v in tensors.items() if v.ndim}  # each layer's output width
    net = SmallCNN(act, out.get("conv1.weight", 32), out.get("conv3.weight", 64), out.get("fc1.weight", 200))
    sd = {k: torch.from_numpy(v) for k, v in tensors.items() if not k.startswith("optim.")}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError("checkpoint %s: missing %s, unexpected %s" % (ckpt_path, missing, unexpected))
    net = net.to(dtype).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def surrogate_of(net):
    """A copy of `net` with every ReLU replaced by softplus (beta 1)."""
    s = SmallCNN("softplus", *net.widths).to(next(net.parameters()).dtype)
    s.load_state_dict(net.state_dict())
    s.eval()
    for p in s.parameters():
        p.requires_grad_(False)
    return s


# ----------------------------------------------------------------------------------------------
# Integrated gradients and saliency

def path_coefficients(m, rule="right"):
    """(alphas, weights) of the Riemann rule; IG = x * sum_k w_k grad(alpha_k x).

    right (SPEC section 1): alpha_k = k/m, k = 1..m, w = 1/m. The others are for experiments."""
    k = np.arange(1, m + 1, dtype=np.float64)
    if rule == "right":
        return k / m, np.full(m, 1.0 / m)
    if rule == "left":
        return (k - 1) / m, np.full(m, 1.0 / m)
    if rule == "midpoint":
        return (k - 0.5) / m, np.full(m, 1.0 / m)
    if rule == "trapezoid":  # m + 1 points 0..1
        a = np.arange(0, m + 1, dtype=np.float64) / m
        w = np.full(m + 1, 1.0 / m)
        w[0] = w[-1] = 0.5 / m
        return a, w
    raise ValueError(rule)


def integrated_gradients(net, x, y, m, rule="right", create_graph=False):
    """Signed IG of the label logit from the zero baseline, shape of x.

    With create_graph the result is differentiable w.r.t. x (x must require grad): both the
    explicit factor x and the path points alpha_k * x depend on x."""
    alphas, weights = path_coefficients(m, rule)
    B = x.shape[0]
    a = torch.tensor(alphas, dtype=x.dtype).view(-1, 1, 1, 1, 1)
    w = torch.tensor(weights, dtype=x.dtype).view(-1, 1, 1, 1, 1)
    if create_graph:
        path = (a * x.unsqueeze(0)).reshape(-1, *x.shape[1:])
    else:
        path = (a * x.detach().unsqueeze(0)).reshape(-1, *x.shape[1:]).requires_grad_(True)
    logits = net(path)
    yy = y.repeat(len(alphas))
    target = logits.gather(1, yy.view(-1, 1)).sum()
    (g,) = torch.autograd.grad(target, path, create_graph=create_graph)
    g = g.view(len(alphas), B, *x.shape[1:])
    avg = (w * g).sum(0)
    return x * avg if create_graph else x.detach() * avg


def saliency(ig, signed=False):
    """A = sum over channels of |IG|, flattened to [B, H*W]. signed=True gives sum_c IG_c instead:
    not the protocol's saliency, an experiment (it reproduces igrc before commit c9146f3)."""
    return (ig.sum(1) if signed else ig.abs().sum(1)).flatten(1)


# ----------------------------------------------------------------------------------------------
# Metrics

def topk_indices(s, k):
    """Indices of the k largest values per row; ties broken towards the lower pixel index
    (stable sort). s: [B, n] tensor or array."""
    s = torch.as_tensor(s)
    order = torch.sort(-s, dim=1, stable=True).indices
    return order[:, :k]


def topk_mask(s, k):
    s = torch.as_tensor(s)
    m = torch.zeros_like(s)
    m.scatter_(1, topk_indices(s, k), 1.0)
    return m


def topk_intersection(s0, s1, k):
    """|topk(s0) & topk(s1)| / k per row, numpy array [B]."""
    m0 = topk_mask(s0, k) > 0
    m1 = topk_mask(s1, k) > 0
    return ((m0 & m1).sum(1).double() / k).numpy()


def _dense_ranks(row):
    return np.unique(row, return_inverse=True)[1].astype(np.int64)


def _strict_inversions(v):
    """Number of pairs i < j with v[i] > v[j], per row of the int array v [B, n]; bottom-up merge
    counting, vectorised over rows and blocks (O(n log^2 n))."""
    B, n = v.shape
    M = int(v.max()) + 2 if v.size else 2
    pos = np.arange(n)
    total = np.zeros(B, dtype=np.int64)
    s = 1
    while s < n:
        grp = pos // (2 * s)
        left = (pos % (2 * s)) < s
        g = (np.arange(B)[:, None] * (n // (2 * s) + 1) + grp[None, :])   # group id per element
        keys_left = np.sort((g[:, left] * M + v[:, left]).ravel())
        gr = g[:, ~left]
        vr = v[:, ~left]
        hi = np.searchsorted(keys_left, (gr * M + M - 1).ravel(), side="left")
        lo = np.searchsorted(keys_left, (gr * M + vr + 1).ravel(), side="left")
        total += (hi - lo).reshape(B, -1).sum(1)
        s *= 2
    return total


def _tied_pairs(counts):
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau_b(a, b):
    """Exact Kendall tau-b with ties, per row: (P - Q) / sqrt((P + Q + Tx)(P + Q + Ty)),
    Tx (Ty) the pairs tied in a (b) only; pairs tied in both count in neither.
    With N = n(n-1)/2, n1 (n2) the pairs tied in a (b), n3 those tied in both:
    P + Q = N - n1 - n2 + n3, so P + Q + Tx = N - n2 and P + Q + Ty = N - n1.
    Q (discordant) = strict inversions of b's ranks after sorting by (a, b) (Knight 1966).
    a, b: [B, n] (or [n]) tensors or arrays; returns numpy float64 [B]."""
    a = np.asarray(torch.as_tensor(a).detach().double().cpu().numpy(), dtype=np.float64)
    b = np.asarray(torch.as_tensor(b).detach().double().cpu().numpy(), dtype=np.float64)
    if a.ndim == 1:
        a, b = a[None], b[None]
    B, n = a.shape
    N = n * (n - 1) // 2
    ra = np.stack([_dense_ranks(r) for r in a])
    rb = np.stack([_dense_ranks(r) for r in b])
    seqs = np.empty_like(rb)
    n1 = np.empty(B, dtype=np.int64)
    n2 = np.empty(B, dtype=np.int64)
    n3 = np.empty(B, dtype=np.int64)
    for i in range(B):
        order = np.lexsort((rb[i], ra[i]))
        seqs[i] = rb[i][order]
        n1[i] = _tied_pairs(np.bincount(ra[i]))
        n2[i] = _tied_pairs(np.bincount(rb[i]))
        n3[i] = _tied_pairs(np.unique(ra[i] * (n + 1) + rb[i], return_counts=True)[1])
    Q = _strict_inversions(seqs)
    P = N - n1 - n2 + n3 - Q
    den = np.sqrt((N - n1).astype(np.float64) * (N - n2).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (P - Q) / den


def kendall_tau_b_pairs(a, b):
    """The same, by enumerating every pair (O(n^2)); a check of kendall_tau_b."""
    a = np.asarray(torch.as_tensor(a).detach().double().cpu().numpy(), dtype=np.float64)
    b = np.asarray(torch.as_tensor(b).detach().double().cpu().numpy(), dtype=np.float64)
    if a.ndim == 1:
        a, b = a[None], b[None]
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        sa = np.sign(a[i][:, None] - a[i][None, :])
        sb = np.sign(b[i][:, None] - b[i][None, :])
        prod = sa * sb
        iu = np.triu_indices(a.shape[1], 1)
        sa, sb, prod = sa[iu], sb[iu], prod[iu]
        P = np.count_nonzero(prod > 0)
        Q = np.count_nonzero(prod < 0)
        tx = np.count_nonzero((sa == 0) & (sb != 0))
        ty = np.count_nonzero((sa != 0) & (sb == 0))
        den = math.sqrt(float(P + Q + tx) * float(P + Q + ty))
        out[i] = (P - Q) / den if den > 0 else float("nan")
    return out


# ----------------------------------------------------------------------------------------------
# The attack

def dissimilarity(sur, x, y, mask, m, rule="right", normalise=True, signed=False):
    """D(x) per row = sum(mask * S~) / sum(S~) (SPEC section 6), S~ the surrogate's saliency.
    normalise=False gives sum(mask * S~) (the pre-correction variant, for experiments only)."""
    st = saliency(integrated_gradients(sur, x, y, m, rule, create_graph=True), signed)
    num = (mask.flatten(1) * st).sum(1)
    return num / st.sum(1) if normalise else num


def dissimilarity_grad(sur, x, y, mask, m, rule="right", normalise=True, signed=False):
    x = x.detach().clone().requires_grad_(True)
    d = dissimilarity(sur, x, y, mask, m, rule, normalise, signed)
    (g,) = torch.autograd.grad(d.sum(), x)
    return d.detach(), g


def predict(net, x):
    with torch.no_grad():
        return net(x).argmax(1)


def ifia_attack(net, x0, y, k=100, eps=0.3, alpha=0.01, steps=200, m=100, m_sur=100,
                select="kendall", rule="right", normalise=True, sur=None, trace=None,
                include_x0=False, signed=False):
    """IFIA top-k attack on a batch (SPEC section 6). x0: [B,1,28,28] in net's dtype, y: [B] long.

    Returns a list of per-image dicts {index (row), label, attacked, topk, kendall_tau,
    label_preserving_iterate, best_step}. `trace`, when a list, receives per-iteration dicts.
    include_x0 (off by default; the protocol's candidates are the iterates), normalise=False and
    signed=True are experiments, not the protocol."""
    if sur is None:
        sur = surrogate_of(net)
    x0 = x0.detach()
    pred0 = predict(net, x0)
    keep = (pred0 == y)
    rows = torch.nonzero(keep).flatten()
    results = [{"index": i, "label": int(y[i]), "attacked": bool(keep[i])} for i in range(len(y))]
    if len(rows) == 0:
        return results
    xa0, ya = x0[rows], y[rows]
    s0 = saliency(integrated_gradients(net, xa0, ya, m, rule), signed)
    mask = topk_mask(s0, k).view_as(xa0)
    n = len(rows)
    best_tau = np.full(n, np.inf)
    best_topk = np.ones(n)
    best_score = np.full(n, np.inf)
    best_step = np.full(n, -1)
    if include_x0:
        best_tau[:] = 1.0
        best_score[:] = 1.0
        best_step[:] = 0
    x = xa0.clone()
    for t in range(1, steps + 1):
        d, g = dissimilarity_grad(sur, x, ya, mask, m_sur, rule, normalise, signed)
        x = torch.clamp(xa0 + torch.clamp(x - alpha * torch.sign(g) - xa0, -eps, eps), 0.0, 1.0)
        ok = (predict(net, x) == ya).numpy()
        s = saliency(integrated_gradients(net, x, ya, m, rule), signed)
        tau = kendall_tau_b(s0, s)
        top = topk_intersection(s0, s, k)
        score = tau if select == "kendall" else top
        better = ok & (score < best_score)
        best_score[better] = score[better]
        best_tau[better] = tau[better]
        best_topk[better] = top[better]
        best_step[better] = t
        if trace is not None:
            trace.append({"step": t, "D_prev": d.numpy().tolist(), "ok": ok.tolist(),
                          "tau": tau.tolist(), "topk": top.tolist(),
                          "linf": (x - xa0).abs().flatten(1).max(1).values.numpy().tolist()})
    for j, i in enumerate(rows.tolist()):
        r = results[i]
        if best_step[j] < 0:
            r.update(topk=1.0, kendall_tau=1.0, label_preserving_iterate=False, best_step=-1)
        else:
            r.update(topk=float(best_topk[j]), kendall_tau=float(best_tau[j]),
                     label_preserving_iterate=True, best_step=int(best_step[j]))
    return results


def summarise(results):
    att = [r for r in results if r["attacked"]]
    if not att:
        return {"attacked": 0, "topk_intersection": float("nan"), "kendall_tau": float("nan")}
    return {"attacked": len(att),
            "topk_intersection": float(np.mean([r["topk"] for r in att])),
            "kendall_tau": float(np.mean([r["kendall_tau"] for r in att]))}


# ----------------------------------------------------------------------------------------------
# Command line: python3 ifia_reference.py CKPT --data DIR --n 20 ... --json OUT

def main(argv=None):
    import argparse
    import time
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ckpt")
    p.add_argument("--data", required=True, help="directory of MNIST IDX files")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--m", type=int, default=100, help="path points of the saliency")
    p.add_argument("--m-sur", type=int, default=100, help="path points of the surrogate")
    p.add_argument("--select", choices=["kendall", "topk"], default="kendall")
    p.add_argument("--rule", choices=["right", "left", "midpoint", "trapezoid"], default="right")
    p.add_argument("--unnormalised", action="store_true", help="experiment: D without the 1/sum")
    p.add_argument("--signed", action="store_true", help="experiment: signed IG as the saliency")
    p.add_argument("--include-x0", action="store_true", help="experiment: x0 is a candidate")
    p.add_argument("--f32", action="store_true", help="compute in float32 instead of float64")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    p.add_argument("--trace")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    dtype = torch.float32 if a.f32 else torch.float64
    net = load_smallcnn(a.ckpt, "relu", dtype)
    x, y = load_mnist_test(a.data, a.n)
    trace = [] if a.trace else None
    t0 = time.time()
    res = ifia_attack(net, torch.from_numpy(x).to(dtype), torch.from_numpy(y), a.k, a.eps,
                      a.alpha, a.steps, a.m, a.m_sur, a.select, a.rule, not a.unnormalised,
                      trace=trace, include_x0=a.include_x0, signed=a.signed)
    summ = summarise(res)
    summ["seconds"] = time.time() - t0
    print(json.dumps(summ))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summ, "images": res, "settings": vars(a)}, f, indent=1)
    if a.trace:
        with open(a.trace, "w") as f:
            json.dump(trace, f)


if __name__ == "__main__":
    main()
