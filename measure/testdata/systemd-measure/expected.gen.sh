#!/usr/bin/env bash
# Regenerates expected.json: what systemd-measure 257 (trixie, tools/trixie-root; `make setup`)
# computes for systemd's TEST-70 vectors, every bank, no phase and the phase "foo".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
"$ROOT/scripts/in-trixie" /usr/lib/systemd/systemd-measure calculate --linux="$HERE/tpmdata1" \
  --initrd="$HERE/tpmdata2" --bank=sha1 --bank=sha256 --bank=sha384 --phase= --phase=foo --json=pretty >"$HERE/expected.json"
