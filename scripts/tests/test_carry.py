"""The failed training traces no skill took are carried into the next round's skill-distill,
with the tasks they need; resolved traces, harness errors and clustered failures are not."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import evolve  # noqa: E402


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def trace(task: str, resolved: bool, error: str | None = None) -> dict:
    t = {"trace_id": f"{task}-s1", "instance_id": task, "outcome": {"resolved": resolved}}
    if error:
        t["error"] = error
    return t


class Carry(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="carry-test-"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_unclustered_failures_join_the_next_rounds_traces_with_their_tasks(self):
        prev, d = self.tmp / "round-1", self.tmp / "round-2"
        write(prev / "traces.jsonl", [trace("a", False), trace("b", False), trace("c", True),
                                      trace("e", False, error="timeout")])
        write(prev / "skills.jsonl", [{"skill_id": "s", "evidence": {"trace_ids": ["a-s1"]}}])
        write(prev / "pool.jsonl", [{"instance_id": i} for i in "abce"])
        evolve.unclustered(prev / "traces.jsonl", prev / "skills.jsonl",
                           prev / "unclustered-traces.jsonl")
        carried = evolve.records(prev / "unclustered-traces.jsonl")
        self.assertEqual([t["trace_id"] for t in carried], ["b-s1"])

        write(d / "traces.jsonl", [trace("x", False)])
        write(d / "pool.jsonl", [{"instance_id": "x"}])
        evolve.carry_traces(d, prev, d / "distill-traces.jsonl", d / "distill-tasks.jsonl")
        self.assertEqual([t["trace_id"] for t in evolve.records(d / "distill-traces.jsonl")],
                         ["x-s1", "b-s1"])
        self.assertEqual([t["instance_id"] for t in evolve.records(d / "distill-tasks.jsonl")],
                         ["x", "b"])


if __name__ == "__main__":
    unittest.main()
