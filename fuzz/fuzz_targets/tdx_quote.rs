//! Arbitrary bytes as a TDX quote: parsing must return an error or a version 4/5 TDX quote whose
//! parts fit the input, never panic, and a parsed quote must go through `attest check`'s
//! comparison.
#![no_main]

use attest::evidence::tdx_quote::{self, TdReportVersion};
use attest::{check, Evidence, ReferenceValues, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(quote) = tdx_quote::parse(data) else { return };
    assert!(quote.version == 4 || quote.version == 5);
    assert_eq!(quote.tee_type, tdx_quote::TEE_TYPE_TDX);
    let body = match quote.td_report {
        TdReportVersion::V10 => tdx_quote::BODY_10_LEN,
        TdReportVersion::V15 => tdx_quote::BODY_15_LEN,
    };
    assert_eq!(quote.mr_service_td.is_some(), quote.td_report == TdReportVersion::V15);
    let descriptor = if quote.version == 5 { 6 } else { 0 };
    let end = tdx_quote::HEADER_LEN + descriptor + body + 4 + quote.signature_data_len as usize;
    assert_eq!(end + quote.trailing_bytes, data.len());
    let r = check(&ReferenceValues::default(), &Evidence { tdx: Some(&quote), ..Default::default() })
        .expect("a quote is evidence");
    // Without reference values nothing is enforced but the guest's configuration: a debug TD
    // fails on its own, and only for that.
    for c in r.checks.iter().filter(|c| c.status == Status::Mismatch) {
        assert_eq!(c.value, "TDX TDATTRIBUTES.DEBUG", "{c:?}");
        assert!(quote.td_attributes.debug, "{c:?}");
    }
});
