//! The boot-chain model: what a UKI's boot extends into the vTPM's PCRs (and a TD's RTMRs),
//! predicted from the image alone.
//!
//! A node proves what it booted with PCR values, and a verifier needs to know the right values
//! *before* any node boots — from the build, not from a golden machine. The values are running
//! hashes of measurements that four programs make in turn, and each measures only what it loads
//! or decides:
//!
//! * **UEFI firmware** (edk2/OVMF; the cloud vTPM firmwares behave the same for these PCRs)
//!   records the Secure Boot policy in PCR 7 (the `SecureBoot`, `PK`, `KEK`, `db`, `dbx`
//!   variables, a separator, and under Secure Boot the `db` entry that authorised the UKI), and
//!   in PCR 4 the boot attempt, a separator and the UKI's Authenticode digest; PCR 5 gets the
//!   boot disk's GPT and the ExitBootServices actions (module `firmware`).
//! * **systemd-stub** measures each UKI section it knows into PCR 11, name then contents, in its
//!   own canonical order (not file order); a command line from the boot entry, credentials and
//!   configuration extensions into PCR 12; system extensions into PCR 13. It starts the kernel
//!   from `.linux` with `LoadImage()`, which makes the firmware measure the kernel's
//!   Authenticode digest into PCR 4 — unless Secure Boot is on, when the stub's
//!   security-protocol override skips the firmware's hooks (module `stub`).
//! * **The Linux EFI stub** measures into PCR 9 the command line it was given and the initrd it
//!   loads — which is the UKI's `.initrd` *plus* cpio archives systemd-stub builds at boot
//!   (`/.extra/os-release` from `.osrel`, credentials, extensions), so those are rebuilt byte for
//!   byte (module `cpio`).
//! * **systemd** in the initrd and the root extends PCR 11 with boot-phase words
//!   (`enter-initrd`, `leave-initrd`, `sysinit`, `ready`) through `systemd-pcrphase`; they are
//!   not in the firmware's log, so [`Prediction`] reports PCR 11 per [`Phase`].
//!
//! Everything here is edk2-stable202502 (Debian trixie's OVMF), systemd-stub 257 and Linux 6.12,
//! checked against real boots under QEMU + OVMF + swtpm (`testdata/boot/`): the prediction
//! equals the vTPM's PCR 4, 7, 9, 11, 12 and 13 in sha256 and sha384, Secure Boot off and on,
//! and the predicted log equals the captured one event by event. Other stub versions measure
//! differently (other section lists, no os-release cpio, other PCRs for command lines) and are
//! refused rather than guessed ([`BootError::UnsupportedStub`]).
//!
//! [`predict`] gives the TPM view; [`predict_tdx`] maps the same measurements to a TDX guest
//! without a vTPM, where firmware and stubs extend RTMRs through the CC measurement protocol.
//!
//! What the model assumes (each is a property of the platform, not of the image, and each shows
//! up as a named difference when a real log is compared with [`Prediction::diff`]):
//!
//! * the UKI's boot option is the first one the firmware tries (one ReadyToBoot: a failing
//!   earlier option, say PXE, adds a "Returning from EFI Application" pair to PCR 4);
//! * the UKI is loaded from a GPT disk (the GPT event, PCR 5) by x86-64 edk2, and starts an
//!   x86-64 kernel whose EFI stub is at least 1.0 (`LoadImage()` and `LINUX_INITRD_MEDIA_GUID`);
//! * no UKI add-ons, no `.dtbauto`, no shim, and no SMBIOS `io.systemd.stub.kernel-cmdline-extra`
//!   (the host's, which the stub honours outside confidential VMs);
//! * the image event's data carries the UKI's file path only: the firmware logs the disk's whole
//!   device path there, which no digest covers.

mod authority;
mod cpio;
mod firmware;
mod stub;
mod tdx;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use uki::{digest_all, HashInput, Pe, PeError, Uki, UkiError};

use crate::uefi_vars::{self, SignatureListError, VarStore, EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE};
use eventlog::{self, Diff, DiffError, Digest, Event, EventLog, EventType, HashAlg, Register};

pub use firmware::{gpt_event_data, GptError};
pub use stub::pcr11_from_sections;
pub use tdx::{predict_tdx, tdx_mr_index, TdxPrediction};

/// The systemd-stub major version this model follows.
pub const MODELED_STUB: u32 = 257;

/// Where OVMF finds a UKI on a disk without boot entries (the removable-media path for x64).
pub const DEFAULT_UKI_PATH: &str = r"\EFI\BOOT\BOOTX64.EFI";

/// Why a boot cannot be predicted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// The UKI does not parse, or has no `.linux`.
    #[error("the UKI: {0}")]
    Uki(UkiError),
    /// The kernel in `.linux` is not a PE image the stub can `LoadImage()`.
    #[error("the kernel in the UKI's .linux section: {0}")]
    Kernel(PeError),
    /// The kernel's EFI stub predates `LINUX_INITRD_MEDIA_GUID`.
    #[error("the kernel's EFI stub is version {major}.x (MajorImageVersion): systemd-stub boots kernels older than 1.0 through the EFI handover protocol, which this model does not cover")]
    KernelTooOld {
        /// MajorImageVersion.
        major: u16,
    },
    /// The UKI carries no `LoaderInfo` string and no version was given.
    #[error("the UKI has no systemd-stub version (no \"#### LoaderInfo: systemd-stub … ####\" string); pass the stub version explicitly")]
    NoStubVersion,
    /// A stub version this model does not follow.
    #[error("systemd-stub {version} is not modeled: this model follows systemd-stub {MODELED_STUB}, and other versions measure other sections, cpio archives and command lines (override the version only if you know the stub measures exactly like {MODELED_STUB})")]
    UnsupportedStub {
        /// The version found or given.
        version: String,
    },
    /// A feature of the boot this model does not predict.
    #[error("not modeled: {what}")]
    NotModeled {
        /// What.
        what: String,
    },
    /// `@N` selected a profile the UKI lacks.
    #[error("the command line selects UKI profile {profile}, but the UKI has {profiles} profile(s)")]
    NoSuchProfile {
        /// The profile asked for.
        profile: u32,
        /// How many `.profile` sections there are.
        profiles: usize,
    },
    /// A Secure Boot database that does not parse.
    #[error("Secure Boot variable {variable}: {error}")]
    SignatureList {
        /// `PK`, `KEK`, `db`, `dbx`.
        variable: &'static str,
        /// The parse error.
        error: SignatureListError,
    },
    /// Secure Boot would refuse the UKI.
    #[error("Secure Boot is enforcing, but the firmware would refuse the UKI: {why}")]
    NotAuthorized {
        /// Why no `db` entry authorises it.
        why: String,
    },
    /// `dbx` forbids the UKI.
    #[error("Secure Boot is enforcing, and dbx forbids the UKI: {what}")]
    ForbiddenByDbx {
        /// What matched.
        what: String,
    },
    /// The disk image's GPT.
    #[error("the disk image: {0}")]
    Gpt(GptError),
}

// The variants above embed their cause in the message, so they do not chain it as a source
// (which would print it twice).
impl From<UkiError> for BootError {
    fn from(e: UkiError) -> Self {
        BootError::Uki(e)
    }
}

impl From<GptError> for BootError {
    fn from(e: GptError) -> Self {
        BootError::Gpt(e)
    }
}

/// A point in the boot a node can be attested at: after the stub, or after one of
/// `systemd-pcrphase`'s words has been extended into PCR 11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Nothing after systemd-stub's sections (the kernel is running; no systemd yet).
    Stub,
    /// `enter-initrd`: `systemd-pcrphase-initrd.service` started in the initrd.
    EnterInitrd,
    /// `leave-initrd`: the same unit stopped, at the switch to the root file system.
    LeaveInitrd,
    /// `sysinit`: `systemd-pcrphase-sysinit.service` started in the root.
    Sysinit,
    /// `ready`: `systemd-pcrphase.service` started, the system is up.
    Ready,
}

impl Phase {
    /// Every phase, in boot order.
    pub const ALL: [Phase; 5] = [Self::Stub, Self::EnterInitrd, Self::LeaveInitrd, Self::Sysinit, Self::Ready];

    /// The name in `--json` output: `stub`, or the phase's word.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stub => "stub",
            Self::EnterInitrd => "enter-initrd",
            Self::LeaveInitrd => "leave-initrd",
            Self::Sysinit => "sysinit",
            Self::Ready => "ready",
        }
    }

    /// The words `systemd-pcrextend` has extended into PCR 11 by this phase, in order
    /// (systemd 257 `units/systemd-pcrphase*.service.in`).
    pub fn words(self) -> &'static [&'static str] {
        const WORDS: [&str; 4] = ["enter-initrd", "leave-initrd", "sysinit", "ready"];
        &WORDS[..self as usize]
    }

    /// The phase as `systemd-measure calculate --phase=` spells it: the words joined by `:`
    /// (empty for [`Phase::Stub`]).
    pub fn systemd_measure_phase(self) -> String {
        self.words().join(":")
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|p| p.name() == s || (!s.is_empty() && p.systemd_measure_phase() == s)).ok_or_else(
            || format!("unknown boot phase {s:?} (expected stub, enter-initrd, leave-initrd, sysinit or ready)"),
        )
    }
}

impl Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What Secure Boot does on this firmware with these variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureBootState {
    /// The firmware is built without Secure Boot (Debian trixie's `OVMF_CODE_4M.fd`): there is no
    /// `SecureBoot` variable, and PCR 7 measures it empty.
    NotSupported,
    /// Secure Boot firmware without a `PK`: `SecureBoot` = 0, nothing is verified.
    SetupMode,
    /// A `PK` is enrolled but `SecureBootEnable` is 0: `SecureBoot` = 0.
    Disabled,
    /// `SecureBoot` = 1: images must be authorised by `db`.
    Enforcing,
}

/// The firmware's Secure Boot configuration: whether it supports Secure Boot at all, and the
/// variables PCR 7 measures.
///
/// Whether the firmware supports Secure Boot cannot be read from the variable store: it is a
/// build option of the firmware code (edk2 `SECURE_BOOT_ENABLE`; Debian trixie's
/// `OVMF_CODE_4M.secboot.fd`, `.ms.fd` and `.snakeoil.fd` have it, its `OVMF_CODE_4M.fd` does
/// not, bookworm's `OVMF_CODE_4M.fd` does), so it is given explicitly, or read from the code
/// by [`crate::fv::secure_boot_support`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecureBootConfig {
    /// The firmware code is built with Secure Boot support.
    pub firmware_support: bool,
    /// `PK`: a signature list, or absent.
    pub pk: Option<Vec<u8>>,
    /// `KEK`.
    pub kek: Option<Vec<u8>>,
    /// `db`.
    pub db: Option<Vec<u8>>,
    /// `dbx`.
    pub dbx: Option<Vec<u8>>,
    /// `dbt` (measured only when present).
    pub dbt: Option<Vec<u8>>,
    /// edk2's `SecureBootEnable` variable (absent: created as 1 once a `PK` is enrolled).
    pub secure_boot_enable: Option<Vec<u8>>,
}

impl SecureBootConfig {
    /// The configuration a variable store gives on firmware with or without Secure Boot.
    pub fn from_store(store: &VarStore, firmware_support: bool) -> Self {
        let get = |name: &str, guid| store.get(name, guid).map(|v| v.data.clone());
        SecureBootConfig {
            firmware_support,
            pk: get("PK", &EFI_GLOBAL_VARIABLE),
            kek: get("KEK", &EFI_GLOBAL_VARIABLE),
            db: get("db", &EFI_IMAGE_SECURITY_DATABASE),
            dbx: get("dbx", &EFI_IMAGE_SECURITY_DATABASE),
            dbt: get("dbt", &EFI_IMAGE_SECURITY_DATABASE),
            secure_boot_enable: get("SecureBootEnable", &uefi_vars::SECURE_BOOT_ENABLE_DISABLE),
        }
    }

    /// The value of the volatile `SecureBoot` variable at boot, or `None` when the firmware
    /// does not create it (edk2 `AuthVariableLibInitialize`: user mode iff a `PK` exists;
    /// `SecureBoot` = 1 iff user mode and `SecureBootEnable` is 1, which it becomes in user
    /// mode when absent).
    pub fn secure_boot_variable(&self) -> Option<u8> {
        if !self.firmware_support {
            return None;
        }
        let user_mode = self.pk.is_some();
        let enable = match &self.secure_boot_enable {
            Some(v) if user_mode => v.first().copied().unwrap_or(0),
            Some(_) => 0,
            None => u8::from(user_mode),
        };
        Some(u8::from(user_mode && enable == 1))
    }

    /// The resulting state.
    pub fn state(&self) -> SecureBootState {
        match self.secure_boot_variable() {
            None => SecureBootState::NotSupported,
            Some(1) => SecureBootState::Enforcing,
            Some(_) if self.pk.is_none() => SecureBootState::SetupMode,
            Some(_) => SecureBootState::Disabled,
        }
    }
}

/// A file the stub finds on the ESP next to the UKI (`<UKI>.extra.d/`) or in
/// `\loader\credentials\`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarFile {
    /// The file name.
    pub name: String,
    /// Its contents.
    pub data: Vec<u8>,
}

/// Everything a prediction depends on.
#[derive(Debug, Clone)]
pub struct BootInputs<'a> {
    /// The UKI file, as the firmware loads it (signed or not).
    pub uki: &'a [u8],
    /// Its path on the ESP (only for the event's device path; not hashed).
    pub uki_path: String,
    /// The firmware's Secure Boot configuration.
    pub secure_boot: SecureBootConfig,
    /// The PCR banks to predict.
    pub banks: Vec<HashAlg>,
    /// The systemd-stub version, overriding the one read from the UKI.
    pub stub_version: Option<String>,
    /// The boot entry's LoadOptions (OVMF's automatic removable-media entries pass none).
    pub load_options: Option<String>,
    /// The files in `<UKI>.extra.d/`: credentials (`*.cred`), system extensions (`*.raw`),
    /// configuration extensions (`*.confext.raw`).
    pub extra_d: Vec<SidecarFile>,
    /// The files in `\loader\credentials\` (`*.cred`).
    pub loader_credentials: Vec<SidecarFile>,
    /// The boot disk's first sectors (LBA 0 up to the end of the partition entries), for the
    /// GPT event: with it, PCR 5 is predicted too.
    pub disk: Option<&'a [u8]>,
    /// The stub runs in a confidential VM (SEV-SNP, TDX): it then ignores LoadOptions under
    /// Secure Boot even without a `.cmdline`.
    pub confidential_vm: bool,
}

impl<'a> BootInputs<'a> {
    /// Inputs for `uki` booted from `\EFI\BOOT\BOOTX64.EFI` by firmware without Secure Boot,
    /// with no boot-entry options and nothing next to the UKI, predicting sha1, sha256 and
    /// sha384.
    pub fn new(uki: &'a [u8]) -> Self {
        BootInputs {
            uki,
            uki_path: DEFAULT_UKI_PATH.into(),
            secure_boot: SecureBootConfig::default(),
            banks: vec![HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384],
            stub_version: None,
            load_options: None,
            extra_d: Vec::new(),
            loader_credentials: Vec::new(),
            disk: None,
            confidential_vm: false,
        }
    }
}

/// Who measures an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The UEFI firmware (edk2 Tcg2Dxe / TdTcg2Dxe and its measure-boot libraries).
    Firmware,
    /// systemd-stub.
    SystemdStub,
    /// The Linux EFI stub.
    Linux,
}

/// One predicted event: the event as the log records it, who measures it, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PredictedEvent {
    /// The event (register index, type, digests, data).
    #[serde(flatten)]
    pub event: Event,
    /// Who measures it.
    pub source: Source,
    /// What it measures, in words.
    pub what: String,
}

/// The bytes an event's digest covers.
pub(crate) enum Subject<'a> {
    /// The event data itself.
    Data,
    /// Other bytes, in pieces.
    Parts(Vec<Cow<'a, [u8]>>),
}

/// An event before its digests are computed (all digests of a prediction are computed at
/// once, in parallel).
pub(crate) struct Pending<'a> {
    pub(crate) pcr: u32,
    pub(crate) event_type: EventType,
    pub(crate) data: Vec<u8>,
    pub(crate) subject: Subject<'a>,
    pub(crate) source: Source,
    pub(crate) what: String,
    /// Measured through the TCG2 protocol only (systemd's tagged events), never into RTMRs.
    pub(crate) tpm_only: bool,
}

impl Pending<'_> {
    pub(crate) fn hashing_data(pcr: u32, event_type: EventType, data: Vec<u8>, source: Source, what: String) -> Self {
        Pending { pcr, event_type, data, subject: Subject::Data, source, what, tpm_only: false }
    }

    /// The bytes its digests cover.
    fn input(&self) -> HashInput<'_> {
        match &self.subject {
            Subject::Data => HashInput { slices: vec![&self.data], zero_fill: 0 },
            Subject::Parts(p) => HashInput { slices: p.iter().map(|c| c.as_ref()).collect(), zero_fill: 0 },
        }
    }
}

/// Computes every digest of `pending` in every bank, in parallel (`uki::digest_all`).
fn finish(pending: Vec<Pending<'_>>, banks: &[HashAlg]) -> Vec<PredictedEvent> {
    let inputs: Vec<HashInput> = pending.iter().map(Pending::input).collect();
    let jobs: Vec<(usize, HashAlg)> = (0..pending.len()).flat_map(|i| banks.iter().map(move |a| (i, *a))).collect();
    let done = digest_all(&jobs.iter().map(|&(i, a)| (a, &inputs[i])).collect::<Vec<_>>());
    let done: Vec<((usize, HashAlg), Vec<u8>)> = jobs.into_iter().zip(done).collect();
    let mut digests: Vec<Vec<Digest>> = vec![Vec::new(); pending.len()];
    for ((i, a), d) in done {
        digests[i].push(Digest { alg: a.id(), bytes: d });
    }
    pending
        .into_iter()
        .zip(digests)
        .map(|(p, d)| PredictedEvent {
            event: Event::with_digests(p.pcr, p.event_type, d, p.data),
            source: p.source,
            what: p.what,
        })
        .collect()
}

/// A prediction for a TPM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    /// The banks predicted.
    pub banks: Vec<HashAlg>,
    /// The systemd-stub version the prediction followed.
    pub stub_version: String,
    /// The UKI profile booted (0 unless the LoadOptions start with `@N`).
    pub profile: u32,
    /// The Secure Boot state.
    pub secure_boot: SecureBootState,
    /// The PCRs predicted: 4, 7, 9, 11, 12, 13, and 5 when the disk was given.
    pub pcrs: Vec<u32>,
    /// The events of those PCRs in the firmware's log, in log order.
    pub events: Vec<PredictedEvent>,
}

impl Prediction {
    /// The values of the predicted PCRs in every bank for a system that reached `phase`.
    pub fn pcrs_at(&self, phase: Phase) -> BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>> {
        self.banks
            .iter()
            .map(|&alg| {
                let mut regs: BTreeMap<u32, Vec<u8>> = self.pcrs.iter().map(|p| (*p, alg.zeros())).collect();
                for e in &self.events {
                    let reg = regs.get_mut(&e.event.pcr).expect("events only extend predicted PCRs");
                    *reg = alg.extend(reg, e.event.digest(alg.id()).expect("every bank computed"));
                }
                let pcr11 = regs.get_mut(&stub::PCR_KERNEL_BOOT).expect("PCR 11 is predicted");
                for word in phase.words() {
                    *pcr11 = alg.extend(pcr11, &alg.hash(word.as_bytes()));
                }
                (alg, regs)
            })
            .collect()
    }

    /// PCR 11 in `bank` once `phase` is reached.
    pub fn pcr11(&self, phase: Phase, bank: HashAlg) -> Option<Vec<u8>> {
        self.pcrs_at(phase).remove(&bank)?.remove(&stub::PCR_KERNEL_BOOT)
    }

    /// PCR 11 per bank and phase.
    pub fn pcr11_phases(&self) -> BTreeMap<HashAlg, BTreeMap<Phase, Vec<u8>>> {
        let mut out: BTreeMap<HashAlg, BTreeMap<Phase, Vec<u8>>> = BTreeMap::new();
        for phase in Phase::ALL {
            for (alg, mut regs) in self.pcrs_at(phase) {
                let v = regs.remove(&stub::PCR_KERNEL_BOOT).expect("PCR 11 is predicted");
                out.entry(alg).or_default().insert(phase, v);
            }
        }
        out
    }

    /// The predicted events as a TCG PC Client crypto-agile log (`tpm2_eventlog` reads it).
    pub fn eventlog(&self) -> EventLog {
        EventLog::crypto_agile(&self.banks, self.events.iter().map(|e| e.event.clone()).collect())
    }

    /// Compares the prediction with a real boot's log, in the PCRs predicted and the banks
    /// both carry (the real log's other PCRs are the platform's, not the image's).
    pub fn diff(&self, actual: &EventLog) -> Result<Diff, DiffError> {
        let mut d = eventlog::diff(&self.eventlog(), actual)?;
        d.registers.retain(|r| matches!(r.register, Register::Pcr(n) if self.pcrs.contains(&n)));
        Ok(d)
    }
}

/// Checks the stub version (read from the UKI unless given) against the model.
fn stub_version(uki: &Uki<'_>, given: Option<&str>) -> Result<String, BootError> {
    let version = match given {
        Some(v) => v.trim().to_string(),
        None => uki.stub_version().ok_or(BootError::NoStubVersion)?.to_string(),
    };
    let major: Option<u32> = version.split(|c: char| !c.is_ascii_digit()).next().and_then(|m| m.parse().ok());
    if major != Some(MODELED_STUB) {
        return Err(BootError::UnsupportedStub { version });
    }
    Ok(version)
}

/// A PE image's ImageBase (PE32: the 32-bit field after BaseOfData).
fn image_base(pe: &Pe<'_>) -> u64 {
    let b = pe.optional_header().image_base;
    if pe.is_pe32_plus() {
        u64::from_le_bytes(b)
    } else {
        u64::from(u32::from_le_bytes([b[4], b[5], b[6], b[7]]))
    }
}

fn authenticode<'a>(pe: &Pe<'a>) -> Vec<Cow<'a, [u8]>> {
    pe.authenticode_input().slices.into_iter().map(Cow::Borrowed).collect()
}

/// `IMAGE_FILE_MACHINE_AMD64`.
const MACHINE_X64: u16 = 0x8664;

/// What both views share: the parsed UKI, the kernel, the stub's run.
struct Common<'a> {
    uki: Uki<'a>,
    kernel: Pe<'a>,
    version: String,
    enforcing: bool,
    run: stub::StubRun<'a>,
}

fn common<'a>(inputs: &BootInputs<'a>, confidential_vm: bool) -> Result<Common<'a>, BootError> {
    let uki = Uki::parse(inputs.uki)?;
    let version = stub_version(&uki, inputs.stub_version.as_deref())?;
    if let Some(f) = inputs.extra_d.iter().find(|f| f.name.to_ascii_lowercase().ends_with(".addon.efi")) {
        return Err(BootError::NotModeled { what: format!("UKI add-ons ({} in the UKI's .extra.d)", f.name) });
    }
    let enforcing = inputs.secure_boot.secure_boot_variable() == Some(1);
    let env = stub::StubEnv {
        load_options: inputs.load_options.as_deref(),
        extra_d: &inputs.extra_d,
        loader_credentials: &inputs.loader_credentials,
        secure_boot: enforcing,
        confidential_vm,
    };
    let run = stub::run(uki.pe(), &env)?;
    // linux_exec: LoadImage() of the .linux section's memory (VirtualSize bytes).
    let linux = &run.linux;
    if linux.virtual_size > linux.raw_size {
        return Err(BootError::Uki(UkiError::LinuxTruncated {
            header: linux.header_offset,
            virtual_size: linux.virtual_size,
            raw_size: linux.raw_size,
        }));
    }
    let kernel = Pe::parse(uki.pe().section_file_bytes(linux)).map_err(BootError::Kernel)?;
    let major = kernel.optional_header().major_image_version.get();
    if major < 1 {
        return Err(BootError::KernelTooOld { major });
    }
    let machine = kernel.coff().machine.get();
    if machine != MACHINE_X64 {
        return Err(BootError::NotModeled {
            what: format!("a kernel for machine type {machine:#06x} (only x86-64 kernels are modeled)"),
        });
    }
    Ok(Common { uki, kernel, version, enforcing, run })
}

fn signature_lists(variable: &'static str, data: Option<&Vec<u8>>) -> Result<Vec<uefi_vars::SignatureList>, BootError> {
    match data {
        Some(d) => uefi_vars::parse_signature_lists(d).map_err(|error| BootError::SignatureList { variable, error }),
        None => Ok(Vec::new()),
    }
}

/// The UKI's and the kernel's `EV_EFI_BOOT_SERVICES_APPLICATION` events (PCR 4).
fn image_events<'a>(inputs: &BootInputs<'a>, c: &Common<'a>) -> (Pending<'a>, Pending<'a>) {
    let pe = c.uki.pe();
    let uki = firmware::application(
        4,
        firmware::image_load_event(
            inputs.uki.len() as u64,
            image_base(pe),
            &firmware::uki_device_path(&inputs.uki_path),
        ),
        authenticode(pe),
        "the UKI (Authenticode digest)".into(),
    );
    let kernel = firmware::application(
        4,
        firmware::image_load_event(
            c.kernel.data().len() as u64,
            image_base(&c.kernel),
            &firmware::kernel_device_path(),
        ),
        authenticode(&c.kernel),
        "the kernel systemd-stub loads from .linux (Authenticode digest)".into(),
    );
    (uki, kernel)
}

/// The `EV_EFI_VARIABLE_AUTHORITY` events for the UKI under enforcing Secure Boot.
fn authority_events<'a>(inputs: &BootInputs<'a>, c: &Common<'a>) -> Result<Vec<Pending<'a>>, BootError> {
    let sb = &inputs.secure_boot;
    let db = signature_lists("db", sb.db.as_ref())?;
    let dbx = signature_lists("dbx", sb.dbx.as_ref())?;
    let pe = c.uki.pe();
    let digest = |alg: HashAlg| alg.hash_parts(&pe.authenticode_input().slices);
    let found = authority::authorities(pe, &digest, &db, &dbx)?;
    Ok(found
        .into_iter()
        .map(|entry| {
            let what =
                format!("the db entry that authorises the UKI (owner {}, {} bytes)", entry.owner, entry.data.len());
            Pending::hashing_data(
                7,
                EventType::EV_EFI_VARIABLE_AUTHORITY,
                firmware::variable_data(&EFI_IMAGE_SECURITY_DATABASE, "db", &entry.to_bytes()),
                Source::Firmware,
                what,
            )
        })
        .collect())
}

/// Predicts the PCRs and the event log of booting `inputs.uki` on a TPM.
pub fn predict(inputs: &BootInputs<'_>) -> Result<Prediction, BootError> {
    let mut c = common(inputs, inputs.confidential_vm)?;
    let sb = &inputs.secure_boot;
    for (name, data) in [("PK", &sb.pk), ("KEK", &sb.kek), ("db", &sb.db), ("dbx", &sb.dbx), ("dbt", &sb.dbt)] {
        signature_lists(name, data.as_ref())?;
    }
    let mut ev: Vec<Pending<'_>> = Vec::new();
    // MeasureSecureBootPolicy, at the variable-write arch protocol: PCR 7.
    let sb_var = sb.secure_boot_variable().map(|v| [v]);
    ev.push(firmware::driver_config(&EFI_GLOBAL_VARIABLE, "SecureBoot", sb_var.as_ref().map(|v| &v[..])));
    ev.push(firmware::driver_config(&EFI_GLOBAL_VARIABLE, "PK", sb.pk.as_deref()));
    ev.push(firmware::driver_config(&EFI_GLOBAL_VARIABLE, "KEK", sb.kek.as_deref()));
    ev.push(firmware::driver_config(&EFI_IMAGE_SECURITY_DATABASE, "db", sb.db.as_deref()));
    ev.push(firmware::driver_config(&EFI_IMAGE_SECURITY_DATABASE, "dbx", sb.dbx.as_deref()));
    if let Some(dbt) = &sb.dbt {
        ev.push(firmware::driver_config(&EFI_IMAGE_SECURITY_DATABASE, "dbt", Some(dbt)));
    }
    ev.push(firmware::separator(7));
    // OnReadyToBoot (first attempt): the action, then separators for PCR 0-6 (4 and 5 here).
    ev.push(firmware::action(4, firmware::CALLING_EFI_APPLICATION));
    ev.push(firmware::separator(4));
    if inputs.disk.is_some() {
        ev.push(firmware::separator(5));
    }
    // LoadImage(UKI): Secure Boot verification (authority, PCR 7), GPT (PCR 5), the image.
    if c.enforcing {
        ev.extend(authority_events(inputs, &c)?);
    }
    if let Some(disk) = inputs.disk {
        ev.push(firmware::gpt_event(disk)?);
    }
    let (uki_event, kernel_event) = image_events(inputs, &c);
    ev.push(uki_event);
    ev.extend(std::mem::take(&mut c.run.events));
    // LoadImage(kernel): measured by the firmware unless the stub's Secure Boot override
    // bypasses its hooks.
    if !c.enforcing {
        ev.push(kernel_event);
    }
    ev.extend(stub::linux_events(&c.run));
    if inputs.disk.is_some() {
        ev.push(firmware::action(5, firmware::EXIT_BOOT_SERVICES_INVOCATION));
        ev.push(firmware::action(5, firmware::EXIT_BOOT_SERVICES_SUCCEEDED));
    }
    let mut pcrs = vec![4, 7, 9, 11, 12, 13];
    if inputs.disk.is_some() {
        pcrs.push(5);
        pcrs.sort_unstable();
    }
    Ok(Prediction {
        banks: inputs.banks.clone(),
        stub_version: c.version,
        profile: c.run.profile,
        secure_boot: sb.state(),
        pcrs,
        events: finish(ev, &inputs.banks),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        assert_eq!(Phase::Stub.words(), &[] as &[&str]);
        assert_eq!(Phase::Ready.systemd_measure_phase(), "enter-initrd:leave-initrd:sysinit:ready");
        assert_eq!("sysinit".parse::<Phase>(), Ok(Phase::Sysinit));
        assert_eq!("enter-initrd:leave-initrd".parse::<Phase>(), Ok(Phase::LeaveInitrd));
        assert!("boot".parse::<Phase>().is_err());
    }

    #[test]
    fn secure_boot_variable_follows_auth_variable_lib() {
        let pk = Some(vec![1]);
        let cases = [
            (false, None, None, None, SecureBootState::NotSupported),
            (false, pk.clone(), None, None, SecureBootState::NotSupported),
            (true, None, None, Some(0), SecureBootState::SetupMode),
            (true, None, Some(vec![1]), Some(0), SecureBootState::SetupMode),
            (true, pk.clone(), None, Some(1), SecureBootState::Enforcing),
            (true, pk.clone(), Some(vec![1]), Some(1), SecureBootState::Enforcing),
            (true, pk.clone(), Some(vec![0]), Some(0), SecureBootState::Disabled),
        ];
        for (support, pk, enable, var, state) in cases {
            let c =
                SecureBootConfig { firmware_support: support, pk, secure_boot_enable: enable, ..Default::default() };
            assert_eq!((c.secure_boot_variable(), c.state()), (var, state), "{c:?}");
        }
    }
}
