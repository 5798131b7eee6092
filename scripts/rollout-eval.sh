#!/usr/bin/env bash
# Resolve rate on the held-out evaluation set of a base solver and of the same solver
# fine-tuned on random validated training tasks (issue 6):
#   task-gen --strategy random (training repos) → task-validate → solver-train init → sft
#   → swe-rollout of both checkpoints on data/eval/eval-set.jsonl → summaries
# Every step writes into OUT and is skipped when its output exists, so a killed run resumes.
#
#   scripts/rollout-eval.sh [OUT]          (default OUT=WORKDIR/run/rollout-eval)
# Variables: CANDIDATES=2800 (seed 1: 1,835 valid, 66%) SEED=1
#   EXECUTOR=wasm (validation and rollouts; native is faster and gives the same verdicts,
#   see docs/yield.md)
#   BASE_STEPS=250 SFT_STEPS=150 (the defaults of solver-train)
#   EVERY=1 (evaluate every EVERY-th task of the evaluation set)
#   ROLLOUT_FLAGS="" (extra swe-rollout flags, e.g. "-k 4 --max-steps 2")
#   STOP_AFTER=base (stop once the training tasks and the base checkpoint exist: what
#   scripts/skill-traces.sh needs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
out=${1:-$workdir/run/rollout-eval}
candidates=${CANDIDATES:-2800}
seed=${SEED:-1}
executor=${EXECUTOR:-wasm}
every=${EVERY:-1}
bin=${CARGO_TARGET_DIR:-$root/target}/release
mkdir -p "$out"
cargo build --release -q -p task-gen -p task-validate -p solver-train -p swe-rollout \
    --manifest-path "$root/Cargo.toml"

step() { echo "rollout-eval: $*" >&2; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

if [ ! -f "$out/candidates.jsonl" ]; then
    step "generating $candidates candidates (seed $seed)"
    timed task-gen "$bin/task-gen" --strategy random --budget "$candidates" --seed "$seed" \
        "$workdir/corpus.jsonl" -o "$out/candidates.jsonl"
fi
if [ ! -f "$out/train.jsonl" ]; then
    # In shards of ~400 candidates, each kept when done, so a killed run loses one shard at most
    # (and the test results of that shard are cached).
    shards=$(((candidates + 399) / 400))
    for ((i = 0; i < shards; i++)); do
        [ -f "$out/valid-$i-of-$shards.jsonl" ] && continue
        step "validating shard $((i + 1)) of $shards with the $executor executor"
        timed "task-validate-$i" "$bin/task-validate" --executor "$executor" --workdir "$workdir" \
            --shard "$i/$shards" "$out/candidates.jsonl" -o "$out/valid-$i-of-$shards.jsonl" \
            --rejects "$out/rejects-$i-of-$shards.jsonl"
    done
    for ((i = 0; i < shards; i++)); do cat "$out/valid-$i-of-$shards.jsonl"; done > "$out/train.jsonl.partial"
    mv "$out/train.jsonl.partial" "$out/train.jsonl"
fi
step "$(wc -l < "$out/train.jsonl") validated training tasks"
if [ ! -f "$out/base/checkpoint.json" ]; then
    step "pretraining the base model (${BASE_STEPS:-250} steps)"
    timed init "$bin/solver-train" init "$workdir/corpus.jsonl" -o "$out/base" \
        --steps "${BASE_STEPS:-250}" --seed "$seed" > /dev/null
fi
if [ "${STOP_AFTER:-}" = base ]; then
    step "stopping after the base checkpoint (STOP_AFTER=base)"
    exit 0
fi
if [ ! -f "$out/tuned/checkpoint.json" ]; then
    step "fine-tuning on the training tasks (${SFT_STEPS:-150} steps)"
    timed sft "$bin/solver-train" sft --from "$out/base" "$out/train.jsonl" -o "$out/tuned" \
        --workdir "$workdir" --steps "${SFT_STEPS:-150}" --seed "$seed" > /dev/null
fi

awk -v every="$every" '(NR - 1) % every == 0' "$root/data/eval/eval-set.jsonl" > "$out/eval-tasks.jsonl"
# The tuned checkpoint carries the edit-kind prior of its tasks; "tuned-no-prior" runs it
# without (--prior-weight 0), so the gain of fine-tuning and that of the prior are apart.
for run in base tuned tuned-no-prior; do
    case $run in
        base) model=base flags=() ;;
        tuned) model=tuned flags=() ;;
        tuned-no-prior) model=tuned flags=(--prior-weight 0) ;;
    esac
    if [ ! -f "$out/traces-$run.jsonl" ]; then
        step "rollouts of $run on $(wc -l < "$out/eval-tasks.jsonl") evaluation tasks"
        # shellcheck disable=SC2086
        timed "rollout-$run" "$bin/swe-rollout" --solver "model:$out/$model" --workdir "$workdir" \
            --executor "$executor" --seed "$seed" "${flags[@]}" ${ROLLOUT_FLAGS:-} "$out/eval-tasks.jsonl" \
            -o "$out/traces-$run.jsonl"
    fi
    "$bin/swe-rollout" summarize "$out/traces-$run.jsonl" -o "$out/summary-$run.md"
    echo "## $run" >&2
    cat "$out/summary-$run.md" >&2
done
step "summaries in $out/summary-*.md, wall times in $out/times.tsv"
