//! `nodeimg attest check`: is this node running this release?
//!
//! Verifies the bundle (as `nodeimg verify`), gathers the evidence the user points at — an event
//! log, PCR values from a file or a live TPM, an SEV-SNP report, a TDX quote —, parses it with
//! `attest`, and prints `attest::check`'s verdict value by value. Parsing and comparing
//! are the libraries'; this module reads files, talks to the TPM and formats.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ::eventlog::EventLog;
use anyhow::{bail, Context, Result};
use attest::evidence::{snp_report, tdx_quote, SnpReport, TdxQuote};
use attest::{Authentication, Authenticity, Evidence, PcrValues, Report, Source, Status};
use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;

use super::eventlog::{emit, load, register_diff, FormatArg};
use super::sign::{read_public_key, read_signature};
use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a node's evidence against a signed bundle: exit 0 only if every enforced value
    /// matches, 1 otherwise, 2 for unusable input.
    ///
    /// Verifies the bundle first (signature, trusted comment, schema, as `nodeimg verify`), then
    /// compares each value the evidence carries with the platform's reference values and prints
    /// one line per value: ok (an enforced value matches), mismatch (it differs, or the evidence
    /// contradicts itself), observed-only (the bundle does not enforce it). With an event log and
    /// a bundle that carries the predicted log, each differing register is explained by its first
    /// differing event (as `nodeimg eventlog diff`). Without --bundle, --pubkey and --platform the
    /// evidence is checked on its own and its values are reported, none enforced.
    ///
    /// Checks that prove the evidence authentic come first. Evidence no signature vouches for is
    /// still compared, but the verdict (and "authenticity" in --json) says UNAUTHENTICATED, never
    /// a plain OK.
    ///
    /// NOT checked: the signatures of the SNP report (VCEK/VLEK certificate chain to AMD's root)
    /// and of the TDX quote (QE report and PCK certificate chain to Intel's root), and any TPM
    /// quote. Have an attestation service verify those; this command checks the values they
    /// carry.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("evidence").required(true).multiple(true)
        .args(["eventlog", "pcrs", "tpm", "snp_report", "tdx_quote"])
))]
pub struct CheckArgs {
    /// The bundle (bundle.json). Without --bundle, --pubkey and --platform the evidence is
    /// verified on its own and its values are reported, none enforced.
    #[arg(long, value_name = "FILE", requires_all = ["pubkey", "platform"])]
    bundle: Option<PathBuf>,
    /// The minisign public key of the publisher.
    #[arg(long, value_name = "KEY", requires = "bundle")]
    pubkey: Option<PathBuf>,
    /// The bundle's signature (default: BUNDLE.minisig).
    #[arg(long, value_name = "SIG", requires = "bundle")]
    sig: Option<PathBuf>,
    /// Refuse bundles older than this version (rollback protection).
    #[arg(long, value_name = "VERSION", requires = "bundle")]
    min_version: Option<String>,
    /// The bundle's platform to check against (e.g. qemu-snp).
    #[arg(long, value_name = "NAME", requires = "bundle")]
    platform: Option<String>,
    /// The node's event log: TCG binary log (/sys/kernel/security/tpm0/binary_bios_measurements)
    /// or TDX CCEL (/sys/firmware/acpi/tables/data/CCEL).
    #[arg(long, value_name = "FILE")]
    eventlog: Option<PathBuf>,
    /// The event log's format.
    #[arg(long, value_enum, default_value = "auto", requires = "eventlog")]
    eventlog_format: FormatArg,
    /// The node's PCR values, as `nodeimg pcrs read --json` prints them ({"banks": {"sha256":
    /// {"0": "<hex>", …}, …}}; the bare banks object is accepted too).
    #[arg(long, value_name = "FILE", conflicts_with = "tpm")]
    pcrs: Option<PathBuf>,
    /// Read the PCRs from a TPM, in TSS2 TCTI syntax: device:/dev/tpmrm0,
    /// swtpm:host=HOST,port=PORT or swtpm:path=SOCKET.
    #[arg(long, value_name = "TCTI")]
    tpm: Option<String>,
    /// An AMD SEV-SNP attestation report (binary, 1184 bytes; versions 2, 3, 5).
    #[arg(long, value_name = "FILE")]
    snp_report: Option<PathBuf>,
    /// An Intel TDX quote (binary; quote versions 4 and 5, TD report 1.0 and 1.5).
    #[arg(long, value_name = "FILE")]
    tdx_quote: Option<PathBuf>,
    /// Accept a debuggable guest (SNP policy DEBUG, TDX TDATTRIBUTES.DEBUG), whose memory the
    /// host can read: for development only. Without it such a guest fails (exit 1).
    #[arg(long)]
    allow_debug: bool,
    /// The VMPL an SNP report must come from (0 for a guest without a paravisor).
    #[arg(long, value_name = "N", default_value_t = 0)]
    vmpl: u32,
    /// Accept an SNP policy that lets a migration agent (MIGRATE_MA) export the guest's memory.
    #[arg(long)]
    allow_migration_agent: bool,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command, global: Global) -> Result<Outcome> {
    match cmd {
        Command::Check(a) => check(&a, global),
    }
}

/// PCR values from a bank map; `what` names its source in errors.
fn pcr_values(banks: BTreeMap<String, BTreeMap<String, String>>, what: &str) -> Result<(PcrValues, Vec<String>)> {
    attest::pcr_values(banks).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn read_pcrs_file(path: &Path) -> Result<(PcrValues, Vec<String>)> {
    let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::SMALL_JSON, "a JSON file of PCR values")?;
    attest::pcr_values_from_json(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn read_snp(path: &Path) -> Result<SnpReport> {
    let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::EVIDENCE, "an SEV-SNP report")?;
    snp_report::parse(&bytes).with_context(|| format!("{}: not an SEV-SNP attestation report", path.display()))
}

fn read_tdx(path: &Path) -> Result<TdxQuote> {
    let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::EVIDENCE, "a TDX quote")?;
    tdx_quote::parse(&bytes).with_context(|| format!("{}: not a TDX quote", path.display()))
}

#[derive(Serialize)]
struct CheckJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    report: Option<&'a Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snp_report: Option<&'a SnpReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tdx_quote: Option<&'a TdxQuote>,
}

fn check(a: &CheckArgs, global: Global) -> Result<Outcome> {
    // Unusable evidence is an input error (exit 2): read it all before anything else.
    let log: Option<EventLog> = a.eventlog.as_deref().map(|p| load(p, a.eventlog_format)).transpose()?;
    let pcrs_file = a.pcrs.as_deref().map(read_pcrs_file).transpose()?;
    let snp = a.snp_report.as_deref().map(read_snp).transpose()?;
    let tdx = a.tdx_quote.as_deref().map(read_tdx).transpose()?;

    let bundle = match (&a.bundle, &a.pubkey, &a.platform) {
        (Some(bundle), Some(pubkey), Some(platform)) => match verify_bundle(a, bundle, pubkey, platform)? {
            Some(b) => Some(b),
            None => return Ok(Outcome::Mismatch),
        },
        _ => None,
    };
    let references = match &bundle {
        Some(b) => b.references.clone(),
        None => attest::ReferenceValues::default(),
    };

    let tpm = match &a.tpm {
        Some(tcti) => {
            let banks = crate::tpm::read_banks(tcti, &[])?;
            let banks = banks
                .into_iter()
                .map(|(name, pcrs)| (name, pcrs.into_iter().map(|(i, v)| (i.to_string(), v)).collect()))
                .collect();
            Some(pcr_values(banks, &format!("the TPM at {tcti}"))?)
        }
        None => None,
    };
    let (pcrs, skipped_banks) = match (&tpm, &pcrs_file) {
        (Some((v, s)), _) => (Some((Source::Tpm, v)), s.clone()),
        (None, Some((v, s))) => (Some((Source::PcrsFile, v)), s.clone()),
        (None, None) => (None, Vec::new()),
    };
    let authentication: Vec<Authentication> = Vec::new();
    let evidence = Evidence {
        pcrs,
        eventlog: log.as_ref(),
        snp: snp.as_ref(),
        tdx: tdx.as_ref(),
        authentication: &authentication,
    };
    let guest = attest::GuestPolicy {
        allow_debug: a.allow_debug,
        vmpl: a.vmpl,
        allow_migration_agent: a.allow_migration_agent,
    };
    let mut report = attest::check_with(&references, &evidence, &guest).with_context(|| match &a.platform {
        Some(p) => format!("checking the evidence against platform {p}"),
        None => "checking the evidence".to_owned(),
    })?;
    if bundle.is_none() {
        report.notes.push("no bundle: the evidence's values are reported, none is enforced".into());
    }
    for b in skipped_banks {
        report
            .notes
            .push(format!("the {b} PCR bank was not compared: bundles have sha1, sha256, sha384 and sha512 banks"));
    }
    let ok = report.ok();
    if a.json {
        let out = CheckJson {
            bundle: a.bundle.as_ref().map(|b| b.display().to_string()),
            ok,
            image: bundle.as_ref().map(|b| b.verified.bundle.image.name.as_str()),
            version: bundle.as_ref().map(|b| b.verified.bundle.image.version.as_str()),
            sha256: bundle.as_ref().map(|b| hex::encode(b.verified.sha256)),
            key_id: bundle.as_ref().and_then(|b| b.verified.key_id.map(|k| k.to_string())),
            platform: a.platform.as_deref(),
            reason: None,
            report: Some(&report),
            snp_report: snp.as_ref(),
            tdx_quote: tdx.as_ref(),
        };
        emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
    } else {
        let mut out = String::new();
        if !global.quiet {
            match &bundle {
                Some(b) => writeln!(
                    out,
                    "bundle {} {} (sha256 {}), signed by key {}; platform {}",
                    b.verified.bundle.image.name,
                    b.verified.bundle.image.version,
                    hex::encode(b.verified.sha256),
                    b.verified.key_id.map(|k| k.to_string()).unwrap_or_default(),
                    a.platform.as_deref().unwrap_or_default()
                )?,
                None => writeln!(out, "no bundle: verifying the evidence alone")?,
            }
        }
        text(&mut out, &report, global.quiet)?;
        emit(&out)?;
    }
    Ok(if ok { Outcome::Ok } else { Outcome::Mismatch })
}

/// A bundle that verified, and its platform's reference values.
struct VerifiedBundle {
    verified: release::Verified,
    references: attest::ReferenceValues,
}

/// Verifies the bundle (as `nodeimg verify`) and picks `platform`; `None` when it does not
/// verify (reported, exit 1), an error for unusable input (exit 2).
fn verify_bundle(a: &CheckArgs, path: &Path, pubkey: &Path, platform: &str) -> Result<Option<VerifiedBundle>> {
    let min_version = super::release::parse_min_version(a.min_version.as_deref())?;
    let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::BUNDLE, "a bundle")?;
    let key = read_public_key(pubkey)?;
    let sig = read_signature(path, a.sig.as_deref())?;
    let bundle_name = path.display().to_string();
    let verified = match release::verify_bundle(&bytes, Some((&key, &sig)), min_version.as_ref()) {
        Ok(v) => v,
        // A malformed signature file is unusable input (exit 2), not a failed verification.
        Err(e @ release::VerifyError::MalformedSignature(_)) => bail!("{}: {e}", path.display()),
        Err(e) => {
            if a.json {
                let out = CheckJson {
                    bundle: Some(bundle_name.clone()),
                    ok: false,
                    image: None,
                    version: None,
                    sha256: None,
                    key_id: None,
                    platform: Some(platform),
                    reason: Some(format!("the bundle did not verify: {e}")),
                    report: None,
                    snp_report: None,
                    tdx_quote: None,
                };
                emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
            }
            eprintln!("{bundle_name}: verification failed: {e}");
            return Ok(None);
        }
    };
    let Some(p) = verified.bundle.platforms.get(platform) else {
        bail!(
            "the bundle has no platform {:?} (it has: {})",
            platform,
            verified.bundle.platforms.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let references = attest::ReferenceValues::from(p);
    Ok(Some(VerifiedBundle { verified, references }))
}

/// One line per check (only mismatches with `quiet`); under a mismatch the expected values and,
/// once per register, the first differing event; then the notes and a verdict.
fn text(out: &mut String, report: &Report, quiet: bool) -> std::fmt::Result {
    let mut explained = BTreeSet::new();
    for c in &report.checks {
        if quiet && c.status != Status::Mismatch {
            continue;
        }
        let actual = if c.actual.is_empty() { "(absent)" } else { c.actual.as_str() };
        writeln!(out, "{:<13}  {:<22} {actual}  [{}] {}", c.status.name(), c.value, c.source.name(), c.detail)?;
        if c.status == Status::Mismatch {
            for e in &c.expected {
                writeln!(out, "{:<13}  {:<22} expected {}  ({})", "", "", e.value, e.what)?;
            }
        }
        if let Some(d) = &c.events {
            if c.status != Status::Ok && explained.insert(d.register) {
                let mut block = String::new();
                register_diff(&mut block, d)?;
                for line in block.lines() {
                    writeln!(out, "{:<13}  {line}", "")?;
                }
            }
        }
    }
    if !quiet {
        for n in &report.notes {
            writeln!(out, "note: {n}")?;
        }
    }
    let (ok, observed) = (report.count(Status::Ok), report.count(Status::ObservedOnly));
    let bad: Vec<&str> =
        report.checks.iter().filter(|c| c.status == Status::Mismatch).map(|c| c.value.as_str()).collect();
    if bad.is_empty() {
        match report.authenticity {
            Authenticity::Authenticated => writeln!(
                out,
                "OK: the evidence is authentic and every enforced value matches ({ok} ok, {observed} observed only)"
            ),
            // Never a plain OK: nothing proved these values genuine.
            _ => writeln!(
                out,
                "UNAUTHENTICATED: every enforced value matches ({ok} ok, {observed} observed only), but no \
                 signature proves the evidence genuine (see the notes)"
            ),
        }
    } else {
        writeln!(out, "FAIL: {} mismatch(es): {} ({ok} ok, {observed} observed only)", bad.len(), bad.join(", "))
    }
}
