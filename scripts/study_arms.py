#!/usr/bin/env python3
"""Tables of the single-mechanism experiments (scripts/study-selection.sh,
scripts/study-curriculum.sh), as markdown on stdout.

    python3 scripts/study_arms.py table OUT --eval-set FILE --dev DEV [--control ARM] [--title T]
    python3 scripts/study_arms.py bottom SCORES POOL K     # the K least aligned tasks
    python3 scripts/study_arms.py random-mixed POOL TARGET K SEED  # K at random in TARGET's mix

OUT holds, per arm and seed S, eval-ARM-sS.per.jsonl and dev-ARM-sS.per.jsonl (`solver-train
eval --per-task` of the arm's fine-tuned scorer), the arm's tasks (ARM.jsonl, or ARM-sS.jsonl
when they depend on the seed), times.tsv (sft-ARM-sS and the arm's other costs), optionally
scores.jsonl (grad-score of pool.jsonl) and eval-/dev-pretrained.per.jsonl (the scorer before
fine-tuning); DEV holds valid.jsonl and traces.jsonl (the dev set and the solver's rollouts on
it: the failed tasks are the target).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

import ranking

# The order arms are listed in when present; others follow by name.
ARMS = ["top", "random", "bottom", "all", "mixed", "family", "adam-mixed", "random-mixed",
        "adam-mixed-on-train", "skills", "handwritten", "random-uniform",
        "random-natural"]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def bottom(scores: Path, pool: Path, k: int) -> str:
    """The K pooled tasks of lowest reward (ties: smaller id first), in pool order."""
    reward = {s["instance_id"]: s["reward"] for s in records(scores)}
    lines = [line for line in pool.read_text().splitlines(keepends=True) if line.strip()]
    ids = [json.loads(line)["instance_id"] for line in lines]
    chosen = set(sorted((i for i in ids if i in reward), key=lambda i: (reward[i], i))[:k])
    return "".join(line for line, i in zip(lines, ids) if i in chosen)


def quotas(mix: dict[str, int], k: int) -> dict[str, int]:
    """K places shared in proportion to MIX, the remainders to the largest fractions (as
    `grad-score keep --mix-of` shares them)."""
    total = sum(mix.values())
    exact = {f: k * w / total for f, w in mix.items()}
    share = {f: int(x) for f, x in exact.items()}
    for f in sorted(exact, key=lambda f: -(exact[f] - int(exact[f])))[:k - sum(share.values())]:
        share[f] += 1
    return share


def random_mixed(pool: Path, target: Path, k: int, seed: int) -> str:
    """K tasks of POOL drawn at random (seeded) in the family mix of a saved grad-score target:
    each family its share, a family short of it leaving its places to a draw from the rest."""
    lines = [line for line in pool.read_text().splitlines(keepends=True) if line.strip()]
    fams = [family(json.loads(line)) for line in lines]
    mix = {f: len(t["tasks"]) for f, t in json.loads(target.read_text())["families"].items()}
    rng = random.Random(seed)
    order = list(range(len(lines)))
    rng.shuffle(order)
    left = quotas(mix, min(k, len(lines)))
    chosen = set()
    for i in order:
        if left.get(fams[i], 0) > 0:
            left[fams[i]] -= 1
            chosen.add(i)
    for i in order:
        if len(chosen) >= min(k, len(lines)):
            break
        chosen.add(i)
    return "".join(lines[i] for i in sorted(chosen))


def family(task: dict) -> str:
    return task.get("provenance", {}).get("operator_family", "?")


def arms_and_seeds(out: Path) -> tuple[list[str], list[int]]:
    """The arms evaluated for every seed found, and those seeds."""
    found = defaultdict(set)
    for p in out.glob("eval-*-s*.per.jsonl"):
        if m := re.fullmatch(r"eval-(.+)-s(\d+)\.per\.jsonl", p.name):
            found[m[1]].add(int(m[2]))
    seeds = sorted(set.union(*found.values())) if found else []
    arms = [a for a in found if found[a] == set(seeds)]
    return sorted(arms, key=lambda a: (ARMS.index(a) if a in ARMS else len(ARMS), a)), seeds


def arm_tasks(out: Path, arm: str, seed: int) -> list[dict]:
    for path in (out / f"{arm}.jsonl", out / f"{arm}-s{seed}.jsonl"):
        if path.is_file():
            return records(path)
    return []


def times(out: Path) -> dict[str, tuple[float, float]]:
    """name → (wall, cpu) seconds from times.tsv (the last record of a name)."""
    found = {}
    path = out / "times.tsv"
    if path.is_file():
        for line in path.read_text().splitlines():
            cells = line.split("\t")
            if len(cells) >= 2:
                found[cells[0]] = (float(cells[1]), float(cells[2]) if len(cells) > 2 else 0.0)
    return found


def mix_row(name: str, tasks: list[dict], families: list[str]) -> str:
    counts = Counter(family(t) for t in tasks)
    n = sum(counts.values()) or 1
    return (f"| {name} | {sum(counts.values())} | "
            + " | ".join(f"{100 * counts.get(f, 0) / n:.0f}%" for f in families) + " |")


def table(out: Path, eval_set: Path, dev: Path, control_arm: str, title: str) -> str:
    arms, seeds = arms_and_seeds(out)
    if not seeds:
        return f"no evaluated arm under {out}\n"
    eval_ids = ranking.task_ids(eval_set)
    dev_tasks = records(dev / "valid.jsonl")
    traces = records(dev / "traces.jsonl")
    failed = {t["instance_id"] for t in traces
              if not t.get("error") and not t["outcome"]["resolved"]}
    failed_ids = [t["instance_id"] for t in dev_tasks if t["instance_id"] in failed]

    def load(arm: str, split: str) -> list[dict]:
        ids = eval_ids if split == "eval" else failed_ids
        return [ranking.per_task(out / f"{split}-{arm}-s{s}.per.jsonl", ids) for s in seeds]

    sizes = ", ".join(f"{a} {len(arm_tasks(out, a, seeds[0]))}" for a in arms)
    lines = [f"# {title}: {out}\n",
             f"Seeds {', '.join(map(str, seeds))}; tasks per arm: {sizes}; the dev target: "
             f"{len(failed_ids)} of {len(dev_tasks)} dev tasks the solver fails.\n"]
    for split, what in (("eval", f"the evaluation set ({len(eval_ids)} tasks)"),
                        ("dev", f"the dev failures, the target itself ({len(failed_ids)} tasks)")):
        lines += [f"\nRanking on {what}: mean over seeds, each seed's MRR, and the paired "
                  f"difference from {control_arm} (95% bootstrap interval over tasks):\n",
                  f"| arm | top-1 | MRR | MRR per seed | Δ top-1 vs {control_arm} | "
                  f"Δ MRR vs {control_arm} |",
                  "|---|---:|---:|---|---|---|"]
        pretrained = out / f"{split}-pretrained.per.jsonl"
        if pretrained.is_file():
            ids = eval_ids if split == "eval" else failed_ids
            p = [ranking.per_task(pretrained, ids)]
            lines.append(f"| pretrained (no fine-tuning) | {ranking.mean_of(p, 'top1'):.3f} | "
                         f"{ranking.mean_of(p, 'rr'):.3f} | | | |")
        control = load(control_arm, split) if control_arm in arms else None
        for arm in arms:
            runs = load(arm, split)
            row = (f"| {arm} | {ranking.mean_of(runs, 'top1'):.3f} | "
                   f"{ranking.mean_of(runs, 'rr'):.3f} | "
                   + " ".join(f"{ranking.mean_of([r], 'rr'):.3f}" for r in runs))
            if control is None or arm == control_arm:
                lines.append(row + " | | |")
                continue
            lines.append(row + f" | {ranking.interval(ranking.paired_difference(runs, control, 'top1'))}"
                               f" | {ranking.interval(ranking.paired_difference(runs, control, 'rr'))} |")
    by_id = {t["instance_id"]: t for t in dev_tasks}
    dev_repos = {t["repo"] for t in dev_tasks}
    transfer = [(a, m[1]) for a in arms
                if (m := re.fullmatch(r".+-on-(.+)", a)) and m[1] in dev_repos]
    if transfer and control is not None:
        lines += [f"\nTransfer between dev repositories: an arm aligned with one repository's "
                  f"failures, its MRR difference from {control_arm} on that repository's "
                  "failures and on the other repositories' (paired, 95% bootstrap interval):\n",
                  "| arm | failures of its repository | Δ MRR there | failures elsewhere | "
                  "Δ MRR elsewhere |", "|---|---:|---|---:|---|"]
        dev_control = load(control_arm, "dev")
        for arm, repo in transfer:
            runs = load(arm, "dev")
            cells = []
            for inside in (True, False):
                ids = {i for i in failed_ids if (by_id[i]["repo"] == repo) == inside}
                part = lambda rs: [{i: r[i] for i in ids} for r in rs]
                cells += [str(len(ids)), ranking.interval(
                    ranking.paired_difference(part(runs), part(dev_control), "rr"))]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    groups = [("dev failures (target)", [by_id[i] for i in failed_ids]),
              ("evaluation set", records(eval_set))]
    if (out / "pool.jsonl").is_file():
        groups.append(("pool", records(out / "pool.jsonl")))
    groups += [(f"{a} (seed {seeds[0]})" if not (out / f"{a}.jsonl").is_file() else a,
                arm_tasks(out, a, seeds[0])) for a in arms if a != "all"]
    families = sorted({family(t) for _, ts in groups for t in ts})
    lines += ["\nBug families: does selection move the mix toward what the target fails?\n",
              "| tasks | n | " + " | ".join(families) + " |",
              "|---|---:|" + "---:|" * len(families)]
    lines += [mix_row(name, ts, families) for name, ts in groups]
    scores = records(out / "scores.jsonl") if (out / "scores.jsonl").is_file() else []
    if scores:
        fam = {t["instance_id"]: family(t) for t in records(out / "pool.jsonl")}
        by_family = defaultdict(list)
        for s in scores:
            by_family[fam.get(s["instance_id"], "?")].append(s["alignment"])
        lines += ["\nAlignment per family of the pool (mean, median, tasks):\n",
                  "| family | mean | median | tasks |", "|---|---:|---:|---:|"]
        for f, values in sorted(by_family.items()):
            lines.append(f"| {f} | {statistics.mean(values):+.3f} | "
                         f"{statistics.median(values):+.3f} | {len(values)} |")
    spent = times(out)
    lines += ["\nCompute per arm (seconds; fine-tuning: mean over seeds, every arm for the same "
              "steps; making the arm's tasks: what times.tsv records for it, e.g. grad-score of "
              "the pool for top and bottom, generation and validation of a pool):\n",
              "| arm | fine-tuning wall | fine-tuning CPU | tasks wall | tasks CPU |",
              "|---|---:|---:|---:|---:|"]
    for arm in arms:
        sft = [spent[f"sft-{arm}-s{s}"] for s in seeds if f"sft-{arm}-s{s}" in spent]
        wall = statistics.mean(w for w, _ in sft) if sft else float("nan")
        cpu = statistics.mean(c for _, c in sft) if sft else float("nan")
        names = {"top": ["grad-score"], "bottom": ["grad-score"], "mixed": ["grad-score"],
                 "family": ["grad-score-by-family"],
                 "adam-mixed": ["grad-score-adam"],
                 "adam-mixed-on-train": ["train-target-rollout", "grad-score-on-train"]}.get(arm, [])
        names += [f"grad-score-on-{m[1]}" for m in [re.fullmatch(r".+-on-(.+)", arm)]
                  if m and m[1] != "train"]
        names += [n for n in spent if n.startswith(f"make-{arm}-")]
        made = [spent[n] for n in names if n in spent]
        lines.append(f"| {arm} | {wall:.0f} | {cpu:.0f} | {sum(w for w, _ in made):.0f} | "
                     f"{sum(c for _, c in made):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="the tables of an experiment folder")
    t.add_argument("out", type=Path)
    t.add_argument("--eval-set", type=Path, required=True)
    t.add_argument("--dev", type=Path, required=True)
    t.add_argument("--control", default="random", help="the arm the others are paired with")
    t.add_argument("--title", default="Selection alone")
    b = sub.add_parser("bottom", help="the K least aligned tasks of a pool")
    b.add_argument("scores", type=Path)
    b.add_argument("pool", type=Path)
    b.add_argument("k", type=int)
    r = sub.add_parser("random-mixed", help="K tasks at random in a target's family mix")
    r.add_argument("pool", type=Path)
    r.add_argument("target", type=Path)
    r.add_argument("k", type=int)
    r.add_argument("seed", type=int)
    args = parser.parse_args()
    if args.command == "bottom":
        sys.stdout.write(bottom(args.scores, args.pool, args.k))
    elif args.command == "random-mixed":
        sys.stdout.write(random_mixed(args.pool, args.target, args.k, args.seed))
    else:
        sys.stdout.write(table(args.out, args.eval_set, args.dev, args.control, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
