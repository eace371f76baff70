//! One module per subcommand group; each exposes a clap `Command` and a `run`.

pub mod attest;
pub mod build;
pub mod eventlog;
pub mod init;
pub mod lock;
pub mod measure;
pub mod measure_boot;
pub mod pcrs;
pub mod rebuild;
pub mod release;
pub mod repro;
pub mod setup;
pub mod sign;
pub mod steps;
pub mod uki;
pub mod verity;
