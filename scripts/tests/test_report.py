"""The report's wall time: stages that overlapped count once, the time between a killed run
and its resumption not at all, and stamps written before intervals were recorded add their
seconds."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import evolve_report  # noqa: E402


def stamp(stamps: Path, name: str, round_: int, start: float | None, end: float | None,
          seconds: float) -> None:
    stamps.mkdir(parents=True, exist_ok=True)
    record = {"round": round_, "stage": name, "seconds": seconds}
    if start is not None:
        record.update(started_at=start, ended_at=end)
    (stamps / f"round-{round_}.{name}.json").write_text(json.dumps(record))


class WallSeconds(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="report-test-"))
        self.run = self.tmp / "socratic-seed1"
        self.run.mkdir()
        (self.run / "config.json").write_text(json.dumps({"strategy": "socratic", "seed": 1}))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_overlapping_stages_count_once_and_gaps_not_at_all(self):
        base = self.tmp / "base-seed1" / ".stamps"
        stamp(base, "base", 0, 1000.0, 1070.0, 70.0)
        stamp(base, "dev-validate", 0, 1000.0, 1060.0, 60.0)  # beside base
        stamp(base, "eval-rollout", 0, 1070.0, 1170.0, 100.0)
        runs = self.run / ".stamps"
        stamp(runs, "task-validate", 1, 1070.0, 1150.0, 80.0)  # beside round 0's rollout
        stamp(runs, "solver-train", 1, 5000.0, 5090.0, 90.0)  # resumed much later
        self.assertAlmostEqual(evolve_report.wall_seconds(self.run, 0), 170.0)
        self.assertAlmostEqual(evolve_report.wall_seconds(self.run, 1), 170.0)
        self.assertAlmostEqual(evolve_report.wall_seconds(self.run), 260.0)

    def test_stamps_without_intervals_add_their_seconds(self):
        runs = self.run / ".stamps"
        stamp(runs, "task-validate", 1, None, None, 80.0)
        stamp(runs, "solver-train", 1, 100.0, 190.0, 90.0)
        self.assertAlmostEqual(evolve_report.wall_seconds(self.run, 1), 170.0)


if __name__ == "__main__":
    unittest.main()
