"""The held-out ranking metric task by task, and paired comparisons of it.

`solver-train eval --per-task FILE` writes one line per *reachable* task of the evaluation set
(the gold repair is among its candidates): how many candidates scored above the gold one
(`better`) and tied with it (`ties`). A task that is not in the file scores 0. Top-1 and the
reciprocal rank are expectations over random tie-breaking, as `solver-train eval` computes them,
so the means here equal its summary's `model_top1` and `model_mrr`.
"""
from __future__ import annotations

import json
import random
import statistics
from pathlib import Path


def hit_at(k: int, better: int, ties: int) -> float:
    return min(1.0, max(0.0, (k - better) / (ties + 1)))


def reciprocal_rank(better: int, ties: int) -> float:
    return sum(1.0 / r for r in range(better + 1, better + ties + 2)) / (ties + 1)


def task_ids(tasks: Path) -> list[str]:
    """The instance ids of a task file, in order."""
    return [json.loads(line)["instance_id"] for line in tasks.read_text().splitlines()
            if line.strip()]


def per_task(per_task_file: Path, ids: list[str]) -> dict[str, dict]:
    """Task id → {"top1", "top5", "rr", "family", "reachable"} for every id of the evaluation
    set (0 where the gold repair was unreachable, family "?" where the file does not name it)."""
    seen = {}
    for line in per_task_file.read_text().splitlines():
        if line.strip():
            t = json.loads(line)
            seen[t["instance_id"]] = {
                "top1": hit_at(1, t["better"], t["ties"]),
                "top5": hit_at(5, t["better"], t["ties"]),
                "rr": reciprocal_rank(t["better"], t["ties"]),
                "family": t.get("family", "?"),
                "reachable": True,
            }
    missing = {"top1": 0.0, "top5": 0.0, "rr": 0.0, "family": "?", "reachable": False}
    return {i: seen.get(i, missing) for i in ids}


def mean_of(runs: list[dict[str, dict]], metric: str) -> float:
    """The metric averaged over the tasks of each run, then over the runs (seeds)."""
    return statistics.mean(statistics.mean(t[metric] for t in run.values()) for run in runs)


def paired_difference(arm: list[dict[str, dict]], control: list[dict[str, dict]], metric: str,
                      reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean difference arm − control of a per-task metric, with a 95% bootstrap interval.

    `arm[i]` and `control[i]` are the runs of seed i (the same held-out tasks): each task's
    difference is averaged over the seeds, then the tasks are resampled (percentile bootstrap,
    seeded). The interval is over tasks; the spread between seeds shows in the per-seed
    numbers reported beside it."""
    pairs = [(a, c) for a, c in zip(arm, control)]
    if not pairs:
        raise ValueError("no paired runs")
    ids = sorted(set.intersection(*(set(a) & set(c) for a, c in pairs)))
    diffs = [statistics.mean(a[i][metric] - c[i][metric] for a, c in pairs) for i in ids]
    rng = random.Random(seed)
    n = len(diffs)
    boots = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps))
    return statistics.mean(diffs), boots[int(0.025 * reps)], boots[int(0.975 * reps) - 1]


def signed(x: float, digits: int = 3) -> str:
    return f"{x:+.{digits}f}"


def interval(d: tuple[float, float, float], digits: int = 3, scale: float = 1.0) -> str:
    """'+0.012 [−0.004, +0.027]' for a (mean, low, high) triple."""
    m, lo, hi = (v * scale for v in d)
    return f"{signed(m, digits)} [{signed(lo, digits)}, {signed(hi, digits)}]"
