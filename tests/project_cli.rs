//! Image projects from the command line (`nodeimg init`, `--project`), everything before mkosi
//! runs: what `init` writes, and that a project pinning another base, a stale lock or a broken
//! layout is refused with exit 2 naming the project's own files and the fix. The real build and
//! boot of a project is tests/web_node_e2e.rs.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{assert_fails, Run};
use sha2::Digest;

/// Where mkosi would be if the checks let it run: its absence, named in the error, shows that
/// every check before it passed.
const NEVER: &str = "/nonexistent/mkosi-must-not-run";

/// `nodeimg ARGS…` in `dir`, with a scratch cache and mkosi at [`NEVER`].
fn nodeimg(dir: &Path, args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(args)
        .env("NODEIMG_CACHE_DIR", dir.join("cache"))
        .env("NODEIMG_MKOSI", NEVER)
        .current_dir(dir)
        .output()
        .unwrap()
        .into()
}

#[test]
fn init_writes_a_project_and_refuses_to_overwrite() {
    let t = tempfile::tempdir().unwrap();
    let run = nodeimg(t.path(), &["init", "edge", "--platform", "qemu,gcp"]);
    assert_eq!(run.code, 0, "{run:?}");
    let p = t.path().join("edge");
    for f in [
        "nodeimg-project.json",
        "image/mkosi.conf",
        "platforms/qemu/mkosi.conf",
        "platforms/qemu/nodeimg.json",
        "platforms/gcp/nodeimg.json",
        "packages.lock",
        "README.md",
        ".gitignore",
    ] {
        assert!(p.join(f).is_file(), "{f} missing");
    }
    assert!(!p.join("platforms/aws").exists());
    let conf = fs::read_to_string(p.join("image/mkosi.conf")).unwrap();
    assert!(conf.contains("ImageId=edge\n") && conf.contains("ImageVersion=0.1.0\n"), "{conf}");
    // The platform profiles and the lock are the repository's (the base's) own.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("mkosi-profiles");
    assert_eq!(fs::read(p.join("packages.lock")).unwrap(), fs::read(repo.join("packages.lock")).unwrap());
    assert_eq!(
        fs::read(p.join("platforms/gcp/mkosi.conf")).unwrap(),
        fs::read(repo.join("mkosi.profiles/gcp/mkosi.conf")).unwrap()
    );

    let again = nodeimg(t.path(), &["init", "edge"]);
    assert_fails(&again, 2, &["exists and is not empty"]);
    let bad = nodeimg(t.path(), &["init", "other", "--platform", "vmware"]);
    assert_fails(&bad, 2, &["vmware", "aws, azure, gcp, qemu"]);
    let bad = nodeimg(t.path(), &["init", "Other_Name"]);
    assert_fails(&bad, 2, &["lower-case letters"]);
    let left: Vec<_> = fs::read_dir(t.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, ["edge"], "a refused init leaves nothing");
}

/// A project built on another base is refused before anything runs, naming both hashes.
#[test]
fn a_project_on_another_base_is_refused() {
    let t = tempfile::tempdir().unwrap();
    assert_eq!(nodeimg(t.path(), &["init", "p"]).code, 0);
    let p = t.path().join("p");
    fs::write(p.join("nodeimg-project.json"), "{\"base\": \"sha256:1234\"}\n").unwrap();
    for cmd in [&["build", "--project", "p"][..], &["lock", "--project", "p"]] {
        let run = nodeimg(t.path(), cmd);
        assert_fails(&run, 2, &["the project is built on base sha256:1234", "nodeimg lock"]);
    }
    // Malformed, and missing pieces.
    fs::write(p.join("nodeimg-project.json"), "{\"base\": 1}").unwrap();
    assert_fails(&nodeimg(t.path(), &["build", "--project", "p"]), 2, &["nodeimg-project.json", "expected"]);
    assert_fails(&nodeimg(t.path(), &["build", "--project", "nowhere"]), 2, &["--project nowhere"]);
    let not = t.path().join("not");
    fs::create_dir_all(&not).unwrap();
    assert_fails(&nodeimg(t.path(), &["build", "--project", "not"]), 2, &["not an image project", "nodeimg init"]);
    assert_fails(&nodeimg(t.path(), &["build", "--project", "p", "--profiles-dir", "x"]), 2, &["cannot be used with"]);
}

/// A package added to the project's image since the lock was made: exit 2 before mkosi runs,
/// naming the project's own file and `nodeimg lock --project` (not the composed tree), also
/// when the project is the working directory.
#[test]
fn a_stale_project_lock_names_the_project() {
    let t = tempfile::tempdir().unwrap();
    assert_eq!(nodeimg(t.path(), &["init", "web"]).code, 0);
    let p = t.path().join("web").canonicalize().unwrap();
    let conf = p.join("image/mkosi.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("Packages=curl\n");
    fs::write(&conf, text).unwrap();
    let run = nodeimg(t.path(), &["build", "--project", "web", "--out", "out"]);
    assert_fails(
        &run,
        2,
        &[
            &format!("image curl: asked for by Packages= in {}", conf.display()),
            &format!("nodeimg lock --project {}", p.display()),
        ],
    );
    assert!(!run.stderr.contains("projects/"), "the composed tree is not what the user edits: {run:?}");
    // The working directory is the project by default.
    let run = nodeimg(&p, &["build", "--out", "out"]);
    assert_fails(&run, 2, &["image curl", &format!("nodeimg lock --project {}", p.display())]);
    assert!(!p.join("out").exists() || fs::read_dir(p.join("out")).unwrap().next().is_none());
}

/// A project that adds nothing composes, passes every check and gets as far as mkosi; the
/// composed tree carries the project's name and version.
#[test]
fn an_unchanged_project_reaches_mkosi() {
    let t = tempfile::tempdir().unwrap();
    assert_eq!(nodeimg(t.path(), &["init", "plain"]).code, 0);
    let plain = t.path().join("plain");
    let run = nodeimg(&plain, &["build", "--out", "out"]);
    assert_fails(&run, 2, &["mkosi not found at /nonexistent/mkosi-must-not-run"]);
    let composed: Vec<_> = fs::read_dir(plain.join("cache/projects")).unwrap().flatten().collect();
    assert_eq!(composed.len(), 1, "one composed tree, no staging left");
    let tree = composed[0].path();
    let image = fs::read_to_string(tree.join("mkosi.conf.d/50-image/mkosi.conf")).unwrap();
    assert!(image.contains("ImageId=plain"), "{image}");
    assert!(tree.join("mkosi.repart/10-root.conf").is_file());
}

/// A firmware path in a project's `nodeimg.json` is relative to the project (not to the tree
/// composed from it): a missing one is named there, before mkosi runs.
#[test]
fn project_firmware_paths_are_relative_to_the_project() {
    let t = tempfile::tempdir().unwrap();
    assert_eq!(nodeimg(t.path(), &["init", "fw"]).code, 0);
    let p = t.path().join("fw").canonicalize().unwrap();
    let json = p.join("platforms/qemu/nodeimg.json");
    let text = fs::read_to_string(&json).unwrap();
    let pinned = "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd";
    assert!(text.contains(pinned), "the template names the pinned firmware: {text}");
    fs::write(&json, text.replace(pinned, "firmware/OVMF.fd")).unwrap();
    let run = nodeimg(&p, &["build", "--out", "out"]);
    assert_fails(&run, 2, &[&format!("{}", p.join("firmware/OVMF.fd").display()), "does not exist"]);
    assert!(!run.stderr.contains("mkosi-must-not-run"), "{run:?}");
}

/// A system extension systemd-sysext on the base would not merge is refused before mkosi, by
/// every command that takes the project, naming the file and what it must say.
#[test]
fn a_sysext_the_node_would_not_merge_is_refused() {
    let t = tempfile::tempdir().unwrap();
    assert_eq!(nodeimg(t.path(), &["init", "p"]).code, 0);
    let release = t.path().join("p/sysext/web/usr/lib/extension-release.d/extension-release.web");
    fs::create_dir_all(release.parent().unwrap()).unwrap();
    fs::write(&release, "ID=debian\nVERSION_ID=12\n").unwrap();
    for cmd in [&["build", "--project", "p"][..], &["lock", "--project", "p"], &["lock", "--check", "--project", "p"]] {
        let run = nodeimg(t.path(), cmd);
        assert_fails(&run, 2, &["extension-release.web", "VERSION_ID=12", "VERSION_ID=13", "SYSEXT_SCOPE=system"]);
    }
    fs::write(&release, "ID=debian\nVERSION_ID=13\nSYSEXT_SCOPE=system\n").unwrap();
    fs::create_dir_all(t.path().join("p/sysext/web/etc")).unwrap();
    fs::write(t.path().join("p/sysext/web/etc/web.conf"), "").unwrap();
    assert_fails(&nodeimg(t.path(), &["build", "--project", "p"]), 2, &["sysext/web/etc", "only usr/ and opt/"]);
    // Once it is right, the checks pass and the build reaches mkosi.
    fs::remove_dir_all(t.path().join("p/sysext/web/etc")).unwrap();
    let run = nodeimg(t.path(), &["build", "--project", "p"]);
    assert!(run.stderr.contains(NEVER), "{run:?}");
}

/// The committed example is a project on this nodeimg's base whose lock covers its packages
/// (what tests/web_node_e2e.rs finds only after a build: here in a second).
#[test]
fn the_example_project_is_on_this_base() {
    let t = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web-node");
    let run = nodeimg(t.path(), &["build", "--project", example.to_str().unwrap(), "--out", "out"]);
    assert_fails(&run, 2, &["mkosi not found at /nonexistent/mkosi-must-not-run"]);
}

/// `nodeimg rebuild --project P` composes the project and compares its tree hash with the one
/// the signed bundle records before anything is built: another project is refused (exit 2),
/// naming the project, not the composed tree.
#[test]
fn rebuild_checks_the_project_against_the_bundle() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    assert_eq!(nodeimg(d, &["init", "p", "--platform", "qemu"]).code, 0);
    // A release whose build recorded another profile tree (all zeros).
    let values = serde_json::json!({
        "attestation_variant": "qemu-vtpm",
        "vtpm": {"sha256": {"4": {"value": "00".repeat(32), "status": "enforced"}}},
    });
    common::release::build_output(&d.join("build"), "0.1.0", &[("qemu", values, vec![("uki.efi", b"uki".to_vec())])]);
    let info_path = d.join("build/build.json");
    let mut info: serde_json::Value = serde_json::from_slice(&fs::read(&info_path).unwrap()).unwrap();
    info["provenance"]["profile_tree_sha256"] = serde_json::json!("00".repeat(32));
    let lock = fs::read(d.join("p/packages.lock")).unwrap();
    info["provenance"]["package_lock_sha256"] = serde_json::json!(hex::encode(sha2::Sha256::digest(&lock)));
    fs::write(&info_path, serde_json::to_vec_pretty(&info).unwrap()).unwrap();
    assert_eq!(nodeimg(d, &["keygen", "-o", "k", "--unencrypted", "-q"]).code, 0);
    let run =
        nodeimg(d, &["release", "--version", "0.1.0", "--input", "build", "--key", "k.key", "--out", "rel", "-q"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = nodeimg(d, &["rebuild", "rel/boot-capture-0.1.0", "--pubkey", "k.pub", "--project", "p"]);
    assert_fails(&run, 2, &["but the build was made from 0000", "p"]);
    assert!(!run.stderr.contains("/projects/"), "the composed tree is not named: {run:?}");
    assert!(!run.stderr.contains(NEVER), "nothing reached mkosi: {run:?}");
}
