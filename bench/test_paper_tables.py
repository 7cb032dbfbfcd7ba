"""Checks of bench/paper_tables.py's statistics and claim verdicts
(python3 bench/test_paper_tables.py)."""
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paper_tables as pt  # noqa: E402


def write_attrib(d, topk, tau, skipped=()):
    imgs = [{"index": i, "attacked": True, "topk": a, "kendall_tau": b}
            for i, (a, b) in enumerate(zip(topk, tau))]
    imgs += [{"index": 100 + i, "attacked": False, "topk": 1.0, "kendall_tau": 1.0}
             for i in range(len(skipped))]
    with open(os.path.join(d, "attrib.json"), "w") as f:
        json.dump({"images": imgs}, f)


def row(topk, tau, pgd, topk_se=0.01, tau_se=0.01, n=500):
    return {"topk": topk, "kendall": tau, "pgd": pgd, "topk_se": topk_se, "kendall_se": tau_se,
            "eval_n": n}


class Spread(unittest.TestCase):
    def test_standard_error_over_attacked_images_only(self):
        with tempfile.TemporaryDirectory() as d:
            write_attrib(d, [0.5, 0.7, 0.9], [0.1, 0.2, 0.6], skipped=[0])
            r = pt.with_spread({}, d)
        # sample sd of (0.5, 0.7, 0.9) is 0.2; of (0.1, 0.2, 0.6) sqrt(0.07)
        self.assertAlmostEqual(r["topk_se"], 0.2 / math.sqrt(3), places=12)
        self.assertAlmostEqual(r["kendall_se"], math.sqrt(0.07 / 3), places=12)

    def test_kept_when_present(self):
        r = {"topk_se": 0.5, "kendall_se": 0.25}
        self.assertEqual(pt.with_spread(dict(r), "/nonexistent"), r)

    def test_binomial_accuracy_error(self):
        self.assertAlmostEqual(pt.acc_se({"pgd": 80.0, "eval_n": 400}), 2.0, places=12)


class Claim(unittest.TestCase):
    def test_raised_beyond_noise_and_kept(self):
        line = pt.claim("trades_igr", "trades", row(0.78, 0.40, 87.6), row(0.72, 0.35, 88.8))
        self.assertIn("raised beyond noise", line)
        self.assertIn("adversarial accuracy kept", line)
        self.assertIn("+6.00", line)

    def test_raised_within_noise(self):
        line = pt.claim("trades_igr", "trades", row(0.73, 0.36, 88.0, 0.02, 0.02),
                        row(0.72, 0.35, 88.0, 0.02, 0.02))
        self.assertIn("raised (within noise)", line)

    def test_not_raised_when_either_falls(self):
        line = pt.claim("at_igr", "at", row(0.80, 0.30, 50.0), row(0.70, 0.35, 50.0))
        self.assertIn("NOT raised", line)

    def test_lost_beyond_one_standard_error(self):
        # SE of the difference: hypot(2.09, 2.0), about 2.9 points, on 400 images each
        kept = pt.claim("mart_igr", "mart", row(0.8, 0.4, 77.5, n=400), row(0.7, 0.3, 80.0, n=400))
        lost = pt.claim("mart_igr", "mart", row(0.8, 0.4, 77.0, n=400), row(0.7, 0.3, 80.0, n=400))
        self.assertIn("accuracy kept", kept)
        self.assertIn("accuracy LOST", lost)


class RowMark(unittest.TestCase):
    def test_a_live_mark_refuses_and_a_stale_one_is_taken_over(self):
        with tempfile.TemporaryDirectory() as d:
            mark = pt.claim_row(d)
            with open(mark) as f:
                self.assertEqual(int(f.read()), os.getpid())
            with self.assertRaisesRegex(RuntimeError, f"being run by process {os.getpid()}"):
                pt.claim_row(d)
            gone = subprocess.Popen([sys.executable, "-c", "pass"])
            gone.wait()  # a pid that no longer runs
            with open(mark, "w") as f:
                f.write(f"{gone.pid}\n")
            self.assertEqual(pt.claim_row(d), mark)
            with open(mark) as f:
                self.assertEqual(int(f.read()), os.getpid())


class Jobs(unittest.TestCase):
    def run_fake(self, jobs, todo, fail=()):
        """run_rows with a stand-in for one(): records the environment and
        how many rows ran at once."""
        state = {"now": 0, "most": 0, "env": None}
        lock = threading.Lock()

        def fake(args, sched, ds, m, igrc, env):
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
                state["env"] = env
            time.sleep(0.2)
            with lock:
                state["now"] -= 1
            if m in fail:
                raise RuntimeError("broken")
            return {"dataset": ds, "method": m, "topk": 0.5, "kendall": 0.3, "natural": 90.0,
                    "pgd": 50.0, "minutes": 0.0}

        with tempfile.TemporaryDirectory() as out:
            args = types.SimpleNamespace(jobs=jobs, out=out, igrc="igrc", schedule="quick",
                                         datasets=["mnist"])
            pt.markdown = lambda rows, a: "\n".join(r["method"] for r in rows)
            rows = pt.run_rows(args, {}, todo, one_row=fake)
            with open(os.path.join(out, "results.json")) as f:
                written = json.load(f)
        return rows, written, state

    def setUp(self):
        self.markdown = pt.markdown
        self.threads = os.environ.pop("IGRC_THREADS", None)

    def tearDown(self):
        pt.markdown = self.markdown
        if self.threads is not None:
            os.environ["IGRC_THREADS"] = self.threads

    def test_rows_run_at_once_and_come_back_in_order(self):
        todo = [("mnist", m) for m in ("standard", "at", "trades", "mart")]
        rows, written, state = self.run_fake(2, todo)
        self.assertEqual(state["most"], 2)
        self.assertEqual([r["method"] for r in rows], [m for _, m in todo])
        self.assertEqual(written, rows)
        self.assertEqual(state["env"]["IGRC_THREADS"], str(max(1, (os.cpu_count() or 1) // 2)))

    def test_one_job_runs_rows_one_by_one_and_a_failed_row_is_left_out(self):
        todo = [("mnist", m) for m in ("standard", "at", "trades")]
        rows, _, state = self.run_fake(1, todo, fail=("at",))
        self.assertEqual(state["most"], 1)
        self.assertEqual([r["method"] for r in rows], ["standard", "trades"])
        self.assertNotIn("IGRC_THREADS", state["env"])


class Schedules(unittest.TestCase):
    def test_medium_is_quick_on_the_whole_set_with_a_longer_warmup(self):
        self.assertNotIn("--limit", pt.MEDIUM["train"])
        self.assertEqual(pt.MEDIUM["eval_n"], pt.QUICK["eval_n"])
        self.assertIn("igr_warmup=0.5", pt.MEDIUM["objective"]["trades_igr"])
        self.assertIn("igr_warmup=0.25", pt.QUICK["objective"]["trades_igr"])
        self.assertEqual(pt.MEDIUM["objective"]["trades"], pt.QUICK["objective"]["trades"])

    def test_every_method_has_paper_numbers_on_mnist(self):
        for m in pt.METHODS:
            self.assertIn(m, pt.PAPER_T2["mnist"], m)


class AutoAttackColumns(unittest.TestCase):
    def row(self, method, **kw):
        r = {"dataset": "mnist", "method": method, "topk": 0.6, "kendall": 0.5, "topk_se": 0.02,
             "kendall_se": 0.03, "natural": 98.0, "fgsm": 80.0, "pgd": 85.0, "cw": 84.0, "eval_n": 500,
             "pgd_steps": 20, "attrib_steps": 30, "k": 100, "ig_steps": 10, "attack_ig_steps": 10,
             "consistency": 0.8, "attacked": 64}
        r.update(kw)
        return r

    def test_columns_appear_with_the_check(self):
        args = types.SimpleNamespace(schedule="medium", datasets=["mnist"])
        rows = [self.row("trades", aa_n=200, aa_natural=98.0, aa_pgd=86.0, apgd_ce=84.5, autoattack=80.0),
                self.row("trades_igr", aa_n=200, aa_natural=98.0, aa_pgd=85.0, apgd_ce=85.5, autoattack=79.0)]
        md = pt.markdown(rows, args)
        header = next(line for line in md.splitlines() if line.startswith("| method"))
        self.assertIn("| CW∞ | APGD-CE | AutoAttack |", header)
        line = next(line for line in md.splitlines() if line.startswith("| TRADES |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        self.assertEqual(len(cells), len(header.strip("|").split("|")))
        self.assertEqual(cells[8:10], ["84.50", "80.00"])
        self.assertIn("- TRADES: PGD-20 86.00, APGD-CE 84.50, AutoAttack 80.00\n", md + "\n")
        self.assertIn("AutoAttack 79.00 (APGD-CE above PGD!)", md)

    def test_no_columns_without_autoattack(self):
        md = pt.markdown([self.row("trades")], types.SimpleNamespace(schedule="quick", datasets=["mnist"]))
        self.assertNotIn("APGD-CE", md)


if __name__ == "__main__":
    unittest.main()
