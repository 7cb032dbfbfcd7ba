#!/usr/bin/env python3
"""Which file do errors in included files name? Mutates one value of a model,
network or objective file (a wrong type, a negative number, a deleted or
renamed key, an empty object ...), writes it as inc_x.json included by
top_x.json, runs `igrc check top_x.json` and counts messages that name the
included file, the including one, or neither. A mistake inside an included
file should name that file; the cases naming another are printed.

    python3 scripts/include_audit.py [--seed N] [--trials N] [--igrc PATH]
"""
import argparse
import json
import os
import random
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M = os.path.join(ROOT, "models")
SOURCES = ["nets/smallcnn.json", "nets/mlp.json", "nets/resnet18.json", "objectives/trades_igr.json",
           "objectives/mart.json", "objectives/art.json", "mnist_smallcnn_trades_igr.json"]


def paths(o, p=()):
    yield p
    if isinstance(o, dict):
        for k, v in o.items():
            if k != "include":
                yield from paths(v, p + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from paths(v, p + (i,))


def mutate(doc, rng):
    p = rng.choice([p for p in paths(doc) if p])
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    k, r = p[-1], rng.random()
    if r < 0.2: parent[k] = "bogus"
    elif r < 0.35: parent[k] = -7
    elif r < 0.45: parent[k] = None
    elif r < 0.55: parent[k] = [1, 2]
    elif r < 0.65 and isinstance(parent, dict): del parent[k]
    elif r < 0.75 and isinstance(parent, dict): parent[str(k) + "x"] = parent.pop(k)
    elif r < 0.85: parent[k] = {}
    elif isinstance(parent[k], str): parent[k] += "q"
    else: parent[k] = 1e30
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--igrc", default=os.path.join(ROOT, "build", "tools", "igrc", "igrc"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    counts = {"included": 0, "including": 0, "neither": 0, "accepted": 0}
    others = []
    with tempfile.TemporaryDirectory() as tmp:
        inc, top = os.path.join(tmp, "inc_x.json"), os.path.join(tmp, "top_x.json")
        for _ in range(args.trials):
            src = rng.choice(SOURCES)
            doc = json.load(open(os.path.join(M, src)))
            if "include" in doc:
                doc["include"] = [os.path.join(M, os.path.dirname(src), i) for i in doc["include"]]
            where = mutate(doc, rng)
            json.dump(doc, open(inc, "w"))
            t = {"igrc": 1, "include": [inc]}
            if src.startswith("nets/"):
                t["include"].insert(0, os.path.join(M, "objectives", "standard.json"))
                t["data"] = "mnist"
            if src.startswith("objectives/"):
                t["include"].insert(0, os.path.join(M, "nets", "smallcnn.json"))
            json.dump(t, open(top, "w"))
            r = subprocess.run([args.igrc, "check", top], capture_output=True, text=True)
            if r.returncode == 0:
                counts["accepted"] += 1
                continue
            msg = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            kind = "included" if "inc_x.json" in msg else "including" if "top_x.json" in msg else "neither"
            counts[kind] += 1
            if kind != "included":
                others.append((src, ".".join(map(str, where)), msg))
    print(counts)
    for o in others:
        print(*o, sep="  |  ")


if __name__ == "__main__":
    main()
