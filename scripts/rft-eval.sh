#!/usr/bin/env bash
# Does rejection-sampling fine-tuning on the solver's own resolved traces help (issue 5)?
#   TASKS (validated training tasks) = the first N_SFT for fine-tuning, the next N_ROLL for
#   rollouts of BASE (their traces);
#   then per seed three fine-tunings of BASE with the same steps:
#     tasks       the N_SFT tasks
#     tasks+rft   the same, plus `--traces`: the resolved traces' own repairs
#     tasks+gold  the same, plus the gold repairs of all N_ROLL tasks (what full supervision
#                 of the rollout tasks would give: the upper bound of what their traces add)
#   each ranked on the evaluation set with `solver-train eval` (top-1/top-5/MRR of the gold
#   repair among the candidates).
# Every step writes into OUT and is skipped when its output exists.
#
#   scripts/rft-eval.sh TASKS BASE [OUT]     (default OUT=WORKDIR/run/rft-eval)
# Variables: N_SFT=150 N_ROLL=100 SFT_STEPS=150 SEEDS="1 2 3" EXECUTOR=native
#   EVAL=data/eval/eval-set.jsonl
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
tasks=${1:?usage: rft-eval.sh TASKS BASE [OUT]}
base=${2:?usage: rft-eval.sh TASKS BASE [OUT]}
out=${3:-$workdir/run/rft-eval}
n_sft=${N_SFT:-150}
n_roll=${N_ROLL:-100}
steps=${SFT_STEPS:-150}
seeds=${SEEDS:-1 2 3}
executor=${EXECUTOR:-native}
eval_set=${EVAL:-$root/data/eval/eval-set.jsonl}
bin=${CARGO_TARGET_DIR:-$root/target}/release
mkdir -p "$out"
cargo build --release -q -p solver-train -p swe-rollout --manifest-path "$root/Cargo.toml"
step() { echo "rft-eval: $*" >&2; }

if [ ! -f "$out/roll.jsonl" ]; then
    if [ "$(wc -l < "$tasks")" -lt $((n_sft + n_roll)) ]; then
        echo "rft-eval: $tasks holds fewer than N_SFT + N_ROLL = $((n_sft + n_roll)) tasks" >&2
        exit 2
    fi
    head -n "$n_sft" "$tasks" > "$out/sft.jsonl"
    sed -n "$((n_sft + 1)),$((n_sft + n_roll))p" "$tasks" > "$out/roll.jsonl.partial"
    mv "$out/roll.jsonl.partial" "$out/roll.jsonl"
fi
if [ ! -f "$out/traces.jsonl" ]; then
    step "rollouts of the base solver on $n_roll training tasks ($executor executor)"
    "$bin/swe-rollout" --solver "model:$base" --workdir "$workdir" --executor "$executor" \
        --seed 1 "$out/roll.jsonl" -o "$out/traces.jsonl"
fi
step "$(grep -c '"resolved":true' "$out/traces.jsonl" || true) of $n_roll rollout tasks resolved"

for seed in $seeds; do
    for arm in tasks tasks+rft tasks+gold; do
        ckpt="$out/$arm-seed$seed"
        case $arm in
            tasks) inputs=("$out/sft.jsonl") ;;
            tasks+rft) inputs=("$out/sft.jsonl" --traces "$out/traces.jsonl" --trace-tasks "$out/roll.jsonl") ;;
            tasks+gold) inputs=("$out/sft.jsonl" "$out/roll.jsonl") ;;
        esac
        if [ ! -f "$ckpt/checkpoint.json" ]; then
            step "fine-tuning $arm, seed $seed ($steps steps)"
            "$bin/solver-train" sft --from "$base" "${inputs[@]}" -o "$ckpt" --workdir "$workdir" \
                --steps "$steps" --seed "$seed" > /dev/null
        fi
        if [ ! -f "$ckpt.eval.json" ]; then
            "$bin/solver-train" eval --checkpoint "$ckpt" "$eval_set" --workdir "$workdir" \
                -o "$ckpt.eval.json"
        fi
    done
done
python3 "$root/scripts/rft_table.py" "$out" | tee "$out/table.md"
