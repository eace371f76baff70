//! The verification time: the instant at which certificates, CRLs and collateral must be valid.
//!
//! Verifying recorded evidence today would fail once its certificates expire (a VLEK lives a
//! year, Intel's TCB collateral about 30 days), so every check that looks at a validity period
//! takes the time as an argument instead of reading the clock: the CLI passes "now" by default
//! and `--at` for recorded cases, and tests stay reproducible.

/// Seconds since the Unix epoch, UTC.
pub type UnixTime = u64;

/// Parses an RFC 3339 time in UTC with seconds, `2025-01-31T12:00:00Z` (the form X.509 validity
/// periods and Intel's collateral use); fractions and offsets other than `Z` are refused.
pub fn parse_rfc3339(s: &str) -> Result<UnixTime, String> {
    let bad = || format!("{:?} is not an RFC 3339 UTC time such as 2025-01-31T12:00:00Z", s.escape_debug().to_string());
    let dt: x509_cert::der::DateTime = s.parse().map_err(|_| bad())?;
    Ok(dt.unix_duration().as_secs())
}

/// Formats `t` as RFC 3339 UTC (`2025-01-31T12:00:00Z`).
pub fn format_rfc3339(t: UnixTime) -> String {
    match x509_cert::der::DateTime::from_unix_duration(std::time::Duration::from_secs(t)) {
        Ok(dt) => dt.to_string(),
        Err(_) => format!("{t} s after the Unix epoch"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        // 2025-01-31T12:00:00Z = 1738324800 (date -u -d 2025-01-31T12:00:00Z +%s).
        assert_eq!(parse_rfc3339("2025-01-31T12:00:00Z"), Ok(1738324800));
        assert_eq!(format_rfc3339(1738324800), "2025-01-31T12:00:00Z");
        for bad in ["2025-01-31", "2025-01-31T12:00:00+01:00", "2025-13-01T00:00:00Z", "x"] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
