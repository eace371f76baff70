//! The cpio archives systemd-stub 257 generates and appends to the initrd.
//!
//! The Linux EFI stub measures the initrd it receives into PCR 9, and systemd-stub hands it more
//! than the UKI's `.initrd`: archives it builds at boot for credentials, system and
//! configuration extensions found next to the UKI, and for some of its own sections
//! (`.pcrsig`, `.pcrpkey`, `.osrel`, `.profile` under `/.extra/`). Predicting PCR 9 means
//! rebuilding those archives byte for byte, so this follows `src/boot/cpio.c` of systemd 257
//! exactly: "newc" (`070701`) headers with eight lowercase hex digits per field, an inode
//! counter starting at 1 in each archive, uid/gid/mtime/device numbers 0, one link, no
//! checksum; a directory entry for every component of the target directory (`.extra` mode
//! 0555, the last component the given mode); file entries named `<dir>/<name>` (no leading
//! slash); every header+name and every file body padded with NULs to a multiple of 4 from the
//! archive's start; and a fixed 124-byte trailer whose name size is written `0000000B`.

/// A cpio "newc" header: magic and 13 fields of 8 hex digits.
const HEADER: usize = 6 + 13 * 8;

/// The trailer systemd writes (`pack_cpio_trailer`): note the uppercase `B`, and the four NULs
/// that pad `TRAILER!!!` + NUL to a multiple of 4.
const TRAILER: &[u8; 124] = b"070701\
00000000000000000000000000000000\
00000001\
000000000000000000000000000000000000000000000000\
0000000B\
00000000\
TRAILER!!!\0\0\0\0";

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn header(out: &mut Vec<u8>, inode: u32, mode: u32, size: u32, name_size: u32) {
    out.extend_from_slice(b"070701");
    for field in [inode, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, name_size, 0] {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
}

/// A directory entry (`pack_cpio_dir`).
fn dir(out: &mut Vec<u8>, inode: &mut u32, path: &str, mode: u32) {
    header(out, *inode, mode | S_IFDIR, 0, path.len() as u32 + 1);
    *inode += 1;
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    pad4(out);
}

/// The target directory and its parents (`pack_cpio_prefix`): every component but the last
/// gets mode 0555, the last `mode`.
fn prefix(out: &mut Vec<u8>, inode: &mut u32, path: &str, mode: u32) {
    for (i, _) in path.match_indices('/') {
        if i > 0 {
            dir(out, inode, &path[..i], 0o555);
        }
    }
    dir(out, inode, path, mode);
}

/// A file entry (`pack_cpio_one`).
fn file(out: &mut Vec<u8>, inode: &mut u32, dir: &str, name: &str, data: &[u8], mode: u32) {
    header(out, *inode, mode | S_IFREG, data.len() as u32, (dir.len() + name.len() + 2) as u32);
    *inode += 1;
    out.extend_from_slice(dir.as_bytes());
    out.push(b'/');
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// An archive of `files` (already filtered and sorted) under `dir` (`pack_cpio`,
/// `pack_cpio_literal`). Sizes must fit 32 bits; the caller checks.
pub(crate) fn archive(dir_path: &str, dir_mode: u32, files: &[(&str, &[u8])], file_mode: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(files.iter().map(|(n, d)| HEADER + n.len() + d.len() + 64).sum::<usize>() + 512);
    let mut inode = 1;
    prefix(&mut out, &mut inode, dir_path, dir_mode);
    for (name, data) in files {
        file(&mut out, &mut inode, dir_path, name, data, file_mode);
    }
    out.extend_from_slice(TRAILER);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The os-release archive of the real boot (`testdata/boot/*/initramfs.txt` lists
    /// `/.extra/os-release` with the `.osrel` bytes); the layout written out by hand from
    /// systemd's cpio.c.
    #[test]
    fn literal_archive_layout() {
        let osrel = b"ID=x\n";
        let a = archive(".extra", 0o555, &[("os-release", osrel)], 0o444);
        let mut e = Vec::new();
        e.extend_from_slice(b"070701");
        for f in [1u32, 0o40555, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 0] {
            e.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        e.extend_from_slice(b".extra\0");
        assert_eq!(e.len(), 117);
        e.extend_from_slice(&[0; 3]);
        e.extend_from_slice(b"070701");
        for f in [2u32, 0o100444, 0, 0, 1, 0, 5, 0, 0, 0, 0, 18, 0] {
            e.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        e.extend_from_slice(b".extra/os-release\0");
        assert_eq!(e.len(), 120 + 128);
        e.extend_from_slice(b"ID=x\n\0\0\0");
        e.extend_from_slice(TRAILER);
        assert_eq!(a, e);
        assert_eq!(a.len() % 4, 0);
    }

    #[test]
    fn nested_prefix_gets_parent_directories() {
        let a = archive(".extra/credentials", 0o500, &[("a.cred", b"1"), ("b.cred", b"22")], 0o400);
        let text = String::from_utf8_lossy(&a);
        // .extra (0555), .extra/credentials (0500), then the files with inodes 3 and 4.
        assert!(text.starts_with("070701000000010000416d"), "{text}");
        assert!(text.contains("07070100000002000041400000"), "{text}");
        assert!(text.contains("0707010000000300008100"), "{text}");
        assert!(text.contains(".extra/credentials/a.cred\0"));
        assert!(text.contains("0707010000000400008100"), "{text}");
        assert!(a.ends_with(TRAILER));
        assert_eq!(TRAILER.len(), 124);
    }
}
