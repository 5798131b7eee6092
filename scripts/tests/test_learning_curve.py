"""scripts/learning_curve.py: the table and the plot read the evaluations that exist."""
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "learning_curve.py"


def summary(top1: float, mrr: float, prior: float | None) -> dict:
    counts = {"n": 10, "reachable": 9, "model_top1": top1, "model_top5": 0.5, "model_mrr": mrr}
    if prior is not None:
        counts.update(prior_top1=prior, prior_top5=0.2, prior_mrr=0.1)
    return {"all": counts, "by_family": {"data-flow": counts}}


class LearningCurve(unittest.TestCase):
    def run_on(self, files: dict) -> tuple:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            for name, data in files.items():
                (out / name).write_text(json.dumps(data))
            svg = out / "curve.svg"
            done = subprocess.run([sys.executable, str(SCRIPT), str(out), "--svg", str(svg)],
                                  capture_output=True, text=True)
            return done, svg.read_text() if svg.exists() else ""

    def test_rows_follow_n_then_seed_and_the_prior_shows_where_it_was_measured(self):
        done, svg = self.run_on({
            "eval-n1000-s2.json": summary(0.3, 0.4, 0.05),
            "eval-n0-s1.json": summary(0.2, 0.3, None),
            "eval-n1000-s1.json": summary(0.25, 0.35, 0.05),
            "eval-pretrained.json": summary(0.2, 0.3, None),
        })
        self.assertEqual(done.returncode, 0, done.stderr)
        rows = [line for line in done.stdout.splitlines() if line.startswith("| 0 ") or
                line.startswith("| 1000 ")]
        self.assertTrue(rows[0].startswith("| 0 | 1 | 20.0% |"), rows)
        self.assertIn("| – | – | – |", rows[0])
        self.assertTrue(rows[1].startswith("| 1000 | 1 | 25.0% |"), rows)
        self.assertIn("| 5.0% |", rows[1])
        self.assertTrue(rows[2].startswith("| 1000 | 2 | 30.0% |"), rows)
        self.assertEqual(svg.count("<polyline"), 2, "scorer and prior")

    def test_a_missing_directory_is_bad_input(self):
        done = subprocess.run([sys.executable, str(SCRIPT), "/nonexistent/curve"],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 2)
        self.assertIn("/nonexistent/curve", done.stderr)


if __name__ == "__main__":
    unittest.main()
