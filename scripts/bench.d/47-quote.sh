# A TPM quote and its event log: `nodeimg attest check` (quote signature, nonce, PCR digest over
# the log's replay, then the values) against `tpm2_checkquote -e` (signature, nonce, PCR digest,
# the log against the PCRs) + `tpm2_eventlog` (parsing the log for a reader), tpm2-tools 5.4. The
# quote is made by a swtpm that went through the real boot (measure/testdata/boot/sb-off: its event
# log's events extended), with an RSA 2048 RSASSA AK, over sha256 PCRs 0-15. No bundle: the
# comparison with reference values is the attest_cli tests' business; here it is the evidence.
. "$(dirname "$0")/lib.sh"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
log=$ROOT/measure/testdata/boot/sb-off/eventlog.bin
d=$BENCH_DIR/quote
rm -rf "$d" && mkdir -p "$d" && cd "$d"
swtpm_pid=
trap 'kill "$swtpm_pid" 2>/dev/null || true' EXIT
# shellcheck source=tests/lib/swtpm-tcp.sh
. "$ROOT/tests/lib/swtpm-tcp.sh"
swtpm_tcp state sha256,sha384
# The boot: every extended event of the log, into the swtpm.
"$NODEIMG" eventlog show --json "$log" |
  jq -r '.events[] | select(.extended) | "\(.index):" + ([.digests[] | "\(.alg)=\(.digest)"] | join(","))' |
  xargs -n 16 tpm2_pcrextend
tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null && flush
tpm2_createak -C ek.ctx -c ak.ctx -G rsa -s rsassa -g sha256 -u ak.pub >/dev/null && flush
tpm2_readpublic -c ak.ctx -f pem -o ak.pem >/dev/null && flush
nonce=$(head -c 32 /dev/urandom | xxd -p -c 64)
tpm2_quote -c ak.ctx -l sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -q "$nonce" -g sha256 \
  -m quote.msg -s quote.sig -o quote.pcrs >/dev/null && flush
kill "$swtpm_pid"
ours="$NODEIMG attest check --tpm-quote quote.msg --tpm-quote-sig quote.sig --ak ak.pem --nonce $nonce --eventlog $log"
theirs="tpm2_checkquote -u ak.pub -m quote.msg -s quote.sig -f quote.pcrs -q $nonce -g sha256 -e $log >/dev/null && tpm2_eventlog $log >/dev/null"
# Both accept the quote before they are timed.
$ours >ours.txt || { cat ours.txt; echo "47-quote: nodeimg refuses the quote"; exit 1; }
grep -q '^OK: the evidence is authentic' ours.txt || { cat ours.txt; echo "47-quote: not authenticated"; exit 1; }
sh -c "$theirs" 2>/dev/null || { echo "47-quote: tpm2_checkquote refuses the quote"; exit 1; }
compare "nodeimg attest check" "$ours" \
        "tpm2_checkquote + tpm2_eventlog" "sh -c '$theirs'" \
        --warmup 3 --runs 20 --output null -N
