#!/usr/bin/env bash
# `make repro`: builds the image twice, each with its own package cache, incremental cache and
# mkosi tools tree (so nothing is shared but the profiles and the lock), and compares the two
# outputs with `nodeimg repro` (exit 1 and the differing files when they differ). Two cold
# builds: about 10 minutes on the 2-core CI machine, which is why `make test` does not run it.
# NODEIMG_BUILD_ARGS chooses the profiles (default: --all).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODEIMG=${NODEIMG:-$ROOT/target/release/nodeimg}
# The checkout's tools cache, which `make setup` fills (docs/tools-cache.md).
export NODEIMG_TOOLS_DIR=${NODEIMG_TOOLS_DIR:-$ROOT/tools}
WORK=${REPRO_DIR:-$ROOT/target/repro}
cd "$ROOT"
rm -rf "$WORK"
mkdir -p "$WORK"
for side in a b; do
  echo "== build $side (cache $WORK/cache-$side)" >&2
  # shellcheck disable=SC2086
  "$NODEIMG" build ${NODEIMG_BUILD_ARGS:---all} --cache-dir "$WORK/cache-$side" --out "$WORK/out-$side" --json \
    > "$WORK/report-$side.json"
done
dir=$(jq -r '.dir | split("/") | last' "$WORK/report-a.json")
"$NODEIMG" repro --cache-dir "$WORK/cache-a" "$WORK/out-a/$dir" "$WORK/out-b/$dir"
