//! Several messages hashed at once, in the lanes of one core.
//!
//! One SHA-2 stream is a chain of dependent rounds: a core runs it at the speed of that chain
//! (SHA-512 ~0.8 GB/s however it is written, OpenSSL's fastest path included; SHA-256 with the
//! SHA extensions ~1.8 GB/s, bound by the latency of `sha256rnds2`), while much of the core sits
//! idle. The workspace often needs several independent digests of large inputs at once (the
//! Authenticode digest of a UKI, the digest of each of its sections, the kernel's Authenticode
//! digest, the initrd the kernel sees; the thousands of blocks of a dm-verity tree). Two ways to
//! hash up to four messages side by side on one core (`docs/performance.md` has the
//! measurements, on a Zen 4):
//!
//! * SHA-384/512 with AVX-512 (F and VL: 64-bit rotates and three-input logic on 256-bit
//!   registers): one message per 64-bit lane of the same registers, each lane at ~0.7 of one
//!   scalar stream, the four together ~2.9×. Idle lanes cost as much as busy ones.
//! * SHA-1 and SHA-256 with the SHA extensions: the rounds of up to four messages of either
//!   algorithm interleaved in one instruction stream, so that one message's `sha256rnds2` or
//!   `sha1rnds4` runs while another's waits for its result: four SHA-256 together ~1.9× one
//!   stream on a Zen 4, a SHA-256 beside a SHA-1 ~1.3× on a Xeon (Emerald Rapids). An idle lane
//!   costs nothing (the code for the number of busy lanes of each algorithm runs).
//!
//! A lane that finishes its message takes the next one (the longest first), so the lanes stay
//! busy while messages remain, and the last message left finishes alone on the one-stream path.
//! Messages are given in pieces, as the callers have them (Authenticode ranges, sections with a
//! zero fill, a salt and a block): whole blocks are read where they lie, a block that straddles
//! pieces and the padding are copied into the lane's own buffer. Without the CPU features, or
//! for a single message, each message is hashed alone.

use crate::HashAlg;

/// The digests of the messages (each the concatenation of its pieces), in the order given;
/// every algorithm must be SHA-384 or SHA-512.
pub(crate) fn sha512_family(jobs: &[(HashAlg, &[&[u8]])]) -> Vec<Vec<u8>> {
    #[cfg(target_arch = "x86_64")]
    if jobs.len() > 1 && x86::has_avx512() {
        return x86::drive::<x86::Sha512x4>(jobs);
    }
    jobs.iter().map(|(alg, parts)| alg.hash_parts(parts)).collect()
}

/// The digests of the messages (each the concatenation of its pieces), in the order given;
/// every algorithm must be SHA-1 or SHA-256.
pub(crate) fn sha_ni(jobs: &[(HashAlg, &[&[u8]])]) -> Vec<Vec<u8>> {
    #[cfg(target_arch = "x86_64")]
    if jobs.len() > 1 && x86::has_sha_ni() {
        return x86::drive::<x86::ShaNi>(jobs);
    }
    jobs.iter().map(|(alg, parts)| alg.hash_parts(parts)).collect()
}

/// How many SHA-384/512 messages run at once here (1: each alone).
pub(crate) fn width() -> usize {
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx512() {
        return 4;
    }
    1
}

/// How many SHA-1 and SHA-256 messages run at once here (1: each alone).
pub(crate) fn sha_ni_width() -> usize {
    #[cfg(target_arch = "x86_64")]
    if x86::has_sha_ni() {
        return 4;
    }
    1
}

/// Where a message's next block is.
#[derive(Clone, Copy)]
enum At {
    /// `blocks` whole blocks in piece `part`, from `off`.
    Piece { part: usize, off: usize, blocks: usize },
    /// Block `n` of the cursor's own buffer.
    Buf(usize),
}

/// A message read block by block, its padding (FIPS 180-4 §5.1) included: blocks of 64 bytes
/// with a 64-bit length (SHA-256) or of 128 bytes with a 128-bit length (SHA-384/512).
struct Cursor<'a> {
    parts: &'a [&'a [u8]],
    /// The block size: 64 or 128.
    block: usize,
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
    fn new(parts: &'a [&'a [u8]], block: usize) -> Self {
        debug_assert!(block == 64 || block == 128);
        Cursor { parts, block, part: 0, off: 0, read: 0, buf: [0; 256], pad_blocks: 0, pad_given: 0, at: At::Buf(0) }
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
        let bs = self.block;
        if self.pad_blocks > 0 {
            if self.pad_given == self.pad_blocks {
                return false;
            }
            self.at = At::Buf(self.pad_given);
            self.pad_given += 1;
            return true;
        }
        self.skip_read_pieces();
        if self.part < self.parts.len() && self.parts[self.part].len() - self.off >= bs {
            self.at = At::Piece { part: self.part, off: self.off, blocks: 1 };
            self.off += bs;
            self.read += bs as u128;
            return true;
        }
        // Gather up to one block across pieces.
        let mut n = 0;
        while n < bs && self.part < self.parts.len() {
            let p = &self.parts[self.part][self.off..];
            let take = p.len().min(bs - n);
            self.buf[n..n + take].copy_from_slice(&p[..take]);
            n += take;
            self.off += take;
            if self.off == self.parts[self.part].len() {
                self.part += 1;
                self.off = 0;
            }
        }
        self.read += n as u128;
        if n == bs {
            self.at = At::Buf(0);
            return true;
        }
        // The message ends here: 0x80, zeros, the length in bits (big-endian, in the last
        // eighth of the block: 64 bits for SHA-256, 128 for SHA-384/512).
        let len_bytes = bs / 8;
        self.buf[n] = 0x80;
        self.buf[n + 1..].fill(0);
        self.pad_blocks = if n + 1 + len_bytes <= bs { 1 } else { 2 };
        let end = bs * self.pad_blocks;
        let bits = (self.read * 8).to_be_bytes();
        self.buf[end - len_bytes..end].copy_from_slice(&bits[16 - len_bytes..]);
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
        let n = (piece.len() - self.off) / self.block * self.block;
        if n == 0 {
            return None;
        }
        let run = &piece[self.off..self.off + n];
        self.off += n;
        self.read += n as u128;
        Some(run)
    }

    /// Hashes the rest of the message alone with `compress` (whole blocks), from the block
    /// `advance` moved to: one stream is faster than one busy lane.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn finish_alone(&mut self, mut compress: impl FnMut(&[u8])) {
        compress(self.block());
        loop {
            if let Some(run) = self.whole_blocks() {
                compress(run);
            } else if self.advance() {
                compress(self.block());
            } else {
                return;
            }
        }
    }

    /// How many whole blocks from the one `advance` moved to lie in the same piece (1 for a
    /// copied block).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn run_len(&self) -> usize {
        match self.at {
            At::Piece { part, .. } => 1 + (self.parts[part].len() - self.off) / self.block,
            At::Buf(_) => 1,
        }
    }

    /// Makes the current block a run of `n` blocks (`n` at most [`Cursor::run_len`]): the
    /// kernels then hash them in one call.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn extend_run(&mut self, n: usize) {
        if let At::Piece { blocks, .. } = &mut self.at {
            debug_assert!(n >= *blocks);
            let more = n - *blocks;
            *blocks = n;
            self.off += more * self.block;
            self.read += (more * self.block) as u128;
        }
    }

    /// The block (or run of blocks) `advance` moved to.
    fn block(&self) -> &[u8] {
        let bs = self.block;
        match self.at {
            At::Piece { part, off, blocks } => &self.parts[part][off..off + bs * blocks],
            At::Buf(n) => &self.buf[bs * n..bs * (n + 1)],
        }
    }
}

/// The four-lane code (x86-64 only).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // CPU intrinsics, behind the run-time checks of the callers.
mod x86 {
    use std::arch::x86_64::*;

    use sha2::digest::generic_array::GenericArray;
    use sha2::digest::typenum::U64;

    use super::Cursor;
    use crate::sha512::{IV_384, IV_512, K};
    use crate::HashAlg;

    /// Whether this CPU has AVX-512 F and VL (checked once by the standard library, then cached).
    pub(super) fn has_avx512() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }

    /// Whether this CPU has the SHA extensions (and SSSE3, SSE4.1 for the shuffles around them).
    pub(super) fn has_sha_ni() -> bool {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("ssse3")
            && std::is_x86_feature_detected!("sse4.1")
    }

    /// Messages at once.
    const N: usize = 4;
    /// The most blocks of each lane one kernel call hashes.
    const MAX_RUN: usize = 64;

    /// A compression function over up to [`N`] messages, a run of whole blocks of each per call.
    pub(super) trait Kernel {
        /// Bytes per block.
        const BLOCK: usize;
        /// One message's chaining value, in FIPS 180-4's word order.
        type Words: Copy;
        /// Every lane's chaining value, laid out as the kernel wants it.
        type State;
        /// Every lane's chaining value, before any is set.
        fn new_state() -> Self::State;
        /// The initial value of `alg`.
        fn iv(alg: HashAlg) -> Self::Words;
        /// Puts the chaining value of a message of `alg` into `lane`.
        fn set(state: &mut Self::State, lane: usize, alg: HashAlg, w: Self::Words);
        /// The chaining value of the message in `lane`.
        fn get(state: &Self::State, lane: usize) -> Self::Words;
        /// The blocks of each busy lane (`None`: an idle lane) into `state`: the same number of
        /// whole blocks for every busy lane.
        ///
        /// # Safety
        /// The CPU has the features this kernel needs (the callers of [`drive`] check).
        unsafe fn compress(state: &mut Self::State, blocks: [Option<&[u8]>; N]);
        /// Whole blocks of one message of `alg`, on the one-stream path.
        fn alone(alg: HashAlg, w: &mut Self::Words, blocks: &[u8]);
        /// The digest in a final chaining value: its words big-endian, truncated to `alg`'s size.
        fn output(alg: HashAlg, w: Self::Words) -> Vec<u8>;
    }

    /// The message being hashed in a lane: its index in the jobs and its cursor.
    type Lane<'a> = Option<(usize, Cursor<'a>)>;

    /// Every job's digest, [`N`] lanes at a time with kernel `K`; the caller has checked that
    /// the CPU has what `K` needs.
    pub(super) fn drive<K: Kernel>(jobs: &[(HashAlg, &[&[u8]])]) -> Vec<Vec<u8>> {
        // The longest messages first: the lanes then end at nearly the same time.
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].1.iter().map(|p| p.len()).sum::<usize>()));
        let mut next = order.into_iter();
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); jobs.len()];
        let mut state = K::new_state();
        let mut lanes: [Lane; N] = std::array::from_fn(|_| None);
        loop {
            let mut active = 0;
            for (l, lane) in lanes.iter_mut().enumerate() {
                loop {
                    if let Some((job, c)) = lane {
                        if c.advance() {
                            active += 1;
                            break;
                        }
                        out[*job] = K::output(jobs[*job].0, K::get(&state, l));
                        *lane = None;
                    }
                    let Some(job) = next.next() else { break };
                    K::set(&mut state, l, jobs[job].0, K::iv(jobs[job].0));
                    *lane = Some((job, Cursor::new(jobs[job].1, K::BLOCK)));
                }
            }
            if active == 0 {
                return out;
            }
            if active == 1 && next.len() == 0 {
                // The last message left: alone, without the idle lanes.
                let l = lanes.iter().position(Option::is_some).expect("one lane is busy");
                let (job, c) = lanes[l].as_mut().expect("busy");
                let mut alone = K::get(&state, l);
                c.finish_alone(|blocks| K::alone(jobs[*job].0, &mut alone, blocks));
                out[*job] = K::output(jobs[*job].0, alone);
                return out;
            }
            // As many blocks as every busy lane has in place (bounded, so that a lane that ends
            // soon takes its next message soon): one call hashes them all.
            let run = lanes.iter().flatten().map(|(_, c)| c.run_len()).min().unwrap_or(1).min(MAX_RUN);
            for (_, c) in lanes.iter_mut().flatten() {
                c.extend_run(run);
            }
            let block = |l: usize| lanes[l].as_ref().map(|(_, c)| c.block());
            // SAFETY: the callers of `drive` checked the CPU features `K` needs.
            unsafe { K::compress(&mut state, std::array::from_fn(block)) };
        }
    }

    /// SHA-384 and SHA-512, one message per 64-bit lane of 256-bit registers (AVX-512 F, VL).
    pub(super) struct Sha512x4;

    impl Kernel for Sha512x4 {
        const BLOCK: usize = 128;
        type Words = [u64; 8];
        /// `state[i][lane]`: word i of each lane's chaining value.
        type State = [[u64; N]; 8];

        fn new_state() -> Self::State {
            [[0; N]; 8]
        }

        fn iv(alg: HashAlg) -> [u64; 8] {
            if alg == HashAlg::Sha384 {
                IV_384
            } else {
                IV_512
            }
        }

        fn set(state: &mut Self::State, lane: usize, _: HashAlg, w: [u64; 8]) {
            for (s, v) in state.iter_mut().zip(w) {
                s[lane] = v;
            }
        }

        fn get(state: &Self::State, lane: usize) -> [u64; 8] {
            std::array::from_fn(|i| state[i][lane])
        }

        unsafe fn compress(state: &mut Self::State, blocks: [Option<&[u8]>; N]) {
            const ZERO: [u8; 128] = [0; 128];
            let n = blocks.iter().flatten().map(|b| b.len() / 128).next().unwrap_or(0);
            for k in 0..n {
                let one = blocks.map(|b| -> &[u8; 128] {
                    b.map_or(&ZERO, |b| b[128 * k..128 * (k + 1)].try_into().expect("128-byte blocks"))
                });
                // SAFETY: the CPU has AVX-512 F and VL (the caller's contract).
                unsafe { compress4(state, one) }
            }
        }

        fn alone(_: HashAlg, w: &mut [u64; 8], blocks: &[u8]) {
            crate::sha512::compress_bytes(w, blocks);
        }

        fn output(alg: HashAlg, w: [u64; 8]) -> Vec<u8> {
            let mut d: Vec<u8> = w.iter().flat_map(|x| x.to_be_bytes()).collect();
            d.truncate(alg.size());
            d
        }
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
                // h + W[t] + K[t] does not wait for e.
                let hwk = _mm256_add_epi64(h, _mm256_add_epi64(w[$i], _mm256_set1_epi64x(K[$t] as i64)));
                let t1 = _mm256_add_epi64(hwk, _mm256_add_epi64(ch, s1));
                let s0 = big_sigma!(a, 28, 34, 39);
                let maj = _mm256_ternarylogic_epi64(a, b, c, MAJ);
                h = g;
                g = f;
                f = e;
                e = _mm256_add_epi64(d, t1);
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

    /// SHA-1 and SHA-256 with the SHA extensions, the rounds of up to four messages of either
    /// algorithm interleaved in one instruction stream.
    pub(super) struct ShaNi;

    /// The SHA-1 initial value (FIPS 180-4 §5.3.1).
    const IV_1: [u32; 5] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];

    /// The SHA-256 initial value (FIPS 180-4 §5.3.3).
    const IV_256: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    /// The SHA-256 round constants (FIPS 180-4 §4.2.2), four per 128-bit load.
    #[repr(align(16))]
    struct K256([u32; 64]);
    static K_256: K256 = K256([
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ]);

    /// Every lane's chaining value as the SHA extensions hold it, and which lanes hash SHA-1.
    pub(super) struct ShaNiState {
        /// SHA-256: the words F, E, B, A (one 128-bit register, lowest first), then H, G, D, C.
        /// SHA-1: D, C, B, A, then three zeros and E.
        words: [[u32; 8]; N],
        sha1: [bool; N],
    }

    impl Kernel for ShaNi {
        const BLOCK: usize = 64;
        /// SHA-256: A..H; SHA-1: A..E, then three unused words.
        type Words = [u32; 8];
        type State = ShaNiState;

        fn new_state() -> Self::State {
            ShaNiState { words: [[0; 8]; N], sha1: [false; N] }
        }

        fn iv(alg: HashAlg) -> [u32; 8] {
            match alg {
                HashAlg::Sha1 => {
                    let [a, b, c, d, e] = IV_1;
                    [a, b, c, d, e, 0, 0, 0]
                }
                _ => IV_256,
            }
        }

        fn set(state: &mut Self::State, lane: usize, alg: HashAlg, w: [u32; 8]) {
            let [a, b, c, d, e, f, g, h] = w;
            state.sha1[lane] = alg == HashAlg::Sha1;
            state.words[lane] = if state.sha1[lane] { [d, c, b, a, 0, 0, 0, e] } else { [f, e, b, a, h, g, d, c] };
        }

        fn get(state: &Self::State, lane: usize) -> [u32; 8] {
            if state.sha1[lane] {
                let [d, c, b, a, _, _, _, e] = state.words[lane];
                [a, b, c, d, e, 0, 0, 0]
            } else {
                let [f, e, b, a, h, g, d, c] = state.words[lane];
                [a, b, c, d, e, f, g, h]
            }
        }

        unsafe fn compress(state: &mut Self::State, blocks: [Option<&[u8]>; N]) {
            // The busy lanes, SHA-256 first: the code for that many messages of each algorithm
            // runs (an idle lane would cost as much as a busy one). Four busy run as two pairs,
            // each SHA-256 message beside a SHA-1 one where there are both (the SSE encoding of
            // the SHA instructions reaches sixteen registers: too few for four messages' state
            // and schedule). `docs/performance.md` has the measurements.
            let mut order = [0usize; N];
            let mut busy = 0;
            for sha1 in [false, true] {
                for (l, b) in blocks.iter().enumerate() {
                    if b.is_some() && state.sha1[l] == sha1 {
                        order[busy] = l;
                        busy += 1;
                    }
                }
            }
            let mut group = |lanes: &[usize]| {
                let sha1 = lanes.iter().filter(|&&l| state.sha1[l]).count();
                macro_rules! run {
                    ($($a:literal $b:literal),*) => {
                        match (lanes.len() - sha1, sha1) {
                            $(($a, $b) => {
                                // SHA-256 lanes first (`order`), then SHA-1.
                                let mut s: [[u32; 8]; $a] = std::array::from_fn(|j| state.words[lanes[j]]);
                                let mut t: [[u32; 8]; $b] = std::array::from_fn(|j| state.words[lanes[$a + j]]);
                                let x: [&[u8]; $a] = std::array::from_fn(|j| blocks[lanes[j]].unwrap_or_default());
                                let y: [&[u8]; $b] =
                                    std::array::from_fn(|j| blocks[lanes[$a + j]].unwrap_or_default());
                                // SAFETY: the CPU has the SHA extensions, SSSE3 and SSE4.1 (the
                                // caller's contract).
                                unsafe { sha_ni_blocks::<$a, $b>(&mut s, x, &mut t, y) };
                                for (&l, w) in lanes.iter().zip(s.into_iter().chain(t)) {
                                    state.words[l] = w;
                                }
                            })*
                            _ => unreachable!("one to three lanes at once"),
                        }
                    };
                }
                run!(1 0, 0 1, 2 0, 1 1, 0 2, 3 0, 2 1, 1 2, 0 3)
            };
            match busy {
                4 => {
                    // The first SHA-256 lane beside the last SHA-1 lane, and so on (`order` has
                    // the SHA-256 lanes first, so each pair does too).
                    group(&[order[0], order[3]]);
                    group(&[order[1], order[2]]);
                }
                0 => {}
                n => group(&order[..n]),
            }
        }

        fn alone(alg: HashAlg, w: &mut [u32; 8], blocks: &[u8]) {
            type Block = GenericArray<u8, U64>;
            const _: () = assert!(size_of::<Block>() == 64 && align_of::<Block>() == 1);
            debug_assert_eq!(blocks.len() % 64, 0);
            // SAFETY: `GenericArray<u8, U64>` is 64 bytes with alignment 1 (checked above; it is
            // a `repr(transparent)` array): the whole blocks of `blocks`, read in place.
            let blocks = unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<Block>(), blocks.len() / 64) };
            if alg == HashAlg::Sha1 {
                let mut five: [u32; 5] = std::array::from_fn(|i| w[i]);
                sha1::compress(&mut five, blocks);
                w[..5].copy_from_slice(&five);
            } else {
                sha2::compress256(w, blocks);
            }
        }

        fn output(alg: HashAlg, w: [u32; 8]) -> Vec<u8> {
            let mut d: Vec<u8> = w.iter().flat_map(|x| x.to_be_bytes()).collect();
            d.truncate(alg.size());
            d
        }
    }

    /// The blocks of `A` SHA-256 and `B` SHA-1 messages (the same number of 64-byte blocks each)
    /// into their chaining values (laid out as [`ShaNiState`]'s words), the four rounds of one
    /// message beside those of the others. SHA-256: FIPS 180-4 §6.2.2 with `sha256rnds2`, two
    /// rounds per instruction, the schedule with `sha256msg1` and `sha256msg2`. SHA-1: §6.1.2
    /// with `sha1rnds4` (four rounds, the round function chosen by the immediate), `sha1nexte`
    /// (the next E from the A of four rounds before, plus the schedule words), the schedule with
    /// `sha1msg1`, `sha1msg2` and an XOR.
    #[target_feature(enable = "sha,ssse3,sse4.1")]
    unsafe fn sha_ni_blocks<const A: usize, const B: usize>(
        s256: &mut [[u32; 8]; A],
        b256: [&[u8]; A],
        s1: &mut [[u32; 8]; B],
        b1: [&[u8]; B],
    ) {
        // Big-endian words: reverse the bytes of each 32-bit word (SHA-256), or all sixteen
        // (SHA-1 keeps the first word in the highest element).
        let swap = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);
        let reverse = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
        let n = b256.iter().chain(&b1).map(|b| b.len() / 64).next().unwrap_or(0);
        debug_assert!(b256.iter().chain(&b1).all(|b| b.len() == 64 * n));
        // SAFETY (all loads and stores of state below): 32 bytes of a lane's words; unaligned.
        let mut abef: [__m128i; A] = std::array::from_fn(|j| unsafe { _mm_loadu_si128(s256[j].as_ptr().cast()) });
        let mut cdgh: [__m128i; A] =
            std::array::from_fn(|j| unsafe { _mm_loadu_si128(s256[j].as_ptr().add(4).cast()) });
        let mut abcd: [__m128i; B] = std::array::from_fn(|j| unsafe { _mm_loadu_si128(s1[j].as_ptr().cast()) });
        let mut e: [__m128i; B] = std::array::from_fn(|j| unsafe { _mm_loadu_si128(s1[j].as_ptr().add(4).cast()) });
        for i in 0..n {
            // SAFETY: 16 bytes at 16q of block i of a message (each slice holds n blocks).
            let load = |b: &[u8], q: usize, mask| unsafe {
                _mm_shuffle_epi8(_mm_loadu_si128(b.as_ptr().add(64 * i + 16 * q).cast()), mask)
            };
            // w[j], v[j]: the last four groups of four schedule words of a message, oldest first.
            let mut w: [[__m128i; 4]; A] = std::array::from_fn(|j| std::array::from_fn(|q| load(b256[j], q, swap)));
            let mut v: [[__m128i; 4]; B] = std::array::from_fn(|j| std::array::from_fn(|q| load(b1[j], q, reverse)));
            let (abef0, cdgh0, abcd0, e0) = (abef, cdgh, abcd, e);
            // The A of four rounds before, for sha1nexte.
            let mut before = abcd;
            // Step r: four rounds of each message (SHA-256 has sixteen steps, SHA-1 twenty;
            // `f` selects SHA-1's round function). Unrolled: the immediates must be constants.
            macro_rules! step {
                ($r:literal, $f:literal) => {
                    if $r < 16 {
                        // SAFETY: words 4r..4r + 4 of the 16-byte aligned constants, r < 16.
                        let k = unsafe { _mm_load_si128(K_256.0.as_ptr().add(4 * ($r % 16)).cast()) };
                        for j in 0..A {
                            let [w0, w1, w2, w3] = w[j];
                            let cur = if $r < 4 {
                                w0
                            } else {
                                // W[t..t+4] from W[t-16..t]: σ0 terms (msg1), W[t-7..t-3], σ1 (msg2).
                                let t = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4));
                                _mm_sha256msg2_epu32(t, w3)
                            };
                            w[j] = [w1, w2, w3, cur];
                            let wk = _mm_add_epi32(cur, k);
                            cdgh[j] = _mm_sha256rnds2_epu32(cdgh[j], abef[j], wk);
                            abef[j] = _mm_sha256rnds2_epu32(abef[j], cdgh[j], _mm_shuffle_epi32(wk, 0x0e));
                        }
                    }
                    for j in 0..B {
                        let [v0, v1, v2, v3] = v[j];
                        let cur = if $r < 4 {
                            v0
                        } else {
                            // W[t..t+4] = ROTL1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16]).
                            _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(v0, v1), v2), v3)
                        };
                        v[j] = [v1, v2, v3, cur];
                        let next_e =
                            if $r == 0 { _mm_add_epi32(e[j], cur) } else { _mm_sha1nexte_epu32(before[j], cur) };
                        before[j] = abcd[j];
                        abcd[j] = _mm_sha1rnds4_epu32(abcd[j], next_e, $f);
                    }
                };
            }
            step!(0, 0);
            step!(1, 0);
            step!(2, 0);
            step!(3, 0);
            step!(4, 0);
            step!(5, 1);
            step!(6, 1);
            step!(7, 1);
            step!(8, 1);
            step!(9, 1);
            step!(10, 2);
            step!(11, 2);
            step!(12, 2);
            step!(13, 2);
            step!(14, 2);
            step!(15, 3);
            step!(16, 3);
            step!(17, 3);
            step!(18, 3);
            step!(19, 3);
            for j in 0..A {
                abef[j] = _mm_add_epi32(abef[j], abef0[j]);
                cdgh[j] = _mm_add_epi32(cdgh[j], cdgh0[j]);
            }
            for j in 0..B {
                // E: ROTL30 of the A of four rounds before, plus E at the block's start.
                e[j] = _mm_sha1nexte_epu32(before[j], e0[j]);
                abcd[j] = _mm_add_epi32(abcd[j], abcd0[j]);
            }
        }
        for j in 0..A {
            // SAFETY: as for the loads.
            unsafe {
                _mm_storeu_si128(s256[j].as_mut_ptr().cast(), abef[j]);
                _mm_storeu_si128(s256[j].as_mut_ptr().add(4).cast(), cdgh[j]);
            }
        }
        for j in 0..B {
            // SAFETY: as for the loads.
            unsafe {
                _mm_storeu_si128(s1[j].as_mut_ptr().cast(), abcd[j]);
                _mm_storeu_si128(s1[j].as_mut_ptr().add(4).cast(), e[j]);
            }
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
            HashAlg::Sha1 => sha1::Sha1::digest(&flat).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(&flat).to_vec(),
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
        assert!(x86::has_avx512(), "this CPU lacks AVX-512 F/VL: the four-lane path is not checked");
        let got = x86::drive::<x86::Sha512x4>(&jobs);
        for (i, (alg, parts)) in jobs.iter().enumerate() {
            assert_eq!(got[i], reference(*alg, parts), "{alg} of message {i}");
        }
    }

    /// SHA-1 and SHA-256 messages of every padding case (lengths around 55, 56, 64 bytes and
    /// their multiples), in pieces that split blocks anywhere, empty pieces included, from one
    /// message to more than the lanes, one algorithm or both: the same digests as the `sha1`
    /// and `sha2` crates, whatever path runs.
    #[test]
    fn sha_ni_same_as_reference_in_pieces() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 13) as u8).collect();
        let lens = [0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 4128, 19_999];
        let cuts = [1usize, 3, 32, 63, 64, 100, 5000];
        let owned: Vec<Vec<&[u8]>> = lens
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                let m = &data[k..k + n.min(data.len() - k)];
                let mut parts: Vec<&[u8]> = m.chunks(cuts[k % cuts.len()]).collect();
                if k % 3 == 0 {
                    parts.insert(parts.len() / 2, &[]);
                }
                parts
            })
            .collect();
        for pick in [|_| HashAlg::Sha256, |_| HashAlg::Sha1, |k: usize| HashAlg::FAMILIES[0][k % 2]] {
            let jobs: Vec<(HashAlg, &[&[u8]])> =
                owned.iter().enumerate().map(|(k, p)| (pick(k), p.as_slice())).collect();
            for count in [1, 2, 3, 4, 5, jobs.len()] {
                let got = sha_ni(&jobs[..count]);
                for (i, (alg, parts)) in jobs[..count].iter().enumerate() {
                    assert_eq!(got[i], reference(*alg, parts), "{alg} of message {i} ({count} messages)");
                }
            }
        }
    }

    /// The interleaved SHA-1 and SHA-256 path itself, on this CPU, with four, three, two and one
    /// busy lanes holding every mix of the two algorithms (messages of different lengths end at
    /// different times): fails where it cannot run (no SHA extensions) rather than pass without
    /// checking it.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sha_ni_lanes_run_and_agree() {
        assert!(x86::has_sha_ni(), "this CPU lacks the SHA extensions: the interleaved path is not checked");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i ^ (i >> 5)) as u8).collect();
        let owned: Vec<Vec<&[u8]>> =
            [(0, 300_000), (5, 1), (17, 250_001), (300, 0), (1, 77_777), (2, 64), (9, 150_000)]
                .iter()
                .enumerate()
                .map(|(k, &(start, n))| data[start..start + n.min(data.len() - start)].chunks(40_000 + k).collect())
                .collect();
        // Which messages are SHA-1, as bits: none, all, and mixes that put one to three SHA-1
        // messages beside SHA-256 ones in the lanes as they fill and empty.
        for mask in [0u32, 0x7f, 0b1010101, 0b0101010, 0b0000001, 0b1110000, 0b0011011, 0b1001100] {
            let alg = |k: usize| if mask >> k & 1 == 1 { HashAlg::Sha1 } else { HashAlg::Sha256 };
            let jobs: Vec<(HashAlg, &[&[u8]])> =
                owned.iter().enumerate().map(|(k, p)| (alg(k), p.as_slice())).collect();
            let got = x86::drive::<x86::ShaNi>(&jobs);
            for (i, (alg, parts)) in jobs.iter().enumerate() {
                assert_eq!(got[i], reference(*alg, parts), "{alg} of message {i} (SHA-1 mask {mask:#b})");
            }
        }
    }
}
