# The real-boot harness (tests/boot/boot-capture.sh) and the TPM tests.
#
# Host packages (bookworm): swtpm + swtpm-tools (the vTPM), tpm2-tools (tpm2_eventlog,
# tpm2_pcrread, tpm2_pcrextend: oracles; nodeimg itself speaks to TPMs without the TSS),
# busybox-static + cpio (the capture initrd), mtools + dosfstools + fdisk
# (the ESP disk image), sbsigntool + openssl (sign the UKI for the Secure Boot run), binutils
# (objcopy: the UKI's sections for systemd-measure). QEMU comes from bookworm-backports (10.0,
# the same release as the qemu-utils the image build uses).
#
# The boot's inputs are pinned by sha256 in the tools cache's table (builder/src/toolscache.rs),
# which 31-tools.sh fetches: the firmware (tools/ovmf/2025.02-8+deb13u1/), the kernel and
# systemd-stub (`--test-inputs`: tools/uki/).
apt_install swtpm swtpm-tools tpm2-tools busybox-static cpio mtools \
  dosfstools fdisk sbsigntool openssl binutils
if ! dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null | grep -q bpo12; then
  log "apt-get install -t bookworm-backports qemu-system-x86"
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
fi
