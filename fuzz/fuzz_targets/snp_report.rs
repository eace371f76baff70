//! Arbitrary bytes as an SEV-SNP attestation report: parsing must return an error or a report of
//! a known version, never panic, and a parsed report must go through `attest check`'s comparison.
#![no_main]

use libfuzzer_sys::fuzz_target;
use attest::evidence::snp_report;
use attest::{check, Evidence};
use attest::ReferenceValues;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = snp_report::parse(data) else { return };
    assert_eq!(data.len(), snp_report::REPORT_LEN);
    assert!((2..=5).contains(&report.version));
    assert_eq!(report.cpuid.is_some(), report.version >= 3);
    assert_eq!(report.launch_mit_vector.is_some(), report.version >= 5);
    let r = check(&ReferenceValues::default(), &Evidence { snp: Some(&report), ..Default::default() })
        .expect("a report is evidence");
    assert!(r.ok(), "nothing is enforced without reference values");
});
