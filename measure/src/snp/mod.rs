//! AMD SEV-SNP launch digests, computed from the firmware image and the VM's shape.
//!
//! When an SEV-SNP guest is launched, the AMD Secure Processor (PSP) hashes every page the VMM
//! hands it — the firmware, the pre-validated memory OVMF asks for, the secrets and CPUID pages,
//! and one VMSA (initial register state) per vCPU — into a SHA-384 chain, the *launch digest*.
//! It appears as `MEASUREMENT` in every attestation report the guest ever gets, before any vTPM
//! exists, so a verifier can only admit a node if it knows the value in advance. This module
//! computes it, page for page as the PSP does (SEV-SNP Firmware ABI Specification, §8.17
//! SNP_LAUNCH_UPDATE), for the three VMMs whose launch sequences differ: QEMU/KVM, AWS EC2 and
//! Google GCE.
//!
//! The value depends on more than the firmware file, and the rest must be supplied by whoever
//! publishes reference values:
//! - the number of vCPUs (one VMSA page each) and, on QEMU, the vCPU's CPUID signature (in RDX);
//! - the guest features (`SEV_FEATURES` in each VMSA: bit 0 SNPActive, bit 5 DebugSwap, …;
//!   0x1 is SNP alone, 0x21 adds DebugSwap);
//! - for measured direct boot, the kernel, initrd and command line, whose SHA-256 digests QEMU
//!   writes into a page of the firmware ([`hashes`]).
//!
//! The reference implementation of these rules is virtee's sev-snp-measure; the test suite
//! compares this module against it on Debian's OVMF builds and on upstream's fixture, and the
//! CLI mirrors its flags.

pub mod cpu;
pub mod gctx;
pub mod hashes;
pub mod metadata;
pub mod vmsa;

use serde::Serialize;

pub use cpu::{cpu_sig, vcpu_type_sig, VCPU_TYPES};
pub use gctx::{GuestContext, PageType, DIGEST_LEN, PAGE_SIZE, VMSA_GPA};
pub use hashes::KernelHashes;
pub use metadata::{MetadataError, Section, SectionType, SevMetadata};
pub use vmsa::{SaveArea, Vmm, BSP_RESET_EIP};

use crate::ovmf::{guid_name, FooterTable, TableError, SEV_ES_RESET_BLOCK_GUID, SEV_HASH_TABLE_RV_GUID};

/// The firmware is mapped so that it ends at 4 GiB.
pub const FOUR_GIB: u64 = 1 << 32;

/// Why a launch digest cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnpError {
    /// The OVMF footer table is missing or malformed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The SEV metadata is missing or malformed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The image cannot be mapped below 4 GiB in whole pages.
    #[error("firmware is {len} bytes; an SEV-SNP firmware image must be a non-zero multiple of 4 KiB, at most 4 GiB")]
    FirmwareSize {
        /// Length of the image.
        len: usize,
    },
    /// No vCPUs.
    #[error("a guest needs at least one vCPU (got 0)")]
    ZeroVcpus,
    /// QEMU's VMSAs carry the vCPU signature, and none was given.
    #[error("the QEMU VMSA needs the vCPU signature: give a vCPU type, signature or family/model/stepping")]
    MissingVcpuSig,
    /// The footer table has no SEV-ES reset block, so the APs' start address is unknown.
    #[error("the OVMF footer table has no SEV_ES_RESET_BLOCK ({SEV_ES_RESET_BLOCK_GUID}) entry: not an SEV-ES/SNP-capable OVMF")]
    NoResetBlock,
    /// The AP reset address is zero, so only one vCPU can start.
    #[error("the firmware's SEV-ES AP reset address is 0, so it cannot start {vcpus} vCPUs")]
    NoApResetEip {
        /// The number of vCPUs asked for.
        vcpus: u32,
    },
    /// A metadata section is not page-aligned.
    #[error(
        "SEV metadata section {index} ({}, descriptor at offset {offset:#x}): GPA {gpa:#x} size {size:#x} is not 4 KiB-aligned",
        section_type.name()
    )]
    SectionMisaligned {
        /// Index of the section.
        index: usize,
        /// Its type.
        section_type: SectionType,
        /// File offset of its descriptor.
        offset: usize,
        /// Its GPA.
        gpa: u32,
        /// Its size.
        size: u32,
    },
    /// A section of a type this crate does not know: its pages would be launched, but how is
    /// unknown.
    #[error(
        "SEV metadata section {index} (descriptor at offset {offset:#x}, GPA {gpa:#x}) has unknown type {raw:#x}; \
         its pages must be measured and this tool does not know how"
    )]
    UnknownSection {
        /// Index of the section.
        index: usize,
        /// File offset of its descriptor.
        offset: usize,
        /// Its GPA.
        gpa: u32,
        /// The raw type.
        raw: u32,
    },
    /// A kernel was given but the firmware has no page for its hashes.
    #[error("a kernel was given but the firmware's SEV metadata has no SNP_KERNEL_HASHES section (measured direct boot needs an AmdSev OVMF build)")]
    NoKernelHashesSection,
    /// A kernel was given but the footer table does not say where the hashes table goes.
    #[error(
        "a kernel was given but the OVMF footer table has no SEV_HASH_TABLE_RV ({SEV_HASH_TABLE_RV_GUID}) address"
    )]
    NoHashTableAddress,
    /// The kernel-hashes section is not exactly one page.
    #[error("the SNP_KERNEL_HASHES section is {size:#x} bytes; a hashes table is launched as exactly one 4 KiB page")]
    HashesSectionSize {
        /// Its size.
        size: u32,
    },
    /// The hashes table would cross the end of its page.
    #[error("the SEV hashes table at GPA {gpa:#x} does not fit in its page (176 bytes from page offset {:#x})", gpa & 0xfff)]
    HashesTableOverflow {
        /// The table's GPA.
        gpa: u32,
    },
}

/// The parts of an OVMF image an SEV-SNP launch needs.
#[derive(Debug, Clone)]
pub struct SnpFirmware<'a> {
    image: &'a [u8],
    /// The footer table.
    pub table: FooterTable,
    /// The SEV metadata.
    pub metadata: SevMetadata,
    /// The SEV-ES AP reset address (`SEV_ES_RESET_BLOCK`).
    pub ap_reset_eip: u32,
    /// Where QEMU puts the kernel hashes table (`SEV_HASH_TABLE_RV`), if the firmware has one.
    pub hashes_table_gpa: Option<u32>,
}

impl<'a> SnpFirmware<'a> {
    /// Parses the footer table and SEV metadata of `image`.
    pub fn parse(image: &'a [u8]) -> Result<Self, SnpError> {
        if image.is_empty() || !image.len().is_multiple_of(PAGE_SIZE) || image.len() as u64 > FOUR_GIB {
            return Err(SnpError::FirmwareSize { len: image.len() });
        }
        let table = FooterTable::parse(image)?;
        let metadata = SevMetadata::parse(image, &table)?;
        let ap_reset_eip =
            table.get(&SEV_ES_RESET_BLOCK_GUID).and_then(|e| e.u32_at(0)).ok_or(SnpError::NoResetBlock)?;
        let hashes_table_gpa = table.get(&SEV_HASH_TABLE_RV_GUID).and_then(|e| e.u32_at(0)).filter(|&g| g != 0);
        Ok(SnpFirmware { image, table, metadata, ap_reset_eip, hashes_table_gpa })
    }

    /// The image.
    pub fn image(&self) -> &'a [u8] {
        self.image
    }

    /// Where the firmware is mapped: it ends at 4 GiB.
    pub fn gpa(&self) -> u64 {
        FOUR_GIB - self.image.len() as u64
    }

    /// Things about the image a user may want to know but that do not stop a launch digest:
    /// footer entries and metadata sections this crate does not know.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for e in &self.table.entries {
            if guid_name(&e.guid).is_none() {
                notes.push(format!(
                    "OVMF footer table entry {} (offset {:#x}, {} bytes) is not known; ignored",
                    e.guid,
                    e.offset,
                    e.data.len()
                ));
            }
        }
        for (i, s) in self.metadata.sections.iter().enumerate() {
            if let SectionType::Unknown(raw) = s.section_type {
                notes.push(format!(
                    "SEV metadata section {i} (offset {:#x}, GPA {:#x}) has unknown type {raw:#x}",
                    s.offset, s.gpa
                ));
            }
        }
        notes
    }

    /// The digest of the firmware pages alone (`--mode snp:ovmf-hash`): the launch digest
    /// after the firmware, which `--snp-ovmf-hash` can later continue from.
    pub fn ovmf_hash(&self) -> [u8; DIGEST_LEN] {
        let mut g = GuestContext::new();
        g.update_normal_digests(self.gpa(), &gctx::page_digests(self.image));
        g.digest()
    }
}

/// The VM shape and boot inputs a launch digest depends on, beyond the firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpLaunch {
    /// Number of vCPUs (one VMSA page each).
    pub vcpus: u32,
    /// CPUID signature for RDX; required for QEMU, ignored by EC2 and GCE.
    pub vcpu_sig: Option<u32>,
    /// The VMM.
    pub vmm: Vmm,
    /// `SEV_FEATURES` of every VMSA.
    pub guest_features: u64,
    /// Digests of a directly booted kernel, initrd and command line.
    pub kernel: Option<KernelHashes>,
    /// A precomputed [`SnpFirmware::ovmf_hash`] to start from instead of hashing the image.
    pub ovmf_hash: Option<[u8; DIGEST_LEN]>,
}

/// A run of consecutive launched pages of one type, for the page-by-page summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageRun {
    /// What the pages are.
    pub what: String,
    /// Their page type.
    pub page_type: PageType,
    /// GPA of the first page.
    #[serde(serialize_with = "eventlog::serde_hex::u64")]
    pub gpa: u64,
    /// Number of pages.
    pub pages: u64,
    /// The launch digest after the last of them.
    #[serde(serialize_with = "hex::serde::serialize")]
    pub digest_after: [u8; DIGEST_LEN],
}

/// A computed launch digest with the sequence of pages that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchDigest {
    /// The launch digest (`MEASUREMENT` in the attestation report).
    #[serde(serialize_with = "hex::serde::serialize")]
    pub digest: [u8; DIGEST_LEN],
    /// The pages, in launch order.
    pub pages: Vec<PageRun>,
}

struct Recorder {
    g: GuestContext,
    runs: Vec<PageRun>,
}

impl Recorder {
    fn run(&mut self, what: String, page_type: PageType, gpa: u64, pages: u64) {
        self.runs.push(PageRun { what, page_type, gpa, pages, digest_after: self.g.digest() });
    }

    fn empty(&mut self, what: String, page_type: PageType, gpa: u64, pages: u64) {
        self.g.update_empty(page_type, gpa, pages);
        self.run(what, page_type, gpa, pages);
    }
}

/// Computes the launch digest of `fw` launched as `launch` describes.
pub fn launch_digest(fw: &SnpFirmware<'_>, launch: &SnpLaunch) -> Result<LaunchDigest, SnpError> {
    if launch.vcpus == 0 {
        return Err(SnpError::ZeroVcpus);
    }
    let vcpu_sig = match (launch.vmm, launch.vcpu_sig) {
        (Vmm::Qemu, None) => return Err(SnpError::MissingVcpuSig),
        (_, sig) => sig.unwrap_or(0),
    };
    if launch.vcpus > 1 && fw.ap_reset_eip == 0 {
        return Err(SnpError::NoApResetEip { vcpus: launch.vcpus });
    }
    // Check every section before hashing anything.
    let hashes_page = match &launch.kernel {
        Some(k) => Some(hashes_page(fw, k)?),
        None => None,
    };
    for (index, s) in fw.metadata.sections.iter().enumerate() {
        if let SectionType::Unknown(raw) = s.section_type {
            return Err(SnpError::UnknownSection { index, offset: s.offset, gpa: s.gpa, raw });
        }
        if !(s.gpa as usize).is_multiple_of(PAGE_SIZE) || !(s.size as usize).is_multiple_of(PAGE_SIZE) {
            return Err(SnpError::SectionMisaligned {
                index,
                section_type: s.section_type,
                offset: s.offset,
                gpa: s.gpa,
                size: s.size,
            });
        }
    }

    let mut r = Recorder { g: GuestContext::new(), runs: Vec::new() };
    let fw_pages = (fw.image.len() / PAGE_SIZE) as u64;
    match launch.ovmf_hash {
        Some(seed) => {
            r.g = GuestContext::from_digest(seed);
            r.run("firmware (precomputed --snp-ovmf-hash)".into(), PageType::Normal, fw.gpa(), fw_pages);
        }
        None => {
            r.g.update_normal_digests(fw.gpa(), &gctx::page_digests(fw.image));
            r.run("firmware".into(), PageType::Normal, fw.gpa(), fw_pages);
        }
    }

    for (index, s) in fw.metadata.sections.iter().enumerate() {
        let gpa = s.gpa as u64;
        let pages = s.size as u64 / PAGE_SIZE as u64;
        let what = format!("SEV metadata section {index}: {}", s.section_type.name());
        match s.section_type {
            // GCE launches the SEC memory unmeasured; everyone else has the PSP zero it.
            SectionType::SnpSecMem if launch.vmm == Vmm::Gce => r.empty(what, PageType::Unmeasured, gpa, pages),
            SectionType::SnpSecMem | SectionType::SvsmCaa => r.empty(what, PageType::Zero, gpa, pages),
            // The secrets and CPUID sections are launched as one page at their GPA, as
            // sev-snp-measure does (OVMF's are exactly one page).
            SectionType::SnpSecrets => r.empty(what, PageType::Secrets, gpa, 1),
            // EC2 launches the CPUID page after every other metadata page.
            SectionType::Cpuid if launch.vmm == Vmm::Ec2 => {}
            SectionType::Cpuid => r.empty(what, PageType::Cpuid, gpa, 1),
            SectionType::SnpKernelHashes => match &hashes_page {
                Some(page) => {
                    let d: [u8; DIGEST_LEN] = <digest_alg::Sha384 as digest_alg::Digest>::digest(page).into();
                    r.g.update(PageType::Normal, gpa, &d);
                    r.run(format!("{what} (kernel, initrd and cmdline hashes)"), PageType::Normal, gpa, 1);
                }
                None => r.empty(what, PageType::Zero, gpa, pages),
            },
            SectionType::Unknown(_) => unreachable!("rejected above"),
        }
    }
    if launch.vmm == Vmm::Ec2 {
        for (index, s) in fw.metadata.sections.iter().enumerate() {
            if s.section_type == SectionType::Cpuid {
                let what = format!("SEV metadata section {index}: CPUID (deferred by EC2)");
                r.empty(what, PageType::Cpuid, s.gpa as u64, 1);
            }
        }
    }

    let vmsa_digest = |eip: u32| -> [u8; DIGEST_LEN] {
        let page = SaveArea::reset(eip, launch.guest_features, vcpu_sig, launch.vmm).to_page();
        <digest_alg::Sha384 as digest_alg::Digest>::digest(&page).into()
    };
    r.g.update(PageType::Vmsa, VMSA_GPA, &vmsa_digest(BSP_RESET_EIP));
    r.run("VMSA of vCPU 0 (bootstrap processor)".into(), PageType::Vmsa, VMSA_GPA, 1);
    if launch.vcpus > 1 {
        let ap = vmsa_digest(fw.ap_reset_eip);
        for _ in 1..launch.vcpus {
            r.g.update(PageType::Vmsa, VMSA_GPA, &ap);
        }
        let what = format!("VMSAs of vCPUs 1..{} (application processors)", launch.vcpus - 1);
        r.run(what, PageType::Vmsa, VMSA_GPA, launch.vcpus as u64 - 1);
    }
    Ok(LaunchDigest { digest: r.g.digest(), pages: r.runs })
}

/// The page QEMU launches for the kernel-hashes section: zeros with the hashes table at the
/// table's offset within the page.
fn hashes_page(fw: &SnpFirmware<'_>, k: &KernelHashes) -> Result<Vec<u8>, SnpError> {
    let section = fw
        .metadata
        .sections
        .iter()
        .find(|s| s.section_type == SectionType::SnpKernelHashes)
        .ok_or(SnpError::NoKernelHashesSection)?;
    if section.size as usize != PAGE_SIZE {
        return Err(SnpError::HashesSectionSize { size: section.size });
    }
    let gpa = fw.hashes_table_gpa.ok_or(SnpError::NoHashTableAddress)?;
    let at = gpa as usize & (PAGE_SIZE - 1);
    if at + hashes::PADDED_TABLE_LEN > PAGE_SIZE {
        return Err(SnpError::HashesTableOverflow { gpa });
    }
    let mut page = vec![0u8; PAGE_SIZE];
    page[at..at + hashes::PADDED_TABLE_LEN].copy_from_slice(&k.table());
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suffix() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ovmf_AmdSev_suffix.bin")).unwrap()
    }

    fn launch(vcpus: u32, features: u64, vmm: Vmm) -> SnpLaunch {
        SnpLaunch {
            vcpus,
            vcpu_sig: Some(cpu_sig(23, 1, 2)), // EPYC-v4
            vmm,
            guest_features: features,
            kernel: None,
            ovmf_hash: None,
        }
    }

    /// Known answers from sev-snp-measure's own test suite (tests/test_guest.py at v0.0.13),
    /// for its fixture, the 4 KiB suffix of an edk2-stable202405 AmdSevX64 build. Kernel and
    /// initrd "/dev/null" there are empty files here.
    #[test]
    fn upstream_known_answers() {
        let img = suffix();
        let fw = SnpFirmware::parse(&img).unwrap();
        assert_eq!(
            hex::encode(fw.ovmf_hash()),
            "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"
        );
        let empty_kernel = |cmdline| Some(KernelHashes::new(b"", Some(b""), cmdline));
        let cases: [(&str, SnpLaunch, &str); 8] = [
            (
                "default, cmdline",
                SnpLaunch { kernel: empty_kernel(Some("console=ttyS0 loglevel=7")), ..launch(1, 0x21, Vmm::Qemu) },
                "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977",
            ),
            (
                "snp only, cmdline",
                SnpLaunch { kernel: empty_kernel(Some("console=ttyS0 loglevel=7")), ..launch(1, 0x1, Vmm::Qemu) },
                "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa",
            ),
            (
                "without kernel",
                launch(1, 0x21, Vmm::Qemu),
                "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b",
            ),
            (
                "4 vcpus",
                SnpLaunch { kernel: empty_kernel(Some("")), ..launch(4, 0x21, Vmm::Qemu) },
                "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942",
            ),
            (
                "ec2",
                SnpLaunch { kernel: empty_kernel(Some("")), ..launch(1, 0x21, Vmm::Ec2) },
                "0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1aa415db338033946ef93aa8278c0d67fb",
            ),
            (
                "gce",
                SnpLaunch { kernel: empty_kernel(Some("")), vcpu_sig: None, ..launch(1, 0x1, Vmm::Gce) },
                "5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d0722e",
            ),
            (
                "gce, 4 vcpus",
                SnpLaunch { kernel: empty_kernel(Some("")), vcpu_sig: None, ..launch(4, 0x1, Vmm::Gce) },
                "5c5debf100fc339f90276e761ee1f1658d08922c3b20e2a2e6c7a6c3370b2452a15a00eae11886a93d6fd1e7ab81e29d",
            ),
            (
                "precomputed ovmf hash",
                SnpLaunch {
                    kernel: empty_kernel(Some("")),
                    ovmf_hash: Some(fw.ovmf_hash()),
                    ..launch(1, 0x21, Vmm::Qemu)
                },
                "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198",
            ),
        ];
        for (name, l, want) in cases {
            assert_eq!(hex::encode(launch_digest(&fw, &l).unwrap().digest), want, "case {name}");
        }
    }

    #[test]
    fn bad_launches_are_refused() {
        let img = suffix();
        let fw = SnpFirmware::parse(&img).unwrap();
        assert_eq!(launch_digest(&fw, &launch(0, 1, Vmm::Qemu)), Err(SnpError::ZeroVcpus));
        assert_eq!(
            launch_digest(&fw, &SnpLaunch { vcpu_sig: None, ..launch(1, 1, Vmm::Qemu) }),
            Err(SnpError::MissingVcpuSig)
        );
        assert_eq!(SnpFirmware::parse(&img[..4000]).unwrap_err(), SnpError::FirmwareSize { len: 4000 });

        // Flip the type of section 6 (SNP_SEC_MEM, the last descriptor) to an unknown one.
        let mut bad = img.clone();
        let md = &fw.metadata.sections[6];
        bad[md.offset + 8] = 0x42;
        let badfw = SnpFirmware::parse(&bad).unwrap();
        assert_eq!(badfw.notes().len(), 1, "{:?}", badfw.notes());
        assert_eq!(
            launch_digest(&badfw, &launch(1, 1, Vmm::Qemu)),
            Err(SnpError::UnknownSection { index: 6, offset: md.offset, gpa: md.gpa, raw: 0x42 })
        );
        // ...which still has an ovmf hash.
        assert_eq!(badfw.ovmf_hash().len(), 48);

        let mut bad = img.clone();
        bad[md.offset + 4] = 0x01; // size 0xf001
        let badfw = SnpFirmware::parse(&bad).unwrap();
        assert!(matches!(
            launch_digest(&badfw, &launch(1, 1, Vmm::Qemu)),
            Err(SnpError::SectionMisaligned { index: 6, size: 0xf001, .. })
        ));
    }

    /// Every single-byte corruption of the reset-vector tables (the footer table, the SEV
    /// metadata, the TDVF metadata) gives a result or an error, never a panic.
    #[test]
    fn corrupted_tables_never_panic() {
        let img = suffix();
        let kernel = Some(KernelHashes::new(b"k", None, None));
        let n = img.len();
        let footer_table = n - 0x20 - 136..n - 0x20;
        let sev_metadata = n - 0x554..n - 0x554 + 100;
        let tdvf_metadata = n - 0x9d0 - 16..n - 0x9d0 + 208;
        for at in footer_table.chain(sev_metadata).chain(tdvf_metadata) {
            let mut bad = img.clone();
            bad[at] ^= 0xa5;
            if let Ok(fw) = SnpFirmware::parse(&bad) {
                let _ = fw.notes();
                // A corrupted size can ask for gigabytes of zero pages: correct, but slow here.
                if fw.metadata.sections.iter().map(|s| s.size as u64).sum::<u64>() <= 1 << 20 {
                    let _ = launch_digest(&fw, &SnpLaunch { kernel, ..launch(2, 1, Vmm::Ec2) });
                }
            }
            let _ = crate::tdx::TdvfMetadata::parse(&bad);
        }
    }

    #[test]
    fn summary_runs() {
        let img = suffix();
        let fw = SnpFirmware::parse(&img).unwrap();
        let ld = launch_digest(&fw, &launch(4, 1, Vmm::Ec2)).unwrap();
        let types: Vec<_> = ld.pages.iter().map(|r| (r.page_type, r.pages)).collect();
        use PageType::*;
        assert_eq!(
            types,
            [
                (Normal, 1),
                (Zero, 9),
                (Zero, 3),
                (Secrets, 1),
                (Zero, 1),
                (Zero, 1),
                (Zero, 15),
                (Cpuid, 1),
                (Vmsa, 1),
                (Vmsa, 3)
            ]
        );
        assert_eq!(ld.pages.last().unwrap().digest_after, ld.digest);
    }
}
