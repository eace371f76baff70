# The hash backend (digest-alg: the sha1/sha2 crates) against OpenSSL on this CPU, one stream of
# 16 KiB buffers each: digest-alg/examples/throughput.rs vs `openssl speed -bytes 16384 -evp`.
# Each side runs ROUNDS times, alternating, 1 s a run; the best run of each is printed (other load
# on the machine only ever slows a run down), with OpenSSL's rate over ours: the goal for
# SHA-384 is at most 1.15.
. "$(dirname "$0")/lib.sh"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command -v openssl >/dev/null || { echo "05-digest: openssl missing; run make setup" >&2; exit 2; }
(cd "$ROOT" && cargo build --quiet --release --locked -p digest-alg --example throughput)
TP=$ROOT/target/release/examples/throughput
ROUNDS=${ROUNDS:-3}
for alg in sha384 sha256 sha1; do
  ours=0 theirs=0
  for _ in $(seq "$ROUNDS"); do
    o=$("$TP" "$alg" 1 | awk '{print $2}')
    t=$(openssl speed -seconds 1 -bytes 16384 -evp "$alg" 2>/dev/null | awk -v a="$alg" '$1 == a {sub(/k$/, "", $2); printf "%.0f\n", $2 * 1000}')
    ours=$(echo "if ($o > $ours) $o else $ours" | bc -l)
    theirs=$(echo "if ($t > $theirs) $t else $theirs" | bc -l)
  done
  printf '%-28s %8.0f MB/s\n%-28s %8.0f MB/s\n' "digest-alg $alg" "$(echo "$ours / 1000000" | bc -l)" \
    "openssl speed $alg" "$(echo "$theirs / 1000000" | bc -l)"
  printf 'ratio openssl speed %s / digest-alg %s = %.2fx\n' "$alg" "$alg" "$(echo "$theirs / $ours" | bc -l)"
  [ "$alg" = sha384 ] && ours384=$ours
  [ "$alg" = sha256 ] && ours256=$ours
  [ "$alg" = sha1 ] && ours1=$ours
  [ "$alg" = sha1 ] || echo
done

# Several messages at once (HashAlg::hash_many, what the UKI, PCR, SNP page and dm-verity digests
# use): SHA-384 four per AVX-512VL register, SHA-256 and SHA-1 four with their SHA-NI rounds
# interleaved; all four messages' bytes per second of one thread. OpenSSL has no multi-message
# SHA to set beside these; its one stream above is the reference.
echo
for alg in sha384 sha256 sha1; do
  many=0
  for _ in $(seq "$ROUNDS"); do
    o=$("$TP" "$alg" 1 4 | awk '{print $2}')
    many=$(echo "if ($o > $many) $o else $many" | bc -l)
  done
  case $alg in sha384) one=$ours384 ;; sha256) one=$ours256 ;; *) one=$ours1 ;; esac
  printf '%-28s %8.0f MB/s (together; %.2fx one digest-alg stream)\n' "digest-alg $alg, 4 at once" \
    "$(echo "$many / 1000000" | bc -l)" "$(echo "$many / $one" | bc -l)"
done
