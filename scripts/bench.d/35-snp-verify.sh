# SEV-SNP report verification, whole process: `nodeimg attest check --snp-report --vek
# --cert-chain` (ARK, ASK, VCEK RSA-PSS signatures, the report's ECDSA P-384 signature, TCB and
# chip binding) vs the same checks in Python `cryptography` (.venv, from make setup), on go-sev-
# guest's Milan report (attest/testdata). Both must accept it.
. "$(dirname "$0")/lib.sh"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=$ROOT/.venv/bin/python3
[ -x "$PY" ] || { echo "35-snp-verify: $PY missing; run make setup" >&2; exit 2; }
T=$ROOT/attest/testdata
ref=$BENCH_DIR/snp-verify.py
cat > "$ref" <<'PY'
import sys, datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, ec, utils
report, vek, chain = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
vek = x509.load_der_x509_certificate(vek)
ask, ark = x509.load_pem_x509_certificates(chain)
pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
for signer, signee in ((ark, ark), (ark, ask), (ask, vek)):
    signer.public_key().verify(signee.signature, signee.tbs_certificate_bytes, pss, hashes.SHA384())
at = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
assert all(c.not_valid_before_utc <= at <= c.not_valid_after_utc for c in (ark, ask, vek))
r, s = int.from_bytes(report[0x2a0:0x2e8], "little"), int.from_bytes(report[0x2e8:0x330], "little")
vek.public_key().verify(utils.encode_dss_signature(r, s), report[:0x2a0], ec.ECDSA(hashes.SHA384()))
ext = {e.oid.dotted_string: e.value.value for e in vek.extensions if isinstance(e.value, x509.UnrecognizedExtension)}
tcb = report[0x180:0x188]
assert [int.from_bytes(ext["1.3.6.1.4.1.3704.1.3." + n][2:], "big") for n in "1238"] == [tcb[0], tcb[1], tcb[6], tcb[7]]
assert ext["1.3.6.1.4.1.3704.1.4"] == report[0x1a0:0x1e0]
print("ok")
PY
args="$T/snp-report-v2-milan.bin $T/vcek-milan-gsg.der $T/cert-chain-milan.pem"
"$PY" -W ignore "$ref" $args | grep -qx ok || { echo "the Python reference rejects the report"; exit 1; }
"$NODEIMG" attest check --allow-debug --at 2026-01-01T00:00:00Z --snp-report "$T/snp-report-v2-milan.bin" \
  --vek "$T/vcek-milan-gsg.der" --cert-chain "$T/cert-chain-milan.pem" >/dev/null \
  || { echo "nodeimg rejects the report"; exit 1; }
echo "both accept the report"
compare "nodeimg attest check (SNP)" "$NODEIMG attest check --allow-debug --at 2026-01-01T00:00:00Z --snp-report $T/snp-report-v2-milan.bin --vek $T/vcek-milan-gsg.der --cert-chain $T/cert-chain-milan.pem" \
        "python cryptography" "$PY -W ignore $ref $args" \
        --warmup 3 --runs 20
