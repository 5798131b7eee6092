"""The held-out tasks of each seed: seed 1 evaluates the head of the set (what a default run
always did), further seeds the next runs of tasks, so seeds pooled in a report are distinct
tasks until the set is used up."""
from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evolve import eval_slice  # noqa: E402

TASKS = [f'{{"instance_id": "t{i}"}}\n' for i in range(10)]


class EvalSlice(unittest.TestCase):
    def test_seed_one_is_the_head_of_the_set(self):
        self.assertEqual(eval_slice(TASKS, 1, 3), TASKS[:3])

    def test_seeds_get_disjoint_tasks_while_the_set_lasts(self):
        seen = [set(eval_slice(TASKS, seed, 3)) for seed in (1, 2, 3)]
        self.assertEqual(len(set.union(*seen)), 9)

    def test_later_seeds_wrap_around_and_never_repeat_a_task_within_a_seed(self):
        self.assertEqual(eval_slice(TASKS, 4, 3), [TASKS[9], TASKS[0], TASKS[1]])
        self.assertEqual(eval_slice(TASKS, 2, 25), TASKS[5:] + TASKS[:5])

    def test_blank_lines_are_not_tasks(self):
        self.assertEqual(eval_slice(["\n", TASKS[0], "  \n", TASKS[1]], 2, 1), [TASKS[1]])


if __name__ == "__main__":
    unittest.main()
