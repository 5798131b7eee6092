#!/usr/bin/env python3
"""The table of scripts/rft-eval.sh: per arm, the evaluation ranking of each seed and the mean,
and each arm's gain over `tasks` paired by seed.

    python3 scripts/rft_table.py OUT

OUT holds `<arm>-seed<S>.eval.json` (`solver-train eval` summaries) and `traces.jsonl`.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ARMS = ["tasks", "tasks+rft", "tasks+gold"]
METRICS = ["model_top1", "model_top5", "model_mrr"]


def main() -> None:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out = Path(sys.argv[1])
    runs: dict[str, dict[int, dict]] = {arm: {} for arm in ARMS}
    for path in sorted(out.glob("*-seed*.eval.json")):
        match = re.fullmatch(r"(.+)-seed(\d+)\.eval\.json", path.name)
        if match and match[1] in runs:
            runs[match[1]][int(match[2])] = json.loads(path.read_text())["all"]
    traces = [json.loads(l) for l in (out / "traces.jsonl").read_text().splitlines() if l.strip()]
    resolved = sum(1 for t in traces if t["outcome"]["resolved"] and not t.get("error"))
    print(f"Rollout traces: {resolved} of {len(traces)} resolved (the examples `--traces` adds).\n")
    seeds = sorted(runs["tasks"])
    n = runs["tasks"][seeds[0]]["n"] if seeds else 0
    print(f"Evaluation: {n} tasks; seeds {', '.join(map(str, seeds))}; mean over seeds "
          "(per seed in brackets); gain = paired difference from `tasks`.\n")
    print("| arm | top-1 % | top-5 % | MRR | top-1 gain (pts) |")
    print("|---|---|---|---|---|")
    for arm in ARMS:
        by_seed = runs[arm]
        if not by_seed:
            continue
        cells = []
        for metric in METRICS:
            values = [by_seed[s][metric] for s in sorted(by_seed)]
            scale = 1 if metric == "model_mrr" else 100
            each = ", ".join(f"{v * scale:.1f}" if scale == 100 else f"{v:.3f}" for v in values)
            mean = statistics.mean(values) * scale
            cells.append(f"{mean:.1f} [{each}]" if scale == 100 else f"{mean:.3f} [{each}]")
        paired = [100 * (by_seed[s]["model_top1"] - runs["tasks"][s]["model_top1"])
                  for s in sorted(by_seed) if s in runs["tasks"]]
        gain = "" if arm == "tasks" or not paired else (
            f"{statistics.mean(paired):+.1f} [{', '.join(f'{g:+.1f}' for g in paired)}]")
        print(f"| {arm} | {' | '.join(cells)} | {gain} |")


if __name__ == "__main__":
    main()
