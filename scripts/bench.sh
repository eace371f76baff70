#!/usr/bin/env bash
# `make bench`: runs every scripts/bench.d/NN-*.sh in order. Each benchmark times nodeimg and its
# peer tool side by side on the same input (hyperfine, warm page cache) and prints both medians
# and their ratio. Set BENCH_ONLY=verity (a substring of the file name) to run a subset.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export NODEIMG=$ROOT/target/release/nodeimg
# The checkout's tools cache, which `make setup` fills (docs/tools-cache.md).
export NODEIMG_TOOLS_DIR=${NODEIMG_TOOLS_DIR:-$ROOT/tools}
export BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench}
mkdir -p "$BENCH_DIR"
[ -x "$NODEIMG" ] || { echo "bench: $NODEIMG missing; run make build" >&2; exit 2; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
for b in "$ROOT"/scripts/bench.d/[0-9]*.sh; do
  case $(basename "$b") in *"${BENCH_ONLY:-}"*) ;; *) continue;; esac
  echo
  echo "== $(basename "$b" .sh)"
  bash "$b"
done
