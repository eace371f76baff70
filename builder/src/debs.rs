//! The `.deb`s a build used, checked against the lock and kept by content.
//!
//! After every build, each package the lock names (image, initrd, tools tree) must be found as a
//! `.deb` — in the package archive the build was given, in apt's download cache, or in nodeimg's
//! store — whose sha256 is the locked one; a different one fails the build naming the package.
//! Checked files are kept in the **store**, `CACHE/debs/<sha256>.deb` (a hard link to apt's
//! download where possible), so that a release can publish exactly the packages its image was
//! built from (`nodeimg release --with-packages`) even after apt's cache was cleaned.
//!
//! A **package archive** (`--packages DIR`, what a release publishes) must hold exactly the
//! lock's `.deb`s under their Debian file names, each with its sha256: a missing, extra or
//! altered file is refused before mkosi runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::lock::Lock;
use crate::{read_err, write_err, Error};

/// sha256 (lowercase hex) of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    crate::build::hash_file(path).map(|(_, sha256)| sha256)
}

/// One problem with a package archive or a downloaded `.deb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebProblem {
    Missing { file: String, sha256: String },
    Extra { file: String },
    Altered { file: String, expected: String, actual: String },
}

impl std::fmt::Display for DebProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { file, sha256 } => write!(f, "missing {file} (sha256 {sha256})"),
            Self::Extra { file } => write!(f, "not in the lock: {}", file.escape_debug()),
            Self::Altered { file, expected, actual } => {
                write!(f, "{file} has sha256 {actual}, the lock says {expected}")
            }
        }
    }
}

/// Whether mkosi takes `name` from a package directory as a package (mkosi 25.3,
/// `PACKAGE_GLOBS`: `*.rpm`, `*.pkg.tar*`, `*.deb`, `*.ddeb`); anything else there (an index a
/// repository tool left) it ignores.
fn is_package_name(name: &str) -> bool {
    name.ends_with(".rpm") || name.contains(".pkg.tar") || name.ends_with(".deb") || name.ends_with(".ddeb")
}

/// Checks that `dir` holds exactly the lock's `.deb`s with their sha256s, and no other file
/// mkosi would take as a package.
pub fn check_archive(dir: &Path, lock: &Lock) -> Result<(), Error> {
    let want: BTreeMap<String, String> = lock.debs().into_iter().collect();
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for e in fs::read_dir(dir).map_err(read_err(dir))? {
        let e = e.map_err(read_err(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        // Index files a repository tool may leave beside the packages are not packages.
        if !is_package_name(&name) {
            continue;
        }
        match want.get(&name) {
            None => problems.push(DebProblem::Extra { file: name }),
            Some(sha) => {
                let actual = sha256_file(&e.path())?;
                if &actual != sha {
                    problems.push(DebProblem::Altered { file: name.clone(), expected: sha.clone(), actual });
                }
                seen.push(name);
            }
        }
    }
    for (file, sha256) in &want {
        if !seen.contains(file) {
            problems.push(DebProblem::Missing { file: file.clone(), sha256: sha256.clone() });
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort_by_key(|p| p.to_string());
    Err(Error::PackageArchive { dir: dir.to_path_buf(), problems: join(&problems) })
}

fn join(problems: &[DebProblem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

/// `CACHE/debs/`: checked `.deb`s by sha256.
#[derive(Debug, Clone)]
pub struct DebStore {
    dir: PathBuf,
}

impl DebStore {
    pub fn under(cache_dir: &Path) -> Self {
        Self { dir: cache_dir.join("debs") }
    }

    /// Where the `.deb` with `sha256` is kept.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.deb"))
    }

    /// Finds every `.deb` of the lock in `search` (directories of Debian-named files, in order)
    /// or the store, checks its sha256 and keeps it in the store. Fails naming each package
    /// whose file is missing or differs.
    pub fn check_and_keep(&self, lock: &Lock, search: &[&Path]) -> Result<(), Error> {
        fs::create_dir_all(&self.dir).map_err(write_err(&self.dir))?;
        let mut problems = Vec::new();
        for (file, sha) in lock.debs() {
            let stored = self.path(&sha);
            let candidate = search.iter().map(|d| d.join(&file)).find(|p| p.is_file());
            let Some(found) = candidate.or_else(|| stored.is_file().then(|| stored.clone())) else {
                problems.push(DebProblem::Missing { file, sha256: sha });
                continue;
            };
            let actual = sha256_file(&found)?;
            if actual != sha {
                problems.push(DebProblem::Altered { file, expected: sha, actual });
                continue;
            }
            if found != stored && !stored.is_file() {
                let tmp = self.dir.join(format!(".{sha}.tmp"));
                let _ = fs::remove_file(&tmp);
                if fs::hard_link(&found, &tmp).is_err() {
                    fs::copy(&found, &tmp).map_err(write_err(&tmp))?;
                }
                fs::rename(&tmp, &stored).map_err(write_err(&stored))?;
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::DebMismatch { problems: join(&problems) })
    }

    /// Writes the lock's `.deb`s from the store into `dest` under their Debian file names (a
    /// package archive, as [`check_archive`] accepts it).
    pub fn export(&self, lock: &Lock, dest: &Path) -> Result<Vec<(String, String)>, Error> {
        fs::create_dir_all(dest).map_err(write_err(dest))?;
        let debs = lock.debs();
        for (file, sha) in &debs {
            let src = self.path(sha);
            if !src.is_file() {
                return Err(Error::DebMismatch {
                    problems: format!(
                        "  missing {file} (sha256 {sha}) in {}: run `nodeimg build` with this lock first",
                        self.dir.display()
                    ),
                });
            }
            let out = dest.join(file);
            if fs::hard_link(&src, &out).is_err() {
                fs::copy(&src, &out).map_err(write_err(&out))?;
            }
        }
        Ok(debs)
    }
}

/// Removes from `dir` (apt's download cache) every `.deb` named as one of the lock's whose sha256
/// is not the locked one, and returns their names. A mirror that served other bytes under a locked
/// name must not leave them where the next build, from an honest source, finds them first: apt
/// would not install them (they do not match that source's index), but the package check would
/// take them for what was installed and fail that build too.
pub fn evict_altered(lock: &Lock, dir: &Path) -> Result<Vec<String>, Error> {
    let mut evicted = Vec::new();
    for (file, sha) in lock.debs() {
        let path = dir.join(&file);
        if path.is_file() && sha256_file(&path)? != sha {
            fs::remove_file(&path).map_err(write_err(&path))?;
            evicted.push(file);
        }
    }
    Ok(evicted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn lock_of(files: &[(&str, &[u8])]) -> Lock {
        let mut text = String::new();
        for (name, data) in files {
            text.push_str(&format!("image {name} 1.0 amd64 {}\n", sha(data)));
        }
        Lock::parse(&text, Path::new("packages.lock")).unwrap()
    }

    #[test]
    fn an_archive_must_hold_exactly_the_lock() {
        let t = tempfile::tempdir().unwrap();
        let lock = lock_of(&[("bash", b"bash"), ("dash", b"dash")]);
        fs::write(t.path().join("bash_1.0_amd64.deb"), b"bash").unwrap();
        fs::write(t.path().join("dash_1.0_amd64.deb"), b"dash").unwrap();
        fs::write(t.path().join("Packages"), b"index").unwrap();
        check_archive(t.path(), &lock).unwrap();

        fs::write(t.path().join("dash_1.0_amd64.deb"), b"dash!").unwrap();
        fs::write(t.path().join("evil_1_amd64.deb"), b"x").unwrap();
        fs::write(t.path().join("evil_1_amd64.ddeb"), b"x").unwrap();
        fs::write(t.path().join("evil-1-1-x86_64.pkg.tar.zst"), b"x").unwrap();
        fs::remove_file(t.path().join("bash_1.0_amd64.deb")).unwrap();
        let err = check_archive(t.path(), &lock).unwrap_err().to_string();
        for want in [
            format!("missing bash_1.0_amd64.deb (sha256 {})", sha(b"bash")),
            format!("dash_1.0_amd64.deb has sha256 {}, the lock says {}", sha(b"dash!"), sha(b"dash")),
            "not in the lock: evil_1_amd64.deb".to_owned(),
            "not in the lock: evil_1_amd64.ddeb".to_owned(),
            "not in the lock: evil-1-1-x86_64.pkg.tar.zst".to_owned(),
            t.path().display().to_string(),
        ] {
            assert!(err.contains(&want), "{want:?} in {err}");
        }
    }

    #[test]
    fn a_fifo_in_an_archive_is_refused_not_waited_on() {
        let t = tempfile::tempdir().unwrap();
        let lock = lock_of(&[("bash", b"bash")]);
        let fifo = t.path().join("bash_1.0_amd64.deb");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = check_archive(t.path(), &lock).unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert!(err.to_string().contains("bash_1.0_amd64.deb") && source == "not a regular file", "{err:?}");
    }

    #[test]
    fn store_keeps_checked_debs_and_refuses_others() {
        let t = tempfile::tempdir().unwrap();
        let apt = t.path().join("archives");
        fs::create_dir_all(&apt).unwrap();
        fs::write(apt.join("bash_1.0_amd64.deb"), b"bash").unwrap();
        let store = DebStore::under(&t.path().join("cache"));
        let lock = lock_of(&[("bash", b"bash")]);
        store.check_and_keep(&lock, &[&apt]).unwrap();
        assert_eq!(fs::read(store.path(&sha(b"bash"))).unwrap(), b"bash");

        // apt's cache cleaned: the store still has it.
        fs::remove_file(apt.join("bash_1.0_amd64.deb")).unwrap();
        store.check_and_keep(&lock, &[&apt]).unwrap();
        let out = t.path().join("export");
        store.export(&lock, &out).unwrap();
        check_archive(&out, &lock).unwrap();

        // Another file under the locked name fails, naming the package.
        fs::write(apt.join("bash_1.0_amd64.deb"), b"trojan").unwrap();
        let err = store.check_and_keep(&lock, &[&apt]).unwrap_err().to_string();
        assert!(err.contains("bash_1.0_amd64.deb has sha256") && err.contains(&sha(b"bash")), "{err}");
        let missing = lock_of(&[("dash", b"dash")]);
        let err = store.check_and_keep(&missing, &[&apt]).unwrap_err().to_string();
        assert!(err.contains("missing dash_1.0_amd64.deb"), "{err}");
    }

    #[test]
    fn altered_downloads_are_evicted_and_nothing_else() {
        let t = tempfile::tempdir().unwrap();
        let apt = t.path();
        let lock = lock_of(&[("bash", b"bash"), ("dash", b"dash"), ("cpio", b"cpio")]);
        fs::write(apt.join("bash_1.0_amd64.deb"), b"bash").unwrap();
        fs::write(apt.join("dash_1.0_amd64.deb"), b"trojan").unwrap();
        fs::write(apt.join("dash_1.1_amd64.deb"), b"a newer dash").unwrap();
        fs::write(apt.join("lock"), b"").unwrap();
        assert_eq!(evict_altered(&lock, apt).unwrap(), ["dash_1.0_amd64.deb"]);
        let mut left: Vec<String> =
            fs::read_dir(apt).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["bash_1.0_amd64.deb", "dash_1.1_amd64.deb", "lock"]);
        assert!(evict_altered(&lock, apt).unwrap().is_empty());
        // The store, which only ever holds checked files, still answers for the evicted name.
        let store = DebStore::under(&t.path().join("cache"));
        fs::create_dir_all(t.path().join("cache/debs")).unwrap();
        fs::write(store.path(&sha(b"dash")), b"dash").unwrap();
        fs::write(store.path(&sha(b"cpio")), b"cpio").unwrap();
        store.check_and_keep(&lock, &[apt]).unwrap();
    }
}
