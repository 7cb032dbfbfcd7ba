"""CPU benchmark of igrc-compiled SmallCNN executables against PyTorch doing
the same work (bench/torch_smallcnn.py), used by bench/cpu_train_step.sh.

Rows: train_step throughput (img/s) of the standard, AT (PGD-40), TRADES
(PGD-40) and TRADES+IGR objectives, batch 128, Adam; `eval` (PGD-20, s per
image); the IFIA attribution attack (`attrib`, 200 steps, k 100, m 10,
Kendall selection; s per image). Each row runs R interleaved rounds,
igrc, PyTorch at its best (allocator kept warm, threads pinned), PyTorch
with its defaults, igrc, ...; each round is a fresh process timed after
warm-up. Printed: every round with the machine's load before and after it,
then per row the median and the range over the rounds, the ratios of the
medians and each side's peak resident set.

Both sides read the same data: the script writes IDX files once (the first
(warm-up + steps) x 128 MNIST training images; the first test images for
eval; the first correctly classified test images for IFIA) and both start
from the same weights (an igrc standard run of --weights-steps steps,
exported). igrc shuffles its training set with a Philox permutation; the
PyTorch side reproduces that permutation (igrc_permutation below), so step
i of both sides trains on the same 128 images.

Standard library only: the statistics, the round order, the permutation and
the IDX writer are tested by bench/test_cpu_bench.py."""
import argparse
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TRAIN_ROWS = ("standard", "at", "trades", "trades_igr")
ROWS = TRAIN_ROWS + ("eval", "ifia")
SIDES = ("igrc", "torch-best", "torch-default")
BATCH = 128
WARM_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184"
ALLOC_LIBS = {"jemalloc": "libjemalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4"}
# jemalloc as PyTorch's CPU tuning guides set it: freed pages kept (no decay), large
# allocations in their own arena. Without it jemalloc returns memory to the kernel and
# PyTorch runs the standard step about 4x slower on the development machine.
JEMALLOC_CONF = "oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1"

# ---- igrc's training-set permutation (runtime/io/dataset.c, base/philox.c) -----------------

_M0, _M1, _W0, _W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
_MASK = 0xFFFFFFFF
SHUFFLE_STREAM = 0x73687566


def philox4x32_10(ctr, key):
    """Philox 4x32-10 (Random123), as base/philox.c: four 32-bit words out."""
    x0, x1, x2, x3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + _W0) & _MASK, (k1 + _W1) & _MASK
        p0, p1 = _M0 * x0, _M1 * x2
        x0, x1, x2, x3 = ((p1 >> 32) ^ x1 ^ k0) & _MASK, p1 & _MASK, ((p0 >> 32) ^ x3 ^ k1) & _MASK, p0 & _MASK
    return x0, x1, x2, x3


def igrc_permutation(n, seed, epoch):
    """The order in which igrc's `train` visits n training images in epoch
    `epoch` (0-based) with --seed seed: dataset_permutation's Fisher-Yates
    shuffle, j = (64 Philox bits) mod (i + 1)."""
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        r = philox4x32_10((i & _MASK, (i >> 32) & _MASK, SHUFFLE_STREAM, 0), (seed & _MASK, epoch & _MASK))
        j = ((r[0] << 32) | r[1]) % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


# ---- statistics ------------------------------------------------------------------------------

def quantile(xs, q):
    """Linear-interpolation quantile of a non-empty list (numpy's default)."""
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(xs):
    """{n, median, min, max, q1, q3} of the values xs (None for an empty list)."""
    if not xs:
        return None
    return {"n": len(xs), "median": quantile(xs, 0.5), "min": min(xs), "max": max(xs),
            "q1": quantile(xs, 0.25), "q3": quantile(xs, 0.75)}


def speed_ratio(igrc, other, unit):
    """How many times faster igrc is, from the two sides' medians: img/s
    divide as they are, seconds per image the other way round."""
    if not igrc or not other or not igrc["median"] or not other["median"]:
        return None
    a, b = igrc["median"], other["median"]
    return a / b if unit == "img/s" else b / a


def round_order(rows, sides, rounds):
    """The interleaved schedule: for each row, round 1 runs every side once
    in the given order, then round 2, ...; a list of (row, round, side)."""
    return [(row, r, side) for row in rows for r in range(rounds) for side in sides]


# ---- the machine's load ----------------------------------------------------------------------

def read_loadavg(path="/proc/loadavg"):
    """(1-min, 5-min, 15-min) load averages."""
    with open(path) as f:
        a = f.read().split()
    return float(a[0]), float(a[1]), float(a[2])


def read_cpu_busy(path="/proc/stat"):
    """Seconds of CPU time every core has spent busy since boot (user,
    nice, system, irq, softirq, steal), from the first line of /proc/stat."""
    with open(path) as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + sum(v[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


# Other processes may use this much of a core on average during a run
# (the shell, the kernel's threads) before the round stops being a measurement.
OTHERS_LIMIT = 0.1


def loaded(others_cpu, limit=OTHERS_LIMIT):
    """A round is flagged when other processes kept more than `limit` cores
    busy on average while it ran (/proc/stat minus the run's own CPU time).
    The 1-minute load average is printed but does not decide: it counts the
    benchmark's own threads and lags by a minute, so a quiet machine running
    2 threads per side reads 2.2-2.5 and an earlier busy minute still shows."""
    return others_cpu > limit


# ---- IDX files (MNIST's format, what igrc's --data DIR reads) ----------------------------------

def read_idx(path):
    """(dims, raw unsigned bytes) of an IDX file (gzip if it ends in .gz)."""
    import gzip
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        blob = f.read()
    zero, code, ndim = struct.unpack(">HBB", blob[:4])
    if zero != 0 or code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, blob[4:4 + 4 * ndim])
    return dims, blob[4 + 4 * ndim:]


def write_idx(path, dims, data):
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(">" + "I" * len(dims), *dims))
        f.write(bytes(data))


def find_idx(src, name):
    for p in (os.path.join(src, name), os.path.join(src, name + ".gz")):
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(src, name))


def write_mnist_subset(src, dst, train_idx, test_idx):
    """An MNIST directory dst holding the training images train_idx and the
    test images test_idx of src, in that order (both splits always written:
    igrc's loader wants all four files)."""
    os.makedirs(dst, exist_ok=True)
    for split, idx in (("train", train_idx), ("t10k", test_idx)):
        (n, h, w), im = read_idx(find_idx(src, f"{split}-images-idx3-ubyte"))
        _, lb = read_idx(find_idx(src, f"{split}-labels-idx1-ubyte"))
        hw = h * w
        write_idx(os.path.join(dst, f"{split}-images-idx3-ubyte"), (len(idx), h, w),
                  b"".join(im[i * hw:(i + 1) * hw] for i in idx))
        write_idx(os.path.join(dst, f"{split}-labels-idx1-ubyte"), (len(idx),), bytes(lb[i] for i in idx))


# ---- running one timed process -----------------------------------------------------------------

def run_timed(cmd, env, log=None):
    """Runs cmd with stdout and stderr merged; every line is stamped with
    time.perf_counter() as it arrives. Returns {rc, wall, lines: [(t, text)],
    peak (max RSS bytes of this child), cpu (its user + system seconds),
    others_cpu (the average number of cores busy with other processes
    while it ran), load_before, load_after}."""
    load0, busy0 = read_loadavg()[0], read_cpu_busy()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines = []
    for line in p.stdout:
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
        if log:
            log.write(line)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    busy1, load1 = read_cpu_busy(), read_loadavg()[0]
    cpu = ru.ru_utime + ru.ru_stime
    return {"rc": p.returncode, "wall": wall, "lines": lines, "peak": ru.ru_maxrss * 1024, "cpu": cpu,
            "others_cpu": max(0.0, (busy1 - busy0 - cpu) / wall) if wall > 0 else 0.0,
            "load_before": load0, "load_after": load1}


def check(res, cmd):
    if res["rc"]:
        tail = "\n".join(t for _, t in res["lines"][-15:])
        sys.exit(f"failed (exit {res['rc']}): {' '.join(cmd)}\n{tail}")


def last_json(res):
    for _, t in reversed(res["lines"]):
        if t.startswith("{"):
            return json.loads(t)
    raise ValueError("no JSON line in the output")


_STEP = re.compile(r"^epoch \d+/\d+\s+step (\d+)/\d+")


def step_times(res):
    """{step: seconds since start} of igrc train's progress lines (--log-every 1)."""
    out = {}
    for t, text in res["lines"]:
        m = _STEP.match(text)
        if m:
            out[int(m.group(1))] = t
    return out


# ---- the benchmark -----------------------------------------------------------------------------

class Bench:
    def __init__(self, a):
        self.a = a
        self.work = os.path.abspath(a.work)
        self.cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:a.threads])
        self.exes = {}
        self.log = open(os.path.join(self.work, "bench.log"), "a")

    # environments and command prefixes of the three sides
    def base_env(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ("GLIBC_TUNABLES", "LD_PRELOAD", "OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES",
                             "MALLOC_CONF", "IGRC_THREADS")}
        return env

    def pin(self):
        return [] if self.a.no_pin else ["taskset", "-c", self.cpus]

    def side_cmd(self, side, cmd):
        env = self.base_env()
        if side == "igrc":
            env["IGRC_THREADS"] = str(self.a.threads)
            return self.pin() + cmd, env
        if side == "torch-best":
            env["OMP_NUM_THREADS"] = str(self.a.threads)
            if not self.a.no_pin:  # one OpenMP thread per core of the taskset (PyTorch's CPU guide)
                env.update(OMP_PROC_BIND="close", OMP_PLACES="cores")
            if self.a.torch_alloc == "tunables":
                env["GLIBC_TUNABLES"] = WARM_MALLOC
            else:
                env["LD_PRELOAD"] = self.a.alloc_path
                if self.a.torch_alloc == "jemalloc":
                    env["MALLOC_CONF"] = JEMALLOC_CONF
            return self.pin() + cmd, env
        return cmd, env  # torch-default: glibc malloc, no pinning, torch.set_num_threads only

    def igrc_compile(self, name, model, defines=()):
        exe = os.path.join(self.work, name)
        cmd = [self.a.igrc, "compile", model, "-o", exe] + [x for d in defines for x in ("-D", d)]
        # reuse an executable compiled by the same command after the last change of igrc and models/
        stamp = exe + ".cmd"
        newest = max([os.path.getmtime(self.a.igrc)] +
                     [os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(ROOT, "models"))
                      for f in fs])
        if os.path.exists(exe) and os.path.exists(stamp) and os.path.getmtime(exe) > newest:
            with open(stamp) as f:
                if f.read() == " ".join(cmd):
                    self.exes[name] = exe
                    return exe
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if r.returncode:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
        with open(stamp, "w") as f:
            f.write(" ".join(cmd))
        self.exes[name] = exe
        return exe

    def prepare(self):
        a, w = self.a, self.work
        mnist = a.mnist
        need = set(a.rows)
        print("compiling ...", flush=True)
        self.igrc_compile("standard", "models/mnist_smallcnn_standard.json")
        for row in TRAIN_ROWS:
            if row in need and row != "standard":
                # igr_warmup=0: lambda is 1 from the first step, as on the PyTorch side
                self.igrc_compile(row, f"models/mnist_smallcnn_{row}.json",
                                  ["igr_warmup=0"] if row == "trades_igr" else [])
        if "ifia" in need:
            self.igrc_compile("ifia", "models/mnist_smallcnn_standard.json",
                              [f"eval.ig_steps={a.ifia_m}", f"eval.attack_ig_steps={a.ifia_m}",
                               f"eval.attack_batch={a.ifia_batch}"])
        # the weights both sides start from
        self.weights = os.path.join(w, f"weights-{a.weights_steps}.safetensors")
        if not os.path.exists(self.weights):
            print(f"training the shared weights ({a.weights_steps} standard steps, lr 1e-3) ...", flush=True)
            run_dir = os.path.join(w, "weights-run")
            cmd = [self.exes["standard"], "train", "--data", mnist, "--epochs", "1", "--batches",
                   str(a.weights_steps), "--lr", "1e-3", "--seed", "0", "--out", run_dir, "--log-every", "1000"]
            check(run_timed(cmd, self.base_env(), self.log), cmd)
            cmd = [self.exes["standard"], "export", "--out", run_dir, "--to", self.weights]
            check(run_timed(cmd, self.base_env(), self.log), cmd)
        # the data both sides read
        n_train = (a.warmup + a.steps) * BATCH
        n_eval = (a.eval_warmup + a.eval_batches) * BATCH
        self.train_dir = os.path.join(w, f"data-train-{n_train}")
        self.eval_dir = os.path.join(w, f"data-eval-{n_eval}")
        if not os.path.exists(os.path.join(self.train_dir, "t10k-labels-idx1-ubyte")):
            write_mnist_subset(mnist, self.train_dir, range(n_train), range(BATCH))
        if not os.path.exists(os.path.join(self.eval_dir, "t10k-labels-idx1-ubyte")):
            write_mnist_subset(mnist, self.eval_dir, range(BATCH), range(n_eval))
        if "ifia" in need:
            self.ifia_dir = os.path.join(w, f"data-ifia-{a.ifia_images}-{a.weights_steps}")
            if not os.path.exists(os.path.join(self.ifia_dir, "t10k-labels-idx1-ubyte")):
                cmd = [a.python, "bench/torch_smallcnn.py", "select", "--data", mnist, "--weights",
                       self.weights, "--n", str(a.ifia_images)]
                res = run_timed(cmd, self.base_env(), self.log)
                check(res, cmd)
                write_mnist_subset(mnist, self.ifia_dir, range(BATCH), last_json(res)["indices"])
        if not a.no_check:
            self.check_equal_work()

    def check_equal_work(self):
        """The standard objective without dropout (the one random element),
        3 steps from the shared weights on the shared data: igrc's running
        mean losses and PyTorch's must agree, which holds only if both take
        the same batches in the same order, start from the same weights and
        update them the same way (Adam)."""
        a = self.a
        n = min(3, a.warmup + a.steps)
        exe = self.igrc_compile("standard-nodrop", "models/mnist_smallcnn_standard.json", ["dropout=0"])
        cmd = [exe, "train", "--data", self.train_dir, "--epochs", "1", "--batches", str(n), "--seed", "0",
               "--init-from", self.weights, "--out", os.path.join(self.work, "run-check"), "--log-every", "1"]
        res = run_timed(cmd, dict(self.base_env(), IGRC_THREADS=str(a.threads)), self.log)
        check(res, cmd)
        mine = [float(m.group(1)) for _, t in res["lines"] for m in [re.search(r"step \d+/\d+\s+loss ([\d.]+)", t)] if m]
        cmd = [a.python, "bench/torch_smallcnn.py", "train", "standard", "--data", self.train_dir, "--warmup", "1",
               "--steps", str(n - 1) if n > 1 else "1", "--dropout", "0", "--weights", self.weights,
               "--threads", str(a.threads)]
        res = run_timed(cmd, self.base_env(), self.log)
        check(res, cmd)
        losses = last_json(res)["loss"][:n]
        theirs = [sum(losses[:i + 1]) / (i + 1) for i in range(len(losses))]
        ok = len(mine) == len(theirs) and all(abs(x - y) <= 2e-4 for x, y in zip(mine, theirs))
        self.check_line = (f"equal-work check (standard, dropout 0, {n} steps from the shared weights on the shared "
                           f"batches): mean loss igrc {' '.join(f'{x:.4f}' for x in mine)}, PyTorch "
                           f"{' '.join(f'{x:.4f}' for x in theirs)}: {'agree' if ok else 'DIFFER'}")
        print(self.check_line, flush=True)
        if not ok:
            sys.exit("the two sides do not do the same work (see above)")

    # one round of one side; returns (value, peak bytes, extra dict, [run results])
    def igrc_round(self, row):
        a = self.a
        if row in TRAIN_ROWS:
            total = a.warmup + a.steps
            cmd = [self.exes[row], "train", "--data", self.train_dir, "--epochs", "1", "--batches", str(total),
                   "--seed", "0", "--init-from", self.weights, "--out", os.path.join(self.work, f"run-{row}"),
                   "--log-every", "1"]
            cmd, env = self.side_cmd("igrc", cmd)
            res = run_timed(cmd, env, self.log)
            check(res, cmd)
            st = step_times(res)
            dt = st[total] - st[a.warmup]
            return a.steps * BATCH / dt, res["peak"], {}, [res]
        if row == "eval":
            runs = []
            for nb in (a.eval_warmup, a.eval_warmup + a.eval_batches):
                cmd = [self.exes["standard"], "eval", "--ckpt", self.weights, "--data", self.eval_dir, "--n",
                       str(nb * BATCH), "--attacks", "pgd", "--pgd-steps", "20", "--out",
                       os.path.join(self.work, "run-eval"), "--json", os.path.join(self.work, "run-eval.json")]
                cmd, env = self.side_cmd("igrc", cmd)
                res = run_timed(cmd, env, self.log)
                check(res, cmd)
                runs.append(res)
            dt = runs[1]["wall"] - runs[0]["wall"]
            return dt / (a.eval_batches * BATCH), max(r["peak"] for r in runs), {}, runs
        # ifia
        cmd = [self.exes["ifia"], "attrib", "--ckpt", self.weights, "--data", self.ifia_dir, "--n",
               str(a.ifia_images), "--k", "100", "--steps", str(a.ifia_steps), "--select", "kendall",
               "--out", os.path.join(self.work, "run-ifia"), "--json", os.path.join(self.work, "run-ifia.json")]
        cmd, env = self.side_cmd("igrc", cmd)
        res = run_timed(cmd, env, self.log)
        check(res, cmd)
        secs = [float(m.group(1)) for _, t in res["lines"] for m in [re.search(r", ([\d.]+) s$", t)]
                if t.startswith("attrib:") and m]
        with open(os.path.join(self.work, "run-ifia.json")) as f:
            j = json.load(f)
        extra = {"attacked": j["attacked"], "topk": j["topk_intersection"], "kendall": j["kendall_tau"]}
        return secs[-1] / a.ifia_images, res["peak"], extra, [res]

    def torch_round(self, row, side):
        a = self.a
        base = [a.python, "bench/torch_smallcnn.py"]
        common = ["--weights", self.weights, "--threads", str(a.threads)]
        if row in TRAIN_ROWS:
            cmd = base + ["train", row, "--data", self.train_dir, "--warmup", str(a.warmup), "--steps",
                          str(a.steps)] + common
        elif row == "eval":
            cmd = base + ["eval", "--data", self.eval_dir, "--warmup", str(a.eval_warmup), "--batches",
                          str(a.eval_batches)] + common
        else:
            cmd = base + ["ifia", "--data", self.ifia_dir, "--n", str(a.ifia_images), "--batch",
                          str(a.ifia_batch), "--steps", str(a.ifia_steps), "--m", str(a.ifia_m)] + common
        cmd, env = self.side_cmd(side, cmd)
        res = run_timed(cmd, env, self.log)
        check(res, cmd)
        j = last_json(res)
        extra = {k: j[k] for k in ("attacked", "topk", "kendall") if k in j}
        return j["value"], res["peak"], extra, [res]

    def run(self):
        a = self.a
        sides = ["igrc"] + [s for s in ("torch-best", "torch-default") if s in a.torch_configs]
        results = {row: {s: [] for s in sides} for row in a.rows}
        print("\n| row | round | side | value | unit | peak MiB | load before -> after | others' cores | flag |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
        for row, r, side in round_order(a.rows, sides, a.rounds):
            if side == "igrc":
                v, peak, extra, runs = self.igrc_round(row)
            else:
                v, peak, extra, runs = self.torch_round(row, side)
            lb, la = runs[0]["load_before"], runs[-1]["load_after"]
            others = max(x["others_cpu"] for x in runs)
            flag = loaded(others)
            results[row][side].append({"value": v, "peak": peak, "load_before": lb, "load_after": la,
                                       "others_cpu": others, "loaded": flag, **extra})
            unit = unit_of(row)
            print(f"| {row} | {r + 1} | {side} | {fmt(v, unit)} | {unit} | {peak / 2**20:.0f} | "
                  f"{lb:.2f} -> {la:.2f} | {others:.2f} | {'LOADED' if flag else ''} |", flush=True)
        return sides, results


def unit_of(row):
    return "img/s" if row in TRAIN_ROWS else "s/img"


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "img/s":
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    return f"{v:.4f}" if v < 1 else f"{v:.2f}"


ROW_NAMES = {"standard": "standard", "at": "AT (PGD-40)", "trades": "TRADES (PGD-40)",
             "trades_igr": "TRADES+IGR", "eval": "eval (PGD-20)", "ifia": "IFIA (attrib)"}


def table(rows, sides, results, threads):
    """The summary table (Markdown): per row each side's median [min - max],
    the ratios of the medians, the peak resident sets and the loaded rounds."""
    names = {"igrc": "igrc", "torch-best": "PyTorch best", "torch-default": "PyTorch default"}
    head = ["row", "unit"] + [f"{names[s]} median [min - max]" for s in sides]
    head += [f"igrc / {names[s]}" for s in sides[1:]]
    head += ["peak MiB " + " / ".join(names[s] for s in sides), "loaded rounds"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    summ = {}
    for row in rows:
        unit = unit_of(row)
        st = {s: summary([x["value"] for x in results[row][s]]) for s in sides}
        summ[row] = st
        cells = [ROW_NAMES[row], unit]
        for s in sides:
            m = st[s]
            cells.append(f"{fmt(m['median'], unit)} [{fmt(m['min'], unit)} - {fmt(m['max'], unit)}]" if m else "-")
        for s in sides[1:]:
            ratio = speed_ratio(st["igrc"], st[s], unit)
            cells.append(f"{ratio:.2f}x" if ratio else "-")
        cells.append(" / ".join(f"{max(x['peak'] for x in results[row][s]) / 2**20:,.0f}" if results[row][s] else "-"
                                for s in sides))
        n_loaded = sum(x["loaded"] for s in sides for x in results[row][s])
        n_all = sum(len(results[row][s]) for s in sides)
        cells.append(f"{n_loaded} of {n_all}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out), summ


# ---- the machine -------------------------------------------------------------------------------

def machine(a):
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            fl = next((l for l in f if l.startswith("flags")), "")
        flags = "AVX-512" if "avx512f" in fl else "AVX2" if "avx2" in fl else "no AVX2"
    except OSError:
        pass
    core = os.environ.get("OPENBLAS_CORETYPE")
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        name = lib.openblas_get_corename().decode()
        core = f"{name} (OPENBLAS_CORETYPE={core})" if core else f"{name} (its own choice)"
    except (OSError, AttributeError):
        core = f"OPENBLAS_CORETYPE={core}" if core else "unknown"
    tv = subprocess.run([a.python, "-c", "import torch;print(torch.__version__, torch.backends.mkldnn.is_available())"],
                        capture_output=True, text=True).stdout.split()
    alloc = ("glibc malloc kept warm (GLIBC_TUNABLES=" + WARM_MALLOC + ")" if a.torch_alloc == "tunables"
             else f"{a.torch_alloc} (LD_PRELOAD={a.alloc_path}" +
             (f", MALLOC_CONF={JEMALLOC_CONF})" if a.torch_alloc == "jemalloc" else ")"))
    return {"cpu": model, "isa": flags, "cores": os.cpu_count(), "threads": a.threads,
            "openblas": core,
            "torch": tv[0] if tv else "?", "onednn": tv[1] if len(tv) > 1 else "?",
            "torch_best_allocator": alloc, "kernel": platform.release()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--igrc", required=True, help="the igrc compiler")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10, help="timed train steps per round (after --warmup)")
    p.add_argument("--warmup", type=int, default=2, help="untimed train steps before them")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated: " + ",".join(ROWS))
    p.add_argument("--torch-configs", default="best,default", help="best, default or both")
    p.add_argument("--torch-alloc", choices=("tunables", "jemalloc", "tcmalloc"), default="tunables",
                   help="how PyTorch's best configuration keeps its allocator warm")
    p.add_argument("--alloc-path", default="", help="the library LD_PRELOADed for jemalloc/tcmalloc")
    p.add_argument("--no-pin", action="store_true", help="no taskset for igrc and PyTorch best")
    p.add_argument("--eval-batches", type=int, default=4, help="timed eval batches of 128 (after one warm-up)")
    p.add_argument("--eval-warmup", type=int, default=1)
    p.add_argument("--ifia-images", type=int, default=16)
    p.add_argument("--ifia-batch", type=int, default=16, help="attack batch (eval.attack_batch, both sides)")
    p.add_argument("--ifia-steps", type=int, default=200)
    p.add_argument("--ifia-m", type=int, default=10, help="IG path points of the saliency and the surrogate")
    p.add_argument("--weights-steps", type=int, default=100, help="standard training steps of the shared weights")
    p.add_argument("--mnist", default=os.path.join(ROOT, "data", "mnist"))
    p.add_argument("--work", default=os.path.join(ROOT, "build-bench", "cpu-bench"))
    p.add_argument("--python", default="/usr/bin/python3", help="a Python with PyTorch")
    p.add_argument("--no-check", action="store_true", help="skip the equal-work check of the loss")
    p.add_argument("--json", help="write every round and the summary here")
    a = p.parse_args(argv)
    a.rows = [r for r in a.rows.split(",") if r]
    a.torch_configs = [("torch-" + c) for c in a.torch_configs.split(",") if c]
    bad = [r for r in a.rows if r not in ROWS] + [c for c in a.torch_configs if c not in SIDES]
    if bad or a.rounds < 1 or a.steps < 1 or a.warmup < 1 or a.threads < 1:
        p.error(f"bad option value(s) {bad}; rounds, steps, warmup and threads must be >= 1")
    if a.ifia_images % a.ifia_batch:
        p.error("--ifia-images must be a multiple of --ifia-batch (igrc attacks whole batches)")
    if a.torch_alloc != "tunables" and not a.alloc_path:
        a.alloc_path = ALLOC_LIBS[a.torch_alloc]
    os.makedirs(a.work, exist_ok=True)
    b = Bench(a)
    m = machine(a)
    m["pinned_cpus"] = None if a.no_pin else b.cpus
    b.check_line = None
    print(f"machine: {m['cpu']} ({m['isa']}), {m['cores']} cores; OpenBLAS core {m['openblas']}; "
          f"PyTorch {m['torch']} (oneDNN {m['onednn']}); kernel {m['kernel']}")
    print(f"threads {a.threads} each side (igrc IGRC_THREADS, PyTorch torch.set_num_threads"
          f"{'' if a.no_pin else '; igrc and PyTorch best pinned to CPUs ' + b.cpus + ' with taskset; PyTorch best also OMP_NUM_THREADS, OMP_PROC_BIND=close, OMP_PLACES=cores'})")
    print(f"PyTorch best: {m['torch_best_allocator']}; PyTorch default: glibc malloc as it is, not pinned")
    what = []
    if any(r in TRAIN_ROWS for r in a.rows):
        what.append(f"train: batch {BATCH}, {a.warmup} warm-up + {a.steps} timed steps")
    if "eval" in a.rows:
        what.append(f"eval: PGD-20, {a.eval_warmup} warm-up + {a.eval_batches} timed batches of {BATCH}")
    if "ifia" in a.rows:
        what.append(f"IFIA: {a.ifia_images} images, batch {a.ifia_batch}, {a.ifia_steps} steps, k 100, "
                    f"m {a.ifia_m}, Kendall selection")
    print(f"rounds {a.rounds} (igrc, {', '.join(c.replace('torch-', 'PyTorch ') for c in a.torch_configs)}, "
          f"interleaved); " + "; ".join(what))
    print(f"load now: {' '.join(f'{x:.2f}' for x in read_loadavg())}", flush=True)
    b.prepare()
    sides, results = b.run()
    text, summ = table(a.rows, sides, results, a.threads)
    print("\n" + text)
    if "ifia" in a.rows:
        parts = []
        for sd in sides:
            x = results["ifia"][sd][-1]
            parts.append(f"{sd} {x.get('attacked')} attacked, top-k {x.get('topk', float('nan')):.4f}, "
                         f"Kendall {x.get('kendall', float('nan')):.4f}")
        print("IFIA results (the same protocol on both sides should give close numbers): " + "; ".join(parts))
    flagged = sum(x["loaded"] for row in a.rows for s in sides for x in results[row][s])
    if flagged:
        print(f"\n{flagged} round(s) ran while other processes kept more than {OTHERS_LIMIT} of a core busy: "
              "not a measurement to publish; rerun on a quiet machine.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": m, "options": vars(a), "equal_work_check": b.check_line, "rounds": results,
                       "summary": summ}, f, indent=1)
    b.log.close()


if __name__ == "__main__":
    main()
