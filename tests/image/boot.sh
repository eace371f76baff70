#!/usr/bin/env bash
# Boots a nodeimg disk image built with the `test` overlay under QEMU + OVMF + swtpm and captures
# what the boot measured, as the image's nodeimg-capture.service wrote it to the virtio-serial
# port "nodeimg.capture" before powering off:
#
#   tests/image/boot.sh --disk DISK --out DIR [--timeout SECONDS]
#
# DIR receives: pcrs.json ({"sha256": {"0": hex, …}, "sha384": …}), eventlog.bin (the firmware's
# binary_bios_measurements), measure.log (systemd's userspace TPM measurement log,
# /run/log/systemd/tpm2-measure.log, JSON-SEQ), capture.txt (the raw capture: kernel, command
# line, PCR 11 phase), console.log (the serial console), inputs.txt (firmware, QEMU and swtpm
# versions, sha256 of the firmware and the disk). Needs `make setup` (qemu-system-x86, swtpm,
# OVMF unpacked by nodeimg setup, scripts/setup.d/31-tools.sh).
#
# KVM is used when /dev/kvm works, TCG otherwise (-smp 1: a TCG boot to power-off takes 80–115 s
# on the 2-core CI machine).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/lib/vm.sh"
OVMF_VERSION=2025.02-8+deb13u1
OVMF_DIR=$ROOT/tools/ovmf/$OVMF_VERSION/usr/share/OVMF
usage() { echo "usage: $0 --disk DISK --out DIR [--timeout SECONDS]" >&2; exit 2; }
disk= out= timeout=900
while [ $# -gt 0 ]; do
  case $1 in
    --disk) disk=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$disk" ] && [ -n "$out" ] || usage
die() { echo "boot-image: $*" >&2; exit 1; }
for t in qemu-system-x86_64 swtpm swtpm_setup jq base64; do
  command -v "$t" >/dev/null || die "$t is not installed; run 'make setup'"
done
[ -f "$disk" ] || die "$disk does not exist"
code=$OVMF_DIR/OVMF_CODE_4M.fd vars=$OVMF_DIR/OVMF_VARS_4M.fd
[ -f "$code" ] || die "$code is missing; run 'make setup'"

work=$(mktemp -d "${TMPDIR:-/tmp}/boot-image.XXXXXX")
swtpm_pid= qemu_pid=
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  [ -n "$swtpm_pid" ] && kill "$swtpm_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "$vars" "$work/vars.fd"

# A fresh vTPM with the sha256 and sha384 banks.
vm_swtpm sha256,sha384

# KVM only if it really runs a guest: a boot sector that executes an x87 instruction (where a
# broken nested KVM fails with "emulation failure") and then exits through isa-debug-exit
# (status 3). Otherwise TCG.
accel=(-accel tcg)
if [ -w /dev/kvm ]; then
  { printf '\x9b\xdb\xe3\xb0\x01\xe6\xf4\xf4\xeb\xfd'; head -c 500 /dev/zero; printf '\x55\xaa'; } > "$work/probe.img"
  probe=0
  timeout 20 qemu-system-x86_64 -accel kvm -machine pc -display none -nodefaults -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -drive format=raw,file="$work/probe.img" \
    >/dev/null 2>&1 || probe=$?
  [ "$probe" = 3 ] && accel=(-accel kvm)
fi
: >"$work/capture.txt"
qemu=(qemu-system-x86_64 -machine q35 "${accel[@]}" -smp 1 -m 2048 -nodefaults -display none -no-reboot
  -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
  -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd"
  -chardev "socket,id=chrtpm,path=$work/swtpm.sock"
  -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0
  -drive "if=none,id=disk,format=raw,snapshot=on,file=$disk" -device virtio-blk-pci,drive=disk
  -device virtio-serial-pci,id=vser
  -chardev "file,id=capture,path=$work/capture.txt"
  -device virtserialport,bus=vser.0,chardev=capture,name=nodeimg.capture
  -serial "file:$work/console.log")
start=$SECONDS
vm_run "$timeout" "${qemu[@]}"
elapsed=$((SECONDS - start))

cap=$work/capture.txt
mkdir -p "$out"
cp "$work/console.log" "$out/console.log"
if ! grep -q '^nodeimg-capture end' "$cap"; then
  tail -c 4000 "$work/console.log" >&2 || true
  die "the guest powered off without a complete capture (console tail above; full console in $out/console.log)"
fi
cp "$cap" "$out/capture.txt"
vm_block "$cap" eventlog > "$out/eventlog.bin"
vm_block "$cap" measurelog > "$out/measure.log"
vm_pcrs "$cap" > "$out/pcrs.json"
{
  echo "accel ${accel[1]}"
  echo "boot-seconds $elapsed"
  echo "qemu $(qemu-system-x86_64 --version | head -1)"
  echo "swtpm $(swtpm --version | head -1)"
  echo "ovmf $OVMF_VERSION"
  echo "sha256 $(sha256sum "$code" | cut -d' ' -f1) OVMF_CODE_4M.fd"
  echo "sha256 $(sha256sum "$vars" | cut -d' ' -f1) OVMF_VARS_4M.fd"
  echo "sha256 $(sha256sum "$disk" | cut -d' ' -f1) $(basename "$disk")"
  echo "qemu-cmdline ${qemu[*]//$work\//}"
} > "$out/inputs.txt"
echo "boot-image: ok (${accel[1]}, ${elapsed}s): $(jq -r '.sha256 | length' "$out/pcrs.json") sha256 PCRs, $(stat -c %s "$out/eventlog.bin")-byte event log, $(stat -c %s "$out/measure.log")-byte userspace log in $out" >&2
