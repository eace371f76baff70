//! File output that never leaves a half-written result behind.
//!
//! Every artefact `nodeimg` produces is written to a temporary file in the destination's
//! directory and renamed over the destination only once it is complete and synced. A crash or
//! Ctrl-C leaves at most a hidden `.NAME.*.tmp` file, never a file under the final name that
//! looks complete.

use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A file being written beside its final path; it appears there only on [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Starts writing `dest` (mode 0644). Nothing exists at `dest` until `commit`.
    pub fn create(dest: &Path) -> Result<Self> {
        Self::create_with_mode(dest, 0o644)
    }

    /// Like [`AtomicFile::create`] with an explicit permission mode (0600 for secrets).
    pub fn create_with_mode(dest: &Path, mode: u32) -> Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().with_context(|| format!("{}: not a file path", dest.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".tmp")
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        // The mode asked for, whatever the umask made of it at creation.
        tmp.as_file()
            .set_permissions(Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of a temporary file in {}", dir.display()))?;
        Ok(Self { tmp, dest: dest.to_path_buf() })
    }

    /// The temporary file, for writing.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// The temporary file, for writing through `std::io::Write`.
    pub fn file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Syncs the data and renames the file over its destination.
    pub fn commit(self) -> Result<()> {
        self.tmp.as_file().sync_all().with_context(|| format!("syncing {}", self.dest.display()))?;
        let dest = self.dest;
        self.tmp
            .persist(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming the finished file to {}", dest.display()))?;
        sync_parent(&dest)
    }
}

impl AtomicFile {
    /// Like [`AtomicFile::commit`], but fails instead of replacing an existing file (for keys,
    /// which are never overwritten).
    pub fn commit_new(self) -> Result<()> {
        self.tmp.as_file().sync_all().with_context(|| format!("syncing {}", self.dest.display()))?;
        let dest = self.dest;
        self.tmp
            .persist_noclobber(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("creating {} (it must not exist: nodeimg never overwrites it)", dest.display()))?;
        sync_parent(&dest)
    }
}

/// Syncs the directory holding `path`, so that a rename into it survives a crash.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(dir)
}

/// Syncs a directory (its entries: what a rename changed).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing the directory {}", dir.display()))
}

/// Renames `from` to `to` only if nothing is at `to` — atomically, so a target that appears
/// meanwhile is refused, never replaced (`renameat2(RENAME_NOREPLACE)`).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    builder::build::rename2(from, to, libc::RENAME_NOREPLACE)
}

/// Gives every directory under `root` (itself included) mode 0755 and every file 0644, whatever
/// the umask was when they were created: a published tree is readable by all, writable by its
/// owner only.
pub fn publish_modes(root: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(root).with_context(|| format!("reading {}", root.display()))?;
    if meta.is_dir() {
        std::fs::set_permissions(root, Permissions::from_mode(0o755))
            .with_context(|| format!("setting the mode of {}", root.display()))?;
        for e in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
            publish_modes(&e.with_context(|| format!("reading {}", root.display()))?.path())?;
        }
    } else if meta.is_file() {
        std::fs::set_permissions(root, Permissions::from_mode(0o644))
            .with_context(|| format!("setting the mode of {}", root.display()))?;
    }
    Ok(())
}

/// A whole input file, read-only, mapped into memory rather than copied.
///
/// Reading a multi-MiB firmware image or UKI into a fresh buffer costs more than hashing it: the
/// kernel zeroes every new page and then copies the page cache into it. A mapping shares the page
/// cache's pages instead. Empty files are not mapped (mmap refuses a zero length).
#[derive(Debug)]
pub struct MappedFile(Option<memmap2::Mmap>);

impl std::ops::Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// Maps `path` (`what` names it in errors), refusing files over `limit` bytes.
#[allow(unsafe_code)]
pub fn map_file(path: &Path, limit: u64, what: &str) -> Result<MappedFile> {
    let ctx = || format!("reading {} ({what})", path.display());
    let file = open_input(path).with_context(ctx)?;
    let meta = file.metadata().with_context(ctx)?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a regular file ({what})", path.display());
    }
    if meta.len() > limit {
        anyhow::bail!("{} is {} bytes, too large for {what} (limit {limit})", path.display(), meta.len());
    }
    if meta.len() == 0 {
        return Ok(MappedFile(None));
    }
    // SAFETY: the mapping is private and read-only, and nodeimg never writes its inputs. Another
    // process truncating or rewriting the file while nodeimg reads it is outside what nodeimg
    // can guard against (it would see changed bytes or die with SIGBUS), as for any reader of a
    // file that changes underneath it.
    let map = unsafe { memmap2::Mmap::map(&file) }.with_context(ctx)?;
    Ok(MappedFile(Some(map)))
}

/// Writes `bytes` to `dest` atomically (temp file + rename).
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    io::Write::write_all(f.file_mut(), bytes).with_context(|| format!("writing {}", dest.display()))?;
    f.commit()
}

/// Writes several files that belong together (an export's parts): every file is written and
/// synced beside its destination first, and only then renamed into place, so a failure while
/// writing (a full disk, an unwritable directory, a directory where a file goes) leaves none of
/// them, never some.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> Result<()> {
    for (i, (a, _)) in files.iter().enumerate() {
        if let Some((b, _)) = files[..i].iter().find(|(b, _)| same_file(a, b)) {
            anyhow::bail!("{} and {} are the same file: each output needs its own", b.display(), a.display());
        }
    }
    let mut staged = Vec::with_capacity(files.len());
    for (dest, bytes) in files {
        if dest.is_dir() {
            anyhow::bail!("{}: a directory is in the way of a file", dest.display());
        }
        let mut f = AtomicFile::create(dest)?;
        io::Write::write_all(f.file_mut(), bytes).with_context(|| format!("writing {}", dest.display()))?;
        f.file().sync_all().with_context(|| format!("syncing {}", dest.display()))?;
        staged.push(f);
    }
    staged.into_iter().try_for_each(AtomicFile::commit)
}

/// Reads a whole file of at most `limit` bytes; a larger one (or `/dev/zero`) is refused after
/// reading `limit + 1` bytes, never read to its end.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    read_input(path, limit, "this kind of file")
}

/// Inputs up to this size may come from a pipe or a device (read up to the limit); larger kinds
/// (kernels, initrds, UKIs, files to sign) must be regular files, whose size is known before
/// anything is read.
const STREAMED_LIMIT: u64 = 16 << 20;

/// Common limits, by kind of input.
pub mod limits {
    /// A minisign key, signature or password file.
    pub const KEY: u64 = 64 << 10;
    /// An SEV-SNP report (1184 bytes) or a TDX quote (a few KiB with its certification data).
    pub const EVIDENCE: u64 = 1 << 20;
    /// A JSON file of PCR values, `build.json`, an observed-PCRs file.
    pub const SMALL_JSON: u64 = 1 << 20;
    /// A bundle or a package lock.
    pub const BUNDLE: u64 = 16 << 20;
    /// A measured-boot event log (real ones are tens of KiB; a 22k-event log is a few MiB).
    pub const EVENTLOG: u64 = 16 << 20;
    /// Firmware code read whole for its volumes (OVMF's are 2–4 MiB).
    pub const FIRMWARE: u64 = 64 << 20;
    /// A kernel, initrd, stub, UKI or file to sign: read whole, from a regular file only.
    pub const IMAGE: u64 = 4 << 30;
}

/// Opens an input for reading without waiting on it: a FIFO nobody writes to would block
/// `open(2)` for ever, so it is opened non-blocking (then reads as empty) and the flag is cleared
/// again, so that a pipe with a writer (`<(…)`, `/dev/stdin`) is read as it comes.
#[allow(unsafe_code)]
pub fn open_input(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    // SAFETY: fcntl on a descriptor this function owns; F_GETFL/F_SETFL take and return ints.
    let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(f)
}

/// Opens `path` (`what` names it in errors) for streaming, which must be a regular file: a
/// device or pipe (`/dev/zero`) may never end, and what is signed or measured is read again.
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    let shown = crate::text::clean(&path.display().to_string()).into_owned();
    let f = open_input(path).with_context(|| format!("opening {shown} ({what})"))?;
    let meta = f.metadata().with_context(|| format!("reading {shown} ({what})"))?;
    if meta.is_dir() {
        anyhow::bail!("{shown} is a directory, not {what}");
    }
    if !meta.is_file() {
        anyhow::bail!("{shown} is not a regular file ({what} is read from a file)");
    }
    Ok(f)
}

/// Whether `a` and `b` name the same file: one inode when both exist (a link, `./x` against
/// `x`), else the same name in the same directory. For refusing an output that would replace an
/// input or another output.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        (Err(_), Err(_)) => {
            let place = |p: &Path| {
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                Some((std::fs::canonicalize(dir).ok()?, p.file_name()?.to_owned()))
            };
            matches!((place(a), place(b)), (Some(x), Some(y)) if x == y)
        }
        _ => false,
    }
}

/// Reads the input `path` (`what` names its kind in errors), refusing more than `limit` bytes:
/// a regular file by its size, before reading; a pipe or device (`/dev/stdin`, `<(…)`) after
/// `limit + 1` bytes, and only for kinds small enough to stream (`/dev/zero` as a kernel is
/// refused at once).
pub fn read_input(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    // The name as the user gave it, but one line: a newline in it must not split the message.
    let shown = crate::text::clean(&path.display().to_string()).into_owned();
    let ctx = || format!("reading {shown} ({what})");
    let f = open_input(path).with_context(ctx)?;
    let meta = f.metadata().with_context(ctx)?;
    if meta.is_dir() {
        anyhow::bail!("{} is a directory, not {what}", shown);
    }
    if meta.is_file() && meta.len() > limit {
        anyhow::bail!("{} is {} bytes, too large for {what} (limit {limit})", shown, meta.len());
    }
    if !meta.is_file() && limit > STREAMED_LIMIT {
        anyhow::bail!("{} is not a regular file ({what} is read from a file)", shown);
    }
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes).with_context(ctx)?;
    if bytes.len() as u64 > limit {
        anyhow::bail!("{}: more than {limit} bytes, too large for {what}", shown);
    }
    Ok(bytes)
}

/// [`read_input`] as UTF-8 text.
pub fn read_input_text(path: &Path, limit: u64, what: &str) -> Result<String> {
    String::from_utf8(read_input(path, limit, what)?).map_err(|e| {
        anyhow::anyhow!("{}: not UTF-8 text ({what}): {e}", crate::text::clean(&path.display().to_string()))
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn rename_noreplace_refuses_even_an_empty_directory() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        // std::fs::rename would replace the empty directory b.
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        std::fs::remove_dir(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert!(b.is_dir() && !a.exists());
    }

    use super::*;

    #[test]
    fn two_outputs_to_one_file_write_neither() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("x/../a"));
        std::fs::create_dir(dir.path().join("x")).unwrap();
        let err = write_atomic_all(&[(&a, b"one"), (&b, b"two")]).unwrap_err();
        assert!(err.to_string().contains("are the same file"), "{err}");
        assert!(!a.exists());
        // An existing file under another name (a hard link) too.
        std::fs::write(&a, b"kept").unwrap();
        let link = dir.path().join("link");
        std::fs::hard_link(&a, &link).unwrap();
        assert!(write_atomic_all(&[(&a, b"one"), (&link, b"two")]).is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"kept");
        write_atomic_all(&[(&a, b"one"), (&dir.path().join("b"), b"two")]).unwrap();
    }

    #[test]
    fn nothing_appears_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&dest).unwrap();
        io::Write::write_all(f.file_mut(), b"partial").unwrap();
        assert!(!dest.exists(), "destination must not exist before commit");
        drop(f);
        assert!(!dest.exists(), "an abandoned write must not leave the destination");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temp file removed on drop");

        write_atomic(&dest, b"whole").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
    }
}
