//! Where each level of the tree lives on the hash device.
//!
//! Follows `hash_levels()` and `VERITY_hash_offset_block()` in cryptsetup's
//! `lib/verity/verity_hash.c` / `verity.c`: levels are numbered from the bottom (level 0 holds
//! the digests of the data blocks) but stored top first, right after the superblock.

use crate::{Error, HashType, Params, SUPERBLOCK_SIZE};

/// dm-verity's limit on tree depth (`VERITY_MAX_LEVELS`).
const MAX_LEVELS: usize = 63;

/// One level of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Byte offset of the level's first hash block in the hash device.
    pub offset: u64,
    /// Number of hash blocks in the level.
    pub blocks: u64,
}

/// The geometry of a hash tree: derived from [`Params`] alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    /// Digest length of the algorithm.
    pub digest_size: usize,
    /// Bytes one digest occupies in a hash block: padded to a power of two in format 1.
    pub slot_size: usize,
    /// Digests per hash block (a power of two).
    pub hashes_per_block: u64,
    /// Levels, index 0 = the level that hashes the data blocks. Empty for a single data block.
    pub levels: Vec<Level>,
    /// Byte offset of the first tree block (the top level).
    pub tree_offset: u64,
    /// Total number of hash blocks in all levels.
    pub hash_blocks: u64,
    /// End of the tree in the hash device: what veritysetup prints as "Hash device size".
    pub hash_device_size: u64,
}

impl Layout {
    /// Computes the layout, or says why these parameters cannot make a tree.
    pub fn new(params: &Params) -> Result<Self, Error> {
        params.validate()?;
        let digest_size = params.hash.size();
        let hbs = u64::from(params.hash_block_size);
        let slot_size = match params.hash_type {
            HashType::Normal => digest_size.next_power_of_two(),
            HashType::ChromeOs => digest_size,
        };
        // get_bits_down(hash_block_size / digest_size): the same for bare and padded digests
        // because block sizes are powers of two.
        let bits = (hbs / digest_size as u64).ilog2();
        let hashes_per_block = 1u64 << bits;

        let data_blocks = params.data_blocks;
        let mut depth = 0u32;
        while bits * depth < 64 && (data_blocks - 1) >> (bits * depth) != 0 {
            depth += 1;
        }
        if depth as usize > MAX_LEVELS {
            return Err(Error::TooManyLevels { data_blocks });
        }

        let too_large = || Error::TreeTooLarge { data_blocks, hash_offset: params.hash_offset };
        let tree_block = if params.superblock_uuid.is_some() {
            params.hash_offset.checked_add(SUPERBLOCK_SIZE as u64).ok_or_else(too_large)?.div_ceil(hbs)
        } else {
            params.hash_offset / hbs
        };
        let mut levels = vec![Level { offset: 0, blocks: 0 }; depth as usize];
        let mut position = tree_block;
        for i in (0..depth).rev() {
            let shift = (i + 1) * bits;
            if shift > 63 {
                return Err(Error::TooManyLevels { data_blocks });
            }
            let blocks = data_blocks.div_ceil(1u64 << shift);
            levels[i as usize] = Level { offset: position.checked_mul(hbs).ok_or_else(too_large)?, blocks };
            position = position.checked_add(blocks).ok_or_else(too_large)?;
        }
        let hash_device_size = position.checked_mul(hbs).ok_or_else(too_large)?;
        // The data too must be addressable: its end in bytes.
        data_blocks.checked_mul(u64::from(params.data_block_size)).ok_or_else(too_large)?;
        Ok(Self {
            data_block_size: params.data_block_size,
            hash_block_size: params.hash_block_size,
            data_blocks,
            digest_size,
            slot_size,
            hashes_per_block,
            levels,
            tree_offset: tree_block * hbs,
            hash_blocks: position - tree_block,
            hash_device_size,
        })
    }

    /// The number of data blocks one hash block of `level` covers.
    pub fn data_blocks_per_hash_block(&self, level: usize) -> u64 {
        self.hashes_per_block.saturating_pow(level as u32 + 1)
    }
}
