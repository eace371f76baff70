//! Which `db` entry lets the firmware run the UKI under Secure Boot: the `EV_EFI_VARIABLE_AUTHORITY`
//! event of PCR 7.
//!
//! edk2's `DxeImageVerificationLib` (`DxeImageVerificationHandler`, `IsAllowedByDb`) verifies a
//! signed image against the X.509 certificates of `db` in order and measures the first one that
//! verifies; an unsigned image (or a signed one no certificate verifies) must have its
//! Authenticode digest listed in `db`, and the matching hash entry is measured instead. Either
//! way the event carries that single `EFI_SIGNATURE_DATA` (owner GUID + certificate or digest),
//! measured once per boot.
//!
//! This module does not verify signatures — the firmware does that at boot, and a wrong
//! prediction shows up as a PCR 7 mismatch. It finds the certificate the signature chains to
//! the way a person would: the `db` certificate itself is embedded in the PKCS#7 `SignedData`
//! (sbsign and pesign embed the signer), or its subject name is (as the issuer of an embedded
//! certificate, or in the `SignerInfo`'s issuer and serial number).

use uki::Pe;

use super::BootError;
use crate::ovmf::Uuid;
use crate::uefi_vars::{
    SignatureData, SignatureList, EFI_CERT_SHA1, EFI_CERT_SHA256, EFI_CERT_SHA384, EFI_CERT_SHA512, EFI_CERT_X509,
};
use eventlog::HashAlg;

/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA` (PE/COFF "The Attribute Certificate Table").
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;
/// `WIN_CERT_TYPE_EFI_GUID` (UEFI 2.10, 32.2.4 `WIN_CERTIFICATE_UEFI_GUID`).
const WIN_CERT_TYPE_EFI_GUID: u16 = 0x0ef1;
/// `EFI_CERT_TYPE_PKCS7_GUID`: a `WIN_CERTIFICATE_UEFI_GUID` holding PKCS#7 `SignedData`.
const EFI_CERT_TYPE_PKCS7: Uuid =
    Uuid::from_fields(0x4aaf_d29d, 0x68df, 0x49ee, &[0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7]);

/// The PKCS#7 blobs of the image's certificate table (edk2's loop over `WIN_CERTIFICATE`s, each
/// 8-byte aligned).
fn signatures<'a>(pe: &Pe<'a>) -> Vec<&'a [u8]> {
    let Some(range) = pe.certificate_table() else { return Vec::new() };
    let table = &pe.data()[range];
    let mut out = Vec::new();
    let mut at = 0usize;
    while table.len() - at > 8 {
        let len = u32::from_le_bytes(table[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_le_bytes([table[at + 6], table[at + 7]]);
        if len <= 8 || len > table.len() - at {
            break;
        }
        let cert = &table[at..at + len];
        match kind {
            WIN_CERT_TYPE_PKCS_SIGNED_DATA => out.push(&cert[8..]),
            WIN_CERT_TYPE_EFI_GUID if cert.len() > 24 && cert[8..24] == EFI_CERT_TYPE_PKCS7.to_bytes_le() => {
                out.push(&cert[24..])
            }
            _ => {}
        }
        at += len.next_multiple_of(8);
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// One DER element: (tag, the whole element, its contents).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((tag, b.get(..end)?, b.get(head..end)?))
}

/// The subject `Name` of a DER certificate, as encoded (RFC 5280, 4.1: `tbsCertificate` =
/// [0] version, serialNumber, signature, issuer, validity, subject, …).
pub(crate) fn subject(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, _, cert) = der(cert)? else { return None };
    let (0x30, _, mut tbs) = der(cert)? else { return None };
    let mut fields = Vec::new();
    while !tbs.is_empty() && fields.len() < 6 {
        let (tag, whole, _) = der(tbs)?;
        tbs = &tbs[whole.len()..];
        if fields.is_empty() && tag == 0xa0 {
            continue; // the optional explicit version
        }
        fields.push((tag, whole));
    }
    match fields.get(4) {
        Some((0x30, subject)) => Some(subject),
        _ => None,
    }
}

fn hash_entries(lists: &[SignatureList], alg: HashAlg) -> impl Iterator<Item = &SignatureData> {
    let ty = match alg {
        HashAlg::Sha1 => EFI_CERT_SHA1,
        HashAlg::Sha256 => EFI_CERT_SHA256,
        HashAlg::Sha384 => EFI_CERT_SHA384,
        HashAlg::Sha512 => EFI_CERT_SHA512,
    };
    lists.iter().filter(move |l| l.signature_type == ty).flat_map(|l| &l.entries)
}

/// The `db` entries the firmware measures as authorities for the image, in event order, or why
/// Secure Boot refuses it. `digest(alg)` is the image's Authenticode digest.
pub(crate) fn authorities(
    pe: &Pe<'_>,
    digest: &dyn Fn(HashAlg) -> Vec<u8>,
    db: &[SignatureList],
    dbx: &[SignatureList],
) -> Result<Vec<SignatureData>, BootError> {
    let sigs = signatures(pe);
    let sha256 = digest(HashAlg::Sha256);
    if hash_entries(dbx, HashAlg::Sha256).any(|e| e.data == sha256) {
        return Err(BootError::ForbiddenByDbx { what: "its SHA-256 Authenticode digest is listed in dbx".into() });
    }
    if sigs.is_empty() {
        // DxeImageVerificationHandler, unsigned: every hash algorithm from the strongest down;
        // each match in db is measured.
        let mut found = Vec::new();
        for alg in [HashAlg::Sha512, HashAlg::Sha384, HashAlg::Sha256, HashAlg::Sha1] {
            let d = digest(alg);
            if hash_entries(dbx, alg).any(|e| e.data == d) {
                return Err(BootError::ForbiddenByDbx {
                    what: format!("its {alg} Authenticode digest is listed in dbx"),
                });
            }
            if let Some(e) = hash_entries(db, alg).find(|e| e.data == d) {
                if !found.contains(e) {
                    found.push(e.clone());
                }
            }
        }
        if found.is_empty() {
            return Err(BootError::NotAuthorized {
                why: "the UKI is not signed and its Authenticode digest is not in db".into(),
            });
        }
        return Ok(found);
    }
    let certs = |lists: &[SignatureList]| -> Vec<SignatureData> {
        lists.iter().filter(|l| l.signature_type == EFI_CERT_X509).flat_map(|l| l.entries.clone()).collect()
    };
    let revoked = certs(dbx);
    if sigs.iter().any(|sig| revoked.iter().any(|c| contains(sig, &c.data))) {
        return Err(BootError::ForbiddenByDbx { what: "its signature carries a certificate listed in dbx".into() });
    }
    for sig in &sigs {
        let by_cert = certs(db)
            .into_iter()
            .find(|c| contains(sig, &c.data) || subject(&c.data).is_some_and(|name| contains(sig, name)));
        if let Some(c) = by_cert {
            return Ok(vec![c]);
        }
    }
    if let Some(e) = hash_entries(db, HashAlg::Sha256).find(|e| e.data == sha256) {
        return Ok(vec![e.clone()]);
    }
    Err(BootError::NotAuthorized {
        why: "no db certificate matches the UKI's signature (neither embedded in it nor named as its issuer) and its digest is not in db".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_of_a_certificate() {
        // SEQUENCE { SEQUENCE { [0]{INTEGER 2}, INTEGER 1, SEQUENCE{}, SEQUENCE{issuer}, SEQUENCE{}, SEQUENCE{subject} } }
        let issuer = [0x30, 0x03, 0x31, 0x01, 0x49];
        let subj = [0x30, 0x03, 0x31, 0x01, 0x53];
        let mut tbs = vec![0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01, 0x30, 0x00];
        tbs.extend_from_slice(&issuer);
        tbs.extend_from_slice(&[0x30, 0x00]);
        tbs.extend_from_slice(&subj);
        let mut t = vec![0x30, tbs.len() as u8];
        t.extend_from_slice(&tbs);
        let mut cert = vec![0x30, 0x81, t.len() as u8];
        cert.extend_from_slice(&t);
        assert_eq!(subject(&cert), Some(&subj[..]));
        assert_eq!(subject(&cert[..cert.len() - 1]), None, "truncated");
        assert_eq!(subject(&[0x30, 0x85, 1, 1, 1, 1, 1]), None, "absurd length");
    }
}
