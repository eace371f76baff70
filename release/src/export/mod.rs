//! Exporters: the bundle's values in the formats attestation services already read.
//!
//! Each exporter follows its consumer's own documentation and is tested against examples taken
//! from it (`testdata/README.md` lists them):
//!
//! * [`constellation`]: Constellation's image measurements v2 (`measurements.json`).
//! * [`trustee`]: a Trustee RVPS message of type `sample`, with the reference-value names
//!   Trustee's default attestation policy queries.
//! * [`intoto`]: an in-toto Statement v1 whose predicate is SLSA Provenance v1, over the
//!   image's artefacts.
//! * [`tpm2_policy`]: the TPM2 PolicyPCR digest of chosen predicted PCRs, what
//!   `tpm2_createpolicy --policy-pcr` and `systemd-cryptenroll --tpm2-pcrs=` seal to.
//! * [`keylime`]: a Keylime `tpm_policy`, a measured-boot reference state made from the
//!   predicted event log, and the Keylime policy module (`nodeimg-uki`) that evaluates it.
//!
//! Exporters read a bundle; they do not verify its signature (the CLI does, before).
//! Their output is canonical JSON, so exporting the same bundle twice gives the same bytes.

use crate::bundle::{Bundle, HashAlg, Platform};
use crate::hex::Hex;

pub mod constellation;
pub mod intoto;
pub mod keylime;
pub mod tpm2_policy;
pub mod trustee;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// `--platform` names a platform the bundle does not have.
    #[error("the bundle has no platform {name:?} (it has: {available})")]
    UnknownPlatform { name: String, available: String },
    /// The consumer cannot represent this platform.
    #[error("platform {platform}: {message}")]
    Unsupported { platform: String, message: String },
    /// The requested PCR 11 phase is not in the bundle.
    #[error("platform {platform}: no PCR 11 value for phase {phase:?} in the {bank} bank")]
    NoPhase { platform: String, phase: String, bank: HashAlg },
    /// The output could not be serialised canonically.
    #[error(transparent)]
    Canonical(#[from] crate::canonical::CanonicalError),
}

/// Choices shared by the exporters.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Export only this platform (default: all).
    pub platform: Option<String>,
    /// The boot phase whose PCR 11 value is the reference (default: the latest phase, the
    /// value a fully booted node reports).
    pub pcr11_phase: Option<String>,
}

impl Options {
    /// The platforms to export, by name.
    pub fn platforms<'a>(&self, bundle: &'a Bundle) -> Result<Vec<(&'a str, &'a Platform)>, ExportError> {
        match &self.platform {
            None => Ok(bundle.platforms.iter().map(|(n, p)| (n.as_str(), p)).collect()),
            Some(name) => match bundle.platforms.get_key_value(name) {
                Some((n, p)) => Ok(vec![(n.as_str(), p)]),
                None => Err(ExportError::UnknownPlatform {
                    name: name.clone(),
                    available: bundle.platforms.keys().cloned().collect::<Vec<_>>().join(", "),
                }),
            },
        }
    }

    /// The sha256 PCR 11 reference of `platform`, if it has PCR 11 values.
    pub fn pcr11<'a>(&self, name: &str, platform: &'a Platform) -> Result<Option<&'a Hex>, ExportError> {
        self.pcr11_in(name, platform, HashAlg::Sha256)
    }

    /// The PCR 11 reference of `platform` in `bank` (the chosen phase, else the latest), if it
    /// has PCR 11 values in that bank.
    pub fn pcr11_in<'a>(
        &self,
        name: &str,
        platform: &'a Platform,
        bank: HashAlg,
    ) -> Result<Option<&'a Hex>, ExportError> {
        let Some(phases) = platform.pcr11.get(&bank) else { return Ok(None) };
        match &self.pcr11_phase {
            Some(phase) => phases.get(phase).map(Some).ok_or_else(|| ExportError::NoPhase {
                platform: name.into(),
                phase: phase.clone(),
                bank,
            }),
            None => Ok(platform.latest_pcr11(bank).map(|(_, v)| v)),
        }
    }
}
