#!/usr/bin/env bash
# The base solver's traces on training tasks, for skill-distill (issue 7): a seeded sample of
# N validated training tasks, rolled out in SHARDS shards of `--shard I/SHARDS`, JOBS at a time.
# A shard whose trace file exists is skipped, so a killed run resumes shard by shard.
#   scripts/skill-traces.sh [N]          (default 1000; OUT=WORKDIR/run/rollout-eval)
# Variables: SHARDS=40 JOBS=4 SEED=1 SAMPLE_SEED=7 EXECUTOR=native BIN=DIR (prebuilt tools)
#            ROLLOUT_FLAGS="--max-steps 1 -k 2" (one round of two tested edits per task)
# Needs OUT/train.jsonl and OUT/base from scripts/rollout-eval.sh. Ends with skill-distill
# over the shards done so far (OUT/skills.jsonl, coverage on stderr).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
out=${OUT:-$workdir/run/rollout-eval}
shards=${SHARDS:-40}
[ -f "$out/train.jsonl" ] && [ -d "$out/base" ] || {
    echo "skill-traces: $out/train.jsonl and $out/base are missing: run scripts/rollout-eval.sh first" >&2
    exit 2
}
if [ -n "${BIN:-}" ]; then
    bin=$(cd "$BIN" && pwd)
else
    cargo build --release -q -p swe-rollout -p skill-distill --manifest-path "$root/Cargo.toml"
    bin=$root/target/release
fi
if [ ! -s "$out/skill-tasks.jsonl" ]; then
    python3 - "$out/train.jsonl" "$out/skill-tasks.jsonl" "$n" "${SAMPLE_SEED:-7}" <<'PY'
import random, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
random.Random(int(sys.argv[4])).shuffle(lines)
open(sys.argv[2], "w").write("\n".join(lines[: int(sys.argv[3])]) + "\n")
PY
fi
mkdir -p "$out/skill-traces"
export bin out shards workdir
export flags="--executor ${EXECUTOR:-native} --seed ${SEED:-1} ${ROLLOUT_FLAGS:---max-steps 1 -k 2}"
# shellcheck disable=SC2016
seq 0 $((shards - 1)) | xargs -P "${JOBS:-4}" -I{} bash -c '
    f=$out/skill-traces/{}-of-$shards.jsonl
    [ -f "$f" ] && exit 0
    # shellcheck disable=SC2086
    "$bin/swe-rollout" --solver "model:$out/base" --workdir "$workdir" $flags \
        --shard {}/$shards "$out/skill-tasks.jsonl" -o "$f" 2> "${f%.jsonl}.err"
    echo "skill-traces: shard {} of $shards done ($(wc -l < "$f") traces)" >&2'
cat "$out"/skill-traces/*-of-"$shards".jsonl > "$out/skill-traces.jsonl"
echo "skill-traces: $(ls "$out"/skill-traces/*-of-"$shards".jsonl | wc -l) of $shards shards," \
    "$(wc -l < "$out/skill-traces.jsonl") traces" >&2
"$bin/skill-distill" "$out/skill-traces.jsonl" --tasks "$out/skill-tasks.jsonl" \
    --workdir "$workdir" --seed "${SEED:-1}" --stats -o "$out/skills.jsonl"
