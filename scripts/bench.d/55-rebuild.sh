# Rebuilding a release: `nodeimg rebuild` from the release's own package archive (offline, the
# packages served locally) against a warm `nodeimg build` of the same profiles, and the size of
# what a release publishes with --with-packages (the image with its initrd, and the tools tree).
# The rebuild runs twice: the first is cold unless a build from a package archive of this lock
# ran before (a package archive is another source, so another cache key, by design), the
# second reuses that cache as a verifier rebuilding several releases would.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=$BENCH_DIR/rebuild
WARM=${NODEIMG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nodeimg}
rm -rf "$OUT"
mkdir -p "$OUT"

"$NODEIMG" -q build --cache-dir "$WARM" --out "$OUT/prime" >/dev/null 2>&1 # warm the cache
build=$(secs "$NODEIMG" -q build --cache-dir "$WARM" --out "$OUT/b")
"$NODEIMG" -q release --version 0.1.0 --input "$OUT/b/nodeimg-0.1.0" --out "$OUT/rel" --insecure-dev-key \
  --with-packages --cache-dir "$WARM" >/dev/null
REL=$OUT/rel/nodeimg-0.1.0
PUB=$OUT/rel/insecure-dev-key/nodeimg-dev.pub
cold=$(secs unshare --net "$NODEIMG" -q rebuild "$REL" --pubkey "$PUB" --cache-dir "$WARM")
warm=$(secs unshare --net "$NODEIMG" -q rebuild "$REL" --pubkey "$PUB" --cache-dir "$WARM")
row "nodeimg build, 1 platform, warm" "$build"
row "nodeimg rebuild from packages/, offline, first" "$cold"
row "nodeimg rebuild from packages/, offline, again" "$warm"
printf 'rebuild (again) / build (warm) = %.2fx\n' "$(echo "$warm / $build" | bc -l)"

# Sizes, per scope, of the .debs the lock names (a .deb in two scopes counts in each).
size_of() { # SCOPE…: total bytes of the distinct .debs of those scopes
  grep -E "^($(IFS='|'; echo "$*")) " mkosi-profiles/packages.lock | awk '{print $5}' | sort -u |
    while read -r sha; do stat -c %s "$WARM/debs/$sha.deb"; done | awk '{s+=$1} END {print s+0}'
}
printf 'package archive: image + initrd %d MB, tools tree %d MB, all %d MB (%d .debs)\n' \
  "$(( $(size_of image initrd) / 1000000 ))" "$(( $(size_of tools) / 1000000 ))" \
  "$(( $(du -sbL "$REL/packages" | cut -f1) / 1000000 ))" "$(ls "$REL/packages" | wc -l)"
rm -rf "$OUT"
