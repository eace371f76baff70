//! minisign public and secret keys, and the password encryption of secret keys.

use std::fmt;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::{
    algorithm_name, decode_base64, encode_base64, random, Error, KeyId, Lines, COMMENT_MAX_BYTES, COMMENT_PREFIX,
    SIGALG,
};

/// `"Sc"`: the secret key is encrypted with scrypt (minisign.h `KDFALG`).
const KDF_SCRYPT: [u8; 2] = *b"Sc";
/// Two zero bytes: the secret key is stored in the clear (minisign.h `KDFNONE`, `-W`).
const KDF_NONE: [u8; 2] = [0, 0];
/// `"B2"`: the checksum is BLAKE2b-256 (minisign.h `CHKALG`).
const CHKALG: [u8; 2] = *b"B2";
/// The comment minisign writes above every secret key, encrypted or not.
const SECRET_KEY_COMMENT: &str = "minisign encrypted secret key";
/// Length of `keynum_sk`: key id (8) ‖ Ed25519 secret key (64) ‖ checksum (32).
const KEYNUM_SK_LEN: usize = 8 + 64 + 32;
/// Length of the whole secret key structure (minisign.h `SeckeyStruct`).
const SECRET_KEY_LEN: usize = 2 + 2 + 2 + 32 + 8 + 8 + KEYNUM_SK_LEN;
/// Length of the public key structure (minisign.h `PubkeyStruct`).
const PUBLIC_KEY_LEN: usize = 2 + 8 + 32;
/// The most a key file may make us spend on scrypt, checked before the KDF runs: minisign's
/// own keys use libsodium's "sensitive" limits (opslimit 2^25, memlimit 1 GiB: N = 2^20, r = 8,
/// p = 1), the most any minisign key asks for. A key file is input like any other, so larger
/// limits — up to libsodium's 0xffffffff opslimit, hours of work or gigabytes — are refused.
const MAX_OPSLIMIT: u64 = 33_554_432;
/// See [`MAX_OPSLIMIT`]: memlimit, and each of scrypt's two buffers (N·r·128 and p·r·128 bytes).
const MAX_KDF_MEMORY: u64 = 1 << 30;
/// See [`MAX_OPSLIMIT`]: scrypt's total work N·r·p (2^23 for the sensitive limits).
const MAX_KDF_WORK: u64 = 1 << 23;

/// A minisign public key: what a verifier needs.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_id: KeyId,
    key: VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.key_id, self.to_base64())
    }
}

impl PublicKey {
    /// Parses a public key file (`untrusted comment: …` and a base64 line), or the bare base64
    /// string minisign accepts with `-P`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let lines = Lines::new("public key", text);
        let first = lines.get(1, "the base64 public key")?;
        if first.starts_with(COMMENT_PREFIX) {
            lines.comment(1, COMMENT_PREFIX, COMMENT_MAX_BYTES)?;
            let raw = lines.base64::<PUBLIC_KEY_LEN>(2, "the base64 public key")?;
            lines.end(2)?;
            Self::from_raw(raw)
        } else {
            lines.end(1)?;
            Self::from_raw(decode_base64::<PUBLIC_KEY_LEN>("public key", 1, first)?)
        }
    }

    /// Parses the base64 form (the second line of the file).
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        Self::from_raw(decode_base64::<PUBLIC_KEY_LEN>("public key", 1, text)?)
    }

    fn from_raw(raw: [u8; PUBLIC_KEY_LEN]) -> Result<Self, Error> {
        let alg = [raw[0], raw[1]];
        if alg != SIGALG {
            return Err(Error::Algorithm { what: "public key", found: algorithm_name(alg), expected: "\"Ed\"" });
        }
        let key_id = KeyId(raw[2..10].try_into().expect("8 bytes"));
        let key =
            VerifyingKey::from_bytes(raw[10..].try_into().expect("32 bytes")).map_err(|_| Error::InvalidPublicKey)?;
        Ok(Self { key_id, key })
    }

    /// The key id, as the signatures it verifies name it.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The base64 string minisign prints and accepts with `-P`.
    pub fn to_base64(&self) -> String {
        let mut raw = Vec::with_capacity(PUBLIC_KEY_LEN);
        raw.extend_from_slice(&SIGALG);
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(self.key.as_bytes());
        encode_base64(&raw)
    }

    /// The public key file, exactly as `minisign -G` writes it.
    pub fn to_file(&self) -> String {
        format!("{COMMENT_PREFIX}minisign public key {}\n{}\n", self.key_id, self.to_base64())
    }
}

/// scrypt cost parameters, in libsodium's `(opslimit, memlimit)` form as minisign stores them.
///
/// libsodium turns them into scrypt's `(N, r, p)` with `pickparams`
/// (`crypto_pwhash/scryptsalsa208sha256/pwhash_scryptsalsa208sha256.c`); [`KdfParams::scrypt`]
/// does the same so that keys written by either side open on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// libsodium's `opslimit`.
    pub opslimit: u64,
    /// libsodium's `memlimit`, in bytes.
    pub memlimit: u64,
}

impl KdfParams {
    /// `crypto_pwhash_scryptsalsa208sha256_{OPS,MEM}LIMIT_SENSITIVE`, what minisign uses for
    /// every key it generates: N = 2^20, r = 8, p = 1 (1 GiB, a few seconds).
    pub const SENSITIVE: Self = Self { opslimit: 33_554_432, memlimit: 1_073_741_824 };
    /// `crypto_pwhash_scryptsalsa208sha256_{OPS,MEM}LIMIT_INTERACTIVE`: N = 2^14, r = 8, p = 1.
    /// Cheap; for tests.
    pub const INTERACTIVE: Self = Self { opslimit: 524_288, memlimit: 16_777_216 };

    /// scrypt's `(log2 N, r, p)` for these limits, as libsodium's `pickparams` computes them.
    pub fn scrypt(&self) -> Result<(u8, u32, u32), Error> {
        let bad = |why| Error::KdfParams { opslimit: self.opslimit, memlimit: self.memlimit, why };
        if self.opslimit > MAX_OPSLIMIT {
            return Err(bad("opslimit is above 33554432, the most a minisign key uses"));
        }
        if self.memlimit > MAX_KDF_MEMORY {
            return Err(bad("memlimit is above 1 GiB, the most a minisign key uses"));
        }
        let opslimit = self.opslimit.max(32_768);
        let r: u64 = 8;
        let (log_n, p) = if opslimit < self.memlimit / 32 {
            let max_n = opslimit / (r * 4);
            (smallest_log_n_above(max_n / 2), 1)
        } else {
            let max_n = self.memlimit / (r * 128);
            let log_n = smallest_log_n_above(max_n / 2);
            let max_rp = ((opslimit / 4) >> log_n).min(0x3fff_ffff);
            (log_n, max_rp / r)
        };
        let p = p.max(1);
        if (1u64 << log_n).saturating_mul(r * 128) > MAX_KDF_MEMORY || p.saturating_mul(r * 128) > MAX_KDF_MEMORY {
            return Err(bad("scrypt would need more than 1 GiB of memory"));
        }
        if (1u64 << log_n).saturating_mul(r).saturating_mul(p) > MAX_KDF_WORK {
            return Err(bad("scrypt's work N*r*p would be above 2^23, the most a minisign key asks for"));
        }
        let p = u32::try_from(p).map_err(|_| bad("p is too large"))?;
        Ok((log_n, r as u32, p.max(1)))
    }

    fn derive(&self, password: &[u8], salt: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let (log_n, r, p) = self.scrypt()?;
        let params = scrypt::Params::new(log_n, r, p, 32).map_err(|_| Error::KdfParams {
            opslimit: self.opslimit,
            memlimit: self.memlimit,
            why: "scrypt rejects the derived (N, r, p)",
        })?;
        let mut stream = Zeroizing::new(vec![0u8; KEYNUM_SK_LEN]);
        scrypt::scrypt(password, salt, &params, &mut stream).expect("104 bytes is a valid length");
        Ok(stream)
    }
}

/// The smallest `log_n` in 1..63 with `2^log_n > limit`, as libsodium's loop finds it.
fn smallest_log_n_above(limit: u64) -> u8 {
    (1..63).find(|&l| (1u64 << l) > limit).unwrap_or(63)
}

/// A secret (signing) key.
pub struct SecretKey {
    key_id: KeyId,
    signing: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, <redacted>)", self.key_id)
    }
}

impl SecretKey {
    /// A new key pair from the operating system's random number generator, with a random key
    /// id, as `minisign -G` makes one.
    pub fn generate() -> Result<Self, Error> {
        let seed = Zeroizing::new(random::<32>()?);
        Ok(Self::from_seed(KeyId(random::<8>()?), &seed))
    }

    /// The key with this id and Ed25519 seed (deterministic; for tests and key derivation).
    pub fn from_seed(key_id: KeyId, seed: &[u8; 32]) -> Self {
        Self { key_id, signing: SigningKey::from_bytes(seed) }
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey { key_id: self.key_id, key: self.signing.verifying_key() }
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The secret key file as minisign writes it: encrypted with `password` under `params`
    /// (with a fresh random salt), or in the clear when `password` is `None` (`minisign -W`).
    pub fn to_file(&self, password: Option<&[u8]>, params: KdfParams) -> Result<String, Error> {
        let mut keynum_sk = Zeroizing::new([0u8; KEYNUM_SK_LEN]);
        keynum_sk[..8].copy_from_slice(&self.key_id.0);
        keynum_sk[8..72].copy_from_slice(&self.signing.to_keypair_bytes());
        let chk = checksum(&keynum_sk[..72]);
        keynum_sk[72..].copy_from_slice(&chk);

        let mut raw = Zeroizing::new(Vec::with_capacity(SECRET_KEY_LEN));
        raw.extend_from_slice(&SIGALG);
        match password {
            Some(password) => {
                let salt = random::<32>()?;
                let stream = params.derive(password, &salt)?;
                for (b, s) in keynum_sk.iter_mut().zip(stream.iter()) {
                    *b ^= s;
                }
                raw.extend_from_slice(&KDF_SCRYPT);
                raw.extend_from_slice(&CHKALG);
                raw.extend_from_slice(&salt);
                raw.extend_from_slice(&params.opslimit.to_le_bytes());
                raw.extend_from_slice(&params.memlimit.to_le_bytes());
            }
            None => {
                // minisign -W leaves salt and limits zero.
                raw.extend_from_slice(&KDF_NONE);
                raw.extend_from_slice(&CHKALG);
                raw.extend_from_slice(&[0u8; 48]);
            }
        }
        raw.extend_from_slice(&keynum_sk[..]);
        debug_assert_eq!(raw.len(), SECRET_KEY_LEN);
        Ok(format!("{COMMENT_PREFIX}{SECRET_KEY_COMMENT}\n{}\n", encode_base64(&raw)))
    }
}

/// BLAKE2b-256 over `"Ed" ‖ key_id ‖ secret_key` (minisign.c `seckey_compute_chk`); `id_and_sk`
/// is the first 72 bytes of `keynum_sk`.
fn checksum(id_and_sk: &[u8]) -> [u8; 32] {
    let mut h = Blake2b::<U32>::new();
    h.update(SIGALG);
    h.update(id_and_sk);
    h.finalize().into()
}

/// A parsed, possibly still encrypted, secret key file.
pub struct SecretKeyFile {
    kdf: Option<KdfParams>,
    keynum_sk: Zeroizing<[u8; KEYNUM_SK_LEN]>,
    /// The file, for the `minisign` crate to open.
    text: Zeroizing<String>,
}

impl fmt::Debug for SecretKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeyFile").field("kdf", &self.kdf).finish_non_exhaustive()
    }
}

impl SecretKeyFile {
    /// Parses a secret key file (`untrusted comment: …` and a base64 line).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let lines = Lines::new("secret key", text);
        lines.comment(1, COMMENT_PREFIX, COMMENT_MAX_BYTES)?;
        let raw = Zeroizing::new(lines.base64::<SECRET_KEY_LEN>(2, "the base64 secret key")?);
        lines.end(2)?;
        let field = |at: usize| [raw[at], raw[at + 1]];
        if field(0) != SIGALG {
            return Err(Error::Algorithm { what: "secret key", found: algorithm_name(field(0)), expected: "\"Ed\"" });
        }
        if field(4) != CHKALG {
            return Err(Error::ChecksumAlgorithm(algorithm_name(field(4))));
        }
        let kdf = match field(2) {
            KDF_SCRYPT => {
                let le = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8"));
                let params = KdfParams { opslimit: le(38), memlimit: le(46) };
                // Refused here, before any KDF runs, with the reason (the crate caps memory only).
                params.scrypt()?;
                Some(params)
            }
            KDF_NONE => None,
            other => return Err(Error::Kdf(algorithm_name(other))),
        };
        let mut keynum_sk = Zeroizing::new([0u8; KEYNUM_SK_LEN]);
        keynum_sk.copy_from_slice(&raw[54..]);
        Ok(Self { kdf, keynum_sk, text: Zeroizing::new(text.to_owned()) })
    }

    /// Whether [`SecretKeyFile::decrypt`] needs a password.
    pub fn is_encrypted(&self) -> bool {
        self.kdf.is_some()
    }

    /// The scrypt parameters of an encrypted key.
    pub fn kdf_params(&self) -> Option<KdfParams> {
        self.kdf
    }

    /// Opens the key: decrypts it with `password` if it is encrypted, then checks its checksum
    /// and that its public half belongs to its secret half.
    pub fn decrypt(&self, password: Option<&[u8]>) -> Result<SecretKey, Error> {
        let mut keynum_sk = self.keynum_sk.clone();
        let chk_ok = match (&self.kdf, password) {
            (Some(_), None) => return Err(Error::PasswordRequired),
            (Some(_), Some(password)) => {
                // Opening is the `minisign` crate's (scrypt, the XOR, the checksum that tells a
                // wrong password); the parameters were capped by `parse`.
                let password = std::str::from_utf8(password).map_err(|_| Error::PasswordNotUtf8)?;
                if password.is_empty() {
                    return Err(Error::WrongPassword);
                }
                let opened = minisign::SecretKeyBox::from_string(&self.text)
                    .and_then(|b| b.into_secret_key(Some(password.to_owned())))
                    .map_err(|e| match e.kind() {
                        minisign::ErrorKind::Verify => Error::WrongPassword,
                        _ => Error::Minisign(e.to_string()),
                    })?;
                let bytes = Zeroizing::new(opened.to_bytes());
                let clear = bytes
                    .get(SECRET_KEY_LEN - KEYNUM_SK_LEN..SECRET_KEY_LEN)
                    .ok_or(Error::CorruptKey("the minisign crate returned a key of another length"))?;
                keynum_sk.copy_from_slice(clear);
                checksum(&keynum_sk[..72]) == keynum_sk[72..]
            }
            // minisign -W does not fill in the checksum of an unencrypted key: zero means none.
            (None, _) => keynum_sk[72..].iter().all(|&b| b == 0) || checksum(&keynum_sk[..72]) == keynum_sk[72..],
        };
        if !chk_ok {
            return Err(Error::CorruptKey("its checksum does not match"));
        }
        let key_id = KeyId(keynum_sk[..8].try_into().expect("8 bytes"));
        let pair: &[u8; 64] = keynum_sk[8..72].try_into().expect("64 bytes");
        let signing = SigningKey::from_keypair_bytes(pair)
            .map_err(|_| Error::CorruptKey("its public half does not match its secret half"))?;
        Ok(SecretKey { key_id, signing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_seed(KeyId(*b"nodeimg!"), &[7; 32])
    }

    #[test]
    fn pickparams_matches_libsodium() {
        // (opslimit, memlimit) -> (log2 N, r, p). The SENSITIVE and INTERACTIVE rows are the
        // (N, r, p) libsodium documents for its presets; the others exercise both branches.
        for (ops, mem, want) in [
            (33_554_432, 1_073_741_824, (20, 8, 1)),
            (524_288, 16_777_216, (14, 8, 1)),
            (32_768, 1 << 30, (10, 8, 1)),
            (1 << 25, 1 << 24, (14, 8, 64)),
            (1, 1 << 20, (10, 8, 1)),
        ] {
            let p = KdfParams { opslimit: ops, memlimit: mem };
            assert_eq!(p.scrypt().unwrap(), want, "opslimit {ops}, memlimit {mem}");
        }
    }

    #[test]
    fn hostile_kdf_params_are_refused() {
        for (ops, mem, why) in [
            (u64::MAX, 1 << 20, "opslimit is above 33554432"),
            (0xffff_ffff, 1 << 30, "opslimit is above 33554432"),
            (1 << 25, 4 << 30, "memlimit is above 1 GiB"),
            (1 << 32, 1 << 40, "opslimit is above"),
        ] {
            let p = KdfParams { opslimit: ops, memlimit: mem };
            let err = p.scrypt().unwrap_err();
            assert!(matches!(err, Error::KdfParams { .. }), "opslimit {ops}, memlimit {mem}");
            assert!(err.to_string().contains(why), "{err}");
        }
        // The refusal comes before any work: a key file with such limits fails to parse, and
        // parsing never runs the KDF (only decrypting does).
        let mut file = key().to_file(Some(b"pw"), KdfParams::INTERACTIVE).unwrap();
        let raw_b64 = file.lines().nth(1).unwrap().to_owned();
        let mut raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &raw_b64).unwrap();
        raw[38..46].copy_from_slice(&0xffff_ffffu64.to_le_bytes());
        let evil = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw);
        file = file.replace(&raw_b64, &evil);
        let err = SecretKeyFile::parse(&file).unwrap_err();
        assert!(err.to_string().contains("opslimit is above"), "{err}");
    }

    #[test]
    fn unencrypted_round_trip() {
        let file = key().to_file(None, KdfParams::SENSITIVE).unwrap();
        assert!(file.starts_with("untrusted comment: minisign encrypted secret key\n"));
        let parsed = SecretKeyFile::parse(&file).unwrap();
        assert!(!parsed.is_encrypted());
        let back = parsed.decrypt(None).unwrap();
        assert_eq!(back.public_key(), key().public_key());
    }

    #[test]
    fn encrypted_round_trip_and_wrong_password() {
        let file = key().to_file(Some(b"correct horse"), KdfParams::INTERACTIVE).unwrap();
        let parsed = SecretKeyFile::parse(&file).unwrap();
        assert_eq!(parsed.kdf_params(), Some(KdfParams::INTERACTIVE));
        assert!(matches!(parsed.decrypt(None), Err(Error::PasswordRequired)));
        assert!(matches!(parsed.decrypt(Some(b"wrong horse")), Err(Error::WrongPassword)));
        assert!(matches!(parsed.decrypt(Some(b"\xff")), Err(Error::PasswordNotUtf8)));
        let back = parsed.decrypt(Some(b"correct horse")).unwrap();
        assert_eq!(back.public_key(), key().public_key());
    }

    #[test]
    fn corrupted_unencrypted_key_is_detected() {
        let file = key().to_file(None, KdfParams::SENSITIVE).unwrap();
        let b64 = file.lines().nth(1).unwrap();
        let mut raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
        // Flip a bit of the secret seed (offset 54 + 8 = first byte of the Ed25519 key).
        raw[62] ^= 1;
        let bad = format!("untrusted comment: x\n{}\n", encode_base64(&raw));
        assert!(matches!(SecretKeyFile::parse(&bad).unwrap().decrypt(None), Err(Error::CorruptKey(_))));
    }

    #[test]
    fn public_key_file_round_trip() {
        let pk = key().public_key();
        let file = pk.to_file();
        assert!(file.starts_with(&format!("untrusted comment: minisign public key {}\n", pk.key_id())));
        assert_eq!(PublicKey::parse(&file).unwrap(), pk);
        assert_eq!(PublicKey::parse(&pk.to_base64()).unwrap(), pk);
        assert_eq!(PublicKey::from_base64(&pk.to_base64()).unwrap(), pk);
    }

    #[test]
    fn malformed_keys_name_the_problem() {
        let good = key().public_key().to_file();
        let b64 = good.lines().nth(1).unwrap();
        let mut raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
        raw[0] = b'X';
        let wrong_alg = format!("untrusted comment: x\n{}\n", encode_base64(&raw));
        let cases: &[(&str, &str)] = &[
            ("", "line 1 is missing"),
            ("untrusted comment: x\n", "line 2 is missing"),
            ("untrusted comment: x\n!!!\n", "line 2 is not valid base64"),
            ("untrusted comment: x\nRWQ=\n", "decodes to 2 bytes, expected 42"),
            (&wrong_alg, "unsupported signature algorithm \"Xd\""),
            (&format!("{good}extra\n"), "unexpected content on line 3"),
        ];
        for (text, want) in cases {
            let err = PublicKey::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
