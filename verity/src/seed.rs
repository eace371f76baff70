//! Deterministic salt and UUID for reproducible images.
//!
//! veritysetup draws the salt and the superblock UUID from `/dev/urandom`, so two builds of the
//! same root never agree. nodeimg never picks random values: unless the caller gives them, both
//! are derived from a seed string (`--seed`, default empty) with SHA-256 and a domain label:
//!
//! ```text
//! salt = SHA-256("nodeimg/verity/salt/v1\0" ‖ seed)            (32 bytes, veritysetup's default size)
//! uuid = SHA-256("nodeimg/verity/uuid/v1\0" ‖ seed)[0..16]      with the RFC 9562 version 8
//!                                                                and variant bits set
//! ```
//!
//! Release builds should pass a seed unique to the image (the builder uses the image name and
//! version) so that different images do not share a salt.

use digest_alg::{Digest, Sha256};

/// The salt length veritysetup uses when it picks one.
pub const DEFAULT_SALT_SIZE: usize = 32;

/// The salt nodeimg uses for `seed` when none is given.
pub fn salt_from_seed(seed: &str) -> [u8; DEFAULT_SALT_SIZE] {
    labelled(b"nodeimg/verity/salt/v1\0", seed)
}

/// The superblock UUID nodeimg uses for `seed` when none is given (an RFC 9562 version 8 UUID).
pub fn uuid_from_seed(seed: &str) -> [u8; 16] {
    let h = labelled(b"nodeimg/verity/uuid/v1\0", seed);
    let mut u = [0u8; 16];
    u.copy_from_slice(&h[..16]);
    u[6] = (u[6] & 0x0f) | 0x80; // version 8: custom
    u[8] = (u[8] & 0x3f) | 0x80; // variant 10xx: RFC 9562
    u
}

fn labelled(label: &[u8], seed: &str) -> [u8; 32] {
    Sha256::new_with_prefix(label).chain_update(seed.as_bytes()).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_deterministic_and_distinct() {
        assert_eq!(salt_from_seed("a"), salt_from_seed("a"));
        assert_ne!(salt_from_seed("a"), salt_from_seed("b"));
        assert_ne!(&salt_from_seed("a")[..16], &uuid_from_seed("a")[..]);
        let u = uuid_from_seed("");
        assert_eq!(u[6] >> 4, 8, "version nibble");
        assert_eq!(u[8] >> 6, 0b10, "variant bits");
    }
}
