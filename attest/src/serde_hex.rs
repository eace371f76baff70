//! Serde helpers for `--json` output: integers that are bit fields or addresses as `0x…` hex.
//! (Byte strings use the `hex` crate's serde support.)

use serde::Serializer;

/// A number as `0x`-prefixed lowercase hex.
pub(crate) fn u64<S: Serializer, N: Copy + Into<u64>>(n: &N, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{:#x}", (*n).into()))
}
