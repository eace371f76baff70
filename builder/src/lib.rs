//! From checked-in mkosi profiles to checked, per-platform node-image artefacts.
//!
//! mkosi is good at turning a package list into a bootable disk image, but three things a
//! release engineer needs are not its job, and this crate adds them:
//!
//! * **One root for every platform.** Cloud platforms differ in a handful of kernel command-line
//!   keys (console speed, NVMe timeouts), not in the root file system. Building the root, its
//!   erofs image and its dm-verity tree once per platform wastes minutes and invites drift. So
//!   mkosi runs once, for the first platform; every further platform gets a UKI derived with
//!   [`uki::set_cmdline`] (byte-for-byte what ukify would make of the new command line), an ESP
//!   that is the base ESP with that UKI in the base UKI's clusters ([`fat`]; or, when the sizes
//!   differ, rebuilt by the same systemd-repart, definition and seed mkosi used), and the disk
//!   image with that ESP swapped in; the platforms are derived in parallel. The root and verity partitions are shared bytes, and every
//!   derived artefact is byte-identical to what a native mkosi build of that platform gives.
//! * **Independent checks of mkosi's work.** After each build the verity tree of the root
//!   partition is recomputed with the [`verity`] crate (bit-exact with `veritysetup`), and its root
//!   hash must equal `roothash=` on the UKI's command line; the command line must be exactly the
//!   profiles' `KernelCommandLine=` words; the packages must be exactly those of the lock file.
//! * **Reproducibility you can check, now and years later.** Every package of the image, its
//!   initrd and mkosi's tools tree is pinned by version and `.deb` sha256 ([`lock`]); packages
//!   come from a source that does not move — a snapshot of the archive or a package archive
//!   published with the release ([`source`]) — or from the live archive, which provenance then
//!   says; caches are keyed by everything that decides the packages ([`mkosi::CacheDirs`]); the
//!   profile tree is identified by content ([`tree`]); outputs are renamed into place only when
//!   complete, and [`repro`] compares two output trees artefact by artefact and, for a differing
//!   partition, file by file.
//!
//! This is the only crate of nodeimg that runs external programs, all through
//! [`run::CommandRunExt`], whose errors carry the command line and the tail of the output. It
//! never prints: progress flows through a callback of [`Event`]s that the CLI renders.
//!
//! # Output layout
//!
//! ```text
//! OUT/<image>-<version>[-<overlay>…]/
//!   <platform>/            one per platform (qemu, gcp, aws, azure)
//!     disk.raw             GPT disk: ESP (512 MiB) + root (erofs) + root-verity
//!     uki.efi              the UKI, also at EFI/BOOT/BOOTX64.EFI in the ESP
//!     esp.raw              the ESP partition alone
//!     root.raw             the root partition (identical for every platform)
//!     root-verity.raw      its dm-verity hash partition (identical for every platform)
//!     packages.json        mkosi's package manifest
//!     reference-values.json  predicted PCRs per bank and PCR 11 per phase, SEV-SNP launch
//!                          digests and TDX MRTD/RTMR1/RTMR2 as the platform's nodeimg.json
//!                          ([`PlatformConfig`]) asks (written by the CLI through
//!                          [`build_with_hook`], from the measure crate)
//!     manifest.json        every artefact with size and sha256, the roothash and command line
//! ```
//!
//! The directory is built as `OUT/.<name>.partial` and renamed into place once every artefact
//! is written and checked, so an interrupted or failed build never leaves a directory that looks
//! complete.

use std::io;
use std::path::{Path, PathBuf};

pub mod build;
pub mod debs;
pub mod fat;
pub mod gpt;
pub mod lock;
pub mod mkosi;
pub mod preflight;
pub mod profiles;
pub mod project;
pub mod repro;
pub mod run;
pub mod source;
pub mod sparse;
pub mod tools;
pub mod toolscache;
pub mod tree;
pub mod treediff;
pub mod verify;

pub use build::{
    build, build_with_hook, BuildReport, BuildRequest, FirmwareRecord, PlatformHook, PlatformReport,
    EXTRA_ARTEFACT_PREFIX,
};
pub use lock::{Change, Lock, Scope};
pub use mkosi::Event;
pub use profiles::{PlatformConfig, ProfileSet, Selection};
pub use run::{CommandError, CommandRunExt};
pub use source::{PackageSource, SnapshotStamp, SourceChoice};

/// Where a user's caches live: `$XDG_CACHE_HOME`, else `~/.cache` (`/var/tmp/.cache` without a
/// `HOME`). nodeimg's build cache and tools cache default to directories below it.
pub fn user_cache_home() -> PathBuf {
    let var = |v: &str| std::env::var_os(v).filter(|x| !x.is_empty()).map(PathBuf::from);
    var("XDG_CACHE_HOME").unwrap_or_else(|| var("HOME").unwrap_or_else(|| "/var/tmp".into()).join(".cache"))
}

/// Everything that can go wrong between the profiles and the finished output directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // A cause from another crate or the OS is a `#[source]`, not text: the message names what
    // failed, the error chain (`{:#}` in the CLI) adds why, and a caller can match the cause
    // (`uki::PeError`, `io::Error`, `verity::Error`) with `source()`/`downcast_ref`.
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    #[error("{0}")]
    Profile(String),
    /// A platform's `nodeimg.json` is missing or malformed.
    #[error("{path}: {reason}")]
    PlatformConfig { path: PathBuf, reason: String },
    #[error("unknown profile {name:?} (profiles in {dir}: {known})")]
    UnknownProfile { name: String, dir: PathBuf, known: String },
    #[error("{path}, line {line}: {reason}")]
    Lock { path: PathBuf, line: usize, reason: String },
    #[error("{path}: no lock file; run `nodeimg lock --profiles-dir {dir}` to create it")]
    NoLock { path: PathBuf, dir: PathBuf },
    /// The lock was made for another package list than the profiles ask for now.
    #[error(
        "{path} does not match the packages the profiles ask for:\n{problems}\n\
         Run `nodeimg lock --profiles-dir {dir}` to resolve the new package list, then review and commit \
         packages.lock.{note}"
    )]
    LockStale { path: PathBuf, problems: String, dir: PathBuf, note: &'static str },
    #[error(
        "the packages {origin} gave differ from {path}:\n{changes}\n\
         The archive has moved on, or this is another archive. Either build from a source that still \
         has the locked packages (`--snapshot STAMP` for a snapshot of the archive, `--packages DIR` \
         for a release's package directory), or move the lock to what the archive serves now \
         (`nodeimg lock`, then review and commit packages.lock)."
    )]
    LockMismatch { path: PathBuf, origin: String, changes: String },
    /// A package archive (`--packages DIR`) that is not exactly the lock's `.deb`s.
    #[error("{dir}: not the package archive of this lock:\n{problems}")]
    PackageArchive { dir: PathBuf, problems: String },
    /// A `.deb` the build used that is missing or differs from the lock.
    #[error("the build's .deb files differ from packages.lock:\n{problems}")]
    DebMismatch { problems: String },
    /// What mkosi installed into a tree cannot be read back.
    #[error("{path}: {reason}")]
    Installed { path: PathBuf, reason: String },
    #[error("{path}: not an mkosi package manifest")]
    Manifest {
        path: PathBuf,
        #[source]
        error: serde_json::Error,
    },
    #[error(
        "mkosi not found at {path}; run `nodeimg setup` to fetch the pinned mkosi into the tools cache \
         (`make setup` in a checkout), or set NODEIMG_MKOSI"
    )]
    MkosiMissing { path: PathBuf },
    #[error(
        "mkosi at {path} does not run (`{path} --version` failed); run `nodeimg setup` (`make setup` in a \
         checkout), or set NODEIMG_MKOSI"
    )]
    MkosiBroken {
        path: PathBuf,
        #[source]
        error: CommandError,
    },
    /// A pinned `.deb` of the tools cache could not be fetched (`nodeimg setup`).
    #[error(
        "cannot fetch {url}: {reason}\n  needed: {} with sha256 {}\n  fix: fetch it from a snapshot of the archive, \
         e.g. `nodeimg setup{} --mirror http://snapshot.debian.org/archive/debian/STAMP` (a STAMP when the version was \
         current: see http://snapshot.debian.org/binary/{}/), or put any copy of that file at {cached} by hand; \
         then run `nodeimg setup{}` again",
        .pin.file_name(), .pin.sha256, .pin.setup_flags(), .pin.package, .pin.setup_flags()
    )]
    ToolFetch { url: String, reason: String, pin: &'static toolscache::Pin, cached: PathBuf },
    /// A fetched `.deb` is not the pinned one.
    #[error(
        "{url}: sha256 is {got}, but {} is pinned to {}; nothing was kept (a damaged mirror, or another build under \
         the same name: try another --mirror, or put the pinned file at {cached} by hand)",
        .pin.file_name(), .pin.sha256
    )]
    ToolDigest { url: String, got: String, pin: &'static toolscache::Pin, cached: PathBuf },
    /// A pinned package the build needs is not in the tools cache.
    #[error(
        "{what} is not in the tools cache {dir}; run `nodeimg setup --tools-dir {dir}` (`make setup` in a checkout) \
         to fetch the pinned tools"
    )]
    ToolsNotSetUp { what: String, dir: PathBuf },
    /// A program the build runs on the host is not on `$PATH`.
    #[error("{program} not found on PATH (needed {why}); run `make setup` (Debian package {package})")]
    ToolMissing { program: &'static str, package: &'static str, why: String },
    /// A directory the build writes into cannot be written.
    #[error("cannot write to {path} ({what}): {reason}; choose another {what} or make it writable")]
    NotWritable { path: PathBuf, what: &'static str, reason: String },
    #[error("mkosi failed{hint}")]
    Mkosi {
        hint: &'static str,
        #[source]
        error: CommandError,
    },
    #[error("{platform}: {reason}")]
    Hook { platform: String, reason: String },
    #[error("interrupted (Ctrl-C); nothing was written to {out}")]
    Interrupted { out: PathBuf },
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("mkosi produced no {what} in {dir} (expected a file named {pattern})")]
    MissingArtefact { what: &'static str, dir: PathBuf, pattern: String },
    /// A UKI (or the ESP made from it) fails one of nodeimg's own checks.
    #[error("{path}: {reason}")]
    Uki { path: PathBuf, reason: String },
    /// A UKI is not a PE image the `uki` crate reads.
    #[error("{path}: not a UKI nodeimg can read")]
    UkiParse {
        path: PathBuf,
        #[source]
        error: uki::PeError,
    },
    /// The `uki` crate could not derive a UKI (a new command line).
    #[error("{path}: cannot derive a UKI from it")]
    UkiEdit {
        path: PathBuf,
        #[source]
        error: uki::BuildError,
    },
    /// A disk image's partitions are not what the build needs.
    #[error("{path}: {reason}")]
    Gpt { path: PathBuf, reason: String },
    /// A disk image's partition table cannot be read.
    #[error("{path}")]
    GptRead {
        path: PathBuf,
        #[source]
        error: ::gpt::GptError,
    },
    #[error("{path}")]
    Verity {
        path: PathBuf,
        #[source]
        error: verity::Error,
    },
    /// mkosi's output does not hold up to an independent check (exit 1 in the CLI).
    #[error("{0}")]
    Check(#[from] CheckFailure),
}

/// An artefact mkosi (or a derivation) produced that fails an independent check.
#[derive(Debug, thiserror::Error)]
pub enum CheckFailure {
    #[error("verity root hash of {root} is {computed}, but the UKI's command line says roothash={cmdline}")]
    RootHash { root: PathBuf, computed: String, cmdline: String },
    #[error("{verity} differs from the hash tree recomputed from {root} at byte {offset}")]
    HashTree { root: PathBuf, verity: PathBuf, offset: u64 },
    #[error("{uki}: command line is\n  {actual}\nbut the profiles give\n  {expected}")]
    CommandLine { uki: PathBuf, actual: String, expected: String },
    #[error("{uki}: no roothash= on the command line {cmdline:?}")]
    NoRootHash { uki: PathBuf, cmdline: String },
    #[error(
        "{disk}: partition {partition} has UUID {actual}, but systemd looks for {expected} (derived from roothash=)"
    )]
    PartitionUuid { disk: PathBuf, partition: String, actual: String, expected: String },
}

impl Error {
    /// True when the build ran but its output failed an independent check.
    pub fn is_check_failure(&self) -> bool {
        matches!(self, Self::Check(_))
    }
}

/// The largest profile-tree file nodeimg reads whole (a platform's `nodeimg.json`, a
/// `mkosi.conf`, the package lock: real ones are a few KiB to ~100 KiB).
pub(crate) const MAX_PROFILE_FILE: u64 = 16 << 20;

/// Opens `path` for reading if it is a regular file: a symlink to `/dev/zero` or a FIFO would
/// be read, or waited on, for ever; `stat` does neither.
pub(crate) fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    }
    std::fs::File::open(path)
}

/// Reads a small input file whole ([`open_regular`]), of at most `limit` bytes.
pub(crate) fn read_small(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let f = open_regular(path)?;
    let len = f.metadata()?.len();
    let too_big = || io::Error::new(io::ErrorKind::InvalidData, format!("larger than {limit} bytes"));
    if len > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// [`read_small`] as UTF-8 text.
pub(crate) fn read_small_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_small(path, limit)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(crate) fn read_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |error| Error::Read { path, error }
}

pub(crate) fn write_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |error| Error::Write { path, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_inputs_are_regular_files_within_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink("/dev/zero", d.join("zero")).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(d.join("fifo")).status().unwrap().success());
        std::fs::write(d.join("big"), [b'x'; 11]).unwrap();
        std::fs::write(d.join("ok"), b"mkosi").unwrap();
        for (name, why) in [("zero", "not a regular file"), ("fifo", "not a regular file"), ("big", "larger than 10")] {
            let e = read_small(&d.join(name), 10).unwrap_err();
            assert!(e.to_string().contains(why), "{name}: {e}");
        }
        assert_eq!(read_small_text(&d.join("ok"), 10).unwrap(), "mkosi");
        assert_eq!(read_small(d, 10).unwrap_err().to_string(), "a directory");
    }
}
