//! Arbitrary bytes as a TPM quote (`TPMS_ATTEST` or `TPM2B_ATTEST`): parsing must return an error
//! or a structure consistent with its type, never panic, and verifying it (with a real AK and
//! signature from attest/testdata/quote) must give the quote's checks, whatever they say.
#![no_main]

use attest::quote::{self, parse_ak, parse_attest, parse_signature, TPM_ST_ATTEST_QUOTE};
use attest::{PcrValues, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((attest, signed)) = parse_attest(data) else { return };
    assert!(signed.len() == data.len() || signed.len() + 2 == data.len());
    assert_eq!(attest.quote.is_some(), attest.kind == TPM_ST_ATTEST_QUOTE);
    let ak = parse_ak(include_bytes!("../../attest/testdata/quote/ak-rsassa.pub")).unwrap();
    let sig = parse_signature(include_bytes!("../../attest/testdata/quote/quote-rsassa.sig")).unwrap();
    let v = quote::verify(data, &sig, &ak, &[0; 32], &PcrValues::new(), None).expect("it parsed once");
    assert!(v.authentication.checks.iter().any(|c| c.value == "TPM QUOTE SIGNATURE"));
    // No PCR values: a quote's digest cannot be checked, so nothing arbitrary passes.
    assert!(v.authentication.checks.iter().any(|c| c.status == Status::Mismatch));
    assert!(v.quoted.is_none());
});
