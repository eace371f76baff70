//! What `nodeimg build` and `nodeimg lock` check before mkosi runs.
//!
//! A build takes minutes before mkosi gets to installing packages, and a failure there (an
//! unlocked package, a missing tool, an output directory that cannot be written) is reported
//! far from its cause. Everything that can be known from the profile directory, the lock and the
//! machine is therefore checked first, each failure an input error (exit 2) that names the fix:
//!
//! * **The lock covers the profiles' package list.** [`requested_packages`] reads the package
//!   names the profiles ask for — `Packages=` (the image), `InitrdPackages=` (mkosi's default
//!   initrd) and `ToolsTreePackages=` (the tools tree), the lock's three scopes — from the files
//!   mkosi reads, in its order (`mkosi.conf`, `mkosi.conf.d/` sorted, then each profile's
//!   directory or `NAME.conf`; mkosi 25's `parse_config_one`), with mkosi's list rules (`,` or a
//!   new line between items, an empty assignment clears the list). A lock records every package
//!   including dependencies, so a pin proves nothing about what was *asked for*; since lock
//!   version 3 it also records the request list itself (`request` lines, [`crate::lock`]) and the
//!   build compares the two both ways: a package added to or removed from `Packages=` since the
//!   lock was made is named before mkosi runs. For a version-2 lock only an added name without a
//!   pin can be found. Items that are not plain package names (a path to a `.deb`, an apt
//!   pattern) are not checked here; `NAME=VERSION`, `NAME/RELEASE` and `NAME:ARCH` are read as
//!   `NAME`. `[Match]` sections and `Include=` are not evaluated: a profile tree that uses them
//!   is checked as if every section applied, and after the build the installed packages are
//!   compared with the lock as always.
//! * **Platforms only add command-line keys.** The root is built once and every further
//!   platform derived from it, and `nodeimg lock` resolves one platform; a platform profile that
//!   sets a package list would get neither its packages nor a lock for them. An overlay may ask
//!   only for packages the lock already pins (the lock is made without overlays).
//! * **The tools are there**: mkosi runs (`mkosi --version`, which also gives the version
//!   `build.json` records), `bwrap` when a platform is derived, `reprepro` for a package archive.
//! * **The output and cache directories can be written** (`access(2)`, nothing is created).
//!
//! Provenance needs no git: `build.json` identifies the profiles by the content hash of their
//! tree ([`crate::tree`]) and adds a commit only when there is one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::lock::{Lock, Requested, Scope};
use crate::profiles::{ProfileKind, ProfileSet, Selection};
use crate::run::{CommandError, CommandRunExt};
use crate::{read_err, Error};

/// The settings that ask for packages, with the lock scope each fills.
pub const PACKAGE_KEYS: [(&str, Scope); 3] =
    [("Packages", Scope::Image), ("InitrdPackages", Scope::Initrd), ("ToolsTreePackages", Scope::Tools)];

/// Where a package name was asked for: the file and the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub file: PathBuf,
    pub key: &'static str,
}

/// Package names asked for, per scope (every scope present), each with where it was asked.
pub type Requests = BTreeMap<Scope, BTreeMap<String, Asked>>;

/// The configuration files mkosi reads for `path` (a directory: its `mkosi.conf`, then
/// `mkosi.conf.d/` sorted, directories recursively; a file: itself), in mkosi's order.
pub(crate) fn conf_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    if !path.is_dir() {
        if path.is_file() {
            out.push(path.to_path_buf());
        }
        return Ok(());
    }
    let conf = path.join("mkosi.conf");
    if conf.is_file() {
        out.push(conf);
    }
    let d = path.join("mkosi.conf.d");
    if d.is_dir() {
        let mut entries: Vec<PathBuf> =
            fs::read_dir(&d).map_err(read_err(&d))?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x == "conf") {
                conf_files(&e, out)?;
            }
        }
    }
    Ok(())
}

/// The files of profile `name` (`mkosi.profiles/NAME/…`, then `mkosi.profiles/NAME.conf`).
fn profile_files(dir: &Path, name: &str) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    conf_files(&dir.join("mkosi.profiles").join(name), &mut files)?;
    conf_files(&dir.join("mkosi.profiles").join(format!("{name}.conf")), &mut files)?;
    Ok(files)
}

/// Every package setting in `files`, in order: (file, key, scope, value).
fn package_settings(files: &[PathBuf]) -> Result<Vec<(PathBuf, &'static str, Scope, String)>, Error> {
    let mut out = Vec::new();
    for f in files {
        let text = crate::read_small_text(f, crate::MAX_PROFILE_FILE).map_err(read_err(f))?;
        for (_, k, v) in crate::profiles::parse_ini(&text) {
            if let Some((key, scope)) = PACKAGE_KEYS.iter().find(|(key, _)| *key == k) {
                out.push((f.clone(), *key, *scope, v));
            }
        }
    }
    Ok(out)
}

/// The package name an item of a package list names, if it is a plain one: `NAME`,
/// `NAME=VERSION`, `NAME/RELEASE`, `NAME:ARCH`. `None` for a `.deb` path or an apt pattern.
fn item_name(item: &str) -> Option<&str> {
    if item.starts_with(['.', '/', '~']) {
        return None;
    }
    let name = item.split(['=', '/']).next().unwrap_or(item);
    let name = name.split(':').next().unwrap_or(name);
    crate::lock::valid_name(name).then_some(name)
}

/// Applies package settings with mkosi's list rules to `into`.
fn apply(into: &mut Requests, settings: Vec<(PathBuf, &'static str, Scope, String)>) {
    for (file, key, scope, value) in settings {
        let list = into.get_mut(&scope).expect("every scope");
        if value.is_empty() {
            list.clear();
            continue;
        }
        for item in value.split([',', '\n']).map(str::trim).filter(|i| !i.is_empty()) {
            if let Some(name) = item_name(item) {
                list.insert(name.to_owned(), Asked { file: file.clone(), key });
            }
        }
    }
}

fn empty_requests() -> Requests {
    Scope::ALL.into_iter().map(|s| (s, BTreeMap::new())).collect()
}

/// The package names the base profile of `dir` and `profiles` (in order) ask for.
pub fn requested_packages(dir: &Path, profiles: &[&str]) -> Result<Requests, Error> {
    let mut files = Vec::new();
    conf_files(dir, &mut files)?;
    for p in profiles {
        files.extend(profile_files(dir, p)?);
    }
    let mut out = empty_requests();
    apply(&mut out, package_settings(&files)?);
    Ok(out)
}

/// The names only, as a lock records them.
pub fn names(requests: &Requests) -> Requested {
    requests.iter().map(|(s, m)| (*s, m.keys().cloned().collect())).collect()
}

/// What `nodeimg lock` resolves and records: the base profile with the lock platform.
pub fn lock_requests(set: &ProfileSet) -> Result<Requests, Error> {
    let platform = set.lock_platform()?;
    requested_packages(&set.dir, &[platform])
}

/// A platform profile that sets a package list is refused (see the module documentation).
pub fn check_platforms(set: &ProfileSet) -> Result<(), Error> {
    for p in set.profiles.values().filter(|p| p.kind == ProfileKind::Platform) {
        if let Some((file, key, _, _)) = package_settings(&profile_files(&set.dir, &p.name)?)?.into_iter().next() {
            return Err(Error::Profile(format!(
                "{}: platform {} sets {key}=, but a platform profile may only add kernel command-line keys \
                 (the root is built once for every platform, and the lock is made for one): put the packages \
                 into {key}= of {} and run `nodeimg lock --profiles-dir {}`",
                file.display(),
                p.name,
                set.dir.join("mkosi.conf").display(),
                set.dir.display()
            )));
        }
    }
    Ok(())
}

/// Whether `lock` was made for the package list the profiles of `sel` ask for (see the module
/// documentation); the error lists every difference and names the fix.
pub fn check_lock_covers(set: &ProfileSet, sel: &Selection, lock: &Lock, lock_path: &Path) -> Result<(), Error> {
    check_platforms(set)?;
    let now = lock_requests(set)?;
    let mut problems = Vec::new();
    for scope in Scope::ALL {
        let asked = &now[&scope];
        match &lock.requested {
            Some(recorded) => {
                let recorded = recorded.get(&scope).cloned().unwrap_or_default();
                for (name, a) in asked.iter().filter(|(n, _)| !recorded.contains(*n)) {
                    problems.push(format!(
                        "  {scope} {name}: added to {}= in {} since the lock was made",
                        a.key,
                        a.file.display()
                    ));
                }
                let key = PACKAGE_KEYS.iter().find(|(_, s)| *s == scope).map(|(k, _)| *k).unwrap_or_default();
                for name in recorded.iter().filter(|n| !asked.contains_key(*n)) {
                    problems.push(format!(
                        "  {scope} {name}: removed from {key}= since the lock was made (the lock still pins it)"
                    ));
                }
            }
            None => {
                for (name, a) in asked.iter().filter(|(n, _)| !lock.scope(scope).contains_key(*n)) {
                    problems.push(format!(
                        "  {scope} {name}: asked for by {}= in {}, but the lock does not list it",
                        a.key,
                        a.file.display()
                    ));
                }
            }
        }
    }
    for overlay in &sel.overlays {
        let mut own = empty_requests();
        let settings = package_settings(&profile_files(&set.dir, overlay)?)?;
        for (file, key, _, value) in &settings {
            if value.is_empty() {
                problems.push(format!(
                    "  overlay {overlay} clears {key}= in {}: the lock is made for the base profile's list",
                    file.display()
                ));
            }
        }
        apply(&mut own, settings);
        for (scope, asked) in &own {
            for (name, a) in asked.iter().filter(|(n, _)| !lock.scope(*scope).contains_key(*n)) {
                problems.push(format!(
                    "  {scope} {name}: asked for by overlay {overlay} ({}= in {}), but the lock does not list it; \
                     the lock is made without overlays: move it to {}= of {}",
                    a.key,
                    a.file.display(),
                    a.key,
                    set.dir.join("mkosi.conf").display()
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let note = if lock.requested.is_none() {
        " (This lock has no `request` lines, written by nodeimg before lock version 3, so only added \
         packages are found before mkosi runs; `nodeimg lock` records them.)"
    } else {
        ""
    };
    Err(Error::LockStale { path: lock_path.to_path_buf(), problems: problems.join("\n"), dir: set.dir.clone(), note })
}

/// Checks that mkosi at `mkosi` runs (`mkosi --version`) and returns its version.
pub fn check_mkosi(mkosi: &Path) -> Result<String, Error> {
    if !mkosi.exists() && mkosi.components().count() > 1 {
        return Err(Error::MkosiMissing { path: mkosi.to_path_buf() });
    }
    let out = Command::new(mkosi).arg("--version").run_capture().map_err(|e| match e {
        CommandError::Spawn { ref error, .. } if error.kind() == std::io::ErrorKind::NotFound && !mkosi.exists() => {
            Error::MkosiMissing { path: mkosi.to_path_buf() }
        }
        error => Error::MkosiBroken { path: mkosi.to_path_buf(), error },
    })?;
    let text = String::from_utf8_lossy(&out);
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        ["mkosi", version] => Ok(version.to_owned()),
        _ => Err(Error::Profile(format!(
            "{}: `--version` printed {:?}, not `mkosi VERSION`: is it mkosi? Run `nodeimg setup` (`make setup` in a checkout), or set NODEIMG_MKOSI",
            mkosi.display(),
            text.trim()
        ))),
    }
}

/// `program` on `$PATH`, if it is there.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Fails naming `program`, why it is needed and the Debian package that has it, when it is not
/// on `$PATH`.
pub fn check_tool(program: &'static str, package: &'static str, why: String) -> Result<(), Error> {
    match find_on_path(program) {
        Some(_) => Ok(()),
        None => Err(Error::ToolMissing { program, package, why }),
    }
}

/// The tools a package source needs besides mkosi: `reprepro` to index a directory of `.deb`s.
pub fn check_source_tools(source: &crate::source::PackageSource) -> Result<(), Error> {
    if let crate::source::PackageSource::Archive { dir } = source {
        check_tool("reprepro", "reprepro", format!("for mkosi to index the package archive {}", dir.display()))?;
    }
    Ok(())
}

/// Checks that a directory is (or can be created and is) writable without creating it: the
/// directory itself if it exists, else its nearest existing parent. `what` names it for the
/// message (`--out`).
pub fn check_writable_dir(dir: &Path, what: &'static str) -> Result<(), Error> {
    let bad = |reason: String| Error::NotWritable { path: dir.to_path_buf(), what, reason };
    let mut existing = dir;
    loop {
        match fs::metadata(existing) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(bad(format!("{} is not a directory", existing.display()))),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                match existing.parent() {
                    Some(p) if !p.as_os_str().is_empty() => existing = p,
                    _ => {
                        existing = Path::new(".");
                        break;
                    }
                }
            }
            Err(e) => return Err(bad(format!("{}: {e}", existing.display()))),
        }
    }
    access_rwx(existing).map_err(|e| bad(format!("{}: {e}", existing.display())))
}

/// `access(path, W_OK | X_OK)`: what the kernel says about writing into a directory (as root too:
/// a read-only file system is still refused).
#[allow(unsafe_code)]
fn access_rwx(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let r = unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn package_lists_follow_mkosi_rules_and_order() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(
            &d.join("mkosi.conf"),
            "[Content]\nPackages=\n  systemd\n  # a comment\n  udev,bash=5.2 , curl/trixie-backports\n\
             Packages=./local.deb\n  python3:amd64\n  ?name(foo)\nInitrdPackages=cryptsetup\n\
             [Build]\nToolsTreePackages=mtools\n",
        );
        write(&d.join("mkosi.conf.d/20-b.conf"), "[Content]\nPackages=b2\n");
        write(&d.join("mkosi.conf.d/10-a/mkosi.conf"), "[Content]\nPackages=a1\n");
        write(&d.join("mkosi.conf.d/ignored.txt"), "[Content]\nPackages=nope\n");
        write(&d.join("mkosi.profiles/o/mkosi.conf"), "[Content]\nInitrdPackages=\nPackages=extra\n");
        write(&d.join("mkosi.profiles/o.conf"), "[Content]\nPackages=also\n");
        let r = names(&requested_packages(d, &[]).unwrap());
        let list = |s: Scope| r[&s].iter().map(String::as_str).collect::<Vec<_>>();
        assert_eq!(list(Scope::Image), ["a1", "b2", "bash", "curl", "python3", "systemd", "udev"]);
        assert_eq!((list(Scope::Initrd), list(Scope::Tools)), (vec!["cryptsetup"], vec!["mtools"]));
        let r = requested_packages(d, &["o"]).unwrap();
        assert!(r[&Scope::Initrd].is_empty(), "an empty assignment clears the list");
        assert!(r[&Scope::Image].contains_key("extra") && r[&Scope::Image].contains_key("also"));
        assert_eq!(r[&Scope::Image]["b2"], Asked { file: d.join("mkosi.conf.d/20-b.conf"), key: "Packages" });
    }

    #[test]
    fn writable_directories() {
        let t = tempfile::tempdir().unwrap();
        check_writable_dir(t.path(), "--out").unwrap();
        check_writable_dir(&t.path().join("new/deeper"), "--out").unwrap();
        fs::write(t.path().join("file"), "").unwrap();
        for p in [t.path().join("file"), t.path().join("file/sub")] {
            let err = check_writable_dir(&p, "--out").unwrap_err().to_string();
            assert!(err.starts_with(&format!("cannot write to {} (--out)", p.display())), "{err}");
            assert!(err.contains("file is not a directory"), "{err}");
        }
    }

    #[test]
    fn mkosi_must_run() {
        let t = tempfile::tempdir().unwrap();
        let err = check_mkosi(&t.path().join("none/mkosi")).unwrap_err();
        assert!(matches!(err, Error::MkosiMissing { .. }), "{err}");
        let script = t.path().join("mkosi");
        write(&script, "#!/bin/sh\necho 'mkosi 25.3'\n");
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert_eq!(check_mkosi(&script).unwrap(), "25.3");
        // A wrapper whose interpreter is gone, one that fails, one that is not mkosi.
        write(&script, "#!/nonexistent/python3\n");
        let err = check_mkosi(&script).unwrap_err();
        assert!(err.to_string().starts_with(&format!("mkosi at {} does not run", script.display())), "{err}");
        write(&script, "#!/bin/sh\necho 'No module named mkosi' >&2\nexit 1\n");
        let err = check_mkosi(&script).unwrap_err();
        assert!(err.to_string().contains("does not run") && err.to_string().contains("make setup"), "{err}");
        assert!(format!("{:?}", std::error::Error::source(&err)).contains("No module named mkosi"), "{err:?}");
        write(&script, "#!/bin/sh\necho hello\n");
        let err = check_mkosi(&script).unwrap_err().to_string();
        assert!(err.contains("printed \"hello\", not `mkosi VERSION`"), "{err}");
    }
}
