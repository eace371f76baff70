//! Digests over pieces of a file, computed in parallel.
//!
//! Firmware and systemd-stub hash bytes that are not contiguous in the file: the Authenticode
//! digest skips the checksum and the certificate table, and a section is measured as it lies in
//! memory, zero-filled past its raw data. [`HashInput`] names those bytes without copying them;
//! [`digest_all`] hashes many inputs at once, one task per digest, so every byte is read from
//! memory once per digest and the cores share the work.

use rayon::prelude::*;

pub use digest_alg::HashAlg;
use digest_alg::{Digest, Sha1, Sha256, Sha384, Sha512};

/// The algorithms of the Authenticode digests UEFI firmware measures (the PCR banks a vTPM
/// allocates; SHA-384 is also the TDX RTMR algorithm).
pub const AUTHENTICODE_ALGS: [HashAlg; 3] = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384];

/// Bytes to hash: the slices in order, then `zero_fill` zero bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashInput<'a> {
    /// Borrowed pieces, hashed in order.
    pub slices: Vec<&'a [u8]>,
    /// Zero bytes hashed after the slices.
    pub zero_fill: u64,
}

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

impl HashInput<'_> {
    /// Total number of bytes.
    pub fn len(&self) -> u64 {
        self.slices.iter().map(|s| s.len() as u64).sum::<u64>() + self.zero_fill
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, copied into one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() as usize);
        for s in &self.slices {
            v.extend_from_slice(s);
        }
        v.resize(v.len() + self.zero_fill as usize, 0);
        v
    }

    /// The digest of the bytes.
    pub fn digest(&self, alg: HashAlg) -> Vec<u8> {
        match alg {
            HashAlg::Sha1 => self.run::<Sha1>(),
            HashAlg::Sha256 => self.run::<Sha256>(),
            HashAlg::Sha384 => self.run::<Sha384>(),
            HashAlg::Sha512 => self.run::<Sha512>(),
        }
    }

    fn run<D: Digest>(&self) -> Vec<u8> {
        let mut h = D::new();
        for s in &self.slices {
            h.update(s);
        }
        let mut left = self.zero_fill;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            h.update(&ZEROS[..n]);
            left -= n as u64;
        }
        h.finalize().to_vec()
    }
}

/// Computes every `(algorithm, input)` digest, in parallel; results in the order of `jobs`.
pub fn digest_all(jobs: &[(HashAlg, &HashInput<'_>)]) -> Vec<Vec<u8>> {
    // Large inputs first, so the long tasks start early and the short ones fill the gaps.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].1.len()));
    let mut done: Vec<(usize, Vec<u8>)> =
        order.into_par_iter().with_max_len(1).map(|i| (i, jobs[i].1.digest(jobs[i].0))).collect();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_and_zero_fill_hash_like_the_flat_bytes() {
        let a = b"hello ".as_slice();
        let b = b"world".as_slice();
        let input = HashInput { slices: vec![a, b], zero_fill: 70_000 };
        let mut flat = b"hello world".to_vec();
        flat.resize(flat.len() + 70_000, 0);
        assert_eq!(input.to_vec(), flat);
        for alg in HashAlg::ALL {
            assert_eq!(input.digest(alg), alg.hash(&flat), "{alg}");
            assert_eq!(input.digest(alg).len(), alg.size(), "{alg}");
        }
        let jobs: Vec<(HashAlg, &HashInput)> = HashAlg::ALL.iter().map(|&a| (a, &input)).collect();
        let all = digest_all(&jobs);
        for (alg, d) in HashAlg::ALL.iter().zip(&all) {
            assert_eq!(*d, alg.hash(&flat), "{alg} via digest_all");
        }
    }

    #[test]
    fn known_answers() {
        // FIPS 180-4 examples ("abc").
        assert_eq!(hex::encode(HashAlg::Sha1.hash(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex::encode(HashAlg::Sha256.hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(HashAlg::Sha384.hash(b"abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
    }
}
