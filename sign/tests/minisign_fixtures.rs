//! Known answers from Debian's minisign 0.11, committed in `testdata/` (see its README.md).

use std::path::PathBuf;

use sign::{sign, verify, Algorithm, Error, PublicKey, SecretKeyFile, Signature};

const PASSWORD: &[u8] = b"nodeimg-test-password";

fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn encrypted_key_opens_and_resigns_byte_identically() {
    let pk = PublicKey::parse(&read("encrypted.pub")).unwrap();
    assert_eq!(pk.to_file(), read("encrypted.pub"), "public key file re-serialises exactly");

    let file = SecretKeyFile::parse(&read("encrypted.key")).unwrap();
    assert!(file.is_encrypted());
    let sk = file.decrypt(Some(PASSWORD)).unwrap();
    assert_eq!(sk.public_key(), pk, "the decrypted key is the one minisign generated");

    // Ed25519 is deterministic: signing the same file with the same comments must reproduce
    // minisign's signature file byte for byte.
    let theirs = read("message.txt.minisig");
    let parsed = Signature::parse(&theirs).unwrap();
    assert_eq!(parsed.algorithm, Algorithm::Prehashed);
    assert_eq!(parsed.key_id, pk.key_id());
    let ours = sign(&sk, read("message.txt").as_bytes(), &parsed.trusted_comment, &parsed.untrusted_comment).unwrap();
    assert_eq!(ours.to_file(), theirs);
}

#[test]
fn minisign_signatures_verify() {
    let pk = PublicKey::parse(&read("encrypted.pub")).unwrap();
    let sig = Signature::parse(&read("message.txt.minisig")).unwrap();
    verify(&pk, read("message.txt").as_bytes(), &sig, true).unwrap();
    assert_eq!(sig.trusted_comment, "name:fixture\tversion:1.0.0\tsha256:x");

    let legacy_pk = PublicKey::parse(&read("unencrypted.pub")).unwrap();
    let legacy = Signature::parse(&read("message.txt.legacy.minisig")).unwrap();
    assert_eq!(legacy.algorithm, Algorithm::Legacy);
    verify(&legacy_pk, read("message.txt").as_bytes(), &legacy, false).unwrap();
    assert!(matches!(verify(&legacy_pk, read("message.txt").as_bytes(), &legacy, true), Err(Error::LegacyNotAllowed)));
    assert!(matches!(verify(&legacy_pk, &b"nodeimg minisign fixturE\n"[..], &legacy, false), Err(Error::BadSignature)));
}

#[test]
fn unencrypted_key_opens() {
    let pk = PublicKey::parse(&read("unencrypted.pub")).unwrap();
    // Its key id starts with a zero nibble, which minisign does not print.
    assert_eq!(pk.to_file(), read("unencrypted.pub"), "public key file re-serialises exactly");
    let file = SecretKeyFile::parse(&read("unencrypted.key")).unwrap();
    assert!(!file.is_encrypted());
    assert_eq!(file.decrypt(None).unwrap().public_key(), pk);
}
