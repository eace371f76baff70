//! Just enough GPT to find the partitions of a disk image mkosi (systemd-repart) wrote.
//!
//! Layout from the UEFI Specification 2.10, §5.3.2 "GPT Header" (at LBA 1) and §5.3.3 "GPT
//! Partition Entry Array". GUIDs are stored mixed-endian (§Appendix A): the first three fields
//! little-endian, the last two as bytes. CRCs are not checked here: the image is our own build
//! output, and every partition we use is checked by content afterwards.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{read_err, Error};

/// `EFI PART`, the GPT header signature.
const SIGNATURE: &[u8; 8] = b"EFI PART";

/// Well-known partition type GUIDs (UAPI Discoverable Partitions Specification; UEFI §5.3.3).
pub const TYPE_ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
pub const TYPE_ROOT_X86_64: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
pub const TYPE_ROOT_X86_64_VERITY: &str = "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5";

/// One used entry of the partition array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Index in the entry array (0-based).
    pub index: u32,
    /// Partition type GUID, lowercase 8-4-4-4-12.
    pub type_guid: String,
    /// Unique partition GUID, lowercase 8-4-4-4-12.
    pub uuid: String,
    /// Partition name (UTF-16LE in the entry).
    pub name: String,
    /// Byte offset of the first byte.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Formats a GUID stored mixed-endian as lowercase text.
pub fn guid_string(b: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes_le(*b).to_string()
}

/// Reads the partition table of the disk image at `path` (sector size 512 or 4096).
pub fn read(path: &Path) -> Result<Vec<Partition>, Error> {
    let f = File::open(path).map_err(read_err(path))?;
    let bad = |reason: String| Error::Gpt { path: path.to_path_buf(), reason };
    for sector in [512u64, 4096] {
        let mut hdr = [0u8; 92];
        if f.read_exact_at(&mut hdr, sector).is_err() || &hdr[0..8] != SIGNATURE {
            continue;
        }
        let u32_at = |o: usize| u32::from_le_bytes(hdr[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(hdr[o..o + 8].try_into().unwrap());
        // §5.3.2: PartitionEntryLBA at 72, NumberOfPartitionEntries at 80, SizeOfPartitionEntry at 84.
        let (entries_lba, count, entry_size) = (u64_at(72), u32_at(80), u32_at(84));
        // §5.3.2: SizeOfPartitionEntry is 128 × 2^n; no writer uses more than 4096 entries or
        // entries over 4 KiB, so the array is at most 16 MiB before anything is allocated.
        if !(128..=4096).contains(&entry_size) || !entry_size.is_power_of_two() || count > 4096 {
            return Err(bad(format!(
                "GPT header at byte {sector}: {count} entries of {entry_size} bytes is not plausible"
            )));
        }
        let table_at = entries_lba.checked_mul(sector).ok_or_else(|| {
            bad(format!("GPT header at byte {sector}: partition entry LBA {entries_lba} is past 2^64 bytes"))
        })?;
        let mut table = vec![0u8; count as usize * entry_size as usize];
        f.read_exact_at(&mut table, table_at)
            .map_err(|e| bad(format!("reading the partition entries at byte {table_at}: {e}")))?;
        let mut out = Vec::new();
        for (i, e) in table.chunks_exact(entry_size as usize).enumerate() {
            let type_guid: [u8; 16] = e[0..16].try_into().unwrap();
            if type_guid == [0; 16] {
                continue;
            }
            let first = u64::from_le_bytes(e[32..40].try_into().unwrap());
            let last = u64::from_le_bytes(e[40..48].try_into().unwrap());
            if last < first {
                return Err(bad(format!("partition entry {i}: last LBA {last} before first LBA {first}")));
            }
            let (offset, size) =
                match (first.checked_mul(sector), (last - first).checked_add(1).and_then(|n| n.checked_mul(sector))) {
                    (Some(o), Some(n)) if o.checked_add(n).is_some() => (o, n),
                    _ => {
                        return Err(bad(format!("partition entry {i}: LBAs {first}..={last} are past 2^64 bytes")));
                    }
                };
            let name: Vec<u16> =
                e[56..128].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&c| c != 0).collect();
            out.push(Partition {
                index: i as u32,
                type_guid: guid_string(&type_guid),
                uuid: guid_string(e[16..32].try_into().unwrap()),
                name: String::from_utf16_lossy(&name),
                offset,
                size,
            });
        }
        return Ok(out);
    }
    Err(bad("no GPT header (\"EFI PART\") at byte 512 or 4096".into()))
}

/// The partition UUIDs systemd looks for when the command line says `roothash=HASH` and names
/// no devices: the first 128 bits of the root hash for the data partition, the last 128 bits
/// for the verity partition, as UUID text (systemd's `gpt-auto-generator` /
/// `veritysetup-generator`; systemd-repart writes them so).
pub fn verity_partition_uuids(roothash: &[u8]) -> Option<(String, String)> {
    if roothash.len() < 32 {
        return None;
    }
    let text = |b: &[u8]| uuid::Uuid::from_slice(b).map(|u| u.to_string()).unwrap_or_default();
    Some((text(&roothash[..16]), text(&roothash[roothash.len() - 16..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk with a GPT header at LBA 1 (512-byte sectors) whose fields are `edit`ed.
    fn disk_with(edit: impl Fn(&mut [u8], &mut [u8])) -> tempfile::NamedTempFile {
        let mut disk = vec![0u8; 64 << 10];
        let (head, rest) = disk.split_at_mut(1024);
        let hdr = &mut head[512..];
        hdr[0..8].copy_from_slice(SIGNATURE);
        hdr[72..80].copy_from_slice(&2u64.to_le_bytes());
        hdr[80..84].copy_from_slice(&4u32.to_le_bytes());
        hdr[84..88].copy_from_slice(&128u32.to_le_bytes());
        let entry = &mut rest[..128];
        entry[0..16].copy_from_slice(&[1; 16]);
        entry[32..40].copy_from_slice(&34u64.to_le_bytes());
        entry[40..48].copy_from_slice(&40u64.to_le_bytes());
        edit(hdr, rest);
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), &disk).unwrap();
        f
    }

    #[test]
    fn hostile_headers_are_refused_before_allocating_or_overflowing() {
        let ok = disk_with(|_, _| {});
        let parts = read(ok.path()).unwrap();
        assert_eq!((parts.len(), parts[0].offset, parts[0].size), (1, 34 * 512, 7 * 512));
        for (what, edit, want) in [
            (
                "a 4 GiB entry size",
                Box::new(|h: &mut [u8], _: &mut [u8]| h[84..88].copy_from_slice(&u32::MAX.to_le_bytes()))
                    as Box<dyn Fn(&mut [u8], &mut [u8])>,
                "is not plausible",
            ),
            (
                "an entry size not 128 x 2^n",
                Box::new(|h, _| h[84..88].copy_from_slice(&200u32.to_le_bytes())),
                "is not plausible",
            ),
            (
                "entries at LBA 2^62",
                Box::new(|h, _| h[72..80].copy_from_slice(&(1u64 << 62).to_le_bytes())),
                "past 2^64 bytes",
            ),
            (
                "a partition ending past 2^64",
                Box::new(|_, e| e[40..48].copy_from_slice(&(u64::MAX / 2).to_le_bytes())),
                "past 2^64 bytes",
            ),
        ] {
            let f = disk_with(edit);
            let err = read(f.path()).unwrap_err().to_string();
            assert!(err.contains(want), "{what}: {err}");
        }
    }

    #[test]
    fn guid_is_mixed_endian() {
        // The ESP type GUID as stored on disk (UEFI §5.3.3 table 5-9).
        let stored = [0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b];
        assert_eq!(guid_string(&stored), TYPE_ESP);
    }

    #[test]
    fn reads_a_table_written_by_sfdisk() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        File::create(&img).unwrap().set_len(8 << 20).unwrap();
        let script = "label: gpt\nlabel-id: 6E6F6465-696D-6700-0000-000000000001\n\
            start=2048, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=6E6F6465-696D-6700-0000-000000000002, name=\"esp\"\n\
            start=6144, size=2048, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=01020304-0506-0708-090A-0B0C0D0E0F10, name=\"root\"\n";
        let mut child = std::process::Command::new("sfdisk")
            .arg("-q")
            .arg(&img)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sfdisk (util-linux fdisk) must be installed: run `make setup`");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
        let parts = read(&img).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].type_guid.as_str(), parts[0].uuid.as_str(), parts[0].name.as_str()),
            (TYPE_ESP, "6e6f6465-696d-6700-0000-000000000002", "esp")
        );
        assert_eq!((parts[0].offset, parts[0].size), (2048 * 512, 4096 * 512));
        assert_eq!(
            (parts[1].type_guid.as_str(), parts[1].uuid.as_str(), parts[1].offset),
            (TYPE_ROOT_X86_64, "01020304-0506-0708-090a-0b0c0d0e0f10", 6144 * 512)
        );
        std::fs::write(&img, vec![0u8; 4096]).unwrap();
        assert!(read(&img).unwrap_err().to_string().contains("no GPT header"));
    }

    #[test]
    fn verity_uuids_split_the_root_hash() {
        let h = hex::decode("00112233445566778899aabbccddeeff0102030405060708090a0b0c0d0e0f10").unwrap();
        let (data, hash) = verity_partition_uuids(&h).unwrap();
        assert_eq!(data, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(hash, "01020304-0506-0708-090a-0b0c0d0e0f10");
    }
}
