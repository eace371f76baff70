//! Intel TDX: MRTD, the build-time measurement of a trust domain, from the TDVF metadata of
//! its firmware.
//!
//! Before a TD runs, the VMM copies the firmware into private memory with the TDX module's
//! `TDH.MEM.PAGE.ADD` and, for the ranges the firmware asks for, `TDH.MR.EXTEND`s their
//! contents 256 bytes at a time. The TDX module folds every one of those calls into a single
//! SHA-384 stream that it finalizes as MRTD, which then appears in every TD quote. Which pages
//! are added and which are extended is not up to the VMM: the firmware lists them in its TDVF
//! metadata (Intel TDX Virtual Firmware Design Guide, §11 "TDVF Metadata"; edk2
//! `OvmfPkg/ResetVector/X64/IntelTdxMetadata.asm`), found through the OVMF footer table.
//!
//! What goes into the stream per call (Intel TDX Module Base Architecture Specification,
//! `TDH.MEM.PAGE.ADD` and `TDH.MR.EXTEND`): a 128-byte block holding the ASCII name of the
//! operation (`MEM.PAGE.ADD` / `MR.EXTEND`, zero-padded to 16 bytes) and the GPA (`u64` at
//! byte 16); for `MR.EXTEND` followed by the 256 bytes of memory. Only the *order* of calls
//! depends on the VMM, which is why [`PageAddOrder`] exists:
//!
//! - [`PageAddOrder::SinglePass`] (the default): for each page, add it, then extend its 16
//!   chunks. This is what upstream Linux KVM's `KVM_TDX_INIT_MEM_REGION` does (and so the
//!   upstream QEMU that drives it), and Google Cloud.
//! - [`PageAddOrder::TwoPass`]: for each section, add all its pages, then extend them all — the
//!   order of the older out-of-tree QEMU/KVM TDX patches some stacks still run.
//!
//! Sections marked `PAGE_AUG` are accepted by the guest later and never measured; sections
//! whose contents the VMM writes at launch (the TD HOB) cannot be predicted from the firmware
//! alone and are refused if the metadata asks to extend them.

use digest_alg::Sha384Blocks;
use serde::Serialize;

use crate::ovmf::{le_u32, le_u64, FooterTable, TableError, Uuid, TDX_METADATA_OFFSET_GUID};

/// Size of MRTD (SHA-384).
pub const DIGEST_LEN: usize = 48;
/// TDX page size.
pub const PAGE_SIZE: u64 = 4096;
/// Granularity of `TDH.MR.EXTEND`.
pub const EXTEND_CHUNK: usize = 256;
/// Size of the block each operation contributes before any data.
pub const OP_BLOCK: usize = 128;

/// `"TDVF"`: the descriptor signature.
pub const SIGNATURE: [u8; 4] = *b"TDVF";
/// `e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae`: the GUID edk2 and td-shim put right before the
/// descriptor (checked by td-shim's tools, not by QEMU; its absence is only reported).
pub const TDX_METADATA_GUID: Uuid =
    Uuid::from_fields(0xe9ea_f9f3, 0x168e, 0x44d5, &[0xa8, 0xeb, 0x7f, 0x4d, 0x87, 0x38, 0xf6, 0xae]);
/// Descriptor: signature, length, version, number of sections (4 × `u32`).
pub const DESCRIPTOR_LEN: usize = 16;
/// One section entry: data offset, raw size (`u32`), address, memory size (`u64`), type,
/// attributes (`u32`).
pub const SECTION_LEN: usize = 32;

/// The largest section this crate accepts: TDVF sections are firmware volumes and scratch
/// memory below 4 GiB; a larger one is a corrupt entry, not something to hash for minutes.
pub const MAX_SECTION: u64 = 1 << 32;

/// Attribute bit 0: extend the section's contents into MRTD (`TDH.MR.EXTEND`).
pub const ATTR_MR_EXTEND: u32 = 1 << 0;
/// Attribute bit 1: the section is added with `TDH.MEM.PAGE.AUG` after launch, not measured.
pub const ATTR_PAGE_AUG: u32 = 1 << 1;

/// What a section is (TDVF Design Guide Table 11-2, td-shim `TDX_METADATA_SECTION_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionType {
    /// 0: the boot firmware volume (code), copied from the image.
    Bfv,
    /// 1: the configuration firmware volume (UEFI variables), copied from the image.
    Cfv,
    /// 2: the TD HOB, written by the VMM (memory map).
    TdHob,
    /// 3: temporary memory, zero.
    TempMem,
    /// 4: permanent memory.
    PermMem,
    /// 5: a payload (td-shim kernel), copied from the image.
    Payload,
    /// 6: payload parameters, written by the VMM.
    PayloadParam,
    /// 7: td-shim TD_INFO.
    TdInfo,
    /// 8: td-shim TD_PARAMS.
    TdParams,
    /// A type this crate does not know.
    Unknown(u32),
}

impl SectionType {
    /// Decodes the raw type.
    pub fn from_raw(raw: u32) -> Self {
        use SectionType::*;
        [Bfv, Cfv, TdHob, TempMem, PermMem, Payload, PayloadParam, TdInfo, TdParams]
            .get(raw as usize)
            .copied()
            .unwrap_or(Unknown(raw))
    }

    /// The name the TDVF guide uses.
    pub fn name(self) -> String {
        use SectionType::*;
        match self {
            Bfv => "BFV".into(),
            Cfv => "CFV".into(),
            TdHob => "TD_HOB".into(),
            TempMem => "TempMem".into(),
            PermMem => "PermMem".into(),
            Payload => "Payload".into(),
            PayloadParam => "PayloadParam".into(),
            TdInfo => "TdInfo".into(),
            TdParams => "TdParams".into(),
            Unknown(n) => format!("UNKNOWN({n:#x})"),
        }
    }

    /// Whether the VMM writes the section's contents at launch, so they are not in the image.
    fn vmm_written(self) -> bool {
        matches!(self, SectionType::TdHob | SectionType::PayloadParam)
    }
}

impl Serialize for SectionType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// One TDVF section entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Section {
    /// DataOffset: file offset of the section's bytes in the image.
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub data_offset: u32,
    /// RawDataSize: how many bytes the image provides (the rest of the memory is zero).
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub raw_data_size: u32,
    /// MemoryAddress: the GPA of the section.
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub memory_address: u64,
    /// MemoryDataSize: the size of the section in memory.
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub memory_data_size: u64,
    /// Type.
    #[serde(rename = "type")]
    pub section_type: SectionType,
    /// Attributes ([`ATTR_MR_EXTEND`], [`ATTR_PAGE_AUG`]).
    pub attributes: u32,
    /// File offset of the entry, for error messages.
    #[serde(skip)]
    pub offset: usize,
}

/// A fault in the TDVF metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TdxError {
    /// The OVMF footer table is missing or malformed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// No TDX metadata entry in the footer table.
    #[error("no TDX metadata: the OVMF footer table has no TDX_METADATA_OFFSET ({TDX_METADATA_OFFSET_GUID}) entry (is this a TDX-capable OVMF build?)")]
    Missing,
    /// The entry is shorter than its `u32` offset.
    #[error("TDX metadata entry in the OVMF footer table (offset {offset:#x}) holds {len} bytes, expected at least 4")]
    ShortEntry {
        /// File offset of the entry's data.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// The descriptor is outside the image.
    #[error("TDX metadata offset {from_end:#x} from the end of a {image_len}-byte image leaves no room for the TDVF descriptor")]
    OutOfImage {
        /// The offset from the end of the image.
        from_end: u32,
        /// Length of the image.
        image_len: usize,
    },
    /// The signature is not `TDVF`.
    #[error("TDVF descriptor at offset {offset:#x} has signature {found:02x?}, expected \"TDVF\"")]
    BadSignature {
        /// File offset of the descriptor.
        offset: usize,
        /// What is there.
        found: [u8; 4],
    },
    /// The version is not 1.
    #[error("TDVF descriptor at offset {offset:#x} has version {version}, expected 1")]
    BadVersion {
        /// File offset of the descriptor.
        offset: usize,
        /// The version found.
        version: u32,
    },
    /// The length and section count disagree, there are no sections, or they run past the image.
    #[error(
        "TDVF descriptor at offset {offset:#x} declares {count} sections in {length} bytes; expected at least one \
         section, 16 + 32 bytes per section, within the image"
    )]
    BadLength {
        /// File offset of the descriptor.
        offset: usize,
        /// The Length field.
        length: u32,
        /// The section count.
        count: u32,
    },
    /// A section's address or size is not page-aligned.
    #[error("TDVF section {index} ({}, entry at offset {offset:#x}): address {address:#x} size {size:#x} is not 4 KiB-aligned", section_type.name())]
    Misaligned {
        /// Section index.
        index: usize,
        /// Its type.
        section_type: SectionType,
        /// File offset of its entry.
        offset: usize,
        /// MemoryAddress.
        address: u64,
        /// MemoryDataSize.
        size: u64,
    },
    /// A section larger than 4 GiB or reaching past the 64-bit address space.
    #[error("TDVF section {index} ({}, entry at offset {offset:#x}): {size:#x} bytes at {address:#x} is beyond any TDVF layout (sections end below 2^64 and are at most 4 GiB)", section_type.name())]
    TooLarge {
        /// Section index.
        index: usize,
        /// Its type.
        section_type: SectionType,
        /// File offset of its entry.
        offset: usize,
        /// MemoryAddress.
        address: u64,
        /// MemoryDataSize.
        size: u64,
    },
    /// RawDataSize exceeds MemoryDataSize.
    #[error("TDVF section {index} ({}, entry at offset {offset:#x}): raw data size {raw:#x} exceeds its memory size {size:#x}", section_type.name())]
    RawLargerThanMemory {
        /// Section index.
        index: usize,
        /// Its type.
        section_type: SectionType,
        /// File offset of its entry.
        offset: usize,
        /// RawDataSize.
        raw: u32,
        /// MemoryDataSize.
        size: u64,
    },
    /// A section's bytes lie outside the image.
    #[error(
        "TDVF section {index} ({}, entry at offset {offset:#x}): data at {data_offset:#x}+{raw:#x} lies outside the \
         {image_len}-byte image", section_type.name()
    )]
    OutsideImage {
        /// Section index.
        index: usize,
        /// Its type.
        section_type: SectionType,
        /// File offset of its entry.
        offset: usize,
        /// DataOffset.
        data_offset: u32,
        /// RawDataSize.
        raw: u32,
        /// Length of the image.
        image_len: usize,
    },
    /// A section of unknown type that would be measured.
    #[error(
        "TDVF section {index} (entry at offset {offset:#x}, address {address:#x}) has unknown type {raw:#x}; \
         it is not PAGE_AUG, so it must be measured and this tool does not know how"
    )]
    UnknownSection {
        /// Section index.
        index: usize,
        /// File offset of its entry.
        offset: usize,
        /// MemoryAddress.
        address: u64,
        /// The raw type.
        raw: u32,
    },
    /// The metadata asks to extend memory whose contents the VMM writes.
    #[error(
        "TDVF section {index} ({}, entry at offset {offset:#x}) asks for MR.EXTEND, but its contents are written \
         by the VMM at launch and cannot be predicted from the firmware", section_type.name()
    )]
    Unpredictable {
        /// Section index.
        index: usize,
        /// Its type.
        section_type: SectionType,
        /// File offset of its entry.
        offset: usize,
    },
}

/// The parsed TDVF metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdvfMetadata {
    /// File offset of the `TDVF` descriptor.
    pub offset: usize,
    /// Whether [`TDX_METADATA_GUID`] precedes the descriptor.
    pub has_guid: bool,
    /// The sections, in the order the VMM processes them.
    pub sections: Vec<Section>,
}

impl TdvfMetadata {
    /// Finds the TDVF metadata through the OVMF footer table (as QEMU's `tdvf_get_metadata`
    /// does) and checks every section against the image.
    pub fn parse(image: &[u8]) -> Result<Self, TdxError> {
        let table = FooterTable::parse(image)?;
        let entry = table.get(&TDX_METADATA_OFFSET_GUID).ok_or(TdxError::Missing)?;
        let from_end = entry.u32_at(0).ok_or(TdxError::ShortEntry { offset: entry.offset, len: entry.data.len() })?;
        let out = TdxError::OutOfImage { from_end, image_len: image.len() };
        let offset = image.len().checked_sub(from_end as usize).ok_or(out.clone())?;
        let desc = image.get(offset..offset + DESCRIPTOR_LEN).ok_or(out)?;
        let signature = [desc[0], desc[1], desc[2], desc[3]];
        if signature != SIGNATURE {
            return Err(TdxError::BadSignature { offset, found: signature });
        }
        let field = |i: usize| le_u32(desc, 4 * i).unwrap_or_default();
        let (length, version, count) = (field(1), field(2), field(3));
        if version != 1 {
            return Err(TdxError::BadVersion { offset, version });
        }
        let expected = DESCRIPTOR_LEN as u64 + SECTION_LEN as u64 * count as u64;
        if count == 0 || length as u64 != expected || offset as u64 + expected > image.len() as u64 {
            return Err(TdxError::BadLength { offset, length, count });
        }
        let has_guid = offset >= 16 && image[offset - 16..offset] == TDX_METADATA_GUID.to_bytes_le();
        let mut sections = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            let at = offset + DESCRIPTOR_LEN + index * SECTION_LEN;
            let s = Section {
                data_offset: le_u32(image, at).unwrap_or_default(),
                raw_data_size: le_u32(image, at + 4).unwrap_or_default(),
                memory_address: le_u64(image, at + 8).unwrap_or_default(),
                memory_data_size: le_u64(image, at + 16).unwrap_or_default(),
                section_type: SectionType::from_raw(le_u32(image, at + 24).unwrap_or_default()),
                attributes: le_u32(image, at + 28).unwrap_or_default(),
                offset: at,
            };
            check_section(image, index, &s)?;
            sections.push(s);
        }
        Ok(TdvfMetadata { offset, has_guid, sections })
    }

    /// Things worth reporting that do not stop MRTD: a missing metadata GUID, unknown sections
    /// that are not measured.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.has_guid {
            notes.push(format!(
                "no TDX metadata GUID {TDX_METADATA_GUID} before the TDVF descriptor at offset {:#x}",
                self.offset
            ));
        }
        for (i, s) in self.sections.iter().enumerate() {
            if let SectionType::Unknown(raw) = s.section_type {
                notes.push(format!(
                    "TDVF section {i} (entry at offset {:#x}) has unknown type {raw:#x}; it is PAGE_AUG, so not measured",
                    s.offset
                ));
            }
        }
        notes
    }
}

fn check_section(image: &[u8], index: usize, s: &Section) -> Result<(), TdxError> {
    let (section_type, offset) = (s.section_type, s.offset);
    if !s.memory_address.is_multiple_of(PAGE_SIZE) || !s.memory_data_size.is_multiple_of(PAGE_SIZE) {
        return Err(TdxError::Misaligned {
            index,
            section_type,
            offset,
            address: s.memory_address,
            size: s.memory_data_size,
        });
    }
    if s.memory_data_size > MAX_SECTION || s.memory_address.checked_add(s.memory_data_size).is_none() {
        return Err(TdxError::TooLarge {
            index,
            section_type,
            offset,
            address: s.memory_address,
            size: s.memory_data_size,
        });
    }
    if s.raw_data_size as u64 > s.memory_data_size {
        return Err(TdxError::RawLargerThanMemory {
            index,
            section_type,
            offset,
            raw: s.raw_data_size,
            size: s.memory_data_size,
        });
    }
    if s.data_offset as u64 + s.raw_data_size as u64 > image.len() as u64 {
        return Err(TdxError::OutsideImage {
            index,
            section_type,
            offset,
            data_offset: s.data_offset,
            raw: s.raw_data_size,
            image_len: image.len(),
        });
    }
    let aug = s.attributes & ATTR_PAGE_AUG != 0;
    if let SectionType::Unknown(raw) = section_type {
        if !aug {
            return Err(TdxError::UnknownSection { index, offset, address: s.memory_address, raw });
        }
    }
    if !aug && s.attributes & ATTR_MR_EXTEND != 0 && section_type.vmm_written() {
        return Err(TdxError::Unpredictable { index, section_type, offset });
    }
    Ok(())
}

/// The order in which the VMM issues `TDH.MEM.PAGE.ADD` and `TDH.MR.EXTEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageAddOrder {
    /// Per page: add, then extend its chunks (upstream KVM and QEMU, GCE).
    #[default]
    SinglePass,
    /// Per section: add every page, then extend every page (older QEMU/KVM TDX patches).
    TwoPass,
}

/// What one section contributed to MRTD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionSummary {
    /// The section.
    #[serde(flatten)]
    pub section: Section,
    /// Pages added with `TDH.MEM.PAGE.ADD` (0 for PAGE_AUG sections).
    pub pages_added: u64,
    /// 256-byte chunks extended with `TDH.MR.EXTEND`.
    pub chunks_extended: u64,
}

/// MRTD with the per-section account that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mrtd {
    /// MRTD.
    #[serde(rename = "mrtd", serialize_with = "hex::serde::serialize")]
    pub digest: [u8; DIGEST_LEN],
    /// The order used.
    pub page_add_order: PageAddOrder,
    /// The sections, in order.
    pub sections: Vec<SectionSummary>,
}

fn op_block(name: &[u8], gpa: u64) -> [u8; OP_BLOCK] {
    let mut b = [0u8; OP_BLOCK];
    b[..name.len()].copy_from_slice(name);
    b[16..24].copy_from_slice(&gpa.to_le_bytes());
    b
}

/// The bytes of one page of a section in TD memory: the image's raw data, then zeros.
fn page_bytes<'a>(image: &'a [u8], s: &Section, page: u64, zero: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
    let start = page * PAGE_SIZE;
    let raw = s.raw_data_size as u64;
    if start + PAGE_SIZE <= raw {
        let at = (s.data_offset as u64 + start) as usize;
        std::borrow::Cow::Borrowed(&image[at..at + PAGE_SIZE as usize])
    } else if start >= raw {
        std::borrow::Cow::Borrowed(zero)
    } else {
        let mut p = vec![0u8; PAGE_SIZE as usize];
        let at = (s.data_offset as u64 + start) as usize;
        let n = (raw - start) as usize;
        p[..n].copy_from_slice(&image[at..at + n]);
        std::borrow::Cow::Owned(p)
    }
}

/// Computes MRTD for `image` whose metadata is `md`.
pub fn mrtd(image: &[u8], md: &TdvfMetadata, order: PageAddOrder) -> Mrtd {
    // The stream is whole 128-byte blocks (each record one block, each chunk two): they are
    // hashed where they are, the chunks read in place from the image.
    const _: () = assert!(OP_BLOCK == 128 && EXTEND_CHUNK == 256);
    let mut h = Sha384Blocks::new();
    let zero = vec![0u8; PAGE_SIZE as usize];
    let chunks = PAGE_SIZE as usize / EXTEND_CHUNK;
    let mut sections = Vec::with_capacity(md.sections.len());
    for s in &md.sections {
        let aug = s.attributes & ATTR_PAGE_AUG != 0;
        let extend = !aug && s.attributes & ATTR_MR_EXTEND != 0;
        let pages = if aug { 0 } else { s.memory_data_size / PAGE_SIZE };
        let add = |h: &mut Sha384Blocks, page: u64| {
            h.update(&[&op_block(b"MEM.PAGE.ADD", s.memory_address + page * PAGE_SIZE)]);
        };
        // One page's MR.EXTEND input: 16 × (a 128-byte record, then 256 bytes of the page).
        let extend_page = |h: &mut Sha384Blocks, page: u64| {
            let bytes = page_bytes(image, s, page, &zero);
            let gpa = s.memory_address + page * PAGE_SIZE;
            let records: [[u8; OP_BLOCK]; 16] =
                std::array::from_fn(|i| op_block(b"MR.EXTEND", gpa + (i * EXTEND_CHUNK) as u64));
            let mut blocks = [&records[0]; 48];
            for ((slot, record), chunk) in
                blocks.chunks_exact_mut(3).zip(&records).zip(bytes.chunks_exact(EXTEND_CHUNK))
            {
                let (lo, hi) = chunk.split_at(OP_BLOCK);
                slot[0] = record;
                slot[1] = lo.try_into().expect("128 bytes");
                slot[2] = hi.try_into().expect("128 bytes");
            }
            h.update(&blocks);
        };
        match order {
            PageAddOrder::SinglePass => {
                for page in 0..pages {
                    add(&mut h, page);
                    if extend {
                        extend_page(&mut h, page);
                    }
                }
            }
            PageAddOrder::TwoPass => {
                for page in 0..pages {
                    add(&mut h, page);
                }
                if extend {
                    for page in 0..pages {
                        extend_page(&mut h, page);
                    }
                }
            }
        }
        sections.push(SectionSummary {
            section: *s,
            pages_added: pages,
            chunks_extended: if extend { pages * chunks as u64 } else { 0 },
        });
    }
    Mrtd { digest: h.finalize(), page_add_order: order, sections }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::tests::image_with_table;
    use digest_alg::{Digest, Sha384};

    /// A 64 KiB image with TDVF metadata at 0x100 holding `sections`.
    fn image(sections: &[(u32, u32, u64, u64, u32, u32)]) -> Vec<u8> {
        let size = 0x10000;
        let mut img =
            image_with_table(size, &[(TDX_METADATA_OFFSET_GUID, ((size - 0x100) as u32).to_le_bytes().to_vec())]);
        img[0xf0..0x100].copy_from_slice(&TDX_METADATA_GUID.to_bytes_le());
        let mut d = b"TDVF".to_vec();
        for v in [16 + 32 * sections.len() as u32, 1, sections.len() as u32] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        for &(off, raw, addr, size, ty, attr) in sections {
            d.extend_from_slice(&off.to_le_bytes());
            d.extend_from_slice(&raw.to_le_bytes());
            d.extend_from_slice(&addr.to_le_bytes());
            d.extend_from_slice(&size.to_le_bytes());
            d.extend_from_slice(&ty.to_le_bytes());
            d.extend_from_slice(&attr.to_le_bytes());
        }
        img[0x100..0x100 + d.len()].copy_from_slice(&d);
        for (i, b) in img[0x1000..0x3000].iter_mut().enumerate() {
            *b = i as u8;
        }
        img
    }

    #[test]
    fn stream_by_hand() {
        // One BFV page at GPA 0xfff0_0000 from file offset 0x1000, extended; one TEMP_MEM page.
        let img = image(&[(0x1000, 0x1000, 0xfff0_0000, 0x1000, 0, ATTR_MR_EXTEND), (0, 0, 0x80_0000, 0x1000, 3, 0)]);
        let md = TdvfMetadata::parse(&img).unwrap();
        assert!(md.has_guid && md.notes().is_empty());
        let mut h = Sha384::new();
        let mut block = [0u8; 128];
        block[..12].copy_from_slice(b"MEM.PAGE.ADD");
        block[16..24].copy_from_slice(&0xfff0_0000u64.to_le_bytes());
        h.update(block);
        for i in 0..16u64 {
            let mut block = [0u8; 128];
            block[..9].copy_from_slice(b"MR.EXTEND");
            block[16..24].copy_from_slice(&(0xfff0_0000 + i * 256).to_le_bytes());
            h.update(block);
            h.update(&img[0x1000 + i as usize * 256..][..256]);
        }
        let mut block = [0u8; 128];
        block[..12].copy_from_slice(b"MEM.PAGE.ADD");
        block[16..24].copy_from_slice(&0x80_0000u64.to_le_bytes());
        h.update(block);
        let want: [u8; 48] = h.finalize().into();
        assert_eq!(mrtd(&img, &md, PageAddOrder::SinglePass).digest, want);
        // With one page per section the two orders agree.
        assert_eq!(mrtd(&img, &md, PageAddOrder::TwoPass).digest, want);
    }

    #[test]
    fn orders_differ_on_multi_page_sections_and_raw_data_is_zero_padded() {
        let img = image(&[(0x1000, 0x1800, 0xfff0_0000, 0x2000, 0, ATTR_MR_EXTEND)]);
        let md = TdvfMetadata::parse(&img).unwrap();
        let one = mrtd(&img, &md, PageAddOrder::SinglePass);
        assert_ne!(one.digest, mrtd(&img, &md, PageAddOrder::TwoPass).digest);
        assert_eq!((one.sections[0].pages_added, one.sections[0].chunks_extended), (2, 32));
        // Bytes past RawDataSize are zero in TD memory, whatever follows in the file.
        let mut other = img.clone();
        other[0x2800..0x3000].fill(0xaa);
        assert_eq!(mrtd(&other, &md, PageAddOrder::SinglePass).digest, one.digest);
        other[0x27ff] ^= 1;
        assert_ne!(mrtd(&other, &md, PageAddOrder::SinglePass).digest, one.digest);
    }

    #[test]
    fn page_aug_is_skipped_and_unknown_aug_reported() {
        let base = (0x1000, 0x1000, 0xfff0_0000, 0x1000, 0, ATTR_MR_EXTEND);
        let img = image(&[base]);
        let with_aug = image(&[base, (0, 0, 0x100_0000, 0x10_0000, 0x42, ATTR_PAGE_AUG)]);
        let md = TdvfMetadata::parse(&with_aug).unwrap();
        assert_eq!(md.notes().len(), 1, "{:?}", md.notes());
        assert_eq!(
            mrtd(&with_aug, &md, PageAddOrder::SinglePass).digest,
            mrtd(&img, &TdvfMetadata::parse(&img).unwrap(), PageAddOrder::SinglePass).digest
        );
    }

    #[test]
    fn faults_are_named() {
        let entry = 0x100 + 16;
        let cases: [(&str, Vec<u8>, TdxError); 7] = [
            (
                "outside",
                image(&[(0xf000, 0x2000, 0, 0x2000, 0, ATTR_MR_EXTEND)]),
                TdxError::OutsideImage {
                    index: 0,
                    section_type: SectionType::Bfv,
                    offset: entry,
                    data_offset: 0xf000,
                    raw: 0x2000,
                    image_len: 0x10000,
                },
            ),
            (
                "misaligned",
                image(&[(0, 0, 0x800, 0x1000, 3, 0)]),
                TdxError::Misaligned {
                    index: 0,
                    section_type: SectionType::TempMem,
                    offset: entry,
                    address: 0x800,
                    size: 0x1000,
                },
            ),
            (
                "raw > memory",
                image(&[(0, 0x2000, 0, 0x1000, 0, 0)]),
                TdxError::RawLargerThanMemory {
                    index: 0,
                    section_type: SectionType::Bfv,
                    offset: entry,
                    raw: 0x2000,
                    size: 0x1000,
                },
            ),
            (
                "unknown measured",
                image(&[(0, 0, 0x1000, 0x1000, 0x42, 0)]),
                TdxError::UnknownSection { index: 0, offset: entry, address: 0x1000, raw: 0x42 },
            ),
            (
                "hob extended",
                image(&[(0, 0, 0x1000, 0x1000, 2, ATTR_MR_EXTEND)]),
                TdxError::Unpredictable { index: 0, section_type: SectionType::TdHob, offset: entry },
            ),
            ("no sections", image(&[]), TdxError::BadLength { offset: 0x100, length: 16, count: 0 }),
            (
                "huge",
                image(&[(0, 0, 0x1000, 1 << 40, 3, 0)]),
                TdxError::TooLarge {
                    index: 0,
                    section_type: SectionType::TempMem,
                    offset: entry,
                    address: 0x1000,
                    size: 1 << 40,
                },
            ),
        ];
        for (name, img, want) in cases {
            assert_eq!(TdvfMetadata::parse(&img), Err(want), "case {name}");
        }
        let mut img = image(&[(0, 0, 0x1000, 0x1000, 3, 0)]);
        img[0x100] = b'X';
        assert_eq!(TdvfMetadata::parse(&img), Err(TdxError::BadSignature { offset: 0x100, found: *b"XDVF" }));
        img[0x100] = b'T';
        img[0x108] = 2;
        assert_eq!(TdvfMetadata::parse(&img), Err(TdxError::BadVersion { offset: 0x100, version: 2 }));
        assert_eq!(TdvfMetadata::parse(&image_with_table(4096, &[])), Err(TdxError::Missing));
    }

    #[test]
    fn amdsev_suffix_sections_point_outside_it() {
        // The 4 KiB suffix keeps the metadata of a 4 MiB image: its BFV lies outside.
        let img = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ovmf_AmdSev_suffix.bin")).unwrap();
        assert!(matches!(
            TdvfMetadata::parse(&img),
            Err(TdxError::OutsideImage { index: 0, section_type: SectionType::Bfv, data_offset: 0x84000, .. })
        ));
    }
}
