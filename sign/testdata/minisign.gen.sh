#!/usr/bin/env bash
# Regenerates the minisign fixtures with Debian's minisign (the oracle; `make setup` installs it).
# Keys are random, so every run gives new files: commit them together.
set -euo pipefail
cd "$(dirname "$0")"
command -v minisign >/dev/null || { echo "minisign is missing: run make setup" >&2; exit 1; }
PASSWORD=nodeimg-test-password
rm -f encrypted.key encrypted.pub unencrypted.key unencrypted.pub message.txt*.minisig
printf '%s\n%s\n' "$PASSWORD" "$PASSWORD" | minisign -G -p encrypted.pub -s encrypted.key >/dev/null
minisign -G -W -p unencrypted.pub -s unencrypted.key >/dev/null
printf 'nodeimg minisign fixture\n' > message.txt
printf '%s\n' "$PASSWORD" | minisign -S -s encrypted.key -m message.txt -x message.txt.minisig \
  -c 'signature from minisign secret key' -t 'name:fixture	version:1.0.0	sha256:x' >/dev/null
minisign -S -W -l -s unencrypted.key -m message.txt -x message.txt.legacy.minisig \
  -c 'legacy signature' -t 'legacy fixture' >/dev/null
minisign -v > minisign.version
