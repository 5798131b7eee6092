#!/usr/bin/env bash
# Skill-guided against random generation at equal budget: N candidates of each
# (`task-gen --strategy random` and `--strategy skills --skills SKILLS`, same seed), both
# through task-validate; prints the operator-family mix of each, the skills' failure rates per
# family, and the valid yield of each with a Wilson 95% interval.
#   scripts/skills-yield.sh SKILLS [N] [SEED]     (default N=100, SEED=1; EXECUTOR=wasm|native)
# TRACES=FILE (the traces the skills came from) adds the solver's measured failure rate per
# family: the weak families that the skill-guided mix should concentrate on.
# Outputs stay in WORKDIR/run/skills-yield-n<N>-s<SEED>/ (a stage whose output exists is reused).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
skills=${1:?usage: scripts/skills-yield.sh SKILLS [N] [SEED]}
n=${2:-100}
seed=${3:-1}
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
out=$workdir/run/skills-yield-n$n-s$seed
mkdir -p "$out"
cargo build --release -q -p task-gen -p task-validate --manifest-path "$root/Cargo.toml"
bin=$root/target/release
for strategy in random skills; do
    args=(--strategy "$strategy")
    [ "$strategy" = skills ] && args+=(--skills "$skills")
    [ -s "$out/$strategy-candidates.jsonl" ] || "$bin/task-gen" "${args[@]}" --budget "$n" \
        --seed "$seed" "$workdir/corpus.jsonl" -o "$out/$strategy-candidates.jsonl"
    [ -s "$out/$strategy-valid.jsonl" ] || "$bin/task-validate" "$out/$strategy-candidates.jsonl" \
        --workdir "$workdir" --executor "${EXECUTOR:-wasm}" -q \
        -o "$out/$strategy-valid.jsonl" --rejects "$out/$strategy-rejects.jsonl"
done
python3 - "$out" "$skills" "${TRACES:-}" <<'PY'
import json, math, sys
from collections import Counter
out, skills_path, traces_path = sys.argv[1], sys.argv[2], sys.argv[3]
load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
family = lambda t: t["provenance"].get("operator_family", "?")
def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 0.0)
    p = k / n; c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0, c - h), min(1, c + h))
cand = {s: load(f"{out}/{s}-candidates.jsonl") for s in ("random", "skills")}
valid = {s: load(f"{out}/{s}-valid.jsonl") for s in ("random", "skills")}
# The solver's failure rate per family, from the skills' evidence (support-weighted).
skills = load(skills_path)
from_ops = {}
for sk in skills:
    for op in sk["operations"]:
        for o in op.get("operators", []):
            from_ops.setdefault(o, []).append(sk)
fam_of_op = {t["provenance"]["operator"]: family(t) for s in cand for t in cand[s]}
weak = Counter(); supp = Counter()
for sk in skills:
    fams = {fam_of_op.get(o) for op in sk["operations"] for o in op.get("operators", [])} - {None}
    for f in fams:
        weak[f] += sk["evidence"]["failure_rate"] * sk["evidence"]["support"]
        supp[f] += sk["evidence"]["support"]
# The solver's failure rate per family measured on its traces (harness errors left out).
tried = Counter(); failed = Counter()
for tr in load(traces_path) if traces_path else []:
    if tr.get("error"):
        continue
    f = (tr.get("analysis") or {}).get("family") or "?"
    tried[f] += 1
    failed[f] += not tr["outcome"]["resolved"]
fams = sorted({family(t) for s in cand for t in cand[s]})
# Each strategy's share of candidates per family.
share = {s: {f: n / max(1, len(cand[s])) for f, n in Counter(map(family, cand[s])).items()}
         for s in cand}
head = f"{'family':14} {'random':>8} {'skills':>8} {'skills failure rate':>20}"
print(head + (f" {'traces failed':>16}" if tried else ""))
for f in fams:
    r, k = share["random"].get(f, 0.0), share["skills"].get(f, 0.0)
    fr = f"{weak[f] / supp[f]:.2f}" if supp[f] else "-"
    row = f"{f:14} {100 * r:>7.0f}% {100 * k:>7.0f}% {fr:>20}"
    if tried:
        row += f" {f'{failed[f]}/{tried[f]}':>16}"
    print(row)
tv = 0.5 * sum(abs(share["random"].get(f, 0.0) - share["skills"].get(f, 0.0)) for f in fams)
print(f"total variation distance between the two family mixes: {tv:.2f}")
# The operators themselves: the ten the skill-guided generator drew most.
op = lambda t: t["provenance"]["operator"]
ops = {s: Counter(op(t) for t in cand[s]) for s in cand}
print(f"{'operator':22} {'random':>8} {'skills':>8}")
for o, _ in ops["skills"].most_common(10):
    r = ops["random"][o] / max(1, len(cand["random"]))
    k = ops["skills"][o] / max(1, len(cand["skills"]))
    print(f"{o:22} {100 * r:>7.0f}% {100 * k:>7.0f}%")
for s in ("random", "skills"):
    k, n = len(valid[s]), len(cand[s])
    lo, hi = wilson(k, n)
    print(f"valid yield, {s:6}: {k}/{n} = {100 * k / max(1, n):.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]")
PY
