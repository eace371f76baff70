//! `nodeimg measure pcrs`, and the RTMR part of `nodeimg measure tdx --uki`: what booting a UKI
//! extends into a vTPM's PCRs (or a TD's RTMRs), predicted by `measure::boot`.
//!
//! The inputs mirror what the firmware and the stubs see: the UKI, the firmware's variable store
//! (a VARS file, or the Secure Boot databases one by one) and whether the firmware is built with
//! Secure Boot, optionally the boot disk (for its GPT: PCR 5, RTMR1), the boot entry's
//! LoadOptions and the files next to the UKI on the ESP. `--check-eventlog` compares the
//! prediction with a real boot's log and explains the first difference in each PCR.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use ::eventlog::{self, HashAlg};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use digest_alg::{Digest, Sha256};
use measure::boot::{self, BootInputs, Phase, PredictedEvent, SecureBootConfig, SecureBootState, SidecarFile};
use measure::uefi_vars::VarStore;
use serde::Serialize;

use crate::cmd::eventlog::emit;
use crate::{Global, Outcome};

/// `--secure-boot` values: whether the firmware code is built with Secure Boot support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecureBootArg {
    /// Firmware built with Secure Boot support (Debian trixie's OVMF_CODE_4M.secboot.fd, .ms.fd,
    /// .snakeoil.fd; every bookworm OVMF_CODE*): it measures SecureBoot (1 with a PK enrolled,
    /// 0 in setup mode) and, enforcing, the db entry that authorised the UKI.
    #[value(name = "with", alias = "on")]
    With,
    /// Firmware built without Secure Boot support (Debian trixie's OVMF_CODE_4M.fd): SecureBoot
    /// does not exist.
    #[value(name = "without", alias = "off")]
    Without,
}

// What the firmware and the stubs see besides the UKI.
// (Not a doc comment: clap would make it the `about` of every command that flattens this
// struct, over the command's own, as the commands are built lazily: `defer` in lib.rs.)
#[derive(Debug, Args)]
pub struct BootOptions {
    /// The firmware's variable store (an OVMF VARS file such as Debian's OVMF_VARS_4M.fd or
    /// OVMF_VARS_4M.ms.fd). Default: an empty store.
    #[arg(long, value_name = "VARS")]
    firmware_vars: Option<PathBuf>,
    /// The firmware code (an OVMF CODE or full image, e.g. OVMF_CODE_4M.fd): whether it is
    /// built with Secure Boot support is read from it (edk2's SecureBootConfigDxe module is in
    /// its firmware volumes iff it was built with SECURE_BOOT_ENABLE).
    #[arg(long, value_name = "CODE")]
    firmware_code: Option<PathBuf>,
    /// Firmware built with or without Secure Boot support, when --firmware-code is not given (it
    /// cannot be read from VARS; "on"/"off" are accepted too). Default: without, unless the
    /// variables enroll a PK, when it must be said. With --firmware-code it must agree.
    #[arg(long, value_enum, value_name = "with|without")]
    secure_boot: Option<SecureBootArg>,
    /// PK as an EFI_SIGNATURE_LIST file (replaces the store's).
    #[arg(long, value_name = "ESL")]
    pk: Option<PathBuf>,
    /// KEK as an EFI_SIGNATURE_LIST file.
    #[arg(long, value_name = "ESL")]
    kek: Option<PathBuf>,
    /// db as an EFI_SIGNATURE_LIST file.
    #[arg(long, value_name = "ESL")]
    db: Option<PathBuf>,
    /// dbx as an EFI_SIGNATURE_LIST file.
    #[arg(long, value_name = "ESL")]
    dbx: Option<PathBuf>,
    /// The systemd-stub version, instead of the one the UKI's LoaderInfo names.
    #[arg(long, value_name = "VERSION")]
    stub_version: Option<String>,
    /// The boot entry's LoadOptions, if it passes any (OVMF's automatic entries do not).
    #[arg(long, value_name = "TEXT")]
    load_options: Option<String>,
    /// The directory next to the UKI on the ESP (<UKI>.extra.d): *.cred, *.raw, *.confext.raw.
    #[arg(long, value_name = "DIR")]
    extra_d: Option<PathBuf>,
    /// The ESP's \loader\credentials directory.
    #[arg(long, value_name = "DIR")]
    loader_credentials: Option<PathBuf>,
    /// The boot disk image (its GPT, within the first MiB): adds PCR 5 (RTMR1 for TDX).
    #[arg(long, value_name = "IMAGE")]
    disk: Option<PathBuf>,
    /// The UKI's path on the ESP, as the firmware logs it.
    #[arg(long, value_name = "PATH", default_value = boot::DEFAULT_UKI_PATH)]
    uki_path: String,
}

impl BootOptions {
    fn any(&self) -> bool {
        self.firmware_vars.is_some()
            || self.firmware_code.is_some()
            || self.secure_boot.is_some()
            || self.pk.is_some()
            || self.kek.is_some()
            || self.db.is_some()
            || self.dbx.is_some()
            || self.stub_version.is_some()
            || self.load_options.is_some()
            || self.extra_d.is_some()
            || self.loader_credentials.is_some()
            || self.disk.is_some()
    }
}

#[derive(Debug, Args)]
pub struct PcrsArgs {
    /// The UKI the firmware boots.
    #[arg(long, value_name = "UKI")]
    uki: PathBuf,
    #[command(flatten)]
    boot: BootOptions,
    /// The PCR banks to predict.
    #[arg(long, value_name = "ALG,…", value_delimiter = ',', default_value = "sha1,sha256,sha384")]
    banks: Vec<HashAlg>,
    /// The stub runs in a confidential VM (SEV-SNP, TDX): LoadOptions are then ignored under
    /// Secure Boot.
    #[arg(long)]
    confidential_vm: bool,
    /// Write the predicted events as a TCG PC Client crypto-agile log (tpm2_eventlog reads it).
    #[arg(long, value_name = "FILE")]
    eventlog_out: Option<PathBuf>,
    /// Compare with a real boot's event log (binary_bios_measurements) in the predicted PCRs;
    /// exit 1 and explain the first difference in each PCR that differs.
    #[arg(long, value_name = "LOG")]
    check_eventlog: Option<PathBuf>,
    /// Print JSON: pcrs (at "ready"), pcr11_phases, events.
    #[arg(long)]
    json: bool,
}

/// Bytes of the disk read for its GPT.
const DISK_HEAD: u64 = 1 << 20;
/// A UKI beyond this is not one (they are tens of MiB).
const MAX_UKI: u64 = 1 << 30;

fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    crate::fsutil::read_input(path, limit, what)
}

/// The most bytes of files beside the UKI (`--extra-d` and `--loader-credentials` together) a
/// prediction reads: the stub packs them all into cpio archives in the firmware's memory, and
/// the prediction holds them in its own.
const MAX_SIDECARS: u64 = 1 << 30;

/// Reads the regular files of `dir`, at most `budget` bytes in all (what is read is taken off it).
fn read_sidecars(dir: &Path, budget: &mut u64) -> Result<Vec<SidecarFile>> {
    let ctx = || format!("reading directory {}", dir.display());
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(ctx)? {
        let entry = entry.with_context(ctx)?;
        if !entry.file_type().with_context(ctx)?.is_file() {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else { continue };
        let data = crate::fsutil::read_input(&entry.path(), *budget, "a file beside the UKI").with_context(|| {
            format!("the files of --extra-d and --loader-credentials may have {MAX_SIDECARS} bytes in all")
        })?;
        *budget -= data.len() as u64;
        out.push(SidecarFile { name, data });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Inputs read from files: what `BootInputs` borrows.
struct Loaded {
    /// Mapped, not copied: the prediction hashes it about three times per bank in parallel, and
    /// a copy would be made first, on one core.
    uki: crate::fsutil::MappedFile,
    disk: Option<Vec<u8>>,
    secure_boot: SecureBootConfig,
    extra_d: Vec<SidecarFile>,
    loader_credentials: Vec<SidecarFile>,
    notes: Vec<String>,
}

impl Loaded {
    /// The files of `--extra-d` and `--loader-credentials`, moved out.
    fn take_sidecars(&mut self) -> (Vec<SidecarFile>, Vec<SidecarFile>) {
        (std::mem::take(&mut self.extra_d), std::mem::take(&mut self.loader_credentials))
    }
}

fn load(uki: &Path, o: &BootOptions) -> Result<Loaded> {
    let uki = crate::fsutil::map_file(uki, MAX_UKI, "a UKI")?;
    let mut notes = Vec::new();
    let mut sb = match &o.firmware_vars {
        Some(p) => {
            let bytes = read_limited(p, 64 << 20, "a VARS file")?;
            let store =
                VarStore::parse(&bytes).with_context(|| format!("{}: not an OVMF variable store", p.display()))?;
            SecureBootConfig::from_store(&store, false)
        }
        None => SecureBootConfig::default(),
    };
    for (path, slot, name) in [
        (&o.pk, &mut sb.pk, "PK"),
        (&o.kek, &mut sb.kek, "KEK"),
        (&o.db, &mut sb.db, "db"),
        (&o.dbx, &mut sb.dbx, "dbx"),
    ] {
        if let Some(p) = path {
            let bytes = read_limited(p, 16 << 20, name)?;
            measure::uefi_vars::parse_signature_lists(&bytes)
                .with_context(|| format!("{}: not an EFI_SIGNATURE_LIST file ({name})", p.display()))?;
            *slot = Some(bytes);
        }
    }
    let detected = match &o.firmware_code {
        Some(p) => {
            let code = read_limited(p, crate::fsutil::limits::FIRMWARE, "firmware code")?;
            let found = measure::fv::secure_boot_support(&code)
                .with_context(|| format!("{}: cannot tell whether this firmware supports Secure Boot", p.display()))?;
            notes.push(match &found.found_at {
                Some(at) => format!(
                    "{}: built with Secure Boot support (SecureBootConfigDxe at {at}, of {} firmware files)",
                    p.display(),
                    found.files
                ),
                None => format!(
                    "{}: built without Secure Boot support (no SecureBootConfigDxe among its {} firmware files)",
                    p.display(),
                    found.files
                ),
            });
            Some((found.supported, p))
        }
        None => None,
    };
    let said = o.secure_boot.map(|a| a == SecureBootArg::With);
    sb.firmware_support = match (detected, said) {
        (Some((found, p)), Some(said)) if found != said => bail!(
            "--secure-boot {} contradicts the firmware code: {} is built {} Secure Boot support",
            if said { "with" } else { "without" },
            p.display(),
            if found { "with" } else { "without" }
        ),
        (Some((found, _)), _) => found,
        (None, Some(said)) => said,
        (None, None) if sb.pk.is_some() => bail!(
            "the variables enroll a PK: give the firmware code (--firmware-code OVMF_CODE_4M.fd) or say whether \
             it is built with Secure Boot support (--secure-boot with, e.g. OVMF_CODE_4M.secboot.fd) or not \
             (--secure-boot without, trixie's OVMF_CODE_4M.fd)"
        ),
        (None, None) => false,
    };
    match sb.state() {
        SecureBootState::SetupMode => {
            notes.push("Secure Boot firmware without a PK (setup mode): SecureBoot is 0, nothing is verified".into())
        }
        SecureBootState::Disabled => notes.push("a PK is enrolled but SecureBootEnable is 0: SecureBoot is 0".into()),
        _ => {}
    }
    let disk = match &o.disk {
        Some(p) => {
            let mut head = Vec::new();
            std::fs::File::open(p)
                .and_then(|f| f.take(DISK_HEAD).read_to_end(&mut head))
                .with_context(|| format!("reading {} (the boot disk)", p.display()))?;
            Some(head)
        }
        None => None,
    };
    let mut budget = MAX_SIDECARS;
    let extra_d = o.extra_d.as_deref().map(|d| read_sidecars(d, &mut budget)).transpose()?.unwrap_or_default();
    let loader_credentials =
        o.loader_credentials.as_deref().map(|d| read_sidecars(d, &mut budget)).transpose()?.unwrap_or_default();
    Ok(Loaded { uki, disk, secure_boot: sb, extra_d, loader_credentials, notes })
}

/// The prediction's inputs, with the files beside the UKI (`Loaded::take_sidecars`: moved, as
/// they may be large, not copied).
fn inputs<'a>(l: &'a Loaded, sidecars: (Vec<SidecarFile>, Vec<SidecarFile>), o: &BootOptions) -> BootInputs<'a> {
    let mut i = BootInputs::new(&l.uki);
    i.uki_path = o.uki_path.clone();
    i.secure_boot = l.secure_boot.clone();
    i.stub_version = o.stub_version.clone();
    i.load_options = o.load_options.clone();
    (i.extra_d, i.loader_credentials) = sidecars;
    i.disk = l.disk.as_deref();
    i
}

#[derive(Serialize)]
struct UkiInfo<'a> {
    path: &'a Path,
    size: usize,
    sha256: String,
}

#[derive(Serialize)]
struct PcrsJson<'a> {
    uki: UkiInfo<'a>,
    stub_version: &'a str,
    profile: u32,
    secure_boot: SecureBootState,
    banks: &'a [HashAlg],
    /// The predicted PCRs of a system that reached `ready`.
    pcrs: BTreeMap<HashAlg, BTreeMap<u32, String>>,
    pcr11_phases: BTreeMap<HashAlg, BTreeMap<Phase, String>>,
    events: &'a [PredictedEvent],
    notes: &'a [String],
}

fn hexmap<K: Ord + Copy>(m: BTreeMap<K, Vec<u8>>) -> BTreeMap<K, String> {
    m.into_iter().map(|(k, v)| (k, hex::encode(v))).collect()
}

pub fn run_pcrs(a: PcrsArgs, global: Global) -> Result<Outcome> {
    if a.banks.is_empty() {
        bail!("--banks names no bank");
    }
    let mut banks: Vec<HashAlg> = Vec::new();
    for b in &a.banks {
        if !banks.contains(b) {
            banks.push(*b);
        }
    }
    // The log to check is read and parsed before anything is predicted or written: a bad one is
    // an input error with no output left behind, and the predicted log written below can never
    // be what gets checked.
    let check = match &a.check_eventlog {
        Some(log_path) => {
            if let Some(out) = &a.eventlog_out {
                if crate::fsutil::same_file(out, log_path) {
                    bail!(
                        "--eventlog-out and --check-eventlog are the same file ({}): the predicted log would replace the one to check",
                        out.display()
                    );
                }
            }
            let bytes = crate::fsutil::read_input(log_path, crate::fsutil::limits::EVENTLOG, "an event log")?;
            let actual = eventlog::parse(&bytes).with_context(|| format!("parsing {}", log_path.display()))?;
            Some((log_path, actual))
        }
        None => None,
    };
    let mut loaded = load(&a.uki, &a.boot)?;
    let mut notes = loaded.notes.clone();
    let sidecars = loaded.take_sidecars();
    let mut inp = inputs(&loaded, sidecars, &a.boot);
    inp.banks = banks;
    inp.confidential_vm = a.confidential_vm;
    // The whole file's SHA-256 (JSON only) is one more pass over the UKI: on its own thread, beside
    // the prediction's parallel digests rather than after them.
    let (p, uki_sha256) = std::thread::scope(|s| {
        let file_digest = a.json.then(|| s.spawn(|| hex::encode(Sha256::digest(&*loaded.uki))));
        let p = boot::predict(&inp);
        (p, file_digest.map(|h| h.join().expect("hashing thread panicked")))
    });
    let p = p.with_context(|| format!("predicting the boot of {}", a.uki.display()))?;
    if a.boot.disk.is_none() {
        notes.push("PCR 5 is not predicted (it holds the boot disk's GPT: give --disk)".into());
    }
    notes.push(
        "image events carry the file path only (the firmware logs the disk's full device path; not part of any digest)"
            .into(),
    );
    if !global.quiet && !a.json {
        for n in &notes {
            eprintln!("note: {n}");
        }
    }
    let ready = p.pcrs_at(Phase::Ready);
    let mut text = String::new();
    if a.json {
        let json = PcrsJson {
            uki: UkiInfo { path: &a.uki, size: loaded.uki.len(), sha256: uki_sha256.expect("hashed for --json") },
            stub_version: &p.stub_version,
            profile: p.profile,
            secure_boot: p.secure_boot,
            banks: &p.banks,
            pcrs: ready.iter().map(|(alg, regs)| (*alg, hexmap(regs.clone()))).collect(),
            pcr11_phases: p.pcr11_phases().into_iter().map(|(alg, m)| (alg, hexmap(m))).collect(),
            events: &p.events,
            notes: &notes,
        };
        text = serde_json::to_string_pretty(&json).context("serializing JSON")? + "\n";
    } else {
        for pcr in &p.pcrs {
            for (alg, regs) in &ready {
                writeln!(text, "{pcr}:{alg}={}", hex::encode(&regs[pcr]))?;
            }
        }
        writeln!(text, "# PCR 11 by boot phase (above: ready)")?;
        for (alg, phases) in p.pcr11_phases() {
            for (phase, v) in phases {
                writeln!(text, "{phase}:11:{alg}={}", hex::encode(v))?;
            }
        }
    }
    let mut outcome = Outcome::Ok;
    if let Some((log_path, actual)) = &check {
        let d = p.diff(actual).with_context(|| format!("comparing with {}", log_path.display()))?;
        if d.is_empty() {
            if !global.quiet {
                eprintln!("{}: PCRs {:?} extend exactly the predicted events", log_path.display(), p.pcrs);
            }
        } else {
            let mut why = String::new();
            for r in &d.registers {
                crate::cmd::eventlog::register_diff(&mut why, r)?;
            }
            eprint!("{why}");
            eprintln!("{}: {} predicted PCR(s) differ from the prediction", log_path.display(), d.registers.len());
            outcome = Outcome::Mismatch;
        }
    }
    if let Some(out) = &a.eventlog_out {
        let bytes = eventlog::write(&p.eventlog()).context("encoding the predicted event log")?;
        crate::fsutil::write_atomic(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    }
    emit(&text)?;
    Ok(outcome)
}

/// `measure tdx --uki`: RTMR1 and RTMR2.
#[derive(Serialize)]
pub struct Rtmrs {
    /// RTMR0: the platform's (TD HOB, ACPI tables, boot variables, Secure Boot policy).
    rtmr0: &'static str,
    /// RTMR1, or null without `--disk`.
    rtmr1: Option<String>,
    rtmr2: String,
    stub_version: String,
    events: Vec<PredictedEvent>,
    notes: Vec<String>,
}

/// Predicts RTMR1 and RTMR2 for `measure tdx --uki` (and writes the CCEL with `eventlog_out`).
pub fn rtmrs(uki: &Path, o: &BootOptions, eventlog_out: Option<&Path>) -> Result<Rtmrs> {
    let mut loaded = load(uki, o)?;
    let sidecars = loaded.take_sidecars();
    let inp = inputs(&loaded, sidecars, o);
    let p = boot::predict_tdx(&inp).with_context(|| format!("predicting the TD boot of {}", uki.display()))?;
    let mut notes = loaded.notes;
    notes.push(
        "RTMR0 is the platform's (TD HOB, ACPI tables, boot variables, Secure Boot policy): observe it on a running TD"
            .into(),
    );
    if p.rtmr1.is_none() {
        notes.push("RTMR1 is not predicted: it holds the boot disk's GPT (give --disk)".into());
    }
    if let Some(out) = eventlog_out {
        let bytes = eventlog::write(&p.eventlog()).context("encoding the predicted CC event log")?;
        crate::fsutil::write_atomic(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(Rtmrs {
        rtmr0: "platform-observed",
        rtmr1: p.rtmr1.map(hex::encode),
        rtmr2: hex::encode(&p.rtmr2),
        stub_version: p.stub_version,
        events: p.events,
        notes,
    })
}

impl Rtmrs {
    /// The notes, for stderr.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// `rtmrN=hex` lines.
    pub fn lines(&self) -> String {
        format!(
            "rtmr0=({})\nrtmr1={}\nrtmr2={}\n",
            self.rtmr0,
            self.rtmr1.as_deref().unwrap_or("(needs --disk)"),
            self.rtmr2
        )
    }
}

/// Whether any boot option was given (they need `--uki`).
pub fn any_boot_option(o: &BootOptions) -> bool {
    o.any()
}
