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
