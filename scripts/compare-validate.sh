#!/usr/bin/env bash
# Two builds of task-validate on the same random candidates: do they give the same verdicts,
# and how long does each take? For changes to the sandbox or the gate that must not lose an
# honest candidate (docs/containment.md).
#
#   scripts/compare-validate.sh OLD_BIN NEW_BIN [N=100] [SEED=1]
#     OLD_BIN, NEW_BIN: task-validate executables (e.g. a copy of an older build)
# Variables: EXECUTORS="native wasm" JOBS=1 OUT=WORKDIR/bench/compare-nN-seedS
# Writes OUT/<build>-<executor>.{valid,rejects}.jsonl and .seconds (a run whose .seconds
# exists is not made again: resumable) and prints a table: seconds, valid tasks per minute,
# and the candidates whose verdicts differ (stage, or FAIL_TO_PASS).
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,10p "$0" >&2; exit 2; }
old=$1
new=$2
n=${3:-100}
seed=${4:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
out=${OUT:-$workdir/bench/compare-n$n-seed$seed}
jobs=${JOBS:-1}
mkdir -p "$out"
cargo build --release -q -p task-gen --manifest-path "$root/Cargo.toml"
"$root/target/release/task-gen" --strategy random --budget "$n" --seed "$seed" \
    "$workdir/corpus.jsonl" -o "$out/candidates.jsonl" -q

# A finished run (its .seconds file) is kept: delete new-*.seconds to measure a new build again.
for executor in ${EXECUTORS:-native wasm}; do
    for build in old new; do
        bin=$old
        [ "$build" = new ] && bin=$new
        [ -f "$out/$build-$executor.seconds" ] && continue
        start=$EPOCHREALTIME
        "$bin" "$out/candidates.jsonl" --workdir "$workdir" --executor "$executor" --no-cache \
            --jobs "$jobs" -q -o "$out/$build-$executor.valid.jsonl" \
            --rejects "$out/$build-$executor.rejects.jsonl"
        end=$EPOCHREALTIME
        python3 -c "print($end - $start)" > "$out/$build-$executor.seconds"
    done
done

PYTHONPATH="$root/scripts" python3 - "$out" <<'PY'
import glob, os, sys
from validate_verdicts import Verdict, differing, verdicts
out = sys.argv[1]

times = {}
for path in sorted(glob.glob(f"{out}/*-*.seconds"), key=lambda p: (p.split("-")[-1], p)):
    build, executor = os.path.basename(path)[: -len(".seconds")].split("-", 1)
    times[(build, executor)] = float(open(path).read())
print("| executor | build | seconds | valid | valid/min |")
print("|---|---|---:|---:|---:|")
for (build, executor), secs in times.items():
    valid = sum(1 for v in verdicts(out, f"{build}-{executor}").values() if v.stage == "valid")
    print(f"| {executor} | {build} | {secs:.0f} | {valid} | {60 * valid / secs:.1f} |")
for executor in sorted({e for _, e in times}):
    old, new = verdicts(out, f"old-{executor}"), verdicts(out, f"new-{executor}")
    differ = differing(old, new)
    print(f"\n{executor}: {len(old)} candidates, {len(differ)} verdicts differ")
    missing = Verdict("missing", (), "")
    for i in differ:
        o, n = old[i], new.get(i, missing)
        print(f"- {i}: old {o.stage} {o.fail_to_pass or o.reason!s:.120} / "
              f"new {n.stage} {n.fail_to_pass or n.reason!s:.120}")
PY
