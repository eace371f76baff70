#!/usr/bin/env bash
# Regenerates debian.json (and inputs/sbat-kernel.efi) from the oracles: trixie's ukify 257 builds
# UKIs from the pinned Debian stub and kernel (tools/uki, which `make setup` fills with
# `nodeimg setup --test-inputs` from the pins in builder/src/toolscache.rs), pefile reads their section tables, systemd-measure
# computes their PCR 11, and LIEF (cross-checked with pesign) their Authenticode digests.
# Needs `make setup`.
set -euo pipefail
cd "$(dirname "$0")"
exec python3 gen_debian.py
