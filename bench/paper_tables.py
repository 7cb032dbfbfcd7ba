#!/usr/bin/env python3
"""The paper's Table 2 (IFIA top-k intersection / Kendall's tau) and Table 3
(natural / FGSM / PGD-20 / CW-inf accuracy) for every training method igrc
ships, on MNIST, Fashion-MNIST and (given its data) CIFAR-10, next to the
paper's numbers.

    python3 bench/paper_tables.py [--schedule quick|medium|paper] [--datasets mnist,fashion-mnist]
                                  [--methods standard,trades,trades_igr,...] [--out run/tables]
                                  [--jobs N] [--report] [--autoattack]

For each (data set, method) it compiles models/mnist_smallcnn_<method>.json
(Fashion-MNIST: the same file with -D data=fashion-mnist; CIFAR-10: the
ResNet-18 model files), trains, then runs the executable's `eval`, `attrib`
and `consistency` commands, and writes results.json and results.md into
--out. --autoattack also runs `eval --attacks natural,pgd,apgd-ce,autoattack`
(AutoAttack's standard sequence at full strength) on the schedule's aa_n
test images and adds APGD-CE and AutoAttack columns, with PGD-20 on the same
images for the check APGD-CE <= PGD; finished rows get it without
retraining. Runs that already finished (their JSON exists) are reused, so an
interrupted run continues where it stopped; --report runs nothing and
writes the tables of the rows that have finished. --jobs N runs N rows at
once with the cores shared out among them (IGRC_THREADS = cores / N): one
executable at 2 threads kept a 2-core machine's cores about 82% busy, two
at 1 thread each keep both busy. A row being run by another live process (its
directory's `running` file names the pid) is refused, so two runs of the
script can share an --out directory.

Schedules (every number in the tables states its schedule):
  quick  what a 2-core CPU finishes in 3 to 100 minutes per row (the
         IG-based baselines the longest; about 4 hours per data set for
         all twelve methods, with two rows sharing the cores): training
         on the first 4,096 images for 2 epochs at lr 1e-3, inner PGD of 10
         steps of 0.04 (instead of 40 of 0.01), IG of 10 path points, IGR
         warm-up a quarter epoch; eval on 500 test images; the IFIA attack
         on the first 64 test images, 30 steps, m = 10 for both saliencies.
  medium quick's objective and evaluation settings, trained for one epoch
         on the whole training set (469 steps instead of 64) at lr 1e-3,
         IGR warm-up half an epoch: about 10 minutes per row without IG in
         training and 35 with it on 2 cores.
  paper  the paper's schedule (SPEC section 3 and 6): the model files'
         own settings (90 epochs, 40-step PGD, m = 100), eval on all 10,000
         test images, IFIA with 200 steps on 1,000 images. A GPU job
         (--device cuda), as are the CIFAR-10 rows (ResNet-18) at any schedule.
"""
import argparse
import concurrent.futures
import json
import math
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

METHODS = ["standard", "at", "at_igr", "trades", "trades_igr", "mart", "mart_igr",
           "ig_norm", "ig_sum_norm", "advaat", "art", "ssr"]
LABELS = {"standard": "Standard", "at": "AT", "at_igr": "AT+IGR", "trades": "TRADES",
          "trades_igr": "TRADES+IGR", "mart": "MART", "mart_igr": "MART+IGR",
          "ig_norm": "IG-NORM", "ig_sum_norm": "IG-SUM-NORM", "advaat": "AdvAAT",
          "art": "ART", "ssr": "SSR"}
BASE = {"at_igr": "at", "trades_igr": "trades", "mart_igr": "mart"}

# The paper's Table 2 (top-k %, Kendall) and Table 3 (natural, FGSM, PGD-20,
# CW-inf %), as SPEC section 7 lists them; None where the paper gives none.
PAPER_T2 = {
    "mnist": {"standard": (32.21, .0955), "trades": (36.37, .2127), "trades_igr": (56.13, .4537),
              "at": (34.35, .1846), "at_igr": (33.40, .1582), "mart": (32.50, .1261),
              "mart_igr": (37.34, .1854)},
    "fashion-mnist": {"standard": (42.83, .1884), "trades": (57.01, .2582),
                      "trades_igr": (80.62, .6565), "at": (32.00, .1516),
                      "at_igr": (53.36, .3750), "mart": (58.57, .4262),
                      "mart_igr": (57.97, .4317)},
    "cifar10": {"standard": (46.71, .1662), "trades": (78.28, .6903),
                "trades_igr": (80.26, .6940), "at": (72.21, .5578), "at_igr": (73.37, .5775),
                "mart": (76.11, .6192), "mart_igr": (76.56, .6328)},
}
# The attribution-protection baselines of Table 2 (the paper's own text, not
# SPEC section 7): MNIST, Fashion-MNIST, CIFAR-10.
for _m, _v in {"ig_norm": ((36.13, .1562), (51.84, .3446), (74.49, .5811)),
               "ig_sum_norm": ((41.53, .2240), (57.27, .4097), (78.70, .6901)),
               "advaat": ((51.74, .3791), (73.62, .5810), (72.11, .5484)),
               "art": ((30.38, .1439), (31.71, .2079), (70.44, .6875)),
               "ssr": ((38.77, .1650), (60.40, .4321), (71.20, .5498))}.items():
    for _ds, _p in zip(("mnist", "fashion-mnist", "cifar10"), _v):
        PAPER_T2[_ds][_m] = _p
PAPER_T3 = {
    "mnist": {"trades": (99.40, 99.36, 99.21, 99.19), "trades_igr": (99.40, 99.40, 99.26, 99.24)},
    "fashion-mnist": {"trades": (78.82, 77.66, 75.94, 75.58),
                      "trades_igr": (80.61, 79.05, 76.89, 76.44)},
}

# The quick schedule's overrides of objective parameters, per method (a -D
# must name a setting the model has).
PGD = ["pgd_steps=10", "alpha=0.04"]
IGR = PGD + ["ig_steps=10", "igr_warmup=0.25"]
QUICK_OBJECTIVE = {"standard": [], "at": PGD, "trades": PGD, "mart": PGD, "art": PGD,
                   "at_igr": IGR, "trades_igr": IGR, "mart_igr": IGR,
                   "ig_norm": PGD + ["ig_norm_steps=10"], "ig_sum_norm": PGD + ["ig_norm_steps=10"],
                   "advaat": PGD + ["advaat_ig_steps=10"], "ssr": ["ssr_iterations=5"]}
QUICK = {
    "defines": ["eval.ig_steps=10", "eval.attack_ig_steps=10"], "objective": QUICK_OBJECTIVE,
    "train": ["--limit", "4096", "--epochs", "2", "--lr", "1e-3"],
    "eval_n": 500, "attrib_n": 64, "attrib_steps": 30, "consistency_n": 500, "aa_n": 200,
}
MEDIUM = dict(QUICK, train=["--epochs", "1", "--lr", "1e-3"], objective={
    m: [("igr_warmup=0.5" if x.startswith("igr_warmup=") else x) for x in xs]
    for m, xs in QUICK_OBJECTIVE.items()})
PAPER = {"defines": [], "objective": {}, "train": [], "eval_n": 10000, "attrib_n": 1000,
         "attrib_steps": 200, "consistency_n": 10000, "aa_n": 1000}
SCHEDULES = {"quick": QUICK, "medium": MEDIUM, "paper": PAPER}


def log(msg):
    print(f"[tables {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, logfile, env=None):
    """Runs cmd with its output appended to logfile; raises with the tail on failure."""
    with open(logfile, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if rc != 0:
        with open(logfile) as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f"{' '.join(cmd[:2])} exited {rc}; the end of {logfile}:\n{tail}")


def model_file(ds, method):
    if ds == "cifar10":
        if method == "trades_igr":  # the default ResNet-18 model
            return os.path.join(ROOT, "models", "resnet18_trades_igr.json")
        return os.path.join(ROOT, "models", "cifar10", f"resnet18_{method}.json")
    return os.path.join(ROOT, "models", f"mnist_smallcnn_{method}.json")


def data_available(ds, data_root):
    names = {"mnist": ["mnist"], "fashion-mnist": ["fashion-mnist"], "cifar10": ["cifar10"]}[ds]
    if ds == "fashion-mnist" and os.path.isdir("/usr/share/datasets/fashion-mnist"):
        return True  # Debian's dataset-fashion-mnist
    return any(os.path.isdir(os.path.join(data_root, n)) for n in names)


def with_spread(row, d):
    """Adds the standard errors of the mean top-k and tau over the attacked
    images (from d/attrib.json's per-image rows) to a row that lacks them."""
    if "topk_se" in row:
        return row
    with open(os.path.join(d, "attrib.json")) as f:
        imgs = [i for i in json.load(f)["images"] if i["attacked"]]
    for key, name in (("topk", "topk"), ("kendall_tau", "kendall")):
        v = [i[key] for i in imgs]
        n = len(v)
        mean = sum(v) / n if n else 0.0
        var = sum((x - mean) ** 2 for x in v) / (n - 1) if n > 1 else 0.0
        row[name + "_se"] = math.sqrt(var / n) if n else None
    return row


def acc_se(row):
    """Binomial standard error (points) of the PGD accuracy."""
    p = row["pgd"] / 100
    return 100 * math.sqrt(p * (1 - p) / row["eval_n"])


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_row(d):
    """Marks row directory d as being run by this process (d/running holds
    the pid); raises if a live process holds it, takes over a stale mark."""
    mark = os.path.join(d, "running")
    for _ in range(2):
        try:
            fd = os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(mark) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid > 0 and pid_alive(pid):
                raise RuntimeError(f"{d} is being run by process {pid} (remove {mark} if not)")
            os.unlink(mark)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return mark
    raise RuntimeError(f"could not claim {d}")


def one(args, sched, ds, method, igrc, env=None):
    """Compiles, trains and evaluates one (data set, method); returns its row.
    A row already being run by another process is refused."""
    d = os.path.join(args.out, ds, method)
    os.makedirs(d, exist_ok=True)
    row_path = os.path.join(d, "row.json")
    if os.path.exists(row_path):
        with open(row_path) as f:
            row = with_spread(json.load(f), d)
        if not getattr(args, "autoattack", False) or "autoattack" in row:
            return row
    mark = claim_row(d)
    try:
        row = run_row(args, sched, ds, method, igrc, env, d) if not os.path.exists(row_path) else row
        if getattr(args, "autoattack", False) and "autoattack" not in row:
            row.update(run_autoattack(args, sched, d, ds, env))
            with open(row_path, "w") as f:
                json.dump(row, f, indent=1)
        return row
    finally:
        os.unlink(mark)


def run_autoattack(args, sched, d, ds, env):
    """AutoAttack's standard sequence and PGD-20 on the same aa_n images:
    the row's apgd_ce, autoattack and aa_* keys."""
    js = os.path.join(d, "autoattack.json")
    if not os.path.exists(js):
        run([os.path.join(d, "model"), "eval", "--out", d, "--data", ds, "--device", args.device,
             "--attacks", "natural,pgd,apgd-ce,autoattack", "--n", str(sched["aa_n"]), "--json", js],
            os.path.join(d, "log.txt"), env)
    with open(js) as f:
        e = json.load(f)
    acc = {r["attack"]: r["accuracy"] for r in e["results"]}
    return {"aa_n": e["n"], "aa_natural": acc["natural"], "aa_pgd": acc["pgd"],
            "apgd_ce": acc["apgd-ce"], "autoattack": acc["autoattack"]}


def aa_check(r):
    """'' when APGD-CE <= PGD-20 on the same images, else a warning mark."""
    return "" if r["apgd_ce"] <= r["aa_pgd"] else " (APGD-CE above PGD!)"


def run_row(args, sched, ds, method, igrc, env, d):
    logf = os.path.join(d, "log.txt")
    exe = os.path.join(d, "model")
    row_path = os.path.join(d, "row.json")
    t0 = time.time()
    if not os.path.exists(exe):
        cmd = [igrc, "compile", model_file(ds, method), "-o", exe]
        if args.device == "cuda":
            cmd += ["--target", "cuda"]
        extra = sched["objective"].get(method, [])
        if ds == "cifar10":  # CIFAR's PGD (10 steps of 2/255 within 8/255) is short already
            extra = [x for x in extra if not x.startswith(("pgd_steps=", "alpha="))]
        for x in sched["defines"] + extra + ([f"data={ds}"] if ds == "fashion-mnist" else []):
            cmd += ["-D", x]
        run(cmd, logf, env)
    ckpt = os.path.join(d, "checkpoint.safetensors")
    if not os.path.exists(ckpt):
        run([exe, "train", "--data", ds, "--out", d, "--device", args.device] + sched["train"],
            logf, env)
    t_train = time.time() - t0
    common = ["--out", d, "--data", ds, "--device", args.device]
    ev = os.path.join(d, "eval.json")
    if not os.path.exists(ev):
        run([exe, "eval"] + common + ["--n", str(sched["eval_n"]), "--json", ev], logf, env)
    at = os.path.join(d, "attrib.json")
    if not os.path.exists(at):
        run([exe, "attrib"] + common + ["--n", str(sched["attrib_n"]), "--steps",
                                        str(sched["attrib_steps"]), "--json", at], logf, env)
    co = os.path.join(d, "consistency.json")
    if not os.path.exists(co):
        run([exe, "consistency"] + common + ["--n", str(sched["consistency_n"]), "--json", co],
            logf, env)
    with open(ev) as f:
        e = json.load(f)
    with open(at) as f:
        a = json.load(f)
    with open(co) as f:
        c = json.load(f)
    acc = {r["attack"]: r["accuracy"] for r in e["results"]}
    row = {"dataset": ds, "method": method, "schedule": args.schedule,
           "natural": acc.get("natural"), "fgsm": acc.get("fgsm"), "pgd": acc.get("pgd"),
           "cw": acc.get("cw"), "eval_n": e["n"], "pgd_steps": next(
               (r["steps"] for r in e["results"] if r["attack"] == "pgd"), None),
           "topk": a["topk_intersection"], "kendall": a["kendall_tau"],
           "attacked": a["attacked"], "attrib_steps": a["steps"], "k": a["k"],
           "ig_steps": a["ig_steps"], "attack_ig_steps": a["attack_ig_steps"],
           "consistency": c["consistency"], "minutes": (time.time() - t0) / 60,
           "train_minutes": t_train / 60}
    with_spread(row, d)
    with open(row_path, "w") as f:
        json.dump(row, f, indent=1)
    return row


def fmt(v, pct=False, nd=2):
    if v is None:
        return "–"
    return f"{100 * v:.{nd}f}" if pct else f"{v:.{nd}f}"


def claim(m, b, rm, rb):
    """One line: the IGR row against its base, each difference with the
    standard error of the difference. Raised: top-k and tau both up (beyond
    noise: both by more than 2 SE); kept: PGD down by at most 1 SE."""
    se = lambda k: math.sqrt(rm[k] ** 2 + rb[k] ** 2)
    dk, dt, dp = rm["topk"] - rb["topk"], rm["kendall"] - rb["kendall"], rm["pgd"] - rb["pgd"]
    sk, st, sp = se("topk_se"), se("kendall_se"), math.hypot(acc_se(rm), acc_se(rb))
    up = dk > 0 and dt > 0
    clear = up and dk > 2 * sk and dt > 2 * st
    kept = dp >= -sp
    return (f"- {LABELS[m]} vs {LABELS[b]}: top-k {fmt(rb['topk'], True)} → "
            f"{fmt(rm['topk'], True)} ({100 * dk:+.2f} ± {100 * sk:.2f}), τ "
            f"{fmt(rb['kendall'], nd=4)} → {fmt(rm['kendall'], nd=4)} ({dt:+.4f} ± {st:.4f}), "
            f"PGD {fmt(rb['pgd'])} → {fmt(rm['pgd'])} ({dp:+.2f} ± {sp:.2f}): attribution "
            f"robustness {'raised beyond noise' if clear else 'raised (within noise)' if up else 'NOT raised'}"
            f", adversarial accuracy {'kept' if kept else 'LOST'}.")


def markdown(rows, args):
    out = [f"Schedule `{args.schedule}`; generated by `python3 bench/paper_tables.py "
           f"--schedule {args.schedule}`.", ""]
    for ds in args.datasets:
        rs = [r for r in rows if r["dataset"] == ds]
        if not rs:
            continue
        r0 = rs[0]
        out += [f"### {ds}", "",
                f"IFIA: first {r0['attrib_steps']} steps, k {r0['k']}, m {r0['ig_steps']} "
                f"(saliency) / {r0['attack_ig_steps']} (softplus surrogate); accuracy on "
                f"{r0['eval_n']} test images, PGD/CW {r0['pgd_steps']} steps. ± is the "
                f"standard error of the mean over the attacked images.", "",
                "| method | top-k % | Kendall τ | paper top-k % / τ | natural | FGSM | PGD | CW∞ "
                "| consistency | attacked | paper natural / FGSM / PGD / CW∞ |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        aa = [r for r in rs if "autoattack" in r]
        if aa:
            out[-2] = out[-2].replace("| CW∞ ", "| CW∞ | APGD-CE | AutoAttack ")
            out[-1] += " --- | --- |"
        for r in rs:
            p2 = PAPER_T2.get(ds, {}).get(r["method"])
            p3 = PAPER_T3.get(ds, {}).get(r["method"])
            out.append(
                f"| {LABELS[r['method']]} | {fmt(r['topk'], True)} ± {fmt(r['topk_se'], True, 1)} "
                f"| {fmt(r['kendall'], nd=4)} ± {fmt(r['kendall_se'], nd=3)} | "
                f"{f'{p2[0]:.2f} / {p2[1]:.4f}' if p2 else '–'} | {fmt(r['natural'])} | "
                f"{fmt(r['fgsm'])} | {fmt(r['pgd'])} | {fmt(r['cw'])} | "
                + (f"{fmt(r.get('apgd_ce'))} | {fmt(r.get('autoattack'))} | " if aa else "")
                + f"{fmt(r['consistency'], nd=4)} | {r['attacked']} | "
                f"{' / '.join(f'{x:.2f}' for x in p3) if p3 else '–'} |")
        if aa:
            out += ["", f"APGD-CE and AutoAttack (apgd-ce, apgd-t, fab-t, square; 100 iterations, "
                    f"9 targets, 5,000 queries) on the first {aa[0]['aa_n']} test images; PGD-20 on "
                    f"the same images for comparison:", ""]
            out += [f"- {LABELS[r['method']]}: PGD-20 {fmt(r['aa_pgd'])}, APGD-CE {fmt(r['apgd_ce'])}, "
                    f"AutoAttack {fmt(r['autoattack'])}{aa_check(r)}" for r in aa]
        claims = []
        for m, b in BASE.items():
            rm = next((r for r in rs if r["method"] == m), None)
            rb = next((r for r in rs if r["method"] == b), None)
            if rm and rb:
                claims.append(claim(m, b, rm, rb))
        if claims:
            out += ["", "The claim (IGR raises top-k and τ over its base without losing PGD "
                    "accuracy), row by row:", ""] + claims
        out.append("")
    return "\n".join(out)


def finished_rows(args, todo):
    """The rows of todo that have finished at args.schedule."""
    rows = []
    for ds, m in todo:
        row = os.path.join(args.out, ds, m, "row.json")
        if not os.path.exists(row):
            continue
        with open(row) as f:
            r = with_spread(json.load(f), os.path.dirname(row))
        if r["schedule"] == args.schedule:
            rows.append(r)
        else:
            log(f"{ds}/{m}: finished at schedule {r['schedule']}, not {args.schedule}; left out")
    return rows


def row_env(jobs):
    """The executables' environment: with several rows at once, the cores
    are shared out (IGRC_THREADS), unless the caller set IGRC_THREADS."""
    env = dict(os.environ)
    if jobs > 1 and "IGRC_THREADS" not in env:
        env["IGRC_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def run_rows(args, sched, todo, one_row=None):
    """Runs the rows of todo, args.jobs at a time, in todo's order; writes
    results.json and results.md as each finishes; returns the finished rows
    in todo's order."""
    one_row = one_row or one
    env, lock, done = row_env(args.jobs), threading.Lock(), {}

    def task(ds, m):
        log(f"{ds}/{m}: start")
        try:
            r = one_row(args, sched, ds, m, args.igrc, env)
        except RuntimeError as e:
            log(f"{ds}/{m}: FAILED: {e}")
            return
        log(f"{ds}/{m}: top-k {fmt(r['topk'], True)} τ {fmt(r['kendall'], nd=4)} natural "
            f"{fmt(r['natural'])} PGD {fmt(r['pgd'])} ({r['minutes']:.1f} min)")
        with lock:
            done[(ds, m)] = r
            rows = [done[k] for k in todo if k in done]
            with open(os.path.join(args.out, "results.json"), "w") as f:
                json.dump(rows, f, indent=1)
            with open(os.path.join(args.out, "results.md"), "w") as f:
                f.write(markdown(rows, args))

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        for fut in [ex.submit(task, ds, m) for ds, m in todo]:
            fut.result()
    return [done[k] for k in todo if k in done]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schedule", choices=list(SCHEDULES), default="quick")
    ap.add_argument("--datasets", default="mnist,fashion-mnist,cifar10")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default=os.path.join(ROOT, "run", "tables"))
    ap.add_argument("--igrc", default=os.path.join(ROOT, "build", "tools", "igrc", "igrc"))
    ap.add_argument("--data-root", default=os.path.join(ROOT, "data"))
    ap.add_argument("--report", action="store_true",
                    help="run nothing: the tables from the rows that have finished")
    ap.add_argument("--jobs", type=int, default=1,
                    help="rows run at once, the cores shared out among them (IGRC_THREADS)")
    ap.add_argument("--autoattack", action="store_true",
                    help="also AutoAttack's standard sequence (APGD-CE and AutoAttack columns)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where the executables run (cuda: compiled with --target cuda)")
    args = ap.parse_args()
    args.datasets = [d for d in args.datasets.split(",") if d]
    if args.jobs < 1:
        sys.exit("paper_tables: --jobs must be at least 1")
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            sys.exit(f"paper_tables: unknown method '{m}' (one of {', '.join(METHODS)})")
    if not args.report and not os.access(args.igrc, os.X_OK):
        sys.exit(f"paper_tables: no igrc at {args.igrc}: build first (cmake --build build)")
    os.environ.setdefault("IGRC_DATA", args.data_root)
    sched = SCHEDULES[args.schedule]
    os.makedirs(args.out, exist_ok=True)
    todo = []
    for ds in args.datasets:
        if not data_available(ds, args.data_root):
            log(f"{ds}: no data installed under {args.data_root} (CIFAR-10: the binary version "
                f"in {args.data_root}/cifar10); skipped")
            continue
        for m in methods:
            if not os.path.exists(model_file(ds, m)):
                log(f"{ds}/{m}: no model file {os.path.relpath(model_file(ds, m), ROOT)}; skipped")
                continue
            todo.append((ds, m))
    rows = finished_rows(args, todo) if args.report else run_rows(args, sched, todo)
    if args.report:
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(markdown(rows, args))
    print(markdown(rows, args))


if __name__ == "__main__":
    main()
