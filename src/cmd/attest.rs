//! `nodeimg attest check`: is this node running this release?
//!
//! Verifies the bundle (as `nodeimg verify`) when one is given, gathers the evidence the user
//! points at — an event log, PCR values from a file or a live TPM, a TPM quote, an SEV-SNP
//! report, a TDX quote —, parses it with `attest`, verifies the TPM quote (`attest::quote`), and
//! prints `attest::check`'s verdict: authenticity checks first, then value by value. Parsing,
//! verifying and comparing are the libraries'; this module reads files, talks to the TPM and
//! formats.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ::eventlog::EventLog;
use anyhow::{bail, Context, Result};
use attest::evidence::{snp_report, tdx_quote, SnpReport, TdxQuote};
use attest::{Authentication, Authenticity, Evidence, PcrValues, Report, Source, Status};
use clap::{ArgGroup, Args, Subcommand};
use serde::{Deserialize, Serialize};

use super::eventlog::{emit, load, register_diff, FormatArg};
use super::sign::{read_public_key, read_signature};
use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
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
    /// A TPM quote (--tpm-quote, --tpm-quote-sig, --ak, --nonce, or --evidence) is verified:
    /// signature, TPM_GENERATED_VALUE and quote type, nonce, a selection that covers every PCR the
    /// bundle enforces, and a PCR digest that matches the PCR values compared (--pcrs, --tpm, or
    /// replayed from --eventlog). Only the quoted PCRs are then compared. The AK of --ak is trusted
    /// as given; one (or a nonce) that came with --evidence leaves the verdict UNAUTHENTICATED
    /// (docs/attest-evidence.md).
    ///
    /// With --vek and --cert-chain, an SNP report is verified first: ARK self-signature and key
    /// (one of AMD's built-in Milan, Genoa, Turin roots, or --ark), ASK/ASVK by ARK, VCEK/VLEK by
    /// ASK (RSA-PSS), the report by the VCEK/VLEK (ECDSA P-384), REPORTED_TCB equal to the
    /// VCEK's TCB, CHIP_ID equal to its hwID, and --report-data, --min-tcb. With --collateral, a
    /// TDX quote is verified by DCAP (dcap-qvl): the PCK chain from the quote to Intel's root CA,
    /// the QE report, the signature, the collateral's signatures, CRLs and validity, and the TCB
    /// status (--allow-tcb-status), and --report-data. Certificates and collateral must be valid
    /// at --at (default: now). Without these, the report's or quote's signature is not checked.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("any_evidence").required(true).multiple(true)
        .args(["eventlog", "pcrs", "tpm", "snp_report", "tdx_quote", "tpm_quote", "evidence"])
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
    /// The bundle's platform to check against (e.g. qemu, gcp).
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
    /// The VCEK or VLEK certificate that signed --snp-report (DER or PEM, as AMD's KDS serves
    /// it); verifies the report's signature and chain.
    #[arg(long, value_name = "FILE", requires_all = ["snp_report", "cert_chain"])]
    vek: Option<PathBuf>,
    /// AMD's cert_chain for the VEK (PEM: the ASK or ASVK, then the ARK), as KDS serves it.
    #[arg(long, value_name = "FILE", requires = "vek")]
    cert_chain: Option<PathBuf>,
    /// Trust this ARK (DER or PEM) instead of AMD's built-in Milan, Genoa and Turin roots.
    #[arg(long, value_name = "FILE", requires = "vek")]
    ark: Option<PathBuf>,
    /// The minimum REPORTED_TCB, e.g. bootloader=3,tee=0,snp=8,microcode=115 (any subset; fmc=N
    /// on Turin).
    #[arg(long, value_name = "SPEC", requires = "vek", value_parser = parse_min_tcb)]
    min_tcb: Option<attest::snp_verify::MinTcb>,
    /// DCAP collateral for --tdx-quote: a JSON file in dcap-qvl's format (PCK CRL and issuer
    /// chain, root CA CRL, TCB info and QE identity with signatures and issuer chains), or a
    /// directory of the files Intel's PCS serves (tcbinfo.json, tcbinfo-issuer-chain.pem,
    /// qeidentity.json, qeidentity-issuer-chain.pem, pckcrl.der, pckcrl-issuer-chain.pem,
    /// rootcacrl.der). The PCK chain comes from the quote; Intel's root CA is built in.
    #[arg(long, value_name = "FILE|DIR", requires = "tdx_quote")]
    collateral: Option<PathBuf>,
    /// A TDX TCB status to accept (repeat or comma-separate: UpToDate, SWHardeningNeeded,
    /// ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, …).
    #[arg(long, value_name = "STATUS", value_delimiter = ',', default_value = "UpToDate", requires = "collateral")]
    allow_tcb_status: Vec<String>,
    /// The nonce the report's REPORT_DATA / the quote's REPORTDATA must hold (hex, up to 64
    /// bytes, zero-padded); needs --vek or --collateral.
    #[arg(long, value_name = "HEX", value_parser = parse_nonce_hex)]
    report_data: Option<Nonce>,
    /// The time at which certificates, CRLs and collateral must be valid, RFC 3339 UTC
    /// (2025-07-01T00:00:00Z; default: now). Recorded evidence is verified at a time inside its
    /// collateral's window.
    #[arg(long, value_name = "RFC3339", value_parser = attest::time::parse_rfc3339)]
    at: Option<attest::time::UnixTime>,
    /// A TPM quote: the TPMS_ATTEST `tpm2_quote -m` writes (a TPM2B_ATTEST is accepted too). Its
    /// signature, type, nonce, PCR selection (every PCR the bundle enforces) and PCR digest are
    /// checked before any value; the PCR values it must match come from --pcrs, --tpm or are
    /// replayed from --eventlog.
    #[arg(long, value_name = "FILE", requires_all = ["tpm_quote_sig", "ak", "nonce"], conflicts_with = "evidence")]
    tpm_quote: Option<PathBuf>,
    /// The quote's signature: the TPMT_SIGNATURE `tpm2_quote -s` writes (RSASSA, RSAPSS, ECDSA on
    /// NIST P-256/P-384; SHA-256 or SHA-384).
    #[arg(long, value_name = "FILE", requires = "tpm_quote")]
    tpm_quote_sig: Option<PathBuf>,
    /// The attestation key that signed the quote: a PEM public key (`tpm2_readpublic -f pem`) or
    /// a TPM2B_PUBLIC (`tpm2_createak -u`). Whether it belongs to a genuine TPM of this node (EK
    /// certificate, credential activation) is for you to establish: it is trusted as given.
    #[arg(long, value_name = "FILE")]
    ak: Option<PathBuf>,
    /// The nonce you gave the node for the quote (hex): the quote's extraData must equal it.
    #[arg(long, value_name = "HEX")]
    nonce: Option<String>,
    /// One JSON file with a node's TPM evidence: {"tpm_quote": {"message": B64, "signature": B64,
    /// "ak": PEM or B64 TPM2B_PUBLIC, "nonce": HEX}, "pcrs": {"sha256": {"0": HEX, …}},
    /// "eventlog": B64} (docs/attest-evidence.md; every part optional but the quote's message
    /// and signature). --ak and --nonce override the file's, and should: a key and a nonce that
    /// come with the evidence prove nothing.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pcrs", "eventlog", "tpm"])]
    evidence: Option<PathBuf>,
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

fn read_snp(path: &Path) -> Result<(Vec<u8>, SnpReport)> {
    let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::EVIDENCE, "an SEV-SNP report")?;
    let report =
        snp_report::parse(&bytes).with_context(|| format!("{}: not an SEV-SNP attestation report", path.display()))?;
    Ok((bytes, report))
}

fn read_tdx(path: &Path) -> Result<(Vec<u8>, TdxQuote)> {
    let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::EVIDENCE, "a TDX quote")?;
    let quote = tdx_quote::parse(&bytes).with_context(|| format!("{}: not a TDX quote", path.display()))?;
    Ok((bytes, quote))
}

fn parse_min_tcb(s: &str) -> Result<attest::snp_verify::MinTcb, String> {
    s.parse()
}

/// A verifier's nonce: 1 to 64 bytes, what a TPM quote's extraData and an SNP report's or a TDX
/// quote's REPORT_DATA hold.
#[derive(Debug, Clone)]
struct Nonce(Vec<u8>);

/// A nonce in hex (`--report-data`, `--nonce`, the evidence file's).
fn parse_nonce_hex(s: &str) -> Result<Nonce, String> {
    let b = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
    if b.is_empty() || b.len() > 64 {
        return Err(format!("a nonce of {} bytes (quotes and reports hold 1 to 64)", b.len()));
    }
    Ok(Nonce(b))
}

/// The SNP report's authenticity checks (`--vek`, `--cert-chain`, `--ark`).
fn verify_snp(a: &CheckArgs, bytes: &[u8], report: &SnpReport, vek: &Path, at: u64) -> Result<Authentication> {
    use crate::fsutil::{limits, read_input};
    let vek_bytes = read_input(vek, limits::KEY, "a VCEK/VLEK certificate")?;
    let chain_path = a.cert_chain.as_deref().context("--vek needs --cert-chain")?;
    let chain = read_input(chain_path, limits::KEY, "AMD's cert_chain")?;
    let ark = a.ark.as_deref().map(|p| read_input(p, limits::KEY, "an ARK certificate")).transpose()?;
    let inputs = attest::snp_verify::SnpInputs {
        vek: &vek_bytes,
        cert_chain: &chain,
        ark: ark.as_deref(),
        at,
        report_data: a.report_data.as_ref().map(|n| n.0.as_slice()),
        min_tcb: a.min_tcb,
    };
    let checks = attest::snp_verify::verify(bytes, report, &inputs).map_err(|e| {
        let file = match e {
            attest::snp_verify::SnpVerifyError::Vek(_) => vek.display().to_string(),
            attest::snp_verify::SnpVerifyError::Chain(_) => chain_path.display().to_string(),
            attest::snp_verify::SnpVerifyError::Ark(_) => a.ark.as_deref().unwrap_or(vek).display().to_string(),
            _ => "--report-data".into(),
        };
        anyhow::anyhow!("{file}: {e}")
    })?;
    Ok(Authentication { covers: Source::SnpReport, checks })
}

/// The TDX quote's authenticity checks (`--collateral`, `--allow-tcb-status`).
fn verify_tdx(a: &CheckArgs, bytes: &[u8], quote: &TdxQuote, path: &Path, at: u64) -> Result<Authentication> {
    use crate::fsutil::{limits, read_input};
    let collateral = if path.is_dir() {
        let mut files = BTreeMap::new();
        for name in attest::tdx_verify::PCS_FILES {
            let p = path.join(name);
            if p.exists() {
                files.insert(name.to_owned(), read_input(&p, limits::SMALL_JSON, "a PCS collateral file")?);
            }
        }
        attest::tdx_verify::collateral_from_pcs_dir(&files)
    } else {
        attest::tdx_verify::collateral_from_json(&read_input(path, limits::SMALL_JSON, "DCAP collateral JSON")?)
    }
    .with_context(|| format!("{}", path.display()))?;
    let inputs = attest::tdx_verify::TdxInputs {
        collateral: &collateral,
        at,
        allowed_statuses: &a.allow_tcb_status,
        report_data: a.report_data.as_ref().map(|n| n.0.as_slice()),
    };
    let checks = attest::tdx_verify::verify(bytes, quote, &inputs)?;
    Ok(Authentication { covers: Source::TdxQuote, checks })
}

/// The largest `--evidence` file: an event log as large as `--eventlog` takes, in base64.
const EVIDENCE_FILE: u64 = crate::fsutil::limits::EVENTLOG / 3 * 4 + crate::fsutil::limits::SMALL_JSON;

/// `--evidence`: a node's TPM evidence in one JSON file (docs/attest-evidence.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceFile {
    tpm_quote: QuoteFile,
    #[serde(default)]
    pcrs: Option<BTreeMap<String, BTreeMap<String, String>>>,
    #[serde(default)]
    eventlog: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteFile {
    message: String,
    signature: String,
    #[serde(default)]
    ak: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// A TPM quote and what verifies it, read and parsed (errors are unusable input).
struct QuoteInput {
    message: Vec<u8>,
    signature: attest::quote::Signature,
    ak: attest::quote::AkPublic,
    nonce: Vec<u8>,
    /// Where the AK and the nonce came from, when it was the evidence itself.
    notes: Vec<String>,
}

fn base64(what: &str, text: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| anyhow::anyhow!("{what}: not base64: {e}"))
}

fn parse_nonce(what: &str, text: &str) -> Result<Vec<u8>> {
    parse_nonce_hex(text.trim()).map(|n| n.0).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// The AK of `--ak`, and whether it was a PEM key (whose TPM attributes cannot be seen).
fn read_ak(path: &Path) -> Result<(attest::quote::AkPublic, bool)> {
    let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::KEY, "an attestation key")?;
    let ak = attest::quote::parse_ak(&bytes).with_context(|| format!("{}: not an attestation key", path.display()))?;
    Ok((ak, bytes.starts_with(b"-----BEGIN")))
}

/// The quote of `--tpm-quote …` or of `--evidence`, with `--ak` and `--nonce` (which override
/// the file's).
fn read_quote(a: &CheckArgs, file: Option<&QuoteFile>) -> Result<Option<QuoteInput>> {
    let mut notes = Vec::new();
    let (message, signature) = match (file, &a.tpm_quote, &a.tpm_quote_sig) {
        (Some(q), _, _) => (
            base64("the evidence's tpm_quote.message", &q.message)?,
            base64("the evidence's tpm_quote.signature", &q.signature)?,
        ),
        (None, Some(m), Some(sig)) => (
            crate::fsutil::read_input(m, crate::fsutil::limits::EVIDENCE, "a TPM quote")?,
            crate::fsutil::read_input(sig, crate::fsutil::limits::EVIDENCE, "a TPM quote's signature")?,
        ),
        _ => return Ok(None),
    };
    let what =
        |flag: &Option<PathBuf>, default: &str| flag.as_ref().map_or(default.to_owned(), |p| p.display().to_string());
    let signature = attest::quote::parse_signature(&signature).with_context(|| {
        format!("{}: not a TPM quote's signature", what(&a.tpm_quote_sig, "the evidence's tpm_quote.signature"))
    })?;
    // Unusable quotes are input errors: parse it here once (verify parses it again).
    attest::quote::parse_attest(&message)
        .with_context(|| format!("{}: not a TPM quote", what(&a.tpm_quote, "the evidence's tpm_quote.message")))?;
    let (ak, pem) = match (&a.ak, file.and_then(|q| q.ak.as_deref())) {
        (Some(p), _) => read_ak(p)?,
        (None, Some(text)) => {
            notes.push(
                "the attestation key came with the evidence (no --ak): a key anyone can make proves nothing until \
                 you know it is this node's TPM's"
                    .to_owned(),
            );
            let bytes = if text.trim_start().starts_with("-----BEGIN") {
                text.as_bytes().to_vec()
            } else {
                base64("the evidence's tpm_quote.ak", text)?
            };
            let ak = attest::quote::parse_ak(&bytes).context("the evidence's tpm_quote.ak: not an attestation key")?;
            (ak, bytes.starts_with(b"-----BEGIN"))
        }
        (None, None) => bail!("the TPM quote needs its attestation key: --ak (or tpm_quote.ak in --evidence)"),
    };
    if pem {
        notes.push(
            "the attestation key is a PEM public key: whether the TPM holds it as a restricted signing key (which \
             signs only what the TPM itself generated) is not visible in it; a TPM2B_PUBLIC (tpm2_createak -u) shows \
             that and is checked"
                .to_owned(),
        );
    }
    let nonce = match (&a.nonce, file.and_then(|q| q.nonce.as_deref())) {
        (Some(n), _) => parse_nonce("--nonce", n)?,
        (None, Some(n)) => {
            notes.push(
                "the nonce came with the evidence (no --nonce): it proves the quote fresh only if you chose it"
                    .to_owned(),
            );
            parse_nonce("the evidence's tpm_quote.nonce", n)?
        }
        (None, None) => {
            bail!("the TPM quote needs the nonce you gave the node: --nonce (or tpm_quote.nonce in --evidence)")
        }
    };
    Ok(Some(QuoteInput { message, signature, ak, nonce, notes }))
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
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm_quote: Option<&'a attest::quote::Attest>,
}

fn check(a: &CheckArgs, global: Global) -> Result<Outcome> {
    // Unusable evidence is an input error (exit 2): read it all before anything else.
    let file: Option<EvidenceFile> = match &a.evidence {
        Some(p) => {
            let bytes = crate::fsutil::read_input(p, EVIDENCE_FILE, "a JSON evidence file")?;
            Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{}: not an evidence file (docs/attest-evidence.md)", p.display()))?,
            )
        }
        None => None,
    };
    let mut log: Option<EventLog> = a.eventlog.as_deref().map(|p| load(p, a.eventlog_format)).transpose()?;
    let mut pcrs_file = a.pcrs.as_deref().map(read_pcrs_file).transpose()?;
    if let Some(f) = &file {
        if let Some(text) = &f.eventlog {
            let bytes = base64("the evidence's eventlog", text)?;
            log = Some(::eventlog::parse(&bytes).context("the evidence's eventlog")?);
        }
        if let Some(banks) = &f.pcrs {
            pcrs_file = Some(pcr_values(banks.clone(), "the evidence's pcrs")?);
        }
    }
    let quote = read_quote(a, file.as_ref().map(|f| &f.tpm_quote))?;
    let snp = a.snp_report.as_deref().map(read_snp).transpose()?;
    let tdx_read = a.tdx_quote.as_deref().map(read_tdx).transpose()?;
    if a.report_data.is_some() && a.vek.is_none() && a.collateral.is_none() {
        bail!("--report-data needs --vek (SNP) or --collateral (TDX): a nonce in an unsigned report proves nothing");
    }
    let at = match a.at {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs(),
    };
    let mut authentication: Vec<Authentication> = Vec::new();
    if let (Some((bytes, report)), Some(vek)) = (&snp, &a.vek) {
        authentication.push(verify_snp(a, bytes, report, vek, at)?);
    }
    if let (Some((bytes, quote)), Some(path)) = (&tdx_read, &a.collateral) {
        authentication.push(verify_tdx(a, bytes, quote, path, at)?);
    }
    // A signed report is genuine, but without the verifier's nonce in it not fresh: the same
    // guest's report from any earlier time would pass. (A TPM quote needs --nonce at all.)
    let mut freshness_notes = Vec::new();
    if a.report_data.is_none() {
        for (given, signed, what) in
            [(snp.is_some(), a.vek.is_some(), "SNP report"), (tdx_read.is_some(), a.collateral.is_some(), "TDX quote")]
        {
            if given && signed {
                freshness_notes.push(format!(
                    "the {what} is not shown fresh: no --report-data (the nonce you asked the guest to put in it), so \
                     a report this guest made at any earlier time would pass as well"
                ));
            }
        }
    }
    let snp = snp.map(|(_, r)| r);
    let tdx = tdx_read.map(|(_, q)| q);

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
    let (mut pcrs, skipped_banks) = match (&tpm, &pcrs_file) {
        (Some((v, s)), _) => (Some((Source::Tpm, v)), s.clone()),
        (None, Some((v, s))) => (Some((Source::PcrsFile, v)), s.clone()),
        (None, None) => (None, Vec::new()),
    };
    let mut quote_notes = Vec::new();
    let replayed;
    let quoted;
    let quote_verification = match &quote {
        Some(q) => {
            // The values the quote's digest must match: the TPM's or the file's, else the log's.
            let values = match (pcrs, &log) {
                (Some((_, v)), _) => v,
                (None, Some(l)) => {
                    replayed = attest::pcr_values_from_log(l).context("the event log")?;
                    pcrs = Some((Source::Eventlog, &replayed));
                    &replayed
                }
                (None, None) => bail!("a TPM quote needs the PCR values it covers: --pcrs, --tpm or --eventlog"),
            };
            let v = attest::quote::verify(
                &q.message,
                &q.signature,
                &q.ak,
                &q.nonce,
                values,
                bundle.as_ref().map(|b| &b.references),
            )
            .context("the TPM quote")?;
            if let Some(values) = &v.quoted {
                quoted = values.clone();
                pcrs = Some((Source::TpmQuote, &quoted));
            }
            authentication.push(v.authentication.clone());
            quote_notes.extend(q.notes.iter().cloned());
            Some(v)
        }
        None => None,
    };
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
    report.notes.extend(quote_notes);
    report.notes.extend(freshness_notes);
    // Only a quote by the verifier's own AK, over the verifier's own nonce, proves anything: a
    // key that came with the evidence signs whatever its holder likes, a nonce that came with it
    // may be an old one.
    let quote_on_own_keys = a.ak.is_some() && a.nonce.is_some();
    if quote.is_some() && !quote_on_own_keys && report.authenticity == Authenticity::Authenticated {
        report.authenticity = Authenticity::Unauthenticated;
        report.notes.push(
            "unauthenticated: the TPM quote's attestation key or nonce came with the evidence, so its signature \
             proves only that whoever holds that key signed it (give --ak with a key you know to be the node's TPM's, \
             and --nonce with the one you chose)"
                .into(),
        );
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
            tpm_quote: quote_verification.as_ref().map(|v| &v.attest),
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
                    tpm_quote: None,
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
                "OK: the evidence is authentic (given its keys) and every enforced value matches ({ok} ok, {observed} observed \
                 only)"
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
