#!/usr/bin/env python3
"""Adapt a scorer to each repository on its own free repair pairs, then rank its tasks.

Test-time adaptation (docs/learning.md, "Adapting to the repository"): before ranking the
tasks of a repository, fine-tune the checkpoint for a few steps on free repair pairs
(operator edits of that repository's code and their inverses; no test run) drawn from the
same repository. A user's repository is there at rollout time, so this needs nothing the
solver would not have. To keep the gold repair out of the pairs, the tasks are grouped by
the file of their bug, and a group's pairs leave out every pair within MARGIN lines of any
of its bugs in that file (the rest of the repository, and of the file, stays).

    python3 scripts/repo_adapt.py --checkpoint DIR --split dev TASKS.jsonl --out OUT

writes OUT/summary.json (top-1, top-5, MRR overall, per family and per repository, the
expected values under random tie-breaking as `solver-train eval` computes them) and
OUT/per-task.jsonl. Everything it makes is cached under OUT, so a rerun resumes.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ranking  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HUNK = re.compile(r"^--- a/(\S+)\n\+\+\+ \S+\n@@ -(\d+)", re.M)


def bad_input(message: str) -> None:
    print(f"repo_adapt: {message}", file=sys.stderr)
    sys.exit(2)


def read_tasks(path: Path) -> list[dict]:
    """The tasks of a JSONL file; a line that is not a task is bad input naming file and line."""
    tasks = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            task = json.loads(line)
            for field in ("instance_id", "repo", "bug_patch"):
                if not isinstance(task.get(field), str):
                    raise ValueError(f"field `{field}` missing or not a string")
        except (ValueError, AttributeError) as error:
            bad_input(f"{path}:{number}: not a task ({error})")
        tasks.append(task)
    return tasks


def where(task):
    """File and first changed line of a task's bug patch."""
    m = HUNK.search(task["bug_patch"])
    if not m:
        bad_input(f"{task['instance_id']}: field `bug_patch` has no hunk")
    body = task["bug_patch"][m.end():].split("\n")[1:]
    line = int(m.group(2))
    for text in body:
        if text.startswith(("-", "+")):
            break
        line += 1
    return m.group(1), line


def run(cmd):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    code = subprocess.run([str(c) for c in cmd], stdout=subprocess.DEVNULL).returncode
    if code != 0:
        print(f"repo_adapt: {Path(str(cmd[0])).name} failed (exit {code})", file=sys.stderr)
        sys.exit(1)


def write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def pairs_outside(pairs: list[str], path: str, bug_lines: set[int], margin: int) -> list[str]:
    """The free pairs of a repository a group may train on: all but those in the group's file
    within `margin` lines of one of its bugs (where a pair could be the gold repair itself)."""
    kept = []
    for line in pairs:
        f, at = where(json.loads(line))
        if f == path and any(abs(at - b) <= margin for b in bug_lines):
            continue
        kept.append(line)
    return kept


def summary(tasks: list[dict], ranked: Path) -> dict:
    """The shape of `solver-train eval`'s summary (its model_* fields), from the per-task file."""
    ids = [t["instance_id"] for t in tasks]
    per = ranking.per_task(ranked, ids)

    def tally(which: list[str]) -> dict:
        n = len(which)
        return {"n": n, "reachable": sum(per[i]["reachable"] for i in which),
                "model_top1": sum(per[i]["top1"] for i in which) / n,
                "model_top5": sum(per[i]["top5"] for i in which) / n,
                "model_mrr": sum(per[i]["rr"] for i in which) / n}

    families = collections.defaultdict(list)
    repos = collections.defaultdict(list)
    for t in tasks:
        # An unreachable task is not in the per-task file: its family comes from the task.
        family = t.get("provenance", {}).get("operator_family") or per[t["instance_id"]]["family"]
        families[family].append(t["instance_id"])
        repos[t["repo"]].append(t["instance_id"])
    return {"tasks": len(ids), "all": tally(ids),
            "by_family": {f: tally(v) for f, v in sorted(families.items()) if f != "?"},
            "by_repo": {r: tally(v) for r, v in sorted(repos.items())}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tasks", type=Path)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--split", choices=["train", "dev", "test"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=ROOT / ".socratic")
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release")
    ap.add_argument("--pairs", type=int, default=1000, help="free pairs drawn per repository")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--anchor", type=float, default=300)
    ap.add_argument("--margin", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--weights", type=Path, default=ROOT / "scripts/eval-weights.toml")
    args = ap.parse_args()

    if not args.tasks.is_file():
        bad_input(f"{args.tasks}: no such file")
    if not (args.checkpoint / "checkpoint.json").is_file():
        bad_input(f"{args.checkpoint}: not a checkpoint (no checkpoint.json)")
    tasks = read_tasks(args.tasks)
    corpus = {}
    for line in (args.workdir / "corpus.jsonl").read_text().splitlines():
        record = json.loads(line)
        # A one-repository corpus written elsewhere: its source root made absolute.
        record["root"] = str((args.workdir / record["root"]).resolve())
        corpus[record["id"]] = json.dumps(record) + "\n"
    groups = collections.defaultdict(list)
    for t in tasks:
        if t["repo"] not in corpus:
            bad_input(f"{t['instance_id']}: repository {t['repo']} is not in the corpus")
        groups[(t["repo"], where(t)[0])].append(t)
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    for i, ((repo, path), group) in enumerate(sorted(groups.items())):
        slug = f"{repo}--{path.replace('/', '_')}"
        pairs = args.out / f"pairs-{repo}.jsonl"
        if not pairs.exists():
            one = args.out / f"corpus-{repo}.jsonl"
            write_atomic(one, corpus[repo])
            run([args.bin / "task-gen", "--strategy", "random", "--split", args.split,
                 "--budget", args.pairs, "--seed", args.seed + 1000,
                 "--operator-weights", args.weights, "--workdir", args.workdir,
                 one, "-o", pairs])
        kept = pairs_outside(pairs.read_text().splitlines(keepends=True), path,
                             {where(t)[1] for t in group}, args.margin)
        print(f"repo_adapt: group {i + 1}/{len(groups)} {repo} {path}: {len(group)} tasks, "
              f"{len(kept)} pairs", file=sys.stderr)
        ranked = args.out / f"rank-{slug}.jsonl"
        if not ranked.exists():
            checkpoint = args.checkpoint
            if kept and args.steps > 0:
                train = args.out / f"pairs-{slug}.jsonl"
                write_atomic(train, "".join(kept))
                checkpoint = args.out / f"ckpt-{slug}"
                if not (checkpoint / "checkpoint.json").exists():
                    run([args.bin / "solver-train", "sft", "--from", args.checkpoint, train,
                         "--workdir", args.workdir, "--steps", args.steps, "--lr", args.lr,
                         "--anchor", args.anchor, "--batch-size", 64, "--group", 128,
                         "--seed", args.seed, "-q", "-o", checkpoint])
            which = args.out / f"tasks-{slug}.jsonl"
            write_atomic(which, "".join(json.dumps(t) + "\n" for t in group))
            run([args.bin / "solver-train", "eval", "--workdir", args.workdir,
                 "--checkpoint", checkpoint, which, "-q", "--per-task", ranked,
                 "-o", os.devnull])
            if checkpoint != args.checkpoint:
                for f in checkpoint.glob("resume/*"):
                    f.unlink()
        rows.extend(line for line in ranked.read_text().splitlines(keepends=True) if line.strip())

    merged = args.out / "per-task.jsonl"
    write_atomic(merged, "".join(rows))
    result = summary(tasks, merged)
    write_atomic(args.out / "summary.json", json.dumps(result, indent=1) + "\n")
    a = result["all"]
    print(f"{args.out}: top-1 {a['model_top1']:.1%} top-5 {a['model_top5']:.1%} "
          f"MRR {a['model_mrr']:.3f} ({a['n']} tasks)")


if __name__ == "__main__":
    main()
