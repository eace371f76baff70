//! One module per subcommand group; each exposes a clap `Command` and a `run`.

pub mod verity;
