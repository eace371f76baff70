# dm-verity format of a 2 GiB file: nodeimg vs veritysetup, page cache warm.
# Prints both medians, the speed-up, and two hardware limits: data bytes / (single-core SHA-256
# throughput × cores), one stream (`openssl speed` on 4 KiB blocks: what veritysetup could reach)
# and four messages at once (digest-alg's interleaved SHA-NI code, 16 KiB messages: what nodeimg
# hashes the data blocks with).
. "$(dirname "$0")/lib.sh"
set -euo pipefail
SIZE=$((2 << 30))
data=$BENCH_DIR/verity-2g.img
if [ "$(stat -c %s "$data" 2>/dev/null || echo 0)" != $SIZE ]; then
  head -c $SIZE /dev/urandom > "$data"
fi
cat "$data" > /dev/null # warm the page cache
args="--salt 00 --uuid 12345678-1234-1234-1234-123456789abc"
compare "nodeimg verity format" "$NODEIMG verity format $data $BENCH_DIR/h-nodeimg $args" \
        "veritysetup format" "veritysetup format $data $BENCH_DIR/h-veritysetup $args" \
        --warmup 1 --runs 5 --prepare "rm -f $BENCH_DIR/h-nodeimg $BENCH_DIR/h-veritysetup"
rm -f "$BENCH_DIR"/h-*
$NODEIMG verity format "$data" "$BENCH_DIR/h-nodeimg" $args >/dev/null
veritysetup format "$data" "$BENCH_DIR/h-veritysetup" $args >/dev/null
cmp -s "$BENCH_DIR/h-nodeimg" "$BENCH_DIR/h-veritysetup" && echo "hash devices: identical" || { echo "hash devices differ!"; exit 1; }
kbps=$(openssl speed -evp sha256 -bytes 4096 -seconds 2 2>/dev/null | awk '/^sha256/ {print $2}' | tr -d k)
limit=$(echo "$SIZE / ($kbps * 1000 * $(nproc))" | bc -l)
printf 'hardware limit, one stream: %.3f s (single-core SHA-256 %.0f MB/s x %d cores)\n' "$limit" "$(echo "$kbps / 1000" | bc -l)" "$(nproc)"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
(cd "$ROOT" && cargo build --quiet --release --locked -p digest-alg --example throughput)
many=$("$ROOT/target/release/examples/throughput" sha256 2 4 | awk '{print $2}')
printf 'hardware limit, four messages at once: %.3f s (single-core SHA-256 %.0f MB/s x %d cores)\n' \
  "$(echo "$SIZE / ($many * $(nproc))" | bc -l)" "$(echo "$many / 1000000" | bc -l)" "$(nproc)"
# Peak memory on a 4 GiB input (sparse file: reads are cheap, the hashing is real).
big=$BENCH_DIR/verity-4g-sparse.img
truncate -s $((4 << 30)) "$big"
rss=$(/usr/bin/time -f %M "$NODEIMG" verity format "$big" "$BENCH_DIR/h-4g" $args 2>&1 >/dev/null | tail -1)
printf 'peak RSS formatting 4 GiB: %d MiB\n' $((rss / 1024))
rm -f "$big" "$BENCH_DIR/h-4g"
