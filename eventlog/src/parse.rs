//! Reading a binary event log.

use crate::types::{AlgId, AlgorithmSize, Digest, Event, EventLog, EventType, LogFormat, SpecIdEvent};

/// Why a log could not be read. Offsets are bytes from the start of the log; event numbers
/// count the header as 0, as `tpm2_eventlog` does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Zero bytes.
    #[error("the event log is empty")]
    Empty,
    /// A fixed-size field does not fit in what is left of the log.
    #[error(
        "event {number} (offset {offset:#x}): the {field} runs past the end of the log \
         (needs {needed} bytes at offset {at:#x}, {left} left)"
    )]
    Truncated {
        /// Event number.
        number: usize,
        /// Offset of the event.
        offset: u64,
        /// The field being read.
        field: &'static str,
        /// Offset of the field.
        at: u64,
        /// Its size.
        needed: u64,
        /// Bytes left in the log at `at`.
        left: u64,
    },
    /// The event size field claims more data than the log holds.
    #[error(
        "event {number} (offset {offset:#x}): event data of {size} bytes runs past the end of \
         the log ({left} bytes left)"
    )]
    EventTooLarge {
        /// Event number.
        number: usize,
        /// Offset of the event.
        offset: u64,
        /// The claimed size.
        size: u32,
        /// Bytes left after the size field.
        left: u64,
    },
    /// More digests than the header declared banks.
    #[error(
        "event {number} (offset {offset:#x}): digest count {count} exceeds the {declared} \
         bank(s) the Spec ID event declares"
    )]
    DigestCount {
        /// Event number.
        number: usize,
        /// Offset of the event.
        offset: u64,
        /// The claimed count.
        count: u32,
        /// Banks in the Spec ID event.
        declared: usize,
    },
    /// A digest of an algorithm the header did not declare: its size is unknown, so nothing
    /// after it can be read.
    #[error(
        "event {number} (offset {offset:#x}): digest algorithm {alg} (at offset {at:#x}) is \
         not declared in the Spec ID event"
    )]
    UndeclaredAlgorithm {
        /// Event number.
        number: usize,
        /// Offset of the event.
        offset: u64,
        /// The algorithm.
        alg: AlgId,
        /// Offset of the algorithm field.
        at: u64,
    },
    /// Two digests of the same bank in one event.
    #[error("event {number} (offset {offset:#x}): two {alg} digests")]
    DuplicateDigest {
        /// Event number.
        number: usize,
        /// Offset of the event.
        offset: u64,
        /// The algorithm.
        alg: AlgId,
    },
    /// The Spec ID event is malformed.
    #[error("Spec ID event (header data at offset {offset:#x}): {reason}")]
    SpecId {
        /// Offset of the header's data.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The format was not given and the header does not say which it is.
    #[error(
        "the header event's index is {index}: neither a TPM log (0) nor a TDX CCEL (1); \
         say which format it is"
    )]
    UnknownHeaderIndex {
        /// The header's PCR index field.
        index: u32,
    },
    /// A CCEL was asked for but the log has no crypto-agile header.
    #[error("not a CCEL: the log has no crypto-agile (Spec ID Event03) header")]
    NotCryptoAgile,
}

/// Offset of the data in a legacy `TCG_PCR_EVENT` header: index, type, SHA-1, size.
const LEGACY_HEADER: usize = 4 + 4 + 20 + 4;

/// Parses a log, telling its format from its header: a `Spec ID Event03` header with index 0
/// is a TPM crypto-agile log, with index 1 a TDX CCEL (TDVF logs its header into MR index 1);
/// anything else is a SHA-1 log.
pub fn parse(bytes: &[u8]) -> Result<EventLog, ParseError> {
    parse_inner(bytes, None)
}

/// Parses a log of a known format (`--format`): a crypto-agile header makes it crypto-agile
/// whatever its index field; [`LogFormat::TcgSha1`] reads every event, the header too, as a
/// SHA-1 event.
pub fn parse_as(bytes: &[u8], format: LogFormat) -> Result<EventLog, ParseError> {
    parse_inner(bytes, Some(format))
}

fn parse_inner(bytes: &[u8], format: Option<LogFormat>) -> Result<EventLog, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut r = Reader { buf: bytes, pos: 0 };
    let first = read_legacy(&mut r, 0)?;
    let spec = if format != Some(LogFormat::TcgSha1)
        && first.event_type == EventType::EV_NO_ACTION
        && first.data.starts_with(SpecIdEvent::SIGNATURE)
    {
        Some(parse_spec_id(&first.data, LEGACY_HEADER as u64)?)
    } else {
        None
    };
    let Some(spec) = spec else {
        if format == Some(LogFormat::Ccel) {
            return Err(ParseError::NotCryptoAgile);
        }
        let mut log = EventLog {
            format: LogFormat::TcgSha1,
            spec_id: None,
            header: None,
            events: vec![first],
            offsets: vec![0],
            trailing_padding: 0,
        };
        // The first event is event 0 of a SHA-1 log, so the next one is numbered 1.
        read_events(&mut r, &mut log, 0, read_legacy)?;
        return Ok(log);
    };
    let format = match format {
        Some(f) => f,
        None => match first.pcr {
            0 => LogFormat::TcgCryptoAgile,
            1 => LogFormat::Ccel,
            index => return Err(ParseError::UnknownHeaderIndex { index }),
        },
    };
    let mut log = EventLog {
        format,
        spec_id: None,
        header: Some(first),
        events: Vec::new(),
        offsets: Vec::new(),
        trailing_padding: 0,
    };
    // The header is event 0 and not in `events`.
    read_events(&mut r, &mut log, 1, |r, number| read_agile(r, number, &spec))?;
    log.spec_id = Some(spec);
    Ok(log)
}

/// Reads events with `read` until the end of the log or of its content (zero padding, recorded
/// in `trailing_padding`); an event's number is its index in `log.events` plus `first_number`.
fn read_events(
    r: &mut Reader<'_>,
    log: &mut EventLog,
    first_number: usize,
    mut read: impl FnMut(&mut Reader<'_>, usize) -> Result<Event, ParseError>,
) -> Result<(), ParseError> {
    while !r.is_empty() {
        if r.rest_is_padding() {
            log.trailing_padding = r.left();
            break;
        }
        let offset = r.pos as u64;
        let number = log.events.len() + first_number;
        log.events.push(read(r, number)?);
        log.offsets.push(offset);
    }
    Ok(())
}

/// A `TCG_PCR_EVENT`: PCRIndex u32, EventType u32, Digest [u8; 20] (SHA-1), EventSize u32,
/// Event.
fn read_legacy(r: &mut Reader<'_>, number: usize) -> Result<Event, ParseError> {
    let offset = r.pos as u64;
    let ctx = Ctx { number, offset };
    let pcr = r.u32(ctx, "PCR index")?;
    let event_type = EventType(r.u32(ctx, "event type")?);
    let sha1 = r.bytes(ctx, "SHA-1 digest", 20)?.to_vec();
    let data = read_data(r, ctx)?;
    Ok(Event { pcr, event_type, digests: vec![Digest { alg: AlgId::SHA1, bytes: sha1 }], data })
}

/// A `TCG_PCR_EVENT2`: PCRIndex u32, EventType u32, Digests (TPML_DIGEST_VALUES: count u32,
/// then count × TPMT_HA {hashAlg u16, digest}), EventSize u32, Event.
fn read_agile(r: &mut Reader<'_>, number: usize, spec: &SpecIdEvent) -> Result<Event, ParseError> {
    let offset = r.pos as u64;
    let ctx = Ctx { number, offset };
    let pcr = r.u32(ctx, "PCR index")?;
    let event_type = EventType(r.u32(ctx, "event type")?);
    let count = r.u32(ctx, "digest count")?;
    if count as usize > spec.algorithms.len() {
        return Err(ParseError::DigestCount { number, offset, count, declared: spec.algorithms.len() });
    }
    let mut digests: Vec<Digest> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = r.pos as u64;
        let alg = AlgId(r.u16(ctx, "digest algorithm")?);
        let size = spec.digest_size(alg).ok_or(ParseError::UndeclaredAlgorithm { number, offset, alg, at })?;
        if digests.iter().any(|d| d.alg == alg) {
            return Err(ParseError::DuplicateDigest { number, offset, alg });
        }
        let bytes = r.bytes(ctx, "digest", size)?.to_vec();
        digests.push(Digest { alg, bytes });
    }
    let data = read_data(r, ctx)?;
    Ok(Event { pcr, event_type, digests, data })
}

fn read_data(r: &mut Reader<'_>, ctx: Ctx) -> Result<Vec<u8>, ParseError> {
    let size = r.u32(ctx, "event size")?;
    if u64::from(size) > r.left() {
        return Err(ParseError::EventTooLarge { number: ctx.number, offset: ctx.offset, size, left: r.left() });
    }
    Ok(r.bytes(ctx, "event data", size as usize)?.to_vec())
}

/// Parses `TCG_EfiSpecIDEvent` (layout on [`SpecIdEvent`]); `offset` is where `data` starts.
fn parse_spec_id(data: &[u8], offset: u64) -> Result<SpecIdEvent, ParseError> {
    let bad = |reason: String| ParseError::SpecId { offset, reason };
    // signature 16, platformClass 4, 4 version bytes, numberOfAlgorithms 4.
    if data.len() < 28 {
        return Err(bad(format!("{} bytes, shorter than its 28-byte fixed part", data.len())));
    }
    let u32_at = |o: usize| u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
    let platform_class = u32_at(16);
    let count = u32_at(24) as usize;
    if count == 0 {
        return Err(bad("it declares no algorithms".into()));
    }
    let list_end = 28usize.saturating_add(count.saturating_mul(4));
    if list_end >= data.len() {
        return Err(bad(format!("it declares {count} algorithms, more than its {} bytes can hold", data.len())));
    }
    let mut algorithms: Vec<AlgorithmSize> = Vec::with_capacity(count);
    for i in 0..count {
        let o = 28 + 4 * i;
        let alg = AlgId(u16::from_le_bytes([data[o], data[o + 1]]));
        let digest_size = u16::from_le_bytes([data[o + 2], data[o + 3]]);
        if algorithms.iter().any(|a| a.alg == alg) {
            return Err(bad(format!("{alg} is listed twice")));
        }
        match alg.registry_digest_size() {
            Some(want) if want != usize::from(digest_size) => {
                return Err(bad(format!("{alg} is declared with {digest_size}-byte digests, not {want}")));
            }
            None if digest_size == 0 || digest_size > 128 => {
                return Err(bad(format!("{alg} is declared with {digest_size}-byte digests")));
            }
            _ => {}
        }
        algorithms.push(AlgorithmSize { alg, digest_size });
    }
    let vendor_size = usize::from(data[list_end]);
    let vendor_start = list_end + 1;
    let vendor_end = vendor_start + vendor_size;
    if vendor_end > data.len() {
        return Err(bad(format!("vendorInfoSize {vendor_size} runs past the end of its {} bytes", data.len())));
    }
    if vendor_end != data.len() {
        return Err(bad(format!("{} unexpected bytes after vendorInfo", data.len() - vendor_end)));
    }
    Ok(SpecIdEvent {
        platform_class,
        spec_version_minor: data[20],
        spec_version_major: data[21],
        spec_errata: data[22],
        uintn_size: data[23],
        algorithms,
        vendor_info: data[vendor_start..vendor_end].to_vec(),
    })
}

/// Which event a read belongs to, for errors.
#[derive(Clone, Copy)]
struct Ctx {
    number: usize,
    offset: u64,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Whether everything left is one fill byte, 0x00 or 0xFF: the unused tail of a log area.
    fn rest_is_padding(&self) -> bool {
        let rest = &self.buf[self.pos..];
        rest.iter().all(|&b| b == 0xff) || rest.iter().all(|&b| b == 0)
    }

    fn bytes(&mut self, ctx: Ctx, field: &'static str, n: usize) -> Result<&'a [u8], ParseError> {
        if (n as u64) > self.left() {
            return Err(ParseError::Truncated {
                number: ctx.number,
                offset: ctx.offset,
                field,
                at: self.pos as u64,
                needed: n as u64,
                left: self.left(),
            });
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn u32(&mut self, ctx: Ctx, field: &'static str) -> Result<u32, ParseError> {
        let b = self.bytes(ctx, field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u16(&mut self, ctx: Ctx, field: &'static str) -> Result<u16, ParseError> {
        let b = self.bytes(ctx, field, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{write, HashAlg};

    /// A small crypto-agile log (sha256 + sha384): a separator in PCR 7 and an action in PCR 4.
    fn sample() -> Vec<u8> {
        let algs = [HashAlg::Sha256, HashAlg::Sha384];
        let events = vec![
            Event::hashing_data(7, EventType::EV_SEPARATOR, vec![0; 4], &algs),
            Event::hashing_data(
                4,
                EventType::EV_EFI_ACTION,
                b"Calling EFI Application from Boot Option".to_vec(),
                &algs,
            ),
        ];
        write(&EventLog::crypto_agile(&algs, events)).unwrap()
    }

    /// Offsets in `sample()`: header data is 29 + 2 × 4 = 37 bytes, so event 1 starts at
    /// 32 + 37 = 69; its digest count at 77, first TPMT_HA at 81, second at 81 + 2 + 32 = 115,
    /// event size at 115 + 2 + 48 = 165, event data at 169 (4 bytes), event 2 at 173.
    const EVENT1: usize = 69;
    const EVENT2: usize = 173;

    #[test]
    fn sample_layout() {
        let log = parse(&sample()).unwrap();
        assert_eq!(log.format, LogFormat::TcgCryptoAgile);
        assert_eq!(log.offsets, vec![EVENT1 as u64, EVENT2 as u64]);
        assert_eq!(log.events[0].event_type, EventType::EV_SEPARATOR);
    }

    #[test]
    fn truncated_anywhere_is_an_error_not_a_panic() {
        let b = sample();
        for len in 1..b.len() {
            let r = parse(&b[..len]);
            // A cut exactly between events is a shorter, valid log.
            if len == EVENT1 || len == EVENT2 {
                assert!(r.is_ok(), "cut at {len}: {r:?}");
            } else {
                assert!(r.is_err(), "cut at {len} parsed: {r:?}");
            }
        }
        assert_eq!(parse(&[]), Err(ParseError::Empty));
    }

    #[test]
    fn truncated_field_names_event_and_offsets() {
        let b = sample();
        assert_eq!(
            parse(&b[..EVENT2 + 6]),
            Err(ParseError::Truncated {
                number: 2,
                offset: EVENT2 as u64,
                field: "event type",
                at: EVENT2 as u64 + 4,
                needed: 4,
                left: 2,
            })
        );
    }

    #[test]
    fn oversized_event() {
        let mut b = sample();
        b[165..169].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert_eq!(
            parse(&b),
            Err(ParseError::EventTooLarge {
                number: 1,
                offset: EVENT1 as u64,
                size: 0xffff_fff0,
                left: (b.len() - 169) as u64,
            })
        );
    }

    #[test]
    fn digest_count_that_lies() {
        let mut b = sample();
        b[77..81].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(parse(&b), Err(ParseError::DigestCount { number: 1, offset: EVENT1 as u64, count: 3, declared: 2 }));
        b[77..81].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse(&b), Err(ParseError::DigestCount { count: u32::MAX, .. })));
    }

    #[test]
    fn undeclared_algorithm() {
        let mut b = sample();
        b[81..83].copy_from_slice(&AlgId::SHA1.0.to_le_bytes());
        assert_eq!(
            parse(&b),
            Err(ParseError::UndeclaredAlgorithm { number: 1, offset: EVENT1 as u64, alg: AlgId::SHA1, at: 81 })
        );
    }

    #[test]
    fn duplicate_digest() {
        let mut b = sample();
        // The second TPMT_HA (sha384, at 115) claims sha256: the parser must stop there.
        b[115..117].copy_from_slice(&AlgId::SHA256.0.to_le_bytes());
        assert_eq!(
            parse(&b),
            Err(ParseError::DuplicateDigest { number: 1, offset: EVENT1 as u64, alg: AlgId::SHA256 })
        );
    }

    #[test]
    fn bad_spec_id_events() {
        let b = sample();
        // Header data starts at 32: signature 16, class 4, versions 4, count at 56, algs at 60.
        let cases: [(&str, usize, &[u8], &str); 5] = [
            ("no algorithms", 56, &[0, 0, 0, 0], "it declares no algorithms"),
            ("too many algorithms", 56, &[9, 0, 0, 0], "it declares 9 algorithms, more than its 37 bytes can hold"),
            ("wrong sha256 size", 62, &[20, 0], "sha256 is declared with 20-byte digests, not 32"),
            ("listed twice", 64, &[0x0b, 0], "sha256 is listed twice"),
            ("vendor info overruns", 68, &[5], "vendorInfoSize 5 runs past the end of its 37 bytes"),
        ];
        for (what, at, bytes, reason) in cases {
            let mut b = b.clone();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            assert_eq!(parse(&b), Err(ParseError::SpecId { offset: 32, reason: reason.into() }), "{what}");
        }
    }

    #[test]
    fn unknown_algorithm_in_spec_id_is_parsed() {
        // An SM3 bank: parsed (its size is declared), replay later skips it.
        let spec = SpecIdEvent {
            algorithms: vec![
                AlgorithmSize { alg: AlgId::SHA256, digest_size: 32 },
                AlgorithmSize { alg: AlgId(0x7777), digest_size: 24 },
            ],
            ..SpecIdEvent::for_algs(&[])
        };
        let e = Event::with_digests(
            4,
            EventType::EV_SEPARATOR,
            vec![
                Digest { alg: AlgId::SHA256, bytes: HashAlg::Sha256.hash(&[0; 4]) },
                Digest { alg: AlgId(0x7777), bytes: vec![7; 24] },
            ],
            vec![0; 4],
        );
        let log = EventLog { spec_id: Some(spec), ..EventLog::crypto_agile(&[], vec![e]) };
        let parsed = parse(&write(&log).unwrap()).unwrap();
        assert_eq!(parsed.events, log.events);
        let r = crate::replay(&parsed).unwrap();
        assert_eq!(r.unsupported, vec![AlgId(0x7777)]);
        assert_eq!(
            r.value(HashAlg::Sha256, 4).unwrap(),
            HashAlg::Sha256.extend(&[0; 32], &HashAlg::Sha256.hash(&[0; 4]))
        );
    }

    #[test]
    fn padding_ends_the_log() {
        for fill in [0u8, 0xff] {
            let mut b = sample();
            b.extend_from_slice(&[fill; 100]);
            let log = parse(&b).unwrap();
            assert_eq!((log.events.len(), log.trailing_padding), (2, 100), "fill {fill:#x}");
        }
    }

    #[test]
    fn header_index_decides_the_format() {
        let mut b = sample();
        b[0] = 1;
        assert_eq!(parse(&b).unwrap().format, LogFormat::Ccel);
        assert_eq!(parse_as(&b, LogFormat::TcgCryptoAgile).unwrap().format, LogFormat::TcgCryptoAgile);
        b[0] = 5;
        assert_eq!(parse(&b), Err(ParseError::UnknownHeaderIndex { index: 5 }));
    }

    #[test]
    fn sha1_log() {
        // Without a Spec ID header every event is a TCG_PCR_EVENT.
        let e = Event::hashing_data(0, EventType::EV_S_CRTM_VERSION, vec![0; 2], &[HashAlg::Sha1]);
        let log = EventLog {
            format: LogFormat::TcgSha1,
            spec_id: None,
            header: None,
            events: vec![e.clone(), e],
            offsets: vec![],
            trailing_padding: 0,
        };
        let b = write(&log).unwrap();
        let parsed = parse(&b).unwrap();
        assert_eq!((parsed.format, parsed.events.len(), parsed.offsets.clone()), (LogFormat::TcgSha1, 2, vec![0, 34]));
        assert_eq!(parse_as(&b, LogFormat::Ccel), Err(ParseError::NotCryptoAgile));
    }
}
