//! Serde helpers: digests as lowercase hex, addresses as `0x…` hex, for `--json` output.

use serde::Serializer;

/// Bytes as lowercase hex.
pub(crate) fn bytes<S: Serializer, B: AsRef<[u8]>>(b: &B, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

/// An address or size as `0x`-prefixed lowercase hex.
pub(crate) fn u64<S: Serializer, N: Copy + Into<u64>>(n: &N, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{:#x}", (*n).into()))
}
