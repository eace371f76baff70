//! The GUID Partition Table of a disk image: one reader for every crate that needs one.
//!
//! Two crates read GPTs, for different reasons: `builder` finds the partitions of the disk image
//! mkosi (systemd-repart) wrote, to check and derive them; `measure` predicts PCR 5, whose
//! `EV_EFI_GPT_EVENT` carries the header and every used entry exactly as the firmware read them
//! (edk2 `Tcg2MeasureGptTable`). Both read the same structures from untrusted bytes, so they read
//! them here, once, with the checks edk2 applies before it measures a table
//! (`Tpm2SanitizeEfiPartitionTableHeader`) and checked arithmetic for every position.
//!
//! Layout from the UEFI Specification 2.10, §5.3.2 "GPT Header" (at LBA 1) and §5.3.3 "GPT
//! Partition Entry Array". GUIDs are stored mixed-endian (§Appendix A). CRCs are not checked:
//! edk2 measures a table whatever its CRC says, and `builder` checks every partition it uses by
//! content afterwards.

use uuid::Uuid;

/// `EFI PART`, the header signature.
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The bytes of a revision 1.0 header (`HeaderSize` may declare more; the rest is reserved).
pub const HEADER_LEN: usize = 92;
/// The most bytes a partition entry array may take (4096 entries of 4 KiB): a bound on what a
/// header can make a reader allocate.
pub const MAX_ENTRY_ARRAY: u64 = 16 << 20;

/// Where a disk image's bytes come from: a file (read at offsets) or bytes in memory.
pub trait ReadAt {
    /// Fills `buf` from byte `offset`, or fails if the image ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).ok();
        let src = start.and_then(|s| self.get(s..s.checked_add(buf.len())?));
        match src {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// Why a disk image's GPT cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GptError {
    /// Nothing at LBA 1, or no signature there.
    #[error("no GPT header (\"EFI PART\") at byte {offset:#x}")]
    NoHeader {
        /// Where the header belongs (the sector size).
        offset: u64,
    },
    /// A header edk2 would not measure, or one no writer makes.
    #[error("the GPT header at byte {offset:#x}: {reason}")]
    BadHeader {
        /// The header's offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The partition entries lie past the end of the image.
    #[error("the GPT partition entries {start:#x}..{end:#x} lie past the end of the disk image")]
    EntriesTruncated {
        /// First byte (`u64::MAX`: past 2^64).
        start: u64,
        /// End.
        end: u64,
    },
    /// An entry's blocks cannot be a partition.
    #[error("partition entry {index}: {reason}")]
    BadEntry {
        /// Index in the entry array.
        index: u32,
        /// What is wrong.
        reason: String,
    },
}

/// One used entry of the partition array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Index in the entry array (0-based).
    pub index: u32,
    /// Partition type GUID.
    pub type_guid: Uuid,
    /// Unique partition GUID.
    pub uuid: Uuid,
    /// Partition name (UTF-16LE in the entry, up to its first NUL).
    pub name: String,
    /// Byte offset of the first byte.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A used entry of the partition array, as stored (what the firmware measures, whatever its
/// blocks say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Index in the entry array (0-based).
    pub index: u32,
    /// `SizeOfPartitionEntry` bytes.
    pub bytes: Vec<u8>,
}

/// A disk image's GPT: the header and the used entries, in table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// The sector size it was read with.
    pub sector: u64,
    /// The first [`HEADER_LEN`] bytes of the header, as stored.
    pub header: [u8; HEADER_LEN],
    /// The used entries (partition type not zero), in table order.
    pub entries: Vec<RawEntry>,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

impl Gpt {
    /// Reads the GPT of a disk with `sector`-byte blocks (the header is at LBA 1).
    pub fn read(disk: &(impl ReadAt + ?Sized), sector: u64) -> Result<Gpt, GptError> {
        let at = sector;
        let mut header = [0u8; HEADER_LEN];
        if disk.read_exact_at(&mut header, at).is_err() || &header[0..8] != SIGNATURE {
            return Err(GptError::NoHeader { offset: at });
        }
        let bad = |reason: String| GptError::BadHeader { offset: at, reason };
        if u32_at(&header, 8) != 0x0001_0000 {
            return Err(bad(format!("revision {:#x}, not 1.0", u32_at(&header, 8))));
        }
        let header_size = u64::from(u32_at(&header, 12));
        if header_size < HEADER_LEN as u64 || header_size > sector {
            return Err(bad(format!(
                "HeaderSize {header_size} is not between {HEADER_LEN} and the block size {sector}"
            )));
        }
        let (first_usable, entry_lba) = (u64_at(&header, 40), u64_at(&header, 72));
        if first_usable <= entry_lba {
            return Err(bad(format!("PartitionEntryLBA {entry_lba} is not below FirstUsableLBA {first_usable}")));
        }
        let (count, size) = (u32_at(&header, 80), u32_at(&header, 84));
        if count == 0 {
            return Err(bad("NumberOfPartitionEntries is 0".into()));
        }
        if size < 128 || !size.is_power_of_two() {
            return Err(bad(format!("SizeOfPartitionEntry {size} is not 128 × 2^n")));
        }
        let total = u64::from(count) * u64::from(size);
        if total > MAX_ENTRY_ARRAY {
            return Err(bad(format!(
                "{count} entries of {size} bytes ({total} bytes) is more than any partition table holds"
            )));
        }
        let start = entry_lba.checked_mul(sector);
        let end = start.and_then(|s| s.checked_add(total));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(GptError::EntriesTruncated { start: start.unwrap_or(u64::MAX), end: u64::MAX });
        };
        let mut table = vec![0u8; total as usize];
        disk.read_exact_at(&mut table, start).map_err(|_| GptError::EntriesTruncated { start, end })?;
        let entries = table
            .chunks_exact(size as usize)
            .enumerate()
            .filter(|(_, e)| e[..16].iter().any(|b| *b != 0))
            .map(|(i, e)| RawEntry { index: i as u32, bytes: e.to_vec() })
            .collect();
        Ok(Gpt { sector, header, entries })
    }

    /// The used entries as partitions: each entry's blocks must make a partition that fits 2^64
    /// bytes.
    pub fn partitions(&self) -> Result<Vec<Partition>, GptError> {
        let sector = self.sector;
        let mut partitions = Vec::new();
        for RawEntry { index, bytes: e } in &self.entries {
            let index = *index;
            let (first, last) = (u64_at(e, 32), u64_at(e, 40));
            let bad_entry = |reason: String| GptError::BadEntry { index, reason };
            if last < first {
                return Err(bad_entry(format!("last LBA {last} before first LBA {first}")));
            }
            let offset = first.checked_mul(sector);
            let size = (last - first).checked_add(1).and_then(|n| n.checked_mul(sector));
            let (offset, size) = match (offset, size) {
                (Some(o), Some(n)) if o.checked_add(n).is_some() => (o, n),
                _ => return Err(bad_entry(format!("LBAs {first}..={last} are past 2^64 bytes"))),
            };
            let name: Vec<u16> =
                e[56..128].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&c| c != 0).collect();
            partitions.push(Partition {
                index,
                type_guid: Uuid::from_bytes_le(e[0..16].try_into().expect("16 bytes")),
                uuid: Uuid::from_bytes_le(e[16..32].try_into().expect("16 bytes")),
                name: String::from_utf16_lossy(&name),
                offset,
                size,
            });
        }
        Ok(partitions)
    }

    /// Reads the GPT with 512-byte sectors, else 4096-byte ones.
    pub fn read_any(disk: &(impl ReadAt + ?Sized)) -> Result<Gpt, GptError> {
        match Gpt::read(disk, 512) {
            Err(GptError::NoHeader { .. }) => Gpt::read(disk, 4096).map_err(|e| match e {
                GptError::NoHeader { .. } => {
                    GptError::BadHeader { offset: 512, reason: "no \"EFI PART\" signature at byte 512 or 4096".into() }
                }
                e => e,
            }),
            r => r,
        }
    }

    /// `UEFI_GPT_DATA` as edk2's `Tcg2MeasureGptTable` builds it: the header, the number of
    /// used entries (u64), and each used entry as stored, in table order.
    pub fn event_data(&self) -> Vec<u8> {
        let mut data = self.header.to_vec();
        data.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            data.extend_from_slice(&e.bytes);
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk with a valid header at LBA 1 (512-byte sectors) and one entry, then `edit`ed.
    fn disk(edit: impl Fn(&mut [u8])) -> Vec<u8> {
        let mut d = vec![0u8; 64 << 10];
        let h = &mut d[512..512 + HEADER_LEN];
        h[0..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&4u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        let e = &mut d[1024..1152];
        e[0..16].copy_from_slice(&[1; 16]);
        e[32..40].copy_from_slice(&34u64.to_le_bytes());
        e[40..48].copy_from_slice(&40u64.to_le_bytes());
        e[56..58].copy_from_slice(&(b'x' as u16).to_le_bytes());
        edit(&mut d);
        d
    }

    /// `UEFI_GPT_DATA` (edk2 `Tcg2MeasureGptTable`): the header, the count of used entries, and
    /// the used entries as stored, in table order, skipping empty ones.
    #[test]
    fn event_data_keeps_the_used_entries_in_order() {
        let d = disk(|d| {
            d[1024 + 128..1024 + 128 + 16].copy_from_slice(&[0; 16]);
            d[1024 + 256..1024 + 256 + 16].copy_from_slice(&[2; 16]);
            d[1024 + 256 + 32..1024 + 256 + 48].copy_from_slice(&[0; 16]); // blocks 0..=0
        });
        let data = Gpt::read(d.as_slice(), 512).unwrap().event_data();
        assert_eq!(data.len(), HEADER_LEN + 8 + 2 * 128);
        assert_eq!(&data[..8], SIGNATURE);
        assert_eq!(&data[92..100], &2u64.to_le_bytes());
        assert_eq!((data[100], data[228]), (1, 2));
    }

    #[test]
    fn reads_the_used_entries() {
        let g = Gpt::read_any(disk(|_| {}).as_slice()).unwrap();
        let partitions = g.partitions().unwrap();
        assert_eq!(partitions.len(), 1);
        let p = &partitions[0];
        assert_eq!((p.index, p.offset, p.size, p.name.as_str()), (0, 34 * 512, 7 * 512, "x"));
        assert_eq!(g.event_data().len(), HEADER_LEN + 8 + 128);
    }

    #[test]
    fn bad_tables_are_errors_that_say_why() {
        type Case = (&'static str, fn(&mut [u8]), &'static str);
        let cases: &[Case] = &[
            ("no signature", |d| d[512] = 0, "no \"EFI PART\" signature at byte 512 or 4096"),
            ("entry size", |d| d[512 + 84] = 100, "SizeOfPartitionEntry 100"),
            ("huge array", |d| d[512 + 83] = 0x7f, "more than any partition table holds"),
            (
                "entries past the end",
                |d| {
                    d[512 + 40] = 250;
                    d[512 + 72] = 200;
                },
                "past the end of the disk image",
            ),
            ("entries below first usable", |d| d[512 + 72] = 40, "PartitionEntryLBA 40 is not below FirstUsableLBA 34"),
            (
                "entry position past 2^64",
                |d| {
                    d[512 + 40..512 + 48].copy_from_slice(&u64::MAX.to_le_bytes());
                    d[512 + 72..512 + 80].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
                },
                "entries 0xffffffffffffffff",
            ),
            ("last before first", |d| d[1024 + 40] = 1, "last LBA 1 before first LBA 34"),
            ("blocks past 2^64", |d| d[1024 + 47] = 0xff, "past 2^64 bytes"),
        ];
        for (name, edit, want) in cases {
            let err = Gpt::read_any(disk(edit).as_slice()).and_then(|g| g.partitions()).unwrap_err().to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
    }
}
