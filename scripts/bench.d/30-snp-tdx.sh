# Launch digests of Debian trixie's 4 MiB OVMF.fd, whole process, page cache warm:
#   SEV-SNP, 64 vCPUs: nodeimg measure snp vs sev-snp-measure 0.0.13 (.venv, from make setup);
#   TDX MRTD: nodeimg measure tdx vs dstack-mr and td-shim's Python tool, when
#   measure/testdata/tdx-mrtd.gen.sh has built them under tools/tdx-peers/ (they are not on a
#   package registry, so `make setup` cannot install them).
# Each comparison also checks that both tools print the same value.
. "$(dirname "$0")/lib.sh"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FW=$ROOT/tools/ovmf/2025.02-8+deb13u1/usr/share/ovmf/OVMF.fd
SEV_SNP_MEASURE=$ROOT/.venv/bin/sev-snp-measure
[ -f "$FW" ] && [ -x "$SEV_SNP_MEASURE" ] || { echo "bench: $FW or $SEV_SNP_MEASURE missing; run make setup" >&2; exit 2; }
cat "$FW" >/dev/null

same() { # NAME_A OUT_A NAME_B OUT_B
  [ "$2" = "$4" ] && echo "outputs: identical ($2)" || { echo "outputs differ: $1 $2, $3 $4" >&2; exit 1; }
}

echo "SEV-SNP launch digest, $(($(stat -c %s "$FW") >> 20)) MiB OVMF, 64 vCPUs"
ours="$NODEIMG measure snp --ovmf $FW --vcpus 64 --vcpu-type EPYC-Milan"
theirs="$SEV_SNP_MEASURE --mode snp --ovmf $FW --vcpus 64 --vcpu-type EPYC-Milan"
compare "nodeimg measure snp" "$ours" "sev-snp-measure" "$theirs" -N --warmup 5 --runs 40
same nodeimg "$($ours)" sev-snp-measure "$($theirs)"

echo
echo "TDX MRTD (single-pass), same OVMF"
ours="$NODEIMG measure tdx --ovmf $FW"
peers=0
DSTACK=$ROOT/tools/tdx-peers/dstack-mr-ws/target/release/examples/nodeimg-mrtd
if [ -x "$DSTACK" ]; then
  theirs="$DSTACK single-pass $FW"
  compare "nodeimg measure tdx" "$ours" "dstack-mr" "$theirs" -N --warmup 5 --runs 40
  same nodeimg "$($ours)" dstack-mr "$($theirs)"
  peers=$((peers + 1))
fi
TDSHIM=$ROOT/tools/tdx-peers/td_shim_tee_info_hash.py
if [ -f "$TDSHIM" ]; then
  theirs="python3 $TDSHIM -l off --image $FW"
  compare "nodeimg measure tdx" "$ours" "td-shim (Python)" "$theirs" -N --warmup 2 --runs 10
  same nodeimg "$($ours)" td-shim "$($theirs)"
  peers=$((peers + 1))
fi
if [ $peers = 0 ]; then
  echo "no MRTD peer built: run measure/testdata/tdx-mrtd.gen.sh (see its header) to build them"
fi

# MRTD is one SHA-384 stream (TDH.MEM.PAGE.ADD and TDH.MR.EXTEND records, 128 bytes each, plus
# the 256-byte chunks): no tool can be faster than this CPU hashes that many bytes in one stream.
# The fastest single-stream SHA-384 here is OpenSSL's (openssl speed), an independent measure.
stream=$("$NODEIMG" measure tdx --ovmf "$FW" --json |
  jq '[.sections[] | 128 * (.pages_added + .chunks_extended) + 256 * .chunks_extended] | add')
rate=$(openssl speed -seconds 1 -bytes 16384 -evp sha384 2>/dev/null | awk '/^sha384/ {sub(/k$/, "", $2); print $2 * 1000}')
if [ -n "$rate" ]; then
  printf 'MRTD floor: %d bytes in one SHA-384 stream at %.0f MB/s (openssl speed sha384) = %.1f ms\n' \
    "$stream" "$(echo "$rate / 1000000" | bc -l)" "$(echo "$stream / $rate * 1000" | bc -l)"
  # nodeimg against that floor, the whole process (start-up, mapping and parsing the firmware
  # included); CPU time too, which other load on the machine does not stretch.
  json=$(mktemp)
  hyperfine --style none --export-json "$json" -N --warmup 5 --runs 40 -n "nodeimg measure tdx" "$ours" >/dev/null
  m=$(median_of "$json")
  c=$(jq -r '.results[0] | .user + .system' "$json")
  printf 'nodeimg measure tdx: median %.1f ms = %.2fx the floor (cpu %.1f ms = %.2fx)\n' "$(echo "$m * 1000" | bc -l)" \
    "$(echo "$m * $rate / $stream" | bc -l)" "$(echo "$c * 1000" | bc -l)" "$(echo "$c * $rate / $stream" | bc -l)"
  rm -f "$json"
fi
