"""Compiling and running igrc executables for the GPU scripts
(bench/gpu_train_check.py, bench/gpu_bench.py): `igrc compile` with or
without the CUDA target, synthetic data in the model's format, `train` runs
that return last.json, safetensors checkpoints as numpy arrays, and the peak
device memory an executable reports."""
import json
import os
import re
import struct
import subprocess
import sys
import threading

import numpy as np


class RunError(Exception):
    """A command failed; the message says which and shows its output's end."""


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise RunError(f"exit {r.returncode}: {' '.join(cmd)}\n{tail}")
    return r.stdout + r.stderr


def model_data(model):
    """'mnist' or 'cifar10': the model file's data set, which fixes the image shape."""
    with open(model) as f:
        data = json.load(f).get("data", "mnist")
    if data not in ("mnist", "cifar10"):
        raise RunError(f"{model}: data '{data}' has no synthetic stand-in (mnist, cifar10)")
    return data


def synth(model, work, n):
    """A synthetic training set of n images for model; returns its directory."""
    kind = model_data(model)
    d = os.path.join(work, f"synth-{kind}-{n}")
    if not os.path.isdir(d):
        run([sys.executable, os.path.join(os.path.dirname(__file__), "synth_data.py"), kind, d, str(n)])
    return d


def compile_model(igrc, model, out, cuda, gpu_arch=None, tf32=False, batch=None, defines=()):
    """igrc compile; cuda adds --target cuda [--gpu-arch A] [--tf32];
    defines: "key=value" overrides, one -D each."""
    cmd = [igrc, "compile", model, "-o", out]
    if batch:
        cmd += ["--batch", str(batch)]
    for d in defines:
        cmd += ["-D", d]
    if cuda:
        cmd += ["--target", "cuda"] + (["--gpu-arch", gpu_arch] if gpu_arch else []) + (["--tf32"] if tf32 else [])
    return run(cmd)


def device_args(cuda_build, device):
    """The executable's --device flag; executables built without the CUDA target have none."""
    if cuda_build:
        return ["--device", device]
    if device != "cpu":
        raise RunError(f"an executable built without --target cuda cannot run on {device}")
    return []


def train(exe, data, steps, out, dev_args, seed=0, env=None):
    """`exe train` for `steps` batches of one epoch; returns (last.json, output)."""
    text = run([exe, "train", "--data", data, "--epochs", "1", "--batches", str(steps), "--seed", str(seed),
                "--out", out, "--log-every", "1"] + dev_args, env=env)
    with open(os.path.join(out, "last.json")) as f:
        return json.load(f), text


_PROGRESS = re.compile(r"^epoch (\d+)/\d+\s+step (\d+)/\d+\s+loss (\S+)", re.M)


def step_losses(text):
    """The loss of every step of epoch 1 from train's progress lines (--log-every 1;
    each line shows the epoch's running mean, printed to 4 decimals), in step
    order: {step: loss}. Step 1's is that step's own loss."""
    means = {int(s): float(v) for e, s, v in _PROGRESS.findall(text) if e == "1"}
    return {k: k * m - (k - 1) * means[k - 1] if k > 1 else m for k, m in sorted(means.items())
            if k == 1 or k - 1 in means}


_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8,
              "BOOL": np.bool_}


def read_safetensors(path):
    """{name: numpy array} of a safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base, out = 8 + n, {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(blob[base + b:base + e], dtype=_ST_DTYPES[t["dtype"]]).reshape(t["shape"])
    return out


_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


def write_safetensors(path, tensors):
    """Writes {name: numpy array} as a safetensors file (names in order)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": _ST_NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


_UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9,
          "kib": 2**10, "mib": 2**20, "gib": 2**30}
_NUM = re.compile(r"(\d+(?:\.\d+)?)\s*(bytes|byte|kib|mib|gib|kb|mb|gb|b)?\b", re.I)


def parse_peak_device_bytes(text):
    """The peak device memory the executable reports, from the first line
    that says 'peak' and one of device / gpu / cuda, e.g. 'cuda: peak
    device memory 812.5 MiB': its first number with a unit, else its last
    number, in bytes. None when no such line was printed."""
    for line in text.splitlines():
        low = line.lower()
        if "peak" not in low or not any(w in low for w in ("device", "gpu", "cuda")):
            continue
        nums = [(m.group(1), (m.group(2) or "").lower()) for m in _NUM.finditer(line)]
        with_unit = [n for n in nums if n[1]]
        pick = with_unit[0] if with_unit else (nums[-1] if nums else None)
        if pick:
            return int(float(pick[0]) * _UNITS[pick[1]])
    return None


class GpuMemPoll:
    """The largest GPU memory nvidia-smi shows for any compute process while
    it runs (the CUDA context included), sampled every 0.1 s; None without
    nvidia-smi. A cross-check for the executable's own peak report."""

    def __init__(self):
        self.peak, self._stop = None, threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        cmd = ["nvidia-smi", "--query-compute-apps=used_memory", "--format=csv,noheader,nounits"]
        while not self._stop.wait(0.1):
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.TimeoutExpired):
                return
            for v in out.split():
                if v.isdigit():
                    self.peak = max(self.peak or 0, int(v) * 2**20)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
