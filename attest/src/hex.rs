//! Byte strings that travel as lowercase hex, the only form the bundle accepts.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes serialised as lowercase hex. Deserialisation refuses upper case, odd lengths and
/// non-hex characters, so that one value has exactly one spelling.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hex(pub Vec<u8>);

impl Hex {
    /// Parses lowercase hex.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("{s:?} is not lowercase hex"));
        }
        ::hex::decode(s).map(Hex).map_err(|e| format!("{s:?} is not hex ({e})"))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&[u8]> for Hex {
    fn from(b: &[u8]) -> Self {
        Hex(b.to_vec())
    }
}

impl<const N: usize> From<[u8; N]> for Hex {
    fn from(b: [u8; N]) -> Self {
        Hex(b.to_vec())
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&::hex::encode(&self.0))
    }
}

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hex({self})")
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hex::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_value() {
        for (text, ok) in [("00ff", true), ("", true), ("00FF", false), ("0", false), ("zz", false)] {
            assert_eq!(Hex::parse(text).is_ok(), ok, "{text:?}");
        }
        assert_eq!(Hex(vec![0xab, 0x01]).to_string(), "ab01");
        let v: Hex = serde_json::from_str("\"ab01\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"ab01\"");
        assert!(serde_json::from_str::<Hex>("\"AB01\"").is_err());
    }
}
