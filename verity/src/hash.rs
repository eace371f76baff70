//! The hash algorithms dm-verity trees are built with, and salted block hashing.

use std::fmt;
use std::str::FromStr;

use crate::{Error, HashType};

/// A hash algorithm veritysetup accepts, by its kernel crypto API name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    /// The name written into the superblock and printed by veritysetup.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Digest length in bytes.
    pub fn digest_size(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// A hasher of data and hash blocks for this algorithm, salt and hash type.
    pub(crate) fn block_hasher(self, salt: &[u8], hash_type: HashType) -> Box<dyn BlockHasher> {
        match self {
            Self::Sha1 => Box::new(Salted::<sha1::Sha1>::new(salt, hash_type)),
            Self::Sha256 => Box::new(Salted::<sha2::Sha256>::new(salt, hash_type)),
            Self::Sha384 => Box::new(Salted::<sha2::Sha384>::new(salt, hash_type)),
            Self::Sha512 => Box::new(Salted::<sha2::Sha512>::new(salt, hash_type)),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = Error;

    /// Accepts the kernel names in any case, as the superblock may carry `SHA256`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            "sha384" => Ok(Self::Sha384),
            "sha512" => Ok(Self::Sha512),
            _ => Err(Error::UnknownHash(s.to_owned())),
        }
    }
}

/// Hashes one block (data or hash) the way `verify_hash_block()` in cryptsetup does.
pub(crate) trait BlockHasher: Send + Sync {
    /// Writes the digest of `block` into `out` (exactly the digest size).
    fn digest_into(&self, block: &[u8], out: &mut [u8]);
}

/// A hasher with the salt already absorbed (format 1) or remembered (format 0).
struct Salted<D> {
    /// The state after `H(salt)` in format 1, the empty state in format 0.
    start: D,
    /// Appended after the block in format 0; empty in format 1.
    suffix: Vec<u8>,
}

impl<D: sha2::Digest + Clone> Salted<D> {
    fn new(salt: &[u8], hash_type: HashType) -> Self {
        match hash_type {
            HashType::Normal => Self { start: D::new_with_prefix(salt), suffix: Vec::new() },
            HashType::ChromeOs => Self { start: D::new(), suffix: salt.to_vec() },
        }
    }
}

impl<D: sha2::Digest + Clone + Send + Sync> BlockHasher for Salted<D> {
    fn digest_into(&self, block: &[u8], out: &mut [u8]) {
        let mut h = self.start.clone();
        h.update(block);
        h.update(&self.suffix);
        out.copy_from_slice(&h.finalize());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in [HashAlgorithm::Sha1, HashAlgorithm::Sha256, HashAlgorithm::Sha384, HashAlgorithm::Sha512] {
            assert_eq!(alg.name().parse::<HashAlgorithm>().unwrap(), alg);
            assert_eq!(alg.name().to_uppercase().parse::<HashAlgorithm>().unwrap(), alg);
        }
        assert!(matches!("md5".parse::<HashAlgorithm>(), Err(Error::UnknownHash(s)) if s == "md5"));
    }

    #[test]
    fn salt_order_depends_on_format() {
        // FIPS 180 "abc" vector: sha256("abc").
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut out = [0u8; 32];
        HashAlgorithm::Sha256.block_hasher(b"a", HashType::Normal).digest_into(b"bc", &mut out);
        assert_eq!(hex::encode(out), abc, "format 1 hashes salt first");
        HashAlgorithm::Sha256.block_hasher(b"c", HashType::ChromeOs).digest_into(b"ab", &mut out);
        assert_eq!(hex::encode(out), abc, "format 0 hashes salt last");
    }
}
