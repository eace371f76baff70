//! The input of a release: the directory a build leaves behind.
//!
//! `nodeimg build` writes one directory per image version, and `nodeimg release` reads it. The
//! contract between them is this layout (JSON in any key order and layout; hex lowercase):
//!
//! ```text
//! out/<image>-<version>/
//! ├── build.json                 BuildInfo: the image and the build's provenance
//! └── <platform>/                one directory per platform, named ^[a-z0-9][a-z0-9-]{0,63}$
//!     ├── manifest.json          Manifest: the artefacts of this platform
//!     ├── reference-values.json  ReferenceValues: what a genuine node reports here
//!     └── disk.raw, uki.efi, …   the artefacts manifest.json lists
//! ```
//!
//! `build.json` ([`BuildInfo`]):
//!
//! ```json
//! {"image": {"name": "debian-cvm", "version": "1.2.3", "source_date_epoch": 1700000000},
//!  "provenance": {"nodeimg_version": "0.1.0", "mkosi_version": "25.3",
//!                 "package_lock_sha256": "<64 hex>", "source_commit": "<40 hex>"}}
//! ```
//!
//! `<platform>/manifest.json` ([`Manifest`]) is the one `nodeimg build` writes; the release reads
//! `image` and `version` (which must match `build.json`) and `artefacts`, and ignores the rest
//! (`platform`, `roothash`, `verity`, `cmdline`, …). Artefact names are relative to the platform
//! directory, plain names or `a/b` paths without `.` or `..`:
//!
//! ```json
//! {"image": "debian-cvm", "version": "1.2.3",
//!  "artefacts": [{"name": "disk.raw", "size": 2147483648, "sha256": "<64 hex>"},
//!                {"name": "uki.efi", "size": 51234567, "sha256": "<64 hex>"}]}
//! ```
//!
//! `<platform>/reference-values.json` ([`ReferenceValues`]) is exactly one platform entry of
//! the bundle (schema v1, `$defs/platform`): `attestation_variant`, and whichever of `vtpm`
//! (PCRs the build computed, status `enforced`), `pcr11` (per bank, per boot phase), `snp`
//! (launch digests per VM shape) and `tdx` (MRTD, RTMRs) apply to the platform. It is not an
//! artefact (the bundle carries its content).
//!
//! The release re-hashes every artefact and refuses a manifest that does not match the files.
//! Firmware-owned PCRs that only a running instance can tell are added at release time as
//! [`ObservedPcrs`] (status `observed`); they may not replace a value the build computed.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bundle::{Artefact, Bundle, HashAlg, Image, Pcr, PcrStatus, Platform, Provenance, SCHEMA_VERSION};
use crate::hex::Hex;
use crate::progress::{Counted, Progress};
use crate::verify::hash;

/// `build.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildInfo {
    /// Name, version and `SOURCE_DATE_EPOCH` of the image.
    pub image: Image,
    /// How it was built.
    pub provenance: Provenance,
}

/// `<platform>/manifest.json` (the fields a release reads; others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Image name; must equal `build.json`'s when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image version; must equal `build.json`'s when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The platform's artefacts.
    pub artefacts: Vec<ManifestEntry>,
}

/// One artefact in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Path relative to the platform directory.
    #[serde(alias = "path")]
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256.
    pub sha256: Hex,
}

/// `<platform>/reference-values.json`: one platform's entry of the bundle.
pub type ReferenceValues = Platform;

/// The reference values of a vTPM platform from the boot-chain model's prediction: the PCRs in
/// `enforced` (never 11) with status `enforced`, PCR 11 per systemd-measure phase path
/// (`enter-initrd` … `enter-initrd:leave-initrd:sysinit:ready`), and the predicted event log.
///
/// Which PCRs to enforce is the caller's call: the image owns 4, 9, 11, 12 and 13 on every
/// platform; 5 (the disk's GPT) and 7 (Secure Boot databases) also depend on the firmware, so
/// they are only enforced where the prediction's firmware is the platform's.
pub fn vtpm_reference_values(
    prediction: &measure::boot::Prediction,
    attestation_variant: &str,
    enforced: &[u32],
) -> Result<ReferenceValues, eventlog::WriteError> {
    use measure::boot::Phase;
    let vtpm = prediction
        .pcrs_at(Phase::Ready)
        .into_iter()
        .map(|(alg, regs)| {
            let pcrs = regs
                .into_iter()
                .filter(|(i, _)| *i != 11 && enforced.contains(i))
                .map(|(i, v)| (i as u8, Pcr { value: Hex(v), status: PcrStatus::Enforced }))
                .collect();
            (alg, pcrs)
        })
        .collect();
    let pcr11 = prediction
        .pcr11_phases()
        .into_iter()
        .map(|(alg, phases)| {
            let by_path = phases
                .into_iter()
                .filter(|(phase, _)| *phase != Phase::Stub)
                .map(|(phase, v)| (phase.systemd_measure_phase(), Hex(v)))
                .collect();
            (alg, by_path)
        })
        .collect();
    Ok(Platform {
        attestation_variant: attestation_variant.to_owned(),
        vtpm,
        pcr11,
        snp: Vec::new(),
        snp_policy: None,
        tdx: None,
        eventlog: Some(Hex(eventlog::write(&prediction.eventlog())?)),
    })
}

/// PCR values read from a running instance, by bank then index, added as `observed`.
pub type ObservedPcrs = BTreeMap<HashAlg, BTreeMap<u8, Hex>>;

/// A problem with the build output.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A JSON file is malformed or has the wrong fields.
    #[error("{path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    /// The content breaks the contract.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The largest JSON file of a build output read whole (`build.json`, a platform's
/// `manifest.json` and `reference-values.json`: a few KiB to a few hundred KiB).
pub const MAX_JSON: u64 = 16 << 20;

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, InputError> {
    let bytes =
        crate::verify::read_regular(path, MAX_JSON).map_err(|source| InputError::Io { path: path.into(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| InputError::Json { path: path.into(), source })
}

/// One platform's part of the build output.
#[derive(Debug, Clone)]
pub struct PlatformOutput {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its reference values.
    pub reference_values: ReferenceValues,
}

/// A build output directory, read and checked for shape (not yet for artefact hashes).
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The directory.
    pub dir: PathBuf,
    /// `build.json`.
    pub info: BuildInfo,
    /// Platforms by name.
    pub platforms: BTreeMap<String, PlatformOutput>,
}

fn valid_platform_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl BuildOutput {
    /// Reads `dir/build.json` and every `dir/<platform>/{manifest,reference-values}.json`.
    pub fn read(dir: &Path) -> Result<Self, InputError> {
        let info: BuildInfo = read_json(&dir.join("build.json"))?;
        let mut platforms = BTreeMap::new();
        let entries = fs::read_dir(dir).map_err(|source| InputError::Io { path: dir.into(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| InputError::Io { path: dir.into(), source })?;
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !valid_platform_name(&name) {
                return Err(InputError::Invalid {
                    path,
                    message: "not a platform name (^[a-z0-9][a-z0-9-]{0,63}$)".into(),
                });
            }
            let manifest_path = path.join("manifest.json");
            let manifest: Manifest = read_json(&manifest_path)?;
            for (field, got, want) in
                [("image", &manifest.image, &info.image.name), ("version", &manifest.version, &info.image.version)]
            {
                if let Some(got) = got.as_ref().filter(|g| *g != want) {
                    return Err(InputError::Invalid {
                        path: manifest_path,
                        message: format!("{field} is {got:?}, but build.json says {want:?}"),
                    });
                }
            }
            let mut reference_values: ReferenceValues = read_json(&path.join("reference-values.json"))?;
            reference_values.sort();
            platforms.insert(name, PlatformOutput { manifest, reference_values });
        }
        if platforms.is_empty() {
            return Err(InputError::Invalid {
                path: dir.into(),
                message: "no platform directory (<platform>/manifest.json)".into(),
            });
        }
        Ok(Self { dir: dir.into(), info, platforms })
    }

    /// Where the artefact with bundle path `<platform>/<path>` is on disk.
    pub fn artefact_file(&self, bundle_path: &str) -> PathBuf {
        self.dir.join(bundle_path)
    }

    /// Re-hashes every artefact and checks it against its manifest; `progress` is called with
    /// each bundle path before it is hashed. Returns the bundle's `artefacts`.
    pub fn check_artefacts(
        &self,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<BTreeMap<String, Artefact>, InputError> {
        let mut out = BTreeMap::new();
        for (platform, p) in &self.platforms {
            for e in &p.manifest.artefacts {
                let bundle_path = format!("{platform}/{}", e.name);
                let file = self.artefact_file(&bundle_path);
                if e.name.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
                    return Err(InputError::Invalid { path: file, message: "not a plain relative path".into() });
                }
                let io_err = |source| InputError::Io { path: file.clone(), source };
                let f = crate::verify::open_regular(&file).map_err(io_err)?;
                let bytes = f.metadata().map_err(io_err)?.len();
                progress(Progress::Step { what: &format!("hashing {bundle_path}"), bytes });
                // At most one byte more than listed: a file that grows while it is read is
                // refused by its size, not read for ever.
                let mut bytes_done = |n| progress(Progress::Bytes(n));
                let (size, sha256) =
                    hash(Counted::new(io::Read::take(f, e.size + 1), &mut bytes_done)).map_err(io_err)?;
                if size != e.size || sha256 != e.sha256 {
                    return Err(InputError::Invalid {
                        path: file,
                        message: format!(
                            "is {size} bytes with sha256 {sha256}, but manifest.json says {} bytes with sha256 {}",
                            e.size, e.sha256
                        ),
                    });
                }
                if out.insert(bundle_path.clone(), Artefact { size, sha256 }).is_some() {
                    return Err(InputError::Invalid { path: file, message: "listed twice in manifest.json".into() });
                }
            }
        }
        Ok(out)
    }

    /// The bundle for this build: `artefacts` (from [`BuildOutput::check_artefacts`]), every
    /// platform's reference values, and `observed` PCRs merged in as `observed`.
    pub fn bundle(
        &self,
        artefacts: BTreeMap<String, Artefact>,
        observed: &BTreeMap<String, ObservedPcrs>,
    ) -> Result<Bundle, InputError> {
        let mut platforms: BTreeMap<String, Platform> =
            self.platforms.iter().map(|(n, p)| (n.clone(), p.reference_values.clone())).collect();
        for (name, banks) in observed {
            let platform = platforms.get_mut(name).ok_or_else(|| InputError::Invalid {
                path: self.dir.clone(),
                message: format!("observed PCRs for platform {name:?}, which this build does not have"),
            })?;
            for (bank, pcrs) in banks {
                let target = platform.vtpm.entry(*bank).or_default();
                for (index, value) in pcrs {
                    if let Some(existing) = target.get(index) {
                        if existing.status == PcrStatus::Enforced {
                            return Err(InputError::Invalid {
                                path: self.dir.join(name),
                                message: format!(
                                    "PCR {index} ({bank}) is computed by the build; an observed value cannot replace it"
                                ),
                            });
                        }
                    }
                    target.insert(*index, Pcr { value: value.clone(), status: PcrStatus::Observed });
                }
            }
        }
        let bundle = Bundle {
            schema_version: SCHEMA_VERSION,
            image: self.info.image.clone(),
            artefacts,
            platforms,
            provenance: self.info.provenance.clone(),
        };
        bundle
            .to_canonical_json()
            .map_err(|e| InputError::Invalid { path: self.dir.clone(), message: e.to_string() })?;
        Ok(bundle)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bundle::tests::sample;
    use sha2::{Digest, Sha256};

    /// Writes a synthetic build output for `sample()`'s platforms with small artefacts.
    pub(crate) fn synthetic(dir: &Path) {
        let b = sample();
        let info = BuildInfo { image: b.image.clone(), provenance: b.provenance.clone() };
        fs::write(dir.join("build.json"), serde_json::to_vec(&info).unwrap()).unwrap();
        for (name, platform) in &b.platforms {
            let pdir = dir.join(name);
            fs::create_dir_all(&pdir).unwrap();
            let mut artefacts = Vec::new();
            for file in ["disk.raw", "uki.efi"] {
                let content = format!("{name}/{file} contents\n").repeat(100);
                fs::write(pdir.join(file), &content).unwrap();
                artefacts.push(ManifestEntry {
                    name: file.into(),
                    size: content.len() as u64,
                    sha256: Hex(Sha256::digest(content.as_bytes()).to_vec()),
                });
            }
            let manifest =
                Manifest { image: Some(b.image.name.clone()), version: Some(b.image.version.clone()), artefacts };
            fs::write(pdir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
            fs::write(pdir.join("reference-values.json"), serde_json::to_vec(platform).unwrap()).unwrap();
        }
    }

    fn synthetic_platform_values(dir: &Path, name: &str) {
        let p = &sample().platforms[name];
        fs::write(dir.join(name).join("reference-values.json"), serde_json::to_vec(p).unwrap()).unwrap();
    }

    #[test]
    fn a_synthetic_build_becomes_a_bundle() {
        let dir = tempfile::tempdir().unwrap();
        synthetic(dir.path());
        let out = BuildOutput::read(dir.path()).unwrap();
        let mut seen = Vec::new();
        let artefacts = out
            .check_artefacts(&mut |p| match p {
                Progress::Step { what, bytes } => seen.push(format!("{what} {bytes}")),
                Progress::Bytes(n) => seen.push(format!("{n}")),
            })
            .unwrap();
        let sizes: Vec<String> = artefacts.iter().map(|(p, a)| format!("hashing {p} {0}|{0}", a.size)).collect();
        assert_eq!(seen.chunks(2).map(|c| c.join("|")).collect::<Vec<_>>(), sizes);
        assert_eq!(
            artefacts.keys().collect::<Vec<_>>(),
            ["qemu-snp/disk.raw", "qemu-snp/uki.efi", "qemu-tdx/disk.raw", "qemu-tdx/uki.efi"]
        );
        let observed = BTreeMap::from([(
            "qemu-tdx".to_owned(),
            BTreeMap::from([(HashAlg::Sha256, BTreeMap::from([(1u8, Hex(vec![7; 32]))]))]),
        )]);
        let bundle = out.bundle(artefacts.clone(), &observed).unwrap();
        assert_eq!(bundle.platforms["qemu-tdx"].vtpm[&HashAlg::Sha256][&1].status, PcrStatus::Observed);
        assert_eq!(bundle.platforms["qemu-snp"], sample().platforms["qemu-snp"]);

        // An observed value may not replace a computed one.
        let clash = BTreeMap::from([(
            "qemu-snp".to_owned(),
            BTreeMap::from([(HashAlg::Sha256, BTreeMap::from([(4u8, Hex(vec![7; 32]))]))]),
        )]);
        let err = out.bundle(artefacts, &clash).unwrap_err().to_string();
        assert!(err.contains("PCR 4 (sha256) is computed by the build"), "{err}");
    }

    #[test]
    fn a_stale_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        synthetic(dir.path());
        fs::write(dir.path().join("qemu-tdx/uki.efi"), b"changed").unwrap();
        let out = BuildOutput::read(dir.path()).unwrap();
        let err = out.check_artefacts(&mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("qemu-tdx/uki.efi: is 7 bytes"), "{err}");
    }

    #[test]
    fn the_builders_manifest_is_read() {
        // The fields nodeimg build writes (builder::build::PlatformManifest), abridged.
        let text = r#"{"image": "debian-cvm", "version": "1.2.3", "platform": "qemu-snp", "overlays": [],
            "derived_from": null, "roothash": "ab", "verity": {"hash_algorithm": "sha256"}, "cmdline": "x",
            "artefacts": [{"name": "disk.raw", "size": 1, "sha256": "00"}]}"#;
        let m: Manifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.artefacts[0].name, "disk.raw");
    }

    #[test]
    fn malformed_inputs_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        synthetic(dir.path());
        fs::write(dir.path().join("qemu-snp/reference-values.json"), b"{\"attestation_variant\": 3}").unwrap();
        let err = BuildOutput::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("qemu-snp/reference-values.json"), "{err}");
        let m = fs::read_to_string(dir.path().join("qemu-tdx/manifest.json")).unwrap();
        fs::write(dir.path().join("qemu-tdx/manifest.json"), m.replace("1.2.3", "1.2.4")).unwrap();
        synthetic_platform_values(dir.path(), "qemu-snp");
        let err = BuildOutput::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("qemu-tdx/manifest.json: version is \"1.2.4\", but build.json says \"1.2.3\""), "{err}");
        fs::remove_file(dir.path().join("build.json")).unwrap();
        let err = BuildOutput::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("build.json"), "{err}");
    }
}
