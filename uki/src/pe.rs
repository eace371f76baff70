//! PE/COFF images: the headers, the section table, and the checks that make a file safe to hash.
//!
//! Layouts follow Microsoft's "PE Format" specification
//! (<https://learn.microsoft.com/en-us/windows/win32/debug/pe-format>); the structures below name
//! its sections. Parsing validates everything the Authenticode digest and the section reader rely
//! on, so that a [`Pe`] that exists can be hashed and read without further checks.

use std::ops::Range;

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::hash::{HashAlg, HashInput};

/// The MS-DOS header at offset 0 ("MS-DOS Stub (Image Only)"). UEFI reads only the magic and the
/// offset of the PE signature.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DosHeader {
    /// `MZ`.
    pub e_magic: [u8; 2],
    /// The rest of the MS-DOS header, ignored by UEFI.
    pub reserved_0: [u8; 58],
    /// File offset of the `PE\0\0` signature.
    pub e_lfanew: U32,
}
const _: () = assert!(size_of::<DosHeader>() == 64);

/// The COFF file header after the `PE\0\0` signature ("COFF File Header (Object and Image)").
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CoffHeader {
    /// Target machine (`0x8664` x86-64, `0x14c` i386, `0xaa64` arm64, …).
    pub machine: U16,
    /// Number of entries in the section table.
    pub number_of_sections: U16,
    /// Link time (seconds since 1970); ukify keeps the stub's.
    pub time_date_stamp: U32,
    /// File offset of the COFF symbol table, 0 in images.
    pub pointer_to_symbol_table: U32,
    /// Number of symbol table entries (18 bytes each).
    pub number_of_symbols: U32,
    /// Size of the optional header that follows, including its data directories.
    pub size_of_optional_header: U16,
    /// `IMAGE_FILE_*` flags.
    pub characteristics: U16,
}
const _: () = assert!(size_of::<CoffHeader>() == 20);

/// The first 72 bytes of the optional header ("Optional Header Standard Fields" and "Optional
/// Header Windows-Specific Fields"), which PE32 and PE32+ lay out identically.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct OptionalHeader {
    /// `0x10b` PE32, `0x20b` PE32+.
    pub magic: U16,
    /// Linker major version.
    pub major_linker_version: u8,
    /// Linker minor version.
    pub minor_linker_version: u8,
    /// Sum of the sizes of the code sections.
    pub size_of_code: U32,
    /// Sum of the sizes of the initialized-data sections (ukify adds every section it appends).
    pub size_of_initialized_data: U32,
    /// Sum of the sizes of the uninitialized-data sections.
    pub size_of_uninitialized_data: U32,
    /// RVA of the entry point.
    pub address_of_entry_point: U32,
    /// RVA of the start of the code.
    pub base_of_code: U32,
    /// PE32: BaseOfData and a 32-bit ImageBase; PE32+: a 64-bit ImageBase.
    pub image_base: [u8; 8],
    /// Alignment of sections in memory.
    pub section_alignment: U32,
    /// Alignment of section raw data in the file.
    pub file_alignment: U32,
    /// Required OS major version.
    pub major_operating_system_version: U16,
    /// Required OS minor version.
    pub minor_operating_system_version: U16,
    /// Image major version (Linux: the EFI stub's major version).
    pub major_image_version: U16,
    /// Image minor version.
    pub minor_image_version: U16,
    /// Subsystem major version.
    pub major_subsystem_version: U16,
    /// Subsystem minor version.
    pub minor_subsystem_version: U16,
    /// Reserved, must be zero.
    pub win32_version_value: U32,
    /// Size of the image in memory, a multiple of the section alignment.
    pub size_of_image: U32,
    /// Size of the headers in the file, a multiple of the file alignment.
    pub size_of_headers: U32,
    /// Image checksum; excluded from the Authenticode digest, zeroed by ukify.
    pub check_sum: U32,
    /// Subsystem (`10` EFI application).
    pub subsystem: U16,
    /// `IMAGE_DLLCHARACTERISTICS_*` flags (`0x100` NX_COMPAT).
    pub dll_characteristics: U16,
}
const _: () = assert!(size_of::<OptionalHeader>() == 72);

/// One data directory entry ("Optional Header Data Directories").
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DataDirectory {
    /// RVA of the table — except for the certificate table, where it is a file offset.
    pub virtual_address: U32,
    /// Size of the table in bytes.
    pub size: U32,
}
const _: () = assert!(size_of::<DataDirectory>() == 8);

/// One section table entry ("Section Table (Section Headers)").
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SectionHeader {
    /// Name, NUL-padded; exactly 8 bytes without a NUL is allowed.
    pub name: [u8; 8],
    /// Size of the section in memory; past `size_of_raw_data` the loader fills zeros.
    pub virtual_size: U32,
    /// RVA of the section.
    pub virtual_address: U32,
    /// Size of the section's data in the file, a multiple of the file alignment.
    pub size_of_raw_data: U32,
    /// File offset of the section's data.
    pub pointer_to_raw_data: U32,
    /// Object files only; zero in images.
    pub pointer_to_relocations: U32,
    /// Deprecated COFF line numbers; zero.
    pub pointer_to_linenumbers: U32,
    /// Object files only; zero in images.
    pub number_of_relocations: U16,
    /// Deprecated; zero.
    pub number_of_linenumbers: U16,
    /// `IMAGE_SCN_*` flags.
    pub characteristics: U32,
}
const _: () = assert!(size_of::<SectionHeader>() == 40);

/// `MZ`.
pub const DOS_MAGIC: [u8; 2] = *b"MZ";
/// `PE\0\0`.
pub const PE_SIGNATURE: [u8; 4] = *b"PE\0\0";
/// Optional header magic of a PE32 image.
pub const PE32_MAGIC: u16 = 0x10b;
/// Optional header magic of a PE32+ image.
pub const PE32_PLUS_MAGIC: u16 = 0x20b;
/// `IMAGE_FILE_MACHINE_IA64`, for edk2's ELILO quirk (see [`Pe::parse`]).
const MACHINE_IA64: u16 = 0x200;
/// Size of the PE32 optional header before its data directories.
const PE32_FIXED: usize = 96;
/// Size of the PE32+ optional header before its data directories.
const PE32_PLUS_FIXED: usize = 112;
/// Offset of the CheckSum field in the optional header (both formats).
pub const CHECKSUM_OFFSET: usize = 64;
/// Index of the certificate table ("security directory") among the data directories.
pub const DIRECTORY_SECURITY: usize = 4;
/// At most this many data directories (`EFI_IMAGE_NUMBER_OF_DIRECTORY_ENTRIES` in edk2's PeImage.h).
pub const MAX_DATA_DIRECTORIES: u32 = 16;
/// At most this many sections: the PE Format's limit for images, also systemd-boot's
/// `MAX_SECTIONS` (src/boot/pe.c).
pub const MAX_SECTIONS: u16 = 96;

/// `IMAGE_SCN_CNT_CODE`.
pub const SCN_CNT_CODE: u32 = 0x0000_0020;
/// `IMAGE_SCN_CNT_INITIALIZED_DATA`.
pub const SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
/// `IMAGE_SCN_MEM_EXECUTE`.
pub const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
/// `IMAGE_SCN_MEM_READ`.
pub const SCN_MEM_READ: u32 = 0x4000_0000;
/// `IMAGE_DLLCHARACTERISTICS_NX_COMPAT`.
pub const DLL_NX_COMPAT: u16 = 0x0100;
/// `IMAGE_FILE_LOCAL_SYMS_STRIPPED`.
pub const FILE_LOCAL_SYMS_STRIPPED: u16 = 0x0008;

/// Why a file is not a PE image this crate can hash and read. Offsets are file offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeError {
    /// The file ends inside a header.
    #[error("truncated: the {what} needs bytes up to offset {need:#x}, the file has {len:#x} bytes")]
    Truncated { what: &'static str, need: u64, len: usize },
    /// No `MZ` at offset 0.
    #[error("not a PE image: no MZ signature at offset 0x0")]
    NotMz,
    /// No `PE\0\0` where e_lfanew points.
    #[error("not a PE image: no PE signature at offset {offset:#x} (e_lfanew)")]
    NoPeSignature { offset: u64 },
    /// The optional header magic is neither PE32 nor PE32+.
    #[error("unknown optional header magic {magic:#06x} at offset {offset:#x}")]
    BadOptionalMagic { magic: u16, offset: usize },
    /// SizeOfOptionalHeader is smaller than the fixed fields.
    #[error("SizeOfOptionalHeader is {size:#x} (offset {offset:#x}), smaller than the {need:#x} bytes of a {kind} optional header")]
    OptionalHeaderTooSmall { size: u16, need: usize, kind: &'static str, offset: usize },
    /// NumberOfRvaAndSizes is absurd or does not fit the optional header.
    #[error("NumberOfRvaAndSizes is {count} (offset {offset:#x}), but the optional header holds {fits} entries (at most {MAX_DATA_DIRECTORIES})")]
    BadDataDirectoryCount { count: u32, fits: usize, offset: usize },
    /// More sections than any loader accepts.
    #[error("NumberOfSections is {count} (offset {offset:#x}), more than the {MAX_SECTIONS} an image may have")]
    TooManySections { count: u16, offset: usize },
    /// The section table does not lie within SizeOfHeaders.
    #[error("the section table ends at offset {end:#x}, past SizeOfHeaders {size_of_headers:#x}")]
    SectionTableOutsideHeaders { end: usize, size_of_headers: u32 },
    /// A section name refers to the COFF string table, which images must not use.
    #[error("section {index} (header at offset {offset:#x}) has a long name {name:?}: image section names are at most 8 bytes")]
    LongSectionName { index: usize, name: String, offset: usize },
    /// A section's raw data reaches past the end of the file.
    #[error("section {name} (header at offset {header:#x}): its data {start:#x}..{end:#x} extends past the end of the file ({len:#x} bytes)")]
    SectionPastEof { name: String, header: usize, start: u64, end: u64, len: usize },
    /// A section's raw data overlaps the headers.
    #[error("section {name} (header at offset {header:#x}): its data at offset {start:#x} overlaps the headers (SizeOfHeaders {size_of_headers:#x})")]
    SectionOverlapsHeaders { name: String, header: usize, start: u32, size_of_headers: u32 },
    /// Two sections share file bytes.
    #[error("sections {first} and {second} overlap in the file: {second} starts at offset {start:#x}, {first} ends at {end:#x}")]
    SectionsOverlap { first: String, second: String, start: u64, end: u64 },
    /// A section reaches past SizeOfImage.
    #[error("section {name} (header at offset {header:#x}) ends at RVA {end:#x}, past SizeOfImage {size_of_image:#x}")]
    SectionBeyondImage { name: String, header: usize, end: u64, size_of_image: u32 },
    /// Two sections share memory.
    #[error(
        "sections {first} and {second} overlap in memory: {second} starts at RVA {start:#x}, {first} ends at {end:#x}"
    )]
    SectionsOverlapInMemory { first: String, second: String, start: u64, end: u64 },
    /// The certificate table is not where a certificate table can be.
    #[error("the certificate table {start:#x}..{end:#x} (data directory at offset {entry:#x}) is out of range: {why}")]
    CertificateTableOutOfRange { start: u64, end: u64, entry: usize, why: &'static str },
}

/// One entry of the section table, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name without its NUL padding (lossy UTF-8).
    pub name: String,
    /// The name as stored.
    pub name_bytes: [u8; 8],
    /// RVA (`VirtualAddress`).
    pub virtual_address: u32,
    /// Size in memory (`VirtualSize`).
    pub virtual_size: u32,
    /// Size in the file (`SizeOfRawData`).
    pub raw_size: u32,
    /// File offset of the data (`PointerToRawData`).
    pub offset: u32,
    /// `IMAGE_SCN_*` flags.
    pub characteristics: u32,
    /// File offset of this entry in the section table.
    pub header_offset: usize,
}

impl Section {
    /// The file range of the section's raw data.
    pub fn raw_range(&self) -> Range<usize> {
        self.offset as usize..self.offset as usize + self.raw_size as usize
    }
}

/// A parsed, validated PE/COFF image borrowing the file's bytes.
#[derive(Debug, Clone)]
pub struct Pe<'a> {
    data: &'a [u8],
    coff_offset: usize,
    coff: CoffHeader,
    optional_offset: usize,
    optional: OptionalHeader,
    pe32_plus: bool,
    data_directories_offset: usize,
    data_directories: Vec<DataDirectory>,
    section_table_offset: usize,
    sections: Vec<Section>,
    certificate_table: Option<Range<usize>>,
    authenticode_ranges: Vec<Range<usize>>,
}

fn read<T: FromBytes + KnownLayout + Immutable>(data: &[u8], offset: usize, what: &'static str) -> Result<T, PeError> {
    let need = offset as u64 + size_of::<T>() as u64;
    data.get(offset..)
        .and_then(|rest| T::read_from_prefix(rest).ok())
        .map(|(value, _)| value)
        .ok_or(PeError::Truncated { what, need, len: data.len() })
}

impl<'a> Pe<'a> {
    /// Parses and validates a PE32 or PE32+ image.
    ///
    /// Beyond the headers being present, this checks what the Authenticode digest and the
    /// section reader rely on: the section table lies within SizeOfHeaders, at most
    /// [`MAX_SECTIONS`] sections, every section's raw data lies within the file after the
    /// headers and its memory within SizeOfImage, no two sections overlap in the file or in
    /// memory, and the certificate table lies within the file after the headers. As in edk2, an IA64 image with a PE32 magic is read as
    /// PE32+ (old ELILO builds).
    pub fn parse(data: &'a [u8]) -> Result<Self, PeError> {
        let dos: DosHeader = read(data, 0, "MS-DOS header")?;
        if dos.e_magic != DOS_MAGIC {
            return Err(PeError::NotMz);
        }
        let pe_offset = dos.e_lfanew.get() as usize;
        let signature: [u8; 4] = read(data, pe_offset, "PE signature")?;
        if signature != PE_SIGNATURE {
            return Err(PeError::NoPeSignature { offset: pe_offset as u64 });
        }
        let coff_offset = pe_offset + 4;
        let coff: CoffHeader = read(data, coff_offset, "COFF file header")?;
        let optional_offset = coff_offset + size_of::<CoffHeader>();
        let magic: U16 = read(data, optional_offset, "optional header")?;
        let pe32_plus = match magic.get() {
            PE32_PLUS_MAGIC => true,
            PE32_MAGIC => coff.machine.get() == MACHINE_IA64,
            other => return Err(PeError::BadOptionalMagic { magic: other, offset: optional_offset }),
        };
        let (fixed, kind) = if pe32_plus { (PE32_PLUS_FIXED, "PE32+") } else { (PE32_FIXED, "PE32") };
        let optional_size = coff.size_of_optional_header.get();
        if (optional_size as usize) < fixed {
            return Err(PeError::OptionalHeaderTooSmall {
                size: optional_size,
                need: fixed,
                kind,
                offset: coff_offset + 16,
            });
        }
        let section_table_offset = optional_offset + optional_size as usize;
        if data.len() < section_table_offset {
            return Err(PeError::Truncated {
                what: "optional header",
                need: section_table_offset as u64,
                len: data.len(),
            });
        }
        let optional: OptionalHeader = read(data, optional_offset, "optional header")?;
        let count_offset = optional_offset + fixed - 4;
        let count: U32 = read(data, count_offset, "optional header")?;
        let count = count.get();
        let fits = (optional_size as usize - fixed) / size_of::<DataDirectory>();
        if count > MAX_DATA_DIRECTORIES || count as usize > fits {
            return Err(PeError::BadDataDirectoryCount {
                count,
                fits: fits.min(MAX_DATA_DIRECTORIES as usize),
                offset: count_offset,
            });
        }
        let data_directories_offset = optional_offset + fixed;
        let data_directories = (0..count as usize)
            .map(|i| read(data, data_directories_offset + i * size_of::<DataDirectory>(), "data directories"))
            .collect::<Result<Vec<DataDirectory>, _>>()?;

        let n = coff.number_of_sections.get();
        if n > MAX_SECTIONS {
            return Err(PeError::TooManySections { count: n, offset: coff_offset + 2 });
        }
        let table_end = section_table_offset + n as usize * size_of::<SectionHeader>();
        if data.len() < table_end {
            return Err(PeError::Truncated { what: "section table", need: table_end as u64, len: data.len() });
        }
        let size_of_headers = optional.size_of_headers.get();
        if (size_of_headers as usize) > data.len() {
            return Err(PeError::Truncated {
                what: "headers (SizeOfHeaders)",
                need: size_of_headers as u64,
                len: data.len(),
            });
        }
        if table_end > size_of_headers as usize {
            return Err(PeError::SectionTableOutsideHeaders { end: table_end, size_of_headers });
        }

        let mut sections = Vec::with_capacity(n as usize);
        for index in 0..n as usize {
            let header_offset = section_table_offset + index * size_of::<SectionHeader>();
            let h: SectionHeader = read(data, header_offset, "section table")?;
            let name = section_name(&h.name);
            if h.name[0] == b'/' {
                return Err(PeError::LongSectionName { index, name, offset: header_offset });
            }
            let s = Section {
                name,
                name_bytes: h.name,
                virtual_address: h.virtual_address.get(),
                virtual_size: h.virtual_size.get(),
                raw_size: h.size_of_raw_data.get(),
                offset: h.pointer_to_raw_data.get(),
                characteristics: h.characteristics.get(),
                header_offset,
            };
            let end = s.offset as u64 + s.raw_size as u64;
            if s.raw_size > 0 && end > data.len() as u64 {
                return Err(PeError::SectionPastEof {
                    name: s.name,
                    header: header_offset,
                    start: s.offset as u64,
                    end,
                    len: data.len(),
                });
            }
            let memory_end = s.virtual_address as u64 + s.virtual_size as u64;
            let size_of_image = optional.size_of_image.get();
            if memory_end > size_of_image as u64 {
                return Err(PeError::SectionBeyondImage {
                    name: s.name,
                    header: header_offset,
                    end: memory_end,
                    size_of_image,
                });
            }
            sections.push(s);
        }
        check_overlaps(&sections, size_of_headers)?;

        let mut pe = Pe {
            data,
            coff_offset,
            coff,
            optional_offset,
            optional,
            pe32_plus,
            data_directories_offset,
            data_directories,
            section_table_offset,
            sections,
            certificate_table: None,
            authenticode_ranges: Vec::new(),
        };
        pe.certificate_table = pe.check_certificate_table()?;
        pe.authenticode_ranges = pe.compute_authenticode_ranges()?;
        Ok(pe)
    }

    fn check_certificate_table(&self) -> Result<Option<Range<usize>>, PeError> {
        let Some(dir) = self.data_directories.get(DIRECTORY_SECURITY) else { return Ok(None) };
        let (start, size) = (dir.virtual_address.get() as u64, dir.size.get() as u64);
        if size == 0 {
            return Ok(None);
        }
        let entry = self.data_directory_offset(DIRECTORY_SECURITY);
        let end = start + size;
        let err = |why| PeError::CertificateTableOutOfRange { start, end, entry, why };
        if end > self.data.len() as u64 {
            return Err(err("it extends past the end of the file"));
        }
        if start < self.optional.size_of_headers.get() as u64 {
            return Err(err("it overlaps the headers"));
        }
        if self.sections.iter().any(|s| s.raw_size > 0 && start < s.raw_range().end as u64 && (s.offset as u64) < end) {
            return Err(err("it overlaps a section's data"));
        }
        Ok(Some(start as usize..end as usize))
    }

    /// The byte ranges edk2's `Tcg2MeasurePeImage` (SecurityPkg/Tcg/Tcg2Dxe/MeasureBootPeCoff.c,
    /// after the PE/COFF specification's "Calculating the PE Image Hash") feeds to the hash, in
    /// order:
    /// 1. the headers up to SizeOfHeaders without the CheckSum field and without the
    ///    certificate-table entry of the data directories (when there is one);
    /// 2. each section's SizeOfRawData bytes in ascending PointerToRawData order (stable; empty
    ///    sections skipped);
    /// 3. if the file is longer than the sum of the bytes hashed so far (SUM), the data from
    ///    offset SUM up to the file size less the certificate table's size.
    fn compute_authenticode_ranges(&self) -> Result<Vec<Range<usize>>, PeError> {
        let size_of_headers = self.optional.size_of_headers.get() as usize;
        let checksum = self.optional_offset + CHECKSUM_OFFSET;
        let mut ranges = Vec::with_capacity(self.sections.len() + 4);
        ranges.push(0..checksum);
        if self.data_directories.len() <= DIRECTORY_SECURITY {
            ranges.push(checksum + 4..size_of_headers);
        } else {
            let entry = self.data_directory_offset(DIRECTORY_SECURITY);
            ranges.push(checksum + 4..entry);
            ranges.push(entry + size_of::<DataDirectory>()..size_of_headers);
        }
        let mut sum = size_of_headers as u64;
        let mut sorted: Vec<&Section> = self.sections.iter().filter(|s| s.raw_size > 0).collect();
        sorted.sort_by_key(|s| s.offset);
        for s in sorted {
            ranges.push(s.raw_range());
            sum += s.raw_size as u64;
        }
        let len = self.data.len() as u64;
        if len > sum {
            let cert_size = self.data_directories.get(DIRECTORY_SECURITY).map_or(0, |d| d.size.get() as u64);
            if len > cert_size + sum {
                ranges.push(sum as usize..(len - cert_size) as usize);
            } else if len < cert_size + sum {
                let entry = self.data_directory_offset(DIRECTORY_SECURITY);
                let start = self.data_directories[DIRECTORY_SECURITY].virtual_address.get() as u64;
                return Err(PeError::CertificateTableOutOfRange {
                    start,
                    end: start + cert_size,
                    entry,
                    why: "the headers, the sections and the certificate table add up to more than the file",
                });
            }
        }
        ranges.retain(|r| !r.is_empty());
        Ok(ranges)
    }

    /// The whole file.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The COFF file header.
    pub fn coff(&self) -> &CoffHeader {
        &self.coff
    }

    /// File offset of the COFF file header.
    pub fn coff_offset(&self) -> usize {
        self.coff_offset
    }

    /// The optional header fields PE32 and PE32+ share.
    pub fn optional_header(&self) -> &OptionalHeader {
        &self.optional
    }

    /// File offset of the optional header.
    pub fn optional_header_offset(&self) -> usize {
        self.optional_offset
    }

    /// Whether the image is PE32+ (64-bit).
    pub fn is_pe32_plus(&self) -> bool {
        self.pe32_plus
    }

    /// The data directories (NumberOfRvaAndSizes entries).
    pub fn data_directories(&self) -> &[DataDirectory] {
        &self.data_directories
    }

    /// File offset of data directory entry `index` (which may be past NumberOfRvaAndSizes).
    pub fn data_directory_offset(&self, index: usize) -> usize {
        self.data_directories_offset + index * size_of::<DataDirectory>()
    }

    /// File offset of the section table.
    pub fn section_table_offset(&self) -> usize {
        self.section_table_offset
    }

    /// The sections in table order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The first section named `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The file range of the certificate table, if the image carries one (is signed).
    pub fn certificate_table(&self) -> Option<Range<usize>> {
        self.certificate_table.clone()
    }

    /// Whether the security data directory names a certificate table (ukify's test for a
    /// signed stub: a nonzero VirtualAddress).
    pub fn has_security_directory(&self) -> bool {
        self.data_directories.get(DIRECTORY_SECURITY).is_some_and(|d| d.virtual_address.get() != 0)
    }

    /// The file bytes of a section as the loader maps them, without the zero fill: the first
    /// min(VirtualSize, SizeOfRawData) bytes of its raw data.
    pub fn section_file_bytes(&self, s: &Section) -> &'a [u8] {
        let len = s.virtual_size.min(s.raw_size) as usize;
        if len == 0 {
            // An empty section's PointerToRawData is not checked and may point anywhere.
            return &[];
        }
        &self.data[s.offset as usize..s.offset as usize + len]
    }

    /// A section's raw data as stored: SizeOfRawData bytes (empty when that is 0).
    pub fn section_raw_bytes(&self, s: &Section) -> &'a [u8] {
        if s.raw_size == 0 {
            return &[];
        }
        &self.data[s.raw_range()]
    }

    /// What systemd-stub measures of a section: VirtualSize bytes of the loaded image, that is
    /// the raw data followed by zeros where VirtualSize exceeds SizeOfRawData (edk2's
    /// PeCoffLoaderLoadImage zero-fills the rest; src/boot/pe.c takes VirtualSize as the size).
    pub fn section_measured(&self, s: &Section) -> HashInput<'a> {
        let file = self.section_file_bytes(s);
        HashInput { slices: vec![file], zero_fill: (s.virtual_size as u64).saturating_sub(file.len() as u64) }
    }

    /// The ranges of the Authenticode digest, as [`HashInput`].
    pub fn authenticode_input(&self) -> HashInput<'a> {
        HashInput { slices: self.authenticode_ranges.iter().map(|r| &self.data[r.clone()]).collect(), zero_fill: 0 }
    }

    /// The file ranges that the Authenticode digest covers, in hashing order.
    pub fn authenticode_ranges(&self) -> &[Range<usize>] {
        &self.authenticode_ranges
    }

    /// The Authenticode digest as UEFI firmware measures it (PCR 4, RTMR1), see
    /// [`Pe::authenticode_ranges`]. A signed image and its unsigned original give one digest.
    pub fn authenticode(&self, alg: HashAlg) -> Vec<u8> {
        self.authenticode_input().digest(alg)
    }
}

/// A section name without its NUL padding.
pub fn section_name(raw: &[u8; 8]) -> String {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn check_overlaps(sections: &[Section], size_of_headers: u32) -> Result<(), PeError> {
    let mut by_file: Vec<&Section> = sections.iter().filter(|s| s.raw_size > 0).collect();
    by_file.sort_by_key(|s| s.offset);
    if let Some(first) = by_file.first() {
        if first.offset < size_of_headers {
            return Err(PeError::SectionOverlapsHeaders {
                name: first.name.clone(),
                header: first.header_offset,
                start: first.offset,
                size_of_headers,
            });
        }
    }
    for pair in by_file.windows(2) {
        let end = pair[0].offset as u64 + pair[0].raw_size as u64;
        if (pair[1].offset as u64) < end {
            return Err(PeError::SectionsOverlap {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
                start: pair[1].offset as u64,
                end,
            });
        }
    }
    let mut by_memory: Vec<&Section> = sections.iter().filter(|s| s.virtual_size > 0).collect();
    by_memory.sort_by_key(|s| s.virtual_address);
    for pair in by_memory.windows(2) {
        let end = pair[0].virtual_address as u64 + pair[0].virtual_size as u64;
        if (pair[1].virtual_address as u64) < end {
            return Err(PeError::SectionsOverlapInMemory {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
                start: pair[1].virtual_address as u64,
                end,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// google/authenticode-rs's tiny64.signed.efi (testdata/README.md): PE32+, e_lfanew 0x78,
    /// optional header at 0x90, section table at 0x180 (.text data at 0x400, .rdata at 0x600,
    /// 0x200 bytes each), SizeOfHeaders 0x400, certificate table 0x800..0xe00.
    const TINY: &[u8] = include_bytes!("../testdata/authenticode/tiny64.signed.efi");
    const TEXT: usize = 0x180;
    const RDATA: usize = 0x180 + 40;

    fn patched(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut v = TINY.to_vec();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    }

    #[test]
    fn the_fixture_parses() {
        let pe = Pe::parse(TINY).unwrap();
        let names: Vec<&str> = pe.sections().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [".text", ".rdata"]);
        assert_eq!(pe.section_table_offset(), TEXT);
        assert_eq!(pe.certificate_table(), Some(0x800..0xe00));
        assert_eq!(pe.data_directory_offset(DIRECTORY_SECURITY), 0x120);
    }

    #[test]
    fn bad_input_is_named_with_its_offset() {
        let le32 = |v: u32| v.to_le_bytes();
        let cases: Vec<(&str, Vec<u8>, PeError)> = vec![
            ("empty", vec![], PeError::Truncated { what: "MS-DOS header", need: 0x40, len: 0 }),
            (
                "truncated optional header",
                TINY[..0x100].to_vec(),
                PeError::Truncated { what: "optional header", need: 0x180, len: 0x100 },
            ),
            (
                "truncated section table",
                TINY[..0x1a0].to_vec(),
                PeError::Truncated { what: "section table", need: 0x1d0, len: 0x1a0 },
            ),
            ("no MZ", patched(0, b"XZ"), PeError::NotMz),
            (
                "e_lfanew past the end",
                patched(0x3c, &le32(0x10000)),
                PeError::Truncated { what: "PE signature", need: 0x10004, len: 0xe00 },
            ),
            ("no PE signature", patched(0x78, b"PX"), PeError::NoPeSignature { offset: 0x78 }),
            (
                "bad optional magic",
                patched(0x90, &[0x0b, 0x03]),
                PeError::BadOptionalMagic { magic: 0x30b, offset: 0x90 },
            ),
            (
                "optional header too small",
                patched(0x8c, &[0x60, 0]),
                PeError::OptionalHeaderTooSmall { size: 0x60, need: 112, kind: "PE32+", offset: 0x8c },
            ),
            (
                "too many data directories",
                patched(0x90 + 108, &le32(17)),
                PeError::BadDataDirectoryCount { count: 17, fits: 16, offset: 0xfc },
            ),
            (
                "absurdly many sections",
                patched(0x7e, &[0xff, 0xff]),
                PeError::TooManySections { count: 0xffff, offset: 0x7e },
            ),
            (
                "SizeOfHeaders past the end",
                patched(0x90 + 60, &le32(0x10000)),
                PeError::Truncated { what: "headers (SizeOfHeaders)", need: 0x10000, len: 0xe00 },
            ),
            (
                "section table outside the headers",
                patched(0x90 + 60, &le32(0x1c0)),
                PeError::SectionTableOutsideHeaders { end: 0x1d0, size_of_headers: 0x1c0 },
            ),
            (
                "long section name",
                patched(RDATA, b"/4\0\0\0\0\0\0"),
                PeError::LongSectionName { index: 1, name: "/4".into(), offset: RDATA },
            ),
            (
                "section past the end",
                patched(RDATA + 16, &le32(0x10000)),
                PeError::SectionPastEof {
                    name: ".rdata".into(),
                    header: RDATA,
                    start: 0x600,
                    end: 0x10600,
                    len: 0xe00,
                },
            ),
            (
                "sections overlap in the file",
                patched(RDATA + 20, &le32(0x500)),
                PeError::SectionsOverlap { first: ".text".into(), second: ".rdata".into(), start: 0x500, end: 0x600 },
            ),
            (
                "section overlaps the headers",
                patched(TEXT + 20, &le32(0x200)),
                PeError::SectionOverlapsHeaders {
                    name: ".text".into(),
                    header: TEXT,
                    start: 0x200,
                    size_of_headers: 0x400,
                },
            ),
            (
                "sections overlap in memory",
                patched(RDATA + 12, &le32(0x1000)),
                PeError::SectionsOverlapInMemory {
                    first: ".text".into(),
                    second: ".rdata".into(),
                    start: 0x1000,
                    end: 0x1004,
                },
            ),
            (
                "section beyond SizeOfImage",
                patched(RDATA + 8, &le32(0x10000)),
                PeError::SectionBeyondImage {
                    name: ".rdata".into(),
                    header: RDATA,
                    end: 0x12000,
                    size_of_image: 0x3000,
                },
            ),
            (
                "certificate table past the end",
                patched(0x124, &le32(0x10000)),
                PeError::CertificateTableOutOfRange {
                    start: 0x800,
                    end: 0x10800,
                    entry: 0x120,
                    why: "it extends past the end of the file",
                },
            ),
            (
                "certificate table inside the headers",
                patched(0x120, &le32(0x100)),
                PeError::CertificateTableOutOfRange {
                    start: 0x100,
                    end: 0x700,
                    entry: 0x120,
                    why: "it overlaps the headers",
                },
            ),
            (
                "certificate table over a section",
                patched(0x120, &le32(0x600)),
                PeError::CertificateTableOutOfRange {
                    start: 0x600,
                    end: 0xc00,
                    entry: 0x120,
                    why: "it overlaps a section's data",
                },
            ),
        ];
        for (case, bytes, want) in cases {
            let got = Pe::parse(&bytes).err();
            assert_eq!(got.as_ref(), Some(&want), "{case}");
            let message = want.to_string();
            assert!(message.contains("0x") || matches!(want, PeError::NotMz), "{case}: {message} names no offset");
        }
    }

    #[test]
    fn an_empty_section_may_point_anywhere() {
        // Found by the pe_parse fuzz target: SizeOfRawData 0, PointerToRawData past the end.
        let mut bytes = patched(RDATA + 16, &0u32.to_le_bytes());
        bytes[RDATA + 20..RDATA + 24].copy_from_slice(&0x20_0400u32.to_le_bytes());
        let pe = Pe::parse(&bytes).unwrap();
        let rdata = &pe.sections()[1];
        assert_eq!(pe.section_file_bytes(rdata), b"");
        assert_eq!(pe.section_measured(rdata).to_vec(), vec![0; 0x8a], "VirtualSize zeros");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for len in 0..TINY.len() {
            let _ = Pe::parse(&TINY[..len]);
        }
    }

    #[test]
    fn signed_and_unsigned_hash_the_same_ranges() {
        let pe = Pe::parse(TINY).unwrap();
        let total: usize = pe.authenticode_ranges().iter().map(|r| r.len()).sum();
        // Everything but the checksum (4), the certificate entry (8) and the table (0x600).
        assert_eq!(total, TINY.len() - 4 - 8 - 0x600);
    }
}
