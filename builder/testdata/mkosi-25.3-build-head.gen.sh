#!/usr/bin/env bash
# Regenerates mkosi-25.3-build-head.log: the head of a cold mkosi build's output (new cache dir,
# so the tools tree and its packages are downloaded). Takes ~5 minutes; needs `make setup`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
NO_COLOR=1 "$ROOT/tools/bin/mkosi" --directory "$ROOT/mkosi-profiles" --profile qemu --profile test \
  --output-directory "$cache/output" --cache-directory "$cache/incremental" \
  --package-cache-dir "$cache/packages" --workspace-directory "$cache" --force build 2>&1 \
  | head -n 127 > "$HERE/mkosi-25.3-build-head.log" || true
