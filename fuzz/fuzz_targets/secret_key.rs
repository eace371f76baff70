//! Arbitrary bytes as an encrypted minisign secret key: parsing must refuse scrypt limits above
//! minisign's own before any work, and decrypting what parses (when its KDF is cheap enough to
//! fuzz: N <= 2^12) must return an error or a key, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sign::SecretKeyFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = SecretKeyFile::parse(text) else { return };
    match file.kdf_params() {
        None => {
            let _ = file.decrypt(None);
        }
        Some(p) => {
            let (log_n, r, p_) = p.scrypt().expect("parse already checked the limits");
            assert!((1u64 << log_n) * u64::from(r) * 128 <= 1 << 30, "N*r*128 over 1 GiB passed parsing");
            assert!(u64::from(p_) * u64::from(r) * 128 <= 1 << 30, "p*r*128 over 1 GiB passed parsing");
            if log_n <= 12 && p_ <= 4 {
                let _ = file.decrypt(Some(b"password"));
            }
        }
    }
});
