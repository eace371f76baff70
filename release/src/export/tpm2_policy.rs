//! A TPM2 PolicyPCR digest of a release's predicted PCR values: what a secret sealed to "this
//! image booted" is bound to, known before the first node boots.
//!
//! `tpm2_createpolicy --policy-pcr`, `systemd-cryptenroll --tpm2-pcrs=` and Clevis seal a secret
//! under an authorisation policy whose digest covers chosen PCR values. TPM 2.0 Library, Part 3,
//! `TPM2_PolicyPCR`: with the session's hash H,
//!
//! ```text
//! pcrDigest    = H(PCR[i0] ‖ PCR[i1] ‖ …)             selected PCRs, ascending index
//! policyDigest = H(0…0 ‖ TPM_CC_PolicyPCR ‖ TPML_PCR_SELECTION ‖ pcrDigest)
//! ```
//!
//! where `TPM_CC_PolicyPCR` is `0x0000017f` and `TPML_PCR_SELECTION` is `count = 1` and one
//! `TPMS_PCR_SELECTION {hash, sizeofSelect = 3, pcrSelect[3]}` (big-endian, a bitmap of the
//! indices). The values are the bundle's: enforced and observed vTPM PCRs, and PCR 11 at a boot
//! phase (the phase a secret is unsealed at: `enter-initrd` for a disk key in the initrd).
//! [`PolicyPcr::values`] is the PCR values file `tpm2_createpolicy -f` reads.

use eventlog::HashAlg;

use super::{ExportError, Options};
use crate::bundle::Bundle;

/// `TPM_CC_PolicyPCR`.
const TPM_CC_POLICY_PCR: u32 = 0x0000_017f;

/// A PolicyPCR over a platform's predicted values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPcr {
    /// The bank the PCRs are selected in (and the session hash).
    pub bank: HashAlg,
    /// The selected indices, ascending.
    pub pcrs: Vec<u8>,
    /// The selected values, concatenated in index order (`tpm2_createpolicy -f`).
    pub values: Vec<u8>,
    /// The policy digest.
    pub digest: Vec<u8>,
}

/// The PolicyPCR digest of `bank` PCRs `pcrs` of the one platform `opts` selects (or the
/// bundle's only platform).
pub fn export(bundle: &Bundle, opts: &Options, pcrs: &[u8], bank: HashAlg) -> Result<PolicyPcr, ExportError> {
    let platforms = opts.platforms(bundle)?;
    let [(name, platform)] = platforms[..] else {
        return Err(ExportError::Unsupported {
            platform: platforms.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            message: "a PCR policy is for one platform: choose it with --platform".into(),
        });
    };
    let unsupported = |message: String| ExportError::Unsupported { platform: name.into(), message };
    let mut pcrs = pcrs.to_vec();
    pcrs.sort_unstable();
    pcrs.dedup();
    if pcrs.is_empty() || pcrs.iter().any(|i| *i > 23) {
        return Err(unsupported(format!("PCRs {pcrs:?}: give PCR indices 0-23")));
    }
    let mut values = Vec::new();
    for &i in &pcrs {
        let value = if i == 11 {
            opts.pcr11_in(name, platform, bank)?
                .ok_or_else(|| unsupported(format!("no {bank} PCR 11 value in the bundle")))?
        } else {
            &platform
                .vtpm
                .get(&bank)
                .and_then(|b| b.get(&i))
                .ok_or_else(|| unsupported(format!("the bundle has no {bank} value for PCR {i}")))?
                .value
        };
        values.extend_from_slice(value.as_bytes());
    }
    let digest = policy_pcr_digest(bank, &pcrs, &values);
    Ok(PolicyPcr { bank, pcrs, values, digest })
}

/// `TPM2_PolicyPCR` extending an empty policy, with `bank` as the session hash and selection.
pub fn policy_pcr_digest(bank: HashAlg, pcrs: &[u8], values: &[u8]) -> Vec<u8> {
    let mut select = [0u8; 3];
    for &i in pcrs {
        select[usize::from(i / 8)] |= 1 << (i % 8);
    }
    let mut selection = 1u32.to_be_bytes().to_vec();
    selection.extend_from_slice(&bank.id().0.to_be_bytes());
    selection.push(3);
    selection.extend_from_slice(&select);
    let pcr_digest = bank.hash(values);
    bank.hash_parts(&[&bank.zeros(), &TPM_CC_POLICY_PCR.to_be_bytes(), &selection, &pcr_digest])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oracle is `tpm2_createpolicy` in a swtpm (`tests/release_cli.rs`); here, that the
    /// digest covers both the selection and the values.
    #[test]
    fn selection_bitmap_and_lengths() {
        let d = policy_pcr_digest(HashAlg::Sha256, &[4, 7, 11], &[0; 96]);
        assert_eq!(d.len(), 32);
        assert_ne!(d, policy_pcr_digest(HashAlg::Sha256, &[4, 7, 12], &[0; 96]), "the selection is covered");
        assert_ne!(d, policy_pcr_digest(HashAlg::Sha256, &[4, 7, 11], &[1; 96]), "the values are covered");
    }
}
