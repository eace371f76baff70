//! Arbitrary names, sizes and times into the release archive's ustar writer: a name or a value
//! that does not fit its field must be an error, never a panic or a truncated header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use release::archive::TarWriter;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let mtime = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let rest = &data[8..];
    let (name, body) = rest.split_at(rest.len() / 2);
    let Ok(name) = std::str::from_utf8(name) else { return };
    let mut tar = TarWriter::new(Vec::new(), mtime);
    if tar.file(name, body.len() as u64, body).is_ok() {
        let _ = tar.directory(name);
    }
});
