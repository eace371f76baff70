//! Constellation's image measurements v2 (`measurements.json`).
//!
//! Format (Constellation `internal/attestation/measurements/measurements.go`,
//! `ImageMeasurementsV2`, and `rfc/image-api.md`):
//!
//! ```json
//! {"version": "v1.2.3", "ref": "-", "stream": "stable",
//!  "list": [{"csp": "QEMU", "attestationVariant": "qemu-vtpm",
//!            "measurements": {"4": {"expected": "<hex>", "warnOnly": false}, …}}]}
//! ```
//!
//! * `version` must be a canonical semantic version with a leading `v` (Constellation parses it
//!   with `versionsapi.NewVersion`, which requires `semver.Canonical(v) == v`: no build
//!   metadata), so `v` is prefixed to the bundle's version and `+build` is refused.
//! * Constellation's own CLI trusts measurements only when they are signed with its vendor's
//!   cosign key: this export is for Constellation-compatible verifiers and forks that configure
//!   their own key, not for the stock CLI.
//! * `ref` and `stream` are checked as `versionsapi.ValidateRef`/`ValidateStream` check them:
//!   a ref of letters, digits and `-` (not starting `refs-heads`); on the release ref `-` the
//!   streams `stable`, `console`, `debug`, elsewhere `nightly`, `console`, `debug`.
//! * `csp` is Constellation's provider name (`cloudprovider.Provider.String()`): `AWS`, `Azure`,
//!   `GCP`, `OpenStack`, `QEMU`; it is derived from the attestation variant's prefix, except that
//!   `qemu-vtpm` serves two providers (`variant.go` `providerAttestationMapping`: QEMU's and
//!   OpenStack's, with a measurements entry each, `measurements.go` `DefaultsFor`). The variant
//!   alone cannot tell them apart, so the bundle's platform name does: a `qemu-vtpm` platform
//!   named `openstack` or `stackit` (or `openstack-…`, `stackit-…`; Constellation's
//!   `cloudprovider.FromString` reads both names as OpenStack) is exported with `csp: OpenStack`,
//!   any other with `QEMU`.
//! * `measurements` maps an index to `{expected, warnOnly}`; `expected` is lowercase hex of 32
//!   bytes (vTPM PCRs, sha256 bank) or 48 bytes (TDX). For vTPM variants the index is the PCR:
//!   `enforced` PCRs get `warnOnly: false`, `observed` ones `warnOnly: true`, and PCR 11 is the
//!   chosen boot phase's value. For `qemu-tdx` index 0 is MRTD and index i+1 is RTMR i
//!   (`measurements.go`: "index 0 of the TDX measurements is reserved for MRTD").
//! * `list` is sorted by (csp, attestationVariant), as Constellation's
//!   `MergeImageMeasurementsV2` sorts it; Constellation takes the first entry matching its
//!   (csp, variant), so two platforms that map to the same pair are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ExportError, Options};
use crate::bundle::{Bundle, HashAlg, PcrStatus};
use crate::canonical;
use crate::hex::Hex;

/// `ImageMeasurementsV2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementsV2 {
    /// Image version with a leading `v`.
    pub version: String,
    /// Constellation's release ref (`-` for releases).
    #[serde(rename = "ref")]
    pub reference: String,
    /// Release stream (`stable`, `nightly`, `debug`).
    pub stream: String,
    /// One entry per (csp, attestation variant).
    pub list: Vec<Entry>,
}

/// `ImageMeasurementsV2Entry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Cloud provider name.
    pub csp: String,
    /// Attestation variant name.
    #[serde(rename = "attestationVariant")]
    pub attestation_variant: String,
    /// Expected values by index.
    pub measurements: BTreeMap<u32, Measurement>,
}

/// `Measurement` in its JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    /// Expected value (32 or 48 bytes).
    pub expected: Hex,
    /// Whether a mismatch only warns.
    #[serde(rename = "warnOnly")]
    pub warn_only: bool,
}

/// Constellation's provider name for the bundle platform `platform` of attestation variant
/// `attestation_variant` (`variant.go` names, prefix before the first `-`; `qemu-vtpm` on a
/// platform named for OpenStack is OpenStack's).
pub fn csp(platform: &str, attestation_variant: &str) -> Option<&'static str> {
    match attestation_variant.split('-').next()? {
        "aws" => Some("AWS"),
        "azure" => Some("Azure"),
        "gcp" => Some("GCP"),
        "qemu" if attestation_variant == "qemu-vtpm" && is_openstack(platform) => Some("OpenStack"),
        "qemu" => Some("QEMU"),
        _ => None,
    }
}

/// A platform named for OpenStack, as Constellation's `cloudprovider.FromString` names it
/// (`openstack`, or its STACKIT flavour `stackit`), alone or before a `-`.
fn is_openstack(platform: &str) -> bool {
    matches!(platform.split('-').next(), Some("openstack" | "stackit"))
}

/// Checks `reference` and `stream` as Constellation's `versionsapi.ValidateRef` and
/// `ValidateStream` do.
fn check_ref_and_stream(reference: &str, stream: &str) -> Result<(), String> {
    if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!(
            "ref {reference:?}: Constellation takes letters, digits and '-' only (\"-\" for releases)"
        ));
    }
    if reference.starts_with("refs-heads") {
        return Err(format!("ref {reference:?}: Constellation refuses a ref starting with \"refs-heads\""));
    }
    let streams: &[&str] =
        if reference == "-" { &["stable", "console", "debug"] } else { &["nightly", "console", "debug"] };
    if !streams.contains(&stream) {
        return Err(format!(
            "stream {stream:?} is not one Constellation takes on ref {reference:?} ({})",
            streams.join(", ")
        ));
    }
    Ok(())
}

/// Exports `bundle` as Constellation measurements for release `reference`/`stream`.
pub fn export(bundle: &Bundle, opts: &Options, reference: &str, stream: &str) -> Result<String, ExportError> {
    check_ref_and_stream(reference, stream).map_err(|message| ExportError::Unsupported {
        platform: opts.platform.clone().unwrap_or_else(|| "(all)".into()),
        message,
    })?;
    let mut list = Vec::new();
    let mut seen: BTreeMap<(String, String), &str> = BTreeMap::new();
    for (name, platform) in opts.platforms(bundle)? {
        let unsupported = |message: String| ExportError::Unsupported { platform: name.into(), message };
        let variant = platform.attestation_variant.clone();
        let csp = csp(name, &variant).ok_or_else(|| {
            unsupported(format!("Constellation has no cloud provider for attestation variant {variant:?}"))
        })?;
        let mut measurements = BTreeMap::new();
        if variant == "qemu-tdx" {
            let tdx = platform.tdx.as_ref().ok_or_else(|| unsupported("qemu-tdx without TDX values".into()))?;
            measurements.insert(0, Measurement { expected: tdx.mrtd.clone(), warn_only: false });
            for (i, rtmr) in &tdx.rtmr {
                measurements.insert(u32::from(*i) + 1, Measurement { expected: rtmr.clone(), warn_only: false });
            }
        } else {
            if let Some(pcrs) = platform.vtpm.get(&HashAlg::Sha256) {
                for (index, pcr) in pcrs {
                    measurements.insert(
                        u32::from(*index),
                        Measurement { expected: pcr.value.clone(), warn_only: pcr.status == PcrStatus::Observed },
                    );
                }
            }
            if let Some(value) = opts.pcr11(name, platform)? {
                measurements.insert(11, Measurement { expected: value.clone(), warn_only: false });
            }
            if measurements.is_empty() {
                return Err(unsupported(format!("no sha256 vTPM values for attestation variant {variant}")));
            }
        }
        if let Some(other) = seen.insert((csp.into(), variant.clone()), name) {
            return Err(unsupported(format!(
                "platforms {other} and {name} both map to {csp}/{variant}; choose one with --platform"
            )));
        }
        list.push(Entry { csp: csp.into(), attestation_variant: variant, measurements });
    }
    list.sort_by(|a, b| (&a.csp, &a.attestation_variant).cmp(&(&b.csp, &b.attestation_variant)));
    let version = bundle.image.version.clone();
    // Constellation accepts only canonical semver (Go x/mod/semver: `semver.Canonical(v) == v`),
    // which has no build metadata: `1.2.3+build` would be refused when the CLI loads it.
    if version.contains('+') {
        return Err(ExportError::Unsupported {
            platform: opts.platform.clone().unwrap_or_else(|| "(all)".into()),
            message: format!(
                "version {version:?} has build metadata, which Constellation's canonical semver refuses; \
                 release it as a plain MAJOR.MINOR.PATCH[-PRERELEASE]"
            ),
        });
    }
    let doc = MeasurementsV2 {
        version: if version.starts_with('v') { version } else { format!("v{version}") },
        reference: reference.into(),
        stream: stream.into(),
        list,
    };
    Ok(canonical::pretty(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests::sample;

    #[test]
    fn vtpm_and_tdx_entries() {
        let text = export(&sample(), &Options::default(), "-", "stable").unwrap();
        let doc: MeasurementsV2 = serde_json::from_str(&text).unwrap();
        assert_eq!(doc.version, "v1.2.3");
        assert_eq!(doc.list.len(), 2);
        let vtpm = &doc.list[0];
        assert_eq!((vtpm.csp.as_str(), vtpm.attestation_variant.as_str()), ("QEMU", "qemu-tdx"));
        assert_eq!(vtpm.measurements[&0].expected.0, vec![0xd0; 48], "index 0 is MRTD");
        assert_eq!(vtpm.measurements[&3].expected.0, vec![0xe2; 48], "index 3 is RTMR 2");
        let m = &doc.list[1].measurements;
        assert!(m[&0].warn_only, "observed PCR 0 only warns");
        assert!(!m[&4].warn_only);
        assert_eq!(m[&11].expected.0, vec![0xb4; 32], "PCR 11 of the latest phase");
        let early = Options { pcr11_phase: Some("enter-initrd".into()), ..Default::default() };
        let doc: MeasurementsV2 = serde_json::from_str(&export(&sample(), &early, "-", "stable").unwrap()).unwrap();
        assert_eq!(doc.list[1].measurements[&11].expected.0, vec![0xb1; 32]);
    }

    #[test]
    fn ambiguous_and_unknown_platforms_are_refused() {
        let mut b = sample();
        let mut dup = b.platforms["qemu-snp"].clone();
        dup.attestation_variant = "qemu-vtpm".into();
        b.platforms.insert("qemu-snp2".into(), dup);
        let err = export(&b, &Options::default(), "-", "stable").unwrap_err().to_string();
        assert!(err.contains("both map to QEMU/qemu-vtpm"), "{err}");
        let one = Options { platform: Some("qemu-snp2".into()), ..Default::default() };
        export(&b, &one, "-", "stable").unwrap();
        let missing = Options { platform: Some("nope".into()), ..Default::default() };
        assert!(matches!(export(&b, &missing, "-", "stable"), Err(ExportError::UnknownPlatform { .. })));
    }

    #[test]
    fn openstack_is_named_by_the_platform() {
        let cases = [
            ("openstack", "qemu-vtpm", Some("OpenStack")),
            ("stackit", "qemu-vtpm", Some("OpenStack")),
            ("openstack-snp", "qemu-vtpm", Some("OpenStack")),
            ("qemu", "qemu-vtpm", Some("QEMU")),
            ("openstacked", "qemu-vtpm", Some("QEMU")),
            // OpenStack has no TDX variant in Constellation: qemu-tdx stays QEMU's.
            ("openstack", "qemu-tdx", Some("QEMU")),
            ("gcp", "gcp-sev-snp", Some("GCP")),
            ("openstack", "nitro-tpm", None),
        ];
        for (platform, variant, want) in cases {
            assert_eq!(csp(platform, variant), want, "{platform} {variant}");
        }
        let mut b = sample();
        let p = b.platforms.remove("qemu-snp").unwrap();
        b.platforms.insert("openstack".into(), p);
        let doc: MeasurementsV2 =
            serde_json::from_str(&export(&b, &Options::default(), "-", "stable").unwrap()).unwrap();
        let pairs: Vec<_> = doc.list.iter().map(|e| (e.csp.as_str(), e.attestation_variant.as_str())).collect();
        assert_eq!(pairs, [("OpenStack", "qemu-vtpm"), ("QEMU", "qemu-tdx")]);
        // The same values on QEMU and OpenStack are two entries, not an ambiguity.
        b.platforms.insert("qemu".into(), b.platforms["openstack"].clone());
        let doc: MeasurementsV2 =
            serde_json::from_str(&export(&b, &Options::default(), "-", "stable").unwrap()).unwrap();
        assert_eq!(doc.list.len(), 3);
    }

    #[test]
    fn ref_and_stream_are_checked_as_constellation_does() {
        for (reference, stream, ok) in [
            ("-", "stable", true),
            ("-", "debug", true),
            ("-", "nightly", false),
            ("main", "nightly", true),
            ("feat-x", "stable", false),
            ("", "stable", false),
            ("feat/x", "nightly", false),
            ("refs-heads-main", "nightly", false),
        ] {
            let r = export(&sample(), &Options::default(), reference, stream);
            assert_eq!(r.is_ok(), ok, "{reference:?} {stream:?}: {r:?}");
        }
    }

    #[test]
    fn build_metadata_is_refused() {
        let mut b = sample();
        b.image.version = "1.2.3+build.7".into();
        let err = export(&b, &Options::default(), "-", "stable").unwrap_err().to_string();
        assert!(err.contains("canonical semver refuses"), "{err}");
        b.image.version = "1.2.3-rc.1".into();
        let doc: MeasurementsV2 =
            serde_json::from_str(&export(&b, &Options::default(), "-", "stable").unwrap()).unwrap();
        assert_eq!(doc.version, "v1.2.3-rc.1");
    }
}
