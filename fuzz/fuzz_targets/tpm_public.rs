//! Arbitrary bytes as an attestation key (`TPM2B_PUBLIC` or a PEM public key): parsing must
//! return an error or a key of a supported kind, never panic, and a parsed key must refuse a
//! signature it did not make.
#![no_main]

use attest::quote::{parse_ak, parse_signature, verify_signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ak) = parse_ak(data) else { return };
    let _ = ak.describe();
    for sig in [
        &include_bytes!("../../attest/testdata/quote/quote-rsassa.sig")[..],
        &include_bytes!("../../attest/testdata/quote/quote-p256.sig")[..],
        &include_bytes!("../../attest/testdata/quote/quote-p384.sig")[..],
    ] {
        let sig = parse_signature(sig).unwrap();
        // The fixtures' signatures are over the fixtures' quotes, not over these bytes.
        assert!(verify_signature(&ak, &sig, b"not the signed bytes").is_err());
    }
});
