//! SHA-384 and SHA-512 (FIPS 180-4) with a compression function that keeps up with OpenSSL's on
//! CPUs with AVX2 and BMI2.
//!
//! Measured on the build machine, an AMD EPYC (Zen 4), `openssl speed sha384` against one stream
//! of 16 KiB buffers (`examples/throughput.rs`, CPU time): the `sha2` crate's AVX2 code 605 MB/s,
//! `ring` and `aws-lc-rs` the same, OpenSSL 850–870 MB/s; with OpenSSL's AVX2 + BMI2 code path
//! masked off (`OPENSSL_ia32cap`), OpenSSL too hashes ~600 MB/s. This module does what that
//! path does, in Rust with the rounds in inline assembly: the message schedules of two blocks
//! are computed at once, two words of each per 256-bit register, beside the first block's
//! rounds (vector and scalar units work in parallel); the second block's rounds then only read
//! the prepared W[t] + K[t]; and the rounds use `rorx` and `andn`, which leave their sources
//! intact. It hashes 770–800 MB/s there (`docs/performance.md`). Where the CPU has AVX-512 F
//! and VL, the schedule's σ0 and σ1 use their rotate and three-input XOR (4 operations instead
//! of 9): on an Intel Xeon (Emerald Rapids) one stream went from 630 to 646 MB/s, OpenSSL's
//! 608–616 there (not measured on the Zen 4, which no longer is the build machine).
//!
//! On CPUs without AVX2, BMI1 and BMI2 the `sha2` crate's compression function runs instead.
//! Padding, buffering and the `Digest` interface are the `digest` crate's, around
//! [`Sha512Core`]. The tests compare both digests with the `sha2` crate for every message length
//! up to nine blocks and with FIPS 180-4's examples; every SHA-384 the workspace computes is
//! also checked against its oracles (systemd-measure, veritysetup, sev-snp-measure, ...).

use digest::block_buffer::Eager;
use digest::core_api::{
    AlgorithmName, Block, BlockSizeUser, Buffer, BufferKindUser, CoreWrapper, CtVariableCoreWrapper, OutputSizeUser,
    TruncSide, UpdateCore, VariableOutputCore,
};
use digest::typenum::{Unsigned, U128, U48, U64};
use digest::{HashMarker, InvalidOutputSize, Output};

/// SHA-384: the streaming [`digest::Digest`] interface over `Sha512Core`.
pub type Sha384 = CoreWrapper<CtVariableCoreWrapper<Sha512Core, U48>>;
/// SHA-512: the streaming [`digest::Digest`] interface over `Sha512Core`.
pub type Sha512 = CoreWrapper<CtVariableCoreWrapper<Sha512Core, U64>>;

/// The SHA-512 state and the number of blocks hashed; SHA-384 is the same with another
/// initial value, truncated.
#[derive(Clone)]
pub struct Sha512Core {
    state: [u64; 8],
    blocks: u128,
}

impl std::fmt::Debug for Sha512Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha512Core { .. }")
    }
}

impl HashMarker for Sha512Core {}

impl BlockSizeUser for Sha512Core {
    type BlockSize = U128;
}

impl BufferKindUser for Sha512Core {
    type BufferKind = Eager;
}

impl OutputSizeUser for Sha512Core {
    type OutputSize = U64;
}

impl UpdateCore for Sha512Core {
    #[inline]
    fn update_blocks(&mut self, blocks: &[Block<Self>]) {
        self.blocks += blocks.len() as u128;
        compress(&mut self.state, blocks);
    }
}

impl VariableOutputCore for Sha512Core {
    const TRUNC_SIDE: TruncSide = TruncSide::Left;

    fn new(output_size: usize) -> Result<Self, InvalidOutputSize> {
        let state = match output_size {
            48 => IV_384,
            64 => IV_512,
            _ => return Err(InvalidOutputSize),
        };
        Ok(Self { state, blocks: 0 })
    }

    fn finalize_variable_core(&mut self, buffer: &mut Buffer<Self>, out: &mut Output<Self>) {
        let bits = 8 * (buffer.get_pos() as u128 + U128::USIZE as u128 * self.blocks);
        buffer.len128_padding_be(bits, |b| compress(&mut self.state, std::slice::from_ref(b)));
        for (chunk, v) in out.chunks_exact_mut(8).zip(self.state) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
    }
}

impl AlgorithmName for Sha512Core {
    fn write_alg_name(f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha512")
    }
}

/// Hashes `blocks` into `state`: the AVX2 + BMI2 code where the CPU has it, else `sha2`'s.
fn compress(state: &mut [u64; 8], blocks: &[Block<Sha512Core>]) {
    #[cfg(target_arch = "x86_64")]
    if x86::compress(state, blocks) {
        return;
    }
    sha2::compress512(state, blocks);
}

/// SHA-384 of a message of whole 128-byte blocks that the caller hands over by reference, in
/// order, from wherever they are: for a message assembled from pieces (TDX MRTD's 128-byte
/// records between 256-byte chunks of the firmware) without copying the pieces together first.
/// Blocks are hashed two at a time as they arrive; of each call's blocks at most the last is
/// copied, to wait for the next call's first.
#[derive(Clone, Debug)]
pub struct Sha384Blocks {
    state: [u64; 8],
    blocks: u128,
    held: Option<[u8; 128]>,
}

impl Default for Sha384Blocks {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha384Blocks {
    /// The empty message.
    pub fn new() -> Self {
        Self { state: IV_384, blocks: 0, held: None }
    }

    /// Appends `blocks` to the message.
    pub fn update(&mut self, blocks: &[&[u8; 128]]) {
        self.blocks += blocks.len() as u128;
        let mut rest = blocks;
        if let Some(held) = self.held.take() {
            match rest {
                [first, tail @ ..] => {
                    compress_pair(&mut self.state, &held, Some(first));
                    rest = tail;
                }
                [] => {
                    self.held = Some(held);
                    return;
                }
            }
        }
        let mut pairs = rest.chunks_exact(2);
        for p in &mut pairs {
            compress_pair(&mut self.state, p[0], Some(p[1]));
        }
        if let [last] = pairs.remainder() {
            self.held = Some(**last);
        }
    }

    /// The digest: FIPS 180-4 padding (one block, as the message is whole blocks), then the
    /// first 48 bytes of the state.
    pub fn finalize(mut self) -> [u8; 48] {
        let mut pad = [0u8; 128];
        pad[0] = 0x80;
        pad[112..].copy_from_slice(&(self.blocks * 1024).to_be_bytes());
        match self.held.take() {
            Some(held) => compress_pair(&mut self.state, &held, Some(&pad)),
            None => compress_pair(&mut self.state, &pad, None),
        }
        let mut out = [0u8; 48];
        for (chunk, v) in out.chunks_exact_mut(8).zip(self.state) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
        out
    }
}

/// Hashes block `x`, then `y` if given, into `state`.
fn compress_pair(state: &mut [u64; 8], x: &[u8; 128], y: Option<&[u8; 128]>) {
    let (x, y) = (Block::<Sha512Core>::from_slice(x), y.map(|y| Block::<Sha512Core>::from_slice(y)));
    #[cfg(target_arch = "x86_64")]
    if x86::pair(state, x, y) {
        return;
    }
    sha2::compress512(state, std::slice::from_ref(x));
    if let Some(y) = y {
        sha2::compress512(state, std::slice::from_ref(y));
    }
}

/// Hashes whole blocks (`bytes.len()` a multiple of 128) into `state`, two at a time (the
/// multi-message code finishes a message alone with this when the other lanes are done).
pub(crate) fn compress_bytes(state: &mut [u64; 8], bytes: &[u8]) {
    debug_assert_eq!(bytes.len() % 128, 0);
    let mut pairs = bytes.chunks_exact(256);
    for p in &mut pairs {
        let blocks =
            [Block::<Sha512Core>::clone_from_slice(&p[..128]), Block::<Sha512Core>::clone_from_slice(&p[128..])];
        compress(state, &blocks);
    }
    for b in pairs.remainder().chunks_exact(128) {
        compress(state, &[Block::<Sha512Core>::clone_from_slice(b)]);
    }
}

/// The round constants (FIPS 180-4 §4.2.3).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const K: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
];

/// The initial SHA-512 state (FIPS 180-4 §5.3.5).
pub(crate) const IV_512: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// The initial SHA-384 state (FIPS 180-4 §5.3.4).
pub(crate) const IV_384: [u64; 8] = [
    0xcbbb9d5dc1059ed8,
    0x629a292a367cd507,
    0x9159015a3070dd17,
    0x152fecd8f70e5939,
    0x67332667ffc00b31,
    0x8eb44a8768581511,
    0xdb0c2e0d64f98fa7,
    0x47b5481dbefa4fa4,
];

/// The AVX2 + BMI2 compression function (x86-64 only).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // CPU intrinsics, behind the run-time check in `compress`.
mod x86 {
    use std::arch::x86_64::*;

    use super::{Block, Sha512Core, K};

    /// Hashes block `x`, then `y` if given, into `state`; both kinds need AVX2, BMI1 and BMI2.
    type TwoBlocks = unsafe fn(&mut [u64; 8], &Block<Sha512Core>, Option<&Block<Sha512Core>>);

    /// The two-block function for this CPU (what it has is checked once by the standard library,
    /// then cached): with the AVX-512 VL schedule if `vl` (rotate and three-input logic
    /// instructions), else AVX2's; `None` when the CPU lacks what that one needs.
    fn kernel(vl: bool) -> Option<TwoBlocks> {
        let avx2 = std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2");
        let avx512vl = std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl");
        match (avx2, vl, avx512vl) {
            (false, _, _) | (true, true, false) => None,
            (true, true, true) => Some(two_blocks_vl),
            (true, false, _) => Some(two_blocks_avx2),
        }
    }

    /// The fastest two-block function this CPU has.
    fn best() -> Option<TwoBlocks> {
        kernel(true).or_else(|| kernel(false))
    }

    /// Hashes `blocks` into `state`, two blocks at a time (a last odd block alone), when this
    /// CPU has AVX2, BMI1 and BMI2; false, with `state` untouched, when it has not.
    pub(super) fn compress(state: &mut [u64; 8], blocks: &[Block<Sha512Core>]) -> bool {
        best().map(|f| run(f, state, blocks)).is_some()
    }

    /// [`compress`] with the AVX-512 VL schedule or AVX2's, on a CPU that has what the choice
    /// needs; false, with `state` untouched, when it has not (the tests check both).
    #[cfg(test)]
    pub(super) fn compress_with(state: &mut [u64; 8], blocks: &[Block<Sha512Core>], vl: bool) -> bool {
        kernel(vl).map(|f| run(f, state, blocks)).is_some()
    }

    /// Hashes `x`, then `y` if given, into `state` as [`compress`] does; false, with `state`
    /// untouched, on a CPU without AVX2, BMI1 and BMI2.
    pub(super) fn pair(state: &mut [u64; 8], x: &Block<Sha512Core>, y: Option<&Block<Sha512Core>>) -> bool {
        best()
            .map(|f| {
                // SAFETY: `best` returns only a function whose instructions this CPU has.
                unsafe { f(state, x, y) }
            })
            .is_some()
    }

    /// Hashes `blocks` with `two_blocks` (from [`kernel`]), two at a time.
    fn run(two_blocks: TwoBlocks, state: &mut [u64; 8], blocks: &[Block<Sha512Core>]) {
        let mut pairs = blocks.chunks_exact(2);
        for pair in &mut pairs {
            // SAFETY: callers pass a function from `kernel`, which this CPU can run.
            unsafe { two_blocks(state, &pair[0], Some(&pair[1])) };
        }
        if let [last] = pairs.remainder() {
            // SAFETY: as above.
            unsafe { two_blocks(state, last, None) };
        }
    }

    /// One SHA-512 round (FIPS 180-4 §6.4.2) on the working variables named (c enters only as
    /// `bc` = b ^ c, the previous round's a ^ b), adding W[t] + K[t] read `off` bytes after `p`:
    /// updates `d` and `h` and writes this round's a ^ b into `ab`; the caller rotates the names.
    /// In assembly so that each operation is the one chosen here: `rorx` and `andn` (BMI2, BMI1)
    /// leave their sources intact, Maj reuses the previous round's a ^ b, and W[t] + K[t] is a
    /// memory operand with a constant offset (no register for it: the compiler, given the same
    /// formulas in Rust, used more operations per round and spilled registers, ~4 % and ~6 %
    /// slower). The asm reads only that word and writes only the registers named.
    macro_rules! round {
        ($a:ident, $b:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $p:expr, $off:expr, $bc:ident, $ab:ident) => {
            std::arch::asm!(
                // T1 = h + W[t] + K[t] + Ch(e, f, g) + Σ1(e), with Ch = (!e & g) + (e & f)
                "add {h}, qword ptr [{p} + {off}]",
                "rorx {t0}, {e}, 41",
                "rorx {t1}, {e}, 18",
                "andn {ab}, {e}, {g}",
                "xor {t0}, {t1}",
                "rorx {t1}, {e}, 14",
                "add {h}, {ab}",
                "mov {ab}, {f}",
                "and {ab}, {e}",
                "xor {t0}, {t1}",
                "add {h}, {ab}",
                "add {h}, {t0}",
                // d += T1; h = T1 + Σ0(a) + Maj(a, b, c), with Maj = ((a ^ b) & (b ^ c)) ^ b
                "rorx {t0}, {a}, 39",
                "rorx {t1}, {a}, 34",
                "add {d}, {h}",
                "xor {t0}, {t1}",
                "rorx {t1}, {a}, 28",
                "mov {ab}, {a}",
                "xor {ab}, {b}",
                "xor {t0}, {t1}",
                "and {bc}, {ab}",
                "add {h}, {t0}",
                "xor {bc}, {b}",
                "add {h}, {bc}",
                a = in(reg) $a, b = in(reg) $b, d = inout(reg) $d, e = in(reg) $e, f = in(reg) $f,
                g = in(reg) $g, h = inout(reg) $h, p = in(reg) $p, off = const $off,
                bc = inout(reg) $bc => _, ab = out(reg) $ab, t0 = out(reg) _, t1 = out(reg) _,
                options(pure, readonly, nostack),
            );
        };
    }

    /// σ0 and σ1 (FIPS 180-4 §4.1.3) of four words at once, in the instructions of a CPU
    /// family: the implementations are inlined into functions that enable those instructions.
    trait Sigmas {
        /// σ0 of each 64-bit lane.
        unsafe fn sigma0(x: __m256i) -> __m256i;
        /// σ1 of each 64-bit lane.
        unsafe fn sigma1(x: __m256i) -> __m256i;
    }

    /// AVX2: each rotation is two shifts and an OR (9 operations a σ).
    struct Avx2;

    impl Sigmas for Avx2 {
        #[inline(always)]
        unsafe fn sigma0(x: __m256i) -> __m256i {
            let r1 = _mm256_or_si256(_mm256_srli_epi64(x, 1), _mm256_slli_epi64(x, 63));
            let r8 = _mm256_or_si256(_mm256_srli_epi64(x, 8), _mm256_slli_epi64(x, 56));
            _mm256_xor_si256(_mm256_xor_si256(r1, r8), _mm256_srli_epi64(x, 7))
        }

        #[inline(always)]
        unsafe fn sigma1(x: __m256i) -> __m256i {
            let r19 = _mm256_or_si256(_mm256_srli_epi64(x, 19), _mm256_slli_epi64(x, 45));
            let r61 = _mm256_or_si256(_mm256_srli_epi64(x, 61), _mm256_slli_epi64(x, 3));
            _mm256_xor_si256(_mm256_xor_si256(r19, r61), _mm256_srli_epi64(x, 6))
        }
    }

    /// AVX-512 F + VL on 256-bit registers: `vprorq` rotates, `vpternlogq` XORs three at once
    /// (4 operations a σ). The rounds are bound by how many operations issue, not by their
    /// chain (measured: shortening the e chain of a round from five steps to four changed
    /// nothing), and these ten fewer per schedule step made one stream ~3 % faster on an Intel
    /// Xeon (Emerald Rapids), 630 -> 646 MB/s.
    struct Avx512Vl;

    impl Sigmas for Avx512Vl {
        #[inline(always)]
        unsafe fn sigma0(x: __m256i) -> __m256i {
            _mm256_ternarylogic_epi64(_mm256_ror_epi64(x, 1), _mm256_ror_epi64(x, 8), _mm256_srli_epi64(x, 7), 0x96)
        }

        #[inline(always)]
        unsafe fn sigma1(x: __m256i) -> __m256i {
            _mm256_ternarylogic_epi64(_mm256_ror_epi64(x, 19), _mm256_ror_epi64(x, 61), _mm256_srli_epi64(x, 6), 0x96)
        }
    }

    /// K[2j] and K[2j + 1], twice (once for each block): row j is what register j of the
    /// schedule is added to.
    static K2: Rows = {
        let mut rows = [[0u64; 4]; 40];
        let mut j = 0;
        while j < 40 {
            rows[j] = [K[2 * j], K[2 * j + 1], K[2 * j], K[2 * j + 1]];
            j += 1;
        }
        Rows(rows)
    };

    /// Row `j` of `K2`; `j` < 40.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn k2(j: usize) -> __m256i {
        // SAFETY: callers pass j < 40; a row of `K2` is 32 bytes, aligned to 32 (`Rows`).
        unsafe { _mm256_load_si256(K2.0.as_ptr().add(j).cast()) }
    }

    /// Hashes block `x`, then `y` if given, into `state`. The message schedules of both are
    /// computed together: register `w[i]` holds the two words at positions 2i and 2i + 1 (mod
    /// 16) of `x` in its low half and of `y` in its high half, and every W[t] + K[t] is kept in
    /// `wk` (`wk[j]` = words 2j and 2j + 1 of `x`, then of `y`). Each pair of `x`'s rounds
    /// runs beside the computation of two more words of both schedules; `y`'s rounds only read
    /// `wk`. Without `y`, the high halves repeat `x` and are not used.
    #[inline(always)]
    unsafe fn two_blocks<S: Sigmas>(state: &mut [u64; 8], x: &Block<Sha512Core>, y: Option<&Block<Sha512Core>>) {
        // Big-endian words: reverse the bytes of each 64-bit lane.
        let swap = _mm256_set_epi64x(
            0x0809_0a0b_0c0d_0e0f,
            0x0001_0203_0405_0607,
            0x0809_0a0b_0c0d_0e0f,
            0x0001_0203_0405_0607,
        );
        let yb = y.unwrap_or(x);
        let mut w = [_mm256_setzero_si256(); 8];
        // Not zero-filled (a 1,280-byte memset per pair of blocks was ~2 % of the time): every
        // row is written below before any round reads it (rows 0-7 here, row j >= 8 by the
        // schedule step that precedes the rounds reading it).
        let mut wk = std::mem::MaybeUninit::<Rows>::uninit();
        // Every access to `wk` below goes through this pointer: in bounds by construction
        // (rows j < 40, words t < 80), without a bounds check in the rounds.
        // SAFETY: a pointer to the field of the (uninitialised) local; nothing is read here.
        let wk = unsafe { std::ptr::addr_of_mut!((*wk.as_mut_ptr()).0) }.cast::<[u64; 4]>();
        for (i, wi) in w.iter_mut().enumerate() {
            // SAFETY: 16 bytes at 16i of 128-byte blocks; unaligned loads.
            let (lo, hi) = unsafe {
                (_mm_loadu_si128(x.as_ptr().add(16 * i).cast()), _mm_loadu_si128(yb.as_ptr().add(16 * i).cast()))
            };
            *wi = _mm256_shuffle_epi8(_mm256_set_m128i(hi, lo), swap);
            // SAFETY: row i < 8 of `wk`, 32-byte aligned.
            unsafe { _mm256_store_si256(wk.add(i).cast(), _mm256_add_epi64(*wi, k2(i))) };
        }

        // The next two words of both schedules (t = 2j + 16), into w[i] (i = j mod 8):
        // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], the same for t + 1.
        macro_rules! schedule {
            ($i:literal, $j:expr) => {{
                let x0 = w[$i];
                let x15 = _mm256_alignr_epi8(w[($i + 1) % 8], x0, 8);
                let x7 = _mm256_alignr_epi8(w[($i + 5) % 8], w[($i + 4) % 8], 8);
                let next = _mm256_add_epi64(
                    _mm256_add_epi64(x0, S::sigma0(x15)),
                    _mm256_add_epi64(x7, S::sigma1(w[($i + 7) % 8])),
                );
                w[$i] = next;
                // SAFETY: row j + 8 < 40 of `wk` (j < 32), 32-byte aligned.
                unsafe { _mm256_store_si256(wk.add($j + 8).cast(), _mm256_add_epi64(next, k2($j + 8))) };
            }};
        }

        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        let (mut bc, mut bc2) = (b ^ c, 0u64);
        // Two rounds; the working variables' names rotate by two from one call to the next.
        macro_rules! two_rounds {
            (0, $p:expr, $k:literal) => {
                round!(a, b, d, e, f, g, h, $p, 8 * (4 * ($k / 2) + $k % 2), bc, bc2);
                round!(h, a, c, d, e, f, g, $p, 8 * (4 * (($k + 1) / 2) + ($k + 1) % 2), bc2, bc);
            };
            (1, $p:expr, $k:literal) => {
                round!(g, h, b, c, d, e, f, $p, 8 * (4 * ($k / 2) + $k % 2), bc, bc2);
                round!(f, g, a, b, c, d, e, $p, 8 * (4 * (($k + 1) / 2) + ($k + 1) % 2), bc2, bc);
            };
            (2, $p:expr, $k:literal) => {
                round!(e, f, h, a, b, c, d, $p, 8 * (4 * ($k / 2) + $k % 2), bc, bc2);
                round!(d, e, g, h, a, b, c, $p, 8 * (4 * (($k + 1) / 2) + ($k + 1) % 2), bc2, bc);
            };
            (3, $p:expr, $k:literal) => {
                round!(c, d, f, g, h, a, b, $p, 8 * (4 * ($k / 2) + $k % 2), bc, bc2);
                round!(b, c, e, f, g, h, a, $p, 8 * (4 * (($k + 1) / 2) + ($k + 1) % 2), bc2, bc);
            };
        }
        // Sixteen rounds of the first block (words 2j..2j + 16) beside sixteen more words of
        // both schedules. Unrolled, like everything below, so that every offset is a constant.
        macro_rules! sixteen_with_schedule {
            ($j:expr) => {
                // SAFETY: rows j..j + 8 of `wk` (j <= 24).
                let p = unsafe { wk.add($j) };
                two_rounds!(0, p, 0);
                schedule!(0, $j);
                two_rounds!(1, p, 2);
                schedule!(1, $j + 1);
                two_rounds!(2, p, 4);
                schedule!(2, $j + 2);
                two_rounds!(3, p, 6);
                schedule!(3, $j + 3);
                two_rounds!(0, p, 8);
                schedule!(4, $j + 4);
                two_rounds!(1, p, 10);
                schedule!(5, $j + 5);
                two_rounds!(2, p, 12);
                schedule!(6, $j + 6);
                two_rounds!(3, p, 14);
                schedule!(7, $j + 7);
            };
        }
        // Eight rounds of block `half` from word t: W[t + k] + K[t + k] is 8 * (4 * (k / 2) + k % 2)
        // bytes after the first word of block `half` in row t / 2.
        macro_rules! eight {
            ($half:expr, $t:expr) => {
                // SAFETY: rows t / 2..t / 2 + 4 of `wk` (t <= 72), then 2 * half < 4 words in.
                let p = unsafe { wk.add($t / 2).cast::<u64>().add(2 * $half) };
                two_rounds!(0, p, 0);
                two_rounds!(1, p, 2);
                two_rounds!(2, p, 4);
                two_rounds!(3, p, 6);
            };
        }
        for j in [0, 8, 16, 24] {
            sixteen_with_schedule!(j);
        }
        for t in [64, 72] {
            eight!(0, t);
        }
        add_into(state, [a, b, c, d, e, f, g, h]);

        if y.is_some() {
            [a, b, c, d, e, f, g, h] = *state;
            bc = b ^ c;
            for t in (0..80).step_by(8) {
                eight!(1, t);
            }
            add_into(state, [a, b, c, d, e, f, g, h]);
        }
    }

    /// [`two_blocks`] with AVX2's σ.
    #[target_feature(enable = "avx2,bmi1,bmi2")]
    unsafe fn two_blocks_avx2(state: &mut [u64; 8], x: &Block<Sha512Core>, y: Option<&Block<Sha512Core>>) {
        // SAFETY: this function's target features are what `two_blocks` and `Avx2` use.
        unsafe { two_blocks::<Avx2>(state, x, y) }
    }

    /// [`two_blocks`] with AVX-512 VL's σ.
    #[target_feature(enable = "avx2,bmi1,bmi2,avx512f,avx512vl")]
    unsafe fn two_blocks_vl(state: &mut [u64; 8], x: &Block<Sha512Core>, y: Option<&Block<Sha512Core>>) {
        // SAFETY: this function's target features are what `two_blocks` and `Avx512Vl` use.
        unsafe { two_blocks::<Avx512Vl>(state, x, y) }
    }

    /// 40 rows of four words, aligned for 256-bit loads and stores: the doubled round constants
    /// (`K2`) and W[t] + K[t] of two blocks (row j: words 2j and 2j + 1 of the first block, then
    /// of the second).
    #[repr(align(32))]
    struct Rows([[u64; 4]; 40]);

    #[inline(always)]
    fn add_into(state: &mut [u64; 8], v: [u64; 8]) {
        for (s, v) in state.iter_mut().zip(v) {
            *s = s.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use digest::Digest;

    /// Every length from 0 to 1100 bytes (up to 9 blocks, both parities, every padding case),
    /// then larger inputs fed in pieces that split blocks: the same digests as the `sha2` crate.
    #[test]
    fn same_as_sha2() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for n in (0..=1100).chain([4096, 65_535, 70_000]) {
            let m = &data[..n];
            assert_eq!(Sha384::digest(m)[..], sha2::Sha384::digest(m)[..], "sha384 of {n} bytes");
            assert_eq!(Sha512::digest(m)[..], sha2::Sha512::digest(m)[..], "sha512 of {n} bytes");
        }
        let mut ours = Sha384::new();
        for piece in data.chunks(1000) {
            ours.update(piece);
        }
        assert_eq!(ours.finalize()[..], sha2::Sha384::digest(&data)[..]);
    }

    /// Blocks by reference, in calls of every size from none to five (both parities of what is
    /// held between calls), for messages of 0 to 12 blocks: the same SHA-384 as the `sha2` crate.
    #[test]
    fn blocks_by_reference_same_as_sha2() {
        let data: Vec<u8> = (0..128 * 12).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let blocks: Vec<&[u8; 128]> = data.chunks_exact(128).map(|b| b.try_into().unwrap()).collect();
        for n in 0..=12 {
            let want = sha2::Sha384::digest(&data[..128 * n]);
            for step in 0..=5 {
                let mut h = Sha384Blocks::new();
                let mut at = 0;
                while at < n {
                    let k = step.min(n - at);
                    h.update(&blocks[at..at + k]);
                    // An empty call changes nothing; with a step of 0, blocks go one by one.
                    if k == 0 {
                        h.update(&blocks[at..at + 1]);
                        at += 1;
                    }
                    at += k;
                }
                assert_eq!(h.finalize()[..], want[..], "{n} blocks, {step} a call");
            }
        }
    }

    /// FIPS 180-4's examples (NIST CSRC "Example Algorithms"): "abc" and the 896-bit message.
    #[test]
    fn nist_examples() {
        let two_block = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
        assert_eq!(
            hex(&Sha384::digest(b"abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(
            hex(&Sha512::digest(b"abc")),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            hex(&Sha384::digest(two_block)),
            "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039"
        );
        assert_eq!(
            hex(&Sha512::digest(two_block)),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The portable fallback and the x86 code, with AVX2's σ and with AVX-512 VL's, agree on many
    /// blocks at once (both parities). On a CPU without AVX2/BMI1/BMI2 or without AVX-512 F/VL
    /// this fails rather than pass without comparing anything.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_and_portable_agree() {
        let data: Vec<u8> = (0..128 * 33).map(|i| (i * 7 + 3) as u8).collect();
        let blocks: Vec<Block<Sha512Core>> = data.chunks(128).map(|c| *Block::<Sha512Core>::from_slice(c)).collect();
        for vl in [false, true] {
            for n in [1, 2, 3, 32, 33] {
                let (mut s1, mut s2) = (IV_512, IV_512);
                assert!(
                    x86::compress_with(&mut s1, &blocks[..n], vl),
                    "this CPU lacks AVX2/BMI1/BMI2 (or AVX-512 F/VL: {vl}): that x86 path is not checked"
                );
                sha2::compress512(&mut s2, &blocks[..n]);
                assert_eq!(s1, s2, "{n} blocks, AVX-512 VL: {vl}");
            }
        }
    }
}
