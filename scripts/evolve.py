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
                              [--until STAGE --round N] [--print-round N]

`--print-round N` prints round N as a shell script: the same commands, one after another
(the steps that are not tools are scripts/round_steps.py's), which gives the same files.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import round_steps
from round_steps import NO, distinct_tasks, merge_in_input_order, records, write_lines_atomic

# The steps' functions, as the unit tests call them.
eval_slice, unclustered, carry_traces = (round_steps.eval_slice, round_steps.unclustered,
                                         round_steps.carry_traces)

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
    sft_anchor: float
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
            sft_anchor=float(env("SFT_ANCHOR", str(FEATURE_SFT["anchor"]))),
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
            runs=below_cwd(Path(env("RUNS", str(workdir / "run")))),
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


def below_cwd(path: Path) -> Path:
    """`path` relative to the working directory when it lies under it: the stages' commands,
    and so their stamps, are then the same whether a path was given absolute or relative."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd())
    except ValueError:
        return absolute


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


def write_if_changed(path: Path, text: str) -> None:
    """Leaves a file with this content as it is (its time included)."""
    if not path.is_file() or path.read_text() != text:
        write_lines_atomic(path, [text])


# A round's steps that are not tools (round_steps.py), as a command.
STEP = [sys.executable, str(ROOT / "scripts/round_steps.py")]


@dataclass(frozen=True)
class Var:
    """A value a round takes from its own files (a count, a budget): the loop has it when the
    stage that uses it runs, a printed round computes it in shell as $NAME."""
    name: str


class Array(list):
    """Paths a round collects as it goes (the usable tasks of each generation pass): a list
    to the loop, the shell array NAME in a printed round."""
    def __init__(self, name: str):
        super().__init__()
        self.name = name


# The record solver-train writes last into a checkpoint directory: the directory is whole
# when it is there.
CHECKPOINT = "checkpoint.json"


@dataclass(frozen=True)
class In:
    """A path a stage's command reads, named once in the command: the command has it as a word
    (after `prefix`, as in model:DIR), the stage's inputs have it (an Array: its paths).
    `known_by`: a file inside the directory that the stamp hashes in its place."""
    path: object  # a path, or an Array
    prefix: str = ""
    known_by: str = ""

    @property
    def word(self):
        return f"{self.prefix}{self.path}" if self.prefix else self.path

    @property
    def stamped(self):
        return Path(self.path) / self.known_by if self.known_by else self.path


@dataclass(frozen=True)
class Out:
    """A path a stage's command writes, named once in the command: the command has it as a
    word, the stage's outputs have it. `known_by`: a file inside the directory that says it
    is whole (a checkpoint's CHECKPOINT). Under SHARDS each shard writes its own part of a
    records file, merged after (Runner.sharded); a `shared` directory they all write into."""
    path: Path
    known_by: str = ""
    shared: bool = False

    @property
    def word(self):
        return self.path

    @property
    def done(self) -> Path:
        return self.path / self.known_by if self.known_by else self.path


def flat(items: list) -> list[str]:
    """A command or input list with its markers as their words and its lists (Arrays) spliced
    in, as strings."""
    out = []
    for item in items:
        item = item.word if isinstance(item, (In, Out)) else item
        out.extend(map(str, item) if isinstance(item, list) else [str(item)])
    return out


@dataclass
class Stage:
    """A step of a round: a command, whose inputs and outputs are its In and Out markers plus
    `reads`, or a Python `action`, whose are `reads` and `writes`."""
    round: int
    name: str
    command: list | None = None  # strings, paths, Vars, Arrays and In/Out markers
    reads: list = field(default_factory=list)  # inputs the command line does not name
    writes: list[Path] = field(default_factory=list)  # an action's outputs
    action: object = None  # a callable when the stage is Python, not a command
    describe: str = ""
    stdout: Path | None = None  # where the command's stdout goes (atomically), if anywhere
    shard: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        shard = f" shard {self.shard[0]}/{self.shard[1]}" if self.shard else ""
        return f"round {self.round}: {self.name}{shard}"

    def marked(self, kind: type) -> list:
        return [word for word in self.command or [] if isinstance(word, kind)]

    @property
    def outputs(self) -> list[Path]:
        return [out.done for out in self.marked(Out)] + self.writes

    @property
    def inputs(self) -> list:  # paths, and lists of paths (an Array)
        return [i.stamped for i in self.marked(In)] + self.reads

    @property
    def argv(self) -> list[str] | None:
        return None if self.command is None else flat(self.command)

    @property
    def input_paths(self) -> list[Path]:
        return [Path(p) for p in flat(self.inputs)]


class Runner:
    def __init__(self, cfg: Config, only=None, until=None, only_shard=None):
        self.cfg = cfg
        self.only = only  # (stage, round): run that stage alone, then stop
        self.until = until  # (stage, round): stop before it
        self.only_shard = only_shard
        # Independent chains of stages run side by side unless one stage is asked for.
        self.overlap = cfg.overlap and only is None and until is None

    printing = False

    def log(self, message: str) -> None:
        log(message)

    def array(self, name: str) -> Array:
        return Array(name)

    def append(self, array: Array, path: Path) -> None:
        array.append(path)

    def decide(self, argv: list) -> tuple[bool, str]:
        """Runs a decision step (round_steps.py): whether it answered yes (exit 0; NO: no)
        and what it printed."""
        proc = subprocess.run(flat(argv), stdout=subprocess.PIPE, text=True)
        if proc.returncode not in (0, NO):
            raise Failed(f"{' '.join(shlex.quote(a) for a in flat(argv))} failed "
                         f"(exit {proc.returncode})")
        return proc.returncode == 0, proc.stdout.strip()

    def value(self, name: str, argv: list):
        """What the step ARGV prints (a printed round: $NAME, set from it)."""
        return self.decide(argv)[1]

    def branch(self, argv: list, then, otherwise=None, name: str | None = None) -> None:
        """then() when the step ARGV answers yes, otherwise() when it answers no; with NAME,
        then(what it printed)."""
        yes, out = self.decide(argv)
        if yes:
            then(out) if name else then()
        elif otherwise is not None:
            otherwise()

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
        inputs = {str(p): sha256_of(p) for p in stage.input_paths}
        what = stage.argv if stage.command is not None else stage.describe
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
                code, cpu, hidden = run_command(stage.argv, stdout)
                cpu += hidden
            finally:
                if stdout is not None:
                    stdout.close()
            if code != 0:
                raise Failed(f"{stage.label} failed (exit {code}): "
                             + " ".join(shlex.quote(c) for c in stage.argv))
            if partial is not None:
                partial.replace(stage.stdout)
        else:
            cpu = hidden = None
            stage.action()
        seconds = time.monotonic() - started
        stamp.parent.mkdir(parents=True, exist_ok=True)
        partial = stamp.with_name(stamp.name + ".partial")
        partial.write_text(json.dumps({
            "round": stage.round, "stage": stage.name, "shard": stage.shard,
            "key": key, "seconds": round(seconds, 3),
            "started_at": round(started_at, 3), "ended_at": round(time.time(), 3),
            "cpu_seconds": None if cpu is None else round(cpu, 3),
            "sandbox_cpu_seconds": None if hidden is None else round(hidden, 3),
            "inputs": inputs,
            "command": stage.argv, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }, indent=1) + "\n")
        partial.replace(stamp)
        log(f"{stage.label}: {seconds:.0f} s")

    def sharded(self, run_dir: Path, stage: Stage, order_of: Path) -> None:
        """Runs a shardable stage whole, or as SHARDS shards in parallel, each writing its part
        of every records file the command writes (its Out markers but the shared ones), and
        merges the parts in the order of `order_of`."""
        n = self.cfg.shards
        if n <= 1:
            self.run(run_dir, stage)
            return
        merged = [out.path for out in stage.marked(Out) if not out.shared]
        parts_dir = merged[0].parent / "shards"
        parts_dir.mkdir(parents=True, exist_ok=True)
        shards = [Stage(stage.round, stage.name, shard_command(stage.command, parts_dir, i, n),
                        reads=stage.reads, shard=(i, n)) for i in range(n)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            for future in [pool.submit(self.run, run_dir, s) for s in shards]:
                future.result()
        if self.only == (stage.name, stage.round) and self.only_shard is not None:
            raise Stop(f"ran {stage.label} shard {self.only_shard[0]}/{n}")
        parts = [[out.path for out in s.marked(Out) if not out.shared] for s in shards]

        def merge() -> None:
            for k, out in enumerate(merged):
                merge_in_input_order([p[k] for p in parts], order_of, out)

        self.run(run_dir, Stage(stage.round, f"{stage.name}-merge",
                                reads=[path for p in parts for path in p], writes=merged,
                                action=merge, describe=f"merge {n} shards in input order"))


def shard_command(command: list, parts_dir: Path, i: int, n: int) -> list:
    """Shard i of n of a command: its records files (Out) are its parts in parts_dir."""
    def part(word):
        if not isinstance(word, Out) or word.shared:
            return word
        return Out(parts_dir / f"{word.path.stem}.{i}-of-{n}{word.path.suffix}")
    return [part(word) for word in command] + ["--shard", f"{i}/{n}"]


# What each stage does, for the comments of a printed round.
STAGE_NOTES = {
    "task-gen": "candidate tasks",
    "task-validate": "the execution gate; leaves each repository's line map",
    "filter": "TASK_FILTER, a custom stage (CMD IN -o OUT)",
    "pool": "the first VALID distinct tasks of the passes",
    "dev-rollout": "the input solver on the dev set",
    "dev-rank": "where the input solver ranks each dev task's gold repair",
    "target": "grad-score's target direction from the dev failures",
    "grad-score": "the alignment of every pooled task with the target",
    "keep": "the best KEEP_FRAC of the pool (or as many at random)",
    "policy-tasks": "the candidates update-policy learns from",
    "update-policy": "REINFORCE on the generator policy from the round's rewards",
    "replay": "REPLAY free pairs of the base's pretraining",
    "solver-train": "the round's solver: sft of the input solver on the kept tasks",
    "rollout-tasks": "the TRAIN_ROLLOUT pooled tasks with the fewest tests",
    "train-rollout": "the input solver on them: the traces",
    "carry-traces": "the traces plus the last round's failures that formed no skill",
    "skill-distill": "the traces become the round's skills",
    "unclustered": "the failed traces no skill took (carried into the next round)",
    "eval-rank": "where the round's solver ranks the gold repair of every held-out task",
    "eval-rollout": "the round's solver on ROLLOUT_TASKS held-out tasks",
}
# What each decision step decides, likewise.
DECISION_NOTES = {
    "topup-budget": "another generation pass while fewer than VALID distinct tasks passed "
                    "(at most TOPUP)",
    "unresolved": "the target: the dev tasks the solver fails, or all when it fails none",
    "ranked-wrong": "the target: the dev tasks ranked wrong, or all when none is",
    "keep-count": "how many tasks keep keeps: KEEP_FRAC of the pool",
    "sft-steps": "SFT_EPOCHS passes over the kept tasks in batches of 64",
}
# Words a printed path may end with outside quotes.
PLAIN = re.compile(r"[A-Za-z0-9_./+=:,@%-]*")


class Printer(Runner):
    """Writes a round as a shell script instead of running it: each stage's command, its paths
    under the variables of the run ($run, $base, $w...), a shard as the whole stage (the same
    file), and the decisions the round takes on its own files as the steps that take them."""
    printing = True

    def __init__(self, cfg: Config, run_dir: Path, base_dir: Path):
        super().__init__(cfg)
        self.overlap = False
        self.lines: list[str] = []
        self.depth = 0
        self.made: set[Path] = set()
        self.written: set[str] = set()
        self.reads: list[str] = []
        cwd = Path.cwd()
        self.variables = []  # (name, path, the shell text of its value)
        for name, path in [("root", ROOT), ("bin", BIN), ("w", cfg.workdir), ("runs", cfg.runs),
                           ("run", run_dir), ("base", base_dir)]:
            text = self.word(path) if self.variables else (
                "$PWD" if ROOT == cwd else shlex.quote(str(ROOT)))
            if name == "runs":
                text = '${RUNS:-' + text.strip('"') + '}'
            self.variables.append((name, str(path), text))

    def word(self, item) -> str:
        if isinstance(item, (In, Out)):
            return self.word(item.word)
        if isinstance(item, Var):
            return f'"${item.name}"'
        if isinstance(item, Array):
            return f'"${{{item.name}[@]}}"'
        text = str(item)
        if text == sys.executable:
            return "python3"
        head, rest = ("model:", text[6:]) if text.startswith("model:") else ("", text)
        for name, prefix, _ in sorted(self.variables, key=lambda v: -len(v[1])):
            if rest == prefix or rest.startswith(prefix + "/"):
                tail = rest[len(prefix):]
                if PLAIN.fullmatch(tail):
                    return f'{head}"${name}{tail}"'
                return f'{head}"${name}"{shlex.quote(tail)}'
        return shlex.quote(text)

    def comment(self, text: str) -> None:
        if text:
            self.lines.append("    " * self.depth + f"# {text}")

    def emit(self, *words: str) -> None:
        """A command on lines of at most about 96 characters, a flag beside its value."""
        indent = "    " * self.depth
        units: list[str] = []
        for w in words:
            if units and units[-1] in (">",) or (
                    units and units[-1].startswith("-") and " " not in units[-1]
                    and not w.startswith("-")):
                units[-1] += " " + w
            else:
                units.append(w)
        line = indent + units[0]
        for w in units[1:]:
            if len(line) + 1 + len(w) > 96 and line.strip():
                self.lines.append(line + " \\")
                line = indent + "    " + w
            else:
                line += " " + w
        self.lines.append(line)

    def command(self, argv: list) -> list[str]:
        return [self.word(a) for item in argv
                for a in (item if isinstance(item, list) and not isinstance(item, Array)
                          else [item])]

    def run(self, run_dir: Path, stage: Stage) -> None:
        if stage.command is None:
            raise Failed(f"{stage.label} is Python ({stage.describe}): it cannot be printed")
        outputs = stage.outputs + ([stage.stdout] if stage.stdout else [])
        note = STAGE_NOTES.get(base_stage(stage.name), "")
        if not self.lines[-1].endswith(("then", "else")):
            self.lines.append("")
        self.comment(f"{stage.name}: {note}" if note else stage.name)
        for parent in dict.fromkeys(p.parent for p in outputs):
            if parent not in self.made:
                self.emit(f"mkdir -p {self.word(parent)}")
                self.made.add(parent)
        words = self.command(stage.command)
        if stage.stdout is not None:
            words += [">", self.word(stage.stdout)]
        self.emit(*words)
        for path in flat([i for i in stage.inputs if not isinstance(i, Array)]):
            made_here = any(w == path or w.startswith(path + "/") for w in self.written)
            if not made_here and path not in self.reads:
                self.reads.append(path)
        self.written.update(map(str, outputs))

    def sharded(self, run_dir: Path, stage: Stage, *_, **__) -> None:
        self.run(run_dir, stage)

    def log(self, message: str) -> None:
        pass

    def array(self, name: str) -> Array:
        self.comment("the usable tasks of each generation pass")
        self.emit(f"{name}=()")
        return Array(name)

    def append(self, array: Array, path: Path) -> None:
        self.emit(f"{array.name}+=({self.word(path)})")
        array.append(path)

    def value(self, name: str, argv: list) -> Var:
        self.lines.append("")
        self.comment(DECISION_NOTES.get(str(argv[2]), ""))
        words = self.command(argv)
        self.emit(f"{name}=$({words[0]}", *words[1:-1], words[-1] + ")")
        return Var(name)

    def branch(self, argv: list, then, otherwise=None, name: str | None = None) -> None:
        self.lines.append("")
        words = self.command(argv)
        self.comment(DECISION_NOTES.get(str(argv[2]), ""))
        if name:
            self.emit(f"if {name}=$({words[0]}", *words[1:-1], words[-1] + "); then")
        else:
            self.emit(f"if {words[0]}", *words[1:-1], words[-1] + "; then")
        made = set(self.made)
        self.depth += 1
        then(Var(name)) if name else then()
        self.made = set(made)
        if otherwise is not None:
            self.depth -= 1
            self.emit("else")
            self.depth += 1
            otherwise()
            self.made = set(made)
        self.depth -= 1
        self.emit("fi")

    def script(self, r: int) -> str:
        cfg = self.cfg
        root_is_cwd = self.variables[0][2] == "$PWD"
        reads = [self.word(p).replace('"', "") for p in self.reads
                 if p.startswith(self.variables[3][1] + "/")]
        head = [
            "#!/usr/bin/env bash",
            f"# Round {r} of the {cfg.strategy} run of seed {cfg.seed}: the commands "
            "scripts/evolve.py runs,",
            f"# one after another (`scripts/evolve.py --print-round {r}`; the loop runs "
            "stages that share",
            "# no files side by side). The same files as the loop's.",
            "# It reads from the rounds before it: " + ", ".join(reads) + ".",
            "# RUNS=DIR runs it in DIR" + (", from the repository root." if root_is_cwd else "."),
            "set -euo pipefail",
        ]
        head += [f"{name}={text}" for name, _, text in self.variables]
        return "\n".join(head + self.lines) + "\n"


def print_round(cfg: Config, r: int) -> str:
    """Round r as a shell script (see Printer), from the files of the rounds before it."""
    base_dir = cfg.runs / f"base-seed{cfg.seed}"
    run_dir = cfg.runs / cfg.run_name
    if r < 1:
        raise BadUsage(f"--print-round {r}: a round from 1 (round 0 is the base and dev set)")
    solver = base_dir / "base" if r == 1 else run_dir / f"round-{r - 1}" / "solver"
    if r > 1 and not (solver / "checkpoint.json").is_file():
        raise BadUsage(f"--print-round {r}: round {r - 1} of {run_dir} has not run; its files "
                       f"decide round {r}'s (its skills, policy and traces)")
    if r == 1 and cfg.replay > 0 and not (base_dir / "free-pairs.jsonl").is_file():
        log(f"{base_dir} has no free pairs (round 0 has not run): the printed round has no "
            "replay stage")
    printer = Printer(cfg, run_dir, base_dir)
    one_round(printer, run_dir, r, solver, base_dir / "dev.jsonl", base_dir / "eval-tasks.jsonl")
    return printer.script(r)


USAGE_FILE_ENV = "SOCRATIC_USAGE_FILE"


def run_command(command: list[str], stdout) -> tuple[int, float, float]:
    """Runs a stage's command; its exit code, the CPU seconds (user + system) of it and
    the processes it waited for (os.wait4: per child, right while shards run in threads),
    and the CPU seconds it reports of processes it could not wait for (test runs inside
    bubblewrap's pid namespace: the file SOCRATIC_USAGE_FILE names, `hidden_cpu_seconds`;
    0 for a stage that writes none)."""
    with tempfile.TemporaryDirectory(prefix="stage-usage-") as tmp:
        report = Path(tmp) / "usage.json"
        proc = subprocess.Popen(command, stdout=stdout,
                                env={**os.environ, USAGE_FILE_ENV: str(report)})
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, usage.ru_utime + usage.ru_stime, hidden_cpu_seconds(report)


def hidden_cpu_seconds(report: Path) -> float:
    """`hidden_cpu_seconds` of a stage's usage report; 0 where there is none or it is bad
    (a stage in another language need not write one)."""
    try:
        seconds = float(json.loads(report.read_text())["hidden_cpu_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    return seconds if 0 <= seconds < float("inf") else 0.0


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
                0, "base", reads=[cfg.base_from], writes=[lm / CHECKPOINT],
                action=lambda: import_base(cfg.base_from, lm),
                describe=f"import_base {cfg.base_from}"))
        else:
            runner.run(base_dir, Stage(
                0, "base",
                [tool("solver-train"), "init", In(corpus), "-o", Out(lm, known_by=CHECKPOINT),
                 "--steps", str(cfg.base_steps), "--seed", seed, "-q"],
                stdout=base_dir / "base.jsonl"))
        if not cfg.free_pairs:
            return
        free = base_dir / "free-pairs.jsonl"
        runner.run(base_dir, Stage(
            0, "free-pairs",
            [tool("task-gen"), "--strategy", "random", "--budget", str(cfg.free_pairs),
             "--seed", str(cfg.seed + 1000), "--operator-weights", In(weights), In(corpus),
             "-o", Out(free), "-q"]))
        # 1.2 epochs of batches of 64, the schedule measured in docs/learning.md.
        steps = max(20, (12 * cfg.free_pairs + 639) // 640)
        runner.run(base_dir, Stage(
            0, "pretrain",
            [tool("solver-train"), "sft", "--from", In(lm, known_by=CHECKPOINT), In(free),
             "--scorer", "features", "--steps", str(steps), "--batch-size", "64", "--group",
             "128", "--lr", "0.05", "--workdir", str(w), "--seed", seed,
             "-o", Out(base, known_by=CHECKPOINT), "-q"],
            stdout=base_dir / "pretrain.jsonl"))

    def dev_and_eval_sets() -> None:
        candidates, valid = base_dir / "dev-candidates.jsonl", base_dir / "dev-valid.jsonl"
        runner.run(base_dir, Stage(
            0, "dev-gen",
            [tool("task-gen"), "--split", "dev", "--budget", str(cfg.dev_candidates),
             "--seed", seed, "--operator-weights", In(weights), In(corpus),
             "-o", Out(candidates), "-q"]))
        runner.run(base_dir, Stage(
            0, "dev-validate",
            [tool("task-validate"), In(candidates), "--workdir", str(w), *ex, "-q",
             "-o", Out(valid)]))
        runner.run(base_dir, Stage(
            0, "dev-set",
            [*STEP, "fewest-tests", str(cfg.dev_tasks), In(valid),
             "-o", Out(base_dir / "dev.jsonl")]))
        runner.run(base_dir, Stage(
            0, "eval-tasks",
            [*STEP, "eval-slice", "--seed", seed, str(cfg.rollout_tasks), In(cfg.eval_set),
             "-o", Out(eval_tasks)]))

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
        r, name,
        [tool("solver-train"), "eval", "--checkpoint", In(solver, known_by=CHECKPOINT),
         "--workdir", str(runner.cfg.workdir), "--per-task", Out(per_task), "-q",
         "-o", Out(d / f"{name}.json"), In(tasks)]))
    return per_task


def rollout(runner: Runner, run_dir: Path, r: int, name: str, solver: Path, tasks: Path,
            out: Path) -> None:
    cfg = runner.cfg
    runner.sharded(run_dir, Stage(
        r, name,
        [tool("swe-rollout"), "--solver", In(solver, prefix="model:"), "--workdir",
         str(cfg.workdir), "--executor", cfg.executor, "--seed", str(cfg.seed), "-q",
         "--allow-empty", In(tasks), "-o", Out(out)]),
        tasks)


def base_stage(name: str) -> str:
    """The stage a name refers to: `task-validate-more-2` is a top-up pass of task-validate."""
    base, _, k = name.rpartition("-more-")
    return base if base in GENERATION_STAGES and k.isdigit() and int(k) > 0 else name


def generate(runner: "Runner", run_dir: Path, r: int, gen: list, usable: Array) -> None:
    """task-gen -> task-validate -> TASK_FILTER passes until the round has VALID distinct
    tasks or TOPUP extra passes are spent, so that every strategy trains on pools of the same
    size whatever its generator's yield. Pass 0 writes round-N/{candidates,valid,rejects}.jsonl,
    pass K round-N/more-K/ with seed + 10007 K. Appends each pass' usable tasks file to
    USABLE."""
    cfg = runner.cfg
    d = run_dir / f"round-{r}"
    task_filter = [In(a) if Path(a).is_file() else a for a in cfg.task_filter]
    spent: list = []

    def generation_pass(k: int, budget) -> None:
        p, suffix = (d, "") if k == 0 else (d / f"more-{k}", f"-more-{k}")
        spent.append(budget)
        runner.run(run_dir, Stage(
            r, f"task-gen{suffix}",
            gen + ["--budget", budget, "--seed", str(cfg.seed + r + 10007 * k),
                   "--round", str(r), In(cfg.workdir / "corpus.jsonl"),
                   "-o", Out(p / "candidates.jsonl"), "-q"]))
        # Every pass leaves its repositories' line maps in round-N/line-maps/ (the same
        # file for a repository whichever pass wrote it: the traced clean run is cached).
        runner.sharded(run_dir, Stage(
            r, f"task-validate{suffix}",
            [tool("task-validate"), In(p / "candidates.jsonl"), "--workdir", str(cfg.workdir),
             "--executor", cfg.executor, "-q", "--allow-empty", "-o", Out(p / "valid.jsonl"),
             "--rejects", Out(p / "rejects.jsonl"),
             "--line-maps", Out(d / "line-maps", shared=True)]),
            p / "candidates.jsonl")
        if cfg.task_filter:
            # TASK_FILTER, a custom stage: `CMD IN -o OUT`.
            runner.run(run_dir, Stage(
                r, f"filter{suffix}",
                [*task_filter, In(p / "valid.jsonl"), "-o", Out(p / "filtered.jsonl")]))
            runner.append(usable, p / "filtered.jsonl")
        else:
            runner.append(usable, p / "valid.jsonl")
        if k == cfg.topup:
            return
        # Another pass while fewer than VALID distinct tasks passed.
        more = [*STEP, "topup-budget", "--valid", str(cfg.valid), "--candidates",
                str(cfg.candidates), *[a for b in spent for a in ("--spent", b)], usable]

        def next_pass(budget) -> None:
            if not runner.printing:
                log(f"round {r}: {len(distinct_tasks(usable))} of VALID={cfg.valid} tasks "
                    f"passed: {budget} more candidates (pass {k + 1} of at most {cfg.topup})")
            generation_pass(k + 1, budget)

        runner.branch(more, next_pass, name=f"budget{k + 1}")

    generation_pass(0, str(cfg.candidates))
    if runner.printing:
        return
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
    have = len(distinct_tasks(usable))
    if have < cfg.valid:
        log(f"round {r}: only {have} tasks for a pool of VALID={cfg.valid} after "
            f"{len(usable)} pass{'es' if len(usable) != 1 else ''}: raise CANDIDATES or TOPUP")


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
    if not runner.printing:
        d.mkdir(parents=True, exist_ok=True)
    # Trace-derived skills come from the last round; hand-written ones are the same each round.
    skills_in = cfg.handwritten if generator == "handwritten" else prev / "skills.jsonl"
    uses_skills = generator in ("skills", "handwritten")
    policy_in = prev / "policy.json"
    scores = d / "scores.jsonl"

    gen = [tool("task-gen"), "--strategy", "random"]
    if cfg.random_weights is not None:
        gen += ["--operator-weights", In(cfg.random_weights)]
    if uses_skills and records(skills_in):
        gen = [tool("task-gen"), "--strategy", "skills", "--skills", In(skills_in)]
        if policy_in.is_file():
            gen += ["--policy", In(policy_in)]
    # Sites get tests_reaching from the last round's line maps (skills may ask for it).
    if (prev / "line-maps").is_dir():
        gen += ["--line-maps", In(prev / "line-maps")]
    usable = runner.array("usable")

    def generation() -> None:
        generate(runner, run_dir, r, gen, usable)
        runner.run(run_dir, Stage(
            r, "pool", [*STEP, "pool", str(cfg.valid), In(usable), "-o", Out(d / "pool.jsonl")]))

    def dev_target() -> None:
        if pending is not None:
            pending()
        if keep_by != "grad":
            return
        if cfg.dev_target == "rank":
            # The dev tasks whose gold repair the solver does not rank first: no test runs.
            failures = rank_stage(runner, run_dir, d, r, "dev-rank", solver, dev)
            failed = [*STEP, "ranked-wrong", failures, dev]
            flag = "--target-ranks"
        else:
            failures = d / "dev-traces.jsonl"
            rollout(runner, run_dir, r, "dev-rollout", solver, dev, failures)
            failed = [*STEP, "unresolved", failures]
            flag = "--target-traces"

        def target(*aim) -> None:
            # Without an aim (no dev task failed) the command does not name the failures, but
            # the branch that chose so read them.
            runner.run(run_dir, Stage(
                r, "target",
                [tool("grad-score"), "--checkpoint", In(solver), "--target", In(dev), *aim,
                 "--target-out", Out(d / "target.json"), "--workdir", str(w), "--seed", seed,
                 "-q", "--allow-empty", "-o", os.devnull, os.devnull],
                reads=[] if aim else [failures]))

        # The target: the dev tasks the solver fails, or all of them when it fails none.
        runner.branch(failed, lambda: target(flag, In(failures)), target)

    runner.together(generation, dev_target)
    if not runner.printing and not records(d / "pool.jsonl") and runner.only is None:
        raise Failed(f"round {r}: no candidate passed the gate; raise CANDIDATES")
    keep_n = runner.value("kept", [*STEP, "keep-count", str(cfg.keep_frac), d / "pool.jsonl"])

    def score_keep_train() -> None:
        if keep_by == "grad":
            runner.sharded(run_dir, Stage(
                r, "grad-score",
                [tool("grad-score"), "--checkpoint", In(solver), "--target-in",
                 In(d / "target.json"), "--workdir", str(w), "--seed", seed, "-q",
                 *(["--precondition", "adam"] if cfg.select == "adam-mixed" else []),
                 "--allow-empty", In(d / "pool.jsonl"), "-o", Out(scores)]),
                d / "pool.jsonl")
            keep = [tool("grad-score"), "keep", "--scores", In(scores)]
            if cfg.select != "top":
                # The failures' bug-family mix, the best inside each family (docs/study.md).
                keep += ["--mix-of", In(d / "target.json")]
        else:
            keep = [tool("grad-score"), "keep", "--random"]
        runner.run(run_dir, Stage(
            r, "keep",
            keep + ["--keep-top", keep_n, "--seed", str(cfg.seed + r), "-q",
                    In(d / "pool.jsonl"), "-o", Out(d / "kept.jsonl")]))
        update_policy()
        # The last round's training traces (this round's run beside this stage).
        rft = []
        if cfg.rft_weight > 0 and records(prev / "traces.jsonl"):
            rft = ["--traces", In(prev / "traces.jsonl"),
                   "--trace-tasks", In(prev / "rollout-tasks.jsonl"),
                   "--trace-weight", str(cfg.rft_weight)]
        # REPLAY free repair pairs of the base's pretraining beside the kept tasks, so that a
        # round's fine-tuning keeps what pretraining gave (the same number for every strategy).
        replay, free = [], dev.parent / "free-pairs.jsonl"
        if cfg.replay > 0 and free.is_file():
            replay = [d / "replay.jsonl"]
            runner.run(run_dir, Stage(
                r, "replay",
                [*STEP, "sample", "--seed", str(cfg.seed * 1000 + r), str(cfg.replay), In(free),
                 "-o", Out(replay[0])]))
        runner.run(run_dir, Stage(
            r, "solver-train",
            [tool("solver-train"), "sft", "--from", In(solver), In(d / "kept.jsonl"),
             *map(In, replay), *rft, "-o", Out(d / "solver", known_by=CHECKPOINT),
             "--workdir", str(w), *sft_schedule(runner, keep_n, cfg.replay if replay else 0),
             "--seed", seed, "-q"],
            stdout=d / "checkpoint.jsonl"))

    def update_policy() -> None:
        """REINFORCE on the generator policy from this round's scores (the policy the round
        generated with is last round's: it does not wait for this round's skills)."""
        if not uses_skills:
            return
        if "--skills" in gen and keep_by == "grad":
            previous_policy = ["--policy", In(policy_in)] if policy_in.is_file() else []
            # policy-tasks reads each pass's candidates, found beside its usable tasks.
            candidates = [u.parent / "candidates.jsonl" for u in usable]
            runner.run(run_dir, Stage(
                r, "policy-tasks",
                [*STEP, "policy-tasks", "--pool", In(d / "pool.jsonl"), In(usable),
                 "-o", Out(d / "policy-tasks.jsonl")],
                reads=[candidates]))
            runner.run(run_dir, Stage(
                r, "update-policy",
                [tool("task-gen"), "update-policy", "--skills", In(skills_in),
                 "--tasks", In(d / "policy-tasks.jsonl"), "--scores", In(scores),
                 *previous_policy, "-q", "-o", Out(d / "policy.json")]))
        elif policy_in.is_file():
            runner.run(run_dir, Stage(
                r, "update-policy", [*STEP, "copy", In(policy_in), "-o", Out(d / "policy.json")]))

    def traces_to_skills() -> None:
        """The training rollout (its resolved traces train the next round) and, for
        trace-derived skills, skill-distill. Hand-written skills need traces only for RFT."""
        if not uses_skills or (generator != "skills" and cfg.rft_weight <= 0):
            return
        runner.run(run_dir, Stage(
            r, "rollout-tasks",
            [*STEP, "fewest-tests", str(cfg.train_rollout), In(d / "pool.jsonl"),
             "-o", Out(d / "rollout-tasks.jsonl")]))
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
            # It reads the traces and pools of the two round directories it is given.
            runner.run(run_dir, Stage(
                r, "carry-traces",
                [*STEP, "carry-traces", d, "--prev", prev, "-o", Out(traces),
                 "--tasks-out", Out(tasks)],
                reads=[d / "traces.jsonl", carried, d / "pool.jsonl", prev / "pool.jsonl"]))
        previous = ["--skills", In(skills_in)] if records(skills_in) else []
        runner.run(run_dir, Stage(
            r, "skill-distill",
            [tool("skill-distill"), In(traces), "--tasks", In(tasks),
             *previous, "--round", str(r), "--min-support", str(cfg.min_support),
             "--workdir", str(w), "--seed", seed, "-q", "-o", Out(d / "skills.jsonl"),
             "--export-dir", Out(d / "skills")]))
        runner.run(run_dir, Stage(
            r, "unclustered",
            [*STEP, "unclustered", In(d / "traces.jsonl"), "--skills", In(d / "skills.jsonl"),
             "-o", Out(d / "unclustered-traces.jsonl")]))

    runner.together(score_keep_train, traces_to_skills)

    def evaluate() -> None:
        rank_eval(runner, run_dir, r, d / "solver")
        rollout(runner, run_dir, r, "eval-rollout", d / "solver", eval_tasks,
                d / "eval-traces.jsonl")
        if runner.printing:
            return
        pooled = len(records(d / "pool.jsonl"))
        resolved = sum(t["outcome"]["resolved"] for t in records(d / "eval-traces.jsonl")
                       if not t.get("error"))
        passes = [u.parent for u in usable]
        log(f"round {r}: {sum(len(records(p / 'candidates.jsonl')) for p in passes)} candidates "
            f"in {len(passes)} passes, "
            f"{sum(len(records(p / 'valid.jsonl')) for p in passes)} valid, {pooled} pooled, "
            f"{len(records(d / 'kept.jsonl'))} kept, {len(records(d / 'skills.jsonl'))} skills; "
            f"{resolved} of {len(records(d / 'eval-traces.jsonl'))} held-out tasks resolved")

    return d / "solver", later(runner, evaluate)


# The feature scorer's fine-tuning, chosen on validated dev tasks (docs/learning.md): the
# round's input solver counts as `anchor` tasks (`solver-train sft --anchor`).
FEATURE_SFT = {"batch": 64, "group": 128, "lr": 0.01, "anchor": 300}


def sft_schedule(runner: Runner, kept, extra: int) -> list:
    """solver-train sft's schedule for a round that keeps `kept` tasks and trains `extra`
    free pairs beside them: the same for every strategy (they keep as many). The feature
    scorer (FREE_PAIRS > 0) is fine-tuned as docs/learning.md chose, SFT_EPOCHS passes over
    those examples (SFT_STEPS overrides); the language-model base (FREE_PAIRS=0) with sft's
    own batch and rate, SFT_STEPS (20) steps."""
    cfg = runner.cfg
    lr = [] if cfg.sft_lr is None else ["--lr", str(cfg.sft_lr)]
    if not cfg.free_pairs:
        return ["--steps", str(cfg.sft_steps or 20), *lr]
    steps = str(cfg.sft_steps) if cfg.sft_steps else runner.value("steps", [
        *STEP, "sft-steps", "--epochs", str(cfg.sft_epochs), "--batch",
        str(FEATURE_SFT["batch"]), kept, *([str(extra)] if extra else [])])
    anchor = ["--anchor", f"{cfg.sft_anchor:g}"] if cfg.sft_anchor else []
    return ["--steps", steps, "--batch-size", str(FEATURE_SFT["batch"]), "--group",
            str(FEATURE_SFT["group"]), *(lr or ["--lr", str(FEATURE_SFT["lr"])]), *anchor]


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


def chosen_executor() -> str:
    """EXECUTOR, or the machine's default (`default_executor`)."""
    executor = os.environ.get("EXECUTOR") or default_executor()
    if executor not in ("native", "wasm"):
        raise BadUsage(f"EXECUTOR={executor}: native or wasm")
    return executor


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
               "batch 64, lr SFT_LR=0.01, held near the round's input solver as if it were worth "
               "SFT_ANCHOR=300 tasks, 0: no hold; SFT_STEPS=N sets the steps, and for the language-model "
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
    parser.add_argument("--print-round", metavar="N", type=int,
                        help="print round N as a shell script of the commands the loop runs "
                             "(from the files of the rounds before it) instead of running it")
    parser.add_argument("--no-build", action="store_true", help="use the built tools as they are")
    parser.add_argument("--setup", action="store_true",
                        help="run `just setup` (scripts/setup.py) first, beside the build")
    parser.add_argument("--build-only", action="store_true",
                        help="build the loop's tools as the loop does (EXECUTOR decides the "
                             "features) and stop: the study scripts share this build")
    args = parser.parse_args()
    args.workdir = below_cwd(args.workdir)
    try:
        if args.build_only:
            # The loop's own variables (SEEDS, STRATEGY, …) are not read: the study scripts
            # that build through here give some of them in formats of their own.
            build_and_setup(args.workdir, build="BIN" not in os.environ, setup=False,
                            executor=chosen_executor())
            return 0
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
        executor = chosen_executor()
        os.environ["EXECUTOR"] = executor  # what Config.from_env reads
        if args.print_round is not None:
            if len(strategies) > 1 or len(seeds) > 1:
                raise BadUsage("--print-round prints the round of one STRATEGY and SEED")
            cfg = Config.from_env(args.workdir, strategies[0], seeds[0])
            print(print_round(cfg, args.print_round), end="")
            return 0
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
