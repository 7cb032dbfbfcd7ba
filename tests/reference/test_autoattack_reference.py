#!/usr/bin/env python3
"""ctest test_autoattack_reference: igrc's AutoAttack attacks (`eval --attacks apgd-ce,apgd-t,
fab-t,square,autoattack`) against the independent PyTorch/numpy reference
tests/reference/autoattack_reference.py (written from the APGD, FAB and Square papers; igrc's C
code read only for its random-number conventions).

usage: test_autoattack_reference.py IGRC_BIN SOURCE_DIR

What it does (about 30 s alone on 2 cores, longer beside other tests; igrc's full evaluation runs in
the background, as two single-threaded processes, while the reference runs):
  0. the reference's Philox 4x32-10 against Random123's known answers and against values that
     igrc's base/philox.c printed (philox_uniform with igrc's counter/key mapping);
  1. compiles models/mnist_smallcnn_standard.json at widths 16/32/64 (WIDTHS; the reference reads
     them from the checkpoint) at --batch 32 and trains it briefly on real MNIST (2048 images, 4
     epochs, lr 2e-3, seed 1: 63 of the test's 64 images correct), and
     compiles the same graph at --batch 1 for the evaluation;
  2. the first 64 MNIST test images, made tie-free (below), eps 0.06, seed 7, --aa-iters 20,
     --aa-targets 3, --square-queries 200: igrc's `eval --json` (the --batch 1 executable: image
     i is batch i, and the random draws are keyed on it) and the reference with the same layout;
  3. compares per attack and for autoattack's stages:
     - the robust accuracy (within TOL_COUNT images);
     - the number of images on which igrc and the reference decide differently (robust / broken),
       counted exactly with a second igrc run on a copy of the data set whose labels hide every
       image but those the reference broke (a hidden image's label is a class it is not
       classified as, so igrc skips it; every image is its own batch, so the visible ones are
       attacked exactly as in the full run): disagreements = (|A| - (igrc's full count - igrc's
       count on the visible ones)) + igrc's count on the visible ones, A the reference's robust
       images (at most TOL_IMAGES);
     - the network calls of the full run and of the second runs (one call: one batch, here one
       image) against those the reference's trace predicts: per image, the evaluations until the
       step at which it broke, or all of them (expected_calls). This checks every image's break
       step (as a sum per attack), not only the decision, so that a change of the trajectory
       shows (measured, by running the reference with deliberate deviations at these settings:
       no momentum, no step-size halving, condition 1 with <= change the totals; see README.md).

Tie-free images. MNIST's background is exactly 0, so a ReLU/max-pool network sees exact ties in
every 2x2 pool window there; igrc's CPU kernels give such equal values a few ulps apart and route
the gradient elsewhere than PyTorch does (tests/reference/README.md, the IFIA section), which
changes an input gradient by up to 11% (measured with `igrc exec --fn grad_logits` on this
test's model, dlogits e_t - e_y: relative L2 median 1.4%, max 11%, sign differences on every
image, up to 33 pixels). Both are valid subgradients, but APGD's and FAB's
paths then differ. The test therefore maps each pixel byte v to 16 + floor(220 v / 255) + d,
d in {0..3} a fixed Philox dither: no two receptive fields are equal, the values stay in
[16, 239] / 255, so x0 +- eps never reaches 0 or 1 at eps 0.06, and the two sides' gradients
agree to float rounding (the same measurement: relative L2 median 1.4e-7, max 2.1e-4, no sign
differs). The model trained on real MNIST keeps its accuracy on them (63 of the
64). IGRC_AA_DATA=mnist runs the same comparison on the raw images at eps 0.1 with the wider
tolerances that the ties need (see README.md for both sets of measured numbers).

Tolerances (tie-free): every count within 1 image of the reference's and at most 1 disagreeing
image per attack: the two sides still round differently in float32 (logits differ by ~1e-6), and
Square compares margins that a proposal may change by less than that (the closest comparison in
this run is printed), so one image may legitimately go the other way; the calls must be equal,
except FAB-T's gradient calls, within 0.5% (FAB_CALLS_TOL). Measured: 0 disagreements and equal
calls on seeds 7, 1 and 2 (at the published widths FAB-T's calls differed by 1 in 3738;
README.md).
On the raw images: counts within 2, at most 3 disagreeing images per attack, no check of the
calls.
Environment: IGRC_VERBOSE=1 prints per-image tables, IGRC_KEEP_TMP=1 keeps the scratch directory,
IGRC_AA_SEED=S the attacks' seed (7).
Exit status 0 when every check passes, 1 otherwise (also when torch is missing).
"""
import os

# One thread each for numpy's BLAS and torch: the reference runs next to igrc on a 2-core machine.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import json
import math
import struct
import subprocess
import sys
import time

T_START = time.time()

try:
    import numpy as np
    import torch  # noqa: F401  (checked here, so that its absence fails with this message)
except ImportError as e:
    print("test_autoattack_reference: FAIL: cannot import torch/numpy (%s): python3-torch is "
          "missing; scripts/setup.sh installs it (or set the CMake cache variable "
          "IGRC_TORCH_PYTHON to a python3 that has torch)" % e)
    sys.exit(1)

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import autoattack_reference as R  # noqa: E402
import ifia_reference as IR  # noqa: E402  (safetensors and IDX readers)
from torch_nets import SmallCNN  # noqa: E402
import harness as H  # noqa: E402
from harness import check, failures, run  # noqa: E402

N = 64
# SmallCNN at widths 16/32/64 (the published 32/64/200 made igrc's evaluation minutes long under
# the sanitizers; the reference takes the widths from the checkpoint), trained EPOCHS epochs
WIDTHS = ["width1=16", "width2=32", "hidden=64"]
EPOCHS = 4
TRAIN_BATCH = 32               # the executable that trains
BATCH = 1                      # the executable that evaluates: image i is batch i
SEED = int(os.environ.get("IGRC_AA_SEED", "7"))
ITERS, TARGETS, RESTARTS, QUERIES = 20, 3, 1, 200
ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")
RAW = os.environ.get("IGRC_AA_DATA", "") == "mnist"
EPS = 0.1 if RAW else 0.06
TOL_COUNT = 2 if RAW else 1
TOL_IMAGES = 3 if RAW else 1
SHIFT, SPAN = 16, 220          # tie-free bytes: SHIFT + floor(SPAN v / 255) + d, d in 0..3
DITHER_KEY = 0x64697468        # "dith": Philox seed of the dither
VERBOSE = bool(os.environ.get("IGRC_VERBOSE"))

# philox_uniform(seed, step, stream, index) as igrc's base/philox.c printed it (a tiny C program
# linked with build/base/libigrc_base.a, December 2026).
IGRC_PHILOX = [   # (seed, step, stream, index, uniform): APGD's base stream, Square's two, FAB's
    (0, 0, 0x61706764, 0, 0.85996347665786743),
    (0, 1, 0x61706764, 783, 0.46818500757217407),
    (0, 5, 0x61706764, 5000000000, 0.67631810903549194),
    (7, 0, 0x73717561, 1, 0.21490651369094849),
    (7, 1, 0x73717561, 24309, 0.19967573881149292),
    (7, 5, 0x73717562, 0, 0.35510259866714478),
    (123456789, 0, 0x73717562, 783, 0.29891806840896606),
    (123456789, 1, 0x73717562, 5000000000, 0.6208311915397644),
    (7, 3, 0x66616200 + 0x10100, 12345, 0.078667700290679932),
]

# FAB-T's gradient calls may differ by this fraction: FAB's iterates land on the linearised
# boundary with 5% overshoot, so an iterate's logit margin can be 1e-4..1e-5 and whether it is
# misclassified (one more call, the backward step) follows float rounding. Measured: igrc and the
# reference 1 call apart in 3738; the reference alone moves by 1 call with its network in float64;
# deliberate changes of FAB's rule (no backward step, beta 0.8, alpha_max 0, overshoot 1.0 or 1.1)
# move them by 121-422, alpha_max 0.2 by 1 (not detected) (README.md).
FAB_CALLS_TOL = 0.005

# autoattack's predict calls per batch outside the attacks' loops: the clean predictions and
# the clean logits that rank APGD-T's and FAB-T's targets (measured: igrc's JSON).
AA_CLEAN_CALLS = 3

BACKGROUND = []     # the background igrc processes (ended if the test stops early)


def end_background():
    for p in BACKGROUND:     # left running when the body stopped early
        if p.poll() is None:
            p.kill()
            p.wait()


def write_idx(path, a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, a.ndim))
        f.write(struct.pack(">" + "I" * a.ndim, *a.shape))
        f.write(a.tobytes())


def write_dataset(d, images, labels, mnist):
    """A data set directory: the test images and labels given; the training files link to
    MNIST's (eval reads only the test split)."""
    os.makedirs(d, exist_ok=True)
    write_idx(os.path.join(d, "t10k-images-idx3-ubyte"), images)
    write_idx(os.path.join(d, "t10k-labels-idx1-ubyte"), labels)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        src = os.path.join(mnist, name)
        if not os.path.exists(src):
            src += ".gz"
        dst = os.path.join(d, os.path.basename(src))
        if not os.path.exists(dst):
            os.symlink(src, dst)


def tie_free(raw):
    """SHIFT + floor(SPAN v / 255) + d, d = floor(4 u) from a fixed Philox stream."""
    u = R.philox_uniform(DITHER_KEY, 0, 0, np.arange(raw.size, dtype=np.uint64)).reshape(raw.shape)
    d = np.floor(4 * u).astype(np.int64)
    return (SHIFT + raw.astype(np.int64) * SPAN // 255 + d).astype(np.uint8)


def eval_cmd(model, rundir, data, attacks, out_json):
    return [model, "eval", "--out", rundir, "--data", data, "--n", str(N), "--attacks",
            ",".join(attacks), "--eps", repr(EPS), "--seed", str(SEED), "--aa-iters", str(ITERS),
            "--aa-restarts", str(RESTARTS), "--aa-targets", str(TARGETS), "--square-queries",
            str(QUERIES), "--json", out_json, "--threads", "1"]


def results_of(path):
    with open(path) as f:
        return {r["attack"]: r for r in json.load(f)["results"]}


def main():
    return H.main("test_autoattack_reference", __doc__, body, threads=1, cleanup=end_background)


def body(igrc, src, graph, mnist, tmp):
    # ---- 0. Philox ----
    bad = R.philox_selfcheck()
    check(not bad, "reference Philox 4x32-10 = Random123's known answers%s" % (": %s" % bad if bad else ""))
    got = [R.philox_uniform(s, st, sm, np.array([i], dtype=np.uint64))[0] for s, st, sm, i, _ in IGRC_PHILOX]
    want = [v for *_, v in IGRC_PHILOX]
    check(got == want, "reference philox_uniform = igrc's base/philox.c on %d values" % len(want))

    # ---- 1. model ----
    trainer = os.path.join(tmp, "trainer")
    model = os.path.join(tmp, "model")
    rundir = os.path.join(tmp, "run")
    widths = sum((["-D", w] for w in WIDTHS), [])
    run([igrc, "compile", graph, "--batch", str(TRAIN_BATCH), "-o", trainer] + widths)
    run([igrc, "compile", graph, "--batch", str(BATCH), "-o", model] + widths)
    run([trainer, "train", "--data", mnist, "--limit", "2048", "--epochs", str(EPOCHS), "--lr", "2e-3",
         "--seed", "1", "--out", rundir, "--threads", "2"])
    ckpt = os.path.join(rundir, "checkpoint.safetensors")

    # ---- 2. data, igrc's full evaluation in the background, the reference ----
    raw = IR.read_idx(find(mnist, "t10k-images-idx3-ubyte"))[:N]
    labels = IR.read_idx(find(mnist, "t10k-labels-idx1-ubyte"))[:N].astype(np.uint8)
    images = raw if RAW else tie_free(raw)
    data = os.path.join(tmp, "data")
    write_dataset(data, images, labels, mnist)
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(N, 1, 28, 28)
    y = labels.astype(np.int64)
    print("  data: the first %d MNIST test images%s, eps %g" % (
        N, "" if RAW else " made tie-free (bytes %d..%d)" % (images.min(), images.max()), EPS))

    # two background processes (the attacks alone; the autoattack sequence), one thread each
    full_jsons = [os.path.join(tmp, "full.json"), os.path.join(tmp, "full_aa.json")]
    t_full = time.time()
    full_procs = BACKGROUND[:] = [subprocess.Popen(eval_cmd(model, rundir, data, atks, out), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                  for atks, out in zip((("natural",) + ATTACKS, ("autoattack",)), full_jsons)]

    t = time.time()
    net = R.Net(R.load_smallcnn(ckpt, SmallCNN, IR.read_safetensors))
    ref = R.run_attacks(net, x, y, BATCH, SEED, EPS, ITERS, RESTARTS, TARGETS, QUERIES, ATTACKS,
                        log=print)
    stages = R.autoattack_stages(ref)
    ref["autoattack"] = stages[-1]
    print("  [%5.1f s] reference (%d network calls, 1 thread)" % (time.time() - t, net.calls))
    z0 = net.logits(x)
    clean = ref["clean"]
    if os.environ.get("IGRC_KEEP_TMP"):
        with open(os.path.join(tmp, "reference.json"), "w") as f:
            json.dump({"robust": {k: ref[k].astype(int).tolist() for k in ("clean",) + ATTACKS},
                       "info": ref["info"]}, f)

    # ---- 3a. the second runs: only the images the reference broke stay visible ----
    hide_label = np.argmin(z0, axis=1).astype(np.uint8)   # a class no image is classified as
    masked = {}
    t = time.time()
    for atk in ATTACKS + ("autoattack",):
        broke = clean & ~ref[atk]
        if not broke.any():
            masked[atk] = None
            continue
        d = os.path.join(tmp, "mask_" + atk)
        write_dataset(d, images, np.where(broke, labels, hide_label).astype(np.uint8), mnist)
        out = os.path.join(d, "eval.json")
        run(eval_cmd(model, rundir, d, ("natural", atk), out), quiet=True)
        masked[atk] = results_of(out)
    print("  [%5.1f s] igrc on the reference's broken images, one run per attack" % (time.time() - t))

    full = {}
    for proc, out in zip(full_procs, full_jsons):
        so, se = proc.communicate()
        if proc.returncode != 0:
            print(so[-2000:], se[-2000:])
            check(False, "igrc eval exits 0 (got %d): %s" % (proc.returncode, " ".join(proc.args)))
            return 1
        full.update(results_of(out))
    print("  [%5.1f s] igrc eval, every attack (background, 2 processes, 1 thread each)"
          % (time.time() - t_full))

    # ---- 3b. comparisons ----
    n_att = int(clean.sum())
    check(full["natural"]["correct"] == n_att, "natural: igrc %d, reference %d correct of %d"
          % (full["natural"]["correct"], n_att, N))
    print("  %-10s %6s %6s %6s %9s %9s" % ("attack", "igrc", "ref", "diff", "disagree", "agree"))
    for atk in ATTACKS + ("autoattack",):
        got, want = full[atk]["correct"], int(ref[atk].sum())
        m = masked[atk]
        visible = int((clean & ~ref[atk]).sum())
        if m is None:
            c_b = 0
        else:
            c_b = m[atk]["correct"]
            check(m["natural"]["correct"] == visible,
                  "%s: the second run attacks exactly the %d visible images (natural %d)"
                  % (atk, visible, m["natural"]["correct"]))
        dis = (want - (got - c_b)) + c_b
        print("  %-10s %6d %6d %+6d %9d %8.1f%%" % (atk, got, want, got - want, dis,
                                                   100.0 * (n_att - dis) / max(n_att, 1)))
        check(abs(got - want) <= TOL_COUNT, "%s: robust images igrc %d, reference %d (within %d)"
              % (atk, got, want, TOL_COUNT))
        check(dis <= TOL_IMAGES, "%s: %d of %d attacked images decided differently (at most %d)"
              % (atk, dis, n_att, TOL_IMAGES))
    st = full["autoattack"].get("stages", [])
    check([s["attack"] for s in st] == list(R.AA_SEQUENCE), "autoattack: stages %s"
          % [s["attack"] for s in st])
    for s, r in zip(st, stages):
        check(abs(s["correct"] - int(r.sum())) <= TOL_COUNT,
              "autoattack after %s: igrc %d, reference %d" % (s["attack"], s["correct"], int(r.sum())))
    if st:
        check(st[0]["correct"] == full["apgd-ce"]["correct"] and st[-1]["correct"] ==
              full["autoattack"]["correct"],
              "autoattack: igrc's first stage = its apgd-ce alone, its last = its result")

    # ---- 3c. calls: every image's break step, as the sum per attack ----
    def check_calls(row, want, what, tol=0):
        got = {k: row[k] for k in ("gradient_calls", "predict_calls")}
        msg = "%s: igrc %d gradient, %d predict calls; reference %d, %d%s" % (
            what, got["gradient_calls"], got["predict_calls"], want["gradient_calls"],
            want["predict_calls"], " (gradient within %d)" % tol if tol else "")
        if RAW:
            print("  " + msg + " (not checked on raw images)")
        else:
            check(abs(got["gradient_calls"] - want["gradient_calls"]) <= tol and
                  got["predict_calls"] == want["predict_calls"], msg)

    def fab_tol(w):
        return int(math.ceil(FAB_CALLS_TOL * w["gradient_calls"]))

    for atk in ATTACKS:
        w = expected_calls(ref["info"][atk], atk, clean)
        check_calls(full[atk], w, atk + " (full run)", fab_tol(w) if atk == "fab-t" else 0)
    want = {"gradient_calls": 0, "predict_calls": 0}
    before = clean.copy()       # autoattack: each stage on the images the ones before left
    tol = 0
    for atk, after in zip(R.AA_SEQUENCE, stages):
        w = expected_calls(ref["info"][atk], atk, before, clean_calls=False)
        want = {k: want[k] + w[k] for k in want}
        tol += fab_tol(w) if atk == "fab-t" else 0
        before = after
    want["predict_calls"] += N // BATCH * AA_CLEAN_CALLS
    check_calls(full["autoattack"], want, "autoattack (full run)", tol)
    for atk in ATTACKS:
        if masked[atk] is not None:
            w = expected_calls(ref["info"][atk], atk, clean & ~ref[atk])
            check_calls(masked[atk][atk], w, atk + " (second run)", fab_tol(w) if atk == "fab-t" else 0)
    if "min_gap" in ref["info"].get("square", {}):
        g = np.array(ref["info"]["square"]["min_gap"])
        print("  square: closest margin comparison %.2e (float32 logits differ by ~1e-6)" % g.min())

    if failures or VERBOSE:
        print_tables(ref, clean)
    print("test_autoattack_reference: %s (%d failure%s), wall time %.0f s"
          % ("PASS" if not failures else "FAIL", len(failures), "" if len(failures) == 1 else "s",
             time.time() - T_START))
    return 0 if not failures else 1


def expected_calls(info, atk, visible, clean_calls=True):
    """igrc's calls (one call: one batch) in a run of `atk` on the `visible` images, from the
    reference's trace: per batch one `predict` for the clean predictions (APGD-T and FAB-T: one
    more for the clean logits that rank the targets; clean_calls=False leaves these out); then
    per run (target, restart) that still finds a robust row in the batch, its evaluations until
    the batch's last visible image broke (or all of them):
    APGD: 1 + the step at which it broke (APGD-T: a `predict` and a `grad_logits` each); FAB:
    one `grad_logits` per iteration k = 0, 1, ... plus one more after a backward step (a robust
    row of the batch misclassified at k farther than eps from x0; a row found within eps is
    broken and left); Square: 1 for the stripes + the query at which it broke. This accounting
    is igrc's observable behaviour (its JSON's calls), not part of the algorithms: a mismatch
    with equal decisions means a changed loop, not a wrong attack."""
    nb = (N + BATCH - 1) // BATCH
    runs = info["runs"] if "runs" in info else [info]
    grad = pred = 0
    for b in range(nb):
        if clean_calls:
            pred += 1 + (1 if atk in ("apgd-t", "fab-t") else 0)
        alive = {i for i in np.nonzero(visible)[0] if i // BATCH == b}
        for r in runs:
            if not alive:
                break
            fb = {i: f for i, f in zip(r["attacked"], r["first_broken"])}
            rows = sorted(alive)
            done = [i for i in rows if fb.get(i, -1) >= 0]
            if atk == "square":
                pred += 1 + max(fb[i] for i in done) if len(done) == len(rows) else QUERIES
            elif atk in ("apgd-ce", "apgd-t"):
                ev = 1 + max(fb[i] for i in done) if len(done) == len(rows) else ITERS + 1
                grad += ev
                pred += ev if atk == "apgd-t" else 0
            else:
                # stepped back at k: misclassified there, but farther than eps (not broken)
                back = {i: {k for k, within in a if not within}
                        for i, a in zip(r["attacked"], r["adversarial_at"])}
                for k in range(ITERS + 1):
                    robust = [i for i in rows if fb.get(i, -1) < 0 or fb[i] >= k]
                    if not robust:
                        break
                    grad += 1 + any(k in back.get(i, ()) for i in robust)
            alive -= set(done)
    return {"gradient_calls": grad, "predict_calls": pred}


def find(d, name):
    for p in (os.path.join(d, name), os.path.join(d, name + ".gz")):
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(d, name))


def print_tables(ref, clean):
    """Per image: the reference's decision and the step at which it broke."""
    steps = {}
    for atk in ATTACKS:
        info = ref["info"][atk]
        for run_ in (info["runs"] if "runs" in info else [info]):
            for i, f in zip(run_.get("attacked", []), run_.get("first_broken", [])):
                if f >= 0:
                    steps[(atk, i)] = "%s%d" % ("t%d:" % run_["target"] if run_.get("target") is not None
                                                else "", f)
    print("  image  clean  " + "  ".join("%-9s" % a for a in ATTACKS) + "  (reference: robust, or "
          "[target:]step at which it broke)")
    for i in range(N):
        if not clean[i]:
            print("  %5d  wrong" % i)
            continue
        print("  %5d  ok     " % i + "  ".join("%-9s" % ("robust" if ref[a][i] else steps.get((a, i), "?"))
                                             for a in ATTACKS))


if __name__ == "__main__":
    sys.exit(main())
