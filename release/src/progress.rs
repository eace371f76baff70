//! What the long steps of a release are doing, told to the caller.
//!
//! Hashing a disk image of a few GiB, compressing it with zstd and archiving the release take
//! minutes; a user who sees nothing for minutes presses Ctrl-C. The crate never prints, so the
//! functions that take long ([`crate::input::BuildOutput::check_artefacts`],
//! [`crate::publish::write_release`]) tell a callback what they are doing, and the CLI renders
//! it (a bar on a terminal, one line per step otherwise, nothing with `--quiet`). A caller that
//! does not care passes `&mut |_| {}`.
//!
//! Watching changes nothing: the bytes pass through [`Counted`] on their way to the hash or the
//! encoder, untouched.

use std::io::{self, Read};

/// A report from a long step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A step begins: what it does (`hashing qemu/disk.raw`) and how many bytes it goes through
    /// (0 when it is not measured in bytes).
    Step { what: &'a str, bytes: u64 },
    /// This many bytes of the current step are done.
    Bytes(u64),
}

/// A reader that reports how many bytes went through it: at each MiB boundary and at the end,
/// not on every read (a bar needs no more, and a renderer is not free).
pub(crate) struct Counted<'a, R> {
    inner: R,
    done: u64,
    report: &'a mut dyn FnMut(u64),
}

impl<'a, R> Counted<'a, R> {
    pub(crate) fn new(inner: R, report: &'a mut dyn FnMut(u64)) -> Self {
        Self { inner, done: 0, report }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let before = self.done;
        self.done += n as u64;
        if n == 0 || before >> 20 != self.done >> 20 {
            (self.report)(self.done);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_mib_and_the_end_and_passes_the_bytes_untouched() {
        let data: Vec<u8> = (0..(5u32 << 19) + 7).map(|i| i as u8).collect();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        Counted::new(&data[..], &mut |n| seen.push(n)).read_to_end(&mut out).unwrap();
        assert!(out == data);
        let total = data.len() as u64;
        assert!(seen[0] >= 1 << 20 && seen[0] < 2 << 20, "{seen:?}");
        assert_eq!(seen.last(), Some(&total), "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(seen.len() <= 4, "not on every read: {seen:?}");
    }
}
