//! Running external programs: the one place in nodeimg that does.
//!
//! Every process goes through [`CommandRunExt`]. A failure becomes a [`CommandError`] that names
//! the full command line and carries the tail of what the program said, so "mkosi failed" always
//! comes with mkosi's own last words.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How much of a failed program's output an error keeps.
pub const TAIL_BYTES: usize = 4096;

/// Set (by the CLI's Ctrl-C handler) when the user interrupted the build. Programs get the
/// signal from the terminal themselves; this only tells [`CommandRunExt::run_lines`] to report an
/// interruption rather than a failure once the program has exited.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// A program that could not be started, failed, or was interrupted.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run `{argv}`: {error}")]
    Spawn { argv: String, error: io::Error },
    #[error("`{argv}` failed ({status}); its last output:\n{tail}")]
    Failed { argv: String, status: String, tail: String },
    #[error("interrupted while running `{argv}`")]
    Interrupted { argv: String },
    #[error("reading the output of `{argv}`: {error}")]
    Io { argv: String, error: io::Error },
}

impl CommandError {
    /// The output tail of a failed program ("" for the other variants).
    pub fn tail(&self) -> &str {
        match self {
            Self::Failed { tail, .. } => tail,
            _ => "",
        }
    }
}

/// The command line as a shell would show it (arguments with spaces quoted).
pub fn argv_string(cmd: &Command) -> String {
    argv(cmd).join(" ")
}

/// Program and arguments, each quoted for display when it needs it.
pub fn argv(cmd: &Command) -> Vec<String> {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(quote).collect()
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The last [`TAIL_BYTES`] of a stream, cut at a line boundary where possible.
#[derive(Debug, Default)]
struct Tail {
    buf: VecDeque<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        let excess = self.buf.len().saturating_sub(TAIL_BYTES);
        self.buf.drain(..excess);
    }

    fn text(&self) -> String {
        let bytes: Vec<u8> = self.buf.iter().copied().collect();
        let start =
            if bytes.len() >= TAIL_BYTES { bytes.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1) } else { 0 };
        String::from_utf8_lossy(&bytes[start..]).trim_end().to_owned()
    }
}

impl fmt::Display for Tail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

fn status_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// The longest piece of a line [`CommandRunExt::run_lines`] hands on (longer lines are split).
pub const MAX_LINE: u64 = 64 << 10;

/// Running a [`Command`] with errors that say what ran and what it printed.
pub trait CommandRunExt {
    /// Runs to completion and returns stdout; stderr is kept for the error only.
    fn run_capture(&mut self) -> Result<Vec<u8>, CommandError> {
        self.run_capture_accepting(&[])
    }

    /// [`run_capture`](Self::run_capture) for a program whose exit codes `ok` (besides 0) are
    /// answers, not failures (diffoscope and cmp exit 1 when the inputs differ).
    fn run_capture_accepting(&mut self, ok: &[i32]) -> Result<Vec<u8>, CommandError>;

    /// Runs to completion, handing each line of stdout and stderr (merged, in arrival order) to
    /// `on_line` as it comes.
    fn run_lines(&mut self, on_line: &mut dyn FnMut(&str)) -> Result<(), CommandError>;
}

impl CommandRunExt for Command {
    fn run_capture_accepting(&mut self, ok: &[i32]) -> Result<Vec<u8>, CommandError> {
        let argv = argv_string(self);
        let out = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|error| CommandError::Spawn { argv: argv.clone(), error })?;
        if out.status.success() || out.status.code().is_some_and(|c| ok.contains(&c)) {
            return Ok(out.stdout);
        }
        let mut tail = Tail::default();
        tail.push(&out.stderr);
        if tail.buf.is_empty() {
            tail.push(&out.stdout);
        }
        Err(CommandError::Failed { argv, status: status_text(out.status), tail: tail.text() })
    }

    fn run_lines(&mut self, on_line: &mut dyn FnMut(&str)) -> Result<(), CommandError> {
        let argv = argv_string(self);
        let mut child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| CommandError::Spawn { argv: argv.clone(), error })?;
        let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>();
        let readers: Vec<_> = [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|stream| {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = Vec::new();
                    // A line longer than MAX_LINE comes in pieces: a program printing gigabytes
                    // without a newline must not be buffered whole.
                    match (&mut r).take(MAX_LINE).read_until(b'\n', &mut line) {
                        Ok(0) => break,
                        Ok(_) => {
                            if tx.send(Ok(line)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    }
                }
            })
        })
        .collect();
        drop(tx);
        let mut tail = Tail::default();
        let mut read_error = None;
        let mut signalled = false;
        let mut exited_quiet = 0;
        loop {
            // A Ctrl-C at the terminal reaches the child too; a SIGINT sent to nodeimg alone does
            // not, so pass it on once.
            if !signalled && INTERRUPTED.load(Ordering::SeqCst) {
                signalled = true;
                interrupt(child.id());
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Ok(line)) => {
                    exited_quiet = 0;
                    tail.push(&line);
                    let text = String::from_utf8_lossy(&line);
                    on_line(text.trim_end_matches(['\n', '\r']));
                }
                Ok(Err(e)) => read_error = Some(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // The program has exited but something it started still holds the pipes
                    // open: stop reading after 10 s without a line (long enough that readers
                    // starved on a loaded machine still deliver everything).
                    if let Ok(Some(_)) = child.try_wait() {
                        exited_quiet += 1;
                        if exited_quiet >= 50 {
                            break;
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Reader threads still blocked on a pipe held by a grandchild end with the process.
        drop(readers);
        let status = child.wait().map_err(|error| CommandError::Io { argv: argv.clone(), error })?;
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err(CommandError::Interrupted { argv });
        }
        if let Some(error) = read_error {
            return Err(CommandError::Io { argv, error });
        }
        if !status.success() {
            return Err(CommandError::Failed { argv, status: status_text(status), tail: tail.text() });
        }
        Ok(())
    }
}

/// Sends SIGINT to the process `pid` (a child of ours, still running or a zombie we have not
/// reaped, so the pid cannot have been reused).
#[allow(unsafe_code)]
fn interrupt(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_argv_and_keeps_the_tail() {
        let err = Command::new("sh").args(["-c", "echo out; echo 'it broke' >&2; exit 3"]).run_capture().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`sh -c 'echo out; echo '\\''it broke'\\'' >&2; exit 3'`"), "{msg}");
        assert!(msg.contains("exit status 3"), "{msg}");
        assert_eq!(err.tail(), "it broke");
    }

    #[test]
    fn accepted_exit_codes_are_answers() {
        let out = Command::new("sh").args(["-c", "echo differs; exit 1"]).run_capture_accepting(&[1]).unwrap();
        assert_eq!(out, b"differs\n");
        let err = Command::new("sh").args(["-c", "exit 2"]).run_capture_accepting(&[1]).unwrap_err();
        assert!(err.to_string().contains("exit status 2"), "{err}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = Command::new("/nonexistent/nodeimg-test").run_capture().unwrap_err();
        assert!(matches!(err, CommandError::Spawn { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/nodeimg-test"), "{err}");
    }

    #[test]
    fn a_line_without_end_arrives_in_bounded_pieces() {
        let mut pieces = Vec::new();
        let script = "head -c 200000 /dev/zero | tr '\\0' x; echo; echo after";
        Command::new("sh").args(["-c", script]).run_lines(&mut |l| pieces.push(l.len())).unwrap();
        assert_eq!(pieces.len(), 5, "{pieces:?}"); // 3 of 64 KiB, the rest of the line, "after"
        assert!(pieces.iter().all(|&n| n as u64 <= MAX_LINE), "{pieces:?}");
        assert_eq!(pieces[..4].iter().sum::<usize>(), 200000);
        assert_eq!(pieces[4], "after".len());
    }

    #[test]
    fn lines_arrive_from_both_streams_and_the_tail_is_bounded() {
        let mut lines = Vec::new();
        let script = "echo a; echo b >&2; i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done; exit 1";
        let err = Command::new("sh").args(["-c", script]).run_lines(&mut |l| lines.push(l.to_owned())).unwrap_err();
        assert_eq!(lines.len(), 2002);
        assert!(lines.contains(&"b".to_owned()));
        let tail = err.tail();
        assert!(tail.len() <= TAIL_BYTES, "{}", tail.len());
        // The two streams are read by two threads: stderr's "b" may arrive after stdout's lines.
        assert!(tail.lines().any(|l| l == "line1999"), "{tail}");
        assert!(tail.ends_with("line1999") || tail.ends_with('b'), "{tail}");
        assert!(tail.starts_with("line") || tail.starts_with('b'), "tail starts at a line boundary: {tail:.20}");
    }
}
