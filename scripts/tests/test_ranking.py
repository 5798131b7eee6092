"""The held-out ranking metric read task by task: the same means as `solver-train eval`'s
summary (ties broken at random in expectation, unreachable tasks 0), and paired differences
whose interval covers what it should."""
from __future__ import annotations

import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ranking  # noqa: E402


def per_task_file(rows: list[tuple[str, int, int]]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="ranking-test-")) / "per.jsonl"
    path.write_text("".join(json.dumps({"instance_id": i, "family": "data-flow", "better": b,
                                        "ties": t}) + "\n" for i, b, t in rows))
    return path


class Ranking(unittest.TestCase):
    def test_ties_count_in_expectation_and_unreachable_tasks_count_zero(self):
        # a: first alone; b: tied with one other for first; c: third; d: unreachable.
        ranked = ranking.per_task(per_task_file([("a", 0, 0), ("b", 0, 1), ("c", 2, 0)]),
                                  ["a", "b", "c", "d"])
        self.assertEqual([ranked[i]["top1"] for i in "abcd"], [1.0, 0.5, 0.0, 0.0])
        self.assertAlmostEqual(ranked["b"]["rr"], (1 + 1 / 2) / 2)
        self.assertAlmostEqual(ranking.mean_of([ranked], "rr"), (1 + 0.75 + 1 / 3 + 0) / 4)
        self.assertEqual(ranked["d"]["family"], "?")

    def test_a_paired_difference_is_the_mean_gain_with_an_interval_around_it(self):
        ids = [f"t{i}" for i in range(200)]
        control = ranking.per_task(per_task_file([(i, 1, 0) for i in ids]), ids)  # rr 1/2
        # The arm ranks the gold first on half the tasks and second on the others.
        arm = ranking.per_task(per_task_file([(i, k % 2, 0) for k, i in enumerate(ids)]), ids)
        mean, lo, hi = ranking.paired_difference([arm, arm], [control, control], "rr")
        self.assertAlmostEqual(mean, 0.25)
        self.assertLess(lo, 0.25)
        self.assertGreater(hi, 0.25)
        self.assertGreater(lo, 0.0)
        same = ranking.paired_difference([control], [control], "top1")
        self.assertEqual(same, (0.0, 0.0, 0.0))


if __name__ == "__main__":
    unittest.main()
