#!/usr/bin/env bash
# Benchmark of the execution gate (issue 3): validated tasks per minute for
#   A  the naive reference: native executor, whole suite, a fresh process per run, no cache
#   B  the default: `--executor auto` (native inside bubblewrap where that works, wasm
#      otherwise; the table names which), warm workers, test selection, no result cache
#   C  the other executor (warm workers) with selection, no cache (wasm vs native on the same
#      selected tests)
#   D  (COLD=1 only) wasm with a fresh interpreter per run (`--cold`)
# on the same N candidates from `task-gen --strategy random`, and how many verdicts differ.
# Each row also shows the test runs made, their summed wall time, pytest's own time inside
# the tests of those runs (setup + call + teardown, from the JUnit reports) and the ratio of
# the two: what start-up, collection and reporting cost on top of the tests themselves; and
# the traced runs among them (the line maps of test selection), whose tests tracing slows.
#
#   scripts/bench-validate.sh [N=100] [SEED=1]        (PROFILE=debug to skip the release build)
set -euo pipefail
n=${1:-100}
seed=${2:-1}
profile=${PROFILE:-release}
workdir=${SOCRATIC_WORKDIR:-.socratic}
jobs=${JOBS:-$(nproc)}
out=$workdir/bench/validate-n$n-seed$seed
mkdir -p "$out"

if [ "$profile" = release ]; then
    cargo build --release -q -p task-gen -p task-validate
fi
bin=target/$profile

"$bin/task-gen" --strategy random --budget "$n" --seed "$seed" "$workdir/corpus.jsonl" \
    -o "$out/candidates.jsonl" -q
count=$(wc -l < "$out/candidates.jsonl")

run() { # name, then task-validate flags
    local name=$1
    shift
    local start end
    start=$EPOCHREALTIME
    SOCRATIC_LOG=task_validate=info "$bin/task-validate" "$out/candidates.jsonl" --no-cache \
        --jobs "$jobs" -o "$out/$name.valid.jsonl" --rejects "$out/$name.rejects.jsonl" "$@" \
        2> "$out/$name.log"
    end=$EPOCHREALTIME
    python3 -c "print($end - $start)"
}

echo "bench-validate: $count candidates (seed $seed), $jobs jobs, $profile build" >&2
secs_a=$(run A --executor native --full --cold)
secs_b=$(run B)
b_executor=$(grep -o 'executor: [a-z]*' "$out/B.log" | tail -1 | cut -d' ' -f2)
c_executor=$([ "$b_executor" = native ] && echo wasm || echo native)
secs_c=$(run C --executor "$c_executor")
secs_d=0
[ -n "${COLD:-}" ] && secs_d=$(run D --executor wasm --cold)

PYTHONPATH=scripts python3 - "$out" "$count" "$jobs" "$secs_a" "$secs_b" "$secs_c" "$secs_d" \
    "$b_executor" "$c_executor" <<'PY'
import sys
from validate_verdicts import differing, line_maps_summary, runs_summary, verdicts
out, count, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a, b, c, d = map(float, sys.argv[4:8])
b_executor, c_executor = sys.argv[8:10]

va, vb, vc = verdicts(out, "A"), verdicts(out, "B"), verdicts(out, "C")
valid = sum(1 for v in vb.values() if v.stage == "valid")
rate = lambda secs: valid / secs * 60


def row(label, name, secs):
    log = open(f"{out}/{name}.log").read()
    n, wall, inside = runs_summary(log) or (0, 0.0, 0.0)
    traced, traced_wall, traced_inside = line_maps_summary(log) or (0, 0.0, 0.0)
    ratio = f"{wall / inside:.1f}x" if inside else "-"
    stage = f"{secs * jobs / inside:.1f}x" if inside else "-"
    # Tracing slows the tests, so a line map's time inside them is not their own: the
    # untraced runs' ratio is the harness's overhead alone.
    plain = inside - traced_inside
    untraced = f"{(wall - traced_wall) / plain:.1f}x" if plain else "-"
    print(f"| {label} | {secs:.1f} | {rate(secs):.2f} | {n:.0f} | {wall:.1f} | {inside:.1f} | {ratio} "
          f"| {stage} | {traced} ({traced_wall:.1f} s, {traced_inside:.1f} s inside) | {untraced} |")


diff_ab = differing(va, vb)
diff_bc = differing(vb, vc)
print("| setup | seconds | validated tasks / min | test runs | runs' wall s | inside the tests s "
      "| runs / inside | stage x jobs / inside | of which line maps | untraced runs / inside |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
row("A native, whole suite, fresh process, no cache", "A", a)
row(f"B the default (auto: {b_executor} here, warm workers), selection, no cache", "B", b)
row(f"C {c_executor} (warm workers), selection, no cache", "C", c)
if d:
    row("D wasm, fresh interpreter per run (--cold), selection, no cache", "D", d)
print()
wasm_native = b / c if b_executor == "wasm" else c / b
print(f"valid: {valid} of {count}; B/A speed-up: {a / b:.2f}x; wasm/native on the same selected "
      f"tests: {wasm_native:.2f}x")
print(f"verdicts differing A vs B: {len(diff_ab)} {diff_ab[:10]}")
print(f"verdicts differing B vs C: {len(diff_bc)} {diff_bc[:10]}")
if d:
    vd = verdicts(out, "D")
    diff_bd = differing(vb, vd)
    print(f"warm workers vs fresh interpreters under wasm: {(b if b_executor == 'wasm' else c) / d:.2f}x; "
          f"verdicts differing B vs D: {len(diff_bd)} {diff_bd[:10]}")
PY
