//! Bundle schema v1: the types, their validation, and the trusted comment that binds a signature.
//!
//! `schema/bundle-v1.schema.json` is the normative description; these types follow it field for
//! field and [`Bundle::parse`] checks both (the schema, then what a schema cannot say: hash
//! lengths per bank, sort order, semantic versions, the canonical byte form).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::hex::Hex;
use crate::schema;
pub use attest::reference::{Pcr, PcrBank, PcrStatus, SnpLaunchDigest, SnpPolicy, Tdx};
pub use eventlog::HashAlg;

/// The value of `schema_version` this crate reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// A reference-value bundle (`bundle.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u64,
    /// What image and which version.
    pub image: Image,
    /// The image's files by path (`<platform>/<file>`), uncompressed.
    pub artefacts: BTreeMap<String, Artefact>,
    /// Reference values by platform name.
    pub platforms: BTreeMap<String, Platform>,
    /// How the image was built.
    pub provenance: Provenance,
}

/// The image's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Image name, `^[a-z0-9][a-z0-9._-]{0,63}$`.
    pub name: String,
    /// Semantic version without a leading `v`.
    pub version: String,
    /// `SOURCE_DATE_EPOCH` of the build.
    pub source_date_epoch: u64,
}

/// One file of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artefact {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents.
    pub sha256: Hex,
}

/// The reference values of one platform. This is also the input type a build hands to a
/// release ([`crate::input`]): the build writes one per platform.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// Attestation variant, named as Constellation names them (`qemu-vtpm`, `qemu-tdx`,
    /// `azure-sev-snp`, `gcp-sev-snp`, …).
    pub attestation_variant: String,
    /// Expected vTPM PCRs by bank, then index (never 11: see `pcr11`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vtpm: BTreeMap<HashAlg, PcrBank>,
    /// Expected PCR 11 by bank, then boot phase (systemd-measure's `--phase` path).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pcr11: BTreeMap<HashAlg, BTreeMap<String, Hex>>,
    /// SEV-SNP launch digests, one per VM shape, sorted by [`SnpLaunchDigest::shape`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snp: Vec<SnpLaunchDigest>,
    /// What the SEV-SNP guest policy of this platform's VMs may allow, where the release states
    /// it (absent: `attest check` only observes those bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snp_policy: Option<SnpPolicy>,
    /// TDX measurement registers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tdx: Option<Tdx>,
    /// The boot-chain model's predicted event log (a TCG PC Client crypto-agile log, or a TDX
    /// CCEL), lowercase hex: `nodeimg attest check` explains a PCR mismatch with it, event by
    /// event, and its PCR 11 is the value before any boot phase. The values above stay the
    /// reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventlog: Option<Hex>,
}

impl From<&Platform> for attest::ReferenceValues {
    /// The platform's values as the verifier takes them.
    fn from(p: &Platform) -> Self {
        attest::ReferenceValues {
            vtpm: p.vtpm.clone(),
            pcr11: p.pcr11.clone(),
            snp: p.snp.clone(),
            snp_policy: p.snp_policy,
            tdx: p.tdx.clone(),
            eventlog: p.eventlog.clone(),
        }
    }
}

impl Platform {
    /// The latest boot phase with a PCR 11 value in `bank`: the one with the most components
    /// (`enter-initrd:leave-initrd:sysinit:ready` comes after `enter-initrd`).
    pub fn latest_pcr11(&self, bank: HashAlg) -> Option<(&str, &Hex)> {
        self.pcr11.get(&bank)?.iter().max_by_key(|(phase, _)| phase.split(':').count()).map(|(p, v)| (p.as_str(), v))
    }
}

/// How the image was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Version of nodeimg that built the image.
    pub nodeimg_version: String,
    /// Version of mkosi that built the image.
    pub mkosi_version: String,
    /// SHA-256 of the package lock.
    pub package_lock_sha256: Hex,
    /// Git commit of the sources (40 or 64 hex digits), when they were in a git checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    /// Content hash of the profile tree (the builder crate's `tree` module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_tree_sha256: Option<Hex>,
    /// Where the packages came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_source: Option<PackageSource>,
    /// The release directory holding the lock's `.deb`s (`release --with-packages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_archive: Option<String>,
    /// The firmware images the SEV-SNP and TDX values were computed for, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firmware: Vec<FirmwareInput>,
}

/// A firmware image a build computed launch values for (`build.json`, the bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareInput {
    /// As the platform's `nodeimg.json` names it: `debian:PACKAGE=VERSION:PATH` (a file of a
    /// package nodeimg pins) or a path relative to the profile directory.
    pub name: String,
    /// SHA-256 of the image.
    pub sha256: Hex,
    /// SHA-256 of the pinned package's `.deb`, for a `debian:` one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deb_sha256: Option<Hex>,
}

/// Where a build's packages came from (`build.json`, the bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSource {
    /// `mirror` (the live archive), `snapshot` or `archive`.
    pub kind: String,
    /// The mirror or snapshot service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The snapshot stamp (`YYYYMMDDTHHMMSSZ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Whether the same source serves the same packages later.
    pub immutable: bool,
}

/// What is wrong with a bundle. `path` is a JSON pointer into the document.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not JSON at all.
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    /// Valid JSON that the schema rejects.
    #[error("does not match schema v{SCHEMA_VERSION} at {path}: {message}")]
    Schema { path: String, message: String },
    /// Passes the schema but breaks a rule the schema cannot express.
    #[error("invalid at {path}: {message}")]
    Invalid { path: String, message: String },
    /// Valid but not in the canonical byte form.
    #[error("not in canonical form (first difference at byte offset {offset}); re-create it with nodeimg")]
    NotCanonical { offset: usize },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> BundleError {
    BundleError::Invalid { path: path.into(), message: message.into() }
}

impl Bundle {
    /// Parses and validates a bundle: JSON, schema v1, the rules below, and the canonical form.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let bundle = Self::parse_lenient(bytes)?;
        let canonical = bundle.to_canonical_json().map_err(|e| invalid("/", e.to_string()))?;
        if let Some(offset) = first_difference(bytes, canonical.as_bytes()) {
            return Err(BundleError::NotCanonical { offset });
        }
        Ok(bundle)
    }

    /// Like [`Bundle::parse`] without the canonical-form check (for exporters and tools that
    /// read hand-edited bundles).
    pub fn parse_lenient(bytes: &[u8]) -> Result<Self, BundleError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(BundleError::Json)?;
        schema::validate(&value)?;
        let bundle: Bundle =
            serde_json::from_value(value).map_err(|e| invalid("/", format!("{e} (schema and types disagree)")))?;
        bundle.check()?;
        Ok(bundle)
    }

    /// The canonical bytes of this bundle (validated first).
    pub fn to_canonical_json(&self) -> Result<String, BundleError> {
        self.check()?;
        let text = canonical::pretty(self).map_err(|e| invalid("/", e.to_string()))?;
        // Everything we write must also pass the schema.
        let value: serde_json::Value = serde_json::from_str(&text).map_err(BundleError::Json)?;
        schema::validate(&value)?;
        Ok(text)
    }

    /// The rules the schema cannot express.
    pub fn check(&self) -> Result<(), BundleError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(invalid(
                "/schema_version",
                format!("expected {SCHEMA_VERSION}, found {}", self.schema_version),
            ));
        }
        semver::Version::parse(&self.image.version).map_err(|e| {
            invalid("/image/version", format!("{:?} is not a semantic version: {e}", self.image.version))
        })?;
        for (path, a) in &self.artefacts {
            if a.sha256.len() != 32 {
                return Err(invalid(format!("/artefacts/{path}/sha256"), "expected 32 bytes"));
            }
            if path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
                return Err(invalid(format!("/artefacts/{path}"), "not a plain relative path"));
            }
        }
        if self.provenance.package_lock_sha256.len() != 32 {
            return Err(invalid("/provenance/package_lock_sha256", "expected 32 bytes"));
        }
        if self.provenance.profile_tree_sha256.as_ref().is_some_and(|h| h.len() != 32) {
            return Err(invalid("/provenance/profile_tree_sha256", "expected 32 bytes"));
        }
        for (i, f) in self.provenance.firmware.iter().enumerate() {
            if f.sha256.len() != 32 || f.deb_sha256.as_ref().is_some_and(|h| h.len() != 32) {
                return Err(invalid(format!("/provenance/firmware/{i}"), "expected 32-byte SHA-256 digests"));
            }
        }
        if self.platforms.is_empty() {
            return Err(invalid("/platforms", "no platform"));
        }
        for (name, p) in &self.platforms {
            p.check(&format!("/platforms/{name}"))?;
        }
        Ok(())
    }
}

impl Platform {
    /// Checks lengths, indices and order; `at` is the JSON pointer of this platform.
    pub fn check(&self, at: &str) -> Result<(), BundleError> {
        for (bank, pcrs) in &self.vtpm {
            for (index, pcr) in pcrs {
                if *index > 23 || *index == 11 {
                    return Err(invalid(
                        format!("{at}/vtpm/{bank}/{index}"),
                        "PCR index must be 0-23 and not 11 (PCR 11 goes under pcr11, per phase)",
                    ));
                }
                if pcr.value.len() != bank.size() {
                    return Err(invalid(
                        format!("{at}/vtpm/{bank}/{index}"),
                        format!("{} bytes, a {bank} PCR has {}", pcr.value.len(), bank.size()),
                    ));
                }
            }
        }
        for (bank, phases) in &self.pcr11 {
            for (phase, value) in phases {
                if value.len() != bank.size() {
                    return Err(invalid(
                        format!("{at}/pcr11/{bank}/{phase}"),
                        format!("{} bytes, a {bank} PCR has {}", value.len(), bank.size()),
                    ));
                }
            }
            let longest = phases.keys().map(|p| p.split(':').count()).max().unwrap_or(0);
            if phases.keys().filter(|p| p.split(':').count() == longest).count() > 1 {
                return Err(invalid(format!("{at}/pcr11/{bank}"), "two phases are equally late; which comes last?"));
            }
        }
        if self.snp_policy.is_some() && self.snp.is_empty() {
            return Err(invalid(format!("{at}/snp_policy"), "an SNP policy without SNP launch digests"));
        }
        for (i, d) in self.snp.iter().enumerate() {
            if d.launch_digest.len() != 48 {
                return Err(invalid(format!("{at}/snp/{i}/launch_digest"), "expected 48 bytes"));
            }
            if i > 0 && self.snp[i - 1].shape() >= d.shape() {
                return Err(invalid(
                    format!("{at}/snp/{i}"),
                    "entries must be sorted by (vcpus, vcpu_sig, vmm_type, guest_features), each shape once",
                ));
            }
        }
        if let Some(tdx) = &self.tdx {
            if tdx.mrtd.len() != 48 {
                return Err(invalid(format!("{at}/tdx/mrtd"), "expected 48 bytes"));
            }
            for (i, r) in &tdx.rtmr {
                if *i > 3 || r.len() != 48 {
                    return Err(invalid(format!("{at}/tdx/rtmr/{i}"), "RTMR 0-3 of 48 bytes"));
                }
            }
        }
        Ok(())
    }

    /// Sorts the SNP entries into canonical order.
    pub fn sort(&mut self) {
        self.snp.sort_by(|a, b| a.shape().cmp(&b.shape()));
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

/// The trusted comment of a bundle's signature: `name:<name>\tversion:<version>\tsha256:<hex>`,
/// where the hash is over the exact bytes of `bundle.json`. minisign covers the comment with
/// its global signature, so a verifier learns from it, authenticated, which bundle was signed.
pub fn trusted_comment(image: &Image, bundle_bytes: &[u8]) -> String {
    format!("name:{}\tversion:{}\tsha256:{}", image.name, image.version, ::hex::encode(Sha256::digest(bundle_bytes)))
}

/// The `key:value` fields of a tab-separated trusted comment (minisign's own style).
pub fn comment_fields(comment: &str) -> BTreeMap<&str, &str> {
    comment.split('\t').filter_map(|f| f.split_once(':')).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small valid bundle with synthetic values (format tests, not measurements).
    pub(crate) fn sample() -> Bundle {
        let h = |b: u8, n: usize| Hex(vec![b; n]);
        let mut vtpm = BTreeMap::new();
        vtpm.insert(
            HashAlg::Sha256,
            BTreeMap::from([
                (0, Pcr { value: h(0xa0, 32), status: PcrStatus::Observed }),
                (4, Pcr { value: h(0xa4, 32), status: PcrStatus::Enforced }),
                (9, Pcr { value: h(0xa9, 32), status: PcrStatus::Enforced }),
            ]),
        );
        let pcr11 = BTreeMap::from([(
            HashAlg::Sha256,
            BTreeMap::from([
                ("enter-initrd".to_owned(), h(0xb1, 32)),
                ("enter-initrd:leave-initrd:sysinit:ready".to_owned(), h(0xb4, 32)),
            ]),
        )]);
        let snp = vec![
            SnpLaunchDigest {
                vcpus: 1,
                vcpu_type: Some("EPYC-v4".into()),
                vcpu_sig: 0x00a0_0f11,
                vmm_type: "qemu".into(),
                guest_features: 1,
                launch_digest: h(0xc1, 48),
            },
            SnpLaunchDigest {
                vcpus: 2,
                vcpu_type: None,
                vcpu_sig: 0x00a0_0f11,
                vmm_type: "qemu".into(),
                guest_features: 1,
                launch_digest: h(0xc2, 48),
            },
        ];
        let snp_platform = Platform {
            attestation_variant: "qemu-vtpm".into(),
            vtpm,
            pcr11,
            snp,
            snp_policy: Some(SnpPolicy { smt: true }),
            ..Default::default()
        };
        let tdx_platform = Platform {
            attestation_variant: "qemu-tdx".into(),
            tdx: Some(Tdx {
                mrtd: h(0xd0, 48),
                rtmr: BTreeMap::from([(0, h(0xe0, 48)), (1, h(0xe1, 48)), (2, h(0xe2, 48))]),
            }),
            ..Default::default()
        };
        Bundle {
            schema_version: SCHEMA_VERSION,
            image: Image { name: "debian-cvm".into(), version: "1.2.3".into(), source_date_epoch: 1_700_000_000 },
            artefacts: BTreeMap::from([
                ("qemu-snp/disk.raw".to_owned(), Artefact { size: 5, sha256: h(0x11, 32) }),
                ("qemu-tdx/uki.efi".to_owned(), Artefact { size: 7, sha256: h(0x22, 32) }),
            ]),
            platforms: BTreeMap::from([("qemu-snp".to_owned(), snp_platform), ("qemu-tdx".to_owned(), tdx_platform)]),
            provenance: Provenance {
                nodeimg_version: "0.1.0".into(),
                mkosi_version: "25.3".into(),
                package_lock_sha256: h(0x33, 32),
                source_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                profile_tree_sha256: None,
                package_source: None,
                package_archive: None,
                firmware: vec![FirmwareInput {
                    name: "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd".into(),
                    sha256: h(0x44, 32),
                    deb_sha256: Some(h(0x55, 32)),
                }],
            },
        }
    }

    #[test]
    fn canonical_round_trip_is_byte_identical() {
        let text = sample().to_canonical_json().unwrap();
        assert!(text.ends_with("}\n"));
        let back = Bundle::parse(text.as_bytes()).unwrap();
        assert_eq!(back, sample());
        assert_eq!(back.to_canonical_json().unwrap(), text);
        // Keys are sorted as strings: PCR "0" < "4" < "9", and the SNP array keeps its order.
        let p0 = text.find("\"0\": {").unwrap();
        let p4 = text.find("\"4\": {").unwrap();
        assert!(p0 < p4);
    }

    #[test]
    fn non_canonical_bytes_are_refused_with_the_offset() {
        let text = sample().to_canonical_json().unwrap();
        let compact = serde_json::to_string(&sample()).unwrap();
        assert!(matches!(Bundle::parse(compact.as_bytes()), Err(BundleError::NotCanonical { offset: 1 })));
        assert!(Bundle::parse_lenient(compact.as_bytes()).is_ok());
        let no_newline = text.trim_end();
        assert!(matches!(
            Bundle::parse(no_newline.as_bytes()),
            Err(BundleError::NotCanonical { offset }) if offset == no_newline.len()
        ));
    }

    #[test]
    fn rules_beyond_the_schema() {
        type Case = (&'static str, fn(&mut Bundle), &'static str);
        let cases: &[Case] = &[
            ("unsorted snp", |b| b.platforms.get_mut("qemu-snp").unwrap().snp.reverse(), "/platforms/qemu-snp/snp/1"),
            (
                "pcr 11 in vtpm",
                |b| {
                    let p = b.platforms.get_mut("qemu-snp").unwrap();
                    let pcr = p.vtpm[&HashAlg::Sha256][&4].clone();
                    p.vtpm.get_mut(&HashAlg::Sha256).unwrap().insert(11, pcr);
                },
                "/platforms/qemu-snp/vtpm/sha256/11",
            ),
            ("not semver", |b| b.image.version = "1.2".into(), "/image/version"),
            (
                "snp policy without snp",
                |b| b.platforms.get_mut("qemu-tdx").unwrap().snp_policy = Some(SnpPolicy { smt: false }),
                "/platforms/qemu-tdx/snp_policy",
            ),
            (
                "short tdx rtmr",
                |b| {
                    let tdx = b.platforms.get_mut("qemu-tdx").unwrap().tdx.as_mut().unwrap();
                    tdx.rtmr.insert(3, Hex(vec![0; 32]));
                },
                "/platforms/qemu-tdx/tdx/rtmr/3",
            ),
        ];
        for (name, edit, path) in cases {
            let mut b = sample();
            edit(&mut b);
            let err = b.check().unwrap_err().to_string();
            assert!(err.contains(path), "{name}: {err}");
        }
    }

    #[test]
    fn latest_phase_is_the_longest_path() {
        let b = sample();
        let (phase, value) = b.platforms["qemu-snp"].latest_pcr11(HashAlg::Sha256).unwrap();
        assert_eq!(phase, "enter-initrd:leave-initrd:sysinit:ready");
        assert_eq!(value.0, vec![0xb4; 32]);
    }

    #[test]
    fn trusted_comment_names_the_bundle() {
        let b = sample();
        let c = trusted_comment(&b.image, b"x");
        let f = comment_fields(&c);
        assert_eq!(f["name"], "debian-cvm");
        assert_eq!(f["version"], "1.2.3");
        assert_eq!(f["sha256"], "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
    }
}
