# Shell helpers of the measurement recipes (sourced; they read $out, the recipe's output folder).

# timed NAME COMMAND...: runs COMMAND and records its wall time in $out/times.tsv.
timed() {
    local name=$1 start
    shift
    start=$(date +%s)
    "$@"
    printf '%s\t%s\n' "$name" "$(($(date +%s) - start))" >> "$out/times.tsv"
}
