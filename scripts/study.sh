#!/usr/bin/env bash
# The loop study (issue 26, docs/study.md): the five strategies (socratic, baseline,
# skills-only, score-only, handwritten) over SEEDS seeds and ROUNDS rounds at study-sized
# budgets, then the comparison report (held-out top-1 / MRR per round with paired intervals
# against the baseline, resolve rates on each seed's slice, wall and CPU time per strategy).
# scripts/evolve.py does the work: every stage is stamped, so a killed study resumes where it
# stopped, and a budget changed here reruns only the stages it reaches.
#
#   scripts/study.sh            (runs in WORKDIR/study/loop; RUNS=DIR elsewhere)
#
# The budgets, each a variable (scripts/evolve.py --help has them all):
#   CANDIDATES=300 VALID=200 TOPUP=1   pools of ~200 valid tasks a round (one top-up pass)
#   KEEP_FRAC=0.5                      100 kept tasks train each round's solver
#   DEV_CANDIDATES=300 DEV_TASKS=300   every valid dev task (~180) in the dev set
#   DEV_TARGET=rank                    the target: dev tasks whose gold repair the solver does
#                                      not rank first (~120; rollouts on all of them every round
#                                      would cost more than the rest of the round)
#   TRAIN_ROLLOUT=60 MIN_SUPPORT=2     training traces for skills; CARRY=1 carries the failed
#                                      traces no skill took into the next round
#   ROLLOUT_TASKS=20                   the resolve rate on a slice of 20 held-out tasks a seed
#   SELECT=adam-mixed                  grad-score keeps the most aligned (Adam-preconditioned)
#                                      inside the failures' family mix: the variant that gained
#                                      most on the dev failures in study-selection (docs/study.md;
#                                      SELECT=top is the paper's plain top-K)
#   RANDOM_WEIGHTS=scripts/eval-weights.toml
#                                      random generation (the baseline, round 1 of every
#                                      strategy) in the natural-bug mix: study-curriculum found
#                                      skills level with it and far above uniform random, so a
#                                      uniform baseline would credit Socratic with a mix effect
#   RFT_WEIGHT=0                       every strategy trains on its kept tasks alone (RFT would
#                                      give the strategies with training rollouts more data)
#   FREE_PAIRS=10000                   the base: the pretrained feature scorer
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${SOCRATIC_WORKDIR:-$root/.socratic}
export STRATEGY=${STRATEGY:-socratic,baseline,skills-only,score-only,handwritten}
export SEEDS=${SEEDS:-3} ROUNDS=${ROUNDS:-3}
export CANDIDATES=${CANDIDATES:-300} VALID=${VALID:-200} TOPUP=${TOPUP:-1}
export KEEP_FRAC=${KEEP_FRAC:-0.5}
export DEV_CANDIDATES=${DEV_CANDIDATES:-300} DEV_TASKS=${DEV_TASKS:-300}
export DEV_TARGET=${DEV_TARGET:-rank} SELECT=${SELECT:-adam-mixed}
export RANDOM_WEIGHTS=${RANDOM_WEIGHTS-$root/scripts/eval-weights.toml}
export TRAIN_ROLLOUT=${TRAIN_ROLLOUT:-60} MIN_SUPPORT=${MIN_SUPPORT:-2} CARRY=${CARRY:-1}
export ROLLOUT_TASKS=${ROLLOUT_TASKS:-20} RFT_WEIGHT=${RFT_WEIGHT:-0}
export FREE_PAIRS=${FREE_PAIRS:-10000}
export RUNS=${RUNS:-$workdir/study/loop}
exec python3 "$root/scripts/evolve.py" --setup --workdir "$workdir" "$@"
