//! The evidence a confidential VM hands a verifier: an AMD SEV-SNP attestation report, an Intel
//! TDX quote.
//!
//! The rest of this crate predicts values before a node boots; this module reads the values a
//! running node reports, so that a verifier can put the two side by side. Both structures come
//! from the hardware as fixed little-endian layouts, specified by their vendors:
//!
//! * [`snp_report`]: the `ATTESTATION_REPORT` the AMD Secure Processor returns to a guest
//!   (`/dev/sev-guest`, `snpguest report`): the launch digest (`MEASUREMENT`), the guest policy,
//!   the VMPL it was requested from, 64 bytes of guest data, 32 bytes of host data and the
//!   platform's TCB versions. Report versions 2, 3 and 5 (what current firmware emits).
//! * [`tdx_quote`]: the DCAP quote the TD Quoting Enclave makes from a TD report (configfs-tsm,
//!   `/dev/tdx_guest`): MRTD, RTMR0–3, the TD attributes, XFAM and the owner's configuration IDs.
//!   Quote versions 4 and 5, TD report bodies 1.0 and 1.5.
//!
//! **Only the values are read here, not the signatures.** An SNP report is signed with a
//! chip-unique VCEK (or a cloud's VLEK) that chains to AMD's root key; a TDX quote with an
//! attestation key certified by the Quoting Enclave, whose report chains through the PCK
//! certificate to Intel's root. Checking those chains needs the vendor's certificates, CRLs and
//! TCB information: [`crate::snp_verify`] and [`crate::tdx_verify`] do that; a value parsed here
//! means something only once that check has passed.
//!
//! Both are untrusted input. Each parser checks the length before reading a field, refuses
//! versions it does not know, requires reserved fields to be zero (a non-zero reserved field
//! means the layout is not the one the version claims), and names the offset of what is wrong.
//! Nothing panics on any input (the `snp_report` and `tdx_quote` fuzz targets check it).

pub mod snp_report;
pub mod tdx_quote;

pub use snp_report::{SnpReport, SnpReportError};
pub use tdx_quote::{TdxQuote, TdxQuoteError};

/// The first non-zero byte of `bytes[range]`, as an absolute offset.
fn first_nonzero(bytes: &[u8], range: std::ops::Range<usize>) -> Option<usize> {
    let start = range.start;
    bytes[range].iter().position(|b| *b != 0).map(|i| start + i)
}
