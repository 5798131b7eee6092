"""The single-mechanism experiments' helpers: the bottom K by reward, a random draw in a
target's family mix (the same shares as `grad-score keep --mix-of`), and the table that pairs
every arm with the control on the same held-out tasks."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import study_arms  # noqa: E402


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def task(i: str, family: str, repo: str = "r") -> dict:
    return {"instance_id": i, "repo": repo, "provenance": {"operator_family": family}}


class StudyArms(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="arms-test-"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_bottom_keeps_the_least_aligned_in_pool_order(self):
        pool = write(self.tmp / "pool.jsonl", [task(i, "f") for i in "abcd"])
        scores = write(self.tmp / "scores.jsonl",
                       [{"instance_id": i, "reward": r} for i, r in zip("abcd", [0.5, -1, 0.2, -0.3])])
        kept = [json.loads(line)["instance_id"]
                for line in study_arms.bottom(scores, pool, 2).splitlines()]
        self.assertEqual(kept, ["b", "d"])

    def test_a_random_draw_follows_the_target_mix_and_the_seed(self):
        pool = write(self.tmp / "pool.jsonl",
                     [task(f"x{i}", "data-flow") for i in range(60)]
                     + [task(f"c{i}", "constant") for i in range(30)]
                     + [task(f"o{i}", "operator") for i in range(2)])
        target = self.tmp / "target.json"
        target.write_text(json.dumps({"families": {"data-flow": {"tasks": ["1"] * 2},
                                                   "constant": {"tasks": ["1"]},
                                                   "operator": {"tasks": ["1"]}}}))
        draw = lambda seed: [json.loads(line) for line in
                             study_arms.random_mixed(pool, target, 20, seed).splitlines()]
        families = Counter(t["provenance"]["operator_family"] for t in draw(1))
        # operator's 5 places: only 2 tasks; the 3 left go to a draw from the rest.
        self.assertEqual(families["operator"], 2)
        self.assertEqual(sum(families.values()), 20)
        self.assertGreaterEqual(families["data-flow"], 10)
        self.assertGreaterEqual(families["constant"], 5)
        self.assertEqual(draw(1), draw(1))
        self.assertNotEqual(draw(1), draw(2))

    def test_the_table_pairs_each_arm_with_the_control(self):
        out = self.tmp / "out"
        dev = self.tmp / "dev"
        out.mkdir()
        dev.mkdir()
        eval_set = write(self.tmp / "eval.jsonl", [task(f"e{i}", "data-flow") for i in range(40)])
        write(dev / "valid.jsonl", [task("d1", "data-flow", "p"), task("d2", "constant", "q")])
        write(dev / "traces.jsonl", [{"instance_id": "d1", "outcome": {"resolved": False}},
                                     {"instance_id": "d2", "outcome": {"resolved": False}}])
        for arm, better in (("random", 1), ("top", 0)):
            write(out / f"{arm}.jsonl", [task("t", "data-flow")])
            for seed in (1, 2):
                for split, ids in (("eval", [f"e{i}" for i in range(40)]), ("dev", ["d1", "d2"])):
                    write(out / f"{split}-{arm}-s{seed}.per.jsonl",
                          [{"instance_id": i, "better": better, "ties": 0} for i in ids])
        text = study_arms.table(out, eval_set, dev, "random", "Selection alone")
        # top ranks every gold first (rr 1), random second (rr 0.5): +0.5 with no spread.
        self.assertIn("| top | 1.000 | 1.000 | 1.000 1.000 | +1.000 [+1.000, +1.000] | "
                      "+0.500 [+0.500, +0.500] |", text)
        self.assertIn("| random | 0.000 | 0.500 | 0.500 0.500 | | |", text)
        self.assertIn("the dev target: 2 of 2 dev tasks", text)


if __name__ == "__main__":
    unittest.main()
