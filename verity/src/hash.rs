//! The hash algorithms dm-verity trees are built with, and salted block hashing.

use crate::{Error, HashType};

pub use digest_alg::HashAlg;
use digest_alg::{Digest, Sha1, Sha256, Sha384, Sha512};

/// The algorithm named `s`, as veritysetup and the superblock name it (any case: a superblock
/// may carry `SHA256`).
pub fn parse_algorithm(s: &str) -> Result<HashAlg, Error> {
    s.parse().map_err(|_| Error::UnknownHash(s.to_owned()))
}

/// A hasher of data and hash blocks for this algorithm, salt and hash type.
pub(crate) fn block_hasher(alg: HashAlg, salt: &[u8], hash_type: HashType) -> Box<dyn BlockHasher> {
    match alg {
        HashAlg::Sha1 => Box::new(Salted::<Sha1>::new(salt, hash_type)),
        HashAlg::Sha256 => Box::new(Salted::<Sha256>::new(salt, hash_type)),
        HashAlg::Sha384 => Box::new(Salted::<Sha384>::new(salt, hash_type)),
        HashAlg::Sha512 => Box::new(Salted::<Sha512>::new(salt, hash_type)),
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

impl<D: Digest + Clone> Salted<D> {
    fn new(salt: &[u8], hash_type: HashType) -> Self {
        match hash_type {
            HashType::Normal => Self { start: D::new_with_prefix(salt), suffix: Vec::new() },
            HashType::ChromeOs => Self { start: D::new(), suffix: salt.to_vec() },
        }
    }
}

impl<D: Digest + Clone + Send + Sync> BlockHasher for Salted<D> {
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
        for alg in HashAlg::ALL {
            assert_eq!(parse_algorithm(alg.name()).unwrap(), alg);
            assert_eq!(parse_algorithm(&alg.name().to_uppercase()).unwrap(), alg);
        }
        assert!(matches!(parse_algorithm("md5"), Err(Error::UnknownHash(s)) if s == "md5"));
    }

    #[test]
    fn salt_order_depends_on_format() {
        // FIPS 180 "abc" vector: sha256("abc").
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut out = [0u8; 32];
        block_hasher(HashAlg::Sha256, b"a", HashType::Normal).digest_into(b"bc", &mut out);
        assert_eq!(hex::encode(out), abc, "format 1 hashes salt first");
        block_hasher(HashAlg::Sha256, b"c", HashType::ChromeOs).digest_into(b"ab", &mut out);
        assert_eq!(hex::encode(out), abc, "format 0 hashes salt last");
    }
}
