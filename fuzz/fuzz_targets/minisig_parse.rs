//! Arbitrary text as a minisign signature, public key or secret key file: parsing must return
//! errors, never panic; what parses must round-trip; checking a parsed signature must not panic.
//! (Encrypted secret keys are not decrypted: their scrypt cost is the file's to choose.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use sign::{KeyId, PublicKey, SecretKey, SecretKeyFile, Signature};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(sig) = Signature::parse(text) {
        assert_eq!(Signature::parse(&sig.to_file()).expect("our own output parses"), sig);
        let key = SecretKey::from_seed(KeyId(sig.key_id.0), &[1; 32]).public_key();
        let _ = sign::check(&key, &b"message"[..], &sig, false);
    }
    if let Ok(pk) = PublicKey::parse(text) {
        assert_eq!(PublicKey::parse(&pk.to_file()).expect("our own output parses"), pk);
    }
    if let Ok(sk) = SecretKeyFile::parse(text) {
        if !sk.is_encrypted() {
            let _ = sk.decrypt(None);
        }
    }
});
