#!/usr/bin/env bash
# Writes snp-verdicts.json: for each case in snp-cases.json, the verdict of every check
# `attest::snp_verify` makes, as Python `cryptography` (an independent X.509/RSA-PSS/ECDSA
# implementation, pinned in scripts/setup.d/30-python-venv.sh) establishes it. Nothing here uses
# nodeimg. The roots trusted when a case names no `ark` are the ARKs in go-sev-guest's
# verify/trust/ask_ark_{milan,genoa,turin_vcek}.pem (cert-chain-{milan,genoa,turin}.pem here), an
# independent copy of what AMD's KDS serves.
#
# Run from anywhere: attest/testdata/snp-verdicts.gen.sh (needs `make setup` for .venv).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-$HERE/../../.venv/bin/python3}
cd "$HERE"
# The Genoa ARK alone (the second certificate of cert-chain-genoa.pem), for the `--ark` cases.
awk '/BEGIN CERT/{n++} n==2' cert-chain-genoa.pem > ark-genoa.pem
"$PY" - <<'EOF' > snp-verdicts.json
import json, hashlib, datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, ec, utils

def load_cert(path):
    data = open(path, "rb").read()
    return x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----BEGIN") else x509.load_der_x509_certificate(data)

def load_chain(path):
    certs = x509.load_pem_x509_certificates(open(path, "rb").read())
    assert len(certs) == 2, path
    return certs  # ASK (or ASVK), ARK

def rsa_pss_ok(signer, signee):
    try:
        signer.public_key().verify(signee.signature, signee.tbs_certificate_bytes,
            padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384())
        return True
    except Exception:
        return False

def valid_at(cert, at):
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc

def spki(cert):
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

def ext_int(cert, dotted):
    for e in cert.extensions:
        if e.oid.dotted_string == dotted:
            v = e.value.value  # UnrecognizedExtension: the DER of an INTEGER
            assert v[0] == 0x02 and v[1] == len(v) - 2, (dotted, v.hex())
            return int.from_bytes(v[2:], "big")
    return None

def ext_raw(cert, dotted):
    for e in cert.extensions:
        if e.oid.dotted_string == dotted:
            return e.value.value
    return None

def flip(data, offset):
    b = bytearray(data); b[offset] ^= 0x01; return bytes(b)

TRUSTED = [load_chain(f"cert-chain-{p}.pem")[1] for p in ("milan", "genoa", "turin")]
cases = json.load(open("snp-cases.json"))
out = []
for c in cases:
    report = open(c["report"], "rb").read()
    if "flip_report" in c:
        report = flip(report, c["flip_report"])
    vek = load_cert(c["vek"])
    ask, ark = load_chain(c["chain"])
    at = datetime.datetime.strptime(c["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    trusted = [load_cert(c["ark"])] if "ark" in c else TRUSTED
    is_vlek = "VLEK" in vek.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    checks = {}
    checks["SNP ARK"] = rsa_pss_ok(ark, ark) and any(spki(t) == spki(ark) for t in trusted) and valid_at(ark, at)
    checks["SNP ASK"] = rsa_pss_ok(ark, ask) and valid_at(ask, at)
    checks["SNP VLEK" if is_vlek else "SNP VCEK"] = rsa_pss_ok(ask, vek) and valid_at(vek, at)
    # The report: ECDSA P-384 SHA-384 over 0x0..0x2a0; R and S little-endian at 0x2a0 and 0x2e8.
    r = int.from_bytes(report[0x2a0:0x2a0 + 72], "little")
    s = int.from_bytes(report[0x2e8:0x2e8 + 72], "little")
    sig_algo = int.from_bytes(report[0x34:0x38], "little")
    signing_key = (report[0x48] >> 2) & 7
    try:
        vek.public_key().verify(utils.encode_dss_signature(r, s), report[:0x2a0], ec.ECDSA(hashes.SHA384()))
        sig_ok = True
    except Exception:
        sig_ok = False
    checks["SNP REPORT SIGNATURE"] = sig_ok and sig_algo == 1 and signing_key == (1 if is_vlek else 0)
    # TCB_VERSION (SEV-SNP ABI spec 56860): Milan/Genoa put bootloader in byte 0, tee 1, snp 6,
    # microcode 7; Turin (a version 3+ report whose CPUID_FAM_ID at 0x188 is 1Ah) puts fmc in
    # byte 0, bootloader 1, tee 2, snp 3, microcode 7, and its VCEK adds the FMC SPL (.3.9).
    tcb = report[0x180:0x188]
    version = int.from_bytes(report[0:4], "little")
    turin = version >= 3 and report[0x188] == 0x1a
    cert_tcb = {"bootloader": ext_int(vek, "1.3.6.1.4.1.3704.1.3.1"), "tee": ext_int(vek, "1.3.6.1.4.1.3704.1.3.2"),
                "snp": ext_int(vek, "1.3.6.1.4.1.3704.1.3.3"), "microcode": ext_int(vek, "1.3.6.1.4.1.3704.1.3.8")}
    if turin:
        reported = {"fmc": tcb[0], "bootloader": tcb[1], "tee": tcb[2], "snp": tcb[3], "microcode": tcb[7]}
        cert_tcb["fmc"] = ext_int(vek, "1.3.6.1.4.1.3704.1.3.9")
    else:
        reported = {"bootloader": tcb[0], "tee": tcb[1], "snp": tcb[6], "microcode": tcb[7]}
    if not is_vlek:
        # The hwID is the 64-byte CHIP_ID; Turin's is 8 bytes (AMD's VCEK spec 57230, 3.1 note 4),
        # and its reports fill CHIP_ID's other 56 bytes with zeros.
        chip_id = report[0x1a0:0x1e0]
        hwid = ext_raw(vek, "1.3.6.1.4.1.3704.1.4")
        checks["SNP CHIP_ID"] = hwid is not None and hwid.ljust(64, b"\0") == chip_id and any(chip_id)
    checks["SNP REPORTED_TCB"] = reported == cert_tcb
    if "report_data" in c:
        want = bytes.fromhex(c["report_data"]).ljust(64, b"\0")
        checks["SNP REPORT_DATA"] = report[0x50:0x90] == want
    out.append({
        "name": c["name"],
        "checks": {k: ("ok" if v else "mismatch") for k, v in sorted(checks.items())},
        "reported_tcb": reported,
        "certificate_tcb": cert_tcb,
        "ark_sha256": hashlib.sha256(ark.public_bytes(serialization.Encoding.DER)).hexdigest(),
    })
json.dump({"generator": "attest/testdata/snp-verdicts.gen.sh (Python cryptography)", "cases": out}, __import__("sys").stdout, indent=2, sort_keys=True)
print()
EOF
echo "wrote $HERE/snp-verdicts.json"
