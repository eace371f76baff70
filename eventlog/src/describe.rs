//! What an event's data says, decoded for people (`eventlog show`) and for the diff's
//! explanations. Decoding never fails: data that does not match its type's layout is shown as
//! raw bytes.

use std::fmt;

use serde::Serialize;

use crate::types::{Event, EventType, HashAlg};

/// An event's data, decoded according to its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventData {
    /// `EV_NO_ACTION` "StartupLocality": the locality of TPM2_Startup.
    StartupLocality {
        /// The locality.
        locality: u8,
    },
    /// `EV_SEPARATOR`: 0 between pre-OS and OS, 1 (or 0xFFFFFFFF) on an error path.
    Separator {
        /// The 32-bit value.
        value: u32,
    },
    /// Text: `EV_EFI_ACTION`, `EV_ACTION`, `EV_PLATFORM_CONFIG_FLAGS`, `EV_IPL` (ASCII or
    /// UTF-16LE), `EV_S_CRTM_VERSION` (UTF-16LE), `EV_NO_ACTION` signatures.
    Text {
        /// The decoded text, trailing NULs removed.
        text: String,
    },
    /// `UEFI_VARIABLE_DATA`: `EV_EFI_VARIABLE_*`.
    Variable(UefiVariableData),
    /// `UEFI_IMAGE_LOAD_EVENT`: `EV_EFI_BOOT_SERVICES_APPLICATION` and drivers.
    Image(UefiImageLoadEvent),
    /// `TCG_PCClientTaggedEvent`: `EV_EVENT_TAG`.
    Tagged(TaggedEvent),
    /// `UEFI_PLATFORM_FIRMWARE_BLOB(2)`: a firmware volume.
    FirmwareBlob {
        /// Description (BLOB2 only).
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// Physical base address.
        #[serde(serialize_with = "crate::serde_hex::u64")]
        base: u64,
        /// Length in bytes.
        length: u64,
    },
    /// `UEFI_GPT_DATA`: the partition table of the boot disk.
    Gpt {
        /// The disk GUID.
        disk_guid: String,
        /// Number of partition entries logged.
        partitions: u64,
    },
    /// Bytes this crate does not decode.
    Raw {
        /// The data, hex.
        #[serde(serialize_with = "hex::serde::serialize")]
        bytes: Vec<u8>,
    },
}

/// `UEFI_VARIABLE_DATA` (PFP 1.05): VariableName GUID, UnicodeNameLength u64 (characters),
/// VariableDataLength u64, UnicodeName (UTF-16LE, no NUL), VariableData.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UefiVariableData {
    /// The vendor GUID.
    pub guid: String,
    /// The variable name.
    pub name: String,
    /// The variable's contents.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub data: Vec<u8>,
}

/// `UEFI_IMAGE_LOAD_EVENT` (PFP 1.05): ImageLocationInMemory u64, ImageLengthInMemory u64,
/// ImageLinkTimeAddress u64, LengthOfDevicePath u64, DevicePath.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UefiImageLoadEvent {
    /// Where the image was loaded.
    #[serde(serialize_with = "crate::serde_hex::u64")]
    pub location: u64,
    /// Its length in memory (for a UKI read from disk: the file size).
    pub length: u64,
    /// Its link-time base address.
    #[serde(serialize_with = "crate::serde_hex::u64")]
    pub link_time_address: u64,
    /// The device path it was loaded from, as text (the UEFI specification's text forms, for
    /// the node types this crate knows).
    pub device_path: String,
}

/// `TCG_PCClientTaggedEvent` (PFP 1.05): taggedEventID u32, taggedEventDataSize u32, data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaggedEvent {
    /// The tag.
    pub id: u32,
    /// The tag's meaning, if known (Linux EFI stub, systemd).
    pub tag: Option<&'static str>,
    /// The tagged data as text (Linux and systemd put a NUL-terminated string there).
    pub text: String,
}

/// Tag IDs: Linux `drivers/firmware/efi/libstub/efistub.h` (`INITRD_EVENT_TAG_ID`,
/// `LOAD_OPTIONS_EVENT_TAG_ID`) and systemd's `docs/TPM2_PCR_MEASUREMENTS.md`.
const TAGS: &[(u32, &str)] = &[
    (0x8f3b_22ec, "Linux initrd"),
    (0x8f3b_22ed, "Linux LoadOptions"),
    (0xf5bc_582a, "systemd-boot loader.conf"),
    (0x6c46_f751, "systemd-stub DeviceTree addon"),
    (0x49df_fe0f, "systemd-stub initrd addon"),
    (0xdac0_8e1a, "systemd-stub ucode addon"),
    (0xd5cb_7cbc, "systemd SMBIOS type 1"),
    (0xe0d4_7bc8, "systemd SMBIOS type 2"),
    (0xc0b3_bd23, "systemd SMBIOS type 11"),
];

/// The Linux EFI stub's initrd tag.
pub(crate) const TAG_LINUX_INITRD: u32 = 0x8f3b_22ec;
/// The Linux EFI stub's LoadOptions (command line) tag.
pub(crate) const TAG_LINUX_LOAD_OPTIONS: u32 = 0x8f3b_22ed;

impl Event {
    /// The event's data, decoded by its type.
    pub fn decode(&self) -> EventData {
        decode(self.event_type, &self.data)
    }

    /// For systemd-stub's PCR 11 `EV_IPL` pairs: whether this is the first of the pair, the
    /// one that measures the section *name* (its digest is the hash of the ASCII name with its
    /// NUL, which the description repeats in UTF-16), rather than the section contents.
    pub fn is_section_name_event(&self) -> bool {
        let EventData::Text { text } = self.decode() else { return false };
        let mut name = text.into_bytes();
        name.push(0);
        self.digests.iter().any(|d| HashAlg::from_id(d.alg).is_some_and(|a| a.hash(&name) == d.bytes))
    }
}

fn decode(t: EventType, data: &[u8]) -> EventData {
    let raw = || EventData::Raw { bytes: data.to_vec() };
    match t {
        EventType::EV_SEPARATOR if data.len() == 4 => {
            EventData::Separator { value: u32::from_le_bytes([data[0], data[1], data[2], data[3]]) }
        }
        EventType::EV_NO_ACTION if data.len() == 17 && data.starts_with(b"StartupLocality\0") => {
            EventData::StartupLocality { locality: data[16] }
        }
        EventType::EV_EFI_ACTION
        | EventType::EV_ACTION
        | EventType::EV_PLATFORM_CONFIG_FLAGS
        | EventType::EV_POST_CODE
        | EventType::EV_IPL
        | EventType::EV_S_CRTM_VERSION
        | EventType::EV_COMPACT_HASH
        | EventType::EV_NO_ACTION => text(data).map_or_else(raw, |text| EventData::Text { text }),
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        | EventType::EV_EFI_VARIABLE_BOOT
        | EventType::EV_EFI_VARIABLE_BOOT2
        | EventType::EV_EFI_VARIABLE_AUTHORITY => variable(data).map_or_else(raw, EventData::Variable),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION
        | EventType::EV_EFI_BOOT_SERVICES_DRIVER
        | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER => image(data).map_or_else(raw, EventData::Image),
        EventType::EV_EVENT_TAG => tagged(data).map_or_else(raw, EventData::Tagged),
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB if data.len() == 16 => {
            EventData::FirmwareBlob { description: None, base: le64(data, 0), length: le64(data, 8) }
        }
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2 => {
            let n = usize::from(*data.first().unwrap_or(&0));
            if data.len() != 1 + n + 16 {
                return raw();
            }
            EventData::FirmwareBlob {
                description: Some(String::from_utf8_lossy(&data[1..1 + n]).into_owned()),
                base: le64(data, 1 + n),
                length: le64(data, 9 + n),
            }
        }
        // EFI_PARTITION_TABLE_HEADER is 92 bytes; the disk GUID at 56, then
        // NumberOfPartitions u64.
        EventType::EV_EFI_GPT_EVENT if data.len() >= 100 && data.starts_with(b"EFI PART") => {
            EventData::Gpt { disk_guid: guid(&data[56..72]), partitions: le64(data, 92) }
        }
        _ => raw(),
    }
}

impl fmt::Display for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StartupLocality { locality } => write!(f, "StartupLocality {locality}"),
            Self::Separator { value } => write!(f, "separator {value:#x}"),
            Self::Text { text } => write!(f, "{text:?}"),
            Self::Variable(v) => {
                write!(f, "{} ({}), {} bytes", v.name, v.guid, v.data.len())?;
                if v.data.len() <= 8 && !v.data.is_empty() {
                    write!(f, ": {}", hex::encode(&v.data))?;
                }
                Ok(())
            }
            Self::Image(i) => write!(f, "{} bytes from {}", i.length, i.device_path),
            Self::Tagged(t) => match t.tag {
                Some(tag) => write!(f, "tag {:#010x} ({tag}): {:?}", t.id, t.text),
                None => write!(f, "tag {:#010x}: {:?}", t.id, t.text),
            },
            Self::FirmwareBlob { description, base, length } => {
                if let Some(d) = description {
                    write!(f, "{d:?} ")?;
                }
                write!(f, "{length:#x} bytes at {base:#x}")
            }
            Self::Gpt { disk_guid, partitions } => {
                write!(f, "GPT of disk {disk_guid}, {partitions} partition(s)")
            }
            Self::Raw { bytes } if bytes.len() <= 32 => write!(f, "{}", hex::encode(bytes)),
            Self::Raw { bytes } => {
                write!(f, "{}… ({} bytes)", hex::encode(&bytes[..32]), bytes.len())
            }
        }
    }
}

/// ASCII or UTF-16LE text, without trailing NULs; `None` if it is neither.
fn text(data: &[u8]) -> Option<String> {
    let printable = |c: char| !c.is_control() || c == '\n' || c == '\t';
    // UTF-16LE if it has an even length and every odd byte is zero (ASCII range), which
    // systemd-stub's and edk2's CHAR16 strings are.
    if data.len() >= 2 && data.len().is_multiple_of(2) && data.iter().skip(1).step_by(2).all(|&b| b == 0) {
        let units: Vec<u16> = data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        let s = String::from_utf16(&units).ok()?;
        let s = s.trim_end_matches('\0');
        if s.chars().all(printable) {
            return Some(s.to_owned());
        }
    }
    let s = std::str::from_utf8(data).ok()?.trim_end_matches('\0');
    s.chars().all(printable).then(|| s.to_owned())
}

fn variable(data: &[u8]) -> Option<UefiVariableData> {
    if data.len() < 32 {
        return None;
    }
    let name_len = usize::try_from(le64(data, 16)).ok()?;
    let data_len = usize::try_from(le64(data, 24)).ok()?;
    let name_end = 32usize.checked_add(name_len.checked_mul(2)?)?;
    let end = name_end.checked_add(data_len)?;
    if end != data.len() {
        return None;
    }
    let units: Vec<u16> = data[32..name_end].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    Some(UefiVariableData {
        guid: guid(&data[..16]),
        name: String::from_utf16_lossy(&units),
        data: data[name_end..end].to_vec(),
    })
}

fn image(data: &[u8]) -> Option<UefiImageLoadEvent> {
    if data.len() < 32 {
        return None;
    }
    let dp_len = usize::try_from(le64(data, 24)).ok()?;
    if 32usize.checked_add(dp_len)? != data.len() {
        return None;
    }
    Some(UefiImageLoadEvent {
        location: le64(data, 0),
        length: le64(data, 8),
        link_time_address: le64(data, 16),
        device_path: device_path(&data[32..]),
    })
}

fn tagged(data: &[u8]) -> Option<TaggedEvent> {
    if data.len() < 8 {
        return None;
    }
    let id = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let size = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    if 8usize.checked_add(size)? != data.len() {
        return None;
    }
    let body = &data[8..];
    Some(TaggedEvent {
        id,
        tag: TAGS.iter().find(|(t, _)| *t == id).map(|(_, n)| *n),
        text: text(body).unwrap_or_else(|| hex::encode(body)),
    })
}

/// The EFI_GUID in `b[..16]` in registry form.
pub(crate) fn guid(b: &[u8]) -> String {
    uuid::Uuid::from_bytes_le(b[..16].try_into().expect("16 bytes")).to_string()
}

fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// A device path as text, for the node types boot logs hold (UEFI 2.10, "Device Path
/// Protocol": each node is type u8, subtype u8, length u16, then its fields). Unknown nodes
/// print as `Path(type,subtype,hex)`.
fn device_path(mut b: &[u8]) -> String {
    let mut parts = Vec::new();
    while b.len() >= 4 {
        let (ty, sub) = (b[0], b[1]);
        let len = usize::from(u16::from_le_bytes([b[2], b[3]]));
        if len < 4 || len > b.len() {
            parts.push(format!("Invalid({})", hex::encode(b)));
            break;
        }
        let body = &b[4..len];
        parts.push(match (ty, sub) {
            (0x7f, 0xff) => break,
            (0x01, 0x01) if body.len() == 2 => format!("Pci({:#x},{:#x})", body[1], body[0]),
            (0x02, 0x01) if body.len() == 8 && body[..4] == [0xd0, 0x41, 0x03, 0x0a] => {
                format!("PciRoot({:#x})", u32::from_le_bytes([body[4], body[5], body[6], body[7]]))
            }
            (0x04, 0x01) if body.len() == 38 => format!(
                "HD({},{},{},{:#x},{:#x})",
                u32::from_le_bytes([body[0], body[1], body[2], body[3]]),
                match body[36] {
                    2 => "GPT",
                    1 => "MBR",
                    _ => "?",
                },
                guid(&body[20..36]),
                le64(body, 4),
                le64(body, 12)
            ),
            (0x04, 0x03) if body.len() >= 16 => {
                format!("VenMedia({})", guid(&body[..16]))
            }
            (0x04, 0x04) => {
                let units: Vec<u16> = body.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                String::from_utf16_lossy(&units).trim_end_matches('\0').to_owned()
            }
            (0x04, 0x06) if body.len() == 16 => format!("FvFile({})", guid(body)),
            (0x04, 0x07) if body.len() == 16 => format!("Fv({})", guid(body)),
            (0x03, 0x12) if body.len() == 6 => format!(
                "Sata({:#x},{:#x},{:#x})",
                u16::from_le_bytes([body[0], body[1]]),
                u16::from_le_bytes([body[2], body[3]]),
                u16::from_le_bytes([body[4], body[5]])
            ),
            (0x03, 0x17) if body.len() >= 4 => {
                format!("NVMe({:#x})", u32::from_le_bytes([body[0], body[1], body[2], body[3]]))
            }
            (0x03, 0x02) if body.len() == 4 => format!("Scsi({:#x},{:#x})", le16(body, 0), le16(body, 2)),
            _ => format!("Path({ty},{sub},{})", hex::encode(body)),
        });
        b = &b[len..];
    }
    if parts.is_empty() {
        "(empty device path)".into()
    } else {
        parts.join("/")
    }
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        let utf16: Vec<u8> = ".cmdline\0".encode_utf16().flat_map(u16::to_le_bytes).collect();
        for (data, want) in [
            (&b"Calling EFI Application from Boot Option"[..], "Calling EFI Application from Boot Option"),
            (&utf16[..], ".cmdline"),
            (&b"ACPI DATA"[..], "ACPI DATA"),
            (&b"\0\0"[..], ""),
        ] {
            assert_eq!(text(data).as_deref(), Some(want), "{data:02x?}");
        }
        assert_eq!(text(&[0xff, 0x01, 0x02]), None);
    }

    #[test]
    fn guids() {
        let efi_global =
            [0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c];
        assert_eq!(guid(&efi_global), "8be4df61-93ca-11d2-aa0d-00e098032b8c");
    }

    #[test]
    fn device_paths() {
        // PciRoot(0x0)/Pci(0x1,0x0)/HD(...)/\EFI\BOOT\BOOTX64.EFI from the captured SB-off log.
        let dp = hex::decode(
            "02010c00d041030a0000000001010600000104012a0001000000000800000000000000f0010000000000\
             65646f6e6d69006700000000000000020202040430005c004500460049005c0042004f004f0054005c00\
             42004f004f0054005800360034002e0045004600490000007fff0400",
        )
        .unwrap();
        assert_eq!(
            device_path(&dp),
            "PciRoot(0x0)/Pci(0x1,0x0)/HD(1,GPT,6e6f6465-696d-6700-0000-000000000002,0x800,0x1f000)/\\EFI\\BOOT\\BOOTX64.EFI"
        );
        assert_eq!(device_path(&[1, 2, 0xff, 0xff]), "Invalid(0102ffff)");
    }
}
