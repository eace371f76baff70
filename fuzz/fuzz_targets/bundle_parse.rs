//! Arbitrary bytes as a bundle: parsing, verification without a signature and every exporter
//! must return errors, never panic; whatever parses must re-serialise canonically and parse back
//! to the same bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use release::export::{constellation, intoto, trustee, Options};
use release::Bundle;

fuzz_target!(|data: &[u8]| {
    let _ = release::verify_bundle(data, None, None);
    let Ok(bundle) = Bundle::parse_lenient(data) else { return };
    let text = bundle.to_canonical_json().expect("a valid bundle has a canonical form");
    let again = Bundle::parse(text.as_bytes()).expect("the canonical form parses");
    assert_eq!(again, bundle);
    let opts = Options::default();
    let _ = constellation::export(&bundle, &opts, "-", "stable");
    let _ = trustee::export(&bundle, &opts);
    let _ = intoto::export(&bundle, data, &opts, intoto::DEFAULT_BUILDER_ID);
});
