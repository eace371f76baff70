//! The dm-verity superblock (`struct verity_sb`, cryptsetup `lib/verity/verity.c`).
//!
//! 512 bytes, little-endian, at the start of the hash area:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0   | 8   | signature `"verity\0\0"` |
//! | 8   | 4   | version (1) |
//! | 12  | 4   | hash type (0 Chrome OS, 1 normal) |
//! | 16  | 16  | UUID |
//! | 32  | 32  | hash algorithm name, NUL-padded |
//! | 64  | 4   | data block size |
//! | 68  | 4   | hash block size |
//! | 72  | 8   | data blocks |
//! | 80  | 2   | salt size |
//! | 82  | 6   | padding |
//! | 88  | 256 | salt, zero-padded |
//! | 344 | 168 | padding |

use crate::{Error, HashType, Params};

/// Size of the on-disk superblock.
pub const SUPERBLOCK_SIZE: usize = 512;
const SIGNATURE: &[u8; 8] = b"verity\0\0";
const VERSION: u32 = 1;

/// A parsed superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub hash_type: HashType,
    pub uuid: [u8; 16],
    /// The algorithm name as stored (veritysetup keeps the case it was given).
    pub algorithm: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub salt: Vec<u8>,
}

impl Superblock {
    /// Serialises to the 512 on-disk bytes.
    pub fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        b[0..8].copy_from_slice(SIGNATURE);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.hash_type.number().to_le_bytes());
        b[16..32].copy_from_slice(&self.uuid);
        let name = self.algorithm.as_bytes();
        b[32..32 + name.len().min(31)].copy_from_slice(&name[..name.len().min(31)]);
        b[64..68].copy_from_slice(&self.data_block_size.to_le_bytes());
        b[68..72].copy_from_slice(&self.hash_block_size.to_le_bytes());
        b[72..80].copy_from_slice(&self.data_blocks.to_le_bytes());
        b[80..82].copy_from_slice(&(self.salt.len() as u16).to_le_bytes());
        b[88..88 + self.salt.len()].copy_from_slice(&self.salt);
        b
    }

    /// Parses and checks a superblock read from byte `offset` of the hash device.
    pub fn parse(bytes: &[u8], offset: u64) -> Result<Self, Error> {
        let bad = |reason: String| Error::BadSuperblock { offset, reason };
        if bytes.len() < SUPERBLOCK_SIZE {
            return Err(bad(format!("only {} bytes, a superblock is {SUPERBLOCK_SIZE}", bytes.len())));
        }
        if &bytes[0..8] != SIGNATURE {
            return Err(bad(format!(
                "magic is {:?}, expected \"verity\\0\\0\"",
                String::from_utf8_lossy(&bytes[0..8])
            )));
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!("version {version} is not supported (only 1)")));
        }
        let hash_type = HashType::from_number(u32_at(12))
            .ok_or_else(|| bad(format!("hash type {} is neither 0 nor 1", u32_at(12))))?;
        let name = &bytes[32..64];
        let len =
            name.iter().position(|&c| c == 0).ok_or_else(|| bad("hash algorithm name is not NUL-terminated".into()))?;
        let algorithm =
            std::str::from_utf8(&name[..len]).map_err(|_| bad("hash algorithm name is not ASCII".into()))?.to_owned();
        let salt_size = u16::from_le_bytes([bytes[80], bytes[81]]) as usize;
        if salt_size > 256 {
            return Err(bad(format!("salt size {salt_size} exceeds 256")));
        }
        let sb = Self {
            hash_type,
            uuid: bytes[16..32].try_into().expect("16 bytes"),
            algorithm,
            data_block_size: u32_at(64),
            hash_block_size: u32_at(68),
            data_blocks: u64::from_le_bytes(bytes[72..80].try_into().expect("8 bytes")),
            salt: bytes[88..88 + salt_size].to_vec(),
        };
        // Reject what could not have been formatted: unknown hash, bad sizes, no data.
        sb.params(0).map_err(|e| bad(e.to_string()))?;
        Ok(sb)
    }

    /// The tree parameters this superblock describes, for a hash area at `hash_offset`.
    pub fn params(&self, hash_offset: u64) -> Result<Params, Error> {
        let p = Params {
            hash: crate::hash::parse_algorithm(&self.algorithm)?,
            hash_type: self.hash_type,
            data_block_size: self.data_block_size,
            hash_block_size: self.hash_block_size,
            data_blocks: self.data_blocks,
            salt: self.salt.clone(),
            hash_offset,
            superblock_uuid: Some(self.uuid),
        };
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        Superblock {
            hash_type: HashType::Normal,
            uuid: [7; 16],
            algorithm: "sha256".into(),
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 10,
            salt: vec![0xab; 32],
        }
    }

    #[test]
    fn round_trip() {
        let sb = sample();
        assert_eq!(Superblock::parse(&sb.to_bytes(), 0).unwrap(), sb);
    }

    #[test]
    fn each_corruption_has_its_reason() {
        // (byte offset to change, new value, words the error must contain)
        let cases: &[(usize, u8, &str)] = &[
            (0, b'X', "magic"),
            (8, 2, "version 2"),
            (12, 5, "hash type 5"),
            (32, b'm', "unknown hash algorithm"),
            (65, 0x11, "data block size"),
            (69, 0x11, "hash block size"),
            (81, 0x02, "salt size 544"),
        ];
        for &(at, value, words) in cases {
            let mut b = sample().to_bytes();
            b[at] = value;
            let err = Superblock::parse(&b, 4096).unwrap_err().to_string();
            assert!(err.contains(words) && err.contains("byte 4096"), "byte {at} = {value:#x}: {err}");
        }
        let mut b = sample().to_bytes();
        b[72..80].fill(0);
        assert!(Superblock::parse(&b, 0).unwrap_err().to_string().contains("at least one data block"));
        assert!(Superblock::parse(&b[..100], 0).unwrap_err().to_string().contains("only 100 bytes"));
    }
}
