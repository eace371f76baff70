//! Known answers for the evidence parsers: public SEV-SNP reports and TDX quotes, each with the
//! values its source states for it (`testdata/expected.json`; provenance in
//! `testdata/README.md`). Every stated value must appear, unchanged, in what the parser
//! reports; the files must be the ones `SHA256SUMS` records.

use std::path::{Path, PathBuf};

use attest::evidence::{snp_report, tdx_quote};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Asserts that every key of `expected` is in `actual` with the same value (recursively for
/// objects; lists and scalars compare whole). `at` names the position for the message.
fn assert_subset(expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let got = a.get(k).unwrap_or_else(|| panic!("{at}/{k}: not in the parser's output"));
                assert_subset(v, got, &format!("{at}/{k}"));
            }
        }
        _ => assert_eq!(actual, expected, "{at}"),
    }
}

#[test]
fn published_reports_and_quotes_parse_to_their_stated_values() {
    let expected: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.len(), 9);
    for (file, case) in &expected {
        let bytes = std::fs::read(dir().join(file)).unwrap();
        let parsed = if file.starts_with("snp-report") {
            serde_json::to_value(snp_report::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"))).unwrap()
        } else {
            serde_json::to_value(tdx_quote::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"))).unwrap()
        };
        assert_subset(&case["expect"], &parsed, file);
    }
}

#[test]
fn fixtures_are_the_published_bytes() {
    let sums = std::fs::read_to_string(dir().join("SHA256SUMS")).unwrap();
    let mut n = 0;
    for line in sums.lines() {
        let (hash, file) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(dir().join(file)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), hash, "{file}");
        n += 1;
    }
    assert_eq!(n, 26);
}
