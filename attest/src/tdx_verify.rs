//! Is this TDX quote authentic? Intel DCAP quote verification against given collateral.
//!
//! A TDX quote (v4, v5) is signed by an attestation key that the TD Quoting Enclave made; the
//! QE's own report, signed by the platform's PCK (Provisioning Certification Key), binds that key;
//! the PCK certificate chains through Intel's PCK Platform/Processor CA to Intel's SGX Root CA.
//! Whether the platform's firmware and TDX module are current is Intel's *TCB info* for the
//! platform's FMSPC, and whether the QE is genuine and current its *QE identity*; both are JSON
//! documents signed by Intel's TCB Signing key, valid about 30 days. Revocation is the PCK CRL
//! and the Root CA CRL. Together these are the *collateral* (Intel, *Intel TDX DCAP Quote
//! Verification Library*, and the PCS API v4).
//!
//! All of that is the `dcap-qvl` crate's (Phala Network, pure Rust, `rustcrypto`), which this
//! module calls with Intel's root CA built into it, the PCK chain from the quote's certification
//! data, and the collateral the caller gives, at the caller's time ([`crate::time`]). nodeimg
//! adds: reading the collateral (dcap-qvl's JSON, or a directory of the files Intel's PCS serves,
//! see [`collateral_from_pcs_dir`]), the TCB statuses the user accepts, the nonce, and one
//! [`Check`] line each: `TDX QUOTE SIGNATURE` (dcap-qvl verified the quote, the chain, the
//! collateral's signatures, CRLs and validity), `TDX TCB STATUS` (Intel's verdict on the
//! platform and QE TCB: `UpToDate`, `SWHardeningNeeded`, `OutOfDate`, …, with advisory IDs) and
//! `TDX REPORTDATA`. A quote v5 with a TD 1.5 body carries a second TEE TCB SVN
//! (TEE_TCB_SVN2, the TDX module after an update); dcap-qvl matches the TCB level with it, and
//! the line shows it.
//!
//! A quote that fails to verify is a mismatch (exit 1); collateral that is not collateral at all
//! is a [`TdxVerifyError`] (exit 2).

use std::collections::BTreeMap;

use dcap_qvl::QuoteCollateralV3;

use crate::check::{Check, Reference, Source, Status};
use crate::evidence::TdxQuote;
use crate::time::{format_rfc3339, UnixTime};

/// Collateral that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum TdxVerifyError {
    /// Not dcap-qvl's collateral JSON.
    #[error("not DCAP collateral JSON (dcap-qvl's QuoteCollateralV3: pck_crl_issuer_chain, root_ca_crl, pck_crl, tcb_info_issuer_chain, tcb_info, tcb_info_signature, qe_identity_issuer_chain, qe_identity, qe_identity_signature): {0}")]
    CollateralJson(String),
    /// A file of a PCS directory is missing or malformed.
    #[error("PCS collateral directory: {0}")]
    PcsDir(String),
    /// More than 64 bytes of expected report data.
    #[error("the expected REPORTDATA has {0} bytes; REPORTDATA has 64")]
    ReportDataLen(usize),
}

/// DCAP collateral, as dcap-qvl takes it.
#[derive(Debug, Clone)]
pub struct Collateral(pub QuoteCollateralV3);

/// Reads dcap-qvl's collateral JSON (`QuoteCollateralV3`: PEM chains, hex CRLs and signatures,
/// TCB info and QE identity as the JSON text Intel signed).
pub fn collateral_from_json(bytes: &[u8]) -> Result<Collateral, TdxVerifyError> {
    serde_json::from_slice(bytes).map(Collateral).map_err(|e| TdxVerifyError::CollateralJson(e.to_string()))
}

/// The files of a directory of collateral as Intel's PCS (API v4) serves it, by name:
///
/// | file | PCS response |
/// |---|---|
/// | `tcbinfo.json` | `GET /tdx/certification/v4/tcb?fmspc=…` body (`{"tcbInfo": …, "signature": …}`) |
/// | `tcbinfo-issuer-chain.pem` | its `TCB-Info-Issuer-Chain` header, URL-decoded |
/// | `qeidentity.json` | `GET /tdx/certification/v4/qe/identity` body (`{"enclaveIdentity": …, "signature": …}`) |
/// | `qeidentity-issuer-chain.pem` | its `SGX-Enclave-Identity-Issuer-Chain` header, URL-decoded |
/// | `pckcrl.der` | `GET /sgx/certification/v4/pckcrl?ca=platform&encoding=der` body (or `ca=processor`) |
/// | `pckcrl-issuer-chain.pem` | its `SGX-PCK-CRL-Issuer-Chain` header, URL-decoded |
/// | `rootcacrl.der` | Intel's SGX Root CA CRL (`IntelSGXRootCA.der`, the Root CA's CRL distribution point) |
///
/// Intel signs the exact bytes of the `tcbInfo` and `enclaveIdentity` values, so they are taken
/// from the body as written, not re-serialised.
pub fn collateral_from_pcs_dir(files: &BTreeMap<String, Vec<u8>>) -> Result<Collateral, TdxVerifyError> {
    let get = |name: &str| files.get(name).ok_or_else(|| TdxVerifyError::PcsDir(format!("{name} is missing")));
    let text = |name: &str| -> Result<String, TdxVerifyError> {
        String::from_utf8(get(name)?.clone()).map_err(|_| TdxVerifyError::PcsDir(format!("{name} is not UTF-8")))
    };
    let signed = |name: &str, key: &str| -> Result<(String, Vec<u8>), TdxVerifyError> {
        let bytes = get(name)?;
        let body: BTreeMap<&str, &serde_json::value::RawValue> = serde_json::from_slice(bytes)
            .map_err(|e| TdxVerifyError::PcsDir(format!("{name}: not a PCS {key} response: {e}")))?;
        let value = body.get(key).ok_or_else(|| TdxVerifyError::PcsDir(format!("{name} has no {key:?}")))?;
        let sig: String = body
            .get("signature")
            .and_then(|s| serde_json::from_str(s.get()).ok())
            .ok_or_else(|| TdxVerifyError::PcsDir(format!("{name} has no \"signature\" string")))?;
        let sig = hex::decode(sig).map_err(|_| TdxVerifyError::PcsDir(format!("{name}: the signature is not hex")))?;
        Ok((value.get().to_owned(), sig))
    };
    let (tcb_info, tcb_info_signature) = signed("tcbinfo.json", "tcbInfo")?;
    let (qe_identity, qe_identity_signature) = signed("qeidentity.json", "enclaveIdentity")?;
    Ok(Collateral(QuoteCollateralV3 {
        pck_crl_issuer_chain: text("pckcrl-issuer-chain.pem")?,
        root_ca_crl: get("rootcacrl.der")?.clone(),
        pck_crl: get("pckcrl.der")?.clone(),
        tcb_info_issuer_chain: text("tcbinfo-issuer-chain.pem")?,
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain: text("qeidentity-issuer-chain.pem")?,
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: None,
    }))
}

/// The file names [`collateral_from_pcs_dir`] reads.
pub const PCS_FILES: [&str; 7] = [
    "tcbinfo.json",
    "tcbinfo-issuer-chain.pem",
    "qeidentity.json",
    "qeidentity-issuer-chain.pem",
    "pckcrl.der",
    "pckcrl-issuer-chain.pem",
    "rootcacrl.der",
];

/// What to verify a quote with.
#[derive(Debug, Clone)]
pub struct TdxInputs<'a> {
    /// The collateral.
    pub collateral: &'a Collateral,
    /// When the collateral and certificates must be valid.
    pub at: UnixTime,
    /// The TCB statuses to accept (Intel's names: `UpToDate`, `SWHardeningNeeded`,
    /// `ConfigurationNeeded`, `ConfigurationAndSWHardeningNeeded`, `OutOfDate`, …).
    pub allowed_statuses: &'a [String],
    /// What REPORTDATA must hold (up to 64 bytes; shorter is padded with zeros).
    pub report_data: Option<&'a [u8]>,
}

fn line(value: &str, ok: bool, actual: String, detail: String) -> Check {
    Check::new(Source::TdxQuote, value, Status::ok_if(ok), actual, Vec::new(), detail)
}

/// Verifies `bytes` (parsed as `quote`) with `inputs`: the quote signature and chain, the TCB
/// status, the optional nonce.
pub fn verify(bytes: &[u8], quote: &TdxQuote, inputs: &TdxInputs) -> Result<Vec<Check>, TdxVerifyError> {
    if let Some(rd) = inputs.report_data {
        if rd.len() > 64 {
            return Err(TdxVerifyError::ReportDataLen(rd.len()));
        }
    }
    let mut out = Vec::new();
    let at = format_rfc3339(inputs.at);
    let verified = dcap_qvl::verify::rustcrypto::verify(bytes, &inputs.collateral.0, inputs.at);
    match &verified {
        Ok(_) => out.push(line(
            "TDX QUOTE SIGNATURE",
            true,
            format!("quote v{}", quote.version),
            format!("PCK chain to Intel's SGX Root CA, QE report, attestation key and collateral verified at {at}"),
        )),
        Err(e) => out.push(line(
            "TDX QUOTE SIGNATURE",
            false,
            format!("quote v{}", quote.version),
            format!("dcap-qvl at {at}: {}", format!("{e:#}").escape_debug()),
        )),
    }
    let svn2 = quote.tee_tcb_svn_2.map(|s| format!(", TEE_TCB_SVN2 {}", hex::encode(s))).unwrap_or_default();
    let svn = format!("TEE_TCB_SVN {}{svn2}", hex::encode(quote.tee_tcb_svn));
    let mut c = match &verified {
        Ok(r) => {
            let ok = inputs.allowed_statuses.contains(&r.status);
            let advisories = if r.advisory_ids.is_empty() {
                String::new()
            } else {
                format!(", advisories {}", r.advisory_ids.join(" "))
            };
            let verdict = if ok { "accepted" } else { "not an accepted status" };
            line("TDX TCB STATUS", ok, r.status.clone(), format!("{verdict} ({svn}{advisories})"))
        }
        Err(_) => {
            line("TDX TCB STATUS", false, String::new(), format!("not established: the quote did not verify ({svn})"))
        }
    };
    if c.status == Status::Mismatch {
        c.expected =
            inputs.allowed_statuses.iter().map(|s| Reference { value: s.clone(), what: "accepted".into() }).collect();
    }
    out.push(c);
    if let Some(rd) = inputs.report_data {
        let mut want = [0u8; 64];
        want[..rd.len()].copy_from_slice(rd);
        let ok = want == quote.report_data;
        let mut c = line(
            "TDX REPORTDATA",
            ok,
            hex::encode(quote.report_data),
            if ok { "equals the expected nonce".into() } else { "differs from the expected nonce".into() },
        );
        if !ok {
            c.expected.push(Reference { value: hex::encode(want), what: "--report-data".into() });
        }
        out.push(c);
    }
    Ok(out)
}
