//! SEV-SNP report verification against Python `cryptography`'s verdicts: for each case of
//! `testdata/snp-cases.json` (real reports with their VCEK/VLEK and AMD chain, and tampered
//! variants), every check `attest::snp_verify` makes must have the status that
//! `testdata/snp-verdicts.json` records (written by `snp-verdicts.gen.sh`, which uses no nodeimg
//! code), and no other check may appear.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use attest::evidence::snp_report;
use attest::snp_verify::{self, SnpInputs, BUILTIN_ARKS};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap()
}

#[test]
fn verdicts_agree_with_python_cryptography() {
    let cases = json("snp-cases.json");
    let verdicts = json("snp-verdicts.json");
    let verdicts: BTreeMap<&str, &Value> =
        verdicts["cases"].as_array().unwrap().iter().map(|v| (v["name"].as_str().unwrap(), v)).collect();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), verdicts.len());
    assert!(cases.len() >= 24);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let s = |k: &str| c[k].as_str().unwrap();
        let mut report = read(s("report"));
        if let Some(off) = c.get("flip_report") {
            report[off.as_u64().unwrap() as usize] ^= 1;
        }
        let parsed = snp_report::parse(&report).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (vek, chain) = (read(s("vek")), read(s("chain")));
        let ark = c.get("ark").map(|a| read(a.as_str().unwrap()));
        let rd = c.get("report_data").map(|h| hex::decode(h.as_str().unwrap()).unwrap());
        let inputs = SnpInputs {
            vek: &vek,
            cert_chain: &chain,
            ark: ark.as_deref(),
            at: attest::time::parse_rfc3339(s("at")).unwrap(),
            report_data: rd.as_deref(),
            min_tcb: None,
        };
        let checks = snp_verify::verify(&report, &parsed, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: BTreeMap<String, &str> = checks.iter().map(|c| (c.value.clone(), c.status.name())).collect();
        let want: BTreeMap<String, &str> = verdicts[name]["checks"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap()))
            .collect();
        assert_eq!(got, want, "case {name}: {checks:#?}");
        // The TCB the report claims, as Python decodes it.
        let t = &verdicts[name]["reported_tcb"];
        let r = parsed.reported_tcb;
        assert_eq!(
            [r.bootloader, r.tee, r.snp, r.microcode].map(u64::from),
            ["bootloader", "tee", "snp", "microcode"].map(|k| t[k].as_u64().unwrap()),
            "case {name}"
        );
        // Turin's FMC SPL (byte 0 of its TCB_VERSION): present exactly when Python found a Turin report.
        assert_eq!(r.fmc.map(u64::from), t.get("fmc").map(|f| f.as_u64().unwrap()), "case {name}");
    }
}

/// The built-in roots are AMD's: their fingerprints equal those of the ARKs in go-sev-guest's
/// copies of KDS's cert_chain files (an independent download of the same certificates).
#[test]
fn builtin_arks_are_the_ones_kds_serves() {
    let second_der = |file: &str| {
        let text = String::from_utf8(read(file)).unwrap();
        let pem = text.split_inclusive("-----END CERTIFICATE-----").nth(1).unwrap().trim();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64_decode(&b64)
    };
    for ((name, pem), file) in
        BUILTIN_ARKS.iter().zip(["cert-chain-milan.pem", "cert-chain-genoa.pem", "cert-chain-turin.pem"])
    {
        let text = std::str::from_utf8(pem).unwrap();
        let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(
            hex::encode(Sha256::digest(base64_decode(&b64))),
            hex::encode(Sha256::digest(second_der(file))),
            "{name} ARK vs {file}"
        );
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        acc = (acc << 6) | A.iter().position(|a| *a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn unusable_inputs_are_errors_not_checks() {
    let report = read("snp-report-v2-milan.bin");
    let parsed = snp_report::parse(&report).unwrap();
    let (vek, chain) = (read("vcek-milan-gsg.der"), read("cert-chain-milan.pem"));
    let ok = SnpInputs { vek: &vek, cert_chain: &chain, at: 1_767_225_600, ..Default::default() };
    let e = |i: &SnpInputs| snp_verify::verify(&report, &parsed, i).unwrap_err().to_string();
    assert!(e(&SnpInputs { vek: b"junk", ..ok.clone() }).contains("VCEK/VLEK is not an X.509"));
    assert!(e(&SnpInputs { cert_chain: &vek, ..ok.clone() }).contains("certificate chain"));
    let one = read("ark-genoa.pem");
    assert!(e(&SnpInputs { cert_chain: &one, ..ok.clone() }).contains("1 certificates, not 2"));
    assert!(e(&SnpInputs { report_data: Some(&[0; 65]), ..ok.clone() }).contains("65 bytes"));
    // A chain written root first reads as KDS's order.
    let text = String::from_utf8(chain.clone()).unwrap();
    let mut parts: Vec<&str> = text.split_inclusive("-----END CERTIFICATE-----\n").collect();
    parts.swap(0, 1);
    let swapped = parts.concat();
    let checks =
        snp_verify::verify(&report, &parsed, &SnpInputs { cert_chain: swapped.as_bytes(), ..ok.clone() }).unwrap();
    assert!(checks.iter().all(|c| c.status.name() == "ok"), "{checks:#?}");
    // Empty input (x509-cert's load_pem_chain underflows on it), truncated DER: errors.
    assert!(e(&SnpInputs { cert_chain: b"", ..ok.clone() }).contains("no -----BEGIN CERTIFICATE-----"));
    assert!(e(&SnpInputs { vek: b"", ..ok.clone() }).contains("VCEK/VLEK"));
    assert!(e(&SnpInputs { ark: Some(b"-----BEGIN CERTIFICATE-----\n"), ..ok.clone() }).contains("END CERTIFICATE"));
    // Truncated DER never panics.
    for n in [0, 1, 100, vek.len() - 1] {
        assert!(snp_verify::verify(&report, &parsed, &SnpInputs { vek: &vek[..n], ..ok.clone() }).is_err(), "{n}");
    }
}

/// `--min-tcb` against `report` with its VEK and chain: each (minimum, expected status).
fn min_tcb_verdicts(report: &str, vek: &str, chain: &str, cases: &[(&str, &str)]) {
    let report = read(report);
    let parsed = snp_report::parse(&report).unwrap();
    let (vek, chain) = (read(vek), read(chain));
    for (min, status) in cases {
        let inputs = SnpInputs {
            vek: &vek,
            cert_chain: &chain,
            at: 1_767_225_600,
            min_tcb: Some(min.parse().unwrap()),
            ..Default::default()
        };
        let checks = snp_verify::verify(&report, &parsed, &inputs).unwrap();
        let c = checks.iter().find(|c| c.value == "SNP MIN_TCB").unwrap();
        assert_eq!(c.status.name(), *status, "{min}: {c:?}");
    }
}

#[test]
fn min_tcb() {
    // go-sev-guest states this report's TCB: blSPL=2 teeSPL=0 snpSPL=5 ucodeSPL=68.
    min_tcb_verdicts(
        "snp-report-v2-milan.bin",
        "vcek-milan-gsg.der",
        "cert-chain-milan.pem",
        &[("bootloader=2,tee=0,snp=5,microcode=68", "ok"), ("snp=6", "mismatch"), ("fmc=1", "mismatch")],
    );
    // A Turin report's TCB has an FMC SPL; oak states its VCEK's: fmcSPL=0 blSPL=1 teeSPL=0
    // snpSPL=2 ucodeSPL=71.
    min_tcb_verdicts(
        "snp-report-v5-turin.bin",
        "vcek-turin-oak.der",
        "cert-chain-turin.pem",
        &[("fmc=0,bootloader=1,tee=0,snp=2,microcode=71", "ok"), ("fmc=1", "mismatch"), ("microcode=72", "mismatch")],
    );
}

/// AMD's VEK certificates carry serial number 0 (RFC 5280 wants a positive one; Python
/// `cryptography` warns about it): every VEK here has it, and every one verified above.
#[test]
fn vek_certificates_have_serial_zero() {
    use x509_cert::der::{Decode, DecodePem};
    for (file, pem) in [
        ("vcek-milan-gsg.der", false),
        ("vcek-milan-virtee.der", false),
        ("vlek-milan-trustee.der", false),
        ("vcek-genoa-azure.pem", true),
        ("vcek-turin-oak.der", false),
    ] {
        let bytes = read(file);
        let cert = if pem {
            x509_cert::Certificate::from_pem(&bytes).unwrap()
        } else {
            x509_cert::Certificate::from_der(&bytes).unwrap()
        };
        assert_eq!(cert.tbs_certificate.serial_number.as_bytes(), [0], "{file}");
    }
}
