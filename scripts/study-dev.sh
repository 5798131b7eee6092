#!/usr/bin/env bash
# The study's dev set (issue 26): DEV_CANDIDATES candidates of the dev-split repositories in
# the natural-bug mix (scripts/eval-weights.toml), validated; then SOLVER's rollouts on them.
# The valid tasks SOLVER fails are the target of grad-score (the study wants at least 50).
# Each step is skipped when its output exists; the rollouts are redone when SOLVER changes.
#
#   DEV=DIR SOLVER=CHECKPOINT_DIR scripts/study-dev.sh
# Variables: DEV_CANDIDATES=300 DEV_SEED=1 EXECUTOR=native JOBS=2
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
dev=${DEV:?DEV=folder of the dev set}
solver=${SOLVER:?SOLVER=the checkpoint whose failures are the target}
executor=${EXECUTOR:-native}
jobs=${JOBS:-2}
bin=${CARGO_TARGET_DIR:-$root/target}/release
out=$dev
mkdir -p "$dev"
step() { echo "study-dev: $*" >&2; }
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

validated_dev_tasks "$dev"
solver_id=$(sha256sum "$solver/checkpoint.json" | cut -c1-64)
if [ ! -f "$dev/traces.jsonl" ] || [ "$(cat "$dev/traces.solver" 2>/dev/null)" != "$solver_id" ]; then
    step "rollouts of $solver on $(wc -l < "$dev/valid.jsonl") dev tasks ($executor, $jobs jobs)"
    timed dev-rollout "$bin/swe-rollout" --solver "model:$solver" --workdir "$workdir" \
        --executor "$executor" --seed 1 --jobs "$jobs" -q "$dev/valid.jsonl" \
        -o "$dev/traces.jsonl"
    echo "$solver_id" > "$dev/traces.solver"
fi
failed=$(python3 -c 'import json, sys
print(sum(1 for line in open(sys.argv[1]) if line.strip()
          and not json.loads(line).get("outcome", {}).get("resolved", False)))' "$dev/traces.jsonl")
step "$failed of $(wc -l < "$dev/valid.jsonl") dev tasks failed: the target"
if [ "$failed" -lt 50 ]; then
    step "warning: fewer than 50 failed dev tasks; raise DEV_CANDIDATES for a steadier target"
fi
