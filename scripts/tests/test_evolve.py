"""The evolve loop as a user runs it, on tiny budgets (two rounds, native executor): a run
killed mid-stage and resumed ends with the files of an uninterrupted run; rerunning one stage
touches no other stage's files; a Python stage (TASK_FILTER) runs inside the rounds; a pool
short of VALID is topped up by more generation passes; SHARDS=2 gives the files of an
unsharded run; every round ranks the whole evaluation set; hand-written skills guide the
`handwritten` strategy; DEV_TARGET=rank aims at the dev tasks ranked wrong, SELECT keeps
by Adam-preconditioned alignment in the failures' family mix, REPLAY trains free pairs beside
the kept tasks; the round `--print-round 1` prints, run with bash, gives the loop's round-1
files; a path a stage names once in its command is among its inputs or outputs, and each
shard's. The loop needs `just setup` and the debug build of the tools
(`cargo build --workspace --all-targets`); `just test` runs it.

    python3 -m unittest discover -s scripts/tests -v
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from evolve import Config, In, Out, Runner, Stage  # noqa: E402

WORKDIR = Path(os.environ.get("SOCRATIC_WORKDIR", ROOT / ".socratic")).resolve()
TINY = {
    "EXECUTOR": "native", "ROUNDS": "2", "CANDIDATES": "6", "VALID": "3", "BASE_STEPS": "2", "FREE_PAIRS": "40",
    "SFT_STEPS": "2", "DEV_CANDIDATES": "6", "DEV_TASKS": "1", "TRAIN_ROLLOUT": "2",
    "ROLLOUT_TASKS": "1", "MIN_SUPPORT": "1", "SEED": "1", "STRATEGY": "socratic",
    "BIN": str(ROOT / "target" / "debug"), "SOCRATIC_WORKDIR": str(WORKDIR),
    "TASK_FILTER": f"{sys.executable} {ROOT / 'examples/stages/drop_comment_bugs.py'}",
}
# Fields that hold wall time or throughput: they differ between any two runs.
TIMING_KEYS = {"seconds", "tokens_per_s", "train_seconds", "elapsed_s"}
TIMING_TEXT = re.compile(r"\d+(\.\d+)?s\b")


def evolve(runs: Path, *args: str, extra: dict | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, **TINY, "RUNS": str(runs), **(extra or {})}
    return subprocess.Popen([sys.executable, str(ROOT / "scripts/evolve.py"), *args], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **popen)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"evolve failed ({proc.returncode}):\n{err[-3000:]}")
    return err


def canonical(value, runs: str):
    if isinstance(value, dict):
        # A checkpoint's data refs hash their files; a traces file holds timings.
        timed = str(value.get("path", "")).endswith("traces.jsonl")
        return {k: canonical(v, runs) for k, v in value.items()
                if k not in TIMING_KEYS and not (timed and k == "sha256")}
    if isinstance(value, list):
        return [canonical(v, runs) for v in value]
    if isinstance(value, str):
        return TIMING_TEXT.sub("Ts", value.replace(runs, "RUNS"))
    return value


def snapshot(runs: Path) -> dict:
    """Every result file of the runs under RUNS: JSON canonical (paths under RUNS and timings
    masked), other files by content; stamps, shard parts and reports left out, and the
    `resume/` state of checkpoints (burn records carry parameter ids that are new in every
    process; the weights are compared in model.safetensors)."""
    files = {}
    for path in sorted(runs.rglob("*")):
        rel = path.relative_to(runs)
        if not path.is_file() or {".stamps", "shards", "resume"} & set(rel.parts):
            continue
        if path.name in ("report.md", "config.json", "metrics.jsonl"):
            continue
        if path.suffix in (".jsonl", ".json"):
            text = path.read_text()
            lines = text.splitlines() if path.suffix == ".jsonl" else [text]
            files[str(rel)] = [canonical(json.loads(line), str(runs)) for line in lines if line.strip()]
        else:
            files[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def mtimes(runs: Path) -> dict:
    return {str(p.relative_to(runs)): p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}


class StagePaths(unittest.TestCase):
    def test_a_path_named_once_reaches_the_command_the_stage_and_its_shards(self):
        tmp = Path(tempfile.mkdtemp(prefix="stage-test-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        solver, tasks, corpus = tmp / "solver", tmp / "tasks.jsonl", tmp / "corpus.jsonl"
        traces, maps = tmp / "traces.jsonl", tmp / "line-maps"
        stage = Stage(1, "eval-rollout", [
            "rollout", "--solver", In(solver, prefix="model:"), In(tasks), "-o", Out(traces),
            "--line-maps", Out(maps, shared=True)], reads=[corpus])
        self.assertEqual(stage.argv, ["rollout", "--solver", f"model:{solver}", str(tasks),
                                      "-o", str(traces), "--line-maps", str(maps)])
        self.assertEqual(stage.outputs, [traces, maps])
        self.assertEqual(stage.input_paths, [solver, tasks, corpus])

        ran = []

        class Recorder(Runner):
            def run(self, run_dir, stage):
                ran.append(stage)

        cfg = dataclasses.replace(Config.from_env(tmp, "socratic", 1), shards=2)
        Recorder(cfg).sharded(tmp, stage, tasks)
        *shards, merge = ran
        parts = [tmp / "shards" / f"traces.{i}-of-2.jsonl" for i in range(2)]
        for i, shard in enumerate(sorted(shards, key=lambda s: s.shard)):
            # Each shard writes its part of the traces; the line maps whole, into one folder.
            self.assertEqual(shard.argv, ["rollout", "--solver", f"model:{solver}", str(tasks),
                                          "-o", str(parts[i]), "--line-maps", str(maps),
                                          "--shard", f"{i}/2"])
            self.assertEqual(shard.outputs, [parts[i], maps])
            self.assertEqual(shard.input_paths, [solver, tasks, corpus])
        self.assertEqual((merge.outputs, merge.input_paths), ([traces], parts))


class StageCpu(unittest.TestCase):
    def test_a_stage_adds_the_cpu_time_it_reports_and_one_that_reports_none_adds_nothing(self):
        from evolve import run_command
        report = ("import json, os; open(os.environ['SOCRATIC_USAGE_FILE'], 'w')"
                  ".write(json.dumps({'hidden_cpu_seconds': 2.5}))")
        code, _, hidden = run_command([sys.executable, "-c", report], None)
        self.assertEqual((code, hidden), (0, 2.5))
        code, _, hidden = run_command([sys.executable, "-c", "pass"], None)
        self.assertEqual((code, hidden), (0, 0.0))
        broken = "import os; open(os.environ['SOCRATIC_USAGE_FILE'], 'w').write('{')"
        self.assertEqual(run_command([sys.executable, "-c", broken], None)[2], 0.0)


class EvolveLoop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (WORKDIR / "corpus.jsonl").is_file():
            raise unittest.SkipTest("run `just setup` first")
        cls.tmp = Path(tempfile.mkdtemp(prefix="evolve-test-"))
        cls.reference = cls.tmp / "reference"
        cls.log = finish(evolve(cls.reference))
        cls.files = snapshot(cls.reference)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assertSameRuns(self, runs: Path):
        files = snapshot(runs)
        self.assertEqual(sorted(files), sorted(self.files))
        for name, content in self.files.items():
            self.assertEqual(files[name], content, f"{name} differs")

    def test_a_round_runs_every_stage_and_the_python_stage(self):
        run = self.reference / "socratic-seed1"
        for r in (1, 2):
            for name in ("candidates", "valid", "filtered", "pool", "scores", "kept", "traces",
                         "skills", "eval-traces"):
                self.assertTrue((run / f"round-{r}" / f"{name}.jsonl").is_file(), (r, name))
            self.assertTrue((run / f"round-{r}" / "solver" / "model.safetensors").is_file())
            # task-validate leaves a line map of every repository it validated candidates of.
            tasks = (run / f"round-{r}" / "candidates.jsonl").read_text().splitlines()
            maps = {p.stem for p in (run / f"round-{r}" / "line-maps").glob("*.json")}
            self.assertLessEqual({json.loads(t)["repo"] for t in tasks}, maps)
        self.assertIn("drop_comment_bugs: kept", self.log)
        candidates = (run / "round-2" / "candidates.jsonl").read_text()
        self.assertIn('"strategy":"skills"', candidates, "round 2 is not skill-guided")
        self.assertIn('"tests_reaching":', candidates, "round 2 read no line maps")
        # Round 2's solver also learned from round 1's resolved training traces (RFT).
        record = json.loads((run / "round-2" / "solver" / "checkpoint.json").read_text())
        self.assertIn(str(run / "round-1" / "traces.jsonl"), [d["path"] for d in record["data"]])
        report = (run / "report.md").read_text()
        passes = len(list((run / "round-2").glob("more-*"))) + 1
        made = sum(len((p / "candidates.jsonl").read_text().splitlines())
                   for p in [run / "round-2", *(run / "round-2").glob("more-*")])
        self.assertIn(f"| 2 | skills | {made}" + (f" ({passes} passes)" if passes > 1 else "") + " |",
                      report)

    def test_every_round_ranks_the_whole_evaluation_set(self):
        # The continuous held-out metric: the base and each round's solver on every task.
        run = self.reference / "socratic-seed1"
        eval_set = (ROOT / "data/eval/eval-set.jsonl").read_text().splitlines()
        for d in (self.reference / "base-seed1", run / "round-1", run / "round-2"):
            summary = json.loads((d / "eval-rank.json").read_text())
            self.assertEqual(summary["tasks"], len(eval_set), d)
            per_task = (d / "eval-rank.per.jsonl").read_text().splitlines()
            self.assertEqual(len(per_task), summary["all"]["reachable"], d)
        mrr = json.loads((run / "round-2" / "eval-rank.json").read_text())["all"]["model_mrr"]
        self.assertIn(f"| {mrr:.3f} |", (run / "report.md").read_text())

    def test_the_stamps_count_the_cpu_time_of_sandboxed_test_runs(self):
        # Test runs inside bubblewrap's pid namespace never reach the stage's rusage; the
        # sandbox measures them from inside and the stage reports them.
        stamps = self.reference / "socratic-seed1" / ".stamps"
        stamp = json.loads((stamps / "round-1.task-validate.json").read_text())
        self.assertGreater(stamp["sandbox_cpu_seconds"], 0, stamp)
        self.assertGreaterEqual(stamp["cpu_seconds"], stamp["sandbox_cpu_seconds"], stamp)

    def test_a_finished_run_is_skipped_and_one_stage_reruns_alone(self):
        before = mtimes(self.reference)
        err = finish(evolve(self.reference))
        self.assertNotIn(" ...", err, "a finished run ran a stage again")
        # The same work directory named another way (relative, not absolute) is the same run.
        err = finish(evolve(self.reference, extra={
            "SOCRATIC_WORKDIR": os.path.relpath(WORKDIR, ROOT)}))
        self.assertNotIn(" ...", err, "another path to the work directory ran a stage again")
        self.assertEqual(mtimes(self.reference), before)
        finish(evolve(self.reference, "--only", "grad-score", "--round", "1"))
        after = mtimes(self.reference)
        changed = {f for f in after if after[f] != before.get(f)}
        self.assertEqual(changed, {"socratic-seed1/round-1/scores.jsonl",
                                   "socratic-seed1/.stamps/round-1.grad-score.json"})
        self.assertEqual(snapshot(self.reference), self.files, "the rerun scored differently")

    def test_the_printed_round_gives_the_files_of_the_loop(self):
        # `evolve.py --print-round 1` (`just print-round 1`): round 1 as a shell script of the
        # commands the loop runs, run with bash in another RUNS on a copy of what it reads.
        env = {**os.environ, **TINY, "RUNS": str(self.reference)}
        printed = subprocess.run([sys.executable, str(ROOT / "scripts/evolve.py"),
                                  "--print-round", "1"], env=env, cwd=ROOT,
                                 capture_output=True, text=True)
        self.assertEqual(printed.returncode, 0, printed.stderr)
        script = printed.stdout
        self.assertIn("\nset -euo pipefail\n", script)
        runs = self.tmp / "printed"
        reads = re.search(r"^# It reads from the rounds before it: (.*)\.$", script, re.M)
        for name in reads.group(1).split(", "):
            rel = name.replace("$base", "base-seed1").replace("$run", "socratic-seed1")
            source, dest = self.reference / rel, runs / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, dest)
        (self.tmp / "round-1.sh").write_text(script)
        ran = subprocess.run(["bash", str(self.tmp / "round-1.sh")], cwd=ROOT,
                             env={**os.environ, "RUNS": str(runs)}, capture_output=True,
                             text=True)
        self.assertEqual(ran.returncode, 0, ran.stderr[-3000:])
        round_1 = lambda files: {name: content for name, content in files.items()
                                 if name.startswith("socratic-seed1/round-1/")}
        files, expected = round_1(snapshot(runs)), round_1(self.files)
        self.assertEqual(sorted(files), sorted(expected))
        for name, content in expected.items():
            self.assertEqual(files[name], content, f"{name} differs")

    def test_a_run_killed_mid_stage_resumes_to_the_same_files(self):
        runs = self.tmp / "killed"
        proc = evolve(runs)
        stamp = runs / "socratic-seed1" / ".stamps" / "round-1.pool.json"
        deadline = time.monotonic() + 600
        while not stamp.exists():
            self.assertIsNone(proc.poll(), "the run ended before it was killed")
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
        # Inside dev-rollout: it runs the dev task's tests, which take longer than this; the
        # rest of the round (a feature-scorer solver trains in well under a second) may not.
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        self.assertFalse((runs / "socratic-seed1" / "round-1" / "eval-traces.jsonl").exists())
        err = finish(evolve(runs))
        self.assertIn("round 1: task-validate: up to date, skipped", err)
        self.assertSameRuns(runs)

    def test_a_short_pool_is_topped_up_with_more_passes(self):
        # Two candidates cannot give a pool of three: more passes with derived seeds follow.
        runs = self.tmp / "topup"
        extra = {"STRATEGY": "baseline", "ROUNDS": "1", "CANDIDATES": "2", "TOPUP": "3"}
        err = finish(evolve(runs, extra=extra))
        d = runs / "baseline-seed1" / "round-1"
        self.assertIn("more candidates (pass 1 of at most 3)", err)
        passes = [d] + sorted(d.glob("more-*"))
        self.assertGreater(len(passes), 1)
        seeds = {json.loads(line)["provenance"]["seed"]
                 for p in passes for line in (p / "candidates.jsonl").read_text().splitlines()}
        self.assertEqual(seeds, {2 + 10007 * k for k in range(len(passes))})
        usable, seen = [], set()
        for p in passes:
            for line in (p / "filtered.jsonl").read_text().splitlines():
                if json.loads(line)["instance_id"] not in seen:
                    seen.add(json.loads(line)["instance_id"])
                    usable.append(line)
        pool = (d / "pool.jsonl").read_text().splitlines()
        self.assertEqual(pool, usable[:3])
        if len(passes) < 4:
            self.assertEqual(len(pool), 3, "stopped topping up before the pool was full")
        report = (runs / "baseline-seed1" / "report.md").read_text()
        self.assertIn(f"({len(passes)} passes)", report)
        before = mtimes(runs)
        self.assertNotIn(" ...", finish(evolve(runs, extra=extra)), "a finished top-up reran")
        self.assertEqual(mtimes(runs), before)

    def test_handwritten_skills_guide_generation_from_round_one(self):
        # The paper's ablation: the skills of examples/skills/handwritten.jsonl, no distilling;
        # compared with the baseline on the held-out ranking, paired task by task.
        runs = self.tmp / "handwritten"
        # DEV_TARGET=rank: the target is the dev tasks ranked wrong, not rolled out;
        # SELECT=adam-mixed: Adam-preconditioned alignment, kept in the target's family mix.
        # RANDOM_WEIGHTS: the baseline generates in the natural-bug mix.
        extra = {"STRATEGY": "handwritten,baseline", "ROUNDS": "1", "TASK_FILTER": "",
                 "DEV_TARGET": "rank", "SELECT": "adam-mixed", "REPLAY": "5",
                 "RANDOM_WEIGHTS": str(ROOT / "scripts/eval-weights.toml")}
        out = evolve(runs, extra=extra)
        finish(out)
        d = runs / "handwritten-seed1" / "round-1"
        hand = {json.loads(line)["skill_id"] for line in
                (ROOT / "examples/skills/handwritten.jsonl").read_text().splitlines()}
        used = set()
        for line in (d / "candidates.jsonl").read_text().splitlines():
            provenance = json.loads(line)["provenance"]
            self.assertEqual(provenance["strategy"], "skills")
            used |= set(provenance["skill_ids"])
        self.assertTrue(used and used <= hand, used)
        self.assertFalse((d / "skills.jsonl").exists(), "hand-written skills were distilled")
        self.assertTrue((d / "scores.jsonl").is_file() and (d / "traces.jsonl").is_file())
        self.assertTrue((d / "dev-rank.per.jsonl").is_file())
        self.assertFalse((d / "dev-traces.jsonl").exists(), "DEV_TARGET=rank rolled out")
        score = json.loads((d / "scores.jsonl").read_text().splitlines()[0])
        self.assertEqual(score.get("precondition"), "adam")
        keep = json.loads((d.parent / ".stamps" / "round-1.keep.json").read_text())
        self.assertIn("--mix-of", keep["command"])
        gen = json.loads((runs / "baseline-seed1" / ".stamps" / "round-1.task-gen.json").read_text())
        self.assertIn("--operator-weights", gen["command"])
        # REPLAY: five free pairs of the base's pretraining beside the kept tasks.
        self.assertEqual(len((d / "replay.jsonl").read_text().splitlines()), 5)
        sft = json.loads((d.parent / ".stamps" / "round-1.solver-train.json").read_text())
        self.assertIn(str(d / "replay.jsonl"), sft["command"])
        report = (runs / "report.md").read_text()
        self.assertRegex(report, r"\| handwritten \| 1 \| 1 \| [+-]\d\.\d{3} \[[+-]\d\.\d{3}, "
                                 r"[+-]\d\.\d{3}\] \|")

    def test_round_zero_starts_from_a_hugging_face_directory(self):
        # BASE_FROM: a Llama directory as HF tools write it (config.json without our scorer
        # terms, model.safetensors, tokenizer.json; no checkpoint record), here the reference
        # run's language model.
        lm = next(self.reference.rglob("lm/model.safetensors")).parent
        hf = self.tmp / "hf-llama"
        hf.mkdir()
        config = json.loads((lm / "config.json").read_text())
        config.pop("ranker", None)
        self.assertEqual(config["architectures"], ["LlamaForCausalLM"])
        (hf / "config.json").write_text(json.dumps(config))
        for name in ("model.safetensors", "tokenizer.json"):
            shutil.copy(lm / name, hf / name)
        runs = self.tmp / "base-from"
        finish(evolve(runs, extra={"BASE_FROM": str(hf), "ROUNDS": "1", "TASK_FILTER": ""}))
        run, round0 = runs / "socratic-seed1", runs / "base-seed1"
        base = json.loads((round0 / ".stamps" / "round-0.base.json").read_text())
        self.assertEqual((base["command"], list(base["inputs"])), (None, [str(hf)]))
        imported = round0 / "lm"
        self.assertEqual((imported / "model.safetensors").read_bytes(),
                         (hf / "model.safetensors").read_bytes())
        self.assertEqual(json.loads((imported / "checkpoint.json").read_text())["imported_from"],
                         str(hf))
        pretrain = json.loads((round0 / ".stamps" / "round-0.pretrain.json").read_text())
        self.assertIn(str(imported), pretrain["command"])
        self.assertTrue((run / "round-1" / "solver" / "model.safetensors").is_file())

        bad = self.tmp / "not-a-model"
        bad.mkdir()
        proc = evolve(self.tmp / "base-from-bad", extra={"BASE_FROM": str(bad), "ROUNDS": "1"})
        _, err = proc.communicate()
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("no config.json, model.safetensors, tokenizer.json", err)

    def test_two_shards_give_the_files_of_one(self):
        runs = self.tmp / "sharded"
        err = finish(evolve(runs, extra={"SHARDS": "2"}))
        self.assertIn("task-validate shard 1/2", err)
        self.assertTrue((runs / "socratic-seed1" / "round-1" / "shards").is_dir())
        self.assertSameRuns(runs)

    def test_the_slurm_template_gives_the_files_of_one_run(self):
        # Rounds 0-2 through scripts/slurm/round.sh with real sbatch, arrays and dependencies
        # on a one-node Slurm (installed and started by scripts/slurm/local-cluster.sh where
        # this runs as root with apt-get); elsewhere through a stand-in sbatch that runs each
        # job at once, an array as its tasks in turn. The test says which ran.
        runs = self.tmp / "slurm"
        env = {**os.environ, **TINY, "RUNS": str(runs), "SHARDS": "2"}
        cluster = ROOT / "scripts/slurm/local-cluster.sh"
        was_running = "slurmctld: running" in subprocess.run(
            ["bash", str(cluster), "status"], capture_output=True, text=True).stdout
        started = subprocess.run(["bash", str(cluster), "start"], capture_output=True, text=True)
        real = started.returncode == 0
        flags = []
        if real:
            env["SLURM_CONF"] = started.stdout.strip().removeprefix("export SLURM_CONF=")
            if not was_running:
                self.addCleanup(subprocess.run, ["bash", str(cluster), "stop"],
                                capture_output=True)
            flags = ["--cpus-per-task=1", "--mem=1G", "--kill-on-invalid-dep=yes",
                     f"--output={self.tmp}/slurm-%x-%A-%a.log"]
            print("\nslurm test: a real one-node Slurm (scripts/slurm/local-cluster.sh)",
                  file=sys.stderr)
        else:
            fake = self.tmp / "bin"
            fake.mkdir(exist_ok=True)
            (fake / "sbatch").write_text(SBATCH)
            (fake / "sbatch").chmod(0o755)
            env["PATH"] = f"{fake}:{os.environ['PATH']}"
            print(f"\nslurm test: the stand-in sbatch ({started.stderr.strip()})",
                  file=sys.stderr)
        for r in range(0, 3):
            proc = subprocess.run(["bash", str(ROOT / "scripts/slurm/round.sh"), str(r), *flags],
                                  env=env, cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
            if real:
                jobs = re.findall(r"(?:job|array) (\d+)", proc.stdout)
                self.assertTrue(jobs, proc.stdout)
                self.wait_for_jobs(jobs, env)
        self.assertTrue((runs / "socratic-seed1" / "round-2" / "shards").is_dir())
        self.assertSameRuns(runs)

    def wait_for_jobs(self, jobs: list[str], env: dict) -> None:
        """Until Slurm runs none of `jobs`; then every one (each array task) completed."""
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            queued = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(jobs)], env=env,
                                    capture_output=True, text=True).stdout.split()
            if not queued:
                break
            time.sleep(1)
        else:
            self.fail(f"Slurm jobs {jobs} still queued after 15 minutes")
        for job in jobs:
            shown = subprocess.run(["scontrol", "-o", "show", "job", job], env=env,
                                   capture_output=True, text=True).stdout
            states = re.findall(r"JobState=(\w+)", shown)
            logs = "".join(p.read_text()[-2000:] for p in self.tmp.glob(f"slurm-*-{job}-*.log"))
            self.assertTrue(states and set(states) == {"COMPLETED"},
                            f"job {job}: {states}\n{logs}")


SBATCH = """#!/usr/bin/env bash
# Test stand-in: runs the job now; --array=0-K runs tasks 0..K with SLURM_ARRAY_TASK_* set.
set -euo pipefail
array=
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in --array=*) array=${1#--array=} ;; esac
    shift
done
if [ -n "$array" ]; then
    last=${array#*-}
    for i in $(seq 0 "$last"); do
        SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$((last + 1)) bash "$@" >&2
    done
else
    bash "$@" >&2
fi
echo "$RANDOM"
"""


if __name__ == "__main__":
    unittest.main()
