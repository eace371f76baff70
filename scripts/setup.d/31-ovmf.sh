# Debian's OVMF builds, unpacked under tools/ovmf/<version>/ (never installed on the host): the
# firmware that measure's SEV-SNP and TDX tests and `make bench` compute launch digests for.
# bookworm 2022.11 ships a 2 MiB OVMF.fd, trixie 2025.02 a 4 MiB one; both are the generic
# OvmfPkgX64 build, whose reset vector carries the SEV metadata and the TDX (TDVF) metadata.
# Pinned by version and by the .deb's SHA-256, so a changed archive fails loudly.
OVMF_DEBS=(
  "2022.11-6+deb12u2 e73d3d1a8799f7f6fc16b73501d913edcdd86237556fbff30693e747e6dc262e"
  "2025.02-8+deb13u1 78e0d54df11fc77406cb7a0bc9a39e5bca6d1cbe06556b91d9a73491c52decdf"
)
for entry in "${OVMF_DEBS[@]}"; do
  read -r ver sha <<<"$entry"
  unpack_pinned_deb "ovmf=$ver" "$sha" "$TOOLS/ovmf/$ver" \
    "superseded in the archive? Pin the current version and its sha256 here, then regenerate measure/testdata/*.tsv with its *.gen.sh scripts"
done
