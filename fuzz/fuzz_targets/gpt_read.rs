//! Arbitrary bytes as a disk image whose GPT the workspace's one reader (the `gpt` crate, used by
//! `builder` for `nodeimg build`/`repro` and by `measure` for PCR 5) reads: errors, never a
//! panic, an overflow or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The header at LBA 1 (512-byte sectors); the rest of the input fills the disk after it.
    let mut disk = vec![0u8; 512];
    disk.extend_from_slice(data);
    if let Ok(g) = gpt::Gpt::read_any(disk.as_slice()) {
        assert!(g.event_data().len() >= gpt::HEADER_LEN + 8);
        if let Ok(parts) = g.partitions() {
            for p in parts {
                assert!(p.offset.checked_add(p.size).is_some());
            }
        }
    }
});
