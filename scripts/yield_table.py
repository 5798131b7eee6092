#!/usr/bin/env python3
"""Print the valid yield of a task-gen | task-validate run as Markdown tables.

    python3 scripts/yield_table.py CANDIDATES VALID REJECTS

CANDIDATES is what task-gen wrote, VALID and REJECTS what task-validate wrote (`-o` and
`--rejects`). Yield = valid / candidates: the share of candidates whose bug breaks at least
one test and no test that the gate cannot attribute to it (the gate of task-validate).
Rejections are counted per gate stage (format, clean, bug, gold, reproducible) and, for the
bug stage, per reason. Exit status 2 when a file is missing or a candidate has no verdict.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

STAGES = ("format", "clean", "bug", "gold", "reproducible")

# Bug-stage reasons, from tools/task-validate/src/gate.rs, most specific first.
BUG_REASONS = (
    ("no test executes the changed lines", "no test executes the changed lines"),
    ("no selected test fails with the bug", "no test fails with the bug"),
    ("refused by the sandbox", "the bug tries what the sandbox refuses"),
    ("exhausts a resource", "a failing test exhausts a resource (recursion, memory)"),
    ("pytest was interrupted", "pytest interrupted (exit 2, e.g. the import breaks)"),
    ("pytest usage error", "pytest usage error (exit 4)"),
    ("time limit", "time limit"),
    ("memory limit", "memory limit"),
    ("with the bug, ", "the buggy run did not end normally"),
)


def read(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError as err:
        sys.exit(f"yield_table: {err}")


def bug_reason(reason: str) -> str:
    for needle, name in BUG_REASONS:
        if needle in reason:
            return name
    return "other"


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.0f}%" if d else "-"


def wilson(n: int, d: int, z: float = 1.96) -> str:
    """The 95% Wilson score interval of the proportion n/d, in percent."""
    if not d:
        return "-"
    p = n / d
    centre = (p + z * z / (2 * d)) / (1 + z * z / d)
    half = z * math.sqrt(p * (1 - p) / d + z * z / (4 * d * d)) / (1 + z * z / d)
    return f"{100 * (centre - half):.0f}-{100 * (centre + half):.0f}%"


def main() -> None:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    candidates, valid, rejects = (read(Path(p)) for p in sys.argv[1:])
    verdict: dict[str, tuple[str, str]] = {}
    for task in valid:
        verdict[task["instance_id"]] = ("valid", "")
    for task in rejects:
        r = task["rejection"]
        verdict[task["instance_id"]] = (r["stage"], bug_reason(r["reason"]) if r["stage"] == "bug" else "")
    missing = [t["instance_id"] for t in candidates if t["instance_id"] not in verdict]
    if missing:
        sys.exit(f"yield_table: {len(missing)} candidates have no verdict, e.g. {missing[0]}")

    rows: dict[str, Counter] = defaultdict(Counter)
    by_repo: dict[str, Counter] = defaultdict(Counter)
    family: dict[str, str] = {}
    reasons: Counter = Counter()
    for task in candidates:
        op = task["provenance"].get("operator") or "-"
        family[op] = task["provenance"].get("operator_family", "-")
        stage, reason = verdict[task["instance_id"]]
        for key in (op, "**all**"):
            rows[key]["n"] += 1
            rows[key][stage] += 1
        by_repo[task["repo"]]["n"] += 1
        by_repo[task["repo"]][stage] += 1
        if reason:
            reasons[reason] += 1

    stages = STAGES
    print("| operator | family | candidates | valid | yield | 95% interval | " + " | ".join(f"rejected: {s}" for s in stages) + " |")
    print("|---|---|---:|---:|---:|---:|" + "---:|" * len(stages))
    order = sorted((op for op in rows if op != "**all**"), key=lambda op: (-rows[op]["valid"] / rows[op]["n"], op))
    for op in order + ["**all**"]:
        c = rows[op]
        cells = [op, family.get(op, ""), str(c["n"]), str(c["valid"]), pct(c["valid"], c["n"]), wilson(c["valid"], c["n"])]
        cells += [str(c[s]) for s in stages]
        print("| " + " | ".join(cells) + " |")
    print()
    print("| repository | candidates | valid | yield |")
    print("|---|---:|---:|---:|")
    for repo in sorted(by_repo):
        c = by_repo[repo]
        print(f"| {repo} | {c['n']} | {c['valid']} | {pct(c['valid'], c['n'])} |")
    if reasons:
        print()
        print("| bug-stage rejection | candidates |")
        print("|---|---:|")
        for name, n in reasons.most_common():
            print(f"| {name} | {n} |")


if __name__ == "__main__":
    main()
