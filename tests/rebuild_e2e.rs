//! Rebuildable forever: a release can be rebuilt later, offline, bit for bit, and checked
//! against its signed values — with the real mkosi.
//!
//! 1. `nodeimg lock --check` and then `nodeimg build` on one cache directory: the lock's
//!    unpinned resolution must not leave anything the pinned build reuses (the trap of
//!    2026-12-04: "packages differ from the lock" although every pin was still there). The
//!    build takes the cached package set when there is one (`common::image_package_source`).
//! 2. `nodeimg release --with-packages` publishes the lock's .debs; `nodeimg rebuild` of that
//!    release, in a network namespace without routes (`unshare --net`: no mirror can be reached),
//!    builds from the release's own package archive and must find every artefact and every
//!    reference value identical to the signed bundle (exit 0).
//! 3. Bad input never reaches mkosi: a bundle that does not verify (exit 1, nothing rebuilt), a
//!    package archive with an altered .deb (exit 2, naming it), a profile tree whose content
//!    hash differs (exit 2).
//!
//! Takes 4–6 minutes on the 2-core CI machine (the lock resolution and the offline rebuild are
//! cold mkosi runs by design; the first build is warm after `make image`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Run;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nodeimg(args: &[&std::ffi::OsStr]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_nodeimg")).args(args).output().expect("running nodeimg").into()
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

#[test]
fn lock_then_build_then_offline_rebuild_of_a_release() {
    assert!(repo().join("tools/bin/mkosi").exists(), "tools/bin/mkosi is missing: run `make setup`");
    let unshare = Command::new("unshare").args(["--net", "true"]).status();
    assert!(unshare.is_ok_and(|s| s.success()), "`unshare --net` must work (util-linux, root): run `make setup`");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rebuild-e2e");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let profiles = repo().join("mkosi-profiles");
    let p = |x: &Path| x.as_os_str().to_owned();

    // 1. lock --check, then build, on one cache directory. The default cache: warm after
    //    `make image`; lock's own resolution is always cold.
    let check = nodeimg(args!["lock", "--check", "--profiles-dir", &p(&profiles)]);
    assert!(
        check.code == 0 || check.code == 1,
        "lock --check exits 0 (current) or 1 (the archive has moved on):\n{check:?}"
    );
    let out = tmp.join("out");
    let source = common::image_package_source();
    let mut build_args: Vec<std::ffi::OsString> =
        ["build", "--json", "--profiles-dir"].iter().map(Into::into).collect();
    build_args.extend([p(&profiles), "--out".into(), p(&out)]);
    build_args.extend(source.iter().map(Into::into));
    let build: Run = Command::new(env!("CARGO_BIN_EXE_nodeimg")).args(&build_args).output().unwrap().into();
    assert_eq!(build.code, 0, "build after lock --check on the same cache:\n{build:?}");
    let report: serde_json::Value = serde_json::from_str(&build.stdout).unwrap();
    let built = PathBuf::from(report["dir"].as_str().unwrap());
    let info: serde_json::Value = serde_json::from_slice(&fs::read(built.join("build.json")).unwrap()).unwrap();
    let prov = &info["provenance"];
    if source.is_empty() {
        assert_eq!(prov["package_source"]["kind"], "mirror", "{prov:#}");
        assert_eq!(prov["package_source"]["immutable"], false, "the live archive moves on: {prov:#}");
    } else {
        assert_eq!(prov["package_source"], serde_json::json!({"kind": "archive", "immutable": true}), "{prov:#}");
    }
    assert_eq!(prov["profile_tree_sha256"].as_str().map(str::len), Some(64), "{prov:#}");
    // The qemu platform's firmware, by name and content: the pinned .deb (its sha256 as
    // scripts/setup.d/31-ovmf.sh pinned it) and the OVMF.fd whose MRTDs td-shim and dstack-mr
    // computed (measure/testdata/tdx-mrtd.tsv).
    let mrtd_table = fs::read_to_string(repo().join("measure/testdata/tdx-mrtd.tsv")).unwrap();
    let ovmf_sha256 = mrtd_table
        .lines()
        .find_map(|l| l.strip_prefix("ovmf/2025.02-8+deb13u1/usr/share/ovmf/OVMF.fd\t"))
        .and_then(|rest| rest.split('\t').next())
        .expect("trixie's OVMF.fd in tdx-mrtd.tsv");
    assert_eq!(
        prov["firmware"],
        serde_json::json!([{
            "name": "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd",
            "sha256": ovmf_sha256,
            "deb_sha256": "78e0d54df11fc77406cb7a0bc9a39e5bca6d1cbe06556b91d9a73491c52decdf",
        }]),
        "{prov:#}"
    );

    // 2. Release with packages, rebuild offline.
    let rel = tmp.join("release");
    let r = release_with_packages(&built, &rel, &profiles);
    assert_eq!(r.code, 0, "release --with-packages:\n{r:?}");
    let release = rel.join("nodeimg-0.1.0");
    let pubkey = rel.join("insecure-dev-key/nodeimg-dev.pub");
    let sums = fs::read_to_string(release.join("SHA256SUMS")).unwrap();
    let debs = sums.lines().filter(|l| l.contains("  packages/") && l.ends_with(".deb")).count();
    let lock = fs::read_to_string(profiles.join("packages.lock")).unwrap();
    let mut locked: Vec<String> = lock
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("snapshot"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{}_{}_{}.deb", f[1], f[2].replace(':', "%3a"), f[3])
        })
        .collect();
    locked.sort();
    locked.dedup();
    assert_eq!(debs, locked.len(), "SHA256SUMS lists every .deb of the lock");
    let verify = nodeimg(args!["verify", "--bundle", &p(&release.join("bundle.json")), "--pubkey", &p(&pubkey)]);
    assert_eq!(verify.code, 0, "{verify:?}");

    let offline = rebuild_offline(&release, &pubkey, &profiles);
    assert_eq!(offline.code, 0, "offline rebuild from the release's packages:\n{offline:?}");
    assert!(offline.stdout.contains("identical: nodeimg 0.1.0 rebuilt from the package archive"), "{offline:?}");
    // Each stage said what it was doing (plain lines: stderr is not a terminal), each rebuilt
    // artefact hashed with its size.
    for want in [
        "== verifying ",
        "== checking nodeimg 0.1.0 and its package lock against the bundle",
        "== rebuilding qemu from the package archive",
        "== comparing the ",
        "‣ hashing qemu/disk.raw (",
        "‣ hashing qemu/uki.efi (",
    ] {
        assert!(offline.stderr.contains(want), "{want:?}: {offline:?}");
    }

    // 2b. A release whose UKI is not what its sources give (the build output edited before
    //     release): the rebuild says so, down to the section.
    let edited = tmp.join("edited");
    copy_dir(&built, &edited, &[]);
    let uki = edited.join("qemu/uki.efi");
    let cmdline = report["platforms"][0]["cmdline"].as_str().unwrap().to_owned();
    let r = nodeimg(args![
        "uki",
        "set-cmdline",
        &p(&uki),
        "--cmdline",
        &format!("{cmdline} init=/bin/sh"),
        "-o",
        &p(&edited.join("uki.efi"))
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    fs::rename(edited.join("uki.efi"), &uki).unwrap();
    let manifest_path = edited.join("qemu/manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    let bytes = fs::read(&uki).unwrap();
    for a in manifest["artefacts"].as_array_mut().unwrap() {
        if a["name"] == "uki.efi" {
            a["size"] = bytes.len().into();
            a["sha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)).into();
        }
    }
    fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let rel2 = tmp.join("release2");
    let r = release_with_packages(&edited, &rel2, &profiles);
    assert_eq!(r.code, 0, "release of the edited build:\n{r:?}");
    let differs =
        rebuild_offline(&rel2.join("nodeimg-0.1.0"), &rel2.join("insecure-dev-key/nodeimg-dev.pub"), &profiles);
    assert_eq!(differs.code, 1, "{differs:?}");
    for want in ["DIFFERS  artefact qemu/uki.efi", "section .cmdline differs", "DIFFERENT: nodeimg 0.1.0"] {
        assert!(differs.stdout.contains(want), "{want:?}: {differs:?}");
    }
    assert!(!differs.stdout.contains("artefact qemu/root.raw"), "only the UKI differs: {differs:?}");
    let _ = fs::remove_dir_all(&edited);
    let _ = fs::remove_dir_all(&rel2);

    // 3. Bad input, refused before mkosi.
    // A bundle that does not verify: exit 1, nothing rebuilt.
    let forged = tmp.join("forged");
    copy_dir(&release, &forged, &["packages"]);
    let text = fs::read_to_string(forged.join("bundle.json")).unwrap();
    fs::write(forged.join("bundle.json"), text.replacen("\"qemu-vtpm\"", "\"qemu-vtpn\"", 1)).unwrap();
    let r = nodeimg(args!["rebuild", &p(&forged), "--pubkey", &p(&pubkey), "--profiles", &p(&profiles)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("verification failed") && r.stderr.contains("nothing was rebuilt"), "{r:?}");
    assert!(r.stderr.starts_with("== verifying ") && !r.stderr.contains("== rebuilding"), "{r:?}");

    // A package archive with an altered .deb: exit 2 naming it.
    let pkgs = tmp.join("pkgs");
    copy_dir(&release.join("packages"), &pkgs, &[]);
    let victim = pkgs.join(&locked[0]);
    let mut bytes = fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::remove_file(&victim).unwrap();
    fs::write(&victim, bytes).unwrap();
    let r = nodeimg(args![
        "rebuild",
        &p(&release),
        "--pubkey",
        &p(&pubkey),
        "--profiles",
        &p(&profiles),
        "--packages",
        &p(&pkgs)
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&locked[0]) && r.stderr.contains("the lock says"), "{r:?}");

    // Profiles whose content differs from the recorded tree: exit 2.
    let other = tmp.join("profiles");
    copy_dir(&profiles, &other, &[]);
    fs::write(other.join("mkosi.profiles/qemu/extra-file"), "x").unwrap();
    let r = nodeimg(args!["rebuild", &p(&release), "--pubkey", &p(&pubkey), "--profiles", &p(&other)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("content hash"), "{r:?}");

    let _ = fs::remove_dir_all(&tmp);
}

/// `nodeimg release --with-packages` of the build output `input` into `out`, signed with a
/// development key made under `out`.
fn release_with_packages(input: &Path, out: &Path, profiles: &Path) -> Run {
    let p = |x: &Path| x.as_os_str().to_owned();
    nodeimg(args![
        "release",
        "--version",
        "0.1.0",
        "--input",
        &p(input),
        "--out",
        &p(out),
        "--insecure-dev-key",
        "--with-packages",
        "--profiles-dir",
        &p(profiles)
    ])
}

/// `nodeimg rebuild RELEASE` in a network namespace without routes: no mirror can be reached.
fn rebuild_offline(release: &Path, pubkey: &Path, profiles: &Path) -> Run {
    Command::new("unshare")
        .arg("--net")
        .arg(env!("CARGO_BIN_EXE_nodeimg"))
        .arg("rebuild")
        .arg(release)
        .arg("--pubkey")
        .arg(pubkey)
        .arg("--profiles")
        .arg(profiles)
        .output()
        .expect("unshare (util-linux)")
        .into()
}

/// Copies a directory tree (files as copies, never links), leaving out top-level `skip` names.
fn copy_dir(src: &Path, dest: &Path, skip: &[&str]) {
    fs::create_dir_all(dest).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let (s, d) = (e.path(), dest.join(&name));
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&s, &d, &[]);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&s).unwrap(), &d).unwrap();
        } else {
            fs::copy(&s, &d).unwrap();
        }
    }
}
