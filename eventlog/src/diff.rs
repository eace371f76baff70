//! Comparing two logs register by register, and saying what the first difference means.
//!
//! Each register's value depends only on the ordered digests extended into it, so the logs are
//! aligned per register: the n-th extending event of PCR 4 in one log against the n-th of PCR 4
//! in the other. The first pair that differs in type or in a digest of a shared bank is where
//! the boots parted; everything after it in that register differs as a consequence.

use std::collections::BTreeSet;

use serde::{Serialize, Serializer};

use crate::describe::{EventData, TAG_LINUX_INITRD, TAG_LINUX_LOAD_OPTIONS};
use crate::types::{AlgId, Digest, Event, EventLog, EventType, LogFormat, Register};

/// Why two logs cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// A TPM log against a CCEL: different registers.
    #[error("cannot compare a {expected} with a {actual}")]
    Formats {
        /// The expected log's format.
        expected: LogFormat,
        /// The actual log's format.
        actual: LogFormat,
    },
    /// No bank in common.
    #[error("the logs share no digest algorithm (expected has {expected}, actual has {actual})")]
    NoCommonBank {
        /// The expected log's banks.
        expected: String,
        /// The actual log's banks.
        actual: String,
    },
}

/// The differences between an expected and an actual log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// The banks compared: those both logs carry.
    pub algorithms: Vec<AlgId>,
    /// One entry per register whose events differ, in register order. Empty: the logs extend
    /// the same digests into the same registers.
    pub registers: Vec<RegisterDiff>,
}

impl Diff {
    /// Whether the logs agree on every register.
    pub fn is_empty(&self) -> bool {
        self.registers.is_empty()
    }
}

/// Where one register's events part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterDiff {
    /// The register.
    #[serde(serialize_with = "display")]
    pub register: Register,
    /// Position of the first differing event among this register's extending events (0-based).
    pub position: usize,
    /// How many events extend this register in the expected log.
    pub expected_events: usize,
    /// How many in the actual log.
    pub actual_events: usize,
    /// The expected event at `position`, if the expected log has one.
    pub expected: Option<EventSummary>,
    /// The actual event at `position`, if the actual log has one.
    pub actual: Option<EventSummary>,
    /// What the difference means ("`.cmdline` section differs").
    pub meaning: String,
}

/// An event, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    /// Its number in its log (header = 0).
    pub number: usize,
    /// Its byte offset in its log.
    pub offset: u64,
    /// Its type.
    pub event_type: EventType,
    /// Its digests.
    pub digests: Vec<Digest>,
    /// Its decoded data.
    pub data: EventData,
}

fn display<S: Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Compares `expected` with `actual`, register by register, in the banks both carry.
pub fn diff(expected: &EventLog, actual: &EventLog) -> Result<Diff, DiffError> {
    let pcr_like = |f: LogFormat| f != LogFormat::Ccel;
    if pcr_like(expected.format) != pcr_like(actual.format) {
        return Err(DiffError::Formats { expected: expected.format, actual: actual.format });
    }
    let theirs = actual.algorithms();
    let algorithms: Vec<AlgId> = expected.algorithms().into_iter().filter(|a| theirs.contains(a)).collect();
    if algorithms.is_empty() {
        let names = |l: &EventLog| l.algorithms().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        return Err(DiffError::NoCommonBank { expected: names(expected), actual: names(actual) });
    }
    let registers: BTreeSet<Register> = expected
        .events
        .iter()
        .chain(&actual.events)
        .filter(|e| e.is_extended())
        .map(|e| expected.format.register(e.pcr))
        .collect();
    let mut out = Vec::new();
    for register in registers {
        let exp = extending(expected, register);
        let act = extending(actual, register);
        let same = |a: &(usize, &Event), b: &(usize, &Event)| {
            a.1.event_type == b.1.event_type && algorithms.iter().all(|alg| a.1.digest(*alg) == b.1.digest(*alg))
        };
        let position = exp.iter().zip(&act).position(|(a, b)| !same(a, b));
        let position = match position {
            Some(p) => p,
            None if exp.len() == act.len() => continue,
            None => exp.len().min(act.len()),
        };
        let e = exp.get(position).map(|(i, ev)| summary(expected, *i, ev));
        let a = act.get(position).map(|(i, ev)| summary(actual, *i, ev));
        let meaning = meaning(register, exp.get(position).map(|(_, ev)| *ev), act.get(position).map(|(_, ev)| *ev));
        out.push(RegisterDiff {
            register,
            position,
            expected_events: exp.len(),
            actual_events: act.len(),
            expected: e,
            actual: a,
            meaning,
        });
    }
    Ok(Diff { algorithms, registers: out })
}

fn extending(log: &EventLog, register: Register) -> Vec<(usize, &Event)> {
    log.events.iter().enumerate().filter(|(_, e)| e.is_extended() && log.register(e) == register).collect()
}

fn summary(log: &EventLog, i: usize, e: &Event) -> EventSummary {
    EventSummary {
        number: log.number(i),
        offset: log.offsets.get(i).copied().unwrap_or(0),
        event_type: e.event_type,
        digests: e.digests.clone(),
        data: e.decode(),
    }
}

/// What an event measures, in words a person checking a boot understands.
fn subject(register: Register, e: &Event) -> String {
    let data = e.decode();
    let pcr = match register {
        Register::Pcr(n) => Some(n),
        _ => None,
    };
    match (e.event_type, &data) {
        (EventType::EV_IPL, EventData::Text { text }) if pcr == Some(11) => {
            if e.is_section_name_event() {
                format!("the UKI's list of sections (the {text} section's name)")
            } else {
                format!("the UKI's {text} section")
            }
        }
        (EventType::EV_IPL, EventData::Text { text }) if pcr == Some(12) => {
            format!("a kernel command line or credentials measured by systemd-stub ({text:?})")
        }
        (EventType::EV_IPL, EventData::Text { text }) if pcr == Some(13) => {
            format!("the system extensions measured by systemd-stub ({text:?})")
        }
        (EventType::EV_EVENT_TAG, EventData::Tagged(t)) if t.id == TAG_LINUX_INITRD => {
            "the initrd (as the Linux EFI stub loaded it)".into()
        }
        (EventType::EV_EVENT_TAG, EventData::Tagged(t)) if t.id == TAG_LINUX_LOAD_OPTIONS => {
            "the kernel command line (LoadOptions, as the Linux EFI stub received it)".into()
        }
        (EventType::EV_EVENT_TAG, EventData::Tagged(t)) => match t.tag {
            Some(tag) => format!("the {tag} measurement"),
            None => format!("tagged event {:#010x}", t.id),
        },
        (EventType::EV_EFI_VARIABLE_DRIVER_CONFIG, EventData::Variable(v)) => match v.name.as_str() {
            "SecureBoot" => "the Secure Boot state (SecureBoot variable)".into(),
            "PK" | "KEK" | "db" | "dbx" | "dbt" | "dbr" => format!("Secure Boot {}", v.name),
            n => format!("UEFI variable {n}"),
        },
        (EventType::EV_EFI_VARIABLE_AUTHORITY, EventData::Variable(v)) => {
            format!("the Secure Boot {} entry that authorized an image (its signing certificate)", v.name)
        }
        (EventType::EV_EFI_VARIABLE_BOOT | EventType::EV_EFI_VARIABLE_BOOT2, EventData::Variable(v)) => {
            format!("boot variable {}", v.name)
        }
        (
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION
            | EventType::EV_EFI_BOOT_SERVICES_DRIVER
            | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER,
            EventData::Image(i),
        ) => {
            if i.device_path.contains("VenMedia(55c5d1f8-04cd-46b5-8a20-e56cbb3052d0)") {
                "the kernel systemd-stub loaded from its .linux section (Authenticode digest)".into()
            } else {
                // Name the file, not the whole device path: a prediction knows the path on the
                // ESP, the firmware logs the disk's PCI path too, and neither is in the digest.
                let file = i.device_path.rsplit('/').next().filter(|f| f.starts_with('\\'));
                format!("the UEFI image {} (Authenticode digest)", file.unwrap_or(&i.device_path))
            }
        }
        (EventType::EV_EFI_ACTION | EventType::EV_ACTION, EventData::Text { text }) => {
            format!("the action {text:?}")
        }
        (EventType::EV_SEPARATOR, _) => "the separator".into(),
        (EventType::EV_EFI_GPT_EVENT, _) => "the boot disk's GPT partition table".into(),
        (EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB | EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2, _) => {
            "a firmware volume (the firmware code)".into()
        }
        (EventType::EV_S_CRTM_VERSION, _) => "the firmware (S-CRTM) version".into(),
        (EventType::EV_PLATFORM_CONFIG_FLAGS, EventData::Text { text }) => {
            format!("platform configuration {text:?}")
        }
        (t, _) => format!("the {t} event"),
    }
}

/// The explanation of a register's first difference.
fn meaning(register: Register, expected: Option<&Event>, actual: Option<&Event>) -> String {
    match (expected, actual) {
        (Some(e), Some(a)) => {
            let (se, sa) = (subject(register, e), subject(register, a));
            if se == sa {
                format!("{} differs", capitalize(&se))
            } else {
                format!("expected {se}, found {sa}")
            }
        }
        (Some(e), None) => format!("missing: {}", subject(register, e)),
        (None, Some(a)) => format!("unexpected extra event: {}", subject(register, a)),
        (None, None) => String::new(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
