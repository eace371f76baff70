#!/usr/bin/env bash
# Boots a nodeimg disk image under QEMU (TCG) + Debian's OVMF + swtpm with user networking, the
# guest's TCP port 80 forwarded to 127.0.0.1:PORT, and keeps it running until killed or until
# TIMEOUT seconds pass (so it always stops by itself). The console goes to WORK/console.log.
# Used by tests/web_node_e2e.rs, which talks HTTP to the guest and then kills this process group.
#
#   tests/image/serve.sh DISK PORT WORK [TIMEOUT]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/vm.sh
. "$ROOT/tests/lib/vm.sh"
[ $# -ge 3 ] || { echo "usage: $0 DISK PORT WORK [TIMEOUT]" >&2; exit 2; }
disk=$1 port=$2 work=$3 timeout=${4:-900}
die() { echo "serve: $*" >&2; exit 1; }
for t in qemu-system-x86_64 swtpm swtpm_setup timeout; do
  command -v "$t" >/dev/null || die "$t is not installed; run 'make setup'"
done
OVMF_DIR=$ROOT/tools/ovmf/2025.02-8+deb13u1/usr/share/OVMF
code=$OVMF_DIR/OVMF_CODE_4M.fd vars=$OVMF_DIR/OVMF_VARS_4M.fd
[ -f "$code" ] || die "$code is missing; run 'make setup'"
[ -f "$disk" ] || die "$disk does not exist"
mkdir -p "$work"
swtpm_pid=
trap '[ -n "$swtpm_pid" ] && kill "$swtpm_pid" 2>/dev/null; true' EXIT
trap 'exit 143' INT TERM
cp "$vars" "$work/vars.fd"
vm_swtpm sha256,sha384
# --foreground: timeout stays in this process group, so killing the group stops QEMU at once.
timeout --foreground "$timeout" qemu-system-x86_64 -machine q35 -accel tcg -smp 1 -m 2048 -nodefaults -display none \
  -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code" \
  -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd" \
  -chardev "socket,id=chrtpm,path=$work/swtpm.sock" \
  -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
  -drive "if=none,id=disk,format=raw,snapshot=on,file=$disk" -device virtio-blk-pci,drive=disk \
  -netdev "user,id=net0,restrict=off,hostfwd=tcp:127.0.0.1:$port-:80" -device virtio-net-pci,netdev=net0 \
  -serial "file:$work/console.log" 2>"$work/qemu.log"
