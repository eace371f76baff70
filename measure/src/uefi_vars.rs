//! UEFI variable stores as OVMF keeps them, and the Secure Boot signature lists they hold.
//!
//! PCR 7 records the Secure Boot policy: the firmware measures the `SecureBoot`, `PK`, `KEK`,
//! `db` and `dbx` variables before it runs anything from disk, and later the `db` entry that
//! let each image run. On a virtual machine those variables live in the firmware's
//! *variable store*, a flash image the VMM attaches next to the firmware code — Debian ships
//! `OVMF_VARS_4M.fd` (empty), `OVMF_VARS_4M.ms.fd` (Microsoft's keys) and
//! `OVMF_VARS_4M.snakeoil.fd` (a test key). Predicting PCR 7 therefore starts by reading that
//! file exactly as edk2's variable driver reads it at boot.
//!
//! The layout, all little-endian (edk2 `MdePkg/Include/Pi/PiFirmwareVolume.h`,
//! `MdeModulePkg/Include/Uuid/VariableFormat.h`, `OvmfPkg/Include/Fdf/VarStore.fdf.inc`):
//!
//! * an `EFI_FIRMWARE_VOLUME_HEADER` at offset 0 whose file system GUID is
//!   `gEfiSystemNvDataFvGuid`;
//! * at `HeaderLength`, a `VARIABLE_STORE_HEADER` (GUID `gEfiAuthenticatedVariableGuid` for the
//!   authenticated layout every current OVMF uses, `gEfiVariableGuid` for the older plain one),
//!   formatted (`0x5a`) and healthy (`0xfe`);
//! * variables, each a header (`AUTHENTICATED_VARIABLE_HEADER`, 60 bytes, or `VARIABLE_HEADER`,
//!   32 bytes) starting with `StartId` 0x55aa, then the UTF-16 name with its NUL, then the
//!   data; the next header starts at the next 4-byte boundary. The first header whose
//!   `StartId` is not 0x55aa (erased flash reads 0xffff) ends the list.
//!
//! Flash cannot set bits, so a variable is updated by writing a new copy and clearing bits of
//! the old copy's `State`: `VAR_ADDED` (0x3f) is live, `VAR_ADDED & VAR_IN_DELETED_TRANSITION`
//! (0x3e) is an old copy that counts only when no live copy exists (edk2 `FindVariableEx`),
//! anything else is deleted or incomplete. [`VarStore::get`] applies that rule.
//!
//! Secure Boot databases are lists of `EFI_SIGNATURE_LIST`s ([`parse_signature_lists`]), each
//! holding entries of one type (an X.509 certificate, a SHA-256 hash, …) and each entry starting
//! with the GUID of its owner (UEFI 2.10, 32.4.1 "Signature Database").
//!
//! The file is untrusted input: every size is checked against the store, and errors name the
//! offset where the store stops making sense.

use std::fmt;

use crate::ovmf::Uuid;

/// `EFI_GLOBAL_VARIABLE`: `SecureBoot`, `PK`, `KEK`, `SetupMode` (UEFI 2.10, 3.3).
pub const EFI_GLOBAL_VARIABLE: Uuid =
    Uuid::from_fields(0x8be4_df61, 0x93ca, 0x11d2, &[0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]);
/// `EFI_IMAGE_SECURITY_DATABASE_GUID`: `db`, `dbx`, `dbt`, `dbr` (UEFI 2.10, 32.6.1).
pub const EFI_IMAGE_SECURITY_DATABASE: Uuid =
    Uuid::from_fields(0xd719_b2cb, 0x3d3a, 0x4596, &[0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f]);
/// `gEfiSecureBootEnableDisableGuid`: edk2's non-volatile `SecureBootEnable` switch
/// (`SecurityPkg/Include/Uuid/AuthenticatedVariableFormat.h`).
pub const SECURE_BOOT_ENABLE_DISABLE: Uuid =
    Uuid::from_fields(0xf0a3_0bc7, 0xaf08, 0x4556, &[0x99, 0xc4, 0x00, 0x10, 0x09, 0xc9, 0x3a, 0x44]);
/// `gEfiSystemNvDataFvGuid`: the file system GUID of a firmware volume holding variables
/// (`MdeModulePkg/Include/Uuid/SystemNvDataGuid.h`).
pub const SYSTEM_NV_DATA_FV: Uuid =
    Uuid::from_fields(0xfff1_2b8d, 0x7696, 0x4c8b, &[0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50]);
/// `gEfiAuthenticatedVariableGuid`: a store of `AUTHENTICATED_VARIABLE_HEADER`s.
pub const AUTHENTICATED_VARIABLE_STORE: Uuid =
    Uuid::from_fields(0xaaf3_2c78, 0x947b, 0x439a, &[0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92]);
/// `gEfiVariableGuid`: a store of plain `VARIABLE_HEADER`s.
pub const VARIABLE_STORE: Uuid =
    Uuid::from_fields(0xddcf_3616, 0x3275, 0x4164, &[0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d]);

/// `EFI_CERT_X509_GUID`: an entry holding a DER X.509 certificate (UEFI 2.10, 32.4.1).
pub const EFI_CERT_X509: Uuid =
    Uuid::from_fields(0xa5c0_59a1, 0x94e4, 0x4aa7, &[0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72]);
/// `EFI_CERT_SHA1_GUID`: an entry holding a SHA-1 digest.
pub const EFI_CERT_SHA1: Uuid =
    Uuid::from_fields(0x826c_a512, 0xcf10, 0x4ac9, &[0xb1, 0x87, 0xbe, 0x01, 0x49, 0x66, 0x31, 0xbd]);
/// `EFI_CERT_SHA256_GUID`: an entry holding a SHA-256 digest.
pub const EFI_CERT_SHA256: Uuid =
    Uuid::from_fields(0xc1c4_1626, 0x504c, 0x4092, &[0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28]);
/// `EFI_CERT_SHA384_GUID`: an entry holding a SHA-384 digest.
pub const EFI_CERT_SHA384: Uuid =
    Uuid::from_fields(0xff3e_5307, 0x9fd0, 0x48c9, &[0x85, 0xf1, 0x8a, 0xd5, 0x6c, 0x70, 0x1e, 0x01]);
/// `EFI_CERT_SHA512_GUID`: an entry holding a SHA-512 digest.
pub const EFI_CERT_SHA512: Uuid =
    Uuid::from_fields(0x093e_0fae, 0xa6c4, 0x4f50, &[0x9f, 0x1b, 0xd4, 0x1e, 0x2b, 0x89, 0xc1, 0x9a]);

/// `EFI_FIRMWARE_VOLUME_HEADER` up to the block map (PI 1.8, volume 3, 3.2.1): ZeroVector[16],
/// FileSystemGuid (16), FvLength u64, Signature `_FVH`, Attributes u32, HeaderLength u16,
/// Checksum u16, ExtHeaderOffset u16, Reserved u8, Revision u8 — 56 bytes.
const FV_HEADER_FIXED: usize = 56;
/// Offset of `Signature` in the volume header.
const FV_SIGNATURE_AT: usize = 40;
/// `EFI_FVH_SIGNATURE`.
const FV_SIGNATURE: &[u8; 4] = b"_FVH";
/// `VARIABLE_STORE_HEADER` (VariableFormat.h, packed): Signature GUID, Size u32, Format u8,
/// State u8, Reserved u16, Reserved1 u32 — 28 bytes.
const STORE_HEADER: usize = 28;
/// `VARIABLE_STORE_FORMATTED`.
const STORE_FORMATTED: u8 = 0x5a;
/// `VARIABLE_STORE_HEALTHY`.
const STORE_HEALTHY: u8 = 0xfe;
/// `VARIABLE_DATA`: the `StartId` of every variable header.
const VARIABLE_START_ID: u16 = 0x55aa;
/// `AUTHENTICATED_VARIABLE_HEADER` (packed): StartId u16, State u8, Reserved u8, Attributes u32,
/// MonotonicCount u64, TimeStamp `EFI_TIME` (16), PubKeyIndex u32, NameSize u32, DataSize u32,
/// VendorGuid (16).
const AUTH_HEADER: usize = 60;
/// `VARIABLE_HEADER` (packed): StartId u16, State u8, Reserved u8, Attributes u32, NameSize u32,
/// DataSize u32, VendorGuid (16).
const PLAIN_HEADER: usize = 32;
const _: () = assert!(AUTH_HEADER == 2 + 1 + 1 + 4 + 8 + 16 + 4 + 4 + 4 + 16);
const _: () = assert!(PLAIN_HEADER == 2 + 1 + 1 + 4 + 4 + 4 + 16);
const _: () = assert!(STORE_HEADER == 16 + 4 + 1 + 1 + 2 + 4);
/// `HEADER_ALIGNMENT`: variable headers start on 4-byte boundaries.
const HEADER_ALIGNMENT: usize = 4;
/// `VAR_ADDED`: the State of a live variable.
pub const VAR_ADDED: u8 = 0x3f;
/// `VAR_ADDED & VAR_IN_DELETED_TRANSITION`: an old copy being replaced.
pub const VAR_IN_DELETED_TRANSITION: u8 = 0x3e;

/// Why a file is not a variable store this module can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarsError {
    /// Shorter than a firmware volume header.
    #[error("{len} bytes are too few for a firmware volume header ({FV_HEADER_FIXED} bytes)")]
    TooSmall {
        /// The file's length.
        len: usize,
    },
    /// No `_FVH` signature where the volume header has it.
    #[error("not a firmware volume: no \"_FVH\" signature at offset {FV_SIGNATURE_AT:#x} (found {found:02x?})")]
    NotFirmwareVolume {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The volume holds something other than variables.
    #[error("the firmware volume's file system is {found}, not the NV variable store ({SYSTEM_NV_DATA_FV}); is this the CODE file instead of the VARS file?")]
    NotNvData {
        /// The file system GUID found (offset 0x10).
        found: Uuid,
    },
    /// The volume header's length is impossible.
    #[error(
        "the firmware volume header length {header_length:#x} (offset 0x30) is not within the file ({len:#x} bytes)"
    )]
    HeaderLength {
        /// `HeaderLength`.
        header_length: usize,
        /// The file's length.
        len: usize,
    },
    /// The variable store header is not one this module knows.
    #[error("no variable store at offset {offset:#x}: its signature is {found}, neither the authenticated ({AUTHENTICATED_VARIABLE_STORE}) nor the plain ({VARIABLE_STORE}) layout")]
    UnknownStore {
        /// Where the store header is.
        offset: usize,
        /// The signature GUID found.
        found: Uuid,
    },
    /// The store is not formatted and healthy.
    #[error("the variable store at offset {offset:#x} is not formatted and healthy (format {format:#04x}, state {state:#04x}; expected 0x5a, 0xfe)")]
    StoreState {
        /// Where the store header is.
        offset: usize,
        /// `Format`.
        format: u8,
        /// `State`.
        state: u8,
    },
    /// The store claims more bytes than the file has.
    #[error("the variable store at offset {offset:#x} claims {size:#x} bytes, but only {available:#x} follow")]
    StoreSize {
        /// Where the store header is.
        offset: usize,
        /// `Size`.
        size: usize,
        /// Bytes from the store header to the end of the file.
        available: usize,
    },
    /// A variable runs past the end of the store.
    #[error("the variable at offset {offset:#x} ({what}) runs past the end of the store at {end:#x}")]
    VariableTruncated {
        /// The variable header's offset.
        offset: usize,
        /// What does not fit: "header", "name", "data".
        what: &'static str,
        /// The store's end offset.
        end: usize,
    },
    /// A variable name that is not NUL-terminated UTF-16.
    #[error("the variable at offset {offset:#x} has a malformed name ({reason})")]
    BadName {
        /// The variable header's offset.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Which header layout a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreFormat {
    /// `AUTHENTICATED_VARIABLE_HEADER`s (every OVMF since 2015).
    Authenticated,
    /// Plain `VARIABLE_HEADER`s.
    Plain,
}

/// One variable record of the store (live or not).
#[derive(Clone, PartialEq, Eq)]
pub struct Variable {
    /// Offset of its header in the file.
    pub offset: usize,
    /// `State`: [`VAR_ADDED`] for a live variable.
    pub state: u8,
    /// `Attributes` (`EFI_VARIABLE_NON_VOLATILE` = 1, …).
    pub attributes: u32,
    /// The vendor GUID.
    pub guid: Uuid,
    /// The name, UTF-16 code units without the NUL.
    pub name_utf16: Vec<u16>,
    /// The data, as `GetVariable` returns it.
    pub data: Vec<u8>,
}

impl Variable {
    /// The name as text (unpaired surrogates replaced).
    pub fn name(&self) -> String {
        String::from_utf16_lossy(&self.name_utf16)
    }

    fn is(&self, name: &str, guid: &Uuid) -> bool {
        self.guid == *guid && self.name_utf16.iter().copied().eq(name.encode_utf16())
    }
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} at {:#x}: state {:#04x}, attributes {:#x}, {} bytes",
            self.guid,
            self.name(),
            self.offset,
            self.state,
            self.attributes,
            self.data.len()
        )
    }
}

/// A parsed variable store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarStore {
    /// The header layout.
    pub format: StoreFormat,
    /// Every variable record in flash order, including deleted ones.
    pub records: Vec<Variable>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl VarStore {
    /// Parses a VARS flash image (or a whole single-file OVMF image, whose variable volume comes
    /// first).
    pub fn parse(file: &[u8]) -> Result<Self, VarsError> {
        if file.len() < FV_HEADER_FIXED {
            return Err(VarsError::TooSmall { len: file.len() });
        }
        let sig: [u8; 4] = file[FV_SIGNATURE_AT..FV_SIGNATURE_AT + 4].try_into().expect("4 bytes");
        if &sig != FV_SIGNATURE {
            return Err(VarsError::NotFirmwareVolume { found: sig });
        }
        let fs = crate::ovmf::guid_at(file, 16);
        if fs != SYSTEM_NV_DATA_FV {
            return Err(VarsError::NotNvData { found: fs });
        }
        let header_length = usize::from(u16_at(file, 48));
        if header_length < FV_HEADER_FIXED || header_length.saturating_add(STORE_HEADER) > file.len() {
            return Err(VarsError::HeaderLength { header_length, len: file.len() });
        }
        let store_at = header_length;
        let store_guid = crate::ovmf::guid_at(file, store_at);
        let format = match store_guid {
            AUTHENTICATED_VARIABLE_STORE => StoreFormat::Authenticated,
            VARIABLE_STORE => StoreFormat::Plain,
            found => return Err(VarsError::UnknownStore { offset: store_at, found }),
        };
        let size = u32_at(file, store_at + 16) as usize;
        let (fmt_byte, state) = (file[store_at + 20], file[store_at + 21]);
        if fmt_byte != STORE_FORMATTED || state != STORE_HEALTHY {
            return Err(VarsError::StoreState { offset: store_at, format: fmt_byte, state });
        }
        let available = file.len() - store_at;
        if size < STORE_HEADER || size > available {
            return Err(VarsError::StoreSize { offset: store_at, size, available });
        }
        let end = store_at + size;
        let header = match format {
            StoreFormat::Authenticated => AUTH_HEADER,
            StoreFormat::Plain => PLAIN_HEADER,
        };
        let mut records = Vec::new();
        let mut at = store_at + STORE_HEADER;
        // edk2 IsValidVariableHeader: a header must start before the end and carry the StartId.
        while at + 2 <= end && u16_at(file, at) == VARIABLE_START_ID {
            if at + header > end {
                return Err(VarsError::VariableTruncated { offset: at, what: "header", end });
            }
            let state = file[at + 2];
            let attributes = u32_at(file, at + 4);
            let (name_size, data_size, guid) = match format {
                StoreFormat::Authenticated => {
                    (u32_at(file, at + 36), u32_at(file, at + 40), crate::ovmf::guid_at(file, at + 44))
                }
                StoreFormat::Plain => {
                    (u32_at(file, at + 8), u32_at(file, at + 12), crate::ovmf::guid_at(file, at + 16))
                }
            };
            let name_at = at + header;
            let name_end = name_at
                .checked_add(name_size as usize)
                .filter(|e| *e <= end)
                .ok_or(VarsError::VariableTruncated { offset: at, what: "name", end })?;
            let data_end = name_end
                .checked_add(data_size as usize)
                .filter(|e| *e <= end)
                .ok_or(VarsError::VariableTruncated { offset: at, what: "data", end })?;
            let name = &file[name_at..name_end];
            if name.len() < 2 || !name.len().is_multiple_of(2) {
                return Err(VarsError::BadName {
                    offset: at,
                    reason: "its size is not a whole number of UTF-16 units",
                });
            }
            let units: Vec<u16> = name.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            let Some(nul) = units.iter().position(|u| *u == 0) else {
                return Err(VarsError::BadName { offset: at, reason: "no NUL terminator" });
            };
            records.push(Variable {
                offset: at,
                state,
                attributes,
                guid,
                name_utf16: units[..nul].to_vec(),
                data: file[name_end..data_end].to_vec(),
            });
            // Data follows the name without padding on x86 (ALIGNMENT 1); the next header is
            // HEADER_ALIGN'ed.
            at = data_end.next_multiple_of(HEADER_ALIGNMENT);
        }
        Ok(VarStore { format, records })
    }

    /// The variable `GetVariable(name, guid)` returns at boot: the first live copy, else the
    /// last copy in deleted transition, else none (edk2 `FindVariableEx`).
    pub fn get(&self, name: &str, guid: &Uuid) -> Option<&Variable> {
        let matching = self.records.iter().filter(|v| v.is(name, guid));
        let mut transition = None;
        for v in matching {
            match v.state {
                VAR_ADDED => return Some(v),
                VAR_IN_DELETED_TRANSITION => transition = Some(v),
                _ => {}
            }
        }
        transition
    }

    /// Every variable `GetVariable` would return, in flash order.
    pub fn live(&self) -> Vec<&Variable> {
        self.records.iter().filter(|v| self.get(&v.name(), &v.guid).is_some_and(|l| std::ptr::eq(l, *v))).collect()
    }
}

/// One `EFI_SIGNATURE_LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureList {
    /// Offset of the list in the variable's data.
    pub offset: usize,
    /// `SignatureType`: [`EFI_CERT_X509`], [`EFI_CERT_SHA256`], …
    pub signature_type: Uuid,
    /// `SignatureHeader` (`SignatureHeaderSize` bytes; empty for every type UEFI defines).
    pub header: Vec<u8>,
    /// The entries.
    pub entries: Vec<SignatureData>,
}

/// One `EFI_SIGNATURE_DATA`: its owner and the certificate or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureData {
    /// `SignatureOwner`.
    pub owner: Uuid,
    /// `SignatureData`: `SignatureSize - 16` bytes.
    pub data: Vec<u8>,
}

impl SignatureData {
    /// The entry as stored: owner GUID then data (what an `EV_EFI_VARIABLE_AUTHORITY` event
    /// carries as its variable data).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.owner.to_bytes_le().to_vec();
        b.extend_from_slice(&self.data);
        b
    }
}

/// `EFI_SIGNATURE_LIST` header: SignatureType GUID, SignatureListSize u32, SignatureHeaderSize
/// u32, SignatureSize u32 (UEFI 2.10, 32.4.1).
const ESL_HEADER: usize = 28;

/// Why a signature database does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureListError {
    /// Fewer bytes left than a list header.
    #[error("signature list at offset {offset:#x}: {left} bytes left, an EFI_SIGNATURE_LIST header needs 28")]
    Truncated {
        /// Where the list starts.
        offset: usize,
        /// Bytes left.
        left: usize,
    },
    /// The list's sizes do not add up.
    #[error("signature list at offset {offset:#x}: {reason} (list size {list_size}, header size {header_size}, signature size {signature_size}, {left} bytes left)")]
    Sizes {
        /// Where the list starts.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
        /// `SignatureListSize`.
        list_size: u32,
        /// `SignatureHeaderSize`.
        header_size: u32,
        /// `SignatureSize`.
        signature_size: u32,
        /// Bytes from the list to the end of the data.
        left: usize,
    },
}

/// Parses a Secure Boot database (`PK`, `KEK`, `db`, `dbx` contents, or an `.esl` file).
pub fn parse_signature_lists(data: &[u8]) -> Result<Vec<SignatureList>, SignatureListError> {
    let mut lists = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let left = data.len() - at;
        if left < ESL_HEADER {
            return Err(SignatureListError::Truncated { offset: at, left });
        }
        let signature_type = crate::ovmf::guid_at(data, at);
        let list_size = u32_at(data, at + 16);
        let header_size = u32_at(data, at + 20);
        let signature_size = u32_at(data, at + 24);
        let bad =
            |reason| SignatureListError::Sizes { offset: at, reason, list_size, header_size, signature_size, left };
        if list_size as usize > left {
            return Err(bad("the list runs past the end"));
        }
        let body = (list_size as usize)
            .checked_sub(ESL_HEADER)
            .and_then(|b| b.checked_sub(header_size as usize))
            .ok_or_else(|| bad("the list is smaller than its headers"))?;
        if signature_size < 16 {
            return Err(bad("an entry is smaller than its owner GUID"));
        }
        if body % signature_size as usize != 0 {
            return Err(bad("the entries do not fill the list"));
        }
        let header_at = at + ESL_HEADER;
        let entries_at = header_at + header_size as usize;
        let entries = data[entries_at..entries_at + body]
            .chunks_exact(signature_size as usize)
            .map(|e| SignatureData { owner: crate::ovmf::guid_at(e, 0), data: e[16..].to_vec() })
            .collect();
        lists.push(SignatureList { offset: at, signature_type, header: data[header_at..entries_at].to_vec(), entries });
        at += list_size as usize;
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal authenticated store: FV header, store header, the given variables.
    pub(crate) fn store(vars: &[(&str, Uuid, u8, &[u8])]) -> Vec<u8> {
        let mut f = vec![0u8; 0x48];
        f[16..32].copy_from_slice(&SYSTEM_NV_DATA_FV.to_bytes_le());
        f[32..40].copy_from_slice(&0x4000u64.to_le_bytes());
        f[40..44].copy_from_slice(b"_FVH");
        f[48..50].copy_from_slice(&0x48u16.to_le_bytes());
        f[55] = 2;
        let mut s = AUTHENTICATED_VARIABLE_STORE.to_bytes_le().to_vec();
        s.extend_from_slice(&0x2000u32.to_le_bytes());
        s.extend_from_slice(&[STORE_FORMATTED, STORE_HEALTHY, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&s);
        for (name, guid, state, data) in vars {
            let mut n: Vec<u8> = name.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
            let mut h = vec![0u8; AUTH_HEADER];
            h[0..2].copy_from_slice(&VARIABLE_START_ID.to_le_bytes());
            h[2] = *state;
            h[4..8].copy_from_slice(&7u32.to_le_bytes());
            h[36..40].copy_from_slice(&(n.len() as u32).to_le_bytes());
            h[40..44].copy_from_slice(&(data.len() as u32).to_le_bytes());
            h[44..60].copy_from_slice(&guid.to_bytes_le());
            f.extend_from_slice(&h);
            f.append(&mut n);
            f.extend_from_slice(data);
            while !f.len().is_multiple_of(4) {
                f.push(0xff);
            }
        }
        f.resize(0x48 + 0x2000, 0xff);
        f
    }

    #[test]
    fn live_copy_wins_over_transition_and_deleted() {
        let g = EFI_GLOBAL_VARIABLE;
        let f = store(&[
            ("PK", g, VAR_IN_DELETED_TRANSITION, b"old"),
            ("PK", g, 0x3c, b"deleted"),
            ("PK", g, VAR_ADDED, b"new"),
            ("KEK", g, VAR_IN_DELETED_TRANSITION, b"only-transition"),
            ("db", g, 0x3c, b"gone"),
        ]);
        let s = VarStore::parse(&f).unwrap();
        assert_eq!(s.format, StoreFormat::Authenticated);
        assert_eq!(s.records.len(), 5);
        assert_eq!(s.get("PK", &g).unwrap().data, b"new");
        assert_eq!(s.get("KEK", &g).unwrap().data, b"only-transition");
        assert!(s.get("db", &g).is_none());
        assert!(s.get("PK", &EFI_IMAGE_SECURITY_DATABASE).is_none(), "the GUID is part of the key");
        assert_eq!(s.live().iter().map(|v| v.name()).collect::<Vec<_>>(), ["PK", "KEK"]);
    }

    #[test]
    fn errors_name_what_and_where() {
        let g = EFI_GLOBAL_VARIABLE;
        let good = store(&[("PK", g, VAR_ADDED, b"x")]);
        let cases: Vec<(&str, Vec<u8>, VarsError)> = vec![
            ("short", good[..10].to_vec(), VarsError::TooSmall { len: 10 }),
            (
                "signature",
                {
                    let mut f = good.clone();
                    f[40] = b'X';
                    f
                },
                VarsError::NotFirmwareVolume { found: *b"XFVH" },
            ),
            (
                "file system",
                {
                    let mut f = good.clone();
                    f[16] ^= 1;
                    f
                },
                VarsError::NotNvData {
                    found: Uuid::from_bytes_le({
                        let mut g = SYSTEM_NV_DATA_FV.to_bytes_le();
                        g[0] ^= 1;
                        g
                    }),
                },
            ),
            (
                "store state",
                {
                    let mut f = good.clone();
                    f[0x48 + 21] = 0xff;
                    f
                },
                VarsError::StoreState { offset: 0x48, format: 0x5a, state: 0xff },
            ),
            (
                "store size",
                {
                    let mut f = good.clone();
                    f[0x48 + 16..0x48 + 20].copy_from_slice(&0x10_0000u32.to_le_bytes());
                    f
                },
                VarsError::StoreSize { offset: 0x48, size: 0x10_0000, available: 0x2000 },
            ),
            (
                "data size",
                {
                    let mut f = good.clone();
                    f[0x64 + 40..0x64 + 44].copy_from_slice(&0x10_0000u32.to_le_bytes());
                    f
                },
                VarsError::VariableTruncated { offset: 0x64, what: "data", end: 0x48 + 0x2000 },
            ),
            (
                "name",
                {
                    let mut f = good.clone();
                    f[0x64 + 36] = 3;
                    f
                },
                VarsError::BadName { offset: 0x64, reason: "its size is not a whole number of UTF-16 units" },
            ),
        ];
        for (case, bytes, want) in cases {
            assert_eq!(VarStore::parse(&bytes), Err(want), "{case}");
        }
    }

    #[test]
    fn truncated_and_flipped_files_never_panic() {
        let g = EFI_GLOBAL_VARIABLE;
        let f = store(&[("PK", g, VAR_ADDED, &[1; 40]), ("db", EFI_IMAGE_SECURITY_DATABASE, VAR_ADDED, &[2; 33])]);
        for len in 0..f.len().min(0x200) {
            let _ = VarStore::parse(&f[..len]);
        }
        for i in 0..0x150 {
            for bit in 0..8 {
                let mut m = f.clone();
                m[i] ^= 1 << bit;
                if let Ok(s) = VarStore::parse(&m) {
                    for v in s.live() {
                        let _ = parse_signature_lists(&v.data);
                    }
                }
            }
        }
    }

    fn esl(ty: Uuid, owner: Uuid, entries: &[&[u8]]) -> Vec<u8> {
        let size = 16 + entries[0].len();
        let mut b = ty.to_bytes_le().to_vec();
        b.extend_from_slice(&((28 + size * entries.len()) as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(size as u32).to_le_bytes());
        for e in entries {
            b.extend_from_slice(&owner.to_bytes_le());
            b.extend_from_slice(e);
        }
        b
    }

    #[test]
    fn signature_lists() {
        let owner = Uuid::from_fields(0xa0ba_a8a3, 0x041d, 0x48a8, &[0xbc, 0x87, 0xc3, 0x6d, 0x12, 0x1b, 0x5e, 0x3d]);
        let mut db = esl(EFI_CERT_X509, owner, &[b"cert"]);
        db.extend(esl(EFI_CERT_SHA256, owner, &[&[1; 32], &[2; 32]]));
        let lists = parse_signature_lists(&db).unwrap();
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[0].signature_type, EFI_CERT_X509);
        assert_eq!(lists[0].entries[0].data, b"cert");
        assert_eq!(lists[0].entries[0].to_bytes()[..16], owner.to_bytes_le());
        assert_eq!(lists[1].offset, 48);
        assert_eq!(lists[1].entries.len(), 2);
        assert_eq!(parse_signature_lists(&db[..50]), Err(SignatureListError::Truncated { offset: 48, left: 2 }));
        assert_eq!(
            parse_signature_lists(&db[..100]),
            Err(SignatureListError::Sizes {
                offset: 48,
                reason: "the list runs past the end",
                list_size: 28 + 96,
                header_size: 0,
                signature_size: 48,
                left: 52
            })
        );
        let mut bad = db.clone();
        bad[24..28].copy_from_slice(&7u32.to_le_bytes());
        assert!(matches!(
            parse_signature_lists(&bad),
            Err(SignatureListError::Sizes { offset: 0, reason: "an entry is smaller than its owner GUID", .. })
        ));
    }
}
