#!/usr/bin/env python3
"""The small steps of an evolve round that are not tools: each reads and writes JSONL like a
tool (`STEP ARGS... -o OUT`, atomically), so a round is a chain of commands that
scripts/evolve.py runs and `evolve.py --print-round N` prints. The decisions a round takes
on its own files are steps too: they print a value (`keep-count`, `sft-steps`) or answer by
their exit code, 0 yes and 3 no (`topup-budget`, `unresolved`, `ranked-wrong`).

    python3 scripts/round_steps.py pool 6 round-1/filtered.jsonl -o round-1/pool.jsonl
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

# The exit code of a decision step that answers no (1 stays an error).
NO = 3


def records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_lines_atomic(path: Path, lines: list[str]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(lines))
    partial.replace(path)


def eval_slice(lines: list[str], seed: int, n: int) -> list[str]:
    """Seed S evaluates the S-th run of N consecutive held-out tasks (wrapping around the set),
    so seeds pooled in a report count distinct tasks, not the same N tasks S times."""
    lines = [line for line in lines if line.strip()]
    if not lines or n <= 0:
        return []
    start = (seed - 1) * n
    return [lines[(start + i) % len(lines)] for i in range(min(n, len(lines)))]


def fewest_tests(n: int, source: Path, out: Path) -> None:
    """The n tasks of SOURCE with the fewest tests, in their file order (a rollout reruns
    every FAIL_TO_PASS and PASS_TO_PASS test with line tracing: this bounds its time)."""
    lines = [line for line in source.read_text().splitlines(keepends=True) if line.strip()]
    size = [len(t["FAIL_TO_PASS"]) + len(t["PASS_TO_PASS"]) for t in map(json.loads, lines)]
    keep = sorted(sorted(range(len(lines)), key=lambda i: (size[i], i))[:n])
    write_lines_atomic(out, [lines[i] for i in keep])


def merge_in_input_order(parts: list[Path], order_of: Path, out: Path) -> None:
    """Concatenates shard outputs, records in the order of their instance_id in ORDER_OF
    (stable: several records of one task keep their shard order)."""
    position = {t["instance_id"]: i for i, t in enumerate(records(order_of))}
    lines = [line for part in parts for line in part.read_text().splitlines(keepends=True)
             if line.strip()]
    lines.sort(key=lambda line: position.get(json.loads(line)["instance_id"], len(position)))
    write_lines_atomic(out, lines)


def distinct_tasks(files: list[Path]) -> list[str]:
    """The task lines of `files` in order, the first of each instance_id."""
    seen, lines = set(), []
    for path in files:
        for line in path.read_text().splitlines(keepends=True):
            if line.strip():
                task_id = json.loads(line)["instance_id"]
                if task_id not in seen:
                    seen.add(task_id)
                    lines.append(line)
    return lines


def sample_lines(path: Path, n: int, seed: int) -> list[str]:
    """n lines of PATH drawn without replacement (seeded), in file order."""
    lines = [line for line in path.read_text().splitlines(keepends=True) if line.strip()]
    keep = sorted(random.Random(seed).sample(range(len(lines)), min(n, len(lines))))
    return [lines[i] for i in keep]


def unclustered(traces: Path, skills: Path, out: Path) -> None:
    """The failed traces of TRACES (harness errors left out) that no skill of SKILLS counts
    in its evidence."""
    clustered = {i for s in records(skills) for i in s.get("evidence", {}).get("trace_ids", [])}
    write_lines_atomic(out, [json.dumps(t, separators=(",", ":")) + "\n" for t in records(traces)
                             if not t.get("error") and not t["outcome"]["resolved"]
                             and t["trace_id"] not in clustered])


def carry_traces(d: Path, prev: Path, traces: Path, tasks: Path) -> None:
    """Round d's traces and the last round's unclustered failures, and the tasks of both
    (the pool, then the last pool's tasks of the carried traces)."""
    lines = lambda path: [line + "\n" for line in path.read_text().splitlines() if line.strip()]
    carried = lines(prev / "unclustered-traces.jsonl")
    write_lines_atomic(traces, lines(d / "traces.jsonl") + carried)
    pool = distinct_tasks([d / "pool.jsonl"])
    have = {json.loads(line)["instance_id"] for line in pool}
    wanted = {json.loads(line)["instance_id"] for line in carried} - have
    old = [line for line in distinct_tasks([prev / "pool.jsonl"])
           if json.loads(line)["instance_id"] in wanted]
    write_lines_atomic(tasks, pool + old)


def policy_tasks(usable: list[Path], pool: Path, out: Path) -> None:
    """The candidates that update-policy learns from: every pass' candidates once, without
    the valid ones that did not make the pool (they have no score, and a missing score
    means "did not validate" to update-policy). A pass' candidates are beside its usable
    tasks."""
    pooled = {json.loads(line)["instance_id"] for line in pool.read_text().splitlines() if line.strip()}
    unpooled = {json.loads(line)["instance_id"] for line in distinct_tasks(usable)} - pooled
    candidates = distinct_tasks([u.parent / "candidates.jsonl" for u in usable])
    write_lines_atomic(out, [line for line in candidates
                             if json.loads(line)["instance_id"] not in unpooled])


def topup_budget(valid: int, candidates: int, have: int, generated: int) -> int:
    """Candidates for the next pass: 1.5x the shortfall over the yield so far, at most
    CANDIDATES (all of them when nothing passed yet)."""
    if have == 0:
        return candidates
    needed = math.ceil(1.5 * (valid - have) * generated / have)
    return max(1, min(candidates, needed))


def sft_steps(epochs: float, batch: int, examples: int) -> int:
    """EPOCHS passes over EXAMPLES in batches of BATCH, at least one step."""
    return max(1, math.ceil(epochs * examples / batch))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)

    def step(name: str, doc: str, output: bool = True) -> argparse.ArgumentParser:
        sub = steps.add_parser(name, help=doc, description=doc)
        if output:
            sub.add_argument("-o", "--output", type=Path, required=True)
        return sub

    s = step("pool", "the first N distinct tasks of the FILES, in order")
    s.add_argument("n", type=int)
    s.add_argument("files", type=Path, nargs="+")
    s = step("fewest-tests", "the N tasks of SOURCE with the fewest tests, in file order")
    s.add_argument("n", type=int)
    s.add_argument("source", type=Path)
    s = step("eval-slice", "seed S's run of N consecutive tasks of SOURCE")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("n", type=int)
    s.add_argument("source", type=Path)
    s = step("sample", "N lines of SOURCE drawn without replacement (seeded), in file order")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("n", type=int)
    s.add_argument("source", type=Path)
    s = step("copy", "SOURCE as it is")
    s.add_argument("source", type=Path)
    s = step("policy-tasks", "every pass' candidates once, less the valid tasks not in POOL "
                             "(each USABLE file's candidates.jsonl beside it)")
    s.add_argument("--pool", type=Path, required=True)
    s.add_argument("usable", type=Path, nargs="+")
    s = step("unclustered", "the failed TRACES in no skill's evidence")
    s.add_argument("traces", type=Path)
    s.add_argument("--skills", type=Path, required=True)
    s = step("carry-traces", "round D's traces and tasks, plus PREV's unclustered failures "
                             "and their tasks (-o TRACES, --tasks-out TASKS)")
    s.add_argument("d", type=Path)
    s.add_argument("--prev", type=Path, required=True)
    s.add_argument("--tasks-out", type=Path, required=True)
    s = step("keep-count", "prints round(FRAC x the tasks of POOL)", output=False)
    s.add_argument("frac", type=float)
    s.add_argument("pool", type=Path)
    s = step("sft-steps", "prints max(1, ceil(EPOCHS x (KEPT + EXTRA) / BATCH))", output=False)
    s.add_argument("--epochs", type=float, required=True)
    s.add_argument("--batch", type=int, required=True)
    s.add_argument("kept", type=int)
    s.add_argument("extra", type=int, nargs="?", default=0)
    s = step("topup-budget", "prints the next generation pass' candidates while FILES hold "
                             "fewer than VALID distinct tasks; exit 3 when they hold enough",
             output=False)
    s.add_argument("--valid", type=int, required=True)
    s.add_argument("--candidates", type=int, required=True)
    s.add_argument("--spent", type=int, action="append", required=True,
                   help="the candidates of each pass so far")
    s.add_argument("files", type=Path, nargs="+")
    s = step("unresolved", "exit 0 when a trace of TRACES is not resolved, 3 when none",
             output=False)
    s.add_argument("traces", type=Path)
    s = step("ranked-wrong", "exit 0 when a task of TASKS does not rank its gold repair first "
                             "alone in PER_TASK, 3 when all do", output=False)
    s.add_argument("per_task", type=Path)
    s.add_argument("tasks", type=Path)
    args = parser.parse_args()

    if args.step == "pool":
        write_lines_atomic(args.output, distinct_tasks(args.files)[:args.n])
    elif args.step == "fewest-tests":
        fewest_tests(args.n, args.source, args.output)
    elif args.step == "eval-slice":
        write_lines_atomic(args.output, eval_slice(
            args.source.read_text().splitlines(keepends=True), args.seed, args.n))
    elif args.step == "sample":
        write_lines_atomic(args.output, sample_lines(args.source, args.n, args.seed))
    elif args.step == "copy":
        write_lines_atomic(args.output, [args.source.read_text()])
    elif args.step == "policy-tasks":
        policy_tasks(args.usable, args.pool, args.output)
    elif args.step == "unclustered":
        unclustered(args.traces, args.skills, args.output)
    elif args.step == "carry-traces":
        carry_traces(args.d, args.prev, args.output, args.tasks_out)
    elif args.step == "keep-count":
        print(round(args.frac * len(records(args.pool))))
    elif args.step == "sft-steps":
        print(sft_steps(args.epochs, args.batch, args.kept + args.extra))
    elif args.step == "topup-budget":
        have = len(distinct_tasks([f for f in args.files if f.is_file()]))
        if have >= args.valid:
            return NO
        print(topup_budget(args.valid, args.candidates, have, sum(args.spent)))
    elif args.step == "unresolved":
        traces = records(args.traces)
        return 0 if any(not t.get("outcome", {}).get("resolved", False) for t in traces) else NO
    elif args.step == "ranked-wrong":
        first = sum(t["better"] == 0 and t["ties"] == 0 for t in records(args.per_task))
        return 0 if first < len(records(args.tasks)) else NO
    return 0


if __name__ == "__main__":
    sys.exit(main())
