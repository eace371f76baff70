# The tools cache (docs/tools-cache.md): mkosi 25.3 for `nodeimg build` and Debian's OVMF builds
# (bookworm's 2022.11 and trixie's 2025.02, the generic OvmfPkgX64 build whose reset vector
# carries the SEV and the TDX metadata: the firmware measure's SEV-SNP and TDX tests, the boots
# and `make bench` use). The table of pins (version and .deb sha256 of each) lives in
# builder/src/toolscache.rs; `nodeimg setup` fetches each .deb over HTTP, checks its sha256 and
# unpacks it into tools/ovmf/<version>/ and tools/mkosi/<version>/, and writes tools/bin/mkosi
# (mkosi run with the host's python3; everything mkosi runs while building comes from its own
# trixie tools tree). `cargo test` and `cargo run` use tools/ through .cargo/config.toml
# (NODEIMG_TOOLS_DIR). NODEIMG_SETUP_MIRROR names another Debian mirror or a snapshot
# (http://snapshot.debian.org/archive/debian/STAMP) when the archive has moved on.
# --test-inputs: also the test suite's pinned systemd-stub and kernels (tools/uki/, see
# 40-uki-fixtures.sh), which a plain `nodeimg setup` (building images) does not fetch.
#
# mkosi needs only apt, dpkg and python3 on the host to bootstrap its tools tree; dpkg-deb
# unpacks the .debs.
apt_install apt dpkg python3 debian-archive-keyring
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install Rust (https://rustup.rs), then run 'make setup' again" >&2
  exit 1
fi
# A fresh checkout's tools/ is empty, and Debian's pool drops a version at the next point
# release: the .debs are kept by content in $DEB_CACHE too (setup-lib.sh, outside the checkout),
# offered to nodeimg setup before it downloads (it trusts a <sha256>.deb only if its content has
# that sha256) and kept there after.
mkdir -p "$TOOLS/debs"
for deb in "$DEB_CACHE"/*.deb; do
  if [ -f "$deb" ] && [ ! -e "$TOOLS/debs/${deb##*/}" ]; then
    ln "$deb" "$TOOLS/debs/" 2>/dev/null || cp "$deb" "$TOOLS/debs/"
  fi
done
log "nodeimg setup --test-inputs --tools-dir $TOOLS"
(cd "$ROOT" && cargo run --locked -q --bin nodeimg -- setup -q --test-inputs --tools-dir "$TOOLS" \
  --mirror "${NODEIMG_SETUP_MIRROR:-http://deb.debian.org/debian}" >&2)
mkdir -p "$DEB_CACHE"
for deb in "$TOOLS/debs"/*.deb; do
  if [ -f "$deb" ] && [ ! -e "$DEB_CACHE/${deb##*/}" ]; then
    cp "$deb" "$DEB_CACHE/"
  fi
done
