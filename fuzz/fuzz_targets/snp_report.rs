//! Arbitrary bytes as an SEV-SNP attestation report: parsing must return an error or a report of
//! a known version, never panic, and a parsed report must go through `attest check`'s comparison.
#![no_main]

use attest::evidence::snp_report;
use attest::ReferenceValues;
use attest::{check, Evidence, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = snp_report::parse(data) else { return };
    assert_eq!(data.len(), snp_report::REPORT_LEN);
    assert!((2..=5).contains(&report.version));
    assert_eq!(report.cpuid.is_some(), report.version >= 3);
    assert_eq!(report.launch_mit_vector.is_some(), report.version >= 5);
    let r = check(&ReferenceValues::default(), &Evidence { snp: Some(&report), ..Default::default() })
        .expect("a report is evidence");
    // Without reference values nothing is enforced but the guest's configuration: a debuggable
    // guest, a report from another VMPL than 0, a policy letting a migration agent in.
    for c in r.checks.iter().filter(|c| c.status == Status::Mismatch) {
        let expected = match c.value.as_str() {
            "SNP POLICY.DEBUG" => report.policy.debug_allowed,
            "SNP VMPL" => report.vmpl != 0,
            "SNP POLICY.MIGRATE_MA" => report.policy.migrate_ma_allowed,
            _ => false,
        };
        assert!(expected, "{c:?}");
    }
});
