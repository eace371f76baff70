//! The launch digest as the AMD Secure Processor accumulates it, one page at a time.
//!
//! Every `SNP_LAUNCH_UPDATE` page extends the guest context's launch digest:
//! `LD' = SHA-384(PAGE_INFO)`, where `PAGE_INFO` holds the current digest, a digest of the
//! page's contents, the page type and its guest-physical address (SEV Secure Nested Paging
//! Firmware ABI Specification, §8.17 SNP_LAUNCH_UPDATE, "Layout of the PAGE_INFO structure").

use digest_alg::{Digest, HashAlg, Sha384};
use serde::Serialize;

/// Size of a launch digest (SHA-384).
pub const DIGEST_LEN: usize = 48;
/// An SEV-SNP page.
pub const PAGE_SIZE: usize = 4096;

/// `PAGE_TYPE` of an SNP_LAUNCH_UPDATE (SNP ABI spec, §8.17, "Encodings for the PAGE_TYPE
/// Field").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PageType {
    /// 0x1: a page of guest data, measured by the SHA-384 of its contents.
    Normal = 1,
    /// 0x2: a vCPU's initial register state (VMSA), measured by its SHA-384.
    Vmsa = 2,
    /// 0x3: a page the PSP zeroes; contents digest zero.
    Zero = 3,
    /// 0x4: a page whose contents are not measured; contents digest zero.
    Unmeasured = 4,
    /// 0x5: the secrets page, filled by the PSP; contents digest zero.
    Secrets = 5,
    /// 0x6: the CPUID page, checked by the PSP; contents digest zero.
    Cpuid = 6,
}

/// `PAGE_INFO`: what the PSP hashes for each launched page (SNP ABI spec, §8.17.2,
/// "Layout of the PAGE_INFO structure", 0x70 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// 0x00 DIGEST_CUR: the launch digest before this page.
    pub digest_cur: [u8; DIGEST_LEN],
    /// 0x30 CONTENTS: SHA-384 of the page for NORMAL and VMSA pages, zero otherwise.
    pub contents: [u8; DIGEST_LEN],
    /// 0x60 LENGTH: the size of this structure, 0x70.
    pub length: u16,
    /// 0x62 PAGE_TYPE.
    pub page_type: u8,
    /// 0x63 IMI_PAGE: bit 0 set for pages of an incoming migration image; 0 at launch.
    pub imi_page: u8,
    /// 0x64 VMPL3_PERMS: permissions granted to VMPL3 (0 at launch).
    pub vmpl3_perms: u8,
    /// 0x65 VMPL2_PERMS.
    pub vmpl2_perms: u8,
    /// 0x66 VMPL1_PERMS.
    pub vmpl1_perms: u8,
    /// 0x67 reserved, zero.
    pub reserved_0x67: u8,
    /// 0x68 GPA: the page's guest-physical address.
    pub gpa: u64,
}

impl PageInfo {
    /// Size of the serialized structure.
    pub const LEN: usize = 0x70;

    /// The bytes the PSP hashes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0x00..0x30].copy_from_slice(&self.digest_cur);
        b[0x30..0x60].copy_from_slice(&self.contents);
        b[0x60..0x62].copy_from_slice(&self.length.to_le_bytes());
        b[0x62] = self.page_type;
        b[0x63] = self.imi_page;
        b[0x64] = self.vmpl3_perms;
        b[0x65] = self.vmpl2_perms;
        b[0x66] = self.vmpl1_perms;
        b[0x67] = self.reserved_0x67;
        b[0x68..0x70].copy_from_slice(&self.gpa.to_le_bytes());
        b
    }
}

// digest_cur + contents + length + six one-byte fields + gpa.
const _: () = assert!(PageInfo::LEN == DIGEST_LEN + DIGEST_LEN + 2 + 6 + 8);

/// The GPA measured for VMSA pages: KVM hands the PSP an all-ones GPA for them, recorded as the
/// page-aligned 0xFFFF_FFFF_F000 (the value sev-snp-measure and virtee/sev use).
pub const VMSA_GPA: u64 = 0x0000_FFFF_FFFF_F000;

/// The guest context's running launch digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestContext {
    ld: [u8; DIGEST_LEN],
}

impl Default for GuestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestContext {
    /// A fresh context: the PSP starts from an all-zero digest.
    pub fn new() -> Self {
        GuestContext { ld: [0; DIGEST_LEN] }
    }

    /// A context that continues from a digest computed elsewhere (`--snp-ovmf-hash`).
    pub fn from_digest(ld: [u8; DIGEST_LEN]) -> Self {
        GuestContext { ld }
    }

    /// The launch digest so far.
    pub fn digest(&self) -> [u8; DIGEST_LEN] {
        self.ld
    }

    /// Extends the digest with one page.
    pub fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; DIGEST_LEN]) {
        let info = PageInfo {
            digest_cur: self.ld,
            contents: *contents,
            length: PageInfo::LEN as u16,
            page_type: page_type as u8,
            imi_page: 0,
            vmpl3_perms: 0,
            vmpl2_perms: 0,
            vmpl1_perms: 0,
            reserved_0x67: 0,
            gpa,
        };
        self.ld = Sha384::digest(info.to_bytes()).into();
    }

    /// Extends the digest with `data.len() / 4096` NORMAL pages from `gpa`, given the SHA-384
    /// of each page (computed in parallel by the caller).
    pub fn update_normal_digests(&mut self, gpa: u64, digests: &[[u8; DIGEST_LEN]]) {
        for (i, d) in digests.iter().enumerate() {
            self.update(PageType::Normal, gpa + (i * PAGE_SIZE) as u64, d);
        }
    }

    /// Extends the digest with `pages` pages of a type whose contents are not hashed.
    pub fn update_empty(&mut self, page_type: PageType, gpa: u64, pages: u64) {
        for i in 0..pages {
            self.update(page_type, gpa + i * PAGE_SIZE as u64, &[0; DIGEST_LEN]);
        }
    }
}

/// SHA-384 of every 4 KiB page of `data` (whose length is a multiple of 4 KiB), using all
/// cores: the chain itself is sequential, the page digests are not.
///
/// Most of a firmware volume is padding: in Debian's 4 MiB OVMF.fd 626 of 1024 pages are one
/// byte repeated (0xff free space, zeroed variable store). Such a page's digest depends only on
/// that byte, so it is hashed once per byte value and reused — an exact comparison of the
/// bytes, not a guess from a cheaper hash.
pub fn page_digests(data: &[u8]) -> Vec<[u8; DIGEST_LEN]> {
    use rayon::prelude::*;
    let mut out = vec![[0u8; DIGEST_LEN]; data.len().div_ceil(PAGE_SIZE)];
    let mut filled: [Option<[u8; DIGEST_LEN]>; 256] = [None; 256];
    let mut rest = Vec::with_capacity(out.len());
    for (i, page) in data.chunks(PAGE_SIZE).enumerate() {
        match fill_byte(page).filter(|_| page.len() == PAGE_SIZE) {
            Some(byte) => out[i] = *filled[usize::from(byte)].get_or_insert_with(|| Sha384::digest(page).into()),
            None => rest.push((i, page)),
        }
    }
    // The others several at a time in vector lanes (`HashAlg::hash_many`), groups spread over
    // the cores.
    let digests: Vec<[u8; DIGEST_LEN]> = rest
        .par_chunks(64)
        .flat_map_iter(|group| {
            let pages: Vec<[&[u8]; 1]> = group.iter().map(|(_, p)| [*p]).collect();
            let jobs: Vec<(HashAlg, &[&[u8]])> = pages.iter().map(|p| (HashAlg::Sha384, &p[..])).collect();
            HashAlg::hash_many(&jobs).into_iter().map(|d| d.try_into().expect("48 bytes"))
        })
        .collect();
    for ((i, _), d) in rest.iter().zip(digests) {
        out[*i] = d;
    }
    out
}

/// The byte `page` consists of, if it is one byte repeated (every byte equals its successor:
/// one `memcmp`).
fn fill_byte(page: &[u8]) -> Option<u8> {
    let first = *page.first()?;
    (page[1..] == page[..page.len() - 1]).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_pages_get_the_digest_of_their_bytes() {
        // Pages of 0xff, of zeros, mixed, and a fill page that differs in its last byte.
        let mut data = vec![0xffu8; 6 * PAGE_SIZE];
        data[PAGE_SIZE..2 * PAGE_SIZE].fill(0);
        data[2 * PAGE_SIZE + 17] = 1;
        data[4 * PAGE_SIZE - 1] = 0xfe;
        let plain: Vec<[u8; DIGEST_LEN]> = data.chunks(PAGE_SIZE).map(|p| Sha384::digest(p).into()).collect();
        assert_eq!(page_digests(&data), plain);
        assert_eq!(fill_byte(&data[..PAGE_SIZE]), Some(0xff));
        assert_eq!(fill_byte(&data[3 * PAGE_SIZE..4 * PAGE_SIZE]), None);
    }

    #[test]
    fn page_info_layout() {
        let info = PageInfo {
            digest_cur: [0x11; 48],
            contents: [0x22; 48],
            length: 0x70,
            page_type: 2,
            imi_page: 0,
            vmpl3_perms: 3,
            vmpl2_perms: 4,
            vmpl1_perms: 5,
            reserved_0x67: 0,
            gpa: 0x0123_4567_89ab_c000,
        };
        let b = info.to_bytes();
        assert_eq!(&b[0x5f..0x70], &[0x22, 0x70, 0, 2, 0, 3, 4, 5, 0, 0, 0xc0, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]);
    }
}
