//! Reference values, as the verifier takes them: what a genuine node of one platform reports.
//!
//! These are the values a release's signed bundle carries per platform (`release` turns a
//! verified bundle's platform into a [`ReferenceValues`]); the serde form of the value types is
//! the bundle's (schema v1), so the two cannot drift apart.

use std::collections::BTreeMap;

use eventlog::HashAlg;
use serde::{Deserialize, Serialize};

use crate::hex::Hex;

/// Who vouches for a PCR value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcrStatus {
    /// Computed from the image by the build: a mismatch means a different image.
    Enforced,
    /// Read from a running instance by a release engineer (firmware-owned PCRs we cannot
    /// compute): it documents what the platform reported, and changes with its firmware.
    Observed,
}

/// One expected PCR value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pcr {
    /// The PCR value.
    pub value: Hex,
    /// Computed or observed.
    pub status: PcrStatus,
}

/// PCRs of one bank by index.
pub type PcrBank = BTreeMap<u8, Pcr>;

/// The SEV-SNP launch digest of one VM shape (the inputs of sev-snp-measure besides firmware,
/// kernel, initrd and command line, which the image fixes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpLaunchDigest {
    /// Number of vCPUs (one VMSA each).
    pub vcpus: u32,
    /// Name of the vCPU model, informative (sev-snp-measure `--vcpu-type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu_type: Option<String>,
    /// CPUID(1).EAX signature in the VMSAs.
    pub vcpu_sig: u32,
    /// VMM type as sev-snp-measure names it, lower case (`qemu`, `ec2`).
    pub vmm_type: String,
    /// SEV_FEATURES in the VMSAs.
    pub guest_features: u64,
    /// The 48-byte launch digest (MEASUREMENT of the attestation report).
    pub launch_digest: Hex,
}

impl SnpLaunchDigest {
    /// The sort key: what distinguishes one VM shape from another.
    pub fn shape(&self) -> (u32, u32, &str, u64) {
        (self.vcpus, self.vcpu_sig, &self.vmm_type, self.guest_features)
    }
}

/// The SEV-SNP guest policy bits a release allows its VMs (debug and migration agents are never
/// allowed by a bundle: `attest check` refuses them unless its caller allows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpPolicy {
    /// The policy may allow SMT (POLICY bit 16): the host may run other guests on the vCPUs'
    /// sibling hyperthreads. The clouds' SNP VMs (and QEMU's default policy, 0x30000) allow it;
    /// `false` requires hosts with SMT off.
    pub smt: bool,
}

/// Intel TDX measurement registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tdx {
    /// MRTD: the TD's initial contents (the firmware).
    pub mrtd: Hex,
    /// RTMR 0–3 by index (those the image determines).
    pub rtmr: BTreeMap<u8, Hex>,
}

/// One platform's reference values: what [`crate::check`] compares evidence with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReferenceValues {
    /// Expected vTPM PCRs by bank, then index (never 11: see `pcr11`).
    pub vtpm: BTreeMap<HashAlg, PcrBank>,
    /// Expected PCR 11 by bank, then boot phase (systemd-measure's `--phase` path).
    pub pcr11: BTreeMap<HashAlg, BTreeMap<String, Hex>>,
    /// SEV-SNP launch digests, one per VM shape.
    pub snp: Vec<SnpLaunchDigest>,
    /// What the SEV-SNP guest policy may allow, where the release states it.
    pub snp_policy: Option<SnpPolicy>,
    /// TDX measurement registers.
    pub tdx: Option<Tdx>,
    /// The predicted event log (TCG crypto-agile, or a TDX CCEL): explains a mismatch event by
    /// event; its PCR 11 is the value before any boot phase.
    pub eventlog: Option<Hex>,
}
