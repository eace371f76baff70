//! Unified Kernel Images: a systemd-stub PE with the kernel, initrd and command line as
//! sections, and what systemd-stub measures of them into PCR 11.

use crate::hash::HashInput;
use crate::pe::{Pe, PeError, Section};

/// The sections systemd-stub knows, in its measuring order: the `UnifiedSection` enum of
/// systemd v257 (src/fundamental/uki.h, `unified_sections[]` in uki.c). The stub measures every
/// one present except `.pcrsig` into PCR 11 in this order (src/boot/stub.c), and
/// `systemd-measure calculate` follows the same order.
pub const UNIFIED_SECTIONS: [&str; 14] = [
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrsig", ".pcrpkey",
    ".profile", ".dtbauto", ".hwids",
];

/// Whether systemd-stub measures a unified section into PCR 11 (all but `.pcrsig`, which holds
/// the signature of the measurement itself).
pub fn is_measured(name: &str) -> bool {
    name != ".pcrsig" && UNIFIED_SECTIONS.contains(&name)
}

/// Why a PE image is not a UKI this crate can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UkiError {
    /// The PE itself is malformed.
    #[error(transparent)]
    Pe(#[from] PeError),
    /// A UKI carries its kernel in `.linux`.
    #[error("not a UKI: there is no .linux section")]
    NoLinux,
    /// The `.linux` section is not wholly in the file.
    #[error(".linux section (header at offset {header:#x}) is {virtual_size:#x} bytes in memory but only {raw_size:#x} in the file")]
    LinuxTruncated { header: usize, virtual_size: u32, raw_size: u32 },
}

/// One section as systemd-stub measures it into PCR 11: its name, then these bytes.
#[derive(Debug, Clone)]
pub struct MeasuredSection<'a> {
    /// The section name (`.linux`, …), from [`UNIFIED_SECTIONS`].
    pub name: &'static str,
    /// The section table entry.
    pub section: Section,
    /// VirtualSize bytes: the raw data, zero-filled past SizeOfRawData.
    pub bytes: HashInput<'a>,
}

/// A UKI: a PE image with a `.linux` section.
#[derive(Debug, Clone)]
pub struct Uki<'a> {
    pe: Pe<'a>,
    loader_info: Option<String>,
}

impl<'a> Uki<'a> {
    /// Parses a UKI.
    pub fn parse(data: &'a [u8]) -> Result<Self, UkiError> {
        Self::from_pe(Pe::parse(data)?)
    }

    /// Views a parsed PE image as a UKI.
    pub fn from_pe(pe: Pe<'a>) -> Result<Self, UkiError> {
        let linux = pe.section(".linux").ok_or(UkiError::NoLinux)?;
        if linux.virtual_size > linux.raw_size {
            return Err(UkiError::LinuxTruncated {
                header: linux.header_offset,
                virtual_size: linux.virtual_size,
                raw_size: linux.raw_size,
            });
        }
        let loader_info = loader_info(&pe);
        Ok(Uki { pe, loader_info })
    }

    /// The PE image.
    pub fn pe(&self) -> &Pe<'a> {
        &self.pe
    }

    /// The stub's `LoaderInfo` string, e.g. `systemd-stub 257.13-1~deb13u1`.
    pub fn loader_info(&self) -> Option<&str> {
        self.loader_info.as_deref()
    }

    /// The systemd-stub version, e.g. `257.13-1~deb13u1`.
    pub fn stub_version(&self) -> Option<&str> {
        self.loader_info.as_deref().and_then(stub_version)
    }

    /// The kernel: the `.linux` section's VirtualSize bytes, itself a PE image whose
    /// Authenticode digest the firmware measures when the stub loads it.
    pub fn linux(&self) -> &'a [u8] {
        let s = self.pe.section(".linux").expect("checked in from_pe");
        self.pe.section_file_bytes(s)
    }

    /// Whether this is a multi-profile UKI (has `.profile` sections).
    pub fn has_profiles(&self) -> bool {
        self.pe.section(".profile").is_some()
    }

    /// The sections systemd-stub measures into PCR 11, in its order ([`UNIFIED_SECTIONS`]).
    /// In a multi-profile UKI these are the base profile's: the sections before the first
    /// `.profile`.
    pub fn measured_sections(&self) -> Vec<MeasuredSection<'a>> {
        let base: Vec<&Section> = self.pe.sections().iter().take_while(|s| s.name != ".profile").collect();
        UNIFIED_SECTIONS
            .iter()
            .filter(|name| is_measured(name))
            .filter_map(|&name| {
                let s = base.iter().find(|s| s.name == name)?;
                Some(MeasuredSection { name, section: (*s).clone(), bytes: self.pe.section_measured(s) })
            })
            .collect()
    }
}

/// The `LoaderInfo` string systemd-stub embeds (`#### LoaderInfo: systemd-stub 257 ####`, in
/// its `.sdmagic` section since v254, in `.rodata` before), searched for in the sections that
/// are not unified sections, that is in the stub's own.
pub fn loader_info(pe: &Pe<'_>) -> Option<String> {
    const START: &[u8] = b"#### LoaderInfo: ";
    const END: &[u8] = b" ####";
    let mut candidates: Vec<&Section> =
        pe.sections().iter().filter(|s| !UNIFIED_SECTIONS.contains(&s.name.as_str())).collect();
    candidates.sort_by_key(|s| s.name != ".sdmagic");
    candidates.into_iter().find_map(|s| {
        let bytes = pe.section_file_bytes(s);
        let at = find(bytes, START)? + START.len();
        let len = find(&bytes[at..], END)?;
        let text = &bytes[at..at + len];
        (len <= 256 && text.iter().all(|b| b.is_ascii_graphic() || *b == b' '))
            .then(|| String::from_utf8_lossy(text).into_owned())
    })
}

/// The version in a systemd-stub `LoaderInfo` string (`systemd-stub 257.13-1~deb13u1` →
/// `257.13-1~deb13u1`).
pub fn stub_version(loader_info: &str) -> Option<&str> {
    loader_info.strip_prefix("systemd-stub ").map(str::trim)
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_version_from_loader_info() {
        assert_eq!(stub_version("systemd-stub 257.13-1~deb13u1"), Some("257.13-1~deb13u1"));
        assert_eq!(stub_version("systemd-boot 257"), None);
    }

    #[test]
    fn measured_set_excludes_pcrsig() {
        assert!(is_measured(".linux"));
        assert!(is_measured(".hwids"));
        assert!(!is_measured(".pcrsig"));
        assert!(!is_measured(".text"));
    }
}
