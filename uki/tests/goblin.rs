//! Reading PE images could be goblin's: its Authenticode ranges give the digests nodeimg computes
//! (and UEFI firmware measured: the real-boot UKI's PCR 4 event) on the published vectors, the
//! pinned Debian kernel and stub, and the real-boot UKI. nodeimg keeps its own PE module because
//! it also *writes* UKIs byte-identical to ukify's and hashes exactly what it wrote; goblin
//! writes no PE images (README, Dependencies).

mod common;

use common::*;
use sha2::{Digest, Sha256};

fn goblin_sha256(bytes: &[u8]) -> String {
    let pe = goblin::pe::PE::parse(bytes).expect("goblin parses it");
    let mut h = Sha256::new();
    for range in pe.authenticode_ranges() {
        h.update(range);
    }
    hex::encode(h.finalize())
}

#[test]
fn goblin_and_nodeimg_agree_on_authenticode() {
    let mut files: Vec<std::path::PathBuf> = ["tiny32.efi", "tiny32.signed.efi", "tiny64.efi", "tiny64.signed.efi"]
        .iter()
        .map(|f| testdata().join("authenticode").join(f))
        .collect();
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools");
    files.extend(["uki/vmlinuz.signed", "uki/linuxx64.efi.stub", "boot/sb-off/uki.efi"].map(|f| tools.join(f)));
    for path in files {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", path.display()));
        let ours = hex::encode(uki::Pe::parse(&bytes).unwrap().authenticode(uki::HashAlg::Sha256));
        assert_eq!(goblin_sha256(&bytes), ours, "{}", path.display());
    }
}
