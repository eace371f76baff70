//! The GUIDed table at the end of an OVMF image, through which a VMM finds what it must know
//! before the first guest instruction runs.
//!
//! OVMF's reset vector ends with a small table of `{data, u16 length, GUID}` entries read
//! *backwards* from a footer entry that sits 0x30 bytes before the end of the image (just below
//! the x86 reset vector at 0xFFFF_FFF0). QEMU, the cloud VMMs and both SEV-SNP and TDX launch
//! flows use it to locate the SEV metadata, the SEV-ES AP reset address, the kernel-hashes table
//! and the TDX metadata. Its layout is defined by edk2's
//! `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm` and parsed by QEMU's
//! `hw/i386/pc_sysfw_ovmf.c`.
//!
//! The parser is permissive about *contents* (entries with GUIDs it does not know are kept and
//! can be reported) and strict about *structure* (an entry that does not fit is an error naming
//! its offset).

/// An EFI GUID: the `uuid` crate's type, the workspace's one GUID type. Firmware stores a GUID
/// mixed-endian (the first three fields little-endian, UEFI 2.10 Appendix A): read one with
/// [`guid_at`], write one with [`Uuid::to_bytes_le`]; constants come from [`Uuid::from_fields`]
/// with the fields of the registry form.
pub use uuid::Uuid;

/// The GUID stored at `b[at..at + 16]` (the caller has checked the bounds).
pub fn guid_at(b: &[u8], at: usize) -> Uuid {
    Uuid::from_bytes_le(b[at..at + 16].try_into().expect("16 bytes"))
}

/// `96b582de-1fb2-45f7-baea-a366c55a082d`: marks the footer entry that closes the table
/// (edk2 `ResetVectorVtf0.asm`, `OvmfTableFooterGuid`).
pub const FOOTER_GUID: Uuid =
    Uuid::from_fields(0x96b5_82de, 0x1fb2, 0x45f7, &[0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d]);
/// `00f771de-1a7e-4fcb-890e-68c77e2fb44e`: the SEV-ES AP reset block; its first `u32` is the
/// reset address of application processors (edk2 `SEV_ES_AP_RESET_IP`).
pub const SEV_ES_RESET_BLOCK_GUID: Uuid =
    Uuid::from_fields(0x00f7_71de, 0x1a7e, 0x4fcb, &[0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e]);
/// `4c2eb361-7d9b-4cc3-8081-127c90d3d294`: where a SEV (not SNP) launch secret is injected
/// (`u32` GPA, `u32` size).
pub const SEV_SECRET_BLOCK_GUID: Uuid =
    Uuid::from_fields(0x4c2e_b361, 0x7d9b, 0x4cc3, &[0x80, 0x81, 0x12, 0x7c, 0x90, 0xd3, 0xd2, 0x94]);
/// `7255371f-3a3b-4b04-927b-1da6efa8d454`: where QEMU places the SEV kernel/initrd/cmdline
/// hashes table for measured direct boot (`u32` GPA, `u32` size; zero when unsupported).
pub const SEV_HASH_TABLE_RV_GUID: Uuid =
    Uuid::from_fields(0x7255_371f, 0x3a3b, 0x4b04, &[0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54]);
/// `dc886566-984a-4798-a75e-5585a7bf67cc`: a `u32` offset from the end of the image to the SEV
/// metadata (`OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm`).
pub const SEV_METADATA_GUID: Uuid =
    Uuid::from_fields(0xdc88_6566, 0x984a, 0x4798, &[0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc]);
/// `e47a6535-984a-4798-865e-4685a7bf8ec2`: a `u32` offset from the end of the image to the TDX
/// (TDVF) metadata descriptor (`OvmfPkg/ResetVector/X64/IntelTdxMetadata.asm`).
pub const TDX_METADATA_OFFSET_GUID: Uuid =
    Uuid::from_fields(0xe47a_6535, 0x984a, 0x4798, &[0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2]);
/// `a789a612-0597-4c4b-a49f-cbb1fe9d1ddd`: the Coconut-SVSM information block.
pub const SVSM_INFO_GUID: Uuid =
    Uuid::from_fields(0xa789_a612, 0x0597, 0x4c4b, &[0xa4, 0x9f, 0xcb, 0xb1, 0xfe, 0x9d, 0x1d, 0xdd]);

/// A name for the table GUIDs this crate knows, for reports.
pub fn guid_name(guid: &Uuid) -> Option<&'static str> {
    Some(match *guid {
        SEV_ES_RESET_BLOCK_GUID => "SEV_ES_RESET_BLOCK",
        SEV_SECRET_BLOCK_GUID => "SEV_SECRET_BLOCK",
        SEV_HASH_TABLE_RV_GUID => "SEV_HASH_TABLE_RV",
        SEV_METADATA_GUID => "SEV_METADATA",
        TDX_METADATA_OFFSET_GUID => "TDX_METADATA_OFFSET",
        SVSM_INFO_GUID => "SVSM_INFO",
        _ => return None,
    })
}

/// The footer entry ends this many bytes before the end of the image (its GUID occupies
/// `[len-0x30, len-0x20)`; the reset vector and padding follow).
pub const FOOTER_END_FROM_IMAGE_END: usize = 0x20;
/// The `{u16 length, GUID}` header that follows every entry's data.
pub const ENTRY_HEADER_LEN: usize = 2 + 16;

/// A structural fault in the footer table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The image cannot even hold the footer entry.
    #[error("firmware is {len} bytes, too small to hold an OVMF footer table")]
    TooSmall {
        /// Length of the image.
        len: usize,
    },
    /// No footer GUID where OVMF puts it: not an OVMF image with a reset-vector table.
    #[error(
        "no OVMF footer table: expected GUID {FOOTER_GUID} at offset {offset:#x}, found {found} \
         (is this an OVMF image built with SEV or TDX support?)"
    )]
    NoFooter {
        /// File offset where the footer GUID belongs.
        offset: usize,
        /// What is there instead.
        found: Uuid,
    },
    /// The footer's total length does not fit the image.
    #[error("OVMF footer table length {len} (at offset {offset:#x}) is out of range")]
    BadTableLength {
        /// File offset of the footer entry's length field.
        offset: usize,
        /// The length it gives.
        len: u16,
    },
    /// An entry's length does not fit what remains of the table.
    #[error(
        "OVMF footer table entry {guid} (header at offset {offset:#x}) has length {len}, \
         which does not fit the table"
    )]
    BadEntryLength {
        /// File offset of the entry's length field.
        offset: usize,
        /// The entry's GUID.
        guid: Uuid,
        /// The length it gives.
        len: u16,
    },
}

/// One entry of the footer table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// The entry's GUID.
    pub guid: Uuid,
    /// File offset of the entry's data.
    pub offset: usize,
    /// The entry's data (its length minus the 18-byte header).
    pub data: Vec<u8>,
}

impl TableEntry {
    /// The first little-endian `u32` of the data, which is what most entries hold.
    pub fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.data.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The parsed footer table, entries in the order a VMM walks them (from the footer backwards).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FooterTable {
    /// The entries, nearest to the footer first.
    pub entries: Vec<TableEntry>,
}

impl FooterTable {
    /// Parses the table at the end of `image`.
    pub fn parse(image: &[u8]) -> Result<Self, TableError> {
        let len = image.len();
        if len < FOOTER_END_FROM_IMAGE_END + ENTRY_HEADER_LEN {
            return Err(TableError::TooSmall { len });
        }
        let footer = len - FOOTER_END_FROM_IMAGE_END - ENTRY_HEADER_LEN;
        let found = guid_at(image, footer + 2);
        if found != FOOTER_GUID {
            return Err(TableError::NoFooter { offset: footer + 2, found });
        }
        let table_len = u16_at(image, footer);
        // The footer's length covers the whole table including the footer entry itself.
        let Some(body_len) = (table_len as usize).checked_sub(ENTRY_HEADER_LEN) else {
            return Err(TableError::BadTableLength { offset: footer, len: table_len });
        };
        if body_len > footer {
            return Err(TableError::BadTableLength { offset: footer, len: table_len });
        }
        let start = footer - body_len;
        let mut end = footer;
        let mut entries = Vec::new();
        while end - start >= ENTRY_HEADER_LEN {
            let header = end - ENTRY_HEADER_LEN;
            let guid = guid_at(image, header + 2);
            let entry_len = u16_at(image, header);
            let n = entry_len as usize;
            if n < ENTRY_HEADER_LEN || n > end - start {
                return Err(TableError::BadEntryLength { offset: header, guid, len: entry_len });
            }
            let data_start = end - n;
            entries.push(TableEntry { guid, offset: data_start, data: image[data_start..header].to_vec() });
            end = data_start;
        }
        Ok(FooterTable { entries })
    }

    /// The first entry with `guid`, as QEMU's `pc_system_ovmf_table_find` returns it.
    pub fn get(&self, guid: &Uuid) -> Option<&TableEntry> {
        self.entries.iter().find(|e| e.guid == *guid)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Little-endian `u32` at `at`, or `None` past the end.
pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Little-endian `u64` at `at`, or `None` past the end.
pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an image of `size` bytes whose footer table holds `entries` (first = nearest the
    /// footer), the way edk2 lays it out.
    pub(crate) fn image_with_table(size: usize, entries: &[(Uuid, Vec<u8>)]) -> Vec<u8> {
        let mut table = Vec::new();
        for (guid, data) in entries.iter().rev() {
            table.extend_from_slice(data);
            table.extend_from_slice(&((data.len() + ENTRY_HEADER_LEN) as u16).to_le_bytes());
            table.extend_from_slice(&guid.to_bytes_le());
        }
        table.extend_from_slice(&((table.len() + ENTRY_HEADER_LEN) as u16).to_le_bytes());
        table.extend_from_slice(&FOOTER_GUID.to_bytes_le());
        let mut img = vec![0u8; size];
        let end = size - FOOTER_END_FROM_IMAGE_END;
        img[end - table.len()..end].copy_from_slice(&table);
        img
    }

    #[test]
    fn guid_text_form() {
        assert_eq!(FOOTER_GUID.to_string(), "96b582de-1fb2-45f7-baea-a366c55a082d");
        assert_eq!(TDX_METADATA_OFFSET_GUID.to_string(), "e47a6535-984a-4798-865e-4685a7bf8ec2");
        assert_eq!(&FOOTER_GUID.to_bytes_le()[..4], &[0xde, 0x82, 0xb5, 0x96]);
    }

    #[test]
    fn parses_entries_backwards() {
        let img = image_with_table(
            4096,
            &[(SEV_ES_RESET_BLOCK_GUID, vec![4, 0xb0, 0x80, 0]), (SEV_METADATA_GUID, vec![1, 2, 3, 4])],
        );
        let t = FooterTable::parse(&img).unwrap();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[0].guid, SEV_ES_RESET_BLOCK_GUID);
        assert_eq!(t.get(&SEV_ES_RESET_BLOCK_GUID).unwrap().u32_at(0), Some(0x0080_b004));
        assert_eq!(t.get(&SEV_METADATA_GUID).unwrap().data, vec![1, 2, 3, 4]);
        assert!(t.get(&TDX_METADATA_OFFSET_GUID).is_none());
    }

    #[test]
    fn shared_vector_table() {
        let img = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ovmf_AmdSev_suffix.bin")).unwrap();
        let t = FooterTable::parse(&img).unwrap();
        let names: Vec<_> = t.entries.iter().map(|e| guid_name(&e.guid).unwrap()).collect();
        assert_eq!(
            names,
            ["SEV_ES_RESET_BLOCK", "SEV_SECRET_BLOCK", "SEV_HASH_TABLE_RV", "SEV_METADATA", "TDX_METADATA_OFFSET"]
        );
        assert_eq!(t.get(&SEV_HASH_TABLE_RV_GUID).unwrap().u32_at(0), Some(0x0081_0c00));
    }

    #[test]
    fn structural_faults_name_the_offset() {
        assert_eq!(FooterTable::parse(&[0; 10]), Err(TableError::TooSmall { len: 10 }));
        let img = vec![0u8; 4096];
        assert_eq!(FooterTable::parse(&img), Err(TableError::NoFooter { offset: 4096 - 0x30, found: Uuid::nil() }));

        let mut img = image_with_table(4096, &[(SEV_METADATA_GUID, vec![1, 2, 3, 4])]);
        let footer_len_at = 4096 - 0x32;
        img[footer_len_at] = 17; // shorter than the footer entry itself
        assert_eq!(FooterTable::parse(&img), Err(TableError::BadTableLength { offset: footer_len_at, len: 17 }));

        let mut img = image_with_table(4096, &[(SEV_METADATA_GUID, vec![1, 2, 3, 4])]);
        let entry_len_at = footer_len_at - ENTRY_HEADER_LEN;
        img[entry_len_at] = 0xff; // longer than the table
        assert_eq!(
            FooterTable::parse(&img),
            Err(TableError::BadEntryLength { offset: entry_len_at, guid: SEV_METADATA_GUID, len: 0xff })
        );
    }
}
