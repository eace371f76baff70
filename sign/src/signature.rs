//! minisign signatures: the `.minisig` file, signing and verification.

use std::fmt;
use std::io::{self, Read};

use blake2::{Blake2b512, Digest};
use ed25519_dalek::{Signature as Ed25519Signature, Signer};

use crate::{
    algorithm_name, check_comment, encode_base64, Error, KeyId, Lines, PublicKey, SecretKey, COMMENT_MAX_BYTES,
    COMMENT_PREFIX, SIGALG, TRUSTED_COMMENT_MAX_BYTES, TRUSTED_COMMENT_PREFIX,
};

/// `"ED"`: Ed25519 over the BLAKE2b-512 digest of the file (minisign.h `SIGALG_HASHED`).
const SIGALG_HASHED: [u8; 2] = *b"ED";
/// Length of `alg ‖ key_id ‖ signature` (minisign.h `SigStruct`).
const SIG_STRUCT_LEN: usize = 2 + 8 + 64;

/// What the file signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `ED`: Ed25519 over BLAKE2b-512 of the file; minisign's default since 0.10.
    Prehashed,
    /// `Ed`: Ed25519 over the file itself (`minisign -S -l`); verified, never written.
    Legacy,
}

/// A parsed `.minisig` file.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The first line without its prefix. Not signed: informative only.
    pub untrusted_comment: String,
    /// Whether the file was prehashed.
    pub algorithm: Algorithm,
    /// The id of the key that signed.
    pub key_id: KeyId,
    /// Ed25519 signature over the file (or its BLAKE2b-512 digest).
    pub signature: [u8; 64],
    /// The third line without its prefix, covered by `global_signature`.
    pub trusted_comment: String,
    /// Ed25519 signature over `signature ‖ trusted_comment`.
    pub global_signature: [u8; 64],
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("trusted_comment", &self.trusted_comment)
            .finish_non_exhaustive()
    }
}

impl Signature {
    /// Parses a `.minisig` file, checking it as `minisign -V` does before any cryptography.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let lines = Lines::new("signature", text);
        let untrusted_comment = lines.comment(1, COMMENT_PREFIX, COMMENT_MAX_BYTES)?;
        let raw = lines.base64::<SIG_STRUCT_LEN>(2, "the base64 signature")?;
        let trusted_comment = lines.comment(3, TRUSTED_COMMENT_PREFIX, TRUSTED_COMMENT_MAX_BYTES)?;
        let global_signature = lines.base64::<64>(4, "the base64 global signature")?;
        lines.end(4)?;
        let algorithm = match [raw[0], raw[1]] {
            SIGALG_HASHED => Algorithm::Prehashed,
            SIGALG => Algorithm::Legacy,
            other => {
                return Err(Error::Algorithm {
                    what: "signature",
                    found: algorithm_name(other),
                    expected: "\"ED\" or \"Ed\"",
                })
            }
        };
        Ok(Self {
            untrusted_comment: untrusted_comment.to_owned(),
            algorithm,
            key_id: KeyId(raw[2..10].try_into().expect("8 bytes")),
            signature: raw[10..].try_into().expect("64 bytes"),
            trusted_comment: trusted_comment.to_owned(),
            global_signature,
        })
    }

    /// The `.minisig` file, as minisign writes it.
    pub fn to_file(&self) -> String {
        let alg = match self.algorithm {
            Algorithm::Prehashed => SIGALG_HASHED,
            Algorithm::Legacy => SIGALG,
        };
        let mut raw = Vec::with_capacity(SIG_STRUCT_LEN);
        raw.extend_from_slice(&alg);
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        format!(
            "{COMMENT_PREFIX}{}\n{}\n{TRUSTED_COMMENT_PREFIX}{}\n{}\n",
            self.untrusted_comment,
            encode_base64(&raw),
            self.trusted_comment,
            encode_base64(&self.global_signature)
        )
    }

    /// The bytes the global signature covers.
    fn global_message(&self) -> Vec<u8> {
        [&self.signature[..], self.trusted_comment.as_bytes()].concat()
    }
}

/// BLAKE2b-512 of everything `message` yields (libsodium `crypto_generichash`, 64-byte output).
fn prehash(mut message: impl Read) -> io::Result<[u8; 64]> {
    let mut h = Blake2b512::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match message.read(&mut buf) {
            Ok(0) => return Ok(h.finalize().into()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The prehash of a message fed in pieces, for a caller that reads the message once and hashes
/// it otherwise too (so the sha256 it puts in the trusted comment is of the very bytes signed).
#[derive(Debug, Clone, Default)]
pub struct Prehasher(Blake2b512);

impl Prehasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// BLAKE2b-512 of everything fed.
    pub fn finalize(self) -> [u8; 64] {
        self.0.finalize().into()
    }
}

/// Signs `message` (prehashed, as minisign does by default) with `trusted_comment` bound to it.
///
/// Ed25519 is deterministic: the same key, message and comments give the same signature file.
pub fn sign(
    key: &SecretKey,
    message: impl Read,
    trusted_comment: &str,
    untrusted_comment: &str,
) -> Result<Signature, Error> {
    check_comment("untrusted comment", 1, untrusted_comment, COMMENT_PREFIX, COMMENT_MAX_BYTES)?;
    check_comment("trusted comment", 1, trusted_comment, TRUSTED_COMMENT_PREFIX, TRUSTED_COMMENT_MAX_BYTES)?;
    let digest = prehash(message)?;
    sign_prehash(key, &digest, trusted_comment, untrusted_comment)
}

/// [`sign`] for a message whose prehash ([`Prehasher`]) the caller computed.
pub fn sign_prehash(
    key: &SecretKey,
    digest: &[u8; 64],
    trusted_comment: &str,
    untrusted_comment: &str,
) -> Result<Signature, Error> {
    check_comment("untrusted comment", 1, untrusted_comment, COMMENT_PREFIX, COMMENT_MAX_BYTES)?;
    check_comment("trusted comment", 1, trusted_comment, TRUSTED_COMMENT_PREFIX, TRUSTED_COMMENT_MAX_BYTES)?;
    let signing = key.signing_key();
    let mut sig = Signature {
        untrusted_comment: untrusted_comment.to_owned(),
        algorithm: Algorithm::Prehashed,
        key_id: key.key_id(),
        signature: signing.sign(digest).to_bytes(),
        trusted_comment: trusted_comment.to_owned(),
        global_signature: [0; 64],
    };
    sig.global_signature = signing.sign(&sig.global_message()).to_bytes();
    Ok(sig)
}

/// Which parts of a signature hold (see [`check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// The file signature verifies over the message.
    pub file: bool,
    /// The global signature verifies over the file signature and the trusted comment.
    pub trusted_comment: bool,
}

/// Checks both signatures of `signature` over `message` with `key` and reports each, so a
/// caller can tell a changed file (file fails, comment holds) from a changed comment (file
/// holds, comment fails) from a changed signature (both fail). Errors only when the key id
/// differs, a legacy signature is refused (`require_prehashed`, minisign's `-H`), or reading
/// fails.
pub fn check(
    key: &PublicKey,
    mut message: impl Read,
    signature: &Signature,
    require_prehashed: bool,
) -> Result<Checks, Error> {
    if signature.key_id != key.key_id() {
        return Err(Error::KeyIdMismatch { signature: signature.key_id, public_key: key.key_id() });
    }
    let signed = match signature.algorithm {
        Algorithm::Prehashed => prehash(message)?.to_vec(),
        Algorithm::Legacy if require_prehashed => return Err(Error::LegacyNotAllowed),
        Algorithm::Legacy => {
            let mut all = Vec::new();
            message.read_to_end(&mut all)?;
            all
        }
    };
    let vk = key.verifying_key();
    Ok(Checks {
        file: vk.verify_strict(&signed, &Ed25519Signature::from_bytes(&signature.signature)).is_ok(),
        trusted_comment: vk
            .verify_strict(&signature.global_message(), &Ed25519Signature::from_bytes(&signature.global_signature))
            .is_ok(),
    })
}

/// Verifies `signature` over `message` with `key`, in minisign's order: the key id, the file
/// signature, then the trusted comment. Legacy signatures are accepted unless
/// `require_prehashed` (minisign's `-H`).
///
/// On success the trusted comment in `signature` is authentic.
pub fn verify(
    key: &PublicKey,
    message: impl Read,
    signature: &Signature,
    require_prehashed: bool,
) -> Result<(), Error> {
    let checks = check(key, message, signature, require_prehashed)?;
    if !checks.file {
        return Err(Error::BadSignature);
    }
    if !checks.trusted_comment {
        return Err(Error::BadTrustedComment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_seed(KeyId(*b"nodeimg!"), &[7; 32])
    }

    const MESSAGE: &[u8] = b"the reference values\n";

    fn signed() -> Signature {
        sign(&key(), MESSAGE, "name:test\tversion:1", "signature from nodeimg").unwrap()
    }

    #[test]
    fn round_trip_and_determinism() {
        let sig = signed();
        let file = sig.to_file();
        assert_eq!(Signature::parse(&file).unwrap(), sig);
        assert_eq!(signed().to_file(), file, "Ed25519 signatures are deterministic");
        verify(&key().public_key(), MESSAGE, &sig, true).unwrap();
    }

    #[test]
    fn tampering_is_caught_with_its_own_error() {
        let pk = key().public_key();
        let sig = signed();

        let mut other = MESSAGE.to_vec();
        other[0] ^= 1;
        assert!(matches!(verify(&pk, &other[..], &sig, false), Err(Error::BadSignature)));

        let mut bad = sig.clone();
        bad.signature[5] ^= 1;
        assert!(matches!(verify(&pk, MESSAGE, &bad, false), Err(Error::BadSignature)));

        let mut bad = sig.clone();
        bad.trusted_comment.push('!');
        assert!(matches!(verify(&pk, MESSAGE, &bad, false), Err(Error::BadTrustedComment)));

        let mut bad = sig.clone();
        bad.global_signature[0] ^= 1;
        assert!(matches!(verify(&pk, MESSAGE, &bad, false), Err(Error::BadTrustedComment)));

        let other_key = SecretKey::from_seed(KeyId(*b"another!"), &[9; 32]).public_key();
        assert!(matches!(verify(&other_key, MESSAGE, &sig, false), Err(Error::KeyIdMismatch { .. })));

        // Same id, different key: the signature itself fails.
        let same_id = SecretKey::from_seed(KeyId(*b"nodeimg!"), &[9; 32]).public_key();
        assert!(matches!(verify(&same_id, MESSAGE, &sig, false), Err(Error::BadSignature)));

        let mut legacy = sig;
        legacy.algorithm = Algorithm::Legacy;
        assert!(matches!(verify(&pk, MESSAGE, &legacy, true), Err(Error::LegacyNotAllowed)));
    }

    #[test]
    fn malformed_files_name_the_line() {
        let good = signed().to_file();
        let lines: Vec<&str> = good.lines().collect();
        let truncated_sig = format!("{}\n{}\n", lines[0], &lines[1][..40]);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "line 1 is missing"),
            ("hello\n".into(), "line 1 should start with \"untrusted comment: \""),
            (format!("{}\n", lines[0]), "line 2 is missing"),
            (truncated_sig, "line 2 decodes to 30 bytes, expected 74"),
            (good.replacen(&lines[1][..4], "R!!!", 1), "line 2 is not valid base64"),
            (format!("{}\n{}\n", lines[0], lines[1]), "line 3 is missing"),
            (
                format!("{}\n{}\nfoo\n{}\n", lines[0], lines[1], lines[3]),
                "line 3 should start with \"trusted comment: \"",
            ),
            (format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]), "line 4 is missing"),
            (
                format!("{}\n{}\n{}\n{}\n", lines[0], lines[1], lines[2], &lines[3][..20]),
                "line 4 decodes to 15 bytes, expected 64",
            ),
            (format!("{good}more\n"), "unexpected content on line 5"),
            (
                good.replace("trusted comment: name", "trusted comment: \x1bname"),
                "line 3: the comment contains a control character",
            ),
        ];
        for (text, want) in cases {
            let err = Signature::parse(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
