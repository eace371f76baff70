//! The SEV hashes table: how QEMU binds the kernel, initrd and command line of a direct-boot
//! guest into the SEV/SNP launch measurement.
//!
//! With `-kernel`, QEMU writes a table of SHA-256 digests into the firmware page OVMF reserves
//! for it (the `SEV_HASH_TABLE_RV` footer entry, inside the `SNP_KERNEL_HASHES` metadata
//! section); that page is launched as a NORMAL page, so the digests become part of the launch
//! digest, and OVMF refuses to boot anything whose digest differs. Layout and GUIDs from QEMU
//! `target/i386/sev.c` (`SevHashTable`, `PaddedSevHashTable`, `sev_add_kernel_loader_hashes`)
//! and edk2 `OvmfPkg/AmdSev/BlobVerifierLibSevHashes`.

use std::io::{self, Read};

use digest_alg::{Digest, Sha256};

use crate::ovmf::Uuid;

/// `9438d606-4f22-4cc9-b479-a793d411fd21`: the table header.
pub const TABLE_GUID: Uuid =
    Uuid::from_fields(0x9438_d606, 0x4f22, 0x4cc9, &[0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21]);
/// `4de79437-abd2-427f-b835-d5b172d2045b`: the kernel entry.
pub const KERNEL_GUID: Uuid =
    Uuid::from_fields(0x4de7_9437, 0xabd2, 0x427f, &[0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b]);
/// `44baf731-3a2f-4bd7-9af1-41e29169781d`: the initrd entry.
pub const INITRD_GUID: Uuid =
    Uuid::from_fields(0x44ba_f731, 0x3a2f, 0x4bd7, &[0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d]);
/// `97d02dd8-bd20-4c94-aa78-e7714d36ab2a`: the command-line entry.
pub const CMDLINE_GUID: Uuid =
    Uuid::from_fields(0x97d0_2dd8, 0xbd20, 0x4c94, &[0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a]);

/// One `SevHashTableEntry`: GUID, `u16` length (50), SHA-256.
pub const ENTRY_LEN: usize = 16 + 2 + 32;
/// `SevHashTable`: GUID, `u16` length (168), then the cmdline, initrd and kernel entries.
pub const TABLE_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
/// `PaddedSevHashTable`: the table rounded up to 16 bytes with zeros.
pub const PADDED_TABLE_LEN: usize = TABLE_LEN.div_ceil(16) * 16;

const _: () = assert!(TABLE_LEN == 168 && PADDED_TABLE_LEN == 176);

/// The three SHA-256 digests QEMU puts in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelHashes {
    /// SHA-256 of the kernel file as given to `-kernel`.
    pub kernel: [u8; 32],
    /// SHA-256 of the initrd (of nothing when there is none).
    pub initrd: [u8; 32],
    /// SHA-256 of the command line followed by one NUL (just the NUL when there is none).
    pub cmdline: [u8; 32],
}

impl KernelHashes {
    /// Digests the kernel, optional initrd and optional command line as QEMU does.
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, cmdline: Option<&str>) -> Self {
        KernelHashes {
            kernel: Sha256::digest(kernel).into(),
            initrd: Sha256::digest(initrd.unwrap_or_default()).into(),
            cmdline: cmdline_digest(cmdline),
        }
    }

    /// The padded table, as QEMU writes it into guest memory.
    pub fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut t = [0u8; PADDED_TABLE_LEN];
        t[..16].copy_from_slice(&TABLE_GUID.to_bytes_le());
        t[16..18].copy_from_slice(&(TABLE_LEN as u16).to_le_bytes());
        for (i, (guid, hash)) in
            [(CMDLINE_GUID, &self.cmdline), (INITRD_GUID, &self.initrd), (KERNEL_GUID, &self.kernel)]
                .into_iter()
                .enumerate()
        {
            let at = 18 + i * ENTRY_LEN;
            t[at..at + 16].copy_from_slice(&guid.to_bytes_le());
            t[at + 16..at + 18].copy_from_slice(&(ENTRY_LEN as u16).to_le_bytes());
            t[at + 18..at + 50].copy_from_slice(hash);
        }
        t
    }
}

/// SHA-256 of the command line as QEMU hashes it: its bytes plus a terminating NUL. An absent
/// or empty command line hashes as a lone NUL.
pub fn cmdline_digest(cmdline: Option<&str>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(cmdline.unwrap_or_default().as_bytes());
    h.update([0u8]);
    h.finalize().into()
}

/// SHA-256 of everything `r` yields, for kernels and initrds too big to hold twice.
pub fn sha256_reader(mut r: impl Read) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(h.finalize().into()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout() {
        let h = KernelHashes::new(b"", None, None);
        let t = h.table();
        assert_eq!(TABLE_GUID.to_string(), "9438d606-4f22-4cc9-b479-a793d411fd21");
        assert_eq!(&t[16..18], &[168, 0]);
        assert_eq!(&t[18..34], &CMDLINE_GUID.to_bytes_le());
        assert_eq!(&t[34..36], &[50, 0]);
        // SHA-256 of a single NUL byte.
        assert_eq!(hex::encode(&t[36..68]), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        assert_eq!(&t[68..84], &INITRD_GUID.to_bytes_le());
        assert_eq!(&t[118..134], &KERNEL_GUID.to_bytes_le());
        assert_eq!(&t[168..], &[0; 8]);
        assert_eq!(cmdline_digest(Some("")), cmdline_digest(None));
        assert_eq!(sha256_reader(&b"abc"[..]).unwrap(), <[u8; 32]>::from(Sha256::digest(b"abc")));
    }
}
