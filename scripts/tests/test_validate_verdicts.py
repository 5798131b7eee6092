"""The benchmarks read a stage's test runs back from its log: the summary line that
task-validate and swe-rollout print (TestBed::runs_summary), and the shorter one of older
builds."""
from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from validate_verdicts import line_maps_summary, runs_summary  # noqa: E402


class RunsSummary(unittest.TestCase):
    def test_the_last_summary_line_gives_runs_wall_and_time_inside_the_tests(self):
        log = (" INFO earlier: test runs: 3 (1.0 s, of which 0.5 s inside the tests), cache hits: 0\n"
               " INFO 71 of 100 candidates valid; rejected: bug 29; test runs: 197 (80.4 s, of which"
               " 24.1 s inside the tests), cache hits: 247\n")
        self.assertEqual(runs_summary(log), (197, 80.4, 24.1))

    def test_an_older_build_gives_the_runs_alone(self):
        log = " INFO 13 of 20 tasks resolved; 0 could not be attempted; test runs: 101, cache hits: 4\n"
        self.assertEqual(runs_summary(log), (101, None, None))

    def test_a_log_without_the_line_gives_none(self):
        self.assertIsNone(runs_summary("Error: cannot read tasks.jsonl\n"))


class LineMapsSummary(unittest.TestCase):
    def test_the_traced_runs_come_from_the_end_of_the_summary_line(self):
        log = (" INFO 71 of 100 candidates valid; test runs: 197 (80.4 s, of which 24.1 s inside"
               " the tests), cache hits: 247, executor: native, line maps: 12 (30.5 s, of which"
               " 20.2 s inside the tests)\n")
        self.assertEqual(runs_summary(log), (197, 80.4, 24.1))
        self.assertEqual(line_maps_summary(log), (12, 30.5, 20.2))

    def test_an_older_build_gives_none(self):
        log = " INFO test runs: 3 (1.0 s, of which 0.5 s inside the tests), cache hits: 0\n"
        self.assertIsNone(line_maps_summary(log))


if __name__ == "__main__":
    unittest.main()
