//! Arbitrary bytes as a disk image whose GPT the builder reads (`nodeimg repro` and the build
//! read any disk image given): errors, never a panic, an overflow or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The header at LBA 1 (512-byte sectors); the rest of the input fills the disk after it.
    let mut disk = vec![0u8; 512];
    disk.extend_from_slice(data);
    disk.resize(disk.len().max(64 << 10), 0);
    let path = std::env::temp_dir().join(format!("nodeimg-fuzz-gpt-{}", std::process::id()));
    std::fs::write(&path, &disk).expect("writing the disk image");
    if let Ok(parts) = builder::gpt::read(&path) {
        for p in parts {
            assert!(p.offset.checked_add(p.size).is_some());
        }
    }
});
