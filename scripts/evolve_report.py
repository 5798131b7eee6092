#!/usr/bin/env python3
"""The report of an evolve run (markdown on stdout): per round, candidates → valid → kept, the
mean reward of the scored tasks, the skills, the held-out resolve rate with a Wilson 95%
interval, and the wall time of every stage (from times.tsv).

    python3 scripts/evolve_report.py RUN_DIR ROUNDS
"""
import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def lines(path: Path) -> list:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wilson(k: int, n: int, z: float = 1.96) -> tuple:
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main() -> int:
    run, rounds = Path(sys.argv[1]), int(sys.argv[2])
    times = defaultdict(dict)
    if (run / "times.tsv").is_file():
        for row in (run / "times.tsv").read_text().splitlines():
            r, stage, seconds = row.split("\t")
            times[r][stage] = times[r].get(stage, 0) + int(seconds)
    print(f"# evolve: {run}\n")
    print("| round | strategy | candidates | valid | kept | mean reward | skills | resolved (eval) | 95% interval | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in range(1, rounds + 1):
        d = run / f"round-{r}"
        candidates = lines(d / "candidates.jsonl")
        strategy = candidates[0]["provenance"]["strategy"] if candidates else "-"
        scores = lines(d / "scores.jsonl")
        reward = sum(s["reward"] for s in scores) / len(scores) if scores else float("nan")
        traces = lines(d / "eval-traces.jsonl")
        attempted = [t for t in traces if not t.get("error")]
        resolved = sum(t["outcome"]["resolved"] for t in attempted)
        lo, hi = wilson(resolved, len(attempted))
        seconds = sum(times[str(r)].values())
        print(f"| {r} | {strategy} | {len(candidates)} | {len(lines(d / 'valid.jsonl'))} | "
              f"{len(lines(d / 'kept.jsonl'))} | {reward:.3f} | {len(lines(d / 'skills.jsonl'))} | "
              f"{resolved}/{len(attempted)} | [{lo:.2f}, {hi:.2f}] | {seconds} |")
    print("\nSeconds per stage:\n")
    stages = sorted({s for r in times.values() for s in r})
    print("| round | " + " | ".join(stages) + " |")
    print("|---|" + "---|" * len(stages))
    for r in sorted(times, key=int):
        print(f"| {r} | " + " | ".join(str(times[r].get(s, "")) for s in stages) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
