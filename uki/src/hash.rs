//! Digests over pieces of a file, computed in parallel.
//!
//! Firmware and systemd-stub hash bytes that are not contiguous in the file: the Authenticode
//! digest skips the checksum and the certificate table, and a section is measured as it lies in
//! memory, zero-filled past its raw data. [`HashInput`] names those bytes without copying them;
//! [`digest_all`] hashes many inputs at once: digests of one family together where that is
//! cheaper (SHA-384/512 in vector lanes, SHA-1 and SHA-256 interleaved), and the cores share
//! the tasks.

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

/// A task of [`digest_all`]: its estimated cost (picoseconds) and the jobs it hashes together.
type Task = (u64, Vec<usize>);

/// Computes every `(algorithm, input)` digest; results in the order of `jobs`.
///
/// Digests of one family ([`HashAlg::FAMILIES`]) are hashed together where that is cheaper
/// ([`HashAlg::hash_many`]: SHA-384/512 in the lanes of a vector register, SHA-1 and SHA-256
/// with the rounds of several messages interleaved). Each family is hashed as one task, as one
/// task per digest, or as two tasks (the inputs dealt longest first); of those plans the one
/// whose estimated finish on the thread pool is earliest runs ([`HashAlg::cost_many`]), the
/// least work of those that tie.
/// The tasks run on every core, the most costly first, each core taking the next task when it
/// is done (greedy list scheduling), so the long tasks start early and the short ones fill the
/// gaps.
pub fn digest_all(jobs: &[(HashAlg, &HashInput<'_>)]) -> Vec<Vec<u8>> {
    let pieces: Vec<Vec<&[u8]>> = jobs.iter().map(|(_, input)| input.pieces()).collect();
    let len = |i: usize| jobs[i].1.len();
    let workers = rayon::current_num_threads().max(1);
    let family = |algs: &[HashAlg]| -> Vec<usize> {
        let mut v: Vec<usize> = (0..jobs.len()).filter(|&i| algs.contains(&jobs[i].0)).collect();
        v.sort_by_key(|&i| std::cmp::Reverse(len(i)));
        v
    };
    // The ways to make tasks of a family's jobs (longest first): one each, all in one, two.
    let ways = |members: Vec<usize>| -> Vec<Vec<Vec<usize>>> {
        let mut ways = vec![members.iter().map(|&i| vec![i]).collect::<Vec<_>>()];
        if members.len() > 1 {
            ways.push(vec![members.clone()]);
        }
        if members.len() > 2 {
            let mut two: [(u64, Vec<usize>); 2] = Default::default();
            for &i in &members {
                let g = if two[0].0 <= two[1].0 { 0 } else { 1 };
                two[g].0 += len(i);
                two[g].1.push(i);
            }
            ways.push(two.into_iter().map(|(_, g)| g).collect());
        }
        ways
    };
    let cost = |task: &[usize]| jobs[task[0]].0.cost_many(&task.iter().map(|&i| len(i)).collect::<Vec<_>>());
    let [narrow, wide] = HashAlg::FAMILIES.map(|f| ways(family(f)));
    let mut best: Option<((u64, u64), Vec<Task>)> = None;
    for wide in &wide {
        for narrow in &narrow {
            let mut tasks: Vec<Task> = wide.iter().chain(narrow).map(|t| (cost(t), t.clone())).collect();
            tasks.sort_by_key(|(c, _)| std::cmp::Reverse(*c));
            // The earliest finish; of plans that finish together, the least work (the other
            // cores then idle, or run what else the process has to do).
            let score = (finish(&tasks, workers), tasks.iter().map(|(c, _)| c).sum::<u64>());
            if best.as_ref().is_none_or(|(b, _)| score < *b) {
                best = Some((score, tasks));
            }
        }
    }
    let tasks = best.map(|(_, t)| t).unwrap_or_default();

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
    let workers = workers.clamp(1, tasks.len().max(1));
    rayon::scope(|s| {
        for _ in 1..workers {
            s.spawn(|_| run());
        }
        run();
    });
    done.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// When the last of `tasks` (costs, most costly first) ends if each of `workers` takes the next
/// one when free.
fn finish(tasks: &[Task], workers: usize) -> u64 {
    let mut free = vec![0u64; workers];
    for (c, _) in tasks {
        let w = (0..workers).min_by_key(|&w| free[w]).expect("a worker");
        free[w] += c;
    }
    free.into_iter().max().unwrap_or(0)
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
