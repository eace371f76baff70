//! Arbitrary bytes as the certificates of SEV-SNP report verification: as the VCEK/VLEK (with
//! AMD's real Milan chain), as the `cert_chain` (with a real VCEK) and as an `--ark`.
//! `attest::snp_verify` must return an input error or its check lines, never panic; no forged
//! input may make the report's signature check pass with the real chain unless it is the VCEK.
#![no_main]

use attest::evidence::snp_report;
use attest::snp_verify::{verify, SnpInputs};
use attest::Status;
use libfuzzer_sys::fuzz_target;

const REPORT: &[u8] = include_bytes!("../../attest/testdata/snp-report-v2-milan.bin");
const VCEK: &[u8] = include_bytes!("../../attest/testdata/vcek-milan-gsg.der");
const CHAIN: &[u8] = include_bytes!("../../attest/testdata/cert-chain-milan.pem");
/// 2026-01-01T00:00:00Z, inside the VCEK's validity.
const AT: u64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    let report = snp_report::parse(REPORT).expect("the fixture parses");
    let base = SnpInputs { vek: VCEK, cert_chain: CHAIN, at: AT, ..Default::default() };
    if let Ok(checks) = verify(REPORT, &report, &SnpInputs { vek: data, ..base.clone() }) {
        let sig = checks.iter().find(|c| c.value == "SNP REPORT SIGNATURE").expect("a signature line");
        // Only the VCEK's own key verifies the report (a certificate may wrap it, but then its
        // chain line fails unless it is the VCEK itself).
        if sig.status == Status::Ok && data != VCEK {
            assert!(checks.iter().any(|c| c.status == Status::Mismatch), "{checks:?}");
        }
    }
    let _ = verify(REPORT, &report, &SnpInputs { cert_chain: data, ..base.clone() });
    let _ = verify(REPORT, &report, &SnpInputs { ark: Some(data), ..base });
});
