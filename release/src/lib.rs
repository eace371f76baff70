//! The signed reference-value bundle: what a verifier needs to admit a node of this image.
//!
//! An image is only useful to a confidential-computing verifier if the verifier knows, before
//! any node boots, exactly which values a genuine node reports: the vTPM PCRs, PCR 11 in each
//! boot phase, the SEV-SNP launch digest for each VM shape, the TDX MRTD and RTMRs. The build
//! computes them; this crate packages them so that they can be trusted and consumed:
//!
//! * **One schema** ([`Bundle`], `schema/bundle-v1.schema.json`): the image's name, version and
//!   `SOURCE_DATE_EPOCH`, its artefacts with sizes and SHA-256, per platform the reference values
//!   and for each vTPM PCR whether we computed it (`enforced`) or a release engineer observed it
//!   on a running instance (`observed`, for firmware-owned PCRs), and the build's provenance.
//! * **One byte form** ([`canonical`]): sorted keys, lowercase hex, integers only, two-space
//!   indentation, a trailing newline. The same inputs give byte-identical bundles, so anyone who
//!   rebuilds the image can compare `bundle.json` with `cmp`, and a signature over the bytes is a
//!   signature over the meaning. [`Bundle::parse`] refuses a bundle that is not in this form.
//! * **A minisign signature** whose trusted comment binds the bundle's name, version and SHA-256
//!   ([`trusted_comment`]), so a signature cannot be moved to another bundle or version, and a
//!   verifier with only Debian's `minisign` can check it.
//! * **Verification** ([`verify`]): signature, trusted comment, schema, canonical form, artefact
//!   hashes and a rollback floor, each failure with its own error.
//! * **Exporters** ([`export`]) into the formats attestation services already read: Constellation's
//!   measurements v2, Trustee RVPS sample messages, an in-toto Statement with SLSA provenance.
//! * **Reference values for the verifier**: a verified bundle's platform converts into the
//!   `attest` crate's `ReferenceValues` (a node's evidence is checked there).
//! * **A reproducible archive** ([`archive`]): tar + zstd with sorted entries, fixed metadata and
//!   fixed compression parameters, so two releases of the same build are byte-identical.
//!
//! The input of a release is the build output directory; its contract is in [`input`].
//!
//! The crate never prints and never runs processes; it reads and writes the paths it is given,
//! and tells a callback how its long steps are going ([`progress`]).

pub mod archive;
pub mod bundle;
pub mod canonical;
pub mod export;
pub use attest::hex;
pub mod input;
pub mod progress;
pub mod publish;
pub mod schema;
pub mod verify;

pub use bundle::{
    trusted_comment, Artefact, Bundle, BundleError, FirmwareInput, HashAlg, Image, Pcr, PcrStatus, Platform,
    Provenance, SnpLaunchDigest, Tdx, SCHEMA_VERSION,
};
pub use hex::Hex;
pub use progress::Progress;
pub use verify::{extract_artefact, verify_artefacts, verify_bundle, verify_sums, Verified, VerifyError};
