//! One module per subcommand group; each exposes a clap `Command` and a `run`.

pub mod eventlog;
pub mod measure;
pub mod pcrs;
pub mod release;
pub mod sign;
pub mod uki;
pub mod verity;
