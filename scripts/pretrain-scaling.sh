#!/usr/bin/env bash
# Does pretraining on free repair pairs gain from more training repositories? For each corpus
# and each number of free pairs: free pairs of the corpus's training repositories (task-gen
# --strategy random in the natural-bug mix, no test runs), the feature scorer pretrained on
# them (1.2 epochs, the recipe of docs/learning.md), then its ranking of the gold repair on
# the dev candidates (unvalidated natural-mix candidates of the dev split: where choices are
# made) and on the held-out evaluation set (reported, never chosen on). Resumable by file.
#
#   CORPORA="lock:.socratic/corpus.jsonl more:/path/corpus-more.jsonl" SIZES="10000 30000" \
#       bash scripts/pretrain-scaling.sh OUT
#
# Variables: CORPORA (NAME:FILE pairs; default the work directory's corpus as `lock`), SIZES
# (free pairs; default "10000"), DEV=1500 (dev candidates, seed 1), SEED=1.
# Writes OUT/<name>-<size>/{free.jsonl,pretrained/,dev.json,eval.json} and OUT/table.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: scripts/pretrain-scaling.sh OUT}
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
corpora=${CORPORA:-lock:$workdir/corpus.jsonl}
sizes=${SIZES:-10000}
seed=${SEED:-1}
weights=$root/scripts/eval-weights.toml
bin=${CARGO_TARGET_DIR:-$root/target}/release
mkdir -p "$out"
cargo build --release -q -p task-gen -p solver-train --manifest-path "$root/Cargo.toml"
step() { echo "pretrain-scaling: $*" >&2; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

# The dev candidates come from the work directory's corpus: the same dev split for every arm.
dev=$out/dev-candidates.jsonl
if [ ! -f "$dev" ]; then
    step "generating ${DEV:-1500} dev candidates"
    "$bin/task-gen" --strategy random --split dev --budget "${DEV:-1500}" --seed 1 \
        --operator-weights "$weights" "$workdir/corpus.jsonl" -o "$dev" -q
fi

for spec in $corpora; do
    name=${spec%%:*}
    corpus=${spec#*:}
    for size in $sizes; do
        d=$out/$name-$size
        mkdir -p "$d"
        if [ ! -f "$d/free.jsonl" ]; then
            step "$name: $size free pairs"
            "$bin/task-gen" --strategy random --budget "$size" --seed $((seed + 1000)) \
                --operator-weights "$weights" "$corpus" -o "$d/free.jsonl" -q
        fi
        if [ ! -f "$d/base/checkpoint.json" ]; then
            # The tokenizer only: the feature scorer does not run the language model.
            "$bin/solver-train" init "$corpus" --size micro --steps 1 --seed "$seed" \
                -o "$d/base" -q > /dev/null
        fi
        if [ ! -f "$d/pretrained/checkpoint.json" ]; then
            steps=$(pretrain_steps "$size")
            step "$name-$size: pretraining ($steps steps)"
            /usr/bin/time -f "%e" -o "$d/pretrain.seconds" \
                "$bin/solver-train" sft --from "$d/base" "$d/free.jsonl" --corpus "$corpus" \
                --scorer features --steps "$steps" --batch-size 64 --group 128 --lr 0.05 \
                --seed "$seed" -o "$d/pretrained" -q > /dev/null
        fi
        for set in dev eval; do
            [ -f "$d/$set.json" ] && continue
            tasks=$dev
            [ "$set" = eval ] && tasks=$root/data/eval/eval-set.jsonl
            "$bin/solver-train" eval --workdir "$workdir" --checkpoint "$d/pretrained" \
                "$tasks" -q -o "$d/$set.json"
        done
    done
done

python3 - "$out" "$corpora" "$sizes" > "$out/table.md" <<'EOF'
import json, sys
from pathlib import Path
out, corpora, sizes = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
print("| corpus | train repos | free pairs | dev top-1 | dev MRR | eval top-1 | eval top-5 | eval MRR | per family eval top-1 (constant / data-flow / operator) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for spec in corpora:
    name, corpus = spec.split(":", 1)
    train = sum(json.loads(l)["split"] == "train" for l in open(corpus) if l.strip())
    for size in sizes:
        d = out / f"{name}-{size}"
        dev, ev = (json.loads((d / f"{s}.json").read_text()) for s in ("dev", "eval"))
        fam = ev.get("by_family", {})
        per = " / ".join(f"{100 * fam[f]['model_top1']:.1f}%" if f in fam else "–"
                         for f in ("constant", "data-flow", "operator"))
        a, b = dev["all"], ev["all"]
        print(f"| {name} | {train} | {size} | {100 * a['model_top1']:.1f}% | {a['model_mrr']:.3f} | "
              f"{100 * b['model_top1']:.1f}% | {100 * b['model_top5']:.1f}% | {b['model_mrr']:.3f} | {per} |")
EOF
cat "$out/table.md"
