# Helpers of `make setup` (sourced by scripts/setup.sh; tests/setup_cli.rs sources it alone).
# Needs ROOT; defines log, apt_install and fetch_pinned_deb.
SUDO=${SUDO-}
[ "$(id -u)" = 0 ] || SUDO=sudo

log() { printf '+ %s\n' "$*" >&2; }

# apt_install PKG...: installs the host packages (bookworm unless pinned otherwise) not yet there.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Pinned .debs are kept by content in $DEB_CACHE/<sha256>.deb (default ~/.cache/nodeimg/setup-debs),
# so a second `make setup`, or one after the archive has dropped the version, downloads nothing.
DEB_CACHE=${NODEIMG_SETUP_DEBS:-${XDG_CACHE_HOME:-$HOME/.cache}/nodeimg/setup-debs}

# fetch_pinned_deb PKG=VERSION SHA256 HINT: prints the path of that .deb in $DEB_CACHE, after
# downloading it (apt-get download, never installed) if it is not there, and checking its
# SHA-256. When the archive no longer has it, stops at once naming the file, its sha256 and the
# one command that fixes it; nothing is half set up.
fetch_pinned_deb() {
  local pkgver=$1 sha=$2 hint=$3 tmp deb got pkg ver
  local cached=$DEB_CACHE/$sha.deb
  if [ -f "$cached" ] && [ "$(sha256sum "$cached" | cut -d' ' -f1)" = "$sha" ]; then
    echo "$cached"
    return 0
  fi
  mkdir -p "$DEB_CACHE"
  log "apt-get download $pkgver"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkgver" 2>/dev/null); then
    pkg=${pkgver%%=*} ver=${pkgver#*=}
    {
      echo "setup: the archive no longer has $pkgver ($hint)."
      echo "  needed: ${pkg}_${ver//:/%3a}_amd64.deb with sha256 $sha"
      echo "  fix: put that file at $cached (e.g. from https://snapshot.debian.org/mr/binary/$pkg/), then run 'make setup' again"
    } >&2
    rm -rf "$tmp"
    exit 1
  fi
  deb=$(echo "$tmp"/*.deb)
  got=$(sha256sum "$deb" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "setup: $pkgver downloaded with sha256 $got, but $sha is pinned ($hint)" >&2
    rm -rf "$tmp"
    exit 1
  fi
  mv "$deb" "$cached.tmp" && mv "$cached.tmp" "$cached"
  rm -rf "$tmp"
  echo "$cached"
}
