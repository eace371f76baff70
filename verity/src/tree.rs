//! Building and checking the tree (`VERITY_create_or_verify_hash`, cryptsetup).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rayon::prelude::*;

use crate::hash::BlockHasher;
use crate::{Error, Layout, Params};

/// Data bytes hashed per batch: bounds memory whatever the input size.
const BATCH_DATA_BYTES: u64 = 64 << 20;

/// Something the tree can be read from by offset: a file, a block device, or bytes in memory.
pub trait ReadAt: Sync {
    /// Fills `buf` from byte `offset`, or fails (including on a short read).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Total size in bytes.
    fn size(&self) -> io::Result<u64>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        // Block devices report size 0 in metadata; seeking to the end works for both.
        let len = self.metadata()?.len();
        if len > 0 {
            return Ok(len);
        }
        io::Seek::seek(&mut &*self, io::SeekFrom::End(0))
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = self.get(start..start + buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

/// Where [`format`] writes the superblock and the tree: absolute offsets in the hash device.
pub trait HashSink {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
}

impl HashSink for File {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.write_all_at(bytes, offset)
    }
}

impl HashSink for Vec<u8> {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        if self.len() < start + bytes.len() {
            self.resize(start + bytes.len(), 0);
        }
        self[start..start + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

/// What [`format`] produced.
#[derive(Debug, Clone)]
pub struct FormatOutput {
    pub root_hash: Vec<u8>,
    pub layout: Layout,
}

/// Hashes `params.data_blocks` blocks of `data` and writes the superblock (if any) and the tree
/// to `sink`, exactly where and as `veritysetup format` writes them. Bytes veritysetup does not
/// write (before `hash_offset`, between the superblock and the first tree block) are not written.
///
/// `progress` is called with the number of data blocks hashed so far.
pub fn format(
    data: &dyn ReadAt,
    params: &Params,
    sink: &mut dyn HashSink,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FormatOutput, Error> {
    let layout = Layout::new(params)?;
    check_data_size(data, &layout)?;
    let hasher = crate::hash::block_hasher(params.hash, &params.salt, params.hash_type);
    if let Some(sb) = params.superblock() {
        sink.write_at(params.hash_offset, &sb.to_bytes())
            .map_err(|source| Error::Write { offset: params.hash_offset, source })?;
    }
    let Some(level0) = layout.levels.first() else {
        let root = digest_data_block_0(data, &layout, &*hasher)?;
        progress(1);
        return Ok(FormatOutput { root_hash: root, layout });
    };

    // Level 0, streamed in batches; `entries` collects the digests of its blocks (level 1's entries).
    let hbs = layout.hash_block_size as usize;
    let mut entries = Vec::with_capacity(level0.blocks as usize * layout.digest_size);
    for (first, count) in batches(&layout) {
        let mut blocks = vec![0u8; count as usize * hbs];
        blocks.par_chunks_mut(hbs).enumerate().try_for_each_init(Vec::new, |buf, (k, out)| {
            hash_data_into_block(data, &layout, &*hasher, first + k as u64, buf, out)
        })?;
        let offset = level0.offset + first * hbs as u64;
        sink.write_at(offset, &blocks).map_err(|source| Error::Write { offset, source })?;
        entries.extend(digest_blocks(&blocks, &layout, &*hasher));
        progress(((first + count) * layout.hashes_per_block).min(layout.data_blocks));
    }

    // Upper levels, small enough to build in memory.
    for level in &layout.levels[1..] {
        let blocks = pack(&entries, &layout, level.blocks);
        sink.write_at(level.offset, &blocks).map_err(|source| Error::Write { offset: level.offset, source })?;
        entries = digest_blocks(&blocks, &layout, &*hasher);
    }
    debug_assert_eq!(entries.len(), layout.digest_size, "the top level is one block");
    Ok(FormatOutput { root_hash: entries, layout })
}

/// Where verification found the first problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// A data block does not hash to its entry in tree level 0 (or to the root hash when the
    /// data is a single block).
    Data { block: u64 },
    /// A hash block does not hash to its entry in the level above (or to the root hash, for
    /// the top level). Every data block it covers is unverifiable.
    Hash { level: usize, index: u64, first_data_block: u64 },
    /// A byte of a hash block that holds no digest (a slot's padding, or the slots past the last
    /// entry of a level) is not zero: cryptsetup's "spare area is not zeroed" (`verify_zero` in
    /// `lib/verity/verity_hash.c`). Such bytes can carry digests of data past the blocks the
    /// superblock claims, which the root hash then vouches for without anyone checking them.
    Spare { level: usize, index: u64, offset: u64, first_data_block: u64 },
}

impl Corruption {
    /// The first data block a reader of the device would fail on because of this.
    pub fn first_data_block(&self) -> u64 {
        match *self {
            Self::Data { block } => block,
            Self::Hash { first_data_block, .. } | Self::Spare { first_data_block, .. } => first_data_block,
        }
    }

    /// Ordering key: by data block, and for the same block the check that comes first
    /// walking down from the root (the higher level).
    fn key(&self) -> (u64, i64) {
        match *self {
            Self::Data { block } => (block, 0),
            Self::Hash { level, first_data_block, .. } => (first_data_block, -(level as i64) - 1),
            // Before the block's own digest check: it is the more specific finding.
            Self::Spare { level, first_data_block, .. } => (first_data_block, -(level as i64) - 2),
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// The first data block that fails, with the tree level where the mismatch shows.
    pub first: Option<Corruption>,
    /// Data blocks whose digest differs from their level-0 entry.
    pub bad_data_blocks: u64,
    /// Hash blocks, per level (index 0 = level 0), that do not match their parent entry.
    pub bad_hash_blocks: Vec<u64>,
    /// Hash blocks whose spare area (bytes that hold no digest) is not zero.
    pub bad_spare_areas: u64,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first.is_none()
    }

    fn note(&mut self, c: Corruption) {
        match c {
            Corruption::Data { .. } => self.bad_data_blocks += 1,
            Corruption::Hash { level, .. } => self.bad_hash_blocks[level] += 1,
            Corruption::Spare { .. } => self.bad_spare_areas += 1,
        }
        if self.first.is_none_or(|f| c.key() < f.key()) {
            self.first = Some(c);
        }
    }
}

/// Checks every data block and every hash block against `root_hash`, as the kernel would when
/// reading the whole device, and reports the first failure and how many blocks fail.
pub fn verify(
    data: &dyn ReadAt,
    hash: &dyn ReadAt,
    params: &Params,
    root_hash: &[u8],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifyReport, Error> {
    let layout = Layout::new(params)?;
    if root_hash.len() != layout.digest_size {
        return Err(Error::RootHashLength { algorithm: params.hash, got: root_hash.len(), want: layout.digest_size });
    }
    check_data_size(data, &layout)?;
    let hash_size = hash.size().map_err(|source| Error::Read { what: "the hash device", offset: 0, source })?;
    if hash_size < layout.hash_device_size {
        return Err(Error::HashDeviceTruncated { size: hash_size, needed: layout.hash_device_size });
    }
    let hasher = crate::hash::block_hasher(params.hash, &params.salt, params.hash_type);
    let mut report = VerifyReport { bad_hash_blocks: vec![0; layout.levels.len()], ..Default::default() };
    let depth = layout.levels.len();
    if depth == 0 {
        if digest_data_block_0(data, &layout, &*hasher)? != root_hash {
            report.note(Corruption::Data { block: 0 });
        }
        progress(1);
        return Ok(report);
    }

    // Levels 1.. are small: read them whole and check each block against its parent entry.
    let hbs = layout.hash_block_size as usize;
    let mut stored: Vec<Vec<u8>> = vec![Vec::new(); depth];
    for (l, level) in layout.levels.iter().enumerate().skip(1) {
        let mut buf = vec![0u8; level.blocks as usize * hbs];
        hash.read_exact_at(&mut buf, level.offset).map_err(|source| Error::Read {
            what: "the hash tree",
            offset: level.offset,
            source,
        })?;
        stored[l] = buf;
    }
    let parent_entry = |level: usize, index: u64| -> &[u8] {
        if level + 1 == depth {
            root_hash
        } else {
            let at = index as usize * layout.slot_size;
            &stored[level + 1][at..at + layout.digest_size]
        }
    };
    for l in (1..depth).rev() {
        for (index, block) in stored[l].chunks(hbs).enumerate() {
            if let Some(c) = spare_corruption(&layout, l, index as u64, block) {
                report.note(c);
            }
            let mut d = vec![0u8; layout.digest_size];
            hasher.digest_into(block, &mut d);
            if d != parent_entry(l, index as u64) {
                report.note(hash_corruption(&layout, l, index as u64));
            }
        }
    }

    // Level 0 with the data, streamed in batches, each hash block checked in parallel.
    let level0 = layout.levels[0];
    for (first, count) in batches(&layout) {
        let mut blocks = vec![0u8; count as usize * hbs];
        let offset = level0.offset + first * hbs as u64;
        hash.read_exact_at(&mut blocks, offset).map_err(|source| Error::Read {
            what: "the hash tree",
            offset,
            source,
        })?;
        let found: Vec<Vec<Corruption>> = blocks
            .par_chunks(hbs)
            .enumerate()
            .map_init(Vec::new, |buf, (k, stored_block)| {
                let index = first + k as u64;
                let mut found: Vec<Corruption> =
                    spare_corruption(&layout, 0, index, stored_block).into_iter().collect();
                let mut d = vec![0u8; layout.digest_size];
                hasher.digest_into(stored_block, &mut d);
                if d != parent_entry(0, index) {
                    found.push(hash_corruption(&layout, 0, index));
                }
                let mut fresh = vec![0u8; hbs];
                hash_data_into_block(data, &layout, &*hasher, index, buf, &mut fresh)?;
                let n = data_blocks_under(&layout, index);
                for i in 0..n as usize {
                    let slot = i * layout.slot_size..i * layout.slot_size + layout.digest_size;
                    if fresh[slot.clone()] != stored_block[slot] {
                        found.push(Corruption::Data { block: index * layout.hashes_per_block + i as u64 });
                    }
                }
                Ok(found)
            })
            .collect::<Result<_, Error>>()?;
        found.into_iter().flatten().for_each(|c| report.note(c));
        progress(((first + count) * layout.hashes_per_block).min(layout.data_blocks));
    }
    Ok(report)
}

/// The first non-zero byte of hash block `index` of `level` that holds no digest: each slot's
/// padding after its digest, and every slot past the level's last entry.
fn spare_corruption(layout: &Layout, level: usize, index: u64, block: &[u8]) -> Option<Corruption> {
    let entries_in_level = if level == 0 { layout.data_blocks } else { layout.levels[level - 1].blocks };
    let first_entry = index.saturating_mul(layout.hashes_per_block);
    let used = layout.hashes_per_block.min(entries_in_level.saturating_sub(first_entry)) as usize;
    let (ds, ss) = (layout.digest_size, layout.slot_size);
    let pos = block.iter().enumerate().position(|(i, &b)| b != 0 && (i / ss >= used || i % ss >= ds))?;
    let offset = layout.levels[level].offset + index * u64::from(layout.hash_block_size) + pos as u64;
    let first_data_block = index.saturating_mul(layout.data_blocks_per_hash_block(level));
    Some(Corruption::Spare { level, index, offset, first_data_block })
}

fn hash_corruption(layout: &Layout, level: usize, index: u64) -> Corruption {
    let first_data_block = index.saturating_mul(layout.data_blocks_per_hash_block(level));
    Corruption::Hash { level, index, first_data_block }
}

fn check_data_size(data: &dyn ReadAt, layout: &Layout) -> Result<(), Error> {
    let size = data.size().map_err(|source| Error::Read { what: "the data device", offset: 0, source })?;
    let available = size / u64::from(layout.data_block_size);
    if available < layout.data_blocks {
        return Err(Error::DataTooShort {
            available,
            requested: layout.data_blocks,
            block_size: layout.data_block_size,
        });
    }
    Ok(())
}

/// Level-0 hash blocks in batches: `(first hash block, count)`.
fn batches(layout: &Layout) -> impl Iterator<Item = (u64, u64)> {
    let per_hash_block = layout.hashes_per_block * u64::from(layout.data_block_size);
    let per_batch = (BATCH_DATA_BYTES / per_hash_block).max(1);
    let total = layout.levels[0].blocks;
    (0..total.div_ceil(per_batch)).map(move |b| (b * per_batch, per_batch.min(total - b * per_batch)))
}

/// Number of data blocks whose digests live in level-0 hash block `index`.
fn data_blocks_under(layout: &Layout, index: u64) -> u64 {
    let first = index * layout.hashes_per_block;
    layout.hashes_per_block.min(layout.data_blocks - first)
}

/// Reads the data blocks of level-0 hash block `index` into `buf` and writes their digests
/// into the zeroed hash block `out`.
fn hash_data_into_block(
    data: &dyn ReadAt,
    layout: &Layout,
    hasher: &dyn BlockHasher,
    index: u64,
    buf: &mut Vec<u8>,
    out: &mut [u8],
) -> Result<(), Error> {
    let dbs = layout.data_block_size as usize;
    let n = data_blocks_under(layout, index) as usize;
    buf.resize(n * dbs, 0);
    let offset = index * layout.hashes_per_block * dbs as u64;
    data.read_exact_at(buf, offset).map_err(|source| Error::Read { what: "the data device", offset, source })?;
    hasher.digest_blocks_into(buf, dbs, out, layout.slot_size);
    Ok(())
}

fn digest_data_block_0(data: &dyn ReadAt, layout: &Layout, hasher: &dyn BlockHasher) -> Result<Vec<u8>, Error> {
    let mut block = vec![0u8; layout.data_block_size as usize];
    data.read_exact_at(&mut block, 0).map_err(|source| Error::Read { what: "the data device", offset: 0, source })?;
    let mut d = vec![0u8; layout.digest_size];
    hasher.digest_into(&block, &mut d);
    Ok(d)
}

/// The digests of consecutive hash blocks, concatenated.
fn digest_blocks(blocks: &[u8], layout: &Layout, hasher: &dyn BlockHasher) -> Vec<u8> {
    let mut out = vec![0u8; blocks.len() / layout.hash_block_size as usize * layout.digest_size];
    out.par_chunks_mut(layout.digest_size)
        .zip(blocks.par_chunks(layout.hash_block_size as usize))
        .for_each(|(d, block)| hasher.digest_into(block, d));
    out
}

/// Lays concatenated digests out as `count` hash blocks of slots.
fn pack(entries: &[u8], layout: &Layout, count: u64) -> Vec<u8> {
    let hbs = layout.hash_block_size as usize;
    let mut blocks = vec![0u8; count as usize * hbs];
    for (i, d) in entries.chunks(layout.digest_size).enumerate() {
        let (block, slot) = (i / layout.hashes_per_block as usize, i % layout.hashes_per_block as usize);
        let at = block * hbs + slot * layout.slot_size;
        blocks[at..at + layout.digest_size].copy_from_slice(d);
    }
    blocks
}
