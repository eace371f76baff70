//! The profile directory (`mkosi-profiles/`): which platforms and overlays exist, and what each
//! adds to the kernel command line.
//!
//! The directory is an mkosi configuration directory: `mkosi.conf` is the base profile and
//! `mkosi.profiles/NAME/` are mkosi profiles. nodeimg distinguishes two kinds:
//!
//! * a **platform** (`qemu`, `gcp`, …) may only add kernel command-line keys, so every platform
//!   boots the same root; nodeimg builds the root once and derives each platform's UKI from it;
//! * an **overlay** (`test`) changes the root; its `mkosi.conf` says so with a `# nodeimg: overlay`
//!   line. An overlay is combined with the platforms it is built for.
//!
//! nodeimg reads `KernelCommandLine=` itself, with mkosi's own INI rules (`parse_ini` in mkosi
//! 25's `config.py`: `#` starts a comment anywhere on a line, indented lines continue a value, the
//! same key may repeat, an empty value clears the list), and checks its reading against the
//! command line mkosi put into the UKI after every build.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// The platform built when none is named.
pub const DEFAULT_PLATFORM: &str = "qemu";

/// The marker line that makes a profile an overlay.
const OVERLAY_MARKER: &str = "# nodeimg: overlay";

/// Whether a profile changes the root or only the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    Platform,
    Overlay,
}

/// One `mkosi.profiles/NAME/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub kind: ProfileKind,
    /// The `KernelCommandLine=` words the profile adds, in order.
    pub kernel_command_line: Vec<String>,
}

/// Everything in a profile directory nodeimg needs to know.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    pub dir: PathBuf,
    /// `KernelCommandLine=` of the base profile.
    pub base_command_line: Vec<String>,
    /// `ImageId=` and `ImageVersion=` of the base profile.
    pub image_id: String,
    pub image_version: String,
    pub profiles: BTreeMap<String, Profile>,
}

/// The profiles one build uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Platforms, in the order given (the first is the one mkosi builds natively).
    pub platforms: Vec<String>,
    /// Overlays, in the order given.
    pub overlays: Vec<String>,
}

impl ProfileSet {
    /// Reads `dir/mkosi.conf` and every `dir/mkosi.profiles/*/mkosi.conf` (or `*.conf`).
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let base = dir.join("mkosi.conf");
        let base_text = read(&base)?;
        let settings = parse_ini(&base_text);
        let image_id = last_value(&settings, "Output", "ImageId")
            .ok_or_else(|| Error::Profile(format!("{}: no ImageId= in [Output]", base.display())))?;
        let image_version = last_value(&settings, "Output", "ImageVersion")
            .ok_or_else(|| Error::Profile(format!("{}: no ImageVersion= in [Output]", base.display())))?;
        let mut profiles = BTreeMap::new();
        let pdir = dir.join("mkosi.profiles");
        let entries = fs::read_dir(&pdir).map_err(|error| Error::Read { path: pdir.clone(), error })?;
        for entry in entries {
            let entry = entry.map_err(|error| Error::Read { path: pdir.clone(), error })?;
            let path = entry.path();
            let (name, conf) = if path.is_dir() {
                (entry.file_name(), path.join("mkosi.conf"))
            } else if path.extension().is_some_and(|e| e == "conf") {
                (path.file_stem().unwrap_or_default().to_owned(), path.clone())
            } else {
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            let text = read(&conf)?;
            let kind = if text.lines().any(|l| l.trim() == OVERLAY_MARKER) {
                ProfileKind::Overlay
            } else {
                ProfileKind::Platform
            };
            profiles.insert(
                name.clone(),
                Profile { name, kind, kernel_command_line: kernel_command_line(&parse_ini(&text)) },
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            base_command_line: kernel_command_line(&settings),
            image_id,
            image_version,
            profiles,
        })
    }

    /// Names of the platform profiles, sorted.
    pub fn platforms(&self) -> Vec<&str> {
        self.of_kind(ProfileKind::Platform)
    }

    /// Names of the overlay profiles, sorted.
    pub fn overlays(&self) -> Vec<&str> {
        self.of_kind(ProfileKind::Overlay)
    }

    fn of_kind(&self, kind: ProfileKind) -> Vec<&str> {
        self.profiles.values().filter(|p| p.kind == kind).map(|p| p.name.as_str()).collect()
    }

    /// Resolves `--profile NAME…` / `--all`: unknown names are an error listing the known ones;
    /// no platform means [`DEFAULT_PLATFORM`].
    pub fn select(&self, names: &[String], all: bool) -> Result<Selection, Error> {
        let mut sel = Selection { platforms: Vec::new(), overlays: Vec::new() };
        for name in names {
            let p = self.profiles.get(name).ok_or_else(|| Error::UnknownProfile {
                name: name.clone(),
                dir: self.dir.clone(),
                known: self.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
            let list = match p.kind {
                ProfileKind::Platform => &mut sel.platforms,
                ProfileKind::Overlay => &mut sel.overlays,
            };
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
        if all {
            for p in self.platforms() {
                if !sel.platforms.iter().any(|s| s == p) {
                    sel.platforms.push(p.to_owned());
                }
            }
        }
        if sel.platforms.is_empty() {
            if !self.profiles.contains_key(DEFAULT_PLATFORM) {
                return Err(Error::Profile(format!(
                    "{}: no platform given and the default platform {DEFAULT_PLATFORM:?} does not exist",
                    self.dir.display()
                )));
            }
            sel.platforms.push(DEFAULT_PLATFORM.to_owned());
        }
        Ok(sel)
    }

    /// The kernel command line mkosi writes into the UKI for `platform` with `overlays`, given
    /// the verity root hash: `roothash=` first, then the base profile's words, the platform's,
    /// the overlays' (mkosi's `finalize_cmdline`, profiles in the order they were selected).
    pub fn command_line(&self, roothash: &str, platform: &str, overlays: &[String]) -> String {
        let mut words = vec![format!("roothash={roothash}")];
        words.extend(self.base_command_line.iter().cloned());
        for name in std::iter::once(platform).chain(overlays.iter().map(String::as_str)) {
            if let Some(p) = self.profiles.get(name) {
                words.extend(p.kernel_command_line.iter().cloned());
            }
        }
        words.join(" ")
    }
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|error| Error::Read { path: path.to_path_buf(), error })
}

/// `(section, key, value)` in file order, following mkosi's `parse_ini`.
pub fn parse_ini(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut current: Option<(String, String)> = None;
    for raw in dedent(text).lines() {
        let line = raw.find('#').map_or(raw, |i| &raw[..i]);
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            if let Some((_, value)) = current.as_mut() {
                value.push('\n');
                value.push_str(line.trim());
                continue;
            }
        }
        if let (Some(s), Some((k, v))) = (section.as_ref(), current.take()) {
            out.push((s.clone(), k, v));
        }
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_owned());
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            current = Some((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if let (Some(s), Some((k, v))) = (section, current) {
        out.push((s, k, v));
    }
    out
}

/// Python's `textwrap.dedent`: removes the whitespace prefix common to all non-blank lines.
fn dedent(text: &str) -> String {
    let prefix =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    text.lines().map(|l| l.get(prefix..).unwrap_or(l.trim_start())).collect::<Vec<_>>().join("\n")
}

fn last_value(settings: &[(String, String, String)], section: &str, key: &str) -> Option<String> {
    settings.iter().rev().find(|(s, k, _)| s == section && k == key).map(|(_, _, v)| v.clone())
}

/// The accumulated `[Content] KernelCommandLine=` words (an empty assignment clears them).
fn kernel_command_line(settings: &[(String, String, String)]) -> Vec<String> {
    let mut words = Vec::new();
    for (s, k, v) in settings {
        if s == "Content" && k == "KernelCommandLine" {
            if v.trim().is_empty() {
                words.clear();
            } else {
                words.extend(v.split_whitespace().map(str::to_owned));
            }
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_follows_mkosi_rules() {
        let text = "[Content]\nKernelCommandLine=a b # comment\n  c\n  # only a comment\n  d\n\
                    Packages=x\n[Output]\nImageId=n\n[Content]\nKernelCommandLine=e\n";
        assert_eq!(kernel_command_line(&parse_ini(text)), ["a", "b", "c", "d", "e"]);
        let reset = "[Content]\nKernelCommandLine=a\nKernelCommandLine=\nKernelCommandLine=b\n";
        assert_eq!(kernel_command_line(&parse_ini(reset)), ["b"]);
        assert_eq!(last_value(&parse_ini(text), "Output", "ImageId").as_deref(), Some("n"));
    }

    #[test]
    fn the_repository_profiles_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mkosi-profiles");
        let set = ProfileSet::load(&dir).unwrap();
        assert_eq!(set.platforms(), ["aws", "azure", "gcp", "qemu"]);
        assert_eq!(set.overlays(), ["test"]);
        assert_eq!(set.image_id, "nodeimg");
        for p in set.platforms() {
            let words = &set.profiles[p].kernel_command_line;
            assert!(words.iter().any(|w| w.starts_with("console=")), "platform {p} sets a console: {words:?}");
        }
    }

    #[test]
    fn selection() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mkosi-profiles");
        let set = ProfileSet::load(&dir).unwrap();
        let sel = |names: &[&str], all| {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            set.select(&names, all)
        };
        assert_eq!(sel(&[], false).unwrap().platforms, ["qemu"]);
        let s = sel(&["test", "gcp", "gcp"], false).unwrap();
        assert_eq!((s.platforms, s.overlays), (vec!["gcp".into()], vec!["test".into()]));
        assert_eq!(sel(&["aws"], true).unwrap().platforms, ["aws", "azure", "gcp", "qemu"]);
        let err = sel(&["vmware"], false).unwrap_err();
        assert!(matches!(err, Error::UnknownProfile { ref name, .. } if name == "vmware"), "{err}");
        assert!(err.to_string().contains("aws, azure, gcp, qemu, test"), "{err}");
    }
}
