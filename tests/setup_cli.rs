//! `make setup` after the archive has moved on: pinned .debs are kept by content, so a second
//! setup downloads nothing, and a pinned version the archive no longer has stops setup at once
//! with the file, its sha256 and the one command that fixes it (scripts/setup-lib.sh).
//!
//! The same for `nodeimg setup` and its tools cache (mkosi, Debian's OVMF builds, and with
//! `--test-inputs` the test suite's systemd-stub and kernels), against a local mirror on
//! 127.0.0.1 serving the pinned .debs that `make setup` fetched: a corrupted .deb, idempotence,
//! no network, a mirror that is down or has dropped the version.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::http::Server;
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

// ---- `nodeimg setup`: the tools cache (docs/tools-cache.md) ----

/// The .debs `make setup` pinned in scripts/setup.d/31-ovmf.sh and 70-mkosi.sh before it ran
/// `nodeimg setup` (package=version, sha256), copied from there: nodeimg's own table must fetch
/// exactly these.
const PINNED: [(&str, &str); 3] = [
    ("ovmf=2022.11-6+deb12u2", "e73d3d1a8799f7f6fc16b73501d913edcdd86237556fbff30693e747e6dc262e"),
    ("ovmf=2025.02-8+deb13u1", "78e0d54df11fc77406cb7a0bc9a39e5bca6d1cbe06556b91d9a73491c52decdf"),
    ("mkosi=25.3-7", "ef56c81324fd47d65490e944ec4697bb3f6fb21326d0d071bfc2fb5ba5383252"),
];

/// The test inputs `scripts/setup.d/40-uki-fixtures.sh` pinned (`UKI_DEBS`) before
/// `nodeimg setup --test-inputs` fetched them, copied from there: package=version, the .deb's
/// sha256, and the name under the tools cache the tests read the file by.
const TEST_INPUTS: [(&str, &str, &str); 3] = [
    (
        "systemd-boot-efi=257.13-1~deb13u1",
        "390ecdcef9bbb753f51bb6d8f696bdae2f1dbedde7239c49ccb2512f137a8933",
        "uki/linuxx64.efi.stub",
    ),
    (
        "linux-image-6.12.117+deb13-cloud-amd64=6.12.117-1",
        "e9893e5295d0549b8852611f12a4b8b5f6cc4b8128dcc2086b9847793b904ab7",
        "uki/vmlinuz.signed",
    ),
    (
        "linux-image-6.12.117+deb13-cloud-amd64-unsigned=6.12.117-1",
        "4113a615a1f1535ed4356ca03d428c74536b00f6ccb58e049a2ffd6a1cb3f1ad",
        "uki/vmlinuz.unsigned",
    ),
];

/// Every pinned .deb: the build's, then the test inputs'.
fn all_pins() -> Vec<(&'static str, &'static str)> {
    PINNED.iter().copied().chain(TEST_INPUTS.iter().map(|(p, s, _)| (*p, *s))).collect()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A pinned .deb from what `make setup` left: the checkout's tools cache (tools/debs/, written by
/// `nodeimg setup`) or the setup .deb cache of earlier setups (~/.cache/nodeimg/setup-debs/).
fn pinned_deb(sha: &str) -> std::path::PathBuf {
    let var = |v: &str| std::env::var_os(v).filter(|x| !x.is_empty()).map(std::path::PathBuf::from);
    let setup_debs = var("NODEIMG_SETUP_DEBS").unwrap_or_else(|| {
        var("XDG_CACHE_HOME")
            .unwrap_or_else(|| var("HOME").unwrap_or_default().join(".cache"))
            .join("nodeimg/setup-debs")
    });
    [repo().join("tools/debs"), setup_debs]
        .iter()
        .map(|d| d.join(format!("{sha}.deb")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("the pinned {sha}.deb is in neither tools/debs/ nor the setup .deb cache: run `make setup`")
        })
}

/// `dpkg-deb -f DEB FIELD`: the oracle for where the archive keeps a package.
fn control(deb: &Path, field: &str) -> String {
    let out = Command::new("dpkg-deb").arg("-f").arg(deb).arg(field).output().expect("dpkg-deb: run `make setup`");
    assert!(out.status.success(), "dpkg-deb -f {} {field}", deb.display());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A Debian mirror's pool holding the pinned .debs, each where Debian's archive keeps it:
/// pool/main/<first letter of the source>/<source>/<package>_<version>_<arch>.deb, from the
/// .deb's own control fields (`Source:` may carry a version in parentheses). The files are hard
/// links where they can be (the kernels are 35 MB each): alter them with [`flip_last_byte`] only.
fn mirror_with_pinned_debs(root: &Path, pins: &[(&str, &str)]) -> Vec<std::path::PathBuf> {
    let mut placed = Vec::new();
    for &(pkgver, sha) in pins {
        let deb = pinned_deb(sha);
        let package = control(&deb, "Package");
        let version = control(&deb, "Version");
        assert_eq!(format!("{package}={version}"), pkgver, "{}", deb.display());
        let source = control(&deb, "Source");
        let source = source.split_whitespace().next().filter(|s| !s.is_empty()).unwrap_or(&package).to_owned();
        let arch = control(&deb, "Architecture");
        let dir = root.join("pool/main").join(&source[..1]).join(&source);
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join(format!("{package}_{}_{arch}.deb", version.replace(':', "%3a")));
        if fs::hard_link(&deb, &dest).is_err() {
            fs::copy(&deb, &dest).unwrap();
        }
        placed.push(dest);
    }
    placed
}

fn setup(tools: &Path, extra: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .arg("setup")
        .arg("--tools-dir")
        .arg(tools)
        .args(extra)
        .output()
        .expect("running nodeimg")
        .into()
}

/// Every file under `dir` (relative paths), for "nothing half-written" checks.
fn files_under(dir: &Path) -> Vec<String> {
    let out = Command::new("find").arg(dir).args(["-mindepth", "1", "-printf", "%P\\n"]).output().unwrap();
    let mut v: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// Nothing partial, and every kept .deb is named by its content.
#[track_caller]
fn assert_consistent(tools: &Path) {
    let files = files_under(tools);
    assert!(!files.iter().any(|f| f.contains(".partial")), "partial files left: {files:?}");
    for f in files.iter().filter(|f| f.starts_with("debs/")) {
        let bytes = fs::read(tools.join(f)).unwrap();
        assert_eq!(format!("debs/{}.deb", hex::encode(Sha256::digest(&bytes))), *f, "a .deb not named by its content");
    }
}

fn gets(log: &Path) -> usize {
    fs::read_to_string(log).unwrap().lines().filter(|l| l.contains("\"GET ")).count()
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))))
}

/// `nodeimg setup` from a local mirror: a corrupted .deb is refused (exit 2, nothing of it kept,
/// nothing partial); then every pinned package is fetched, checked and unpacked (OVMF.fd as the
/// measure tables' oracles hashed it, mkosi that says it is 25.3); a second run downloads
/// nothing; and with the cache filled, setup works without a network (`unshare --net`).
#[test]
fn setup_fetches_checks_and_unpacks_the_pinned_tools() {
    let t = tempfile::tempdir().unwrap();
    let mirror = t.path().join("mirror");
    // The mirror holds the test inputs too: a plain setup must not ask for them.
    let placed = mirror_with_pinned_debs(&mirror, &all_pins());
    let log = t.path().join("requests.log");
    let server = Server::start(&mirror, Some(&log), 600);
    let tools = t.path().join("tools");

    // The trixie OVMF .deb altered by one byte on the mirror.
    let good = fs::read(&placed[1]).unwrap();
    flip_last_byte(&placed[1]);
    let run = setup(&tools, &["--mirror", &server.url]);
    assert_eq!(run.code, 2, "{run:?}");
    for want in [
        "ovmf_2025.02-8+deb13u1_all.deb is pinned to 78e0d54df11fc77406cb7a0bc9a39e5bca6d1cbe06556b91d9a73491c52decdf",
        "nothing was kept",
        &format!("{}/pool/main/e/edk2/ovmf_2025.02-8+deb13u1_all.deb: sha256 is ", server.url),
    ] {
        assert!(run.stderr.contains(want), "{want:?}: {run:?}");
    }
    assert_consistent(&tools);
    assert!(!tools.join("ovmf/2025.02-8+deb13u1").exists(), "{:?}", files_under(&tools));
    assert!(!tools.join("debs/78e0d54df11fc77406cb7a0bc9a39e5bca6d1cbe06556b91d9a73491c52decdf.deb").exists());
    fs::write(&placed[1], &good).unwrap();

    let run = setup(&tools, &["--mirror", &server.url, "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let pkgs = report["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), PINNED.len(), "{run:?}");
    for (p, (pkgver, sha)) in pkgs.iter().zip(PINNED) {
        assert_eq!(format!("{}={}", p["package"].as_str().unwrap(), p["version"].as_str().unwrap()), pkgver);
        assert_eq!(p["sha256"], sha);
        let (package, version) = pkgver.split_once('=').unwrap();
        let dir = tools.join(package).join(version);
        assert_eq!(fs::read_to_string(dir.join(".nodeimg-sha256")).unwrap().trim(), sha, "{pkgver}");
        assert!(tools.join(format!("debs/{sha}.deb")).is_file(), "{pkgver}");
    }
    // The bookworm OVMF was set up by the first, failed run already.
    assert_eq!(pkgs[0]["action"], "present", "{run:?}");
    assert_eq!(pkgs[1]["action"], "downloaded", "{run:?}");
    assert_consistent(&tools);
    // Building images needs none of the test inputs.
    let requests = fs::read_to_string(&log).unwrap();
    assert!(!requests.contains("linux-image") && !requests.contains("systemd-boot-efi"), "{requests}");
    assert!(!tools.join("uki").exists(), "{:?}", files_under(&tools));

    // The firmware is the one measure's oracles (td-shim, dstack-mr) computed MRTDs for.
    let table = fs::read_to_string(repo().join("measure/testdata/tdx-mrtd.tsv")).unwrap();
    let mut checked = 0;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let bytes = fs::read(tools.join(f[0])).unwrap_or_else(|e| panic!("{}: {e}", f[0]));
        assert_eq!(hex::encode(Sha256::digest(&bytes)), f[1], "{}", f[0]);
        checked += 1;
    }
    assert!(checked >= 2, "{table}");
    // mkosi runs from the wrapper, and says what it is.
    let out = Command::new(tools.join("bin/mkosi")).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "mkosi 25.3", "{out:?}");

    // Idempotent: nothing is downloaded again.
    let before = gets(&log);
    let wrapper = fs::metadata(tools.join("bin/mkosi")).unwrap().modified().unwrap();
    let run = setup(&tools, &["--mirror", &server.url]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(gets(&log), before, "downloaded again: {run:?}");
    assert_eq!(run.stdout.matches("  present  ").count(), PINNED.len(), "{run:?}");
    assert_eq!(fs::metadata(tools.join("bin/mkosi")).unwrap().modified().unwrap(), wrapper, "wrapper rewritten");
    drop(server);

    // Offline, from a cache holding only the .debs (as one filled by hand): unpacked, no network.
    let offline = t.path().join("offline");
    fs::create_dir_all(offline.join("debs")).unwrap();
    for (_, sha) in PINNED {
        fs::copy(tools.join(format!("debs/{sha}.deb")), offline.join(format!("debs/{sha}.deb"))).unwrap();
    }
    let out = Command::new("unshare")
        .arg("--net")
        .arg(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["setup", "--tools-dir"])
        .arg(&offline)
        .output()
        .expect("unshare (util-linux): run `make setup`");
    let run: Run = out.into();
    assert_eq!(run.code, 0, "offline setup from a filled cache (unshare --net needs root or user namespaces): {run:?}");
    assert_eq!(run.stdout.matches("unpacked from the cached .deb").count(), PINNED.len(), "{run:?}");
    assert_consistent(&offline);
    assert_eq!(files_under(&offline.join("mkosi")), files_under(&tools.join("mkosi")));
}

/// Alters the last byte of `path` in a new file (never through a hard link to the original).
fn flip_last_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::remove_file(path).unwrap();
    fs::write(path, bytes).unwrap();
}

/// `nodeimg setup --test-inputs`: the stub and the kernels the uki and boot tests read, fetched
/// from the mirror and checked by the .deb's sha256; each named file is what
/// uki/testdata/debian.json (trixie's ukify and Python's hashlib, gen_debian.py) was made from.
/// A corrupted or missing .deb stops setup with exit 2 naming the fix (with `--test-inputs`);
/// a copy an older `make setup` left under the name is replaced; a second run downloads nothing
/// and restores a removed name from what is unpacked.
#[test]
fn setup_test_inputs_fetches_the_stub_and_the_kernels_by_their_pins() {
    let t = tempfile::tempdir().unwrap();
    let mirror = t.path().join("mirror");
    let placed = mirror_with_pinned_debs(&mirror, &all_pins());
    let stub_deb = &placed[PINNED.len()];
    let log = t.path().join("requests.log");
    let server = Server::start(&mirror, Some(&log), 600);
    let tools = t.path().join("tools");
    let (stub_sha, stub_file) = (TEST_INPUTS[0].1, "systemd-boot-efi_257.13-1~deb13u1_amd64.deb");

    // The archive has dropped the stub's version: the fix names --test-inputs.
    let kept = t.path().join("stub.deb");
    fs::rename(stub_deb, &kept).unwrap();
    let run = setup(&tools, &["--mirror", &server.url, "--test-inputs"]);
    assert_eq!(run.code, 2, "{run:?}");
    for want in [
        &format!("cannot fetch {}/pool/main/s/systemd/{stub_file}: HTTP 404", server.url),
        &format!("needed: {stub_file} with sha256 {stub_sha}"),
        "nodeimg setup --test-inputs --mirror http://snapshot.debian.org/archive/debian/STAMP",
        &format!("put any copy of that file at {}/debs/{stub_sha}.deb by hand", tools.display()),
        "then run `nodeimg setup --test-inputs` again",
    ] {
        assert!(run.stderr.contains(want), "{want:?}: {run:?}");
    }
    fs::rename(&kept, stub_deb).unwrap();

    // A damaged mirror: the stub's .deb altered by one byte is refused, and nothing of it kept.
    let good = fs::read(stub_deb).unwrap();
    flip_last_byte(stub_deb);
    let run = setup(&tools, &["--mirror", &server.url, "--test-inputs"]);
    assert_eq!(run.code, 2, "{run:?}");
    for want in [
        &format!("{}/pool/main/s/systemd/{stub_file}: sha256 is ", server.url),
        &format!("{stub_file} is pinned to {stub_sha}; nothing was kept"),
        &format!("try another --mirror, or put the pinned file at {}/debs/{stub_sha}.deb by hand", tools.display()),
    ] {
        assert!(run.stderr.contains(want), "{want:?}: {run:?}");
    }
    assert_consistent(&tools);
    assert!(!tools.join(format!("debs/{stub_sha}.deb")).exists());
    assert!(!tools.join("systemd-boot-efi").exists() && !tools.join("uki").exists(), "{:?}", files_under(&tools));
    fs::remove_file(stub_deb).unwrap();
    fs::write(stub_deb, &good).unwrap();

    // What an older `make setup` left: a copy under the name, here a wrong one.
    fs::create_dir_all(tools.join("uki")).unwrap();
    fs::write(tools.join("uki/vmlinuz.signed"), b"an older copy").unwrap();

    let run = setup(&tools, &["--mirror", &server.url, "--test-inputs", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let pkgs = report["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), PINNED.len() + TEST_INPUTS.len(), "{run:?}");
    let fixture: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(repo().join("uki/testdata/debian.json")).unwrap()).unwrap();
    for (p, (pkgver, sha, name)) in pkgs[PINNED.len()..].iter().zip(TEST_INPUTS) {
        assert_eq!(format!("{}={}", p["package"].as_str().unwrap(), p["version"].as_str().unwrap()), pkgver);
        assert_eq!((&p["sha256"], &p["action"]), (&sha.into(), &"downloaded".into()), "{run:?}");
        assert_eq!(p["files"], serde_json::json!([tools.join(name)]), "{run:?}");
        assert!(tools.join(format!("debs/{sha}.deb")).is_file(), "{pkgver}");
        // Only the named file is unpacked (not a kernel's modules), with the .deb's stamp.
        let (package, version) = pkgver.split_once('=').unwrap();
        let dir = tools.join(package).join(version);
        assert_eq!(fs::read_to_string(dir.join(".nodeimg-sha256")).unwrap().trim(), sha, "{pkgver}");
        let unpacked: Vec<String> =
            files_under(&dir).into_iter().filter(|f| fs::metadata(dir.join(f)).unwrap().is_file()).collect();
        assert_eq!(unpacked.len(), 2, "{pkgver}: {unpacked:?}");
        // The file is the one the uki fixtures were made from.
        let key = name.strip_prefix("uki/").unwrap();
        assert_eq!(sha256_of(&tools.join(name)), fixture["binaries"][key]["sha256"].as_str().unwrap(), "{name}");
    }
    assert_eq!(pkgs[0]["action"], "present", "set up by the failed runs already: {run:?}");
    assert_consistent(&tools);

    // Idempotent: nothing downloaded, the links untouched; a removed name comes back from what
    // is unpacked.
    let before = gets(&log);
    let link = |name: &str| fs::read_link(tools.join(name)).unwrap();
    let signed = link("uki/vmlinuz.signed");
    fs::remove_file(tools.join("uki/vmlinuz.unsigned")).unwrap();
    let run = setup(&tools, &["--mirror", &server.url, "--test-inputs"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(gets(&log), before, "downloaded again: {run:?}");
    assert_eq!(run.stdout.matches("  present  ").count(), PINNED.len() + TEST_INPUTS.len(), "{run:?}");
    assert_eq!(link("uki/vmlinuz.signed"), signed);
    assert_eq!(sha256_of(&tools.join("uki/vmlinuz.unsigned")), fixture["binaries"]["vmlinuz.unsigned"]["sha256"]);
    assert_consistent(&tools);
}

/// A mirror that is down, or that no longer has the pinned version (HTTP 404): exit 2 naming the
/// URL, the file and its sha256, a snapshot mirror and where to put the file by hand; nothing is
/// left half-written.
#[test]
fn setup_names_the_file_and_the_fix_when_the_mirror_cannot_serve_it() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty-mirror");
    fs::create_dir_all(&empty).unwrap();
    let server = Server::start(&empty, Some(&t.path().join("requests.log")), 600);
    for (mirror, why) in [("http://127.0.0.1:1", "Connection refused"), (server.url.as_str(), "HTTP 404")] {
        let tools = t.path().join(format!("tools-{}", why.len()));
        let run = setup(&tools, &["--mirror", mirror]);
        let sha = PINNED[0].1;
        assert_eq!(run.code, 2, "{run:?}");
        for want in [
            &format!("cannot fetch {mirror}/pool/main/e/edk2/ovmf_2022.11-6+deb12u2_all.deb"),
            why,
            &format!("needed: ovmf_2022.11-6+deb12u2_all.deb with sha256 {sha}"),
            "nodeimg setup --mirror http://snapshot.debian.org/archive/debian/STAMP",
            &format!("put any copy of that file at {}/debs/{sha}.deb by hand", tools.display()),
        ] {
            assert!(run.stderr.contains(want), "{want:?}: {run:?}");
        }
        assert_consistent(&tools);
        assert!(!tools.join("ovmf").exists() && !tools.join("bin").exists(), "{:?}", files_under(&tools));
    }
}
