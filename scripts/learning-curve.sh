#!/usr/bin/env bash
# The solver's learning curve on the held-out evaluation set (issue 25, docs/learning.md):
#   1. training candidates (task-gen --strategy random, training repositories, the operator mix
#      of WEIGHTS), validated in shards: the supervised tasks, with the failing tests' messages
#      as problem statements;
#   2. free repair pairs: unvalidated candidates of the same repositories (no test run);
#   3. pretraining: the scorer's feature term on the free pairs;
#   4. for each N of NS: fine-tune the pretrained scorer on the first N validated tasks, then
#      `solver-train eval` on every task of data/eval/eval-set.jsonl (top-1, top-5, MRR,
#      overall and per bug family, beside the edit-kind prior of the same N tasks);
#   5. the table (learning-curve.md) and the plot of MRR against N (learning-curve.svg);
#   6. with DEV=1, the same on validated dev tasks (dev/learning-curve.md);
#   7. with ROLLOUTS=1, the resolve rate of swe-rollout at N = 0 and N = 1000 (rollouts.md);
#   8. with ADAPT=1, every checkpoint adapted to each repository on its own free pairs before
#      ranking its tasks (scripts/repo_adapt.py), on the evaluation set (adapt/learning-curve.md)
#      and, with DEV=1, on the validated dev tasks (dev/adapt/learning-curve.md).
# Every step writes into OUT and is skipped when its output exists, so a killed run resumes
# (validation loses one shard at most; its test results are cached).
#
#   scripts/learning-curve.sh [OUT]        (default OUT=WORKDIR/run/learning-curve)
# Variables: CANDIDATES=4800 SHARD=200 SEED=1 EXECUTOR=native JOBS=2 (validation)
#   WEIGHTS=scripts/eval-weights.toml (the training candidates' operator mix: the natural-bug
#   weights, the documented prior the evaluation set is drawn with; WEIGHTS= for the uniform
#   mix over sites)
#   FREE=30000 (free pairs; on the 8 first training repositories the best dev MRR of 1k,
#   3k, 10k, 26k was 10k, on 38 it was 30k of 10k, 30k, 60k: docs/learning.md section 6) FREE_WEIGHTS=scripts/eval-weights.toml (their operator mix: the
#   natural-bug weights of TSSB-3M; chosen on dev-split candidates over the uniform mix, see
#   docs/learning.md; FREE_WEIGHTS= for the uniform mix) PRETRAIN_STEPS (default 1.2 epochs of FREE
#   at BATCH 64: 563 for 30,000) EPOCHS=8 (fine-tuning: max(20, EPOCHS x N /
#   BATCH) steps) BATCH=64 GROUP=128 LR=0.05 (pretraining) FT_LR=0.01 (fine-tuning; chosen on
#   dev-split candidates: 0.05 forgot more of the pretraining) ANCHOR=300 (fine-tuning holds
#   the scorer near the pretrained weights as if they were worth ANCHOR tasks, `solver-train
#   sft --anchor`; chosen on validated dev tasks, docs/learning.md; 0: no hold)
#   FT_FLAGS (more flags of the fine-tuning's `solver-train sft`, e.g. --hold-edit-prior)
#   NS="0 100 300 1000 3000" (a point whose N exceeds the validated tasks is left out)
#   SEEDS="1" (fine-tuning seeds; the doc uses "1 2" at N = 1000)
#   DEV=1 DEV_CANDIDATES=300 DEV_SEED=1 (the curve on validated dev tasks too)
#   FROM=DIR (a variant of DIR's curve, e.g. another ANCHOR or FT_LR: DIR's candidates,
#   validated shards, free pairs, pretrained scorer and validated dev tasks are linked into
#   OUT, not made again)
#   ADAPT=1 ADAPT_PAIRS=1000 ADAPT_STEPS=50 ADAPT_LR=0.01 (free pairs drawn per repository,
#   steps and learning rate of the adaptation; chosen on validated dev tasks, docs/learning.md)
#   DEV_REPOS="parsy pyrsistent" (with DEV=1): these training repositories count as dev: their
#   free pairs and validated tasks stay out of pretraining and fine-tuning, and their validated
#   tasks are ranked as a second dev set (OUT/dev/moved/learning-curve.md). With FROM, DIR's
#   pretrained scorer is linked only when DIR moved the same repositories
#   FEATURE_NORM=6 (`solver-train init --feature-norm`: a candidate's features are scaled
#   down past this many, 0 for none; chosen on validated dev tasks, docs/learning.md). With
#   FROM, DIR's base and pretrained scorer are linked only when they scale the same way
#   STOP_AFTER=validate (only the validation shards, e.g. in the background)
#   VALIDATE=0 (use the shards validated so far; another run may be validating the rest)
#   BIN=DIR (the tools as built there, not rebuilt: e.g. a second build beside a running
#   study, whose own tools must not change under it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
out=${1:-$workdir/run/learning-curve}
candidates=${CANDIDATES:-4800}
shard=${SHARD:-200}
seed=${SEED:-1}
executor=${EXECUTOR:-native}
jobs=${JOBS:-2}
free=${FREE:-30000}
ns=${NS:-0 100 300 1000 3000}
feature_norm=${FEATURE_NORM:-6}
seeds=${SEEDS:-1}
train_flags=(--batch-size "${BATCH:-64}" --group "${GROUP:-128}")
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
eval_set=$root/data/eval/eval-set.jsonl
mkdir -p "$out/valid"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
settings_guard "CANDIDATES=$candidates" "SHARD=$shard" "SEED=$seed" \
    "WEIGHTS=${WEIGHTS-scripts/eval-weights.toml}" "FREE=$free" \
    "FREE_WEIGHTS=${FREE_WEIGHTS-scripts/eval-weights.toml}" "PRETRAIN_STEPS=${PRETRAIN_STEPS:-}" \
    "LR=${LR:-0.05}" "FEATURE_NORM=$feature_norm" "BATCH=${BATCH:-64}" "GROUP=${GROUP:-128}" \
    "EPOCHS=${EPOCHS:-8}" "FT_LR=${FT_LR:-0.01}" "ANCHOR=${ANCHOR:-300}" "FT_FLAGS=${FT_FLAGS:-}" \
    "DEV_REPOS=${DEV_REPOS:-}" "DEV_CANDIDATES=${DEV_CANDIDATES:-300}" "DEV_SEED=${DEV_SEED:-1}"
if [ -z "${BIN:-}" ]; then
    # The loop's build (its tools, its features for this executor): the study scripts and
    # `just evolve` then share one build instead of rebuilding each other's.
    EXECUTOR=$executor python3 "$root/scripts/evolve.py" --build-only
fi

step() { echo "learning-curve: $*" >&2; }
dev_repos=$(echo "${DEV_REPOS:-}" | tr ' ' '\n' | sort | xargs)
if [ -n "${FROM:-}" ]; then
    from=$(cd "$FROM" && pwd)
    from_repos=$(cat "$from/dev-repos.txt" 2>/dev/null || true)
    from_norm=$(python3 -c 'import json, sys
try: print(json.load(open(sys.argv[1])).get("feature_norm") or 0)
except OSError: print("none")' "$from/base/config.json")
    mkdir -p "$out/dev"
    for f in candidates.jsonl free.jsonl free-train.jsonl dev-repos.txt base pretrained \
        eval-pretrained.json dev/candidates.jsonl dev/valid.jsonl "$from"/valid/[0-9]*-of-*.jsonl; do
        f=${f#"$from/"}
        case $f in # what DIR's pretraining saw
            pretrained | eval-pretrained.json | free-train.jsonl | dev-repos.txt)
                [ "$from_repos" = "$dev_repos" ] || continue
                ;;&
            base | pretrained | eval-pretrained.json)
                [ "$from_norm" = "$feature_norm" ] || continue
                ;;
        esac
        if [ -e "$from/$f" ] && [ ! -e "$out/$f" ]; then ln -s "$from/$f" "$out/$f"; fi
    done
fi

# random_tasks LABEL BUDGET SEED WEIGHTS OUT: task-gen --strategy random on the training
# repositories, in the operator mix of the WEIGHTS file (empty: uniform over sites).
random_tasks() {
    local weights=()
    [ -n "$4" ] && weights=(--operator-weights "$4")
    timed "$1" "$bin/task-gen" --strategy random --budget "$2" --seed "$3" \
        "${weights[@]}" "$workdir/corpus.jsonl" -o "$5"
}

if [ ! -f "$out/candidates.jsonl" ]; then
    step "generating $candidates training candidates (seed $seed)"
    random_tasks task-gen "$candidates" "$seed" "${WEIGHTS-$root/scripts/eval-weights.toml}" \
        "$out/candidates.jsonl"
fi
shards=$(((candidates + shard - 1) / shard))
for ((i = 0; i < shards; i++)); do
    [ "${VALIDATE:-1}" = 0 ] && break
    [ -f "$out/valid/$i-of-$shards.jsonl" ] && continue
    step "validating shard $((i + 1)) of $shards ($executor, $jobs jobs)"
    timed "validate-$i" "$bin/task-validate" --executor "$executor" --jobs "$jobs" \
        --workdir "$workdir" --shard "$i/$shards" "$out/candidates.jsonl" \
        -o "$out/valid/$i-of-$shards.jsonl" --rejects "$out/valid/rejects-$i-of-$shards.jsonl"
done
if [ "${STOP_AFTER:-}" = validate ]; then
    exit 0
fi
# Validated tasks in shard order: the first N of them train the point N.
for ((i = 0; i < shards; i++)); do
    cat "$out/valid/$i-of-$shards.jsonl" 2>/dev/null || true
done > "$out/train.jsonl"
# split_by_repo FILE MOVED: the records of DEV_REPOS' repositories out of FILE into MOVED.
split_by_repo() {
    # shellcheck disable=SC2086 # DEV_REPOS is a list of names
    python3 "$root/scripts/split_by_repo.py" "$1" "$2" $DEV_REPOS
}
if [ -n "${DEV_REPOS:-}" ]; then
    mkdir -p "$out/dev"
    split_by_repo "$out/train.jsonl" "$out/dev/moved.jsonl"
    step "DEV_REPOS: $(wc -l < "$out/dev/moved.jsonl") validated tasks of $DEV_REPOS moved to dev"
fi
valid=$(wc -l < "$out/train.jsonl")
step "$valid validated training tasks"

if [ ! -f "$out/free.jsonl" ]; then
    step "generating $free free repair pairs"
    random_tasks free "$free" $((seed + 1000)) "${FREE_WEIGHTS-$root/scripts/eval-weights.toml}" \
        "$out/free.jsonl"
fi
if [ ! -f "$out/base/checkpoint.json" ]; then
    # The tokenizer only: the feature scorer does not run the language model.
    timed base "$bin/solver-train" init "$workdir/corpus.jsonl" --size micro --steps 1 \
        --feature-norm "$feature_norm" --seed "$seed" -o "$out/base" > /dev/null
fi
pairs=$out/free.jsonl
if [ -n "${DEV_REPOS:-}" ]; then
    pairs=$out/free-train.jsonl
    if [ ! -f "$pairs" ]; then
        cp "$out/free.jsonl" "$pairs.part"
        split_by_repo "$pairs.part" "$out/free-moved.jsonl"
        mv "$pairs.part" "$pairs"
    fi
fi
if [ ! -f "$out/pretrained/checkpoint.json" ]; then
    steps=${PRETRAIN_STEPS:-$(pretrain_steps "$(wc -l < "$pairs")")}
    step "pretraining the scorer on the free pairs ($steps steps)"
    echo "$dev_repos" > "$out/dev-repos.txt"
    timed pretrain "$bin/solver-train" sft --from "$out/base" "$pairs" \
        --workdir "$workdir" --scorer features --steps "$steps" \
        "${train_flags[@]}" --lr "${LR:-0.05}" --seed "$seed" -o "$out/pretrained" > /dev/null
fi

evaluate() { # evaluate CHECKPOINT PRIOR_TASKS OUT_JSON [TASKS, default the evaluation set]
    [ -f "$3" ] && return
    local prior=()
    [ -s "$2" ] && prior=(--prior-from "$2")
    timed "eval-$(basename "$(dirname "$3")")-$(basename "$3" .json)" "$bin/solver-train" eval \
        --workdir "$workdir" --checkpoint "$1" "${4:-$eval_set}" "${prior[@]}" -o "$3"
}
evaluate "$out/pretrained" /dev/null "$out/eval-pretrained.json"
for n in $ns; do
    if [ "$n" -gt "$valid" ]; then
        step "N = $n: only $valid validated tasks so far, left out"
        continue
    fi
    head -n "$n" "$out/train.jsonl" > "$out/train-$n.jsonl"
    for s in $seeds; do
        name=n$n-s$s
        if [ "$n" -eq 0 ]; then
            evaluate "$out/pretrained" /dev/null "$out/eval-$name.json"
            continue
        fi
        if [ ! -f "$out/$name/checkpoint.json" ]; then
            steps=$((${EPOCHS:-8} * n / ${BATCH:-64}))
            [ "$steps" -lt 20 ] && steps=20
            step "fine-tuning on $n validated tasks (seed $s, $steps steps)"
            timed "sft-$name" "$bin/solver-train" sft --from "$out/pretrained" \
                "$out/train-$n.jsonl" --workdir "$workdir" --steps "$steps" \
                "${train_flags[@]}" --lr "${FT_LR:-0.01}" --anchor "${ANCHOR:-300}" --seed "$s" \
                ${FT_FLAGS:-} -o "$out/$name" > /dev/null
        fi
        evaluate "$out/$name" "$out/train-$n.jsonl" "$out/eval-$name.json"
    done
done
python3 "$root/scripts/learning_curve.py" "$out" --svg "$out/learning-curve.svg" \
    | tee "$out/learning-curve.md"

# 6. With DEV=1: every checkpoint again on validated dev tasks (DEV_CANDIDATES=300 of the dev
# split, seed DEV_SEED=1, natural mix, validated like the training tasks): the split where choices are
# made, with the failure messages that unvalidated candidates lack (OUT/dev/learning-curve.md).
# rank_curve TASKS DIR: the pretrained scorer and every fine-tuned checkpoint ranked on TASKS,
# the table and plot in DIR.
rank_curve() {
    mkdir -p "$2"
    evaluate "$out/pretrained" /dev/null "$2/eval-n0-s1.json" "$1"
    for n in $ns; do
        for s in $seeds; do
            [ "$n" -eq 0 ] || [ ! -f "$out/n$n-s$s/checkpoint.json" ] && continue
            evaluate "$out/n$n-s$s" "$out/train-$n.jsonl" "$2/eval-n$n-s$s.json" "$1"
        done
    done
    python3 "$root/scripts/learning_curve.py" "$2" --svg "$2/learning-curve.svg" \
        | tee "$2/learning-curve.md"
}
if [ "${DEV:-0}" = 1 ]; then
    dev=$out/dev
    mkdir -p "$dev"
    validated_dev_tasks "$dev"
    rank_curve "$dev/valid.jsonl" "$dev"
    if [ -n "${DEV_REPOS:-}" ]; then
        rank_curve "$dev/moved.jsonl" "$dev/moved"
    fi
fi

# 7. With ROLLOUTS=1: swe-rollout of the N = 0 and the N = 1000 (seed 1) scorers on the whole
# evaluation set, same loop settings, compared task by task (McNemar's exact test).
if [ "${ROLLOUTS:-0}" = 1 ]; then
    for name in pretrained n1000-s1; do
        [ -f "$out/$name/checkpoint.json" ] || continue
        [ -f "$out/rollout-$name.jsonl" ] && continue
        step "rollouts of $name on the evaluation set ($executor, $jobs jobs)"
        timed "rollout-$name" "$bin/swe-rollout" --solver "model:$out/$name" --workdir "$workdir" \
            --executor "$executor" --seed "$seed" --jobs "$jobs" "$eval_set" \
            -o "$out/rollout-$name.jsonl"
    done
    if [ -f "$out/rollout-n1000-s1.jsonl" ]; then
        python3 "$root/scripts/paired_rollouts.py" "$out/rollout-pretrained.jsonl" \
            "$out/rollout-n1000-s1.jsonl" --names "N = 0" "N = 1000" | tee "$out/rollouts.md"
    fi
fi

# 8. With ADAPT=1: each checkpoint adapted to the repository of the tasks it ranks, on free pairs
# of that repository (none near the tasks' bugs), then ranked (scripts/repo_adapt.py); the
# same tables in OUT/adapt (and OUT/dev/adapt with DEV=1).
adapt_curve() { # adapt_curve TASKS SPLIT DIR
    mkdir -p "$3"
    for name in pretrained $(for n in $ns; do for s in $seeds; do echo "n$n-s$s"; done; done); do
        [ -f "$out/$name/checkpoint.json" ] || continue
        local label=$name
        [ "$name" = pretrained ] && label=n0-s1
        [ -f "$3/eval-$label.json" ] && continue
        step "adapting $name to each repository of $(basename "$1")"
        timed "adapt-$(basename "$3")-$name" python3 "$root/scripts/repo_adapt.py" "$1" \
            --checkpoint "$out/$name" --split "$2" --out "$3/$name" --workdir "$workdir" \
            --bin "$bin" --pairs "${ADAPT_PAIRS:-1000}" --steps "${ADAPT_STEPS:-50}" \
            --lr "${ADAPT_LR:-0.01}" --anchor "${ANCHOR:-300}" --seed "$seed"
        cp "$3/$name/summary.json" "$3/eval-$label.json"
    done
    cp "$3/eval-n0-s1.json" "$3/eval-pretrained.json"
    python3 "$root/scripts/learning_curve.py" "$3" --svg "$3/learning-curve.svg" \
        | tee "$3/learning-curve.md"
}
if [ "${ADAPT:-0}" = 1 ]; then
    adapt_curve "$eval_set" test "$out/adapt"
    if [ "${DEV:-0}" = 1 ]; then
        adapt_curve "$out/dev/valid.jsonl" dev "$out/dev/adapt"
    fi
fi
