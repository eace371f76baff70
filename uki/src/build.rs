//! UKI assembly, byte for byte the way `ukify build` (systemd 257, src/ukify/ukify.py) lays
//! out a UKI, and the in-place command-line swap that turns one UKI into per-platform variants.
//!
//! ukify's layout, which [`UkiBuilder::build`] reproduces:
//! * the stub is taken as is, except that a COFF symbol table at its very end is cut off, each
//!   section's raw pointer and size are rounded up to FileAlignment (a no-op for any stub built
//!   by systemd), and SizeOfHeaders is rounded up to FileAlignment;
//! * the new sections follow in the order `.osrel`, `.cmdline`, `.dtb`, `.uname`, `.splash`,
//!   `.pcrpkey`, `.linux`, `.initrd`, `.ucode`, `.sbat`; each one's header goes right after the
//!   last in the section table, its data at the end of the file rounded up to FileAlignment and
//!   padded to it, its RVA right after the last section's VirtualSize rounded up to
//!   SectionAlignment; VirtualSize is the content's length;
//! * characteristics are `MEM_READ | CNT_INITIALIZED_DATA`, or `MEM_READ | CNT_CODE` for `.linux`;
//!   SizeOfInitializedData grows by each appended section's VirtualSize (`.linux` included);
//! * a section the stub already has (`.sbat`) is not appended: its contents are replaced in
//!   place, which must fit in the stub section's SizeOfRawData;
//! * `.sbat` is the stub's and the kernel's SBAT entries merged under one `sbat,1` header line,
//!   followed by the given policy lines (default: the `uki,1` line), ending in `\n\0`;
//! * several initrds are concatenated, each padded with zeros to a multiple of 4 bytes (a single
//!   initrd is taken verbatim);
//! * NX_COMPAT is cleared in the UKI when the kernel lacks it; CheckSum is set to 0 and
//!   SizeOfImage to the end of the last section rounded up to SectionAlignment.
//!
//! The same inputs give the same bytes (the tests compare against trixie's ukify). Where ukify
//! does more, this module deliberately does not:
//! * without an os-release, ukify embeds the build host's `/etc/os-release`; here there is then
//!   no `.osrel` (a build must not depend on the machine it runs on);
//! * ukify decompresses a compressed kernel; here that is an error ([`BuildError::CompressedKernel`]);
//! * an SBAT policy without its `sbat,1` header line is silently skipped by ukify and an error here;
//! * signing (sbsign/pesign), `.pcrsig` (systemd-measure sign), `.pcrpkey` from keys, profiles,
//!   `.dtbauto`, `.hwids`, extra `--section`s and ukify's splash-image check are not supported.

use crate::pe::{
    CoffHeader, OptionalHeader, Pe, PeError, SectionHeader, DLL_NX_COMPAT, FILE_LOCAL_SYMS_STRIPPED, SCN_CNT_CODE,
    SCN_CNT_INITIALIZED_DATA, SCN_MEM_READ,
};
use crate::uki::find;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// ukify's default SBAT policy for a UKI (`STUB_SBAT` in ukify.py).
pub const DEFAULT_SBAT: &str = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n\
                                uki,1,UKI,uki,1,https://uapi-group.org/specifications/specs/unified_kernel_image/\n";

/// The header line every merged `.sbat` starts with.
const SBAT_HEADER: &str = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n";

/// Why a UKI could not be assembled or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The stub is not a valid PE image.
    #[error("stub: {0}")]
    Stub(PeError),
    /// ukify refuses signed stubs: the UKI is what gets signed.
    #[error("the stub is signed (its security data directory is set); use an unsigned stub and sign the UKI instead")]
    SignedStub,
    /// The kernel looks like a PE image but is not a valid one.
    #[error("kernel: {0}")]
    Kernel(PeError),
    /// The kernel is compressed; ukify would decompress it.
    #[error("the kernel is {0}-compressed; UEFI cannot load it: pass the decompressed image")]
    CompressedKernel(&'static str),
    /// The kernel is not a PE/COFF image at all (empty, or no `MZ` header): systemd-stub can
    /// only start a kernel built with CONFIG_EFI_STUB.
    #[error("the kernel is not a PE/COFF image ({0}): systemd-stub starts only a kernel built with CONFIG_EFI_STUB")]
    NotPeKernel(&'static str),
    /// FileAlignment or SectionAlignment is not a power of two (or FileAlignment is over 64 KiB).
    #[error("the image's {what} {value:#x} is not a power of two (FileAlignment: up to 0x10000)")]
    BadAlignment { what: &'static str, value: u64 },
    /// The section table is full.
    #[error("no room for the {section} section header: the section table would end at offset {end:#x}, past SizeOfHeaders {size_of_headers:#x}")]
    NoHeaderSpace { section: String, end: usize, size_of_headers: u32 },
    /// Contents for a section the stub already has do not fit in it.
    #[error("the {section} contents are {need:#x} bytes, more than the {have:#x} bytes of the stub's {section} section they replace")]
    DoesNotFit { section: String, need: u64, have: u32 },
    /// The stub's own section to be replaced is its last one.
    #[error("cannot replace the stub's last section {0}")]
    ReplacesLastSection(String),
    /// A value does not fit a 32-bit PE field.
    #[error("{what} does not fit in a 32-bit PE field (section {section})")]
    Overflow { what: &'static str, section: String },
    /// An SBAT policy or section is malformed.
    #[error("{what}: {why}")]
    Sbat { what: String, why: &'static str },
    /// The UKI to change is not a valid PE image.
    #[error("UKI: {0}")]
    Uki(PeError),
    /// Changing a signed UKI would invalidate its signature.
    #[error("the UKI is signed; changing its command line would invalidate the signature: change the unsigned UKI, then sign")]
    SignedUki,
    /// Changing a UKI with a PCR signature would invalidate it.
    #[error("the UKI has a .pcrsig section, whose PCR 11 signatures would no longer match a new command line")]
    HasPcrSig,
    /// There is no `.cmdline` to replace.
    #[error("the UKI has no .cmdline section to replace")]
    NoCmdline,
    /// A multi-profile UKI has one `.cmdline` per profile.
    #[error("the UKI has {0} .cmdline sections (a multi-profile UKI); only single-profile UKIs are supported")]
    SeveralCmdlines(usize),
    /// Moving the sections after `.cmdline` would break the image.
    #[error("cannot move section {section} (header at offset {header:#x}) after .cmdline: {why}")]
    Immovable { section: String, header: usize, why: &'static str },
}

/// What to put into a UKI. Contents are bytes, exactly as they go into the sections; the
/// text-versus-`@FILE` conventions of ukify's command line (whitespace folding of a command-line
/// text, see [`normalize_cmdline`]) are the caller's.
#[derive(Debug, Clone, Default)]
pub struct UkiBuilder<'a> {
    stub: &'a [u8],
    linux: &'a [u8],
    initrds: Vec<&'a [u8]>,
    os_release: Option<&'a [u8]>,
    cmdline: Option<&'a [u8]>,
    devicetree: Option<&'a [u8]>,
    uname: Option<&'a str>,
    splash: Option<&'a [u8]>,
    pcrpkey: Option<&'a [u8]>,
    microcode: Option<&'a [u8]>,
    sbat: Vec<String>,
}

impl<'a> UkiBuilder<'a> {
    /// A UKI of `stub` (systemd-stub, e.g. `linuxx64.efi.stub`) and `linux` (the kernel's EFI
    /// image). Without [`UkiBuilder::os_release`] there is no `.osrel` section: unlike ukify, the
    /// build host's `/etc/os-release` is never read.
    pub fn new(stub: &'a [u8], linux: &'a [u8]) -> Self {
        UkiBuilder { stub, linux, ..Default::default() }
    }

    /// Appends an initrd (`.initrd`; several are concatenated).
    pub fn initrd(mut self, initrd: &'a [u8]) -> Self {
        self.initrds.push(initrd);
        self
    }

    /// The `.osrel` contents.
    pub fn os_release(mut self, os_release: &'a [u8]) -> Self {
        self.os_release = Some(os_release);
        self
    }

    /// The `.cmdline` contents (verbatim; see [`normalize_cmdline`] for ukify's text form).
    pub fn cmdline(mut self, cmdline: &'a [u8]) -> Self {
        self.cmdline = Some(cmdline);
        self
    }

    /// The `.dtb` contents.
    pub fn devicetree(mut self, dtb: &'a [u8]) -> Self {
        self.devicetree = Some(dtb);
        self
    }

    /// The `.uname` contents. Without this call the kernel release is read from the kernel
    /// image as ukify does (see [`kernel_release`]); an empty string leaves `.uname` out.
    pub fn uname(mut self, uname: &'a str) -> Self {
        self.uname = Some(uname);
        self
    }

    /// The `.splash` contents (a BMP image).
    pub fn splash(mut self, bmp: &'a [u8]) -> Self {
        self.splash = Some(bmp);
        self
    }

    /// The `.pcrpkey` contents (a PEM public key).
    pub fn pcrpkey(mut self, pem: &'a [u8]) -> Self {
        self.pcrpkey = Some(pem);
        self
    }

    /// The `.ucode` contents (a microcode initrd).
    pub fn microcode(mut self, ucode: &'a [u8]) -> Self {
        self.microcode = Some(ucode);
        self
    }

    /// Adds an SBAT policy text (`sbat,1,…` header line, then entries); without any,
    /// [`DEFAULT_SBAT`].
    pub fn sbat(mut self, policy: impl Into<String>) -> Self {
        self.sbat.push(policy.into());
        self
    }

    /// Assembles the UKI.
    pub fn build(&self) -> Result<Vec<u8>, BuildError> {
        let stub = Pe::parse(self.stub).map_err(BuildError::Stub)?;
        if stub.has_security_directory() {
            return Err(BuildError::SignedStub);
        }
        let kernel = parse_kernel(self.linux)?;

        let uname = match self.uname {
            Some(u) => Some(u.to_owned()),
            None => kernel_release(self.linux),
        };
        let initrd = join_initrds(&self.initrds);
        let sbat = merge_sbat(&stub, kernel.as_ref(), &self.sbat)?;
        let sections: [(&str, Option<&[u8]>); 10] = [
            (".osrel", self.os_release),
            (".cmdline", self.cmdline),
            (".dtb", self.devicetree),
            (".uname", uname.as_deref().filter(|u| !u.is_empty()).map(str::as_bytes)),
            (".splash", self.splash),
            (".pcrpkey", self.pcrpkey),
            (".linux", Some(self.linux)),
            (".initrd", initrd.as_deref()),
            (".ucode", self.microcode),
            (".sbat", Some(sbat.as_bytes())),
        ];

        let mut image = Image::new(&stub)?;
        image.strip_symbol_table();
        image.align_raw_data()?;
        image
            .optional
            .size_of_headers
            .set(round_up(image.optional.size_of_headers.get() as u64, image.file_alignment) as u32);
        let stub_sections = image.sections.len();
        for (name, contents) in sections {
            if let Some(contents) = contents {
                image.add_section(name, contents, stub_sections)?;
            }
        }
        if kernel.as_ref().is_some_and(|k| k.optional_header().dll_characteristics.get() & DLL_NX_COMPAT == 0) {
            let dll = image.optional.dll_characteristics.get();
            image.optional.dll_characteristics.set(dll & !DLL_NX_COMPAT);
        }
        image.finish()
    }
}

/// ukify's folding of a command line given as text: runs of whitespace become one space and
/// leading and trailing whitespace goes (Python's `' '.join(text.split())`). A command line read
/// from a file is used verbatim.
pub fn normalize_cmdline(text: &str) -> String {
    text.split(is_py_space).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Python's `str.isspace`: Unicode whitespace plus the ASCII information separators.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// The kernel release (`uname -r`) ukify finds in a kernel image: from the x86 real-mode
/// header's kernel_version string (Linux Documentation/arch/x86/boot.rst, field at 0x20e), else
/// from a `Linux version X (` string in the uncompressed image.
pub fn kernel_release(linux: &[u8]) -> Option<String> {
    kernel_release_x86(linux).or_else(|| kernel_release_generic(linux))
}

fn kernel_release_x86(linux: &[u8]) -> Option<String> {
    if linux.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let offset = *linux.get(0x20e)? as usize + *linux.get(0x20f)? as usize * 256;
    let start = 0x200 + offset;
    let text = linux.get(start..(start + 128).min(linux.len()))?;
    let text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
    let text = std::str::from_utf8(text).ok()?;
    // `(?P<version>[a-z0-9._+-]+) \([^ )]+\) (?:#.*)`, anchored at the start.
    let version_len =
        text.find(|c: char| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '+' | '-')).unwrap_or(text.len());
    let (version, rest) = text.split_at(version_len);
    let rest = rest.strip_prefix(" (")?;
    let builder_len = rest.find([' ', ')']).unwrap_or(rest.len());
    (version_len > 0 && builder_len > 0 && rest[builder_len..].starts_with(") #")).then(|| version.to_owned())
}

fn kernel_release_generic(linux: &[u8]) -> Option<String> {
    // ukify reads an MZ image from offset 8 on and searches `Linux version (\d\.\S+) \(`.
    let body = if linux.starts_with(b"\x7fELF") {
        linux
    } else if linux.starts_with(b"MZ") && !linux.get(4..8).is_some_and(|t| t.starts_with(b"zimg")) {
        linux.get(8..)?
    } else {
        return None;
    };
    const PREFIX: &[u8] = b"Linux version ";
    let mut at = 0;
    while let Some(i) = find(&body[at..], PREFIX) {
        let v = at + i + PREFIX.len();
        let rest = &body[v..];
        let token = rest.iter().position(|b| b" \t\n\r\x0b\x0c".contains(b)).unwrap_or(rest.len());
        if token >= 3 && rest[0].is_ascii_digit() && rest[1] == b'.' && rest[token..].starts_with(b" (") {
            return std::str::from_utf8(&rest[..token]).ok().map(str::to_owned);
        }
        at = v;
    }
    None
}

/// Parses the kernel if it is a PE image; arbitrary bytes are accepted as ukify does (its tests
/// build UKIs of placeholder files), but compressed kernels are refused.
fn parse_kernel(linux: &[u8]) -> Result<Option<Pe<'_>>, BuildError> {
    if linux.starts_with(b"MZ") {
        if linux.get(4..8).is_some_and(|t| t.starts_with(b"zimg")) {
            return Err(BuildError::CompressedKernel("zboot"));
        }
        return Pe::parse(linux).map(Some).map_err(BuildError::Kernel);
    }
    const MAGICS: [(&[u8], &str); 7] = [
        (b"\x1f\x8b", "gzip"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\x02\x21\x4c\x18", "lz4"),
        (b"\x04\x22\x4d\x18", "lz4"),
        (b"\x89LZO", "lzo"),
        (b"BZh", "bzip2"),
        (b"\x5d\x00\x00", "lzma"),
    ];
    match MAGICS.iter().find(|(magic, _)| linux.starts_with(magic)) {
        Some((_, name)) => Err(BuildError::CompressedKernel(name)),
        None => Ok(None),
    }
}

/// Checks that `linux` is a bootable kernel image for a UKI: a valid PE/COFF image (an EFI-stub
/// kernel), not compressed. [`UkiBuilder`] itself accepts placeholder bytes as ukify does (its
/// tests build UKIs of placeholder files); a tool that builds real images checks first.
pub fn check_kernel(linux: &[u8]) -> Result<(), BuildError> {
    match parse_kernel(linux)? {
        Some(_) => Ok(()),
        None if linux.is_empty() => Err(BuildError::NotPeKernel("the file is empty")),
        None => Err(BuildError::NotPeKernel("no MZ header")),
    }
}

/// ukify's `join_initrds`: one initrd verbatim; several each zero-padded to 4 bytes.
fn join_initrds(initrds: &[&[u8]]) -> Option<Vec<u8>> {
    match initrds {
        [] => None,
        [one] => Some(one.to_vec()),
        many => {
            let mut joined = Vec::with_capacity(many.iter().map(|i| i.len() + 3).sum());
            for initrd in many {
                joined.extend_from_slice(initrd);
                joined.resize(joined.len().next_multiple_of(4), 0);
            }
            // ukify leaves out an empty concatenation.
            (!joined.is_empty()).then_some(joined)
        }
    }
}

/// Python's `str.splitlines()`.
fn py_splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            lines.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
                chars.next();
                end += 1;
            }
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// ukify's `merge_sbat`: the entries (all lines after the `sbat,` header) of the stub's and the
/// kernel's `.sbat` sections, then of each policy text, under one header line, ending `\n\0`.
fn merge_sbat(stub: &Pe<'_>, kernel: Option<&Pe<'_>>, policies: &[String]) -> Result<String, BuildError> {
    let mut entries: Vec<String> = Vec::new();
    for (what, pe) in [("stub", Some(stub)), ("kernel", kernel)] {
        let Some(pe) = pe else { continue };
        for s in pe.sections().iter().filter(|s| s.name == ".sbat") {
            let raw = pe.section_raw_bytes(s);
            let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            let text = std::str::from_utf8(&raw[..end])
                .map_err(|_| BuildError::Sbat { what: format!("the {what}'s .sbat section"), why: "not UTF-8" })?;
            let lines = py_splitlines(text);
            let Some(first) = lines.first() else {
                return Err(BuildError::Sbat { what: format!("the {what}'s .sbat section"), why: "empty" });
            };
            // ukify skips a section without the header line (with a warning).
            if first.starts_with("sbat,") {
                entries.extend(lines[1..].iter().map(|l| l.to_string()));
            }
        }
    }
    let default = [DEFAULT_SBAT.to_owned()];
    let policies = if policies.is_empty() { &default[..] } else { policies };
    for policy in policies {
        let lines = py_splitlines(policy);
        match lines.first() {
            Some(first) if first.starts_with("sbat,") => entries.extend(lines[1..].iter().map(|l| l.to_string())),
            _ => {
                return Err(BuildError::Sbat {
                    what: "SBAT policy".into(),
                    why: "it must start with an 'sbat,1,SBAT Version,…' line (ukify would silently skip it)",
                })
            }
        }
    }
    Ok(format!("{SBAT_HEADER}{}\n\0", entries.join("\n")))
}

fn round_up(x: u64, align: u64) -> u64 {
    x.div_ceil(align) * align
}

/// A PE image being edited: its bytes and decoded copies of the headers that change, written
/// back by [`Image::finish`].
struct Image {
    data: Vec<u8>,
    coff_offset: usize,
    coff: CoffHeader,
    optional_offset: usize,
    optional: OptionalHeader,
    section_table_offset: usize,
    sections: Vec<SectionHeader>,
    file_alignment: u64,
    section_alignment: u64,
}

fn u32_field(value: u64, what: &'static str, section: &str) -> Result<u32, BuildError> {
    u32::try_from(value).map_err(|_| BuildError::Overflow { what, section: section.to_owned() })
}

impl Image {
    fn new(pe: &Pe<'_>) -> Result<Self, BuildError> {
        let data = pe.data().to_vec();
        let sections = (0..pe.sections().len())
            .map(|i| {
                let at = pe.section_table_offset() + i * size_of::<SectionHeader>();
                SectionHeader::read_from_prefix(&data[at..]).expect("validated by Pe::parse").0
            })
            .collect();
        let optional = pe.optional_header().clone();
        let file_alignment = optional.file_alignment.get() as u64;
        let section_alignment = optional.section_alignment.get() as u64;
        // The PE Format: FileAlignment a power of 2 from 512 to 64 KiB (smaller ones occur in
        // practice), SectionAlignment a power of 2.
        if !file_alignment.is_power_of_two() || file_alignment > 0x10000 {
            return Err(BuildError::BadAlignment { what: "FileAlignment", value: file_alignment });
        }
        if !section_alignment.is_power_of_two() {
            return Err(BuildError::BadAlignment { what: "SectionAlignment", value: section_alignment });
        }
        Ok(Image {
            data,
            coff_offset: pe.coff_offset(),
            coff: pe.coff().clone(),
            optional_offset: pe.optional_header_offset(),
            optional,
            section_table_offset: pe.section_table_offset(),
            sections,
            file_alignment,
            section_alignment,
        })
    }

    /// Cuts off a COFF symbol table (and its string table) that ends the file, as ukify does
    /// for old stubs.
    fn strip_symbol_table(&mut self) {
        let table = self.coff.pointer_to_symbol_table.get() as u64;
        if table == 0 {
            return;
        }
        let mut size = 18 * self.coff.number_of_symbols.get() as u64;
        let strings_at = (table + size) as usize;
        if let Some(strings) = self.data.get(strings_at..strings_at + 4) {
            size += u32::from_le_bytes(strings.try_into().expect("4 bytes")) as u64;
        }
        // ukify's condition is only the first; the others keep a bogus pointer from cutting
        // into the headers or sections.
        let data_end =
            self.sections.iter().map(|s| s.pointer_to_raw_data.get() as u64 + s.size_of_raw_data.get() as u64).max();
        if table + size == self.data.len() as u64
            && table >= self.optional.size_of_headers.get() as u64
            && table >= data_end.unwrap_or(0)
        {
            self.data.truncate(table as usize);
            self.coff.pointer_to_symbol_table.set(0);
            self.coff.number_of_symbols.set(0);
            let c = self.coff.characteristics.get();
            self.coff.characteristics.set(c | FILE_LOCAL_SYMS_STRIPPED);
        }
    }

    /// Rounds each section's raw pointer and size up to FileAlignment, inserting zeros, as
    /// ukify does for stubs stripped after linking. A no-op for aligned stubs.
    fn align_raw_data(&mut self) -> Result<(), BuildError> {
        for i in 0..self.sections.len() {
            let name = crate::pe::section_name(&self.sections[i].name);
            let old_ptr = self.sections[i].pointer_to_raw_data.get() as u64;
            let old_size = self.sections[i].size_of_raw_data.get() as u64;
            let new_ptr = round_up(old_ptr, self.file_alignment);
            let new_size = round_up(old_size, self.file_alignment);
            let (pad_ptr, pad_size) = (new_ptr - old_ptr, new_size - old_size);
            if pad_ptr + pad_size == 0 {
                continue;
            }
            self.sections[i].pointer_to_raw_data.set(u32_field(new_ptr, "PointerToRawData", &name)?);
            self.sections[i].size_of_raw_data.set(u32_field(new_size, "SizeOfRawData", &name)?);
            for later in &mut self.sections[i + 1..] {
                let p = later.pointer_to_raw_data.get() as u64 + pad_ptr + pad_size;
                later.pointer_to_raw_data.set(u32_field(p, "PointerToRawData", &name)?);
            }
            // Python slicing clamps to the data's length; so does this.
            let len = self.data.len();
            let (a, b) = ((old_ptr as usize).min(len), ((old_ptr + old_size) as usize).min(len));
            let mut data = Vec::with_capacity(len + (pad_ptr + pad_size) as usize);
            data.extend_from_slice(&self.data[..a]);
            data.resize(data.len() + pad_ptr as usize, 0);
            data.extend_from_slice(&self.data[a..b]);
            data.resize(data.len() + pad_size as usize, 0);
            data.extend_from_slice(&self.data[b..]);
            self.data = data;
        }
        Ok(())
    }

    fn add_section(&mut self, name: &str, contents: &[u8], stub_sections: usize) -> Result<(), BuildError> {
        let header_end = self.section_table_offset + (self.sections.len() + 1) * size_of::<SectionHeader>();
        let size_of_headers = self.optional.size_of_headers.get();
        if header_end > size_of_headers as usize {
            return Err(BuildError::NoHeaderSpace { section: name.to_owned(), end: header_end, size_of_headers });
        }
        let virtual_size = u32_field(contents.len() as u64, "VirtualSize", name)?;

        if let Some(i) = (0..stub_sections).find(|&i| crate::pe::section_name(&self.sections[i].name) == name) {
            // The stub has this section (.sbat): swap its contents in place.
            let have = self.sections[i].size_of_raw_data.get();
            if virtual_size > have {
                return Err(BuildError::DoesNotFit { section: name.to_owned(), need: contents.len() as u64, have });
            }
            let next = self.sections.get(i + 1).ok_or_else(|| BuildError::ReplacesLastSection(name.to_owned()))?;
            let start = (self.sections[i].pointer_to_raw_data.get() as usize).min(self.data.len());
            let next_start = (next.pointer_to_raw_data.get() as usize).min(self.data.len());
            let mut data = Vec::with_capacity(self.data.len());
            data.extend_from_slice(&self.data[..start]);
            data.extend_from_slice(contents);
            data.resize(data.len() + (have - virtual_size) as usize, 0);
            data.extend_from_slice(&self.data[next_start..]);
            self.data = data;
            self.sections[i].virtual_size.set(virtual_size);
            return Ok(());
        }

        let last_end = self.sections.last().map_or(0, |l| l.virtual_address.get() as u64 + l.virtual_size.get() as u64);
        let pointer = round_up(self.data.len() as u64, self.file_alignment);
        let raw_size = round_up(contents.len() as u64, self.file_alignment);
        let mut header = SectionHeader::new_zeroed();
        let name_bytes = name.as_bytes();
        header.name[..name_bytes.len()].copy_from_slice(name_bytes);
        header.virtual_size.set(virtual_size);
        header.virtual_address.set(u32_field(round_up(last_end, self.section_alignment), "VirtualAddress", name)?);
        header.size_of_raw_data.set(u32_field(raw_size, "SizeOfRawData", name)?);
        header.pointer_to_raw_data.set(u32_field(pointer, "PointerToRawData", name)?);
        let kind = if name == ".linux" { SCN_CNT_CODE } else { SCN_CNT_INITIALIZED_DATA };
        header.characteristics.set(SCN_MEM_READ | kind);

        self.data.resize(pointer as usize, 0);
        self.data.extend_from_slice(contents);
        self.data.resize((pointer + raw_size) as usize, 0);
        let initialized = self.optional.size_of_initialized_data.get() as u64 + virtual_size as u64;
        self.optional.size_of_initialized_data.set(u32_field(initialized, "SizeOfInitializedData", name)?);
        self.sections.push(header);
        Ok(())
    }

    /// Sets CheckSum to 0 and SizeOfImage to the end of the last section, and writes the
    /// headers back.
    fn finish(mut self) -> Result<Vec<u8>, BuildError> {
        self.optional.check_sum.set(0);
        if let Some(last) = self.sections.last() {
            let name = crate::pe::section_name(&last.name);
            let end = last.virtual_address.get() as u64 + last.virtual_size.get() as u64;
            self.optional.size_of_image.set(u32_field(round_up(end, self.section_alignment), "SizeOfImage", &name)?);
        }
        let count = u16::try_from(self.sections.len())
            .map_err(|_| BuildError::Overflow { what: "NumberOfSections", section: String::new() })?;
        self.coff.number_of_sections.set(count);
        let put = |data: &mut Vec<u8>, at: usize, bytes: &[u8]| {
            if data.len() < at + bytes.len() {
                data.resize(at + bytes.len(), 0);
            }
            data[at..at + bytes.len()].copy_from_slice(bytes)
        };
        put(&mut self.data, self.coff_offset, self.coff.as_bytes());
        put(&mut self.data, self.optional_offset, self.optional.as_bytes());
        for (i, s) in self.sections.iter().enumerate() {
            put(&mut self.data, self.section_table_offset + i * size_of::<SectionHeader>(), s.as_bytes());
        }
        Ok(self.data)
    }
}

/// Rebuilds a UKI with another `.cmdline` and everything else unchanged: the result is what
/// [`UkiBuilder`] (and `ukify build`) make of the same inputs with that command line.
///
/// The sections after `.cmdline` move (their offsets and RVAs follow from the new length), so
/// they must be laid out as ukify lays out appended sections and nothing may point into them
/// (entry point, data directories). Signed UKIs and UKIs with `.pcrsig` are refused: their
/// signatures would no longer hold.
pub fn set_cmdline(uki: &[u8], cmdline: &[u8]) -> Result<Vec<u8>, BuildError> {
    let pe = Pe::parse(uki).map_err(BuildError::Uki)?;
    if pe.has_security_directory() {
        return Err(BuildError::SignedUki);
    }
    if pe.section(".pcrsig").is_some() {
        return Err(BuildError::HasPcrSig);
    }
    let cmdlines: Vec<usize> =
        pe.sections().iter().enumerate().filter(|(_, s)| s.name == ".cmdline").map(|(i, _)| i).collect();
    let index = match cmdlines[..] {
        [] => return Err(BuildError::NoCmdline),
        [one] => one,
        _ => return Err(BuildError::SeveralCmdlines(cmdlines.len())),
    };
    let mut image = Image::new(&pe)?;
    let (fa, sa) = (image.file_alignment, image.section_alignment);
    let cmd = pe.sections()[index].clone();

    // Everything after .cmdline moves: check that nothing refers to it and that it is laid out
    // the ukify way, so that re-laying it out the same way is exactly what ukify would produce.
    let entry = pe.optional_header().address_of_entry_point.get();
    let referenced: Vec<u32> = pe
        .data_directories()
        .iter()
        .enumerate()
        .filter(|&(i, d)| i != crate::pe::DIRECTORY_SECURITY && d.size.get() != 0)
        .map(|(_, d)| d.virtual_address.get())
        .chain([entry])
        .collect();
    let mut prev = cmd.clone();
    for s in &pe.sections()[index + 1..] {
        let immovable = |why| BuildError::Immovable { section: s.name.clone(), header: s.header_offset, why };
        let range = s.virtual_address as u64..s.virtual_address as u64 + s.virtual_size.max(s.raw_size) as u64;
        if referenced.iter().any(|&rva| range.contains(&(rva as u64))) {
            return Err(immovable("the entry point or a data directory points into it"));
        }
        if s.offset as u64 != round_up(prev.offset as u64 + prev.raw_size as u64, fa)
            || s.raw_size as u64 != round_up(s.virtual_size as u64, fa)
        {
            return Err(immovable("its data is not where ukify would have put it"));
        }
        if s.virtual_address as u64 != round_up(prev.virtual_address as u64 + prev.virtual_size as u64, sa) {
            return Err(immovable("its RVA is not where ukify would have put it"));
        }
        prev = s.clone();
    }
    if pe.data().len() as u64 != prev.offset as u64 + prev.raw_size as u64 {
        return Err(BuildError::Immovable {
            section: prev.name.clone(),
            header: prev.header_offset,
            why: "data follows it in the file",
        });
    }

    let new_size = u32_field(cmdline.len() as u64, "VirtualSize", ".cmdline")?;
    let mut data = Vec::with_capacity(uki.len() + cmdline.len());
    data.extend_from_slice(&image.data[..(cmd.offset as usize).min(image.data.len())]);
    data.extend_from_slice(cmdline);
    data.resize(round_up(data.len() as u64, fa) as usize, 0);
    let h = &mut image.sections[index];
    h.virtual_size.set(new_size);
    h.size_of_raw_data.set(u32_field(round_up(cmdline.len() as u64, fa), "SizeOfRawData", ".cmdline")?);
    let mut last_end = cmd.virtual_address as u64 + new_size as u64;
    for (h, s) in image.sections[index + 1..].iter_mut().zip(&pe.sections()[index + 1..]) {
        let pointer = round_up(data.len() as u64, fa);
        data.resize(pointer as usize, 0);
        data.extend_from_slice(pe.section_raw_bytes(s));
        h.pointer_to_raw_data.set(u32_field(pointer, "PointerToRawData", &s.name)?);
        let rva = round_up(last_end, sa);
        h.virtual_address.set(u32_field(rva, "VirtualAddress", &s.name)?);
        last_end = rva + s.virtual_size as u64;
    }
    image.data = data;
    let initialized = image.optional.size_of_initialized_data.get() as i64 - cmd.virtual_size as i64 + new_size as i64;
    image.optional.size_of_initialized_data.set(u32_field(
        initialized.max(0) as u64,
        "SizeOfInitializedData",
        ".cmdline",
    )?);
    image.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_folding_matches_python_split() {
        let cases = [
            ("console=ttyS0  root=/dev/vda  ", "console=ttyS0 root=/dev/vda"),
            ("\t a\nb\r\n c\x1c d\u{a0}e ", "a b c d e"),
            ("   ", ""),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_cmdline(input), want, "normalize_cmdline({input:?})");
        }
    }

    #[test]
    fn splitlines_matches_python() {
        let cases: [(&str, &[&str]); 6] = [
            ("", &[]),
            ("a", &["a"]),
            ("a\n", &["a"]),
            ("a\r\nb\rc\n\nd", &["a", "b", "c", "", "d"]),
            ("\n", &[""]),
            ("x\u{2028}y\x0bz", &["x", "y", "z"]),
        ];
        for (input, want) in cases {
            assert_eq!(py_splitlines(input), want, "splitlines({input:?})");
        }
    }

    #[test]
    fn initrds_join_like_ukify() {
        assert_eq!(join_initrds(&[]), None);
        assert_eq!(join_initrds(&[b"abc"]), Some(b"abc".to_vec()), "one initrd is taken verbatim");
        assert_eq!(join_initrds(&[b""]), Some(vec![]), "one empty initrd still makes a section");
        assert_eq!(join_initrds(&[b"abc", b"defgh"]), Some(b"abc\0defgh\0\0\0".to_vec()));
        assert_eq!(join_initrds(&[b"", b""]), None, "an empty concatenation is left out");
    }

    #[test]
    fn kernel_release_from_x86_header() {
        let mut k = vec![0u8; 0x400];
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x20e] = 0x00;
        k[0x20f] = 0x01; // version string at 0x200 + 0x100
        let v = b"6.12.117+deb13-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian\0";
        k[0x300..0x300 + v.len()].copy_from_slice(v);
        assert_eq!(kernel_release(&k).as_deref(), Some("6.12.117+deb13-cloud-amd64"));
        k[0x300] = b'X'; // not in [a-z0-9._+-]
        assert_eq!(kernel_release(&k), None);
    }

    const TINY: &[u8] = include_bytes!("../testdata/authenticode/tiny64.efi");
    const TINY_SIGNED: &[u8] = include_bytes!("../testdata/authenticode/tiny64.signed.efi");

    #[test]
    fn signed_stubs_are_refused() {
        assert_eq!(UkiBuilder::new(TINY_SIGNED, b"HALLO\n").build(), Err(BuildError::SignedStub));
    }

    #[test]
    fn a_full_section_table_is_an_error() {
        // SizeOfHeaders 0x200 leaves room for one more header after the two at 0x180..0x1d0.
        let mut stub = TINY.to_vec();
        stub[0x90 + 60..0x90 + 64].copy_from_slice(&0x200u32.to_le_bytes());
        let err = UkiBuilder::new(&stub, b"HALLO\n").cmdline(b"x").build().unwrap_err();
        assert_eq!(err, BuildError::NoHeaderSpace { section: ".linux".into(), end: 0x220, size_of_headers: 0x200 });
    }

    #[test]
    fn a_built_uki_parses_and_reads_back() {
        let out = UkiBuilder::new(TINY, b"HALLO\n").initrd(b"foobar\n").cmdline(b"quiet").build().unwrap();
        let uki = crate::Uki::parse(&out).unwrap();
        assert_eq!(uki.linux(), b"HALLO\n");
        let names: Vec<&str> = uki.measured_sections().iter().map(|s| s.name).collect();
        assert_eq!(names, [".linux", ".cmdline", ".initrd", ".sbat"], "stub order");
        let sbat = uki.pe().section(".sbat").unwrap();
        assert_eq!(uki.pe().section_file_bytes(sbat), format!("{DEFAULT_SBAT}\0").as_bytes());
        let changed = set_cmdline(&out, b"console=ttyS0 quiet").unwrap();
        let want =
            UkiBuilder::new(TINY, b"HALLO\n").initrd(b"foobar\n").cmdline(b"console=ttyS0 quiet").build().unwrap();
        assert!(changed == want, "set_cmdline equals a fresh build");
    }

    #[test]
    fn compressed_kernels_are_refused() {
        assert_eq!(parse_kernel(b"\x1f\x8b\x08\0").unwrap_err(), BuildError::CompressedKernel("gzip"));
        assert_eq!(parse_kernel(b"MZ\0\0zimg").unwrap_err(), BuildError::CompressedKernel("zboot"));
        assert!(parse_kernel(b"HALLO\n").unwrap().is_none(), "placeholder bytes are accepted like ukify");
        assert_eq!(check_kernel(b"HALLO\n").unwrap_err(), BuildError::NotPeKernel("no MZ header"));
        assert_eq!(check_kernel(b"").unwrap_err(), BuildError::NotPeKernel("the file is empty"));
        assert_eq!(check_kernel(b"\x1f\x8b\x08\0").unwrap_err(), BuildError::CompressedKernel("gzip"));
    }
}
