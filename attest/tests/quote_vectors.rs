//! TPM quotes made by a swtpm with tpm2-tools, and the verdicts of tpm2_checkquote (OpenSSL for
//! RSASSA-PSS, which tpm2_checkquote 5.4 cannot verify) on each quote and each tampering
//! (`testdata/quote/oracle.txt`, made by `quote.gen.sh`; see `testdata/quote/README.md`).
//! `attest::quote::verify` must reach the same verdict on every case, and read every field as
//! `tpm2_print -t TPMS_ATTEST` does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use attest::quote::{self, parse_ak, parse_attest, parse_signature};
use attest::reference::{Pcr, PcrStatus};
use attest::{Hex, PcrValues, ReferenceValues, Status};
use eventlog::HashAlg;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/quote")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn nonce() -> Vec<u8> {
    hex::decode(String::from_utf8(read("nonce.hex")).unwrap().trim()).unwrap()
}

fn pcrs() -> PcrValues {
    attest::pcr_values_from_json(&read("pcrs.json")).unwrap().0
}

/// The files match what the generator recorded.
#[test]
fn fixtures_are_the_recorded_ones() {
    let sums = String::from_utf8(read("SHA256SUMS")).unwrap();
    let mut n = 0;
    for line in sums.lines() {
        let (sum, name) = line.split_once("  ").unwrap();
        assert_eq!(hex::encode(Sha256::digest(read(name))), sum, "{name}");
        n += 1;
    }
    assert!(n >= 30, "{n} files");
}

/// Every case of oracle.txt: nodeimg's verdict (all quote checks hold) is the oracle's.
#[test]
fn verdicts_agree_with_tpm2_checkquote() {
    let oracle = String::from_utf8(read("oracle.txt")).unwrap();
    let mut cases = 0;
    for line in oracle.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (name, case, verdict) = (f[0], f[1], f[2]);
        let (ak_name, quote_name) = if name == "partial" { ("rsassa", "partial") } else { (name, name) };
        let ak =
            if case == "valid-pem" { read(&format!("ak-{ak_name}.pem")) } else { read(&format!("ak-{ak_name}.pub")) };
        let mut msg = read(&format!("quote-{quote_name}.msg"));
        let mut sig = read(&format!("quote-{quote_name}.sig"));
        let mut nonce = nonce();
        let mut pcrs = pcrs();
        // The tamperings quote.gen.sh made.
        match case {
            "valid" | "valid-pem" => {}
            "msg-byte" => *msg.last_mut().unwrap() ^= 1,
            "sig-byte" => {
                let mid = sig.len() / 2;
                sig[mid] ^= 1;
            }
            "nonce" => nonce = Sha256::digest(b"another nonce").to_vec(),
            "pcr" => {
                let v = pcrs.get_mut(&HashAlg::Sha256).unwrap().get_mut(&4).unwrap();
                let mut bytes = v.as_bytes().to_vec();
                bytes[0] ^= 1;
                *v = Hex(bytes);
            }
            other => panic!("unknown case {other}"),
        }
        let ak = parse_ak(&ak).unwrap_or_else(|e| panic!("{line}: {e}"));
        let sig = parse_signature(&sig).unwrap_or_else(|e| panic!("{line}: {e}"));
        let v = quote::verify(&msg, &sig, &ak, &nonce, &pcrs, None).unwrap_or_else(|e| panic!("{line}: {e}"));
        let ours = if v.authentication.holds() { "ok" } else { "fail" };
        assert_eq!(ours, verdict, "{line}: {:#?}", v.authentication.checks);
        // The failing check is the tampered part.
        let failed: Vec<&str> =
            v.authentication.checks.iter().filter(|c| c.status == Status::Mismatch).map(|c| c.value.as_str()).collect();
        let want: &[&str] = match case {
            "valid" | "valid-pem" => &[],
            // The last byte is pcrDigest's: the signature and the digest both fail.
            "msg-byte" => &["TPM QUOTE SIGNATURE", "TPM QUOTE PCR DIGEST"],
            "sig-byte" => &["TPM QUOTE SIGNATURE"],
            "nonce" => &["TPM QUOTE NONCE"],
            _ => &["TPM QUOTE PCR DIGEST"],
        };
        assert_eq!(failed, want, "{line}");
        assert_eq!(v.quoted.is_some(), ours == "ok", "{line}");
        cases += 1;
    }
    assert_eq!(cases, 23);
}

/// The parsed quote is what `tpm2_print -t TPMS_ATTEST` reads.
#[test]
fn fields_agree_with_tpm2_print() {
    for name in ["rsassa", "rsapss", "p256", "p384", "partial"] {
        let printed = String::from_utf8(read(&format!("quote-{name}.print.txt"))).unwrap();
        let field = |key: &str| -> Vec<String> {
            printed.lines().filter_map(|l| l.trim().strip_prefix(&format!("{key}: ")).map(str::to_owned)).collect()
        };
        let (a, _) = parse_attest(&read(&format!("quote-{name}.msg"))).unwrap();
        let q = a.quote.as_ref().unwrap();
        assert_eq!(field("magic"), [format!("{:x}", a.magic)], "{name}");
        assert_eq!(field("type"), [format!("{:x}", a.kind)], "{name}");
        assert_eq!(field("qualifiedSigner"), [a.qualified_signer.to_string()], "{name}");
        assert_eq!(field("extraData"), [a.extra_data.to_string()], "{name}");
        assert_eq!(field("clock"), [a.clock_info.clock.to_string()], "{name}");
        assert_eq!(field("resetCount"), [a.clock_info.reset_count.to_string()], "{name}");
        assert_eq!(field("restartCount"), [a.clock_info.restart_count.to_string()], "{name}");
        assert_eq!(field("safe"), [u8::from(a.clock_info.safe).to_string()], "{name}");
        // tpm2_print dumps the 64-bit field's bytes as they lie in a little-endian host's memory
        // ("3636160023101920" for libtpms' 0x20191023_00163636: its FIRMWARE_V1 date, then V2).
        assert_eq!(field("firmwareVersion"), [hex::encode(a.firmware_version.to_le_bytes())], "{name}");
        assert_eq!(a.firmware_version >> 32, 0x2019_1023, "{name}: libtpms' FIRMWARE_V1");
        assert_eq!(field("pcrDigest"), [q.pcr_digest.to_string()], "{name}");
        let hashes: Vec<String> = q.pcr_select.iter().map(|s| format!("{} ({})", s.alg.0, s.alg)).collect();
        assert_eq!(field("hash"), hashes, "{name}");
        // tpm2_print writes the select bytes in hex, PCR n at bit n%8 of byte n/8.
        let selects: Vec<String> = q
            .pcr_select
            .iter()
            .map(|s| {
                let mut bytes = [0u8; 3];
                for p in &s.pcrs {
                    bytes[*p as usize / 8] |= 1 << (p % 8);
                }
                hex::encode(bytes)
            })
            .collect();
        assert_eq!(field("pcrSelect"), selects, "{name}");
    }
}

/// A quote that leaves enforced PCRs out is genuine (tpm2_checkquote accepts it) but fails the
/// selection check against a bundle that enforces them; without a bundle the selection is only
/// reported.
#[test]
fn a_selection_without_an_enforced_pcr_fails() {
    let ak = parse_ak(&read("ak-rsassa.pub")).unwrap();
    let sig = parse_signature(&read("quote-partial.sig")).unwrap();
    let msg = read("quote-partial.msg");
    let mut platform = ReferenceValues::default();
    let values = pcrs();
    let bank = platform.vtpm.entry(HashAlg::Sha256).or_default();
    for i in [0u8, 4, 7, 9] {
        let status = if i == 0 { PcrStatus::Observed } else { PcrStatus::Enforced };
        bank.insert(i, Pcr { value: values[&HashAlg::Sha256][&i].clone(), status });
    }
    let pcr11 = values[&HashAlg::Sha256][&11].clone();
    platform.pcr11.insert(HashAlg::Sha256, BTreeMap::from([("enter-initrd".to_owned(), pcr11)]));
    let v = quote::verify(&msg, &sig, &ak, &nonce(), &values, Some(&platform)).unwrap();
    let status: BTreeMap<&str, Status> = v.authentication.checks.iter().map(|c| (c.value.as_str(), c.status)).collect();
    assert_eq!(status["TPM QUOTE SIGNATURE"], Status::Ok);
    assert_eq!(status["TPM QUOTE PCR DIGEST"], Status::Ok);
    assert_eq!(status["TPM QUOTE PCR SELECTION"], Status::Mismatch);
    let c = v.authentication.checks.iter().find(|c| c.value == "TPM QUOTE PCR SELECTION").unwrap();
    assert_eq!(c.actual, "sha256:0,4,7");
    assert!(c.detail.contains("sha256 PCR 9, 11"), "{c:?}");
    assert!(v.quoted.is_none());

    // The full quote covers them; only the quoted PCRs are vouched for.
    let full = quote::verify(
        &read("quote-rsassa.msg"),
        &parse_signature(&read("quote-rsassa.sig")).unwrap(),
        &ak,
        &nonce(),
        &values,
        Some(&platform),
    )
    .unwrap();
    assert!(full.authentication.holds(), "{:#?}", full.authentication.checks);
    let quoted = full.quoted.unwrap();
    assert_eq!(quoted.keys().copied().collect::<Vec<_>>(), [HashAlg::Sha256]);
    assert_eq!(quoted[&HashAlg::Sha256].keys().copied().collect::<BTreeSet<u8>>(), BTreeSet::from([0, 4, 7, 9, 11]));

    let v = quote::verify(&msg, &sig, &ak, &nonce(), &values, None).unwrap();
    let c = v.authentication.checks.iter().find(|c| c.value == "TPM QUOTE PCR SELECTION").unwrap();
    assert_eq!(c.status, Status::ObservedOnly);
}
