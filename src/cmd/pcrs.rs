//! `nodeimg pcrs read`: the PCR banks of a TPM, read with nodeimg's own TPM2_PCR_Read.
//!
//! Reads every allocated bank (or those named with `--bank`) and every PCR the TPM has
//! allocated in it, so the output compares directly with `nodeimg eventlog replay` and with the
//! boot-chain model's predictions. `--tcti` takes the TSS2 TCTI syntax for the two transports
//! nodeimg speaks (see [`crate::tpm`]): `device:/dev/tpmrm0` (the default) and
//! `swtpm:host=127.0.0.1,port=2321` or `swtpm:path=SOCKET`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ::eventlog::HashAlg;
use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::cmd::eventlog::emit;
use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Read the PCR banks of a TPM.
    Read(ReadArgs),
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// How to reach the TPM, in TSS2 TCTI syntax: device:PATH (a TPM character device),
    /// swtpm:host=HOST,port=PORT or swtpm:path=SOCKET (swtpm's command socket).
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

pub fn run(cmd: Command, _global: Global) -> Result<Outcome> {
    match cmd {
        Command::Read(a) => read(&a),
    }
}

fn read(a: &ReadArgs) -> Result<Outcome> {
    let banks = crate::tpm::read_banks(&a.tcti, &a.banks)?;
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
