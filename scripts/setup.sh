#!/usr/bin/env bash
# `make setup`: installs, idempotently, everything nodeimg's build and tests need on a fresh
# Debian 12 machine. Each step lives in scripts/setup.d/NN-*.sh and is sourced in order with the
# helpers below; a step does nothing when what it provides is already there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=$ROOT/tools
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

log() { printf '+ %s\n' "$*" >&2; }

# apt_install PKG...: installs the host packages (bookworm unless pinned otherwise) not yet there.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

mkdir -p "$TOOLS"
for step in "$ROOT"/scripts/setup.d/[0-9]*.sh; do
  # shellcheck source=/dev/null
  . "$step"
done
echo "setup: ok" >&2
