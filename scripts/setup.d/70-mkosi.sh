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
unpack_pinned_deb "mkosi=$MKOSI_VERSION" "$MKOSI_SHA256" "$MKOSI_DIR" "no longer in the archive? update 70-mkosi.sh"
mkdir -p "$TOOLS/bin"
mkosi_wrapper="#!/bin/sh
# Written by scripts/setup.d/70-mkosi.sh: mkosi $MKOSI_VERSION from tools/mkosi on the host's python3.
PYTHONPATH=$MKOSI_DIR/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH} exec /usr/bin/python3 -m mkosi \"\$@\""
if [ ! -x "$TOOLS/bin/mkosi" ] || [ "$(cat "$TOOLS/bin/mkosi")" != "$mkosi_wrapper" ]; then
  printf '%s\n' "$mkosi_wrapper" >"$TOOLS/bin/mkosi"
  chmod 0755 "$TOOLS/bin/mkosi"
fi
