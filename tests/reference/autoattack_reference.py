"""Independent PyTorch/numpy reference of AutoAttack's four L-inf attacks: APGD-CE, APGD-T
(targeted DLR), FAB-T (targeted) and Square.

Written from the papers, not from igrc's attack code (runtime/app/aa_*.c):
  APGD   Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an
         ensemble of diverse parameter-free attacks", section 3 and Algorithm 1; the targeted
         DLR loss of its section 4.
  FAB    Croce & Hein, ICML 2020, "Minimally distorted adversarial examples with a fast adaptive
         boundary attack", section 3 (the step, the biased mix with x_orig, the backward step).
  Square Andriushchenko, Croce, Flammarion & Hein, ECCV 2020, "Square Attack: a query-efficient
         black-box adversarial attack via random search", Algorithm 1 and 2 (L-inf), section 4.1
         (the schedule of p).
AutoAttack's own code (github fra31/auto-attack) was read to settle readings the papers leave
open; every such choice is named below. igrc's C sources were read only for their random-number
conventions (which Philox draws feed which choice), so that the reference can reproduce the same
starting points and the same random choices: base/philox.h (the mapping), aa_common.c
(aa_random_start), aa_apgd.c and aa_fab.c (stream numbers), aa_square.c (draw(), stripes(), the
number of sign re-draws), app_eval.c (the key's step is the batch index, rows within the
compiled batch). These are the functions `random_start`, `square_*_draws` and the STREAM_*
constants below.

Conventions shared by the attacks (igrc's docs/cli.md, "AutoAttack"):
  - an image is attacked when the clean network classifies it correctly; it counts as broken
    once any point the attack evaluates lies in the eps-ball (and [0,1]) and is misclassified
    (argmax of the logits, the first maximum on ties);
  - images are processed in compiled batches of B rows; image i is row i % B of batch i // B,
    and the random key of everything drawn for it is (seed, i // B).
Precision: the network runs in float32 (PyTorch, like igrc's f32 kernels); losses, their
derivatives in the logits, FAB's projections and Square's margins are float64 on the host.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# Philox 4x32-10 (Salmon et al., SC'11; Random123), with igrc's mapping (base/philox.h):
#   element `index` of stream `stream` under key (seed, step):
#   ctr = (index & 0xffffffff, index >> 32, stream, 0), key = (seed, step),
#   uniform = ((out0 >> 9) + 0.5) * 2^-23.

_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
_M0, _M1 = _U64(0xD2511F53), _U64(0xCD9E8D57)
_W0, _W1 = _U64(0x9E3779B9), _U64(0xBB67AE85)

# Random123's known-answer tests for philox4x32_10 (kat_vectors): (ctr, key, out).
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff, 0xffffffff), (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


def philox4x32_10(ctr, key):
    """ctr: four arrays (or ints) of 32-bit values, broadcast together; key: two ints.
    Returns the four output words as uint64 arrays holding 32-bit values."""
    x0, x1, x2, x3 = (np.asarray(c, dtype=_U64) & _MASK32 for c in ctr)
    x0, x1, x2, x3 = np.broadcast_arrays(x0, x1, x2, x3)
    k0, k1 = _U64(key[0]) & _MASK32, _U64(key[1]) & _MASK32
    for r in range(10):
        if r:
            k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
        p0 = _M0 * x0           # < 2^64: a 32x32 -> 64-bit product
        p1 = _M1 * x2
        x0, x1, x2, x3 = (p1 >> _U64(32)) ^ x1 ^ k0, p1 & _MASK32, (p0 >> _U64(32)) ^ x3 ^ k1, p0 & _MASK32
    return x0, x1, x2, x3


def philox_uniform(seed, step, stream, index):
    """Uniforms in (0,1) (float64) for an array of element indices."""
    index = np.asarray(index, dtype=_U64)
    out0 = philox4x32_10((index & _MASK32, index >> _U64(32), _U64(stream), _U64(0)), (seed, step))[0]
    return ((out0 >> _U64(9)).astype(np.float64) + 0.5) * (1.0 / 8388608.0)


def philox_selfcheck():
    """The Random123 known answers; returns a list of mismatches (empty: all equal)."""
    bad = []
    for ctr, key, want in PHILOX_KAT:
        got = tuple(int(w) for w in philox4x32_10(ctr, key))
        if got != want:
            bad.append((ctr, key, got, want))
    return bad


# Stream numbers (igrc's aa_apgd.c, aa_fab.c, aa_square.c): restart k of target t (t = 0 for
# APGD-CE, which shares APGD-T's first target's starts) uses STREAM + 0x100 k + 0x10000 (t + 1).
STREAM_APGD = 0x61706764   # "apgd"
STREAM_FAB = 0x66616200    # "fab"
STREAM_SQUARE = 0x73717561  # "squa": window positions and signs; + 1: the initial stripes
SQUARE_TRIES = 10           # sign re-draws while a window would not change the image


def attack_stream(base, restart, target):
    return (base + 0x100 * restart + 0x10000 * (target + 1)) & 0xFFFFFFFF


def random_start(x0, eps, scale, seed, batch, row, stream):
    """x0 + scale * eps * t / max|t|, t uniform in [-1,1]^n, clipped to [0,1] (the APGD paper's
    start, and FAB's restarts with scale 1/2). x0: one image (float32, any shape). t_i from
    element row * n + i of (seed, batch, stream); t is rounded to float32, the scaled
    perturbation is formed in float64 and rounded to float32 before the float32 addition."""
    n = x0.size
    u = philox_uniform(seed, batch, stream, np.arange(n, dtype=np.uint64) + _U64(row * n))
    t = (2.0 * u - 1.0).astype(np.float32).astype(np.float64)
    m = np.abs(t).max()
    d = (scale * eps * t / (m if m > 0 else 1.0)).astype(np.float32).reshape(x0.shape)
    return np.clip(x0 + d, np.float32(0), np.float32(1)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# The network, float32, through three calls: logits, the cross-entropy's input gradient, and a
# vector-Jacobian product with a given derivative in the logits.

class Net:
    def __init__(self, module):
        self.m = module.float().eval()
        for p in self.m.parameters():
            p.requires_grad_(False)
        self.calls = 0
        self.fast = None

    def logits(self, x):
        self.calls += 1
        xt = torch.from_numpy(np.ascontiguousarray(x))
        with torch.no_grad():
            if self.fast is None:
                self.fast = False
                try:   # a frozen, fused copy for the forward-only calls (twice as fast on CPU)
                    f = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(self.m, xt)))
                    if all(torch.allclose(f(xt[:k]), self.m(xt[:k]), rtol=1e-4, atol=1e-5)
                           for k in (len(xt), max(1, len(xt) // 3))):
                        self.fast = f
                except Exception:   # noqa: BLE001 -- any failure: the eager module
                    pass
            f = self.fast or self.m
            return f(xt).double().numpy()

    def grad_ce(self, x, y):
        """(logits float64, d sum_i CE_i / dx float32)."""
        self.calls += 1
        xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
        z = self.m(xt)
        F.cross_entropy(z, torch.from_numpy(y), reduction="sum").backward()
        return z.detach().double().numpy(), xt.grad.numpy()

    def vjp(self, x, dlogits_fn):
        """Logits z at x, then g = (dz/dx)^T w with w = dlogits_fn(z) (float64, rounded to
        float32 for the backward pass). Returns (z float64, w, g float32)."""
        self.calls += 1
        xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
        z = self.m(xt)
        zd = z.detach().double().numpy()
        w = dlogits_fn(zd)
        z.backward(torch.from_numpy(w.astype(np.float32)))
        return zd, w, xt.grad.numpy()


def predicted(z):
    return np.argmax(z, axis=1)   # the first maximum on ties


def ranked_class(z, rank):
    """Per row, the class with the rank-th largest logit (rank 1: the largest); ties rank the
    lower class index first."""
    k = z.shape[1]
    order = np.lexsort((np.broadcast_to(np.arange(k), z.shape), -z), axis=1)
    return order[:, rank - 1]


# ----------------------------------------------------------------------------------------------
# Losses on the host (float64) and their derivatives in the logits.

def ce_loss(z, y):
    m = z.max(1)
    return m + np.log(np.exp(z - m[:, None]).sum(1)) - z[np.arange(len(y)), y]


def dlr_targeted(z, y, t):
    """The targeted DLR loss (APGD paper, section 4): -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2),
    pi sorting the logits in decreasing order (+1e-12 in the denominator, as AutoAttack's code
    has it), and its derivative in z."""
    n = len(y)
    u = np.arange(n)
    srt = np.argsort(-z, axis=1, kind="stable")
    p1, p3, p4 = srt[:, 0], srt[:, 2], srt[:, 3]
    num = z[u, y] - z[u, t]
    den = z[u, p1] - 0.5 * (z[u, p3] + z[u, p4]) + 1e-12
    f = -num / den
    w = np.zeros_like(z)
    np.add.at(w, (u, y), -1.0 / den)
    np.add.at(w, (u, t), 1.0 / den)
    np.add.at(w, (u, p1), num / den ** 2)
    np.add.at(w, (u, p3), -0.5 * num / den ** 2)
    np.add.at(w, (u, p4), -0.5 * num / den ** 2)
    return f, w


def margin(z, y):
    """z_y - max_{j != y} z_j (Square's loss)."""
    u = np.arange(len(y))
    o = z.copy()
    o[u, y] = -np.inf
    return z[u, y] - o.max(1)


# ----------------------------------------------------------------------------------------------
# APGD (APGD paper, Algorithm 1), L-inf.

def apgd_checkpoints(n_iter):
    """W = {w_j = ceil(p_j N)}: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03,
    0.06) while p_j <= 1 (section 3.2), in exact arithmetic (hundredths), duplicates dropped.
    N = 20: 5, 9, 12, 14, 16, 18, 19, 20. (AutoAttack's code instead uses intervals of
    floor(0.22 N) steps, shortened by max(floor(0.03 N), 1) down to max(floor(0.06 N), 1): for
    N = 20 checkpoints 4, 7, 9, 10, 11, ...; igrc's docs give the paper's rule.)"""
    p = [0, 22]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - 3, 6)
        if nxt > 100:
            break
        p.append(nxt)
    w = sorted({(pj * n_iter + 99) // 100 for pj in p})
    return [v for v in w if 0 < v <= n_iter]


def apgd_run(net, x0, y, xstart, eps, n_iter, target=None, rho=0.75, variant=None):
    """One APGD run on the rows of x0 (float32 [n,C,H,W]) from xstart; loss CE (target None) or
    the targeted DLR loss towards `target`. Returns (broken [n] bool, trace dict).

    Algorithm 1 with the L-inf step: z = P(x + eta sign(grad f(x))); x_next = P(x + alpha (z - x)
    + (1 - alpha)(x - x_prev)), alpha = 0.75 (the first step: x_1 = z); P: the projection on the
    eps-ball around x0 intersected with [0,1]; eta = 2 eps to start; x_max, f_max the best point
    (strict improvement). At each checkpoint w_j, once x^(w_j) is computed, eta is halved when
      condition 1: #{i in [w_{j-1}, w_j - 1] : f(x^(i+1)) > f(x^(i))} < rho (w_j - w_{j-1}), or
      condition 2: eta^(w_{j-1}) == eta^(w_j) and f_max^(w_{j-1}) == f_max^(w_j)
    (eta^(w_0) = 2 eps, f_max^(w_0) = f(x^(0))); a halving restarts from x_max: x^(w_j) <- x_max
    with its gradient, x^(w_j - 1) stays the momentum's previous point, and the next interval's
    first comparison is against f(x_max). N_iter = n_iter steps: n_iter + 1 evaluations.

    Reading the papers leave open, settled here: the checkpoint test happens once x^(w_j) is
    known (Algorithm 1's loop index is k = w_j - 1 there), as AutoAttack's code does.
    `variant` (experiments): a set of strings, "cond2_first_off" (no condition 2 at w_1, as
    AutoAttack's code), "compare_replaced" (after a restart, compare with the replaced
    iterate's f, as AutoAttack's code), "le" (condition 1 with <=, as AutoAttack's code),
    "late_check" (the test at w_j once x^(w_j + 1) is computed, Algorithm 1's "if k in W" read
    literally, the halving then restarting x^(w_j + 1)); "no_momentum",
    "no_halving" (deliberately wrong, to measure what the comparison can detect)."""
    variant = variant or set()
    n = len(x0)
    e32 = np.float32(eps)
    lo = np.maximum(x0 - e32, np.float32(0))
    hi = np.minimum(x0 + e32, np.float32(1))

    def evaluate(x, idx):
        """Logits, loss and its input gradient at x for the rows idx."""
        if target is None:
            z, g = net.grad_ce(x, y[idx])
            return z, ce_loss(z, y[idx]), g
        holder = {}

        def w_of(z):
            f, w = dlr_targeted(z, y[idx], target[idx])
            holder["f"] = f
            return w
        z, _, g = net.vjp(x, w_of)
        return z, holder["f"], g

    def proj(v, idx):
        return np.minimum(np.maximum(v, lo[idx]), hi[idx]).astype(np.float32)

    W = set(apgd_checkpoints(n_iter))
    every = np.arange(n)
    x = xstart.astype(np.float32).copy()
    z, f, g = evaluate(x, every)
    broken = predicted(z) != y
    first_broken = np.where(broken, 0, -1)
    f_hist = [f.copy()]                # f of the iterates (after a restart: f of the replacement)
    fmax, xmax, gmax = f.copy(), x.copy(), g.copy()
    eta = np.full(n, 2.0 * eps)
    eta_last, fmax_last = eta.copy(), fmax.copy()
    last_w, first_check = 0, True
    x_prev = x.copy()
    halvings = np.zeros(n, int)
    for k in range(n_iter):               # computes x^(k+1) for the rows not yet broken
        a = np.nonzero(~broken)[0]
        if len(a) == 0:
            break
        xa = x[a]
        s = np.sign(g[a]).astype(np.float32)
        za = proj(xa + (eta[a, None, None, None] * s).astype(np.float32), a)
        if k == 0 or "no_momentum" in variant:
            xn = za
        else:
            xd = xa.astype(np.float64)
            xn = proj(xd + 0.75 * (za - xd) + 0.25 * (xd - x_prev[a]), a)
        x_prev[a] = xa
        x[a] = xn
        za_, fa, ga = evaluate(xn, a)
        g[a] = ga
        f = f_hist[-1].copy()
        f[a] = fa
        newly = np.zeros(n, bool)
        newly[a] = predicted(za_) != y[a]
        first_broken[newly] = k + 1
        broken |= newly
        f_hist.append(f)
        imp = np.zeros(n, bool)
        imp[a] = fa > fmax[a]
        fmax[imp], xmax[imp], gmax[imp] = f[imp], x[imp], g[imp]
        wj = k if "late_check" in variant else k + 1
        if wj in W and wj > 0:
            inc = np.zeros(n, int)
            for i in range(last_w, wj):
                inc += f_hist[i + 1] > f_hist[i]
            if "le" in variant:
                cond1 = inc <= rho * (wj - last_w)
            else:
                cond1 = inc < rho * (wj - last_w)
            cond2 = (eta == eta_last) & (fmax == fmax_last)
            if first_check and "cond2_first_off" in variant:
                cond2[:] = False
            halve = cond1 | cond2
            if "no_halving" in variant:
                halve[:] = False
            eta_last, fmax_last = eta.copy(), fmax.copy()
            eta[halve] /= 2.0
            halvings += halve
            x[halve], g[halve] = xmax[halve], gmax[halve]
            if "compare_replaced" not in variant:
                f_hist[k + 1] = np.where(halve, fmax, f_hist[k + 1])
            last_w, first_check = wj, False
    return broken, {"first_broken": first_broken, "fmax": fmax, "halvings": halvings}


# ----------------------------------------------------------------------------------------------
# FAB-T (FAB paper, section 3), L-inf.

def project_linf_box(p, w, c):
    """Per row: d minimising ||d||_inf subject to w . d = c and 0 <= p + d <= 1 (the projection
    of p on the hyperplane w . u = w . p + c intersected with the box, FAB's proj_inf with box
    constraints). Where the box cannot reach the hyperplane, d goes to the box's corner that gets
    closest (d_i = room_i in the direction that moves w . d towards c). float64. p, w: [n, d];
    c: [n]. Exact: the largest change of w . d with ||d||_inf <= lam is the concave
    piecewise-linear g(lam) = sum_i |w_i| min(lam, room_i); lam solves g(lam) = |c|."""
    p = p.astype(np.float64)
    w = w.astype(np.float64)
    n, dim = p.shape
    s = np.sign(c)[:, None]
    direc = np.sign(w) * s                  # +1: the pixel moves up
    room = np.where(direc > 0, 1.0 - p, p)
    room = np.where(direc == 0, 0.0, np.maximum(room, 0.0))
    a = np.abs(w) * (direc != 0)
    need = np.abs(c)
    order = np.argsort(room, axis=1, kind="stable")
    rs = np.take_along_axis(room, order, 1)
    as_ = np.take_along_axis(a, order, 1)
    cum_ar = np.cumsum(as_ * rs, axis=1)            # sum_{l <= k} a_l r_l
    tail_a = as_[:, ::-1].cumsum(1)[:, ::-1]        # sum_{l >= k} a_l
    # g(r_k) = sum_{l <= k} a_l r_l + r_k sum_{l > k} a_l
    g_at = cum_ar + rs * (tail_a - as_)
    d = np.zeros_like(p)
    for i in range(n):
        if need[i] == 0:
            continue
        if g_at[i, -1] <= need[i]:          # unreachable (or exactly at the corner)
            d[i] = direc[i] * room[i]
            continue
        k = int(np.searchsorted(g_at[i], need[i], side="left"))   # first k with g(r_k) >= need
        below = cum_ar[i, k - 1] if k > 0 else 0.0
        lam = (need[i] - below) / tail_a[i, k]
        d[i] = direc[i] * np.minimum(lam, room[i])
    return d


def fab_run(net, x0, y, target, xstart, eps, n_iter, alpha_max=0.1, eta=1.05, beta=0.9,
            check_stepped_back=True):
    """One FAB-T run: the boundary z_t - z_y = 0 linearised at the iterate x (w = grad(z_t - z_y),
    f = z_t - z_y); d1 = the minimal L-inf step from x onto it within [0,1], d2 = the same from
    x_orig; alpha = min(||d1|| / (||d1|| + ||d2||), alpha_max) (norms at least 1e-8, as in
    AutoAttack's code); x <- clip_[0,1]((1 - alpha)(x + eta d1) + alpha (x_orig + eta d2)); an
    iterate the network misclassifies is an adversarial example of norm ||x - x_orig||_inf (the
    image is broken when that is <= eps) and is moved back to x_orig + beta (x - x_orig).
    n_iter steps. check_stepped_back: the point after the backward step is evaluated too (the
    next gradient), so a misclassified one within eps counts (igrc's rule: any evaluated point)."""
    n = len(x0)
    shape = x0.shape
    x0f = x0.reshape(n, -1).astype(np.float64)

    def ev(x, idx):
        """Logits and grad(z_t - z_y) at x for the rows idx."""
        def dl(z):
            w = np.zeros_like(z)
            w[np.arange(len(idx)), target[idx]] += 1.0
            w[np.arange(len(idx)), y[idx]] -= 1.0
            return w
        z, _, g = net.vjp(x, dl)
        return z, g.reshape(len(x), -1)

    x = xstart.astype(np.float32).copy()
    z, g = ev(x, np.arange(n))
    broken = np.zeros(n, bool)
    best = np.full(n, np.inf)
    first_broken = np.full(n, -1)
    adversarial_at = [[] for _ in range(n)]   # (iteration, within eps) where it was misclassified
    for it in range(n_iter + 1):
        a = np.nonzero(~broken)[0]          # only rows not yet broken are checked and stepped
        if len(a) == 0:
            break
        adv = a[predicted(z[a]) != y[a]]
        if len(adv):
            xf = x[adv].reshape(len(adv), -1).astype(np.float64)
            nrm = np.abs(xf - x0f[adv]).max(1)
            for i, v in zip(adv, nrm):
                adversarial_at[i].append((it, bool(v <= eps)))
            hit = adv[nrm <= eps]
            first_broken[hit] = it
            broken[hit] = True
            best[adv] = np.minimum(best[adv], nrm)
            xb = (x0f[adv] + beta * (xf - x0f[adv])).astype(np.float32).reshape((len(adv),) + shape[1:])
            x[adv] = xb
            z2, g2 = ev(xb, adv)
            z[adv], g[adv] = z2, g2
            if check_stepped_back:
                nrm2 = np.abs(xb.reshape(len(adv), -1).astype(np.float64) - x0f[adv]).max(1)
                hit2 = adv[(predicted(z2) != y[adv]) & (nrm2 <= eps) & ~broken[adv]]
                first_broken[hit2] = it
                broken[hit2] = True
        if it == n_iter:
            break
        a = np.nonzero(~broken)[0]
        if len(a) == 0:
            break
        xf = x[a].reshape(len(a), -1).astype(np.float64)
        gf = g[a].astype(np.float64)
        f = z[a, target[a]] - z[a, y[a]]
        d1 = project_linf_box(xf, gf, -f)
        d2 = project_linf_box(x0f[a], gf, -f - (gf * (x0f[a] - xf)).sum(1))
        a1 = np.maximum(np.abs(d1).max(1), 1e-8)
        a2 = np.maximum(np.abs(d2).max(1), 1e-8)
        al = np.minimum(a1 / (a1 + a2), alpha_max)[:, None]
        xn = np.clip((1 - al) * (xf + eta * d1) + al * (x0f[a] + eta * d2), 0.0, 1.0)
        x[a] = xn.astype(np.float32).reshape((len(a),) + shape[1:])
        z[a], g[a] = ev(x[a], a)
    return broken, {"first_broken": first_broken, "best": best, "adversarial_at": adversarial_at}


# ----------------------------------------------------------------------------------------------
# Square (Square Attack paper, Algorithm 1 and the L-inf sampling of Algorithm 2).

SQUARE_P_INIT = 0.8   # the paper's MNIST value; AutoAttack uses it for every data set
SQUARE_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_fraction(i, n_queries):
    """p at iteration i (1-based; the initial stripes are query 0): p_init halved at each of
    SQUARE_HALVINGS the iteration has passed, on the paper's 10,000-iteration scale
    (i' = floor(10000 i / N), halved when i' > threshold; AutoAttack rescales the same way).
    AutoAttack's code numbers its first window 0 (p_selection(0)) and runs N windows after the
    stripes (N + 1 queries); here, as in igrc's docs, the first window is iteration 1 and N
    counts the stripes, so AutoAttack's schedule runs one window ahead of this one."""
    it = (i * 10000) // n_queries
    return SQUARE_P_INIT / 2 ** sum(it > t for t in SQUARE_HALVINGS)


def square_side(p, n_features, c, h):
    s = int(math.floor(math.sqrt(p * n_features / c) + 0.5))
    return min(max(s, 1), h - 1)


def square_stripe_signs(seed, batch, row, c, w):
    """The initial vertical stripes' signs, [c, w] (stream STREAM_SQUARE + 1, element
    (row * c + ch) * w + j; u < 0.5: -1)."""
    idx = (np.arange(c * w, dtype=np.uint64) + _U64(row * c * w))
    u = philox_uniform(seed, batch, STREAM_SQUARE + 1, idx).reshape(c, w)
    return np.where(u < 0.5, -1.0, 1.0)


def square_draws(seed, batches, q, rows, B, c):
    """Query q's draws for images at (batches, rows) [m] (stream STREAM_SQUARE, element
    ((q B + row) stride + slot), stride 2 + SQUARE_TRIES c): slot 0 the window's top, 1 its left,
    2 + t c + ch the sign of channel ch at try t. Returns [m, stride] float64."""
    stride = 2 + SQUARE_TRIES * c
    out = np.empty((len(rows), stride))
    for b in np.unique(batches):
        sel = np.nonzero(batches == b)[0]
        base = (np.asarray(rows[sel], dtype=np.uint64) + _U64(q * B)) * _U64(stride)
        idx = base[:, None] + np.arange(stride, dtype=np.uint64)[None, :]
        out[sel] = philox_uniform(seed, int(b), STREAM_SQUARE, idx)
    return out


def square_run(net, x0, y, rows, batches, B, seed, eps, n_queries):
    """Square L-inf on images x0 [n,C,H,W] float32 (rows/batches: their place in the compiled
    batches). Start: vertical stripes, each column of each channel x0 +- eps (clipped); then per
    iteration one window of side h = round(sqrt(p n / C)) (1 <= h <= H - 1) at a uniform
    position among all H - h + 1 rows and W - h + 1 columns where it fits (the paper; AutoAttack's
    code draws randint(0, H - h), which never places a window on the last row or column), every
    pixel of channel ch set to x0 +- eps (sign uniform per channel), clipped to
    [0,1]; the proposal is kept when the margin loss strictly drops. A window that would leave the
    image unchanged draws its signs again (up to SQUARE_TRIES times; igrc's convention for the
    draws). n_queries calls in all: the stripes and n_queries - 1 windows; an image stops once
    broken."""
    n, c, h, w = x0.shape
    nf = c * h * w
    e32 = np.float32(eps)
    xbest = np.empty_like(x0)
    for i in range(n):
        sg = square_stripe_signs(seed, batches[i], rows[i], c, w).astype(np.float32)
        xbest[i] = np.clip(x0[i] + sg[:, None, :] * e32, np.float32(0), np.float32(1))
    z = net.logits(xbest)
    broken = predicted(z) != y
    first_broken = np.where(broken, 0, -1)
    fbest = margin(z, y)
    accepted = np.zeros(n, int)
    min_gap = np.full(n, np.inf)     # the closest margin comparison (float-sensitivity)
    for q in range(1, n_queries):
        act = np.nonzero(~broken)[0]
        if len(act) == 0:
            break
        p = square_fraction(q, n_queries)
        s = square_side(p, nf, c, h)
        xn = xbest[act].copy()
        draws = square_draws(seed, batches[act], q, rows[act], B, c)
        for j, i in enumerate(act):
            d = draws[j]
            top = int(d[0] * (h - s + 1))
            left = int(d[1] * (w - s + 1))
            cur = xbest[i, :, top:top + s, left:left + s]
            for t in range(SQUARE_TRIES):
                sg = np.where(d[2 + t * c:2 + (t + 1) * c] < 0.5, -1.0, 1.0).astype(np.float32)
                win = np.clip(x0[i, :, top:top + s, left:left + s] + sg[:, None, None] * e32,
                              np.float32(0), np.float32(1))
                xn[j, :, top:top + s, left:left + s] = win
                if (np.abs(win - cur) >= np.float32(1e-7)).any():
                    break
        z = net.logits(xn)
        m = margin(z, y[act])
        newly = (predicted(z) != y[act]) & ~broken[act]
        first_broken[act[newly]] = q
        broken[act[newly]] = True
        gap = np.abs(m - fbest[act])
        min_gap[act] = np.minimum(min_gap[act], np.where(gap > 0, gap, np.inf))
        keep = m < fbest[act]
        fbest[act[keep]] = m[keep]
        xbest[act[keep]] = xn[keep]
        accepted[act[keep]] += 1
    return broken, {"first_broken": first_broken, "margin": fbest, "accepted": accepted,
                    "min_gap": min_gap}


# ----------------------------------------------------------------------------------------------
# The attacks over a set of images, with igrc's batch layout and streams.

def run_attacks(net, x, y, B, seed, eps, iters=100, restarts=1, targets=9, queries=5000,
                attacks=("apgd-ce", "apgd-t", "fab-t", "square"), apgd_variant=None,
                fab_check_stepped_back=True, log=None):
    """x [n,C,H,W] float32 (image i is row i % B of batch i // B), y [n]. Returns a dict:
    "clean": clean-correct [n]; for each attack a robust [n] bool array (False for images the
    clean network misclassifies), and "info" with per-attack details. Each attack runs on its
    own on every correctly classified image; autoattack's stages follow from them (every row is
    attacked independently of the others, so the sequence keeps an image exactly when each attack
    on its own does): see `autoattack_stages`."""
    n = len(x)
    rows = np.arange(n) % B
    batches = np.arange(n) // B
    z0 = net.logits(x)
    clean = predicted(z0) == y
    out = {"clean": clean, "info": {}}
    for atk in attacks:
        robust = clean.copy()
        info = {}
        if atk in ("apgd-ce", "apgd-t"):
            tlist = [None] if atk == "apgd-ce" else list(range(targets))
            for ti in tlist:
                for k in range(restarts):
                    idx = np.nonzero(robust)[0]
                    if len(idx) == 0:
                        break
                    stream = attack_stream(STREAM_APGD, k, 0 if ti is None else ti)
                    xs = np.stack([random_start(x[i], eps, 1.0, seed, batches[i], rows[i], stream)
                                   for i in idx])
                    tgt = None if ti is None else ranked_class(z0[idx], ti + 2)
                    br, tr = apgd_run(net, x[idx], y[idx], xs, eps, iters, tgt, variant=apgd_variant)
                    robust[idx[br]] = False
                    info.setdefault("runs", []).append({"target": ti, "restart": k,
                                                        "attacked": idx.tolist(),
                                                        "first_broken": tr["first_broken"].tolist(),
                                                        "halvings": tr["halvings"].tolist()})
        elif atk == "fab-t":
            for ti in range(targets):
                for k in range(restarts):
                    idx = np.nonzero(robust)[0]
                    if len(idx) == 0:
                        break
                    if k == 0:
                        xs = x[idx].copy()
                    else:
                        stream = attack_stream(STREAM_FAB, k, ti)
                        xs = np.stack([random_start(x[i], eps, 0.5, seed, batches[i], rows[i], stream)
                                       for i in idx])
                    tgt = ranked_class(z0[idx], ti + 2)
                    br, tr = fab_run(net, x[idx], y[idx], tgt, xs, eps, iters,
                                     check_stepped_back=fab_check_stepped_back)
                    robust[idx[br]] = False
                    info.setdefault("runs", []).append({"target": ti, "restart": k,
                                                        "attacked": idx.tolist(),
                                                        "first_broken": tr["first_broken"].tolist(),
                                                        "best": tr["best"].tolist(),
                                                        "adversarial_at": tr["adversarial_at"]})
        elif atk == "square":
            idx = np.nonzero(robust)[0]
            if len(idx):
                br, tr = square_run(net, x[idx], y[idx], rows[idx], batches[idx], B, seed, eps, queries)
                robust[idx[br]] = False
                info = {"attacked": idx.tolist(), "first_broken": tr["first_broken"].tolist(),
                        "margin": tr["margin"].tolist(), "accepted": tr["accepted"].tolist(),
                        "min_gap": tr["min_gap"].tolist()}
        else:
            raise ValueError("unknown attack " + atk)
        out[atk] = robust
        out["info"][atk] = info
        if log:
            log("  reference %-8s robust %d of %d" % (atk, robust.sum(), n))
    return out


AA_SEQUENCE = ("apgd-ce", "apgd-t", "fab-t", "square")


def autoattack_stages(res):
    """The robust set after each stage of the standard sequence, from the attacks run alone."""
    cur = res["clean"].copy()
    stages = []
    for a in AA_SEQUENCE:
        cur = cur & res[a]
        stages.append(cur.copy())
    return stages


# ----------------------------------------------------------------------------------------------
# Command line: python3 autoattack_reference.py CKPT --data DIR --n 64 --eps 0.1 ...

def main(argv=None):
    import argparse
    import json
    import os
    import sys
    import time
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
    import ifia_reference as IR
    from torch_nets import SmallCNN
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32, help="the compiled batch size B")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--aa-iters", type=int, default=100)
    ap.add_argument("--aa-restarts", type=int, default=1)
    ap.add_argument("--aa-targets", type=int, default=9)
    ap.add_argument("--square-queries", type=int, default=5000)
    ap.add_argument("--attacks", default="apgd-ce,apgd-t,fab-t,square")
    ap.add_argument("--apgd-variant", default="", help="comma list: cond2_first_off,compare_replaced,le")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    net = Net(load_smallcnn(a.ckpt, SmallCNN, IR.read_safetensors))
    x, y = IR.load_mnist_test(a.data, a.n)
    t0 = time.time()
    res = run_attacks(net, x, y, a.batch, a.seed, a.eps, a.aa_iters, a.aa_restarts, a.aa_targets,
                      a.square_queries, a.attacks.split(","),
                      apgd_variant=set(v for v in a.apgd_variant.split(",") if v), log=print)
    summ = {"n": a.n, "natural": int(res["clean"].sum()), "seconds": time.time() - t0}
    for k in a.attacks.split(","):
        summ[k] = int(res[k].sum())
    print(json.dumps(summ))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summ, "robust": {k: res[k].astype(int).tolist()
                                                   for k in ["clean"] + a.attacks.split(",")},
                       "info": res["info"], "settings": vars(a)}, f)


def load_smallcnn(ckpt_path, smallcnn_cls, read_safetensors):
    """The PyTorch SmallCNN (tests/interop/torch_nets.py) with a checkpoint's weights and widths,
    float32, evaluation mode (dropout off); optimiser state ignored."""
    tensors, _ = read_safetensors(ckpt_path)
    out = {k: v.shape[0] for k, v in tensors.items() if v.ndim}  # each layer's output width
    m = smallcnn_cls(w1=out.get("conv1.weight", 32), w2=out.get("conv3.weight", 64), hidden=out.get("fc1.weight", 200))
    sd = {k: torch.from_numpy(v) for k, v in tensors.items() if not k.startswith("optim.")}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError("checkpoint %s: missing %s, unexpected %s" % (ckpt_path, missing, unexpected))
    return m.float().eval()


if __name__ == "__main__":
    main()
