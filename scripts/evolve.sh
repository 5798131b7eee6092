#!/usr/bin/env bash
# Runs the evolve loop as far as the stages that exist, and says what is missing.
# Today: round 1 of the fixed-mutation generator, the execution gate, the solver and its rollouts
#   task-gen --strategy random → task-validate → solver-train init (once) → solver-train sft
#   → swe-rollout on the first ROLLOUT_TASKS tasks of the evaluation set
# into WORKDIR/run/ (base/ and round-1/). The full loop (rollout → distill → generate →
# validate → score → train) is wired here as its stages land.
#
#   scripts/evolve.sh WORKDIR
# Variables: CANDIDATES=20 SEED=1 BASE_STEPS=150 SFT_STEPS=60 ROLLOUT_TASKS=12
#            EVAL=data/eval/eval-set.jsonl
set -euo pipefail
workdir=${1:-.socratic}
candidates=${CANDIDATES:-20}
seed=${SEED:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release

stages=(task-gen task-validate grad-score solver-train swe-rollout skill-distill)
missing=()
for stage in "${stages[@]}"; do
    [ -f "$root/tools/$stage/Cargo.toml" ] || missing+=("$stage")
done

echo "evolve: corpus ready: $(wc -l < "$workdir/corpus.jsonl") repositories in $workdir/corpus.jsonl" >&2
cargo build --release -q -p task-gen -p task-validate -p solver-train -p swe-rollout \
    --manifest-path "$root/Cargo.toml"

round=$workdir/run/round-1
mkdir -p "$round"
"$bin/task-gen" --strategy random --budget "$candidates" --seed "$seed" \
    "$workdir/corpus.jsonl" -o "$round/candidates.jsonl" --stats
"$bin/task-validate" "$round/candidates.jsonl" --workdir "$workdir" \
    -o "$round/valid.jsonl" --rejects "$round/rejects.jsonl"
echo "evolve: round 1: $(wc -l < "$round/candidates.jsonl") candidates, $(wc -l < "$round/valid.jsonl") valid tasks in $round/valid.jsonl" >&2

# The base model is trained once per work directory and reused by every round.
base=$workdir/run/base
if [ ! -f "$base/checkpoint.json" ]; then
    "$bin/solver-train" init "$workdir/corpus.jsonl" -o "$base" \
        --steps "${BASE_STEPS:-150}" --seed "$seed" >/dev/null
fi
eval_set=${EVAL:-$root/data/eval/eval-set.jsonl}
eval_args=()
[ -f "$eval_set" ] && eval_args=(--eval "$eval_set")
if [ -s "$round/valid.jsonl" ]; then
    "$bin/solver-train" sft --from "$base" "$round/valid.jsonl" -o "$round/solver" \
        --workdir "$workdir" --steps "${SFT_STEPS:-60}" --seed "$seed" "${eval_args[@]}" \
        > "$round/checkpoint.jsonl"
    echo "evolve: round 1: solver checkpoint in $round/solver ($(grep -o '"eval_top1":[0-9.e-]*' "$round/checkpoint.jsonl" || echo 'no eval set'))" >&2
    if [ -f "$eval_set" ]; then
        head -n "${ROLLOUT_TASKS:-12}" "$eval_set" > "$round/eval-tasks.jsonl"
        "$bin/swe-rollout" --solver "model:$round/solver" --workdir "$workdir" --seed "$seed" \
            "$round/eval-tasks.jsonl" -o "$round/eval-traces.jsonl" --summary
        echo "evolve: round 1: $(grep -c '"resolved":true' "$round/eval-traces.jsonl" || true) of $(wc -l < "$round/eval-traces.jsonl") evaluation tasks resolved (traces in $round/eval-traces.jsonl)" >&2
    fi
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "evolve: the loop stops here; stages not built yet: ${missing[*]}" >&2
    exit 0
fi
echo "evolve: all stages exist but the loop is not wired yet" >&2
exit 1
