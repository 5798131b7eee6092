"""The report's wall time: stages that overlapped count once, the time between a killed run
and its resumption not at all, and stamps written before intervals were recorded add their
seconds. The paired comparison with the baseline: the same seed's task in the same round, the
tasks only one side resolved counted, tasks only one side attempted and errors left out."""
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
          seconds: float, cpu: float | None = None) -> None:
    stamps.mkdir(parents=True, exist_ok=True)
    record = {"round": round_, "stage": name, "seconds": seconds, "cpu_seconds": cpu}
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

    def test_cpu_time_sums_every_stage_and_the_base_of_round_zero_only(self):
        base = self.tmp / "base-seed1" / ".stamps"
        stamp(base, "base", 0, 1000.0, 1070.0, 70.0, cpu=120.0)
        stamp(base, "pretrain", 0, 1070.0, 1100.0, 30.0, cpu=55.0)
        stamp(base, "later", 1, 1100.0, 1110.0, 10.0, cpu=999.0)  # not this run's
        runs = self.run / ".stamps"
        stamp(runs, "task-validate", 1, 1100.0, 1180.0, 80.0, cpu=150.0)
        stamp(runs, "keep", 1, 1180.0, 1181.0, 1.0)  # a Python stage: no CPU recorded
        self.assertAlmostEqual(evolve_report.cpu_seconds(self.run), 325.0)

    def test_stages_stamped_before_the_sandbox_counted_its_cpu_are_named(self):
        base = self.tmp / "base-seed1" / ".stamps"
        stamp(base, "base", 0, 1000.0, 1070.0, 70.0, cpu=120.0)  # before: no sandbox CPU
        runs = self.run / ".stamps"
        stamp(runs, "task-validate", 1, 1100.0, 1180.0, 80.0, cpu=150.0)
        record = json.loads((runs / "round-1.task-validate.json").read_text())
        (runs / "round-1.task-validate.json").write_text(
            json.dumps({**record, "sandbox_cpu_seconds": 100.0}))
        stamp(runs, "keep", 1, 1180.0, 1181.0, 1.0)  # a Python stage: not counted
        self.assertEqual(evolve_report.stamps_without_sandbox_cpu(self.run), (1, 2))

    def test_stamps_without_intervals_add_their_seconds(self):
        runs = self.run / ".stamps"
        stamp(runs, "task-validate", 1, None, None, 80.0)
        stamp(runs, "solver-train", 1, 100.0, 190.0, 90.0)
        self.assertAlmostEqual(evolve_report.wall_seconds(self.run, 1), 170.0)


def traces(run: Path, r: int, results: dict, errors: tuple = ()) -> None:
    d = run / f"round-{r}"
    d.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"instance_id": task, "outcome": {"resolved": ok, "f2p_passed": 0}})
             for task, ok in results.items()]
    lines += [json.dumps({"instance_id": task, "error": "harness",
                          "outcome": {"resolved": False}}) for task in errors]
    (d / "eval-traces.jsonl").write_text("\n".join(lines) + "\n")


def run_dir(tmp: Path, strategy: str, seed: int) -> Path:
    run = tmp / f"{strategy}-seed{seed}"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"strategy": strategy, "seed": seed}))
    return run


class PairedWithBaseline(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="report-test-"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_only_tasks_one_side_resolved_count_within_a_seed_and_round(self):
        mine, base = run_dir(self.tmp, "socratic", 1), run_dir(self.tmp, "baseline", 1)
        traces(mine, 1, {"a": True, "b": False, "c": True, "d": True}, errors=("e",))
        traces(base, 1, {"a": False, "b": True, "c": True, "e": True})
        traces(mine, 2, {"a": True, "b": True})
        traces(base, 2, {"a": False, "b": False})
        lonely = run_dir(self.tmp, "socratic", 2)  # no baseline of seed 2
        traces(lonely, 1, {"a": True})
        traces(lonely, 2, {"a": True})
        runs = [mine, lonely]
        self.assertEqual(evolve_report.paired(runs, [base], [1]), (1, 1))
        self.assertEqual(evolve_report.paired(runs, [base], [1, 2]), (3, 1))
        self.assertIn("| socratic | 2 : 0 | 0.50 | 3 : 1 | 0.62 |",
                      evolve_report.compare(self.tmp, None))

    def test_mcnemar_is_exact_and_two_sided(self):
        self.assertEqual(evolve_report.mcnemar_exact(0, 0), 1.0)
        self.assertEqual(evolve_report.mcnemar_exact(3, 3), 1.0)
        self.assertAlmostEqual(evolve_report.mcnemar_exact(5, 0), 2 / 32)
        self.assertAlmostEqual(evolve_report.mcnemar_exact(1, 6), 2 * 8 / 128)


if __name__ == "__main__":
    unittest.main()
