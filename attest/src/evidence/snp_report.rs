//! The AMD SEV-SNP attestation report.
//!
//! Layout: AMD, *SEV Secure Nested Paging Firmware ABI Specification* (publication #56860),
//! chapter "Guest Messages", table "ATTESTATION_REPORT Structure": revision 1.55 for report
//! version 2; revision 1.57 for version 3, which fills three reserved bytes with the CPUID
//! family, model and stepping; revision 1.58 for version 5, which adds the launch and current
//! mitigation vectors. (Version 4 keeps version 3's layout; virtee/sev and go-sev-guest read it
//! so.) The report is 1184 (`0x4a0`) bytes; the signature covers bytes `0x0..0x2a0`.
//!
//! The TCB version fields (table "TCB_VERSION Structure") have one layout on Milan and Genoa
//! (family 19h) and another on Turin (family 1Ah), which adds an FMC field; version 3+ reports
//! say their CPU family, and for version 2 a Turin chip is recognised by its CHIP_ID, of which
//! Turin fills only the first 8 bytes (the rule virtee/sev uses).

use serde::Serialize;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use super::first_nonzero;

/// Size of the report.
pub const REPORT_LEN: usize = 0x4a0;
/// End of the signed part of the report (the signature starts here).
pub const SIGNED_LEN: usize = 0x2a0;
/// Size of MEASUREMENT (SHA-384).
pub const MEASUREMENT_LEN: usize = 48;

/// CPUID family of Turin (Zen 5, family 1Ah).
pub const FAMILY_TURIN: u8 = 0x1a;

/// `ATTESTATION_REPORT`, version 5 layout (earlier versions reserve what they lack). Fields are
/// little-endian; offsets in the doc lines.
#[derive(Debug, Clone, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AttestationReport {
    /// `0x000` VERSION: the report format (2, 3, 4 or 5).
    pub version: U32,
    /// `0x004` GUEST_SVN: the guest's security version number, from its ID block.
    pub guest_svn: U32,
    /// `0x008` POLICY: the guest policy the guest was launched with ([`GuestPolicy`]).
    pub policy: U64,
    /// `0x010` FAMILY_ID: from the ID block.
    pub family_id: [u8; 16],
    /// `0x020` IMAGE_ID: from the ID block.
    pub image_id: [u8; 16],
    /// `0x030` VMPL: the privilege level the report was requested from.
    pub vmpl: U32,
    /// `0x034` SIGNATURE_ALGO: 1 = ECDSA P-384 with SHA-384.
    pub signature_algo: U32,
    /// `0x038` CURRENT_TCB: the platform's current TCB version ([`TcbVersion`]).
    pub current_tcb: U64,
    /// `0x040` PLATFORM_INFO: platform features in effect ([`PlatformInfo`]).
    pub platform_info: U64,
    /// `0x048` bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY, bits 31:5 reserved.
    pub key_info: U32,
    /// `0x04c` reserved, zero.
    pub reserved_0: [u8; 4],
    /// `0x050` REPORT_DATA: 64 bytes the guest supplied with the request (a nonce, a key hash).
    pub report_data: [u8; 64],
    /// `0x090` MEASUREMENT: the launch digest of the guest's initial memory and VMSAs.
    pub measurement: [u8; 48],
    /// `0x0c0` HOST_DATA: 32 bytes the hypervisor supplied at launch.
    pub host_data: [u8; 32],
    /// `0x0e0` ID_KEY_DIGEST: SHA-384 of the key that signed the ID block (zero without one).
    pub id_key_digest: [u8; 48],
    /// `0x110` AUTHOR_KEY_DIGEST: SHA-384 of the key that signed the ID key (zero without one).
    pub author_key_digest: [u8; 48],
    /// `0x140` REPORT_ID: the guest's report ID.
    pub report_id: [u8; 32],
    /// `0x160` REPORT_ID_MA: the report ID of its migration agent (all ones without one).
    pub report_id_ma: [u8; 32],
    /// `0x180` REPORTED_TCB: the TCB version the signing VCEK was derived from.
    pub reported_tcb: U64,
    /// `0x188` CPUID_FAM_ID: combined extended family and family (version 3+; reserved in 2).
    pub cpuid_fam_id: u8,
    /// `0x189` CPUID_MOD_ID: combined extended model and model (version 3+; reserved in 2).
    pub cpuid_mod_id: u8,
    /// `0x18a` CPUID_STEP: stepping (version 3+; reserved in 2).
    pub cpuid_step: u8,
    /// `0x18b` reserved, zero.
    pub reserved_1: [u8; 21],
    /// `0x1a0` CHIP_ID: the chip's identifier (zero if MASK_CHIP_ID is set).
    pub chip_id: [u8; 64],
    /// `0x1e0` COMMITTED_TCB: the TCB version the platform committed to.
    pub committed_tcb: U64,
    /// `0x1e8` CURRENT_BUILD: build number of the running firmware.
    pub current_build: u8,
    /// `0x1e9` CURRENT_MINOR.
    pub current_minor: u8,
    /// `0x1ea` CURRENT_MAJOR.
    pub current_major: u8,
    /// `0x1eb` reserved, zero.
    pub reserved_2: u8,
    /// `0x1ec` COMMITTED_BUILD: build number of the committed firmware.
    pub committed_build: u8,
    /// `0x1ed` COMMITTED_MINOR.
    pub committed_minor: u8,
    /// `0x1ee` COMMITTED_MAJOR.
    pub committed_major: u8,
    /// `0x1ef` reserved, zero.
    pub reserved_3: u8,
    /// `0x1f0` LAUNCH_TCB: the CURRENT_TCB when the guest was launched.
    pub launch_tcb: U64,
    /// `0x1f8` LAUNCH_MIT_VECTOR: mitigations verified at launch (version 5+; reserved before).
    pub launch_mit_vector: U64,
    /// `0x200` CURRENT_MIT_VECTOR: mitigations verified now (version 5+; reserved before).
    pub current_mit_vector: U64,
    /// `0x208` reserved, zero.
    pub reserved_4: [u8; 152],
    /// `0x2a0` SIGNATURE: for ECDSA P-384, R and S as 72-byte little-endian integers, then 368
    /// reserved bytes.
    pub signature: [u8; 512],
}
const _: () = assert!(size_of::<AttestationReport>() == REPORT_LEN);
const _: () = assert!(std::mem::offset_of!(AttestationReport, report_data) == 0x50);
const _: () = assert!(std::mem::offset_of!(AttestationReport, measurement) == 0x90);
const _: () = assert!(std::mem::offset_of!(AttestationReport, reported_tcb) == 0x180);
const _: () = assert!(std::mem::offset_of!(AttestationReport, chip_id) == 0x1a0);
const _: () = assert!(std::mem::offset_of!(AttestationReport, launch_tcb) == 0x1f0);
const _: () = assert!(std::mem::offset_of!(AttestationReport, signature) == SIGNED_LEN);

/// Why bytes are not an attestation report this parser reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnpReportError {
    /// Too short (truncated) or too long (an extended report with its certificate table, say).
    #[error("{len} bytes: an SEV-SNP attestation report is exactly 1184 (0x4a0) bytes")]
    Size {
        /// The input's length.
        len: usize,
    },
    /// A VERSION this parser does not know.
    #[error("report version {version} (offset 0x0) is not one this parser reads (2 to 5)")]
    Version {
        /// The VERSION field.
        version: u32,
    },
    /// A reserved field is not zero: not the layout its version claims.
    #[error("reserved byte at offset {offset:#x} is {value:#04x}, not zero (in a version {version} report)")]
    Reserved {
        /// Offset of the first non-zero reserved byte.
        offset: usize,
        /// Its value.
        value: u8,
        /// The report's VERSION.
        version: u32,
    },
}

/// A TCB version, decoded for the chip generation that wrote it (table "TCB_VERSION Structure").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TcbVersion {
    /// The 64-bit value.
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub raw: u64,
    /// SVN of the FMC firmware (Turin only).
    pub fmc: Option<u8>,
    /// SVN of the PSP bootloader.
    pub bootloader: u8,
    /// SVN of the PSP operating system.
    pub tee: u8,
    /// SVN of the SNP firmware.
    pub snp: u8,
    /// Lowest current patch level of all cores.
    pub microcode: u8,
}

impl TcbVersion {
    /// Decodes `raw`: Milan/Genoa put BOOT_LOADER in bits 7:0, TEE 15:8, SNP 55:48, MICROCODE
    /// 63:56; Turin puts FMC in 7:0, BOOT_LOADER 15:8, TEE 23:16, SNP 31:24, MICROCODE 63:56.
    pub fn decode(raw: u64, turin: bool) -> Self {
        let b = raw.to_le_bytes();
        if turin {
            Self { raw, fmc: Some(b[0]), bootloader: b[1], tee: b[2], snp: b[3], microcode: b[7] }
        } else {
            Self { raw, fmc: None, bootloader: b[0], tee: b[1], snp: b[6], microcode: b[7] }
        }
    }
}

impl std::fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc {fmc} ")?;
        }
        write!(f, "bootloader {} tee {} snp {} microcode {}", self.bootloader, self.tee, self.snp, self.microcode)
    }
}

/// The guest policy (table "Guest Policy Structure").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GuestPolicy {
    /// The 64-bit value.
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub raw: u64,
    /// Bits 7:0: the minimum firmware ABI minor version.
    pub abi_minor: u8,
    /// Bits 15:8: the minimum firmware ABI major version.
    pub abi_major: u8,
    /// Bit 16: SMT may be enabled.
    pub smt_allowed: bool,
    /// Bit 18: association with a migration agent is allowed.
    pub migrate_ma_allowed: bool,
    /// Bit 19: debugging is allowed (the host can read and write the guest's memory).
    pub debug_allowed: bool,
    /// Bit 20: the guest may run on one socket only.
    pub single_socket_required: bool,
    /// Bit 21: CXL may be populated with guest memory.
    pub cxl_allowed: bool,
    /// Bit 22: AES-256-XTS memory encryption is required.
    pub mem_aes_256_xts: bool,
    /// Bit 23: RAPL must be disabled.
    pub rapl_dis: bool,
    /// Bit 24: ciphertext hiding must be enabled.
    pub ciphertext_hiding: bool,
    /// Bit 25: the guest refuses page move and swap commands (ABI 1.58).
    pub page_swap_disabled: bool,
}

impl GuestPolicy {
    /// Decodes `raw` (bit 17 is reserved and must be one; bits 63:26 are reserved).
    pub fn decode(raw: u64) -> Self {
        let bit = |n: u32| raw & (1 << n) != 0;
        Self {
            raw,
            abi_minor: raw as u8,
            abi_major: (raw >> 8) as u8,
            smt_allowed: bit(16),
            migrate_ma_allowed: bit(18),
            debug_allowed: bit(19),
            single_socket_required: bit(20),
            cxl_allowed: bit(21),
            mem_aes_256_xts: bit(22),
            rapl_dis: bit(23),
            ciphertext_hiding: bit(24),
            page_swap_disabled: bit(25),
        }
    }
}

/// The platform information (table "PLATFORM_INFO Field").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlatformInfo {
    /// The 64-bit value.
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub raw: u64,
    /// Bit 0: SMT is enabled.
    pub smt_enabled: bool,
    /// Bit 1: TSME is enabled.
    pub tsme_enabled: bool,
    /// Bit 2: the platform uses ECC memory.
    pub ecc_enabled: bool,
    /// Bit 3: RAPL is disabled.
    pub rapl_disabled: bool,
    /// Bit 4: ciphertext hiding is enabled.
    pub ciphertext_hiding_enabled: bool,
    /// Bit 5: alias detection completed since reset, no aliasing addresses (BadRAM mitigation).
    pub alias_check_complete: bool,
    /// Bit 7: SEV-TIO is enabled.
    pub tio_enabled: bool,
}

impl PlatformInfo {
    /// Decodes `raw`.
    pub fn decode(raw: u64) -> Self {
        let bit = |n: u32| raw & (1 << n) != 0;
        Self {
            raw,
            smt_enabled: bit(0),
            tsme_enabled: bit(1),
            ecc_enabled: bit(2),
            rapl_disabled: bit(3),
            ciphertext_hiding_enabled: bit(4),
            alias_check_complete: bit(5),
            tio_enabled: bit(7),
        }
    }
}

/// Which key signed the report (SIGNING_KEY, bits 4:2 of the key-info word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    /// 0: the chip's versioned chip endorsement key.
    Vcek,
    /// 1: a cloud provider's versioned loaded endorsement key.
    Vlek,
    /// 7: not signed.
    None,
    /// Any other value (reserved).
    Reserved(u8),
}

/// A firmware version (`major.minor.build`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

impl std::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The CPUID identification of a version 3+ report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cpuid {
    /// Combined extended family and family (`0x19` Milan/Genoa, `0x1a` Turin).
    pub family: u8,
    /// Combined extended model and model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A parsed attestation report: every field, decoded. The signature is not checked (see the
/// module documentation of [`crate::evidence`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnpReport {
    /// VERSION.
    pub version: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// POLICY.
    pub policy: GuestPolicy,
    /// FAMILY_ID.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub image_id: [u8; 16],
    /// VMPL.
    pub vmpl: u32,
    /// SIGNATURE_ALGO.
    pub signature_algo: u32,
    /// CURRENT_TCB.
    pub current_tcb: TcbVersion,
    /// PLATFORM_INFO.
    pub platform_info: PlatformInfo,
    /// AUTHOR_KEY_EN: AUTHOR_KEY_DIGEST is present.
    pub author_key_en: bool,
    /// MASK_CHIP_KEY: the firmware wrote zeros instead of a signature.
    pub mask_chip_key: bool,
    /// SIGNING_KEY.
    pub signing_key: SigningKey,
    /// REPORT_DATA.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub report_data: [u8; 64],
    /// MEASUREMENT.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub measurement: [u8; 48],
    /// HOST_DATA.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub author_key_digest: [u8; 48],
    /// REPORT_ID.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub report_id: [u8; 32],
    /// REPORT_ID_MA.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB.
    pub reported_tcb: TcbVersion,
    /// CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP (version 3+).
    pub cpuid: Option<Cpuid>,
    /// CHIP_ID.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub chip_id: [u8; 64],
    /// COMMITTED_TCB.
    pub committed_tcb: TcbVersion,
    /// CURRENT_MAJOR.CURRENT_MINOR.CURRENT_BUILD.
    pub current_version: FirmwareVersion,
    /// COMMITTED_MAJOR.COMMITTED_MINOR.COMMITTED_BUILD.
    pub committed_version: FirmwareVersion,
    /// LAUNCH_TCB.
    pub launch_tcb: TcbVersion,
    /// LAUNCH_MIT_VECTOR (version 5+).
    pub launch_mit_vector: Option<u64>,
    /// CURRENT_MIT_VECTOR (version 5+).
    pub current_mit_vector: Option<u64>,
    /// Whether the TCB fields were decoded with Turin's layout.
    pub turin: bool,
}

/// Parses an attestation report (exactly [`REPORT_LEN`] bytes).
pub fn parse(bytes: &[u8]) -> Result<SnpReport, SnpReportError> {
    let r = AttestationReport::read_from_bytes(bytes).map_err(|_| SnpReportError::Size { len: bytes.len() })?;
    let version = r.version.get();
    if !(2..=5).contains(&version) {
        return Err(SnpReportError::Version { version });
    }
    // Reserved ranges for this version (offsets into the report).
    let cpuid_end = if version >= 3 { 0x18b } else { 0x188 };
    let mit_start = if version >= 5 { 0x208 } else { 0x1f8 };
    let mut reserved = vec![0x4c..0x50, cpuid_end..0x1a0, 0x1eb..0x1ec, 0x1ef..0x1f0, mit_start..SIGNED_LEN];
    if r.signature_algo.get() == 1 {
        // ECDSA P-384: R and S take 72 bytes each, the rest of the signature is reserved.
        reserved.push(SIGNED_LEN + 144..REPORT_LEN);
    }
    for range in reserved {
        if let Some(offset) = first_nonzero(bytes, range) {
            return Err(SnpReportError::Reserved { offset, value: bytes[offset], version });
        }
    }
    let key_info = r.key_info.get();
    if key_info >> 5 != 0 {
        // Bits 7:5 of the first byte, or any of the three bytes after it.
        let offset = if key_info & 0xe0 != 0 { 0x48 } else { first_nonzero(bytes, 0x49..0x4c).unwrap_or(0x48) };
        return Err(SnpReportError::Reserved { offset, value: bytes[offset], version });
    }
    let cpuid =
        (version >= 3).then_some(Cpuid { family: r.cpuid_fam_id, model: r.cpuid_mod_id, stepping: r.cpuid_step });
    let turin = match cpuid {
        Some(c) => c.family == FAMILY_TURIN,
        None => r.chip_id[..8].iter().any(|b| *b != 0) && r.chip_id[8..].iter().all(|b| *b == 0),
    };
    let tcb = |v: &U64| TcbVersion::decode(v.get(), turin);
    let signing_key = match (key_info >> 2) & 0b111 {
        0 => SigningKey::Vcek,
        1 => SigningKey::Vlek,
        7 => SigningKey::None,
        n => SigningKey::Reserved(n as u8),
    };
    Ok(SnpReport {
        version,
        guest_svn: r.guest_svn.get(),
        policy: GuestPolicy::decode(r.policy.get()),
        family_id: r.family_id,
        image_id: r.image_id,
        vmpl: r.vmpl.get(),
        signature_algo: r.signature_algo.get(),
        current_tcb: tcb(&r.current_tcb),
        platform_info: PlatformInfo::decode(r.platform_info.get()),
        author_key_en: key_info & 1 != 0,
        mask_chip_key: key_info & 2 != 0,
        signing_key,
        report_data: r.report_data,
        measurement: r.measurement,
        host_data: r.host_data,
        id_key_digest: r.id_key_digest,
        author_key_digest: r.author_key_digest,
        report_id: r.report_id,
        report_id_ma: r.report_id_ma,
        reported_tcb: tcb(&r.reported_tcb),
        cpuid,
        chip_id: r.chip_id,
        committed_tcb: tcb(&r.committed_tcb),
        current_version: FirmwareVersion { major: r.current_major, minor: r.current_minor, build: r.current_build },
        committed_version: FirmwareVersion {
            major: r.committed_major,
            minor: r.committed_minor,
            build: r.committed_build,
        },
        launch_tcb: tcb(&r.launch_tcb),
        launch_mit_vector: (version >= 5).then(|| r.launch_mit_vector.get()),
        current_mit_vector: (version >= 5).then(|| r.current_mit_vector.get()),
        turin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 5 Turin report (project-oak/oak via routex-client-lua; see testdata/README.md).
    const TURIN: &[u8] = include_bytes!("../../testdata/snp-report-v5-turin.bin");
    /// A version 2 Milan report (google/go-sev-guest).
    const MILAN: &[u8] = include_bytes!("../../testdata/snp-report-v2-milan.bin");

    fn with(base: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = base.to_vec();
        edit(&mut b);
        b
    }

    #[test]
    fn the_layout_and_the_versions_agree() {
        let t = parse(TURIN).unwrap();
        assert_eq!((t.version, t.turin), (5, true));
        assert_eq!(t.cpuid, Some(Cpuid { family: 0x1a, model: 2, stepping: 1 }));
        assert_eq!(t.launch_mit_vector, Some(0));
        let m = parse(MILAN).unwrap();
        assert_eq!((m.version, m.turin, m.cpuid, m.launch_mit_vector), (2, false, None, None));
    }

    #[test]
    fn bad_input_names_what_and_where() {
        type Case = (&'static str, Vec<u8>, SnpReportError);
        let cases: Vec<Case> = vec![
            ("truncated", TURIN[..REPORT_LEN - 1].to_vec(), SnpReportError::Size { len: REPORT_LEN - 1 }),
            ("empty", Vec::new(), SnpReportError::Size { len: 0 }),
            ("trailing byte", with(TURIN, |b| b.push(0)), SnpReportError::Size { len: REPORT_LEN + 1 }),
            ("version 1", with(TURIN, |b| b[0] = 1), SnpReportError::Version { version: 1 }),
            ("version 6", with(TURIN, |b| b[0] = 6), SnpReportError::Version { version: 6 }),
            ("version 0x105", with(TURIN, |b| b[1] = 1), SnpReportError::Version { version: 0x105 }),
            (
                "reserved after key info",
                with(TURIN, |b| b[0x4d] = 0x80),
                SnpReportError::Reserved { offset: 0x4d, value: 0x80, version: 5 },
            ),
            (
                "reserved after cpuid",
                with(TURIN, |b| b[0x19f] = 1),
                SnpReportError::Reserved { offset: 0x19f, value: 1, version: 5 },
            ),
            (
                "cpuid bytes in a version 2 report",
                with(MILAN, |b| b[0x188] = 0x19),
                SnpReportError::Reserved { offset: 0x188, value: 0x19, version: 2 },
            ),
            (
                // A version 5 report relabelled 2: its mitigation vectors sit in reserved bytes.
                "mitigation vector in a version 2 report",
                with(MILAN, |b| b[0x1f8] = 0x0b),
                SnpReportError::Reserved { offset: 0x1f8, value: 0x0b, version: 2 },
            ),
            (
                "reserved after the version",
                with(TURIN, |b| b[0x1eb] = 2),
                SnpReportError::Reserved { offset: 0x1eb, value: 2, version: 5 },
            ),
            (
                "reserved before the signature",
                with(TURIN, |b| b[0x29f] = 1),
                SnpReportError::Reserved { offset: 0x29f, value: 1, version: 5 },
            ),
            (
                "reserved part of an ECDSA signature",
                with(TURIN, |b| b[0x2a0 + 144] = 1),
                SnpReportError::Reserved { offset: 0x2a0 + 144, value: 1, version: 5 },
            ),
            (
                "reserved key-info bits",
                with(TURIN, |b| b[0x4a] = 1),
                SnpReportError::Reserved { offset: 0x4a, value: 1, version: 5 },
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(parse(&bytes).unwrap_err(), want, "{name}");
        }
        // The messages say where.
        let e = parse(&with(TURIN, |b| b[0x19f] = 1)).unwrap_err().to_string();
        assert_eq!(e, "reserved byte at offset 0x19f is 0x01, not zero (in a version 5 report)");
    }

    #[test]
    fn tcb_layouts() {
        // Genoa CURRENT_TCB bytes 07 00 00 00 00 00 0e 44 (routex-client-lua's Genoa vector).
        let g = TcbVersion::decode(u64::from_le_bytes([7, 0, 0, 0, 0, 0, 0x0e, 0x44]), false);
        assert_eq!((g.fmc, g.bootloader, g.tee, g.snp, g.microcode), (None, 7, 0, 14, 68));
        // Turin 00 01 00 02 00 00 00 47 (project-oak's Turin report).
        let t = TcbVersion::decode(u64::from_le_bytes([0, 1, 0, 2, 0, 0, 0, 0x47]), true);
        assert_eq!((t.fmc, t.bootloader, t.tee, t.snp, t.microcode), (Some(0), 1, 0, 2, 71));
        assert_eq!(t.to_string(), "fmc 0 bootloader 1 tee 0 snp 2 microcode 71");
    }
}
