//! `nodeimg repro A B` on small stand-in output trees: identical trees exit 0, any differing or
//! missing artefact exits 1 and is named, a missing directory is an input error (exit 2).

mod common;

use std::fs;
use std::path::Path;

use common::{assert_fails, nodeimg};

fn tree(root: &Path, files: &[(&str, &[u8])]) {
    for (name, bytes) in files {
        let p = root.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
}

#[test]
fn identical_and_differing_outputs() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let files: &[(&str, &[u8])] =
        &[("qemu/manifest.json", b"{}"), ("qemu/root-verity.raw", b"tree"), ("gcp/uki.efi", b"MZ")];
    tree(&a, files);
    tree(&b, files);
    let run = nodeimg(t.path(), &["repro", "--cache-dir", "no-cache", "a", "b"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("identical: a vs b"), "{run:?}");

    fs::write(b.join("qemu/root-verity.raw"), b"TREE").unwrap();
    fs::remove_file(b.join("qemu/manifest.json")).unwrap();
    let run = nodeimg(t.path(), &["repro", "--cache-dir", "no-cache", "a", "b", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["identical"], false);
    let differing: Vec<&str> = report["artefacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["a"] != a["b"])
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(differing, ["qemu/manifest.json", "qemu/root-verity.raw"], "{report:#}");

    let run = nodeimg(t.path(), &["repro", "--cache-dir", "no-cache", "a", "b"]);
    assert_fails(&run, 1, &["DIFFERS  qemu/root-verity.raw", "qemu/manifest.json", "missing", "DIFFERENT: a vs b"]);
}

#[test]
fn missing_directory() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("a")).unwrap();
    let run = nodeimg(t.path(), &["repro", "a", "nope"]);
    assert_fails(&run, 2, &["nope", "not a build output directory"]);
}
