"""Adapting the scorer to a repository: the free pairs a group of tasks trains on leave out
every pair near one of its bugs (where a pair could be a gold repair), and the summary is the
shape and the numbers of `solver-train eval`'s."""
from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import repo_adapt  # noqa: E402


def patch(path: str, line: int, old: str = "x", new: str = "y") -> str:
    """A one-line change at `line` with three lines of context before it."""
    return (f"--- a/{path}\n+++ b/{path}\n@@ -{line - 3},7 +{line - 3},7 @@\n"
            f" a\n b\n c\n-{old}\n+{new}\n d\n e\n f\n")


def pair(path: str, line: int) -> str:
    return json.dumps({"instance_id": f"{path}:{line}", "bug_patch": patch(path, line)}) + "\n"


class RepoAdapt(unittest.TestCase):
    def test_where_names_the_file_and_the_changed_line_not_the_hunk_start(self):
        self.assertEqual(repo_adapt.where({"bug_patch": patch("pkg/mod.py", 120)}),
                         ("pkg/mod.py", 120))

    def test_pairs_near_a_bug_of_the_group_are_left_out_and_the_rest_kept(self):
        pairs = [pair("pkg/mod.py", 100), pair("pkg/mod.py", 139), pair("pkg/mod.py", 141),
                 pair("pkg/mod.py", 61), pair("pkg/other.py", 100), pair("pkg/mod.py", 300)]
        kept = repo_adapt.pairs_outside(pairs, "pkg/mod.py", {100, 290}, margin=40)
        self.assertEqual([json.loads(p)["instance_id"] for p in kept],
                         ["pkg/mod.py:141", "pkg/other.py:100"])

    def test_a_line_that_is_not_a_task_is_bad_input_naming_file_line_and_field(self):
        path = Path(tempfile.mkdtemp(prefix="repo-adapt-test-")) / "tasks.jsonl"
        good = json.dumps({"instance_id": "a", "repo": "r", "bug_patch": patch("m.py", 9)})
        path.write_text(good + "\n\n" + json.dumps({"instance_id": "b", "repo": "r"}) + "\n")
        stderr = io.StringIO()
        with self.assertRaises(SystemExit) as exit, contextlib.redirect_stderr(stderr):
            repo_adapt.read_tasks(path)
        self.assertEqual(exit.exception.code, 2)
        self.assertIn(f"{path}:3:", stderr.getvalue())
        self.assertIn("bug_patch", stderr.getvalue())
        path.write_text(good + "\n")
        self.assertEqual([t["instance_id"] for t in repo_adapt.read_tasks(path)], ["a"])

    def test_the_summary_counts_unreachable_tasks_as_misses_and_splits_by_family_and_repo(self):
        tasks = [{"instance_id": i, "repo": r, "provenance": {"operator_family": f}} for i, r, f in
                 [("a", "r1", "data-flow"), ("b", "r1", "data-flow"), ("c", "r2", "constant"),
                  ("d", "r2", "constant")]]
        ranked = Path(tempfile.mkdtemp(prefix="repo-adapt-test-")) / "per-task.jsonl"
        # a: first; b: tied with one other for first; c: sixth; d: unreachable (absent).
        ranked.write_text("".join(json.dumps(r) + "\n" for r in [
            {"instance_id": "a", "family": "data-flow", "better": 0, "ties": 0},
            {"instance_id": "b", "family": "data-flow", "better": 0, "ties": 1},
            {"instance_id": "c", "family": "constant", "better": 5, "ties": 0}]))
        s = repo_adapt.summary(tasks, ranked)
        self.assertEqual((s["all"]["n"], s["all"]["reachable"]), (4, 3))
        self.assertAlmostEqual(s["all"]["model_top1"], 1.5 / 4)
        self.assertAlmostEqual(s["all"]["model_top5"], 2 / 4)
        self.assertAlmostEqual(s["all"]["model_mrr"], (1 + 0.75 + 1 / 6) / 4)
        self.assertEqual({f: c["n"] for f, c in s["by_family"].items()},
                         {"constant": 2, "data-flow": 2})
        self.assertAlmostEqual(s["by_family"]["constant"]["model_top1"], 0.0)
        self.assertAlmostEqual(s["by_repo"]["r2"]["model_mrr"], (1 / 6) / 2)


if __name__ == "__main__":
    unittest.main()
