//! The archive moves on — against local mirrors, with the real mkosi.
//!
//! The test builds Debian-layout mirrors (dists/…/Release + InRelease signed by a throwaway key,
//! Packages, pool/; `tests/lib/mirror.sh`, apt-ftparchive) from the very `.deb`s of the lock,
//! serves them on 127.0.0.1 (a Python HTTP server that stops by itself), and checks:
//!
//! 1. **Snapshot**: the mirror in snapshot.debian.org's layout (`archive/debian/STAMP/`):
//!    `nodeimg lock --check --snapshot STAMP` resolves exactly the lock (image, initrd, tools
//!    tree), and `nodeimg build --snapshot STAMP` gives artefacts bit-identical to the build from
//!    the live archive, recording the snapshot as an immutable source.
//! 2. **A point release**: the mirror in the live layout after Debian replaced one locked image
//!    package (`hostname`) and one locked tools-tree package (`jq`) with newer versions and
//!    dropped the locked ones — and, worse, serves another `cpio` under the locked version (a
//!    rebuilt binary, or a tampered mirror). `nodeimg lock --check` exits 1 naming both moves and
//!    both dropped pins; `nodeimg build` fails closed (exit 2) naming the two moved packages, the
//!    `.deb` whose sha256 is not the locked one, and the ways out, and leaves nothing in
//!    `out/` — nor in the cache: the mirror's `cpio` is evicted from apt's download cache and
//!    the reference build passes again.
//!
//! Takes 14–15 minutes on the 2-core CI machine beside the other tests (`make test`): five cold
//! mkosi runs (its own cache, and a new source is a new cache key, by design) and a warm one.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::http::Server;
use common::Run;

const STAMP: &str = "20261204T000000Z";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[track_caller]
fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): run `make setup`"));
    let run: Run = out.into();
    assert_eq!(run.code, 0, "{cmd:?}\n{run:?}");
    run.stdout
}

/// This test's own cache directory (package, incremental image and tools tree caches, the store
/// of checked `.deb`s), not the default one: the mirrors here serve a tampered package, and its
/// cold builds need not wait for the other tests' builds (`make test` runs tests side by side,
/// and builds on one cache take turns).
fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mirror-e2e/cache")
}

fn nodeimg(args: &[&str], extra: &[&Path]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodeimg"));
    cmd.env("NODEIMG_CACHE_DIR", cache());
    cmd.args(args);
    for p in extra {
        cmd.arg(p);
    }
    cmd.output().expect("running nodeimg").into()
}

/// (scope, name, version, arch, sha256) of every lock line.
fn lock_lines() -> Vec<[String; 5]> {
    fs::read_to_string(repo().join("mkosi-profiles/packages.lock"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("snapshot") && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
            [f[0].clone(), f[1].clone(), f[2].clone(), f[3].clone(), f[4].clone()]
        })
        .collect()
}

fn deb_name(name: &str, version: &str, arch: &str) -> String {
    format!("{name}_{}_{arch}.deb", version.replace(':', "%3a"))
}

#[test]
fn snapshots_rebuild_and_a_point_release_fails_closed() {
    let mirror_sh = repo().join("tests/lib/mirror.sh");
    for tool in ["apt-ftparchive", "gpg", "python3", "dpkg-deb"] {
        let ok = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().status.success();
        assert!(ok, "{tool} is missing: run `make setup`");
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mirror-e2e");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let profiles = repo().join("mkosi-profiles");

    // 0. The reference bytes: the build from the cached package set (of the default cache), or
    //    from the live archive on a fresh machine; either fills this cache's store of checked
    //    .debs.
    let source = common::image_package_source();
    let source: Vec<&Path> = source.iter().map(Path::new).collect();
    let mut extra = vec![tmp.join("live").as_path().to_owned()];
    extra.push("--profiles-dir".into());
    extra.push(profiles.clone());
    extra.extend(source.iter().map(|p| p.to_path_buf()));
    let extra: Vec<&Path> = extra.iter().map(PathBuf::as_path).collect();
    let live = nodeimg(&["build", "--json", "--out"], &extra);
    assert_eq!(live.code, 0, "the reference build (cached package set, else the live archive):\n{live:?}");
    let live_dir =
        PathBuf::from(serde_json::from_str::<serde_json::Value>(&live.stdout).unwrap()["dir"].as_str().unwrap())
            .join("qemu");

    // The lock's .debs, from the store (CACHE/debs/<sha256>.deb).
    let debs = tmp.join("debs");
    fs::create_dir_all(&debs).unwrap();
    let store = cache().join("debs");
    for [_, name, version, arch, sha] in lock_lines() {
        let dest = debs.join(deb_name(&name, &version, &arch));
        if !dest.exists() {
            let src = store.join(format!("{sha}.deb"));
            fs::hard_link(&src, &dest)
                .or_else(|_| fs::copy(&src, &dest).map(drop))
                .unwrap_or_else(|e| panic!("{}: {e} (the build above keeps every locked .deb there)", src.display()));
        }
    }
    let mut deb_files: Vec<PathBuf> = fs::read_dir(&debs).unwrap().map(|e| e.unwrap().path()).collect();
    deb_files.sort();

    // The signing key and the two mirrors.
    let gnupg = tmp.join("gnupg");
    let keyring = tmp.join("mirror-keyring.gpg");
    sh(Command::new(&mirror_sh).arg("keygen").arg(&gnupg).arg(&keyring));
    let root = tmp.join("www");
    let suite = |archive: &Path, name: &str, files: &[PathBuf]| {
        sh(Command::new(&mirror_sh).arg("suite").arg(archive).arg(name).args(files).arg(&gnupg));
    };
    // Snapshot layout: the archive as it was at STAMP.
    suite(&root.join("archive/debian").join(STAMP), "trixie", &deb_files);
    suite(&root.join("archive/debian-security").join(STAMP), "trixie-security", &[]);
    // Live layout, after a point release: hostname (image) and jq (tools tree) replaced, and cpio
    // (image and tools tree) other bytes under the locked version.
    let bumped = tmp.join("bumped");
    let mut point_release = Vec::new();
    let mut replaced = Vec::new();
    let mut tampered = None;
    for f in &deb_files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("cpio_") {
            let version = name.split('_').nth(1).unwrap().replace("%3a", ":");
            let out = sh(Command::new(&mirror_sh).arg("repack").arg(f).arg(&version).arg(&bumped));
            point_release.push(PathBuf::from(out.trim()));
            tampered = Some(name);
        } else if name.starts_with("hostname_") || name.starts_with("jq_") {
            let (pkg, rest) = name.split_once('_').unwrap();
            let version = rest.split_once('_').unwrap().0.replace("%3a", ":");
            let new = format!("{version}+nodeimg1");
            let out = sh(Command::new(&mirror_sh).arg("repack").arg(f).arg(&new).arg(&bumped));
            point_release.push(PathBuf::from(out.trim()));
            replaced.push((pkg.to_owned(), version, new));
        } else {
            point_release.push(f.clone());
        }
    }
    assert_eq!(replaced.len(), 2, "hostname and jq are in the lock: {replaced:?}");
    let tampered = tampered.expect("cpio is in the lock");
    suite(&root.join("debian"), "trixie", &point_release);
    suite(&root.join("debian-security"), "trixie-security", &[]);
    let server = Server::start(&root, None, 1800);
    let key = ["--keyring".as_ref(), keyring.as_path()];

    // 1. Snapshot: the lock resolves unchanged, and the build is bit-identical to the live one.
    let check = nodeimg(
        &["lock", "--check", "--snapshot", STAMP, "--snapshot-mirror", &server.url, "--profiles-dir"],
        &[&profiles, key[0], key[1]],
    );
    assert_eq!(check.code, 0, "lock --check against the snapshot that has exactly the lock:\n{check:?}");
    let snap = nodeimg(
        &["build", "--json", "--snapshot", STAMP, "--snapshot-mirror", &server.url, "--out"],
        &[&tmp.join("snap"), Path::new("--profiles-dir"), &profiles, key[0], key[1]],
    );
    assert_eq!(snap.code, 0, "build from the snapshot:\n{snap:?}");
    let snap_top =
        PathBuf::from(serde_json::from_str::<serde_json::Value>(&snap.stdout).unwrap()["dir"].as_str().unwrap());
    for f in ["disk.raw", "uki.efi", "esp.raw", "root.raw", "root-verity.raw", "reference-values.json"] {
        assert!(
            fs::read(snap_top.join("qemu").join(f)).unwrap() == fs::read(live_dir.join(f)).unwrap(),
            "{f}: the snapshot build differs from the live one"
        );
    }
    let info: serde_json::Value = serde_json::from_slice(&fs::read(snap_top.join("build.json")).unwrap()).unwrap();
    assert_eq!(
        info["provenance"]["package_source"],
        serde_json::json!({"kind": "snapshot", "url": server.url, "snapshot": STAMP, "immutable": true}),
        "{info:#}"
    );

    // 2. The point release: lock --check names the moves and the dropped pins …
    let check = nodeimg(
        &["lock", "--check", "--json", "--mirror", &server.url, "--profiles-dir"],
        &[&profiles, key[0], key[1]],
    );
    assert_eq!(check.code, 1, "{check:?}");
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    for (pkg, old, new) in &replaced {
        let scope = if pkg == "hostname" { "image" } else { "tools" };
        let changes = report["changes"].as_array().unwrap();
        assert!(
            changes.contains(
                &serde_json::json!({"change": "changed", "scope": scope, "name": pkg, "from": old, "to": new})
            ),
            "{pkg}: {report:#}"
        );
        assert!(
            report["dropped"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"scope": scope, "name": pkg, "version": old})),
            "{pkg} {old} dropped: {report:#}"
        );
    }
    // … and the build fails closed, naming both and the ways out, leaving nothing behind.
    let out = tmp.join("moved");
    let moved = nodeimg(
        &["build", "--mirror", &server.url, "--out"],
        &[&out, Path::new("--profiles-dir"), &profiles, key[0], key[1]],
    );
    assert_eq!(moved.code, 2, "{moved:?}");
    for (pkg, old, new) in &replaced {
        assert!(moved.stderr.contains(&format!("{pkg} {old} -> {new}")), "{pkg}: {moved:?}");
    }
    assert!(moved.stderr.contains(&format!("{tampered} has sha256")), "{tampered}: {moved:?}");
    for way in ["--snapshot STAMP", "--packages DIR", "nodeimg lock"] {
        assert!(moved.stderr.contains(way), "{way}: {moved:?}");
    }
    let left: Vec<_> = fs::read_dir(&out).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "a failed build leaves nothing in out/: {left:?}");
    // Nor anything that fails the next build from an honest source: the download under cpio's
    // locked name with the mirror's other bytes is evicted (the package check of a later build
    // would take it for what that build installed), and what mkosi cached from those packages is
    // dropped. The reference build, again, passes.
    let archives = cache().join("packages/cache/apt/archives");
    assert!(
        moved.stderr.lines().any(|l| l.contains("removed from the download cache") && l.contains(&tampered)),
        "{tampered} evicted: {moved:?}"
    );
    let genuine = fs::read(debs.join(&tampered)).unwrap();
    assert!(
        fs::read(archives.join(&tampered)).map_or(true, |b| b == genuine),
        "{}: the mirror's {tampered} is still in the download cache",
        archives.display()
    );
    let again = nodeimg(&["build", "--json", "--out"], &[&[tmp.join("again").as_path()], &extra[1..]].concat());
    assert_eq!(again.code, 0, "the reference build after the failed one:\n{again:?}");

    drop(server);
    let _ = fs::remove_dir_all(&tmp);
}
