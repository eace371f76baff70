//! The package lock (`packages.lock` in the profile directory): every Debian package of the image
//! **and of mkosi's tools tree** (the programs that make the image's bytes: systemd-repart,
//! mkfs.erofs, ukify), each pinned to one version *and to the sha256 of its `.deb`*.
//!
//! A version alone does not pin anything for long: the live Debian archive keeps one version per
//! package and suite, so a pinned version disappears at the next point release, and a version
//! names bytes only as far as one trusts the archive never to rebuild it. The sha256 is what a
//! rebuild years later checks against, whether the `.deb` comes from a snapshot of the archive,
//! from a directory of packages published with the release, or from the live archive.
//!
//! The lock does three things:
//! * before a build, nodeimg turns it into an apt preferences file (priority 1001 for the locked
//!   version of each package, `apt_preferences(5)`) in the sandbox trees it hands mkosi for the
//!   image and for the tools tree, so apt installs exactly the locked versions;
//! * after the build, every installed package (mkosi's manifest for the image, the dpkg status
//!   of mkosi's cached initrd and tools trees) must be in the lock at its version, and the `.deb` apt installed
//!   must have the locked sha256 — otherwise the build fails naming the package;
//! * it may name a **snapshot** of the Debian archive (`snapshot YYYYMMDDTHHMMSSZ`), which
//!   builds then use instead of the live archive, so the lock keeps working after the archive
//!   has moved on.
//!
//! Format (version 3): comment lines start with `#`; the other lines are
//!
//! ```text
//! snapshot 20261204T000000Z                      (optional, at most once)
//! request SCOPE NAME…                            (once per scope; the names the profiles ask for)
//! image NAME VERSION ARCHITECTURE SHA256         (a package of the image)
//! initrd NAME VERSION ARCHITECTURE SHA256        (a package of mkosi's default initrd)
//! tools NAME VERSION ARCHITECTURE SHA256         (a package of the tools tree)
//! ```
//!
//! sorted by scope and name, so the lock diffs well in review.
//!
//! The `request` lines (new in version 3) record which packages `nodeimg lock` was asked for:
//! the names in `Packages=`, `InitrdPackages=` and `ToolsTreePackages=` of the profiles it
//! resolved ([`crate::preflight::requested_packages`]). The pins name every package, dependencies
//! included, so they alone cannot tell that a package was *removed* from the profiles (its pin
//! stays, and the build fails only after mkosi ran); with the request lines `nodeimg build`
//! compares the profiles with the lock before mkosi runs, both ways, without resolving anything.
//! A version-2 lock (no `request` lines) still reads and builds: `requested` is `None`, and only
//! a requested name that has no pin is caught early.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::source::SnapshotStamp;
use crate::Error;

/// Which tree a package belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The image itself.
    Image,
    /// mkosi's default initrd (a tree of its own, built from the same archive into the UKI).
    Initrd,
    /// mkosi's tools tree (the programs that build the image).
    Tools,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Image, Scope::Initrd, Scope::Tools];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Image => "image",
            Scope::Initrd => "initrd",
            Scope::Tools => "tools",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One package's pinned version, architecture and `.deb` digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pin {
    pub version: String,
    pub architecture: String,
    /// sha256 of the `.deb`, lowercase hex.
    pub sha256: String,
}

impl Pin {
    /// The file name Debian's pool and apt's cache give the `.deb` (`:` of an epoch as `%3a`).
    pub fn deb_file_name(&self, name: &str) -> String {
        format!("{name}_{}_{}.deb", self.version.replace(':', "%3a"), self.architecture)
    }
}

/// Package name → pin, per scope, plus the snapshot the packages come from (if any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// The archive snapshot builds use by default.
    pub snapshot: Option<SnapshotStamp>,
    /// The image's packages.
    pub packages: BTreeMap<String, Pin>,
    /// The default initrd's packages.
    pub initrd: BTreeMap<String, Pin>,
    /// The tools tree's packages.
    pub tools: BTreeMap<String, Pin>,
    /// The package names the profiles asked for when the lock was made, per scope (`request`
    /// lines); `None` for a version-2 lock, which does not record them.
    pub requested: Option<Requested>,
}

/// Package names asked for, per scope (every scope present, possibly empty).
pub type Requested = BTreeMap<Scope, std::collections::BTreeSet<String>>;

/// How one package differs between two locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    Added {
        scope: Scope,
        name: String,
        version: String,
    },
    Removed {
        scope: Scope,
        name: String,
        version: String,
    },
    Changed {
        scope: Scope,
        name: String,
        from: String,
        to: String,
    },
    /// Same version, other bytes (a rebuilt binary, or a tampered mirror).
    Digest {
        scope: Scope,
        name: String,
        version: String,
        from: String,
        to: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Added { scope, name, version } => write!(f, "+ {scope} {name} {version}"),
            Self::Removed { scope, name, version } => write!(f, "- {scope} {name} {version}"),
            Self::Changed { scope, name, from, to } => write!(f, "~ {scope} {name} {from} -> {to}"),
            Self::Digest { scope, name, version, from, to } => {
                write!(f, "! {scope} {name} {version}: .deb sha256 {from} -> {to}")
            }
        }
    }
}

impl Change {
    /// Whether a line about a `.deb` file (`… NAME_VERSION_ARCH.deb …`) is about this package.
    pub fn concerns(&self, line: &str) -> bool {
        let (_, name) = self.key();
        line.split_whitespace().any(|w| w.starts_with(&format!("{name}_")) && w.ends_with(".deb"))
    }

    fn key(&self) -> (Scope, &str) {
        match self {
            Change::Added { scope, name, .. }
            | Change::Removed { scope, name, .. }
            | Change::Changed { scope, name, .. }
            | Change::Digest { scope, name, .. } => (*scope, name),
        }
    }
}

const HEADER: &str = "\
# nodeimg package lock v3: every Debian package of the image, its initrd and mkosi's tools tree, at the
# version apt is pinned to and with the sha256 of its .deb. Written by `nodeimg lock`; a build
# that installs anything else fails. `snapshot STAMP` (optional) names the archive snapshot
# builds resolve from by default; `request SCOPE NAME…` the packages the profiles asked for.
# SCOPE NAME VERSION ARCHITECTURE SHA256
";

impl Lock {
    /// Parses the lock file text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let mut lock = Lock::default();
        let mut request_lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| Error::Lock { path: path.to_path_buf(), line: i + 1, reason: why.to_owned() };
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                ["snapshot", stamp] => {
                    if lock.snapshot.is_some() {
                        return Err(bad("a second `snapshot` line"));
                    }
                    lock.snapshot = Some(stamp.parse().map_err(|e: String| bad(&e))?);
                }
                ["request", scope, ref names @ ..] => {
                    let scope = match scope {
                        "image" => Scope::Image,
                        "initrd" => Scope::Initrd,
                        "tools" => Scope::Tools,
                        _ => return Err(bad(&format!("request: {scope:?} is not image, initrd or tools"))),
                    };
                    let requested = lock
                        .requested
                        .get_or_insert_with(|| Scope::ALL.into_iter().map(|s| (s, Default::default())).collect());
                    if request_lines.contains(&scope) {
                        return Err(bad(&format!("a second `request {scope}` line")));
                    }
                    request_lines.push(scope);
                    let set = requested.get_mut(&scope).expect("every scope");
                    for name in names {
                        if !valid_name(name) {
                            return Err(bad(&format!("{:?} is not a Debian package name", name)));
                        }
                        set.insert((*name).to_owned());
                    }
                }
                [scope @ ("image" | "initrd" | "tools"), name, version, arch, sha256] => {
                    if !valid_name(name) {
                        return Err(bad(&format!("{:?} is not a Debian package name", name)));
                    }
                    if !valid_version(version) {
                        return Err(bad(&format!("{:?} is not a Debian version", version)));
                    }
                    if !valid_name(arch) {
                        return Err(bad(&format!("{:?} is not a Debian architecture", arch)));
                    }
                    if !is_sha256_hex(sha256) {
                        return Err(bad(&format!("{:?} is not a sha256 (64 lowercase hex digits)", sha256)));
                    }
                    let pin =
                        Pin { version: version.to_owned(), architecture: arch.to_owned(), sha256: sha256.to_owned() };
                    let map = match scope {
                        "image" => &mut lock.packages,
                        "initrd" => &mut lock.initrd,
                        _ => &mut lock.tools,
                    };
                    if map.insert(name.to_owned(), pin).is_some() {
                        return Err(bad(&format!("{scope} package {name} is listed twice")));
                    }
                }
                [first, _, _] if !["image", "initrd", "tools", "snapshot", "request"].contains(&first) => {
                    return Err(bad(
                        "a version-1 line (`NAME VERSION ARCHITECTURE`, no sha256): run `nodeimg lock` to write a version-2 lock",
                    ))
                }
                _ => return Err(bad("expected `image|initrd|tools NAME VERSION ARCHITECTURE SHA256` or `snapshot STAMP`")),
            }
        }
        Ok(lock)
    }

    /// The lock file text (sorted, with the explanatory header).
    pub fn to_text(&self) -> String {
        let mut s = HEADER.to_owned();
        if let Some(stamp) = &self.snapshot {
            s.push_str(&format!("snapshot {stamp}\n"));
        }
        if let Some(requested) = &self.requested {
            for scope in Scope::ALL {
                s.push_str(&format!("request {scope}"));
                for name in requested.get(&scope).into_iter().flatten() {
                    s.push(' ');
                    s.push_str(name);
                }
                s.push('\n');
            }
        }
        for scope in Scope::ALL {
            for (name, pin) in self.scope(scope) {
                s.push_str(&format!("{scope} {name} {} {} {}\n", pin.version, pin.architecture, pin.sha256));
            }
        }
        s
    }

    /// The packages of one scope.
    pub fn scope(&self, scope: Scope) -> &BTreeMap<String, Pin> {
        match scope {
            Scope::Image => &self.packages,
            Scope::Initrd => &self.initrd,
            Scope::Tools => &self.tools,
        }
    }

    /// Every package, with its scope.
    pub fn all(&self) -> impl Iterator<Item = (Scope, &String, &Pin)> {
        Scope::ALL.into_iter().flat_map(move |s| self.scope(s).iter().map(move |(n, p)| (s, n, p)))
    }

    /// The distinct `.deb`s of the lock (a package in both trees at the same version is one
    /// file), as (file name, sha256), sorted by file name.
    pub fn debs(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            self.all().map(|(_, name, pin)| (pin.deb_file_name(name), pin.sha256.clone())).collect();
        v.sort();
        v.dedup();
        v
    }

    /// What changed from `self` (old) to `new`, by scope and package name. The snapshot is not
    /// a package change.
    pub fn diff(&self, new: &Lock) -> Vec<Change> {
        let mut out = Vec::new();
        for scope in Scope::ALL {
            out.extend(diff_scope(scope, self.scope(scope), new.scope(scope)));
        }
        out.sort_by(|a, b| a.key().cmp(&b.key()));
        out
    }

    /// An apt preferences file that pins every package of `scopes` to its locked version (a pin
    /// applies only to packages apt installs, so one file serves the image and its initrd, which
    /// share one sandbox tree; each tree's own check after the build catches what apt chose).
    pub fn apt_preferences(&self, scopes: &[Scope]) -> String {
        let names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
        let mut s = format!("# Generated by nodeimg from packages.lock ({} packages).\n", names.join(", "));
        let mut pins: BTreeMap<&str, &str> = BTreeMap::new();
        for scope in scopes {
            for (name, pin) in self.scope(*scope) {
                pins.entry(name).or_insert(&pin.version);
            }
        }
        for (name, version) in pins {
            s.push_str(&format!("\nPackage: {name}\nPin: version {version}\nPin-Priority: 1001\n"));
        }
        s
    }
}

fn diff_scope(scope: Scope, old: &BTreeMap<String, Pin>, new: &BTreeMap<String, Pin>) -> Vec<Change> {
    let mut out = Vec::new();
    for (name, o) in old {
        match new.get(name) {
            None => out.push(Change::Removed { scope, name: name.clone(), version: o.version.clone() }),
            Some(n) if n.version != o.version => {
                out.push(Change::Changed { scope, name: name.clone(), from: o.version.clone(), to: n.version.clone() })
            }
            Some(n) if n.sha256 != o.sha256 => out.push(Change::Digest {
                scope,
                name: name.clone(),
                version: o.version.clone(),
                from: o.sha256.clone(),
                to: n.sha256.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, n) in new {
        if !old.contains_key(name) {
            out.push(Change::Added { scope, name: name.clone(), version: n.version.clone() });
        }
    }
    out
}

/// A package as a tree reports it installed (name → version, architecture): mkosi's manifest
/// for the image, dpkg's status file for the tools tree.
pub type Installed = BTreeMap<String, (String, String)>;

/// Reads the `packages` of an mkosi JSON manifest (`ManifestFormat=json`).
pub fn from_mkosi_manifest(json: &[u8], path: &Path) -> Result<Installed, Error> {
    #[derive(Deserialize)]
    struct Manifest {
        packages: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
        version: String,
        architecture: String,
    }
    let m: Manifest =
        serde_json::from_slice(json).map_err(|error| Error::Manifest { path: path.to_path_buf(), error })?;
    Ok(m.packages.into_iter().map(|p| (p.name, (p.version, p.architecture))).collect())
}

/// Reads the installed packages of a dpkg status file (`var/lib/dpkg/status`, deb822 stanzas;
/// only those with `Status: install ok installed`).
pub fn from_dpkg_status(text: &str) -> Installed {
    let mut out = Installed::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')).map(|v| v.trim()))
        };
        if let (Some(name), Some(version), Some(arch), Some("install ok installed")) =
            (field("Package"), field("Version"), field("Architecture"), field("Status"))
        {
            out.insert(name.to_owned(), (version.to_owned(), arch.to_owned()));
        }
    }
    out
}

/// What a tree has installed against what the lock pins for it: versions only (the digests are
/// checked on the `.deb`s). Empty when they agree.
pub fn compare_installed(scope: Scope, lock: &Lock, installed: &Installed) -> Vec<Change> {
    let pinned = lock.scope(scope);
    let mut out = Vec::new();
    for (name, pin) in pinned {
        match installed.get(name) {
            None => out.push(Change::Removed { scope, name: name.clone(), version: pin.version.clone() }),
            Some((v, _)) if *v != pin.version => {
                out.push(Change::Changed { scope, name: name.clone(), from: pin.version.clone(), to: v.clone() })
            }
            Some(_) => {}
        }
    }
    for (name, (v, _)) in installed {
        if !pinned.contains_key(name) {
            out.push(Change::Added { scope, name: name.clone(), version: v.clone() });
        }
    }
    out
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Debian Policy 5.6.1: lowercase letters, digits, `+ - .`, at least two characters, starting
/// with an alphanumeric. (`:arch` qualifiers are not part of the name.)
pub(crate) fn valid_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// Debian Policy 5.6.12: `[epoch:]upstream[-revision]`, with the characters it allows.
fn valid_version(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || ".+-~:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn lock(text: &str) -> Lock {
        Lock::parse(text, Path::new("packages.lock")).unwrap()
    }

    #[test]
    fn round_trip_and_diff() {
        let old = lock(&format!(
            "# c\nimage systemd 257.13-1~deb13u1 amd64 {A}\nimage bash 5.2.37-2+b10 amd64 {A}\nimage udev 257 amd64 {A}\n\
             tools erofs-utils 1.8 amd64 {A}\nsnapshot 20261204T000000Z\n"
        ));
        assert_eq!(lock(&old.to_text()), old);
        assert_eq!(old.snapshot.as_ref().unwrap().to_string(), "20261204T000000Z");
        let new = lock(&format!(
            "image bash 5.2.37-2+b11 amd64 {A}\nimage systemd 257.13-1~deb13u1 amd64 {B}\nimage libc6 2.41-12 amd64 {A}\n\
             tools erofs-utils 1.8 amd64 {A}\ntools mtools 4 amd64 {A}\n"
        ));
        let diff: Vec<String> = old.diff(&new).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            diff,
            [
                "~ image bash 5.2.37-2+b10 -> 5.2.37-2+b11".to_owned(),
                "+ image libc6 2.41-12".to_owned(),
                format!("! image systemd 257.13-1~deb13u1: .deb sha256 {A} -> {B}"),
                "- image udev 257".to_owned(),
                "+ tools mtools 4".to_owned(),
            ]
        );
        assert!(old.diff(&old).is_empty());
    }

    #[test]
    fn bad_lines_name_the_line() {
        for (text, want) in [
            ("image bash 5.2\n".to_owned(), "line 1: expected `image|initrd|tools NAME VERSION ARCHITECTURE SHA256`"),
            ("bash 5.2 amd64\n".to_owned(), "line 1: a version-1 line"),
            (format!("# x\nimage Bash 5.2 amd64 {A}\n"), "line 2: \"Bash\" is not a Debian package name"),
            (format!("image bash v5 amd64 {A}\n"), "line 1: \"v5\" is not a Debian version"),
            ("image bash 5 amd64 abc\n".to_owned(), "line 1: \"abc\" is not a sha256"),
            (format!("image bash 5 amd64 {A}\nimage bash 6 amd64 {A}\n"), "line 2: image package bash is listed twice"),
            ("snapshot 2026-12-04\n".to_owned(), "line 1: snapshot \"2026-12-04\" is not YYYYMMDDTHHMMSSZ"),
            ("snapshot 20261204T000000Z\nsnapshot 20261204T000000Z\n".to_owned(), "line 2: a second `snapshot` line"),
            (format!("image b\u{1b}[2J 5 amd64 {A}\n"), "\\u{1b}"),
        ] {
            let err = Lock::parse(&text, Path::new("packages.lock")).unwrap_err();
            assert!(err.to_string().contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn request_lines() {
        // Version 2: no request lines, nothing recorded.
        assert_eq!(lock(&format!("image bash 5 amd64 {A}\n")).requested, None);
        let l = lock(&format!("request image udev systemd\nrequest tools\nimage bash 5 amd64 {A}\n"));
        let r = l.requested.as_ref().unwrap();
        assert_eq!(r[&Scope::Image].iter().collect::<Vec<_>>(), ["systemd", "udev"]);
        assert!(r[&Scope::Initrd].is_empty() && r[&Scope::Tools].is_empty());
        let text = l.to_text();
        assert!(text.contains("\nrequest image systemd udev\nrequest initrd\nrequest tools\nimage bash"), "{text}");
        assert_eq!(lock(&text), l);
        for (text, want) in [
            ("request boot x\n", "line 1: request: \"boot\" is not image, initrd or tools"),
            ("request tools\nrequest tools\n", "line 2: a second `request tools` line"),
            ("request image Bash\n", "line 1: \"Bash\" is not a Debian package name"),
        ] {
            let err = Lock::parse(text, Path::new("packages.lock")).unwrap_err();
            assert!(err.to_string().contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_same_package_in_both_trees_is_one_deb() {
        let l = lock(&format!("image libc6 2.41 amd64 {A}\ntools libc6 2.41 amd64 {A}\ntools bash 1:5 amd64 {B}\n"));
        assert_eq!(
            l.debs(),
            [("bash_1%3a5_amd64.deb".to_owned(), B.to_owned()), ("libc6_2.41_amd64.deb".to_owned(), A.to_owned())]
        );
    }

    #[test]
    fn mkosi_manifest_and_dpkg_status() {
        let json = br#"{"manifest_version":1,"config":{"name":"nodeimg"},"packages":[
            {"type":"deb","name":"udev","version":"257.13-1~deb13u1","architecture":"amd64","size":1,"source":"systemd"},
            {"type":"deb","name":"bash","version":"5.2.37-2+b10","architecture":"amd64","size":2}]}"#;
        let m = from_mkosi_manifest(json, Path::new("m.json")).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["bash", "udev"]);
        let err = from_mkosi_manifest(b"{}", Path::new("m.json")).unwrap_err();
        assert!(err.to_string().contains("m.json"), "{err}");

        let status = "Package: bash\nStatus: install ok installed\nPriority: required\nArchitecture: amd64\nVersion: 5.2\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\n\
                      Package: mtools\nStatus: install ok installed\nArchitecture: amd64\nVersion: 4.0\nDescription: x\n y\n";
        let s = from_dpkg_status(status);
        assert_eq!(s.keys().collect::<Vec<_>>(), ["bash", "mtools"]);
        assert_eq!(s["mtools"], ("4.0".to_owned(), "amd64".to_owned()));

        let l = lock(&format!("tools bash 5.2 amd64 {A}\ntools cpio 2 amd64 {A}\n"));
        let c: Vec<String> = compare_installed(Scope::Tools, &l, &s).iter().map(|c| c.to_string()).collect();
        assert_eq!(c, ["- tools cpio 2", "+ tools mtools 4.0"]);
    }

    #[test]
    fn preferences_pin_each_version() {
        let l = lock(&format!("image bash 5.2.37-2+b10 amd64 {A}\ntools mtools 4 amd64 {A}\n"));
        let p = l.apt_preferences(&[Scope::Image, Scope::Initrd]);
        assert!(p.contains("\nPackage: bash\nPin: version 5.2.37-2+b10\nPin-Priority: 1001\n"), "{p}");
        assert!(!p.contains("mtools"), "{p}");
        assert!(l.apt_preferences(&[Scope::Tools]).contains("Package: mtools"));
    }
}
