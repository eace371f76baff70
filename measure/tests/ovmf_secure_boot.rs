//! Secure Boot support read from the firmware code (`measure::fv`), against
//! `testdata/ovmf-secure-boot.tsv`: which of Debian's pinned OVMF builds contain edk2's
//! SecureBootConfigDxe, as Python's liblzma and a byte search find it (`ovmf-secure-boot.gen.sh`),
//! not this crate's firmware-volume walker. The real boots in `testdata/boot/` judge what that
//! means for PCR 7 (`sb-off`: trixie's OVMF_CODE_4M.fd, no `SecureBoot`; `sb-setup`: bookworm's,
//! `SecureBoot` = 0). The firmware comes from `make setup` (`tools/ovmf/`).

use std::path::PathBuf;

use sha2::{Digest, Sha256};

#[test]
fn secure_boot_support_matches_the_independent_table() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let table = std::fs::read_to_string(root.join("testdata/ovmf-secure-boot.tsv")).unwrap();
    let mut rows = 0;
    let (mut with, mut without) = (0, 0);
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let [version, file, sha256, expected] = f[..] else { panic!("bad row {line:?}") };
        let path = root.join("../tools/ovmf").join(version).join("usr/share/OVMF").join(file);
        let image = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run make setup)", path.display()));
        assert_eq!(hex::encode(Sha256::digest(&image)), sha256, "{version}/{file}: not the pinned build");
        let found = measure::fv::secure_boot_support(&image).unwrap_or_else(|e| panic!("{version}/{file}: {e}"));
        assert_eq!(found.supported, expected == "yes", "{version}/{file}: {found:?}");
        assert!(found.files > 100, "{version}/{file}: only {} FFS files walked", found.files);
        if found.supported {
            with += 1;
        } else {
            without += 1;
        }
        rows += 1;
    }
    assert_eq!(rows, 12);
    assert!(with > 0 && without > 0, "the table must hold both kinds of build");
}

#[test]
fn damaged_firmware_is_an_error_not_a_panic() {
    // A volume-less prefix of a real build is not firmware; a truncated build still walks (its
    // compressed section is cut short: an error naming the section, not a panic).
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("../tools/ovmf/2025.02-8+deb13u1/usr/share/OVMF/OVMF_CODE_4M.fd");
    let image = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run make setup)", path.display()));
    for cut in [0x100, 0x1000, 0x10_0000, 0x20_0000, image.len() - 1] {
        let _ = measure::fv::secure_boot_support(&image[..cut]);
    }
    let mut corrupt = image.clone();
    for b in &mut corrupt[0x200..0x400] {
        *b ^= 0x5a;
    }
    // LZMA carries no checksum: damage shows as a decoder error or as volumes that are not there.
    match measure::fv::secure_boot_support(&corrupt) {
        Err(e) => assert!(e.to_string().contains("LZMA section at offset 0x"), "{e}"),
        Ok(s) => assert!(s.files < 10, "{s:?}"),
    }
}
