//! SHA-384 and SHA-512 of several messages at once, four in the lanes of one 256-bit register.
//!
//! One SHA-512 stream is a chain of dependent rounds: a core runs it at ~0.8 GB/s however it is
//! written (OpenSSL's fastest path included), while its vector units sit mostly idle. The
//! workspace often needs several independent SHA-384 digests of large inputs at once (the
//! Authenticode digest of a UKI, the digest of each of its sections, the kernel's Authenticode
//! digest, the initrd the kernel sees). With AVX-512 (F and VL: 64-bit rotates and three-input
//! logic on 256-bit registers), the rounds of four messages run side by side, one message per
//! 64-bit lane: each lane at ~0.7 of one scalar stream, the four together ~2.9× (on a Zen 4;
//! `docs/performance.md` has the measurements). A lane that finishes its message takes the next
//! one (the longest first), so the lanes stay busy while messages remain, and the last message
//! left finishes alone on the scalar path.
//!
//! Messages are given in pieces, as the callers have them (Authenticode ranges, sections with a
//! zero fill): whole blocks are read where they lie, a block that straddles pieces and the
//! padding are copied into the lane's own buffer. Without AVX-512 F and VL, or for a single
//! message, each message is hashed alone by [`crate::Sha384`] / [`crate::Sha512`].

use crate::sha512::{IV_384, IV_512};
use crate::HashAlg;

/// The digests of the messages (each the concatenation of its pieces), in the order given;
/// every algorithm must be SHA-384 or SHA-512.
pub(crate) fn sha512_family(jobs: &[(HashAlg, &[&[u8]])]) -> Vec<Vec<u8>> {
    #[cfg(target_arch = "x86_64")]
    if jobs.len() > 1 {
        if let Some(d) = x86::run(jobs) {
            return d;
        }
    }
    jobs.iter().map(|(alg, parts)| alg.hash_parts(parts)).collect()
}

/// How many messages run at once here (1: each alone).
pub(crate) fn width() -> usize {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        return 4;
    }
    1
}

/// Where a message's next block is.
#[derive(Clone, Copy)]
enum At {
    /// 128 bytes in piece `part`, from `off`.
    Piece { part: usize, off: usize },
    /// Block `n` of the cursor's own buffer.
    Buf(usize),
}

/// A message read block by block, its padding (FIPS 180-4 §5.1.2) included.
struct Cursor<'a> {
    parts: &'a [&'a [u8]],
    /// The next unread byte: piece index and offset in it.
    part: usize,
    off: usize,
    /// Bytes of the message read so far.
    read: u128,
    /// The straddling block, or the one or two padding blocks.
    buf: [u8; 256],
    /// Padding blocks in `buf` (0 until the message's bytes are exhausted) and how many of
    /// them were handed out.
    pad_blocks: usize,
    pad_given: usize,
    at: At,
}

impl<'a> Cursor<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Self {
        Cursor { parts, part: 0, off: 0, read: 0, buf: [0; 256], pad_blocks: 0, pad_given: 0, at: At::Buf(0) }
    }

    /// Moves past pieces read to their end (empty ones included).
    fn skip_read_pieces(&mut self) {
        while self.part < self.parts.len() && self.off == self.parts[self.part].len() {
            self.part += 1;
            self.off = 0;
        }
    }

    /// Moves to the next block; false when the message (padding included) is done.
    fn advance(&mut self) -> bool {
        if self.pad_blocks > 0 {
            if self.pad_given == self.pad_blocks {
                return false;
            }
            self.at = At::Buf(self.pad_given);
            self.pad_given += 1;
            return true;
        }
        self.skip_read_pieces();
        if self.part < self.parts.len() && self.parts[self.part].len() - self.off >= 128 {
            self.at = At::Piece { part: self.part, off: self.off };
            self.off += 128;
            self.read += 128;
            return true;
        }
        // Gather up to 128 bytes across pieces.
        let mut n = 0;
        while n < 128 && self.part < self.parts.len() {
            let p = &self.parts[self.part][self.off..];
            let take = p.len().min(128 - n);
            self.buf[n..n + take].copy_from_slice(&p[..take]);
            n += take;
            self.off += take;
            if self.off == self.parts[self.part].len() {
                self.part += 1;
                self.off = 0;
            }
        }
        self.read += n as u128;
        if n == 128 {
            self.at = At::Buf(0);
            return true;
        }
        // The message ends here: 0x80, zeros, the length in bits (128-bit big-endian).
        self.buf[n] = 0x80;
        self.buf[n + 1..].fill(0);
        self.pad_blocks = if n + 1 + 16 <= 128 { 1 } else { 2 };
        let end = 128 * self.pad_blocks;
        self.buf[end - 16..end].copy_from_slice(&(self.read * 8).to_be_bytes());
        self.at = At::Buf(0);
        self.pad_given = 1;
        true
    }

    /// The whole blocks that lie in the current piece from the next unread byte, taken at once
    /// (None while a block straddles pieces, or once the padding began).
    fn whole_blocks(&mut self) -> Option<&'a [u8]> {
        if self.pad_blocks > 0 {
            return None;
        }
        self.skip_read_pieces();
        let piece: &'a [u8] = self.parts.get(self.part)?;
        let n = (piece.len() - self.off) / 128 * 128;
        if n == 0 {
            return None;
        }
        let run = &piece[self.off..self.off + n];
        self.off += n;
        self.read += n as u128;
        Some(run)
    }

    /// Hashes the rest of the message alone into `state`, from the block `advance` moved to:
    /// one scalar stream is faster than one busy lane (~820 against ~600 MB/s).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn finish_alone(&mut self, state: &mut [u64; 8]) {
        crate::sha512::compress_bytes(state, self.block());
        loop {
            if let Some(run) = self.whole_blocks() {
                crate::sha512::compress_bytes(state, run);
            } else if self.advance() {
                crate::sha512::compress_bytes(state, self.block());
            } else {
                return;
            }
        }
    }

    /// The block `advance` moved to.
    fn block(&self) -> &[u8; 128] {
        let s = match self.at {
            At::Piece { part, off } => &self.parts[part][off..off + 128],
            At::Buf(n) => &self.buf[128 * n..128 * (n + 1)],
        };
        s.try_into().expect("128 bytes")
    }
}

/// The AVX-512 four-lane code (x86-64 only).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // CPU intrinsics, behind the run-time check in `run`.
mod x86 {
    use std::arch::x86_64::*;

    use super::{Cursor, IV_384, IV_512};
    use crate::sha512::K;
    use crate::HashAlg;

    /// The message being hashed in a lane: its index in the jobs and its cursor.
    type Lane<'a> = Option<(usize, Cursor<'a>)>;

    /// Whether this CPU has AVX-512 F and VL (checked once by the standard library, then cached).
    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }

    /// Every job's digest, four lanes at a time; None when this CPU lacks AVX-512 F or VL.
    pub(super) fn run(jobs: &[(HashAlg, &[&[u8]])]) -> Option<Vec<Vec<u8>>> {
        if !available() {
            return None;
        }
        Some(drive(jobs))
    }

    /// The lanes of [`compress4`].
    const N: usize = 4;

    /// [`run`] once the CPU is known to have AVX-512 F and VL.
    fn drive(jobs: &[(HashAlg, &[&[u8]])]) -> Vec<Vec<u8>> {
        // The longest messages first: the lanes then end at nearly the same time.
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].1.iter().map(|p| p.len()).sum::<usize>()));
        let mut next = order.into_iter();
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); jobs.len()];
        // state[i][lane]: word i of each lane's state.
        let mut state = [[0u64; N]; 8];
        let mut lanes: [Lane; N] = std::array::from_fn(|_| None);
        let zero = [0u8; 128];
        loop {
            let mut active = 0;
            for (l, lane) in lanes.iter_mut().enumerate() {
                loop {
                    if let Some((job, c)) = lane {
                        if c.advance() {
                            active += 1;
                            break;
                        }
                        out[*job] = output(jobs[*job].0, state.map(|w| w[l]));
                        *lane = None;
                    }
                    let Some(job) = next.next() else { break };
                    let iv = if jobs[job].0 == HashAlg::Sha384 { IV_384 } else { IV_512 };
                    for (w, v) in state.iter_mut().zip(iv) {
                        w[l] = v;
                    }
                    *lane = Some((job, Cursor::new(jobs[job].1)));
                }
            }
            if active == 0 {
                return out;
            }
            if active == 1 && next.len() == 0 {
                // The last message left: alone, without the three idle lanes.
                let l = lanes.iter().position(Option::is_some).expect("one lane is busy");
                let (job, c) = lanes[l].as_mut().expect("busy");
                let mut alone: [u64; 8] = std::array::from_fn(|i| state[i][l]);
                c.finish_alone(&mut alone);
                out[*job] = output(jobs[*job].0, alone);
                return out;
            }
            let block = |l: usize| lanes[l].as_ref().map_or(&zero, |(_, c)| c.block());
            // SAFETY: only `run` calls this, after checking that the CPU has AVX-512 F and VL.
            unsafe { compress4(&mut state, std::array::from_fn(block)) };
        }
    }

    /// The digest in a final state: its words big-endian, truncated to the algorithm's size.
    fn output(alg: HashAlg, state: [u64; 8]) -> Vec<u8> {
        let mut d: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
        d.truncate(alg.size());
        d
    }

    /// The byte order of each 64-bit lane reversed (big-endian words to integers).
    #[inline(always)]
    unsafe fn bswap(v: __m256i) -> __m256i {
        let m = _mm256_setr_epi8(
            7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,
        );
        _mm256_shuffle_epi8(v, m)
    }

    /// One block of each lane's message into `state` (FIPS 180-4 §6.4.2, four lanes at once).
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    unsafe fn compress4(state: &mut [[u64; 4]; 8], blocks: [&[u8; 128]; 4]) {
        // W[0..16]: word t of each lane's block, transposed 4 x 4 words at a time.
        let mut w = [_mm256_setzero_si256(); 16];
        for g in 0..4 {
            let r: [__m256i; 4] =
                std::array::from_fn(|l| bswap(_mm256_loadu_si256(blocks[l].as_ptr().add(32 * g).cast())));
            let t0 = _mm256_unpacklo_epi64(r[0], r[1]);
            let t1 = _mm256_unpackhi_epi64(r[0], r[1]);
            let t2 = _mm256_unpacklo_epi64(r[2], r[3]);
            let t3 = _mm256_unpackhi_epi64(r[2], r[3]);
            w[4 * g] = _mm256_permute2x128_si256(t0, t2, 0x20);
            w[4 * g + 1] = _mm256_permute2x128_si256(t1, t3, 0x20);
            w[4 * g + 2] = _mm256_permute2x128_si256(t0, t2, 0x31);
            w[4 * g + 3] = _mm256_permute2x128_si256(t1, t3, 0x31);
        }
        let s: [__m256i; 8] = std::array::from_fn(|i| _mm256_loadu_si256(state[i].as_ptr().cast()));
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = s;

        // Three-input logic (vpternlogq) truth tables: x ^ y ^ z, x ? y : z, majority.
        const XOR3: i32 = 0x96;
        const CH: i32 = 0xca;
        const MAJ: i32 = 0xe8;
        // Σ: the three rotations of x, XORed.
        macro_rules! big_sigma {
            ($x:expr, $r1:literal, $r2:literal, $r3:literal) => {
                _mm256_ternarylogic_epi64(
                    _mm256_ror_epi64($x, $r1),
                    _mm256_ror_epi64($x, $r2),
                    _mm256_ror_epi64($x, $r3),
                    XOR3,
                )
            };
        }
        macro_rules! round {
            ($t:expr, $i:expr) => {{
                let s1 = big_sigma!(e, 14, 18, 41);
                let ch = _mm256_ternarylogic_epi64(e, f, g, CH);
                // h + W[t] + K[t] and d + that do not wait for e: the next e is then two
                // additions after Σ1(e) and Ch (the chain that bounds a round).
                let hwk = _mm256_add_epi64(h, _mm256_add_epi64(w[$i], _mm256_set1_epi64x(K[$t] as i64)));
                let dhwk = _mm256_add_epi64(d, hwk);
                let t1 = _mm256_add_epi64(_mm256_add_epi64(hwk, ch), s1);
                let s0 = big_sigma!(a, 28, 34, 39);
                let maj = _mm256_ternarylogic_epi64(a, b, c, MAJ);
                h = g;
                g = f;
                f = e;
                e = _mm256_add_epi64(_mm256_add_epi64(dhwk, ch), s1);
                d = c;
                c = b;
                b = a;
                a = _mm256_add_epi64(t1, _mm256_add_epi64(s0, maj));
            }};
        }
        // W[t] for t >= 16, in place of W[t - 16] (i = t mod 16).
        macro_rules! schedule {
            ($i:expr) => {{
                let w2 = w[($i + 14) & 15];
                let w15 = w[($i + 1) & 15];
                let s1 = _mm256_ternarylogic_epi64(
                    _mm256_ror_epi64(w2, 19),
                    _mm256_ror_epi64(w2, 61),
                    _mm256_srli_epi64(w2, 6),
                    XOR3,
                );
                let s0 = _mm256_ternarylogic_epi64(
                    _mm256_ror_epi64(w15, 1),
                    _mm256_ror_epi64(w15, 8),
                    _mm256_srli_epi64(w15, 7),
                    XOR3,
                );
                w[$i] = _mm256_add_epi64(_mm256_add_epi64(w[$i], w[($i + 9) & 15]), _mm256_add_epi64(s0, s1));
            }};
        }
        macro_rules! sixteen {
            ($j:expr, $sched:expr) => {
                seq!($j, $sched, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
            };
        }
        macro_rules! seq {
            ($j:expr, $sched:expr, $($i:literal)*) => {
                $(
                    if $sched {
                        schedule!($i);
                    }
                    round!($j + $i, $i);
                )*
            };
        }
        sixteen!(0, false);
        for j in [16, 32, 48, 64] {
            sixteen!(j, true);
        }
        for (i, v) in [a, b, c, d, e, f, g, h].into_iter().enumerate() {
            _mm256_storeu_si256(state[i].as_mut_ptr().cast(), _mm256_add_epi64(s[i], v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn reference(alg: HashAlg, parts: &[&[u8]]) -> Vec<u8> {
        let flat: Vec<u8> = parts.concat();
        match alg {
            HashAlg::Sha384 => sha2::Sha384::digest(&flat).to_vec(),
            _ => sha2::Sha512::digest(&flat).to_vec(),
        }
    }

    /// Messages of every padding case (lengths around block and padding boundaries), in pieces
    /// that split blocks anywhere, empty pieces included, more messages than lanes and mixed
    /// algorithms: the same digests as the `sha2` crate, whatever path runs.
    #[test]
    fn same_as_sha2_in_pieces() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let lens = [0usize, 1, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 257, 1000, 4096, 19_999];
        let cuts = [1usize, 3, 64, 127, 128, 200, 5000];
        let mut owned: Vec<(HashAlg, Vec<&[u8]>)> = Vec::new();
        for (k, &n) in lens.iter().enumerate() {
            let m = &data[k..k + n.min(data.len() - k)];
            let cut = cuts[k % cuts.len()];
            let mut parts: Vec<&[u8]> = m.chunks(cut).collect();
            if k % 3 == 0 {
                parts.insert(parts.len() / 2, &[]);
            }
            let alg = if k % 2 == 0 { HashAlg::Sha384 } else { HashAlg::Sha512 };
            owned.push((alg, parts));
        }
        let jobs: Vec<(HashAlg, &[&[u8]])> = owned.iter().map(|(a, p)| (*a, p.as_slice())).collect();
        for count in [1, 2, 4, 5, jobs.len()] {
            let got = sha512_family(&jobs[..count]);
            for (i, (alg, parts)) in jobs[..count].iter().enumerate() {
                assert_eq!(got[i], reference(*alg, parts), "{alg} of message {i} ({count} messages)");
            }
        }
    }

    /// The four-lane path itself, on this CPU: fails where it cannot run (no AVX-512 F and VL)
    /// rather than pass without checking it.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn four_lanes_run_and_agree() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i ^ (i >> 7)) as u8).collect();
        let owned: Vec<(HashAlg, Vec<&[u8]>)> = [(0, 300_000), (5, 1), (17, 250_001), (300, 0), (1, 77_777), (2, 128)]
            .iter()
            .enumerate()
            .map(|(k, &(start, n))| {
                let alg = if k % 2 == 0 { HashAlg::Sha512 } else { HashAlg::Sha384 };
                (alg, data[start..start + n.min(data.len() - start)].chunks(40_000 + k).collect())
            })
            .collect();
        let jobs: Vec<(HashAlg, &[&[u8]])> = owned.iter().map(|(a, p)| (*a, p.as_slice())).collect();
        let got = x86::run(&jobs).expect("this CPU lacks AVX-512 F/VL: the four-lane path is not checked");
        for (i, (alg, parts)) in jobs.iter().enumerate() {
            assert_eq!(got[i], reference(*alg, parts), "{alg} of message {i}");
        }
    }
}
