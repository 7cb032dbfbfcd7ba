"""Tests of bench/run_cpu_bench.py's helpers (standard library only; no igrc
build, PyTorch or data needed): the Philox permutation against igrc's C code,
the statistics and ratios, the interleaved round order, the load flags and
readers, the IDX subset writer, the progress-line parser and the table.
Run: python3 bench/test_cpu_bench.py"""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_cpu_bench as rb  # noqa: E402


class Permutation(unittest.TestCase):
    def test_philox_known_answers(self):
        # Random123's kat_vectors, as tests/base/test_philox.c
        kats = [((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
                ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
                ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
                 (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))]
        for ctr, key, out in kats:
            self.assertEqual(rb.philox4x32_10(ctr, key), out)

    def test_igrc_permutation(self):
        # printed by a C program running runtime/io/dataset.c's dataset_permutation loop on base/philox.c
        self.assertEqual(rb.igrc_permutation(10, 0, 0), [2, 5, 9, 6, 4, 1, 8, 0, 7, 3])
        self.assertEqual(rb.igrc_permutation(10, 7, 0), [8, 3, 6, 4, 2, 0, 5, 1, 7, 9])
        for seed, head, want in ((0, [34, 823, 456, 1172, 426, 1356, 973, 1349, 224, 1522], 34134747),
                                 (7, [1054, 43, 18, 1524, 870, 69, 1314, 23, 451, 417], 941342225)):
            p = rb.igrc_permutation(1536, seed, 0)
            self.assertEqual(p[:10], head)
            self.assertEqual(sorted(p), list(range(1536)))
            h = 0
            for v in p:
                h = (h * 31 + v) % 1000000007
            self.assertEqual(h, want)


class Statistics(unittest.TestCase):
    def test_quantiles(self):
        xs = [5.0, 1.0, 4.0, 2.0, 3.0]
        s = rb.summary(xs)
        self.assertEqual((s["n"], s["median"], s["min"], s["max"], s["q1"], s["q3"]), (5, 3.0, 1.0, 5.0, 2.0, 4.0))
        self.assertEqual(rb.summary([1.0, 2.0, 3.0, 10.0])["median"], 2.5)
        self.assertEqual(rb.summary([7.0])["q3"], 7.0)
        self.assertIsNone(rb.summary([]))

    def test_ratio_of_medians(self):
        igrc, torch = rb.summary([100.0, 300.0, 200.0]), rb.summary([50.0, 100.0, 1000.0])
        self.assertAlmostEqual(rb.speed_ratio(igrc, torch, "img/s"), 2.0)
        # seconds per image: igrc faster when its time is smaller
        self.assertAlmostEqual(rb.speed_ratio(rb.summary([1.0]), rb.summary([3.0]), "s/img"), 3.0)
        self.assertIsNone(rb.speed_ratio(None, torch, "img/s"))


class Order(unittest.TestCase):
    def test_interleaved(self):
        order = rb.round_order(["standard", "eval"], ["igrc", "torch-best", "torch-default"], 2)
        self.assertEqual(order[:6], [("standard", 0, "igrc"), ("standard", 0, "torch-best"),
                                     ("standard", 0, "torch-default"), ("standard", 1, "igrc"),
                                     ("standard", 1, "torch-best"), ("standard", 1, "torch-default")])
        self.assertEqual(order[6], ("eval", 0, "igrc"))
        self.assertEqual(len(order), 12)
        sides = [s for _, _, s in order]
        # never two runs of one side in a row
        self.assertTrue(all(a != b for a, b in zip(sides, sides[1:])))


class Load(unittest.TestCase):
    def test_flag(self):
        self.assertFalse(rb.loaded(0.0))
        self.assertFalse(rb.loaded(rb.OTHERS_LIMIT))
        self.assertTrue(rb.loaded(rb.OTHERS_LIMIT + 0.01))
        self.assertTrue(rb.loaded(1.5))

    def test_readers(self):
        with tempfile.TemporaryDirectory() as d:
            la, st = os.path.join(d, "loadavg"), os.path.join(d, "stat")
            with open(la, "w") as f:
                f.write("4.25 3.10 2.00 3/150 999\n")
            with open(st, "w") as f:
                f.write("cpu  100 10 50 1000 7 3 2 5 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
            self.assertEqual(rb.read_loadavg(la), (4.25, 3.10, 2.00))
            # user + nice + system + irq + softirq + steal, in seconds
            self.assertAlmostEqual(rb.read_cpu_busy(st), (100 + 10 + 50 + 3 + 2 + 5) / os.sysconf("SC_CLK_TCK"))


class Data(unittest.TestCase):
    def test_subset(self):
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
            os.makedirs(src)
            for split, n in (("train", 5), ("t10k", 4)):
                rb.write_idx(os.path.join(src, f"{split}-images-idx3-ubyte"), (n, 2, 2),
                             bytes(v for i in range(n) for v in [i] * 4))
                rb.write_idx(os.path.join(src, f"{split}-labels-idx1-ubyte"), (n,), bytes(range(n)))
            rb.write_mnist_subset(src, dst, [4, 0, 2], [3])
            dims, im = rb.read_idx(os.path.join(dst, "train-images-idx3-ubyte"))
            self.assertEqual(dims, (3, 2, 2))
            self.assertEqual(im, bytes([4] * 4 + [0] * 4 + [2] * 4))
            self.assertEqual(rb.read_idx(os.path.join(dst, "train-labels-idx1-ubyte")), ((3,), bytes([4, 0, 2])))
            self.assertEqual(rb.read_idx(os.path.join(dst, "t10k-labels-idx1-ubyte")), ((1,), bytes([3])))


class Parsing(unittest.TestCase):
    def test_step_times(self):
        res = {"lines": [(0.1, "training x on d: 384 images"), (0.5, "epoch 1/1  step 1/3  loss 0.19  100 img/s  ETA 0:02"),
                         (0.9, "epoch 1/1  step 2/3  loss 0.12  acc 97.3%  152 img/s  ETA 0:01"),
                         (1.4, "epoch 1/1  step 3/3  loss 0.14  170 img/s  ETA 0:00"), (1.5, "trained 1 epochs")]}
        self.assertEqual(rb.step_times(res), {1: 0.5, 2: 0.9, 3: 1.4})
        self.assertEqual(rb.last_json({"lines": [(0, "{\"a\": 1}"), (1, "x"), (2, "{\"value\": 2}"), (3, "done")]}),
                         {"value": 2})

    def test_table(self):
        sides = ["igrc", "torch-best"]
        r = lambda v, p, flag=False: {"value": v, "peak": p * 2**20, "loaded": flag}  # noqa: E731
        results = {"standard": {"igrc": [r(100, 10), r(120, 11), r(110, 12, True)],
                                "torch-best": [r(50, 30), r(60, 31), r(55, 32)]},
                   "ifia": {"igrc": [r(2.0, 5)], "torch-best": [r(3.0, 7)]}}
        text, summ = rb.table(["standard", "ifia"], sides, results, 2)
        lines = text.splitlines()
        self.assertIn("110 [100 - 120]", lines[2])
        self.assertIn("2.00x", lines[2])
        self.assertIn("12 / 32", lines[2])
        self.assertIn("1 of 6", lines[2])
        self.assertIn("1.50x", lines[3])
        self.assertEqual(summ["standard"]["igrc"]["median"], 110)


if __name__ == "__main__":
    unittest.main()
