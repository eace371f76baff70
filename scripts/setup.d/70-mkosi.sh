# mkosi 25.3 for `nodeimg build`, unpacked under tools/mkosi/ and run with the host's python3.
#
# Installing trixie's mkosi package on the Debian 12 host would pull in trixie's libc; mkosi is
# pure Python, so unpacking the .deb is enough. Everything mkosi runs while building comes from
# its default tools tree (ToolsTree=default, a trixie tree mkosi builds and caches itself), so
# the host needs only apt, dpkg and python3 for the bootstrap. Pinned by version and by the
# .deb's SHA-256, so a changed archive fails loudly. `tools/bin/mkosi` is the wrapper nodeimg
# runs (override with $NODEIMG_MKOSI).
MKOSI_VERSION=25.3-7
MKOSI_SHA256=ef56c81324fd47d65490e944ec4697bb3f6fb21326d0d071bfc2fb5ba5383252
MKOSI_DIR=$TOOLS/mkosi
apt_install apt dpkg python3 debian-archive-keyring
if [ ! -f "$MKOSI_DIR/.nodeimg-sha256" ] || [ "$(cat "$MKOSI_DIR/.nodeimg-sha256")" != "$MKOSI_SHA256" ]; then
  log "apt-get download mkosi=$MKOSI_VERSION -> $MKOSI_DIR"
  mkosi_tmp=$(mktemp -d)
  (cd "$mkosi_tmp" && apt-get download -qq -o APT::Sandbox::User=root "mkosi=$MKOSI_VERSION") \
    || { echo "setup: cannot download mkosi=$MKOSI_VERSION (no longer in the archive? update 70-mkosi.sh)" >&2; exit 1; }
  mkosi_deb=$(echo "$mkosi_tmp"/mkosi_*.deb)
  mkosi_got=$(sha256sum "$mkosi_deb" | cut -d' ' -f1)
  if [ "$mkosi_got" != "$MKOSI_SHA256" ]; then
    echo "setup: $mkosi_deb has sha256 $mkosi_got, expected $MKOSI_SHA256" >&2
    exit 1
  fi
  rm -rf "$MKOSI_DIR"
  mkdir -p "$MKOSI_DIR"
  dpkg-deb -x "$mkosi_deb" "$MKOSI_DIR"
  echo "$MKOSI_SHA256" >"$MKOSI_DIR/.nodeimg-sha256"
  rm -rf "$mkosi_tmp"
fi
mkdir -p "$TOOLS/bin"
mkosi_wrapper="#!/bin/sh
# Written by scripts/setup.d/70-mkosi.sh: mkosi $MKOSI_VERSION from tools/mkosi on the host's python3.
PYTHONPATH=$MKOSI_DIR/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH} exec /usr/bin/python3 -m mkosi \"\$@\""
if [ ! -x "$TOOLS/bin/mkosi" ] || [ "$(cat "$TOOLS/bin/mkosi")" != "$mkosi_wrapper" ]; then
  printf '%s\n' "$mkosi_wrapper" >"$TOOLS/bin/mkosi"
  chmod 0755 "$TOOLS/bin/mkosi"
fi
