#!/usr/bin/env bash
# Time `cargo install --locked just && just evolve` as a fresh machine sees it: a new clone of
# this repository's HEAD, an empty CARGO_HOME (crate index and crates downloaded again; the
# rustup toolchain stays), an empty pip cache and an empty work directory. Run it alone on the
# machine. Usage: bash scripts/fresh-evolve.sh [DIR]   (default: a new temporary directory)
set -euo pipefail
case ${1:-} in
    -h|--help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "fresh-evolve: unknown option $1 (usage: bash scripts/fresh-evolve.sh [DIR])" >&2; exit 2 ;;
esac
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=${1:-$(mktemp -d /tmp/fresh-evolve.XXXXXX)}
mkdir -p "$dir"
git clone -q "$repo" "$dir/repo"
cd "$dir/repo"
export CARGO_HOME=$dir/cargo-home PIP_CACHE_DIR=$dir/pip-cache
export PATH=$CARGO_HOME/bin:$HOME/.cargo/bin:$PATH
unset SOCRATIC_WORKDIR RUNS BIN
start=$(date +%s)
cargo install --locked just
installed=$(date +%s)
just evolve 2>&1 | tee "$dir/evolve.log"
done_at=$(date +%s)
# The loop's own wall time: from the first stage's start to the last stage's end (stamps).
loop=$(python3 - "$dir/repo/.socratic/run" <<'PY'
import glob, json, sys
stamps = [json.load(open(p)) for p in glob.glob(f"{sys.argv[1]}/*/.stamps/*.json")]
stamps = [s for s in stamps if "started_at" in s]
print(round(max(s["ended_at"] for s in stamps) - min(s["started_at"] for s in stamps)))
PY
)
echo "fresh-evolve: cargo install --locked just $((installed - start)) s;" \
     "just evolve $((done_at - installed)) s (build + setup $((done_at - installed - loop)) s," \
     "loop $loop s); total $((done_at - start)) s; log $dir/evolve.log" >&2
