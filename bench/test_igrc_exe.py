"""Checks of the GPU scripts' parsers and comparisons: bench/igrc_exe.py,
bench/gpu_train_check.py, bench/gpu_bench.py's table (python3 bench/test_igrc_exe.py)."""
import json
import os
import struct
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_bench  # noqa: E402
import gpu_train_check  # noqa: E402
import igrc_exe  # noqa: E402


class PeakLine(unittest.TestCase):
    def test_units_and_forms(self):
        p = igrc_exe.parse_peak_device_bytes
        self.assertEqual(p("trained 1 epochs\ncuda: peak device memory 812.5 MiB\n"), int(812.5 * 2**20))
        self.assertEqual(p("peak device memory (cuda:0): 1048576 bytes"), 1048576)
        self.assertEqual(p("GPU peak 2 GiB, pool 3 GiB"), 2 * 2**30)
        self.assertEqual(p("peak gpu memory: 4096"), 4096)
        self.assertEqual(p("device memory peak 1.5 GB"), 1500000000)

    def test_absent(self):
        p = igrc_exe.parse_peak_device_bytes
        self.assertIsNone(p("epoch 1/1 step 3/3 loss 2.3 900 img/s\ntrained 1 epochs (3 steps) in 0.4 s"))
        self.assertIsNone(p("peak resident set 123 MiB"))  # not device memory


class StepLosses(unittest.TestCase):
    def test_running_means_to_steps(self):
        text = ("training m on d: 24 images, batch 8, 3 steps per epoch, lr 0.1\n"
                "epoch 1/1  step 1/3  loss 2.4779  acc 0.0%  1 img/s  ETA 0:32\n"
                "epoch 1/1  step 2/3  loss 4.0320  acc 0.0%  1 img/s  ETA 0:22\n"
                "epoch 1/1  step 3/3  loss 7.4287  acc 0.0%  2 img/s  ETA 0:16\n"
                "epoch 2/2  step 1/3  loss 9.0000  acc 0.0%  2 img/s  ETA 0:16\n"
                "trained 1 epochs (3 steps) in 29.2 s; checkpoint x\n")
        got = igrc_exe.step_losses(text)
        self.assertEqual(sorted(got), [1, 2, 3])
        self.assertAlmostEqual(got[1], 2.4779)
        self.assertAlmostEqual(got[2], 2 * 4.0320 - 2.4779)
        self.assertAlmostEqual(got[3], 3 * 7.4287 - 2 * 4.0320)

    def test_no_lines(self):
        self.assertEqual(igrc_exe.step_losses("trained 1 epochs (1 steps) in 0.1 s"), {})


class BenchTable(unittest.TestCase):
    def rows(self, igrc_loss1):
        return [{"impl": "igrc", "model": "resnet18", "img_per_s": 50.0, "peak_bytes": 2**30, "loss_step1": igrc_loss1},
                {"impl": "torch-eager", "model": "resnet18", "img_per_s": 100.0, "peak_bytes": 2**30,
                 "loss_step1": 2.9823}]

    def test_same_first_loss(self):
        t = gpu_bench.table(self.rows(2.9801))
        self.assertIn("| 2.9801 |", t)
        self.assertNotIn("first-step loss", t)

    def test_different_first_loss_flagged(self):
        # the old benchmark's ResNet-18 gap: igrc's lambda ramp at 0 on step 1, the peer's at 1
        t = gpu_bench.table(self.rows(2.3265))
        self.assertIn("first-step loss 22% off eager's", t)


class Safetensors(unittest.TestCase):
    def test_round_trip(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
        b = np.array([7, -1], dtype=np.int32)
        hdr = {"__metadata__": {"k": "v"},
               "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
               "y": {"dtype": "I32", "shape": [2], "data_offsets": [24, 32]}}
        h = json.dumps(hdr).encode()
        with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
            f.write(struct.pack("<Q", len(h)) + h + a.tobytes() + b.tobytes())
        try:
            t = igrc_exe.read_safetensors(f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(sorted(t), ["w", "y"])
        np.testing.assert_array_equal(t["w"], a)
        np.testing.assert_array_equal(t["y"], b)

    def test_write_then_read(self):
        ts = {"b": np.array([[1.5, -2]], np.float32), "a": np.arange(3, dtype=np.int64), "d": np.ones(2)}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.safetensors")
            igrc_exe.write_safetensors(path, ts)
            back = igrc_exe.read_safetensors(path)
        self.assertEqual(list(back), ["b", "a", "d"])
        for k, v in ts.items():
            self.assertEqual(back[k].dtype, v.dtype)
            np.testing.assert_array_equal(back[k], v)


class TrainCheckCompare(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(0)
        self.ref = {"w": rng.standard_normal((50, 20)).astype(np.float32), "fc3": np.zeros(10, np.float32)}

    def test_rounding_passes(self):
        got = {k: v * np.float32(1 + 1e-6) for k, v in self.ref.items()}
        got["fc3"] = got["fc3"] + np.float32(1e-8)
        _, worst = gpu_train_check.compare(self.ref, got, 1e-3)
        self.assertLess(worst, 1)

    def test_wrong_values_fail(self):
        got = dict(self.ref, w=self.ref["w"] * np.float32(1.01))
        rows, worst = gpu_train_check.compare(self.ref, got, 1e-3)
        self.assertGreater(worst, 1)
        self.assertEqual(rows[0][0], "w")
        self.assertAlmostEqual(rows[0][1], 0.01, places=4)

    def test_nan_and_missing_fail(self):
        _, worst = gpu_train_check.compare(self.ref, dict(self.ref, fc3=np.full(10, np.nan, np.float32)), 1e-3)
        self.assertEqual(worst, float("inf"))
        with self.assertRaises(igrc_exe.RunError):
            gpu_train_check.compare(self.ref, {"w": self.ref["w"]}, 1e-3)


if __name__ == "__main__":
    unittest.main()
