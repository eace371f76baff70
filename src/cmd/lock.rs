//! `nodeimg lock`: refresh `mkosi-profiles/packages.lock` from what the archive serves today.

use anyhow::Result;
use builder::Lock;
use clap::Args;
use serde::Serialize;

use crate::cmd::build::{check_or_error, install_interrupt_handler, Locations, Progress, SourceArgs};
use crate::fsutil::write_atomic;
use crate::{Global, Outcome};

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub loc: Locations,
    /// Where to resolve from: `--snapshot latest|STAMP` pins the lock to a snapshot of the
    /// archive (written as its `snapshot` line); `--mirror URL` the live archive there.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Do not write the lock: exit 1 if it is out of date.
    #[arg(long)]
    pub check: bool,
    /// Print the changes as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    lock: String,
    packages: usize,
    written: bool,
    changes: &'a [builder::Change],
    /// How the requested package list (`request` lines) changed: `+ image curl`, `- image foo`.
    request_changes: &'a [String],
    /// Pins of the lock as it was that the source no longer serves.
    dropped: Vec<Dropped>,
}

#[derive(Serialize)]
struct Dropped {
    scope: builder::Scope,
    name: String,
    version: String,
}

pub fn run(args: LockArgs, global: Global) -> Result<Outcome> {
    let profiles = args.loc.profiles()?;
    let profiles_dir = profiles.dir.clone();
    let path = profiles.lock_path();
    let text = match path.exists() {
        true => Ok(crate::fsutil::read_input_text(&path, crate::fsutil::limits::BUNDLE, "a package lock")?),
        false => Err(()),
    };
    let old = match text {
        Ok(text) => match Lock::parse(&text, &path) {
            Ok(l) => l,
            // A version-1 lock (no sha256, no tools tree) is rewritten whole.
            Err(e) if e.to_string().contains("a version-1 line") && !args.check => {
                eprintln!("{}: a version-1 lock; writing a version-2 lock in its place", path.display());
                Lock::default()
            }
            Err(e) => return Err(e.into()),
        },
        Err(()) => Lock::default(),
    };
    if !args.check {
        // Before minutes of resolving: the lock is written into the profile directory.
        builder::preflight::check_writable_dir(profiles.lock_dir(), "the profile directory")?;
    }
    install_interrupt_handler();
    let mut progress = Progress::new(global);
    let choice = args.source.choice(true)?;
    // `lock` resolves afresh: the lock's own snapshot only when asked to keep it.
    let source = choice.resolve(None).map_err(anyhow::Error::msg)?;
    let result = builder::build::resolve_packages(
        &profiles_dir,
        &args.loc.cache_dir(),
        &args.loc.mkosi()?,
        &source,
        args.source.keyring.as_deref(),
        &mut |e| progress.event(e),
    );
    progress.finish();
    let resolution = match result {
        Ok(r) => r,
        Err(e) => return check_or_error(e),
    };
    let dropped = resolution.dropped(&old);
    let new = resolution.lock;
    let changes = old.diff(&new);
    let requests = request_changes(&old, &new);
    let write = !args.check && (!changes.is_empty() || !path.exists() || old != new);
    if write {
        write_atomic(&path, new.to_text().as_bytes())?;
    }
    if args.json {
        let r = Report {
            lock: path.display().to_string(),
            packages: new.all().count(),
            written: write,
            changes: &changes,
            request_changes: &requests,
            dropped: dropped
                .iter()
                .map(|(scope, name, version)| Dropped { scope: *scope, name: name.clone(), version: version.clone() })
                .collect(),
        };
        outln!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for c in &requests {
            outln!("request {c}");
        }
        for c in &changes {
            outln!("{c}");
        }
        for (scope, name, version) in &dropped {
            outln!("dropped: {scope} {name} {version} is no longer in {}", source.describe());
        }
        if !dropped.is_empty() {
            eprintln!(
                "{} pinned versions are gone from {}: builds from it fail until the lock moves on; \
                 a snapshot (--snapshot) or a release's package archive (--packages) still has them",
                dropped.len(),
                source.describe()
            );
        }
        let verb = if write { "wrote" } else { "checked" };
        eprintln!("{verb} {}: {} packages, {} changed", path.display(), new.all().count(), changes.len());
    }
    // An out-of-date request list fails `--check` too: `build` refuses such a lock. A lock that
    // records none (version 2) is only out of date in format.
    let stale = !changes.is_empty() || (old.requested.is_some() && !requests.is_empty());
    Ok(if args.check && stale { Outcome::Mismatch } else { Outcome::Ok })
}

/// The requested names `new` has and `old` had not (`+ SCOPE NAME`), and the reverse (`-`);
/// nothing when `old` records no request list.
fn request_changes(old: &Lock, new: &Lock) -> Vec<String> {
    let (Some(o), Some(n)) = (&old.requested, &new.requested) else { return Vec::new() };
    let mut out = Vec::new();
    for scope in builder::Scope::ALL {
        let (o, n) = (o.get(&scope).cloned().unwrap_or_default(), n.get(&scope).cloned().unwrap_or_default());
        out.extend(n.difference(&o).map(|name| format!("+ {scope} {name}")));
        out.extend(o.difference(&n).map(|name| format!("- {scope} {name}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_list_changes() {
        let sha = "a".repeat(64);
        let parse = |t: &str| Lock::parse(&format!("{t}image bash 5 amd64 {sha}\n"), "l".as_ref()).unwrap();
        let old = parse("request image systemd udev\nrequest tools mtools\n");
        let new = parse("request image curl systemd\nrequest tools mtools\n");
        assert_eq!(request_changes(&old, &new), ["+ image curl", "- image udev"]);
        assert!(request_changes(&old, &old).is_empty());
        // A version-2 lock records no list: nothing to compare.
        assert!(request_changes(&parse(""), &new).is_empty());
    }
}
