#!/usr/bin/env python3
"""grad-score's alignment by operator family, beside the solver's failure rate per family.

    python3 scripts/alignment_by_family.py SCORES TASKS TRACES [TRACE_TASKS]

SCORES: grad-score output; TASKS: the scored tasks (their provenance names the operator
family); TRACES: the solver's traces on training tasks, whose tasks are in TRACE_TASKS
(default TASKS). Prints per family the tasks scored, mean and median alignment, and the
solver's failure rate; then the mean alignment of the tasks of the families the solver fails
most (failure rate at or above the median family's) against the others, with a one-sided
permutation p-value (10,000 seeded shuffles).
"""
import json
import random
import statistics
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def family(task):
    return task["provenance"].get("operator_family") or "?"


def main() -> int:
    scores, tasks, traces = (load(p) for p in sys.argv[1:4])
    trace_tasks = load(sys.argv[4]) if len(sys.argv) > 4 else tasks
    fam_of = {t["instance_id"]: family(t) for t in tasks + trace_tasks}
    attempts, failures = defaultdict(int), defaultdict(int)
    for trace in traces:
        if trace.get("error"):
            continue
        f = fam_of.get(trace["instance_id"], "?")
        attempts[f] += 1
        failures[f] += not trace["outcome"]["resolved"]
    rate = {f: failures[f] / attempts[f] for f in attempts}
    by_family = defaultdict(list)
    for s in scores:
        if s["valid"]:
            by_family[fam_of.get(s["instance_id"], "?")].append(s["alignment"])
    print(f"{'family':14} {'tasks':>6} {'mean align':>11} {'median':>8} {'solver fails':>13}")
    for f in sorted(by_family, key=lambda f: -statistics.mean(by_family[f])):
        a = by_family[f]
        fails = f"{failures[f]}/{attempts[f]}" if attempts[f] else "-"
        print(f"{f:14} {len(a):>6} {statistics.mean(a):>11.4f} {statistics.median(a):>8.4f} {fails:>13}")
    known = [f for f in by_family if f in rate]
    if len(known) < 2:
        print("too few families with traces to compare")
        return 0
    cut = statistics.median(rate[f] for f in known)
    weak = [a for f in known if rate[f] >= cut for a in by_family[f]]
    rest = [a for f in known if rate[f] < cut for a in by_family[f]]
    if not weak or not rest:
        print("every family fails equally often: nothing to compare")
        return 0
    diff = statistics.mean(weak) - statistics.mean(rest)
    pooled, rng, hits = weak + rest, random.Random(0), 0
    for _ in range(10_000):
        rng.shuffle(pooled)
        hits += statistics.mean(pooled[: len(weak)]) - statistics.mean(pooled[len(weak):]) >= diff
    print(f"families the solver fails most (failure rate >= {cut:.2f}): {len(weak)} tasks, "
          f"mean alignment {statistics.mean(weak):.4f}; others: {len(rest)} tasks, "
          f"{statistics.mean(rest):.4f}; difference {diff:+.4f}, one-sided p = {hits / 10_000:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
