"""What the reference tests' drivers (test_ifia_reference.py, test_autoattack_reference.py) share:
the ok/FAIL lines, running igrc's commands, and main()'s set-up (arguments, MNIST, a scratch
directory kept with IGRC_KEEP_TMP=1). Only the drivers use it: the references themselves
(ifia_reference.py, autoattack_reference.py) import nothing of igrc's."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

failures = []


def check(ok, msg):
    print(("ok    " if ok else "FAIL  ") + msg)
    if not ok:
        failures.append(msg)


def run(cmd, quiet=False, **kw):
    """Runs cmd; prints its time and name unless quiet; exits the test on failure."""
    t = time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if r.returncode != 0:
        print("command failed (%d): %s\n%s\n%s" % (r.returncode, " ".join(cmd), r.stdout[-2000:],
                                                   r.stderr[-2000:]))
        sys.exit(1)
    if not quiet:
        print("  [%5.1f s] %s" % (time.time() - t, " ".join(os.path.basename(c) if i == 0 else c
                                                           for i, c in enumerate(cmd))))
    return r


def main(name, doc, body, threads, cleanup=None):
    """usage: NAME IGRC_BIN SOURCE_DIR. Calls body(igrc, src, graph, mnist, tmp) with the standard
    SmallCNN's graph file and a scratch directory; cleanup() runs after it, even on failure."""
    import torch
    if len(sys.argv) != 3:
        print(doc)
        return 2
    igrc, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    torch.set_num_threads(threads)
    graph = os.path.join(src, "models", "mnist_smallcnn_standard.json")
    mnist = os.path.join(src, "data", "mnist")
    if not os.path.exists(os.path.join(mnist, "t10k-images-idx3-ubyte")) and \
            not os.path.exists(os.path.join(mnist, "t10k-images-idx3-ubyte.gz")):
        print("%s: FAIL: MNIST not found in %s (scripts/setup.sh fetches it)" % (name, mnist))
        return 1
    tmp = tempfile.mkdtemp(prefix="igrc_%s_" % name)
    try:
        return body(igrc, src, graph, mnist, tmp)
    finally:
        if cleanup:
            cleanup()
        if os.environ.get("IGRC_KEEP_TMP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
