//! Authenticode digests of the published vectors (google/authenticode-rs via shared/vectors,
//! sha384 by LIEF cross-checked with pesign: testdata/authenticode.gen.sh).

mod common;

use common::*;
use uki::Pe;

#[test]
fn published_vectors() {
    let dir = testdata().join("authenticode");
    let expected = json(&dir.join("expected.json"));
    for (file, want) in expected.as_object().unwrap() {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let pe = Pe::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        for alg in uki::AUTHENTICODE_ALGS {
            assert_eq!(hex::encode(pe.authenticode(alg)), hex_of(&want[alg.name()]), "{file} {alg}");
        }
        assert_eq!(pe.certificate_table().is_some(), file.contains(".signed"), "{file}: certificate table");
    }
}
