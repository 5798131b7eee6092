#!/usr/bin/env python3
"""Reports of evolve runs (scripts/evolve.py), as markdown on stdout.

    python3 scripts/evolve_report.py RUN_DIR                  # one run
    python3 scripts/evolve_report.py --compare RUNS_DIR [--plots DIR]

One run: per round, candidates → valid → pooled → kept, the rejects per gate stage, reward
statistics, the skills, the held-out ranking (top-1, MRR), the held-out resolve rate with a
Wilson 95% interval and the partial rate; round 0 is the base solver; the wall seconds of each round (stages that overlapped
count once). Then the seconds of every stage and the cores it kept busy (from the stamps).

--compare: every run under RUNS_DIR (WORKDIR/run), grouped by strategy; per round the
held-out ranking (top-1, MRR of the gold repair on the whole evaluation set, mean over seeds)
and its difference from the baseline's with a paired bootstrap interval; the held-out resolve
rate pooled over seeds (Wilson interval over task × seed attempts) and the
rate of each seed; each strategy paired with the baseline task by task (the tasks only one of
them resolved, exact McNemar test); the wall time of each strategy. --plots writes
resolve-rate.svg (rate per round per strategy with intervals) and operator-mix.svg (the
candidates' operator families per round per strategy).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

import ranking


def records(path: Path) -> list:
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


def config(run: Path) -> dict:
    path = run / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def base_dir(run: Path) -> Path:
    return run.parent / f"base-seed{config(run).get('seed', 1)}"


def round_dir(run: Path, r: int) -> Path:
    return base_dir(run) if r == 0 else run / f"round-{r}"


def passes(d: Path) -> list:
    """A round's generation passes: the round dir, then its top-ups more-1, more-2, ..."""
    more = [p for p in d.glob("more-*") if p.is_dir() and p.name[5:].isdigit()]
    return [d] + sorted(more, key=lambda p: int(p.name[5:]))


def over_passes(d: Path, name: str) -> list:
    """The records of file `name` of every generation pass of round dir d."""
    return [t for p in passes(d) for t in records(p / name)]


def rounds_of(run: Path) -> list:
    found = sorted(int(d.name.split("-")[1]) for d in run.glob("round-*") if d.is_dir())
    return [0] + [r for r in found if r > 0]


def attempts(run: Path, r: int) -> list:
    """The held-out traces of round r that were attempts (a harness error is not one)."""
    return [t for t in records(round_dir(run, r) / "eval-traces.jsonl") if not t.get("error")]


def evaluation(run: Path, r: int) -> dict:
    """Resolved, partial and attempted held-out tasks of round r (errors are not attempts)."""
    traces = attempts(run, r)
    resolved = sum(bool(t["outcome"]["resolved"]) for t in traces)
    partial = sum(not t["outcome"]["resolved"] and t["outcome"].get("f2p_passed", 0) > 0
                  for t in traces)
    return {"resolved": resolved, "partial": partial, "n": len(traces)}


def outcomes(run: Path, r: int) -> dict:
    """Held-out task → resolved, for round r."""
    return {t["instance_id"]: bool(t["outcome"]["resolved"]) for t in attempts(run, r)}


def ranks(run: Path, r: int) -> dict | None:
    """Round r's held-out ranking task by task (scripts/ranking.py), or None if not evaluated.
    Tasks whose gold repair is unreachable count 0 when the run's evaluation set is at hand."""
    per = round_dir(run, r) / "eval-rank.per.jsonl"
    if not per.is_file():
        return None
    eval_set = Path(config(run).get("eval_set", ""))
    ids = (ranking.task_ids(eval_set) if eval_set.is_file() else
           [json.loads(line)["instance_id"] for line in per.read_text().splitlines()
            if line.strip()])
    return ranking.per_task(per, ids)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar test: the chance of a split at least this uneven of the b + c
    discordant pairs if either side were as likely to win each."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(runs: list, baseline: list, rounds: list) -> tuple:
    """(tasks the strategy resolved and the baseline did not, the other way round) over the
    given rounds, pairing the runs of one seed on the same held-out task in the same round."""
    by_seed = {config(run).get("seed"): run for run in baseline}
    wins = losses = 0
    for run in runs:
        other = by_seed.get(config(run).get("seed"))
        if other is None:
            continue
        for r in rounds:
            mine, theirs = outcomes(run, r), outcomes(other, r)
            for task in mine.keys() & theirs.keys():
                wins += mine[task] and not theirs[task]
                losses += theirs[task] and not mine[task]
    return wins, losses


def seconds(stamps: Path, rounds: set | None = None, field: str = "seconds") -> dict:
    """Seconds per (round, stage) from a run's stamps, shards summed; `field` "cpu_seconds"
    sums CPU time instead of wall time (stamps without it, Python stages, count 0)."""
    out = defaultdict(float)
    for stamp in stamps.glob("*.json"):
        s = json.loads(stamp.read_text())
        if rounds is None or s["round"] in rounds:
            # A top-up pass (task-gen-more-2) counts with its stage.
            stage = re.sub(r"-more-[0-9]+$", "", s["stage"].removesuffix("-merge"))
            out[(s["round"], stage)] += s.get(field) or 0.0
    return out


def run_seconds(run: Path, field: str = "seconds") -> dict:
    times = seconds(base_dir(run) / ".stamps", {0}, field)
    times.update(seconds(run / ".stamps", None, field))
    return times


def run_stamps(run: Path) -> list[dict]:
    """A run's stamps, round 0's from its base."""
    stamps = [json.loads(p.read_text()) for p in (base_dir(run) / ".stamps").glob("*.json")]
    stamps = [s for s in stamps if s["round"] == 0]
    return stamps + [json.loads(p.read_text()) for p in (run / ".stamps").glob("*.json")]


def wall_seconds(run: Path, round_: int | None = None) -> float:
    """Wall time of a run's stages (or of one round's): the length of the union of their
    [start, end] intervals, so stages that overlapped count once and the time between a
    killed run and its resumption not at all; stamps from before the intervals were
    recorded add their seconds."""
    stamps = [s for s in run_stamps(run) if round_ is None or s["round"] == round_]
    total, end = 0.0, float("-inf")
    for s in stamps:
        if "started_at" not in s:
            total += s["seconds"]
    for start, stop in sorted((s["started_at"], s["ended_at"]) for s in stamps
                              if "started_at" in s):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def cpu_seconds(run: Path) -> float:
    """CPU time of a run's stages (round 0's from its base), summed: the compute a strategy
    spent, where wall time also holds what the stages left idle."""
    return sum(run_seconds(run, "cpu_seconds").values())


def stamps_without_sandbox_cpu(run: Path) -> tuple[int, int]:
    """Of a run's stages that ran a command (round 0's from its base): how many were stamped
    before the stamps held the CPU time of test runs inside bubblewrap
    (`sandbox_cpu_seconds`), and how many there are."""
    commands = [s for s in run_stamps(run) if s.get("cpu_seconds") is not None]
    return sum("sandbox_cpu_seconds" not in s for s in commands), len(commands)


def single(run: Path) -> str:
    cfg = config(run)
    out = [f"# evolve: {run.name} ({cfg.get('strategy', '?')}, seed {cfg.get('seed', '?')})\n"]
    out.append("| round | generator | candidates | valid | pooled | kept | rejected by stage | "
               "reward mean ± sd | skills | held-out top-1 | MRR | resolved (held-out) | "
               "95% interval | partial | wall s |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    times = run_seconds(run)
    for r in rounds_of(run):
        d = round_dir(run, r)
        ev = evaluation(run, r)
        lo, hi = wilson(ev["resolved"], ev["n"])
        secs = wall_seconds(run, r)
        rate = f"{ev['resolved']}/{ev['n']}"
        interval = f"[{lo:.2f}, {hi:.2f}]"
        partial = f"{ev['partial']}/{ev['n']}"
        ranked = ranks(run, r)
        top1, mrr = (("-", "-") if ranked is None else
                     (f"{ranking.mean_of([ranked], 'top1'):.3f}",
                      f"{ranking.mean_of([ranked], 'rr'):.3f}"))
        if r == 0:
            out.append(f"| 0 (base) | - | - | - | - | - | - | - | - | {top1} | {mrr} | {rate} | "
                       f"{interval} | {partial} | {secs:.0f} |")
            continue
        candidates = over_passes(d, "candidates.jsonl")
        generator = candidates[0]["provenance"]["strategy"] if candidates else "-"
        rejected = Counter(t["rejection"]["stage"] for t in over_passes(d, "rejects.jsonl"))
        n_passes = len(passes(d))
        made = f"{len(candidates)}" + (f" ({n_passes} passes)" if n_passes > 1 else "")
        rejected_text = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "-"
        rewards = [s["reward"] for s in records(d / "scores.jsonl")]
        reward = (f"{statistics.mean(rewards):.3f} ± {statistics.pstdev(rewards):.3f}"
                  if rewards else "-")
        out.append(
            f"| {r} | {generator} | {made} | {len(over_passes(d, 'valid.jsonl'))} | "
            f"{len(records(d / 'pool.jsonl'))} | {len(records(d / 'kept.jsonl'))} | "
            f"{rejected_text} | {reward} | {len(records(d / 'skills.jsonl'))} | {top1} | {mrr} | "
            f"{rate} | {interval} | {partial} | {secs:.0f} |")
    out.append("\nSeconds per stage:\n")
    stages = sorted({s for (_, s) in times}, key=stage_order)
    out.append("| round | " + " | ".join(stages) + " |")
    out.append("|---|" + "---|" * len(stages))
    for r in sorted({r for (r, _) in times}):
        out.append(f"| {r} | " + " | ".join(
            f"{times[(r, s)]:.0f}" if (r, s) in times else "" for s in stages) + " |")
    cpu = run_seconds(run, "cpu_seconds")
    if any(cpu.values()):
        out.append("\nCores busy per stage (CPU seconds over wall seconds; what a stage leaves "
                   "idle is room for more jobs or shards):\n")
        out.append("| round | " + " | ".join(stages) + " |")
        out.append("|---|" + "---|" * len(stages))
        for r in sorted({r for (r, _) in times}):
            out.append(f"| {r} | " + " | ".join(
                f"{cpu[(r, s)] / times[(r, s)]:.1f}" if cpu.get((r, s)) and times.get((r, s))
                else "" for s in stages) + " |")
    return "\n".join(out) + "\n"


STAGE_ORDER = ["base", "free-pairs", "pretrain", "dev-gen", "dev-validate", "dev-set",
               "eval-tasks", "task-gen", "task-validate", "filter", "pool", "dev-rollout",
               "dev-rank", "target", "grad-score", "keep", "policy-tasks", "update-policy",
               "replay", "solver-train", "rollout-tasks", "train-rollout", "carry-traces",
               "skill-distill", "unclustered", "eval-rank", "eval-rollout"]


def stage_order(name: str) -> int:
    return STAGE_ORDER.index(name) if name in STAGE_ORDER else len(STAGE_ORDER)


def runs_by_strategy(runs_dir: Path) -> dict:
    by = defaultdict(list)
    for run in sorted(runs_dir.iterdir()):
        cfg = config(run)
        if run.is_dir() and cfg.get("strategy"):
            by[cfg["strategy"]].append(run)
    return dict(by)


def compare(runs_dir: Path, plots: Path | None) -> str:
    by = runs_by_strategy(runs_dir)
    if not by:
        return f"no evolve run under {runs_dir}\n"
    out = [f"# evolve: strategies compared ({runs_dir})\n"]
    out.append("Held-out resolve rate per round, pooled over seeds (resolved / task×seed "
               "attempts, Wilson 95% interval), then each seed's rate.\n")
    out.append("| strategy | seeds | round | resolved | rate | 95% interval | partial | "
               "per seed | candidates → pooled → kept | wall s |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    curves = {}
    mix = {}
    for strategy, runs in sorted(by.items()):
        rounds = sorted(set.intersection(*(set(rounds_of(run)) for run in runs)))
        curve = []
        for r in rounds:
            evs = [evaluation(run, r) for run in runs]
            k, n = sum(e["resolved"] for e in evs), sum(e["n"] for e in evs)
            partial = sum(e["partial"] for e in evs)
            lo, hi = wilson(k, n)
            per_seed = " ".join(f"{e['resolved']}/{e['n']}" for e in evs)
            made = sum(len(over_passes(round_dir(run, r), "candidates.jsonl")) for run in runs)
            valid = sum(len(records(round_dir(run, r) / "pool.jsonl")) for run in runs)
            kept = sum(len(records(round_dir(run, r) / "kept.jsonl")) for run in runs)
            wall = sum(wall_seconds(run, r) for run in runs)
            flow = f"{made} → {valid} → {kept}" if r else "-"
            out.append(f"| {strategy} | {len(runs)} | {r} | {k}/{n} | "
                       f"{k / n if n else 0:.3f} | [{lo:.2f}, {hi:.2f}] | {partial}/{n} | "
                       f"{per_seed} | {flow} | {wall:.0f} |")
            curve.append((r, k / n if n else 0.0, lo, hi))
            if r:
                families = Counter(
                    t["provenance"].get("operator_family", "?")
                    for run in runs for t in over_passes(round_dir(run, r), "candidates.jsonl"))
                mix[(strategy, r)] = families
        curves[strategy] = curve
    out.extend(ranking_tables(by))
    if "baseline" in by:
        out.append("\nPaired against the baseline (the same seed's held-out task in the same "
                   "round): tasks only the strategy resolved : tasks only the baseline "
                   "resolved, exact McNemar p (two-sided).\n")
        out.append("| strategy | last round | p | rounds 1.. | p |")
        out.append("|---|---|---|---|---|")
        for strategy, runs in sorted(by.items()):
            if strategy == "baseline":
                continue
            common = sorted(set.intersection(
                *(set(rounds_of(run)) for run in runs + by["baseline"])) - {0})
            if not common:
                continue
            per_round = [paired(runs, by["baseline"], [r]) for r in common]
            last = per_round[-1]
            every = tuple(map(sum, zip(*per_round)))
            out.append(f"| {strategy} | {last[0]} : {last[1]} | {mcnemar_exact(*last):.2f} | "
                       f"{every[0]} : {every[1]} | {mcnemar_exact(*every):.2f} |")
    out.append("\nWall and CPU time per strategy (all rounds and seeds, round 0 included; "
               "CPU time as the stamps record it: a tool's process, the processes it reaped "
               "and the test runs inside bubblewrap as the sandbox measured them; not the "
               "Python stages):\n")
    for strategy, runs in sorted(by.items()):
        total = sum(wall_seconds(run) for run in runs)
        cpu = sum(cpu_seconds(run) for run in runs)
        old, stages = map(sum, zip(*(stamps_without_sandbox_cpu(run) for run in runs)))
        unseen = (f" ({old} of {stages} stages stamped before test runs' CPU time inside "
                  "bubblewrap was counted: a lower bound)") if old else ""
        out.append(f"- {strategy}: {total:.0f} s wall, {cpu:.0f} s CPU over {len(runs)} "
                   f"seed(s){unseen}")
    if mix:
        families = sorted({f for c in mix.values() for f in c})
        out.append("\nCandidates per operator family:\n")
        out.append("| strategy | round | " + " | ".join(families) + " |")
        out.append("|---|---|" + "---|" * len(families))
        for (strategy, r), counts in sorted(mix.items()):
            out.append(f"| {strategy} | {r} | " + " | ".join(
                str(counts.get(f, 0)) for f in families) + " |")
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        (plots / "resolve-rate.svg").write_text(resolve_rate_svg(curves))
        (plots / "operator-mix.svg").write_text(operator_mix_svg(mix))
        # Relative to the report, which the loop and `just report` write beside DIR.
        out.append(f"\n![resolve rate]({plots.name}/resolve-rate.svg)\n"
                   f"![operator mix]({plots.name}/operator-mix.svg)")
        mrr_curves = mrr_by_round(by)
        if mrr_curves:
            (plots / "held-out-mrr.svg").write_text(curve_svg(
                mrr_curves, "held-out MRR (mean of seeds, bars: lowest and highest seed)",
                zero_based=False))
            out.append(f"![held-out MRR]({plots.name}/held-out-mrr.svg)")
    return "\n".join(out) + "\n"


def ranked_rounds(by: dict):
    """(strategy, runs, round, each seed's held-out ranks) for every round that all of a
    strategy's seeds ranked, strategies in order."""
    for strategy, runs in sorted(by.items()):
        for r in sorted(set.intersection(*(set(rounds_of(run)) for run in runs))):
            ranked = [ranks(run, r) for run in runs]
            if all(x is not None for x in ranked):
                yield strategy, runs, r, ranked


def mrr_by_round(by: dict) -> dict:
    """Per strategy, the held-out MRR of each round: (round, mean over seeds, lowest seed,
    highest seed), rounds every seed ranked."""
    curves = defaultdict(list)
    for strategy, _, r, ranked in ranked_rounds(by):
        per_seed = [ranking.mean_of([x], "rr") for x in ranked]
        curves[strategy].append((r, ranking.mean_of(ranked, "rr"), min(per_seed), max(per_seed)))
    return dict(curves)


def ranking_tables(by: dict) -> list:
    """The held-out ranking per round per strategy (mean over seeds, each seed's MRR), and each
    strategy's difference from the baseline with a paired bootstrap interval."""
    rows, diffs = [], []
    for strategy, runs, r, ranked in ranked_rounds(by):
        rows.append(f"| {strategy} | {len(runs)} | {r} | "
                    f"{ranking.mean_of(ranked, 'top1'):.3f} | "
                    f"{ranking.mean_of(ranked, 'rr'):.3f} | "
                    + " ".join(f"{ranking.mean_of([x], 'rr'):.3f}" for x in ranked) + " |")
        if strategy == "baseline" or "baseline" not in by:
            continue
        base_by_seed = {config(run).get("seed"): run for run in by["baseline"]}
        pairs = [(x, ranks(base_by_seed[config(run).get("seed")], r))
                 for run, x in zip(runs, ranked) if config(run).get("seed") in base_by_seed]
        pairs = [(x, b) for x, b in pairs if b is not None]
        if not pairs:
            continue
        arm, control = [x for x, _ in pairs], [b for _, b in pairs]
        diffs.append(f"| {strategy} | {len(pairs)} | {r} | "
                     f"{ranking.interval(ranking.paired_difference(arm, control, 'top1'))} | "
                     f"{ranking.interval(ranking.paired_difference(arm, control, 'rr'))} |")
    if not rows:
        return []
    out = ["\nHeld-out ranking per round (`solver-train eval` on the whole evaluation set: the "
           "gold repair's rank among the solver's candidates; no test runs), mean over seeds, "
           "then each seed's MRR.\n",
           "| strategy | seeds | round | top-1 | MRR | MRR per seed |", "|---|---|---|---|---|---|"]
    out += rows
    if diffs:
        out += ["\nDifference from the baseline on the same held-out tasks (same seed, same "
                "round; each task's difference averaged over seeds), 95% paired bootstrap "
                "interval over tasks:\n",
                "| strategy | seeds | round | Δ top-1 | Δ MRR |", "|---|---|---|---|---|"]
        out += diffs
    return out


COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#7f7f7f"]


def resolve_rate_svg(curves: dict) -> str:
    """Resolve rate per round per strategy, with the 95% interval as an error bar."""
    return curve_svg(curves, "held-out resolve rate")


def curve_svg(curves: dict, title: str, zero_based: bool = True) -> str:
    """A value per round per strategy, `(round, value, low, high)` points, the low-high span
    as an error bar; the value axis from 0, or (`zero_based=False`) around the values."""
    w, h, left, bottom, top, right = 560, 340, 60, 50, 30, 140
    rounds = sorted({r for c in curves.values() for r, *_ in c}) or [0]
    top_rate = max([hi for c in curves.values() for *_, hi in c] + [0.1])
    floor = 0.0
    if not zero_based:
        lows = [lo for c in curves.values() for _, _, lo, _ in c]
        span = top_rate - min(lows, default=0.0)
        floor = max(0.0, min(lows, default=0.0) - 0.1 * span)
        top_rate += 0.1 * span
    x = lambda r: left + (r - rounds[0]) * (w - left - right) / max(1, rounds[-1] - rounds[0])
    y = lambda v: h - bottom - (v - floor) / max(top_rate - floor, 1e-9) * (h - bottom - top)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="18">{title}</text>',
           f'<line x1="{left}" y1="{y(floor)}" x2="{w - right}" y2="{y(floor)}" stroke="black"/>',
           f'<line x1="{left}" y1="{y(floor)}" x2="{left}" y2="{top}" stroke="black"/>']
    for r in rounds:
        svg.append(f'<text x="{x(r) - 4}" y="{h - bottom + 18}">{r}</text>')
    svg.append(f'<text x="{(w - right) / 2}" y="{h - 10}">round</text>')
    for i in range(5):
        v = floor + (top_rate - floor) * i / 4
        svg.append(f'<text x="8" y="{y(v) + 4}">{v:.3f}</text>')
    for i, (strategy, curve) in enumerate(sorted(curves.items())):
        colour = COLOURS[i % len(COLOURS)]
        shift = (i - (len(curves) - 1) / 2) * 6
        points = " ".join(f"{x(r) + shift:.1f},{y(v):.1f}" for r, v, _, _ in curve)
        svg.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for r, v, lo, hi in curve:
            cx = x(r) + shift
            svg.append(f'<line x1="{cx:.1f}" y1="{y(lo):.1f}" x2="{cx:.1f}" y2="{y(hi):.1f}" '
                       f'stroke="{colour}"/>')
            svg.append(f'<circle cx="{cx:.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        ly = top + 16 * i
        svg.append(f'<rect x="{w - right + 12}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        svg.append(f'<text x="{w - right + 28}" y="{ly + 9}">{strategy}</text>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def operator_mix_svg(mix: dict) -> str:
    """The share of each operator family among the candidates, one bar per strategy × round."""
    families = sorted({f for c in mix.values() for f in c})
    bars = sorted(mix)
    w, h, left, bottom, top = max(400, 70 * len(bars) + 180), 340, 40, 70, 30
    bw = 40
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="18">operator families of the candidates</text>']
    for j, key in enumerate(bars):
        counts = mix[key]
        total = sum(counts.values()) or 1
        bx, base = left + j * 70, h - bottom
        for i, family in enumerate(families):
            share = counts.get(family, 0) / total
            height = share * (h - bottom - top)
            base -= height
            svg.append(f'<rect x="{bx}" y="{base:.1f}" width="{bw}" height="{height:.1f}" '
                       f'fill="{COLOURS[i % len(COLOURS)]}"/>')
        strategy, r = key
        svg.append(f'<text x="{bx}" y="{h - bottom + 14}">{strategy[:9]}</text>')
        svg.append(f'<text x="{bx}" y="{h - bottom + 28}">round {r}</text>')
    for i, family in enumerate(families):
        lx, ly = left + len(bars) * 70 + 10, top + 16 * i
        svg.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" '
                   f'fill="{COLOURS[i % len(COLOURS)]}"/>')
        svg.append(f'<text x="{lx + 16}" y="{ly + 9}">{family}</text>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, nargs="?", help="one run directory")
    parser.add_argument("--compare", type=Path, metavar="RUNS_DIR")
    parser.add_argument("--plots", type=Path, metavar="DIR",
                        help="write the SVG plots into DIR; the report links them as a file "
                             "beside DIR would (DIR/NAME.svg)")
    args = parser.parse_args()
    for path in (args.compare, args.run):
        if path is not None and not path.is_dir():
            parser.error(f"{path}: not a directory of evolve runs")
    if args.compare:
        sys.stdout.write(compare(args.compare, args.plots))
    elif args.run:
        sys.stdout.write(single(args.run))
    else:
        parser.error("give a RUN_DIR or --compare RUNS_DIR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
