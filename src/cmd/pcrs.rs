//! `nodeimg pcrs read`: the PCR banks of a TPM, through the TCG software stack (tss-esapi).
//!
//! Reads every allocated bank (or those named with `--bank`) and every PCR the TPM has
//! allocated in it, so the output compares directly with `nodeimg eventlog replay` and with the
//! boot-chain model's predictions. `--tcti` takes the TSS2 TCTI syntax: `device:/dev/tpmrm0`
//! (the default), `swtpm:host=127.0.0.1,port=2321`, `mssim:…`, `tabrmd:…`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use measure::eventlog::{AlgId, HashAlg};
use serde::Serialize;
use tss_esapi::abstraction::pcr;
use tss_esapi::constants::CapabilityType;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::CapabilityData;
use tss_esapi::structures::{PcrSelectionList, PcrSlot};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::Context;

use crate::cmd::eventlog::emit;
use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the PCR banks of a TPM.
    Read(ReadArgs),
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// How to reach the TPM, in TSS2 TCTI syntax: device:/dev/tpmrm0,
    /// swtpm:host=HOST,port=PORT, mssim:host=HOST,port=PORT, tabrmd:bus_name=NAME.
    #[arg(long, default_value = "device:/dev/tpmrm0")]
    tcti: String,
    /// Read only this bank (sha1, sha256, sha384, sha512); repeatable. Default: every allocated
    /// bank.
    #[arg(long = "bank", value_name = "ALG")]
    banks: Vec<HashAlg>,
    /// Print JSON: {"banks": {"sha256": {"0": "hex", …}, …}}.
    #[arg(long)]
    json: bool,
}

/// `--json` output: the same `banks` shape as `nodeimg eventlog replay --json`.
#[derive(Serialize)]
struct PcrsJson {
    tcti: String,
    banks: BTreeMap<String, BTreeMap<u32, String>>,
}

pub fn run(cmd: Command, global: Global) -> Result<Outcome> {
    quiet_tss(global);
    match cmd {
        Command::Read(a) => read(&a),
    }
}

/// The TSS libraries log their own errors to stderr; ours say the same with context. Keep
/// theirs for --verbose (TSS2_LOG is tpm2-tss's switch; set before any library call, while
/// nodeimg is single-threaded).
pub(crate) fn quiet_tss(global: Global) {
    if !global.verbose && std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+NONE");
    }
}

fn to_tss(alg: HashAlg) -> HashingAlgorithm {
    match alg {
        HashAlg::Sha1 => HashingAlgorithm::Sha1,
        HashAlg::Sha256 => HashingAlgorithm::Sha256,
        HashAlg::Sha384 => HashingAlgorithm::Sha384,
        HashAlg::Sha512 => HashingAlgorithm::Sha512,
    }
}

/// The bank's name as in the rest of nodeimg's output.
fn bank_name(alg: HashingAlgorithm) -> String {
    let id = match alg {
        HashingAlgorithm::Sha1 => AlgId::SHA1,
        HashingAlgorithm::Sha256 => AlgId::SHA256,
        HashingAlgorithm::Sha384 => AlgId::SHA384,
        HashingAlgorithm::Sha512 => AlgId::SHA512,
        HashingAlgorithm::Sm3_256 => AlgId::SM3_256,
        HashingAlgorithm::Sha3_256 => AlgId::SHA3_256,
        HashingAlgorithm::Sha3_384 => AlgId::SHA3_384,
        HashingAlgorithm::Sha3_512 => AlgId::SHA3_512,
        HashingAlgorithm::Null => return "null".into(),
    };
    id.to_string()
}

/// A PCR slot's number (tss-esapi represents slots as bit masks).
fn slot_index(slot: PcrSlot) -> u32 {
    u32::from(slot).trailing_zeros()
}

fn read(a: &ReadArgs) -> Result<Outcome> {
    let banks = read_banks(&a.tcti, &a.banks)?;
    let mut out = String::new();
    if a.json {
        out = serde_json::to_string_pretty(&PcrsJson { tcti: a.tcti.clone(), banks })? + "\n";
    } else {
        for (bank, values) in &banks {
            for (index, value) in values {
                writeln!(out, "{bank:<6} PCR {index:<3} {value}")?;
            }
        }
    }
    emit(&out)?;
    Ok(Outcome::Ok)
}

/// Every PCR of every allocated bank (or of the banks in `only`) of the TPM at `tcti_name`, by
/// bank name, then index, as lowercase hex.
pub(crate) fn read_banks(tcti_name: &str, only: &[HashAlg]) -> Result<BTreeMap<String, BTreeMap<u32, String>>> {
    let tcti = TctiNameConf::from_str(tcti_name).map_err(|e| {
        anyhow::anyhow!(
            "--tcti {:?}: {e} (expected device:PATH, swtpm:host=H,port=P, mssim:host=H,port=P or \
             tabrmd:…)",
            tcti_name
        )
    })?;
    if let Some(conf) = tcti_name.strip_prefix("device") {
        // tss-esapi's default device when none is named.
        let path = conf.strip_prefix(':').filter(|p| !p.is_empty()).unwrap_or("/dev/tpm0");
        if !std::path::Path::new(path).exists() {
            bail!("no TPM at {path}: the device does not exist (--tcti names another TPM)");
        }
    }
    let mut ctx = Context::new(tcti).map_err(|e| {
        anyhow::anyhow!(
            "connecting to the TPM at {}: the TSS could not reach it ({e}); --verbose shows its log",
            tcti_name
        )
    })?;
    let (cap, _) = ctx
        .get_capability(CapabilityType::AssignedPcr, 0, 1)
        .context("asking the TPM which PCR banks are allocated")?;
    let CapabilityData::AssignedPcr(allocated) = cap else {
        bail!("the TPM answered TPM2_GetCapability(PCRS) with another capability");
    };
    let mut builder = PcrSelectionList::builder();
    let mut wanted = 0;
    for sel in allocated.get_selections() {
        let alg = sel.hashing_algorithm();
        let slots = sel.selected();
        if slots.is_empty() || (!only.is_empty() && !only.iter().any(|b| to_tss(*b) == alg)) {
            continue;
        }
        builder = builder.with_selection(alg, &slots);
        wanted += 1;
    }
    for b in only {
        let allocated_here =
            allocated.get_selections().iter().any(|s| s.hashing_algorithm() == to_tss(*b) && !s.selected().is_empty());
        if !allocated_here {
            bail!("the TPM at {} has no {b} bank allocated", tcti_name);
        }
    }
    if wanted == 0 {
        bail!("the TPM at {} has no PCR bank allocated", tcti_name);
    }
    let selection = builder.build().context("building the PCR selection")?;
    let data = pcr::read_all(&mut ctx, selection).context("reading PCRs (TPM2_PCR_Read)")?;
    let mut banks: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
    for (alg, bank) in data {
        let values = banks.entry(bank_name(alg)).or_default();
        for (slot, digest) in &bank {
            values.insert(slot_index(*slot), hex::encode(digest.value()));
        }
    }
    Ok(banks)
}
