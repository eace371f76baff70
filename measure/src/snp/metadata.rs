//! OVMF's SEV metadata: the guest memory ranges the VMM must pre-validate (and so measure)
//! before an SEV-SNP guest starts.
//!
//! Layout from edk2 `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm` (`OVMF_SEV_METADATA_HEADER`,
//! `OVMF_SEV_METADATA_DESC`); QEMU reads it in `target/i386/sev.c`
//! (`snp_populate_metadata_pages`). The footer-table entry [`SEV_METADATA_GUID`] holds a `u32`
//! offset from the end of the image to the header.

use serde::Serialize;

use crate::ovmf::{le_u32, FooterTable, SEV_METADATA_GUID};

/// `"ASEV"`: the header signature.
pub const SIGNATURE: [u8; 4] = *b"ASEV";
/// The only metadata version OVMF has ever produced.
pub const VERSION: u32 = 1;
/// Size of the header: signature, size, version, number of sections (4 × `u32`).
pub const HEADER_LEN: usize = 16;
/// Size of one section descriptor: base GPA, size, type (3 × `u32`).
pub const DESC_LEN: usize = 12;

/// What a metadata section is for (`OvmfSevMetadata.asm`, `OVMF_SECTION_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SectionType {
    /// 1: memory the reset vector uses before it can validate pages itself (page tables, GHCB,
    /// the SEC stack); pre-validated as ZERO pages (UNMEASURED on GCE).
    SnpSecMem,
    /// 2: the SNP secrets page, filled by the PSP (page type SECRETS).
    SnpSecrets,
    /// 3: the CPUID page, filled and checked by the PSP (page type CPUID).
    Cpuid,
    /// 4: the SVSM calling-area page (ZERO pages).
    SvsmCaa,
    /// 0x10: the page holding QEMU's kernel/initrd/cmdline hashes table for measured direct
    /// boot (NORMAL page with the table, or ZERO pages without a kernel).
    SnpKernelHashes,
    /// A type this crate does not know.
    Unknown(u32),
}

impl SectionType {
    /// Decodes the raw type.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Self::SnpSecMem,
            2 => Self::SnpSecrets,
            3 => Self::Cpuid,
            4 => Self::SvsmCaa,
            0x10 => Self::SnpKernelHashes,
            n => Self::Unknown(n),
        }
    }

    /// The raw type.
    pub fn raw(self) -> u32 {
        match self {
            Self::SnpSecMem => 1,
            Self::SnpSecrets => 2,
            Self::Cpuid => 3,
            Self::SvsmCaa => 4,
            Self::SnpKernelHashes => 0x10,
            Self::Unknown(n) => n,
        }
    }

    /// The name edk2 gives the type, or `UNKNOWN(0x..)`.
    pub fn name(self) -> String {
        match self {
            Self::SnpSecMem => "SNP_SEC_MEM".into(),
            Self::SnpSecrets => "SNP_SECRETS".into(),
            Self::Cpuid => "CPUID".into(),
            Self::SvsmCaa => "SVSM_CAA".into(),
            Self::SnpKernelHashes => "SNP_KERNEL_HASHES".into(),
            Self::Unknown(n) => format!("UNKNOWN({n:#x})"),
        }
    }
}

impl Serialize for SectionType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// One `OVMF_SEV_METADATA_DESC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Guest-physical base address.
    pub gpa: u32,
    /// Size in bytes.
    pub size: u32,
    /// What the range is for.
    #[serde(rename = "type")]
    pub section_type: SectionType,
    /// File offset of the descriptor, for error messages.
    #[serde(skip)]
    pub offset: usize,
}

/// A fault in the SEV metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The footer table has no SEV metadata entry.
    #[error(
        "no SEV metadata: the OVMF footer table has no {SEV_METADATA_GUID} entry (is this an SEV-capable OVMF build?)"
    )]
    Missing,
    /// The entry is shorter than its `u32` offset.
    #[error("SEV metadata entry in the OVMF footer table (offset {offset:#x}) holds {len} bytes, expected at least 4")]
    ShortEntry {
        /// File offset of the entry's data.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// The offset points outside the image.
    #[error(
        "SEV metadata offset {from_end:#x} from the end of a {image_len}-byte image leaves no room for its header"
    )]
    OutOfImage {
        /// The offset from the end of the image.
        from_end: u32,
        /// Length of the image.
        image_len: usize,
    },
    /// The header signature is not `ASEV`.
    #[error("SEV metadata header at offset {offset:#x} has signature {found:02x?}, expected \"ASEV\"")]
    BadSignature {
        /// File offset of the header.
        offset: usize,
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The header version is not 1.
    #[error("SEV metadata header at offset {offset:#x} has version {version}, expected 1")]
    BadVersion {
        /// File offset of the header.
        offset: usize,
        /// The version found.
        version: u32,
    },
    /// The descriptors do not fit the header's size or the image.
    #[error(
        "SEV metadata at offset {offset:#x} declares {count} sections in {size} bytes, which do not fit \
         (header 16 bytes + 12 per section, within the image)"
    )]
    BadSize {
        /// File offset of the header.
        offset: usize,
        /// The header's size field.
        size: u32,
        /// The header's section count.
        count: u32,
    },
}

/// The parsed SEV metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SevMetadata {
    /// File offset of the `ASEV` header.
    pub offset: usize,
    /// The sections, in file order (which is the order they are measured in).
    pub sections: Vec<Section>,
}

impl SevMetadata {
    /// Finds and parses the SEV metadata of `image` through its footer table.
    pub fn parse(image: &[u8], table: &FooterTable) -> Result<Self, MetadataError> {
        let entry = table.get(&SEV_METADATA_GUID).ok_or(MetadataError::Missing)?;
        let from_end =
            entry.u32_at(0).ok_or(MetadataError::ShortEntry { offset: entry.offset, len: entry.data.len() })?;
        let out_of_image = MetadataError::OutOfImage { from_end, image_len: image.len() };
        let offset = image.len().checked_sub(from_end as usize).ok_or(out_of_image.clone())?;
        let header = image.get(offset..offset + HEADER_LEN).ok_or(out_of_image)?;
        let signature = [header[0], header[1], header[2], header[3]];
        if signature != SIGNATURE {
            return Err(MetadataError::BadSignature { offset, found: signature });
        }
        let field = |i: usize| le_u32(header, 4 * i).unwrap_or_default();
        let (size, version, count) = (field(1), field(2), field(3));
        if version != VERSION {
            return Err(MetadataError::BadVersion { offset, version });
        }
        let needed = (count as u64) * DESC_LEN as u64 + HEADER_LEN as u64;
        if needed > size as u64 || offset as u64 + needed > image.len() as u64 {
            return Err(MetadataError::BadSize { offset, size, count });
        }
        let sections = (0..count as usize)
            .map(|i| {
                let at = offset + HEADER_LEN + i * DESC_LEN;
                let word = |k: usize| le_u32(image, at + 4 * k).unwrap_or_default();
                Section { gpa: word(0), size: word(1), section_type: SectionType::from_raw(word(2)), offset: at }
            })
            .collect();
        Ok(SevMetadata { offset, sections })
    }

    /// Whether any section has type `t`.
    pub fn has(&self, t: SectionType) -> bool {
        self.sections.iter().any(|s| s.section_type == t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::tests::image_with_table;

    fn suffix() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ovmf_AmdSev_suffix.bin")).unwrap()
    }

    #[test]
    fn amdsev_suffix_sections() {
        let img = suffix();
        let md = SevMetadata::parse(&img, &FooterTable::parse(&img).unwrap()).unwrap();
        let got: Vec<_> = md.sections.iter().map(|s| (s.gpa, s.size, s.section_type)).collect();
        use SectionType::*;
        // As edk2-stable202405 AmdSevX64 lays them out (OvmfPkg/AmdSev/AmdSevX64.fdf).
        assert_eq!(
            got,
            [
                (0x80_0000, 0x9000, SnpSecMem),
                (0x80_a000, 0x3000, SnpSecMem),
                (0x80_d000, 0x1000, SnpSecrets),
                (0x80_e000, 0x1000, Cpuid),
                (0x80_f000, 0x1000, SvsmCaa),
                (0x81_0000, 0x1000, SnpKernelHashes),
                (0x81_1000, 0xf000, SnpSecMem),
            ]
        );
    }

    fn with_metadata(header: &[u8]) -> Vec<u8> {
        // Metadata at offset 0x100 of a 4 KiB image, i.e. 0xf00 from the end.
        let mut img = image_with_table(4096, &[(SEV_METADATA_GUID, 0xf00u32.to_le_bytes().to_vec())]);
        img[0x100..0x100 + header.len()].copy_from_slice(header);
        img
    }

    fn header(sig: &[u8; 4], size: u32, version: u32, count: u32) -> Vec<u8> {
        let mut h = sig.to_vec();
        for v in [size, version, count] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    }

    #[test]
    fn faults_are_named() {
        let parse = |img: &[u8]| SevMetadata::parse(img, &FooterTable::parse(img).unwrap());
        assert_eq!(parse(&image_with_table(4096, &[])), Err(MetadataError::Missing));
        assert_eq!(
            parse(&image_with_table(4096, &[(SEV_METADATA_GUID, vec![1, 2])])),
            Err(MetadataError::ShortEntry { offset: 4096 - 0x20 - 18 - 18 - 2, len: 2 })
        );
        assert_eq!(
            parse(&image_with_table(4096, &[(SEV_METADATA_GUID, 0x2000u32.to_le_bytes().to_vec())])),
            Err(MetadataError::OutOfImage { from_end: 0x2000, image_len: 4096 })
        );
        assert_eq!(
            parse(&with_metadata(&header(b"ASEW", 16, 1, 0))),
            Err(MetadataError::BadSignature { offset: 0x100, found: *b"ASEW" })
        );
        assert_eq!(
            parse(&with_metadata(&header(b"ASEV", 16, 2, 0))),
            Err(MetadataError::BadVersion { offset: 0x100, version: 2 })
        );
        assert_eq!(
            parse(&with_metadata(&header(b"ASEV", 16, 1, 1))),
            Err(MetadataError::BadSize { offset: 0x100, size: 16, count: 1 })
        );
        assert_eq!(
            parse(&with_metadata(&header(b"ASEV", u32::MAX, 1, 0x1000_0000))),
            Err(MetadataError::BadSize { offset: 0x100, size: u32::MAX, count: 0x1000_0000 })
        );
        let mut ok = header(b"ASEV", 28, 1, 1);
        ok.extend_from_slice(&[0, 0x10, 0, 0, 0, 0x10, 0, 0, 0x42, 0, 0, 0]);
        let md = parse(&with_metadata(&ok)).unwrap();
        assert_eq!(md.sections[0].section_type, SectionType::Unknown(0x42));
        assert_eq!(md.sections[0].section_type.name(), "UNKNOWN(0x42)");
    }
}
