"""The verdicts of a task-validate run, read back from its two outputs
(`OUT/NAME.valid.jsonl` and `OUT/NAME.rejects.jsonl`), and the test runs of a stage, read
back from its log, for the scripts that compare runs (bench-validate.sh, compare-validate.sh,
bench-stages.sh)."""

from __future__ import annotations

import json
import re
from typing import NamedTuple


class Verdict(NamedTuple):
    stage: str  # "valid", or the gate stage that rejected the candidate
    fail_to_pass: tuple  # empty for a rejection
    reason: str  # empty for a valid task

    @property
    def key(self) -> tuple:
        """What two runs must agree on: the stage, and FAIL_TO_PASS when valid (reasons may be
        reworded)."""
        return self.stage, self.fail_to_pass


def verdicts(out: str, name: str) -> dict[str, Verdict]:
    result = {}
    for kind in ("valid", "rejects"):
        with open(f"{out}/{name}.{kind}.jsonl") as f:
            for line in f:
                task = json.loads(line)
                rejection = task.get("rejection")
                result[task["instance_id"]] = (
                    Verdict("valid", tuple(task["FAIL_TO_PASS"]), "") if rejection is None
                    else Verdict(rejection["stage"], (), rejection.get("reason", "")))
    return result


def differing(a: dict[str, Verdict], b: dict[str, Verdict]) -> list[str]:
    """The ids of `a` whose verdict in `b` differs or is missing, sorted."""
    return sorted(i for i in a if i not in b or a[i].key != b[i].key)


def runs_summary(log: str) -> tuple[int, float | None, float | None] | None:
    """The last `test runs: N (W s, of which T s inside the tests)` of a task-validate or
    swe-rollout log: the runs, their summed wall time and pytest's time inside their tests
    (both None for builds that printed only `test runs: N`); None without the line."""
    found = re.findall(r"test runs: (\d+)(?: \(([\d.]+) s, of which ([\d.]+) s inside the tests\))?", log)
    if not found:
        return None
    runs, wall, inside = found[-1]
    return int(runs), float(wall) if wall else None, float(inside) if inside else None


def line_maps_summary(log: str) -> tuple[int, float, float] | None:
    """The last `line maps: K (W s, of which T s inside the tests)` of a log: the traced
    runs among the test runs, their wall time and their (traced, so slowed) time inside the
    tests; None for builds that did not print it."""
    found = re.findall(r"line maps: (\d+) \(([\d.]+) s, of which ([\d.]+) s inside the tests\)", log)
    if not found:
        return None
    runs, wall, inside = found[-1]
    return int(runs), float(wall), float(inside)
