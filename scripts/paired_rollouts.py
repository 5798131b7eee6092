#!/usr/bin/env python3
"""Two solvers' rollouts on the same tasks, compared task by task, as Markdown.

    python3 scripts/paired_rollouts.py A.jsonl B.jsonl [--names A B]

A and B are Trace JSONL (`swe-rollout -o`). Only tasks present in both count, and traces with
a harness error (`error`) are left out of both. Prints each side's resolve rate with a Wilson
95% interval over the common tasks, the 2×2 table of resolved/unresolved, and McNemar's exact
two-sided p-value on the discordant tasks (the right test for paired outcomes), then the same
per operator family where the traces record it.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

# the scripts folder is on the path when run as a script
from evolve_report import mcnemar_exact, wilson


def load(path: str) -> dict[str, dict]:
    traces = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            trace = json.loads(line)
            traces[trace["instance_id"]] = trace
        except (json.JSONDecodeError, KeyError) as error:
            raise SystemExit(f"{path}:{number}: not a trace ({error})")
    return traces


def family(trace: dict) -> str:
    analysis = trace.get("analysis") or {}
    return analysis.get("family") or "?"


def table(rows: list[tuple[bool, bool]], names: tuple[str, str]) -> list[str]:
    n = len(rows)
    a = sum(1 for x, _ in rows if x)
    b = sum(1 for _, y in rows if y)
    both = sum(1 for x, y in rows if x and y)
    only_a = sum(1 for x, y in rows if x and not y)
    only_b = sum(1 for x, y in rows if y and not x)
    lines = []
    for name, k in zip(names, (a, b)):
        low, high = wilson(k, n)
        rate = 100 * k / n if n else 0.0
        lines.append(f"| {name} | {k}/{n} = {rate:.1f}% [{100 * low:.1f}, {100 * high:.1f}] |")
    lines.append("")
    lines.append(
        f"both {both}, only {names[0]} {only_a}, only {names[1]} {only_b}, neither "
        f"{n - both - only_a - only_b}; McNemar exact p = {mcnemar_exact(only_a, only_b):.3f}"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--names", nargs=2, default=None)
    args = parser.parse_args()
    names = tuple(args.names or (Path(args.a).stem, Path(args.b).stem))
    a, b = load(args.a), load(args.b)
    common = sorted(
        i for i in a.keys() & b.keys() if not a[i].get("error") and not b[i].get("error")
    )
    if not common:
        raise SystemExit("the two files share no task without a harness error")
    rows = [(a[i]["outcome"]["resolved"], b[i]["outcome"]["resolved"]) for i in common]
    print(f"{len(common)} common tasks ({len(a)} in {names[0]}, {len(b)} in {names[1]})\n")
    print("| solver | resolved [95% Wilson] |")
    print("|---|---|")
    print("\n".join(table(rows, names)))
    by_family = defaultdict(list)
    for i in common:
        by_family[family(a[i])].append((a[i]["outcome"]["resolved"], b[i]["outcome"]["resolved"]))
    if len(by_family) > 1:
        print(f"\n| family | tasks | {names[0]} | {names[1]} |")
        print("|---|---|---|---|")
        for name, family_rows in sorted(by_family.items()):
            k_a = sum(1 for x, _ in family_rows if x)
            k_b = sum(1 for _, y in family_rows if y)
            print(f"| {name} | {len(family_rows)} | {k_a} | {k_b} |")


if __name__ == "__main__":
    main()
