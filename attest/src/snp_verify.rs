//! Is this SEV-SNP report authentic? The VCEK/VLEK chain to AMD's root, the report's signature,
//! and the TCB and nonce it was signed for.
//!
//! An SNP report is signed (ECDSA P-384, SHA-384, over bytes `0x0..0x2a0`) by a *versioned
//! endorsement key*: the chip's VCEK, derived from a secret fused into that one chip and the
//! firmware's TCB version, or a cloud provider's VLEK. AMD's Key Distribution Service (KDS)
//! serves the VEK's certificate and the chain above it: the ASK (for VCEKs) or ASVK (for VLEKs),
//! signed by the ARK, AMD's self-signed root for the chip generation, all RSA-PSS with SHA-384.
//! The specifications are AMD's *Versioned Chip Endorsement Key (VCEK) Certificate and KDS
//! Interface Specification* (#57230) and *Versioned Loaded Endorsement Key (VLEK) Certificate
//! Specification* (#58369); the report layout is [`crate::evidence::snp_report`].
//!
//! The signatures are checked by the `sev` crate (virtee, `crypto_nossl`: RustCrypto's `rsa`,
//! `p384` and `x509-cert`): the ARK's self-signature, ASK by ARK and VEK by ASK
//! (`Verifiable for (&Certificate, &Certificate)`), the report by the VEK (`Verifiable for
//! (&Certificate, &AttestationReport)`). What `sev` does not do, and this module adds:
//!
//! * **Pinning the root.** `sev` verifies whatever ARK it is given; here the ARK's public key
//!   must be one of AMD's, built in from `sev`'s own copies of the KDS `cert_chain` files
//!   ([`BUILTIN_ARKS`], fingerprints in `docs/attest-snp-tdx.md`), or one the caller names.
//! * **Validity periods**, at a time the caller gives ([`crate::time`]): recorded evidence is
//!   verified at a time inside its certificates' windows, live evidence now.
//! * **The TCB binding.** A VCEK is derived for one TCB version, and its certificate says which
//!   in AMD's extensions (`1.3.6.1.4.1.3704.1.3.x`: bootloader, TEE, SNP, microcode SPLs, and FMC
//!   on Turin); the report's REPORTED_TCB must equal them, or the report claims a TCB its key was
//!   not made for. A VCEK's `hwID` extension must equal the report's CHIP_ID. On Turin the hwID
//!   is 8 bytes (#57230, section 3.1, note 4) and the chip writes CHIP_ID as those 8 bytes and 56
//!   zeros, so the hwID is compared with the whole CHIP_ID, padded with zeros: a report whose
//!   bytes 8..64 are not zero was not written by the chip the 8-byte hwID names.
//! * **The nonce.** REPORT_DATA must equal what the verifier asked the guest to put there.
//!
//! AMD's VEK certificates carry serial number 0, which RFC 5280 forbids; `x509-cert` parses it
//! (RFC 5280 asks users to tolerate it) and so does this module.
//!
//! Each outcome is one [`Check`] line (`SNP ARK`, `SNP ASK`, `SNP VCEK`, `SNP REPORT
//! SIGNATURE`, `SNP CHIP_ID`, `SNP REPORTED_TCB`, `SNP MIN_TCB`, `SNP REPORT_DATA`); a failed
//! signature or an expired certificate is a mismatch, not an error. Only input that is not a
//! certificate at all is an [`SnpVerifyError`].

use std::fmt::Write as _;

use sev::certs::snp::Verifiable;
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate as X509;

use crate::check::{Check, Source, Status};
use crate::evidence::snp_report::{SigningKey, TcbVersion};
use crate::evidence::SnpReport;
use crate::time::{format_rfc3339, UnixTime};

/// AMD's root keys as KDS serves them (`https://kdsintf.amd.com/vcek/v1/{Milan,Genoa,Turin}/
/// cert_chain`, second certificate), taken from the `sev` crate's `builtin` copies; their
/// SHA-256 fingerprints are checked by a test against the ARKs in go-sev-guest's
/// `verify/trust/ask_ark_*.pem`.
pub const BUILTIN_ARKS: [(&str, &[u8]); 3] = [
    ("Milan", sev::certs::snp::builtin::milan::ARK),
    ("Genoa", sev::certs::snp::builtin::genoa::ARK),
    ("Turin", sev::certs::snp::builtin::turin::ARK),
];

/// OIDs of AMD's VEK certificate extensions (spec #57230, table "VCEK Certificate Extensions").
mod oid {
    use x509_cert::der::oid::ObjectIdentifier as O;
    pub const BL_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
    pub const TEE_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
    pub const SNP_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
    pub const UCODE_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
    pub const FMC_SPL: O = O::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
    pub const HW_ID: O = O::new_unwrap("1.3.6.1.4.1.3704.1.4");
    pub const COMMON_NAME: O = O::new_unwrap("2.5.4.3");
}

/// Input that cannot be verified at all (exit 2 in the CLI), as opposed to a failed check.
#[derive(Debug, thiserror::Error)]
pub enum SnpVerifyError {
    /// The VEK is not a DER or PEM certificate.
    #[error("the VCEK/VLEK is not an X.509 certificate (DER or PEM): {0}")]
    Vek(String),
    /// The chain is not a PEM bundle of two certificates.
    #[error("the certificate chain is not AMD's cert_chain (PEM: ASK or ASVK, then ARK): {0}")]
    Chain(String),
    /// The `--ark` file is not a certificate.
    #[error("the trusted ARK is not an X.509 certificate (DER or PEM): {0}")]
    Ark(String),
    /// More than 64 bytes of expected report data.
    #[error("the expected REPORT_DATA has {0} bytes; REPORT_DATA has 64")]
    ReportDataLen(usize),
}

/// A minimum TCB: each component given must be at most the report's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinTcb {
    /// FMC SPL (Turin).
    pub fmc: Option<u8>,
    /// Bootloader SPL.
    pub bootloader: Option<u8>,
    /// TEE (PSP OS) SPL.
    pub tee: Option<u8>,
    /// SNP firmware SPL.
    pub snp: Option<u8>,
    /// Microcode SPL.
    pub microcode: Option<u8>,
}

impl std::str::FromStr for MinTcb {
    type Err = String;

    /// `bootloader=2,tee=0,snp=5,microcode=68` (any subset; `fmc=` for Turin).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut m = MinTcb::default();
        for part in s.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!(
                    "{:?}: expected NAME=N, e.g. bootloader=2,tee=0,snp=5,microcode=68",
                    part.escape_debug().to_string()
                )
            })?;
            let n: u8 =
                v.trim().parse().map_err(|_| format!("{:?}: {v:?} is not 0-255", k.escape_debug().to_string()))?;
            let slot = match k.trim() {
                "fmc" => &mut m.fmc,
                "bootloader" => &mut m.bootloader,
                "tee" => &mut m.tee,
                "snp" => &mut m.snp,
                "microcode" => &mut m.microcode,
                other => {
                    return Err(format!(
                        "{:?} is not a TCB component (fmc, bootloader, tee, snp, microcode)",
                        other.escape_debug().to_string()
                    ))
                }
            };
            *slot = Some(n);
        }
        Ok(m)
    }
}

/// What to verify a report with.
#[derive(Debug, Clone, Default)]
pub struct SnpInputs<'a> {
    /// The VCEK or VLEK certificate, DER or PEM.
    pub vek: &'a [u8],
    /// AMD's `cert_chain`: PEM, the ASK (or ASVK), then the ARK.
    pub cert_chain: &'a [u8],
    /// A root to trust instead of AMD's built-in ARKs (DER or PEM).
    pub ark: Option<&'a [u8]>,
    /// When the certificates must be valid.
    pub at: UnixTime,
    /// What REPORT_DATA must hold (up to 64 bytes; shorter is padded with zeros).
    pub report_data: Option<&'a [u8]>,
    /// A minimum REPORTED_TCB.
    pub min_tcb: Option<MinTcb>,
}

/// The PEM certificates in `text`, in order. (Not `x509-cert`'s `load_pem_chain`, whose 0.2
/// release underflows on empty input: the `snp_certs` fuzz target found it.)
fn pem_certs(text: &[u8]) -> Result<Vec<X509>, String> {
    use x509_cert::der::DecodePem;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut rest = text;
    let mut out = Vec::new();
    while let Some(start) = find(rest, BEGIN) {
        let block = &rest[start..];
        let end = find(block, END).ok_or("a certificate's -----END CERTIFICATE----- line is missing")? + END.len();
        out.push(X509::from_pem(&block[..end]).map_err(|e| format!("certificate {}: {e}", out.len() + 1))?);
        rest = &block[end..];
    }
    if out.is_empty() {
        return Err("no -----BEGIN CERTIFICATE----- block".into());
    }
    Ok(out)
}

fn parse_cert(bytes: &[u8]) -> Result<X509, String> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let mut certs = pem_certs(trimmed)?;
        if certs.len() != 1 {
            return Err(format!("{} certificates where one was expected", certs.len()));
        }
        Ok(certs.remove(0))
    } else {
        X509::from_der(bytes).map_err(|e| e.to_string())
    }
}

fn common_name(cert: &X509) -> String {
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == oid::COMMON_NAME {
                let v = &atv.value;
                let s = String::from_utf8_lossy(v.value());
                return s.escape_debug().to_string();
            }
        }
    }
    "(no CN)".into()
}

fn fingerprint(cert: &X509) -> String {
    cert.to_der().map(|d| hex::encode(Sha256::digest(d))).unwrap_or_default()
}

fn spki(cert: &X509) -> Vec<u8> {
    cert.tbs_certificate.subject_public_key_info.to_der().unwrap_or_default()
}

/// `Err(reason)` unless `at` lies in the certificate's validity period.
fn validity(cert: &X509, at: UnixTime) -> Result<String, String> {
    let v = &cert.tbs_certificate.validity;
    let (nb, na) = (v.not_before.to_unix_duration().as_secs(), v.not_after.to_unix_duration().as_secs());
    let window = format!("valid {}..{}", format_rfc3339(nb), format_rfc3339(na));
    if at < nb {
        Err(format!("not yet valid at {} ({window})", format_rfc3339(at)))
    } else if at > na {
        Err(format!("expired at {} ({window})", format_rfc3339(at)))
    } else {
        Ok(window)
    }
}

/// Whether `signer`'s key made `signee`'s signature (RSA-PSS SHA-384), by `sev`.
fn signs(signer: &X509, signee: &X509) -> Result<(), String> {
    let (a, b) =
        (sev::certs::snp::Certificate::from(signer.clone()), sev::certs::snp::Certificate::from(signee.clone()));
    (&a, &b).verify().map_err(|e| e.to_string())
}

fn line(value: &str, problems: &[String], actual: String, ok_detail: String) -> Check {
    let detail = if problems.is_empty() { ok_detail } else { problems.join("; ") };
    Check::new(Source::SnpReport, value, Status::ok_if(problems.is_empty()), actual, Vec::new(), detail)
}

/// The TCB a VEK certificate was issued for, from its SPL extensions (`None` for one that is
/// absent or not an INTEGER 0–255).
fn cert_tcb(cert: &X509, turin: bool) -> Result<TcbVersion, String> {
    let ext = |o| -> Result<u8, String> {
        let e = cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|e| e.extn_id == o)
            .ok_or_else(|| format!("the certificate has no extension {o}"))?;
        u8::from_der(e.extn_value.as_bytes()).map_err(|_| format!("extension {o} is not an INTEGER 0-255"))
    };
    let (bl, tee, snp, ucode) = (ext(oid::BL_SPL)?, ext(oid::TEE_SPL)?, ext(oid::SNP_SPL)?, ext(oid::UCODE_SPL)?);
    let raw = if turin {
        let fmc = ext(oid::FMC_SPL)?;
        u64::from_le_bytes([fmc, bl, tee, snp, 0, 0, 0, ucode])
    } else {
        u64::from_le_bytes([bl, tee, 0, 0, 0, 0, snp, ucode])
    };
    Ok(TcbVersion::decode(raw, turin))
}

/// The VCEK's hwID extension: the chip ID, as raw bytes (as KDS writes it) or an OCTET STRING.
fn cert_hwid(cert: &X509) -> Option<Vec<u8>> {
    let e = cert.tbs_certificate.extensions.as_deref()?.iter().find(|e| e.extn_id == oid::HW_ID)?;
    let raw = e.extn_value.as_bytes();
    if raw.len() == 64 || raw.len() == 8 {
        return Some(raw.to_vec());
    }
    x509_cert::der::asn1::OctetString::from_der(raw).ok().map(|o| o.as_bytes().to_vec())
}

/// Verifies `report` (parsed from `bytes`) with `inputs`: one [`Check`] per link of the chain,
/// the signature, the TCB and chip binding, and the optional nonce and minimum TCB.
pub fn verify(bytes: &[u8], report: &SnpReport, inputs: &SnpInputs) -> Result<Vec<Check>, SnpVerifyError> {
    let vek = parse_cert(inputs.vek).map_err(SnpVerifyError::Vek)?;
    let chain = pem_certs(inputs.cert_chain).map_err(SnpVerifyError::Chain)?;
    let [mut ask, mut ark]: [X509; 2] =
        chain.try_into().map_err(|c: Vec<X509>| SnpVerifyError::Chain(format!("{} certificates, not 2", c.len())))?;
    // KDS writes the ASK first; a bundle written root first is taken as meant.
    let self_issued = |c: &X509| c.tbs_certificate.subject == c.tbs_certificate.issuer;
    if self_issued(&ask) && !self_issued(&ark) {
        std::mem::swap(&mut ask, &mut ark);
    }
    let trusted: Vec<(String, X509)> = match inputs.ark {
        Some(b) => vec![("the --ark root".into(), parse_cert(b).map_err(SnpVerifyError::Ark)?)],
        None => BUILTIN_ARKS
            .iter()
            .map(|(n, pem)| {
                let c = parse_cert(pem).expect("the built-in ARKs parse (a test checks)");
                (format!("AMD's built-in {n} ARK"), c)
            })
            .collect(),
    };
    if let Some(rd) = inputs.report_data {
        if rd.len() > 64 {
            return Err(SnpVerifyError::ReportDataLen(rd.len()));
        }
    }
    let at = inputs.at;
    let mut out = Vec::new();

    // ARK: self-signed, one of the trusted roots, valid.
    let mut problems = Vec::new();
    if let Err(e) = signs(&ark, &ark) {
        problems.push(format!("not self-signed: {e}"));
    }
    let pinned = trusted.iter().find(|(_, t)| spki(t) == spki(&ark)).map(|(n, _)| n.clone());
    if pinned.is_none() {
        problems.push(format!(
            "its key is none of the trusted roots ({})",
            trusted.iter().map(|(n, t)| format!("{n} {}", fingerprint(t))).collect::<Vec<_>>().join(", ")
        ));
    }
    let window = validity(&ark, at).unwrap_or_else(|e| {
        problems.push(e);
        String::new()
    });
    out.push(line(
        "SNP ARK",
        &problems,
        format!("{} sha256:{}", common_name(&ark), fingerprint(&ark)),
        format!("self-signed, the key of {}, {window}", pinned.unwrap_or_default()),
    ));

    // ASK (or ASVK) by the ARK.
    let mut problems = Vec::new();
    if let Err(e) = signs(&ark, &ask) {
        problems.push(format!("not signed by the ARK: {e}"));
    }
    let window = validity(&ask, at).unwrap_or_else(|e| {
        problems.push(e);
        String::new()
    });
    out.push(line(
        "SNP ASK",
        &problems,
        format!("{} sha256:{}", common_name(&ask), fingerprint(&ask)),
        format!("signed by the ARK, {window}"),
    ));

    // VCEK/VLEK by the ASK.
    let cn = common_name(&vek);
    let is_vlek = cn.contains("VLEK");
    let vek_name = if is_vlek { "SNP VLEK" } else { "SNP VCEK" };
    let mut problems = Vec::new();
    if let Err(e) = signs(&ask, &vek) {
        problems.push(format!("not signed by the ASK: {e}"));
    }
    let window = validity(&vek, at).unwrap_or_else(|e| {
        problems.push(e);
        String::new()
    });
    out.push(line(
        vek_name,
        &problems,
        format!("{cn} sha256:{}", fingerprint(&vek)),
        format!("signed by the ASK, {window}"),
    ));

    // The report by the VEK.
    let mut problems = Vec::new();
    if report.signature_algo != 1 {
        problems.push(format!("SIGNATURE_ALGO is {}, not 1 (ECDSA P-384 with SHA-384)", report.signature_algo));
    }
    let expected_key = if is_vlek { SigningKey::Vlek } else { SigningKey::Vcek };
    if report.signing_key != expected_key {
        problems.push(format!("SIGNING_KEY is {:?}, but the certificate is a {}", report.signing_key, &vek_name[4..]));
    }
    match <sev::firmware::guest::AttestationReport as sev::parser::ByteParser<()>>::from_bytes(bytes) {
        Ok(r) => {
            let cert = sev::certs::snp::Certificate::from(vek.clone());
            if let Err(e) = (&cert, &r).verify() {
                problems.push(e.to_string());
            }
            // The sev crate verifies the report as it re-encodes it, which drops reserved bits
            // (in the TCB fields): the signed bytes must be the given ones, or a forged value
            // there would be shown as signed.
            match <sev::firmware::guest::AttestationReport as sev::parser::ByteParser<()>>::to_bytes(&r) {
                Ok(again) if again.as_ref().get(..0x2a0) == bytes.get(..0x2a0) => {}
                Ok(again) => {
                    let at = again.as_ref().iter().zip(bytes).position(|(a, b)| a != b).unwrap_or(0);
                    problems.push(format!(
                        "byte 0x{at:x} is not what the signature covers (a reserved bit is set): the signed report \
                         has other bytes"
                    ));
                }
                Err(e) => problems.push(format!("the sev crate does not re-encode the report: {e}")),
            }
        }
        Err(e) => problems.push(format!("the sev crate does not read the report: {e}")),
    }
    out.push(line(
        "SNP REPORT SIGNATURE",
        &problems,
        if report.signature_algo == 1 {
            "ecdsa-p384-sha384".into()
        } else {
            format!("algorithm {}", report.signature_algo)
        },
        format!("over bytes 0x0..0x2a0, by the {}", &vek_name[4..]),
    ));

    // The chip (VCEK only: a VLEK is not chip-specific).
    if !is_vlek {
        let id = &report.chip_id;
        let mut problems = Vec::new();
        match cert_hwid(&vek) {
            Some(h) if h.len() <= id.len() && id.starts_with(&h) => {
                if let Some(i) = id[h.len()..].iter().position(|b| *b != 0) {
                    problems.push(format!(
                        "CHIP_ID byte {} is not zero: the VCEK's {}-byte hwID leaves the rest zero",
                        h.len() + i,
                        h.len()
                    ));
                }
            }
            Some(h) => problems.push(format!("the VCEK is for chip {}", hex::encode(&h))),
            None => problems.push("the VCEK has no hwID extension".into()),
        }
        // A Turin CHIP_ID is shown as its 8 bytes unless the rest is not zero.
        let chip = if report.turin && id[8..].iter().all(|b| *b == 0) { &id[..8] } else { &id[..] };
        if report.chip_id.iter().all(|b| *b == 0) {
            problems.push("CHIP_ID is masked (zero)".into());
        }
        out.push(line("SNP CHIP_ID", &problems, hex::encode(chip), "equals the VCEK's hwID".into()));
    }

    // REPORTED_TCB = the VEK's TCB.
    let mut problems = Vec::new();
    let mut expected = Vec::new();
    match cert_tcb(&vek, report.turin) {
        Ok(t) if t == report.reported_tcb => {}
        Ok(t) => {
            problems.push(format!("the {} was issued for TCB {t}", &vek_name[4..]));
            expected.push(crate::check::Reference {
                value: t.to_string(),
                what: format!("the {}'s extensions", &vek_name[4..]),
            });
        }
        Err(e) => problems.push(e),
    }
    let mut c = line(
        "SNP REPORTED_TCB",
        &problems,
        report.reported_tcb.to_string(),
        format!("equals the TCB the {} was issued for", &vek_name[4..]),
    );
    c.expected = expected;
    out.push(c);

    if let Some(min) = inputs.min_tcb {
        let t = report.reported_tcb;
        let mut problems = Vec::new();
        let mut want = String::new();
        for (name, have, need) in [
            ("fmc", t.fmc, min.fmc),
            ("bootloader", Some(t.bootloader), min.bootloader),
            ("tee", Some(t.tee), min.tee),
            ("snp", Some(t.snp), min.snp),
            ("microcode", Some(t.microcode), min.microcode),
        ] {
            let Some(need) = need else { continue };
            let _ = write!(want, "{}{name} >= {need}", if want.is_empty() { "" } else { ", " });
            match have {
                Some(h) if h >= need => {}
                Some(h) => problems.push(format!("{name} {h} < {need}")),
                None => problems.push(format!("{name}: not in this chip's TCB")),
            }
        }
        out.push(line("SNP MIN_TCB", &problems, t.to_string(), want));
    }

    if let Some(rd) = inputs.report_data {
        let mut want = [0u8; 64];
        want[..rd.len()].copy_from_slice(rd);
        let mut c = line(
            "SNP REPORT_DATA",
            &if want == report.report_data { vec![] } else { vec!["differs from the expected nonce".into()] },
            hex::encode(report.report_data),
            "equals the expected nonce".into(),
        );
        if c.status == Status::Mismatch {
            c.expected.push(crate::check::Reference { value: hex::encode(want), what: "--report-data".into() });
        }
        out.push(c);
    }
    Ok(out)
}
