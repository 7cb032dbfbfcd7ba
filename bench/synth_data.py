"""Writes a synthetic data set in the formats generated executables read
(runtime/io/dataset.h), for timing and backend comparisons where the real data
cannot be fetched (the GPU machine has no network):
  mnist   DIR: {train,t10k}-{images-idx3,labels-idx1}-ubyte, 1x28x28
  cifar10 DIR: data_batch_1.bin and test_batch.bin, 3x32x32 records
Pixels and labels are uniform random bytes / classes from a fixed seed.

  python3 bench/synth_data.py mnist|cifar10 DIR [N] [--seed S]"""
import argparse
import os
import random
import struct


def idx_files(d, prefix, n, rng):
    with open(os.path.join(d, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        f.write(rng.randbytes(n * 28 * 28))
    with open(os.path.join(d, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n))
        f.write(bytes(rng.randrange(10) for _ in range(n)))


def cifar_file(path, n, rng):
    with open(path, "wb") as f:
        for _ in range(n):
            f.write(bytes([rng.randrange(10)]) + rng.randbytes(3 * 32 * 32))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["mnist", "cifar10"])
    ap.add_argument("dir")
    ap.add_argument("n", type=int, nargs="?", default=1024, help="training images (default 1024)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.n < 1:
        ap.error("N must be >= 1")
    os.makedirs(a.dir, exist_ok=True)
    rng = random.Random(a.seed)
    test_n = max(1, a.n // 4)
    if a.kind == "mnist":
        idx_files(a.dir, "train", a.n, rng)
        idx_files(a.dir, "t10k", test_n, rng)
    else:
        cifar_file(os.path.join(a.dir, "data_batch_1.bin"), a.n, rng)
        cifar_file(os.path.join(a.dir, "test_batch.bin"), test_n, rng)
    print(f"synth_data.py: {a.kind}: {a.n} training and {test_n} test images in {a.dir}")


if __name__ == "__main__":
    main()
