//! SHA-384 of many equal-length messages at once: eight lanes of AVX-512.
//!
//! An SEV-SNP launch digest needs the SHA-384 of every page the firmware launches with. Those
//! hashes are independent, so instead of one message at a time (SHA-512's rounds form a chain
//! of dependent additions that no instruction set shortens) this hashes eight pages side by
//! side, one per 64-bit lane of a 512-bit register: the same rounds, eight times the work per
//! instruction — the multi-buffer technique of Intel's ISA-L crypto library. Where AVX-512 is
//! missing, each message goes through the workspace's SHA-384 (`digest_alg::Sha384`, the `sha2`
//! crate) instead; both paths are checked against it on random messages in the tests below, and the SNP tests check the digests that come
//! out of them against sev-snp-measure.
//!
//! FIPS 180-4: §4.1.3 (functions), §4.2.3 (constants), §5.1.2 (padding), §5.3.4 (SHA-384 initial
//! value), §6.4.2 (the computation).

use digest_alg::{Digest, Sha384};

/// Bytes in a SHA-384 digest.
pub const DIGEST_LEN: usize = 48;
/// Bytes in a SHA-512/SHA-384 block.
const BLOCK: usize = 128;
/// Messages hashed side by side.
const LANES: usize = 8;

/// SHA-384 initial hash value (FIPS 180-4 §5.3.4).
const IV: [u64; 8] = [
    0xcbbb_9d5d_c105_9ed8,
    0x629a_292a_367c_d507,
    0x9159_015a_3070_dd17,
    0x152f_ecd8_f70e_5939,
    0x6733_2667_ffc0_0b31,
    0x8eb4_4a87_6858_1511,
    0xdb0c_2e0d_64f9_8fa7,
    0x47b5_481d_befa_4fa4,
];

/// SHA-512 round constants (FIPS 180-4 §4.2.3).
const K: [u64; 80] = [
    0x428a_2f98_d728_ae22,
    0x7137_4491_23ef_65cd,
    0xb5c0_fbcf_ec4d_3b2f,
    0xe9b5_dba5_8189_dbbc,
    0x3956_c25b_f348_b538,
    0x59f1_11f1_b605_d019,
    0x923f_82a4_af19_4f9b,
    0xab1c_5ed5_da6d_8118,
    0xd807_aa98_a303_0242,
    0x1283_5b01_4570_6fbe,
    0x2431_85be_4ee4_b28c,
    0x550c_7dc3_d5ff_b4e2,
    0x72be_5d74_f27b_896f,
    0x80de_b1fe_3b16_96b1,
    0x9bdc_06a7_25c7_1235,
    0xc19b_f174_cf69_2694,
    0xe49b_69c1_9ef1_4ad2,
    0xefbe_4786_384f_25e3,
    0x0fc1_9dc6_8b8c_d5b5,
    0x240c_a1cc_77ac_9c65,
    0x2de9_2c6f_592b_0275,
    0x4a74_84aa_6ea6_e483,
    0x5cb0_a9dc_bd41_fbd4,
    0x76f9_88da_8311_53b5,
    0x983e_5152_ee66_dfab,
    0xa831_c66d_2db4_3210,
    0xb003_27c8_98fb_213f,
    0xbf59_7fc7_beef_0ee4,
    0xc6e0_0bf3_3da8_8fc2,
    0xd5a7_9147_930a_a725,
    0x06ca_6351_e003_826f,
    0x1429_2967_0a0e_6e70,
    0x27b7_0a85_46d2_2ffc,
    0x2e1b_2138_5c26_c926,
    0x4d2c_6dfc_5ac4_2aed,
    0x5338_0d13_9d95_b3df,
    0x650a_7354_8baf_63de,
    0x766a_0abb_3c77_b2a8,
    0x81c2_c92e_47ed_aee6,
    0x9272_2c85_1482_353b,
    0xa2bf_e8a1_4cf1_0364,
    0xa81a_664b_bc42_3001,
    0xc24b_8b70_d0f8_9791,
    0xc76c_51a3_0654_be30,
    0xd192_e819_d6ef_5218,
    0xd699_0624_5565_a910,
    0xf40e_3585_5771_202a,
    0x106a_a070_32bb_d1b8,
    0x19a4_c116_b8d2_d0c8,
    0x1e37_6c08_5141_ab53,
    0x2748_774c_df8e_eb99,
    0x34b0_bcb5_e19b_48a8,
    0x391c_0cb3_c5c9_5a63,
    0x4ed8_aa4a_e341_8acb,
    0x5b9c_ca4f_7763_e373,
    0x682e_6ff3_d6b2_b8a3,
    0x748f_82ee_5def_b2fc,
    0x78a5_636f_4317_2f60,
    0x84c8_7814_a1f0_ab72,
    0x8cc7_0208_1a64_39ec,
    0x90be_fffa_2363_1e28,
    0xa450_6ceb_de82_bde9,
    0xbef9_a3f7_b2c6_7915,
    0xc671_78f2_e372_532b,
    0xca27_3ece_ea26_619c,
    0xd186_b8c7_21c0_c207,
    0xeada_7dd6_cde0_eb1e,
    0xf57d_4f7f_ee6e_d178,
    0x06f0_67aa_7217_6fba,
    0x0a63_7dc5_a2c8_98a6,
    0x113f_9804_bef9_0dae,
    0x1b71_0b35_131c_471b,
    0x28db_77f5_2304_7d84,
    0x32ca_ab7b_40c7_2493,
    0x3c9e_be0a_15c9_bebc,
    0x431d_67c4_9c10_0d4c,
    0x4cc5_d4be_cb3e_42b6,
    0x597f_299c_fc65_7e2a,
    0x5fcb_6fab_3ad6_faec,
    0x6c44_198c_4a47_5817,
];

/// The SHA-384 of each message. Messages of one length that is a multiple of 128 bytes (4 KiB
/// pages) go eight at a time through AVX-512 when the CPU has it; anything else one by one.
pub fn sha384_each(messages: &[&[u8]]) -> Vec<[u8; DIGEST_LEN]> {
    let uniform = messages.first().is_some_and(|m| m.len() % BLOCK == 0 && messages.iter().all(|x| x.len() == m.len()));
    #[cfg(target_arch = "x86_64")]
    if uniform && messages.len() > 1 && avx512::available() {
        let mut out = Vec::with_capacity(messages.len());
        for group in messages.chunks(LANES) {
            // A short last group repeats its first message in the idle lanes.
            let lanes: [&[u8]; LANES] = std::array::from_fn(|i| group.get(i).copied().unwrap_or(group[0]));
            out.extend_from_slice(&avx512::sha384_x8(lanes)[..group.len()]);
        }
        return out;
    }
    let _ = uniform;
    messages.iter().map(|m| Sha384::digest(m).into()).collect()
}

/// The final block SHA-384 appends to a message of `len` bytes (a multiple of 128): 0x80, zeros,
/// and the length in bits as a 128-bit big-endian number (§5.1.2), as message words.
fn padding_block(len: usize) -> [u64; 16] {
    let mut w = [0u64; 16];
    w[0] = 1 << 63;
    let bits = (len as u128) * 8;
    w[14] = (bits >> 64) as u64;
    w[15] = bits as u64;
    w
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{padding_block, BLOCK, DIGEST_LEN, IV, K, LANES};

    /// Whether this CPU runs [`sha384_x8`] (checked once by the standard library, then cached).
    pub fn available() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    /// SHA-384 of eight messages of one length, a multiple of 128 bytes.
    pub fn sha384_x8(messages: [&[u8]; LANES]) -> [[u8; DIGEST_LEN]; LANES] {
        assert!(available(), "sha384_x8 needs AVX-512F");
        let len = messages[0].len();
        assert!(len.is_multiple_of(BLOCK) && messages.iter().all(|m| m.len() == len));
        // The state, lane by lane: state[i][l] is hash word i of lane l.
        let mut state: [[u64; LANES]; 8] = IV.map(|v| [v; LANES]);
        let mut words = [[0u64; LANES]; 16];
        for offset in (0..len).step_by(BLOCK) {
            // Word t of lane l, big-endian, laid out so one load gives word t of all lanes.
            for (l, m) in messages.iter().enumerate() {
                for (t, w) in words.iter_mut().enumerate() {
                    let at = offset + t * 8;
                    w[l] = u64::from_be_bytes(m[at..at + 8].try_into().expect("8 bytes"));
                }
            }
            // SAFETY: the CPU has AVX-512F (asserted above), the only feature `compress` enables.
            unsafe { compress(&mut state, &words) };
        }
        let pad = padding_block(len).map(|w| [w; LANES]);
        // SAFETY: as above.
        unsafe { compress(&mut state, &pad) };
        std::array::from_fn(|l| {
            let mut d = [0u8; DIGEST_LEN];
            for (i, chunk) in d.chunks_exact_mut(8).enumerate() {
                chunk.copy_from_slice(&state[i][l].to_be_bytes());
            }
            d
        })
    }

    /// One SHA-512 compression (§6.4.2) in each lane: `state[i][l]` is hash word i of lane l,
    /// `words[t][l]` message word t of lane l.
    #[target_feature(enable = "avx512f")]
    unsafe fn compress(state: &mut [[u64; LANES]; 8], words: &[[u64; LANES]; 16]) {
        // SAFETY (loads and stores): each row is eight u64 = 64 bytes, what an unaligned 512-bit
        // load or store touches.
        let mut w: [__m512i; 16] = std::array::from_fn(|t| unsafe { _mm512_loadu_si512(words[t].as_ptr().cast()) });
        let v: [__m512i; 8] = std::array::from_fn(|i| unsafe { _mm512_loadu_si512(state[i].as_ptr().cast()) });
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = v;
        for (t, k) in K.iter().enumerate() {
            let wt = if t < 16 {
                w[t]
            } else {
                // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], in a ring of 16.
                let (w2, w7, w15, w16) = (w[(t - 2) % 16], w[(t - 7) % 16], w[(t - 15) % 16], w[t % 16]);
                let s1 = xor3(_mm512_ror_epi64::<19>(w2), _mm512_ror_epi64::<61>(w2), _mm512_srli_epi64::<6>(w2));
                let s0 = xor3(_mm512_ror_epi64::<1>(w15), _mm512_ror_epi64::<8>(w15), _mm512_srli_epi64::<7>(w15));
                let next = _mm512_add_epi64(_mm512_add_epi64(s1, w7), _mm512_add_epi64(s0, w16));
                w[t % 16] = next;
                next
            };
            let big_s1 = xor3(_mm512_ror_epi64::<14>(e), _mm512_ror_epi64::<18>(e), _mm512_ror_epi64::<41>(e));
            // Ch(e, f, g) = (e AND f) XOR (NOT e AND g): truth table 0xca.
            let ch = _mm512_ternarylogic_epi64::<0xca>(e, f, g);
            let t1 = _mm512_add_epi64(
                _mm512_add_epi64(h, big_s1),
                _mm512_add_epi64(ch, _mm512_add_epi64(_mm512_set1_epi64(*k as i64), wt)),
            );
            let big_s0 = xor3(_mm512_ror_epi64::<28>(a), _mm512_ror_epi64::<34>(a), _mm512_ror_epi64::<39>(a));
            // Maj(a, b, c): truth table 0xe8.
            let t2 = _mm512_add_epi64(big_s0, _mm512_ternarylogic_epi64::<0xe8>(a, b, c));
            h = g;
            g = f;
            f = e;
            e = _mm512_add_epi64(d, t1);
            d = c;
            c = b;
            b = a;
            a = _mm512_add_epi64(t1, t2);
        }
        for (i, x) in [a, b, c, d, e, f, g, h].into_iter().enumerate() {
            unsafe { _mm512_storeu_si512(state[i].as_mut_ptr().cast(), _mm512_add_epi64(v[i], x)) };
        }
    }

    /// x XOR y XOR z in one instruction (truth table 0x96).
    #[target_feature(enable = "avx512f")]
    fn xor3(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
        _mm512_ternarylogic_epi64::<0x96>(x, y, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (xorshift), so a failure can be replayed.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn reference(messages: &[&[u8]]) -> Vec<[u8; DIGEST_LEN]> {
        messages.iter().map(|m| Sha384::digest(m).into()).collect()
    }

    #[test]
    fn equals_sha2_for_pages_and_odd_counts() {
        for (count, len) in [(1, 4096), (3, 4096), (8, 4096), (13, 4096), (16, 128), (9, 256), (8, 0)] {
            let data: Vec<Vec<u8>> = (0..count).map(|i| noise(i as u64 * 7919 + len as u64, len)).collect();
            let messages: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            assert_eq!(sha384_each(&messages), reference(&messages), "{count} messages of {len} bytes");
        }
    }

    #[test]
    fn mixed_lengths_fall_back() {
        let (a, b) = (noise(1, 4096), noise(2, 100));
        let messages = [a.as_slice(), b.as_slice(), a.as_slice()];
        assert_eq!(sha384_each(&messages), reference(&messages));
        assert!(sha384_each(&[]).is_empty());
    }

    /// The eight-lane path against `sha2`. On a machine without AVX-512F it cannot run: the
    /// build script then marks it `ignored` (and `sha384_each` above compared `sha2` with itself,
    /// which is why this test exists at all).
    #[cfg(target_arch = "x86_64")]
    #[test]
    #[cfg_attr(not(nodeimg_test_avx512), ignore = "this CPU has no AVX-512F: the eight-lane SHA-384 cannot run here")]
    fn avx512_lanes_are_independent() {
        assert!(avx512::available(), "the build script saw AVX-512F, the run does not");
        // Lanes that differ in one bit each, and lanes that are identical.
        let base = noise(99, 2 * 4096);
        let mut data: Vec<Vec<u8>> = (0..8).map(|_| base.clone()).collect();
        for (i, d) in data.iter_mut().enumerate().skip(1) {
            d[i * 1000] ^= 1 << (i % 8);
        }
        let messages: [&[u8]; 8] = std::array::from_fn(|i| data[i].as_slice());
        assert_eq!(avx512::sha384_x8(messages).to_vec(), reference(&messages));
    }
}
