#!/usr/bin/env bash
# Selection alone (issue 26, docs/study.md): does fine-tuning on the pooled tasks whose
# gradients align with the solver's dev failures train a better solver than as many tasks drawn
# at random, than the least aligned, or than the whole pool, at the same number of steps?
#   1. the pool and the solver: the first POOL validated random tasks of a learning curve
#      (scripts/learning-curve.sh LC, run here with NS=0: resumable validation shards, free
#      pairs, the pretrained feature scorer) and its pretrained scorer;
#   2. the dev set (scripts/study-dev.sh): dev-split candidates validated, the pretrained
#      solver's rollouts on them; the tasks it fails are grad-score's target;
#   3. grad-score of every pooled task against that target (the selection's cost is timed);
#   4. arms, each seed of SEEDS: fine-tune the pretrained scorer for the same steps
#      (max(20, EPOCHS x K / 64)) on: top, the K most aligned; random, K at random (seeded);
#      bottom, the K least aligned; all, the whole pool; mixed, the most aligned in the bug-family
#      mix of the dev failures (grad-score keep --mix-of); family, the same mix, each task
#      aligned with its own family's failures (grad-score --by-family); adam-mixed, as mixed
#      with Adam-preconditioned gradients (--precondition adam); random-mixed, that mix drawn
#      at random. `solver-train eval` of each on the evaluation set and the dev set;
#   5. scripts/study_arms.py: held-out top-1 / MRR per arm with paired bootstrap intervals
#      against random-K, the same on the dev failures (the target itself), the family mix of
#      each arm against the dev failures', the wall and CPU seconds of each arm.
# Every step writes into OUT and is skipped when its output exists: a killed run resumes.
#
#   scripts/study-selection.sh [OUT]        (default OUT=WORKDIR/study/selection)
# Variables: LC=WORKDIR/run/learning-curve (the learning curve whose tasks and scorer are used)
#   POOL=3000 K=1000 SEEDS="1 2 3" EPOCHS=8 FT_LR=0.01 (the fine-tuning of docs/learning.md)
#   ARMS="top random bottom all mixed family adam-mixed random-mixed" TRANSFER=1 (the arms
#   adam-mixed-on-REPO, aligned with one dev repository's failures) TRAIN_TARGET=120 (the arm
#   adam-mixed-on-train, aligned with the failures on that many training tasks; 0: none)
#   DEV=WORKDIR/study/dev (scripts/study-dev.sh's folder) EXECUTOR=native JOBS=2
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
out=${1:-$workdir/study/selection}
lc=${LC:-$workdir/run/learning-curve}
dev=${DEV:-$workdir/study/dev}
pool_size=${POOL:-3000}
k=${K:-1000}
seeds=${SEEDS:-1 2 3}
bin=${CARGO_TARGET_DIR:-$root/target}/release
eval_set=$root/data/eval/eval-set.jsonl
mkdir -p "$out"
step() { echo "study-selection: $*" >&2; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
settings_guard "LC=$lc" "DEV=$dev" "POOL=$pool_size" "K=$k" "EPOCHS=${EPOCHS:-8}" \
    "FT_LR=${FT_LR:-0.01}" "ANCHOR=${ANCHOR:-0}" "TRAIN_TARGET=${TRAIN_TARGET:-120}"
# The loop's build of the tools (a no-op when it is up to date).
EXECUTOR=${EXECUTOR:-native} python3 "$root/scripts/evolve.py" --build-only

if [ ! -f "$lc/pretrained/checkpoint.json" ] || [ ! -f "$lc/train.jsonl" ] \
    || [ "$(wc -l < "$lc/train.jsonl")" -lt "$pool_size" ]; then
    step "the pool and the pretrained scorer: scripts/learning-curve.sh $lc (NS=0)"
    BIN=$bin NS=0 SEEDS=1 bash "$root/scripts/learning-curve.sh" "$lc"  # built above
fi
if [ "$(wc -l < "$lc/train.jsonl")" -lt "$pool_size" ]; then
    echo "study-selection: $lc/train.jsonl holds fewer than POOL=$pool_size validated tasks:" \
        "lower POOL, or give LC a new folder with more CANDIDATES (the learning curve" \
        "generates its candidates once per folder)" >&2
    exit 2
fi
solver=$lc/pretrained
DEV=$dev SOLVER=$solver bash "$root/scripts/study-dev.sh"
head -n "$pool_size" "$lc/train.jsonl" > "$out/pool.jsonl.partial"
mv "$out/pool.jsonl.partial" "$out/pool.jsonl"

if [ ! -f "$out/scores.jsonl" ]; then
    step "grad-score: $pool_size pooled tasks against the dev failures"
    timed grad-score "$bin/grad-score" --checkpoint "$solver" --target "$dev/valid.jsonl" \
        --target-traces "$dev/traces.jsonl" --workdir "$workdir" --seed 1 -q \
        "$out/pool.jsonl" -o "$out/scores.jsonl"
fi
if [ ! -f "$out/scores-by-family.jsonl" ] || [ ! -f "$out/target.json" ]; then
    step "grad-score --by-family: against the dev failures of each task's own family"
    timed grad-score-by-family "$bin/grad-score" --checkpoint "$solver" --by-family \
        --target "$dev/valid.jsonl" --target-traces "$dev/traces.jsonl" --workdir "$workdir" \
        --seed 1 -q --target-out "$out/target.json" "$out/pool.jsonl" \
        -o "$out/scores-by-family.jsonl"
fi
# The target's family mix, kept by the whole target's alignment (mixed) or by each family's
# own (family); random-mixed (per seed, below) is the same mix drawn at random.
[ -f "$out/mixed.jsonl" ] || "$bin/grad-score" keep --scores "$out/scores.jsonl" \
    --mix-of "$out/target.json" --keep-top "$k" -q "$out/pool.jsonl" -o "$out/mixed.jsonl"
[ -f "$out/family.jsonl" ] || "$bin/grad-score" keep --scores "$out/scores-by-family.jsonl" \
    --mix-of "$out/target.json" --keep-top "$k" -q "$out/pool.jsonl" -o "$out/family.jsonl"
# adam-mixed: as mixed, each task's gradient turned into the step Adam would take from the
# solver's optimizer state (the optimizer fine-tuning uses), as LESS does.
if [ ! -f "$out/scores-adam.jsonl" ]; then
    step "grad-score --precondition adam"
    timed grad-score-adam "$bin/grad-score" --checkpoint "$solver" --precondition adam \
        --target-in "$out/target.json" --workdir "$workdir" --seed 1 -q "$out/pool.jsonl" \
        -o "$out/scores-adam.jsonl"
fi
[ -f "$out/adam-mixed.jsonl" ] || "$bin/grad-score" keep --scores "$out/scores-adam.jsonl" \
    --mix-of "$out/target.json" --keep-top "$k" -q "$out/pool.jsonl" -o "$out/adam-mixed.jsonl"
[ -f "$out/top.jsonl" ] || "$bin/grad-score" keep --scores "$out/scores.jsonl" \
    --keep-top "$k" -q "$out/pool.jsonl" -o "$out/top.jsonl"
if [ ! -f "$out/bottom.jsonl" ]; then
    python3 "$root/scripts/study_arms.py" bottom "$out/scores.jsonl" "$out/pool.jsonl" "$k" \
        > "$out/bottom.jsonl.partial"
    mv "$out/bottom.jsonl.partial" "$out/bottom.jsonl"
fi
cp "$out/pool.jsonl" "$out/all.jsonl"

# Transfer: as adam-mixed, aligned with the failures of one dev repository alone (arm
# adam-mixed-on-REPO); the tables compare its gain on that repository's failures with its gain
# on the other repositories' (does what aligns with one set of failures help others?).
transfer_arms=()
for repo in $(python3 -c 'import json, sys
print(" ".join(sorted({json.loads(l)["repo"] for l in open(sys.argv[1]) if l.strip()})))' \
    "$dev/valid.jsonl"); do
    [ "${TRANSFER:-1}" = 1 ] || break
    arm=adam-mixed-on-$repo
    transfer_arms+=("$arm")
    [ -f "$out/$arm.jsonl" ] && continue
    python3 -c 'import json, sys
for l in open(sys.argv[1]):
    if l.strip() and json.loads(l)["repo"] == sys.argv[2]:
        print(l, end="")' "$dev/valid.jsonl" "$repo" > "$out/target-tasks-$repo.jsonl"
    step "grad-score --precondition adam against the failures of $repo alone"
    timed "grad-score-on-$repo" "$bin/grad-score" --checkpoint "$solver" --precondition adam \
        --target "$out/target-tasks-$repo.jsonl" --target-traces "$dev/traces.jsonl" \
        --target-out "$out/target-$repo.json" --workdir "$workdir" --seed 1 -q \
        "$out/pool.jsonl" -o "$out/scores-on-$repo.jsonl"
    "$bin/grad-score" keep --scores "$out/scores-on-$repo.jsonl" --mix-of "$out/target.json" \
        --keep-top "$k" -q "$out/pool.jsonl" -o "$out/$arm.jsonl"
done

# adam-mixed-on-train: aligned with the solver's failures on TRAIN_TARGET validated training
# tasks of all the training repositories (the ones after the pool: trained on by no arm), a
# target as varied as the training set instead of the two dev repositories'.
if [ "${TRAIN_TARGET:-120}" -gt 0 ]; then
    transfer_arms+=(adam-mixed-on-train)
    if [ ! -f "$out/train-target-traces.jsonl" ]; then
        first=$((pool_size + 1))
        sed -n "$first,$((first + ${TRAIN_TARGET:-120} - 1))p" "$lc/train.jsonl" \
            > "$out/train-target.jsonl"
        # scripts/study-curriculum.sh rolls out on the same tasks: reuse its traces.
        curriculum=$workdir/study/curriculum
        if cmp -s "$out/train-target.jsonl" "$curriculum/trace-tasks.jsonl" \
            && [ -f "$curriculum/traces.jsonl" ]; then
            cp "$curriculum/traces.jsonl" "$out/train-target-traces.jsonl"
        else
            step "rollouts on $(wc -l < "$out/train-target.jsonl") training tasks (the train target)"
            timed train-target-rollout "$bin/swe-rollout" --solver "model:$solver" \
                --workdir "$workdir" --executor "${EXECUTOR:-native}" --seed 1 \
                --jobs "${JOBS:-2}" -q "$out/train-target.jsonl" -o "$out/train-target-traces.jsonl"
        fi
    fi
    if [ ! -f "$out/adam-mixed-on-train.jsonl" ]; then
        step "grad-score --precondition adam against the failures on training tasks"
        timed grad-score-on-train "$bin/grad-score" --checkpoint "$solver" --precondition adam \
            --target "$out/train-target.jsonl" --target-traces "$out/train-target-traces.jsonl" \
            --target-out "$out/target-train.json" --workdir "$workdir" --seed 1 -q \
            "$out/pool.jsonl" -o "$out/scores-on-train.jsonl"
        "$bin/grad-score" keep --scores "$out/scores-on-train.jsonl" --mix-of "$out/target.json" \
            --keep-top "$k" -q "$out/pool.jsonl" -o "$out/adam-mixed-on-train.jsonl"
    fi
fi

steps=$((${EPOCHS:-8} * k / 64))
[ "$steps" -lt 20 ] && steps=20
for s in $seeds; do
    [ -f "$out/random-s$s.jsonl" ] || "$bin/grad-score" keep --random --keep-top "$k" \
        --seed "$s" -q "$out/pool.jsonl" -o "$out/random-s$s.jsonl"
    if [ ! -f "$out/random-mixed-s$s.jsonl" ]; then
        python3 "$root/scripts/study_arms.py" random-mixed "$out/pool.jsonl" "$out/target.json" \
            "$k" "$s" > "$out/random-mixed-s$s.jsonl.partial"
        mv "$out/random-mixed-s$s.jsonl.partial" "$out/random-mixed-s$s.jsonl"
    fi
    for arm in ${ARMS:-top random bottom all mixed family adam-mixed random-mixed} \
        "${transfer_arms[@]}"; do
        tasks=$out/$arm.jsonl
        [ -f "$tasks" ] || tasks=$out/$arm-s$s.jsonl
        finetune_arm "$arm-s$s" "$tasks" "$steps" "$s"
        evaluate_arm "$arm-s$s" "$out/$arm-s$s"
    done
done
evaluate_arm pretrained "$solver"
python3 "$root/scripts/study_arms.py" table "$out" --eval-set "$eval_set" --dev "$dev" \
    | tee "$out/selection.md"
