//! `make setup` after the archive has moved on: pinned .debs are kept by content, so a second
//! setup downloads nothing, and a pinned version the archive no longer has stops setup at once
//! with the file, its sha256 and the one command that fixes it (scripts/setup-lib.sh).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::Run;
use sha2::{Digest, Sha256};

fn fetch(cache: &Path, pkgver: &str, sha: &str) -> Run {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("bash")
        .arg("-c")
        .arg(r#"set -euo pipefail; ROOT=$1; . "$ROOT/scripts/setup-lib.sh"; fetch_pinned_deb "$2" "$3" "a test hint""#)
        .arg("setup-test")
        .arg(repo)
        .arg(pkgver)
        .arg(sha)
        .env("NODEIMG_SETUP_DEBS", cache)
        .output()
        .expect("bash")
        .into()
}

#[test]
fn a_version_the_archive_dropped_is_named_with_its_fix() {
    let t = tempfile::tempdir().unwrap();
    let sha = "ab".repeat(32);
    let run = fetch(t.path(), "nodeimg-no-such-package=1:2.0-1", &sha);
    assert_eq!(run.code, 1, "{run:?}");
    for want in [
        "the archive no longer has nodeimg-no-such-package=1:2.0-1 (a test hint)",
        &format!("needed: nodeimg-no-such-package_1%3a2.0-1_amd64.deb with sha256 {sha}"),
        &format!("fix: put that file at {}/{sha}.deb", t.path().display()),
        "then run 'make setup' again",
    ] {
        assert!(run.stderr.contains(want), "{want:?}: {run:?}");
    }
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "nothing half-written: {run:?}");
}

#[test]
fn a_pinned_deb_in_the_content_cache_is_not_downloaded_again() {
    let t = tempfile::tempdir().unwrap();
    let bytes = b"a .deb, as far as this test goes";
    let sha = hex::encode(Sha256::digest(bytes));
    fs::write(t.path().join(format!("{sha}.deb")), bytes).unwrap();
    // No such package in any archive: only the cache can answer.
    let run = fetch(t.path(), "nodeimg-no-such-package=1.0", &sha);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), t.path().join(format!("{sha}.deb")).display().to_string());
    assert!(!run.stderr.contains("apt-get download"), "downloaded again: {run:?}");

    // A cached file whose content is not its name is not trusted.
    fs::write(t.path().join(format!("{sha}.deb")), b"tampered").unwrap();
    let run = fetch(t.path(), "nodeimg-no-such-package=1.0", &sha);
    assert_eq!(run.code, 1, "{run:?}");
}
