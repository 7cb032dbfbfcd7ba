#!/usr/bin/env python3
"""Compile time against network depth: a linear layer, a chain of D ReLU
layers and a classifier, with the standard objective (so autodiff, the IG
and attack entry points and `activations`, which concatenates every
layer), compiled with `igrc compile --time-passes` for each depth. Prints
seconds per depth and per layer; compile time should grow linearly, so
seconds per layer should stay about flat as D doubles.

    python3 bench/compile_depth.py [--depths 100,200,400,800] [--igrc build/tools/igrc/igrc]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def chain_model(depth):
    nodes = [{"id": "flatten", "op": "flatten", "inputs": ["x"]},
             {"id": "fc1", "op": "linear", "inputs": ["flatten"], "out_features": 16}]
    prev = "fc1"
    for i in range(depth):
        nodes.append({"id": f"r{i}", "op": "relu", "inputs": [prev]})
        prev = f"r{i}"
    nodes.append({"id": "fc2", "op": "linear", "inputs": [prev], "out_features": 10})
    return {"igrc": 1, "name": f"chain{depth}", "batch": 8, "data": "mnist",
            "include": [os.path.join(ROOT, "models", "objectives", "standard.json")],
            "inputs": {"x": {"shape": ["B", 1, 28, 28], "dtype": "f32", "range": [0, 1]},
                       "y": {"shape": ["B"], "dtype": "i32", "classes": 10}},
            "networks": {"net": {"input": "x", "nodes": nodes, "output": "fc2"}}}


def compile_once(igrc, path, out):
    t0 = time.perf_counter()
    r = subprocess.run([igrc, "compile", path, "-o", out, "--time-passes"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"igrc compile {path} failed:\n{r.stderr}")
    phases = dict((m.group(1).strip(), float(m.group(2)))
                  for m in re.finditer(r"igrc: (.+?)\s+([0-9.]+) s$", r.stderr, re.M))
    kernels = re.search(r"(\d+) kernels", r.stderr)
    return wall, phases, int(kernels.group(1)) if kernels else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="100,200,400,800")
    ap.add_argument("--igrc", default=os.path.join(ROOT, "build", "tools", "igrc", "igrc"))
    args = ap.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    print("| depth | compile s | s per layer | LLVM O3 s | object s | kernels |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for d in depths:
            path = os.path.join(tmp, f"chain{d}.json")
            with open(path, "w") as f:
                json.dump(chain_model(d), f)
            wall, ph, kernels = compile_once(args.igrc, path, os.path.join(tmp, f"chain{d}"))
            print(f"| {d} | {wall:.2f} | {wall / d * 1000:.1f} ms | {ph.get('LLVM O3', 0):.2f} | "
                  f"{ph.get('object emitted', 0):.2f} | {kernels} |", flush=True)


if __name__ == "__main__":
    main()
