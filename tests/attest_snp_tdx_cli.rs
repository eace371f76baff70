//! `nodeimg attest check` verifying SEV-SNP reports (`--vek --cert-chain`) and TDX quotes
//! (`--collateral`) on their own, with the published evidence of `attest/testdata` (provenance and
//! oracles in its README: Python `cryptography`'s verdicts for SNP, dcap-qvl's recorded verdicts
//! for TDX). The library's verdict tables are `attest/tests/{snp,tdx}_verify_vectors.rs`; here
//! the CLI's lines, JSON, exit codes and input errors.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_fails, nodeimg};
use serde_json::Value;

fn t(file: &str) -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("attest/testdata").join(file);
    assert!(p.exists(), "{}", p.display());
    p.display().to_string()
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn snp(args: &[&str]) -> common::Run {
    let d = dir();
    let (r, v, c) = (t("snp-report-v2-milan.bin"), t("vcek-milan-gsg.der"), t("cert-chain-milan.pem"));
    // This report's guest policy allows debugging (a test VM): accepted, to see the other checks.
    let mut all = vec!["attest", "check", "--allow-debug", "--snp-report", &r, "--vek", &v, "--cert-chain", &c];
    all.extend_from_slice(args);
    nodeimg(d.path(), &all)
}

#[test]
fn snp_report_verified_alone() {
    let run = snp(&["--at", "2026-01-01T00:00:00Z", "--report-data", "0102030405"]);
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        "ok             SNP ARK                ARK-Milan sha256:",
        "ok             SNP ASK                SEV-Milan",
        "ok             SNP VCEK               SEV-VCEK",
        "ok             SNP REPORT SIGNATURE",
        "ok             SNP CHIP_ID",
        // go-sev-guest states this report's TCB: blSPL=2 teeSPL=0 snpSPL=5 ucodeSPL=68.
        "ok             SNP REPORTED_TCB       bootloader 2 tee 0 snp 5 microcode 68",
        "ok             SNP REPORT_DATA        0102030405000000",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("UNAUTHENTICATED"), "{}", run.stdout);
    assert!(!run.stdout.contains("not shown fresh"), "{}", run.stdout);
    let run = snp(&["--at", "2026-01-01T00:00:00Z", "--json"]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!((v["ok"].as_bool(), v["authenticity"].as_str()), (Some(true), Some("authenticated")), "{v}");
    assert_eq!(v["checks"][0]["value"], "SNP ARK");
    // Genuine, but without the verifier's nonce nothing shows it is not an old report: said.
    assert!(v["notes"].to_string().contains("the SNP report is not shown fresh: no --report-data"), "{v}");
}

#[test]
fn snp_failures_exit_1() {
    // Another chip's VCEK.
    let d = dir();
    let (r, v, c) = (t("snp-report-v2-milan.bin"), t("vcek-milan-virtee.der"), t("cert-chain-milan.pem"));
    let run = nodeimg(
        d.path(),
        &["attest", "check", "--snp-report", &r, "--vek", &v, "--cert-chain", &c, "--at", "2026-01-01T00:00:00Z"],
    );
    assert_fails(&run, 1, &["mismatch       SNP REPORT SIGNATURE", "mismatch       SNP CHIP_ID"]);
    // The wrong nonce, a too-high minimum TCB, a time outside the VCEK's window (2022-09-24..2029-09-24).
    assert_fails(
        &snp(&["--at", "2026-01-01T00:00:00Z", "--report-data", "00"]),
        1,
        &["mismatch       SNP REPORT_DATA"],
    );
    assert_fails(
        &snp(&["--at", "2026-01-01T00:00:00Z", "--min-tcb", "snp=6"]),
        1,
        &["mismatch       SNP MIN_TCB", "snp 5 < 6"],
    );
    assert_fails(
        &snp(&["--at", "2030-01-01T00:00:00Z"]),
        1,
        &["mismatch       SNP VCEK", "expired at 2030-01-01T00:00:00Z"],
    );
    // Another root trusted instead of AMD's Milan ARK.
    assert_fails(
        &snp(&["--at", "2026-01-01T00:00:00Z", "--ark", &t("ark-genoa.pem")]),
        1,
        &["mismatch       SNP ARK", "none of the trusted roots"],
    );
}

/// A version 5 report from a Turin chip with that chip's VCEK (project-oak/oak's test data). Oak
/// states which VCEK it is: the one KDS serves at `vcek/v1/Turin/3b42092f69c656d3?ucodeSPL=71&
/// snpSPL=2&teeSPL=0&blSPL=1&fmcSPL=0`, so that CHIP_ID (8 bytes on Turin) and that TCB.
#[test]
fn snp_turin_report_verified() {
    let turin = |report: &str, args: &[&str]| {
        let d = dir();
        let (v, c) = (t("vcek-turin-oak.der"), t("cert-chain-turin.pem"));
        let mut all = vec!["attest", "check", "--snp-report", report, "--vek", &v, "--cert-chain", &c];
        all.extend_from_slice(&["--at", "2026-01-01T00:00:00Z"]);
        all.extend_from_slice(args);
        nodeimg(d.path(), &all)
    };
    let r = t("snp-report-v5-turin.bin");
    let run = turin(&r, &["--min-tcb", "fmc=0,bootloader=1,tee=0,snp=2,microcode=71"]);
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        "ok             SNP ARK                ARK-Turin sha256:",
        "ok             SNP ASK                SEV-Turin",
        "ok             SNP VCEK               SEV-VCEK",
        "ok             SNP REPORT SIGNATURE",
        "ok             SNP CHIP_ID            3b42092f69c656d3  ",
        "ok             SNP REPORTED_TCB       fmc 0 bootloader 1 tee 0 snp 2 microcode 71",
        "ok             SNP MIN_TCB",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    assert_fails(&turin(&r, &["--min-tcb", "fmc=1"]), 1, &["mismatch       SNP MIN_TCB", "fmc 0 < 1"]);
    // CHIP_ID byte 8, past the 8-byte hwID: Turin writes zeros there.
    let d = dir();
    let mut bytes = std::fs::read(&r).unwrap();
    bytes[0x1a8] ^= 1;
    let tail = d.path().join("chip-id-tail.bin");
    std::fs::write(&tail, bytes).unwrap();
    assert_fails(
        &turin(tail.to_str().unwrap(), &[]),
        1,
        &["mismatch       SNP CHIP_ID", "CHIP_ID byte 8 is not zero", "mismatch       SNP REPORT SIGNATURE"],
    );
    // A reserved byte of CURRENT_TCB (0x3c): the sev crate drops it when it re-encodes the report
    // to check the signature, which then held; the given bytes are not the signed ones.
    let mut bytes = std::fs::read(&r).unwrap();
    bytes[0x3c] = 0x99;
    let reserved = d.path().join("tcb-reserved.bin");
    std::fs::write(&reserved, bytes).unwrap();
    assert_fails(
        &turin(reserved.to_str().unwrap(), &[]),
        1,
        &["mismatch       SNP REPORT SIGNATURE", "byte 0x3c is not what the signature covers"],
    );
}

#[test]
fn snp_unusable_input_exits_2() {
    let junk = t("snp-cases.json");
    let run = snp(&["--ark", &junk]);
    assert_fails(&run, 2, &["the trusted ARK is not an X.509 certificate"]);
    let d = dir();
    let r = t("snp-report-v2-milan.bin");
    let run = nodeimg(
        d.path(),
        &["attest", "check", "--snp-report", &r, "--vek", &junk, "--cert-chain", &t("cert-chain-milan.pem")],
    );
    assert_fails(&run, 2, &["snp-cases.json: the VCEK/VLEK is not an X.509 certificate"]);
    assert_fails(&snp(&["--at", "yesterday"]), 2, &["not an RFC 3339 UTC time"]);
    assert_fails(&snp(&["--report-data", "zz"]), 2, &["not hex"]);
    assert_fails(&snp(&["--min-tcb", "spl=1"]), 2, &["not a TCB component"]);
    // A nonce without a signature to bind it.
    let run = nodeimg(d.path(), &["attest", "check", "--snp-report", &r, "--report-data", "00"]);
    assert_fails(&run, 2, &["--report-data needs --vek"]);
}

fn tdx(quote: &str, collateral: &str, args: &[&str]) -> common::Run {
    let d = dir();
    let (q, c) = (t(quote), t(collateral));
    let mut all = vec!["attest", "check", "--tdx-quote", &q, "--collateral", &c];
    all.extend_from_slice(args);
    nodeimg(d.path(), &all)
}

#[test]
fn tdx_quote_verified_alone() {
    // dcap-qvl's `could_parse_tdx_quote`: UpToDate inside the collateral's window.
    let run =
        tdx("tdx-quote-v4-dcapqvl.dat", "tdx-collateral-v4-dcapqvl.json", &["--at", "2025-07-01T00:00:00Z", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!((v["ok"].as_bool(), v["authenticity"].as_str()), (Some(true), Some("authenticated")), "{v}");
    assert_eq!(v["checks"][1]["value"], "TDX TCB STATUS");
    assert_eq!(v["checks"][1]["actual"], "UpToDate");
    assert!(v["notes"].to_string().contains("the TDX quote is not shown fresh: no --report-data"), "{v}");
    // Outside the window: the collateral expired.
    let run = tdx("tdx-quote-v4-dcapqvl.dat", "tdx-collateral-v4-dcapqvl.json", &["--at", "2026-01-01T00:00:00Z"]);
    assert_fails(&run, 1, &["mismatch       TDX QUOTE SIGNATURE", "mismatch       TDX TCB STATUS"]);
    // Only OutOfDate allowed: UpToDate is refused.
    let run = tdx(
        "tdx-quote-v4-dcapqvl.dat",
        "tdx-collateral-v4-dcapqvl.json",
        &["--at", "2025-07-01T00:00:00Z", "--allow-tcb-status", "OutOfDate"],
    );
    assert_fails(&run, 1, &["mismatch       TDX TCB STATUS         UpToDate"]);
    // The v5 "outdated" sample is refused by default.
    let run = tdx("tdx-quote-v5-dcapqvl.dat", "tdx-collateral-v5-dcapqvl.json", &["--at", "2026-03-01T00:00:00Z"]);
    assert_fails(&run, 1, &["mismatch       TDX TCB STATUS", "TEE_TCB_SVN2"]);
    // Not collateral: exit 2.
    let run = tdx("tdx-quote-v4-dcapqvl.dat", "snp-cases.json", &[]);
    assert_fails(&run, 2, &["not DCAP collateral JSON"]);
}
