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

# unpack_pinned_deb PKG=VERSION SHA256 DEST HINT: downloads that .deb (apt-get download, never
# installed), checks its SHA-256 and unpacks it into DEST, which then records the SHA-256 in
# DEST/.nodeimg-sha256; does nothing when DEST already holds that SHA-256. HINT ends the error
# when the archive no longer has that version.
unpack_pinned_deb() {
  local pkgver=$1 sha=$2 dest=$3 hint=$4 tmp deb got
  [ -f "$dest/.nodeimg-sha256" ] && [ "$(cat "$dest/.nodeimg-sha256")" = "$sha" ] && return 0
  log "apt-get download $pkgver -> $dest"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkgver" 2>/dev/null); then
    echo "setup: cannot download $pkgver ($hint)" >&2
    exit 1
  fi
  deb=$(echo "$tmp"/*.deb)
  got=$(sha256sum "$deb" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "setup: $deb has sha256 $got, expected $sha" >&2
    exit 1
  fi
  rm -rf "$dest"
  mkdir -p "$dest"
  dpkg-deb -x "$deb" "$dest"
  echo "$sha" >"$dest/.nodeimg-sha256"
  rm -rf "$tmp"
}

mkdir -p "$TOOLS"
for step in "$ROOT"/scripts/setup.d/[0-9]*.sh; do
  # shellcheck source=/dev/null
  . "$step"
done
echo "setup: ok" >&2
