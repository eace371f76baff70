//! `nodeimg` cuts reproducible, measured node images for confidential VMs.
//!
//! This crate is the command-line front end. It owns everything a user sees — argument parsing,
//! progress, exit codes, atomic file output — and composes the pure library crates
//! (`verity`, …) that do the actual work. Library crates never print and never exit.
//!
//! Exit codes are part of the interface and are the same for every subcommand:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | a verification or measurement did not match |
//! | 2 | usage or input error (bad flags, unreadable or malformed input, I/O failure) |

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `print!` to stdout that fails the command instead of panicking when stdout cannot be written
/// (a full disk, a closed file): it `?`s the error, so it is used in functions returning
/// `anyhow::Result`. A reader that went away (`| head`) ends the process by SIGPIPE as before.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cmd::eventlog::emit(&format!($($arg)*))?
    };
}

/// [`out!`] with a newline.
macro_rules! outln {
    () => {
        $crate::cmd::eventlog::emit("\n")?
    };
    ($($arg:tt)*) => {
        $crate::cmd::eventlog::emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}

mod cmd;
pub mod fsutil;
pub mod text;
mod tpm;

/// Reproducible, measured node images for confidential VMs.
#[derive(Debug, Parser)]
#[command(name = "nodeimg", version, about, max_term_width = 100)]
struct Cli {
    /// Echo every external command and show debug detail.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand enum is `defer`red: clap then builds only the arguments of the command that
/// runs, not those of all of them (measured: parsing `measure tdx` took 0.7 ms with the whole
/// tree built, 0.25 ms deferred, of a 12 ms run). The tests below build the whole tree.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
enum Command {
    /// dm-verity hash trees, byte-identical to `veritysetup`.
    #[command(subcommand)]
    Verity(cmd::verity::Command),
    /// Predicted measurements: vTPM PCRs of a UKI boot, SEV-SNP MEASUREMENT, TDX MRTD and RTMRs.
    #[command(subcommand)]
    Measure(cmd::measure::Command),
    /// Unified Kernel Images: inspect, Authenticode digests, and assembly that matches ukify.
    #[command(subcommand)]
    Uki(cmd::uki::Command),
    /// Measured-boot event logs (TPM and TDX CCEL): show, replay, diff.
    #[command(subcommand)]
    Eventlog(cmd::eventlog::Command),
    /// TPM PCR banks: read them from a TPM device or swtpm with nodeimg's own TPM2_PCR_Read.
    #[command(subcommand)]
    Pcrs(cmd::pcrs::Command),
    /// Create an image project: your image on nodeimg's built-in base (image/, platforms/,
    /// packages.lock, a README), to build with `nodeimg lock`, `build`, `release` inside it.
    Init(cmd::init::InitArgs),
    /// Fetch the pinned tools (mkosi, Debian's OVMF builds) into the tools cache, checked by sha256.
    Setup(cmd::setup::SetupArgs),
    /// Build the node image with mkosi: one root, a checked UKI and disk image per platform.
    Build(cmd::build::BuildArgs),
    /// Refresh the package lock (the project's or mkosi-profiles/packages.lock) and show what
    /// changed.
    Lock(cmd::lock::LockArgs),
    /// Compare two build outputs artefact by artefact (exit 1 when they differ).
    Repro(cmd::repro::ReproArgs),
    /// Rebuild a signed release from its recorded inputs (profiles, locked packages) and check
    /// that every artefact and reference value is the signed one (exit 1 listing what differs).
    Rebuild(cmd::rebuild::RebuildArgs),
    #[command(flatten)]
    Sign(cmd::sign::Command),
    #[command(flatten)]
    Release(cmd::release::Command),
    /// Check a node's evidence (event log, PCRs, SEV-SNP report, TDX quote) against a signed
    /// bundle.
    #[command(subcommand)]
    Attest(cmd::attest::Command),
}

/// What a subcommand reports when it ran to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything held.
    Ok,
    /// A verification or measurement did not match (exit 1). The subcommand has already said why.
    Mismatch,
}

/// Global options every subcommand may consult.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    pub verbose: bool,
    pub quiet: bool,
}

/// Parses the command line, runs the subcommand, and maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with exit 0 and usage errors with exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let global = Global { verbose: cli.verbose, quiet: cli.quiet };
    let result = match cli.command {
        Command::Verity(c) => cmd::verity::run(c, global),
        Command::Uki(c) => cmd::uki::run(c, global),
        Command::Eventlog(c) => cmd::eventlog::run(c, global),
        Command::Pcrs(c) => cmd::pcrs::run(c, global),
        Command::Measure(c) => cmd::measure::run(c, global),
        Command::Init(a) => cmd::init::run(a, global),
        Command::Setup(a) => cmd::setup::run(a, global),
        Command::Build(a) => cmd::build::run(a, global),
        Command::Lock(a) => cmd::lock::run(a, global),
        Command::Repro(a) => cmd::repro::run(a, global),
        Command::Rebuild(a) => cmd::rebuild::run(a, global),
        Command::Sign(c) => cmd::sign::run(c, global),
        Command::Release(c) => cmd::release::run(c, global),
        Command::Attest(c) => cmd::attest::run(c, global),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Mismatch) => ExitCode::from(1),
        Err(e) => {
            let text = cmd::build::user_paths(&format!("{e:#}"));
            eprintln!("error: {}", text::clean_keep_lines(&text));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, CommandFactory};

    use super::*;

    /// clap's own consistency checks, over the whole (deferred) tree.
    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn abouts(c: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        for sub in c.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{path} {}", sub.get_name());
            let mut sub = sub.clone();
            sub.build();
            out.push((path.clone(), sub.get_about().map(|a| a.to_string()).unwrap_or_default()));
            abouts(&sub, &path, out);
        }
    }

    /// With the commands built lazily, a doc comment on a struct that commands flatten would
    /// become their `about` in place of their own: every command's help says what it does, in
    /// words no other command shares, and the flattened structs have none.
    #[test]
    fn every_command_has_its_own_about() {
        let mut all = Vec::new();
        let mut root = Cli::command();
        root.build();
        abouts(&root, "nodeimg", &mut all);
        assert!(all.len() > 30, "{all:?}");
        for (path, about) in &all {
            assert!(!about.is_empty(), "{path} has no about");
            let same: Vec<_> = all.iter().filter(|(_, a)| a == about).map(|(p, _)| p).collect();
            assert_eq!(same.len(), 1, "{same:?} share the about {about:?}");
        }
        let flattened = [
            cmd::measure_boot::BootOptions::augment_args(clap::Command::new("t")),
            cmd::build::Locations::augment_args(clap::Command::new("t")),
            cmd::build::SourceArgs::augment_args(clap::Command::new("t")),
            cmd::sign::PasswordArgs::augment_args(clap::Command::new("t")),
            cmd::verity::TreeArgs::augment_args(clap::Command::new("t")),
        ];
        for c in flattened {
            assert_eq!(c.get_about(), None, "a flattened struct has a doc comment: {:?}", c.get_about());
        }
    }
}
