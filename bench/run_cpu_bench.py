"""Times train_step throughput (images/s) and peak memory of igrc-compiled
SmallCNN executables against the PyTorch peer (bench/torch_smallcnn.py), in
one run, on the same CPU with the same thread count. Used by
bench/cpu_train_step.sh; prints a Markdown table."""
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

ROWS = [("standard", 40), ("at", 4), ("trades", 4), ("trades_igr", 3)]


def child_peak(cmd, env):
    """Runs cmd; returns (stdout, wall seconds, peak RSS bytes of the child)."""
    script = ("import resource,subprocess,sys;"
              "r=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
              "sys.stdout.write(r.stdout+r.stderr);"
              "print('PEAK',resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024);"
              "sys.exit(r.returncode)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script] + cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout}{out.stderr}")
    peak = int(re.search(r"PEAK (\d+)", out.stdout).group(1))
    return out.stdout, time.perf_counter() - t0, peak


def igrc_row(igrc, kind, steps, threads, work):
    exe = os.path.join(work, kind)
    subprocess.run([igrc, "compile", f"models/mnist_smallcnn_{kind}.json", "-o", exe], check=True,
                   capture_output=True)
    env = dict(os.environ, IGRC_THREADS=str(threads))
    # one warm-up step is part of every run: subtract a 1-step run's time
    out1, _, _ = child_peak([exe, "train", "--data", "mnist", "--epochs", "1", "--batches", "1",
                             "--out", os.path.join(work, "r1"), "--log-every", "1000"], env)
    outn, _, peak = child_peak([exe, "train", "--data", "mnist", "--epochs", "1", "--batches",
                                str(steps + 1), "--out", os.path.join(work, "rn"), "--log-every", "1000"], env)
    t1 = float(re.search(r"in ([\d.]+) s", out1).group(1))
    tn = float(re.search(r"in ([\d.]+) s", outn).group(1))
    return steps * 128 / (tn - t1), peak


def torch_row(kind, steps, threads):
    out, _, peak = child_peak(["/usr/bin/python3", "bench/torch_smallcnn.py", kind, str(steps),
                               str(threads)], dict(os.environ))
    return float(out.split()[1]), peak


def main():
    igrc, threads = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory() as work:
        print(f"SmallCNN train_step, batch 128, {threads} threads, {os.uname().machine}\n")
        print("| objective | igrc img/s | PyTorch img/s | ratio | igrc peak MiB | PyTorch peak MiB |")
        print("| --- | --- | --- | --- | --- | --- |")
        for kind, steps in ROWS:
            ir, ip = igrc_row(igrc, kind, steps, threads, work)
            tr, tp = torch_row(kind, steps, threads)
            print(f"| {kind} | {ir:.1f} | {tr:.1f} | {ir / tr:.2f} | {ip / 2**20:.0f} | {tp / 2**20:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
