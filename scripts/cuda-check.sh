#!/usr/bin/env bash
# The `cuda` build against the CPU build, on a machine with an NVIDIA GPU, with prebuilt
# binaries (the GPU machine needs no Rust):
#   1. agreement: one checkpoint, the same tasks and target, scored by grad-score on each
#      backend (alignment and gradient norm per task; passes when |alignment difference| < 1e-2
#      and the Spearman correlation of the alignments is >= 0.99), and the first losses of `sft`;
#   2. `just bench-score` with each build;
#   3. speed: `solver-train bench` (tiny, small) on each backend, PyTorch on the GPU beside it
#      when `python3 -c 'import torch, transformers'` works.
#
#   cargo build --release -p solver-train -p grad-score                       # -> CPU=target/release
#   CARGO_TARGET_DIR=target/cuda cargo build --release -p solver-train -p grad-score \
#       --features solver-train/cuda,grad-score/cuda                          # -> CUDA=target/cuda/release
#   CPU=DIR CUDA=DIR scripts/cuda-check.sh [N]     (N tasks, default 40; logs also go to $LOG if set;
#                                                   PARTS="agreement bench-score speed" picks parts)
# burn-cuda autotunes every new matrix shape (kernels compiled by NVRTC, minutes in all for
# varying lengths): CUBECL_AUTOTUNE_LEVEL=minimal cuts that down; the results are cached
# under target/ of the working directory's Cargo project.
# Each part runs on its own, so a failing one does not hide the others; exit 1 if any failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-40}
cpu=$(cd "${CPU:?CPU=DIR of the CPU binaries}" && pwd)
cuda=$(cd "${CUDA:?CUDA=DIR of the cuda binaries}" && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
log=${LOG:-$(mktemp -d)}
mkdir -p "$log"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0
part() {
    echo "== $1"
    shift
    if ! "$@"; then
        echo "!! failed: $*"
        failed=1
    fi
}

command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader

head -n "$n" "$root/data/eval/eval-set.jsonl" > "$out/tasks.jsonl"
head -n 8 "$out/tasks.jsonl" > "$out/target.jsonl"

agreement() {
    "$cpu/solver-train" init "$workdir/corpus.jsonl" -o "$out/base" --size tiny --steps 20 -q \
        > /dev/null || return 1
    for backend in cpu cuda; do
        local bin=$cpu
        [ "$backend" = cuda ] && bin=$cuda
        "$bin/grad-score" --checkpoint "$out/base" --target "$out/target.jsonl" \
            --workdir "$workdir" "$out/tasks.jsonl" -o "$log/scores-$backend.jsonl" \
            2> "$log/grad-score-$backend.err" || { cat "$log/grad-score-$backend.err"; return 1; }
        "$bin/solver-train" sft --from "$out/base" "$out/tasks.jsonl" -o "$out/sft-$backend" \
            --steps 5 --workdir "$workdir" -q > /dev/null 2> "$log/sft-$backend.err" \
            || { cat "$log/sft-$backend.err"; return 1; }
        cp "$out/sft-$backend/metrics.jsonl" "$log/sft-metrics-$backend.jsonl"
    done
    python3 - "$log" <<'PY'
import json, sys
log = sys.argv[1]
def scores(backend):
    return {s["instance_id"]: s for s in map(json.loads, open(f"{log}/scores-{backend}.jsonl"))}
cpu, cuda = scores("cpu"), scores("cuda")
assert cpu.keys() == cuda.keys(), "the backends scored different tasks"
d_align = max(abs(cpu[k]["alignment"] - cuda[k]["alignment"]) for k in cpu)
d_norm = max(abs(cpu[k]["grad_norm"] - cuda[k]["grad_norm"]) / max(cpu[k]["grad_norm"], 1e-12) for k in cpu)
rank = lambda s: sorted(s, key=lambda k: -s[k]["alignment"])
k = min(10, len(cpu))
top = len(set(rank(cpu)[:k]) & set(rank(cuda)[:k]))
position = lambda s: {key: i for i, key in enumerate(rank(s))}
p_cpu, p_cuda, n = position(cpu), position(cuda), len(cpu)
spearman = 1 - 6 * sum((p_cpu[key] - p_cuda[key]) ** 2 for key in cpu) / max(n * (n * n - 1), 1)
print(f"grad-score, {len(cpu)} tasks: max |alignment cpu - cuda| = {d_align:.2e}, "
      f"max relative gradient-norm difference = {d_norm:.2e}, top-{k} overlap {top}/{k}, "
      f"Spearman {spearman:.5f}")
for backend in ("cpu", "cuda"):
    losses = [round(m["loss"], 5) for m in map(json.loads, open(f"{log}/sft-metrics-{backend}.jsonl")) if "loss" in m]
    print(f"sft losses ({backend}): {losses}")
# The GPU's matrix products differ from the CPU's in about the third significant digit
# (docs/cuda.md); selection needs the same order, so the ranks must agree.
sys.exit(0 if d_align < 1e-2 and spearman >= 0.99 else 1)
PY
}

speed() {
    for size in tiny small; do
        "$cpu/solver-train" bench --size "$size" | tee -a "$log/bench-train.jsonl"
        "$cuda/solver-train" bench --size "$size" | tee -a "$log/bench-train.jsonl"
        if python3 -c 'import torch, transformers' 2> /dev/null; then
            python3 "$root/scripts/bench_train_torch.py" --venv '' --device cuda --size "$size" \
                | tee -a "$log/bench-train.jsonl"
        fi
    done
}

score_bench() {
    echo "-- cpu"
    BIN=$cpu bash "$root/scripts/bench-score.sh" "$n" || return 1
    echo "-- cuda"
    BIN=$cuda bash "$root/scripts/bench-score.sh" "$n"
}

parts=" ${PARTS:-agreement bench-score speed} "
[[ $parts == *" agreement "* ]] && part "agreement of the backends" agreement
[[ $parts == *" bench-score "* ]] && part "bench-score" score_bench
[[ $parts == *" speed "* ]] && part "solver-train bench" speed
exit $failed
