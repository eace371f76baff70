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
//! Each platform directory also holds a `nodeimg.json` ([`PlatformConfig`]): what the platform's
//! `reference-values.json` holds besides the predicted PCRs (its attestation variant, which PCRs
//! are enforced, and the firmware and VM shapes to compute SEV-SNP and TDX launch values for).
//! It is data, not code, so that adding a platform or a VM shape is a change to the profiles.
//! An overlay has none.
//!
//! nodeimg reads `KernelCommandLine=` itself, with mkosi's own INI rules (`parse_ini` in mkosi
//! 25's `config.py`: `#` starts a comment anywhere on a line, indented lines continue a value, the
//! same key may repeat, an empty value clears the list), and checks its reading against the
//! command line mkosi put into the UKI after every build.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::toolscache::{PinnedFile, ToolsCache, PINNED_PREFIX};
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
    /// A platform's `nodeimg.json` (`None` for an overlay).
    pub config: Option<PlatformConfig>,
}

/// The name of a platform's configuration file, beside its `mkosi.conf`.
pub const PLATFORM_CONFIG: &str = "nodeimg.json";

/// `mkosi.profiles/<platform>/nodeimg.json`: what the build writes into the platform's
/// `reference-values.json` (the release crate's `Platform`) besides the predicted PCRs.
///
/// ```json
/// {"attestation_variant": "qemu-vtpm",
///  "enforce_pcrs": [4, 5, 7, 9, 11, 12, 13],
///  "snp": {"firmware": "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd",
///          "vmm_type": "qemu", "vcpu_type": "EPYC-v4", "vcpus": [1, 2, 4], "guest_features": "0x1"},
///  "tdx": {"firmware": "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd"}}
/// ```
///
/// * `attestation_variant` (required): named as Constellation names them (`qemu-vtpm`,
///   `gcp-sev-snp`, …), lower case, digits and `-`.
/// * `enforce_pcrs` (required): the vTPM PCRs whose predicted values are written with status
///   `enforced`, each once; `nodeimg build` refuses a PCR the boot-chain model does not predict
///   (it predicts 4, 5, 7, 9, 11, 12, 13). PCR 11 stands for the per-boot-phase values
///   (`pcr11`), which are always written. List only PCRs whose firmware is the one predicted (Debian's OVMF
///   without Secure Boot): 4, 9, 11, 12, 13 are the image's anywhere; 5 (GPT) and 7 (Secure Boot
///   databases) also depend on the firmware.
/// * `snp` (optional): SEV-SNP launch digests, one per vCPU count in `vcpus`, of `firmware`
///   (booting the UKI from disk, no measured direct boot), launched by `vmm_type` (`qemu`, `ec2`
///   or `gce`, any case) with `guest_features` (SEV_FEATURES; a number or a `"0x…"` string;
///   default 0x1) and the vCPU model `vcpu_type` (QEMU's `-cpu` name, as `nodeimg measure snp
///   --vcpu-type` takes it) or signature `vcpu_sig` (CPUID 1 EAX) — at most one of them; QEMU
///   needs one. `smt` (optional boolean): whether the VMs' guest policy may allow SMT, written
///   to the bundle as `snp_policy.smt` for `attest check` to enforce.
/// * `tdx` (optional): MRTD of `firmware` (`page_add_order` `single-pass`, the default, or
///   `two-pass`, as `nodeimg measure tdx --page-add-order`), and RTMR1 and RTMR2 of booting the
///   UKI from the disk image; RTMR0 is the platform's and is not written.
///
/// `firmware` ([`Firmware`]) is a pinned input, `debian:PACKAGE=VERSION:PATH` (a file of a
/// package of [`crate::toolscache::PINS`], found in the tools cache that `nodeimg setup` fills),
/// or a path relative to the profile directory (or absolute). Cloud platforms carry no `snp` or `tdx`: their firmware is the cloud's, not ours.
/// Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// The attestation variant.
    pub attestation_variant: String,
    /// The PCRs written as `enforced`, in the order given.
    pub enforce_pcrs: Vec<u32>,
    /// SEV-SNP launch digests to compute.
    #[serde(default)]
    pub snp: Option<SnpConfig>,
    /// TDX registers to compute.
    #[serde(default)]
    pub tdx: Option<TdxConfig>,
    /// The file this was read from (for messages about it).
    #[serde(skip)]
    pub source: PathBuf,
}

/// `snp` of a [`PlatformConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpConfig {
    /// The firmware image (a single OVMF `.fd` with SEV metadata).
    pub firmware: Firmware,
    /// The VMM, as sev-snp-measure's `--vmm-type` names it (checked by the caller).
    pub vmm_type: String,
    /// The vCPU model (checked by the caller).
    #[serde(default)]
    pub vcpu_type: Option<String>,
    /// The vCPU signature.
    #[serde(default, deserialize_with = "opt_number")]
    pub vcpu_sig: Option<u64>,
    /// The vCPU counts, one launch digest each.
    pub vcpus: Vec<u32>,
    /// SEV_FEATURES.
    #[serde(default = "snp_only", deserialize_with = "number")]
    pub guest_features: u64,
    /// Whether the VMs' SNP guest policy may allow SMT (the bundle's `snp_policy.smt`; absent:
    /// the bundle states no policy).
    #[serde(default)]
    pub smt: Option<bool>,
}

/// `tdx` of a [`PlatformConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxConfig {
    /// The firmware image (OVMF with TDVF metadata).
    pub firmware: Firmware,
    /// The order of TDH.MEM.PAGE.ADD and TDH.MR.EXTEND.
    #[serde(default)]
    pub page_add_order: PageAddOrder,
}

/// A platform's firmware image, as `nodeimg.json` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// `debian:PACKAGE=VERSION:PATH`: a file of a pinned package, from the tools cache.
    Pinned(PinnedFile),
    /// A path: `written` as nodeimg.json has it, `path` resolved against the profile directory
    /// by [`ProfileSet::load`].
    Path { written: String, path: PathBuf },
}

impl Firmware {
    /// The firmware as nodeimg.json names it (what `build.json` records).
    pub fn name(&self) -> String {
        match self {
            Self::Pinned(f) => f.to_string(),
            Self::Path { written, .. } => written.clone(),
        }
    }

    /// The file: in `tools` for a pinned one (which must be set up), else the resolved path.
    pub fn resolve(&self, tools: &ToolsCache) -> Result<PathBuf, Error> {
        match self {
            Self::Pinned(f) => tools.resolve(f),
            Self::Path { path, .. } => Ok(path.clone()),
        }
    }
}

impl<'de> Deserialize<'de> for Firmware {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.starts_with(PINNED_PREFIX) {
            return s.parse().map(Self::Pinned).map_err(de::Error::custom);
        }
        Ok(Self::Path { path: PathBuf::from(&s), written: s })
    }
}

/// The order in which the VMM adds and extends the TD's pages (see `measure::tdx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageAddOrder {
    /// Per page (upstream KVM and QEMU, Google Cloud).
    #[default]
    SinglePass,
    /// Per section (older out-of-tree TDX stacks).
    TwoPass,
}

fn snp_only() -> u64 {
    1
}

/// A JSON number, or a string in decimal or `0x` hex.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative integer or a string such as \"0x1\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
            let t = s.trim();
            let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16),
                None => t.parse(),
            };
            parsed.map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
        }
    }
    d.deserialize_any(V)
}

fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    number(d).map(Some)
}

impl PlatformConfig {
    /// Reads and checks `path`; relative firmware paths are resolved against `root` (the profile
    /// directory).
    pub fn load(path: &Path, root: &Path) -> Result<Self, Error> {
        let bad = |reason: String| Error::PlatformConfig { path: path.to_path_buf(), reason };
        let text = match crate::read_small(path, crate::MAX_PROFILE_FILE) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad(format!(
                    "missing: every platform profile says in {PLATFORM_CONFIG} which attestation variant and \
                     PCRs its reference values have (see builder::profiles::PlatformConfig or the README)"
                )))
            }
            Err(error) => return Err(Error::Read { path: path.to_path_buf(), error }),
        };
        let mut c: Self = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        c.check().map_err(bad)?;
        c.source = path.to_path_buf();
        for firmware in
            [c.snp.as_mut().map(|s| &mut s.firmware), c.tdx.as_mut().map(|t| &mut t.firmware)].into_iter().flatten()
        {
            if let Firmware::Path { path, .. } = firmware {
                *path = root.join(&*path);
            }
        }
        Ok(c)
    }

    /// The rules serde does not express.
    fn check(&self) -> Result<(), String> {
        let v = &self.attestation_variant;
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(format!("attestation_variant {v:?}: expected lower-case letters, digits and '-'"));
        }
        if self.enforce_pcrs.is_empty() {
            return Err("enforce_pcrs is empty: a platform enforces at least the image's PCRs".into());
        }
        for (i, p) in self.enforce_pcrs.iter().enumerate() {
            if *p > 23 {
                return Err(format!("enforce_pcrs[{i}]: PCR {p} does not exist (0-23)"));
            }
            if self.enforce_pcrs[..i].contains(p) {
                return Err(format!("enforce_pcrs[{i}]: PCR {p} is listed twice"));
            }
        }
        if let Some(s) = &self.snp {
            if s.firmware.name().is_empty() {
                return Err("snp.firmware is empty".into());
            }
            if s.vcpus.is_empty() {
                return Err("snp.vcpus is empty: give the vCPU counts to compute launch digests for".into());
            }
            for (i, n) in s.vcpus.iter().enumerate() {
                if *n == 0 {
                    return Err(format!("snp.vcpus[{i}]: a VM has at least one vCPU"));
                }
                if s.vcpus[..i].contains(n) {
                    return Err(format!("snp.vcpus[{i}]: {n} vCPUs is listed twice"));
                }
            }
            if s.vcpu_type.is_some() && s.vcpu_sig.is_some() {
                return Err("snp: give vcpu_type or vcpu_sig, not both".into());
            }
            if s.vcpu_sig.is_some_and(|v| v > u64::from(u32::MAX)) {
                return Err("snp.vcpu_sig does not fit in 32 bits (CPUID 1 EAX)".into());
            }
        }
        if self.tdx.as_ref().is_some_and(|t| t.firmware.name().is_empty()) {
            return Err("tdx.firmware is empty".into());
        }
        Ok(())
    }
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
    /// Reads `dir/mkosi.conf` and every `dir/mkosi.profiles/*/mkosi.conf` (or `*.conf`);
    /// relative firmware paths in `nodeimg.json` are resolved against `dir`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        Self::load_resolving(dir, dir)
    }

    /// [`ProfileSet::load`], with relative firmware paths resolved against `root` (an image
    /// project's directory, when `dir` is the tree composed from it: [`crate::project`]).
    pub fn load_resolving(dir: &Path, root: &Path) -> Result<Self, Error> {
        let base = dir.join("mkosi.conf");
        let settings = base_settings(dir)?;
        let image_id = last_value(&settings, "Output", "ImageId")
            .ok_or_else(|| Error::Profile(format!("{}: no ImageId= in [Output]", base.display())))?;
        let image_version = last_value(&settings, "Output", "ImageVersion")
            .ok_or_else(|| Error::Profile(format!("{}: no ImageVersion= in [Output]", base.display())))?;
        let mut profiles = BTreeMap::new();
        let pdir = dir.join("mkosi.profiles");
        if !pdir.is_dir() {
            return Err(Error::Profile(format!(
                "{}: no mkosi.profiles/ directory; an image profile directory has one profile per platform \
                 (mkosi.profiles/qemu/ with mkosi.conf and {PLATFORM_CONFIG}; copy mkosi-profiles/ to start)",
                dir.display()
            )));
        }
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
            if !conf.is_file() {
                return Err(Error::Profile(format!(
                    "{}: profile {name} has no mkosi.conf (a platform adds KernelCommandLine= there, an overlay \
                     starts it with {OVERLAY_MARKER:?})",
                    conf.display()
                )));
            }
            let text = read(&conf)?;
            let kind = if text.lines().any(|l| l.trim() == OVERLAY_MARKER) {
                ProfileKind::Overlay
            } else {
                ProfileKind::Platform
            };
            let config_path = path.join(PLATFORM_CONFIG);
            let config = match kind {
                ProfileKind::Platform if !path.is_dir() => {
                    return Err(Error::PlatformConfig {
                        path: path.clone(),
                        reason: format!(
                            "a platform profile is a directory with mkosi.conf and {PLATFORM_CONFIG}, not a single file"
                        ),
                    })
                }
                ProfileKind::Platform => Some(PlatformConfig::load(&config_path, root)?),
                ProfileKind::Overlay if config_path.exists() => {
                    return Err(Error::PlatformConfig {
                        path: config_path,
                        reason: format!(
                            "{name} is an overlay ({OVERLAY_MARKER:?} in its mkosi.conf), not a platform: \
                             it has no reference values of its own"
                        ),
                    })
                }
                ProfileKind::Overlay => None,
            };
            profiles.insert(
                name.clone(),
                Profile { name, kind, kernel_command_line: kernel_command_line(&parse_ini(&text)), config },
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

    /// The platform `nodeimg lock` resolves: [`DEFAULT_PLATFORM`] when there is one, else the first
    /// platform by name (platforms add no packages, so any one gives the same lock).
    pub fn lock_platform(&self) -> Result<&str, Error> {
        if self.profiles.get(DEFAULT_PLATFORM).is_some_and(|p| p.kind == ProfileKind::Platform) {
            return Ok(DEFAULT_PLATFORM);
        }
        self.platforms().first().copied().ok_or_else(|| {
            Error::Profile(format!(
                "{}: no platform profile (a directory with mkosi.conf and {PLATFORM_CONFIG}, e.g. \
                 mkosi.profiles/qemu/)",
                self.dir.join("mkosi.profiles").display()
            ))
        })
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
    crate::read_small_text(path, crate::MAX_PROFILE_FILE)
        .map_err(|error| Error::Read { path: path.to_path_buf(), error })
}

/// The settings of the base profile in mkosi's order: `mkosi.conf`, then `mkosi.conf.d/` (sorted,
/// directories by their own `mkosi.conf` and `mkosi.conf.d/`), where an image project's additions
/// are (see [`crate::project`]).
pub fn base_settings(dir: &Path) -> Result<Vec<(String, String, String)>, Error> {
    let base = dir.join("mkosi.conf");
    if !base.is_file() {
        return Err(Error::Profile(format!("{}: no such file (not an mkosi profile directory)", base.display())));
    }
    let mut files = Vec::new();
    crate::preflight::conf_files(dir, &mut files)?;
    let mut settings = Vec::new();
    for f in files {
        settings.extend(parse_ini(&read(&f)?));
    }
    Ok(settings)
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
        // The policy that used to be code: qemu enforces the firmware's PCRs 5 and 7 too and
        // carries SNP and TDX values for Debian's OVMF; clouds enforce the image's PCRs only.
        let qemu = set.profiles["qemu"].config.as_ref().unwrap();
        assert_eq!(
            (qemu.attestation_variant.as_str(), &qemu.enforce_pcrs[..]),
            ("qemu-vtpm", &[4, 5, 7, 9, 11, 12, 13][..])
        );
        let snp = qemu.snp.as_ref().unwrap();
        assert_eq!(snp.firmware.name(), "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd");
        assert!(matches!(&snp.firmware, Firmware::Pinned(f) if f.pin == &crate::toolscache::OVMF_TRIXIE));
        assert_eq!((snp.vcpus.as_slice(), snp.guest_features), (&[1, 2, 4][..], 1));
        assert_eq!(qemu.tdx.as_ref().unwrap().firmware, snp.firmware);
        for cloud in ["aws", "azure", "gcp"] {
            let c = set.profiles[cloud].config.as_ref().unwrap();
            assert_eq!(c.attestation_variant, format!("{cloud}-sev-snp"));
            assert_eq!(c.enforce_pcrs, [4, 9, 11, 12, 13], "{cloud}");
            assert!(c.snp.is_none() && c.tdx.is_none(), "{cloud}: the cloud's firmware is not ours to compute");
        }
        assert_eq!(set.profiles["test"].config, None);
    }

    /// A profile directory with one platform `p` whose nodeimg.json is `json` (none if `None`).
    fn one_platform(json: Option<&str>) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("mkosi.conf"), "[Output]\nImageId=n\nImageVersion=1\n").unwrap();
        let p = t.path().join("mkosi.profiles/p");
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("mkosi.conf"), "[Content]\nKernelCommandLine=console=ttyS0\n").unwrap();
        if let Some(json) = json {
            fs::write(p.join(PLATFORM_CONFIG), json).unwrap();
        }
        t
    }

    #[test]
    fn platform_config_errors_name_the_file_and_the_field() {
        let fw = r#""firmware": "tools/OVMF.fd""#;
        let cases: &[(&str, &str)] = &[
            ("{", "EOF while parsing an object at line 1 column 1"),
            (r#"{"attestation_variant": "qemu-vtpm"}"#, "missing field `enforce_pcrs`"),
            (r#"{"attestation_variant": "x", "enforce_pcrs": [4], "pcrs": []}"#, "unknown field `pcrs`"),
            (r#"{"attestation_variant": "Qemu", "enforce_pcrs": [4]}"#, "attestation_variant \"Qemu\""),
            (r#"{"attestation_variant": "x", "enforce_pcrs": []}"#, "enforce_pcrs is empty"),
            (r#"{"attestation_variant": "x", "enforce_pcrs": [4, 24]}"#, "enforce_pcrs[1]: PCR 24 does not exist"),
            (r#"{"attestation_variant": "x", "enforce_pcrs": [4, 4]}"#, "enforce_pcrs[1]: PCR 4 is listed twice"),
            (r#"{"attestation_variant": "x", "enforce_pcrs": [-1]}"#, "invalid value: integer `-1`"),
            (
                r#"{"attestation_variant": "x", "enforce_pcrs": [4], "snp": {"vmm_type": "qemu", "vcpus": [1]}}"#,
                "missing field `firmware`",
            ),
            (
                &format!(
                    r#"{{"attestation_variant": "x", "enforce_pcrs": [4], "snp": {{{fw}, "vmm_type": "qemu", "vcpus": []}}}}"#
                ),
                "snp.vcpus is empty",
            ),
            (
                &format!(
                    r#"{{"attestation_variant": "x", "enforce_pcrs": [4], "snp": {{{fw}, "vmm_type": "qemu", "vcpus": [2, 0]}}}}"#
                ),
                "snp.vcpus[1]: a VM has at least one vCPU",
            ),
            (
                &format!(
                    r#"{{"attestation_variant": "x", "enforce_pcrs": [4], "snp": {{{fw}, "vmm_type": "qemu", "vcpus": [1], "guest_features": "0xg"}}}}"#
                ),
                "invalid value: string \"0xg\", expected a non-negative integer or a string such as \"0x1\"",
            ),
            (
                &format!(
                    r#"{{"attestation_variant": "x", "enforce_pcrs": [4], "snp": {{{fw}, "vmm_type": "qemu", "vcpus": [1], "vcpu_type": "EPYC", "vcpu_sig": 1}}}}"#
                ),
                "give vcpu_type or vcpu_sig, not both",
            ),
            (
                &format!(
                    r#"{{"attestation_variant": "x", "enforce_pcrs": [4], "tdx": {{{fw}, "page_add_order": "three-pass"}}}}"#
                ),
                "unknown variant `three-pass`, expected `single-pass` or `two-pass`",
            ),
            (r#"{"attestation_variant": "x", "enforce_pcrs": [4], "tdx": {"firmware": ""}}"#, "tdx.firmware is empty"),
        ];
        for (json, want) in cases {
            let t = one_platform(Some(json));
            let err = ProfileSet::load(t.path()).unwrap_err();
            let path = t.path().join("mkosi.profiles/p/nodeimg.json");
            assert!(matches!(&err, Error::PlatformConfig { path: p, .. } if *p == path), "{json}: {err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("{}: ", path.display())) && msg.contains(want), "{json}: {msg}");
        }

        // A pinned firmware must be one of the pinned packages.
        let t = one_platform(Some(
            r#"{"attestation_variant": "x", "enforce_pcrs": [4], "tdx": {"firmware": "debian:ovmf=2024.11-1:usr/share/ovmf/OVMF.fd"}}"#,
        ));
        let err = ProfileSet::load(t.path()).unwrap_err().to_string();
        assert!(
            err.contains("nodeimg.json: ovmf=2024.11-1 is not a package nodeimg pins")
                || err.contains(
                    "\"debian:ovmf=2024.11-1:usr/share/ovmf/OVMF.fd\": ovmf=2024.11-1 is not a package nodeimg pins"
                ),
            "{err}"
        );

        // Well-formed: firmware relative to the profile directory, numbers as strings or numbers.
        let t = one_platform(Some(
            r#"{"attestation_variant": "x", "enforce_pcrs": [4], "snp": {"firmware": "fw.fd", "vmm_type": "ec2",
                "vcpus": [1], "vcpu_sig": "0xa00f11", "guest_features": 33, "smt": false}, "tdx": {"firmware": "/abs/fw.fd", "page_add_order": "two-pass"}}"#,
        ));
        let set = ProfileSet::load(t.path()).unwrap();
        let c = set.profiles["p"].config.as_ref().unwrap();
        let snp = c.snp.as_ref().unwrap();
        assert_eq!(
            (&snp.firmware, snp.vcpu_sig, snp.guest_features, snp.smt),
            (
                &Firmware::Path { written: "fw.fd".into(), path: t.path().join("fw.fd") },
                Some(0xa00f11),
                33,
                Some(false)
            )
        );
        let tdx = c.tdx.as_ref().unwrap();
        assert_eq!(
            (&tdx.firmware, tdx.page_add_order),
            (&Firmware::Path { written: "/abs/fw.fd".into(), path: "/abs/fw.fd".into() }, PageAddOrder::TwoPass)
        );
    }

    #[test]
    fn a_platform_needs_its_config_and_an_overlay_has_none() {
        let t = one_platform(None);
        let err = ProfileSet::load(t.path()).unwrap_err().to_string();
        assert!(err.contains("mkosi.profiles/p/nodeimg.json: missing"), "{err}");

        let t = one_platform(Some(r#"{"attestation_variant": "x", "enforce_pcrs": [4]}"#));
        let o = t.path().join("mkosi.profiles/o");
        fs::create_dir_all(&o).unwrap();
        fs::write(o.join("mkosi.conf"), format!("{OVERLAY_MARKER}\n")).unwrap();
        let set = ProfileSet::load(t.path()).unwrap();
        // No qemu: `nodeimg lock` resolves the first platform, never an overlay.
        assert_eq!(set.lock_platform().unwrap(), "p");
        fs::write(o.join(PLATFORM_CONFIG), "{}").unwrap();
        let err = ProfileSet::load(t.path()).unwrap_err().to_string();
        assert!(err.contains("mkosi.profiles/o/nodeimg.json: o is an overlay"), "{err}");
        fs::remove_dir_all(&o).unwrap();

        fs::write(t.path().join("mkosi.profiles/q.conf"), "[Content]\nKernelCommandLine=x\n").unwrap();
        let err = ProfileSet::load(t.path()).unwrap_err().to_string();
        assert!(err.contains("mkosi.profiles/q.conf: a platform profile is a directory"), "{err}");
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
