//! Arbitrary bytes as a `TPMT_SIGNATURE`: parsing must return an error or a signature of a
//! supported scheme, never panic, and checking it against a real quote and key of each kind must
//! return a verdict, never panic.
#![no_main]

use attest::quote::{parse_ak, parse_signature, verify_signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sig) = parse_signature(data) else { return };
    for (ak, msg) in [
        (
            &include_bytes!("../../attest/testdata/quote/ak-rsapss.pub")[..],
            &include_bytes!("../../attest/testdata/quote/quote-rsapss.msg")[..],
        ),
        (
            &include_bytes!("../../attest/testdata/quote/ak-p256.pub")[..],
            &include_bytes!("../../attest/testdata/quote/quote-p256.msg")[..],
        ),
        (
            &include_bytes!("../../attest/testdata/quote/ak-p384.pub")[..],
            &include_bytes!("../../attest/testdata/quote/quote-p384.msg")[..],
        ),
    ] {
        let _ = verify_signature(&parse_ak(ak).unwrap(), &sig, msg);
    }
});
