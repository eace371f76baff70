//! Arbitrary bytes as a PE image: parsing, Authenticode, section reading, UKI views, and using
//! the bytes as a stub, a kernel or a UKI to change must return errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uki::{HashAlg, Pe, Uki, UkiBuilder};

fuzz_target!(|data: &[u8]| {
    let _ = uki::kernel_release(data);
    let _ = UkiBuilder::new(data, b"HALLO\n").cmdline(b"console=ttyS0").initrd(b"x").build();
    let _ = UkiBuilder::new(include_bytes!("../../uki/testdata/authenticode/tiny64.efi"), data).cmdline(b"x").build();
    let _ = uki::set_cmdline(data, b"console=ttyS0 quiet");
    let Ok(pe) = Pe::parse(data) else { return };
    let _ = pe.authenticode(HashAlg::Sha256);
    for s in pe.sections() {
        let measured = pe.section_measured(s);
        // Zero fill can legitimately be gigabytes; hashing it proves nothing here.
        if measured.len() <= 1 << 20 {
            let _ = measured.digest(HashAlg::Sha1);
        }
    }
    let _ = uki::loader_info(&pe);
    if let Ok(u) = Uki::from_pe(pe) {
        let _ = u.measured_sections();
        let _ = u.stub_version();
        let _ = Pe::parse(u.linux());
    }
});
