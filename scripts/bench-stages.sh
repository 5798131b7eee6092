#!/usr/bin/env bash
# The loop's test-running stages timed per executor and per build (docs/speed.md):
#   validate  task-validate on N random candidates (task-gen --strategy random --seed SEED)
#   rollout   swe-rollout of SOLVER on the first M tasks of the evaluation set
# each with --no-cache, JOBS jobs, under both executors, for every build folder given (a
# folder holding task-validate and swe-rollout executables: target/release, or an older
# build's). Each cell records its seconds, test runs, the runs' summed wall time and pytest's
# own time inside their tests (from the tools' summary line); a cell whose .seconds exists is
# not made again (resumable: delete it to measure again).
#
#   scripts/bench-stages.sh BUILD_DIR [BUILD_DIR...]
# Variables: N=100 SEED=1 M=30 JOBS=2 EXECUTORS="native wasm" STAGES="validate rollout"
#            SOLVER=WORKDIR/run/lc-nat2/pretrained OUT=WORKDIR/bench/stages
set -euo pipefail
case ${1:-} in
    -h | --help) sed -n 2,13p "$0"; exit 0 ;;
    "") sed -n 2,13p "$0" >&2; exit 2 ;;
esac
for build in "$@"; do
    [ -x "$build/task-validate" ] || { echo "bench-stages: $build has no task-validate" >&2; exit 2; }
done
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
n=${N:-100}
seed=${SEED:-1}
m=${M:-30}
jobs=${JOBS:-2}
solver=${SOLVER:-$workdir/run/lc-nat2/pretrained}
out=${OUT:-$workdir/bench/stages}
mkdir -p "$out"

cargo build --release -q -p task-gen --manifest-path "$root/Cargo.toml"
[ -f "$out/candidates.jsonl" ] || "$root/target/release/task-gen" --strategy random \
    --budget "$n" --seed "$seed" "$workdir/corpus.jsonl" -o "$out/candidates.jsonl" -q
sed -n "1,${m}p" "$root/data/eval/eval-set.jsonl" > "$out/eval-tasks.jsonl"

for build in "$@"; do
    label=$(basename "$(dirname "$build")")-$(basename "$build")
    for stage in ${STAGES:-validate rollout}; do
        for executor in ${EXECUTORS:-native wasm}; do
            cell=$out/$stage-$executor-$label
            [ -f "$cell.seconds" ] && continue
            echo "bench-stages: $stage, $executor, $build" >&2
            start=$EPOCHREALTIME
            if [ "$stage" = validate ]; then
                SOCRATIC_LOG=task_validate=info "$build/task-validate" "$out/candidates.jsonl" \
                    --workdir "$workdir" --executor "$executor" --no-cache --jobs "$jobs" \
                    -o "$cell.jsonl" 2> "$cell.log"
            else
                SOCRATIC_LOG=swe_rollout=info "$build/swe-rollout" --solver "model:$solver" \
                    --workdir "$workdir" --executor "$executor" --no-cache --seed "$seed" \
                    --jobs "$jobs" "$out/eval-tasks.jsonl" -o "$cell.jsonl" 2> "$cell.log"
            fi
            end=$EPOCHREALTIME
            python3 -c "print($end - $start)" > "$cell.seconds"
        done
    done
done

PYTHONPATH="$root/scripts" python3 - "$out" <<'PY'
import glob, os, re, sys
from validate_verdicts import runs_summary
out = sys.argv[1]
print("| stage | executor | build | seconds | valid or resolved | test runs | runs' wall s "
      "| inside the tests s | runs / inside |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|")
for path in sorted(glob.glob(f"{out}/*.seconds")):
    cell = path[: -len(".seconds")]
    stage, executor, build = os.path.basename(cell).split("-", 2)
    secs = float(open(path).read())
    log = open(f"{cell}.log").read()
    kept = re.findall(r"(\d+ of \d+) (?:candidates valid|tasks resolved)", log)
    outputs = kept[-1] if kept else "?"
    runs, wall, inside = runs_summary(log) or ("?", None, None)
    ratio = f"{wall / inside:.1f}x" if wall is not None and inside else "-"
    shown = lambda seconds: "-" if seconds is None else f"{seconds:.1f}"
    print(f"| {stage} | {executor} | {build} | {secs:.0f} | {outputs} | {runs} | {shown(wall)} "
          f"| {shown(inside)} | {ratio} |")
PY
