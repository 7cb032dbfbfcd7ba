"""Checks of bench/igrc_exe.py's parsers (python3 bench/test_igrc_exe.py)."""
import os
import struct
import json
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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


if __name__ == "__main__":
    unittest.main()
