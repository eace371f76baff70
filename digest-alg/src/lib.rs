//! One name for a hash algorithm, in every crate of the workspace.
//!
//! The same four algorithms appear as TPM PCR banks (TCG Algorithm Registry `TPM_ALG_ID`s), as
//! the digests of an event log, as Authenticode digests of a PE image, as dm-verity's tree hash
//! and as the banks of a reference-value bundle. One type, [`HashAlg`], names them all, with its
//! lowercase name (`sha256`: JSON, `tpm2_eventlog`, systemd-measure, veritysetup), its digest
//! size, its registry ID and its digest; [`AlgId`] is a registry ID as it appears in a log, known
//! or not. This crate has no other job and depends on nothing of the workspace.
//!
//! It is also where the workspace gets its hash functions: [`Sha1`], [`Sha256`], [`Sha384`],
//! [`Sha512`] and the streaming [`Digest`] trait are exported from here, and every crate that
//! hashes (uki, measure, verity, eventlog) names them through this crate, so the implementation
//! behind them is chosen in one place. SHA-1 and SHA-256 are the RustCrypto `sha1` and `sha2`
//! crates (pure Rust, run-time CPU detection, the SHA extensions on x86-64: at OpenSSL's speed).
//! SHA-384 and SHA-512 are this crate's own compression function on x86-64 with AVX2 and BMI2
//! (`sha512`; [`Sha384Blocks`] takes a message of whole blocks by reference), `sha2`'s
//! elsewhere: `sha2`, `ring` and `aws-lc-rs` all hash SHA-512 at ~0.7 of OpenSSL's rate on an
//! AMD Zen 4. `docs/performance.md` has the measurements, `make bench`
//! prints the ratio to `openssl speed`, and `examples/throughput.rs` is what it runs.
//!
//! [`HashAlg::hash_many`] hashes several messages at once (`lanes`): with AVX-512 F and VL, four
//! SHA-384 or SHA-512 messages side by side in the 64-bit lanes of one register (~2.6 GB/s
//! together on that Zen 4, ~3.2× one stream); with the SHA extensions, the SHA-256 rounds of up to
//! four messages interleaved (~3.5 GB/s, ~1.9× one stream). The UKI, PCR and SEV-SNP digests of
//! the workspace go through it; [`HashAlg::cost_many`] is what planning them in parallel uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// SHA-1 (FIPS 180-4), for the legacy sha1 bank and Authenticode's SHA-1 digest.
pub use sha1::Sha1;
/// The streaming interface of every hash below (`new`, `update`, `finalize`, `digest`).
pub use sha2::Digest;
/// SHA-256, SHA-384 and SHA-512 (FIPS 180-4).
pub use sha2::Sha256;
pub use sha512::{Sha384, Sha384Blocks, Sha512};

mod lanes;
mod sha512;

/// A `TPM_ALG_ID` as it appears in a log, known to this crate or not.
///
/// Values from the TCG Algorithm Registry (`TPM_ALG_ID` constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlgId(pub u16);

impl AlgId {
    /// `TPM_ALG_SHA1`.
    pub const SHA1: AlgId = AlgId(0x0004);
    /// `TPM_ALG_SHA256`.
    pub const SHA256: AlgId = AlgId(0x000b);
    /// `TPM_ALG_SHA384`.
    pub const SHA384: AlgId = AlgId(0x000c);
    /// `TPM_ALG_SHA512`.
    pub const SHA512: AlgId = AlgId(0x000d);
    /// `TPM_ALG_SM3_256`.
    pub const SM3_256: AlgId = AlgId(0x0012);
    /// `TPM_ALG_SHA3_256`.
    pub const SHA3_256: AlgId = AlgId(0x0027);
    /// `TPM_ALG_SHA3_384`.
    pub const SHA3_384: AlgId = AlgId(0x0028);
    /// `TPM_ALG_SHA3_512`.
    pub const SHA3_512: AlgId = AlgId(0x0029);

    /// The registry's name in lowercase (`sha256`), if this is a hash algorithm it lists.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::SHA1 => "sha1",
            Self::SHA256 => "sha256",
            Self::SHA384 => "sha384",
            Self::SHA512 => "sha512",
            Self::SM3_256 => "sm3_256",
            Self::SHA3_256 => "sha3_256",
            Self::SHA3_384 => "sha3_384",
            Self::SHA3_512 => "sha3_512",
            _ => return None,
        })
    }

    /// The digest size the registry gives for this algorithm, if it is a hash it lists.
    pub fn registry_digest_size(self) -> Option<usize> {
        Some(match self {
            Self::SHA1 => 20,
            Self::SHA256 | Self::SM3_256 | Self::SHA3_256 => 32,
            Self::SHA384 | Self::SHA3_384 => 48,
            Self::SHA512 | Self::SHA3_512 => 64,
            _ => return None,
        })
    }
}

impl fmt::Display for AlgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "algorithm {:#06x}", self.0),
        }
    }
}

impl Serialize for AlgId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(n) => s.serialize_str(n),
            None => s.collect_str(&format_args!("{:#06x}", self.0)),
        }
    }
}

/// A hash algorithm nodeimg computes: a TPM PCR bank (the bundle's `vtpm` keys, PCR values read
/// from a TPM, an event log's digests), an Authenticode digest (`uki`), a dm-verity tree hash
/// (`verity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    /// SHA-1 (legacy logs, and the sha1 bank of TPMs that still allocate it).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384 (also the only bank of TDX RTMRs).
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// All of them, in bank order.
    pub const ALL: [HashAlg; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// The `TPM_ALG_ID`.
    pub fn id(self) -> AlgId {
        match self {
            Self::Sha1 => AlgId::SHA1,
            Self::Sha256 => AlgId::SHA256,
            Self::Sha384 => AlgId::SHA384,
            Self::Sha512 => AlgId::SHA512,
        }
    }

    /// The algorithm with this `TPM_ALG_ID`, if this crate computes it.
    pub fn from_id(id: AlgId) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Lowercase name, as in `--json` output and `tpm2_eventlog`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The hash of `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        self.hash_parts(&[data])
    }

    /// The hash of the concatenation of `parts`.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            Self::Sha1 => run::<Sha1>(parts),
            Self::Sha256 => run::<Sha256>(parts),
            Self::Sha384 => run::<Sha384>(parts),
            Self::Sha512 => run::<Sha512>(parts),
        }
    }

    /// The algorithms whose messages [`HashAlg::hash_many`] hashes together (at once where
    /// the CPU can): SHA-1 with SHA-256 (the SHA extensions), SHA-384 with SHA-512 (vector
    /// lanes). Every algorithm is in one family.
    pub const FAMILIES: [&'static [HashAlg]; 2] = [&[Self::Sha1, Self::Sha256], &[Self::Sha384, Self::Sha512]];

    /// The digests of several messages, each the concatenation of its pieces, in the order
    /// given. One thread; several messages of a family ([`HashAlg::FAMILIES`]) at once where the
    /// CPU can (`lanes`): the SHA-384 and SHA-512 messages four at a time, one per lane of a
    /// vector register (AVX-512 F and VL), the SHA-1 and SHA-256 messages four at a time with
    /// their rounds interleaved (SHA extensions).
    pub fn hash_many(jobs: &[(HashAlg, &[&[u8]])]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); jobs.len()];
        for family in Self::FAMILIES {
            // The kernel by what the family is (named here, not by its place in FAMILIES).
            let many = match family[0] {
                Self::Sha1 | Self::Sha256 => lanes::sha_ni,
                Self::Sha384 | Self::Sha512 => lanes::sha512_family,
            };
            let members: Vec<usize> = (0..jobs.len()).filter(|&i| family.contains(&jobs[i].0)).collect();
            let these: Vec<(HashAlg, &[&[u8]])> = members.iter().map(|&i| jobs[i]).collect();
            for (i, d) in members.into_iter().zip(many(&these)) {
                out[i] = d;
            }
        }
        out
    }

    /// How many messages of this algorithm [`HashAlg::hash_many`] hashes at once on this CPU:
    /// SHA-384/512 4 with AVX-512 F and VL, SHA-1 and SHA-256 4 with the SHA extensions, else 1.
    pub fn lanes(self) -> usize {
        match self {
            Self::Sha1 | Self::Sha256 => lanes::sha_ni_width(),
            Self::Sha384 | Self::Sha512 => lanes::width(),
        }
    }

    /// The estimated time, in picoseconds, to hash `len` bytes alone on one core of the build
    /// machine (an AMD Zen 4: SHA-1 1.9 GB/s, SHA-256 1.79 GB/s with the SHA extensions,
    /// SHA-384/512 0.82 GB/s; `make bench` 05-digest). For planning work, not a promise.
    pub fn cost(self, len: u64) -> u64 {
        len * match self {
            Self::Sha1 => 526,
            Self::Sha256 => 559,
            Self::Sha384 | Self::Sha512 => 1215,
        }
    }

    /// The estimated time, in picoseconds, for [`HashAlg::hash_many`] to hash messages of these
    /// lengths (all of this algorithm's family) on one core of the build machine, on this CPU:
    /// the messages are dealt to the lanes longest first, and a step that advances `k` busy
    /// lanes costs what was measured for `k` (an idle SHA-384/512 lane costs as much as a busy
    /// one; SHA-1 and SHA-256 lanes cost by the number busy; the last message runs alone).
    pub fn cost_many(self, lens: &[u64]) -> u64 {
        let width = self.lanes();
        if width == 1 || lens.len() < 2 {
            return lens.iter().map(|&n| self.cost(n)).sum();
        }
        // Picoseconds for one byte of each of k busy lanes (k = 2, 3, 4), measured with
        // messages of 16 MiB: SHA-384/512 2.6 GB/s for four lanes together whatever the number
        // busy; SHA-256 3.5, 3.3 and 3.5 GB/s for two, three and four busy. SHA-1 lanes, alone
        // or beside SHA-256 ones, were not measured there: SHA-256's steps stand in for them.
        let step = |k: usize| -> u64 {
            match (self, k) {
                (_, 1) => self.cost(1),
                (Self::Sha384 | Self::Sha512, _) => 1540,
                (_, 2) => 575,
                (_, 3) => 904,
                _ => 1136,
            }
        };
        let mut sorted = lens.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let mut loads = vec![0u64; width];
        for n in sorted {
            let l = (0..width).min_by_key(|&l| loads[l]).expect("lanes");
            loads[l] += n;
        }
        loads.sort_unstable_by(|a, b| b.cmp(a));
        loads.push(0);
        (1..=width).map(|k| (loads[k - 1] - loads[k]) * step(k)).sum()
    }

    /// One extend operation: `H(register ‖ digest)` (TPM 2.0 Library Part 1, "PCR Extend";
    /// TDX RTMRs extend the same way with SHA-384).
    pub fn extend(self, register: &[u8], digest: &[u8]) -> Vec<u8> {
        self.hash_parts(&[register, digest])
    }

    /// A register's value after reset: all zeros.
    pub fn zeros(self) -> Vec<u8> {
        vec![0; self.size()]
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown hash algorithm {s:?} (expected sha1, sha256, sha384 or sha512)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-2's examples (appendices A–C and their SHA-384/512 counterparts): "abc" and one
    /// million 'a'. Python's hashlib (OpenSSL) prints the same values.
    const VECTORS: [(HashAlg, &str, &str); 4] = [
        (
            HashAlg::Sha1,
            "a9993e364706816aba3e25717850c26c9cd0d89d",
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
        ),
        (
            HashAlg::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
        ),
        (
            HashAlg::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            "9d0e1809716474cb086e834e310a4a1ced149e9c00f248527972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3d8985",
        ),
        (
            HashAlg::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b",
        ),
    ];

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The same digest through the re-exported streaming type.
    fn streamed(alg: HashAlg, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match alg {
            HashAlg::Sha1 => run::<Sha1>(parts),
            HashAlg::Sha256 => run::<Sha256>(parts),
            HashAlg::Sha384 => run::<Sha384>(parts),
            HashAlg::Sha512 => run::<Sha512>(parts),
        }
    }

    #[test]
    fn fips_180_examples() {
        let million = vec![b'a'; 1_000_000];
        // Uneven pieces: partial blocks before, between and after whole ones.
        let pieces: Vec<&[u8]> = vec![&million[..1], &million[1..129], &million[129..70_000], &million[70_000..]];
        for (alg, abc, a_million) in VECTORS {
            assert_eq!(hex(&alg.hash(b"abc")), abc, "{alg} abc");
            assert_eq!(hex(&alg.hash(&million)), a_million, "{alg} a million 'a'");
            assert_eq!(hex(&alg.hash_parts(&pieces)), a_million, "{alg} a million 'a' in pieces");
            assert_eq!(hex(&streamed(alg, &pieces)), a_million, "{alg} streamed");
            assert_eq!(alg.hash(b"").len(), alg.size(), "{alg} size");
        }
    }

    /// The planning estimates: one message costs what it costs alone; several of a family with
    /// lanes on this CPU cost less together than one after the other; the two algorithms of a
    /// family have the same lanes.
    #[test]
    fn cost_many_estimates() {
        let n = 1 << 20;
        for alg in HashAlg::ALL {
            assert_eq!(alg.cost_many(&[n]), alg.cost(n), "{alg}");
            assert_eq!(alg.cost_many(&[]), 0, "{alg}");
            let four = alg.cost_many(&[n; 4]);
            if alg.lanes() > 1 {
                assert!(four < 4 * alg.cost(n), "{alg}: {four}");
                // A long message and a short one: at least the long one's share.
                assert!(alg.cost_many(&[8 * n, n]) > alg.cost(7 * n), "{alg}");
            } else {
                assert_eq!(four, 4 * alg.cost(n), "{alg}");
            }
        }
        for family in HashAlg::FAMILIES {
            assert_eq!(family[0].lanes(), family[1].lanes(), "{family:?}");
        }
        let every: Vec<HashAlg> = HashAlg::FAMILIES.concat();
        assert!(HashAlg::ALL.iter().all(|a| every.iter().filter(|&b| b == a).count() == 1), "one family each");
    }
}
