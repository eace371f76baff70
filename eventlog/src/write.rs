//! Writing a binary event log, in the encoding [`crate::parse()`] reads and `tpm2_eventlog` shows.

use crate::types::{AlgId, Event, EventLog, EventType, LogFormat};

/// Why a log cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A crypto-agile or CCEL log without its Spec ID event.
    #[error("a {0} needs a Spec ID event")]
    NoSpecId(LogFormat),
    /// A digest of a bank the Spec ID event does not declare.
    #[error("event {number} ({event_type}, PCR {pcr}): {alg} is not one of the log's banks")]
    UndeclaredAlgorithm {
        /// Event number (header = 0).
        number: usize,
        /// Its type.
        event_type: EventType,
        /// Its index field.
        pcr: u32,
        /// The algorithm.
        alg: AlgId,
    },
    /// A digest whose length is not its bank's size.
    #[error("event {number} ({event_type}, PCR {pcr}): the {alg} digest is {len} bytes, not {size}")]
    DigestSize {
        /// Event number (header = 0).
        number: usize,
        /// Its type.
        event_type: EventType,
        /// Its index field.
        pcr: u32,
        /// The algorithm.
        alg: AlgId,
        /// The digest's length.
        len: usize,
        /// The bank's size.
        size: usize,
    },
    /// A SHA-1 log event needs exactly one SHA-1 digest.
    #[error("event {number} ({event_type}, PCR {pcr}): a SHA-1 log event needs exactly one SHA-1 digest")]
    NotSha1 {
        /// Event number.
        number: usize,
        /// Its type.
        event_type: EventType,
        /// Its index field.
        pcr: u32,
    },
    /// Event data longer than the 32-bit size field can say.
    #[error("event {number} ({event_type}, PCR {pcr}): {len} bytes of event data do not fit a 32-bit size")]
    TooLarge {
        /// Event number.
        number: usize,
        /// Its type.
        event_type: EventType,
        /// Its index field.
        pcr: u32,
        /// The data length.
        len: usize,
    },
    /// More vendor info than its one-byte size field can say.
    #[error("the Spec ID event's vendor info is {0} bytes, more than 255")]
    VendorInfo(usize),
}

/// Encodes `log`. A crypto-agile log gets a `TCG_PCR_EVENT` header carrying its Spec ID event
/// (the parsed header verbatim, if the log came from [`crate::parse()`]; else index 0, or 1 for a
/// CCEL, `EV_NO_ACTION`, a zero SHA-1 digest), then one `TCG_PCR_EVENT2` per event with its
/// digests in the order the event holds them. A parsed log writes back byte for byte (trailing
/// padding excepted).
pub fn write(log: &EventLog) -> Result<Vec<u8>, WriteError> {
    let mut out = Vec::new();
    if log.format == LogFormat::TcgSha1 {
        for (i, e) in log.events.iter().enumerate() {
            let number = log.number(i);
            let [d] = e.digests.as_slice() else {
                return Err(WriteError::NotSha1 { number, event_type: e.event_type, pcr: e.pcr });
            };
            if d.alg != AlgId::SHA1 || d.bytes.len() != 20 {
                return Err(WriteError::NotSha1 { number, event_type: e.event_type, pcr: e.pcr });
            }
            write_legacy(&mut out, e, number)?;
        }
        return Ok(out);
    }
    let spec = log.spec_id.as_ref().ok_or(WriteError::NoSpecId(log.format))?;
    if spec.vendor_info.len() > 255 {
        return Err(WriteError::VendorInfo(spec.vendor_info.len()));
    }
    match &log.header {
        Some(h) => write_legacy(&mut out, h, 0)?,
        None => {
            let header = Event::with_digests(
                u32::from(log.format == LogFormat::Ccel),
                EventType::EV_NO_ACTION,
                vec![crate::types::Digest { alg: AlgId::SHA1, bytes: vec![0; 20] }],
                spec.to_bytes(),
            );
            write_legacy(&mut out, &header, 0)?;
        }
    }
    for (i, e) in log.events.iter().enumerate() {
        let number = log.number(i);
        out.extend_from_slice(&e.pcr.to_le_bytes());
        out.extend_from_slice(&e.event_type.0.to_le_bytes());
        out.extend_from_slice(&(e.digests.len() as u32).to_le_bytes());
        for d in &e.digests {
            let size = spec.digest_size(d.alg).ok_or(WriteError::UndeclaredAlgorithm {
                number,
                event_type: e.event_type,
                pcr: e.pcr,
                alg: d.alg,
            })?;
            if d.bytes.len() != size {
                return Err(WriteError::DigestSize {
                    number,
                    event_type: e.event_type,
                    pcr: e.pcr,
                    alg: d.alg,
                    len: d.bytes.len(),
                    size,
                });
            }
            out.extend_from_slice(&d.alg.0.to_le_bytes());
            out.extend_from_slice(&d.bytes);
        }
        write_data(&mut out, e, number)?;
    }
    Ok(out)
}

/// A `TCG_PCR_EVENT` with the event's SHA-1 digest (zeros if it has none).
fn write_legacy(out: &mut Vec<u8>, e: &Event, number: usize) -> Result<(), WriteError> {
    out.extend_from_slice(&e.pcr.to_le_bytes());
    out.extend_from_slice(&e.event_type.0.to_le_bytes());
    match e.digest(AlgId::SHA1) {
        Some(d) if d.len() == 20 => out.extend_from_slice(d),
        _ => out.extend_from_slice(&[0; 20]),
    }
    write_data(out, e, number)
}

fn write_data(out: &mut Vec<u8>, e: &Event, number: usize) -> Result<(), WriteError> {
    let len = u32::try_from(e.data.len()).map_err(|_| WriteError::TooLarge {
        number,
        event_type: e.event_type,
        pcr: e.pcr,
        len: e.data.len(),
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&e.data);
    Ok(())
}
