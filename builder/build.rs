//! Embeds nodeimg's base profile (the repository's `mkosi-profiles/`, without its package lock
//! and its `test` overlay) into the builder crate, so that an installed `nodeimg` builds image
//! projects without the repository (see `src/project.rs`).
//!
//! Writes `$OUT_DIR/base_files.rs`: a sorted `&[(path, executable, bytes)]` of `include_bytes!`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../mkosi-profiles");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, Path::new(""), &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for rel in files {
        let rel_s = rel.to_str().expect("profile paths are UTF-8");
        if rel_s == "packages.lock" || rel_s.starts_with("mkosi.profiles/test") {
            continue;
        }
        let abs = root.join(&rel).canonicalize().expect("profile file resolves");
        println!("cargo:rerun-if-changed={}", abs.display());
        let exec = fs::metadata(&abs).expect("profile file metadata").permissions().mode() & 0o111 != 0;
        out.push_str(&format!("    ({rel_s:?}, {exec}, include_bytes!({:?}) as &[u8]),\n", abs.display().to_string()));
    }
    out.push_str("]\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("base_files.rs");
    fs::write(dest, out).expect("writing base_files.rs");
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let dir = root.join(rel);
    println!("cargo:rerun-if-changed={}", dir.display());
    for e in fs::read_dir(&dir).expect("reading mkosi-profiles") {
        let e = e.expect("reading mkosi-profiles");
        let child = rel.join(e.file_name());
        let ft = e.file_type().expect("file type");
        if ft.is_dir() {
            walk(root, &child, out);
        } else {
            out.push(child);
        }
    }
}
