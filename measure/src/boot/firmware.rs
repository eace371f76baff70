//! What edk2 (OVMF) measures around the boot of a UKI: PCR 4, 5 and 7.
//!
//! Sources (edk2-stable202502, the OVMF Debian trixie ships): `SecurityPkg/Tcg/Tcg2Dxe/Tcg2Dxe.c`
//! (`MeasureSecureBootPolicy`, `MeasureAllSecureVariables`, `MeasureVariable`, `OnReadyToBoot`,
//! `OnExitBootServices`), `SecurityPkg/Library/DxeTpm2MeasureBootLib/DxeTpm2MeasureBootLib.c`
//! (`Tcg2MeasureGptTable`, `Tcg2MeasurePeImage`) and
//! `SecurityPkg/Library/DxeImageVerificationLib/Measurement.c` (the authority event). Event
//! layouts from the TCG PC Client Platform Firmware Profile 1.05, "UEFI_VARIABLE_DATA",
//! "UEFI_IMAGE_LOAD_EVENT", "UEFI_GPT_DATA".

use std::borrow::Cow;

use crate::ovmf::Uuid;
use eventlog::EventType;

use super::{BootError, Pending, Source, Subject};

/// `EV_EFI_ACTION` at ReadyToBoot, into PCR 4 (`EFI_CALLING_EFI_APPLICATION`, no NUL).
pub(crate) const CALLING_EFI_APPLICATION: &str = "Calling EFI Application from Boot Option";
/// `EV_EFI_ACTION` at ExitBootServices, into PCR 5 (`EFI_EXIT_BOOT_SERVICES_INVOCATION`).
pub(crate) const EXIT_BOOT_SERVICES_INVOCATION: &str = "Exit Boot Services Invocation";
/// `EV_EFI_ACTION` right after it (`EFI_EXIT_BOOT_SERVICES_SUCCEEDED`).
pub(crate) const EXIT_BOOT_SERVICES_SUCCEEDED: &str = "Exit Boot Services Returned with Success";

/// systemd's `STUB_PAYLOAD_GUID` (`src/boot/linux.c`): the vendor media device path the stub
/// gives `LoadImage()` for the kernel.
pub(crate) const STUB_PAYLOAD_GUID: Uuid =
    Uuid::from_fields(0x55c5_d1f8, 0x04cd, 0x46b5, &[0x8a, 0x20, 0xe5, 0x6c, 0xbb, 0x30, 0x52, 0xd0]);

/// `UEFI_VARIABLE_DATA`: VariableName (the vendor GUID), UnicodeNameLength u64 (characters,
/// no NUL), VariableDataLength u64, UnicodeName (UTF-16LE, no NUL), VariableData.
pub(crate) fn variable_data(guid: &Uuid, name: &str, data: &[u8]) -> Vec<u8> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let mut b = guid.to_bytes_le().to_vec();
    b.extend_from_slice(&(units.len() as u64).to_le_bytes());
    b.extend_from_slice(&(data.len() as u64).to_le_bytes());
    b.extend(units.iter().flat_map(|u| u.to_le_bytes()));
    b.extend_from_slice(data);
    b
}

/// The 4-byte `EV_SEPARATOR` data (0: the normal pre-OS/OS boundary).
pub(crate) fn separator(pcr: u32) -> Pending<'static> {
    Pending::hashing_data(pcr, EventType::EV_SEPARATOR, vec![0; 4], Source::Firmware, "separator".into())
}

/// An `EV_EFI_ACTION`: ASCII without NUL, digest over the same bytes.
pub(crate) fn action(pcr: u32, text: &str) -> Pending<'static> {
    Pending::hashing_data(
        pcr,
        EventType::EV_EFI_ACTION,
        text.as_bytes().to_vec(),
        Source::Firmware,
        format!("action {text:?}"),
    )
}

/// An `EV_EFI_VARIABLE_DRIVER_CONFIG` for PCR 7: the digest covers the whole
/// `UEFI_VARIABLE_DATA`. Absent variables are measured with no data.
pub(crate) fn driver_config(guid: &Uuid, name: &str, data: Option<&[u8]>) -> Pending<'static> {
    let what = match data {
        Some(d) => format!("Secure Boot variable {name} ({} bytes)", d.len()),
        None => format!("Secure Boot variable {name} (absent, measured empty)"),
    };
    Pending::hashing_data(
        7,
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
        variable_data(guid, name, data.unwrap_or_default()),
        Source::Firmware,
        what,
    )
}

/// A media file path node (type 4, subtype 4) with the path in UTF-16 and its NUL.
fn file_path_node(path: &str) -> Vec<u8> {
    let name: Vec<u8> = path.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
    let mut n = vec![4, 4];
    n.extend_from_slice(&((4 + name.len()) as u16).to_le_bytes());
    n.extend_from_slice(&name);
    n
}

/// A vendor-defined media node (type 4, subtype 3).
fn vendor_media_node(guid: &Uuid) -> Vec<u8> {
    let mut n = vec![4, 3, 20, 0];
    n.extend_from_slice(&guid.to_bytes_le());
    n
}

/// The end-of-device-path node.
const END_NODE: [u8; 4] = [0x7f, 0xff, 4, 0];

/// The device path the firmware logs for the UKI (the file path node alone: the real event
/// starts with the disk's PciRoot/Pci/HD nodes, which this model does not know and which the
/// digest does not cover).
pub(crate) fn uki_device_path(path: &str) -> Vec<u8> {
    let mut dp = file_path_node(path);
    dp.extend_from_slice(&END_NODE);
    dp
}

/// `VenMedia(STUB_PAYLOAD_GUID)`: the kernel's device path.
pub(crate) fn kernel_device_path() -> Vec<u8> {
    let mut dp = vendor_media_node(&STUB_PAYLOAD_GUID);
    dp.extend_from_slice(&END_NODE);
    dp
}

/// `UEFI_IMAGE_LOAD_EVENT`: ImageLocationInMemory (unknown before boot: 0), ImageLengthInMemory
/// (the buffer or file size given to LoadImage), ImageLinkTimeAddress (the PE ImageBase),
/// LengthOfDevicePath, DevicePath. The digest is the image's Authenticode digest, not this.
pub(crate) fn image_load_event(length: u64, image_base: u64, device_path: &[u8]) -> Vec<u8> {
    let mut b = 0u64.to_le_bytes().to_vec();
    b.extend_from_slice(&length.to_le_bytes());
    b.extend_from_slice(&image_base.to_le_bytes());
    b.extend_from_slice(&(device_path.len() as u64).to_le_bytes());
    b.extend_from_slice(device_path);
    b
}

/// An `EV_EFI_BOOT_SERVICES_APPLICATION` measuring `authenticode` (the hashed ranges).
pub(crate) fn application<'a>(pcr: u32, data: Vec<u8>, authenticode: Vec<Cow<'a, [u8]>>, what: String) -> Pending<'a> {
    Pending {
        pcr,
        event_type: EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
        data,
        subject: Subject::Parts(authenticode),
        source: Source::Firmware,
        what,
        tpm_only: false,
    }
}

/// `EFI_PARTITION_TABLE_HEADER` size (UEFI 2.10, 5.3.2): what the GPT event copies of LBA 1.
const GPT_HEADER: usize = gpt::HEADER_LEN;

pub use gpt::GptError;

/// `UEFI_GPT_DATA` as `Tcg2MeasureGptTable` builds it from a disk with `block_size`-byte
/// sectors: the 92-byte header from LBA 1, the number of used entries (u64), and each entry
/// whose partition type is not zero, `SizeOfPartitionEntry` bytes each, in table order — read
/// by the workspace's one GPT reader, with the header checks edk2 applies before measuring.
pub fn gpt_event_data(disk: &[u8], block_size: usize) -> Result<Vec<u8>, GptError> {
    Ok(gpt::Gpt::read(disk, block_size as u64)?.event_data())
}

/// The `EV_EFI_GPT_EVENT` (PCR 5; the digest covers the whole `UEFI_GPT_DATA`).
pub(crate) fn gpt_event(disk: &[u8]) -> Result<Pending<'static>, BootError> {
    let data = gpt_event_data(disk, 512)?;
    let n = u64::from_le_bytes(data[GPT_HEADER..GPT_HEADER + 8].try_into().expect("8 bytes"));
    Ok(Pending::hashing_data(
        5,
        EventType::EV_EFI_GPT_EVENT,
        data,
        Source::Firmware,
        format!("GPT of the boot disk ({n} partition(s))"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_data_layout() {
        // SecureBoot absent, as the non-Secure-Boot OVMF measures it: 52 bytes.
        let g = crate::uefi_vars::EFI_GLOBAL_VARIABLE;
        let d = variable_data(&g, "SecureBoot", &[]);
        assert_eq!(d.len(), 52);
        assert_eq!(&d[16..24], &10u64.to_le_bytes());
        assert_eq!(&d[24..32], &0u64.to_le_bytes());
        assert_eq!(&d[32..34], b"S\0");
    }

    #[test]
    fn device_paths() {
        assert_eq!(kernel_device_path().len(), 24);
        let dp = uki_device_path(r"\EFI\BOOT\BOOTX64.EFI");
        assert_eq!(dp.len(), 4 + 44 + 4);
        assert_eq!(&dp[..4], &[4, 4, 48, 0]);
    }
}
