#!/usr/bin/env bash
# just bench-train: the solver in burn against the same model in PyTorch (CPU, same threads),
# for the default (tiny) and a larger (small) size. Prints both JSON lines per size and a table.
#   scripts/bench-train.sh [SIZES...]      (FEATURES=cuda builds the GPU backend)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sizes=("${@:-tiny small}")
read -r -a sizes <<< "${sizes[*]}"
features=()
[ -n "${FEATURES:-}" ] && features=(--features "$FEATURES")
cargo build --release -q -p solver-train "${features[@]}" --manifest-path "$root/Cargo.toml"
python=${PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for size in "${sizes[@]}"; do
    "$root/target/release/solver-train" bench --size "$size" | tee "$out/burn-$size.json"
    "$python" "$root/scripts/bench_train_torch.py" --size "$size" | tee "$out/torch-$size.json"
done
"$python" - "$out" "${sizes[@]}" <<'PY'
import json, sys
out, sizes = sys.argv[1], sys.argv[2:]
print(f"\n{'size':6} {'params':>9} {'burn tok/s':>11} {'torch tok/s':>12} {'ratio':>6} {'burn grad ms':>13} {'torch grad ms':>14} {'burn MB':>8} {'torch MB':>9}")
for s in sizes:
    b = json.load(open(f"{out}/burn-{s}.json")); t = json.load(open(f"{out}/torch-{s}.json"))
    print(f"{s:6} {b['parameters']:>9} {b['lm_tokens_per_s']:>11.0f} {t['lm_tokens_per_s']:>12.0f} "
          f"{b['lm_tokens_per_s'] / t['lm_tokens_per_s']:>6.2f} {b['gradient_ms']:>13.0f} {t['gradient_ms']:>14.0f} "
          f"{b['peak_rss_mb']:>8.0f} {t['peak_rss_mb']:>9.0f}")
PY
