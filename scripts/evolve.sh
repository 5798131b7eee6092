#!/usr/bin/env bash
# The evolve loop. A base solver, a dev set (the trusted target of grad-score), then ROUNDS
# rounds of
#   task-gen        random in round 1; then --strategy skills with the last round's skills
#                   and generator policy
#   task-validate   the execution gate
#   swe-rollout     the round's input solver on the dev set: the tasks it fails are the target
#   grad-score      alignment with that target; the best KEEP_FRAC of the valid tasks are kept
#   swe-rollout     the input solver on TRAIN_ROLLOUT of the round's valid tasks: its traces
#   skill-distill   those traces (and the last round's skills) become this round's skills
#   task-gen update-policy   REINFORCE on the policy from this round's rewards
#   solver-train    sft of the input solver on the kept tasks: the round's solver
#   swe-rollout     the round's solver on the first ROLLOUT_TASKS tasks of the evaluation set
# Every stage writes into WORKDIR/run/RUN/ (base/, dev.jsonl, round-N/) and is skipped when
# its output exists, so a killed run resumes where it stopped (delete a file to redo its
# stage). Wall time per stage goes to times.tsv; report.md sums the rounds up.
#
#   scripts/evolve.sh WORKDIR
# Variables: RUN=evolve ROUNDS=2 CANDIDATES=16 SEED=1 BASE_STEPS=150 SFT_STEPS=60
#            DEV_CANDIDATES=16 DEV_TASKS=6 TRAIN_ROLLOUT=6 ROLLOUT_TASKS=8 KEEP_FRAC=0.5
#            MIN_SUPPORT=2 EVAL=data/eval/eval-set.jsonl EXECUTOR=wasm (or native)
# The dev and training rollouts take the tasks with the fewest tests (a rollout reruns every
# FAIL_TO_PASS and PASS_TO_PASS test with line tracing, which dominates its time).
set -euo pipefail
workdir=${1:-.socratic}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release
out=$workdir/run/${RUN:-evolve}
seed=${SEED:-1}
rounds=${ROUNDS:-2}
eval_set=${EVAL:-$root/data/eval/eval-set.jsonl}
mkdir -p "$out"

executor=(--executor "${EXECUTOR:-wasm}")

log() { echo "evolve: $*" >&2; }

# The N tasks of FILE with the fewest tests, in their file order: `fewest_tests N FILE`.
fewest_tests() {
    python3 - "$@" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
lines = [l for l in open(path) if l.strip()]
size = lambda i: (lambda t: len(t["FAIL_TO_PASS"]) + len(t["PASS_TO_PASS"]))(json.loads(lines[i]))
keep = sorted(sorted(range(len(lines)), key=lambda i: (size(i), i))[:n])
sys.stdout.write("".join(lines[i] for i in keep))
PY
}

# stage ROUND NAME OUTPUT COMMAND...: runs COMMAND unless OUTPUT exists, and logs its time.
stage() {
    local round=$1 name=$2 output=$3
    shift 3
    if [ -e "$output" ]; then
        log "round $round: $name: $output exists, skipped"
        return 0
    fi
    local started=$SECONDS
    "$@"
    printf '%s\t%s\t%s\n' "$round" "$name" "$((SECONDS - started))" >> "$out/times.tsv"
}

# Writes stdout of COMMAND to FILE atomically: `to FILE COMMAND...`.
to() {
    local file=$1
    shift
    "$@" > "$file.partial" && mv "$file.partial" "$file"
}

count() { if [ -f "$1" ]; then grep -c . "$1" || true; else echo 0; fi; }

log "corpus: $(count "$workdir/corpus.jsonl") repositories in $workdir/corpus.jsonl; run in $out"
cargo build --release -q -p task-gen -p task-validate -p grad-score -p solver-train \
    -p swe-rollout -p skill-distill --manifest-path "$root/Cargo.toml"

stage 0 base "$out/base/checkpoint.json" \
    to "$out/base.jsonl" "$bin/solver-train" init "$workdir/corpus.jsonl" -o "$out/base" \
    --steps "${BASE_STEPS:-150}" --seed "$seed" -q
dev_set() {
    "$bin/task-gen" --split dev --budget "${DEV_CANDIDATES:-16}" --seed "$seed" \
        --operator-weights "$root/scripts/eval-weights.toml" "$workdir/corpus.jsonl" \
        -o "$out/dev-candidates.jsonl"
    "$bin/task-validate" "$out/dev-candidates.jsonl" --workdir "$workdir" "${executor[@]}" -q \
        -o "$out/dev-valid.jsonl"
    fewest_tests "${DEV_TASKS:-6}" "$out/dev-valid.jsonl" > "$out/dev.jsonl.partial"
    mv "$out/dev.jsonl.partial" "$out/dev.jsonl"
}
stage 0 dev-set "$out/dev.jsonl" dev_set
[ -s "$out/dev.jsonl" ] || { log "no valid dev task: raise DEV_CANDIDATES"; exit 1; }
eval_tasks=$out/eval-tasks.jsonl
head -n "${ROLLOUT_TASKS:-8}" "$eval_set" > "$eval_tasks"

solver=$out/base
for r in $(seq 1 "$rounds"); do
    dir=$out/round-$r
    prev=$out/round-$((r - 1))
    mkdir -p "$dir"
    strategy=(--strategy random)
    if [ -s "$prev/skills.jsonl" ]; then
        strategy=(--strategy skills --skills "$prev/skills.jsonl")
        [ -f "$prev/policy.json" ] && strategy+=(--policy "$prev/policy.json")
        cp "$prev/skills.jsonl" "$dir/skills-used.jsonl"
    fi
    stage "$r" task-gen "$dir/candidates.jsonl" \
        "$bin/task-gen" "${strategy[@]}" --budget "${CANDIDATES:-16}" --seed "$((seed + r))" \
        --round "$r" "$workdir/corpus.jsonl" -o "$dir/candidates.jsonl"
    stage "$r" task-validate "$dir/valid.jsonl" \
        "$bin/task-validate" "$dir/candidates.jsonl" --workdir "$workdir" "${executor[@]}" -q \
        -o "$dir/valid.jsonl" --rejects "$dir/rejects.jsonl"
    if [ ! -s "$dir/valid.jsonl" ]; then
        log "round $r: no candidate passed the gate; raise CANDIDATES"
        exit 1
    fi
    stage "$r" dev-rollout "$dir/dev-traces.jsonl" \
        "$bin/swe-rollout" --solver "model:$solver" --workdir "$workdir" "${executor[@]}" \
        --seed "$seed" -q "$out/dev.jsonl" -o "$dir/dev-traces.jsonl"
    # The target: the dev tasks the solver fails, or all of them when it fails none.
    target=(--target "$out/dev.jsonl")
    grep -q '"resolved":false' "$dir/dev-traces.jsonl" \
        && target+=(--target-traces "$dir/dev-traces.jsonl")
    stage "$r" grad-score "$dir/kept.jsonl" \
        "$bin/grad-score" --checkpoint "$solver" "${target[@]}" --target-out "$dir/target.json" \
        --workdir "$workdir" --seed "$seed" -q "$dir/valid.jsonl" -o "$dir/scores.jsonl" \
        --keep-frac "${KEEP_FRAC:-0.5}" --kept "$dir/kept.jsonl"
    fewest_tests "${TRAIN_ROLLOUT:-6}" "$dir/valid.jsonl" > "$dir/rollout-tasks.jsonl"
    stage "$r" train-rollout "$dir/traces.jsonl" \
        "$bin/swe-rollout" --solver "model:$solver" --workdir "$workdir" "${executor[@]}" \
        --seed "$seed" -q "$dir/rollout-tasks.jsonl" -o "$dir/traces.jsonl"
    previous_skills=()
    [ -s "$prev/skills.jsonl" ] && previous_skills=(--skills "$prev/skills.jsonl")
    stage "$r" skill-distill "$dir/skills.jsonl" \
        "$bin/skill-distill" "$dir/traces.jsonl" --tasks "$dir/valid.jsonl" \
        "${previous_skills[@]}" --round "$r" --min-support "${MIN_SUPPORT:-2}" \
        --workdir "$workdir" --seed "$seed" -q -o "$dir/skills.jsonl" --export-dir "$dir/skills"
    if [ -s "$dir/skills-used.jsonl" ]; then
        previous_policy=()
        [ -f "$prev/policy.json" ] && previous_policy=(--policy "$prev/policy.json")
        stage "$r" update-policy "$dir/policy.json" \
            "$bin/task-gen" update-policy --skills "$dir/skills-used.jsonl" \
            --tasks "$dir/candidates.jsonl" --scores "$dir/scores.jsonl" \
            "${previous_policy[@]}" -q -o "$dir/policy.json"
    elif [ -f "$prev/policy.json" ]; then
        cp "$prev/policy.json" "$dir/policy.json"
    fi
    stage "$r" solver-train "$dir/solver/checkpoint.json" \
        to "$dir/checkpoint.jsonl" "$bin/solver-train" sft --from "$solver" "$dir/kept.jsonl" \
        -o "$dir/solver" --workdir "$workdir" --steps "${SFT_STEPS:-60}" --seed "$seed" -q
    solver=$dir/solver
    stage "$r" eval-rollout "$dir/eval-traces.jsonl" \
        "$bin/swe-rollout" --solver "model:$solver" --workdir "$workdir" "${executor[@]}" \
        --seed "$seed" -q "$eval_tasks" -o "$dir/eval-traces.jsonl"
    log "round $r: $(count "$dir/candidates.jsonl") candidates, $(count "$dir/valid.jsonl") valid," \
        "$(count "$dir/kept.jsonl") kept, $(count "$dir/skills.jsonl") skills;" \
        "$(grep -c '"resolved":true' "$dir/eval-traces.jsonl" || true) of" \
        "$(count "$dir/eval-traces.jsonl") evaluation tasks resolved"
done

python3 "$root/scripts/evolve_report.py" "$out" "$rounds" | tee "$out/report.md"
