# socratic-swe: closed-loop self-evolution of a software-engineering agent.
# `just --list` shows the recipes; README.md explains the stages.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where corpus snapshots, the interpreter, caches and runs live.
workdir := env_var_or_default("SOCRATIC_WORKDIR", ".socratic")
python := env_var_or_default("PYTHON", "python3")
# The record checker, built with the test profile so `just test` compiles once.
records := "cargo run -q -p records --"

# List the recipes.
default:
    @just --list

# Download and verify the corpus sdists, test dependencies and python.wasm (idempotent, offline once cached).
setup:
    {{python}} scripts/setup.py --workdir {{workdir}}
    {{records}} check --kind repo -q {{workdir}}/corpus.jsonl

# `just add-repo --help` lists the flags; the record goes to WORKDIR/local-repos.jsonl and
# WORKDIR/corpus.jsonl (README: "Bring your own repository").
# Add a local directory or a git checkout (--rev) to the corpus, pinned by its content.
[positional-arguments]
add-repo *ARGS:
    cargo build --release -q -p task-validate
    {{python}} scripts/add_repo.py --workdir {{workdir}} --bin target/release "$@"

# The flags: `python3 scripts/add_swebench.py --help`. The test patch stays in each Task:
# task-validate and swe-rollout apply it before every test run.
# SWE-bench instances over a local clone: each base commit with its fix joins the corpus, Tasks to -o.
[positional-arguments]
add-swebench INSTANCES CHECKOUT *ARGS:
    cargo build --release -q -p records
    {{python}} scripts/add_swebench.py --workdir {{workdir}} --bin target/release "$@"

# Build every tool in release mode.
build:
    cargo build --release --workspace --bins -q

# scripts/evolve.py; ROUNDS=3, SEEDS=N for seeds 1..N; resumable: a finished stage is skipped
# while its inputs are unchanged. `--setup` runs `just setup`'s downloads beside the release
# build of the tools.
# The main job: base solver, then rounds of generate, validate, score, train, rollout, distill.
evolve:
    {{python}} scripts/evolve.py --setup --workdir {{workdir}}

# Random generation, the kept tasks drawn at random (no skills, no grad-score); the same pool
# size, training steps and evaluation as `just evolve`.
# The equal-budget baseline.
baseline:
    STRATEGY=baseline {{python}} scripts/evolve.py --setup --workdir {{workdir}}

# The two ablations: skills without the grad-score filter, grad-score without skills.
ablate:
    STRATEGY=skills-only,score-only {{python}} scripts/evolve.py --setup --workdir {{workdir}}

# Socratic against the baseline and both ablations over SEEDS seeds (default 3), then the report.
compare SEEDS=env_var_or_default("SEEDS", "3"):
    STRATEGY=socratic,baseline,skills-only,score-only SEEDS={{SEEDS}} {{python}} scripts/evolve.py --setup --workdir {{workdir}}

# Rounds 1..N of the run (STRATEGY, SEED as for evolve).
round N:
    ROUNDS={{N}} {{python}} scripts/evolve.py --setup --workdir {{workdir}}

# Rerun one stage of a round on the cached files of the stages before it (round 0: base).
stage STAGE N:
    {{python}} scripts/evolve.py --setup --workdir {{workdir}} --only {{STAGE}} --round {{N}}

# The commands of round N, one after another, as a shell script (STRATEGY, SEED, budgets and
# RUNS as for evolve; round N-1 must have run): `just print-round 1 > round-1.sh`, then
# `bash round-1.sh` after round 0 gives the files of the loop's round 1.
# Print one round of the loop as a plain shell script of the tools it runs.
print-round N:
    @{{python}} scripts/evolve.py --workdir {{workdir}} --print-round {{N}}

# Runs in WORKDIR/study/loop, resumable; the report in its report.md (docs/study.md; the budgets
# and their reasons: scripts/study.sh).
# The loop study: all five strategies, SEEDS seeds, 3 rounds, study-sized budgets.
study SEEDS=env_var_or_default("SEEDS", "3"):
    SEEDS={{SEEDS}} SOCRATIC_WORKDIR={{workdir}} bash scripts/study.sh

# Fine-tunes on the top K of a pool by alignment with the dev failures, on K at random, the
# bottom K and all, same steps; held-out ranking with paired intervals (docs/study.md; LC POOL K
# SEEDS; resumable).
# Selection alone: does keeping the aligned tasks train a better solver?
study-selection *OUT: setup
    SOCRATIC_WORKDIR={{workdir}} bash scripts/study-selection.sh {{OUT}}

# Fine-tunes on a pool generated under trace-derived skills, under the hand-written skills, and on
# random pools (uniform, natural mix) of the same size, same steps; held-out ranking with paired
# intervals (docs/study.md; LC M CANDIDATES TRACES SEEDS; resumable).
# Curriculum alone: does a skill-guided pool train a better solver than a random one?
study-curriculum *OUT: setup
    SOCRATIC_WORKDIR={{workdir}} bash scripts/study-curriculum.sh {{OUT}}

# report.md and SVG plots in WORKDIR/run/plots/.
# The runs under WORKDIR/run compared: resolve rate per round per strategy with intervals.
report:
    {{python}} scripts/evolve_report.py --compare {{workdir}}/run --plots {{workdir}}/run/plots | tee {{workdir}}/run/report.md

# fmt check, clippy -D warnings, the whole test suite, the CUDA build check (needs no CUDA
# toolkit) and the record checks (what CI runs).
test: setup
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -q -- -D warnings
    cargo test --workspace -q
    # The Python tests run target/debug's tools: --all-targets builds them with the features
    # `cargo test` resolved, so this reuses its artifacts instead of compiling a second set.
    cargo build --workspace --all-targets -q
    {{python}} -m unittest discover -s scripts/tests
    cargo check -q -p solver-train -p swe-rollout -p grad-score --features solver-train/cuda,swe-rollout/cuda,grad-score/cuda
    {{records}} check -q examples/*.jsonl examples/skills/*.jsonl

# Resolve rate on the evaluation set of a base solver and of one fine-tuned on random
# validated training tasks (CANDIDATES=2800 SFT_STEPS=150 EVERY=1 EXECUTOR=wasm; resumable;
# STOP_AFTER=base stops once the training tasks and the base checkpoint exist).
rollout-eval *OUT: setup
    bash scripts/rollout-eval.sh {{OUT}}

# Validated training tasks in resumable shards, free repair pairs, feature pretraining,
# fine-tuning at each N of NS ("0 100 300 1000 3000"), eval table and SVG (STOP_AFTER=validate,
# VALIDATE=0, SEEDS, FREE; docs/learning.md).
# The solver's learning curve: top-1/top-5/MRR on the evaluation set against N validated tasks.
learning-curve *OUT: setup
    bash scripts/learning-curve.sh {{OUT}}

# RFT on the solver's resolved traces vs tasks alone vs tasks + gold (docs/rft.md; N_SFT N_ROLL SFT_STEPS SEEDS).
rft-eval TASKS BASE *OUT: setup
    bash scripts/rft-eval.sh {{TASKS}} {{BASE}} {{OUT}}

# Base-solver traces on N training tasks of rollout-eval, then skill-distill (resumable by shard).
skill-traces N="1000": setup
    bash scripts/skill-traces.sh {{N}}

# Skill-guided against random generation at equal budget: the operator-family mix of each and
# their valid yields (N candidates each, EXECUTOR=wasm|native).
skills-yield SKILLS N="100" SEED="1": setup
    bash scripts/skills-yield.sh {{SKILLS}} {{N}} {{SEED}}

# Benchmark the execution gate: validated tasks per minute, naive native vs default wasm (N candidates).
bench-validate N="100" SEED="1": setup
    bash scripts/bench-validate.sh {{N}} {{SEED}}

# The loop's test-running stages (validation of N candidates, rollouts on M evaluation tasks)
# timed per executor for each build folder given (default target/release): seconds, test
# runs, their wall time and pytest's time inside the tests (docs/speed.md).
bench-stages *BUILDS: setup
    cargo build --release -q -p task-validate -p swe-rollout
    bash scripts/bench-stages.sh {{ if BUILDS == "" { "target/release" } else { BUILDS } }}

# Benchmark the solver against the same model in PyTorch on the CPU (training tokens/s, one
# per-example gradient, peak memory) for the tiny and small sizes; installs torch into
# WORKDIR/venv-hf the first time (several GB). `FEATURES=cuda` builds the GPU backend.
bench-train *SIZES:
    bash scripts/bench-train.sh {{SIZES}}

# Benchmark grad-score: tasks scored per minute, time per task against a training step, peak
# memory (N evaluation tasks, tiny model, CPU; FEATURES=cuda for the GPU build).
bench-score N="40": setup
    bash scripts/bench-score.sh {{N}}

# All benchmarks.
bench: bench-validate bench-train bench-score

# EXECUTOR=native JOBS=2 run it natively; docs/yield.md has the measured table.
# Valid yield of the baseline generator on N training candidates, overall and per operator.
yield N="500" SEED="1": setup
    SOCRATIC_WORKDIR={{workdir}} bash scripts/yield.sh {{N}} {{SEED}}

# BUDGET, SEED, EXECUTOR, JOBS as in scripts/eval-set.sh; `--check` verifies the checked-in
# set against data/eval/SHA256SUMS and the task schema instead of rebuilding it.
# Build the held-out evaluation set data/eval/eval-set.jsonl with the bug mix of scripts/eval-weights.toml.
eval-set *FLAGS: setup
    SOCRATIC_WORKDIR={{workdir}} bash scripts/eval-set.sh {{FLAGS}}

# Regenerate schemas/json/ from the Rust record types.
schemas:
    cargo run -q -p schemas --example write-json-schemas

# Run every test suite of the corpus natively and print a table of counts and times.
corpus-stats: setup
    {{python}} scripts/measure_corpus.py --workdir {{workdir}}
