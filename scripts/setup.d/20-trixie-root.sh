# A minimal Debian trixie root under tools/trixie-root, for oracles that need trixie's libc
# (systemd-measure 257, ukify 257 and its stub). Installing them on the bookworm host would pull
# in a new libc; `scripts/in-trixie CMD…` runs a command inside this root instead, with the repo
# and /tmp bound at the same paths.
TRIXIE_ROOT=$TOOLS/trixie-root
TRIXIE_PKGS=(systemd systemd-ukify systemd-boot-efi python3-pefile)
if [ ! -x "$TRIXIE_ROOT/usr/bin/apt-get" ] || [ ! -f "$TRIXIE_ROOT/.nodeimg-base" ]; then
  log "debootstrap trixie $TRIXIE_ROOT"
  $SUDO rm -rf "$TRIXIE_ROOT"
  $SUDO debootstrap --variant=minbase trixie "$TRIXIE_ROOT" http://deb.debian.org/debian >/dev/null
  $SUDO touch "$TRIXIE_ROOT/.nodeimg-base"
fi
trixie_missing=()
for p in "${TRIXIE_PKGS[@]}"; do
  $SUDO chroot "$TRIXIE_ROOT" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || trixie_missing+=("$p")
done
if [ ${#trixie_missing[@]} -gt 0 ]; then
  log "trixie-root: apt-get install ${trixie_missing[*]}"
  $SUDO chroot "$TRIXIE_ROOT" apt-get update -qq
  $SUDO chroot "$TRIXIE_ROOT" apt-get install -y -qq --no-install-recommends "${trixie_missing[@]}" >/dev/null 2>&1 \
    || { $SUDO chroot "$TRIXIE_ROOT" apt-get install -y --no-install-recommends "${trixie_missing[@]}" | tail -20; exit 1; }
fi
