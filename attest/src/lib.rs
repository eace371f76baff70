//! The verifier: is this node genuine, and is it running this release?
//!
//! A confidential VM proves what it runs with *evidence*: the PCRs of its (v)TPM and the event
//! log that explains them, an AMD SEV-SNP attestation report, an Intel TDX quote. A verifier
//! compares that evidence with *reference values* — what a genuine node of one platform reports,
//! computed before any node booted and published in a release's signed bundle. This crate is
//! that comparison, and nothing of building or releasing: it depends on the event-log crate, small
//! parsing crates and RustCrypto's signature verifiers (`rsa`, `p256`, `p384`) only, so a verifier
//! can take it without mkosi, compression or archives.
//!
//! * [`evidence`] reads SNP reports (v2, v3, v5) and TDX quotes (v4, v5): every field, checked
//!   lengths, reserved bytes, versions.
//! * [`tpm`] builds and reads the TPM 2.0 commands that read PCRs (`TPM2_PCR_Read`,
//!   `TPM2_GetCapability`): a verifier's tools talk to a TPM without a TSS library.
//! * [`quote`] reads TPM 2.0 quotes (`TPMS_ATTEST`, `TPMT_SIGNATURE`) and attestation keys
//!   (`TPM2B_PUBLIC`, or a PEM public key) and verifies a quote: signature, type, nonce, PCR
//!   selection and PCR digest.
//! * [`check`] compares evidence with [`ReferenceValues`] value by value, after the checks that
//!   prove it authentic, and explains a PCR that differs by the first event that differs ("the
//!   UKI's .cmdline section").
//!
//! # Trust model: what a passing check proves, and what it assumes
//!
//! * **Values.** A check that passes proves the evidence *carries* the release's values: each
//!   enforced PCR, PCR 11 in one of the release's boot phases, an SNP launch digest of one of its
//!   VM shapes, MRTD and the RTMRs the image determines. Values marked *observed* (firmware-owned
//!   PCRs) are reported, never enforced.
//! * **The event log** is checked against the PCRs it claims to explain (each register it extends
//!   must replay to the TPM's value, each RTMR to the quote's): a log that does not is a mismatch,
//!   not an explanation.
//! * **Guest configuration.** A debuggable guest (SNP policy DEBUG, TDX TDATTRIBUTES.DEBUG), an
//!   SNP report from another VMPL than expected, a policy that lets a migration agent in, or SMT
//!   where the release forbids it fail on their own, whatever the measurements say: the host can
//!   read such a guest's memory.
//! * **Authenticity** comes first. A verifier of signed evidence hands its checks to [`check()`]
//!   as an [`Authentication`]; they open the report, and [`Report::authenticity`] says whether
//!   every part of the evidence was proven genuine. A TPM quote ([`quote`]) proves, given the
//!   attestation key (AK): that the TPM holding the AK signed this `TPMS_ATTEST` (the signature),
//!   that it is a quote the TPM generated (`TPM_GENERATED_VALUE`, `TPM_ST_ATTEST_QUOTE`: the
//!   TPM signs no outside data with such a header), that it is fresh (its `extraData` is the
//!   verifier's nonce), which PCRs it covers (the selection must include every PCR the bundle
//!   enforces) and their values (the PCR values compared are those whose digest is the quote's
//!   `pcrDigest`; an event log must replay to them). **Assumed:** that the AK is a key of a
//!   genuine TPM of this node. Whether it is — an EK certificate chain to a TPM vendor or cloud,
//!   `TPM2_ActivateCredential`, a registrar that enrolled it — is out of scope: the AK is given
//!   (`--ak`), and a verifier must obtain it by such means.
//! * **Unauthenticated evidence** — PCR values read from a file or a local TPM without a quote,
//!   SNP reports and TDX quotes whose signatures (VCEK/VLEK chains to AMD's root, PCK chains to
//!   Intel's root) no verifier checked — is still compared, but the report is
//!   [`Authenticity::Unauthenticated`], and a note names each part: it proves only what the
//!   party that handed it over vouches for. An attestation service (Trustee, Keylime, Intel's
//!   QVL, go-sev-guest) must verify what this crate did not.
//! * **The reference values** are trusted as given: [`ReferenceValues`] should come from a bundle
//!   whose minisign signature, trusted comment and schema were verified (`release::verify`).
//!
//! Everything here is pure: bytes and values in, typed values out; nothing prints, nothing runs.

pub mod check;
pub mod evidence;
pub mod hex;
pub mod quote;
pub mod reference;
pub mod tpm;

pub use check::{
    check, check_with, pcr_values, pcr_values_from_json, pcr_values_from_log, AttestError, Authentication,
    Authenticity, Check, Evidence, GuestPolicy, PcrValues, Report, Source, Status,
};
pub use hex::Hex;
pub use reference::ReferenceValues;
