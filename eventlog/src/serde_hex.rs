//! The workspace's one serde helper for numbers printed as hex: addresses, sizes and bit fields
//! of firmware structures (event data, SNP reports, TDX quotes, firmware metadata) appear in
//! `--json` output as `0x`-prefixed lowercase hex. Byte strings use the `hex` crate's serde
//! support (`#[serde(serialize_with = "hex::serde::serialize")]`).

use serde::Serializer;

/// A number as `0x`-prefixed lowercase hex.
pub fn u64<S: Serializer, N: Copy + Into<u64>>(n: &N, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{:#x}", (*n).into()))
}
