# Image build: one platform vs all four, warm and cold, and nodeimg's one-root derivation vs the
# peer approach of one mkosi run per platform (what Constellation does per variant).
#   warm: the package cache, incremental image cache and tools tree of a previous build are there;
#   cold: a new, empty cache directory (tools tree, packages, everything from the mirror).
# Warm one/all: BENCH_BUILD_RUNS interleaved pairs (default 3), medians; the rest one run each (a
# build takes minutes); BENCH_BUILD_COLD=0 skips the two cold builds (~11 min).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
MKOSI=$ROOT/tools/bin/mkosi
[ -x "$MKOSI" ] || { echo "bench: $MKOSI missing; run make setup" >&2; exit 2; }
OUT=$BENCH_DIR/build
WARM=${NODEIMG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nodeimg}
rm -rf "$OUT"
mkdir -p "$OUT"

"$NODEIMG" -q build --cache-dir "$WARM" --out "$OUT/prime" >/dev/null 2>&1 || true # warm the cache
rm -rf "$OUT/prime"
# Warm one vs all, interleaved BENCH_BUILD_RUNS times (default 3; the 2 cores are shared, so a
# single pair is noise): the median of each and the ratio of the medians (issue #17's goal:
# --all at most 1.2x one platform).
runs=${BENCH_BUILD_RUNS:-3}
ones=() alls=()
for _ in $(seq "$runs"); do
  ones+=("$(secs "$NODEIMG" -q build --cache-dir "$WARM" --out "$OUT/w1")")
  rm -rf "$OUT/w1"
  alls+=("$(secs "$NODEIMG" -q build --all --cache-dir "$WARM" --out "$OUT/w4")")
  rm -rf "$OUT/w4"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
one_warm=$(median "${ones[@]}")
all_warm=$(median "${alls[@]}")
row "nodeimg build, 1 platform, warm (median of $runs)" "$one_warm"
row "nodeimg build --all (4 platforms), warm (median of $runs)" "$all_warm"
printf '%-52s %8.2f x   (runs: one %s s; all %s s)\n' "all / one (warm)" "$(echo "$all_warm / $one_warm" | bc -l)" \
  "$(printf '%.1f ' "${ones[@]}")" "$(printf '%.1f ' "${alls[@]}")"

# The peer approach: one full mkosi build per platform (root, erofs, verity, UKI each time), with
# nodeimg's own mkosi command line (its keyed caches, apt sources and the lock's pins, echoed by
# `-v`), holding the cache's lock as nodeimg does, so a concurrent `nodeimg build` waits for it.
"$NODEIMG" -v build --cache-dir "$WARM" --out "$OUT/argv" >"$OUT/argv.log" 2>&1
read -r -a argv < <(sed -n 's/^+ \(.*mkosi .* build\)$/\1/p' "$OUT/argv.log" | head -1)
[ ${#argv[@]} -gt 0 ] || { echo "bench: no mkosi command line in $OUT/argv.log" >&2; exit 1; }
peer=0
for p in aws azure gcp qemu; do
  cmd=()
  for a in "${argv[@]}"; do [ "$a" = qemu ] && cmd+=("$p") || cmd+=("$a"); done
  s=$(secs flock "$WARM/nodeimg.lock" "${cmd[@]}")
  peer=$(echo "$peer + $s" | bc -l)
done
for a in "${!argv[@]}"; do [ "${argv[$a]}" = --output-directory ] && rm -f "${argv[$((a + 1))]}"/nodeimg_*; done
row "mkosi once per platform (4 runs), warm" "$peer"
printf 'ratio mkosi-per-platform / nodeimg --all = %.2fx\n' "$(echo "$peer / $all_warm" | bc -l)"

if [ "${BENCH_BUILD_COLD:-1}" = 1 ]; then
  one_cold=$(secs "$NODEIMG" -q build --cache-dir "$OUT/cold1" --out "$OUT/c1")
  rm -rf "$OUT/cold1"
  all_cold=$(secs "$NODEIMG" -q build --all --cache-dir "$OUT/cold4" --out "$OUT/c4")
  rm -rf "$OUT/cold4"
  row "nodeimg build, 1 platform, cold" "$one_cold"
  row "nodeimg build --all (4 platforms), cold" "$all_cold"
  printf 'all / one (cold) = %.2fx\n' "$(echo "$all_cold / $one_cold" | bc -l)"
fi
rm -rf "$OUT"
