//! Reproducible archives: POSIX ustar inside zstd, with nothing that depends on the machine,
//! the clock, or the order a file system lists directories in.
//!
//! Every entry has mtime = `SOURCE_DATE_EPOCH`, uid = gid = 0, no user or group names (numeric),
//! mode 0644 for files and 0755 for directories; entries are sorted by name within each
//! directory, depth first (what GNU tar's `--sort=name` produces); files are written whole (never
//! as sparse entries); the archive is padded to GNU tar's default record size of 10240 bytes.
//! The result is byte-identical to
//!
//! ```text
//! tar --format=ustar --sort=name --mtime=@$SOURCE_DATE_EPOCH --owner=0 --group=0 \
//!     --numeric-owner --mode=go=rX,u=rwX -cf - DIR
//! ```
//!
//! (a test checks exactly that). zstd runs with a fixed level ([`ZSTD_LEVEL`]) and a fixed number
//! of workers ([`ZSTD_WORKERS`]): zstd's output depends on both, never on timing.
//!
//! Headers are the `tar` crate's ustar headers (POSIX.1-1988, IEEE Std 1003.1 "pax" utility,
//! ustar Interchange Format). What nodeimg adds: the tree walk and its order, the name/prefix
//! split as GNU tar makes it, the padding to GNU's record size, GNU's spelling of the checksum
//! field, and refusing (not re-encoding) a number its octal field cannot hold.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::progress::Counted;

/// zstd compression level of every artefact and archive.
pub const ZSTD_LEVEL: i32 = 10;
/// zstd worker threads (multi-threaded zstd's output depends on this, so it is fixed).
pub const ZSTD_WORKERS: u32 = 2;
/// Tar block size.
const BLOCK: usize = 512;
/// GNU tar's default record size (blocking factor 20): archives are padded to a multiple of it.
const RECORD: u64 = 20 * BLOCK as u64;
/// The largest size the 11 octal digits of a ustar size field hold.
const MAX_SIZE: u64 = (1 << 33) - 1;

/// Why an archive could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading an input or writing the output failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A name does not fit ustar's name and prefix fields.
    #[error("{path}: name too long for a ustar archive (at most 100 bytes after the last '/' that fits 155 bytes of prefix)")]
    NameTooLong { path: String },
    /// A file is larger than ustar allows.
    #[error("{path}: {size} bytes is more than a ustar archive entry can hold (8 GiB)")]
    TooLarge { path: String, size: u64 },
    /// Something other than a regular file or directory.
    #[error("{path}: only regular files and directories can be archived")]
    Unsupported { path: PathBuf },
    /// A file changed size while it was archived.
    #[error("{path}: changed size while being archived")]
    Changed { path: PathBuf },
    /// A header value does not fit its octal field (a time stamp past 2242, say).
    #[error("{path}: {field} {value} does not fit the {digits}-digit octal field of a ustar header")]
    FieldOverflow { path: String, field: &'static str, value: u64, digits: usize },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_path_buf(), source }
}

/// Writes ustar entries; see the module documentation for what is fixed.
#[derive(Debug)]
pub struct TarWriter<W: Write> {
    out: W,
    mtime: u64,
    written: u64,
}

impl<W: Write> TarWriter<W> {
    /// Starts an archive whose entries all carry `mtime`.
    pub fn new(out: W, mtime: u64) -> Self {
        Self { out, mtime, written: 0 }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn header(&mut self, path: &str, mode: u32, size: u64, kind: tar::EntryType) -> Result<(), ArchiveError> {
        let (prefix, name) = split_name(path).ok_or_else(|| ArchiveError::NameTooLong { path: path.into() })?;
        // A value the octal field cannot hold is refused, never written in another encoding
        // (the tar crate would fall back to GNU's base-256 numbers, which ustar readers reject).
        for (field, value, digits) in [("size", size, 11), ("mtime", self.mtime, 11), ("mode", u64::from(mode), 7)] {
            if value >= 1 << (3 * digits) {
                return Err(ArchiveError::FieldOverflow { path: path.into(), field, value, digits });
            }
        }
        let mut h = tar::Header::new_ustar();
        let ustar = h.as_ustar_mut().expect("a ustar header");
        ustar.name[..name.len()].copy_from_slice(name.as_bytes());
        ustar.prefix[..prefix.len()].copy_from_slice(prefix.as_bytes());
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size);
        h.set_mtime(self.mtime);
        h.set_entry_type(kind);
        let io = |e: io::Error| ArchiveError::Io { path: PathBuf::from(path), source: e };
        h.set_device_major(0).map_err(io)?;
        h.set_device_minor(0).map_err(io)?;
        h.set_cksum();
        // GNU tar writes the checksum as six octal digits, NUL, space; the tar crate as seven
        // digits and a NUL. Both readers accept both; GNU's form keeps the archive byte-identical
        // to `tar --format=ustar` (the oracle test).
        let sum = h.cksum().map_err(io)?;
        h.as_old_mut().cksum.copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.write(h.as_bytes()).map_err(io_err(Path::new(path)))
    }

    /// Adds a directory entry (`path` without a trailing slash; one is added).
    pub fn directory(&mut self, path: &str) -> Result<(), ArchiveError> {
        self.header(&format!("{path}/"), 0o755, 0, tar::EntryType::Directory)
    }

    /// Adds a regular file of exactly `size` bytes read from `data`.
    pub fn file(&mut self, path: &str, size: u64, mut data: impl Read) -> Result<(), ArchiveError> {
        if size > MAX_SIZE {
            return Err(ArchiveError::TooLarge { path: path.into(), size });
        }
        self.header(path, 0o644, size, tar::EntryType::Regular)?;
        let p = PathBuf::from(path);
        let copied = io::copy(&mut (&mut data).take(size), &mut self.out).map_err(io_err(&p))?;
        self.written += copied;
        if copied != size || data.read(&mut [0u8; 1]).map_err(io_err(&p))? != 0 {
            return Err(ArchiveError::Changed { path: p });
        }
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.write(&vec![0u8; pad as usize]).map_err(io_err(&p))
    }

    /// Writes the two zero blocks that end an archive, pads to the record size, and returns the
    /// output.
    pub fn finish(mut self) -> Result<W, ArchiveError> {
        let end = self.written + 2 * BLOCK as u64;
        let padded = end.div_ceil(RECORD) * RECORD;
        let zeros = vec![0u8; (padded - self.written) as usize];
        self.write(&zeros).map_err(io_err(Path::new("<archive>")))?;
        Ok(self.out)
    }
}

/// Splits `path` into ustar's (prefix, name): the whole path if it fits 100 bytes, else at a
/// `/` such that the name fits 100 bytes and the prefix 155.
fn split_name(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    let trimmed = path.trim_end_matches('/');
    let min_split = path.len().saturating_sub(101);
    trimmed
        .char_indices()
        .filter(|&(i, c)| c == '/' && i >= min_split && i <= 155)
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .find(|(p, n)| !p.is_empty() && n.len() <= 100)
}

/// Archives the tree at `root` under the name `top` (a directory entry `top/`, then its
/// contents) into `out`, leaving out the entries of `root` named in `skip`. Only regular files
/// and directories are allowed. `progress` hears how many bytes of file content are archived
/// so far.
pub fn write_tree<W: Write>(
    root: &Path,
    top: &str,
    mtime: u64,
    skip: &[&str],
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<W, ArchiveError> {
    let mut tar = TarWriter::new(out, mtime);
    add_dir(&mut tar, root, top, skip, &mut 0, progress)?;
    tar.finish()
}

fn add_dir<W: Write>(
    tar: &mut TarWriter<W>,
    dir: &Path,
    name: &str,
    skip: &[&str],
    done: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(), ArchiveError> {
    tar.directory(name)?;
    let mut children: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let child = entry.file_name().into_string().map_err(|_| ArchiveError::Unsupported { path: entry.path() })?;
        if !skip.contains(&child.as_str()) {
            children.push((child, entry.path()));
        }
    }
    children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (child, path) in children {
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let entry_name = format!("{name}/{child}");
        if meta.is_dir() {
            add_dir(tar, &path, &entry_name, &[], done, progress)?;
        } else if meta.is_file() {
            let f = File::open(&path).map_err(io_err(&path))?;
            let base = *done;
            tar.file(&entry_name, meta.len(), Counted::new(f, &mut |n| progress(base + n)))?;
            *done += meta.len();
        } else {
            return Err(ArchiveError::Unsupported { path });
        }
    }
    Ok(())
}

/// A zstd encoder with the fixed parameters.
fn encoder<W: Write>(out: W) -> io::Result<zstd::Encoder<'static, W>> {
    let mut enc = zstd::Encoder::new(out, ZSTD_LEVEL)?;
    enc.multithread(ZSTD_WORKERS)?;
    enc.include_checksum(true)?;
    Ok(enc)
}

/// [`write_tree`] compressed with zstd: the release archive.
pub fn write_tree_zst<W: Write>(
    root: &Path,
    top: &str,
    mtime: u64,
    skip: &[&str],
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<W, ArchiveError> {
    let enc = encoder(out).map_err(io_err(Path::new("<zstd>")))?;
    let enc = write_tree(root, top, mtime, skip, enc, progress)?;
    enc.finish().map_err(io_err(Path::new("<zstd>")))
}

/// Compresses `input` into `out` with the fixed parameters; returns the uncompressed size.
pub fn compress<W: Write>(mut input: impl Read, out: W) -> io::Result<(u64, W)> {
    let mut enc = encoder(out)?;
    let n = io::copy(&mut input, &mut enc)?;
    Ok((n, enc.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields() {
        let mut t = TarWriter::new(Vec::new(), 1_700_000_000);
        t.directory("d").unwrap();
        let h = t.finish().unwrap();
        assert_eq!(&h[100..108], b"0000755\0");
        assert_eq!(&h[108..124], b"0000000\x000000000\x00");
        assert_eq!(&h[136..148], b"14524770400\0");
        assert_eq!(&h[148..156][6..], b"\0 ", "GNU's checksum spelling");
        assert_eq!(&h[257..265], b"ustar\x0000");
        // 8^11 - 1 seconds still fits the field; 8^11 (the year 2242) is refused (below).
        let mut t = TarWriter::new(Vec::new(), 8u64.pow(11) - 1);
        t.directory("d").unwrap();
        assert_eq!(&t.finish().unwrap()[136..148], b"77777777777\0");
    }

    #[test]
    fn an_mtime_past_the_field_is_refused() {
        let mut tar = TarWriter::new(Vec::new(), 8u64.pow(11));
        let err = tar.directory("x").unwrap_err().to_string();
        assert!(err.contains("mtime 8589934592 does not fit the 11-digit octal field"), "{err}");
    }

    #[test]
    fn long_names_split_at_a_slash() {
        let dir = "d".repeat(120);
        let path = format!("{dir}/file");
        assert_eq!(split_name(&path), Some((dir.as_str(), "file")));
        assert_eq!(split_name(&"x".repeat(101)), None);
        assert_eq!(split_name("short/name"), Some(("", "short/name")));
    }

    #[test]
    fn size_and_changes_are_checked() {
        let mut t = TarWriter::new(Vec::new(), 0);
        assert!(matches!(t.file("a", 10, &b"short"[..]), Err(ArchiveError::Changed { .. })));
        let mut t = TarWriter::new(Vec::new(), 0);
        assert!(matches!(t.file("a", 2, &b"longer"[..]), Err(ArchiveError::Changed { .. })));
        let mut t = TarWriter::new(Vec::new(), 0);
        t.file("a", 3, &b"abc"[..]).unwrap();
        let out = t.finish().unwrap();
        assert_eq!(out.len() as u64 % RECORD, 0);
        assert_eq!(&out[512..515], b"abc");
    }
}
