#!/usr/bin/env bash
# Curriculum alone (issue 26, docs/study.md): does a pool generated under trace-derived skills
# train a better solver than a random pool of the same size, at the same steps?
#   1. the solver: a learning curve's pretrained scorer (scripts/learning-curve.sh LC, NS=0);
#   2. skills: the solver's rollouts on TRACES validated training tasks of LC (the last ones,
#      after the first POOL that the selection study uses), then skill-distill;
#   3. pools of M valid tasks each, generated and validated here in resumable shards:
#      skills (task-gen --strategy skills with those skills), handwritten (the skills of
#      examples/skills/handwritten.jsonl), random-uniform (task-gen --strategy random, the
#      loop's baseline generator); and random-natural, the first M of LC's validated tasks
#      (random in the natural-bug mix: the stronger control, the evaluation set's own prior);
#   4. each seed of SEEDS: fine-tune the scorer on each pool for the same steps
#      (max(20, EPOCHS x M / 64)), `solver-train eval` on the evaluation set and on the dev set
#      (scripts/study-dev.sh: its failures are the dev columns' tasks);
#   5. scripts/study_arms.py: ranking per arm with paired intervals against random-uniform,
#      the family mixes, the compute of each arm (generation + validation + fine-tuning).
# Every step writes into OUT and is skipped when its output exists: a killed run resumes.
#
#   scripts/study-curriculum.sh [OUT]        (default OUT=WORKDIR/study/curriculum)
# Variables: LC=WORKDIR/run/learning-curve DEV=WORKDIR/study/dev M=500 CANDIDATES=800 (per
#   generated pool) SHARD=200 TRACES=120 POOL=3000 MIN_SUPPORT=2 SEEDS="1 2 3" EPOCHS=8
#   FT_LR=0.01 EXECUTOR=native JOBS=2 GEN_SEED=1
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
out=${1:-$workdir/study/curriculum}
lc=${LC:-$workdir/run/learning-curve}
dev=${DEV:-$workdir/study/dev}
m=${M:-500}
candidates=${CANDIDATES:-800}
shard=${SHARD:-200}
seeds=${SEEDS:-1 2 3}
executor=${EXECUTOR:-native}
jobs=${JOBS:-2}
gen_seed=${GEN_SEED:-1}
bin=${CARGO_TARGET_DIR:-$root/target}/release
eval_set=$root/data/eval/eval-set.jsonl
mkdir -p "$out"
step() { echo "study-curriculum: $*" >&2; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
settings_guard "LC=$lc" "DEV=$dev" "M=$m" "CANDIDATES=$candidates" "SHARD=$shard" \
    "TRACES=${TRACES:-120}" "POOL=${POOL:-3000}" "MIN_SUPPORT=${MIN_SUPPORT:-2}" \
    "EPOCHS=${EPOCHS:-8}" "FT_LR=${FT_LR:-0.01}" "ANCHOR=${ANCHOR:-0}" "GEN_SEED=$gen_seed"
# The loop's build of the tools (a no-op when it is up to date).
EXECUTOR=$executor python3 "$root/scripts/evolve.py" --build-only

if [ ! -f "$lc/pretrained/checkpoint.json" ] || [ ! -f "$lc/train.jsonl" ]; then
    step "the pretrained scorer: scripts/learning-curve.sh $lc (NS=0)"
    BIN=$bin NS=0 SEEDS=1 bash "$root/scripts/learning-curve.sh" "$lc"  # built above
fi
solver=$lc/pretrained

# 2. Skills from the solver's failures on training tasks the other arms do not train on.
if [ ! -f "$out/trace-skills.jsonl" ]; then
    if [ ! -f "$out/traces.jsonl" ]; then
        first=$((${POOL:-3000} + 1))
        sed -n "$first,$((first + ${TRACES:-120} - 1))p" "$lc/train.jsonl" > "$out/trace-tasks.jsonl"
        [ -s "$out/trace-tasks.jsonl" ] || tail -n "${TRACES:-120}" "$lc/train.jsonl" \
            > "$out/trace-tasks.jsonl"
        step "rollouts on $(wc -l < "$out/trace-tasks.jsonl") training tasks ($executor, $jobs jobs)"
        timed make-skills-rollout "$bin/swe-rollout" --solver "model:$solver" \
            --workdir "$workdir" --executor "$executor" --seed 1 --jobs "$jobs" -q \
            "$out/trace-tasks.jsonl" -o "$out/traces.jsonl"
    fi
    timed make-skills-distill "$bin/skill-distill" "$out/traces.jsonl" \
        --tasks "$out/trace-tasks.jsonl" --round 1 --min-support "${MIN_SUPPORT:-2}" \
        --workdir "$workdir" --seed 1 -q -o "$out/trace-skills.jsonl"
fi
step "$(wc -l < "$out/trace-skills.jsonl") skills from $(wc -l < "$out/traces.jsonl") traces"
if [ ! -s "$out/trace-skills.jsonl" ]; then
    echo "study-curriculum: no skill formed: raise TRACES or lower MIN_SUPPORT" >&2
    exit 1
fi

# 3. The pools: generate, validate in shards, keep the first M valid tasks.
pool() { # pool ARM TASK-GEN-FLAGS...
    local arm=$1 shards i
    shift
    [ -f "$out/$arm.jsonl" ] && return
    mkdir -p "$out/$arm-valid"
    if [ ! -f "$out/$arm-candidates.jsonl" ]; then
        timed "make-$arm-gen" "$bin/task-gen" "$@" --budget "$candidates" --seed "$gen_seed" -q \
            "$workdir/corpus.jsonl" -o "$out/$arm-candidates.jsonl"
    fi
    shards=$(((candidates + shard - 1) / shard))
    for ((i = 0; i < shards; i++)); do
        [ -f "$out/$arm-valid/$i-of-$shards.jsonl" ] && continue
        step "$arm: validating shard $((i + 1)) of $shards ($executor, $jobs jobs)"
        timed "make-$arm-validate-$i" "$bin/task-validate" --executor "$executor" \
            --jobs "$jobs" --workdir "$workdir" --shard "$i/$shards" -q \
            "$out/$arm-candidates.jsonl" -o "$out/$arm-valid/$i-of-$shards.jsonl"
    done
    for ((i = 0; i < shards; i++)); do cat "$out/$arm-valid/$i-of-$shards.jsonl"; done \
        | awk -v n="$m" 'NR <= n' > "$out/$arm.jsonl.partial"
    if [ "$(wc -l < "$out/$arm.jsonl.partial")" -lt "$m" ]; then
        echo "study-curriculum: $arm: fewer than M=$m valid tasks from $candidates candidates:" \
            "lower M, or raise CANDIDATES in a new output folder (each pool's candidates" \
            "are generated once per folder)" >&2
        exit 1
    fi
    mv "$out/$arm.jsonl.partial" "$out/$arm.jsonl"
}
pool skills --strategy skills --skills "$out/trace-skills.jsonl"
pool handwritten --strategy skills --skills "$root/examples/skills/handwritten.jsonl"
pool random-uniform --strategy random
if [ ! -f "$out/random-natural.jsonl" ]; then
    head -n "$m" "$lc/train.jsonl" > "$out/random-natural.jsonl.partial"
    mv "$out/random-natural.jsonl.partial" "$out/random-natural.jsonl"
fi

# 4. Fine-tuning, the same steps for every arm; evaluation on the held-out and the dev set.
DEV=$dev SOLVER=$solver bash "$root/scripts/study-dev.sh"
steps=$((${EPOCHS:-8} * m / 64))
[ "$steps" -lt 20 ] && steps=20
for s in $seeds; do
    for arm in skills handwritten random-uniform random-natural; do
        finetune_arm "$arm-s$s" "$out/$arm.jsonl" "$steps" "$s"
        evaluate_arm "$arm-s$s" "$out/$arm-s$s"
    done
done
evaluate_arm pretrained "$solver"
python3 "$root/scripts/study_arms.py" table "$out" --eval-set "$eval_set" --dev "$dev" \
    --control random-uniform --title "Curriculum alone" | tee "$out/curriculum.md"
