//! The content hash of a profile tree: what `build.json` and the bundle record instead of (or
//! beside) a git commit, so that a build works in any directory and a rebuild can check that it
//! was given the very profiles a release was built from.
//!
//! The digest is SHA-256 over every entry below the directory, sorted by the bytes of its
//! relative path (`/`-separated), each entry encoded as
//!
//! ```text
//! 'f' | 'x' (regular file; 'x' when any execute bit is set)  PATH NUL  LEN (u64 LE)  CONTENT
//! 'l'       (symbolic link)                                  PATH NUL  LEN (u64 LE)  TARGET
//! 'd'       (directory, so that empty ones count)            PATH NUL
//! ```
//!
//! Modes other than the execute bit, owners and times are not part of it (git keeps only the
//! execute bit either, and mkosi copies trees with `SourceDateEpoch=` times). Anything else (a
//! socket, a device) is refused.

use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{read_err, Error};

/// How deep a profile tree may nest before it is refused (a symlink loop cannot occur: links are
/// hashed, not followed).
const MAX_DEPTH: usize = 64;

/// The SHA-256 (lowercase hex) of the tree at `dir`, as described above.
pub fn tree_sha256(dir: &Path) -> Result<String, Error> {
    hash_tree(dir, |_| true)
}

/// The same digest over only the entries that can change what mkosi caches between builds
/// (the image with its packages installed, the default initrd, the tools tree): everything but
/// what mkosi 25 applies *after* it saves its incremental cache (`build_image`: extra trees, then
/// postinst, finalize and postoutput scripts), the platforms' `nodeimg.json` (mkosi does not read
/// it), the package lock (which the cache key holds itself) and a project's system extensions
/// (built by a finalize script onto the ESP). Editing a file under `mkosi.extra/` or `sysext/`
/// therefore keeps the installed packages cached; anything else, including every `mkosi.conf`,
/// still changes the digest.
pub fn cache_relevant_sha256(dir: &Path) -> Result<String, Error> {
    hash_tree(dir, |rel| {
        let post_cache = rel.components().any(|c| {
            let name = c.as_os_str().to_string_lossy();
            name == "mkosi.extra"
                || ["mkosi.postinst", "mkosi.finalize", "mkosi.postoutput"].iter().any(|p| name.starts_with(p))
        });
        // A project's system extensions are built by a finalize script and go to the ESP.
        let sysext = rel.starts_with(crate::project::SYSEXT_DIR) || rel.starts_with(crate::project::SYSEXT_DROPIN);
        let unread = rel == Path::new(crate::build::LOCK_FILE)
            || rel.file_name().is_some_and(|n| n == crate::profiles::PLATFORM_CONFIG);
        !post_cache && !unread && !sysext
    })
}

fn hash_tree(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<String, Error> {
    let mut entries = Vec::new();
    walk(dir, Path::new(""), 0, &mut entries)?;
    entries.retain(|rel| keep(rel));
    entries.sort();
    let mut h = Sha256::new();
    for rel in entries {
        let path = dir.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(read_err(&path))?;
        let name = rel.as_os_str().as_bytes();
        let ft = meta.file_type();
        if ft.is_dir() {
            h.update(b"d");
            h.update(name);
            h.update([0]);
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(read_err(&path))?;
            let t = target.as_os_str().as_bytes();
            h.update(b"l");
            h.update(name);
            h.update([0]);
            h.update((t.len() as u64).to_le_bytes());
            h.update(t);
        } else {
            h.update(if meta.permissions().mode() & 0o111 != 0 { b"x" } else { b"f" });
            h.update(name);
            h.update([0]);
            h.update(meta.len().to_le_bytes());
            let mut f = fs::File::open(&path).map_err(read_err(&path))?;
            let mut buf = vec![0u8; 1 << 16];
            let mut seen = 0u64;
            loop {
                let n = f.read(&mut buf).map_err(read_err(&path))?;
                if n == 0 {
                    break;
                }
                seen += n as u64;
                h.update(&buf[..n]);
            }
            if seen != meta.len() {
                return Err(Error::Profile(format!("{}: changed while it was hashed", path.display())));
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The same digest of a tree given in memory: `(path, executable, content)` per regular file
/// (`/`-separated relative paths); the directories holding them count as they would on disk.
pub fn files_sha256<'a>(files: impl IntoIterator<Item = (&'a str, bool, &'a [u8])>) -> String {
    enum Entry<'a> {
        Dir,
        File(bool, &'a [u8]),
    }
    // Ordered as `tree_sha256` orders `PathBuf`s (component by component).
    let mut entries: std::collections::BTreeMap<PathBuf, Entry<'a>> = std::collections::BTreeMap::new();
    for (path, exec, content) in files {
        let mut prefix = String::new();
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                break;
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            entries.entry(PathBuf::from(&prefix)).or_insert(Entry::Dir);
        }
        entries.insert(PathBuf::from(path), Entry::File(exec, content));
    }
    let mut h = Sha256::new();
    for (name, e) in entries {
        let name = name.as_os_str().as_bytes();
        match e {
            Entry::Dir => {
                h.update(b"d");
                h.update(name);
                h.update([0]);
            }
            Entry::File(exec, content) => {
                h.update(if exec { b"x" } else { b"f" });
                h.update(name);
                h.update([0]);
                h.update((content.len() as u64).to_le_bytes());
                h.update(content);
            }
        }
    }
    hex::encode(h.finalize())
}

fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Profile(format!(
            "{}: nested deeper than {MAX_DEPTH} directories",
            root.join(rel).display()
        )));
    }
    let dir = root.join(rel);
    for e in fs::read_dir(&dir).map_err(read_err(&dir))? {
        let e = e.map_err(read_err(&dir))?;
        let child = rel.join(e.file_name());
        let ft = e.file_type().map_err(read_err(e.path()))?;
        if ft.is_dir() {
            out.push(child.clone());
            walk(root, &child, depth + 1, out)?;
        } else if ft.is_file() || ft.is_symlink() {
            out.push(child);
        } else {
            return Err(Error::Profile(format!(
                "{}: neither a file, a directory nor a symbolic link",
                e.path().display().to_string().escape_debug()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_names_links_and_the_execute_bit_count_times_do_not() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("p");
        fs::create_dir_all(d.join("mkosi.profiles/qemu")).unwrap();
        fs::write(d.join("mkosi.conf"), "[Output]\n").unwrap();
        fs::write(d.join("mkosi.profiles/qemu/mkosi.conf"), "x").unwrap();
        let base = tree_sha256(&d).unwrap();
        assert_eq!(base.len(), 64);

        // Times do not count.
        let f = fs::File::open(d.join("mkosi.conf")).unwrap();
        f.set_modified(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(tree_sha256(&d).unwrap(), base);

        let changed = |f: &dyn Fn(), undo: &dyn Fn(), what: &str| {
            f();
            assert_ne!(tree_sha256(&d).unwrap(), base, "{what} must change the hash");
            undo();
            assert_eq!(tree_sha256(&d).unwrap(), base, "undoing {what}");
        };
        let conf = d.join("mkosi.conf");
        changed(&|| fs::write(&conf, "[Output]\n ").unwrap(), &|| fs::write(&conf, "[Output]\n").unwrap(), "content");
        changed(
            &|| fs::set_permissions(&conf, fs::Permissions::from_mode(0o755)).unwrap(),
            &|| fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap(),
            "the execute bit",
        );
        let empty = d.join("mkosi.extra");
        changed(&|| fs::create_dir(&empty).unwrap(), &|| fs::remove_dir(&empty).unwrap(), "an empty directory");
        let link = d.join("l");
        changed(
            &|| std::os::unix::fs::symlink("mkosi.conf", &link).unwrap(),
            &|| fs::remove_file(&link).unwrap(),
            "a symlink",
        );
        // A rename is a change even with the same bytes.
        let (a, b) = (d.join("mkosi.profiles/qemu/mkosi.conf"), d.join("mkosi.profiles/qemu/mkosi.con"));
        changed(&|| fs::rename(&a, &b).unwrap(), &|| fs::rename(&b, &a).unwrap(), "a rename");

        // The same tree elsewhere has the same hash.
        let copy = t.path().join("copy");
        fs::create_dir_all(copy.join("mkosi.profiles/qemu")).unwrap();
        fs::write(copy.join("mkosi.conf"), "[Output]\n").unwrap();
        fs::write(copy.join("mkosi.profiles/qemu/mkosi.conf"), "x").unwrap();
        assert_eq!(tree_sha256(&copy).unwrap(), base);
    }

    /// Files applied after mkosi's cache point, and files mkosi does not read, do not change the
    /// cache digest; a configuration file does.
    #[test]
    fn cache_digest_ignores_what_is_applied_after_the_cache() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("mkosi.conf.d/50-image/mkosi.extra/etc")).unwrap();
        fs::create_dir_all(d.join("mkosi.profiles/qemu")).unwrap();
        fs::write(d.join("mkosi.conf"), "[Output]\n").unwrap();
        fs::write(d.join("mkosi.conf.d/50-image/mkosi.conf"), "[Content]\nPackages=a\n").unwrap();
        fs::write(d.join("mkosi.profiles/qemu/mkosi.conf"), "").unwrap();
        let base = cache_relevant_sha256(d).unwrap();
        let same = |what: &str, f: &dyn Fn()| {
            f();
            assert_eq!(cache_relevant_sha256(d).unwrap(), base, "{what} must not change the cache digest");
        };
        same("an extra tree file", &|| fs::write(d.join("mkosi.conf.d/50-image/mkosi.extra/etc/f"), "x").unwrap());
        same("a postinst script", &|| fs::write(d.join("mkosi.conf.d/50-image/mkosi.postinst.chroot"), "x").unwrap());
        same("nodeimg.json", &|| fs::write(d.join("mkosi.profiles/qemu/nodeimg.json"), "{}").unwrap());
        same("the lock", &|| fs::write(d.join("packages.lock"), "x").unwrap());
        assert_ne!(tree_sha256(d).unwrap(), base, "the full tree hash still sees them");
        fs::write(d.join("mkosi.conf.d/50-image/mkosi.conf"), "[Content]\nPackages=b\n").unwrap();
        assert_ne!(cache_relevant_sha256(d).unwrap(), base, "a configuration change changes it");
        fs::create_dir_all(d.join("mkosi.skeleton")).unwrap();
        fs::write(d.join("mkosi.skeleton/f"), "x").unwrap();
        let with_skeleton = cache_relevant_sha256(d).unwrap();
        fs::write(d.join("mkosi.skeleton/f"), "y").unwrap();
        assert_ne!(cache_relevant_sha256(d).unwrap(), with_skeleton, "a skeleton tree is installed before the cache");
    }

    /// The in-memory digest is the on-disk one of the same tree.
    #[test]
    fn files_in_memory_hash_as_on_disk() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("a/b")).unwrap();
        fs::write(d.join("a/b/c.conf"), "c").unwrap();
        fs::write(d.join("a/x"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(d.join("a/x"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(d.join("mkosi.conf"), "[Output]\n").unwrap();
        fs::write(d.join("a.conf"), "").unwrap();
        let mem = files_sha256([
            ("mkosi.conf", false, b"[Output]\n" as &[u8]),
            ("a.conf", false, b""),
            ("a/x", true, b"#!/bin/sh\n"),
            ("a/b/c.conf", false, b"c"),
        ]);
        assert_eq!(mem, tree_sha256(d).unwrap());
    }

    #[test]
    fn a_socket_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let _l = std::os::unix::net::UnixListener::bind(t.path().join("sock")).unwrap();
        let err = tree_sha256(t.path()).unwrap_err();
        assert!(err.to_string().contains("neither a file"), "{err}");
    }
}
