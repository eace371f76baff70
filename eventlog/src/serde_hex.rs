//! The workspace's serde helpers for hex in `--json` output, in one place: addresses, sizes and
//! bit fields of firmware structures (event data, SNP reports, TDX quotes, firmware metadata) as
//! `0x`-prefixed lowercase hex, and lists or optional byte arrays as lowercase hex. A plain byte
//! string uses the `hex` crate's serde support (`serialize_with = "hex::serde::serialize"`).

use serde::Serializer;

/// A number as `0x`-prefixed lowercase hex.
pub fn u64<S: Serializer, N: Copy + Into<u64>>(n: &N, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{:#x}", (*n).into()))
}

/// `[[u8; N]; M]` as a list of lowercase hex strings.
pub fn list<S: Serializer, const N: usize, const M: usize>(values: &[[u8; N]; M], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(values.iter().map(hex::encode))
}

/// An optional byte array as lowercase hex, or `null`.
pub fn option<S: Serializer, const N: usize>(value: &Option<[u8; N]>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.serialize_str(&hex::encode(v)),
        None => s.serialize_none(),
    }
}
