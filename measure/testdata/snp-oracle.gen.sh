#!/usr/bin/env bash
# Regenerates snp-oracle.tsv: SEV-SNP launch digests computed by sev-snp-measure 0.0.13 (PyPI,
# installed into .venv by `make setup`) for Debian's OVMF builds (tools/ovmf/, also from
# `make setup`) and for sev-snp-measure's own AmdSev fixture, across vCPU counts, vCPU types and
# signatures, VMM types, guest features, output formats and measured direct boot.
#
# Columns: firmware (tools:PATH under tools/, or testdata:FILE here), its sha256, mode, vcpus,
# cpu (type:NAME | sig:VALUE | fms:FAMILY/MODEL/STEPPING | -), vmm, guest features, kernel,
# initrd (testdata:FILE or -), append (the command line, or -), snp-ovmf-hash (hex or -),
# output format, and the oracle's output. Every row is one sev-snp-measure run.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ORACLE=$ROOT/.venv/bin/sev-snp-measure
[ -x "$ORACLE" ] || { echo "$ORACLE missing: run make setup" >&2; exit 2; }
[ "$("$ORACLE" --version)" = "sev-snp-measure 0.0.13" ] || { echo "want sev-snp-measure 0.0.13" >&2; exit 2; }

# Deterministic stand-ins for a kernel and an initrd: SHA-256 counter streams.
python3 - "$HERE" <<'EOF'
import hashlib, sys, pathlib
def stream(tag, n):
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"{tag}{i}".encode()).digest()
        i += 1
    return out[:n]
d = pathlib.Path(sys.argv[1])
(d / "snp-kernel.bin").write_bytes(stream("nodeimg snp kernel ", 9001))
(d / "snp-initrd.bin").write_bytes(stream("nodeimg snp initrd ", 3333))
EOF

path_of() { # tools:X | testdata:X -> a path
  case $1 in
    tools:*) echo "$ROOT/tools/${1#tools:}" ;;
    testdata:*) echo "$HERE/${1#testdata:}" ;;
  esac
}

out=$HERE/snp-oracle.tsv
tmp=$(mktemp)
printf 'firmware\tsha256\tmode\tvcpus\tcpu\tvmm\tfeatures\tkernel\tinitrd\tappend\tovmf_hash\tformat\texpected\n' >"$tmp"

# row FIRMWARE MODE VCPUS CPU VMM FEATURES KERNEL INITRD APPEND OVMF_HASH FORMAT
row() {
  local fw=$1 mode=$2 vcpus=$3 cpu=$4 vmm=$5 feat=$6 kernel=$7 initrd=$8 append=$9 ohash=${10} format=${11}
  local f args=()
  f=$(path_of "$fw")
  [ -f "$f" ] || { echo "$f missing: run make setup" >&2; exit 2; }
  args=(--mode "$mode" --ovmf "$f")
  if [ "$mode" = snp ]; then
    args+=(--vcpus "$vcpus" --vmm-type "$vmm" --guest-features "$feat" --output-format "$format")
    case $cpu in
      type:*) args+=(--vcpu-type "${cpu#type:}") ;;
      sig:*) args+=(--vcpu-sig "${cpu#sig:}") ;;
      fms:*) IFS=/ read -r fa mo st <<<"${cpu#fms:}"
             args+=(--vcpu-family "$fa" --vcpu-model "$mo" --vcpu-stepping "$st") ;;
    esac
    [ "$kernel" = - ] || args+=(--kernel "$(path_of "$kernel")")
    [ "$initrd" = - ] || args+=(--initrd "$(path_of "$initrd")")
    [ "$append" = - ] || args+=(--append "$append")
    [ "$ohash" = - ] || args+=(--snp-ovmf-hash "$ohash")
  fi
  local got
  got=$("$ORACLE" "${args[@]}")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$fw" "$(sha256sum "$f" | cut -d' ' -f1)" \
    "$mode" "$vcpus" "$cpu" "$vmm" "$feat" "$kernel" "$initrd" "$append" "$ohash" "$format" "$got" >>"$tmp"
}

BOOKWORM=tools:ovmf/2022.11-6+deb12u2/usr/share/ovmf/OVMF.fd
TRIXIE=tools:ovmf/2025.02-8+deb13u1/usr/share/ovmf/OVMF.fd
AMDSEV=testdata:ovmf_AmdSev_suffix.bin
K=testdata:snp-kernel.bin
I=testdata:snp-initrd.bin
CMDLINE="console=ttyS0 root=/dev/vda2 ro quiet"

for fw in "$BOOKWORM" "$TRIXIE" "$AMDSEV"; do
  row "$fw" snp:ovmf-hash - - - - - - - - hex
  for n in 1 2 3 4 8 16 32 64; do
    row "$fw" snp "$n" type:EPYC-Milan QEMU 0x1 - - - - hex
  done
  for feat in 0x1 0x21 0x3 0x41; do
    row "$fw" snp 4 type:EPYC-Genoa QEMU "$feat" - - - - hex
  done
  for vmm in ec2 gce; do
    for n in 1 4 64; do
      for feat in 0x1 0x21; do
        row "$fw" snp "$n" - "$vmm" "$feat" - - - - hex
      done
    done
  done
  row "$fw" snp 2 type:EPYC-Rome ec2 0x1 - - - - hex
  for cpu in sig:0x800f12 sig:0xa00f11 sig:10489617 fms:25/17/0 fms:26/0/0 fms:6/143/8; do
    row "$fw" snp 2 "$cpu" QEMU 0x1 - - - - hex
  done
  row "$fw" snp 8 type:EPYC-v4 QEMU 0x21 - - - - base64
  ohash=$("$ORACLE" --mode snp:ovmf-hash --ovmf "$(path_of "$fw")")
  row "$fw" snp 4 type:EPYC-Milan QEMU 0x1 - - - "$ohash" hex
done

# Every vCPU type sev-snp-measure knows.
for t in EPYC EPYC-v1 EPYC-v2 EPYC-IBPB EPYC-v3 EPYC-v4 EPYC-Rome EPYC-Rome-v1 EPYC-Rome-v2 \
  EPYC-Rome-v3 EPYC-Milan EPYC-Milan-v1 EPYC-Milan-v2 EPYC-Genoa EPYC-Genoa-v1 EPYC-Turin; do
  row "$TRIXIE" snp 2 "type:$t" QEMU 0x1 - - - - hex
done

# Measured direct boot: only the AmdSev build has the SNP_KERNEL_HASHES page.
for vmm in QEMU ec2 gce; do
  for n in 1 4; do
    row "$AMDSEV" snp "$n" type:EPYC-Milan "$vmm" 0x1 "$K" - - - hex
    row "$AMDSEV" snp "$n" type:EPYC-Milan "$vmm" 0x1 "$K" "$I" - - hex
    row "$AMDSEV" snp "$n" type:EPYC-Milan "$vmm" 0x21 "$K" - "$CMDLINE" - hex
    row "$AMDSEV" snp "$n" type:EPYC-Milan "$vmm" 0x21 "$K" "$I" "$CMDLINE" - hex
  done
done
row "$AMDSEV" snp 2 type:EPYC-Genoa QEMU 0x1 "$K" "$I" "$CMDLINE" - base64

mv "$tmp" "$out"
echo "wrote $out ($(($(wc -l <"$out") - 1)) rows)" >&2
