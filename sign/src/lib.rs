//! minisign keys and signatures, readable and writable by the `minisign` CLI.
//!
//! A reference-value bundle is only worth something if a verifier can tell that it came from the
//! image's publisher. We sign with [minisign]'s format because it is small enough to audit, has
//! independent implementations in many languages, and is packaged by Debian: a verifier who
//! does not trust `nodeimg` can check a bundle with `minisign -V` alone.
//!
//! The format, as minisign 0.11/0.12 (`src/minisign.c`, `src/minisign.h`) reads and writes it:
//!
//! * **Public key**: an `untrusted comment:` line and the base64 of
//!   `"Ed" ‖ key_id[8] ‖ ed25519_public_key[32]`.
//! * **Secret key**: an `untrusted comment:` line and the base64 of
//!   `"Ed" ‖ kdf_alg[2] ‖ "B2" ‖ salt[32] ‖ opslimit[8, LE] ‖ memlimit[8, LE] ‖ keynum_sk[104]`,
//!   where `keynum_sk = key_id[8] ‖ ed25519_secret_key[64] ‖ checksum[32]` and the checksum is
//!   BLAKE2b-256 of `"Ed" ‖ key_id ‖ secret_key`. With `kdf_alg = "Sc"`, `keynum_sk` is XORed
//!   with 104 bytes of scrypt (libsodium's `crypto_pwhash_scryptsalsa208sha256`) of the password;
//!   with `kdf_alg = "\0\0"` it is stored in the clear (see [`KdfParams`]).
//! * **Signature**: four lines — `untrusted comment: …`, the base64 of
//!   `alg[2] ‖ key_id[8] ‖ signature[64]`, `trusted comment: …`, and the base64 of the *global*
//!   signature over `signature ‖ trusted_comment`. With `alg = "ED"` the file is prehashed
//!   (Ed25519 over its BLAKE2b-512 digest, what minisign writes by default); `alg = "Ed"` is the
//!   legacy form, Ed25519 over the whole file, which we verify but do not write.
//!
//! The trusted comment is covered by the global signature, so a verifier can rely on it; the
//! untrusted one is not. `nodeimg` puts the bundle's name, version and SHA-256 into the trusted
//! comment, which is why this crate treats the comment as a first-class part of a [`Signature`].
//!
//! Encrypted secret keys are opened by the `minisign` crate (its author's Rust implementation:
//! scrypt, the XOR, the checksum that tells a wrong password), after nodeimg has capped the
//! key file's scrypt parameters. Keys are written, and bundles signed and verified, here:
//! `tests/minisign_crate.rs` shows why — the crate makes keys with a 32× cheaper KDF than
//! minisign (C), hedges its signatures with random bytes (a release signed twice would differ),
//! and (as `minisign-verify`) cannot tell an altered bundle from an altered trusted comment.
//! Ed25519 comes from `ed25519-dalek` (strict verification, as libsodium's
//! `crypto_sign_verify_detached` rejects non-canonical signatures), BLAKE2b from `blake2`, scrypt
//! for writing keys from `scrypt`. The crate never prints, never prompts and never touches
//! files: passwords and file contents come in as bytes, keys and signatures go out as the text
//! minisign writes.
//!
//! [minisign]: https://jedisct1.github.io/minisign/

use std::fmt;

use base64::Engine as _;

mod key;
mod signature;

pub use key::{KdfParams, PublicKey, SecretKey, SecretKeyFile};
pub use signature::{check, sign, sign_prehash, verify, Algorithm, Checks, Prehasher, Signature};

/// Everything that can be wrong with a key, a signature, or a password.
///
/// `what` names the kind of file ("public key", "secret key", "signature"); the caller adds
/// the path. Line numbers count from 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A line that should start with a fixed prefix does not.
    #[error("{what}: line {line} should start with {prefix:?}")]
    MissingPrefix { what: &'static str, line: usize, prefix: &'static str },
    /// The file ended before a required line.
    #[error("{what}: line {line} is missing ({expected})")]
    MissingLine { what: &'static str, line: usize, expected: &'static str },
    /// Something follows the last line of the format.
    #[error("{what}: unexpected content on line {line}")]
    TrailingContent { what: &'static str, line: usize },
    /// A comment holds a character minisign does not accept (control characters, CR).
    #[error("{what}: line {line}: the comment contains a control character")]
    Unprintable { what: &'static str, line: usize },
    /// A comment is longer than minisign's buffers allow.
    #[error("{what}: line {line}: the comment is {len} bytes long, at most {max} are allowed")]
    CommentTooLong { what: &'static str, line: usize, len: usize, max: usize },
    /// A base64 line does not decode.
    #[error("{what}: line {line} is not valid base64")]
    Base64 { what: &'static str, line: usize },
    /// A base64 line decodes to the wrong number of bytes.
    #[error("{what}: line {line} decodes to {got} bytes, expected {expected}")]
    Length { what: &'static str, line: usize, got: usize, expected: usize },
    /// The two-byte algorithm tag is not one this format defines.
    #[error("{what}: unsupported signature algorithm {found:?} (expected {expected})")]
    Algorithm { what: &'static str, found: String, expected: &'static str },
    /// The secret key uses a key derivation function other than scrypt or none.
    #[error("secret key: unsupported key derivation function {0:?} (expected \"Sc\" or none)")]
    Kdf(String),
    /// The secret key uses a checksum other than BLAKE2b.
    #[error("secret key: unsupported checksum function {0:?} (expected \"B2\")")]
    ChecksumAlgorithm(String),
    /// The scrypt parameters are outside what libsodium accepts or what we are willing to spend.
    #[error("secret key: key derivation parameters out of range (opslimit {opslimit}, memlimit {memlimit}): {why}")]
    KdfParams { opslimit: u64, memlimit: u64, why: &'static str },
    /// An encrypted secret key was opened without a password.
    #[error("secret key is encrypted: a password is required")]
    PasswordRequired,
    /// The decrypted key's checksum does not match: the password is wrong.
    #[error("secret key: wrong password (the decrypted key's checksum does not match)")]
    WrongPassword,
    /// minisign keys made by nodeimg and opened by it use UTF-8 passwords (the `minisign`
    /// crate's `String`).
    #[error("the password is not UTF-8")]
    PasswordNotUtf8,
    /// The `minisign` crate could not make or open a key.
    #[error("minisign: {0}")]
    Minisign(String),
    /// An unencrypted key's checksum, or its embedded public half, does not match.
    #[error("secret key is corrupted: {0}")]
    CorruptKey(&'static str),
    /// The bytes are not a valid Ed25519 public key.
    #[error("public key: not a valid Ed25519 point")]
    InvalidPublicKey,
    /// The signature was made by another key.
    #[error("the signature was made by key {signature}, but the public key is {public_key}")]
    KeyIdMismatch { signature: KeyId, public_key: KeyId },
    /// The file's signature does not verify: the file or the signature was changed.
    #[error("the signature does not match the file (the file or its signature was altered)")]
    BadSignature,
    /// The signature over the trusted comment does not verify: the comment was changed.
    #[error("the trusted comment does not match its signature (the comment was altered)")]
    BadTrustedComment,
    /// A legacy (non-prehashed) signature where a prehashed one is required.
    #[error("legacy (non-prehashed) signature where a prehashed one is required")]
    LegacyNotAllowed,
    /// Reading the message failed.
    #[error("reading the signed data: {0}")]
    Io(#[from] std::io::Error),
    /// The system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// The 8-byte identifier minisign stores in keys and signatures so a verifier can tell which key
/// made a signature without trying each.
///
/// Displayed as minisign does: the bytes read as a little-endian `u64`, in upper-case hex
/// (`minisign.c`, `"%016" PRIX64` of `le64_load(keynum)`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // minisign prints `%" PRIX64`: no zero padding, so a key id may have fewer than 16 digits.
        write!(f, "{:X}", u64::from_le_bytes(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// `"untrusted comment: "`, the first line of every minisign file.
pub(crate) const COMMENT_PREFIX: &str = "untrusted comment: ";
/// `"trusted comment: "`, the third line of a signature.
pub(crate) const TRUSTED_COMMENT_PREFIX: &str = "trusted comment: ";
/// minisign's `COMMENTMAXBYTES`: the buffer for a comment line including prefix, newline, NUL.
pub(crate) const COMMENT_MAX_BYTES: usize = 1024;
/// minisign's `TRUSTEDCOMMENTMAXBYTES`.
pub(crate) const TRUSTED_COMMENT_MAX_BYTES: usize = 8192;
/// `"Ed"`: the signature algorithm of keys and of legacy signatures.
pub(crate) const SIGALG: [u8; 2] = *b"Ed";

/// The lines of a minisign file: split on `\n`, one trailing `\r` dropped (minisign's `trim`).
pub(crate) struct Lines<'a> {
    what: &'static str,
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(what: &'static str, text: &'a str) -> Self {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let lines = if text.is_empty() {
            Vec::new()
        } else {
            text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
        };
        Self { what, lines }
    }

    /// Line `n` (1-based), or [`Error::MissingLine`].
    pub(crate) fn get(&self, n: usize, expected: &'static str) -> Result<&'a str, Error> {
        self.lines.get(n - 1).copied().ok_or(Error::MissingLine { what: self.what, line: n, expected })
    }

    /// Line `n` without `prefix`, checked to be a printable comment of at most `max` bytes.
    pub(crate) fn comment(&self, n: usize, prefix: &'static str, max: usize) -> Result<&'a str, Error> {
        let line = self.get(n, prefix.trim_end())?;
        let comment = line.strip_prefix(prefix).ok_or(Error::MissingPrefix { what: self.what, line: n, prefix })?;
        check_comment(self.what, n, comment, prefix, max)?;
        Ok(comment)
    }

    /// Line `n` decoded from base64 into exactly `N` bytes.
    pub(crate) fn base64<const N: usize>(&self, n: usize, expected: &'static str) -> Result<[u8; N], Error> {
        let line = self.get(n, expected)?;
        decode_base64::<N>(self.what, n, line)
    }

    /// Fails if anything but empty lines follows line `last`.
    pub(crate) fn end(&self, last: usize) -> Result<(), Error> {
        match self.lines[last.min(self.lines.len())..].iter().position(|l| !l.is_empty()) {
            None => Ok(()),
            Some(i) => Err(Error::TrailingContent { what: self.what, line: last + i + 1 }),
        }
    }
}

/// Checks a comment as minisign would: no control characters but tab, and a length that fits
/// minisign's `fgets` buffer of `max` bytes together with `prefix`, the newline and the NUL.
pub(crate) fn check_comment(
    what: &'static str,
    line: usize,
    comment: &str,
    prefix: &str,
    max: usize,
) -> Result<(), Error> {
    if comment.chars().any(|c| c != '\t' && c.is_control()) {
        return Err(Error::Unprintable { what, line });
    }
    let limit = max - prefix.len() - 2;
    if comment.len() > limit {
        return Err(Error::CommentTooLong { what, line, len: comment.len(), max: limit });
    }
    Ok(())
}

pub(crate) fn decode_base64<const N: usize>(what: &'static str, line: usize, text: &str) -> Result<[u8; N], Error> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(text.trim_end()).map_err(|_| Error::Base64 { what, line })?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| Error::Length { what, line, got, expected: N })
}

pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
    Ok(buf)
}

pub(crate) fn algorithm_name(tag: [u8; 2]) -> String {
    String::from_utf8_lossy(&tag).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_displays_as_minisign() {
        // minisign prints le64_load(keynum) with %016PRIX64: the bytes reversed, upper case.
        let id = KeyId([0xa4, 0x2f, 0x65, 0x99, 0xe9, 0x6f, 0x8e, 0xd2]);
        assert_eq!(id.to_string(), "D28E6FE999652FA4");
    }

    #[test]
    fn comments_reject_control_characters() {
        // minisign: fgets into 8192 bytes must hold "trusted comment: ", the comment and "\n".
        let longest = "x".repeat(8192 - 17 - 2);
        let too_long = "x".repeat(8192 - 17 - 1);
        for (comment, ok) in [
            ("plain", true),
            ("tab\tseparated", true),
            ("unicodé ✓", true),
            ("carriage\rreturn", false),
            ("bell\x07", false),
            ("del\x7f", false),
            (longest.as_str(), true),
            (too_long.as_str(), false),
        ] {
            assert_eq!(
                check_comment("signature", 3, comment, TRUSTED_COMMENT_PREFIX, TRUSTED_COMMENT_MAX_BYTES).is_ok(),
                ok,
                "{comment:?}"
            );
        }
    }
}
