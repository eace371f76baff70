//! The hash device and root hash for every case in `testdata/veritysetup-cases.tsv` equal what
//! `veritysetup format` wrote (the table is the oracle's output; see testdata/README.md).

use sha2::{Digest, Sha256};
use verity::{HashType, Params};

/// The fixture data: SHA-256("nodeimg-verity-fixture" ‖ k as u64 LE) for k = 0, 1, … (as in
/// `veritysetup-cases.gen.sh`).
fn data(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut k = 0u64;
    while out.len() < n {
        out.extend(Sha256::new_with_prefix(b"nodeimg-verity-fixture").chain_update(k.to_le_bytes()).finalize());
        k += 1;
    }
    out.truncate(n);
    out
}

const UUID: &str = "5e1f0000-0000-4000-8000-00000000a11c";

#[test]
fn byte_identical_to_veritysetup() {
    let table = include_str!("../testdata/veritysetup-cases.tsv");
    let mut cases = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, dbs, hbs, hash, format, salt, sb, in_file, offset, blocks, root, hash_size, file_size, file_sha256] =
            f[..]
        else {
            panic!("malformed fixture line: {line}");
        };
        let params = Params {
            hash: hash.parse().unwrap(),
            hash_type: HashType::from_number(format.parse().unwrap()).unwrap(),
            data_block_size: dbs.parse().unwrap(),
            hash_block_size: hbs.parse().unwrap(),
            data_blocks: blocks.parse().unwrap(),
            salt: if salt == "-" { vec![] } else { hex::decode(salt).unwrap() },
            hash_offset: offset.parse().unwrap(),
            superblock_uuid: (sb == "yes").then(|| verity::parse_uuid(UUID).unwrap()),
        };
        let data = data(params.data_blocks as usize * params.data_block_size as usize);
        // The hash device starts empty, or is the data file itself.
        let mut device = if in_file == "yes" { data.clone() } else { Vec::new() };
        let out = verity::format(&data, &params, &mut device, &|_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        // veritysetup extends a short file to the end of the tree.
        if device.len() < out.layout.hash_device_size as usize {
            device.resize(out.layout.hash_device_size as usize, 0);
        }
        assert_eq!(hex::encode(&out.root_hash), root, "{name}: root hash");
        if hash_size != "-" {
            assert_eq!(out.layout.hash_device_size.to_string(), hash_size, "{name}: hash device size");
        }
        assert_eq!(device.len().to_string(), file_size, "{name}: file size");
        assert_eq!(hex::encode(Sha256::digest(&device)), file_sha256, "{name}: hash device bytes");

        // And the tree verifies against its own root hash.
        let report = verity::verify(&data, &device, &params, &out.root_hash, &|_| {}).unwrap();
        assert!(report.is_ok(), "{name}: verify after format: {report:?}");
        cases += 1;
    }
    assert!(cases >= 60, "only {cases} fixture cases");
}
