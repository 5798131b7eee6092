#!/usr/bin/env python3
"""The evolve loop: a base solver and a dev set, then ROUNDS rounds of stages. The base
solver is `solver-train init`'s (or BASE_FROM=DIR: a checkpoint or a Hugging Face Llama/Qwen2
directory with config.json, model.safetensors and tokenizer.json, copied in), with its
scorer's features pretrained on FREE_PAIRS unvalidated repair pairs of the training
repositories (task-gen, no test runs: stages free-pairs and pretrain; docs/learning.md).
Each round:

    task-gen        random in round 1, then skill-guided by the last round's skills and policy
                    (the `random` generator of the baseline stays random); sites carry how
                    many tests reach them, from the last round's line maps
    task-validate   the execution gate; leaves each repository's line map  [shardable]
    filter          TASK_FILTER, a custom stage in any language (when set)
                    ...then task-gen, task-validate and filter again with a derived seed
                    (round-N/more-K/, stages *-more-K) while fewer than VALID tasks passed,
                    at most TOPUP more times
    pool            the first VALID distinct tasks of those passes
    dev-rollout     the round's input solver on the dev set: its failures are the target [shardable]
                    (DEV_TARGET=rank: dev-rank instead, the dev tasks whose gold repair the
                    solver does not rank first; no test runs)
    target          grad-score's target direction from those failures
    grad-score      the alignment of every pooled task with the target             [shardable]
    keep            the best KEEP_FRAC of the pool by reward (or the same number at random;
                    SELECT=mixed|adam-mixed: in the dev failures' bug-family mix)
    update-policy   REINFORCE on the generator policy from the round's rewards
    solver-train    sft of the input solver on the kept tasks, plus the last round's resolved
                    training traces (rejection sampling, weight RFT_WEIGHT): the round's solver
    train-rollout   the input solver on TRAIN_ROLLOUT pooled tasks: the traces     [shardable]
    skill-distill   traces (and the last round's skills) become the round's skills; the failed
                    traces no skill took are carried into the next round's (CARRY=1)
    eval-rank       the continuous held-out metric: where the round's solver ranks the gold
                    repair of every task of the evaluation set (top-1, MRR; no test runs)
    eval-rollout    that solver on ROLLOUT_TASKS held-out tasks (the seed's slice) [shardable]

Stages that share no files overlap (OVERLAP=1, the default; OVERLAP=0, --only and --until run
them one after another in the order above): generation beside the last round's eval-rollout
and then dev-rollout and target; grad-score, keep, update-policy and solver-train beside
train-rollout and skill-distill; round 0's base solver beside its dev set. Training keeps
about one core busy and validation one and a half (the report's "cores busy" table), so a
stage beside them fills the idle core. The files are the same either way.

Strategies (STRATEGY): socratic = skills + grad-score; baseline = random generation, the
kept tasks drawn at random; skills-only and score-only are the two ablations; handwritten =
socratic with the hand-written skills of HANDWRITTEN_SKILLS (examples/skills/handwritten.jsonl)
in place of trace-derived ones, from round 1. Every strategy
gets the same pool size, training steps and evaluation. The default budgets fit a fresh
2-core machine in about 30 minutes (docs/evolve.md); they are there to show the loop, not to
train a good solver: raise them for research. EXECUTOR=native by default here (a host venv
inside bubblewrap, which setup installs as root; without bwrap the loop uses wasm): wasm runs
validation about 3.8x and rollouts 3x slower (docs/speed.md); EXECUTOR=wasm forces it. A run lives in
WORKDIR/run/<strategy>-seed<S>/ (base solver, dev set and round-0 evaluation are shared by all
strategies of a seed in WORKDIR/run/base-seed<S>/; RUNS=DIR puts runs elsewhere).

Every stage records the sha256 of its command and of its inputs in .stamps/; it is skipped
when its outputs exist and that record still matches, so a killed run resumes where it
stopped and a stage whose inputs changed runs again. `--only STAGE --round N` reruns one
stage on the cached files of the stages before it. SHARDS=N splits the shardable stages over N
processes (`--shard I/N` of each tool) and merges them in input order; on a cluster,
`--only STAGE --round N --shard I/N` runs one shard (scripts/slurm/).

    python3 scripts/evolve.py [--workdir W] [--only STAGE --round N [--shard I/N]]
                              [--until STAGE --round N]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("BIN", ROOT / "target" / "release"))
TOOLS = ["task-gen", "task-validate", "grad-score", "solver-train", "swe-rollout", "skill-distill"]

# generator, filter
STRATEGIES = {
    "socratic": ("skills", "grad"),
    "baseline": ("random", "random"),
    "skills-only": ("skills", "random"),
    "score-only": ("random", "grad"),
    # The paper's ablation: hand-written skills (HANDWRITTEN_SKILLS) in place of trace-derived.
    "handwritten": ("handwritten", "grad"),
}
HANDWRITTEN = ROOT / "examples/skills/handwritten.jsonl"
SHARDABLE = {"task-validate", "dev-rollout", "grad-score", "train-rollout", "eval-rollout"}
# The stages a top-up pass K repeats, as STAGE-more-K.
GENERATION_STAGES = {"task-gen", "task-validate", "filter"}
# In the order they run when stages do not overlap.
ROUND_STAGES = [
    "task-gen", "task-validate", "filter", "pool", "dev-rollout", "dev-rank", "target",
    "grad-score", "keep", "policy-tasks", "update-policy", "replay", "solver-train",
    "rollout-tasks", "train-rollout", "carry-traces", "skill-distill", "unclustered", "eval-rank",
    "eval-rollout",
]
BASE_STAGES = ["base", "free-pairs", "pretrain", "dev-gen", "dev-validate", "dev-set",
               "eval-tasks", "eval-rank", "eval-rollout"]


def log(message: str) -> None:
    print(f"evolve: {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A stage failed or the run cannot go on; the message says why."""


class BadUsage(Failed):
    """A flag or variable the loop cannot run with (exit 2)."""


class Stop(Exception):
    """The run reached what --only or --until asked for."""


@dataclass
class Config:
    workdir: Path
    strategy: str
    seed: int
    rounds: int
    candidates: int
    topup: int
    valid: int
    base_steps: int
    free_pairs: int
    sft_steps: int | None
    sft_epochs: float
    sft_lr: float | None
    dev_candidates: int
    dev_tasks: int
    train_rollout: int
    rollout_tasks: int
    keep_frac: float
    rft_weight: float
    min_support: int
    executor: str
    eval_set: Path
    shards: int
    task_filter: list[str]
    run_name: str
    runs: Path
    overlap: bool
    rank_eval: bool
    handwritten: Path
    dev_target: str
    carry: bool
    select: str
    random_weights: Path | None
    replay: int
    base_from: Path | None = None

    @staticmethod
    def from_env(workdir: Path, strategy: str, seed: int) -> "Config":
        env = os.environ.get
        return Config(
            workdir=workdir,
            strategy=strategy,
            seed=seed,
            rounds=int(env("ROUNDS", "3")),
            candidates=int(env("CANDIDATES", "10")),
            valid=int(env("VALID", "6")),
            topup=int(env("TOPUP", "2")),
            base_steps=int(env("BASE_STEPS", "60")),
            free_pairs=int(env("FREE_PAIRS", "10000")),
            sft_steps=int(env("SFT_STEPS")) if env("SFT_STEPS") else None,
            sft_epochs=float(env("SFT_EPOCHS", "8")),
            sft_lr=float(env("SFT_LR")) if env("SFT_LR") else None,
            dev_candidates=int(env("DEV_CANDIDATES", "10")),
            dev_tasks=int(env("DEV_TASKS", "3")),
            train_rollout=int(env("TRAIN_ROLLOUT", "3")),
            rollout_tasks=int(env("ROLLOUT_TASKS", "6")),
            keep_frac=float(env("KEEP_FRAC", "0.5")),
            rft_weight=float(env("RFT_WEIGHT", "1")),
            min_support=int(env("MIN_SUPPORT", "2")),
            executor=env("EXECUTOR", "native"),
            eval_set=Path(env("EVAL", str(ROOT / "data/eval/eval-set.jsonl"))),
            shards=int(env("SHARDS", "1")),
            task_filter=shlex.split(env("TASK_FILTER", "")),
            run_name=f"{strategy}-seed{seed}",
            runs=Path(env("RUNS", str(workdir / "run"))),
            overlap=env("OVERLAP", "1") != "0",
            rank_eval=env("RANK_EVAL", "1") != "0",
            handwritten=Path(env("HANDWRITTEN_SKILLS", str(HANDWRITTEN))),
            dev_target=env("DEV_TARGET", "rollout"),
            carry=env("CARRY", "1") != "0",
            select=env("SELECT", "top"),
            random_weights=Path(env("RANDOM_WEIGHTS")) if env("RANDOM_WEIGHTS") else None,
            replay=int(env("REPLAY", "0")),
            base_from=Path(env("BASE_FROM")).expanduser().resolve() if env("BASE_FROM") else None,
        )


def sha256_of(path: Path) -> str:
    """Content hash of a file, or of a directory's files and their names; 'missing' if absent."""
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    elif path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(path)).encode() + b"\0")
            digest.update(sha256_of(child).encode())
    else:
        return "missing"
    return digest.hexdigest()


def records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_lines_atomic(path: Path, lines: list[str]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(lines))
    partial.replace(path)


def write_if_changed(path: Path, text: str) -> None:
    """Leaves a file with this content as it is (its time included)."""
    if not path.is_file() or path.read_text() != text:
        write_lines_atomic(path, [text])


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


@dataclass
class Stage:
    round: int
    name: str
    outputs: list[Path]
    inputs: list[Path]
    command: list[str] | None = None
    action: object = None  # a callable when the stage is Python, not a command
    describe: str = ""
    stdout: Path | None = None  # where the command's stdout goes (atomically), if anywhere
    shard: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        shard = f" shard {self.shard[0]}/{self.shard[1]}" if self.shard else ""
        return f"round {self.round}: {self.name}{shard}"


class Runner:
    def __init__(self, cfg: Config, only=None, until=None, only_shard=None):
        self.cfg = cfg
        self.only = only  # (stage, round): run that stage alone, then stop
        self.until = until  # (stage, round): stop before it
        self.only_shard = only_shard
        # Independent chains of stages run side by side unless one stage is asked for.
        self.overlap = cfg.overlap and only is None and until is None

    def together(self, *chains) -> None:
        """Runs chains of stages that share no files (callables; None is skipped) side by
        side, one thread each, or one after another when OVERLAP=0 or under --only/--until.
        Waits for every chain; then raises the first one's failure."""
        chains = [c for c in chains if c is not None]
        if not self.overlap or len(chains) < 2:
            for chain in chains:
                chain()
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(chains)) as pool:
            futures = [pool.submit(chain) for chain in chains]
            concurrent.futures.wait(futures)
        for future in futures:
            future.result()

    def stamp_path(self, run_dir: Path, stage: Stage) -> Path:
        shard = f".shard-{stage.shard[0]}-of-{stage.shard[1]}" if stage.shard else ""
        return run_dir / ".stamps" / f"round-{stage.round}.{stage.name}{shard}.json"

    def key(self, stage: Stage) -> tuple[str, dict]:
        inputs = {str(p): sha256_of(p) for p in stage.inputs}
        what = stage.command if stage.command is not None else stage.describe
        blob = json.dumps({"do": what, "inputs": inputs}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest(), inputs

    def up_to_date(self, run_dir: Path, stage: Stage) -> bool:
        stamp = self.stamp_path(run_dir, stage)
        if not stamp.is_file() or not all(o.exists() for o in stage.outputs):
            return False
        return json.loads(stamp.read_text()).get("key") == self.key(stage)[0]

    def run(self, run_dir: Path, stage: Stage) -> None:
        wanted = (stage.name.removesuffix("-merge"), stage.round)
        if self.until == wanted:
            raise Stop(f"stopped before {stage.label}")
        if self.only is not None:
            if wanted != self.only:
                if not all(o.exists() for o in stage.outputs):
                    raise Failed(f"{stage.label} has not run yet: run the loop up to there first")
                return
            if self.only_shard is not None and stage.shard != self.only_shard:
                return
        elif self.up_to_date(run_dir, stage):
            log(f"{stage.label}: up to date, skipped")
            return
        self.execute(run_dir, stage)
        if self.only is not None:
            if stage.shard is None:
                raise Stop(f"ran {stage.label}")

    def execute(self, run_dir: Path, stage: Stage) -> None:
        key, inputs = self.key(stage)
        stamp = self.stamp_path(run_dir, stage)
        stamp.unlink(missing_ok=True)
        log(f"{stage.label} ...")
        for path in stage.outputs + ([stage.stdout] if stage.stdout else []):
            path.parent.mkdir(parents=True, exist_ok=True)
        started, started_at = time.monotonic(), time.time()
        if stage.command is not None:
            stdout = None
            partial = None
            if stage.stdout is not None:
                partial = stage.stdout.with_name(stage.stdout.name + ".partial")
                stdout = partial.open("w")
            try:
                code, cpu = run_command(stage.command, stdout)
            finally:
                if stdout is not None:
                    stdout.close()
            if code != 0:
                raise Failed(f"{stage.label} failed (exit {code}): "
                             + " ".join(shlex.quote(c) for c in stage.command))
            if partial is not None:
                partial.replace(stage.stdout)
        else:
            cpu = None
            stage.action()
        seconds = time.monotonic() - started
        stamp.parent.mkdir(parents=True, exist_ok=True)
        partial = stamp.with_name(stamp.name + ".partial")
        partial.write_text(json.dumps({
            "round": stage.round, "stage": stage.name, "shard": stage.shard,
            "key": key, "seconds": round(seconds, 3),
            "started_at": round(started_at, 3), "ended_at": round(time.time(), 3),
            "cpu_seconds": None if cpu is None else round(cpu, 3), "inputs": inputs,
            "command": stage.command, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }, indent=1) + "\n")
        partial.replace(stamp)
        log(f"{stage.label}: {seconds:.0f} s")

    def sharded(self, run_dir: Path, stage: Stage, flag_output: str, order_of: Path,
                extra_outputs: dict | None = None) -> None:
        """Runs a shardable stage whole, or as SHARDS shards in parallel and merges them.
        `flag_output` is the flag the command writes its output with; `extra_outputs` maps
        other output flags (--rejects) to their merged files."""
        n = self.cfg.shards
        if n <= 1:
            self.run(run_dir, stage)
            return
        parts_dir = stage.outputs[0].parent / "shards"
        parts_dir.mkdir(parents=True, exist_ok=True)
        extra_outputs = extra_outputs or {}
        shards = []
        for i in range(n):
            part = lambda path: parts_dir / f"{path.stem}.{i}-of-{n}{path.suffix}"
            command = list(stage.command)
            outputs = [part(stage.outputs[0])]
            command[command.index(flag_output) + 1] = str(outputs[0])
            for flag, merged in extra_outputs.items():
                command[command.index(flag) + 1] = str(part(merged))
                outputs.append(part(merged))
            command += ["--shard", f"{i}/{n}"]
            shards.append(Stage(stage.round, stage.name, outputs, stage.inputs, command,
                                shard=(i, n)))
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            for future in [pool.submit(self.run, run_dir, s) for s in shards]:
                future.result()
        if self.only == (stage.name, stage.round) and self.only_shard is not None:
            raise Stop(f"ran {stage.label} shard {self.only_shard[0]}/{n}")
        merged = [stage.outputs[0]] + list(extra_outputs.values())

        def merge() -> None:
            for k, out in enumerate(merged):
                merge_in_input_order([s.outputs[k] for s in shards], order_of, out)

        self.run(run_dir, Stage(stage.round, f"{stage.name}-merge", merged,
                                [o for s in shards for o in s.outputs],
                                action=merge, describe=f"merge {n} shards in input order"))


def run_command(command: list[str], stdout) -> tuple[int, float]:
    """Runs a stage's command; its exit code and the CPU seconds (user + system) of it and
    the processes it waited for (os.wait4: per child, right while shards run in threads)."""
    proc = subprocess.Popen(command, stdout=stdout)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def tool(name: str) -> str:
    return str(BIN / name)


def later(runner: Runner, chain):
    """A chain that nothing of its round waits for (a held-out rollout): returned to run
    beside the next round's first stages, or run now when stages do not overlap."""
    if runner.overlap:
        return chain
    chain()
    return None


BASE_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def import_base(source: Path, dest: Path) -> None:
    """BASE_FROM: copy a checkpoint or a Hugging Face Llama/Qwen2 directory to `dest` as the
    round-0 language model (atomically), with a checkpoint record naming where it came from."""
    missing = [name for name in BASE_FILES if not (source / name).is_file()]
    if missing:
        raise SystemExit(f"evolve: BASE_FROM={source}: no {', '.join(missing)} (a checkpoint "
                         "or a Hugging Face Llama/Qwen2 directory has config.json, "
                         "model.safetensors and tokenizer.json)")
    config = json.loads((source / "config.json").read_text())
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in BASE_FILES:
        shutil.copy2(source / name, tmp / name)
    # A checkpoint of ours also carries the edit-kind prior of its lineage.
    if (source / "edit-prior.json").is_file():
        shutil.copy2(source / "edit-prior.json", tmp / "edit-prior.json")
    record = {
        "schema": "checkpoint/1", "path": str(dest), "round": 0, "step": 0, "model": config,
        "tokenizer": str(dest / "tokenizer.json"), "metrics": {},
        "data": [{"path": str(source), "sha256": sha256_of(source)}], "imported_from": str(source),
    }
    (tmp / "checkpoint.json").write_text(json.dumps(record) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def base_and_dev(runner: Runner, base_dir: Path):
    """Round 0, shared by every strategy of a seed: the base solver, the dev set (trusted
    tasks of the dev split) and the base solver's held-out resolve rate (returned as a chain
    to run later, see `later`)."""
    cfg = runner.cfg
    w, seed, ex = cfg.workdir, str(cfg.seed), ["--executor", cfg.executor]
    corpus = w / "corpus.jsonl"
    base = base_dir / "base"
    eval_tasks = base_dir / "eval-tasks.jsonl"
    weights = ROOT / "scripts/eval-weights.toml"
    # With free pairs, `init` makes the tokenizer and language model and the base is the
    # scorer pretrained on the pairs (docs/learning.md); without, the base is `init`'s.
    lm = base_dir / "lm" if cfg.free_pairs else base

    def train_base() -> None:
        if cfg.base_from:
            runner.run(base_dir, Stage(
                0, "base", [lm / "checkpoint.json"], [cfg.base_from],
                action=lambda: import_base(cfg.base_from, lm),
                describe=f"import_base {cfg.base_from}"))
        else:
            runner.run(base_dir, Stage(
                0, "base", [lm / "checkpoint.json"], [corpus],
                [tool("solver-train"), "init", str(corpus), "-o", str(lm),
                 "--steps", str(cfg.base_steps), "--seed", seed, "-q"],
                stdout=base_dir / "base.jsonl"))
        if not cfg.free_pairs:
            return
        free = base_dir / "free-pairs.jsonl"
        runner.run(base_dir, Stage(
            0, "free-pairs", [free], [corpus, weights],
            [tool("task-gen"), "--strategy", "random", "--budget", str(cfg.free_pairs),
             "--seed", str(cfg.seed + 1000), "--operator-weights", str(weights), str(corpus),
             "-o", str(free), "-q"]))
        # 1.2 epochs of batches of 64, the schedule measured in docs/learning.md.
        steps = max(20, (12 * cfg.free_pairs + 639) // 640)
        runner.run(base_dir, Stage(
            0, "pretrain", [base / "checkpoint.json"], [lm / "checkpoint.json", free],
            [tool("solver-train"), "sft", "--from", str(lm), str(free), "--scorer", "features",
             "--steps", str(steps), "--batch-size", "64", "--group", "128", "--lr", "0.05",
             "--workdir", str(w), "--seed", seed, "-o", str(base), "-q"],
            stdout=base_dir / "pretrain.jsonl"))

    def dev_and_eval_sets() -> None:
        runner.run(base_dir, Stage(
            0, "dev-gen", [base_dir / "dev-candidates.jsonl"],
            [corpus, ROOT / "scripts/eval-weights.toml"],
            [tool("task-gen"), "--split", "dev", "--budget", str(cfg.dev_candidates),
             "--seed", seed, "--operator-weights", str(ROOT / "scripts/eval-weights.toml"),
             str(corpus), "-o", str(base_dir / "dev-candidates.jsonl"), "-q"]))
        runner.run(base_dir, Stage(
            0, "dev-validate", [base_dir / "dev-valid.jsonl"], [base_dir / "dev-candidates.jsonl"],
            [tool("task-validate"), str(base_dir / "dev-candidates.jsonl"), "--workdir", str(w),
             *ex, "-q", "-o", str(base_dir / "dev-valid.jsonl")]))
        runner.run(base_dir, Stage(
            0, "dev-set", [base_dir / "dev.jsonl"], [base_dir / "dev-valid.jsonl"],
            action=lambda: fewest_tests(cfg.dev_tasks, base_dir / "dev-valid.jsonl",
                                        base_dir / "dev.jsonl"),
            describe=f"fewest_tests {cfg.dev_tasks}"))
        runner.run(base_dir, Stage(
            0, "eval-tasks", [eval_tasks], [cfg.eval_set],
            action=lambda: write_lines_atomic(eval_tasks, eval_slice(
                cfg.eval_set.read_text().splitlines(keepends=True), cfg.seed, cfg.rollout_tasks)),
            describe=f"eval_slice seed {cfg.seed} of {cfg.rollout_tasks}"))

    runner.together(train_base, dev_and_eval_sets)
    if not records(base_dir / "dev.jsonl") and runner.only is None:
        raise Failed("no valid dev task: raise DEV_CANDIDATES")
    def evaluate() -> None:
        rank_eval(runner, base_dir, 0, base)
        rollout(runner, base_dir, 0, "eval-rollout", base, eval_tasks,
                base_dir / "eval-traces.jsonl")

    return later(runner, evaluate)


def rank_eval(runner: Runner, run_dir: Path, r: int, solver: Path) -> None:
    """The continuous held-out metric: where the solver ranks the gold repair of every task of
    the evaluation set (top-1, MRR; no test runs), task by task in eval-rank.per.jsonl."""
    cfg = runner.cfg
    if not cfg.rank_eval:
        return
    d = run_dir if r == 0 else run_dir / f"round-{r}"
    rank_stage(runner, run_dir, d, r, "eval-rank", solver, cfg.eval_set)


def rank_stage(runner: Runner, run_dir: Path, d: Path, r: int, name: str, solver: Path,
               tasks: Path) -> Path:
    """Stage NAME: `solver-train eval --per-task` of SOLVER on TASKS, the summary in
    d/NAME.json and the gold repair's rank task by task in d/NAME.per.jsonl (returned)."""
    per_task = d / f"{name}.per.jsonl"
    runner.run(run_dir, Stage(
        r, name, [d / f"{name}.json", per_task], [solver / "checkpoint.json", tasks],
        [tool("solver-train"), "eval", "--checkpoint", str(solver), "--workdir",
         str(runner.cfg.workdir), "--per-task", str(per_task), "-q",
         "-o", str(d / f"{name}.json"), str(tasks)]))
    return per_task


def rollout(runner: Runner, run_dir: Path, r: int, name: str, solver: Path, tasks: Path,
            out: Path) -> None:
    cfg = runner.cfg
    runner.sharded(run_dir, Stage(
        r, name, [out], [solver, tasks],
        [tool("swe-rollout"), "--solver", f"model:{solver}", "--workdir", str(cfg.workdir),
         "--executor", cfg.executor, "--seed", str(cfg.seed), "-q", "--allow-empty", str(tasks),
         "-o", str(out)]),
        "-o", tasks)


def base_stage(name: str) -> str:
    """The stage a name refers to: `task-validate-more-2` is a top-up pass of task-validate."""
    base, _, k = name.rpartition("-more-")
    return base if base in GENERATION_STAGES and k.isdigit() and int(k) > 0 else name


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
    import random
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


def run_filter(cfg: Config, valid: Path, out: Path) -> None:
    """TASK_FILTER, a custom stage: `CMD IN -o OUT`."""
    proc = subprocess.run(cfg.task_filter + [str(valid), "-o", str(out)])
    if proc.returncode != 0:
        raise Failed(f"TASK_FILTER failed (exit {proc.returncode}): {' '.join(cfg.task_filter)}")


def topup_budget(cfg: Config, have: int, generated: int) -> int:
    """Candidates for the next pass: 1.5x the shortfall over the yield so far, at most
    CANDIDATES (all of them when nothing passed yet)."""
    if have == 0:
        return cfg.candidates
    needed = math.ceil(1.5 * (cfg.valid - have) * generated / have)
    return max(1, min(cfg.candidates, needed))


def generate(runner: "Runner", run_dir: Path, r: int, gen: list[str],
             gen_inputs: list[Path]) -> list[Path]:
    """task-gen -> task-validate -> TASK_FILTER passes until the round has VALID distinct
    tasks or TOPUP extra passes are spent, so that every strategy trains on pools of the same
    size whatever its generator's yield. Pass 0 writes round-N/{candidates,valid,rejects}.jsonl,
    pass K round-N/more-K/ with seed + 10007 K. Returns each pass' usable tasks file."""
    cfg = runner.cfg
    d = run_dir / f"round-{r}"
    filter_inputs = [Path(a) for a in cfg.task_filter if Path(a).is_file()]
    usable: list[Path] = []
    generated = have = 0
    for k in range(cfg.topup + 1):
        p, suffix = (d, "") if k == 0 else (d / f"more-{k}", f"-more-{k}")
        if k > 0 and have >= cfg.valid:
            break
        budget = cfg.candidates if k == 0 else topup_budget(cfg, have, generated)
        if k > 0:
            log(f"round {r}: {have} of VALID={cfg.valid} tasks passed: "
                f"{budget} more candidates (pass {k} of at most {cfg.topup})")
        generated += budget
        runner.run(run_dir, Stage(
            r, f"task-gen{suffix}", [p / "candidates.jsonl"], gen_inputs,
            gen + ["--budget", str(budget), "--seed", str(cfg.seed + r + 10007 * k),
                   "--round", str(r), str(cfg.workdir / "corpus.jsonl"),
                   "-o", str(p / "candidates.jsonl"), "-q"]))
        # Every pass leaves its repositories' line maps in round-N/line-maps/ (the same
        # file for a repository whichever pass wrote it: the traced clean run is cached).
        runner.sharded(run_dir, Stage(
            r, f"task-validate{suffix}",
            [p / "valid.jsonl", p / "rejects.jsonl", d / "line-maps"],
            [p / "candidates.jsonl"],
            [tool("task-validate"), str(p / "candidates.jsonl"), "--workdir", str(cfg.workdir),
             "--executor", cfg.executor, "-q", "--allow-empty", "-o", str(p / "valid.jsonl"),
             "--rejects", str(p / "rejects.jsonl"), "--line-maps", str(d / "line-maps")]),
            "-o", p / "candidates.jsonl", {"--rejects": p / "rejects.jsonl"})
        if cfg.task_filter:
            runner.run(run_dir, Stage(
                r, f"filter{suffix}", [p / "filtered.jsonl"], [p / "valid.jsonl", *filter_inputs],
                action=lambda p=p: run_filter(cfg, p / "valid.jsonl", p / "filtered.jsonl"),
                describe=f"filter {cfg.task_filter}"))
            usable.append(p / "filtered.jsonl")
        else:
            usable.append(p / "valid.jsonl")
        have = len(distinct_tasks(usable))
    # Passes of an earlier run that this one did not need (CANDIDATES or VALID changed) go,
    # so that the round's files are those of its passes.
    for stale in d.glob("more-*"):
        k = stale.name.removeprefix("more-")
        if stale.is_dir() and k.isdigit() and int(k) >= len(usable):
            shutil.rmtree(stale)
            for stamp in (run_dir / ".stamps").glob(f"round-{r}.*-more-{k}[.-]*json"):
                stamp.unlink()
    if runner.until is not None and runner.until[1] == r and base_stage(runner.until[0]) in GENERATION_STAGES:
        raise Stop(f"round {r} did not need {runner.until[0]}: stopped before its pool")
    if have < cfg.valid:
        log(f"round {r}: only {have} tasks for a pool of VALID={cfg.valid} after "
            f"{len(usable)} passes: raise CANDIDATES or TOPUP")
    return usable


def policy_tasks(usable: list[Path], pool: Path, out: Path) -> None:
    """The candidates that update-policy learns from: every pass' candidates once, without
    the valid ones that did not make the pool (they have no score, and a missing score
    means "did not validate" to update-policy)."""
    pooled = {json.loads(line)["instance_id"] for line in pool.read_text().splitlines() if line.strip()}
    unpooled = {json.loads(line)["instance_id"] for line in distinct_tasks(usable)} - pooled
    candidates = distinct_tasks([u.parent / "candidates.jsonl" for u in usable])
    write_lines_atomic(out, [line for line in candidates
                             if json.loads(line)["instance_id"] not in unpooled])


def one_round(runner: Runner, run_dir: Path, r: int, solver: Path, dev: Path,
              eval_tasks: Path, pending=None):
    """Round r from the input `solver`. Stages that share no files overlap (OVERLAP=1):
    generation beside `pending` (the last round's held-out rollout) then the dev rollout
    and target; grad-score, keep, update-policy and sft beside the training rollout and
    skill-distill. Returns the round's solver and its held-out rollout (see `later`)."""
    cfg = runner.cfg
    w, seed = cfg.workdir, str(cfg.seed)
    generator, keep_by = STRATEGIES[cfg.strategy]
    d, prev = run_dir / f"round-{r}", run_dir / f"round-{r - 1}"
    d.mkdir(parents=True, exist_ok=True)
    corpus = w / "corpus.jsonl"
    # Trace-derived skills come from the last round; hand-written ones are the same each round.
    skills_in = cfg.handwritten if generator == "handwritten" else prev / "skills.jsonl"
    uses_skills = generator in ("skills", "handwritten")
    policy_in = prev / "policy.json"
    scores = d / "scores.jsonl"

    gen = [tool("task-gen"), "--strategy", "random"]
    gen_inputs = [corpus]
    if cfg.random_weights is not None:
        gen += ["--operator-weights", str(cfg.random_weights)]
        gen_inputs.append(cfg.random_weights)
    if uses_skills and records(skills_in):
        gen = [tool("task-gen"), "--strategy", "skills", "--skills", str(skills_in)]
        gen_inputs = [corpus, skills_in]
        if policy_in.is_file():
            gen += ["--policy", str(policy_in)]
            gen_inputs.append(policy_in)
    # Sites get tests_reaching from the last round's line maps (skills may ask for it).
    if (prev / "line-maps").is_dir():
        gen += ["--line-maps", str(prev / "line-maps")]
        gen_inputs.append(prev / "line-maps")
    usable: list[Path] = []

    def generation() -> None:
        usable.extend(generate(runner, run_dir, r, gen, gen_inputs))
        runner.run(run_dir, Stage(
            r, "pool", [d / "pool.jsonl"], usable,
            action=lambda: write_lines_atomic(d / "pool.jsonl",
                                              distinct_tasks(usable)[:cfg.valid]),
            describe=f"first {cfg.valid} distinct"))

    def dev_target() -> None:
        if pending is not None:
            pending()
        if keep_by != "grad":
            return
        target = ["--target", str(dev)]
        if cfg.dev_target == "rank":
            # The dev tasks whose gold repair the solver does not rank first: no test runs.
            failures = rank_stage(runner, run_dir, d, r, "dev-rank", solver, dev)
            first = sum(t["better"] == 0 and t["ties"] == 0 for t in records(failures))
            if first < len(records(dev)):
                target += ["--target-ranks", str(failures)]
        else:
            failures = d / "dev-traces.jsonl"
            rollout(runner, run_dir, r, "dev-rollout", solver, dev, failures)
            # The target: the dev tasks the solver fails, or all of them when it fails none.
            if any(not t.get("outcome", {}).get("resolved", False) for t in records(failures)):
                target += ["--target-traces", str(failures)]
        runner.run(run_dir, Stage(
            r, "target", [d / "target.json"], [solver, dev, failures],
            [tool("grad-score"), "--checkpoint", str(solver), *target,
             "--target-out", str(d / "target.json"), "--workdir", str(w), "--seed", seed, "-q",
             "--allow-empty", "-o", os.devnull, os.devnull]))

    runner.together(generation, dev_target)
    if not records(d / "pool.jsonl") and runner.only is None:
        raise Failed(f"round {r}: no candidate passed the gate; raise CANDIDATES")
    pooled = len(records(d / "pool.jsonl"))
    keep_n = round(cfg.keep_frac * pooled)

    def score_keep_train() -> None:
        if keep_by == "grad":
            runner.sharded(run_dir, Stage(
                r, "grad-score", [scores], [solver, d / "target.json", d / "pool.jsonl"],
                [tool("grad-score"), "--checkpoint", str(solver), "--target-in",
                 str(d / "target.json"), "--workdir", str(w), "--seed", seed, "-q",
                 *(["--precondition", "adam"] if cfg.select == "adam-mixed" else []),
                 "--allow-empty", str(d / "pool.jsonl"), "-o", str(scores)]),
                "-o", d / "pool.jsonl")
            keep = [tool("grad-score"), "keep", "--scores", str(scores)]
            keep_inputs = [d / "pool.jsonl", scores]
            if cfg.select != "top":
                # The failures' bug-family mix, the best inside each family (docs/study.md).
                keep += ["--mix-of", str(d / "target.json")]
                keep_inputs.append(d / "target.json")
        else:
            keep = [tool("grad-score"), "keep", "--random"]
            keep_inputs = [d / "pool.jsonl"]
        runner.run(run_dir, Stage(
            r, "keep", [d / "kept.jsonl"], keep_inputs,
            keep + ["--keep-top", str(keep_n), "--seed", str(cfg.seed + r), "-q",
                    str(d / "pool.jsonl"), "-o", str(d / "kept.jsonl")]))
        update_policy()
        # The last round's training traces (this round's run beside this stage).
        rft, rft_inputs = [], []
        if cfg.rft_weight > 0 and records(prev / "traces.jsonl"):
            rft_inputs = [prev / "traces.jsonl", prev / "rollout-tasks.jsonl"]
            rft = ["--traces", str(rft_inputs[0]), "--trace-tasks", str(rft_inputs[1]),
                   "--trace-weight", str(cfg.rft_weight)]
        # REPLAY free repair pairs of the base's pretraining beside the kept tasks, so that a
        # round's fine-tuning keeps what pretraining gave (the same number for every strategy).
        replay, free = [], dev.parent / "free-pairs.jsonl"
        if cfg.replay > 0 and free.is_file():
            replay = [d / "replay.jsonl"]
            runner.run(run_dir, Stage(
                r, "replay", replay, [free],
                action=lambda: write_lines_atomic(replay[0], sample_lines(
                    free, cfg.replay, cfg.seed * 1000 + r)),
                describe=f"{cfg.replay} free pairs, seed {cfg.seed * 1000 + r}"))
        runner.run(run_dir, Stage(
            r, "solver-train", [d / "solver" / "checkpoint.json"],
            [solver, d / "kept.jsonl", *replay, *rft_inputs],
            [tool("solver-train"), "sft", "--from", str(solver), str(d / "kept.jsonl"),
             *map(str, replay), *rft, "-o", str(d / "solver"), "--workdir", str(w),
             *sft_schedule(cfg, keep_n + (cfg.replay if replay else 0)), "--seed", seed, "-q"],
            stdout=d / "checkpoint.jsonl"))

    def update_policy() -> None:
        """REINFORCE on the generator policy from this round's scores (the policy the round
        generated with is last round's: it does not wait for this round's skills)."""
        if not uses_skills:
            return
        if "--skills" in gen and keep_by == "grad":
            previous_policy = ["--policy", str(policy_in)] if policy_in.is_file() else []
            candidates = [u.parent / "candidates.jsonl" for u in usable]
            runner.run(run_dir, Stage(
                r, "policy-tasks", [d / "policy-tasks.jsonl"], [*candidates, *usable,
                                                                d / "pool.jsonl"],
                action=lambda: policy_tasks(usable, d / "pool.jsonl", d / "policy-tasks.jsonl"),
                describe="candidates of every pass once, less the valid ones not pooled"))
            runner.run(run_dir, Stage(
                r, "update-policy", [d / "policy.json"],
                [skills_in, d / "policy-tasks.jsonl", scores]
                + ([policy_in] if previous_policy else []),
                [tool("task-gen"), "update-policy", "--skills", str(skills_in),
                 "--tasks", str(d / "policy-tasks.jsonl"), "--scores", str(scores),
                 *previous_policy, "-q", "-o", str(d / "policy.json")]))
        elif policy_in.is_file():
            runner.run(run_dir, Stage(
                r, "update-policy", [d / "policy.json"], [policy_in],
                action=lambda: write_lines_atomic(d / "policy.json", [policy_in.read_text()]),
                describe="copy the last policy"))

    def traces_to_skills() -> None:
        """The training rollout (its resolved traces train the next round) and, for
        trace-derived skills, skill-distill. Hand-written skills need traces only for RFT."""
        if not uses_skills or (generator != "skills" and cfg.rft_weight <= 0):
            return
        runner.run(run_dir, Stage(
            r, "rollout-tasks", [d / "rollout-tasks.jsonl"], [d / "pool.jsonl"],
            action=lambda: fewest_tests(cfg.train_rollout, d / "pool.jsonl",
                                        d / "rollout-tasks.jsonl"),
            describe=f"fewest_tests {cfg.train_rollout}"))
        rollout(runner, run_dir, r, "train-rollout", solver, d / "rollout-tasks.jsonl",
                d / "traces.jsonl")
        if generator != "skills":
            return
        # The last round's failed traces that formed no skill join this round's (CARRY=1), so
        # a failure mode seen once a round can still gather the support of a skill.
        traces, tasks = d / "traces.jsonl", d / "pool.jsonl"
        carried = prev / "unclustered-traces.jsonl"
        if cfg.carry and records(carried):
            traces, tasks = d / "distill-traces.jsonl", d / "distill-tasks.jsonl"
            runner.run(run_dir, Stage(
                r, "carry-traces", [traces, tasks],
                [d / "traces.jsonl", carried, d / "pool.jsonl", prev / "pool.jsonl"],
                action=lambda: carry_traces(d, prev, traces, tasks),
                describe="this round's traces + the last round's unclustered failures"))
        previous = ["--skills", str(skills_in)] if records(skills_in) else []
        runner.run(run_dir, Stage(
            r, "skill-distill", [d / "skills.jsonl"],
            [traces, tasks] + ([skills_in] if previous else []),
            [tool("skill-distill"), str(traces), "--tasks", str(tasks),
             *previous, "--round", str(r), "--min-support", str(cfg.min_support),
             "--workdir", str(w), "--seed", seed, "-q", "-o", str(d / "skills.jsonl"),
             "--export-dir", str(d / "skills")]))
        runner.run(run_dir, Stage(
            r, "unclustered", [d / "unclustered-traces.jsonl"],
            [d / "traces.jsonl", d / "skills.jsonl"],
            action=lambda: unclustered(d / "traces.jsonl", d / "skills.jsonl",
                                       d / "unclustered-traces.jsonl"),
            describe="this round's failed traces in no skill's evidence"))

    runner.together(score_keep_train, traces_to_skills)

    def evaluate() -> None:
        rank_eval(runner, run_dir, r, d / "solver")
        rollout(runner, run_dir, r, "eval-rollout", d / "solver", eval_tasks,
                d / "eval-traces.jsonl")
        resolved = sum(t["outcome"]["resolved"] for t in records(d / "eval-traces.jsonl")
                       if not t.get("error"))
        passes = [u.parent for u in usable]
        log(f"round {r}: {sum(len(records(p / 'candidates.jsonl')) for p in passes)} candidates "
            f"in {len(passes)} passes, "
            f"{sum(len(records(p / 'valid.jsonl')) for p in passes)} valid, {pooled} pooled, "
            f"{len(records(d / 'kept.jsonl'))} kept, {len(records(d / 'skills.jsonl'))} skills; "
            f"{resolved} of {len(records(d / 'eval-traces.jsonl'))} held-out tasks resolved")

    return d / "solver", later(runner, evaluate)


# The feature scorer's fine-tuning, chosen on validated dev tasks (docs/learning.md).
FEATURE_SFT = {"batch": 64, "group": 128, "lr": 0.01}


def sft_schedule(cfg: Config, kept: int) -> list[str]:
    """solver-train sft's schedule for a round that keeps `kept` tasks: the same for every
    strategy (they keep as many). The feature scorer (FREE_PAIRS > 0) is fine-tuned as
    docs/learning.md chose, SFT_EPOCHS passes over the kept tasks (SFT_STEPS overrides); the
    language-model base (FREE_PAIRS=0) with sft's own batch and rate, SFT_STEPS (20) steps."""
    lr = [] if cfg.sft_lr is None else ["--lr", str(cfg.sft_lr)]
    if not cfg.free_pairs:
        return ["--steps", str(cfg.sft_steps or 20), *lr]
    steps = cfg.sft_steps or max(1, math.ceil(cfg.sft_epochs * kept / FEATURE_SFT["batch"]))
    return ["--steps", str(steps), "--batch-size", str(FEATURE_SFT["batch"]), "--group",
            str(FEATURE_SFT["group"]), *(lr or ["--lr", str(FEATURE_SFT["lr"])])]


def default_executor() -> str:
    """native where its runs can be contained: bubblewrap is installed, or setup will install
    it (root with apt-get), or the user declared the code trusted; wasm otherwise."""
    trusted = os.environ.get("SOCRATIC_TRUSTED_CODE", "") not in ("", "0", "false", "no", "off")
    can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if shutil.which("bwrap") or can_install or trusted:
        return "native"
    log("bubblewrap (bwrap) is not installed: the loop runs its tests under wasm "
        "(install bubblewrap for the faster native executor)")
    return "wasm"


def build_and_setup(workdir: Path, build: bool, setup: bool, executor: str) -> None:
    """The release build of the tools and `just setup`'s downloads, side by side (one is
    CPU-bound, the other mostly waits on the network); then the corpus check."""
    building = None
    if build:
        packages = [arg for t in [*TOOLS, "records"] for arg in ("-p", t)]
        # With the native executor the tools need no wasmtime: leaving it out (the sandbox's
        # `wasm` feature) saves about a third of a fresh build.
        features = [] if executor == "wasm" else ["--no-default-features"]
        building = subprocess.Popen(["cargo", "build", "--release", "-q", *packages, *features,
                                     "--manifest-path", str(ROOT / "Cargo.toml")])
    try:
        if setup:
            proc = subprocess.run([sys.executable, str(ROOT / "scripts/setup.py"),
                                   "--workdir", str(workdir)])
            if proc.returncode != 0:
                raise Failed(f"scripts/setup.py failed (exit {proc.returncode})")
        if building is not None and building.wait() != 0:
            raise Failed(f"cargo build failed (exit {building.returncode})")
    finally:
        if building is not None and building.poll() is None:
            building.kill()
    if setup:
        proc = subprocess.run([tool("records"), "check", "--kind", "repo", "-q",
                               str(workdir / "corpus.jsonl")])
        if proc.returncode != 0:
            raise Failed(f"{workdir / 'corpus.jsonl'} does not hold valid repo records")


def evolve(args, cfg: Config, only_shard) -> Path:
    """One run: base and dev set, then the rounds; returns the run directory."""
    runner = Runner(
        cfg,
        only=(args.only, args.round) if args.only else None,
        until=(args.until, args.round) if args.until else None,
        only_shard=only_shard,
    )
    base_dir = cfg.runs / f"base-seed{cfg.seed}"
    run_dir = cfg.runs / cfg.run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    write_if_changed(run_dir / "config.json", json.dumps(
        {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()},
        indent=1) + "\n")
    log(f"{cfg.strategy}, seed {cfg.seed}, {cfg.rounds} rounds, executor {cfg.executor}; "
        f"run in {run_dir}")
    try:
        pending = base_and_dev(runner, base_dir)
        solver = base_dir / "base"
        for r in range(1, cfg.rounds + 1):
            solver, pending = one_round(runner, run_dir, r, solver, base_dir / "dev.jsonl",
                                        base_dir / "eval-tasks.jsonl", pending)
        if pending is not None:
            pending()
    except Stop as stop:
        log(str(stop))
        return run_dir
    if runner.only is not None:
        raise Failed(f"{args.only} of round {args.round} is not a stage of a {cfg.strategy} "
                     f"run of {cfg.rounds} rounds")
    if runner.until is not None:
        log(f"{args.until} of round {args.round} is not a stage of a {cfg.strategy} run of "
            f"{cfg.rounds} rounds: ran it whole")
    report = report_of([str(run_dir)])
    write_if_changed(run_dir / "report.md", report)
    print(report, end="")
    return run_dir


def report_of(args: list[str]) -> str:
    return subprocess.run([sys.executable, str(ROOT / "scripts/evolve_report.py"), *args],
                          capture_output=True, text=True, check=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Variables (environment): STRATEGY=socratic (or a comma list of socratic, "
               "baseline, skills-only, score-only, handwritten) SEED=1, or SEEDS=N for seeds 1..N; "
               "ROUNDS=3 CANDIDATES=10 VALID=6 TOPUP=2 BASE_STEPS=60 FREE_PAIRS=10000 (the base "
               "scorer's pretraining pairs; 0: the base is init's language model) SFT_EPOCHS=8 "
               "(the feature scorer's fine-tuning: max(1, SFT_EPOCHS x kept / 64) steps of "
               "batch 64, lr SFT_LR=0.01; SFT_STEPS=N sets the steps, and for the language-model "
               "base, FREE_PAIRS=0, they are SFT_STEPS=20 of sft's own batch and rate) "
               "DEV_CANDIDATES=10 "
               "DEV_TASKS=3 TRAIN_ROLLOUT=3 ROLLOUT_TASKS=6 KEEP_FRAC=0.5 RFT_WEIGHT=1 MIN_SUPPORT=2 "
               "EXECUTOR=native|wasm SHARDS=1 OVERLAP=1 TASK_FILTER='CMD' "
               "DEV_TARGET=rollout|rank (the target: dev tasks failed in rollouts, or ranked "
               "wrong) RANK_EVAL=1 (0: no per-round eval-rank) "
               "BASE_FROM=DIR (round 0 starts from this checkpoint or Hugging Face Llama/Qwen2 "
               "directory instead of init's model; FREE_PAIRS still pretrain its features) "
               "REPLAY=0 (free repair pairs of the base's pretraining trained beside each "
               "round's kept tasks) RANDOM_WEIGHTS=FILE (random generation in this operator mix, e.g. "
               "scripts/eval-weights.toml, the natural-bug prior; default uniform) "
               "SELECT=top|mixed|adam-mixed (what grad-score keeps: the top by alignment, the "
               "top inside the failures' family mix, the same with Adam-preconditioned "
               "gradients) HANDWRITTEN_SKILLS=examples/skills/handwritten.jsonl CARRY=1 (0: the failed "
               "traces no skill took are not carried into the next round's skill-distill) "
               "EVAL=data/eval/eval-set.jsonl RUNS=WORKDIR/run (where runs go) "
               "BIN=target/release (the tools; another BIN is not rebuilt)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(os.environ.get("SOCRATIC_WORKDIR", ".socratic")))
    parser.add_argument("--only", metavar="STAGE", help="rerun this stage alone (needs --round)")
    parser.add_argument("--until", metavar="STAGE", help="stop before this stage (needs --round)")
    parser.add_argument("--round", type=int, help="the round of --only / --until (0: base)")
    parser.add_argument("--shard", metavar="I/N", help="with --only: run this shard alone")
    parser.add_argument("--no-build", action="store_true", help="use the built tools as they are")
    parser.add_argument("--setup", action="store_true",
                        help="run `just setup` (scripts/setup.py) first, beside the build")
    args = parser.parse_args()
    try:
        strategies = os.environ.get("STRATEGY", "socratic").split(",")
        for strategy in strategies:
            if strategy not in STRATEGIES:
                raise BadUsage(f"STRATEGY={strategy}: one of {', '.join(STRATEGIES)}")
        seeds = ([int(os.environ.get("SEED", "1"))] if not os.environ.get("SEEDS")
                 else list(range(1, int(os.environ["SEEDS"]) + 1)))
        stages = set(ROUND_STAGES) | set(BASE_STAGES)
        for flag in ("only", "until"):
            name = getattr(args, flag)
            if name is not None:
                if args.round is None:
                    raise BadUsage(f"--{flag} needs --round")
                if base_stage(name) not in stages:
                    raise BadUsage(f"--{flag} {name}: not a stage ({', '.join(sorted(stages))})")
        shards = int(os.environ.get("SHARDS", "1"))
        only_shard = None
        if args.shard:
            i, n = (int(x) for x in args.shard.split("/"))
            shardable = args.only and base_stage(args.only) in SHARDABLE
            if not shardable or n != shards or not 0 <= i < n:
                raise BadUsage(f"--shard {args.shard} needs --only with a shardable stage "
                             f"({', '.join(sorted(SHARDABLE))}) and SHARDS={n}")
            only_shard = (i, n)
        if os.environ.get("SELECT", "top") not in ("top", "mixed", "adam-mixed"):
            raise BadUsage(f"SELECT={os.environ['SELECT']}: top, mixed or adam-mixed")
        if os.environ.get("DEV_TARGET", "rollout") not in ("rollout", "rank"):
            raise BadUsage(f"DEV_TARGET={os.environ['DEV_TARGET']}: rollout or rank")
        executor = os.environ.get("EXECUTOR") or default_executor()
        if executor not in ("native", "wasm"):
            raise BadUsage(f"EXECUTOR={executor}: native or wasm")
        os.environ["EXECUTOR"] = executor  # what Config.from_env reads
        build_and_setup(args.workdir, build=not args.no_build and "BIN" not in os.environ,
                        setup=args.setup, executor=executor)
        # Seed-major: a long comparison has whole seeds (every strategy) done first.
        runs = [evolve(args, Config.from_env(args.workdir, strategy, seed), only_shard)
                for seed in seeds for strategy in strategies]
        if len(runs) > 1 and args.only is None and args.until is None:
            runs_dir = runs[0].parent
            report = report_of(["--compare", str(runs_dir), "--plots", str(runs_dir / "plots")])
            write_if_changed(runs_dir / "report.md", report)
            print(report, end="")
        return 0
    except Failed as failed:
        log(f"error: {failed}")
        return 2 if isinstance(failed, BadUsage) else 1


if __name__ == "__main__":
    sys.exit(main())
