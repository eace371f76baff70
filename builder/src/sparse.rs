//! Sparse files: where their data is (`SEEK_DATA` / `SEEK_HOLE`), so that copying, hashing and
//! comparing a disk image skip its holes instead of reading them.
//!
//! Reading a hole is not free: the kernel allocates page-cache pages for it and zeroes them.
//! A four-platform build hashes about 5 GB of disk and ESP images, three quarters of it holes;
//! reading those holes cost more CPU (the kernel's `memset`) than hashing them (measured with
//! `perf record`, docs/performance-build.md). A hole reads as zeros by definition, so the bytes
//! of a hole are known without reading them.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// The first data extent of `f` that ends after `pos`, as `(start, end)` with
/// `pos <= start < end <= len`: `None` when only holes (or nothing) remain before `len`.
/// Filesystems that do not track holes report the whole file as data, which is still right.
pub fn next_data(f: &File, pos: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    if pos >= len {
        return Ok(None);
    }
    let Some(start) = seek(f, pos, libc::SEEK_DATA)? else { return Ok(None) };
    if start >= len {
        return Ok(None);
    }
    let end = seek(f, start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
    Ok(Some((start, end.max(start + 1))))
}

fn seek(f: &File, pos: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let pos = libc::off_t::try_from(pos).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: lseek on a descriptor `f` keeps open; it only moves the file offset, which no
    // caller here relies on (all reads and writes are positioned).
    #[allow(unsafe_code)]
    let r = unsafe { libc::lseek(f.as_raw_fd(), pos, whence) };
    match r {
        r if r >= 0 => Ok(Some(r as u64)),
        _ => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            e => Err(e),
        },
    }
}

/// Calls `sink` with every byte of `f` below `len`, in order and in pieces of at most 1 MiB:
/// data read from the file, holes as zeros from memory, never read.
pub fn for_each_chunk(f: &File, len: u64, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < len {
        let (start, end) = next_data(f, pos, len)?.unwrap_or((len, len));
        while pos < start {
            let n = (start - pos).min(CHUNK as u64) as usize;
            sink(&zeros[..n]);
            pos += n as u64;
        }
        while pos < end {
            let n = (end - pos).min(CHUNK as u64) as usize;
            f.read_exact_at(&mut buf[..n], pos)?;
            sink(&buf[..n]);
            pos += n as u64;
        }
    }
    Ok(())
}

/// Whether `len` bytes of `a` at `a_off` equal those of `b` at `b_off`; a range that is a hole
/// in both is equal without being read.
pub fn same_bytes(a: &File, a_off: u64, b: &File, b_off: u64, len: u64) -> io::Result<bool> {
    const CHUNK: u64 = 1 << 20;
    let (a_len, b_len) = (a.metadata()?.len(), b.metadata()?.len());
    if a_off.checked_add(len).is_none_or(|e| e > a_len) || b_off.checked_add(len).is_none_or(|e| e > b_len) {
        return Ok(false);
    }
    // How many bytes from `at` are a hole (0 when `at` is in data).
    let hole = |f: &File, at: u64, end: u64| -> io::Result<u64> {
        Ok(next_data(f, at, end)?.map_or(end, |(start, _)| start) - at)
    };
    let (mut x, mut y) = (vec![0u8; CHUNK as usize], vec![0u8; CHUNK as usize]);
    let mut done = 0u64;
    while done < len {
        let (ha, hb) = (hole(a, a_off + done, a_off + len)?, hole(b, b_off + done, b_off + len)?);
        if ha > 0 && hb > 0 {
            done += ha.min(hb);
            continue;
        }
        // One side is in data here: compare up to a chunk, or up to where the other's hole ends.
        let n = [CHUNK, len - done, if ha > 0 { ha } else { u64::MAX }, if hb > 0 { hb } else { u64::MAX }]
            .into_iter()
            .min()
            .unwrap_or(CHUNK) as usize;
        let (x, y) = (&mut x[..n], &mut y[..n]);
        if ha > 0 {
            x.fill(0);
        } else {
            a.read_exact_at(x, a_off + done)?;
        }
        if hb > 0 {
            y.fill(0);
        } else {
            b.read_exact_at(y, b_off + done)?;
        }
        if x != y {
            return Ok(false);
        }
        done += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// A 9 MiB file: a hole, data, a hole, data, a trailing hole.
    fn holey(dir: &std::path::Path, name: &str, marks: &[(u64, u8)]) -> (File, Vec<u8>) {
        let path = dir.join(name);
        let f = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        f.set_len(9 << 20).unwrap();
        let mut bytes = vec![0u8; 9 << 20];
        for &(at, v) in marks {
            f.write_all_at(&[v; 5000], at).unwrap();
            bytes[at as usize..at as usize + 5000].fill(v);
        }
        (f, bytes)
    }

    #[test]
    fn chunks_are_the_files_bytes() {
        let t = tempfile::tempdir().unwrap();
        let (f, bytes) = holey(t.path(), "a", &[(3 << 20, 1), ((6 << 20) + 4095, 2)]);
        let mut h = Sha256::new();
        let mut seen = 0u64;
        for_each_chunk(&f, bytes.len() as u64, |c| {
            assert!(c.len() <= 1 << 20);
            seen += c.len() as u64;
            h.update(c);
        })
        .unwrap();
        assert_eq!(seen, bytes.len() as u64);
        assert_eq!(h.finalize(), Sha256::digest(&bytes));
        // All data, and empty.
        let dense = t.path().join("d");
        std::fs::write(&dense, [7u8; 3000]).unwrap();
        let mut got = Vec::new();
        for_each_chunk(&File::open(&dense).unwrap(), 3000, |c| got.extend_from_slice(c)).unwrap();
        assert_eq!(got, [7u8; 3000]);
        let mut calls = 0;
        for_each_chunk(&File::open(&dense).unwrap(), 0, |_| calls += 1).unwrap();
        assert_eq!(calls, 0);
    }

    #[test]
    fn same_bytes_compares_holes_and_data() {
        let t = tempfile::tempdir().unwrap();
        let (a, _) = holey(t.path(), "a", &[(1 << 20, 1), (5 << 20, 2)]);
        let (b, _) = holey(t.path(), "b", &[(1 << 20, 1), (5 << 20, 2)]);
        let len = 9 << 20;
        assert!(same_bytes(&a, 0, &b, 0, len).unwrap());
        // Written zeros equal a hole.
        let (z, _) = holey(t.path(), "z", &[(1 << 20, 1), (5 << 20, 2), (7 << 20, 0)]);
        assert!(same_bytes(&a, 0, &z, 0, len).unwrap());
        // One byte differs, in data; and data where the other has a hole.
        b.write_all_at(&[9], (5 << 20) + 4999).unwrap();
        assert!(!same_bytes(&a, 0, &b, 0, len).unwrap());
        let (c, _) = holey(t.path(), "c", &[(1 << 20, 1), (5 << 20, 2), (8 << 20, 3)]);
        assert!(!same_bytes(&a, 0, &c, 0, len).unwrap());
        assert!(!same_bytes(&c, 0, &a, 0, len).unwrap());
        // Offsets: a's second mark is c's at another place; ranges past the end are not equal.
        assert!(same_bytes(&a, 5 << 20, &c, 5 << 20, 5000).unwrap());
        assert!(same_bytes(&a, (1 << 20) - 10, &a, (1 << 20) - 10, 20).unwrap());
        assert!(!same_bytes(&a, 0, &c, 1, len).unwrap());
        assert!(!same_bytes(&a, 1, &b, 1, len).unwrap());
    }
}
