//! The hash algorithms dm-verity trees are built with, and salted block hashing.

use crate::{Error, HashType};

pub use digest_alg::HashAlg;
use digest_alg::{Digest, Sha1, Sha256, Sha384, Sha512};

/// The algorithm named `s`, as veritysetup and the superblock name it (any case: a superblock
/// may carry `SHA256`).
pub fn parse_algorithm(s: &str) -> Result<HashAlg, Error> {
    s.parse().map_err(|_| Error::UnknownHash(s.to_owned()))
}

/// A hasher of data and hash blocks for this algorithm, salt and hash type: several blocks at
/// once where this CPU hashes several messages of the algorithm at once ([`HashAlg::lanes`]).
pub(crate) fn block_hasher(alg: HashAlg, salt: &[u8], hash_type: HashType) -> Box<dyn BlockHasher> {
    if alg.lanes() > 1 {
        return Box::new(Lanes { alg, salt: salt.to_vec(), hash_type });
    }
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

    /// Writes the digests of the consecutive `size`-byte blocks of `blocks` into `out`, the
    /// digest of block i at `i * stride`.
    fn digest_blocks_into(&self, blocks: &[u8], size: usize, out: &mut [u8], stride: usize) {
        let n = self.digest_size();
        for (i, block) in blocks.chunks_exact(size).enumerate() {
            self.digest_into(block, &mut out[i * stride..i * stride + n]);
        }
    }

    /// The digest size in bytes.
    fn digest_size(&self) -> usize;
}

/// Salted hashing of many blocks at once ([`HashAlg::hash_many`]): each block with its salt is
/// one message.
struct Lanes {
    alg: HashAlg,
    salt: Vec<u8>,
    hash_type: HashType,
}

impl Lanes {
    /// The pieces of one block's message: the salt first (format 1) or last (format 0).
    fn message<'a>(&'a self, block: &'a [u8]) -> [&'a [u8]; 2] {
        match self.hash_type {
            HashType::Normal => [&self.salt, block],
            HashType::ChromeOs => [block, &self.salt],
        }
    }
}

impl BlockHasher for Lanes {
    fn digest_into(&self, block: &[u8], out: &mut [u8]) {
        out.copy_from_slice(&self.alg.hash_parts(&self.message(block)));
    }

    fn digest_blocks_into(&self, blocks: &[u8], size: usize, out: &mut [u8], stride: usize) {
        let messages: Vec<[&[u8]; 2]> = blocks.chunks_exact(size).map(|b| self.message(b)).collect();
        let jobs: Vec<(HashAlg, &[&[u8]])> = messages.iter().map(|m| (self.alg, &m[..])).collect();
        let n = self.alg.size();
        for (i, d) in HashAlg::hash_many(&jobs).into_iter().enumerate() {
            out[i * stride..i * stride + n].copy_from_slice(&d);
        }
    }

    fn digest_size(&self) -> usize {
        self.alg.size()
    }
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

    fn digest_size(&self) -> usize {
        <D as Digest>::output_size()
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

    /// Many blocks at once (the lanes where this CPU has them) and one at a time with the
    /// streaming hashers: the same digests, at the given stride, for every algorithm and both
    /// formats, with and without a salt.
    #[test]
    fn many_blocks_same_as_one_by_one() {
        let data: Vec<u8> = (0..37 * 512u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
        for alg in HashAlg::ALL {
            for hash_type in [HashType::Normal, HashType::ChromeOs] {
                for salt in [&b""[..], &[7u8; 32][..], &[9u8; 100][..]] {
                    let streaming: Box<dyn BlockHasher> = match alg {
                        HashAlg::Sha1 => Box::new(Salted::<Sha1>::new(salt, hash_type)),
                        HashAlg::Sha256 => Box::new(Salted::<Sha256>::new(salt, hash_type)),
                        HashAlg::Sha384 => Box::new(Salted::<Sha384>::new(salt, hash_type)),
                        HashAlg::Sha512 => Box::new(Salted::<Sha512>::new(salt, hash_type)),
                    };
                    let lanes = Lanes { alg, salt: salt.to_vec(), hash_type };
                    let stride = alg.size() + 3;
                    let (mut one, mut many) = (vec![0u8; 37 * stride], vec![0u8; 37 * stride]);
                    streaming.digest_blocks_into(&data, 512, &mut one, stride);
                    lanes.digest_blocks_into(&data, 512, &mut many, stride);
                    assert_eq!(one, many, "{alg} {hash_type:?} salt of {} bytes", salt.len());
                    assert!(one[..alg.size()].iter().any(|&b| b != 0), "{alg}: digests written");
                    assert_eq!(streaming.digest_size(), lanes.digest_size());
                }
            }
        }
    }
}
