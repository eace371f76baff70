//! Arbitrary bytes as the `--pcrs` JSON file of `nodeimg attest check` (what `nodeimg pcrs read
//! --json` prints): errors, never a panic; what parses has only valid indices and lengths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((values, _skipped)) = attest::pcr_values_from_json(data) {
        for (bank, pcrs) in &values {
            for (index, value) in pcrs {
                assert!(*index <= 23);
                assert_eq!(value.len(), bank.size());
            }
        }
    }
});
