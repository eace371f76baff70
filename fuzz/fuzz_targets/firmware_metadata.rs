//! Arbitrary bytes as the tail of a firmware image: the OVMF footer table, the SEV metadata, the
//! TDVF metadata, and (when they parse) a launch digest and MRTD must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use measure::{ovmf, snp, tdx};

fuzz_target!(|data: &[u8]| {
    if data.len() > 1 << 16 {
        return;
    }
    // The tables live at the end of the image: align the input to the end of whole pages.
    let size = data.len().div_ceil(4096).max(1) * 4096;
    let mut image = vec![0u8; size];
    image[size - data.len()..].copy_from_slice(data);

    let _ = ovmf::FooterTable::parse(data);
    if let Ok(fw) = snp::SnpFirmware::parse(&image) {
        let _ = fw.notes();
        let small = fw.metadata.sections.iter().map(|s| s.size as u64).sum::<u64>() <= 1 << 24;
        for vmm in snp::Vmm::ALL {
            let launch = snp::SnpLaunch {
                vcpus: 2,
                vcpu_sig: Some(0x00a0_0f11),
                vmm,
                guest_features: 1,
                kernel: Some(snp::KernelHashes::new(b"k", Some(b"i"), Some("c"))),
                ovmf_hash: None,
            };
            if small {
                let _ = snp::launch_digest(&fw, &launch);
                let _ = snp::launch_digest(&fw, &snp::SnpLaunch { kernel: None, ..launch });
            }
        }
    }
    if let Ok(md) = tdx::TdvfMetadata::parse(&image) {
        let _ = md.notes();
        let pages: u64 = md.sections.iter().map(|s| s.memory_data_size / 4096).sum();
        if pages <= 4096 {
            let _ = tdx::mrtd(&image, &md, tdx::PageAddOrder::SinglePass);
            let _ = tdx::mrtd(&image, &md, tdx::PageAddOrder::TwoPass);
        }
    }
});
