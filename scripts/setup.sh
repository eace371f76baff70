#!/usr/bin/env bash
# `make setup`: installs, idempotently, everything nodeimg's build and tests need on a fresh
# Debian 12 machine. Each step lives in scripts/setup.d/NN-*.sh and is sourced in order with the
# helpers of scripts/setup-lib.sh; a step does nothing when what it provides is already there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=$ROOT/tools
export DEBIAN_FRONTEND=noninteractive

# shellcheck source=scripts/setup-lib.sh
. "$ROOT/scripts/setup-lib.sh"

mkdir -p "$TOOLS"
for step in "$ROOT"/scripts/setup.d/[0-9]*.sh; do
  # shellcheck source=/dev/null
  . "$step"
done
echo "setup: ok" >&2
