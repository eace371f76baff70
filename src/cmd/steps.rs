//! Progress of steps measured in bytes: what `release` hears from the release crate (hashing,
//! compressing, archiving) and the stages of `rebuild`.
//!
//! On a terminal each step is a bar (bytes done of the total, rate, time left) that becomes a
//! `✓` line with its size and duration when the next one starts; when stderr is not a terminal (`make image` in CI, a log
//! file) each step is one plain line, written when it starts; with `--quiet` nothing. A
//! mkosi build has its own display ([`super::build::Progress`]).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{DecimalBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use release::Progress;

use crate::Global;

/// A step measured in bytes, running.
const RUNNING_BYTES: &str =
    "{spinner} {msg} {wide_bar} {decimal_bytes}/{decimal_total_bytes} ({decimal_bytes_per_sec}, {eta} left)";
/// A step without a size, running.
const RUNNING: &str = "{spinner} {msg} [{elapsed}]";

/// Renders [`Progress`] reports and stage headings on stderr.
#[derive(Debug)]
pub struct Steps {
    tty: bool,
    quiet: bool,
    /// On a terminal, the running step: its bar, what it does, its size.
    current: Option<(ProgressBar, String, u64)>,
}

impl Steps {
    pub fn new(global: Global) -> Self {
        Self { tty: std::io::stderr().is_terminal(), quiet: global.quiet, current: None }
    }

    /// A stage of a command (`== comparing …`), on its own line.
    pub fn stage(&mut self, what: &str) {
        self.finish();
        if !self.quiet {
            eprintln!("== {what}");
        }
    }

    /// What the release crate reports.
    pub fn event(&mut self, p: Progress<'_>) {
        if self.quiet {
            return;
        }
        match p {
            Progress::Step { what, bytes } if !self.tty => match bytes {
                0 => eprintln!("‣ {what}"),
                n => eprintln!("‣ {what} ({})", DecimalBytes(n)),
            },
            Progress::Step { what, bytes } => {
                self.finish();
                let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
                let template = if bytes > 0 { RUNNING_BYTES } else { RUNNING };
                bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
                bar.set_message(what.to_owned());
                bar.enable_steady_tick(Duration::from_millis(200));
                self.current = Some((bar, what.to_owned(), bytes));
            }
            Progress::Bytes(n) => {
                if let Some((bar, ..)) = &self.current {
                    bar.set_position(n);
                }
            }
        }
    }

    /// Ends the running step: its bar gives way to a `✓` line with its size and duration.
    pub fn finish(&mut self) {
        if let Some((bar, what, bytes)) = self.current.take() {
            let took = HumanDuration(bar.elapsed());
            match bytes {
                0 => bar.println(format!("✓ {what}")),
                n => bar.println(format!("✓ {what} ({} in {took})", DecimalBytes(n))),
            }
            bar.finish_and_clear();
        }
    }
}

impl Drop for Steps {
    /// On an error the step that failed goes without a `✓`; the error says why.
    fn drop(&mut self) {
        if let Some((bar, ..)) = self.current.take() {
            bar.finish_and_clear();
        }
    }
}
