//! Running a program from mkosi's tools tree rather than from the host.
//!
//! mkosi builds a Debian trixie tools tree (`ToolsTree=default`) and runs every build tool from
//! it, so the tool versions do not depend on the host. The few tools nodeimg runs itself after
//! mkosi (systemd-repart and mtools to rebuild an ESP around a derived UKI, `fsck.erofs` to extract a root file system
//! for `nodeimg repro`) come from the same tree, run with bubblewrap: the tree's `/usr` and `/etc`
//! (read-only), fresh `/proc`, `/dev` and `/tmp`, and the directories the tool works on bound at
//! their own paths.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The tools tree mkosi built (`<mkosi output directory>/tools`).
#[derive(Debug, Clone)]
pub struct ToolsTree {
    root: PathBuf,
    source_date_epoch: Option<u64>,
}

impl ToolsTree {
    /// The tools tree at `root`; fails if it does not look like one.
    pub fn open(root: &Path) -> Result<Self, Error> {
        if !root.join("usr/bin").is_dir() {
            return Err(Error::Profile(format!(
                "{}: no mkosi tools tree here (run `nodeimg build` once to create it)",
                root.display()
            )));
        }
        Ok(Self { root: root.to_path_buf(), source_date_epoch: None })
    }

    /// Sets `SOURCE_DATE_EPOCH` for the programs run (mtools stamps directory entries with it).
    pub fn with_source_date_epoch(mut self, epoch: u64) -> Self {
        self.source_date_epoch = Some(epoch);
        self
    }

    /// The tree's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A command running `program` inside the tree, with each of `binds` bound read-write at its
    /// own path. Add arguments with [`Command::arg`].
    pub fn command(&self, program: &str, binds: &[&Path]) -> Command {
        let mut cmd = Command::new("bwrap");
        // The tree's /usr and /etc, read-only, on bwrap's own root (where the bind points can be
        // created); /bin, /lib… are the merged-/usr symlinks.
        cmd.arg("--ro-bind").arg(self.root.join("usr")).arg("/usr");
        cmd.arg("--ro-bind").arg(self.root.join("etc")).arg("/etc");
        for d in ["bin", "sbin", "lib", "lib64"] {
            cmd.args(["--symlink", &format!("usr/{d}"), &format!("/{d}")]);
        }
        cmd.args([
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/var/tmp",
            "--unshare-net",
            "--die-with-parent",
        ]);
        for b in binds {
            let b = std::path::absolute(b).unwrap_or_else(|_| b.to_path_buf());
            cmd.arg("--bind").arg(&b).arg(&b);
        }
        cmd.args(["--clearenv", "--setenv", "PATH", "/usr/bin:/usr/sbin", "--setenv", "LC_ALL", "C.UTF-8"]);
        if let Some(e) = self.source_date_epoch {
            cmd.args(["--setenv", "SOURCE_DATE_EPOCH", &e.to_string()]);
        }
        cmd.arg("--").arg(program);
        cmd
    }
}

/// The commit of the sources the image is built from, when there is one: `$NODEIMG_SOURCE_COMMIT`,
/// else the `HEAD` of the git checkout holding `dir`, else `None` (a directory that is not a git
/// checkout: the profile tree's content hash identifies the sources, see [`crate::tree`]). A
/// variable that is set but is not a commit id is an error, never a guess.
pub fn source_commit(dir: &Path) -> Result<Option<String>, Error> {
    use crate::run::CommandRunExt;
    let commit = match std::env::var("NODEIMG_SOURCE_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => {
            let mut cmd = Command::new("git");
            cmd.arg("-C").arg(dir).args(["rev-parse", "--verify", "-q", "HEAD"]);
            match cmd.run_capture() {
                Ok(out) => String::from_utf8_lossy(&out).trim().to_owned(),
                // Not a checkout, or no git: provenance has the tree hash.
                Err(_) => return Ok(None),
            }
        }
    };
    let hex = commit.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !(hex && (commit.len() == 40 || commit.len() == 64)) {
        return Err(Error::Profile(format!("source commit {commit:?} is not 40 or 64 lowercase hex digits")));
    }
    Ok(Some(commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Provenance needs no git: a profile directory outside a checkout has no commit, and that
    /// is not an error.
    #[test]
    fn no_git_checkout_no_commit() {
        let t = tempfile::tempdir().unwrap();
        let got = source_commit(t.path()).unwrap();
        match std::env::var("NODEIMG_SOURCE_COMMIT") {
            Ok(c) if !c.is_empty() => assert_eq!(got, Some(c)),
            _ => assert_eq!(got, None),
        }
    }
}
