//! The package lock (`mkosi-profiles/packages.lock`): every Debian package in the image, pinned
//! to one version.
//!
//! The lock does two things. Before a build, nodeimg turns it into an apt preferences file
//! (priority 1001 for the locked version of each package, `apt_preferences(5)`) inside a sandbox
//! tree it hands mkosi, so apt installs exactly the locked versions. After the build, nodeimg
//! compares mkosi's package manifest with the lock: a package that was added, dropped or came in
//! another version (the archive moved on and no longer has the locked one) fails the build with
//! the list of changes. `nodeimg lock` rebuilds without pins and rewrites the lock.
//!
//! Format: comment lines start with `#`; every other line is `NAME VERSION ARCHITECTURE`,
//! sorted by name, so the lock diffs well in review.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One package's pinned version and architecture.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pin {
    pub version: String,
    pub architecture: String,
}

/// Package name → pin, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lock {
    pub packages: BTreeMap<String, Pin>,
}

/// How one package differs between two locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    Added { name: String, version: String },
    Removed { name: String, version: String },
    Changed { name: String, from: String, to: String },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Added { name, version } => write!(f, "+ {name} {version}"),
            Self::Removed { name, version } => write!(f, "- {name} {version}"),
            Self::Changed { name, from, to } => write!(f, "~ {name} {from} -> {to}"),
        }
    }
}

const HEADER: &str = "\
# nodeimg package lock: every Debian package in the image, at the version nodeimg pins apt to.
# Written by `nodeimg lock`; a build whose packages differ from it fails.
# NAME VERSION ARCHITECTURE
";

impl Lock {
    /// Parses the lock file text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let mut packages = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| Error::Lock { path: path.to_path_buf(), line: i + 1, reason: why.to_owned() };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, version, arch] = fields[..] else {
                return Err(bad("expected `NAME VERSION ARCHITECTURE`"));
            };
            if !valid_name(name) {
                return Err(bad(&format!("{name:?} is not a Debian package name")));
            }
            if !valid_version(version) {
                return Err(bad(&format!("{version:?} is not a Debian version")));
            }
            let pin = Pin { version: version.to_owned(), architecture: arch.to_owned() };
            if packages.insert(name.to_owned(), pin).is_some() {
                return Err(bad(&format!("{name} is listed twice")));
            }
        }
        Ok(Self { packages })
    }

    /// The lock file text (sorted, with the explanatory header).
    pub fn to_text(&self) -> String {
        let mut s = HEADER.to_owned();
        for (name, pin) in &self.packages {
            s.push_str(&format!("{name} {} {}\n", pin.version, pin.architecture));
        }
        s
    }

    /// Reads the `packages` of an mkosi JSON manifest (`ManifestFormat=json`).
    pub fn from_mkosi_manifest(json: &[u8], path: &Path) -> Result<Self, Error> {
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
        let m: Manifest = serde_json::from_slice(json)
            .map_err(|e| Error::Manifest { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(Self {
            packages: m
                .packages
                .into_iter()
                .map(|p| (p.name, Pin { version: p.version, architecture: p.architecture }))
                .collect(),
        })
    }

    /// What changed from `self` (old) to `new`, by package name.
    pub fn diff(&self, new: &Lock) -> Vec<Change> {
        let mut out = Vec::new();
        for (name, old) in &self.packages {
            match new.packages.get(name) {
                None => out.push(Change::Removed { name: name.clone(), version: old.version.clone() }),
                Some(n) if n.version != old.version => {
                    out.push(Change::Changed { name: name.clone(), from: old.version.clone(), to: n.version.clone() })
                }
                Some(_) => {}
            }
        }
        for (name, n) in &new.packages {
            if !self.packages.contains_key(name) {
                out.push(Change::Added { name: name.clone(), version: n.version.clone() });
            }
        }
        out.sort_by(|a, b| change_name(a).cmp(change_name(b)));
        out
    }

    /// An apt preferences file that pins every package to its locked version.
    pub fn apt_preferences(&self) -> String {
        let mut s = String::from("# Generated by nodeimg from packages.lock.\n");
        for (name, pin) in &self.packages {
            s.push_str(&format!("\nPackage: {name}\nPin: version {}\nPin-Priority: 1001\n", pin.version));
        }
        s
    }
}

fn change_name(c: &Change) -> &str {
    match c {
        Change::Added { name, .. } | Change::Removed { name, .. } | Change::Changed { name, .. } => name,
    }
}

/// Debian Policy 5.6.1: lowercase letters, digits, `+ - .`, at least two characters, starting
/// with an alphanumeric. (`:arch` qualifiers are not part of the name.)
fn valid_name(s: &str) -> bool {
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

    fn lock(text: &str) -> Lock {
        Lock::parse(text, Path::new("packages.lock")).unwrap()
    }

    #[test]
    fn round_trip_and_diff() {
        let old = lock("# c\nsystemd 257.13-1~deb13u1 amd64\nbash 5.2.37-2+b10 amd64\nudev 257 amd64\n");
        assert_eq!(lock(&old.to_text()), old);
        let new = lock("bash 5.2.37-2+b11 amd64\nsystemd 257.13-1~deb13u1 amd64\nlibc6 2.41-12 amd64\n");
        let diff: Vec<String> = old.diff(&new).iter().map(|c| c.to_string()).collect();
        assert_eq!(diff, ["~ bash 5.2.37-2+b10 -> 5.2.37-2+b11", "+ libc6 2.41-12", "- udev 257"]);
        assert!(old.diff(&old).is_empty());
    }

    #[test]
    fn bad_lines_name_the_line() {
        for (text, want) in [
            ("bash 5.2\n", "line 1: expected `NAME VERSION ARCHITECTURE`"),
            ("# x\nBash 5.2 amd64\n", "line 2: \"Bash\" is not a Debian package name"),
            ("bash v5 amd64\n", "line 1: \"v5\" is not a Debian version"),
            ("bash 5 amd64\nbash 6 amd64\n", "line 2: bash is listed twice"),
        ] {
            let err = Lock::parse(text, Path::new("packages.lock")).unwrap_err();
            assert!(err.to_string().contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn mkosi_manifest() {
        let json = br#"{"manifest_version":1,"config":{"name":"nodeimg"},"packages":[
            {"type":"deb","name":"udev","version":"257.13-1~deb13u1","architecture":"amd64","size":1,"source":"systemd"},
            {"type":"deb","name":"bash","version":"5.2.37-2+b10","architecture":"amd64","size":2}]}"#;
        let l = Lock::from_mkosi_manifest(json, Path::new("m.json")).unwrap();
        assert_eq!(l.packages.keys().collect::<Vec<_>>(), ["bash", "udev"]);
        let err = Lock::from_mkosi_manifest(b"{}", Path::new("m.json")).unwrap_err();
        assert!(err.to_string().contains("m.json"), "{err}");
    }

    #[test]
    fn preferences_pin_each_version() {
        let p = lock("bash 5.2.37-2+b10 amd64\n").apt_preferences();
        assert!(p.contains("\nPackage: bash\nPin: version 5.2.37-2+b10\nPin-Priority: 1001\n"), "{p}");
    }
}
