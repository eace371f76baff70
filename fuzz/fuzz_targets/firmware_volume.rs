//! Arbitrary bytes as firmware code: the firmware-volume walker (volumes, FFS files, sections,
//! LZMA-compressed sections, volumes inside sections) behind `measure pcrs --firmware-code` must
//! never panic, and decompression stays within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 1 << 20 {
        return;
    }
    if let Ok(files) = measure::fv::files(data) {
        let _ = files.iter().map(|f| f.location.len()).sum::<usize>();
    }
    let _ = measure::fv::secure_boot_support(data);
});
