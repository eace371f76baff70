//! dm-verity hash trees, byte for byte the way `veritysetup format` writes them.
//!
//! The root hash of a dm-verity tree ends up on the kernel command line of our UKI
//! (`roothash=`), and from there in PCR 11, in RTMR 2 and in every reference value we publish.
//! A root hash that differs from what the kernel will compute bricks every node; a tree that is
//! merely "equivalent" cannot be checked by anyone with standard tools. So this crate does not
//! aim to be *a* dm-verity implementation but a bit-exact reimplementation of cryptsetup's
//! (`lib/verity/verity_hash.c` and `verity.c`, cryptsetup 2.x), tested against `veritysetup`
//! over every parameter it accepts.
//!
//! # Layout of a hash device
//!
//! ```text
//! hash_offset ─┬─ superblock (512 bytes, format 1 only, unless disabled)
//!              ├─ zeros up to the next hash block boundary (not written)
//!              ├─ level n-1 (the single top block, hashed into the root hash)
//!              ├─ …
//!              └─ level 0   (one digest per data block)
//! ```
//!
//! Each level is a run of hash blocks; each hash block holds `2^k` digest slots (a slot is the
//! digest padded with zeros to a power of two in format 1, the bare digest in format 0), the
//! rest of the block is zero. A digest is `H(salt ‖ block)` in format 1 and `H(block ‖ salt)` in
//! format 0 (Chrome OS). With a single data block there is no tree at all: the root hash is the
//! digest of that block.
//!
//! # Why it is fast
//!
//! The leaf level is nearly all of the work. [`format`] hashes it on every core (rayon), one
//! level-0 hash block (128 data blocks for SHA-256) per task, the task's data blocks several at a
//! time where the CPU can (`HashAlg::hash_many`: four SHA-256 messages with their SHA-NI rounds
//! interleaved, ~1.9× one stream), reading with positional reads into per-thread buffers, in
//! batches of bounded size: memory stays a few MiB plus the upper levels (1/128 of level 0)
//! whatever the input size.

mod hash;
mod layout;
mod seed;
mod superblock;
mod tree;

pub use hash::{parse_algorithm, HashAlg};
pub use layout::{Layout, Level};
pub use seed::{salt_from_seed, uuid_from_seed, DEFAULT_SALT_SIZE};
pub use superblock::{Superblock, SUPERBLOCK_SIZE};
pub use tree::{format, verify, Corruption, FormatOutput, HashSink, ReadAt, VerifyReport};

use std::fmt;

/// Errors a caller can hit: every one names the parameter or the place that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} block size {size} is not a power of two between 512 and 524288 bytes")]
    BlockSize { what: &'static str, size: u64 },
    #[error("unknown hash algorithm {0:?} (supported: sha1, sha256, sha384, sha512)")]
    UnknownHash(String),
    #[error("salt is {0} bytes; at most 256 are allowed")]
    SaltTooLong(usize),
    #[error("data is {size} bytes, not a multiple of the {block_size}-byte data block size (give --data-blocks to use a prefix)")]
    DataNotAligned { size: u64, block_size: u32 },
    #[error("data holds {available} blocks of {block_size} bytes but {requested} were requested")]
    DataTooShort { available: u64, requested: u64, block_size: u32 },
    #[error("data is empty: at least one data block is needed")]
    NoData,
    #[error("hash offset {0} is not a multiple of 512 bytes")]
    HashOffsetAlignment(u64),
    #[error("hash area (from byte {hash_start}) overlaps the data area (up to byte {data_end}) in the same file")]
    Overlap { hash_start: u64, data_end: u64 },
    #[error("hash device is truncated: it is {size} bytes but the hash tree ends at byte {needed}")]
    HashDeviceTruncated { size: u64, needed: u64 },
    #[error("hash tree of {data_blocks} data blocks needs more levels than dm-verity allows")]
    TooManyLevels { data_blocks: u64 },
    /// A block position or byte offset of the tree does not fit 64 bits.
    #[error("a hash tree of {data_blocks} data blocks at hash offset {hash_offset} would end past 2^64 bytes")]
    TreeTooLarge { data_blocks: u64, hash_offset: u64 },
    #[error("bad superblock at byte {offset}: {reason}")]
    BadSuperblock { offset: u64, reason: String },
    #[error("root hash is {got} bytes; {algorithm} digests are {want} bytes")]
    RootHashLength { algorithm: HashAlg, got: usize, want: usize },
    #[error("reading {what} at byte {offset}: {source}")]
    Read {
        what: &'static str,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the hash device at byte {offset}: {source}")]
    Write {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

/// `veritysetup --format`: the on-disk hash type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashType {
    /// Format 0, Chrome OS: digest = H(block ‖ salt), digests packed without padding.
    ChromeOs = 0,
    /// Format 1, the normal one: digest = H(salt ‖ block), digest slots padded to a power of two.
    #[default]
    Normal = 1,
}

impl HashType {
    /// The number `veritysetup --format` and the superblock use.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// Parses `0` or `1`.
    pub fn from_number(n: u32) -> Option<Self> {
        match n {
            0 => Some(Self::ChromeOs),
            1 => Some(Self::Normal),
            _ => None,
        }
    }
}

/// Everything that determines a hash tree. Mirrors `struct crypt_params_verity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub hash: HashAlg,
    pub hash_type: HashType,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub salt: Vec<u8>,
    /// Byte offset of the hash area (superblock or first tree block) in the hash device.
    pub hash_offset: u64,
    /// The superblock's UUID, or `None` for `--no-superblock`.
    pub superblock_uuid: Option<[u8; 16]>,
}

impl Params {
    /// Checks every field the way veritysetup does; `format`, `verify` and [`Layout::new`] call this.
    pub fn validate(&self) -> Result<(), Error> {
        check_block_size("data", self.data_block_size)?;
        check_block_size("hash", self.hash_block_size)?;
        if self.salt.len() > 256 {
            return Err(Error::SaltTooLong(self.salt.len()));
        }
        if self.data_blocks == 0 {
            return Err(Error::NoData);
        }
        if !self.hash_offset.is_multiple_of(512) {
            return Err(Error::HashOffsetAlignment(self.hash_offset));
        }
        Ok(())
    }

    /// The superblock these parameters describe, if they have one.
    pub fn superblock(&self) -> Option<Superblock> {
        self.superblock_uuid.map(|uuid| Superblock {
            hash_type: self.hash_type,
            uuid,
            algorithm: self.hash.name().to_owned(),
            data_block_size: self.data_block_size,
            hash_block_size: self.hash_block_size,
            data_blocks: self.data_blocks,
            salt: self.salt.clone(),
        })
    }
}

fn check_block_size(what: &'static str, size: u32) -> Result<(), Error> {
    if !size.is_power_of_two() || !(512..=512 * 1024).contains(&size) {
        return Err(Error::BlockSize { what, size: size.into() });
    }
    Ok(())
}

/// Formats a UUID the way `veritysetup` prints it: lowercase, 8-4-4-4-12.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*uuid).hyphenated().to_string()
}

/// Parses an 8-4-4-4-12 hex UUID (either case; not the other forms the `uuid` crate reads).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    if groups != [8, 4, 4, 4, 12] {
        return None;
    }
    uuid::Uuid::try_parse(s).ok().map(|u| *u.as_bytes())
}

/// A hex digest for display.
#[derive(Clone, PartialEq, Eq)]
pub struct Digest(pub Vec<u8>);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trip() {
        let u = parse_uuid("12345678-1234-1234-1234-123456789ABC").unwrap();
        assert_eq!(format_uuid(&u), "12345678-1234-1234-1234-123456789abc");
        for bad in [
            "",
            "12345678123412341234123456789abc",
            "1234567-81234-1234-1234-123456789abc",
            "1234567g-1234-1234-1234-123456789abc",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad:?} must not parse");
        }
    }

    #[test]
    fn block_sizes_follow_veritysetup() {
        for ok in [512, 1024, 4096, 524288] {
            assert!(check_block_size("data", ok).is_ok(), "{ok}");
        }
        for bad in [0, 256, 1000, 4095, 1 << 20] {
            assert!(matches!(check_block_size("data", bad), Err(Error::BlockSize { .. })), "{bad}");
        }
    }
}
