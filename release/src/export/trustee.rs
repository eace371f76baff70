//! Trustee (Confidential Containers KBS) reference values: an RVPS message of type `sample`.
//!
//! Format (trustee `rvps/README.md` and `rvps/src/extractors/sample/README.md`): a message
//! `{"version": "0.1.0", "type": "sample", "payload": "<base64>"}` whose payload, base64
//! (standard alphabet, padded) decoded, is a JSON object mapping reference-value names to arrays
//! of accepted values. The RVPS stores each name's array; the attestation policy then asks
//! `query_reference_value(name)` and accepts a claim that is `in` the array.
//!
//! Names are those Trustee's default CPU policy
//! (`attestation-service/src/ear_token/ear_default_policy_cpu.rego`) queries, and values are
//! lowercase hex, as its verifiers render the claims compared with them:
//!
//! | name | value | claim it is compared with |
//! |---|---|---|
//! | `snp_launch_measurement` | every SNP launch digest | `input.snp.measurement` |
//! | `mr_td` | TDX MRTD | `input.tdx.quote.body.mr_td` |
//! | `rtmr_1`, `rtmr_2` | TDX RTMR 1, 2 | `input.tdx.quote.body.rtmr_{1,2}` |
//! | `tpm_pcr11` | PCR 11 (sha256) of the chosen phase | `input.tpm.pcr11` |
//! | `snp_pcr11` | the same, for `azure-sev-snp` | `input["az-snp-vtpm"].tpm.pcr11` |
//! | `tdx_pcr11` | the same, for `azure-tdx` | `input["az-tdx-vtpm"].tpm.pcr11` |
//!
//! Values of all exported platforms are merged per name (sorted, each once), since RVPS names are
//! global — and so are the values of several releases ([`export_releases`]): each RVPS
//! registration *replaces* a name's values, so a rolling upgrade from release N to N+1 must
//! register one message that accepts both.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{ExportError, Options};
use crate::bundle::Bundle;
use crate::canonical;

/// The RVPS message envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Message format version: `0.1.0`.
    pub version: String,
    /// Extractor: `sample`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Base64 of the sample provenance JSON.
    pub payload: String,
}

/// The reference-value names this exporter writes, all queried by Trustee's default policy.
pub const NAMES: [&str; 7] =
    ["mr_td", "rtmr_1", "rtmr_2", "snp_launch_measurement", "snp_pcr11", "tdx_pcr11", "tpm_pcr11"];

/// The sample provenance: reference-value name → accepted values.
pub fn reference_values(bundle: &Bundle, opts: &Options) -> Result<BTreeMap<String, Vec<String>>, ExportError> {
    reference_values_of(&[bundle], opts)
}

/// The sample provenance accepting every release in `bundles`.
pub fn reference_values_of(bundles: &[&Bundle], opts: &Options) -> Result<BTreeMap<String, Vec<String>>, ExportError> {
    let mut values: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut add = |name: &'static str, v: String| values.entry(name).or_default().insert(v);
    let platforms = bundles.iter().map(|b| opts.platforms(b)).collect::<Result<Vec<_>, _>>()?;
    for (name, platform) in platforms.into_iter().flatten() {
        for d in &platform.snp {
            add("snp_launch_measurement", d.launch_digest.to_string());
        }
        if let Some(tdx) = &platform.tdx {
            add("mr_td", tdx.mrtd.to_string());
            for (i, key) in [(1u8, "rtmr_1"), (2, "rtmr_2")] {
                if let Some(v) = tdx.rtmr.get(&i) {
                    add(key, v.to_string());
                }
            }
        }
        if let Some(pcr11) = opts.pcr11(name, platform)? {
            add("tpm_pcr11", pcr11.to_string());
            match platform.attestation_variant.as_str() {
                "azure-sev-snp" => add("snp_pcr11", pcr11.to_string()),
                "azure-tdx" => add("tdx_pcr11", pcr11.to_string()),
                _ => false,
            };
        }
    }
    if values.is_empty() {
        return Err(ExportError::Unsupported {
            platform: opts.platform.clone().unwrap_or_else(|| "(all)".into()),
            message: "no SNP, TDX or PCR 11 values to export".into(),
        });
    }
    Ok(values.into_iter().map(|(k, v)| (k.to_owned(), v.into_iter().collect())).collect())
}

/// The RVPS message for `bundle`.
pub fn export(bundle: &Bundle, opts: &Options) -> Result<String, ExportError> {
    export_releases(&[bundle], opts)
}

/// One RVPS message accepting every release in `bundles` (a rolling upgrade: N and N+1).
pub fn export_releases(bundles: &[&Bundle], opts: &Options) -> Result<String, ExportError> {
    let payload = canonical::compact(&reference_values_of(bundles, opts)?)?;
    let message = Message {
        version: "0.1.0".into(),
        kind: "sample".into(),
        payload: base64::engine::general_purpose::STANDARD.encode(payload),
    };
    Ok(canonical::pretty(&message)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests::sample;

    #[test]
    fn names_and_values() {
        let rv = reference_values(&sample(), &Options::default()).unwrap();
        assert_eq!(
            rv.keys().map(String::as_str).collect::<Vec<_>>(),
            ["mr_td", "rtmr_1", "rtmr_2", "snp_launch_measurement", "tpm_pcr11"]
        );
        assert_eq!(rv["snp_launch_measurement"].len(), 2);
        assert_eq!(rv["tpm_pcr11"], ["b4".repeat(32)]);
        assert!(rv.keys().all(|k| NAMES.contains(&k.as_str())));

        let mut azure = sample();
        azure.platforms.get_mut("qemu-snp").unwrap().attestation_variant = "azure-sev-snp".into();
        let rv = reference_values(&azure, &Options::default()).unwrap();
        assert_eq!(rv["snp_pcr11"], rv["tpm_pcr11"]);
    }

    #[test]
    fn two_releases_in_one_message() {
        let n = sample();
        let mut n1 = sample();
        n1.image.version = "1.2.4".into();
        let p = n1.platforms.get_mut("qemu-snp").unwrap();
        p.snp[0].launch_digest = crate::hex::Hex(vec![0xc9; 48]);
        let one = reference_values(&n, &Options::default()).unwrap();
        let both = reference_values_of(&[&n, &n1], &Options::default()).unwrap();
        let snp = &both["snp_launch_measurement"];
        assert_eq!(snp.len(), one["snp_launch_measurement"].len() + 1, "{snp:?}");
        assert!(snp.contains(&"c9".repeat(48)) && one["snp_launch_measurement"].iter().all(|v| snp.contains(v)));
        assert_eq!(both["tpm_pcr11"], one["tpm_pcr11"], "equal values are listed once");
    }

    #[test]
    fn tdx_without_rtmr0() {
        // `nodeimg build` writes RTMR1 and RTMR2 only (RTMR0 is the platform's): the schema takes
        // it and the export names what is there.
        let mut b = sample();
        b.platforms.get_mut("qemu-tdx").unwrap().tdx.as_mut().unwrap().rtmr.remove(&0);
        Bundle::parse(b.to_canonical_json().unwrap().as_bytes()).unwrap();
        let rv = reference_values(&b, &Options::default()).unwrap();
        assert_eq!(rv["mr_td"], ["d0".repeat(48)]);
        assert_eq!((&rv["rtmr_1"], &rv["rtmr_2"]), (&vec!["e1".repeat(48)], &vec!["e2".repeat(48)]));
    }
}
