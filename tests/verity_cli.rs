//! `nodeimg verity` against the oracle `veritysetup` (Debian cryptsetup-bin), live.

mod common;

use common::{assert_fails, flip_byte, nodeimg, random_bytes, tool};
use serde_json::Value;

const UUID: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

fn root_hash_line(stdout: &str) -> String {
    stdout.lines().find_map(|l| l.strip_prefix("Root hash:")).expect("a Root hash: line").trim().to_owned()
}

#[test]
fn live_cross_check_on_random_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (data bytes, extra flags): sizes at and around tree boundaries, several geometries.
    let cases: &[(usize, &[&str])] = &[
        (4096, &[]),
        (7 * 4096, &[]),
        (128 * 4096, &[]),
        (129 * 4096, &["--hash", "sha1"]),
        (3000 * 4096, &[]),
        (2049 * 512, &["--data-block-size", "512", "--hash-block-size", "512", "--hash", "sha512"]),
        (16384 * 4096 + 4096, &[]),
    ];
    for (i, &(size, flags)) in cases.iter().enumerate() {
        std::fs::write(d.join("data"), random_bytes(size)).unwrap();
        let salt = hex::encode(random_bytes(32));
        let common: Vec<&str> = [&["--salt", salt.as_str(), "--uuid", UUID][..], flags].concat();
        let theirs = tool(d, "veritysetup", &[&["format", "data", "theirs"][..], &common].concat());
        assert_eq!(theirs.code, 0, "case {i}: veritysetup {theirs:?}");
        let ours = nodeimg(d, &[&["verity", "format", "data", "ours"][..], &common].concat());
        assert_eq!(ours.code, 0, "case {i}: {ours:?}");
        let root = root_hash_line(&theirs.stdout);
        assert_eq!(root_hash_line(&ours.stdout), root, "case {i} ({size} bytes {flags:?}): root hash");
        assert!(
            std::fs::read(d.join("ours")).unwrap() == std::fs::read(d.join("theirs")).unwrap(),
            "case {i} ({size} bytes {flags:?}): hash devices differ"
        );
        // Each verifies the other's tree.
        let v = nodeimg(d, &["verity", "verify", "data", "theirs", &root]);
        assert_eq!(v.code, 0, "case {i}: nodeimg verify of veritysetup's tree {v:?}");
        let v = tool(d, "veritysetup", &["verify", "data", "ours", &root]);
        assert_eq!(v.code, 0, "case {i}: veritysetup verify of our tree {v:?}");
    }
}

#[test]
fn default_salt_and_uuid_come_from_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data"), random_bytes(5 * 4096)).unwrap();
    let json = |args: &[&str]| -> Value {
        let r = nodeimg(d, &[&["verity", "format", "data"][..], args, &["--json"]].concat());
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str(&r.stdout).unwrap()
    };
    let a = json(&["h1"]);
    let b = json(&["h2"]);
    assert_eq!(a["root_hash"], b["root_hash"], "two runs without --seed agree");
    assert_eq!(std::fs::read(d.join("h1")).unwrap(), std::fs::read(d.join("h2")).unwrap());
    let c = json(&["h3", "--seed", "image-1.0"]);
    assert_ne!(a["salt"], c["salt"]);
    assert_ne!(a["uuid"], c["uuid"]);
    for key in [
        "root_hash",
        "salt",
        "uuid",
        "hash_algorithm",
        "data_block_size",
        "hash_block_size",
        "data_blocks",
        "hash_device_size",
    ] {
        assert!(!a[key].is_null(), "--json lacks {key}: {a}");
    }
    // veritysetup reads the superblock we wrote and accepts the tree.
    let v = tool(d, "veritysetup", &["verify", "data", "h3", c["root_hash"].as_str().unwrap()]);
    assert_eq!(v.code, 0, "{v:?}");
    let dump = tool(d, "veritysetup", &["dump", "h3"]);
    assert!(dump.stdout.contains(c["uuid"].as_str().unwrap()), "{dump:?}");
}

/// A three-level tree (hash blocks of 512 bytes hold 16 SHA-256 digests): 300 data blocks make
/// level 0 = 19 blocks, level 1 = 2, level 2 = 1. The superblock takes hash block 0; levels are
/// stored top first: level 2 at block 1, level 1 at blocks 2–3, level 0 at blocks 4–22.
#[test]
fn corruption_names_the_first_bad_block_and_level() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data"), random_bytes(300 * 4096)).unwrap();
    let geometry = ["--hash-block-size", "512", "--salt", "00", "--uuid", UUID];
    let f = nodeimg(d, &[&["verity", "format", "data", "hash", "--json"][..], &geometry].concat());
    assert_eq!(f.code, 0, "{f:?}");
    let info: Value = serde_json::from_str(&f.stdout).unwrap();
    assert_eq!(info["hash_blocks"], 22, "{info}");
    let root = info["root_hash"].as_str().unwrap().to_owned();

    // (what to corrupt, file, byte offset, first bad data block, level where the mismatch shows)
    let cases: &[(&str, &str, u64, u64, &str)] = &[
        ("data block 123", "data", 123 * 4096 + 17, 123, "data"),
        ("data block 299 (last)", "data", 299 * 4096 + 4095, 299, "data"),
        ("level 0, block 5", "hash", (4 + 5) * 512 + 40, 5 * 16, "0"),
        ("level 0, padding after the last digest", "hash", (4 + 18) * 512 + 500, 18 * 16, "0"),
        ("level 1, block 1", "hash", 3 * 512 + 3, 256, "1"),
        ("level 2 (top)", "hash", 512 + 100, 0, "2"),
        ("superblock salt", "hash", 88, 0, "2"),
    ];
    for &(what, file, offset, block, level) in cases {
        std::fs::copy(d.join("data"), d.join("data.orig")).unwrap();
        std::fs::copy(d.join("hash"), d.join("hash.orig")).unwrap();
        flip_byte(&d.join(file), offset);
        let v = nodeimg(d, &["verity", "verify", "data", "hash", &root, "--json"]);
        assert_eq!(v.code, 1, "{what}: {v:?}");
        let r: Value = serde_json::from_str(&v.stdout).unwrap();
        assert_eq!(r["first_bad_data_block"], block, "{what}: {r}");
        assert_eq!(r["mismatch_level"], level, "{what}: {r}");
        let text = nodeimg(d, &["verity", "verify", "data", "hash", &root]);
        assert!(text.stdout.contains(&format!("data block {block}")), "{what}: {text:?}");
        if file == "data" {
            // The oracle agrees on where the data goes bad.
            let o = tool(d, "veritysetup", &["verify", "data", "hash", &root]);
            assert_ne!(o.code, 0, "{what}: veritysetup accepted corrupted data");
            assert!(o.stderr.contains(&format!("position {}", block * 4096)), "{what}: {o:?}");
        }
        std::fs::rename(d.join("data.orig"), d.join("data")).unwrap();
        std::fs::rename(d.join("hash.orig"), d.join("hash")).unwrap();
    }
}

#[test]
fn hash_area_inside_the_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = random_bytes(40 * 4096);
    for name in ["ours", "theirs"] {
        std::fs::write(d.join(name), &data).unwrap();
    }
    let args = ["--hash-offset", "163840", "--data-blocks", "40", "--salt", "ab", "--uuid", UUID];
    let t = tool(d, "veritysetup", &[&["format", "theirs", "theirs"][..], &args].concat());
    assert_eq!(t.code, 0, "{t:?}");
    let o = nodeimg(d, &[&["verity", "format", "ours", "ours"][..], &args].concat());
    assert_eq!(o.code, 0, "{o:?}");
    assert!(std::fs::read(d.join("ours")).unwrap() == std::fs::read(d.join("theirs")).unwrap(), "files differ");
    // Overlap is refused and leaves the file alone.
    let r = nodeimg(d, &["verity", "format", "ours", "ours", "--hash-offset", "81920", "--data-blocks", "40"]);
    assert_fails(&r, 2, &["overlaps the data area"]);
    assert!(
        std::fs::read(d.join("ours")).unwrap() == std::fs::read(d.join("theirs")).unwrap(),
        "refused format changed the file"
    );
}

#[test]
fn bad_input_is_exit_2_with_a_reason_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("odd"), random_bytes(4096 + 100)).unwrap();
    std::fs::write(d.join("data"), random_bytes(8 * 4096)).unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["verity", "format", "odd", "out"], &["4196 bytes", "not a multiple", "4096"]),
        (&["verity", "format", "data", "out", "--data-block-size", "1000"], &["data block size 1000", "power of two"]),
        (&["verity", "format", "data", "out", "--hash-block-size", "256"], &["hash block size 256"]),
        (&["verity", "format", "data", "out", "--hash", "md5"], &["unknown hash algorithm \"md5\""]),
        (&["verity", "format", "data", "out", "--hash-offset", "100"], &["hash offset 100", "multiple of 512"]),
        (&["verity", "format", "data", "out", "--data-blocks", "9"], &["holds 8 blocks", "9 were requested"]),
        (&["verity", "format", "data", "out", "--salt", "xyz"], &["not hex"]),
        (&["verity", "format", "data", "out", "--format", "2"], &["--format 2"]),
        (&["verity", "format", "missing", "out"], &["opening missing"]),
    ];
    for &(args, words) in cases {
        let r = nodeimg(d, args);
        assert_fails(&r, 2, words);
        assert!(!d.join("out").exists(), "{args:?} left an output file");
    }
    let salt = "ab".repeat(257);
    assert_fails(&nodeimg(d, &["verity", "format", "data", "out", "--salt", &salt]), 2, &["257 bytes"]);

    // A good tree, then damage it in ways that are input errors, not corruption.
    let f = nodeimg(d, &["verity", "format", "data", "hash", "--json"]);
    let root = serde_json::from_str::<Value>(&f.stdout).unwrap()["root_hash"].as_str().unwrap().to_owned();
    let good = std::fs::read(d.join("hash")).unwrap();
    let damaged: &[(&str, Vec<u8>, &[&str])] = &[
        ("truncated", good[..good.len() - 1].to_vec(), &["truncated", "8191 bytes", "8192"]),
        ("bad magic", [b"Verity\0\0", &good[8..]].concat(), &["magic"]),
        ("bad version", [&good[..8], &[9, 0, 0, 0], &good[12..]].concat(), &["version 9"]),
        ("shorter than a superblock", good[..100].to_vec(), &["no superblock at byte 0"]),
    ];
    for (what, bytes, words) in damaged {
        std::fs::write(d.join("bad"), bytes).unwrap();
        let r = nodeimg(d, &["verity", "verify", "data", "bad", &root]);
        assert_fails(&r, 2, words);
        let _ = what;
    }
    assert_fails(&nodeimg(d, &["verity", "verify", "data", "hash", "abcd"]), 2, &["root hash is 2 bytes", "32"]);
    assert_fails(&nodeimg(d, &["verity", "dump", "data"]), 2, &["magic"]);
}

/// A superblock that claims fewer data blocks than the tree was made for: the hash block's
/// slots past the claimed end still hold digests (of data that is never checked), and the root
/// hash is the same. veritysetup rejects it ("spare area is not zeroed"); so must nodeimg, saying
/// which check failed. A byte changed in the data past the claimed end changes neither verdict.
#[test]
fn a_superblock_claiming_fewer_blocks_leaves_a_non_zero_spare_area() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data"), random_bytes(100 * 4096)).unwrap();
    let salt = hex::encode(random_bytes(32));
    let f = tool(d, "veritysetup", &["format", "data", "hash", "--salt", &salt, "--uuid", UUID]);
    assert_eq!(f.code, 0, "{f:?}");
    let root = root_hash_line(&f.stdout);
    // Superblock field data_blocks (u64 LE at byte 72): 100 -> 50. One level-0 hash block either
    // way, so the root hash is unchanged.
    let mut hash = std::fs::read(d.join("hash")).unwrap();
    assert_eq!(u64::from_le_bytes(hash[72..80].try_into().unwrap()), 100);
    hash[72..80].copy_from_slice(&50u64.to_le_bytes());
    std::fs::write(d.join("hash"), &hash).unwrap();
    flip_byte(&d.join("data"), 70 * 4096 + 5);

    let theirs = tool(d, "veritysetup", &["verify", "data", "hash", &root]);
    assert_ne!(theirs.code, 0, "veritysetup accepts it: {theirs:?}");
    assert!(format!("{}{}", theirs.stderr, theirs.stdout).contains("Spare area is not zeroed"), "{theirs:?}");
    let ours = nodeimg(d, &["verity", "verify", "data", "hash", &root]);
    // The spare area starts after 50 digests of 32 bytes, in the hash block after the superblock.
    assert_fails(&ours, 1, &["spare area is not zeroed at position 5696", "hash block 0 of tree level 0"]);
    let json = nodeimg(d, &["verity", "verify", "data", "hash", &root, "--json"]);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!((v["ok"].as_bool(), v["bad_spare_areas"].as_u64()), (Some(false), Some(1)), "{v}");

    // With the superblock back at 100 blocks, the flipped data byte is caught by both.
    hash[72..80].copy_from_slice(&100u64.to_le_bytes());
    std::fs::write(d.join("hash"), &hash).unwrap();
    assert_ne!(tool(d, "veritysetup", &["verify", "data", "hash", &root]).code, 0);
    assert_fails(&nodeimg(d, &["verity", "verify", "data", "hash", &root]), 1, &["data block 70"]);
}

/// A superblock whose data_blocks is near 2^63: every block position is computed with checked
/// arithmetic, so nodeimg says no (exit 2, naming the file), not a debug panic or a nonsense size.
#[test]
fn a_superblock_with_an_absurd_block_count_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data"), random_bytes(10 * 4096)).unwrap();
    let f = tool(d, "veritysetup", &["format", "data", "hash", "--uuid", UUID]);
    assert_eq!(f.code, 0, "{f:?}");
    let root = root_hash_line(&f.stdout);
    let mut hash = std::fs::read(d.join("hash")).unwrap();
    hash[72..80].copy_from_slice(&((1u64 << 63) - 1).to_le_bytes());
    std::fs::write(d.join("huge"), &hash).unwrap();
    for args in [&["verity", "dump", "huge"][..], &["verity", "verify", "data", "huge", &root][..]] {
        let run = nodeimg(d, args);
        assert_fails(&run, 2, &["huge", "9223372036854775807 data blocks", "would end past 2^64 bytes"]);
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
}
