//! Where a file's bytes are in a FAT16/FAT32 image: what lets a derived platform's ESP be the
//! base ESP with the UKI's clusters overwritten, instead of a second systemd-repart run.
//!
//! Why that gives mkosi's bytes. mkosi's ESP is systemd-repart's `Format=vfat` + `CopyFiles=`:
//! `mkfs.vfat` with the profile's `Seed=` (volume id, serial) and then `mcopy` of the ESP tree,
//! every file stamped with `SourceDateEpoch=`. None of that looks at a file's content: the
//! volume, the directories, their entries and the cluster each file gets depend on the names,
//! sizes, times and order of the files alone. Two ESPs whose trees differ only in the bytes of
//! one file of the same size are therefore the same image but for that file's data clusters.
//! The derivation uses this only when the derived UKI has exactly the base UKI's size and the
//! clusters found here hold exactly the base UKI (checked); otherwise it runs systemd-repart.
//!
//! The reader follows the on-disk format of Microsoft's "FAT: General Overview of On-Disk
//! Format" (v1.03): the BIOS parameter block, the FAT type from the count of data clusters,
//! 8.3 directory entries (long-name entries are skipped; the names looked up here are 8.3
//! names, which mtools stores in upper case), cluster chains in the FAT. Everything read is
//! bounded by the image: a corrupt image is an error, never a loop or a read past its end.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// A file in a FAT image: its size and the byte ranges of the image that hold it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileExtents {
    pub size: u64,
    /// (offset in the image, length); the lengths add up to `size`.
    pub extents: Vec<(u64, u64)>,
}

/// The geometry of a FAT16/FAT32 volume.
#[derive(Debug)]
struct Volume<'a> {
    image: &'a File,
    image_len: u64,
    cluster_size: u64,
    fat_offset: u64,
    fat32: bool,
    /// FAT16's fixed root directory (offset, bytes); FAT32 has a root cluster instead.
    root_dir: Option<(u64, u64)>,
    root_cluster: u32,
    data_offset: u64,
    clusters: u32,
}

fn le16(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes([b[at], b[at + 1]]) as u64
}

fn le32(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as u64
}

impl<'a> Volume<'a> {
    fn open(image: &'a File) -> Result<Self, String> {
        let image_len = image.metadata().map_err(|e| e.to_string())?.len();
        let mut bs = [0u8; 512];
        image.read_exact_at(&mut bs, 0).map_err(|e| format!("reading the boot sector: {e}"))?;
        if bs[510..512] != [0x55, 0xaa] {
            return Err("no boot sector signature 55 AA".into());
        }
        let bytes_per_sector = le16(&bs, 11);
        let sectors_per_cluster = bs[13] as u64;
        let reserved = le16(&bs, 14);
        let fats = bs[16] as u64;
        let root_entries = le16(&bs, 17);
        let total = match le16(&bs, 19) {
            0 => le32(&bs, 32),
            n => n,
        };
        let fat_sectors = match le16(&bs, 22) {
            0 => le32(&bs, 36),
            n => n,
        };
        if ![512, 1024, 2048, 4096].contains(&bytes_per_sector)
            || !sectors_per_cluster.is_power_of_two()
            || reserved == 0
            || fats == 0
            || fat_sectors == 0
        {
            return Err("not a FAT boot sector".into());
        }
        let root_sectors = (root_entries * 32).div_ceil(bytes_per_sector);
        let data_sector = reserved + fats * fat_sectors + root_sectors;
        if total <= data_sector || total * bytes_per_sector > image_len {
            return Err("the volume's sector counts do not fit the image".into());
        }
        let clusters = (total - data_sector) / sectors_per_cluster;
        // The FAT type is decided by the cluster count alone (General Overview, "FAT Type
        // Determination").
        let fat32 = match clusters {
            0..4085 => return Err("FAT12 volume (not written by systemd-repart for an ESP)".into()),
            4085..65525 => false,
            _ => true,
        };
        let fat_offset = reserved * bytes_per_sector;
        let root_dir_offset = (reserved + fats * fat_sectors) * bytes_per_sector;
        Ok(Self {
            image,
            image_len,
            cluster_size: sectors_per_cluster * bytes_per_sector,
            fat_offset,
            fat32,
            root_dir: (!fat32).then_some((root_dir_offset, root_entries * 32)),
            root_cluster: if fat32 { le32(&bs, 44) as u32 } else { 0 },
            data_offset: data_sector * bytes_per_sector,
            clusters: clusters as u32,
        })
    }

    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        if offset.checked_add(len).is_none_or(|end| end > self.image_len) {
            return Err(format!("{len} bytes at {offset} are past the end of the image"));
        }
        let mut buf = vec![0u8; len as usize];
        self.image.read_exact_at(&mut buf, offset).map_err(|e| e.to_string())?;
        Ok(buf)
    }

    fn cluster_offset(&self, cluster: u32) -> Result<u64, String> {
        if cluster < 2 || cluster - 2 >= self.clusters {
            return Err(format!("cluster {cluster} is outside the volume"));
        }
        Ok(self.data_offset + (cluster as u64 - 2) * self.cluster_size)
    }

    /// The clusters of the chain starting at `first`, at most `limit` of them.
    fn chain(&self, first: u32, limit: u64) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        let mut c = first;
        loop {
            self.cluster_offset(c)?;
            if out.len() as u64 >= limit {
                return Err("a cluster chain is longer than its file (or loops)".into());
            }
            out.push(c);
            let next = if self.fat32 {
                let b = self.read(self.fat_offset + c as u64 * 4, 4)?;
                le32(&b, 0) as u32 & 0x0fff_ffff
            } else {
                let b = self.read(self.fat_offset + c as u64 * 2, 2)?;
                le16(&b, 0) as u32
            };
            let end = if self.fat32 { 0x0fff_fff8 } else { 0xfff8 };
            if next >= end {
                return Ok(out);
            }
            c = next;
        }
    }

    /// The bytes of a directory: FAT16's fixed root, or a cluster chain.
    fn directory(&self, first_cluster: Option<u32>) -> Result<Vec<u8>, String> {
        match (first_cluster, self.root_dir) {
            (None, Some((offset, len))) => self.read(offset, len),
            (c, _) => {
                let c = c.unwrap_or(self.root_cluster);
                let limit = self.image_len / self.cluster_size;
                let mut bytes = Vec::new();
                for cl in self.chain(c, limit)? {
                    bytes.extend(self.read(self.cluster_offset(cl)?, self.cluster_size)?);
                }
                Ok(bytes)
            }
        }
    }
}

/// The 11-byte 8.3 directory name of `name` ("BOOTX64.EFI" → `BOOTX64 EFI`), or None when it
/// is not an 8.3 name.
fn short_name(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || !name.is_ascii() {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.to_ascii_uppercase().as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.to_ascii_uppercase().as_bytes());
    Some(out)
}

/// Where the file at `path` ("EFI/BOOT/BOOTX64.EFI", 8.3 names) is in the FAT image `image`.
pub fn file_extents(image: &File, path: &str) -> Result<FileExtents, String> {
    let vol = Volume::open(image)?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut dir: Option<u32> = None;
    for (i, part) in parts.iter().enumerate() {
        let want = short_name(part).ok_or_else(|| format!("{part}: not an 8.3 name"))?;
        let bytes = vol.directory(dir)?;
        let entry = bytes
            .chunks_exact(32)
            .take_while(|e| e[0] != 0)
            .find(|e| e[0] != 0xe5 && e[11] & 0x0f != 0x0f && e[11] & 0x08 == 0 && e[..11] == want)
            .ok_or_else(|| format!("no {} in the volume", parts[..=i].join("/")))?;
        let first = ((le16(entry, 20) << 16) | le16(entry, 26)) as u32;
        let is_dir = entry[11] & 0x10 != 0;
        if i + 1 < parts.len() {
            if !is_dir {
                return Err(format!("{} is not a directory", parts[..=i].join("/")));
            }
            dir = Some(first);
            continue;
        }
        if is_dir {
            return Err(format!("{path} is a directory"));
        }
        let size = le32(entry, 28);
        if size == 0 {
            return Ok(FileExtents { size, extents: Vec::new() });
        }
        let chain = vol.chain(first, size.div_ceil(vol.cluster_size))?;
        if chain.len() as u64 != size.div_ceil(vol.cluster_size) {
            return Err(format!("{path}: its cluster chain is shorter than its size"));
        }
        let mut extents: Vec<(u64, u64)> = Vec::new();
        let mut left = size;
        for c in chain {
            let (off, len) = (vol.cluster_offset(c)?, left.min(vol.cluster_size));
            left -= len;
            match extents.last_mut() {
                Some((o, l)) if *o + *l == off => *l += len,
                _ => extents.push((off, len)),
            }
        }
        return Ok(FileExtents { size, extents });
    }
    Err("empty path".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn tool(name: &str) -> Command {
        let c = Command::new(name);
        assert!(
            Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap().status.success(),
            "{name} is missing: run make setup"
        );
        c
    }

    /// A FAT image made by mkfs.vfat and filled by mcopy (the tools systemd-repart runs): the
    /// extents found hold the bytes that were copied in, and mtools' own `mtype` reads the same.
    fn check_volume(fat_bits: &str, size_mib: u64) {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("esp.img");
        File::create(&img).unwrap().set_len(size_mib << 20).unwrap();
        let st = tool("mkfs.vfat").args(["-F", fat_bits, "-S", "512", "-s", "8"]).arg(&img).output().unwrap();
        assert!(st.status.success(), "{st:?}");
        let tree = t.path().join("tree");
        std::fs::create_dir_all(tree.join("EFI/BOOT")).unwrap();
        std::fs::create_dir_all(tree.join("loader")).unwrap();
        std::fs::write(tree.join("loader/a.conf"), b"x".repeat(5000)).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(tree.join("EFI/BOOT/BOOTX64.EFI"), &data).unwrap();
        let mcopy = |src: &Path, dest: &str| {
            let st = tool("mcopy").arg("-s").arg("-o").arg("-i").arg(&img).arg(src).arg(dest).output().unwrap();
            assert!(st.status.success(), "{st:?}");
        };
        mcopy(&tree.join("EFI"), "::/");
        mcopy(&tree.join("loader"), "::/");
        let f = File::open(&img).unwrap();
        let got = file_extents(&f, "EFI/BOOT/BOOTX64.EFI").unwrap();
        assert_eq!(got.size, data.len() as u64);
        let mut read = Vec::new();
        for (off, len) in &got.extents {
            let mut b = vec![0u8; *len as usize];
            f.read_exact_at(&mut b, *off).unwrap();
            read.extend(b);
        }
        assert_eq!(read, data, "the extents hold the file mcopy wrote");
        // mtools' reading of the same file agrees.
        let typed = tool("mtype").arg("-i").arg(&img).arg("::/EFI/BOOT/BOOTX64.EFI").output().unwrap();
        assert_eq!(typed.stdout, data);
        assert!(file_extents(&f, "EFI/BOOT/MISSING.EFI").unwrap_err().contains("no EFI/BOOT/MISSING.EFI"));
        assert!(file_extents(&f, "EFI/BOOT").unwrap_err().contains("is a directory"));
    }

    #[test]
    fn finds_a_file_in_fat32() {
        check_volume("32", 300);
    }

    #[test]
    fn finds_a_file_in_fat16() {
        check_volume("16", 32);
    }

    #[test]
    fn rejects_what_is_not_fat() {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("x");
        std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
        assert!(file_extents(&File::open(&img).unwrap(), "A").unwrap_err().contains("55 AA"));
        std::fs::write(&img, b"short").unwrap();
        assert!(file_extents(&File::open(&img).unwrap(), "A").is_err());
    }
}
