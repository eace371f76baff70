#!/usr/bin/env bash
# Boots a small UKI under QEMU + OVMF + swtpm and captures what the boot chain measured: every
# PCR of the vTPM's banks (sha256 and sha384, or those --banks allocates) and the firmware's
# binary event log, read by the booted kernel from /sys. This is the ground truth the boot-chain model (measure) is judged against.
#
#   tests/boot/boot-capture.sh --out DIR [--secure-boot] [--timeout SECONDS] [--accel tcg|kvm] [--keep-work]
#   tests/boot/boot-capture.sh --out DIR [--secure-boot] --inputs-only
#   … [--extras] [--banks sha1,sha256,sha384] [--ovmf VERSION]
#
# The chain: OVMF (Debian trixie's ovmf 2025.02, pinned in builder/src/toolscache.rs, unpacked by nodeimg setup) → systemd-stub 257
# (trixie's systemd-boot-efi) → Linux EFI stub (trixie's cloud kernel; both pinned in
# builder/src/toolscache.rs, unpacked to tools/uki/ by nodeimg setup --test-inputs) → a busybox initrd whose /init (tests/boot/init) prints the PCRs and the
# log to a virtio-serial port and powers off. The UKI is built by trixie's ukify 257 with a fixed
# .cmdline and .osrel, so the same inputs give the same UKI byte for byte.
#
# --secure-boot boots OVMF_CODE_4M.secboot.fd (SMM) with OVMF_VARS_4M.snakeoil.fd, whose PK, KEK
# and db hold Debian's snakeoil test certificate; the UKI is signed with its (public) private key.
#
# DIR receives: eventlog.bin (binary_bios_measurements), pcrs.json ({"sha256": {"0": hex, …},
# "sha384": …}), inputs.txt (what was booted: versions, sha256 of each input, the QEMU command
# line), initramfs.txt (the files the booted initramfs holds, with size and sha256: this
# initrd's /init plus what systemd-stub appended), systemd-measure.txt (PCR 11 as systemd-measure
# 257 computes it from the UKI's sections: an independent oracle), console.log (the serial
# console), uki.efi (the booted UKI), gpt.bin (the disk's first MiB: protective MBR, GPT header
# and partition entries, what the firmware's GPT event covers). Needs `make setup`.
#
# --ovmf VERSION boots another of the pinned Debian OVMF builds in tools/ovmf/ (nodeimg setup, scripts/setup.d/31-tools.sh), e.g.
# bookworm's 2022.11-6+deb12u2, whose OVMF_CODE_4M.fd is built *with* Secure Boot support: with
# its empty OVMF_VARS_4M.fd the firmware is in setup mode (SecureBoot = 0 is measured into PCR 7).
#
# --extras also puts files next to the UKI on the ESP, which systemd-stub packs into cpio
# archives, appends to the initrd and measures: credentials (EFI/BOOT/BOOTX64.EFI.extra.d/*.cred,
# PCR 12, and loader/credentials/*.cred, PCR 12), a system extension (*.raw, PCR 13) and a
# configuration extension (*.confext.raw, PCR 12); a dot-file the stub must skip. DIR then also
# receives them as extra.d/ and loader-credentials/.
#
# --inputs-only stops before the boot: DIR receives uki.efi and gpt.bin only (the UKI is
# byte-identical to the booted one without --secure-boot; signed, it differs in the signature's
# signing time, not in its Authenticode digest). The boot-chain model's fixture test predicts
# from these (scripts/setup.d/55-boot-inputs.sh builds them into tools/boot/).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/lib/vm.sh"
TOOLS=$ROOT/tools
OVMF_VERSION=2025.02-8+deb13u1
KERNEL=$TOOLS/uki/vmlinuz.signed
STUB=$TOOLS/uki/linuxx64.efi.stub
BUSYBOX=/bin/busybox
CMDLINE="console=ttyS0 panic=-1 loglevel=4"
OS_RELEASE='ID=nodeimg-boot-capture
NAME="nodeimg boot capture"
VERSION_ID=1'

out= secure_boot=0 timeout=600 keep_work=0 inputs_only=0 extras=0 accel=${BOOT_ACCEL:-tcg} banks=sha256,sha384
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --secure-boot) secure_boot=1; shift ;;
    --timeout) timeout=$2; shift 2 ;;
    --keep-work) keep_work=1; shift ;;
    --inputs-only) inputs_only=1; shift ;;
    --extras) extras=1; shift ;;
    --accel) accel=$2; shift 2 ;;
    --banks) banks=$2; shift 2 ;;
    --ovmf) OVMF_VERSION=$2; shift 2 ;;
    *) echo "usage: $0 --out DIR [--secure-boot] [--timeout SECONDS] [--accel tcg|kvm] [--keep-work]" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "usage: $0 --out DIR [--secure-boot] [--timeout SECONDS] [--accel tcg|kvm] [--keep-work]" >&2; exit 2; }

OVMF_DIR=$TOOLS/ovmf/$OVMF_VERSION/usr/share/OVMF
die() { echo "boot-capture: $*" >&2; exit 1; }
relpath() { echo "$1" | sed "s|$work/|WORK/|g; s|$ROOT/||g"; }
need() { [ -e "$1" ] || die "$1 is missing; run 'make setup'"; }
needed=(cpio mformat mcopy sfdisk sbsign openssl objcopy)
[ "$inputs_only" = 1 ] || needed+=(qemu-system-x86_64 swtpm swtpm_setup jq base64)
for t in "${needed[@]}"; do
  command -v "$t" >/dev/null || die "$t is not installed; run 'make setup'"
done
need "$KERNEL"; need "$STUB"; need "$BUSYBOX"; need "$OVMF_DIR/OVMF_CODE_4M.fd"
need "$ROOT/scripts/in-trixie"

work=$(mktemp -d "${TMPDIR:-/tmp}/boot-capture.XXXXXX")
swtpm_pid= qemu_pid=
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  [ -n "$swtpm_pid" ] && kill "$swtpm_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$keep_work" = 1 ]; then echo "boot-capture: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The initrd: busybox and /init, as a reproducible newc cpio (fixed owner, mode, mtime, order).
mkdir -p "$work/initrd/bin"
cp "$BUSYBOX" "$work/initrd/bin/busybox"
cp "$ROOT/tests/boot/init" "$work/initrd/init"
chmod 0755 "$work/initrd/init" "$work/initrd/bin/busybox" "$work/initrd/bin"
find "$work/initrd" -exec touch -h -d @0 {} +
(cd "$work/initrd" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) \
  | gzip -n -9 > "$work/initrd.cpio.gz"

# 2. The UKI, by ukify 257 (trixie), with our own .osrel so that trixie point releases do not
# change it. Signed with the snakeoil key for the Secure Boot run.
printf '%s\n' "$OS_RELEASE" > "$work/os-release"
"$ROOT/scripts/in-trixie" ukify build --linux "$KERNEL" --initrd "$work/initrd.cpio.gz" \
  --cmdline "$CMDLINE" --os-release "@$work/os-release" --stub "$STUB" \
  --output "$work/uki.efi" >"$work/ukify.log" 2>&1 || { cat "$work/ukify.log" >&2; die "ukify build failed"; }
# systemd-measure 257 (trixie), the oracle for PCR 11: what the stub's section measurements
# extend it to, with no boot phase yet (nothing runs systemd-pcrphase in this initrd).
mkdir -p "$work/sections"
measure_args=()
for s in linux osrel cmdline initrd uname sbat; do
  objcopy -O binary --only-section=".$s" "$work/uki.efi" "$work/sections/$s"
  measure_args+=("--$s=$work/sections/$s")
done
for b in ${banks//,/ }; do measure_args+=("--bank=$b"); done
"$ROOT/scripts/in-trixie" /usr/lib/systemd/systemd-measure calculate "${measure_args[@]}" \
  --phase= >"$work/systemd-measure.txt" 2>&1 \
  || { cat "$work/systemd-measure.txt" >&2; die "systemd-measure failed"; }
if [ "$secure_boot" = 1 ]; then
  code=$OVMF_DIR/OVMF_CODE_4M.secboot.fd vars=$OVMF_DIR/OVMF_VARS_4M.snakeoil.fd
  need "$code"; need "$vars"; need "$OVMF_DIR/../ovmf/PkKek-1-snakeoil.key"
  openssl rsa -in "$OVMF_DIR/../ovmf/PkKek-1-snakeoil.key" -passin pass:snakeoil \
    -out "$work/snakeoil.key" 2>/dev/null || die "cannot decrypt the snakeoil key"
  sbsign --key "$work/snakeoil.key" --cert "$OVMF_DIR/../ovmf/PkKek-1-snakeoil.pem" \
    --output "$work/uki.signed.efi" "$work/uki.efi" 2>"$work/sbsign.log" \
    || { cat "$work/sbsign.log" >&2; die "sbsign failed"; }
  mv "$work/uki.signed.efi" "$work/uki.efi"
  machine=q35,smm=on
  sb_args=(-global driver=cfi.pflash01,property=secure,value=on)
else
  code=$OVMF_DIR/OVMF_CODE_4M.fd vars=$OVMF_DIR/OVMF_VARS_4M.fd
  machine=q35
  sb_args=()
fi
cp "$vars" "$work/vars.fd"

# 3. The disk: GPT with fixed GUIDs and one FAT ESP holding the UKI at the removable-media path
# EFI/BOOT/BOOTX64.EFI, which OVMF boots when no boot entry names anything else.
truncate -s 64M "$work/disk.img"
sfdisk -q "$work/disk.img" <<'EOF'
label: gpt
label-id: 6E6F6465-696D-6700-0000-000000000001
first-lba: 2048
start=2048, size=126976, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=6E6F6465-696D-6700-0000-000000000002, name="esp"
EOF
mformat -i "$work/disk.img@@1M" -F -N 6e6f6465 -v ESP ::
mmd -i "$work/disk.img@@1M" ::/EFI ::/EFI/BOOT
mcopy -i "$work/disk.img@@1M" "$work/uki.efi" ::/EFI/BOOT/BOOTX64.EFI
head -c 1M "$work/disk.img" > "$work/gpt.bin"
if [ "$extras" = 1 ]; then
  x=$work/extras
  mkdir -p "$x/extra.d" "$x/loader-credentials"
  printf 'credential a\n' > "$x/extra.d/a.cred"
  printf 'credential C\n' > "$x/extra.d/C.CRED"
  printf 'hidden: the stub skips dot-files\n' > "$x/extra.d/.hidden.cred"
  printf 'not really a system extension image\n' > "$x/extra.d/tools.raw"
  printf 'not really a configuration extension image\n' > "$x/extra.d/etc.confext.raw"
  printf 'global credential\n' > "$x/loader-credentials/global.cred"
  mmd -i "$work/disk.img@@1M" ::/EFI/BOOT/BOOTX64.EFI.extra.d ::/loader ::/loader/credentials
  mcopy -i "$work/disk.img@@1M" "$x"/extra.d/* "$x/extra.d/.hidden.cred" ::/EFI/BOOT/BOOTX64.EFI.extra.d/
  mcopy -i "$work/disk.img@@1M" "$x"/loader-credentials/* ::/loader/credentials/
fi
copy_extras() {
  [ "$extras" = 1 ] || return 0
  rm -rf "$out/extra.d" "$out/loader-credentials"
  cp -a "$work/extras/extra.d" "$work/extras/loader-credentials" "$out/"
}
if [ "$inputs_only" = 1 ]; then
  mkdir -p "$out"
  cp "$work/uki.efi" "$work/gpt.bin" "$out/"
  copy_extras
  echo "boot-capture: inputs in $out (no boot)" >&2
  exit 0
fi

# 4. The vTPM: a fresh swtpm with only the banks asked for allocated (sha256 and sha384).
vm_swtpm "$banks"

# 5. The boot. TCG by default: on hosts where /dev/kvm exists but fails (nested virtualisation)
# KVM stops OVMF with "KVM internal error" instead of falling back; --accel kvm (or
# BOOT_ACCEL=kvm) where it works. The accelerator does not change what is measured.
: >"$work/capture.txt"
qemu=(qemu-system-x86_64 -machine "$machine" -accel "$accel" -smp 1 -m 1024
  -nodefaults -display none -no-reboot "${sb_args[@]}"
  -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
  -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd"
  -chardev "socket,id=chrtpm,path=$work/swtpm.sock"
  -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0
  -drive "if=none,id=esp,format=raw,file=$work/disk.img" -device virtio-blk-pci,drive=esp
  -device virtio-serial-pci,id=vser
  -chardev "file,id=capture,path=$work/capture.txt"
  -device virtserialport,bus=vser.0,chardev=capture,name=nodeimg.capture
  -serial "file:$work/console.log")
vm_run "$timeout" "${qemu[@]}"

# 6. The capture: markers, PCR lines, base64 event log.
cap=$work/capture.txt
if ! grep -q '^nodeimg-capture end' "$cap"; then
  tail -c 4000 "$work/console.log" >&2 || true
  die "the guest powered off without a complete capture (console tail above)"
fi
mkdir -p "$out"
vm_block "$cap" eventlog > "$out/eventlog.bin"
vm_pcrs "$cap" > "$out/pcrs.json"
sed -n 's/^initramfs //p' "$cap" > "$out/initramfs.txt"
cp "$work/console.log" "$out/console.log"
grep -v '^#' "$work/systemd-measure.txt" > "$out/systemd-measure.txt"
cp "$work/uki.efi" "$out/uki.efi"
cp "$work/gpt.bin" "$out/gpt.bin"
copy_extras
{
  echo "secure-boot $secure_boot"
  echo "extras $extras"
  echo "banks $banks"
  echo "guest-kernel $(sed -n 's/^kernel //p' "$cap")"
  echo "guest-cmdline $(sed -n 's/^cmdline //p' "$cap")"
  echo "qemu $(qemu-system-x86_64 --version | head -1)"
  echo "swtpm $(swtpm --version | head -1)"
  echo "ovmf $OVMF_VERSION"
  echo "stub $("$ROOT/scripts/in-trixie" dpkg-query -W -f='${Package} ${Version}\n' systemd-boot-efi systemd-ukify | paste -sd' ')"
  echo "busybox $(dpkg-query -W -f='${Package} ${Version}' busybox-static)"
  for f in "$code" "$vars" "$KERNEL" "$STUB" "$BUSYBOX" "$ROOT/tests/boot/init" "$work/initrd.cpio.gz" "$work/uki.efi"; do
    echo "sha256 $(sha256sum "$f" | cut -d' ' -f1) $(relpath "$f")"
  done
  if [ "$extras" = 1 ]; then
    for f in "$work"/extras/extra.d/* "$work"/extras/extra.d/.hidden.cred "$work"/extras/loader-credentials/*; do
      echo "sha256 $(sha256sum "$f" | cut -d' ' -f1) $(relpath "$f")"
    done
  fi
  echo "ukify-cmdline $CMDLINE"
  echo "qemu-cmdline $(relpath "${qemu[*]}")"
} > "$out/inputs.txt"
echo "boot-capture: ok: $(jq -r '.sha256 | length' "$out/pcrs.json") sha256 PCRs, $(stat -c %s "$out/eventlog.bin")-byte event log in $out" >&2
