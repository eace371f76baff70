# Shared helpers for scripts/bench.d/*.sh (sourced).

# median_of JSON [INDEX]: the median run time in seconds of hyperfine result INDEX (default 0).
median_of() { jq -r ".results[${2:-0}].median" "$1"; }

# cpu_line JSON NAME_A NAME_B: the mean CPU time (user + system) of results 0 and 1. Other load
# on the machine stretches wall-clock medians (most for the side that uses both cores); CPU time
# shows the work each side does.
cpu_line() {
  local ca cb
  ca=$(jq -r '.results[0] | (.user + .system) * 1000' "$1"); cb=$(jq -r '.results[1] | (.user + .system) * 1000' "$1")
  printf 'cpu (user+sys, mean): %s %.1f ms, %s %.1f ms\n' "$2" "$ca" "$3" "$cb"
}

# compare NAME_A CMD_A NAME_B CMD_B [hyperfine options…]: times both, prints medians and A/B.
compare() {
  local na=$1 ca=$2 nb=$3 cb=$4; shift 4
  local json; json=$(mktemp)
  hyperfine --style none --export-json "$json" "$@" -n "$na" "$ca" -n "$nb" "$cb" >/dev/null
  local ma mb; ma=$(median_of "$json" 0); mb=$(median_of "$json" 1)
  printf '%-28s median %10.1f ms\n%-28s median %10.1f ms\n' "$na" "$(echo "$ma * 1000" | bc -l)" "$nb" "$(echo "$mb * 1000" | bc -l)"
  printf 'ratio %s / %s = %.2fx\n' "$nb" "$na" "$(echo "$mb / $ma" | bc -l)"
  cpu_line "$json" "$na" "$nb"
  rm -f "$json"
}

# secs CMD…: runs CMD quietly (its output in $OUT/last.log, shown if it fails) and prints the
# wall-clock seconds it took. For the image builds, which run once each (they take minutes).
secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$OUT/last.log" 2>&1 || { tail -20 "$OUT/last.log" >&2; echo "bench: $* failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

# row NAME SECONDS: one line of a build table.
row() { printf '%-52s %8.1f s\n' "$1" "$2"; }
