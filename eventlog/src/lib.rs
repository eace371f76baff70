//! Measured-boot event logs: parse, replay, write and compare them.
//!
//! A TPM only holds the end of a story: each PCR is a running hash, `new = H(old ‖ digest)`, of
//! every measurement extended into it since reset. The firmware keeps the story itself — one
//! event per extension, with the digest per PCR bank and a description of what was measured — in
//! an *event log*, which Linux exports as `/sys/kernel/security/tpm0/binary_bios_measurements`.
//! Replaying the log (re-doing the extensions) must give the PCRs the TPM reports; if it does, the
//! log is an honest account of the boot and each event can be checked against what it claims to
//! be: the UKI's Authenticode digest, the `.cmdline` section, the Secure Boot `db`.
//!
//! This crate is the log half of the boot-chain model (`measure` predicts a list of [`Event`]s
//! for an image) and of the verifier (which replays a node's log): [`write`] turns events into
//! the binary log `tpm2_eventlog` reads; [`replay`] turns them into PCR values; [`diff()`]
//! explains, register by register, where a real boot's log departs from the prediction
//! ("`.cmdline` section differs", "Secure Boot db differs"). It depends on no other crate of
//! the workspace: a verifier can take it alone.
//!
//! Three encodings exist, all from the "Event Logging" chapter of the TCG PC Client Platform
//! Firmware Profile (PFP) specification, version 1.05:
//!
//! * the legacy SHA-1 log (TPM 1.2 era): every event a `TCG_PCR_EVENT` with one SHA-1 digest;
//! * the crypto-agile log (TPM 2.0): a `TCG_PCR_EVENT` header whose data is the
//!   `TCG_EfiSpecIDEvent` ("Spec ID Event03", listing the banks and their digest sizes), then
//!   `TCG_PCR_EVENT2`s, each with one digest per bank;
//! * the Confidential Computing event log (CCEL) of Intel TDX guests: the crypto-agile encoding
//!   with a single SHA-384 bank, where the "PCR index" field holds a CC measurement-register
//!   index: 0 = MRTD, 1..=4 = RTMR0..=3 (UEFI 2.10, `EFI_CC_MEASUREMENT_PROTOCOL`; TDVF maps
//!   PCR 0, 1 and 7 to RTMR0, PCR 2–6 to RTMR1, PCR 8–15 to RTMR2).
//!
//! Logs are untrusted input: every length is checked against what is left, a digest count may
//! not exceed the banks the header declared, and errors name the event and its byte offset.

mod describe;
mod diff;
mod parse;
mod replay;
mod types;
mod write;

pub mod serde_hex;

pub use describe::{EventData, TaggedEvent, UefiImageLoadEvent, UefiVariableData};
pub use diff::{diff, Diff, DiffError, EventSummary, RegisterDiff};
pub use parse::{parse, parse_as, ParseError};
pub use replay::{replay, ReplayError, Replayed};
pub use types::{AlgId, AlgorithmSize, Digest, Event, EventLog, EventType, HashAlg, LogFormat, Register, SpecIdEvent};
pub use write::{write, WriteError};
