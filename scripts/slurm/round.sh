#!/usr/bin/env bash
# Submits round R of an evolve run to Slurm: the serial stages as single jobs and each heavy
# stage (task-validate, dev-rollout, grad-score, train-rollout, eval-rollout) as an array of
# SHARDS jobs, each job depending on the one before. Every job runs scripts/evolve.py, which
# skips the stages that are done, so a job only adds the missing files; the job after an
# array merges its shards in input order (the merged file equals an unsharded run's). The
# top-up passes of a short pool (task-validate-more-K) run in the serial job after the
# task-validate array, their shards in parallel inside it.
#
#   SHARDS=8 STRATEGY=socratic SEED=1 scripts/slurm/round.sh R [sbatch flags...]
#
# Submit round 0 (base solver, dev set, its evaluation) first, then 1, 2, ... (each after the
# last has finished, or with --dependency). Budgets and the other variables of
# scripts/evolve.py pass through the environment (--export=ALL); build the tools once
# (`just build`) on a shared filesystem. Edit the #SBATCH lines of stage.sbatch and
# shard.sbatch for your cluster.
set -euo pipefail
round=${1:?usage: scripts/slurm/round.sh ROUND [sbatch flags...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
shards=${SHARDS:-4}
export SHARDS=$shards ROUNDS=$round

submit() { sbatch --parsable --export=ALL "$@"; }

case "${STRATEGY:-socratic}" in
    socratic) heavy=(task-validate dev-rollout grad-score train-rollout eval-rollout) ;;
    skills-only) heavy=(task-validate train-rollout eval-rollout) ;;
    score-only) heavy=(task-validate dev-rollout grad-score eval-rollout) ;;
    baseline) heavy=(task-validate eval-rollout) ;;
    handwritten) heavy=(task-validate dev-rollout grad-score train-rollout eval-rollout) ;;
    *) echo "round.sh: STRATEGY=$STRATEGY is not a strategy" >&2; exit 2 ;;
esac
# DEV_TARGET=rank ranks the dev set instead of rolling out on it: no dev-rollout stage.
[ "${DEV_TARGET:-rollout}" = rank ] && heavy=("${heavy[@]/dev-rollout}")
[ "$round" -eq 0 ] && heavy=(eval-rollout)

after=()
for stage in "${heavy[@]}"; do
    [ -n "$stage" ] || continue
    # The serial stages before STAGE, then STAGE's shards as an array.
    job=$(submit "${after[@]}" "$@" "$here/stage.sbatch" --until "$stage" --round "$round")
    array=$(submit --dependency="afterok:$job" --array="0-$((shards - 1))" "$@" \
        "$here/shard.sbatch" "$stage" "$round")
    echo "round $round: $stage: serial job $job, shard array $array"
    after=(--dependency="afterok:$array")
done
# Merges the last shards, runs what is left of the round and writes its report.
job=$(submit "${after[@]}" "$@" "$here/stage.sbatch")
echo "round $round: closing job $job"
