//! Checking a node's evidence against a verified bundle: value by value, and why not.
//!
//! A verifier holds a bundle it has verified (signature, trusted comment, schema) and the
//! evidence a node produced: the PCRs its (v)TPM reports, its measured-boot event log, an SEV-SNP
//! attestation report, a TDX quote. [`check`] compares every value the evidence carries with the
//! platform's reference values and returns one [`Check`] per value:
//!
//! * **ok**: the bundle enforces the value and the evidence has it: a PCR the build computed,
//!   PCR 11 in one of the boot phases the bundle lists, an SNP launch digest of one of its VM
//!   shapes, MRTD or an RTMR;
//! * **mismatch**: the bundle enforces the value and the evidence has another one — or the
//!   evidence contradicts itself (an event log that does not replay to the TPM's PCRs, to the
//!   quote's RTMRs);
//! * **observed-only**: the bundle does not enforce the value. Either it records what a release
//!   engineer observed (firmware-owned PCRs, which change with the platform's firmware), or it has
//!   no reference at all (REPORT_DATA, the TCB versions, unused PCRs); the value is reported for
//!   the record.
//!
//! A node is "running this release" when no check is a mismatch. When the evidence includes an
//! event log and the bundle the predicted one ([`ReferenceValues::eventlog`]), each register whose events
//! differ carries the first differing event and what it means ([`eventlog::diff()`]):
//! "the UKI's .cmdline section differs" instead of "PCR 11 differs". Registers the prediction
//! has no event for (the firmware's own PCRs, which the model does not predict) are left out of
//! that comparison.
//!
//! PCR 11 has one reference per boot phase (systemd-pcrphase extends it as the boot proceeds), and
//! the predicted log's PCR 11 is its value before any phase; the TPM's PCR 11 must equal one of
//! them, and the check says which. The firmware's event log holds only systemd-stub's PCR 11
//! events, not the phases, so it is compared with the TPM's PCR 11 only through the phases.
//!
//! # Authenticity before values
//!
//! Values prove something only if the evidence is genuine: PCR values in a file are whatever the
//! party that wrote the file says. A verifier of one kind of evidence — [`crate::quote`] for TPM
//! quotes; SNP and TDX signature checks likewise — proves it genuine with its own checks and
//! hands them in as an [`Authentication`] ([`Evidence::authentication`]): ordinary [`Check`]
//! lines (`TPM QUOTE SIGNATURE`, `TPM QUOTE NONCE`, …; ok or mismatch; the detail says what was
//! verified) and the part of the evidence they vouch for ([`Authentication::covers`]). The report
//! lists them *before* the value checks, and sums them up in [`Report::authenticity`]:
//!
//! * [`Authenticity::Authenticated`]: every authenticity check holds and every part of the
//!   evidence is covered by one (PCR values by a TPM quote, a TCG event log by the quoted PCRs it
//!   must replay to, an SNP report by its signature, a TDX quote and its CCEL by the quote's);
//! * [`Authenticity::Failed`]: an authenticity check is a mismatch (so the report is not
//!   [`ok`](Report::ok) either);
//! * [`Authenticity::Unauthenticated`]: nothing failed, but some part (named in a note) is
//!   covered by no check: its values are compared, and the report says they prove only what
//!   the party that handed them over vouches for. A caller must never present such a report as a
//!   plain "OK".
//!
//! The function is pure: values in, report out.

use std::collections::{BTreeMap, BTreeSet};

use eventlog::{self, Diff, EventLog, HashAlg, LogFormat, Register, RegisterDiff, Replayed};
use serde::Serialize;

use crate::evidence::{SnpReport, TdxQuote};

use crate::hex::Hex;
use crate::reference::{PcrStatus, ReferenceValues};

/// PCR values by bank, then index.
pub type PcrValues = BTreeMap<HashAlg, BTreeMap<u8, Hex>>;

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Read from a TPM just now.
    Tpm,
    /// A file of PCR values read from a TPM earlier.
    PcrsFile,
    /// Replayed from the event log.
    Eventlog,
    /// The SEV-SNP attestation report.
    SnpReport,
    /// The TDX quote.
    TdxQuote,
    /// A TPM quote: its signature, its fields, and PCR values its digest vouches for.
    TpmQuote,
}

impl Source {
    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tpm => "tpm",
            Self::PcrsFile => "pcrs file",
            Self::Eventlog => "event log",
            Self::SnpReport => "snp report",
            Self::TdxQuote => "tdx quote",
            Self::TpmQuote => "tpm quote",
        }
    }
}

/// What a node produced. At least one part must be present.
#[derive(Debug, Default, Clone, Copy)]
pub struct Evidence<'a> {
    /// PCR banks as a TPM reports them (every allocated PCR), and where they were read. PCR values
    /// a verified TPM quote vouches for have [`Source::TpmQuote`] (and only the quoted PCRs).
    pub pcrs: Option<(Source, &'a PcrValues)>,
    /// The node's measured-boot event log (TCG) or CC event log (TDX CCEL).
    pub eventlog: Option<&'a EventLog>,
    /// An SEV-SNP attestation report.
    pub snp: Option<&'a SnpReport>,
    /// A TDX quote.
    pub tdx: Option<&'a TdxQuote>,
    /// What verifiers of signed evidence found (a TPM quote's signature, nonce and PCR digest;
    /// an SNP report's or TDX quote's signature chain): listed first in the report, and the basis
    /// of [`Report::authenticity`].
    pub authentication: &'a [Authentication],
}

/// The checks that prove one part of the evidence genuine, made by the verifier of that kind of
/// evidence (a signature, a nonce, a digest that binds values to the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// The part of the evidence these checks vouch for, when they all hold:
    /// [`Source::TpmQuote`] (the PCR values with that source), [`Source::SnpReport`],
    /// [`Source::TdxQuote`].
    pub covers: Source,
    /// The checks, each `ok` or `mismatch` (or `observed-only` for a field reported for the
    /// record), in the order they were made.
    pub checks: Vec<Check>,
}

impl Authentication {
    /// Whether no check failed.
    pub fn holds(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Mismatch)
    }
}

/// Whether the evidence was proven genuine (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authenticity {
    /// Every part of the evidence is covered by authenticity checks, and they all hold.
    Authenticated,
    /// No authenticity check failed, but some part of the evidence is covered by none: its
    /// values prove only what the party that handed them over vouches for.
    Unauthenticated,
    /// An authenticity check failed: the evidence is not what it claims to be.
    Failed,
}

impl Authenticity {
    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::Unauthenticated => "unauthenticated",
            Self::Failed => "failed",
        }
    }
}

/// The outcome for one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// An enforced value matches.
    Ok,
    /// An enforced value differs, or the evidence contradicts itself.
    Mismatch,
    /// Not enforced by the bundle: reported for the record.
    ObservedOnly,
}

impl Status {
    /// [`Status::Ok`] when an enforced value holds, else [`Status::Mismatch`].
    pub fn ok_if(holds: bool) -> Self {
        if holds {
            Self::Ok
        } else {
            Self::Mismatch
        }
    }

    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Mismatch => "mismatch",
            Self::ObservedOnly => "observed-only",
        }
    }
}

/// A reference value a check compared with, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// The value, as [`Check::actual`] spells it.
    pub value: String,
    /// Where it comes from: `computed by the build`, `boot phase enter-initrd`, a VM shape, …
    pub what: String,
}

pub(crate) fn reference(value: impl ToString, what: impl Into<String>) -> Reference {
    Reference { value: value.to_string(), what: what.into() }
}

/// One compared value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was compared: `PCR 4 (sha256)`, `SNP MEASUREMENT`, `TDX RTMR1`.
    pub value: String,
    /// The outcome.
    pub status: Status,
    /// Where the evidence's value came from.
    pub source: Source,
    /// The evidence's value: lowercase hex for digests, decimal or words otherwise.
    pub actual: String,
    /// The reference values it was compared with (several for PCR 11 and SNP shapes); empty when
    /// the bundle has none.
    pub expected: Vec<Reference>,
    /// Which phase or VM shape matched, why a value is not enforced, what contradicts what.
    pub detail: String,
    /// Where the evidence's event log departs from the predicted one in this register.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<RegisterDiff>,
}

impl Check {
    /// A check that no event explains: what the verifiers of signed evidence report.
    pub(crate) fn new(
        source: Source,
        value: &str,
        status: Status,
        actual: String,
        expected: Vec<Reference>,
        detail: String,
    ) -> Self {
        Check { value: value.into(), status, source, actual, expected, detail, events: None }
    }
}

/// The comparison of one node's evidence with one platform's reference values.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the evidence was proven genuine; `unauthenticated` values prove only what the
    /// party that handed them over vouches for.
    pub authenticity: Authenticity,
    /// The authenticity checks ([`Evidence::authentication`]), then one entry per value the
    /// evidence carries (and per contradiction within it).
    pub checks: Vec<Check>,
    /// The evidence's event log against the predicted one, when both exist and compare.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eventlog_diff: Option<Diff>,
    /// What was not compared, and why; properties of the evidence worth a look.
    pub notes: Vec<String>,
}

impl Report {
    /// Whether every authenticity check held and every enforced value matched (no
    /// [`Status::Mismatch`]). An `ok` report may still be [`Authenticity::Unauthenticated`].
    pub fn ok(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Mismatch)
    }

    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// Why evidence cannot be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// Nothing to compare.
    #[error("no evidence: an event log, PCR values, an SNP report or a TDX quote is needed")]
    NoEvidence,
    /// The bundle's predicted event log does not parse.
    #[error("the bundle's predicted event log: {0}")]
    PredictedLog(#[source] eventlog::ParseError),
    /// The bundle's predicted event log does not replay.
    #[error("the bundle's predicted event log: {0}")]
    PredictedReplay(#[source] eventlog::ReplayError),
    /// The evidence's event log does not replay.
    #[error("the event log: {0}")]
    Replay(#[source] eventlog::ReplayError),
}

/// A PCR's value after TPM2_Startup: zeros, except the DRTM PCRs 17–22, all ones.
fn reset_value(bank: HashAlg, index: u8) -> Hex {
    Hex(vec![if (17..=22).contains(&index) { 0xff } else { 0 }; bank.size()])
}

/// The PCR values a TCG log replays to, every PCR 0–23 of each bank it carries (registers no
/// event extends keep their reset value).
fn replayed_pcrs(r: &Replayed, algorithms: &[HashAlg]) -> PcrValues {
    let mut out = PcrValues::new();
    for &bank in algorithms {
        let values = out.entry(bank).or_default();
        for index in 0..=23u8 {
            let v = r.value(bank, u32::from(index)).map(Hex::from).unwrap_or_else(|| reset_value(bank, index));
            values.insert(index, v);
        }
    }
    out
}

/// What the evidence's log looks like, and where it departs from the prediction.
struct Logs {
    /// The evidence's log, replayed.
    actual: Option<(LogFormat, Replayed)>,
    /// The predicted log, replayed.
    predicted: Option<(LogFormat, Replayed)>,
    /// The register-by-register differences.
    diff: Option<Diff>,
}

impl Logs {
    fn events(&self, register: Register) -> Option<RegisterDiff> {
        self.diff.as_ref()?.registers.iter().find(|r| r.register == register).cloned()
    }
}

fn algorithms(log: &EventLog) -> Vec<HashAlg> {
    log.algorithms().into_iter().filter_map(HashAlg::from_id).collect()
}

/// What a guest's hardware-enforced configuration must be, beyond its measurements: a
/// debuggable guest or one whose policy lets a migration agent in has memory the host can read,
/// whatever its measurements say, so these are checks that fail, not observations.
/// The default is the strict one: no debug, VMPL 0, no migration agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestPolicy {
    /// Accept a guest whose SNP policy allows debugging or whose TDX TDATTRIBUTES.DEBUG is set.
    pub allow_debug: bool,
    /// The VMPL an SNP report must come from (0: the guest's most privileged level, where the
    /// node's own kernel runs without a paravisor).
    pub vmpl: u32,
    /// Accept an SNP policy that allows a migration agent (MIGRATE_MA).
    pub allow_migration_agent: bool,
}

/// PCR values from a bank map as `nodeimg pcrs read --json` prints it (bank name → PCR index →
/// hex), and the names of the banks a bundle cannot hold (skipped). Indices must be 0–23 and
/// every value as long as its bank's digests.
pub fn pcr_values(banks: BTreeMap<String, BTreeMap<String, String>>) -> Result<(PcrValues, Vec<String>), String> {
    let mut out = PcrValues::new();
    let mut skipped = Vec::new();
    for (name, pcrs) in banks {
        let Some(b) =
            [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512].into_iter().find(|b| b.name() == name)
        else {
            skipped.push(name);
            continue;
        };
        let values = out.entry(b).or_default();
        for (index, value) in pcrs {
            let i: u8 = index
                .parse()
                .ok()
                .filter(|i| *i <= 23)
                .ok_or_else(|| format!("{name} PCR {index:?} is not a PCR index (0-23)"))?;
            let v = Hex::parse(&value).map_err(|e| format!("{name} PCR {i}: {e}"))?;
            if v.len() != b.size() {
                return Err(format!("{name} PCR {i} has {} bytes, a {name} PCR has {}", v.len(), b.size()));
            }
            values.insert(i, v);
        }
    }
    if out.is_empty() {
        return Err("no sha1, sha256, sha384 or sha512 PCR bank".into());
    }
    Ok((out, skipped))
}

/// [`pcr_values`] from the JSON `nodeimg pcrs read --json` prints (`{"banks": {…}}`, or the bare
/// bank map).
pub fn pcr_values_from_json(bytes: &[u8]) -> Result<(PcrValues, Vec<String>), String> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(banks) = v.get_mut("banks") {
        v = banks.take();
    }
    let banks = serde_json::from_value(v).map_err(|_| {
        "expected {\"banks\": {\"sha256\": {\"0\": \"<hex>\", …}, …}} (nodeimg pcrs read --json)".to_owned()
    })?;
    pcr_values(banks)
}

/// The PCR values a TCG event log replays to: PCRs 0–23 of each bank it carries (registers no
/// event extends keep their reset value), as a TPM that went through that boot would report them.
pub fn pcr_values_from_log(log: &EventLog) -> Result<PcrValues, AttestError> {
    let r = eventlog::replay(log).map_err(AttestError::Replay)?;
    Ok(replayed_pcrs(&r, &algorithms(log)))
}

/// Compares `evidence` with `platform`'s reference values, with the default [`GuestPolicy`]
/// (no debug, VMPL 0, no migration agent).
pub fn check(platform: &ReferenceValues, evidence: &Evidence) -> Result<Report, AttestError> {
    check_with(platform, evidence, &GuestPolicy::default())
}

/// Compares `evidence` with `platform`'s reference values and the guest's configuration with
/// `policy`.
pub fn check_with(
    platform: &ReferenceValues,
    evidence: &Evidence,
    policy: &GuestPolicy,
) -> Result<Report, AttestError> {
    if evidence.pcrs.is_none() && evidence.eventlog.is_none() && evidence.snp.is_none() && evidence.tdx.is_none() {
        return Err(AttestError::NoEvidence);
    }
    let mut notes = Vec::new();
    let authenticity = authenticity(evidence, &mut notes);
    let predicted = match &platform.eventlog {
        Some(bytes) => Some(eventlog::parse(bytes.as_bytes()).map_err(AttestError::PredictedLog)?),
        None => None,
    };
    let mut logs = Logs { actual: None, predicted: None, diff: None };
    if let Some(p) = &predicted {
        logs.predicted = Some((p.format, eventlog::replay(p).map_err(AttestError::PredictedReplay)?));
    }
    if let Some(log) = evidence.eventlog {
        logs.actual = Some((log.format, eventlog::replay(log).map_err(AttestError::Replay)?));
        match &predicted {
            Some(p) => match eventlog::diff(p, log) {
                Ok(mut d) => {
                    // Registers the prediction has no event for are not predicted (firmware-owned
                    // PCRs, say): their events are not differences.
                    d.registers.retain(|r| r.expected_events > 0);
                    logs.diff = Some(d);
                }
                Err(e) => notes.push(format!("the event log is not compared with the bundle's prediction: {e}")),
            },
            None => notes
                .push("the bundle carries no predicted event log: differences are not explained event by event".into()),
        }
    }
    let mut checks: Vec<Check> = evidence.authentication.iter().flat_map(|a| a.checks.iter().cloned()).collect();
    let tcg_log = evidence.eventlog.filter(|l| l.format != LogFormat::Ccel);
    let ccel = evidence.eventlog.filter(|l| l.format == LogFormat::Ccel);

    // vTPM PCRs: the TPM's values, or the log's when there is no TPM.
    let replayed = match (tcg_log, &logs.actual) {
        (Some(log), Some((_, r))) => Some(replayed_pcrs(r, &algorithms(log))),
        _ => None,
    };
    let pcrs = match (evidence.pcrs, &replayed) {
        (Some((source, values)), _) => Some((source, values)),
        (None, Some(values)) => Some((Source::Eventlog, values)),
        (None, None) => None,
    };
    match pcrs {
        Some((source, values)) => check_pcrs(platform, source, values, &logs, &mut checks, &mut notes),
        None if !platform.vtpm.is_empty() || !platform.pcr11.is_empty() => {
            notes.push("the bundle's vTPM PCRs were not checked: the evidence has no PCRs and no TPM event log".into())
        }
        None => {}
    }
    if let (Some((source, quoted)), Some(log), Some((_, r))) = (evidence.pcrs, tcg_log, &logs.actual) {
        check_log_against_tpm(source, quoted, log, r, &mut checks, &mut notes);
    }

    if evidence.tdx.is_some() || ccel.is_some() {
        check_tdx(
            platform,
            evidence.tdx,
            ccel.and(logs.actual.as_ref().map(|(_, r)| r)),
            &logs,
            policy,
            &mut checks,
            &mut notes,
        );
    } else if platform.tdx.is_some() {
        notes.push(
            "the bundle's TDX measurement registers were not checked: the evidence has no quote and no CCEL".into(),
        );
    }
    match evidence.snp {
        Some(report) => check_snp(platform, report, policy, &mut checks, &mut notes),
        None if !platform.snp.is_empty() => {
            notes.push("the bundle's SNP launch digests were not checked: the evidence has no SNP report".into())
        }
        None => {}
    }
    // A platform may carry several kinds of reference values (QEMU's: a vTPM's PCRs, SEV-SNP
    // launch digests, TDX registers), of which one VM shows one or two. But evidence that shows
    // none of them says nothing of this platform: a genuine report of any guest must not pass.
    let kinds = [
        ("vTPM PCRs", !platform.vtpm.is_empty() || !platform.pcr11.is_empty(), pcrs.is_some()),
        ("TDX measurement registers", platform.tdx.is_some(), evidence.tdx.is_some() || ccel.is_some()),
        ("SNP launch digests", !platform.snp.is_empty(), evidence.snp.is_some()),
    ];
    let enforced: Vec<&str> = kinds.iter().filter(|k| k.1).map(|k| k.0).collect();
    if !enforced.is_empty() && !kinds.iter().any(|k| k.1 && k.2) {
        checks.push(missing_part(
            "the platform's reference values",
            evidence_source(evidence),
            &format!("the bundle enforces its {}, and the evidence has none of them", enforced.join(", ")),
        ));
    }
    Ok(Report { authenticity, checks, eventlog_diff: logs.diff, notes })
}

/// Sums up [`Evidence::authentication`], and notes each part of the evidence no check covers.
fn authenticity(evidence: &Evidence, notes: &mut Vec<String>) -> Authenticity {
    let auth = evidence.authentication;
    if auth.iter().any(|a| !a.holds()) {
        return Authenticity::Failed;
    }
    let covered = |s: Source| auth.iter().any(|a| a.covers == s);
    let mut uncovered = Vec::new();
    let quoted_pcrs = matches!(evidence.pcrs, Some((Source::TpmQuote, _))) && covered(Source::TpmQuote);
    if let Some((source, _)) = evidence.pcrs {
        if !quoted_pcrs {
            uncovered.push(format!(
                "the PCR values ({}): no verified TPM quote vouches for them (verify a quote of them)",
                source.name()
            ));
        }
    }
    if let Some(log) = evidence.eventlog {
        // A log is as genuine as the registers it must replay to (a disagreement is a mismatch).
        let bound = match log.format {
            LogFormat::Ccel => evidence.tdx.is_some() && covered(Source::TdxQuote),
            _ => quoted_pcrs,
        };
        if !bound {
            uncovered.push("the event log: it replays to no verified quote's registers".to_owned());
        }
    }
    if evidence.snp.is_some() && !covered(Source::SnpReport) {
        uncovered.push(
            "the SNP report: its signature was not checked (verify it with its VCEK/VLEK and AMD's chain)".to_owned(),
        );
    }
    if evidence.tdx.is_some() && !covered(Source::TdxQuote) {
        uncovered
            .push("the TDX quote: its signature was not checked (verify it by DCAP with its collateral)".to_owned());
    }
    if uncovered.is_empty() && !auth.is_empty() {
        return Authenticity::Authenticated;
    }
    for u in uncovered {
        notes.push(format!(
            "unauthenticated: {u}; until then its values prove only what the party that handed them \
             over vouches for"
        ));
    }
    Authenticity::Unauthenticated
}

fn check_pcrs(
    platform: &ReferenceValues,
    source: Source,
    values: &PcrValues,
    logs: &Logs,
    checks: &mut Vec<Check>,
    notes: &mut Vec<String>,
) {
    // The predicted log's PCR 11: the value before any boot phase.
    let predicted_pcr11 = |bank: HashAlg| -> Option<Hex> {
        let (format, r) = logs.predicted.as_ref()?;
        if *format == LogFormat::Ccel {
            return None;
        }
        r.value(bank, 11).map(Hex::from)
    };
    for (bank, pcrs) in values {
        for (index, actual) in pcrs {
            let name = format!("PCR {index} ({bank})");
            let events = logs.events(Register::Pcr(u32::from(*index)));
            let check = if *index == 11 {
                let mut refs: Vec<(String, Hex)> = platform
                    .pcr11
                    .get(bank)
                    .map(|phases| phases.iter().map(|(p, v)| (format!("boot phase {p}"), v.clone())).collect())
                    .unwrap_or_default();
                if let Some(v) = predicted_pcr11(*bank) {
                    refs.push(("before any boot phase (the predicted event log)".into(), v));
                }
                let expected = refs.iter().map(|(what, v)| reference(v, what.as_str())).collect();
                match refs.iter().find(|(_, v)| v == actual) {
                    Some((phase, _)) => Check {
                        value: name,
                        status: Status::Ok,
                        source,
                        actual: actual.to_string(),
                        expected,
                        detail: phase.clone(),
                        events: None,
                    },
                    None if refs.is_empty() => Check {
                        value: name,
                        status: Status::ObservedOnly,
                        source,
                        actual: actual.to_string(),
                        expected,
                        detail: "the bundle has no PCR 11 for this bank".into(),
                        events,
                    },
                    None => Check {
                        value: name,
                        status: Status::Mismatch,
                        source,
                        actual: actual.to_string(),
                        expected,
                        detail: format!(
                            "matches none of the {} boot phase value(s) of the bundle: another UKI, or an unknown phase",
                            refs.len()
                        ),
                        events,
                    },
                }
            } else {
                match platform.vtpm.get(bank).and_then(|b| b.get(index)) {
                    Some(pcr) if pcr.status == PcrStatus::Enforced => {
                        let ok = pcr.value == *actual;
                        Check {
                            value: name,
                            status: Status::ok_if(ok),
                            source,
                            actual: actual.to_string(),
                            expected: vec![reference(&pcr.value, "computed by the build")],
                            detail: if ok {
                                "computed by the build".into()
                            } else {
                                "differs from the value the build computed".into()
                            },
                            events: if ok { None } else { events },
                        }
                    }
                    Some(pcr) => {
                        let same = pcr.value == *actual;
                        Check {
                            value: name,
                            status: Status::ObservedOnly,
                            source,
                            actual: actual.to_string(),
                            expected: vec![reference(&pcr.value, "observed at release")],
                            detail: if same {
                                "firmware-owned; equals the value observed at release".into()
                            } else {
                                "firmware-owned; differs from the value observed at release (other firmware or platform?)".into()
                            },
                            events: if same { None } else { events },
                        }
                    }
                    None => Check {
                        value: name,
                        status: Status::ObservedOnly,
                        source,
                        actual: actual.to_string(),
                        expected: Vec::new(),
                        detail: "no reference value".into(),
                        events,
                    },
                }
            };
            checks.push(check);
        }
    }
    // Enforced references the evidence lacks.
    let mut enforced_banks: BTreeSet<HashAlg> = platform
        .vtpm
        .iter()
        .filter(|(_, pcrs)| pcrs.values().any(|p| p.status == PcrStatus::Enforced))
        .map(|(b, _)| *b)
        .collect();
    enforced_banks.extend(platform.pcr11.keys());
    let common: Vec<&HashAlg> = enforced_banks.iter().filter(|b| values.contains_key(b)).collect();
    if !enforced_banks.is_empty() && common.is_empty() {
        checks.push(Check {
            value: "PCR banks".into(),
            status: Status::Mismatch,
            source,
            actual: values.keys().map(|b| b.name()).collect::<Vec<_>>().join(","),
            expected: enforced_banks.iter().map(|b| reference(b.name(), "a bank the bundle enforces")).collect(),
            detail: "the evidence has none of the banks the bundle enforces values in".into(),
            events: None,
        });
        return;
    }
    for bank in &enforced_banks {
        let Some(have) = values.get(bank) else {
            notes.push(format!("the bundle's {bank} PCRs were not checked: the evidence has no {bank} bank"));
            continue;
        };
        let missing_enforced = platform
            .vtpm
            .get(bank)
            .into_iter()
            .flatten()
            .filter(|(i, p)| p.status == PcrStatus::Enforced && !have.contains_key(i));
        let missing_11 = platform.pcr11.get(bank).filter(|_| !have.contains_key(&11)).and_then(|p| p.iter().next());
        for (index, pcr) in missing_enforced {
            checks.push(missing_pcr(*bank, *index, source, reference(&pcr.value, "computed by the build")));
        }
        if let Some((phase, v)) = missing_11 {
            checks.push(missing_pcr(*bank, 11, source, reference(v, format!("boot phase {phase}"))));
        }
    }
}

/// Where the evidence's first part came from (for a check about the evidence as a whole).
fn evidence_source(evidence: &Evidence) -> Source {
    match (evidence.pcrs, evidence.snp, evidence.tdx) {
        (Some((source, _)), _, _) => source,
        (None, Some(_), _) => Source::SnpReport,
        (None, None, Some(_)) => Source::TdxQuote,
        (None, None, None) => Source::Eventlog,
    }
}

/// A part of the platform's reference values the evidence does not carry at all: a mismatch,
/// never a pass.
fn missing_part(value: &str, source: Source, why: &str) -> Check {
    Check {
        value: value.into(),
        status: Status::Mismatch,
        source,
        actual: String::new(),
        expected: Vec::new(),
        detail: format!("enforced by the bundle but not in the evidence: {why}"),
        events: None,
    }
}

fn missing_pcr(bank: HashAlg, index: u8, source: Source, expected: Reference) -> Check {
    Check {
        value: format!("PCR {index} ({bank})"),
        status: Status::Mismatch,
        source,
        actual: String::new(),
        expected: vec![expected],
        detail: "enforced by the bundle but not in the evidence".into(),
        events: None,
    }
}

/// The event log must be the story of the TPM's PCRs: each register it extends (but PCR 11,
/// whose boot phases the firmware log does not hold) must replay to the TPM's value.
fn check_log_against_tpm(
    source: Source,
    quoted: &PcrValues,
    log: &EventLog,
    replayed: &Replayed,
    checks: &mut Vec<Check>,
    notes: &mut Vec<String>,
) {
    let mut agreed = BTreeSet::new();
    for bank in algorithms(log) {
        let Some(tpm) = quoted.get(&bank) else { continue };
        let Some(registers) = replayed.banks.get(&bank) else { continue };
        for (register, value) in registers {
            let Ok(index) = u8::try_from(*register) else { continue };
            if index == 11 {
                continue;
            }
            let Some(tpm_value) = tpm.get(&index) else { continue };
            if tpm_value.as_bytes() == value.as_slice() {
                agreed.insert(bank);
                continue;
            }
            checks.push(Check {
                value: format!("event log PCR {index} ({bank})"),
                status: Status::Mismatch,
                source: Source::Eventlog,
                actual: hex::encode(value),
                expected: vec![reference(tpm_value, format!("the {} reports", source.name()))],
                detail: format!(
                    "the event log replays to another value than the {} reports: it does not account for this PCR",
                    source.name()
                ),
                events: None,
            });
        }
    }
    if !agreed.is_empty() && !checks.iter().any(|c| c.source == Source::Eventlog && c.status == Status::Mismatch) {
        let banks: Vec<&str> = agreed.iter().map(|b| b.name()).collect();
        notes.push(format!(
            "the event log replays to the {}'s PCRs ({}); its PCR 11 holds systemd-stub's events, not the boot phases",
            source.name(),
            banks.join(", ")
        ));
    }
}

fn check_tdx(
    platform: &ReferenceValues,
    quote: Option<&TdxQuote>,
    ccel: Option<&Replayed>,
    logs: &Logs,
    policy: &GuestPolicy,
    checks: &mut Vec<Check>,
    notes: &mut Vec<String>,
) {
    let tdx_ref = platform.tdx.as_ref();
    if tdx_ref.is_none() {
        notes.push("the bundle has no TDX measurement registers for this platform: nothing to enforce".into());
    }
    let ccel_rtmr = |i: usize| ccel.and_then(|r| r.value(HashAlg::Sha384, i as u32)).map(Hex::from);
    let register = |name: String, source: Source, actual: Hex, want: Option<&Hex>, events: Option<RegisterDiff>| {
        let (status, detail) = match want {
            Some(w) if *w == actual => (Status::Ok, "computed by the build".to_owned()),
            Some(_) => (Status::Mismatch, "differs from the value the build computed".to_owned()),
            None => (Status::ObservedOnly, "no reference value".to_owned()),
        };
        Check {
            value: name,
            status,
            source,
            actual: actual.to_string(),
            expected: want.map(|w| vec![reference(w, "computed by the build")]).unwrap_or_default(),
            detail,
            events: if status == Status::Ok { None } else { events },
        }
    };
    match quote {
        Some(q) => checks.push(register(
            "TDX MRTD".into(),
            Source::TdxQuote,
            Hex::from(q.mr_td),
            tdx_ref.map(|t| &t.mrtd),
            None,
        )),
        // Only the quote reports MRTD (the firmware's measurement): a CCEL alone cannot vouch for it.
        None if tdx_ref.is_some() => {
            checks.push(missing_part("TDX MRTD", Source::TdxQuote, "the evidence has no TDX quote"))
        }
        None => {}
    }
    let mut agreed = Vec::new();
    for i in 0..4usize {
        let events = logs.events(Register::Rtmr(i as u32));
        let want = tdx_ref.and_then(|t| t.rtmr.get(&(i as u8)));
        let (source, actual) = match (quote, ccel_rtmr(i)) {
            (Some(q), _) => (Source::TdxQuote, Hex::from(q.rtmr[i])),
            (None, Some(v)) => (Source::Eventlog, v),
            (None, None) => (Source::Eventlog, Hex(vec![0; 48])),
        };
        checks.push(register(format!("TDX RTMR{i}"), source, actual.clone(), want, events));
        if let (Some(_), Some(replayed)) = (quote, ccel_rtmr(i)) {
            if replayed == actual {
                agreed.push(format!("RTMR{i}"));
            } else {
                checks.push(Check {
                    value: format!("CCEL RTMR{i}"),
                    status: Status::Mismatch,
                    source: Source::Eventlog,
                    actual: replayed.to_string(),
                    expected: vec![reference(&actual, "the tdx quote reports")],
                    detail: "the CC event log replays to another value than the quote reports: it does not account for this RTMR".into(),
                    events: None,
                });
            }
        }
    }
    if !agreed.is_empty() && !checks.iter().any(|c| c.value.starts_with("CCEL ")) {
        notes.push(format!("the CC event log replays to the quote's {}", agreed.join(", ")));
    }
    let Some(q) = quote else { return };
    let observed = |name: &str, actual: String, detail: &str| Check {
        value: format!("TDX {name}"),
        status: Status::ObservedOnly,
        source: Source::TdxQuote,
        actual,
        expected: Vec::new(),
        detail: detail.to_owned(),
        events: None,
    };
    let a = q.td_attributes;
    let mut attrs: Vec<&str> = Vec::new();
    for (set, name) in [
        (a.debug, "DEBUG"),
        (a.sept_ve_disable, "SEPT_VE_DISABLE"),
        (a.pks, "PKS"),
        (a.key_locker, "KL"),
        (a.perfmon, "PERFMON"),
    ] {
        if set {
            attrs.push(name);
        }
    }
    let td_version = match q.td_report {
        crate::evidence::tdx_quote::TdReportVersion::V10 => "1.0",
        crate::evidence::tdx_quote::TdReportVersion::V15 => "1.5",
    };
    checks.extend([
        observed("quote version", q.version.to_string(), &format!("TD report {td_version}")),
        observed("TDATTRIBUTES", hex::encode(a.raw.to_le_bytes()), &attrs.join(" ")),
        observed("XFAM", hex::encode(q.xfam), "extended features the TD may use"),
        observed("MRCONFIGID", hex::encode(q.mr_config_id), "configuration ID the VMM set"),
        observed("MROWNER", hex::encode(q.mr_owner), "the TD owner's ID the VMM set"),
        observed("MROWNERCONFIG", hex::encode(q.mr_owner_config), "the owner configuration the VMM set"),
        observed("MRSEAM", hex::encode(q.mr_seam), "the TDX module"),
        observed("TEE_TCB_SVN", hex::encode(q.tee_tcb_svn), "the TDX module's security versions"),
        observed("REPORTDATA", hex::encode(q.report_data), "chosen by the TD (a nonce, a key hash)"),
    ]);
    checks.push(debug_check(Source::TdxQuote, "TDX TDATTRIBUTES.DEBUG", a.debug, policy.allow_debug));
}

/// The outcome of a guest's debug setting: a debuggable guest fails unless it is allowed.
fn debug_check(source: Source, value: &str, debuggable: bool, allowed: bool) -> Check {
    let (status, detail) = match (debuggable, allowed) {
        (false, _) => (Status::Ok, "the guest is not debuggable".to_owned()),
        (true, false) => (
            Status::Mismatch,
            "the guest is debuggable: its memory is readable by the host (--allow-debug accepts it)".to_owned(),
        ),
        (true, true) => (
            Status::ObservedOnly,
            "the guest is debuggable: its memory is readable by the host (accepted: --allow-debug)".to_owned(),
        ),
    };
    Check {
        value: value.into(),
        status,
        source,
        actual: if debuggable { "set" } else { "clear" }.into(),
        expected: vec![reference("clear", if allowed { "allowed either way (--allow-debug)" } else { "required" })],
        detail,
        events: None,
    }
}

fn check_snp(
    platform: &ReferenceValues,
    report: &SnpReport,
    guest: &GuestPolicy,
    checks: &mut Vec<Check>,
    notes: &mut Vec<String>,
) {
    let actual = Hex::from(report.measurement);
    let shapes = &platform.snp;
    let shape = |d: &crate::reference::SnpLaunchDigest| {
        format!(
            "{} vCPU(s){}, signature {:#x}, vmm {}, guest features {:#x}",
            d.vcpus,
            d.vcpu_type.as_deref().map(|t| format!(" {t}")).unwrap_or_default(),
            d.vcpu_sig,
            d.vmm_type,
            d.guest_features
        )
    };
    let (status, detail) = match shapes.iter().find(|d| d.launch_digest == actual) {
        Some(d) => (Status::Ok, format!("VM shape: {}", shape(d))),
        None if shapes.is_empty() => {
            (Status::ObservedOnly, "the bundle has no SNP launch digests for this platform".into())
        }
        None => (
            Status::Mismatch,
            format!(
                "matches none of the bundle's {} VM shape(s): other firmware, kernel, initrd or command line, or a VM \
                 shape (vCPUs, CPU model, VMM, SEV features) the release does not list",
                shapes.len()
            ),
        ),
    };
    checks.push(Check {
        value: "SNP MEASUREMENT".into(),
        status,
        source: Source::SnpReport,
        actual: actual.to_string(),
        expected: shapes.iter().map(|d| reference(&d.launch_digest, format!("VM shape: {}", shape(d)))).collect(),
        detail,
        events: None,
    });
    let observed = |name: &str, actual: String, detail: String| Check {
        value: format!("SNP {name}"),
        status: Status::ObservedOnly,
        source: Source::SnpReport,
        actual,
        expected: Vec::new(),
        detail,
        events: None,
    };
    let p = report.policy;
    let mut policy = vec![format!("ABI {}.{}", p.abi_major, p.abi_minor)];
    for (set, name) in [
        (p.smt_allowed, "SMT"),
        (p.migrate_ma_allowed, "MIGRATE_MA"),
        (p.debug_allowed, "DEBUG"),
        (p.single_socket_required, "SINGLE_SOCKET"),
        (p.cxl_allowed, "CXL_ALLOW"),
        (p.mem_aes_256_xts, "MEM_AES_256_XTS"),
        (p.rapl_dis, "RAPL_DIS"),
        (p.ciphertext_hiding, "CIPHERTEXT_HIDING"),
        (p.page_swap_disabled, "PAGE_SWAP_DISABLE"),
    ] {
        if set {
            policy.push(name.into());
        }
    }
    let tcb = |t: crate::evidence::snp_report::TcbVersion| (format!("{:#018x}", t.raw), t.to_string());
    let mut add_tcb = |name: &str, t| {
        let (raw, words) = tcb(t);
        checks.push(observed(name, raw, words));
    };
    add_tcb("CURRENT_TCB", report.current_tcb);
    add_tcb("REPORTED_TCB", report.reported_tcb);
    add_tcb("COMMITTED_TCB", report.committed_tcb);
    add_tcb("LAUNCH_TCB", report.launch_tcb);
    checks.extend([
        observed("VERSION", report.version.to_string(), format!("firmware {}", report.current_version)),
        observed("POLICY", format!("{:#x}", p.raw), policy.join(" ")),
        observed("REPORT_DATA", hex::encode(report.report_data), "chosen by the guest (a nonce, a key hash)".into()),
        observed("HOST_DATA", hex::encode(report.host_data), "set by the hypervisor at launch".into()),
    ]);
    checks.push(debug_check(Source::SnpReport, "SNP POLICY.DEBUG", p.debug_allowed, guest.allow_debug));
    let vmpl_ok = report.vmpl == guest.vmpl;
    checks.push(Check {
        value: "SNP VMPL".into(),
        status: Status::ok_if(vmpl_ok),
        source: Source::SnpReport,
        actual: report.vmpl.to_string(),
        expected: vec![reference(guest.vmpl, "the VMPL the node's kernel runs at (--vmpl)")],
        detail: if vmpl_ok {
            "the report was requested from the expected privilege level".into()
        } else {
            format!(
                "the report was requested from VMPL {}, not {}: software other than the measured guest asked for it",
                report.vmpl, guest.vmpl
            )
        },
        events: None,
    });
    let ma = p.migrate_ma_allowed;
    checks.push(Check {
        value: "SNP POLICY.MIGRATE_MA".into(),
        status: match (ma, guest.allow_migration_agent) {
            (false, _) => Status::Ok,
            (true, false) => Status::Mismatch,
            (true, true) => Status::ObservedOnly,
        },
        source: Source::SnpReport,
        actual: if ma { "set" } else { "clear" }.into(),
        expected: vec![reference("clear", "required unless --allow-migration-agent")],
        detail: if ma {
            "the policy lets a migration agent export the guest's memory".into()
        } else {
            "no migration agent may export the guest's memory".into()
        },
        events: None,
    });
    let smt = p.smt_allowed;
    match platform.snp_policy {
        Some(allowed) => checks.push(Check {
            value: "SNP POLICY.SMT".into(),
            status: Status::ok_if(!smt || allowed.smt),
            source: Source::SnpReport,
            actual: if smt { "set" } else { "clear" }.into(),
            expected: vec![if allowed.smt {
                reference("set or clear", "the release allows SMT (snp_policy.smt)")
            } else {
                reference("clear", "the release requires SMT off (snp_policy.smt: false)")
            }],
            detail: match (smt, allowed.smt) {
                (true, false) => "the policy allows SMT, which the release forbids: sibling hyperthreads may run \
                                  other guests"
                    .into(),
                (true, true) => "the policy allows SMT, as the release does".into(),
                (false, _) => "SMT is not allowed: no other guest shares the vCPUs' cores".into(),
            },
            events: None,
        }),
        None if smt => notes.push(
            "the SNP policy allows SMT: sibling hyperthreads may run other guests (the bundle states no SMT policy)"
                .into(),
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Pcr, SnpLaunchDigest, Tdx};
    use eventlog::{Event, EventType};

    const ALGS: [HashAlg; 2] = [HashAlg::Sha256, HashAlg::Sha384];

    /// A small log: a separator in PCR 4, a `.cmdline` section in PCR 11, LoadOptions in PCR 9.
    fn log(cmdline: &str) -> EventLog {
        let utf16 = |s: &str| s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
        let mut tag = 0x8f3b_22edu32.to_le_bytes().to_vec();
        let text = b"LOADED_IMAGE::LoadOptions\0";
        tag.extend_from_slice(&(text.len() as u32).to_le_bytes());
        tag.extend_from_slice(text);
        EventLog::crypto_agile(
            &ALGS,
            vec![
                Event::hashing_data(4, EventType::EV_SEPARATOR, vec![0; 4], &ALGS),
                Event::measuring(11, EventType::EV_IPL, b".cmdline\0", utf16(".cmdline"), &ALGS),
                Event::measuring(11, EventType::EV_IPL, cmdline.as_bytes(), utf16(".cmdline"), &ALGS),
                Event::measuring(9, EventType::EV_EVENT_TAG, &utf16(cmdline), tag, &ALGS),
            ],
        )
    }

    /// The platform a build would describe for `log(cmdline)`: PCR 4 and 9 enforced, PCR 0
    /// observed, the predicted log.
    fn platform(cmdline: &str) -> ReferenceValues {
        let l = log(cmdline);
        let r = eventlog::replay(&l).unwrap();
        let mut vtpm = BTreeMap::new();
        for alg in ALGS {
            let pcrs = vtpm.entry(alg).or_insert_with(BTreeMap::new);
            for i in [4u8, 9] {
                pcrs.insert(
                    i,
                    Pcr { value: Hex::from(r.value(alg, u32::from(i)).unwrap()), status: PcrStatus::Enforced },
                );
            }
            pcrs.insert(0, Pcr { value: Hex(vec![0x77; alg.size()]), status: PcrStatus::Observed });
        }
        ReferenceValues { vtpm, eventlog: Some(Hex(eventlog::write(&l).unwrap())), ..Default::default() }
    }

    fn pcrs_of(l: &EventLog) -> PcrValues {
        replayed_pcrs(&eventlog::replay(l).unwrap(), &ALGS)
    }

    fn find<'a>(r: &'a Report, value: &str) -> &'a Check {
        r.checks.iter().find(|c| c.value == value).unwrap_or_else(|| panic!("no check {value}: {r:#?}"))
    }

    #[test]
    fn the_same_boot_passes_and_pcr11_names_its_phase() {
        let l = log("console=ttyS0");
        let pcrs = pcrs_of(&l);
        let r = check(
            &platform("console=ttyS0"),
            &Evidence { pcrs: Some((Source::Tpm, &pcrs)), eventlog: Some(&l), ..Default::default() },
        )
        .unwrap();
        assert!(r.ok(), "{r:#?}");
        assert_eq!(r.count(Status::Ok), 6, "PCR 4, 9, 11 in two banks");
        assert_eq!(r.count(Status::ObservedOnly), 42);
        assert_eq!(find(&r, "PCR 11 (sha384)").detail, "before any boot phase (the predicted event log)");
        assert_eq!(
            find(&r, "PCR 0 (sha256)").detail,
            "firmware-owned; differs from the value observed at release (other firmware or platform?)"
        );
        assert!(r.eventlog_diff.as_ref().unwrap().is_empty());
    }

    #[test]
    fn another_cmdline_fails_and_says_which_event() {
        let l = log("console=ttyS0");
        let pcrs = pcrs_of(&l);
        let p = platform("console=ttyS0 debug");
        for evidence in [
            Evidence { pcrs: Some((Source::PcrsFile, &pcrs)), eventlog: Some(&l), ..Default::default() },
            Evidence { eventlog: Some(&l), ..Default::default() },
        ] {
            let r = check(&p, &evidence).unwrap();
            assert!(!r.ok());
            let bad: Vec<&str> =
                r.checks.iter().filter(|c| c.status == Status::Mismatch).map(|c| c.value.as_str()).collect();
            assert_eq!(bad, ["PCR 9 (sha256)", "PCR 11 (sha256)", "PCR 9 (sha384)", "PCR 11 (sha384)"]);
            let c11 = find(&r, "PCR 11 (sha256)");
            assert_eq!(c11.events.as_ref().unwrap().meaning, "The UKI's .cmdline section differs");
            let c9 = find(&r, "PCR 9 (sha256)");
            assert!(c9.events.as_ref().unwrap().meaning.contains("kernel command line"), "{c9:?}");
        }
    }

    #[test]
    fn a_log_that_is_not_the_tpms_story_is_a_mismatch() {
        let l = log("console=ttyS0");
        let mut pcrs = pcrs_of(&l);
        pcrs.get_mut(&HashAlg::Sha256).unwrap().insert(4, Hex(vec![1; 32]));
        let r = check(
            &platform("console=ttyS0"),
            &Evidence { pcrs: Some((Source::Tpm, &pcrs)), eventlog: Some(&l), ..Default::default() },
        )
        .unwrap();
        let bad: Vec<&str> =
            r.checks.iter().filter(|c| c.status == Status::Mismatch).map(|c| c.value.as_str()).collect();
        assert_eq!(bad, ["PCR 4 (sha256)", "event log PCR 4 (sha256)"]);
    }

    #[test]
    fn banks_the_evidence_lacks() {
        let l = log("x");
        let mut pcrs = pcrs_of(&l);
        pcrs.remove(&HashAlg::Sha384);
        let r = check(&platform("x"), &Evidence { pcrs: Some((Source::Tpm, &pcrs)), ..Default::default() }).unwrap();
        assert!(r.ok());
        assert!(r.notes.iter().any(|n| n.contains("sha384 PCRs were not checked")), "{:?}", r.notes);
        let mut sha1 = PcrValues::new();
        sha1.insert(HashAlg::Sha1, BTreeMap::from([(4, Hex(vec![0; 20]))]));
        let r = check(&platform("x"), &Evidence { pcrs: Some((Source::Tpm, &sha1)), ..Default::default() }).unwrap();
        assert_eq!(find(&r, "PCR banks").status, Status::Mismatch);
        assert!(matches!(check(&platform("x"), &Evidence::default()), Err(AttestError::NoEvidence)));
    }

    #[test]
    fn pcr11_phases() {
        let mut p = platform("x");
        p.eventlog = None;
        p.pcr11.insert(
            HashAlg::Sha256,
            BTreeMap::from([
                ("enter-initrd".to_owned(), Hex(vec![1; 32])),
                ("enter-initrd:leave-initrd".to_owned(), Hex(vec![2; 32])),
            ]),
        );
        let values = |v: u8| PcrValues::from([(HashAlg::Sha256, BTreeMap::from([(11, Hex(vec![v; 32]))]))]);
        let (two, three) = (values(2), values(3));
        let r = check(&p, &Evidence { pcrs: Some((Source::Tpm, &two)), ..Default::default() }).unwrap();
        assert_eq!(find(&r, "PCR 11 (sha256)").detail, "boot phase enter-initrd:leave-initrd");
        let r = check(&p, &Evidence { pcrs: Some((Source::Tpm, &three)), ..Default::default() }).unwrap();
        let c = find(&r, "PCR 11 (sha256)");
        assert_eq!((c.status, c.expected.len()), (Status::Mismatch, 2));
    }

    fn auth(covers: Source, status: Status) -> Authentication {
        Authentication {
            covers,
            checks: vec![Check {
                value: "TPM QUOTE SIGNATURE".into(),
                status,
                source: covers,
                actual: String::new(),
                expected: Vec::new(),
                detail: "test".into(),
                events: None,
            }],
        }
    }

    /// Authenticity checks come first; the report is authenticated only when every part of the
    /// evidence is covered, and never when a check fails.
    #[test]
    fn authenticity_sums_up_the_verifiers_checks() {
        let l = log("console=ttyS0");
        let pcrs = pcrs_of(&l);
        let p = platform("console=ttyS0");
        let good = [auth(Source::TpmQuote, Status::Ok)];
        let quoted = Evidence {
            pcrs: Some((Source::TpmQuote, &pcrs)),
            eventlog: Some(&l),
            authentication: &good,
            ..Default::default()
        };
        let r = check(&p, &quoted).unwrap();
        assert_eq!((r.authenticity, r.ok()), (Authenticity::Authenticated, true), "{r:#?}");
        assert_eq!(r.checks[0].value, "TPM QUOTE SIGNATURE");
        assert!(!r.notes.iter().any(|n| n.contains("unauthenticated")), "{:?}", r.notes);

        // The same values from a file: compared, but unauthenticated, and the notes say which part.
        let from_file = Evidence {
            pcrs: Some((Source::PcrsFile, &pcrs)),
            eventlog: Some(&l),
            authentication: &good,
            ..Default::default()
        };
        let r = check(&p, &from_file).unwrap();
        assert_eq!((r.authenticity, r.ok()), (Authenticity::Unauthenticated, true));
        assert!(r.notes.iter().any(|n| n.starts_with("unauthenticated: the PCR values (pcrs file)")), "{:?}", r.notes);
        assert!(r.notes.iter().any(|n| n.starts_with("unauthenticated: the event log")), "{:?}", r.notes);
        let r = check(&p, &Evidence { pcrs: Some((Source::PcrsFile, &pcrs)), ..Default::default() }).unwrap();
        assert_eq!(r.authenticity, Authenticity::Unauthenticated);

        // A failed signature fails the report, whatever the values say.
        let bad = [auth(Source::TpmQuote, Status::Mismatch)];
        let r = check(&p, &Evidence { authentication: &bad, ..quoted }).unwrap();
        assert_eq!((r.authenticity, r.ok()), (Authenticity::Failed, false));

        // A TPM quote does not vouch for an SNP report.
        let report = snp_report();
        let r = check(&p, &Evidence { snp: Some(&report), ..quoted }).unwrap();
        assert_eq!(r.authenticity, Authenticity::Unauthenticated);
        assert!(r.notes.iter().any(|n| n.starts_with("unauthenticated: the SNP report")), "{:?}", r.notes);
        let both = [auth(Source::TpmQuote, Status::Ok), auth(Source::SnpReport, Status::Ok)];
        let r = check(&p, &Evidence { snp: Some(&report), authentication: &both, ..quoted }).unwrap();
        assert_eq!(r.authenticity, Authenticity::Authenticated);
    }

    fn snp_report() -> SnpReport {
        let mut bytes = include_bytes!("../testdata/snp-report-v5-turin.bin").to_vec();
        bytes[0x90..0xc0].copy_from_slice(&[0xc2; 48]);
        crate::evidence::snp_report::parse(&bytes).unwrap()
    }

    #[test]
    fn snp_measurement_against_vm_shapes() {
        let digest = |b: u8| SnpLaunchDigest {
            vcpus: u32::from(b),
            vcpu_type: None,
            vcpu_sig: 0xa00f11,
            vmm_type: "qemu".into(),
            guest_features: 1,
            launch_digest: Hex(vec![b; 48]),
        };
        let report = snp_report();
        let mut p = ReferenceValues { snp: vec![digest(0xc1), digest(0xc2)], ..Default::default() };
        let r = check(&p, &Evidence { snp: Some(&report), ..Default::default() }).unwrap();
        let m = find(&r, "SNP MEASUREMENT");
        assert_eq!(m.status, Status::Ok);
        assert!(m.detail.contains("194 vCPU(s)"), "{m:?}");
        assert_eq!(find(&r, "SNP VMPL").status, Status::Ok);
        assert_eq!(find(&r, "SNP POLICY.DEBUG").status, Status::Ok);
        assert!(r
            .notes
            .iter()
            .any(|n| n.starts_with("unauthenticated: the SNP report: its signature was not checked")));
        p.snp.remove(1);
        let r = check(&p, &Evidence { snp: Some(&report), ..Default::default() }).unwrap();
        assert_eq!(find(&r, "SNP MEASUREMENT").status, Status::Mismatch);
        p.snp.clear();
        let r = check(&p, &Evidence { snp: Some(&report), ..Default::default() }).unwrap();
        assert!(r.ok());
        assert_eq!(find(&r, "SNP MEASUREMENT").status, Status::ObservedOnly);
    }

    #[test]
    fn tdx_registers() {
        let q = crate::evidence::tdx_quote::parse(include_bytes!("../testdata/tdx-quote-v4-trustee.dat")).unwrap();
        let mut p = ReferenceValues {
            tdx: Some(Tdx {
                mrtd: Hex::from(q.mr_td),
                rtmr: BTreeMap::from([(0, Hex::from(q.rtmr[0])), (1, Hex(vec![9; 48]))]),
            }),
            ..Default::default()
        };
        let r = check(&p, &Evidence { tdx: Some(&q), ..Default::default() }).unwrap();
        let status = |v: &str| find(&r, v).status;
        assert_eq!(
            [status("TDX MRTD"), status("TDX RTMR0"), status("TDX RTMR1"), status("TDX RTMR2")],
            [Status::Ok, Status::Ok, Status::Mismatch, Status::ObservedOnly]
        );
        assert_eq!(find(&r, "TDX TDATTRIBUTES").detail, "DEBUG SEPT_VE_DISABLE");
        // Trustee's sample quote is of a debug TD: that alone fails, unless allowed.
        let debug = find(&r, "TDX TDATTRIBUTES.DEBUG");
        assert_eq!(debug.status, Status::Mismatch);
        assert!(debug.detail.contains("its memory is readable by the host"), "{debug:?}");
        p.tdx.as_mut().unwrap().rtmr.remove(&1);
        let r = check(&p, &Evidence { tdx: Some(&q), ..Default::default() }).unwrap();
        assert!(!r.ok(), "a debug TD must not pass by default");
        let allow = GuestPolicy { allow_debug: true, ..Default::default() };
        let r = check_with(&p, &Evidence { tdx: Some(&q), ..Default::default() }, &allow).unwrap();
        assert!(r.ok());
        assert_eq!(find(&r, "TDX TDATTRIBUTES.DEBUG").status, Status::ObservedOnly);
    }

    /// A debuggable SNP guest, a report from another VMPL and a policy that lets a migration agent
    /// in each fail on their own, whatever the measurement says; each can be allowed explicitly.
    #[test]
    fn snp_guest_policy() {
        let good = snp_report();
        let p = ReferenceValues::default();
        let ev = |r| Evidence { snp: Some(r), ..Default::default() };
        assert!(check(&p, &ev(&good)).unwrap().ok());
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = include_bytes!("../testdata/snp-report-v5-turin.bin").to_vec();
            f(&mut bytes);
            crate::evidence::snp_report::parse(&bytes).unwrap()
        };
        let policy_bit = |bit: u32| {
            with(&move |b: &mut Vec<u8>| {
                let v = u64::from_le_bytes(b[8..16].try_into().unwrap()) | (1 << bit);
                b[8..16].copy_from_slice(&v.to_le_bytes());
            })
        };
        let debug = policy_bit(19);
        let r = check(&p, &ev(&debug)).unwrap();
        assert!(!r.ok());
        assert_eq!(find(&r, "SNP POLICY.DEBUG").status, Status::Mismatch);
        let allow = GuestPolicy { allow_debug: true, ..Default::default() };
        assert!(check_with(&p, &ev(&debug), &allow).unwrap().ok());

        let vmpl2 = with(&|b: &mut Vec<u8>| b[0x30..0x34].copy_from_slice(&2u32.to_le_bytes()));
        let r = check(&p, &ev(&vmpl2)).unwrap();
        let c = find(&r, "SNP VMPL");
        assert_eq!((c.status, c.actual.as_str()), (Status::Mismatch, "2"), "{c:?}");
        assert!(check_with(&p, &ev(&vmpl2), &GuestPolicy { vmpl: 2, ..Default::default() }).unwrap().ok());

        let ma = policy_bit(18);
        let r = check(&p, &ev(&ma)).unwrap();
        assert_eq!(find(&r, "SNP POLICY.MIGRATE_MA").status, Status::Mismatch);
        let allow = GuestPolicy { allow_migration_agent: true, ..Default::default() };
        assert!(check_with(&p, &ev(&ma), &allow).unwrap().ok());
    }

    /// SMT allowed by the guest's policy fails where the bundle forbids it, passes where it
    /// allows it, and is only a note where the bundle says nothing.
    #[test]
    fn snp_smt_against_the_bundle() {
        let with_smt = |on: bool| {
            let mut b = include_bytes!("../testdata/snp-report-v5-turin.bin").to_vec();
            let mut v = u64::from_le_bytes(b[8..16].try_into().unwrap()) & !(1 << 16);
            if on {
                v |= 1 << 16;
            }
            b[8..16].copy_from_slice(&v.to_le_bytes());
            crate::evidence::snp_report::parse(&b).unwrap()
        };
        let digest = |r: &SnpReport| SnpLaunchDigest {
            vcpus: 1,
            vcpu_type: None,
            vcpu_sig: 0,
            vmm_type: "qemu".into(),
            guest_features: 1,
            launch_digest: Hex::from(r.measurement),
        };
        for (report_smt, bundle_smt, want) in [
            (true, Some(false), Some(Status::Mismatch)),
            (true, Some(true), Some(Status::Ok)),
            (false, Some(false), Some(Status::Ok)),
            (true, None, None),
        ] {
            let r = with_smt(report_smt);
            let p = ReferenceValues {
                snp: vec![digest(&r)],
                snp_policy: bundle_smt.map(|smt| crate::reference::SnpPolicy { smt }),
                ..Default::default()
            };
            let report = check(&p, &Evidence { snp: Some(&r), ..Default::default() }).unwrap();
            let c = report.checks.iter().find(|c| c.value == "SNP POLICY.SMT");
            assert_eq!(c.map(|c| c.status), want, "report SMT {report_smt}, bundle {bundle_smt:?}: {report:#?}");
            assert_eq!(report.ok(), want != Some(Status::Mismatch), "report SMT {report_smt}, bundle {bundle_smt:?}");
            let noted = report.notes.iter().any(|n| n.contains("the bundle states no SMT policy"));
            assert_eq!(noted, bundle_smt.is_none(), "{:?}", report.notes);
        }
    }
}
