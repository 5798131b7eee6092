#!/usr/bin/env bash
# just bench-score: grad-score's speed and memory for the default (tiny) model on the CPU.
#   - tasks scored per minute (N evaluation tasks, a target of 8 of them, d = 8192);
#   - seconds per task against one training step on the same tasks (`sft` with batch 1 and a
#     group of 16, the candidates grad-score differentiates): the target is <= 2x;
#   - peak resident memory of each.
#   scripts/bench-score.sh [N]        (default 40; FEATURES=cuda builds the GPU backend;
#                                      BIN=DIR runs prebuilt solver-train and grad-score from DIR)
# The weights are a 2-step base model: speed does not depend on training.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-40}
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
features=()
[ -n "${FEATURES:-}" ] && features=(--features "$FEATURES")
if [ -n "${BIN:-}" ]; then
    bin=$(cd "$BIN" && pwd)
else
    cargo build --release -q -p solver-train -p grad-score "${features[@]}" \
        --manifest-path "$root/Cargo.toml"
    bin=$root/target/release
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

head -n "$n" "$root/data/eval/eval-set.jsonl" > "$out/tasks.jsonl"
head -n 8 "$out/tasks.jsonl" > "$out/target.jsonl"
"$bin/solver-train" init "$workdir/corpus.jsonl" -o "$out/base" --size tiny --steps 2 -q \
    > /dev/null

# seconds and peak RSS (MB) of a command, on one line (stderr shown if it fails).
measure() {
    python3 - "$out/stderr" "$@" <<'PY'
import resource, subprocess, sys, time
started = time.perf_counter()
with open(sys.argv[1], "w") as err:
    code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err).returncode
if code != 0:
    sys.stderr.write(open(sys.argv[1]).read())
    sys.exit(code)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{time.perf_counter() - started:.2f} {peak:.0f}")
PY
}

# The target on its own, then the scoring with the saved target (what a round does).
measure "$bin/grad-score" --checkpoint "$out/base" --target "$out/target.jsonl" \
    --target-out "$out/target.json" --workdir "$workdir" "$out/target.jsonl" > /dev/null
read -r score_s score_mb < <(measure "$bin/grad-score" --checkpoint "$out/base" \
    --target-in "$out/target.json" --workdir "$workdir" "$out/tasks.jsonl")
read -r train_s train_mb < <(measure "$bin/solver-train" sft --from "$out/base" "$out/tasks.jsonl" \
    -o "$out/tuned" --steps "$n" --batch-size 1 --group 16 --workdir "$workdir")
# The training run's own clock, without loading and example building.
step_s=$(python3 -c "
import json
lines = [json.loads(l) for l in open('$out/tuned/metrics.jsonl')]
print(lines[-1]['elapsed_s'] / lines[-1]['step'])")
python3 - "$n" "$score_s" "$score_mb" "$train_s" "$train_mb" "$step_s" <<'PY'
import sys
n, score_s, score_mb, train_s, train_mb, step_s = sys.argv[1:]
n, score_s, train_s, step_s = int(n), float(score_s), float(train_s), float(step_s)
per_task = score_s / n
print(f"grad-score: {n} tasks in {score_s:.1f} s = {60 * n / score_s:.1f} tasks/min, "
      f"{per_task:.2f} s/task (with loading), peak {score_mb} MB")
print(f"sft, batch 1, group 16: {step_s:.2f} s/step (training clock), {train_s:.1f} s in all, "
      f"peak {train_mb} MB")
print(f"grad-score time per task / training step: {per_task / step_s:.2f}x (target <= 2x)")
PY
