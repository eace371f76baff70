//! `nodeimg eventlog show|replay|diff`: measured-boot event logs (TPM and TDX CCEL).
//!
//! `show` prints every event with its digests and decoded data; `replay` the register values the
//! log accounts for (what the TPM should report); `diff` compares an expected log (say, the
//! boot-chain model's prediction) with an actual one and says, per register, where they part and
//! what that means. Parsing lives in `::eventlog`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ::eventlog::{self, EventLog, LogFormat, RegisterDiff};
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Print every event of a log: register, type, digests, decoded data.
    Show(LogArgs),
    /// Replay a log: the PCR (or, for a CCEL, RTMR) values it accounts for.
    Replay(LogArgs),
    /// Compare two logs register by register; exit 1 and explain the first difference in each
    /// register that differs.
    Diff(DiffArgs),
}

/// The log formats `--format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// From the header: crypto-agile with index 0 = TPM, index 1 = TDX CCEL; else SHA-1.
    Auto,
    /// TPM 2.0 crypto-agile (TCG PC Client, `binary_bios_measurements`).
    Tcg,
    /// TPM 1.2-style SHA-1 log.
    TcgSha1,
    /// TDX Confidential Computing event log (RTMRs).
    Ccel,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The binary event log (e.g. /sys/kernel/security/tpm0/binary_bios_measurements, or the
    /// CCEL from /sys/firmware/acpi/tables/data/CCEL).
    file: PathBuf,
    /// The log's format.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The log you expect (a prediction, or a known-good boot).
    expected: PathBuf,
    /// The log to check.
    actual: PathBuf,
    /// The logs' format.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command, _global: Global) -> Result<Outcome> {
    match cmd {
        Command::Show(a) => show(&a),
        Command::Replay(a) => replay(&a),
        Command::Diff(a) => diff(&a),
    }
}

pub(crate) fn load(path: &Path, format: FormatArg) -> Result<EventLog> {
    let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::EVENTLOG, "an event log")?;
    let log = match format {
        FormatArg::Auto => eventlog::parse(&bytes),
        FormatArg::Tcg => eventlog::parse_as(&bytes, LogFormat::TcgCryptoAgile),
        FormatArg::TcgSha1 => eventlog::parse_as(&bytes, LogFormat::TcgSha1),
        FormatArg::Ccel => eventlog::parse_as(&bytes, LogFormat::Ccel),
    };
    log.with_context(|| format!("{}", path.display()))
}

/// `show --json`: the log, with each event's register and decoded data.
#[derive(Serialize)]
struct ShowJson<'a> {
    file: String,
    format: LogFormat,
    spec_id: Option<&'a eventlog::SpecIdEvent>,
    events: Vec<ShowEvent<'a>>,
    trailing_padding: u64,
}

#[derive(Serialize)]
struct ShowEvent<'a> {
    number: usize,
    offset: u64,
    register: String,
    index: u32,
    event_type: eventlog::EventType,
    extended: bool,
    digests: &'a [eventlog::Digest],
    #[serde(serialize_with = "hex::serde::serialize")]
    data: &'a [u8],
    decoded: eventlog::EventData,
}

fn show(a: &LogArgs) -> Result<Outcome> {
    let log = load(&a.file, a.format)?;
    if a.json {
        let events = log
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| ShowEvent {
                number: log.number(i),
                offset: log.offsets.get(i).copied().unwrap_or(0),
                register: log.register(e).to_string(),
                index: e.pcr,
                event_type: e.event_type,
                extended: e.is_extended(),
                digests: &e.digests,
                data: &e.data,
                decoded: e.decode(),
            })
            .collect();
        let out = ShowJson {
            file: a.file.display().to_string(),
            format: log.format,
            spec_id: log.spec_id.as_ref(),
            events,
            trailing_padding: log.trailing_padding,
        };
        emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
        return Ok(Outcome::Ok);
    }
    let mut out = String::new();
    let banks: Vec<String> = log.algorithms().iter().map(ToString::to_string).collect();
    writeln!(
        out,
        "{}: {}, {} events, banks {}",
        a.file.display(),
        log.format,
        log.events.len() + usize::from(log.spec_id.is_some()),
        banks.join(", ")
    )?;
    if let Some(spec) = &log.spec_id {
        writeln!(
            out,
            "#0    {:#07x}  {:<7} EV_NO_ACTION  Spec ID Event03: platform class {}, spec {}.{} errata {}, uintn size {}",
            0,
            log.format.register(log.header.as_ref().map_or(0, |h| h.pcr)).to_string(),
            spec.platform_class,
            spec.spec_version_major,
            spec.spec_version_minor,
            spec.spec_errata,
            spec.uintn_size
        )?;
    }
    for (i, e) in log.events.iter().enumerate() {
        writeln!(
            out,
            "#{:<4} {:#07x}  {:<7} {}{}",
            log.number(i),
            log.offsets.get(i).copied().unwrap_or(0),
            log.register(e).to_string(),
            e.event_type,
            if e.is_extended() { "" } else { " (not extended)" }
        )?;
        writeln!(out, "      {}", crate::text::clean(&e.decode().to_string()))?;
        for d in &e.digests {
            writeln!(out, "      {:<6} {}", d.alg.to_string(), hex::encode(&d.bytes))?;
        }
    }
    if log.trailing_padding > 0 {
        writeln!(out, "({} bytes of padding after the last event)", log.trailing_padding)?;
    }
    emit(&out)?;
    Ok(Outcome::Ok)
}

fn replay(a: &LogArgs) -> Result<Outcome> {
    let log = load(&a.file, a.format)?;
    let r = eventlog::replay(&log).with_context(|| format!("replaying {}", a.file.display()))?;
    if a.json {
        emit(&(serde_json::to_string_pretty(&r)? + "\n"))?;
        return Ok(Outcome::Ok);
    }
    let mut out = String::new();
    for (alg, regs) in &r.banks {
        for (index, value) in regs {
            let register = match log.format {
                LogFormat::Ccel => format!("RTMR{index}"),
                _ => format!("PCR {index}"),
            };
            writeln!(out, "{:<6} {:<7} {}", alg.name(), register, hex::encode(value))?;
        }
    }
    emit(&out)?;
    for alg in &r.unsupported {
        eprintln!("note: the log's {alg} bank is not replayed (algorithm not supported)");
    }
    Ok(Outcome::Ok)
}

fn diff(a: &DiffArgs) -> Result<Outcome> {
    let expected = load(&a.expected, a.format)?;
    let actual = load(&a.actual, a.format)?;
    let d = eventlog::diff(&expected, &actual)
        .with_context(|| format!("comparing {} with {}", a.expected.display(), a.actual.display()))?;
    let mut out = String::new();
    if a.json {
        out = serde_json::to_string_pretty(&d)? + "\n";
    } else if d.is_empty() {
        let banks: Vec<String> = d.algorithms.iter().map(ToString::to_string).collect();
        writeln!(out, "the logs extend the same events ({})", banks.join(", "))?;
    } else {
        for r in &d.registers {
            register_diff(&mut out, r)?;
        }
        writeln!(
            out,
            "{} register(s) differ: {}",
            d.registers.len(),
            d.registers.iter().map(|r| r.register.to_string()).collect::<Vec<_>>().join(", ")
        )?;
    }
    emit(&out)?;
    Ok(if d.is_empty() { Outcome::Ok } else { Outcome::Mismatch })
}

pub(crate) fn register_diff(out: &mut String, r: &RegisterDiff) -> std::fmt::Result {
    writeln!(
        out,
        "{}: event {} of {} expected / {} actual differs: {}",
        r.register,
        r.position + 1,
        r.expected_events,
        r.actual_events,
        crate::text::clean(&r.meaning)
    )?;
    for (label, e) in [("expected", &r.expected), ("actual", &r.actual)] {
        match e {
            Some(e) => {
                writeln!(
                    out,
                    "  {label:<8} #{} at {:#x}: {} {}",
                    e.number,
                    e.offset,
                    e.event_type,
                    crate::text::clean(&e.data.to_string())
                )?;
                for d in &e.digests {
                    writeln!(out, "  {:<8}   {:<6} {}", "", d.alg.to_string(), hex::encode(&d.bytes))?;
                }
            }
            None => writeln!(out, "  {label:<8} (no more events)")?,
        }
    }
    Ok(())
}

/// Writes `text` to stdout; a closed pipe (`| head`) ends the output quietly.
pub(crate) fn emit(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}
