//! Helpers for tests that run the real `nodeimg` binary and oracle tools.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub mod swtpm;

/// The result of one run, printed in full when an assertion fails.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `nodeimg ARGS…` in `dir`.
pub fn nodeimg(dir: &Path, args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_nodeimg")).args(args).current_dir(dir).output().expect("running nodeimg").into()
}

/// Runs an oracle tool installed by `make setup`; fails the test loudly when it is missing.
pub fn tool(dir: &Path, program: &str, args: &[&str]) -> Run {
    match Command::new(program).args(args).current_dir(dir).output() {
        Ok(o) => o.into(),
        Err(e) => panic!("cannot run the oracle `{program}` ({e}): run `make setup`"),
    }
}

/// Asserts exit code `code` and that stderr (or stdout) mentions every word in `words`.
#[track_caller]
pub fn assert_fails(run: &Run, code: i32, words: &[&str]) {
    assert_eq!(run.code, code, "{run:?}");
    let text = format!("{}{}", run.stderr, run.stdout);
    for w in words {
        assert!(text.contains(w), "expected {w:?} in the output:\n{run:?}");
    }
}

/// `n` bytes from /dev/urandom.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut buf).unwrap();
    buf
}

/// Flips the low bit of the byte at `offset` in the file at `path`.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 1;
    std::fs::write(path, bytes).unwrap();
}
