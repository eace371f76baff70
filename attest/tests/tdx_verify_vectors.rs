//! TDX quote verification (dcap-qvl) against the upstream's recorded verdicts: dcap-qvl's own
//! `tests/verify_quote.rs` `could_parse_tdx_quote` states that `sample/tdx_quote` verifies with
//! `sample/tdx_quote_collateral.json` as `UpToDate` without advisories, at a time inside the
//! collateral's window; `tests/verify_tcb_override.rs` `outdated_fixture_with_override_matches_
//! expected_status` shows that `sample/tdx_quote_outdated` (a quote v5) only reaches `UpToDate`
//! when its TCB status is overridden. Tampered variants (a flipped byte of the quote body, of the
//! signature, of the signed TCB info, a time outside the window) must fail.

use std::path::{Path, PathBuf};

use attest::evidence::tdx_quote;
use attest::tdx_verify::{self, Collateral, TdxInputs};
use attest::Check;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn at(s: &str) -> u64 {
    attest::time::parse_rfc3339(s).unwrap()
}

fn run(quote: &[u8], collateral: &Collateral, when: &str, rd: Option<&[u8]>) -> Vec<Check> {
    let parsed = tdx_quote::parse(quote).unwrap();
    let allowed = vec!["UpToDate".to_string()];
    let inputs = TdxInputs { collateral, at: at(when), allowed_statuses: &allowed, report_data: rd };
    tdx_verify::verify(quote, &parsed, &inputs).unwrap()
}

fn status<'a>(checks: &'a [Check], value: &str) -> (&'a str, &'a str, &'a str) {
    let c = checks.iter().find(|c| c.value == value).unwrap_or_else(|| panic!("no {value}: {checks:#?}"));
    (c.status.name(), c.actual.as_str(), c.detail.as_str())
}

const V4: &str = "tdx-quote-v4-dcapqvl.dat";
const V4_COLLATERAL: &str = "tdx-collateral-v4-dcapqvl.json";
/// Inside the v4 collateral's window (TCB info 2025-06-19T10:16:03Z..2025-07-19T10:16:03Z).
const V4_AT: &str = "2025-07-01T00:00:00Z";

fn v4() -> (Vec<u8>, Collateral) {
    (read(V4), tdx_verify::collateral_from_json(&read(V4_COLLATERAL)).unwrap())
}

#[test]
fn dcap_qvl_sample_v4_is_up_to_date() {
    let (q, c) = v4();
    let checks = run(&q, &c, V4_AT, None);
    assert_eq!(status(&checks, "TDX QUOTE SIGNATURE").0, "ok", "{checks:#?}");
    let (s, actual, detail) = status(&checks, "TDX TCB STATUS");
    assert_eq!((s, actual), ("ok", "UpToDate"));
    assert!(!detail.contains("advisories"), "{detail}");
    assert_eq!(checks.len(), 2);
}

#[test]
fn report_data_binds_the_nonce() {
    let (q, c) = v4();
    let rd = tdx_quote::parse(&q).unwrap().report_data;
    assert_eq!(status(&run(&q, &c, V4_AT, Some(&rd)), "TDX REPORTDATA").0, "ok");
    let mut other = rd;
    other[63] ^= 1;
    assert_eq!(status(&run(&q, &c, V4_AT, Some(&other)), "TDX REPORTDATA").0, "mismatch");
}

#[test]
fn tampered_quotes_and_collateral_fail() {
    let (q, c) = v4();
    // Outside the collateral's window: before its issue date, after its next update.
    for when in ["2025-06-01T00:00:00Z", "2025-08-01T00:00:00Z", "2026-12-01T00:00:00Z"] {
        let checks = run(&q, &c, when, None);
        assert_eq!(status(&checks, "TDX QUOTE SIGNATURE").0, "mismatch", "{when}");
        assert_eq!(status(&checks, "TDX TCB STATUS").0, "mismatch", "{when}");
    }
    // A byte of the TD report body (REPORTDATA, header 48 + 520) and of the quote signature
    // (after the body and the 4-byte signature length).
    for offset in [48 + 520, 48 + 584 + 4] {
        let mut t = q.clone();
        t[offset] ^= 1;
        assert_eq!(status(&run(&t, &c, V4_AT, None), "TDX QUOTE SIGNATURE").0, "mismatch", "offset {offset}");
    }
    // The signed TCB info, changed.
    let mut t = c.clone();
    t.0.tcb_info = t.0.tcb_info.replacen("UpToDate", "UpToDatE", 1);
    assert_eq!(status(&run(&q, &t, V4_AT, None), "TDX QUOTE SIGNATURE").0, "mismatch");
}

#[test]
fn only_allowed_statuses_pass() {
    let (q, c) = v4();
    let parsed = tdx_quote::parse(&q).unwrap();
    let allowed = vec!["OutOfDate".to_string()];
    let inputs = TdxInputs { collateral: &c, at: at(V4_AT), allowed_statuses: &allowed, report_data: None };
    let checks = tdx_verify::verify(&q, &parsed, &inputs).unwrap();
    assert_eq!(
        status(&checks, "TDX TCB STATUS"),
        ("mismatch", "UpToDate", "not an accepted status (TEE_TCB_SVN 06010300000000000000000000000000)")
    );
}

#[test]
fn dcap_qvl_sample_v5_outdated_is_refused() {
    let q = read("tdx-quote-v5-dcapqvl.dat");
    let c = tdx_verify::collateral_from_json(&read("tdx-collateral-v5-dcapqvl.json")).unwrap();
    let parsed = tdx_quote::parse(&q).unwrap();
    assert_eq!(parsed.version, 5);
    assert!(parsed.tee_tcb_svn_2.is_some(), "a TD 1.5 body");
    // Inside its window (2026-02-18T10:58:51Z..2026-03-20T10:42:15Z).
    let checks = run(&q, &c, "2026-03-01T00:00:00Z", None);
    let (s, _, detail) = status(&checks, "TDX TCB STATUS");
    assert_eq!(s, "mismatch");
    assert!(detail.contains("TEE_TCB_SVN2 0d01"), "{detail}");
}

#[test]
fn pcs_directory_reads_as_the_json_collateral() {
    let (q, c) = v4();
    let c = &c.0;
    let body =
        |key: &str, value: &str, sig: &[u8]| format!("{{\"{key}\":{value},\"signature\":\"{}\"}}", hex::encode(sig));
    let mut files = std::collections::BTreeMap::new();
    files.insert("tcbinfo.json".to_string(), body("tcbInfo", &c.tcb_info, &c.tcb_info_signature).into_bytes());
    files.insert(
        "qeidentity.json".to_string(),
        body("enclaveIdentity", &c.qe_identity, &c.qe_identity_signature).into_bytes(),
    );
    files.insert("tcbinfo-issuer-chain.pem".to_string(), c.tcb_info_issuer_chain.clone().into_bytes());
    files.insert("qeidentity-issuer-chain.pem".to_string(), c.qe_identity_issuer_chain.clone().into_bytes());
    files.insert("pckcrl-issuer-chain.pem".to_string(), c.pck_crl_issuer_chain.clone().into_bytes());
    files.insert("pckcrl.der".to_string(), c.pck_crl.clone());
    files.insert("rootcacrl.der".to_string(), c.root_ca_crl.clone());
    let d = tdx_verify::collateral_from_pcs_dir(&files).unwrap();
    assert_eq!(status(&run(&q, &d, V4_AT, None), "TDX TCB STATUS").1, "UpToDate");
    files.remove("rootcacrl.der");
    assert!(tdx_verify::collateral_from_pcs_dir(&files).unwrap_err().to_string().contains("rootcacrl.der is missing"));
    assert!(tdx_verify::collateral_from_json(b"{}").is_err());
}
