//! Independent checks of what mkosi built: the verity tree and root hash, the UKI's command line,
//! and the partition UUIDs systemd will look for.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use verity::{Superblock, SUPERBLOCK_SIZE};

use crate::{gpt, read_err, CheckFailure, Error};

/// The `.cmdline` section of the UKI at `path`, without trailing NULs and whitespace.
pub fn uki_cmdline(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(read_err(path))?;
    cmdline_of(&bytes, path)
}

/// [`uki_cmdline`] on bytes already read; `path` only names them in errors.
pub fn cmdline_of(uki_bytes: &[u8], path: &Path) -> Result<String, Error> {
    let bad = |reason: String| Error::Uki { path: path.to_path_buf(), reason };
    let pe = uki::Pe::parse(uki_bytes).map_err(|error| Error::UkiParse { path: path.to_path_buf(), error })?;
    let section = pe.section(".cmdline").ok_or_else(|| bad("no .cmdline section".into()))?;
    let raw = pe.section_file_bytes(section);
    let text = std::str::from_utf8(raw)
        .map_err(|e| bad(format!(".cmdline is not UTF-8 (byte {} of the section)", e.valid_up_to())))?;
    Ok(text.trim_end_matches(['\0', '\n', ' ']).to_owned())
}

/// Whether the `.cmdline` section's bytes (up to its VirtualSize) end with a NUL.
pub fn cmdline_is_nul_terminated(uki_bytes: &[u8], path: &Path) -> Result<bool, Error> {
    let bad = |reason: String| Error::Uki { path: path.to_path_buf(), reason };
    let pe = uki::Pe::parse(uki_bytes).map_err(|error| Error::UkiParse { path: path.to_path_buf(), error })?;
    let s = pe.section(".cmdline").ok_or_else(|| bad("no .cmdline section".into()))?;
    let len = s.virtual_size.min(s.raw_size) as usize;
    let start = s.offset as usize;
    Ok(uki_bytes.get(start..start + len).is_some_and(|b| b.last() == Some(&0)))
}

/// The value of `roothash=` in `cmdline`, if any.
pub fn roothash_of(cmdline: &str) -> Option<&str> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix("roothash="))
}

/// What [`check_verity`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityFacts {
    /// The recomputed root hash, lowercase hex.
    pub root_hash: String,
    pub hash_algorithm: String,
    pub data_blocks: u64,
    pub data_block_size: u32,
    pub salt: String,
}

/// A [`verity::HashSink`] that compares what would be written with the existing hash partition.
struct CompareSink<'a> {
    existing: &'a File,
    first_difference: Option<u64>,
}

impl verity::HashSink for CompareSink<'_> {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if self.first_difference.is_some() {
            return Ok(());
        }
        let mut have = vec![0u8; bytes.len()];
        if self.existing.read_exact_at(&mut have, offset).is_err() {
            self.first_difference = Some(offset);
            return Ok(());
        }
        if let Some(i) = have.iter().zip(bytes).position(|(a, b)| a != b) {
            self.first_difference = Some(offset + i as u64);
        }
        Ok(())
    }
}

/// Recomputes the dm-verity tree of `root` with the parameters in the superblock of `hash_part`,
/// checks that the tree equals the one in `hash_part` byte for byte, and that its root hash is
/// `expected_roothash` (hex, from the UKI's command line).
pub fn check_verity(root: &Path, hash_part: &Path, expected_roothash: &str) -> Result<VerityFacts, Error> {
    let data = File::open(root).map_err(read_err(root))?;
    let hash = File::open(hash_part).map_err(read_err(hash_part))?;
    let mut sb_bytes = [0u8; SUPERBLOCK_SIZE];
    hash.read_exact_at(&mut sb_bytes, 0).map_err(read_err(hash_part))?;
    let verity_err = |error| Error::Verity { path: hash_part.to_path_buf(), error };
    let sb = Superblock::parse(&sb_bytes, 0).map_err(verity_err)?;
    let params = sb.params(0).map_err(verity_err)?;
    let mut sink = CompareSink { existing: &hash, first_difference: None };
    let out = verity::format(&data, &params, &mut sink, &|_| {})
        .map_err(|error| Error::Verity { path: root.to_path_buf(), error })?;
    let computed = hex::encode(&out.root_hash);
    if !computed.eq_ignore_ascii_case(expected_roothash) {
        return Err(CheckFailure::RootHash {
            root: root.to_path_buf(),
            computed,
            cmdline: expected_roothash.to_owned(),
        }
        .into());
    }
    if let Some(offset) = sink.first_difference {
        return Err(CheckFailure::HashTree { root: root.to_path_buf(), verity: hash_part.to_path_buf(), offset }.into());
    }
    Ok(VerityFacts {
        root_hash: computed,
        hash_algorithm: sb.algorithm.clone(),
        data_blocks: sb.data_blocks,
        data_block_size: sb.data_block_size,
        salt: hex::encode(&sb.salt),
    })
}

/// Checks that `disk` has root and root-verity partitions whose UUIDs are the ones systemd
/// derives from `roothash` (so the booted initrd finds them), and returns the partitions.
pub fn check_partition_uuids(disk: &Path, roothash: &str) -> Result<Vec<gpt::Partition>, Error> {
    let parts = gpt::read(disk)?;
    let hash = hex::decode(roothash)
        .map_err(|_| Error::Gpt { path: disk.to_path_buf(), reason: format!("roothash={roothash} is not hex") })?;
    let (data_uuid, hash_uuid) = gpt::verity_partition_uuids(&hash)
        .ok_or_else(|| Error::Gpt { path: disk.to_path_buf(), reason: format!("roothash={roothash} is too short") })?;
    for (type_guid, what, expected) in
        [(gpt::TYPE_ROOT_X86_64, "root", data_uuid), (gpt::TYPE_ROOT_X86_64_VERITY, "root-verity", hash_uuid)]
    {
        let p = parts.iter().find(|p| p.type_guid == type_guid).ok_or_else(|| Error::Gpt {
            path: disk.to_path_buf(),
            reason: format!("no {what} partition (type {type_guid})"),
        })?;
        if p.uuid.to_string() != expected {
            return Err(CheckFailure::PartitionUuid {
                disk: disk.to_path_buf(),
                partition: what.to_owned(),
                actual: p.uuid.to_string(),
                expected,
            }
            .into());
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Causes from other crates are sources a caller can match, and the chain reads as one line.
    #[test]
    fn causes_are_sources() {
        use std::error::Error as _;
        let err = cmdline_of(b"not a PE image", Path::new("x.efi")).unwrap_err();
        assert!(matches!(err, Error::UkiParse { .. }), "{err:?}");
        let cause = err.source().and_then(|s| s.downcast_ref::<uki::PeError>());
        assert!(cause.is_some(), "{err:?}");
        assert_eq!(
            format!("{err}: {}", cause.unwrap()),
            format!("x.efi: not a UKI nodeimg can read: {}", cause.unwrap())
        );
        let err = uki_cmdline(Path::new("/nonexistent/x.efi")).unwrap_err();
        let kind = err.source().and_then(|s| s.downcast_ref::<io::Error>()).map(io::Error::kind);
        assert_eq!(kind, Some(io::ErrorKind::NotFound), "{err:?}");
    }

    #[test]
    fn roothash_is_found_among_words() {
        assert_eq!(roothash_of("console=ttyS0 roothash=abcd panic=-1"), Some("abcd"));
        assert_eq!(roothash_of("console=ttyS0"), None);
    }

    /// A root and hash partition made by `veritysetup format` (the oracle) pass; a flipped data
    /// byte is a RootHash failure, a flipped tree byte (with the right root hash) a HashTree one.
    #[test]
    fn verity_check_against_veritysetup() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.raw");
        let hash = dir.path().join("verity.raw");
        let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        std::fs::write(&root, &data).unwrap();
        let out = std::process::Command::new("veritysetup")
            .args(["format", "--salt", "6e6f6465"])
            .arg(&root)
            .arg(&hash)
            .output()
            .expect("veritysetup (cryptsetup-bin) must be installed: run `make setup`");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let want = text.lines().find_map(|l| l.strip_prefix("Root hash:")).unwrap().trim().to_owned();

        let facts = check_verity(&root, &hash, &want).unwrap();
        assert_eq!(
            (facts.root_hash.as_str(), facts.data_blocks, facts.salt.as_str()),
            (want.as_str(), 256, "6e6f6465")
        );

        let mut bad = data.clone();
        bad[5000] ^= 1;
        std::fs::write(&root, &bad).unwrap();
        let err = check_verity(&root, &hash, &want).unwrap_err();
        assert!(matches!(err, Error::Check(CheckFailure::RootHash { .. })), "{err}");

        std::fs::write(&root, &data).unwrap();
        let mut tree = std::fs::read(&hash).unwrap();
        // 256 data blocks: superblock at 0, the top level (one block, 2 digests used) at 4096,
        // level 0 after it. Flip a byte in the zero tail of the top block: not what
        // veritysetup wrote, and the root hash recomputed from the data is still right.
        let top_block_tail = 4096 + 4095;
        tree[top_block_tail] ^= 1;
        std::fs::write(&hash, &tree).unwrap();
        let err = check_verity(&root, &hash, &want).unwrap_err();
        assert!(
            matches!(err, Error::Check(CheckFailure::HashTree { offset, .. }) if offset == top_block_tail as u64),
            "{err}"
        );
    }
}
