//! TPM 2.0 quotes: the PCRs a TPM signed, for a verifier that holds its attestation key.
//!
//! PCR values in a file prove nothing: anyone can write one. `TPM2_Quote` makes the TPM sign a
//! digest of the PCRs it holds, together with a nonce the verifier chose, with an attestation key
//! (AK) that never leaves the TPM. Given the AK's public part, a verifier checks, in this order
//! ([`verify`], one [`Check`] each, [`Source::TpmQuote`]):
//!
//! 1. `TPM QUOTE SIGNATURE`: the `TPMT_SIGNATURE` is the AK's over the `TPMS_ATTEST` bytes
//!    (RSASSA-PKCS1-v1_5, RSASSA-PSS, ECDSA on P-256 or P-384; the hash the signature names,
//!    SHA-256 or SHA-384). This proves the TPM holding the AK produced these bytes.
//! 2. `TPM QUOTE TYPE`: `magic` is `TPM_GENERATED_VALUE` and `type` is `TPM_ST_ATTEST_QUOTE`. A
//!    TPM signs data from outside with a restricted key (an AK) only if the data does not start
//!    with `TPM_GENERATED_VALUE`, so a structure that does was made by the TPM itself; the type
//!    says it is a quote of PCRs (not, say, a certification of another key).
//! 3. `TPM QUOTE NONCE`: `extraData` equals the verifier's nonce: the quote was made after the
//!    verifier chose it, not replayed from an earlier boot.
//! 4. `TPM QUOTE PCR SELECTION`: the quoted PCRs include every PCR the bundle enforces (without
//!    a bundle the selection is only reported). A quote that leaves an enforced PCR out says
//!    nothing about it.
//! 5. `TPM QUOTE PCR DIGEST`: `pcrDigest` equals the digest of the PCR values the verifier
//!    compares — the selected PCRs, bank after bank in the selection's order, each bank's PCRs in
//!    ascending order, concatenated and hashed with the signature's hash algorithm (TPM 2.0
//!    Part 3 §18.4: the quote's digest uses the signing scheme's hash). The values come from a
//!    file (`nodeimg pcrs read --json`) or are replayed from the event log; either way they now
//!    carry the TPM's signature.
//!
//! The quote's other fields (the AK's qualified name, the TPM's clock and reset counters, its
//! firmware version) are reported, not judged. **Assumed:** that the AK belongs to a genuine TPM
//! of the node. Establishing that (an EK certificate, `TPM2_MakeCredential` /
//! `TPM2_ActivateCredential`, a registrar) is the caller's business: the AK is an input here.
//!
//! Formats, as tpm2-tools writes them: the quote as `tpm2_quote -m` writes it (a marshalled
//! `TPMS_ATTEST`; a `TPM2B_ATTEST` with its size prefix is accepted too), the signature as
//! `tpm2_quote -s` writes it (a marshalled `TPMT_SIGNATURE`), the AK as a PEM
//! SubjectPublicKeyInfo (`tpm2_readpublic -f pem`) or a marshalled `TPM2B_PUBLIC`
//! (`tpm2_createak -u`). Layouts: TCG TPM 2.0 Library Part 2 (Structures) §10.12 (`TPMS_ATTEST`,
//! `TPMS_QUOTE_INFO`, `TPMS_CLOCK_INFO`), §11.3 (`TPMT_SIGNATURE`), §12.2 (`TPMT_PUBLIC`,
//! `TPMS_RSA_PARMS`, `TPMS_ECC_PARMS`). Everything is big-endian and untrusted: every length is
//! checked before it is read, counts are bounded by the bytes left, trailing bytes are refused.

use std::collections::{BTreeMap, BTreeSet};

use eventlog::{AlgId, HashAlg};
use serde::Serialize;
use sha2::{Digest, Sha256, Sha384};

use crate::check::{reference, Authentication, Check, PcrValues, Reference, Source, Status};
use crate::hex::Hex;
use crate::reference::{PcrStatus, ReferenceValues};
use crate::tpm::PcrSelection;
use crate::wire::{Context, Cursor, Fault, SelectionFields, MAX_SELECT_BYTES};

/// `TPM_GENERATED_VALUE`: the first four bytes of every structure a TPM signs itself.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`: the type of a `TPMS_ATTEST` that quotes PCRs.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
/// The largest structure read here (a TPM's `MAX_ATTEST` / key buffers are far smaller).
const MAX_LEN: usize = 64 << 10;
/// `TPM_ALG_NULL`.
const ALG_NULL: u16 = 0x0010;
const ALG_RSA: u16 = 0x0001;
const ALG_ECC: u16 = 0x0023;
const ALG_RSASSA: u16 = 0x0014;
const ALG_RSAPSS: u16 = 0x0016;
const ALG_ECDSA: u16 = 0x0018;
const ALG_ECDAA: u16 = 0x001a;
const ECC_NIST_P256: u16 = 0x0003;
const ECC_NIST_P384: u16 = 0x0004;

/// What is wrong with a quote, signature or key, before anything can be verified.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuoteError {
    /// The bytes end before a field.
    #[error("the {structure} is truncated: {field} at offset {offset} needs {needed} bytes, {available} remain")]
    Truncated { structure: &'static str, field: &'static str, offset: usize, needed: usize, available: usize },
    /// Bytes after the last field.
    #[error("the {structure} has {extra} bytes after its last field (offset {offset})")]
    Trailing { structure: &'static str, offset: usize, extra: usize },
    /// A field holds a value the structure does not allow.
    #[error("the {structure} is malformed: {detail}")]
    Malformed { structure: &'static str, detail: String },
    /// A well-formed structure this verifier does not handle.
    #[error("the {structure} uses {what}, which is not supported (RSA with RSASSA or RSAPSS, ECDSA on NIST P-256 or P-384; SHA-256 or SHA-384)")]
    Unsupported { structure: &'static str, what: String },
    /// Too large to be what it claims.
    #[error("the {structure} is {len} bytes: more than any TPM makes ({MAX_LEN})")]
    TooLarge { structure: &'static str, len: usize },
}

/// `TPMS_CLOCK_INFO`: the TPM's clock when it signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since its clock was last set.
    pub clock: u64,
    /// TPM resets (reboots) since the TPM was cleared.
    pub reset_count: u32,
    /// TPM restarts (suspend/resume) since the last reset.
    pub restart_count: u32,
    /// Whether the clock has not been rolled back since it was last reported.
    pub safe: bool,
}

/// A parsed `TPMS_ATTEST`. The `quote` part is present when `type` is `TPM_ST_ATTEST_QUOTE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attest {
    /// `magic`: `TPM_GENERATED_VALUE` if the TPM made it.
    pub magic: u32,
    /// `type`: `TPM_ST_ATTEST_QUOTE` (0x8018) for a quote.
    #[serde(rename = "type")]
    pub kind: u16,
    /// `qualifiedSigner`: the qualified name of the signing key.
    pub qualified_signer: Hex,
    /// `extraData`: the verifier's nonce.
    pub extra_data: Hex,
    /// `clockInfo`.
    pub clock_info: ClockInfo,
    /// `firmwareVersion`: vendor-specific.
    pub firmware_version: u64,
    /// `attested.quote`, for a quote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<QuoteInfo>,
}

/// `TPMS_QUOTE_INFO`: which PCRs were quoted, and their digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuoteInfo {
    /// `pcrSelect`, bank by bank in the TPM's order.
    pub pcr_select: Vec<Selection>,
    /// `pcrDigest`.
    pub pcr_digest: Hex,
}

/// One bank of a quote's selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// The bank's algorithm (`TPM_ALG_ID`).
    pub alg: AlgId,
    /// The selected PCRs, ascending.
    pub pcrs: Vec<u32>,
}

impl Selection {
    fn from_tpm(s: &PcrSelection) -> Self {
        Selection { alg: s.alg, pcrs: s.indices().collect() }
    }

    /// `sha256:0,4,7`, or the algorithm's number for a bank this crate does not know.
    pub fn describe(&self) -> String {
        let pcrs: Vec<String> = self.pcrs.iter().map(u32::to_string).collect();
        format!("{}:{}", self.alg, pcrs.join(","))
    }
}

/// A signature scheme and its hash, as a `TPMT_SIGNATURE` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// RSASSA-PKCS1-v1_5.
    Rsassa,
    /// RSASSA-PSS.
    Rsapss,
    /// ECDSA.
    Ecdsa,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Self::Rsassa => "RSASSA-PKCS1-v1_5",
            Self::Rsapss => "RSASSA-PSS",
            Self::Ecdsa => "ECDSA",
        }
    }
}

/// A parsed `TPMT_SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The scheme.
    pub scheme: Scheme,
    /// The hash the message was digested with.
    pub hash: HashAlg,
    /// RSA: the signature. ECDSA: `r`.
    pub sig: Vec<u8>,
    /// ECDSA: `s` (empty for RSA).
    pub s: Vec<u8>,
}

/// An attestation key's public part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AkPublic {
    /// An RSA key.
    Rsa(rsa::RsaPublicKey),
    /// An ECC key on NIST P-256.
    P256(p256::PublicKey),
    /// An ECC key on NIST P-384.
    P384(p384::PublicKey),
}

impl AkPublic {
    /// `RSA 2048`, `ECC NIST P-256`.
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa(k) => format!("RSA {}", rsa::traits::PublicKeyParts::n(k).bits()),
            Self::P256(_) => "ECC NIST P-256".into(),
            Self::P384(_) => "ECC NIST P-384".into(),
        }
    }
}

/// Reading the structure named: faults become [`QuoteError`]s naming it.
#[derive(Debug, Clone, Copy)]
struct Structure(&'static str);

impl Context for Structure {
    type Error = QuoteError;

    fn error(self, fault: Fault) -> QuoteError {
        let structure = self.0;
        match fault {
            Fault::Truncated { field, offset, needed, available } => {
                QuoteError::Truncated { structure, field, offset, needed, available }
            }
            Fault::Count { field, count, offset } => QuoteError::Malformed {
                structure,
                detail: format!("{field} {count} at offset {offset} exceeds the structure"),
            },
            Fault::SelectTooLarge { size } => QuoteError::Malformed {
                structure,
                detail: format!("a PCR selection of {size} bytes (at most {MAX_SELECT_BYTES}: 64 PCRs)"),
            },
            Fault::Malformed(detail) => QuoteError::Malformed { structure, detail },
            Fault::Trailing { offset, extra } => QuoteError::Trailing { structure, offset, extra },
        }
    }
}

type Reader<'a> = Cursor<'a, Structure>;

/// A cursor over `data`, read as `structure`; refuses more bytes than any TPM makes.
fn reader<'a>(structure: &'static str, data: &'a [u8]) -> Result<Reader<'a>, QuoteError> {
    if data.len() > MAX_LEN {
        return Err(QuoteError::TooLarge { structure, len: data.len() });
    }
    Ok(Cursor::new(Structure(structure), data))
}

/// A quote's `TPML_PCR_SELECTION`, as `TPMS_QUOTE_INFO` names its fields.
const PCR_SELECT: SelectionFields = SelectionFields {
    count: "pcrSelect.count",
    hash: "pcrSelections.hash",
    size_of_select: "pcrSelections.sizeofSelect",
    pcr_select: "pcrSelections.pcrSelect",
};

/// Parses a `TPMS_ATTEST` (as `tpm2_quote -m` writes it), or a `TPM2B_ATTEST` that wraps one.
/// Returns the structure and the bytes the TPM signed (without a `TPM2B` size prefix).
pub fn parse_attest(bytes: &[u8]) -> Result<(Attest, &[u8]), QuoteError> {
    const S: &str = "TPMS_ATTEST";
    let body = match bytes {
        [a, b, rest @ ..]
            if usize::from(u16::from_be_bytes([*a, *b])) == rest.len()
                && rest.get(..4) == Some(&TPM_GENERATED_VALUE.to_be_bytes()[..]) =>
        {
            rest
        }
        _ => bytes,
    };
    let mut r = reader(S, body)?;
    let magic = r.u32("magic")?;
    let kind = r.u16("type")?;
    let qualified_signer = Hex(r.tpm2b("qualifiedSigner")?.to_vec());
    let extra_data = Hex(r.tpm2b("extraData")?.to_vec());
    let clock_info = ClockInfo {
        clock: r.u64("clockInfo.clock")?,
        reset_count: r.u32("clockInfo.resetCount")?,
        restart_count: r.u32("clockInfo.restartCount")?,
        safe: match r.u8("clockInfo.safe")? {
            0 => false,
            1 => true,
            v => return Err(r.malformed(format!("clockInfo.safe is {v}, a TPMI_YES_NO is 0 or 1"))),
        },
    };
    let firmware_version = r.u64("firmwareVersion")?;
    let quote = if kind == TPM_ST_ATTEST_QUOTE {
        let pcr_select = r.pcr_selections(&PCR_SELECT)?.iter().map(Selection::from_tpm).collect();
        let pcr_digest = Hex(r.tpm2b("pcrDigest")?.to_vec());
        r.finish()?;
        Some(QuoteInfo { pcr_select, pcr_digest })
    } else {
        // Another kind of attestation (or not a TPM's at all): its body is not read, and the
        // type check says so.
        None
    };
    Ok((Attest { magic, kind, qualified_signer, extra_data, clock_info, firmware_version, quote }, body))
}

fn hash_alg(structure: &'static str, id: u16) -> Result<HashAlg, QuoteError> {
    match HashAlg::from_id(AlgId(id)) {
        Some(h @ (HashAlg::Sha256 | HashAlg::Sha384)) => Ok(h),
        _ => Err(QuoteError::Unsupported { structure, what: format!("hash algorithm {}", AlgId(id)) }),
    }
}

/// Parses a `TPMT_SIGNATURE` (as `tpm2_quote -s` writes it).
pub fn parse_signature(bytes: &[u8]) -> Result<Signature, QuoteError> {
    const S: &str = "TPMT_SIGNATURE";
    let mut r = reader(S, bytes)?;
    let alg = r.u16("sigAlg")?;
    let scheme = match alg {
        ALG_RSASSA => Scheme::Rsassa,
        ALG_RSAPSS => Scheme::Rsapss,
        ALG_ECDSA => Scheme::Ecdsa,
        other => {
            return Err(QuoteError::Unsupported { structure: S, what: format!("signature scheme {}", AlgId(other)) })
        }
    };
    let hash = hash_alg(S, r.u16("hash")?)?;
    let (sig, s) = match scheme {
        Scheme::Rsassa | Scheme::Rsapss => (r.tpm2b("signature.sig")?.to_vec(), Vec::new()),
        Scheme::Ecdsa => (r.tpm2b("signature.signatureR")?.to_vec(), r.tpm2b("signature.signatureS")?.to_vec()),
    };
    r.finish()?;
    Ok(Signature { scheme, hash, sig, s })
}

/// Parses an attestation key: a PEM public key (SubjectPublicKeyInfo, `-----BEGIN PUBLIC
/// KEY-----`) or a marshalled `TPM2B_PUBLIC` (`tpm2_createak -u`, `tpm2_readpublic -f tss`).
pub fn parse_ak(bytes: &[u8]) -> Result<AkPublic, QuoteError> {
    if bytes.starts_with(b"-----BEGIN") {
        return parse_ak_pem(bytes);
    }
    parse_tpm2b_public(bytes)
}

fn parse_ak_pem(bytes: &[u8]) -> Result<AkPublic, QuoteError> {
    use p256::pkcs8::DecodePublicKey;
    const S: &str = "PEM public key";
    let text = std::str::from_utf8(bytes)
        .map_err(|_| QuoteError::Malformed { structure: S, detail: "not UTF-8 text".into() })?;
    if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(text) {
        return Ok(AkPublic::Rsa(k));
    }
    if let Ok(k) = p256::PublicKey::from_public_key_pem(text) {
        return Ok(AkPublic::P256(k));
    }
    if let Ok(k) = p384::PublicKey::from_public_key_pem(text) {
        return Ok(AkPublic::P384(k));
    }
    Err(QuoteError::Malformed {
        structure: S,
        detail: "not a SubjectPublicKeyInfo of an RSA, P-256 or P-384 key (-----BEGIN PUBLIC KEY-----)".into(),
    })
}

/// The `TPMA_OBJECT` bits every attestation key has, with their names.
const AK_ATTRIBUTES: [(u32, &str); 4] =
    [(1 << 1, "fixedTPM"), (1 << 4, "fixedParent"), (1 << 16, "restricted"), (1 << 18, "sign")];
/// `TPMA_OBJECT.decrypt`: a key that decrypts is no attestation key.
const TPMA_DECRYPT: u32 = 1 << 17;

/// Parses a `TPM2B_PUBLIC` of an RSA or ECC attestation key (its attributes checked).
pub fn parse_tpm2b_public(bytes: &[u8]) -> Result<AkPublic, QuoteError> {
    const S: &str = "TPM2B_PUBLIC";
    let mut outer = reader(S, bytes)?;
    let public = outer.tpm2b("size")?;
    outer.finish()?;
    let mut r = reader(S, public)?;
    let kind = r.u16("publicArea.type")?;
    let _name_alg = r.u16("publicArea.nameAlg")?;
    let attributes = r.u32("publicArea.objectAttributes")?;
    // Only a restricted signing key the TPM made and keeps (fixedTPM, fixedParent) signs
    // nothing but TPM-generated structures: an unrestricted key would TPM2_Sign a forged quote.
    let missing: Vec<&str> = AK_ATTRIBUTES.iter().filter(|(bit, _)| attributes & bit == 0).map(|(_, n)| *n).collect();
    if !missing.is_empty() || attributes & TPMA_DECRYPT != 0 {
        let why = match missing.is_empty() {
            true => "decrypt is set".to_owned(),
            false => format!("{} not set", missing.join(", ")),
        };
        return Err(r.malformed(format!(
            "objectAttributes 0x{attributes:08x}: not an attestation key ({why}; an AK is restricted, sign, fixedTPM and \
             fixedParent, without decrypt)"
        )));
    }
    let _auth_policy = r.tpm2b("publicArea.authPolicy")?;
    // TPMT_SYM_DEF_OBJECT: an AK (a signing key) has none, but the structure allows one.
    if r.u16("parameters.symmetric.algorithm")? != ALG_NULL {
        r.u16("parameters.symmetric.keyBits")?;
        r.u16("parameters.symmetric.mode")?;
    }
    let scheme = r.u16("parameters.scheme.scheme")?;
    if scheme != ALG_NULL {
        r.u16("parameters.scheme.hashAlg")?;
        if scheme == ALG_ECDAA {
            r.u16("parameters.scheme.count")?;
        }
    }
    let key = match kind {
        ALG_RSA => {
            let bits = r.u16("parameters.keyBits")?;
            let exponent = match r.u32("parameters.exponent")? {
                0 => 65537,
                e => e,
            };
            let n = r.tpm2b("unique.rsa")?;
            if n.len() * 8 != usize::from(bits) {
                return Err(r.malformed(format!("a {bits}-bit RSA key with a {}-byte modulus", n.len())));
            }
            let key = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(n), rsa::BigUint::from(exponent))
                .map_err(|e| r.malformed(format!("the RSA key: {e}")))?;
            AkPublic::Rsa(key)
        }
        ALG_ECC => {
            let curve = r.u16("parameters.curveID")?;
            if r.u16("parameters.kdf.scheme")? != ALG_NULL {
                r.u16("parameters.kdf.hashAlg")?;
            }
            let x = r.tpm2b("unique.ecc.x")?;
            let y = r.tpm2b("unique.ecc.y")?;
            match curve {
                ECC_NIST_P256 => AkPublic::P256(
                    p256::PublicKey::from_sec1_bytes(&sec1_point(&r, x, y, 32)?)
                        .map_err(|_| r.malformed("the ECC point is not on P-256".into()))?,
                ),
                ECC_NIST_P384 => AkPublic::P384(
                    p384::PublicKey::from_sec1_bytes(&sec1_point(&r, x, y, 48)?)
                        .map_err(|_| r.malformed("the ECC point is not on P-384".into()))?,
                ),
                other => {
                    return Err(QuoteError::Unsupported { structure: S, what: format!("ECC curve 0x{other:04x}") })
                }
            }
        }
        other => return Err(QuoteError::Unsupported { structure: S, what: format!("key type {}", AlgId(other)) }),
    };
    r.finish()?;
    Ok(key)
}

/// The SEC1 uncompressed encoding of a point from its TPM coordinates (which may lack leading
/// zero bytes) on a curve of `size`-byte coordinates.
fn sec1_point(r: &Reader, x: &[u8], y: &[u8], size: usize) -> Result<Vec<u8>, QuoteError> {
    let (Some(px), Some(py)) = (left_pad(x, size), left_pad(y, size)) else {
        return Err(r.malformed(format!(
            "ECC coordinates of {} and {} bytes for a {size}-byte curve",
            x.len(),
            y.len()
        )));
    };
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&px);
    sec1.extend_from_slice(&py);
    Ok(sec1)
}

/// `bytes` left-padded with zeros to `size`, if it fits.
fn left_pad(bytes: &[u8], size: usize) -> Option<Vec<u8>> {
    let bytes = &bytes[bytes.iter().take_while(|b| **b == 0).count().min(bytes.len())..];
    (bytes.len() <= size).then(|| {
        let mut out = vec![0; size - bytes.len()];
        out.extend_from_slice(bytes);
        out
    })
}

fn digest(alg: HashAlg, parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        HashAlg::Sha384 => {
            let mut h = Sha384::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
        _ => {
            let mut h = Sha256::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
    }
}

/// Whether `sig` is `ak`'s signature over `message`; `Err` says why not (another kind of key,
/// a signature that does not verify).
pub fn verify_signature(ak: &AkPublic, sig: &Signature, message: &[u8]) -> Result<(), String> {
    let hashed = digest(sig.hash, &[message]);
    match (ak, sig.scheme) {
        (AkPublic::Rsa(key), Scheme::Rsassa) => {
            let scheme = match sig.hash {
                HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
                _ => rsa::Pkcs1v15Sign::new::<Sha256>(),
            };
            key.verify(scheme, &hashed, &sig.sig).map_err(|_| "the RSASSA signature does not verify".to_owned())
        }
        (AkPublic::Rsa(key), Scheme::Rsapss) => {
            // TPMs use a salt as long as the digest (TPM 2.0 Part 1 §B.7); older ones the longest
            // the key allows. Either is a valid PSS signature.
            let bits = rsa::traits::PublicKeyParts::n(key).bits();
            let em_len = (bits - 1).div_ceil(8);
            let h = hashed.len();
            let mut salts = vec![h];
            if let Some(max) = em_len.checked_sub(h + 2).filter(|m| *m != h) {
                salts.push(max);
            }
            let ok = salts.into_iter().any(|salt| {
                let scheme = match sig.hash {
                    HashAlg::Sha384 => rsa::Pss::new_with_salt::<Sha384>(salt),
                    _ => rsa::Pss::new_with_salt::<Sha256>(salt),
                };
                key.verify(scheme, &hashed, &sig.sig).is_ok()
            });
            if ok {
                Ok(())
            } else {
                Err("the RSASSA-PSS signature does not verify".into())
            }
        }
        (AkPublic::P256(key), Scheme::Ecdsa) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let (r, s) = ecdsa_scalars(sig, 32)?;
            let r = p256::FieldBytes::clone_from_slice(&r);
            let s = p256::FieldBytes::clone_from_slice(&s);
            let sig = p256::ecdsa::Signature::from_scalars(r, s).map_err(|_| "r or s is out of range".to_owned())?;
            p256::ecdsa::VerifyingKey::from(key)
                .verify_prehash(&hashed, &sig)
                .map_err(|_| "the ECDSA signature does not verify".into())
        }
        (AkPublic::P384(key), Scheme::Ecdsa) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            let (r, s) = ecdsa_scalars(sig, 48)?;
            let r = p384::FieldBytes::clone_from_slice(&r);
            let s = p384::FieldBytes::clone_from_slice(&s);
            let sig = p384::ecdsa::Signature::from_scalars(r, s).map_err(|_| "r or s is out of range".to_owned())?;
            p384::ecdsa::VerifyingKey::from(key)
                .verify_prehash(&hashed, &sig)
                .map_err(|_| "the ECDSA signature does not verify".into())
        }
        (ak, scheme) => Err(format!("an {} signature cannot be made by an {} key", scheme.name(), ak.describe())),
    }
}

/// `r` and `s`, left-padded to the curve's `size`.
fn ecdsa_scalars(sig: &Signature, size: usize) -> Result<(Vec<u8>, Vec<u8>), String> {
    match (left_pad(&sig.sig, size), left_pad(&sig.s, size)) {
        (Some(r), Some(s)) => Ok((r, s)),
        _ => Err(format!("r and s of {} and {} bytes for a {size}-byte curve", sig.sig.len(), sig.s.len())),
    }
}

/// What [`verify`] found: the checks, the quote, and the PCR values it vouches for.
#[derive(Debug, Clone)]
pub struct QuoteVerification {
    /// The quote's checks ([`Source::TpmQuote`]), to hand to [`crate::check()`] in
    /// [`crate::Evidence::authentication`].
    pub authentication: Authentication,
    /// The parsed quote.
    pub attest: Attest,
    /// When every check holds: the PCR values the quote covers (only its selection), to compare
    /// as [`Source::TpmQuote`] values. `None` when a check failed.
    pub quoted: Option<PcrValues>,
}

/// The PCRs `platform` enforces, by bank: its enforced vTPM PCRs, and PCR 11 where it has boot
/// phase values.
fn enforced(platform: &ReferenceValues) -> BTreeMap<HashAlg, BTreeSet<u32>> {
    let mut out: BTreeMap<HashAlg, BTreeSet<u32>> = BTreeMap::new();
    for (bank, pcrs) in &platform.vtpm {
        for (index, pcr) in pcrs {
            if pcr.status == PcrStatus::Enforced {
                out.entry(*bank).or_default().insert(u32::from(*index));
            }
        }
    }
    for (bank, phases) in &platform.pcr11 {
        if !phases.is_empty() {
            out.entry(*bank).or_default().insert(11);
        }
    }
    out
}

fn check(value: &str, status: Status, actual: String, expected: Vec<Reference>, detail: String) -> Check {
    Check::new(Source::TpmQuote, value, status, actual, expected, detail)
}

/// Verifies a quote (`attest_bytes` as [`parse_attest`] reads them) made with `ak`: its
/// signature, type, nonce, selection (against `platform`'s enforced PCRs, when given) and PCR
/// digest (over `pcrs`, the values the verifier will compare). Malformed input is an error;
/// everything else is a check (see the module documentation).
pub fn verify(
    attest_bytes: &[u8],
    signature: &Signature,
    ak: &AkPublic,
    nonce: &[u8],
    pcrs: &PcrValues,
    platform: Option<&ReferenceValues>,
) -> Result<QuoteVerification, QuoteError> {
    let (attest, signed) = parse_attest(attest_bytes)?;
    let mut checks = Vec::new();
    let signed_by =
        format!("{} with {} by the attestation key ({})", signature.scheme.name(), signature.hash, ak.describe());
    checks.push(match verify_signature(ak, signature, signed) {
        Ok(()) => check(
            "TPM QUOTE SIGNATURE",
            Status::Ok,
            format!("{} {}", signature.scheme.name(), signature.hash),
            Vec::new(),
            format!("{signed_by}: the TPM holding the key signed these bytes"),
        ),
        Err(why) => check(
            "TPM QUOTE SIGNATURE",
            Status::Mismatch,
            format!("{} {}", signature.scheme.name(), signature.hash),
            Vec::new(),
            format!("{why}: not signed by this attestation key ({}), or altered", ak.describe()),
        ),
    });

    let is_quote = attest.magic == TPM_GENERATED_VALUE && attest.kind == TPM_ST_ATTEST_QUOTE;
    checks.push(check(
        "TPM QUOTE TYPE",
        Status::ok_if(is_quote),
        format!("magic 0x{:08x}, type 0x{:04x}", attest.magic, attest.kind),
        vec![reference(
            format!("magic 0x{TPM_GENERATED_VALUE:08x}, type 0x{TPM_ST_ATTEST_QUOTE:04x}"),
            "TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE",
        )],
        if is_quote {
            "made by the TPM (TPM_GENERATED_VALUE), a quote of PCRs (TPM_ST_ATTEST_QUOTE)".into()
        } else if attest.magic != TPM_GENERATED_VALUE {
            "not TPM_GENERATED_VALUE: not a structure the TPM made".into()
        } else {
            "not TPM_ST_ATTEST_QUOTE: the TPM attested something other than PCRs".into()
        },
    ));

    let fresh = attest.extra_data.as_bytes() == nonce;
    checks.push(check(
        "TPM QUOTE NONCE",
        Status::ok_if(fresh),
        attest.extra_data.to_string(),
        vec![reference(hex::encode(nonce), "the verifier's nonce")],
        if fresh {
            "extraData is the verifier's nonce: the quote was made for this request".into()
        } else {
            "extraData is not the verifier's nonce: a quote made for another request (a replay?)".into()
        },
    ));

    let mut quoted = None;
    match &attest.quote {
        None => {
            checks.push(check(
                "TPM QUOTE PCR SELECTION",
                Status::Mismatch,
                String::new(),
                Vec::new(),
                "not a quote: it selects no PCRs".into(),
            ));
        }
        Some(q) => {
            let selection: Vec<String> =
                q.pcr_select.iter().filter(|s| !s.pcrs.is_empty()).map(Selection::describe).collect();
            let actual = selection.join(" ");
            checks.push(match platform.map(enforced) {
                None => check(
                    "TPM QUOTE PCR SELECTION",
                    Status::ObservedOnly,
                    actual,
                    Vec::new(),
                    "the PCRs the quote covers (no bundle: nothing is required)".into(),
                ),
                Some(required) if required.is_empty() => check(
                    "TPM QUOTE PCR SELECTION",
                    Status::ObservedOnly,
                    actual,
                    Vec::new(),
                    "the PCRs the quote covers (the bundle enforces no PCR)".into(),
                ),
                Some(required) => selection_check(q, &required, actual),
            });
            let (digest_check, values) = digest_check(q, signature.hash, pcrs);
            checks.push(digest_check);
            quoted = Some(values);
        }
    }

    checks.extend([
        check(
            "TPM QUOTE SIGNER",
            Status::ObservedOnly,
            attest.qualified_signer.to_string(),
            Vec::new(),
            "the qualified name of the key that signed (qualifiedSigner)".into(),
        ),
        check(
            "TPM QUOTE CLOCK",
            Status::ObservedOnly,
            attest.clock_info.clock.to_string(),
            Vec::new(),
            format!(
                "resets {}, restarts {}, {}",
                attest.clock_info.reset_count,
                attest.clock_info.restart_count,
                if attest.clock_info.safe { "safe" } else { "not safe (the clock may have been rolled back)" }
            ),
        ),
        check(
            "TPM QUOTE FIRMWARE",
            Status::ObservedOnly,
            format!("0x{:016x}", attest.firmware_version),
            Vec::new(),
            "the TPM's firmware version (vendor-specific)".into(),
        ),
    ]);
    let authentication = Authentication { covers: Source::TpmQuote, checks };
    let quoted = quoted.filter(|_| authentication.holds());
    Ok(QuoteVerification { authentication, attest, quoted })
}

/// The selection must cover every PCR the bundle enforces, in each enforced bank it quotes, and
/// quote at least one such bank.
fn selection_check(q: &QuoteInfo, required: &BTreeMap<HashAlg, BTreeSet<u32>>, actual: String) -> Check {
    let selected = |bank: HashAlg| -> Option<BTreeSet<u32>> {
        let sets: Vec<&Selection> = q.pcr_select.iter().filter(|s| s.alg == bank.id() && !s.pcrs.is_empty()).collect();
        (!sets.is_empty()).then(|| sets.iter().flat_map(|s| s.pcrs.iter().copied()).collect())
    };
    let expected: Vec<Reference> = required
        .iter()
        .map(|(bank, pcrs)| {
            let list: Vec<String> = pcrs.iter().map(u32::to_string).collect();
            reference(format!("{bank}:{}", list.join(",")), "the PCRs the bundle enforces")
        })
        .collect();
    let mut missing = Vec::new();
    let mut covered = Vec::new();
    for (bank, pcrs) in required {
        let Some(have) = selected(*bank) else { continue };
        let lacking: Vec<String> = pcrs.difference(&have).map(u32::to_string).collect();
        if lacking.is_empty() {
            covered.push(bank.name());
        } else {
            missing.push(format!("{bank} PCR {}", lacking.join(", ")));
        }
    }
    let (status, detail) = if !missing.is_empty() {
        (
            Status::Mismatch,
            format!("the quote leaves out enforced PCRs ({}): it says nothing about them", missing.join("; ")),
        )
    } else if covered.is_empty() {
        (Status::Mismatch, "the quote selects none of the banks the bundle enforces PCRs in".into())
    } else if covered == ["sha1"] && required.keys().any(|b| *b != HashAlg::Sha1) {
        // SHA-1 collisions can be made: a SHA-1 quote alone does not vouch for the values the
        // bundle also enforces in a stronger bank.
        (
            Status::Mismatch,
            "the quote covers the enforced PCRs only in sha1, whose collisions can be made: quote a bank the bundle \
             enforces of SHA-256 or stronger too"
                .into(),
        )
    } else {
        (Status::Ok, format!("covers every PCR the bundle enforces in {}", covered.join(", ")))
    };
    check("TPM QUOTE PCR SELECTION", status, actual, expected, detail)
}

/// The digest of the selected PCRs' values (selection order; the signature's hash), against the
/// quote's; and those values.
fn digest_check(q: &QuoteInfo, hash: HashAlg, pcrs: &PcrValues) -> (Check, PcrValues) {
    let mut concatenated = Vec::new();
    let mut lacking = Vec::new();
    let mut quoted = PcrValues::new();
    for s in &q.pcr_select {
        let bank = HashAlg::from_id(s.alg);
        for index in &s.pcrs {
            let value = bank.and_then(|b| pcrs.get(&b)?.get(&u8::try_from(*index).ok()?).map(|v| (b, v)));
            match value {
                Some((b, v)) => {
                    concatenated.extend_from_slice(v.as_bytes());
                    quoted.entry(b).or_default().insert(*index as u8, v.clone());
                }
                None => lacking.push(format!("{}:{index}", s.alg)),
            }
        }
    }
    let computed = Hex(digest(hash, &[&concatenated]));
    let c = if !lacking.is_empty() {
        check(
            "TPM QUOTE PCR DIGEST",
            Status::Mismatch,
            q.pcr_digest.to_string(),
            Vec::new(),
            format!("the PCR values lack PCRs the quote covers ({}): its digest cannot be checked", lacking.join(" ")),
        )
    } else if computed == q.pcr_digest {
        check(
            "TPM QUOTE PCR DIGEST",
            Status::Ok,
            q.pcr_digest.to_string(),
            vec![reference(&computed, format!("{hash} of the selected PCR values"))],
            "the PCR values compared below are the ones the TPM quoted".into(),
        )
    } else {
        check(
            "TPM QUOTE PCR DIGEST",
            Status::Mismatch,
            q.pcr_digest.to_string(),
            vec![reference(&computed, format!("{hash} of the selected PCR values"))],
            "the PCR values given are not the ones the TPM quoted".into(),
        )
    };
    (c, quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sha1_only_selection_does_not_vouch_for_stronger_banks() {
        let q = |banks: &[HashAlg]| QuoteInfo {
            pcr_select: banks.iter().map(|b| Selection { alg: b.id(), pcrs: vec![4, 7] }).collect(),
            pcr_digest: Hex(Vec::new()),
        };
        let both = BTreeMap::from([(HashAlg::Sha1, BTreeSet::from([4, 7])), (HashAlg::Sha256, BTreeSet::from([4, 7]))]);
        let c = selection_check(&q(&[HashAlg::Sha1]), &both, String::new());
        assert_eq!(c.status, Status::Mismatch, "{}", c.detail);
        assert!(c.detail.contains("only in sha1"), "{}", c.detail);
        assert_eq!(selection_check(&q(&[HashAlg::Sha256]), &both, String::new()).status, Status::Ok);
        assert_eq!(selection_check(&q(&[HashAlg::Sha1, HashAlg::Sha256]), &both, String::new()).status, Status::Ok);
        // A bundle of sha1 values only: a sha1 quote is all there is to ask for.
        let sha1 = BTreeMap::from([(HashAlg::Sha1, BTreeSet::from([4, 7]))]);
        assert_eq!(selection_check(&q(&[HashAlg::Sha1]), &sha1, String::new()).status, Status::Ok);
    }

    const MSG: &[u8] = include_bytes!("../testdata/quote/quote-rsassa.msg");
    const SIG: &[u8] = include_bytes!("../testdata/quote/quote-p256.sig");
    const AK: &[u8] = include_bytes!("../testdata/quote/ak-p384.pub");

    fn err(r: Result<impl std::fmt::Debug, QuoteError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn a_tpm2b_attest_is_the_same_quote() {
        let mut wrapped = (MSG.len() as u16).to_be_bytes().to_vec();
        wrapped.extend_from_slice(MSG);
        let (a, signed) = parse_attest(&wrapped).unwrap();
        assert_eq!((a, signed), parse_attest(MSG).unwrap());
        assert_eq!(signed, MSG);
    }

    /// Each structure, cut or changed in one field, is refused with the field and offset named.
    #[test]
    fn malformed_structures_name_the_field() {
        assert!(err(parse_attest(&MSG[..5])).contains("type at offset 4 needs 2 bytes, 1 remain"));
        let mut unsafe_clock = MSG.to_vec();
        // magic 4, type 2, qualifiedSigner 2+34, extraData 2+32, clock 8, resetCount 4, restartCount 4.
        let safe = 4 + 2 + 2 + 34 + 2 + 32 + 16;
        assert_eq!(unsafe_clock[safe], 1);
        unsafe_clock[safe] = 2;
        assert!(err(parse_attest(&unsafe_clock)).contains("clockInfo.safe is 2"));
        let mut count = MSG.to_vec();
        count[safe + 9..safe + 13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(err(parse_attest(&count)).contains("pcrSelect.count 4294967295"));
        assert!(err(parse_attest(&vec![0; MAX_LEN + 1])).contains("more than any TPM makes"));
        // Another attestation type is parsed up to its body, which is not read.
        let mut certify = MSG.to_vec();
        certify[4..6].copy_from_slice(&0x8017u16.to_be_bytes());
        assert_eq!(parse_attest(&certify).unwrap().0.quote, None);

        assert!(err(parse_signature(&SIG[..SIG.len() - 1])).contains("signature.signatureS"));
        let mut trailing = SIG.to_vec();
        trailing.push(0);
        assert!(err(parse_signature(&trailing)).contains("1 bytes after its last field"));
        let mut hmac = SIG.to_vec();
        hmac[..2].copy_from_slice(&0x0005u16.to_be_bytes());
        assert!(err(parse_signature(&hmac)).contains("signature scheme"));
        let mut sha1 = SIG.to_vec();
        sha1[2..4].copy_from_slice(&0x0004u16.to_be_bytes());
        assert!(err(parse_signature(&sha1)).contains("hash algorithm sha1"));

        assert!(matches!(parse_ak(AK).unwrap(), AkPublic::P384(_)));
        assert!(err(parse_ak(&AK[..AK.len() - 1])).contains("TPM2B_PUBLIC is truncated"));
        // objectAttributes (bytes 6..10): tpm2_createak's 0x00050072; sign alone is no AK.
        assert_eq!(u32::from_be_bytes(AK[6..10].try_into().unwrap()) & 0x00050012, 0x00050012);
        let mut unrestricted = AK.to_vec();
        unrestricted[6..10].copy_from_slice(&0x0004_0000u32.to_be_bytes());
        let e = err(parse_ak(&unrestricted));
        assert!(e.contains("not an attestation key (fixedTPM, fixedParent, restricted not set"), "{e}");
        let mut decrypting = AK.to_vec();
        decrypting[6..10].copy_from_slice(&0x0007_0072u32.to_be_bytes());
        assert!(err(parse_ak(&decrypting)).contains("decrypt is set"));
        let mut off_curve = AK.to_vec();
        *off_curve.last_mut().unwrap() ^= 1;
        assert!(err(parse_ak(&off_curve)).contains("not on P-384"));
        assert!(
            err(parse_ak(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")).contains("PEM public key")
        );
    }

    /// A signature of one kind of key does not verify with another.
    #[test]
    fn scheme_and_key_must_agree() {
        let ak = parse_ak(include_bytes!("../testdata/quote/ak-rsassa.pub")).unwrap();
        let sig = parse_signature(SIG).unwrap();
        let e = verify_signature(&ak, &sig, MSG).unwrap_err();
        assert_eq!(e, "an ECDSA signature cannot be made by an RSA 2048 key");
    }
}
