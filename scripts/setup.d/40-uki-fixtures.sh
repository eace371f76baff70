# The uki crate's oracles and test inputs.
#
# * Real Debian binaries, pinned by version and by the sha256 of their .deb (the tests' committed
#   golden values in uki/testdata/ were computed from exactly these): trixie's systemd-stub and
#   the cloud kernel, both as Debian signed it and unsigned. They are too big to commit; they are
#   unpacked under tools/uki/ (gitignored).
# * pesign (Debian) for uki/testdata/*.gen.sh, which regenerate the golden values; LIEF, the
#   other Authenticode oracle, is in .venv (30-python-venv.sh).
# * ukify, systemd-measure and python3-pefile come with tools/trixie-root (20-trixie-root.sh).
UKI_DIR=$TOOLS/uki
UKI_DEBS=(
  # package=version sha256-of-the-.deb file-inside-the-package name-under-tools/uki
  "systemd-boot-efi=257.13-1~deb13u1 390ecdcef9bbb753f51bb6d8f696bdae2f1dbedde7239c49ccb2512f137a8933 ./usr/lib/systemd/boot/efi/linuxx64.efi.stub linuxx64.efi.stub"
  "linux-image-6.12.117+deb13-cloud-amd64=6.12.117-1 e9893e5295d0549b8852611f12a4b8b5f6cc4b8128dcc2086b9847793b904ab7 ./boot/vmlinuz-6.12.117+deb13-cloud-amd64 vmlinuz.signed"
  "linux-image-6.12.117+deb13-cloud-amd64-unsigned=6.12.117-1 4113a615a1f1535ed4356ca03d428c74536b00f6ccb58e049a2ffd6a1cb3f1ad ./boot/vmlinuz-6.12.117+deb13-cloud-amd64 vmlinuz.unsigned"
)
mkdir -p "$UKI_DIR"
for uki_entry in "${UKI_DEBS[@]}"; do
  read -r uki_pkgver uki_sha uki_member uki_name <<<"$uki_entry"
  [ -f "$UKI_DIR/$uki_name" ] && [ -f "$UKI_DIR/.$uki_name.$uki_sha" ] && continue
  uki_deb=$(fetch_pinned_deb "$uki_pkgver" "$uki_sha" "update UKI_DEBS and run uki/testdata/debian.gen.sh")
  rm -rf "$UKI_DIR/x"
  mkdir -p "$UKI_DIR/x"
  dpkg-deb --fsys-tarfile "$uki_deb" | tar -x -C "$UKI_DIR/x" "$uki_member"
  mv "$UKI_DIR/x/$uki_member" "$UKI_DIR/$uki_name"
  rm -rf "$UKI_DIR/x" "$UKI_DIR"/."$uki_name".*
  touch "$UKI_DIR/.$uki_name.$uki_sha"
done
rm -rf "$UKI_DIR/debs"

# pesign (bookworm): a second, independent Authenticode implementation (sha1, sha256) that
# uki/testdata/oracle_authenticode.py checks LIEF (.venv, 30-python-venv.sh) against.
apt_install pesign
