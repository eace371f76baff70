//! The partitions of a disk image mkosi (systemd-repart) wrote, through the workspace's one GPT
//! reader (the `gpt` crate: edk2's header checks, checked arithmetic, bounded reads). CRCs are
//! not checked: every partition nodeimg uses is checked by content afterwards.

use std::fs::File;
use std::path::Path;

pub use ::gpt::Partition;
use uuid::Uuid;

use crate::{read_err, Error};

/// Well-known partition type GUIDs (UAPI Discoverable Partitions Specification; UEFI §5.3.3).
pub const TYPE_ESP: Uuid = Uuid::from_u128(0xc12a7328_f81f_11d2_ba4b_00a0c93ec93b);
/// The x86-64 root partition.
pub const TYPE_ROOT_X86_64: Uuid = Uuid::from_u128(0x4f68bce3_e8cd_4db1_96e7_fbcaf984b709);
/// The x86-64 root partition's dm-verity hash partition.
pub const TYPE_ROOT_X86_64_VERITY: Uuid = Uuid::from_u128(0x2c7357ed_ebd2_46d9_aec1_23d437ec2bf5);

/// Reads the partition table of the disk image at `path` (sector size 512 or 4096).
pub fn read(path: &Path) -> Result<Vec<Partition>, Error> {
    let f = File::open(path).map_err(read_err(path))?;
    ::gpt::Gpt::read_any(&f)
        .and_then(|g| g.partitions())
        .map_err(|error| Error::GptRead { path: path.to_path_buf(), error })
}

/// The partition UUIDs systemd looks for when the command line says `roothash=HASH` and names
/// no devices: the first 128 bits of the root hash for the data partition, the last 128 bits
/// for the verity partition, as UUID text (systemd's `gpt-auto-generator` /
/// `veritysetup-generator`; systemd-repart writes them so).
pub fn verity_partition_uuids(roothash: &[u8]) -> Option<(String, String)> {
    if roothash.len() < 32 {
        return None;
    }
    let text = |b: &[u8]| Uuid::from_slice(b).map(|u| u.to_string()).unwrap_or_default();
    Some((text(&roothash[..16]), text(&roothash[roothash.len() - 16..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_is_mixed_endian() {
        // The ESP type GUID as stored on disk (UEFI §5.3.3 table 5-9).
        let stored = [0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b];
        assert_eq!(Uuid::from_bytes_le(stored), TYPE_ESP);
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
            (parts[0].type_guid, parts[0].uuid.to_string().as_str(), parts[0].name.as_str()),
            (TYPE_ESP, "6e6f6465-696d-6700-0000-000000000002", "esp")
        );
        assert_eq!((parts[0].offset, parts[0].size), (2048 * 512, 4096 * 512));
        assert_eq!(
            (parts[1].type_guid, parts[1].uuid.to_string().as_str(), parts[1].offset),
            (TYPE_ROOT_X86_64, "01020304-0506-0708-090a-0b0c0d0e0f10", 6144 * 512)
        );
        std::fs::write(&img, vec![0u8; 4096]).unwrap();
        let err = read(&img).unwrap_err();
        let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert!(matches!(err, Error::GptRead { .. }) && cause.contains("no \"EFI PART\" signature"), "{err:?}");
    }

    #[test]
    fn verity_uuids_split_the_root_hash() {
        let h = hex::decode("00112233445566778899aabbccddeeff0102030405060708090a0b0c0d0e0f10").unwrap();
        let (data, hash) = verity_partition_uuids(&h).unwrap();
        assert_eq!(data, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(hash, "01020304-0506-0708-090a-0b0c0d0e0f10");
    }
}
