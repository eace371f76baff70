#!/usr/bin/env bash
# Regenerates systemd-measure-phases.json: PCR 11 of the capture UKI as systemd-measure 257
# (trixie, tools/trixie-root) computes it, in the sha1, sha256 and sha384 banks, for every boot
# phase: none (after systemd-stub) and each prefix of enter-initrd:leave-initrd:sysinit:ready.
# The UKI is tools/boot/sb-off/uki.efi, rebuilt by `make setup` (scripts/setup.d/55-boot-inputs.sh)
# byte-identical to the one the sb-off boot booted (its sha256 is in sb-off/inputs.txt); the
# sections go to systemd-measure as objcopy extracts them, as in tests/boot/boot-capture.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
UKI=$ROOT/tools/boot/sb-off/uki.efi
[ -f "$UKI" ] || { echo "$UKI is missing; run 'make setup'" >&2; exit 1; }
want=$(sed -n 's/^sha256 \([0-9a-f]*\) WORK\/uki.efi$/\1/p' "$HERE/sb-off/inputs.txt")
[ "$(sha256sum "$UKI" | cut -d' ' -f1)" = "$want" ] || { echo "$UKI is not the booted UKI ($want)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=()
for s in linux osrel cmdline initrd uname sbat; do
  objcopy -O binary --only-section=".$s" "$UKI" "$tmp/$s"
  args+=("--$s=$tmp/$s")
done
"$ROOT/scripts/in-trixie" /usr/lib/systemd/systemd-measure calculate "${args[@]}" \
  --bank=sha1 --bank=sha256 --bank=sha384 --phase= --phase=enter-initrd \
  --phase=enter-initrd:leave-initrd --phase=enter-initrd:leave-initrd:sysinit \
  --phase=enter-initrd:leave-initrd:sysinit:ready --json=pretty >"$HERE/systemd-measure-phases.json"
