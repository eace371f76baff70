//! Arbitrary bytes as a measured-boot event log: parsing (every format), replay, decoding, diff
//! and writing must never panic, and whatever parses must write back to the same bytes.
#![no_main]

use eventlog::{self, LogFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = [
        eventlog::parse(data),
        eventlog::parse_as(data, LogFormat::TcgCryptoAgile),
        eventlog::parse_as(data, LogFormat::TcgSha1),
        eventlog::parse_as(data, LogFormat::Ccel),
    ];
    for log in parsed.into_iter().flatten() {
        let _ = eventlog::replay(&log);
        for e in &log.events {
            let _ = e.decode().to_string();
            let _ = e.is_section_name_event();
        }
        let d = eventlog::diff(&log, &log).expect("a log compares with itself");
        assert!(d.is_empty(), "a log differs from itself: {d:?}");
        let written = eventlog::write(&log).expect("a parsed log writes");
        let end = data.len() - log.trailing_padding as usize;
        assert_eq!(written, &data[..end], "round trip");
    }
});
