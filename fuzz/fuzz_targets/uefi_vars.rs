//! Arbitrary bytes as an OVMF variable store: parsing must return errors, never panic, and
//! every live variable's data must go through the signature-list parser and the PCR 7 model
//! (Secure Boot configuration from the store) without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use measure::boot::SecureBootConfig;
use measure::uefi_vars::{parse_signature_lists, VarStore};

fuzz_target!(|data: &[u8]| {
    let _ = parse_signature_lists(data);
    let Ok(store) = VarStore::parse(data) else { return };
    for v in store.live() {
        let _ = parse_signature_lists(&v.data);
    }
    for support in [false, true] {
        let sb = SecureBootConfig::from_store(&store, support);
        let _ = (sb.secure_boot_variable(), sb.state());
    }
});
