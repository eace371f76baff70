//! The Intel TDX quote (DCAP ECDSA quote, versions 4 and 5).
//!
//! Layout: Intel, *Intel TDX DCAP Quoting Library API*, appendix "TD Quote Format": A.3 for
//! version 4 (header, TD quote body, signature data), A.4 for version 5, which puts a body
//! descriptor (type `u16`, size `u32`) between the header and the body so that the body can be
//! either a TD report 1.0 (type 2, 584 bytes, TDX module 1.0) or a TD report 1.5 (type 3, 648
//! bytes: two fields more, TEE_TCB_SVN2 and MRSERVICETD). The field meanings are the TDX module's
//! (`TDREPORT_STRUCT`/`TDINFO_STRUCT`, *Intel TDX Module Base Architecture Specification*).
//!
//! After the body comes the signature data: its length (`u32`), then for ECDSA-256 keys the
//! signature over header and body (64 bytes), the attestation public key (64 bytes) and the
//! certification data (type `u16`, size `u32`, data: the QE report and the PCK certificate chain).
//! This parser checks that envelope's lengths but not the signature or the chain.

use serde::Serialize;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

/// Size of the quote header.
pub const HEADER_LEN: usize = 48;
/// Size of a TD quote body 1.0 (TD report 1.0).
pub const BODY_10_LEN: usize = 584;
/// Size of a TD quote body 1.5 (TD report 1.5).
pub const BODY_15_LEN: usize = 648;
/// TEE type of TDX (SGX is 0).
pub const TEE_TYPE_TDX: u32 = 0x81;
/// Attestation key type ECDSA-256-with-P-256 curve.
pub const ATT_KEY_ECDSA_P256: u16 = 2;
/// Version 5 body type of a TD report 1.0.
pub const BODY_TYPE_TD_10: u16 = 2;
/// Version 5 body type of a TD report 1.5.
pub const BODY_TYPE_TD_15: u16 = 3;

/// The quote header ("Quote Header" / "TD Quote Header"). Little-endian.
#[derive(Debug, Clone, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct QuoteHeader {
    /// `0x00` Version: 4 or 5.
    pub version: U16,
    /// `0x02` Attestation key type: 2 = ECDSA-256-with-P-256, 3 = ECDSA-384-with-P-384.
    pub attestation_key_type: U16,
    /// `0x04` TEE type: `0x81` TDX (`0x00` SGX).
    pub tee_type: U32,
    /// `0x08` reserved (QE SVN in SGX quotes v3).
    pub reserved_0: [u8; 2],
    /// `0x0a` reserved (PCE SVN in SGX quotes v3).
    pub reserved_1: [u8; 2],
    /// `0x0c` QE vendor ID (`939a7233-f79c-4ca9-940a-0db3957f0607`: Intel's QE).
    pub qe_vendor_id: [u8; 16],
    /// `0x1c` User data: the first 16 bytes identify the platform to the QE's owner.
    pub user_data: [u8; 20],
}
const _: () = assert!(size_of::<QuoteHeader>() == HEADER_LEN);

/// The TD quote body 1.0 ("TD Quote Body"): the TD report's measurement fields.
#[derive(Debug, Clone, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TdQuoteBody10 {
    /// `0x000` TEE_TCB_SVN: the TDX module's TCB SVNs.
    pub tee_tcb_svn: [u8; 16],
    /// `0x010` MRSEAM: measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// `0x040` MRSIGNERSEAM: its signer (zero for Intel's module).
    pub mr_signer_seam: [u8; 48],
    /// `0x070` SEAMATTRIBUTES: the module's attributes (zero).
    pub seam_attributes: [u8; 8],
    /// `0x078` TDATTRIBUTES: the TD's attributes ([`TdAttributes`]).
    pub td_attributes: U64,
    /// `0x080` XFAM: the extended features (XSAVE) the TD may use.
    pub xfam: [u8; 8],
    /// `0x088` MRTD: measurement of the TD's initial contents (the firmware).
    pub mr_td: [u8; 48],
    /// `0x0b8` MRCONFIGID: software-defined configuration ID, set by the VMM at creation.
    pub mr_config_id: [u8; 48],
    /// `0x0e8` MROWNER: software-defined ID of the TD's owner.
    pub mr_owner: [u8; 48],
    /// `0x118` MROWNERCONFIG: software-defined owner configuration.
    pub mr_owner_config: [u8; 48],
    /// `0x148` RTMR0..RTMR3: the runtime measurement registers.
    pub rtmr: [[u8; 48]; 4],
    /// `0x208` REPORTDATA: 64 bytes the TD supplied with the request.
    pub report_data: [u8; 64],
}
const _: () = assert!(size_of::<TdQuoteBody10>() == BODY_10_LEN);
const _: () = assert!(std::mem::offset_of!(TdQuoteBody10, mr_td) == 0x88);
const _: () = assert!(std::mem::offset_of!(TdQuoteBody10, rtmr) == 0x148);

/// The TD quote body 1.5 ("TD Quote Body Descriptor" type 3): body 1.0 and two more fields.
#[derive(Debug, Clone, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TdQuoteBody15 {
    /// `0x000` the fields of body 1.0.
    pub base: TdQuoteBody10,
    /// `0x248` TEE_TCB_SVN2: TCB SVNs of the TDX module the TD runs on now (after a
    /// TD-preserving update).
    pub tee_tcb_svn_2: [u8; 16],
    /// `0x258` MRSERVICETD: measurement of the service TDs bound to this TD (zero without).
    pub mr_service_td: [u8; 48],
}
const _: () = assert!(size_of::<TdQuoteBody15>() == BODY_15_LEN);

/// The version 5 body descriptor, between header and body.
#[derive(Debug, Clone, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BodyDescriptor {
    /// `0x30` Type: 1 SGX enclave report, 2 TD report 1.0, 3 TD report 1.5.
    pub body_type: U16,
    /// `0x32` Size of the body that follows.
    pub size: U32,
}
const _: () = assert!(size_of::<BodyDescriptor>() == 6);

/// The start of ECDSA-256 signature data: what the quote signs with and how it is certified.
#[derive(Debug, Clone, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EcdsaSignatureData {
    /// ECDSA-P256 signature (r ‖ s) over the header and body.
    pub signature: [u8; 64],
    /// The attestation public key (x ‖ y).
    pub attestation_key: [u8; 64],
    /// Certification data type: 6 = QE report certification data (holding the PCK chain).
    pub certification_data_type: U16,
    /// Size of the certification data that follows.
    pub certification_data_size: U32,
}
const _: () = assert!(size_of::<EcdsaSignatureData>() == 134);

/// Why bytes are not a TDX quote this parser reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TdxQuoteError {
    /// The input ends before a part of the quote does.
    #[error("truncated: the {part} takes bytes {offset:#x}..{end:#x}, the quote has {len}")]
    Truncated {
        /// The part that does not fit.
        part: &'static str,
        /// Its offset.
        offset: usize,
        /// Its end.
        end: u64,
        /// The input's length.
        len: usize,
    },
    /// A quote version this parser does not know.
    #[error("quote version {version} (offset 0x0) is not one this parser reads (4 or 5)")]
    Version {
        /// The version field.
        version: u16,
    },
    /// Not a TDX quote (an SGX quote, say).
    #[error("TEE type {tee_type:#x} (offset 0x4) is not TDX (0x81)")]
    NotTdx {
        /// The TEE type field.
        tee_type: u32,
    },
    /// A version 5 body that is not a TD report.
    #[error("body type {body_type} (offset 0x30) is not a TD report (2 = TDX 1.0, 3 = TDX 1.5)")]
    BodyType {
        /// The body type.
        body_type: u16,
    },
    /// A version 5 body size that does not fit its type.
    #[error("body size {size} (offset 0x32) does not match body type {body_type} ({expected} bytes)")]
    BodySize {
        /// The body type.
        body_type: u16,
        /// The size field.
        size: u32,
        /// The size of that type's body.
        expected: usize,
    },
    /// The certification data claims more bytes than the signature data holds.
    #[error(
        "certification data size {size} (offset {offset:#x}) exceeds the {available} bytes left in the signature data"
    )]
    CertificationData {
        /// Offset of the size field.
        offset: usize,
        /// The size field.
        size: u32,
        /// Bytes left in the signature data after it.
        available: usize,
    },
}

/// Which TD report the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TdReportVersion {
    /// TD report 1.0 (TDX module 1.0; every version 4 quote).
    #[serde(rename = "1.0")]
    V10,
    /// TD report 1.5 (TDX module 1.5).
    #[serde(rename = "1.5")]
    V15,
}

/// The TD attributes (TDX module spec, "ATTRIBUTES").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TdAttributes {
    /// The 64-bit value.
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub raw: u64,
    /// Bit 0 DEBUG: the host can read and write the TD's memory and state.
    pub debug: bool,
    /// Bit 28 SEPT_VE_DISABLE: EPT violations are not converted to #VE.
    pub sept_ve_disable: bool,
    /// Bit 30 PKS: supervisor protection keys.
    pub pks: bool,
    /// Bit 31 KL: key locker.
    pub key_locker: bool,
    /// Bit 63 PERFMON: the TD may use performance monitoring.
    pub perfmon: bool,
}

impl TdAttributes {
    /// Decodes `raw`.
    pub fn decode(raw: u64) -> Self {
        let bit = |n: u32| raw & (1 << n) != 0;
        Self { raw, debug: bit(0), sept_ve_disable: bit(28), pks: bit(30), key_locker: bit(31), perfmon: bit(63) }
    }
}

/// A parsed TDX quote. The signature and its certificate chain are not checked (see the module
/// documentation of [`crate::evidence`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxQuote {
    /// Quote version, 4 or 5.
    pub version: u16,
    /// Attestation key type.
    pub attestation_key_type: u16,
    /// TEE type (always TDX here).
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub tee_type: u32,
    /// QE vendor ID.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub qe_vendor_id: [u8; 16],
    /// User data.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub user_data: [u8; 20],
    /// Which TD report the body is.
    pub td_report: TdReportVersion,
    /// TEE_TCB_SVN.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub seam_attributes: [u8; 8],
    /// TDATTRIBUTES.
    pub td_attributes: TdAttributes,
    /// XFAM, as the bytes appear in the quote.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub xfam: [u8; 8],
    /// MRTD.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub mr_owner_config: [u8; 48],
    /// RTMR0..RTMR3.
    #[serde(serialize_with = "eventlog::serde_hex::list")]
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub report_data: [u8; 64],
    /// TEE_TCB_SVN2 (TD report 1.5).
    #[serde(serialize_with = "eventlog::serde_hex::option")]
    pub tee_tcb_svn_2: Option<[u8; 16]>,
    /// MRSERVICETD (TD report 1.5).
    #[serde(serialize_with = "eventlog::serde_hex::option")]
    pub mr_service_td: Option<[u8; 48]>,
    /// Length of the signature data.
    pub signature_data_len: u32,
    /// Certification data type (ECDSA-256 keys only; 6 = QE report with the PCK chain).
    pub certification_data_type: Option<u16>,
    /// Bytes after the signature data (padding of a fixed-size buffer, say), ignored.
    pub trailing_bytes: usize,
}

/// `size_of::<T>()` bytes at `offset` as a `T`, or which part is missing.
fn read<'a, T: FromBytes + KnownLayout + Immutable>(
    bytes: &'a [u8],
    offset: usize,
    part: &'static str,
) -> Result<&'a T, TdxQuoteError> {
    let end = offset as u64 + size_of::<T>() as u64;
    bytes.get(offset..).and_then(|rest| T::ref_from_prefix(rest).ok()).map(|(t, _)| t).ok_or(TdxQuoteError::Truncated {
        part,
        offset,
        end,
        len: bytes.len(),
    })
}

/// Parses a TDX quote, version 4 or 5. Bytes after the signature data are allowed (quotes are
/// often handed over in a zero-padded buffer) and counted in [`TdxQuote::trailing_bytes`].
pub fn parse(bytes: &[u8]) -> Result<TdxQuote, TdxQuoteError> {
    let header: &QuoteHeader = read(bytes, 0, "quote header")?;
    let version = header.version.get();
    if version != 4 && version != 5 {
        return Err(TdxQuoteError::Version { version });
    }
    let tee_type = header.tee_type.get();
    if tee_type != TEE_TYPE_TDX {
        return Err(TdxQuoteError::NotTdx { tee_type });
    }
    let (body_type, body_offset) = if version == 4 {
        (BODY_TYPE_TD_10, HEADER_LEN)
    } else {
        let d: &BodyDescriptor = read(bytes, HEADER_LEN, "body descriptor")?;
        let (body_type, size) = (d.body_type.get(), d.size.get());
        let expected = match body_type {
            BODY_TYPE_TD_10 => BODY_10_LEN,
            BODY_TYPE_TD_15 => BODY_15_LEN,
            _ => return Err(TdxQuoteError::BodyType { body_type }),
        };
        if size as usize != expected {
            return Err(TdxQuoteError::BodySize { body_type, size, expected });
        }
        (body_type, HEADER_LEN + size_of::<BodyDescriptor>())
    };
    let (body, extra, body_len) = if body_type == BODY_TYPE_TD_15 {
        let b: &TdQuoteBody15 = read(bytes, body_offset, "TD quote body 1.5")?;
        (&b.base, Some((b.tee_tcb_svn_2, b.mr_service_td)), BODY_15_LEN)
    } else {
        (read::<TdQuoteBody10>(bytes, body_offset, "TD quote body")?, None, BODY_10_LEN)
    };
    let sig_len_offset = body_offset + body_len;
    let sig_len = read::<U32>(bytes, sig_len_offset, "signature data length")?.get();
    let sig_offset = sig_len_offset + 4;
    let sig_end = sig_offset as u64 + u64::from(sig_len);
    if sig_end > bytes.len() as u64 {
        return Err(TdxQuoteError::Truncated {
            part: "signature data",
            offset: sig_offset,
            end: sig_end,
            len: bytes.len(),
        });
    }
    let sig_data = &bytes[..sig_end as usize];
    let attestation_key_type = header.attestation_key_type.get();
    let certification_data_type = if attestation_key_type == ATT_KEY_ECDSA_P256 {
        let s: &EcdsaSignatureData = read(sig_data, sig_offset, "ECDSA signature data")?;
        let size_offset = sig_offset + 130;
        let available = sig_data.len() - (sig_offset + size_of::<EcdsaSignatureData>());
        let size = s.certification_data_size.get();
        if size as usize > available {
            return Err(TdxQuoteError::CertificationData { offset: size_offset, size, available });
        }
        Some(s.certification_data_type.get())
    } else {
        None
    };
    Ok(TdxQuote {
        version,
        attestation_key_type,
        tee_type,
        qe_vendor_id: header.qe_vendor_id,
        user_data: header.user_data,
        td_report: if body_type == BODY_TYPE_TD_15 { TdReportVersion::V15 } else { TdReportVersion::V10 },
        tee_tcb_svn: body.tee_tcb_svn,
        mr_seam: body.mr_seam,
        mr_signer_seam: body.mr_signer_seam,
        seam_attributes: body.seam_attributes,
        td_attributes: TdAttributes::decode(body.td_attributes.get()),
        xfam: body.xfam,
        mr_td: body.mr_td,
        mr_config_id: body.mr_config_id,
        mr_owner: body.mr_owner,
        mr_owner_config: body.mr_owner_config,
        rtmr: body.rtmr,
        report_data: body.report_data,
        tee_tcb_svn_2: extra.map(|e| e.0),
        mr_service_td: extra.map(|e| e.1),
        signature_data_len: sig_len,
        certification_data_type,
        trailing_bytes: bytes.len() - sig_end as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 4 quote (confidential-containers/trustee; see testdata/README.md).
    const V4: &[u8] = include_bytes!("../../testdata/tdx-quote-v4-trustee.dat");
    /// A version 5 quote with a TD report 1.5 (trustee).
    const V5: &[u8] = include_bytes!("../../testdata/tdx-quote-v5-trustee.dat");

    fn with(base: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = base.to_vec();
        edit(&mut b);
        b
    }

    #[test]
    fn versions_and_bodies() {
        let q4 = parse(V4).unwrap();
        assert_eq!((q4.version, q4.td_report, q4.trailing_bytes), (4, TdReportVersion::V10, 0));
        assert_eq!(q4.certification_data_type, Some(6));
        let q5 = parse(V5).unwrap();
        assert_eq!((q5.version, q5.td_report, q5.mr_service_td.is_some()), (5, TdReportVersion::V15, true));
        // A version 5 quote with a 1.0 body: the descriptor says so, the 1.5 fields are absent.
        let body = &V4[HEADER_LEN..HEADER_LEN + BODY_10_LEN];
        let mut v5_10 = V4[..HEADER_LEN].to_vec();
        v5_10[0] = 5;
        v5_10.extend_from_slice(&BODY_TYPE_TD_10.to_le_bytes());
        v5_10.extend_from_slice(&(BODY_10_LEN as u32).to_le_bytes());
        v5_10.extend_from_slice(body);
        v5_10.extend_from_slice(&V4[HEADER_LEN + BODY_10_LEN..]);
        v5_10.extend_from_slice(&[0; 70]);
        let q = parse(&v5_10).unwrap();
        assert_eq!((q.version, q.td_report, q.mr_td, q.trailing_bytes), (5, TdReportVersion::V10, q4.mr_td, 70));
        assert_eq!(q.tee_tcb_svn_2, None);
    }

    #[test]
    fn bad_input_names_what_and_where() {
        let v4_sig = HEADER_LEN + BODY_10_LEN;
        let v5_sig = HEADER_LEN + 6 + BODY_15_LEN;
        type Case = (&'static str, Vec<u8>, TdxQuoteError);
        let cases: Vec<Case> = vec![
            ("empty", Vec::new(), TdxQuoteError::Truncated { part: "quote header", offset: 0, end: 48, len: 0 }),
            (
                "v4 truncated in the body",
                V4[..600].to_vec(),
                TdxQuoteError::Truncated { part: "TD quote body", offset: 48, end: 632, len: 600 },
            ),
            (
                "v5 truncated in the descriptor",
                V5[..50].to_vec(),
                TdxQuoteError::Truncated { part: "body descriptor", offset: 48, end: 54, len: 50 },
            ),
            (
                "v5 truncated in the body",
                V5[..700].to_vec(),
                TdxQuoteError::Truncated { part: "TD quote body 1.5", offset: 54, end: 702, len: 700 },
            ),
            (
                "v4 without signature data",
                V4[..v4_sig].to_vec(),
                TdxQuoteError::Truncated { part: "signature data length", offset: 632, end: 636, len: 632 },
            ),
            (
                "v4 truncated in the signature data",
                V4[..V4.len() - 1].to_vec(),
                TdxQuoteError::Truncated {
                    part: "signature data",
                    offset: 636,
                    end: V4.len() as u64,
                    len: V4.len() - 1,
                },
            ),
            ("version 3", with(V4, |b| b[0] = 3), TdxQuoteError::Version { version: 3 }),
            ("version 6", with(V5, |b| b[0] = 6), TdxQuoteError::Version { version: 6 }),
            ("SGX", with(V4, |b| b[4] = 0), TdxQuoteError::NotTdx { tee_type: 0 }),
            ("v5 body type 1", with(V5, |b| b[48] = 1), TdxQuoteError::BodyType { body_type: 1 }),
            (
                "v5 body size",
                with(V5, |b| b[50] = 0x89),
                TdxQuoteError::BodySize { body_type: 3, size: 0x289, expected: 648 },
            ),
            (
                "v5 1.5 body labelled 1.0",
                with(V5, |b| b[48] = 2),
                TdxQuoteError::BodySize { body_type: 2, size: 648, expected: 584 },
            ),
            (
                "certification data size",
                with(V5, |b| b[v5_sig + 4 + 130 + 3] = 1),
                TdxQuoteError::CertificationData {
                    offset: v5_sig + 4 + 130,
                    size: u32::from_le_bytes([V5[v5_sig + 134], V5[v5_sig + 135], V5[v5_sig + 136], 1]),
                    available: V5.len() - (v5_sig + 4 + 134),
                },
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(parse(&bytes).unwrap_err(), want, "{name}");
        }
        let e = parse(&V4[..600]).unwrap_err().to_string();
        assert_eq!(e, "truncated: the TD quote body takes bytes 0x30..0x278, the quote has 600");
    }
}
