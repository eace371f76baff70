//! Why `sign` keeps its own signing and verification instead of wrapping the `minisign` crate
//! (0.10, its author's Rust implementation) and `minisign-verify` (0.3): two behaviours that
//! would break what nodeimg promises, shown on the same key and bytes. The key files and
//! signatures interoperate both ways (the last test; the `minisign` CLI is the oracle in
//! `tests/sign_cli.rs`), so the format is the same — the behaviour is not.

use std::io::Cursor;

use sign::{KeyId, SecretKey};

fn key() -> SecretKey {
    SecretKey::from_seed(KeyId([7; 8]), &[42; 32])
}

/// Its key, loaded by the crate from the unencrypted key file nodeimg writes.
fn crate_key() -> (minisign::SecretKey, minisign::PublicKey) {
    let text = key().to_file(None, sign::KdfParams::INTERACTIVE).unwrap();
    let sk = minisign::SecretKeyBox::from_string(&text).unwrap().into_unencrypted_secret_key().unwrap();
    let pk = minisign::PublicKey::from_secret_key(&sk).unwrap();
    (sk, pk)
}

const BUNDLE: &[u8] = b"{\"schema_version\": 1}\n";
const TRUSTED: &str = "name:debian-cvm\tversion:1.0.0";

/// A release signed twice must be byte-identical (`tests/release_cli.rs` checks whole releases):
/// nodeimg's Ed25519 signatures are deterministic; the crate hedges every signature with 64
/// random bytes, so the same key and bundle give a different .minisig each time.
#[test]
fn the_crate_randomises_signatures_a_reproducible_release_cannot_have() {
    let ours = |_| sign::sign(&key(), BUNDLE, TRUSTED, "untrusted comment: x").unwrap().to_file();
    assert_eq!(ours(1), ours(2));
    let (sk, pk) = crate_key();
    let theirs =
        || minisign::sign(Some(&pk), &sk, Cursor::new(BUNDLE), Some(TRUSTED), Some("x")).unwrap().into_string();
    assert_ne!(theirs(), theirs(), "the minisign crate now signs deterministically: reconsider wrapping it");
}

/// `nodeimg verify` tells an altered bundle from an altered trusted comment (a different fix
/// each); `minisign-verify` reports both as the same `InvalidSignature`.
#[test]
fn minisign_verify_cannot_tell_which_part_was_altered() {
    let sig = sign::sign(&key(), BUNDLE, TRUSTED, "untrusted comment: x").unwrap();
    let pk_text = key().public_key().to_base64();
    let mut altered_comment = sig.clone();
    altered_comment.trusted_comment.push('!');
    let altered_bundle = b"{\"schema_version\": 2}\n";

    let ours_bundle = sign::check(&key().public_key(), &altered_bundle[..], &sig, true).unwrap();
    let ours_comment = sign::check(&key().public_key(), BUNDLE, &altered_comment, true).unwrap();
    assert_eq!((ours_bundle.file, ours_bundle.trusted_comment), (false, true));
    assert_eq!((ours_comment.file, ours_comment.trusted_comment), (true, false));

    let pk = minisign_verify::PublicKey::from_base64(&pk_text).unwrap();
    let theirs = |text: &str, data: &[u8]| {
        let s = minisign_verify::Signature::decode(text).unwrap();
        format!("{:?}", pk.verify(data, &s, false).unwrap_err())
    };
    assert_eq!(theirs(&sig.to_file(), altered_bundle), theirs(&altered_comment.to_file(), BUNDLE));
}

/// The formats are one: each side verifies the other's signature with the other's code.
#[test]
fn signatures_interoperate_both_ways() {
    let ours = sign::sign(&key(), BUNDLE, TRUSTED, "untrusted comment: x").unwrap().to_file();
    let pk = minisign_verify::PublicKey::from_base64(&key().public_key().to_base64()).unwrap();
    pk.verify(BUNDLE, &minisign_verify::Signature::decode(&ours).unwrap(), false).unwrap();
    let (sk, cpk) = crate_key();
    let theirs = minisign::sign(Some(&cpk), &sk, Cursor::new(BUNDLE), Some(TRUSTED), None).unwrap().into_string();
    let parsed = sign::Signature::parse(&theirs).unwrap();
    let checks = sign::check(&key().public_key(), BUNDLE, &parsed, true).unwrap();
    assert!(checks.file && checks.trusted_comment);
}

/// Keys: nodeimg writes encrypted keys with the scrypt parameters minisign (C) uses, libsodium's
/// SENSITIVE (1 GiB, N = 2^20); the crate makes its keys with 32 MiB and N = 2^15, 32 times
/// cheaper to attack. So keys are *written* by nodeimg and *opened* by the crate (both ways
/// checked here and against the minisign CLI in `minisign_live.rs`).
#[test]
fn the_crate_makes_keys_with_a_weaker_kdf_than_minisign() {
    let pair = minisign::KeyPair::generate_encrypted_keypair(Some("pw".into())).unwrap();
    let text = pair.sk.to_box(None).unwrap().into_string();
    let theirs = sign::SecretKeyFile::parse(&text).unwrap();
    let params = theirs.kdf_params().unwrap();
    assert!(params.memlimit < sign::KdfParams::SENSITIVE.memlimit, "{params:?}");
    assert!(params.opslimit < sign::KdfParams::SENSITIVE.opslimit, "{params:?}");
    // Opening it is the crate's own job too (nodeimg's SecretKeyFile::decrypt calls it).
    let opened = theirs.decrypt(Some(b"pw")).unwrap();
    assert_eq!(opened.public_key().to_base64(), pair.pk.to_base64());
}
