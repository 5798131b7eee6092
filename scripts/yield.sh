#!/usr/bin/env bash
# Valid yield of the fixed-mutation baseline (issue 4): N candidates from
#   task-gen --strategy random --budget N --seed SEED   (training split)
# through task-validate, then a table of the valid share overall and per operator, with
# the rejections per gate stage (scripts/yield_table.py). Files go to
# WORKDIR/run/yield-nN-seedSEED/; the table to stdout, the wall times to stderr.
#
#   scripts/yield.sh [N=500] [SEED=1]     EXECUTOR=wasm|native (default wasm), JOBS (default nproc)
set -euo pipefail
n=${1:-500}
seed=${2:-1}
executor=${EXECUTOR:-wasm}
jobs=${JOBS:-$(nproc)}
workdir=${SOCRATIC_WORKDIR:-.socratic}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
out=$workdir/run/yield-n$n-seed$seed
mkdir -p "$out"

cargo build --release -q -p task-gen -p task-validate --manifest-path "$root/Cargo.toml"
"$bin/task-gen" --strategy random --budget "$n" --seed "$seed" "$workdir/corpus.jsonl" \
    -o "$out/candidates.jsonl" -q
start=$EPOCHREALTIME
"$bin/task-validate" "$out/candidates.jsonl" --workdir "$workdir" --executor "$executor" \
    --jobs "$jobs" -o "$out/valid.jsonl" --rejects "$out/rejects.jsonl"
end=$EPOCHREALTIME
echo "yield: $(wc -l < "$out/candidates.jsonl") candidates (seed $seed), executor $executor, $jobs jobs: task-validate took $(python3 -c "print(round($end - $start))") s" >&2
python3 "$root/scripts/yield_table.py" "$out/candidates.jsonl" "$out/valid.jsonl" "$out/rejects.jsonl"
