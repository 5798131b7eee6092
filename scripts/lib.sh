# Shell helpers of the measurement recipes (sourced; they read $out, the recipe's output folder).

# children_cpu VAR: sets VAR to the CPU seconds (user + system) of this shell's finished
# children so far (`times` run in this shell: in a $(...) subshell it would count none).
children_cpu() {
    local file
    file=$(mktemp)
    times > "$file"
    printf -v "$1" '%s' "$(awk 'NR == 2 { n = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); n += p[1] * 60 + p[2] }
        printf "%.2f", n }' "$file")"
    rm -f "$file"
}

# pretrain_steps PAIRS: the pretraining schedule of docs/learning.md, 1.2 epochs of PAIRS free
# pairs in batches of 64 (scripts/evolve.py's `pretrain` stage uses the same, at least 20).
pretrain_steps() {
    echo $(((12 * $1 + 639) / 640))
}

# timed NAME COMMAND...: runs COMMAND and records its wall and CPU seconds in $out/times.tsv
# (name, wall, cpu).
timed() {
    local name=$1 start cpu_before cpu_after
    shift
    start=$(date +%s)
    children_cpu cpu_before
    "$@"
    children_cpu cpu_after
    printf '%s\t%s\t%s\n' "$name" "$(($(date +%s) - start))" \
        "$(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN { printf "%.1f", b - a }')" \
        >> "$out/times.tsv"
}

# validated_dev_tasks DIR: DEV_CANDIDATES (300) candidates of the dev-split repositories in the
# natural-bug mix, seed DEV_SEED (1), into DIR/candidates.jsonl, validated with $executor and
# $jobs into DIR/valid.jsonl (each skipped when done). Reads $bin $workdir $root; calls `step`.
validated_dev_tasks() {
    if [ ! -f "$1/candidates.jsonl" ]; then
        "$bin/task-gen" --split dev --budget "${DEV_CANDIDATES:-300}" --seed "${DEV_SEED:-1}" \
            --operator-weights "$root/scripts/eval-weights.toml" -q "$workdir/corpus.jsonl" \
            -o "$1/candidates.jsonl"
    fi
    if [ ! -f "$1/valid.jsonl" ]; then
        step "validating $(wc -l < "$1/candidates.jsonl") dev candidates ($executor, $jobs jobs)"
        timed dev-validate "$bin/task-validate" --executor "$executor" --jobs "$jobs" \
            --workdir "$workdir" -q "$1/candidates.jsonl" -o "$1/valid.jsonl" \
            --rejects "$1/rejects.jsonl"
    fi
}

# The single-mechanism studies (scripts/study-selection.sh, scripts/study-curriculum.sh) read
# $bin $workdir $solver $eval_set $dev besides $out.

# finetune_arm NAME TASKS STEPS SEED: the study's fine-tuning of $solver on TASKS into
# $out/NAME (skipped when done), timed as sft-NAME. ANCHOR=A holds it near $solver
# (`sft --anchor`; the studies of docs/study.md ran without, the default 0).
finetune_arm() {
    [ -f "$out/$1/checkpoint.json" ] && return
    echo "study: fine-tuning $1 on $(wc -l < "$2") tasks ($3 steps)" >&2
    timed "sft-$1" "$bin/solver-train" sft --from "$solver" "$2" --workdir "$workdir" \
        --steps "$3" --batch-size 64 --group 128 --lr "${FT_LR:-0.01}" \
        --anchor "${ANCHOR:-0}" --seed "$4" -q \
        -o "$out/$1" > /dev/null
}

# evaluate_arm NAME CHECKPOINT: `solver-train eval --per-task` of CHECKPOINT on the evaluation
# set and on the dev set, into $out/{eval,dev}-NAME.json and .per.jsonl (each skipped when done).
evaluate_arm() {
    local set tasks_file
    for set in eval dev; do
        [ -f "$out/$set-$1.json" ] && continue
        tasks_file=$eval_set
        [ "$set" = dev ] && tasks_file=$dev/valid.jsonl
        "$bin/solver-train" eval --workdir "$workdir" --checkpoint "$2" -q \
            --per-task "$out/$set-$1.per.jsonl" -o "$out/$set-$1.json" "$tasks_file"
    done
}

# settings_guard NAME=VALUE...: the settings that decide what is in $out. Every step is skipped
# when its output exists, whatever settings made it, so the first run writes these to
# $out/settings.txt and a later run with other values stops (exit 2) naming what changed,
# instead of mixing files of both (or reporting the old ones under the new names).
settings_guard() {
    local file=$out/settings.txt now
    now=$(printf '%s\n' "$@")
    if [ ! -f "$file" ]; then
        printf '%s\n' "$now" > "$file.partial" && mv "$file.partial" "$file"
        return
    fi
    if [ "$(cat "$file")" != "$now" ]; then
        echo "$(basename "$0"): $out was made with other settings:" >&2
        diff "$file" <(printf '%s\n' "$now") | sed -n 's/^< /  then: /p; s/^> /  now:  /p' >&2
        echo "  run with those settings again, write into another folder, or remove $file" \
            "and the outputs it no longer describes" >&2
        exit 2
    fi
}
