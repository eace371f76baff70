//! Running mkosi and reading what it says while it works.
//!
//! mkosi prints a line starting with `‣` for every step ("‣ Building tools image", "‣  Installing
//! Debian") and lets apt print its downloads ("Get:12 http://… amd64 systemd amd64 257.13-1
//! [3,010 kB]", then "Fetched 25.4 MB in 3s (8,123 kB/s)"). [`parse_line`] turns those into
//! [`Event`]s the CLI shows as progress; every other line only goes into the error tail.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{argv, CommandError, CommandRunExt};
use crate::Error;

/// Progress of a build, for the CLI to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An external command is about to run (the CLI echoes it under `-v`).
    Command(Vec<String>),
    /// A build phase nodeimg itself is in ("mkosi", "checking verity", "deriving gcp", …).
    Phase(String),
    /// mkosi started a step (the text after `‣`).
    Stage(String),
    /// apt started downloading a package of about `bytes` bytes.
    Download { package: String, bytes: u64 },
    /// apt finished a batch of downloads totalling `bytes`.
    Fetched { bytes: u64 },
    /// Any other output line of the running program.
    Output(String),
}

/// Classifies one line of mkosi's (or apt's) output.
pub fn parse_line(line: &str) -> Event {
    let plain = strip_ansi(line);
    let t = plain.trim();
    if let Some(stage) = t.strip_prefix('‣') {
        return Event::Stage(stage.trim().to_owned());
    }
    if t.starts_with("Get:") {
        // Get:N URL SUITE[/COMPONENT] ARCH PACKAGE ARCH VERSION [SIZE]
        let fields: Vec<&str> = t.split_whitespace().collect();
        // Index files ("Get:1 URL trixie InRelease [140 kB]") have fewer fields: not packages.
        if let (Some(size), true) = (t.rfind('[').map(|i| &t[i + 1..t.len() - 1]), fields.len() >= 9) {
            if let Some(bytes) = parse_size(size) {
                return Event::Download { package: fields[4].to_owned(), bytes };
            }
        }
    }
    if let Some(rest) = t.strip_prefix("Fetched ") {
        if let Some((size, _)) = rest.split_once(" in ") {
            if let Some(bytes) = parse_size(size) {
                return Event::Fetched { bytes };
            }
        }
    }
    Event::Output(plain)
}

/// apt's sizes: "512 B", "34.1 kB", "3,010 kB", "25.4 MB" (SI units, `,` as thousands separator).
fn parse_size(s: &str) -> Option<u64> {
    let (num, unit) = s.trim().split_once(' ')?;
    let n: f64 = num.replace(',', "").parse().ok()?;
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    Some((n * mult).round() as u64)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An exclusive hold on a cache directory, released when dropped (or when the process dies:
/// it is an `flock` on `nodeimg.lock` in the directory). Two mkosi runs sharing one package
/// cache, incremental image and tools tree overwrite each other's files mid-build; scripts that
/// run mkosi on a nodeimg cache themselves take the same lock with `flock(1)`.
#[derive(Debug)]
pub struct CacheLock {
    _file: std::fs::File,
}

impl CacheLock {
    /// Takes the lock on `dir` (created if missing), waiting for another build that holds it and
    /// saying so through `on_event`.
    pub fn acquire(dir: &Path, on_event: &mut dyn FnMut(Event)) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(crate::write_err(dir))?;
        let path = dir.join("nodeimg.lock");
        let file = std::fs::File::options().create(true).truncate(false).write(true).open(&path);
        let file = file.map_err(crate::write_err(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                on_event(Event::Phase(format!(
                    "waiting: another build is using the cache {} (its lock: {})",
                    dir.display(),
                    path.display()
                )));
                file.lock().map_err(crate::write_err(&path))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(crate::write_err(&path)(e)),
        }
        Ok(CacheLock { _file: file })
    }
}

/// Where mkosi keeps what survives between builds.
///
/// mkosi decides whether to reuse its cached image, initrd and tools tree from a key that holds
/// the package *list* but not the sandbox trees: not the apt sources, not the pins (mkosi 25.3,
/// `cache_manifest`). A run that resolved packages without pins would leave an image cache that a
/// pinned build then reuses. So every cache that holds installed packages lives in a directory
/// named by [`CacheDirs::keyed`]'s key — a hash of everything that decides the packages (the lock,
/// the source, the profile tree, the overlays) — and only the download cache is shared: its
/// `.deb`s are named by version and checked by sha256 after every build.
#[derive(Debug, Clone)]
pub struct CacheDirs {
    /// Downloaded packages (`--package-cache-dir`), shared by every key.
    pub packages: PathBuf,
    /// Incremental image caches (`--cache-directory`): the image, its initrd and the tools tree.
    pub incremental: PathBuf,
    /// mkosi's output directory: the tools tree lives here between builds; image outputs are
    /// moved out after each build.
    pub output: PathBuf,
    /// mkosi's workspace (`--workspace-directory`).
    pub workspace: PathBuf,
    /// Sandbox trees nodeimg generates (apt sources, pins, keyring).
    pub sandbox: PathBuf,
}

/// How many keyed cache directories are kept (the least recently used beyond that are removed).
pub const KEEP_KEYED: usize = 3;

impl CacheDirs {
    /// The layout for `key` under one cache directory: `packages/` and `workspace/` shared,
    /// the rest under `keyed/<key>/`.
    pub fn keyed(dir: &Path, key: &str) -> Self {
        let k = dir.join("keyed").join(key);
        Self {
            packages: dir.join("packages"),
            incremental: k.join("incremental"),
            output: k.join("output"),
            workspace: dir.join("workspace"),
            sandbox: k.join("sandbox"),
        }
    }

    /// Creates every directory and marks the key as just used.
    pub fn create(&self) -> Result<(), Error> {
        for d in [&self.packages, &self.incremental, &self.output, &self.workspace, &self.sandbox] {
            std::fs::create_dir_all(d).map_err(crate::write_err(d))?;
        }
        if let Some(k) = self.incremental.parent() {
            let _ = std::fs::File::open(k).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        }
        Ok(())
    }

    /// Removes this key's directories (its cached image, initrd and tools tree, its outputs and
    /// sandbox trees): after a build whose packages failed the check against the lock, so that
    /// nothing built from those packages is reused. The shared download cache stays.
    pub fn discard(&self) -> Result<(), Error> {
        for d in [&self.incremental, &self.output, &self.sandbox] {
            match std::fs::remove_dir_all(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::write_err(d)(e)),
            }
        }
        Ok(())
    }

    /// Removes the keyed directories of `dir` beyond the [`KEEP_KEYED`] most recently used,
    /// never `keep`, and the unkeyed caches of earlier nodeimg versions (`incremental/`, `output/`, `sandbox/`).
    pub fn prune(dir: &Path, keep: &str) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        for old in ["incremental", "output", "sandbox"] {
            let p = dir.join(old);
            if p.is_dir() && std::fs::remove_dir_all(&p).is_ok() {
                removed.push(p);
            }
        }
        let Ok(entries) = std::fs::read_dir(dir.join("keyed")) else { return removed };
        let mut keyed: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_name() != keep)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        keyed.sort();
        let excess = keyed.len().saturating_sub(KEEP_KEYED - 1);
        for (_, p) in keyed.into_iter().take(excess) {
            if std::fs::remove_dir_all(&p).is_ok() {
                removed.push(p);
            }
        }
        removed
    }

    /// The most recently used tools tree of any key under `dir` (for `nodeimg repro`, which only
    /// needs some trixie tools to look inside partitions).
    pub fn latest_tools_tree(dir: &Path) -> Option<PathBuf> {
        let entries = std::fs::read_dir(dir.join("keyed")).ok()?;
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|k| k.join("output/tools/usr/bin").is_dir())
            .filter_map(|k| Some((k.metadata().ok()?.modified().ok()?, k.join("output/tools"))))
            .max()
            .map(|(_, t)| t)
    }

    /// The tools tree mkosi built, once it did.
    pub fn tools_tree(&self) -> PathBuf {
        self.output.join("tools")
    }

    /// The dpkg status of mkosi's cached default initrd (`<distribution>~<release>~<arch>
    /// ~default-initrd.cache`), saved before mkosi purges dpkg from the initrd.
    pub fn initrd_status(&self) -> Option<PathBuf> {
        let entries = std::fs::read_dir(&self.incremental).ok()?;
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("~default-initrd.cache"))
            .map(|e| e.path().join("var/lib/dpkg/status"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        (found.len() == 1).then(|| found.remove(0))
    }

    /// apt's download cache inside the package cache.
    pub fn apt_archives(&self) -> PathBuf {
        self.packages.join("cache/apt/archives")
    }
}

/// One mkosi invocation.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub mkosi: &'a Path,
    pub profiles_dir: &'a Path,
    pub profiles: &'a [String],
    pub cache: &'a CacheDirs,
    /// An extra sandbox tree for the image and its initrd (apt sources and pins), if any.
    pub sandbox_tree: Option<&'a Path>,
    /// An extra sandbox tree for the tools tree (apt sources and pins), if any.
    pub tools_sandbox_tree: Option<&'a Path>,
    /// A directory of `.deb`s that mkosi serves to apt as a local repository, for the image and
    /// the tools tree (a package archive).
    pub package_dir: Option<&'a Path>,
    /// Drop mkosi's cached image (and repository metadata) first: for `nodeimg lock`, which must
    /// see the archive as it is today, and after the lock changed (the cached image holds the
    /// packages of the old one). The tools tree is kept either way.
    pub fresh: bool,
}

impl Invocation<'_> {
    /// The `mkosi … build` command.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.mkosi);
        cmd.arg("--directory").arg(self.profiles_dir);
        for p in self.profiles {
            cmd.arg("--profile").arg(p);
        }
        cmd.arg("--output-directory").arg(&self.cache.output);
        cmd.arg("--cache-directory").arg(&self.cache.incremental);
        cmd.arg("--package-cache-dir").arg(&self.cache.packages);
        cmd.arg("--workspace-directory").arg(&self.cache.workspace);
        if let Some(t) = self.sandbox_tree {
            cmd.arg("--sandbox-tree").arg(t);
        }
        if let Some(t) = self.tools_sandbox_tree {
            cmd.arg("--tools-tree-sandbox-tree").arg(t);
        }
        if let Some(d) = self.package_dir {
            cmd.arg("--package-directory").arg(d);
            cmd.arg("--tools-tree-package-directory").arg(d);
        }
        // --force once replaces the previous outputs; twice also drops the cached image.
        cmd.args(["--incremental", "yes", "--force"]);
        if self.fresh {
            cmd.arg("--force");
        }
        cmd.arg("build");
        // mkosi colours its output and pages it on a terminal; we read it line by line.
        cmd.env("NO_COLOR", "1").env("MKOSI_NO_PAGER", "1").env("SYSTEMD_PAGER", "cat");
        cmd
    }

    /// Runs mkosi, reporting progress through `on_event`.
    ///
    /// Once, a first build failed inside mkosi with `kmod.postinst: dpkg-maintscript-helper: not
    /// found` and the identical second run passed; it was not reproduced in many builds since,
    /// and its cause is not known (`docs/mkosi-retry.md`: mkosi extracts dpkg, which ships that
    /// helper, before any maintainer script runs). So a run that fails *only* that way — a
    /// package's maintainer script stopping at a command "not found" (exit status 127) — is run
    /// once more, saying why, after its whole log is saved as `CACHE/keyed/KEY/mkosi-failed.log`
    /// for the next look. The retry starts from the same state: mkosi saves its incremental
    /// cache only after the packages are installed and configured. Any other failure, or a
    /// second one, is the build's error.
    pub fn run(&self, on_event: &mut dyn FnMut(Event)) -> Result<(), Error> {
        match self.run_once(on_event) {
            Err(failure) if matches!(failure.error, Error::Mkosi { .. }) => {
                let Failure { error, log } = *failure;
                let Some(line) = maintainer_script_not_found(&log) else {
                    return Err(error);
                };
                let saved = self.cache.incremental.with_file_name("mkosi-failed.log");
                let log_is = match std::fs::write(&saved, log.join("\n") + "\n") {
                    Ok(()) => format!("its log: {}", saved.display()),
                    Err(e) => format!("its log could not be saved as {}: {e}", saved.display()),
                };
                on_event(Event::Phase(format!(
                    "mkosi failed in a package's maintainer script ({}); this failure was seen once and passed on \
                     the identical next run: running mkosi once more ({log_is})",
                    line.trim()
                )));
                self.run_once(on_event).map_err(|f| f.error)
            }
            r => r.map_err(|f| f.error),
        }
    }

    fn run_once(&self, on_event: &mut dyn FnMut(Event)) -> Result<(), Box<Failure>> {
        let fail = |error| Box::new(Failure { error, log: Vec::new() });
        if !self.mkosi.exists() && self.mkosi.components().count() > 1 {
            return Err(fail(Error::MkosiMissing { path: self.mkosi.to_path_buf() }));
        }
        let mut cmd = self.command();
        on_event(Event::Command(argv(&cmd)));
        let (mut log, mut kept) = (Vec::new(), 0usize);
        let result = cmd.run_lines(&mut |line| {
            // The whole log, up to a bound, for the retry decision and its record.
            if kept < MAX_LOG_BYTES {
                kept += line.len() + 1;
                log.push(line.to_owned());
            }
            on_event(parse_line(line))
        });
        result.map_err(|e| {
            let error = match e {
                CommandError::Spawn { ref error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                    Error::MkosiMissing { path: self.mkosi.to_path_buf() }
                }
                CommandError::Interrupted { .. } => Error::Interrupted { out: PathBuf::new() },
                e => Error::Mkosi { hint: hint_for(e.tail()), error: e },
            };
            Box::new(Failure { error, log })
        })
    }
}

/// How much of mkosi's output one run keeps in memory.
const MAX_LOG_BYTES: usize = 64 << 20;

/// A failed run and its output.
struct Failure {
    error: Error,
    log: Vec<String>,
}

/// The line saying that a package's maintainer script did not find a command (dash: `SCRIPT:
/// LINE: COMMAND: not found`; dpkg: `… script subprocess returned error exit status 127`), if the
/// log has one.
fn maintainer_script_not_found(log: &[String]) -> Option<&str> {
    let scripts = [".postinst:", ".preinst:", ".postrm:", ".prerm:"];
    log.iter()
        .find(|l| {
            (l.contains(": not found") && scripts.iter().any(|s| l.contains(s)))
                || l.contains("script subprocess returned error exit status 127")
        })
        .map(String::as_str)
}

/// A hint for failures whose cause the tail shows.
fn hint_for(tail: &str) -> &'static str {
    if tail.contains("No space left on device") {
        " (the disk is full: free space in the output, cache or workspace directory)"
    } else if tail.contains("Temporary failure resolving") || tail.contains("Could not connect") {
        " (the package mirror cannot be reached)"
    } else if tail.contains("Version '") && tail.contains("' for '") && tail.contains("' was not found") {
        " (a locked package version is not in this archive: build from the lock's snapshot or a \
         release's package directory, or run `nodeimg lock`)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_build_waits_for_the_cache_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let held = CacheLock::acquire(&cache, &mut |_| panic!("the first build does not wait")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let lock = CacheLock::acquire(&cache, &mut |e| tx.send(e).unwrap());
                lock.map(drop).map_err(|e| e.to_string())
            })
        };
        let said = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the second build says it waits");
        assert!(matches!(&said, Event::Phase(p) if p.contains("another build is using the cache")), "{said:?}");
        assert!(!waiter.is_finished(), "the second build went on while the first held the cache");
        drop(held);
        waiter.join().unwrap().unwrap();
    }

    /// An invocation of `mkosi` on `dir` without profiles, sandbox trees or packages.
    fn bare_invocation<'a>(mkosi: &'a Path, dir: &'a Path, cache: &'a CacheDirs) -> Invocation<'a> {
        Invocation {
            mkosi,
            profiles_dir: dir,
            profiles: &[],
            cache,
            sandbox_tree: None,
            tools_sandbox_tree: None,
            package_dir: None,
            fresh: false,
        }
    }

    /// A fake mkosi: runs `body` (sh) with `$COUNT` the number of earlier runs.
    fn fake_mkosi(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("mkosi");
        let script = format!(
            "#!/bin/sh\nCOUNT=$(cat {d}/count 2>/dev/null || echo 0)\necho $((COUNT + 1)) > {d}/count\n{body}\n",
            d = dir.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path
    }

    fn invoke(dir: &Path, mkosi: &Path) -> (Result<(), Error>, Vec<Event>, u32) {
        let cache = CacheDirs::keyed(&dir.join("cache"), "k");
        std::fs::create_dir_all(&cache.incremental).unwrap();
        let inv = bare_invocation(mkosi, dir, &cache);
        let mut events = Vec::new();
        let r = inv.run(&mut |e| events.push(e));
        let runs = std::fs::read_to_string(dir.join("count")).unwrap().trim().parse().unwrap();
        (r, events, runs)
    }

    #[test]
    fn a_maintainer_script_not_finding_a_command_is_retried_once_with_its_reason_and_log() {
        let t = tempfile::tempdir().unwrap();
        // As seen once: fails the first time only.
        let mkosi = fake_mkosi(
            t.path(),
            "if [ $COUNT = 0 ]; then echo 'Setting up kmod (34.2-2) ...'; \
             echo '/var/lib/dpkg/info/kmod.postinst: 8: dpkg-maintscript-helper: not found'; \
             echo 'dpkg: error processing package kmod (--configure):'; \
             echo ' installed kmod package post-installation script subprocess returned error exit status 127'; exit 1; fi",
        );
        let (r, events, runs) = invoke(t.path(), &mkosi);
        r.unwrap();
        assert_eq!(runs, 2);
        let said = events.iter().find_map(|e| match e {
            Event::Phase(p) if p.contains("running mkosi once more") => Some(p.clone()),
            _ => None,
        });
        let said = said.expect("the retry is announced");
        assert!(said.contains("kmod.postinst: 8: dpkg-maintscript-helper: not found"), "{said}");
        let log = std::fs::read_to_string(t.path().join("cache/keyed/k/mkosi-failed.log")).unwrap();
        assert!(log.contains("Setting up kmod") && log.contains("exit status 127"), "{log}");

        // Failing that way twice: the second failure is the error (no third run).
        let t = tempfile::tempdir().unwrap();
        let mkosi = fake_mkosi(t.path(), "echo 'x.postinst: 3: helper: not found'; exit 1");
        let (r, _, runs) = invoke(t.path(), &mkosi);
        assert!(matches!(r, Err(Error::Mkosi { .. })), "{r:?}");
        assert_eq!(runs, 2);

        // Any other failure is not retried.
        let t = tempfile::tempdir().unwrap();
        let mkosi =
            fake_mkosi(t.path(), "echo 'E: Unable to locate package nope'; echo 'sh: 1: foo: not found'; exit 1");
        let (r, events, runs) = invoke(t.path(), &mkosi);
        assert!(matches!(r, Err(Error::Mkosi { .. })), "{r:?}");
        assert_eq!(runs, 1);
        assert!(!events.iter().any(|e| matches!(e, Event::Phase(p) if p.contains("once more"))));
        assert!(!t.path().join("cache/keyed/k/mkosi-failed.log").exists());
    }

    #[test]
    fn lines() {
        for (line, want) in [
            ("‣ Building tools image", Event::Stage("Building tools image".into())),
            ("\u{1b}[0;1;39m‣  Installing Debian\u{1b}[0m", Event::Stage("Installing Debian".into())),
            (
                "Get:59 http://deb.debian.org/debian trixie/main amd64 sysvinit-utils amd64 3.14-4 [34.1 kB]",
                Event::Download { package: "sysvinit-utils".into(), bytes: 34_100 },
            ),
            (
                "Get:7 http://deb.debian.org/debian trixie/main amd64 linux-image-6.12 amd64 6.12-1 [1,234 kB]",
                Event::Download { package: "linux-image-6.12".into(), bytes: 1_234_000 },
            ),
            ("Fetched 25.4 MB in 0s (143 MB/s)", Event::Fetched { bytes: 25_400_000 }),
            ("Setting up bash (5.2) ...", Event::Output("Setting up bash (5.2) ...".into())),
        ] {
            assert_eq!(parse_line(line), want, "{line:?}");
        }
    }

    /// The first 127 lines of a real `mkosi build` (mkosi 25.3, testdata/README.md): two apt
    /// batches. Package downloads must add up to apt's own "Fetched" total (apt rounds each).
    #[test]
    fn a_real_log() {
        let log = include_str!("../testdata/mkosi-25.3-build-head.log");
        let events: Vec<Event> = log.lines().map(parse_line).collect();
        let stages: Vec<&str> =
            events.iter().filter_map(|e| if let Event::Stage(s) = e { Some(s.as_str()) } else { None }).collect();
        assert_eq!(
            stages[..4],
            [
                "Copying in sandbox trees…",
                "Syncing package manager metadata",
                "Copying repository metadata",
                "Building tools image"
            ]
        );
        let (mut batch, mut packages, mut checked) = (0u64, 0, 0);
        for e in &events {
            match e {
                Event::Download { bytes, .. } => {
                    batch += bytes;
                    packages += 1;
                }
                Event::Fetched { bytes } => {
                    if batch > 0 {
                        let diff = (batch as f64 - *bytes as f64).abs() / *bytes as f64;
                        assert!(diff < 0.01, "downloads add up to {batch}, apt says {bytes}");
                        checked += 1;
                    }
                    batch = 0;
                }
                _ => {}
            }
        }
        assert_eq!((packages, checked), (59, 1), "59 packages in the second batch, the first is index files");
    }

    #[test]
    fn keyed_caches_share_only_the_downloads_and_old_keys_are_pruned() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (CacheDirs::keyed(t.path(), "a"), CacheDirs::keyed(t.path(), "b"));
        assert_eq!(a.packages, b.packages);
        assert_ne!(a.incremental, b.incremental);
        assert_ne!(a.output, b.output);
        assert_ne!(a.sandbox, b.sandbox);
        std::fs::create_dir_all(t.path().join("incremental")).unwrap();
        for (i, k) in ["k1", "k2", "k3", "k4"].iter().enumerate() {
            let c = CacheDirs::keyed(t.path(), k);
            c.create().unwrap();
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            std::fs::File::open(t.path().join("keyed").join(k)).unwrap().set_modified(when).unwrap();
        }
        let removed = CacheDirs::prune(t.path(), "k1");
        let names: Vec<String> =
            removed.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["incremental", "k2"], "the oldest key but the one in use, and the old layout");
        let mut left: Vec<String> = std::fs::read_dir(t.path().join("keyed"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["k1", "k3", "k4"]);
    }

    #[test]
    fn disk_full_gets_a_hint() {
        assert!(hint_for("cp: error writing 'x': No space left on device").contains("disk is full"));
        assert_eq!(hint_for("something else"), "");
    }

    #[test]
    fn missing_mkosi_is_named() {
        let cache = CacheDirs::keyed(Path::new("/nonexistent/cache"), "k");
        let inv = bare_invocation(Path::new("/nonexistent/tools/bin/mkosi"), Path::new("mkosi-profiles"), &cache);
        let err = inv.run(&mut |_| {}).unwrap_err();
        assert!(matches!(err, Error::MkosiMissing { .. }), "{err}");
        assert!(err.to_string().contains("make setup"), "{err}");
    }
}
