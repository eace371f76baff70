#!/usr/bin/env bash
# Regenerates the real-boot fixtures: boots the capture UKI under QEMU + OVMF + swtpm with
# tests/boot/boot-capture.sh (the harness; see its header and README.md here), Secure Boot off
# and on, Secure Boot off with credentials and extensions next to the UKI (extras), and Secure
# Boot off with a vTPM that also allocates the sha1 bank (all-banks), and bookworm's firmware,
# built with Secure Boot support, with an empty variable store (sb-setup: setup mode), and keeps what the booted
# kernel read from the TPM: the firmware's event log and the PCR banks (sha256 + sha384; all-banks
# also sha1). `boot.gen.sh MODE…` regenerates only those modes. tpm2_eventlog (tpm2-tools) renders each log as an independent parse.
# The boot is deterministic: two runs with the same inputs give byte-identical logs.
# Needs `make setup`. Takes about a minute under TCG.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
command -v tpm2_eventlog >/dev/null || { echo "tpm2_eventlog is missing; run 'make setup'" >&2; exit 1; }
# Of tpm2_eventlog's YAML, keep what the tests compare: event number, PCR, type, digests, PCRs.
keep='^(- EventNum:|  PCRIndex:|  EventType:|  - AlgorithmId:|    Digest:|  Digest:|pcrs:|  sha[0-9]+:|    [0-9]+ +:)'
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(sb-off sb-on sb-setup extras all-banks)
for mode in "${modes[@]}"; do
  case $mode in
    sb-off) args=() ;;
    sb-on) args=(--secure-boot) ;;
    extras) args=(--extras) ;;
    all-banks) args=(--banks sha1,sha256,sha384) ;;
    sb-setup) args=(--ovmf 2022.11-6+deb12u2) ;;
    *) echo "unknown mode $mode (sb-off, sb-on, sb-setup, extras, all-banks)" >&2; exit 2 ;;
  esac
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$ROOT/tests/boot/boot-capture.sh" --out "$tmp" "${args[@]}"
  mkdir -p "$HERE/$mode"
  cp "$tmp/eventlog.bin" "$tmp/pcrs.json" "$tmp/inputs.txt" "$tmp/initramfs.txt" \
    "$tmp/systemd-measure.txt" "$HERE/$mode/"
  tpm2_eventlog "$HERE/$mode/eventlog.bin" 2>/dev/null | grep -E "$keep" > "$HERE/$mode/eventlog.tpm2_eventlog.yaml"
  rm -rf "$tmp"
  trap - EXIT
done
# The certificate enrolled as PK, KEK and db in OVMF_VARS_4M.snakeoil.fd, which signs the UKI of
# the Secure Boot run (Debian's public test key; its private key ships in the ovmf package).
cp "$ROOT/tools/ovmf/2025.02-8+deb13u1/usr/share/ovmf/PkKek-1-snakeoil.pem" "$HERE/"
