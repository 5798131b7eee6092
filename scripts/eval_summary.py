#!/usr/bin/env python3
"""Counts of an evaluation set per repository and per bug kind, as Markdown.

    python3 scripts/eval_summary.py EVAL_SET WEIGHTS

EVAL_SET is validated Task JSONL (data/eval/eval-set.jsonl); WEIGHTS is the
`--operator-weights` file it was drawn with (scripts/eval-weights.toml). Prints the tasks per
repository and, per operator, the count, its share of the set and the target share (the
operator's weight): validation keeps each operator's candidates at its own yield, so the
shares of the set differ from the weights by that much.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path


def main() -> None:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    tasks = [json.loads(l) for l in Path(sys.argv[1]).read_text().splitlines() if l.strip()]
    weights = tomllib.loads(Path(sys.argv[2]).read_text())["operators"]
    total_weight = sum(weights.values())
    n = len(tasks)
    by_repo = Counter(t["repo"] for t in tasks)
    by_op = Counter(t["provenance"]["operator"] for t in tasks)
    family = {t["provenance"]["operator"]: t["provenance"].get("operator_family", "") for t in tasks}
    cells = Counter((t["provenance"]["operator"], t["repo"]) for t in tasks)
    repos = sorted(by_repo)

    print(f"{n} tasks over {len(repos)} repositories\n")
    print("| repository | tasks |")
    print("|---|---:|")
    for repo in repos:
        print(f"| {repo} | {by_repo[repo]} |")
    print()
    by_family = Counter(family[t["provenance"]["operator"]] for t in tasks)
    print("| family | tasks | share |")
    print("|---|---:|---:|")
    for fam, k in by_family.most_common():
        print(f"| {fam} | {k} | {100 * k / n:.1f}% |")
    print()
    print("| operator | family | tasks | share | target share | " + " | ".join(repos) + " |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(repos))
    ops = sorted((op for op, w in weights.items() if w > 0 or by_op[op]), key=lambda op: (-weights.get(op, 0), op))
    for op in ops:
        target = weights.get(op, 0) / total_weight
        row = [op, family.get(op, ""), str(by_op[op]), f"{100 * by_op[op] / n:.1f}%", f"{100 * target:.1f}%"]
        row += [str(cells[(op, repo)]) for repo in repos]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
