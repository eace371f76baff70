//! `nodeimg verity format|verify|dump`: dm-verity with veritysetup's options and output.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use verity::{HashSink, HashType, Layout, Params, Superblock, SUPERBLOCK_SIZE};

use crate::fsutil::AtomicFile;
use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Compute the hash tree of DATA and write it (and a superblock) to HASHDEV, as
    /// `veritysetup format` does. Salt and UUID are derived from --seed unless given.
    Format {
        /// The data device or image file.
        data: PathBuf,
        /// The hash device or file (created if missing; may be DATA itself with --hash-offset).
        hashdev: PathBuf,
        #[command(flatten)]
        tree: TreeArgs,
        /// Salt as hex, or "-" for none. Default: derived from --seed.
        #[arg(long, value_name = "HEX|-")]
        salt: Option<String>,
        /// Superblock UUID. Default: derived from --seed.
        #[arg(long, conflicts_with = "no_superblock")]
        uuid: Option<String>,
        /// Seed for the salt and UUID when they are not given (see `verity` crate docs).
        #[arg(long, default_value = "")]
        seed: String,
        /// Print a JSON object instead of veritysetup's text.
        #[arg(long)]
        json: bool,
    },
    /// Check every data and hash block of DATA and HASHDEV against ROOTHASH. Exit 1 names the
    /// first bad data block and the tree level where the mismatch shows.
    Verify {
        data: PathBuf,
        hashdev: PathBuf,
        /// The root hash, hex.
        roothash: String,
        /// Parameters for --no-superblock (with a superblock they are read from it).
        #[command(flatten)]
        tree: TreeArgs,
        /// Salt for --no-superblock, hex or "-".
        #[arg(long, value_name = "HEX|-", requires = "no_superblock")]
        salt: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the superblock of HASHDEV.
    Dump {
        hashdev: PathBuf,
        /// Byte offset of the superblock in HASHDEV.
        #[arg(long, default_value_t = 0)]
        hash_offset: u64,
        #[arg(long)]
        json: bool,
    },
}

// The tree geometry options, with veritysetup's names, defaults and meanings.
// (Not a doc comment: clap would make it the `about` of every command that flattens this
// struct, over the command's own, as the commands are built lazily: `defer` in lib.rs.)
#[derive(Debug, Args)]
pub struct TreeArgs {
    /// Data block size in bytes.
    #[arg(long, default_value_t = 4096)]
    data_block_size: u32,
    /// Hash block size in bytes.
    #[arg(long, default_value_t = 4096)]
    hash_block_size: u32,
    /// Hash algorithm: sha1, sha256, sha384, sha512.
    #[arg(long, default_value = "sha256")]
    hash: String,
    /// Do not write (or read) a superblock.
    #[arg(long)]
    no_superblock: bool,
    /// Byte offset of the hash area in HASHDEV (a multiple of 512).
    #[arg(long, default_value_t = 0)]
    hash_offset: u64,
    /// Use only the first N data blocks (default: all of DATA, which must be whole blocks).
    #[arg(long, value_name = "N")]
    data_blocks: Option<u64>,
    /// Hash type: 1 (normal) or 0 (Chrome OS).
    #[arg(long = "format", default_value_t = 1, value_name = "0|1")]
    hash_type: u32,
}

pub fn run(cmd: Command, global: Global) -> Result<Outcome> {
    match cmd {
        Command::Format { data, hashdev, tree, salt, uuid, seed, json } => {
            let salt = match salt {
                Some(s) => parse_salt(&s)?,
                None => verity::salt_from_seed(&seed).to_vec(),
            };
            let uuid = match uuid {
                Some(u) => verity::parse_uuid(&u).with_context(|| format!("--uuid {u:?} is not a UUID"))?,
                None => verity::uuid_from_seed(&seed),
            };
            let params = tree.params(&data, salt, (!tree.no_superblock).then_some(uuid))?;
            let out = format(&data, &hashdev, &params)?;
            let report = Report::new(&params, &out.layout, Some(&out.root_hash));
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else if !global.quiet {
                out!("{}", report.text(&hashdev));
            } else {
                outln!("{}", hex::encode(&out.root_hash));
            }
            Ok(Outcome::Ok)
        }
        Command::Verify { data, hashdev, roothash, tree, salt, json } => {
            let root = hex::decode(roothash.trim()).with_context(|| format!("root hash {roothash:?} is not hex"))?;
            let hash_file = open(&hashdev)?;
            let params = if tree.no_superblock {
                let salt = salt.as_deref().map(parse_salt).transpose()?.unwrap_or_default();
                tree.params(&data, salt, None)?
            } else {
                read_superblock(&hash_file, &hashdev, tree.hash_offset)?
                    .params(tree.hash_offset)
                    .with_context(|| hashdev.display().to_string())?
            };
            let data_file = open(&data)?;
            let report = verity::verify(&data_file, &hash_file, &params, &root, &|_| {})
                .with_context(|| format!("verifying {} with {}", data.display(), hashdev.display()))?;
            print_verify(&report, json, global)?;
            Ok(if report.is_ok() { Outcome::Ok } else { Outcome::Mismatch })
        }
        Command::Dump { hashdev, hash_offset, json } => {
            let f = open(&hashdev)?;
            let sb = read_superblock(&f, &hashdev, hash_offset)?;
            let params = sb.params(hash_offset).with_context(|| hashdev.display().to_string())?;
            let layout = Layout::new(&params).with_context(|| hashdev.display().to_string())?;
            let mut report = Report::new(&params, &layout, None);
            report.hash_algorithm = sb.algorithm.clone();
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{}", report.text(&hashdev));
            }
            Ok(Outcome::Ok)
        }
    }
}

impl TreeArgs {
    fn params(&self, data: &Path, salt: Vec<u8>, superblock_uuid: Option<[u8; 16]>) -> Result<Params> {
        let hash = verity::parse_algorithm(&self.hash)?;
        let hash_type = HashType::from_number(self.hash_type)
            .with_context(|| format!("--format {} is not supported (0 or 1)", self.hash_type))?;
        let mut params = Params {
            hash,
            hash_type,
            data_block_size: self.data_block_size,
            hash_block_size: self.hash_block_size,
            data_blocks: self.data_blocks.unwrap_or(1),
            salt,
            hash_offset: self.hash_offset,
            superblock_uuid,
        };
        params.validate()?;
        if self.data_blocks.is_none() {
            let size = verity::ReadAt::size(&open(data)?)
                .with_context(|| format!("reading the size of {}", data.display()))?;
            if size % u64::from(self.data_block_size) != 0 {
                return Err(verity::Error::DataNotAligned { size, block_size: self.data_block_size })
                    .with_context(|| data.display().to_string());
            }
            params.data_blocks = size / u64::from(self.data_block_size);
        }
        params.validate()?;
        Ok(params)
    }
}

fn parse_salt(s: &str) -> Result<Vec<u8>> {
    if s == "-" {
        return Ok(Vec::new());
    }
    let salt = hex::decode(s).with_context(|| format!("--salt {s:?} is not hex (or \"-\" for none)"))?;
    if salt.len() > 256 {
        bail!(verity::Error::SaltTooLong(salt.len()));
    }
    Ok(salt)
}

fn open(path: &Path) -> Result<File> {
    crate::fsutil::open_input(path).with_context(|| format!("opening {}", path.display()))
}

fn read_superblock(f: &File, path: &Path, offset: u64) -> Result<Superblock> {
    let mut buf = [0u8; SUPERBLOCK_SIZE];
    verity::ReadAt::read_exact_at(f, &mut buf, offset)
        .with_context(|| format!("{}: no superblock at byte {offset} (file too short)", path.display()))?;
    Superblock::parse(&buf, offset).with_context(|| path.display().to_string())
}

/// Formats into HASHDEV without ever leaving a half-written tree under its name.
///
/// A missing or separate regular file is rebuilt in a temporary copy and renamed into place.
/// When HASHDEV is DATA itself (hash area after the data) or a device, the tree is first built
/// completely in a temporary file and only then copied into the written ranges.
fn format(data: &Path, hashdev: &Path, params: &Params) -> Result<verity::FormatOutput> {
    let data_file = open(data)?;
    let existing = std::fs::metadata(hashdev).ok();
    let same_file =
        existing.as_ref().is_some_and(|h| data_file.metadata().is_ok_and(|d| d.dev() == h.dev() && d.ino() == h.ino()));
    if same_file {
        let layout = Layout::new(params)?;
        let data_end = params.data_blocks.saturating_mul(u64::from(params.data_block_size));
        let hash_start = params.hash_offset.min(layout.tree_offset);
        if hash_start < data_end {
            bail!(verity::Error::Overlap { hash_start, data_end });
        }
    }
    let in_place = same_file || existing.as_ref().is_some_and(|m| !m.is_file());
    if in_place {
        let dir = hashdev.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut sink = Recorder { file: tempfile::tempfile_in(dir)?, ranges: Vec::new() };
        let out = verity::format(&data_file, params, &mut sink, &|_| {})?;
        let target = OpenOptions::new()
            .write(true)
            .open(hashdev)
            .with_context(|| format!("opening {} for writing", hashdev.display()))?;
        // The superblock goes last: an interrupted run must not leave a valid-looking superblock
        // over a partial tree. A superblock already there (a format being redone) is first
        // made invalid (its magic zeroed) and synced, then the tree is written and synced, then
        // the new superblock.
        let sb = params.superblock_uuid.is_some().then_some(params.hash_offset..params.hash_offset + SB_LEN);
        let is_sb = |offset: u64| sb.as_ref().is_some_and(|r| r.contains(&offset));
        let write = |offset: u64, bytes: &[u8]| {
            std::os::unix::fs::FileExt::write_all_at(&target, bytes, offset)
                .with_context(|| format!("writing {} at byte {offset}", hashdev.display()))
        };
        if let Some(r) = &sb {
            write(r.start, &[0u8; 8])?;
            target.sync_all()?;
        }
        let mut buf = Vec::new();
        for pass in superblock_last(&sink.ranges, is_sb) {
            for &(offset, len) in &pass {
                buf.resize(len, 0);
                verity::ReadAt::read_exact_at(&sink.file, &mut buf, offset)?;
                write(offset, &buf)?;
            }
            grow(&target, out.layout.hash_device_size)?;
            target.sync_all()?;
        }
        return Ok(out);
    }
    let mut tmp = AtomicFile::create(hashdev)?;
    if existing.is_some() {
        std::io::copy(&mut open(hashdev)?, tmp.file_mut()).with_context(|| format!("copying {}", hashdev.display()))?;
    }
    let out = verity::format(&data_file, params, tmp.file_mut(), &|_| {})
        .with_context(|| format!("formatting {}", data.display()))?;
    grow(tmp.file(), out.layout.hash_device_size)?;
    tmp.commit()?;
    Ok(out)
}

/// The written ranges in two passes, each to be synced before the next: the tree, then the
/// superblock (the ranges `is_sb` says start in it).
fn superblock_last(ranges: &[(u64, usize)], is_sb: impl Fn(u64) -> bool) -> [Vec<(u64, usize)>; 2] {
    let (sb, tree): (Vec<_>, Vec<_>) = ranges.iter().partition(|(o, _)| is_sb(*o));
    [tree, sb]
}

/// The bytes of a dm-verity superblock (cryptsetup's `struct verity_sb`).
const SB_LEN: u64 = SUPERBLOCK_SIZE as u64;

/// veritysetup makes a short hash file as long as the tree (the superblock block included).
fn grow(f: &File, size: u64) -> Result<()> {
    let m = f.metadata()?;
    if m.is_file() && m.len() < size {
        f.set_len(size)?;
    }
    Ok(())
}

/// A sink that writes to a temporary file and remembers which ranges it wrote.
struct Recorder {
    file: File,
    ranges: Vec<(u64, usize)>,
}

impl HashSink for Recorder {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.ranges.push((offset, bytes.len()));
        HashSink::write_at(&mut self.file, offset, bytes)
    }
}

/// What `format` and `dump` print; field names are the JSON interface.
#[derive(Debug, Serialize)]
struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    root_hash: Option<String>,
    salt: String,
    uuid: Option<String>,
    hash_algorithm: String,
    hash_type: u32,
    data_block_size: u32,
    hash_block_size: u32,
    data_blocks: u64,
    hash_blocks: u64,
    hash_offset: u64,
    hash_device_size: u64,
    superblock: bool,
}

impl Report {
    fn new(p: &Params, layout: &Layout, root: Option<&[u8]>) -> Self {
        Self {
            root_hash: root.map(hex::encode),
            salt: hex::encode(&p.salt),
            uuid: p.superblock_uuid.as_ref().map(verity::format_uuid),
            hash_algorithm: p.hash.name().to_owned(),
            hash_type: p.hash_type.number(),
            data_block_size: p.data_block_size,
            hash_block_size: p.hash_block_size,
            data_blocks: p.data_blocks,
            hash_blocks: layout.hash_blocks,
            hash_offset: p.hash_offset,
            hash_device_size: layout.hash_device_size,
            superblock: p.superblock_uuid.is_some(),
        }
    }

    /// veritysetup's layout, tabs and all.
    fn text(&self, hashdev: &Path) -> String {
        let salt = if self.salt.is_empty() { "-" } else { &self.salt };
        let mut s = format!("VERITY header information for {}\n", hashdev.display());
        s += &format!("UUID:            \t{}\n", self.uuid.as_deref().unwrap_or(""));
        s += &format!("Hash type:       \t{}\n", self.hash_type);
        s += &format!("Data blocks:     \t{}\n", self.data_blocks);
        s += &format!("Data block size: \t{}\n", self.data_block_size);
        s += &format!("Hash blocks:     \t{}\n", self.hash_blocks);
        s += &format!("Hash block size: \t{}\n", self.hash_block_size);
        s += &format!("Hash algorithm:  \t{}\n", self.hash_algorithm);
        s += &format!("Salt:            \t{salt}\n");
        if let Some(root) = &self.root_hash {
            s += &format!("Root hash:      \t{root}\n");
        }
        s += &format!("Hash device size: \t{} [bytes]\n", self.hash_device_size);
        s
    }
}

fn print_verify(report: &verity::VerifyReport, json: bool, global: Global) -> Result<()> {
    use verity::Corruption;
    let first = report.first.map(|c| match c {
        Corruption::Data { block } => (block, "data".to_owned(), format!(
            "data block {block} does not match its hash in tree level 0"
        )),
        Corruption::Hash { level, index, first_data_block } => (first_data_block, format!("{level}"), format!(
            "hash block {index} of tree level {level} does not match its entry {}; data blocks from {first_data_block} cannot be verified",
            if level + 1 == report.bad_hash_blocks.len() { "(the root hash)".to_owned() } else { format!("in level {}", level + 1) }
        )),
        Corruption::Spare { level, index, offset, first_data_block } => (first_data_block, format!("{level}"), format!(
            "spare area is not zeroed at position {offset} of the hash device (hash block {index} of tree level {level}: \
             bytes that hold no digest must be zero)"
        )),
    });
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            ok: bool,
            first_bad_data_block: Option<u64>,
            mismatch_level: Option<String>,
            message: Option<String>,
            bad_data_blocks: u64,
            bad_hash_blocks: &'a [u64],
            bad_spare_areas: u64,
        }
        let out = Out {
            ok: report.is_ok(),
            first_bad_data_block: first.as_ref().map(|f| f.0),
            mismatch_level: first.as_ref().map(|f| f.1.clone()),
            message: first.as_ref().map(|f| f.2.clone()),
            bad_data_blocks: report.bad_data_blocks,
            bad_hash_blocks: &report.bad_hash_blocks,
            bad_spare_areas: report.bad_spare_areas,
        };
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else if let Some((block, _, message)) = first {
        outln!("Verification failed at data block {block}: {message}.");
        outln!(
            "{} data block(s) and {} hash block(s) do not match; {} hash block(s) have a non-zero spare area.",
            report.bad_data_blocks,
            report.bad_hash_blocks.iter().sum::<u64>(),
            report.bad_spare_areas
        );
    } else if !global.quiet {
        outln!("Verification succeeded.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_superblock_is_written_after_the_tree() {
        let ranges = [(4096, 512), (8192, 4096), (4096 + 100, 8), (12288, 4096)];
        let [tree, sb] = superblock_last(&ranges, |o| (4096..4096 + SB_LEN).contains(&o));
        assert_eq!(tree, [(8192, 4096), (12288, 4096)]);
        assert_eq!(sb, [(4096, 512), (4196, 8)]);
    }
}
