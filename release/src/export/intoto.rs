//! An in-toto Statement v1 with an SLSA Provenance v1 predicate over the image's artefacts.
//!
//! Formats: in-toto attestation `spec/v1/statement.md` and `spec/v1/resource_descriptor.md`
//! (`_type` `https://in-toto.io/Statement/v1`, `subject` of ResourceDescriptors each with a
//! `digest`), and SLSA `spec/build-provenance.md` / `spec/schema/provenance.cue`
//! (`predicateType` `https://slsa.dev/provenance/v1`; required: `buildDefinition.buildType`,
//! `buildDefinition.externalParameters`, `runDetails.builder.id`).
//!
//! What goes where:
//!
//! * `subject`: every artefact, `name` = its bundle path, `digest.sha256`.
//! * `externalParameters`: what a user chose — image name, version, `SOURCE_DATE_EPOCH`, the
//!   platforms built.
//! * `resolvedDependencies`: the source commit (`digest.gitCommit`, when built from a checkout),
//!   the profile tree's content hash and the package lock (`digest.sha256`; the lock pins every
//!   package of the image, its initrd and the tools tree by sha256, so it names the package set).
//! * `builder`: `id` as given, `version` of nodeimg and mkosi.
//! * `byproducts`: the reference-value bundle itself (`bundle.json`, its sha256).
//!
//! No timestamps (`startedOn`, `finishedOn` are optional and would make the document depend on
//! the clock).
//!
//! This is SLSA provenance for supply-chain tools (policy engines that check how an artefact was
//! built), not reference values for an attestation service: Trustee removed its in-toto RVPS
//! extractor in 2026-05; use `--format trustee` for Trustee.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ExportError, Options};
use crate::bundle::Bundle;
use crate::canonical;

/// The Statement `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA Provenance v1 predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The build type of a nodeimg image build (external parameters as listed above).
pub const BUILD_TYPE: &str = "urn:nodeimg:buildtype:mkosi-image:v1";
/// The builder id used unless one is given.
pub const DEFAULT_BUILDER_ID: &str = "urn:nodeimg:builder:local";

/// in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Provenance,
}

/// in-toto ResourceDescriptor (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

/// SLSA `BuildDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// Our build type's external parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalParameters {
    pub image: String,
    pub version: String,
    pub source_date_epoch: u64,
    pub platforms: Vec<String>,
}

/// SLSA `RunDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    pub byproducts: Vec<ResourceDescriptor>,
}

/// SLSA `Builder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Builder {
    pub id: String,
    pub version: BTreeMap<String, String>,
}

fn descriptor(name: &str, algorithm: &str, digest: String) -> ResourceDescriptor {
    ResourceDescriptor {
        name: Some(name.into()),
        digest: BTreeMap::from([(algorithm.into(), digest)]),
        media_type: None,
    }
}

/// The Statement for `bundle` (whose exact bytes are `bundle_bytes`), built by `builder_id`.
/// With `--platform`, only that platform's artefacts are subjects.
pub fn statement(
    bundle: &Bundle,
    bundle_bytes: &[u8],
    opts: &Options,
    builder_id: &str,
) -> Result<Statement, ExportError> {
    let platforms: Vec<String> = opts.platforms(bundle)?.into_iter().map(|(n, _)| n.to_owned()).collect();
    let subject = bundle
        .artefacts
        .iter()
        .filter(|(path, _)| platforms.iter().any(|p| path.split('/').next() == Some(p.as_str())))
        .map(|(path, a)| descriptor(path, "sha256", a.sha256.to_string()))
        .collect::<Vec<_>>();
    if subject.is_empty() {
        return Err(ExportError::Unsupported {
            platform: platforms.join(", "),
            message: "no artefacts: an in-toto Statement needs at least one subject".into(),
        });
    }
    let p = &bundle.provenance;
    let mut bundle_descriptor = descriptor("bundle.json", "sha256", ::hex::encode(Sha256::digest(bundle_bytes)));
    bundle_descriptor.media_type = Some("application/json".into());
    Ok(Statement {
        type_: STATEMENT_TYPE.into(),
        subject,
        predicate_type: PREDICATE_TYPE.into(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.into(),
                external_parameters: ExternalParameters {
                    image: bundle.image.name.clone(),
                    version: bundle.image.version.clone(),
                    source_date_epoch: bundle.image.source_date_epoch,
                    platforms,
                },
                resolved_dependencies: {
                    let mut deps = Vec::new();
                    if let Some(c) = &p.source_commit {
                        deps.push(descriptor("source", "gitCommit", c.clone()));
                    }
                    if let Some(t) = &p.profile_tree_sha256 {
                        deps.push(descriptor("profile-tree", "sha256", t.to_string()));
                    }
                    deps.push(descriptor("package-lock", "sha256", p.package_lock_sha256.to_string()));
                    deps
                },
            },
            run_details: RunDetails {
                builder: Builder {
                    id: builder_id.into(),
                    version: BTreeMap::from([
                        ("mkosi".to_owned(), p.mkosi_version.clone()),
                        ("nodeimg".to_owned(), p.nodeimg_version.clone()),
                    ]),
                },
                byproducts: vec![bundle_descriptor],
            },
        },
    })
}

/// [`statement`] as canonical JSON.
pub fn export(bundle: &Bundle, bundle_bytes: &[u8], opts: &Options, builder_id: &str) -> Result<String, ExportError> {
    Ok(canonical::pretty(&statement(bundle, bundle_bytes, opts, builder_id)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests::sample;

    #[test]
    fn subjects_are_the_artefacts() {
        let b = sample();
        let s = statement(&b, b"{}", &Options::default(), DEFAULT_BUILDER_ID).unwrap();
        assert_eq!(s.subject.len(), b.artefacts.len());
        assert_eq!(s.subject[0].name.as_deref(), Some("qemu-snp/disk.raw"));
        assert_eq!(s.subject[0].digest["sha256"], "11".repeat(32));
        let one = Options { platform: Some("qemu-tdx".into()), ..Default::default() };
        let s = statement(&b, b"{}", &one, DEFAULT_BUILDER_ID).unwrap();
        assert_eq!(s.subject.len(), 1);
        assert_eq!(s.predicate.build_definition.external_parameters.platforms, ["qemu-tdx"]);
    }
}
