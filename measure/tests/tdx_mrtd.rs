//! MRTD against two independent public implementations, td-shim's `td_shim_tee_info_hash.py`
//! and Dstack's `dstack-mr`, whose agreed outputs for Debian's OVMF builds are in
//! `testdata/tdx-mrtd.tsv` (see `testdata/tdx-mrtd.gen.sh`; neither peer is on a package
//! registry, so there is no live variant). The firmware is unpacked under tools/ by
//! `make setup`.

use std::path::Path;

use measure::tdx::{mrtd, PageAddOrder, TdvfMetadata};
use sha2::{Digest, Sha256};

#[test]
fn fixture_table() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(manifest.join("testdata/tdx-mrtd.tsv")).unwrap();
    let mut n = 0;
    for (i, line) in text.lines().enumerate().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let (firmware, sha, order, want) = (c[0], c[1], c[2], c[3]);
        let path = manifest.join("../tools").join(firmware);
        let image = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run make setup)", path.display()));
        assert_eq!(hex::encode(Sha256::digest(&image)), sha, "{} changed", path.display());
        let order = match order {
            "single-pass" => PageAddOrder::SinglePass,
            "two-pass" => PageAddOrder::TwoPass,
            o => panic!("line {}: order {o}", i + 1),
        };
        let md = TdvfMetadata::parse(&image).unwrap();
        assert_eq!(
            hex::encode(mrtd(&image, &md, order).digest),
            want,
            "tdx-mrtd.tsv line {}: {firmware} {order:?}",
            i + 1
        );
        n += 1;
    }
    assert_eq!(n, 4);
}
