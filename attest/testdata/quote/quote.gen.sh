#!/usr/bin/env bash
# Regenerates the TPM quote fixtures of attest/testdata/quote (see README.md there): a swtpm,
# PCRs 0, 4, 7, 9, 11 extended in the sha256 and sha384 banks, four attestation keys made by
# tpm2_createak under the EK (RSA 2048 RSASSA, RSA 2048 RSASSA-PSS, ECC P-256 ECDSA, ECC P-384
# ECDSA), a quote with each, and tpm2_checkquote's verdict on each quote and on each tampering
# (oracle.txt). Needs swtpm, tpm2-tools and python3 (`make setup`). Quotes are signed with fresh
# keys and the TPM's clock, so every run makes other bytes; the verdicts stay the same.
set -euo pipefail
OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
swtpm_pid=
trap 'kill "$swtpm_pid" 2>/dev/null || true; rm -rf "$WORK"' EXIT
# shellcheck source=tests/lib/swtpm-tcp.sh
. "$OUT/../../../tests/lib/swtpm-tcp.sh"
cd "$WORK"
swtpm_tcp state sha256,sha384

for pcr in 0 4 7 9 11; do
  s256=$(printf 'pcr %s' "$pcr" | sha256sum | cut -d' ' -f1)
  s384=$(printf 'pcr %s' "$pcr" | sha384sum | cut -d' ' -f1)
  tpm2_pcrextend "$pcr:sha256=$s256,sha384=$s384"
done
SEL256=sha256:0,4,7,9,11
NONCE=$(printf 'nodeimg quote fixture nonce' | sha256sum | cut -d' ' -f1)
echo "$NONCE" >"$OUT/nonce.hex"
tpm2_pcrread "$SEL256+sha384:0,4,7,9,11" >pcrread.yaml
python3 - "$OUT" <<'PY'
import json, re, sys
banks, bank = {}, None
for line in open("pcrread.yaml"):
    m = re.match(r"\s*(sha\d+):\s*$", line)
    if m:
        bank = banks.setdefault(m.group(1), {}); continue
    m = re.match(r"\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)", line)
    if m:
        bank[m.group(1)] = m.group(2).lower()
json.dump(banks, open(sys.argv[1] + "/pcrs.json", "w"), indent=2, sort_keys=True)
open(sys.argv[1] + "/pcrs.json", "a").write("\n")
PY

tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null
flush
: >"$OUT/oracle.txt"
# name  createak -G  -s  -g  quote selection
while read -r name alg scheme hash sel; do
  tpm2_createak -C ek.ctx -c "ak-$name.ctx" -G "$alg" -s "$scheme" -g "$hash" -u "$OUT/ak-$name.pub" >/dev/null
  flush
  tpm2_readpublic -c "ak-$name.ctx" -f pem -o "$OUT/ak-$name.pem" >/dev/null
  flush
  tpm2_quote -c "ak-$name.ctx" -l "$sel" -q "$NONCE" -g "$hash" --scheme "$scheme" \
    -m "$OUT/quote-$name.msg" -s "$OUT/quote-$name.sig" -o "$OUT/pcrs-$name.bin" >/dev/null
  flush
  # Tamperings: the last byte of the message, the middle byte of the signature, another nonce,
  # the first byte of sha256 PCR 4 in the PCR values.
  python3 - "$OUT" "$name" <<'PY'
import json, sys
out, name = sys.argv[1], sys.argv[2]
msg = bytearray(open(f"{out}/quote-{name}.msg", "rb").read()); msg[-1] ^= 1
open("msg-byte.msg", "wb").write(msg)
sig = bytearray(open(f"{out}/quote-{name}.sig", "rb").read()); sig[len(sig) // 2] ^= 1
open("sig-byte.sig", "wb").write(sig)
pcr4 = bytes.fromhex(json.load(open(f"{out}/pcrs.json"))["sha256"]["4"])
pcrs = bytearray(open(f"{out}/pcrs-{name}.bin", "rb").read())
i = pcrs.find(pcr4); assert i > 0 and pcrs.find(pcr4, i + 1) < 0; pcrs[i] ^= 1
open("pcr.bin", "wb").write(pcrs)
PY
  OTHER=$(printf 'another nonce' | sha256sum | cut -d' ' -f1)
  verdict() {
    local case=$1; shift
    if [ "$scheme" = rsapss ]; then
      # tpm2_checkquote 5.4 verifies no RSASSA-PSS quote (tpm2-software/tpm2-tools#3283, open):
      # the signature's oracle is OpenSSL (PSS, salt length recovered from the signature); the
      # nonce and PCR cases, which do not depend on the scheme, are the other keys' to prove.
      local msg= sig=
      while [ $# -gt 0 ]; do case $1 in -m) msg=$2; shift 2;; -s) sig=$2; shift 2;; *) shift;; esac; done
      case $case in nonce|pcr) return;; esac
      python3 -c 'import sys; open("raw.sig","wb").write(open(sys.argv[1],"rb").read()[6:])' "$sig"
      if openssl dgst -"$hash" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto \
        -verify "$OUT/ak-$name.pem" -signature raw.sig "$msg" >/dev/null 2>&1; then v=ok; else v=fail; fi
      echo "$name $case $v openssl-dgst" >>"$OUT/oracle.txt"
      return
    fi
    if tpm2_checkquote -g "$hash" "$@" >/dev/null 2>&1; then v=ok; else v=fail; fi
    echo "$name $case $v tpm2_checkquote" >>"$OUT/oracle.txt"
  }
  base=(-u "$OUT/ak-$name.pub")
  verdict valid "${base[@]}" -m "$OUT/quote-$name.msg" -s "$OUT/quote-$name.sig" -f "$OUT/pcrs-$name.bin" -q "$NONCE"
  verdict valid-pem -u "$OUT/ak-$name.pem" -m "$OUT/quote-$name.msg" -s "$OUT/quote-$name.sig" -f "$OUT/pcrs-$name.bin" -q "$NONCE"
  verdict msg-byte "${base[@]}" -m msg-byte.msg -s "$OUT/quote-$name.sig" -f "$OUT/pcrs-$name.bin" -q "$NONCE"
  verdict sig-byte "${base[@]}" -m "$OUT/quote-$name.msg" -s sig-byte.sig -f "$OUT/pcrs-$name.bin" -q "$NONCE"
  verdict nonce "${base[@]}" -m "$OUT/quote-$name.msg" -s "$OUT/quote-$name.sig" -f "$OUT/pcrs-$name.bin" -q "$OTHER"
  verdict pcr "${base[@]}" -m "$OUT/quote-$name.msg" -s "$OUT/quote-$name.sig" -f pcr.bin -q "$NONCE"
done <<LIST
rsassa rsa rsassa sha256 $SEL256
rsapss rsa rsapss sha256 $SEL256
p256 ecc256 ecdsa sha256 $SEL256
p384 ecc384 ecdsa sha384 $SEL256+sha384:0,4,7,9,11
LIST

# A quote that leaves PCRs 9 and 11 out: genuine (tpm2_checkquote accepts it), and its
# selection as tpm2_print reads it.
tpm2_quote -c ak-rsassa.ctx -l sha256:0,4,7 -q "$NONCE" -g sha256 \
  -m "$OUT/quote-partial.msg" -s "$OUT/quote-partial.sig" -o "$OUT/pcrs-partial.bin" >/dev/null
flush
if tpm2_checkquote -g sha256 -u "$OUT/ak-rsassa.pub" -m "$OUT/quote-partial.msg" -s "$OUT/quote-partial.sig" \
  -f "$OUT/pcrs-partial.bin" -q "$NONCE" >/dev/null 2>&1; then v=ok; else v=fail; fi
echo "partial valid $v tpm2_checkquote" >>"$OUT/oracle.txt"
tpm2_print -t TPMS_ATTEST "$OUT/quote-partial.msg" >"$OUT/quote-partial.print.txt"
for name in rsassa rsapss p256 p384; do
  tpm2_print -t TPMS_ATTEST "$OUT/quote-$name.msg" >"$OUT/quote-$name.print.txt"
done
cd "$OUT" && sha256sum ak-* quote-* pcrs* nonce.hex oracle.txt >SHA256SUMS
