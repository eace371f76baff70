//! Trustee (Confidential Containers KBS) reference values: an RVPS message of type `sample`.
//!
//! Format (trustee `rvps/README.md` and `rvps/src/extractors/sample/README.md`): a message
//! `{"version": "0.1.0", "type": "sample", "payload": "<base64>"}` whose payload, base64
//! (standard alphabet, padded) decoded, is a JSON object mapping reference-value names to values.
//! The sample extractor (`rvps/src/extractors/sample/mod.rs`) stores each name's JSON value as it
//! is; the attestation service's `query_reference_value(name)` Rego extension
//! (`attestation-service/src/ear_token/broker.rs`) returns it to the policy, or `null` for a name
//! never registered. The policy then accepts a claim that is `in` an array, or `==` a scalar.
//!
//! Names are those Trustee's default CPU policy
//! (`attestation-service/src/ear_token/ear_default_policy_cpu.rego`, at the commit
//! `docs/verifying-trustee.md` pins) queries, and values are rendered as its verifiers render
//! the claims compared with them (`deps/verifier/src/{snp,tdx,tpm}`):
//!
//! | name | value | claim it is compared with |
//! |---|---|---|
//! | `snp_launch_measurement` | every SNP launch digest (hex) | `input.snp.measurement` (`in`) |
//! | `snp_smt_allowed` | `snp_policy.smt`, a boolean | `input.snp.policy_smt_allowed` (`==`) |
//! | `mr_td` | TDX MRTD (hex) | `input.tdx.quote.body.mr_td` (`in`) |
//! | `rtmr_1`, `rtmr_2` | TDX RTMR 1, 2 (hex) | `input.tdx.quote.body.rtmr_{1,2}` (`in`) |
//! | `tpm_pcr11` | PCR 11 (sha256, hex) of the chosen phase | `input.tpm.pcr11` (`in`) |
//! | `trusted_aks` | the AK public keys given ([`ak_public`]) | `input.tpm.ak_public` (`in`) |
//! | `snp_pcr11` | the same, for `azure-sev-snp` | `input["az-snp-vtpm"].tpm.pcr11` (`in`) |
//! | `tdx_pcr11` | the same, for `azure-tdx` | `input["az-tdx-vtpm"].tpm.pcr11` (`in`) |
//!
//! Values of all exported platforms are merged per name (sorted, each once), since RVPS names are
//! global — and so are the values of several releases ([`export_releases`]): each RVPS
//! registration *replaces* a name's values, so a rolling upgrade from release N to N+1 must
//! register one message that accepts both. `snp_smt_allowed` is one boolean (the policy compares
//! it with `==`): releases or platforms that state different values are refused.
//!
//! What a bundle does not know is not exported, and the default policy then withholds the
//! claim that needs it: the SNP host's TCB (`snp_bootloader`, `snp_microcode`, `snp_snp_svn`,
//! `snp_tee_svn`) and platform settings (`snp_smt_enabled`, `snp_tsme_enabled`,
//! `snp_guest_abi_{major,minor}`, `snp_single_socket`), and the TD's `xfam`, which the VMM
//! chooses from the vCPU model and the host (QEMU's `-cpu`), not the image. The TPM branch's AKs
//! come from the nodes, not the build: the caller passes them (`nodeimg export --trusted-ak`).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spki::der::{Decode as _, DecodePem as _, Encode as _};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned};

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
pub const NAMES: [&str; 9] = [
    "mr_td",
    "rtmr_1",
    "rtmr_2",
    "snp_launch_measurement",
    "snp_pcr11",
    "snp_smt_allowed",
    "tdx_pcr11",
    "tpm_pcr11",
    "trusted_aks",
];

/// The sample provenance: reference-value name → accepted values (an array of strings, or a
/// boolean for the names the policy compares with `==`).
pub fn reference_values(bundle: &Bundle, opts: &Options) -> Result<BTreeMap<String, Value>, ExportError> {
    reference_values_of(&[bundle], opts, &[])
}

/// The sample provenance accepting every release in `bundles`, and the AKs `trusted_aks`
/// (each as [`ak_public`] renders it).
pub fn reference_values_of(
    bundles: &[&Bundle],
    opts: &Options,
    trusted_aks: &[String],
) -> Result<BTreeMap<String, Value>, ExportError> {
    let mut values: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut add = |name: &'static str, v: String| values.entry(name).or_default().insert(v);
    // snp_smt_allowed: the value, and the platform that stated it first.
    let mut smt: Option<(bool, String)> = None;
    for bundle in bundles {
        for (name, platform) in opts.platforms(bundle)? {
            let Some(policy) = platform.snp_policy else { continue };
            let here = format!("{} {name}", bundle.image.version);
            match &smt {
                Some((v, first)) if *v != policy.smt => {
                    return Err(ExportError::Unsupported {
                        platform: name.into(),
                        message: format!(
                            "snp_policy.smt is {} in release {here} but {v} in release {first}; Trustee's default \
                             policy compares snp_smt_allowed with one value (==): export them separately \
                             (--platform) or align the releases",
                            policy.smt
                        ),
                    });
                }
                Some(_) => {}
                None => smt = Some((policy.smt, here)),
            }
        }
    }
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
    for ak in trusted_aks {
        values.entry("trusted_aks").or_default().insert(ak.clone());
    }
    let mut out: BTreeMap<String, Value> = values
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::Array(v.into_iter().map(Value::String).collect())))
        .collect();
    if let Some((v, _)) = smt {
        out.insert("snp_smt_allowed".into(), Value::Bool(v));
    }
    Ok(out)
}

/// The RVPS message for `bundle`.
pub fn export(bundle: &Bundle, opts: &Options) -> Result<String, ExportError> {
    export_releases(&[bundle], opts)
}

/// One RVPS message accepting every release in `bundles` (a rolling upgrade: N and N+1).
pub fn export_releases(bundles: &[&Bundle], opts: &Options) -> Result<String, ExportError> {
    export_message(bundles, opts, &[])
}

/// One RVPS message accepting every release in `bundles` and, in the TPM branch, the AKs
/// `trusted_aks` (each as [`ak_public`] renders it).
pub fn export_message(bundles: &[&Bundle], opts: &Options, trusted_aks: &[String]) -> Result<String, ExportError> {
    let payload = canonical::compact(&reference_values_of(bundles, opts, trusted_aks)?)?;
    let message = Message {
        version: "0.1.0".into(),
        kind: "sample".into(),
        payload: base64::engine::general_purpose::STANDARD.encode(payload),
    };
    Ok(canonical::pretty(&message)?)
}

/// `rsaEncryption` (RFC 8017 appendix C; its parameters are NULL, RFC 3279 2.3.1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Why an AK public key cannot be a `trusted_aks` value.
#[derive(Debug, thiserror::Error)]
pub enum AkError {
    /// Neither a PEM `PUBLIC KEY` nor a DER SubjectPublicKeyInfo.
    #[error(
        "not a public key (PEM \"-----BEGIN PUBLIC KEY-----\" or DER SubjectPublicKeyInfo): {0}; \
         from an AK certificate, verify it and take its key with `openssl x509 -pubkey -noout`; \
         from the TPM, `tpm2_readpublic -c 0x81010002 -f pem -o ak.pem`"
    )]
    Parse(String),
    /// Not an RSA key, or one whose algorithm parameters are not NULL.
    #[error(
        "the key's algorithm is {0}, not rsaEncryption with NULL parameters: Trustee's TPM attester and \
         verifier take RSA AKs only (guest-components attester/src/tpm/utils.rs `read_ak_public_key`)"
    )]
    NotRsa(String),
}

/// An AK public key as Trustee's TPM attester sends it in `ak_public`, which the default policy
/// looks up in `trusted_aks`: standard base64 (padded, one line) of the key's DER
/// SubjectPublicKeyInfo (guest-components `attester/src/tpm/mod.rs`: the AK at persistent handle
/// `0x81010002`, an RSA key re-encoded as an `rsaEncryption` SubjectPublicKeyInfo).
///
/// `bytes` is the key in PEM (`PUBLIC KEY`, as `tpm2_readpublic -f pem` and `openssl x509
/// -pubkey` write it) or DER. DER is canonical, so the same key always gives the same string.
pub fn ak_public(bytes: &[u8]) -> Result<String, AkError> {
    let key = match std::str::from_utf8(bytes) {
        Ok(text) if text.trim_start().starts_with("-----BEGIN") => {
            SubjectPublicKeyInfoOwned::from_pem(text.trim()).map_err(|e| AkError::Parse(e.to_string()))?
        }
        _ => SubjectPublicKeyInfoOwned::from_der(bytes).map_err(|e| AkError::Parse(e.to_string()))?,
    };
    let null_params = key.algorithm.parameters.as_ref().is_some_and(|p| p.is_null());
    if key.algorithm.oid != RSA_ENCRYPTION || !null_params {
        return Err(AkError::NotRsa(key.algorithm.oid.to_string()));
    }
    let der = key.to_der().map_err(|e| AkError::Parse(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests::sample;
    use crate::bundle::SnpPolicy;

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect()
    }

    #[test]
    fn names_and_values() {
        let rv = reference_values(&sample(), &Options::default()).unwrap();
        assert_eq!(
            rv.keys().map(String::as_str).collect::<Vec<_>>(),
            ["mr_td", "rtmr_1", "rtmr_2", "snp_launch_measurement", "snp_smt_allowed", "tpm_pcr11"]
        );
        assert_eq!(strings(&rv["snp_launch_measurement"]).len(), 2);
        assert_eq!(strings(&rv["tpm_pcr11"]), ["b4".repeat(32)]);
        assert_eq!(rv["snp_smt_allowed"], Value::Bool(true), "a scalar: the policy compares it with ==");
        assert!(rv.keys().all(|k| NAMES.contains(&k.as_str())));

        let mut azure = sample();
        azure.platforms.get_mut("qemu-snp").unwrap().attestation_variant = "azure-sev-snp".into();
        let rv = reference_values(&azure, &Options::default()).unwrap();
        assert_eq!(rv["snp_pcr11"], rv["tpm_pcr11"]);

        let mut no_policy = sample();
        no_policy.platforms.get_mut("qemu-snp").unwrap().snp_policy = None;
        let rv = reference_values(&no_policy, &Options::default()).unwrap();
        assert!(!rv.contains_key("snp_smt_allowed"), "not stated, not exported");
    }

    #[test]
    fn two_releases_in_one_message() {
        let n = sample();
        let mut n1 = sample();
        n1.image.version = "1.2.4".into();
        let p = n1.platforms.get_mut("qemu-snp").unwrap();
        p.snp[0].launch_digest = crate::hex::Hex(vec![0xc9; 48]);
        let one = reference_values(&n, &Options::default()).unwrap();
        let both = reference_values_of(&[&n, &n1], &Options::default(), &[]).unwrap();
        let snp = strings(&both["snp_launch_measurement"]);
        let one_snp = strings(&one["snp_launch_measurement"]);
        assert_eq!(snp.len(), one_snp.len() + 1, "{snp:?}");
        assert!(snp.contains(&"c9".repeat(48).as_str()) && one_snp.iter().all(|v| snp.contains(v)));
        assert_eq!(both["tpm_pcr11"], one["tpm_pcr11"], "equal values are listed once");

        // One boolean for snp_smt_allowed: releases that disagree are refused, by name.
        n1.platforms.get_mut("qemu-snp").unwrap().snp_policy = Some(SnpPolicy { smt: false });
        let err = reference_values_of(&[&n, &n1], &Options::default(), &[]).unwrap_err().to_string();
        assert!(err.contains("snp_policy.smt is false in release 1.2.4 qemu-snp but true in release 1.2.3"), "{err}");
    }

    #[test]
    fn tdx_without_rtmr0() {
        // `nodeimg build` writes RTMR1 and RTMR2 only (RTMR0 is the platform's): the schema takes
        // it and the export names what is there.
        let mut b = sample();
        b.platforms.get_mut("qemu-tdx").unwrap().tdx.as_mut().unwrap().rtmr.remove(&0);
        Bundle::parse(b.to_canonical_json().unwrap().as_bytes()).unwrap();
        let rv = reference_values(&b, &Options::default()).unwrap();
        assert_eq!(strings(&rv["mr_td"]), ["d0".repeat(48)]);
        assert_eq!(
            (strings(&rv["rtmr_1"]), strings(&rv["rtmr_2"])),
            (vec!["e1".repeat(48).as_str()], vec!["e2".repeat(48).as_str()])
        );
    }

    /// Trustee's TPM evidence fixture and the same key as PEM (openssl): see testdata/README.md.
    const TRUSTEE_TPM_EVIDENCE: &str = include_str!("../../testdata/trustee/tpm_evidence.json");
    const AK_PEM: &str = include_str!("../../testdata/trustee/ak.pem");

    #[test]
    fn ak_public_is_what_trustees_attester_sends() {
        let evidence: Value = serde_json::from_str(TRUSTEE_TPM_EVIDENCE).unwrap();
        let theirs = evidence["ak_public"].as_str().unwrap();
        assert_eq!(ak_public(AK_PEM.as_bytes()).unwrap(), theirs, "from PEM");
        let der = base64::engine::general_purpose::STANDARD.decode(theirs).unwrap();
        assert_eq!(ak_public(&der).unwrap(), theirs, "from DER");
        let aks = [ak_public(AK_PEM.as_bytes()).unwrap()];
        let rv = reference_values_of(&[&sample()], &Options::default(), &aks).unwrap();
        assert_eq!(strings(&rv["trusted_aks"]), [theirs]);
    }

    #[test]
    fn ak_public_refuses_what_is_not_an_rsa_public_key() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(serde_json::from_str::<Value>(TRUSTEE_TPM_EVIDENCE).unwrap()["ak_public"].as_str().unwrap())
            .unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", Vec::new(), "not a public key"),
            ("truncated DER", der[..der.len() - 1].to_vec(), "not a public key"),
            ("trailing byte", [der.as_slice(), &[0]].concat(), "not a public key"),
            ("a certificate's label", AK_PEM.replace("PUBLIC KEY", "CERTIFICATE").into_bytes(), "not a public key"),
            ("garbage PEM", b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n".to_vec(), "not a public key"),
            // id-ecPublicKey (1.2.840.10045.2.1) with the P-256 OID, and a 65-byte point.
            (
                "an EC key",
                [
                    &[0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01][..],
                    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04],
                    &[0x11; 64],
                ]
                .concat(),
                "not rsaEncryption",
            ),
        ];
        for (what, bytes, want) in cases {
            let err = ak_public(&bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{what}: {err}");
        }
    }
}
