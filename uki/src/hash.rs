//! Digests over pieces of a file, computed in parallel.
//!
//! Firmware and systemd-stub hash bytes that are not contiguous in the file: the Authenticode
//! digest skips the checksum and the certificate table, and a section is measured as it lies in
//! memory, zero-filled past its raw data. [`HashInput`] names those bytes without copying them;
//! [`digest_all`] hashes many inputs at once: the SHA-384/512 digests together in vector lanes,
//! every other digest a task of its own, and the cores share the tasks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub use digest_alg::HashAlg;

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
        alg.hash_parts(&self.pieces())
    }
}

impl<'a> HashInput<'a> {
    /// The bytes as pieces: the slices, then the zero fill in pieces of at most 64 KiB.
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        let mut v = self.slices.clone();
        let mut left = self.zero_fill;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            v.push(&ZEROS[..n]);
            left -= n as u64;
        }
        v
    }
}

/// Relative cost of hashing one byte on one core (SHA-1 = 10), as measured on the build
/// machine (`make bench` 05-digest): SHA-1 and SHA-256 with the SHA extensions ~1.8-1.9 GB/s,
/// SHA-384/512 ~0.8 GB/s alone, ~0.6 GB/s per lane when four run in the lanes of one register.
fn cost_per_byte(alg: HashAlg) -> u64 {
    match alg {
        HashAlg::Sha1 => 10,
        HashAlg::Sha256 => 11,
        HashAlg::Sha384 | HashAlg::Sha512 => 24,
    }
}
const LANE_COST_PER_BYTE: u64 = 32;

/// Computes every `(algorithm, input)` digest; results in the order of `jobs`.
///
/// The SHA-384 and SHA-512 digests are hashed together, four at a time in the lanes of one
/// vector register ([`HashAlg::hash_many`]), when that costs less than hashing them one by one;
/// every other digest is a task of its own. The tasks run on every core of the thread pool,
/// the most costly first, each core taking the next task when it is done (greedy list
/// scheduling), so the long tasks start early and the short ones fill the gaps.
pub fn digest_all(jobs: &[(HashAlg, &HashInput<'_>)]) -> Vec<Vec<u8>> {
    let pieces: Vec<Vec<&[u8]>> = jobs.iter().map(|(_, input)| input.pieces()).collect();
    let len = |i: usize| jobs[i].1.len();
    let (mut wide, narrow): (Vec<usize>, Vec<usize>) =
        (0..jobs.len()).partition(|&i| matches!(jobs[i].0, HashAlg::Sha384 | HashAlg::Sha512));
    // A task: its estimated cost and the jobs it hashes (more than one: in lanes).
    let mut tasks: Vec<(u64, Vec<usize>)> =
        narrow.iter().map(|&i| (len(i) * cost_per_byte(jobs[i].0), vec![i])).collect();
    wide.sort_by_key(|&i| std::cmp::Reverse(len(i)));
    // The lanes take the longest message first and the next one when free: the busiest lane.
    let mut lanes = vec![0u64; HashAlg::wide_lanes()];
    for &i in &wide {
        let l = (0..lanes.len()).min_by_key(|&l| lanes[l]).expect("lanes");
        lanes[l] += len(i);
    }
    let lane_cost = lanes.iter().max().copied().unwrap_or(0) * LANE_COST_PER_BYTE;
    let alone_cost: u64 = wide.iter().map(|&i| len(i) * cost_per_byte(jobs[i].0)).sum();
    if lanes.len() > 1 && wide.len() > 1 && lane_cost < alone_cost {
        tasks.push((lane_cost, wide));
    } else {
        tasks.extend(wide.into_iter().map(|i| (len(i) * cost_per_byte(jobs[i].0), vec![i])));
    }
    tasks.sort_by_key(|(cost, _)| std::cmp::Reverse(*cost));

    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Vec<u8>>> = Mutex::new(vec![Vec::new(); jobs.len()]);
    let run = || loop {
        let t = next.fetch_add(1, Ordering::Relaxed);
        let Some((_, members)) = tasks.get(t) else { break };
        let these: Vec<(HashAlg, &[&[u8]])> = members.iter().map(|&i| (jobs[i].0, pieces[i].as_slice())).collect();
        let digests = HashAlg::hash_many(&these);
        let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
        for (&i, d) in members.iter().zip(digests) {
            done[i] = d;
        }
    };
    let workers = rayon::current_num_threads().clamp(1, tasks.len().max(1));
    rayon::scope(|s| {
        for _ in 1..workers {
            s.spawn(|_| run());
        }
        run();
    });
    done.into_inner().unwrap_or_else(|e| e.into_inner())
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

    /// Many digests of inputs of different lengths, in every algorithm (the SHA-384/512 ones
    /// hashed together in lanes where the CPU can): each the same as the input's own digest.
    #[test]
    fn many_jobs_same_as_one_by_one() {
        let data: Vec<u8> = (0..400_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8).collect();
        let inputs: Vec<HashInput> = [(0, 400_000, 0), (3, 1, 5), (10, 250_000, 4096), (7, 0, 0), (100, 129, 70_000)]
            .iter()
            .map(|&(at, n, zero_fill)| HashInput { slices: data[at..at + n].chunks(100_001).collect(), zero_fill })
            .collect();
        let jobs: Vec<(HashAlg, &HashInput)> =
            inputs.iter().flat_map(|i| HashAlg::ALL.iter().map(move |&a| (a, i))).collect();
        let all = digest_all(&jobs);
        assert_eq!(all.len(), jobs.len());
        for ((alg, input), d) in jobs.iter().zip(&all) {
            assert_eq!(*d, alg.hash(&input.to_vec()), "{alg} of {} bytes", input.len());
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
