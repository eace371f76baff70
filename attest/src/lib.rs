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
//! * [`snp_verify`] checks that an SNP report is authentic: its VCEK/VLEK chain to a pinned AMD
//!   root, its signature, the TCB and chip its key was issued for, the nonce.
//! * [`tdx_verify`] checks that a TDX quote is authentic (DCAP, with the `dcap-qvl` crate): PCK
//!   chain to Intel's root, QE report, attestation key, collateral, TCB status, the nonce.
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
//! * **SEV-SNP authenticity** ([`snp_verify`], when the caller passes the VCEK/VLEK and AMD's
//!   chain). Passing proves: the ARK's key is one of AMD's (built in, or the one the caller
//!   names), it signed the ASK/ASVK, which signed the VEK, each valid at the verification time;
//!   the VEK signed the report's bytes 0x0–0x29f, so every value above came from AMD firmware
//!   holding that key; REPORTED_TCB is the TCB the VEK was issued for and (VCEK) CHIP_ID the chip,
//!   so the report does not claim a newer TCB than its key; REPORT_DATA is the verifier's nonce,
//!   so the report is fresh. It assumes: AMD's root keys and KDS are honest, the firmware at that
//!   TCB is not broken (use `MinTcb` to refuse old TCBs: nothing here knows which TCB is current),
//!   and certificate revocation is not checked (AMD's KDS CRL revokes ASKs only; none has been).
//! * **TDX authenticity** ([`tdx_verify`], with the collateral for the quote's platform).
//!   Passing proves: the quote's PCK certificate chains to Intel's SGX Root CA (built into
//!   dcap-qvl) and is not on the PCK CRL, the PCK signed the QE's report, which binds the
//!   attestation key that signed the TD report; Intel signed the TCB info and QE identity, all
//!   valid at the verification time; Intel rates the platform's TCB one of the accepted statuses
//!   (`UpToDate` by default); REPORTDATA is the verifier's nonce. It assumes: Intel's root, PCS and
//!   the TDX module are honest, and the collateral is recent (it is trusted for its ~30-day window:
//!   older collateral may not know a newer advisory).
//! * **Unauthenticated evidence** — PCR values read from a file or a local TPM without a quote,
//!   SNP reports given without their VEK and chain, TDX quotes given without collateral — is
//!   still compared, but the report is [`Authenticity::Unauthenticated`], and a note names each
//!   part and what would vouch for it: until then it proves only what the party that handed it
//!   over vouches for.
//! * **The reference values** are trusted as given: [`ReferenceValues`] should come from a bundle
//!   whose minisign signature, trusted comment and schema were verified (`release::verify`).
//!
//! Everything here is pure: bytes and values in, typed values out; nothing prints, nothing runs.

pub mod check;
pub mod evidence;
pub mod hex;
pub mod quote;
pub mod reference;
pub mod snp_verify;
pub mod tdx_verify;
pub mod time;
pub mod tpm;
mod wire;

pub use check::{
    check, check_with, pcr_values, pcr_values_from_json, pcr_values_from_log, AttestError, Authentication,
    Authenticity, Check, Evidence, GuestPolicy, PcrValues, Report, Source, Status,
};
pub use hex::Hex;
pub use reference::ReferenceValues;
