#!/usr/bin/env bash
# Runs the evolve loop as far as the stages that exist, and says what is missing.
# Today: round 1 of the fixed-mutation generator and the execution gate
#   task-gen --strategy random → task-validate
# into WORKDIR/run/round-1/. The full loop (rollout → distill → generate → validate →
# score → train) is wired here as its stages land.
#
#   scripts/evolve.sh WORKDIR      (CANDIDATES=20 SEED=1 by default)
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
cargo build --release -q -p task-gen -p task-validate --manifest-path "$root/Cargo.toml"

round=$workdir/run/round-1
mkdir -p "$round"
"$bin/task-gen" --strategy random --budget "$candidates" --seed "$seed" \
    "$workdir/corpus.jsonl" -o "$round/candidates.jsonl" --stats
"$bin/task-validate" "$round/candidates.jsonl" --workdir "$workdir" \
    -o "$round/valid.jsonl" --rejects "$round/rejects.jsonl"
echo "evolve: round 1: $(wc -l < "$round/candidates.jsonl") candidates, $(wc -l < "$round/valid.jsonl") valid tasks in $round/valid.jsonl" >&2

if [ ${#missing[@]} -gt 0 ]; then
    echo "evolve: the loop stops here; stages not built yet: ${missing[*]}" >&2
    exit 0
fi
echo "evolve: all stages exist but the loop is not wired yet" >&2
exit 1
