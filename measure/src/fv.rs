//! Firmware volumes: which modules a UEFI firmware image was built with.
//!
//! Some of what a firmware measures is decided when it is *built*, not by its variable store.
//! The one that matters to PCR 7 is Secure Boot support (edk2's `SECURE_BOOT_ENABLE`): firmware
//! built with it creates the `SecureBoot` variable and measures it (0 in setup mode, with no
//! `PK`), firmware built without it measures an empty one. Debian's bookworm
//! `OVMF_CODE_4M.fd` is built with it, trixie's is not (trixie ships the Secure Boot build as
//! `OVMF_CODE_4M.secboot.fd`); the file name does not say.
//!
//! A firmware image (PI specification volume 3) is a sequence of *firmware volumes* (header
//! signature `_FVH`), each a sequence of FFS *files* named by GUID, whose contents are
//! *sections*. OVMF's DXE drivers sit in a firmware volume inside an LZMA-compressed section
//! (edk2's `LzmaCustomDecompress` GUIDed section) inside `FVMAIN_COMPACT`. [`files`] walks all of
//! it — volumes, files, sections, compressed sections, volumes within sections — and lists every
//! FFS file it finds. [`secure_boot_support`] answers from that list: the build has Secure Boot
//! support iff it contains `SecureBootConfigDxe` (FILE_GUID
//! `f0e6a44f-7195-41c3-ac64-54f202cd0a21`), the module OVMF's `.fdf` includes exactly when
//! `SECURE_BOOT_ENABLE` is set — the same switch that links the authenticated-variable library
//! (`AuthVariableLib`) which creates `SecureBoot`. Real boots of both kinds of build are the
//! judge (`measure/testdata/boot/`).
//!
//! Untrusted input: every offset is checked, nesting is bounded, and decompression stops at a
//! declared size bounded by [`MAX_DECOMPRESSED`].

use crate::ovmf::Uuid;

/// `f0e6a44f-7195-41c3-ac64-54f202cd0a21`: edk2's `SecurityPkg/VariableAuthenticated/
/// SecureBootConfigDxe` (FILE_GUID), in OVMF only when built with `SECURE_BOOT_ENABLE`.
pub const SECURE_BOOT_CONFIG_DXE: Uuid =
    Uuid::from_fields(0xf0e6_a44f, 0x7195, 0x41c3, &[0xac, 0x64, 0x54, 0xf2, 0x02, 0xcd, 0x0a, 0x21]);
/// `ee4e5898-3914-4259-9d6e-dc7bd79403cf`: edk2's LZMA GUIDed section (`LzmaCustomDecompress`).
pub const LZMA_SECTION_GUID: Uuid =
    Uuid::from_fields(0xee4e_5898, 0x3914, 0x4259, &[0x9d, 0x6e, 0xdc, 0x7b, 0xd7, 0x94, 0x03, 0xcf]);

/// `8c8ce578-8a3d-4f1c-9935-896185c32dd3`: a volume holding FFS files (`EFI_FIRMWARE_FILE_SYSTEM2_GUID`).
pub const FFS2_GUID: Uuid =
    Uuid::from_fields(0x8c8c_e578, 0x8a3d, 0x4f1c, &[0x99, 0x35, 0x89, 0x61, 0x85, 0xc3, 0x2d, 0xd3]);
/// `5473c07a-3dcb-4dca-bd6f-1e9689e7349a`: the same with files over 16 MiB (`…FILE_SYSTEM3_GUID`).
pub const FFS3_GUID: Uuid =
    Uuid::from_fields(0x5473_c07a, 0x3dcb, 0x4dca, &[0xbd, 0x6f, 0x1e, 0x96, 0x89, 0xe7, 0x34, 0x9a]);

/// The most bytes all decompressed sections of one image may add up to (OVMF's DXE volume is
/// ~16 MB).
pub const MAX_DECOMPRESSED: u64 = 64 << 20;
/// Volumes within sections within volumes: OVMF nests three deep.
const MAX_DEPTH: u32 = 8;

const FV_SIGNATURE: &[u8; 4] = b"_FVH";
const FV_HEADER_MIN: usize = 56;
const FFS_HEADER: usize = 24;
const FFS_HEADER2: usize = 32;
const FFS_ATTRIB_LARGE_FILE: u8 = 0x01;
const FV_FILETYPE_RAW: u8 = 0x01;
const FV_FILETYPE_FFS_PAD: u8 = 0xf0;
const SECTION_COMPRESSION: u8 = 0x01;
const SECTION_GUID_DEFINED: u8 = 0x02;
const SECTION_FIRMWARE_VOLUME_IMAGE: u8 = 0x17;
const GUIDED_SECTION_PROCESSING_REQUIRED: u16 = 0x01;

/// A structural fault in a firmware image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FvError {
    /// No volume of firmware files anywhere in the image (a variable store is a volume too, of
    /// another file system).
    #[error("no UEFI firmware volume holding firmware files in {len} bytes: not UEFI firmware code (a VARS file?)")]
    NoVolume {
        /// Length of the image.
        len: usize,
    },
    /// A compressed section does not decompress.
    #[error("LZMA section at offset {offset:#x} (in {volume}) does not decompress: {reason}")]
    Lzma {
        /// Offset of the section within its container.
        offset: usize,
        /// Which volume, as a path of offsets.
        volume: String,
        /// The decoder's reason.
        reason: String,
    },
    /// Decompressed sections would exceed [`MAX_DECOMPRESSED`].
    #[error("LZMA section at offset {offset:#x} (in {volume}) declares {size} bytes: over the {MAX_DECOMPRESSED}-byte bound for a firmware image")]
    TooLarge {
        /// Offset of the section within its container.
        offset: usize,
        /// Which volume.
        volume: String,
        /// Its declared decompressed size (`u64::MAX`: not declared).
        size: u64,
    },
    /// Volumes nested deeper than any real firmware nests them.
    #[error("firmware volumes nested more than {MAX_DEPTH} deep (in {volume})")]
    TooDeep {
        /// Which volume.
        volume: String,
    },
}

/// One FFS file found in a firmware image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfsFile {
    /// The file's name (edk2: the module's FILE_GUID).
    pub name: Uuid,
    /// `EFI_FV_FILETYPE_*` (7: DXE driver, 6: PEIM …).
    pub file_type: u8,
    /// Where it is: the volume's path of offsets (`0x0/0x90:lzma/0x0`), then the file's offset.
    pub location: String,
}

/// Whether a firmware build supports Secure Boot, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureBootSupport {
    /// `SecureBootConfigDxe` is in the image.
    pub supported: bool,
    /// Where it was found (`None` when absent).
    pub found_at: Option<String>,
    /// How many FFS files the image holds (all of them were looked at).
    pub files: usize,
}

/// Tells from the firmware *code* whether it is built with Secure Boot support.
pub fn secure_boot_support(image: &[u8]) -> Result<SecureBootSupport, FvError> {
    let files = files(image)?;
    let found = files.iter().find(|f| f.name == SECURE_BOOT_CONFIG_DXE);
    Ok(SecureBootSupport {
        supported: found.is_some(),
        found_at: found.map(|f| f.location.clone()),
        files: files.len(),
    })
}

/// Every FFS file in every firmware volume of `image`, compressed ones included.
pub fn files(image: &[u8]) -> Result<Vec<FfsFile>, FvError> {
    let mut w = Walker { out: Vec::new(), budget: MAX_DECOMPRESSED, ffs_volumes: 0 };
    w.scan(image, "", 0)?;
    if w.ffs_volumes == 0 {
        return Err(FvError::NoVolume { len: image.len() });
    }
    Ok(w.out)
}

struct Walker {
    out: Vec<FfsFile>,
    budget: u64,
    ffs_volumes: usize,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u24_at(b: &[u8], at: usize) -> usize {
    usize::from(b[at]) | usize::from(b[at + 1]) << 8 | usize::from(b[at + 2]) << 16
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn align(x: usize, a: usize) -> Option<usize> {
    x.checked_add(a - 1).map(|v| v & !(a - 1))
}

/// The length of a valid volume header at `b[at..]`, or `None`.
fn volume_at(b: &[u8], at: usize) -> Option<usize> {
    let h = b.get(at..at.checked_add(FV_HEADER_MIN)?)?;
    if &h[40..44] != FV_SIGNATURE {
        return None;
    }
    let len = usize::try_from(u64_at(h, 32)).ok()?;
    let header_len = usize::from(u16_at(h, 48));
    if header_len < FV_HEADER_MIN || header_len > len || len > b.len() - at || header_len % 2 != 0 {
        return None;
    }
    // The header's 16-bit words sum to zero.
    let sum = b[at..at + header_len].chunks_exact(2).fold(0u16, |s, w| s.wrapping_add(u16_at(w, 0)));
    (sum == 0).then_some(len)
}

impl Walker {
    /// Finds the volumes in `b` (8-byte aligned, as the PI spec places them) and walks those
    /// that hold FFS files.
    fn scan(&mut self, b: &[u8], path: &str, depth: u32) -> Result<(), FvError> {
        if depth > MAX_DEPTH {
            return Err(FvError::TooDeep { volume: path.to_owned() });
        }
        let mut at = 0;
        while at + FV_HEADER_MIN <= b.len() {
            match volume_at(b, at) {
                Some(len) => {
                    let file_system = crate::ovmf::guid_at(b, at + 16);
                    if file_system == FFS2_GUID || file_system == FFS3_GUID {
                        self.ffs_volumes += 1;
                        self.volume(&b[at..at + len], &format!("{path}{at:#x}"), depth)?;
                    }
                    at += align(len, 8).unwrap_or(b.len());
                }
                None => at += 8,
            }
        }
        Ok(())
    }

    fn volume(&mut self, v: &[u8], path: &str, depth: u32) -> Result<(), FvError> {
        let header_len = usize::from(u16_at(v, 48));
        let ext = usize::from(u16_at(v, 52));
        let mut at = header_len;
        if ext != 0 && ext.checked_add(20).is_some_and(|e| e <= v.len()) {
            let ext_size = u32_at(v, ext + 16) as usize;
            at = at.max(ext.saturating_add(ext_size));
        }
        let erased = if u32_at(v, 44) & 0x800 != 0 { 0xff } else { 0x00 };
        while let Some(a) = align(at, 8) {
            at = a;
            let Some(h) = v.get(at..at + FFS_HEADER) else { break };
            if h.iter().all(|&x| x == erased) || h.iter().all(|&x| x == 0xff) {
                break; // free space
            }
            let (size, header) = if h[19] & FFS_ATTRIB_LARGE_FILE != 0 {
                let Some(h2) = v.get(at..at + FFS_HEADER2) else { break };
                (usize::try_from(u64_at(h2, 24)).unwrap_or(usize::MAX), FFS_HEADER2)
            } else {
                (u24_at(h, 20), FFS_HEADER)
            };
            if size < header || size > v.len() - at {
                break; // not a file: the rest of the volume is not FFS
            }
            let name = crate::ovmf::guid_at(h, 0);
            let file_type = h[18];
            if file_type != FV_FILETYPE_FFS_PAD {
                self.out.push(FfsFile { name, file_type, location: format!("{path}/{at:#x}") });
            }
            if file_type != FV_FILETYPE_RAW && file_type != FV_FILETYPE_FFS_PAD {
                self.sections(&v[at + header..at + size], &format!("{path}/{at:#x}"), depth)?;
            }
            at += size;
        }
        Ok(())
    }

    fn sections(&mut self, s: &[u8], path: &str, depth: u32) -> Result<(), FvError> {
        if depth > MAX_DEPTH {
            return Err(FvError::TooDeep { volume: path.to_owned() });
        }
        let mut at = 0;
        while let Some(a) = align(at, 4) {
            at = a;
            let Some(h) = s.get(at..at + 4) else { break };
            let (size, header) = match u24_at(h, 0) {
                0xff_ffff => match s.get(at + 4..at + 8) {
                    Some(x) => (u32_at(x, 0) as usize, 8),
                    None => break,
                },
                n => (n, 4),
            };
            if size < header || size > s.len() - at {
                break;
            }
            let body = &s[at..at + size];
            match h[3] {
                SECTION_FIRMWARE_VOLUME_IMAGE => {
                    self.scan(&body[header..], &format!("{path}/{at:#x}:fv/"), depth + 1)?;
                }
                SECTION_GUID_DEFINED if size >= header + 20 => {
                    let guid = crate::ovmf::guid_at(body, header);
                    let data_offset = usize::from(u16_at(body, header + 16));
                    let attributes = u16_at(body, header + 18);
                    if data_offset >= header + 20 && data_offset <= size {
                        let data = &body[data_offset..];
                        if guid == LZMA_SECTION_GUID {
                            let out = self.lzma(data, at, path)?;
                            self.sections(&out, &format!("{path}/{at:#x}:lzma"), depth + 1)?;
                        } else if attributes & GUIDED_SECTION_PROCESSING_REQUIRED == 0 {
                            self.sections(data, &format!("{path}/{at:#x}"), depth + 1)?;
                        }
                        // Other encodings (processing required, unknown GUID): not looked into.
                    }
                }
                SECTION_COMPRESSION => {} // EFI/Tiano compression: not used by OVMF's volumes
                _ => {}
            }
            at += size;
        }
        Ok(())
    }

    /// Decompresses an LZMA "alone" stream (5 property bytes, a 64-bit size, the data), within
    /// what is left of the budget.
    fn lzma(&mut self, data: &[u8], offset: usize, path: &str) -> Result<Vec<u8>, FvError> {
        let err = |reason: String| FvError::Lzma { offset, volume: path.to_owned(), reason };
        if data.len() < 13 {
            return Err(err(format!("{} bytes, shorter than its 13-byte header", data.len())));
        }
        let size = u64_at(data, 5);
        if size > self.budget {
            return Err(FvError::TooLarge { offset, volume: path.to_owned(), size });
        }
        self.budget -= size;
        let mut out = Vec::with_capacity(size.min(16 << 20) as usize);
        let options = lzma_rs::decompress::Options {
            unpacked_size: lzma_rs::decompress::UnpackedSize::ReadFromHeader,
            memlimit: Some(MAX_DECOMPRESSED as usize),
            allow_incomplete: false,
        };
        lzma_rs::lzma_decompress_with_options(&mut &data[..], &mut out, &options).map_err(|e| err(e.to_string()))?;
        if out.len() as u64 != size {
            return Err(err(format!("{} bytes out, {size} declared", out.len())));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_firmware_is_an_error() {
        assert_eq!(files(&[0u8; 4096]), Err(FvError::NoVolume { len: 4096 }));
        assert_eq!(files(&[]), Err(FvError::NoVolume { len: 0 }));
    }

    /// A minimal volume with one DXE driver file named `name`, checksummed.
    fn volume_with(name: Uuid) -> Vec<u8> {
        let mut v = vec![0xffu8; 0x100];
        v[..40].fill(0);
        v[16..32].copy_from_slice(&FFS2_GUID.to_bytes_le());
        v[32..40].copy_from_slice(&0x100u64.to_le_bytes());
        v[40..44].copy_from_slice(FV_SIGNATURE);
        v[44..48].copy_from_slice(&0x800u32.to_le_bytes());
        v[48..50].copy_from_slice(&0x48u16.to_le_bytes());
        v[50..52].fill(0);
        v[52..0x48].fill(0);
        let sum = v[..0x48].chunks_exact(2).fold(0u16, |s, w| s.wrapping_add(u16_at(w, 0)));
        v[50..52].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
        let f = 0x48;
        v[f..f + 16].copy_from_slice(&name.to_bytes_le());
        v[f + 18] = 0x07;
        v[f + 19] = 0;
        v[f + 20..f + 23].copy_from_slice(&[0x20, 0, 0]);
        v[f + 24..f + 32].copy_from_slice(&[8, 0, 0, 0x19, 0, 0, 0, 0]); // a RAW section
        v
    }

    #[test]
    fn finds_a_file_and_stops_at_free_space() {
        let v = volume_with(SECURE_BOOT_CONFIG_DXE);
        let f = files(&v).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, SECURE_BOOT_CONFIG_DXE);
        assert_eq!(f[0].location, "0x0/0x48");
        assert!(secure_boot_support(&v).unwrap().supported);
        let other = volume_with(LZMA_SECTION_GUID);
        assert!(!secure_boot_support(&other).unwrap().supported);
    }

    #[test]
    fn a_bad_checksum_is_not_a_volume() {
        let mut v = volume_with(SECURE_BOOT_CONFIG_DXE);
        v[51] ^= 1;
        assert!(matches!(files(&v), Err(FvError::NoVolume { .. })));
    }

    #[test]
    fn an_oversized_file_ends_the_walk() {
        let mut v = volume_with(SECURE_BOOT_CONFIG_DXE);
        v[0x48 + 20..0x48 + 23].copy_from_slice(&[0xff, 0xff, 0x7f]);
        assert_eq!(files(&v).unwrap(), vec![]);
    }
}
