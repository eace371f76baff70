//! The values an event log is made of: algorithms, event types, events, the Spec ID header.

use std::fmt;

pub use digest_alg::{AlgId, HashAlg};
use serde::{Serialize, Serializer};

/// An event type (`TCG_EVENTTYPE`), named or not.
///
/// Values from the TCG PC Client PFP specification 1.05, "Event Types" (pre-boot and EFI
/// event types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(pub u32);

macro_rules! event_types {
    ($($name:ident = $value:expr,)*) => {
        impl EventType {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: EventType = EventType($value);
            )*

            /// The specification's name (`EV_SEPARATOR`), if this type has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    EV_PREBOOT_CERT = 0x0000_0000,
    EV_POST_CODE = 0x0000_0001,
    EV_UNUSED = 0x0000_0002,
    EV_NO_ACTION = 0x0000_0003,
    EV_SEPARATOR = 0x0000_0004,
    EV_ACTION = 0x0000_0005,
    EV_EVENT_TAG = 0x0000_0006,
    EV_S_CRTM_CONTENTS = 0x0000_0007,
    EV_S_CRTM_VERSION = 0x0000_0008,
    EV_CPU_MICROCODE = 0x0000_0009,
    EV_PLATFORM_CONFIG_FLAGS = 0x0000_000a,
    EV_TABLE_OF_DEVICES = 0x0000_000b,
    EV_COMPACT_HASH = 0x0000_000c,
    EV_IPL = 0x0000_000d,
    EV_IPL_PARTITION_DATA = 0x0000_000e,
    EV_NONHOST_CODE = 0x0000_000f,
    EV_NONHOST_CONFIG = 0x0000_0010,
    EV_NONHOST_INFO = 0x0000_0011,
    EV_OMIT_BOOT_DEVICE_EVENTS = 0x0000_0012,
    EV_POST_CODE2 = 0x0000_0013,
    EV_EFI_VARIABLE_DRIVER_CONFIG = 0x8000_0001,
    EV_EFI_VARIABLE_BOOT = 0x8000_0002,
    EV_EFI_BOOT_SERVICES_APPLICATION = 0x8000_0003,
    EV_EFI_BOOT_SERVICES_DRIVER = 0x8000_0004,
    EV_EFI_RUNTIME_SERVICES_DRIVER = 0x8000_0005,
    EV_EFI_GPT_EVENT = 0x8000_0006,
    EV_EFI_ACTION = 0x8000_0007,
    EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x8000_0008,
    EV_EFI_HANDOFF_TABLES = 0x8000_0009,
    EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000_000a,
    EV_EFI_HANDOFF_TABLES2 = 0x8000_000b,
    EV_EFI_VARIABLE_BOOT2 = 0x8000_000c,
    EV_EFI_GPT_EVENT2 = 0x8000_000d,
    EV_EFI_HCRTM_EVENT = 0x8000_0010,
    EV_EFI_VARIABLE_AUTHORITY = 0x8000_00e0,
    EV_EFI_SPDM_FIRMWARE_BLOB = 0x8000_00e1,
    EV_EFI_SPDM_FIRMWARE_CONFIG = 0x8000_00e2,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "event type {:#010x}", self.0),
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(n) => s.serialize_str(n),
            None => s.collect_str(&format_args!("{:#010x}", self.0)),
        }
    }
}

/// One digest of an event: a `TPMT_HA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digest {
    /// The bank.
    pub alg: AlgId,
    /// The digest, `alg`'s size.
    #[serde(rename = "digest", serialize_with = "hex::serde::serialize")]
    pub bytes: Vec<u8>,
}

/// One event: what was extended into which register, and the firmware's note of what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The register index field: a PCR, or for CCEL logs a CC measurement-register index.
    pub pcr: u32,
    /// What kind of measurement this is; decides how [`Event::data`] is laid out.
    pub event_type: EventType,
    /// One digest per bank (one SHA-1 digest in legacy logs). `EV_NO_ACTION` digests are zero
    /// and are never extended.
    pub digests: Vec<Digest>,
    /// The event data (`Event` / `EventSize` in the specification). It describes the
    /// measurement; for some types (`EV_SEPARATOR`, `EV_EFI_ACTION`, variables) the digest is
    /// the hash of exactly these bytes, for others (images, sections) of something else.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub data: Vec<u8>,
}

impl Event {
    /// An event whose digest in every bank is the hash of its own data (`EV_SEPARATOR`,
    /// `EV_EFI_ACTION`, `EV_EFI_VARIABLE_DRIVER_CONFIG`, …).
    pub fn hashing_data(pcr: u32, event_type: EventType, data: Vec<u8>, algs: &[HashAlg]) -> Self {
        let digests = algs.iter().map(|a| Digest { alg: a.id(), bytes: a.hash(&data) }).collect();
        Self { pcr, event_type, digests, data }
    }

    /// An event that measures `measured` (an image, a section) and logs `data` about it.
    pub fn measuring(pcr: u32, event_type: EventType, measured: &[u8], data: Vec<u8>, algs: &[HashAlg]) -> Self {
        let digests = algs.iter().map(|a| Digest { alg: a.id(), bytes: a.hash(measured) }).collect();
        Self { pcr, event_type, digests, data }
    }

    /// An event with digests computed elsewhere (an Authenticode digest per bank, say).
    pub fn with_digests(pcr: u32, event_type: EventType, digests: Vec<Digest>, data: Vec<u8>) -> Self {
        Self { pcr, event_type, digests, data }
    }

    /// This event's digest in the `alg` bank, if it has one.
    pub fn digest(&self, alg: AlgId) -> Option<&[u8]> {
        self.digests.iter().find(|d| d.alg == alg).map(|d| d.bytes.as_slice())
    }

    /// Whether replay extends this event: everything but `EV_NO_ACTION` (PFP: "not extended
    /// into any PCR").
    pub fn is_extended(&self) -> bool {
        self.event_type != EventType::EV_NO_ACTION
    }
}

/// The encoding of a log, and what its index field means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LogFormat {
    /// TPM 1.2-style: `TCG_PCR_EVENT`s with one SHA-1 digest each, PCR indices.
    #[serde(rename = "tcg-sha1")]
    TcgSha1,
    /// TPM 2.0 crypto-agile: Spec ID header, then `TCG_PCR_EVENT2`s; PCR indices.
    #[serde(rename = "tcg-crypto-agile")]
    TcgCryptoAgile,
    /// Confidential Computing event log (TDX): crypto-agile encoding, CC MR indices.
    #[serde(rename = "ccel")]
    Ccel,
}

impl LogFormat {
    /// What the index field of an event names in this format.
    pub fn register(self, index: u32) -> Register {
        match self {
            Self::TcgSha1 | Self::TcgCryptoAgile => Register::Pcr(index),
            Self::Ccel if index == 0 => Register::Mrtd,
            Self::Ccel => Register::Rtmr(index - 1),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TcgSha1 => "TCG PC Client SHA-1 log",
            Self::TcgCryptoAgile => "TCG PC Client crypto-agile log",
            Self::Ccel => "TDX CC event log (CCEL)",
        })
    }
}

/// A measurement register an event extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Register {
    /// A TPM PCR.
    Pcr(u32),
    /// TDX MRTD (CC MR index 0): measured by the TDX module at build time, never in a log.
    Mrtd,
    /// A TDX runtime measurement register, RTMR0..=3 (CC MR index 1..=4).
    Rtmr(u32),
}

impl Register {
    /// The index within its kind: the PCR number, the RTMR number, 0 for MRTD.
    pub fn number(self) -> u32 {
        match self {
            Self::Pcr(n) | Self::Rtmr(n) => n,
            Self::Mrtd => 0,
        }
    }
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pcr(n) => write!(f, "PCR {n}"),
            Self::Mrtd => f.write_str("MRTD"),
            Self::Rtmr(n) => write!(f, "RTMR{n}"),
        }
    }
}

/// One entry of the Spec ID event's algorithm list (`TCG_EfiSpecIdEventAlgorithmSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlgorithmSize {
    /// The bank's algorithm.
    pub alg: AlgId,
    /// Its digest size in bytes, as every event of the log encodes it.
    pub digest_size: u16,
}

/// The `TCG_EfiSpecIDEvent` carried by the header of a crypto-agile log ("Spec ID Event03").
///
/// Layout (PFP 1.05, "Specification ID Version Event"): signature `[u8; 16]`,
/// platformClass u32, specVersionMinor u8, specVersionMajor u8, specErrata u8, uintnSize u8,
/// numberOfAlgorithms u32, that many {algorithmId u16, digestSize u16}, vendorInfoSize u8,
/// vendorInfo. Little-endian.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecIdEvent {
    /// 0 for client platforms, 1 for servers.
    pub platform_class: u32,
    /// Specification version minor (0 for 2.0).
    pub spec_version_minor: u8,
    /// Specification version major (2).
    pub spec_version_major: u8,
    /// Specification errata.
    pub spec_errata: u8,
    /// Size of UINTN in the firmware: 1 for 32-bit, 2 for 64-bit.
    pub uintn_size: u8,
    /// The banks every later event carries digests for, with their sizes.
    pub algorithms: Vec<AlgorithmSize>,
    /// Vendor information (usually empty).
    #[serde(serialize_with = "hex::serde::serialize")]
    pub vendor_info: Vec<u8>,
}

impl SpecIdEvent {
    /// The signature that starts a crypto-agile header's data, NUL included.
    pub const SIGNATURE: &'static [u8; 16] = b"Spec ID Event03\0";

    /// The header edk2's OVMF writes for the given banks: client platform class, spec 2.0
    /// errata 0, 64-bit UINTN, no vendor info.
    pub fn for_algs(algs: &[HashAlg]) -> Self {
        Self {
            platform_class: 0,
            spec_version_minor: 0,
            spec_version_major: 2,
            spec_errata: 0,
            uintn_size: 2,
            algorithms: algs.iter().map(|a| AlgorithmSize { alg: a.id(), digest_size: a.size() as u16 }).collect(),
            vendor_info: Vec::new(),
        }
    }

    /// The encoded event data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(33 + 4 * self.algorithms.len() + self.vendor_info.len());
        b.extend_from_slice(Self::SIGNATURE);
        b.extend_from_slice(&self.platform_class.to_le_bytes());
        b.extend_from_slice(&[self.spec_version_minor, self.spec_version_major, self.spec_errata, self.uintn_size]);
        b.extend_from_slice(&(self.algorithms.len() as u32).to_le_bytes());
        for a in &self.algorithms {
            b.extend_from_slice(&a.alg.0.to_le_bytes());
            b.extend_from_slice(&a.digest_size.to_le_bytes());
        }
        b.push(self.vendor_info.len() as u8);
        b.extend_from_slice(&self.vendor_info);
        b
    }

    /// The digest size this header declares for `alg`.
    pub fn digest_size(&self, alg: AlgId) -> Option<usize> {
        self.algorithms.iter().find(|a| a.alg == alg).map(|a| usize::from(a.digest_size))
    }
}

/// A parsed event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventLog {
    /// The encoding, and what the index field means.
    pub format: LogFormat,
    /// The crypto-agile header (absent in SHA-1 logs).
    pub spec_id: Option<SpecIdEvent>,
    /// The header event of a crypto-agile log (PCR index, the legacy SHA-1 digest field and the
    /// raw Spec ID data), kept so a parsed log writes back byte for byte.
    pub header: Option<Event>,
    /// The events after the header, in log order.
    pub events: Vec<Event>,
    /// Byte offset in the input of each of `events` (same length); empty for built logs.
    #[serde(skip)]
    pub offsets: Vec<u64>,
    /// Bytes of padding (all 0x00 or all 0xFF) after the last event, as CCEL areas have.
    pub trailing_padding: u64,
}

impl EventLog {
    /// A crypto-agile log for `algs` holding `events`, as the boot-chain model writes it.
    pub fn crypto_agile(algs: &[HashAlg], events: Vec<Event>) -> Self {
        Self {
            format: LogFormat::TcgCryptoAgile,
            spec_id: Some(SpecIdEvent::for_algs(algs)),
            header: None,
            events,
            offsets: Vec::new(),
            trailing_padding: 0,
        }
    }

    /// The number `tpm2_eventlog` gives event `i` of [`EventLog::events`]: the header, when
    /// there is one, is number 0.
    pub fn number(&self, i: usize) -> usize {
        if self.spec_id.is_some() {
            i + 1
        } else {
            i
        }
    }

    /// The banks the log carries: the Spec ID algorithms, or SHA-1 for a SHA-1 log.
    pub fn algorithms(&self) -> Vec<AlgId> {
        match &self.spec_id {
            Some(s) => s.algorithms.iter().map(|a| a.alg).collect(),
            None => vec![AlgId::SHA1],
        }
    }

    /// The register `event` extends.
    pub fn register(&self, event: &Event) -> Register {
        self.format.register(event.pcr)
    }
}
