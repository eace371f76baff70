#!/usr/bin/env bash
# Regenerates the tpm2_eventlog renderings of the published event logs here (see README.md for
# where the logs and expected.json come from): tpm2_eventlog (Debian tpm2-tools) is an
# independent parser, and its YAML gives event count, PCR index, type and digests of each event
# plus the PCR values it replays to; only those lines are kept (the decoded event data is left
# out to keep the fixtures small). tpm2_eventlog cannot read the CCEL, which has none; the
# Fedora log comes with tpm2-tools' own rendering (event-sd-boot-fedora37.bin.yaml).
# Needs `make setup` (tpm2-tools).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
command -v tpm2_eventlog >/dev/null || { echo "tpm2_eventlog is missing; run 'make setup'" >&2; exit 1; }
tpm2_eventlog --version >&2
keep='^(- EventNum:|  PCRIndex:|  EventType:|  - AlgorithmId:|    Digest:|  Digest:|pcrs:|  sha[0-9]+:|    [0-9]+ +:)'
for log in ubuntu-2104-no-secure-boot rhel8-uefi ubuntu-1804-amd-sev; do
  tpm2_eventlog "$HERE/$log.bin" 2>/dev/null | grep -E "$keep" > "$HERE/$log.tpm2_eventlog.yaml"
done
