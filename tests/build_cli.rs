//! `nodeimg build` on bad input: unknown profile, missing mkosi, mkosi failing, a full disk, an
//! interrupted build. Each must give a clear message and a non-zero exit, and leave nothing in
//! `out/` that looks complete. mkosi is replaced by a small script (NODEIMG_MKOSI) that
//! misbehaves on request; the real build is tests/image_e2e.rs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_fails, Run};

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mkosi-profiles")
}

/// A fake mkosi that prints like mkosi and then does what `script` says.
fn fake_mkosi(dir: &Path, script: &str) -> PathBuf {
    let path = dir.join("fake-mkosi");
    fs::write(&path, format!("#!/bin/sh\n[ \"$1\" = --version ] && {{ echo 'mkosi 25.3'; exit 0; }}\necho '‣ Building tools image'\necho 'Get:1 http://deb.debian.org/debian trixie/main amd64 bash amd64 5.2 [1,234 kB]'\n{script}\n")).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn build(dir: &Path, mkosi: &Path, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["build", "--out", "out", "--cache-dir", "cache", "--profiles-dir"])
        .arg(profiles())
        .args(extra)
        .env("NODEIMG_MKOSI", mkosi)
        .current_dir(dir)
        .output()
        .unwrap();
    out.into()
}

/// Nothing under out/ but hidden leftovers is a failure; hidden `.partial` must be gone too.
#[track_caller]
fn assert_no_output(dir: &Path) {
    let out = dir.join("out");
    let entries: Vec<String> = fs::read_dir(&out)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "out/ must be empty after a failed build: {entries:?}");
}

#[test]
fn unknown_profile() {
    let t = tempfile::tempdir().unwrap();
    let run = build(t.path(), Path::new("/bin/false"), &["--profile", "vmware"]);
    assert_fails(&run, 2, &["unknown profile \"vmware\"", "aws, azure, gcp, qemu, test"]);
    assert_no_output(t.path());
}

#[test]
fn missing_mkosi() {
    let t = tempfile::tempdir().unwrap();
    let run = build(t.path(), Path::new("/nonexistent/tools/bin/mkosi"), &[]);
    assert_fails(&run, 2, &["mkosi not found at /nonexistent/tools/bin/mkosi", "make setup"]);
    assert_no_output(t.path());
}

#[test]
fn mkosi_failure_shows_its_last_words() {
    let t = tempfile::tempdir().unwrap();
    let mkosi = fake_mkosi(t.path(), "echo 'E: Unable to locate package systemd-bogus' >&2\nexit 1");
    let run = build(t.path(), &mkosi, &["--profile", "gcp"]);
    assert_fails(
        &run,
        2,
        &["mkosi failed", "exit status 1", "E: Unable to locate package systemd-bogus", "--profile gcp"],
    );
    assert_no_output(t.path());
}

#[test]
fn full_disk_is_named() {
    let t = tempfile::tempdir().unwrap();
    let mkosi = fake_mkosi(t.path(), "echo 'cp: error writing /var/tmp/x: No space left on device' >&2\nexit 1");
    let run = build(t.path(), &mkosi, &[]);
    assert_fails(&run, 2, &["the disk is full", "No space left on device"]);
    assert_no_output(t.path());
}

#[test]
fn mkosi_that_produces_nothing() {
    let t = tempfile::tempdir().unwrap();
    let mkosi = fake_mkosi(t.path(), "exit 0");
    let run = build(t.path(), &mkosi, &[]);
    assert_fails(&run, 2, &["mkosi produced no disk image", "nodeimg_0.1.0.raw"]);
    assert_no_output(t.path());
}

#[test]
fn missing_lock_file() {
    let t = tempfile::tempdir().unwrap();
    let prof = t.path().join("profiles");
    fs::create_dir_all(prof.join("mkosi.profiles/qemu")).unwrap();
    fs::copy(profiles().join("mkosi.conf"), prof.join("mkosi.conf")).unwrap();
    fs::copy(profiles().join("mkosi.profiles/qemu/mkosi.conf"), prof.join("mkosi.profiles/qemu/mkosi.conf")).unwrap();
    fs::write(
        prof.join("mkosi.profiles/qemu/nodeimg.json"),
        r#"{"attestation_variant": "qemu-vtpm", "enforce_pcrs": [4]}"#,
    )
    .unwrap();
    let run: Run = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["build", "--out", "out", "--cache-dir", "cache", "--profiles-dir", "profiles"])
        .env("NODEIMG_MKOSI", "/bin/false")
        .current_dir(t.path())
        .output()
        .unwrap()
        .into();
    assert_fails(&run, 2, &["packages.lock: no lock file", "nodeimg lock --profiles-dir"]);
    assert_no_output(t.path());
}

/// A copy of the repository's profile directory at `dir/profiles` whose qemu `nodeimg.json` is
/// `json`; the copy's "repository root" is `dir`, so relative firmware paths point into `dir`.
fn profiles_with_qemu_config(dir: &Path, json: &str) -> PathBuf {
    let prof = dir.join("profiles");
    let status = Command::new("cp").arg("-r").arg(profiles()).arg(&prof).status().unwrap();
    assert!(status.success());
    fs::write(prof.join("mkosi.profiles/qemu/nodeimg.json"), json).unwrap();
    prof
}

fn build_with_profiles(dir: &Path, prof: &Path, extra: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["build", "--out", "out", "--cache-dir", "cache", "--profiles-dir"])
        .arg(prof)
        .args(extra)
        .env("NODEIMG_MKOSI", "/bin/false")
        .current_dir(dir)
        .output()
        .unwrap()
        .into()
}

/// A malformed nodeimg.json stops every build (exit 2) naming the file, the line and the field,
/// before mkosi runs; even a build of another platform.
#[test]
fn malformed_platform_config() {
    let t = tempfile::tempdir().unwrap();
    let prof = profiles_with_qemu_config(t.path(), "{\"attestation_variant\": \"qemu-vtpm\",\n \"enforce_pcr\": [4]}");
    let run = build_with_profiles(t.path(), &prof, &["--profile", "gcp"]);
    assert_fails(&run, 2, &["mkosi.profiles/qemu/nodeimg.json: unknown field `enforce_pcr`", "line 2 column"]);
    assert_no_output(t.path());

    fs::write(
        prof.join("mkosi.profiles/qemu/nodeimg.json"),
        r#"{"attestation_variant": "qemu-vtpm", "enforce_pcrs": [4, 2]}"#,
    )
    .unwrap();
    let run = build_with_profiles(t.path(), &prof, &[]);
    assert_fails(&run, 2, &["mkosi.profiles/qemu/nodeimg.json: enforce_pcrs: PCR 2 is not predicted"]);
    assert_no_output(t.path());

    fs::remove_file(prof.join("mkosi.profiles/qemu/nodeimg.json")).unwrap();
    let run = build_with_profiles(t.path(), &prof, &["--profile", "gcp"]);
    assert_fails(&run, 2, &["mkosi.profiles/qemu/nodeimg.json: missing"]);
}

/// A firmware path that does not exist, or a file that is not SEV/TDX firmware, is an input
/// error naming nodeimg.json, the field and the path, before mkosi runs.
#[test]
fn missing_or_wrong_firmware() {
    let t = tempfile::tempdir().unwrap();
    let config = |field: &str, path: &str| {
        format!(
            r#"{{"attestation_variant": "qemu-vtpm", "enforce_pcrs": [4], {field}: {{"firmware": "{path}"{more}}}}}"#,
            more =
                if field == "\"snp\"" { r#", "vmm_type": "qemu", "vcpu_type": "EPYC-v4", "vcpus": [1]"# } else { "" }
        )
    };
    let prof = profiles_with_qemu_config(t.path(), &config("\"snp\"", "tools/ovmf/none/OVMF.fd"));
    let run = build_with_profiles(t.path(), &prof, &[]);
    // A path is relative to the profile directory.
    let missing = prof.join("tools/ovmf/none/OVMF.fd");
    assert_fails(
        &run,
        2,
        &[
            "mkosi.profiles/qemu/nodeimg.json: snp.firmware",
            &format!("{} does not exist", missing.display()),
            "debian:ovmf=VERSION:usr/share/ovmf/OVMF.fd",
            "nodeimg setup",
        ],
    );
    assert_no_output(t.path());

    fs::write(prof.join("not-firmware.fd"), vec![0u8; 8192]).unwrap();
    fs::write(prof.join("mkosi.profiles/qemu/nodeimg.json"), config("\"tdx\"", "not-firmware.fd")).unwrap();
    let run = build_with_profiles(t.path(), &prof, &[]);
    assert_fails(&run, 2, &["mkosi.profiles/qemu/nodeimg.json: tdx.firmware", "not-firmware.fd"]);
    assert_no_output(t.path());
}

/// Firmware named as a pinned input: a package the table does not pin, or a pinned one the
/// tools cache does not hold (no `nodeimg setup` yet), stops the build with exit 2 naming the fix,
/// before mkosi runs (the fake mkosi would leave a mark).
#[test]
fn unpinned_or_missing_pinned_firmware() {
    let t = tempfile::tempdir().unwrap();
    let mkosi = fake_mkosi(t.path(), "touch \"$0.ran\"; exit 1");
    let ran = t.path().join("fake-mkosi.ran");
    let config = |firmware: &str| {
        format!(r#"{{"attestation_variant": "qemu-vtpm", "enforce_pcrs": [4], "tdx": {{"firmware": "{firmware}"}}}}"#)
    };
    let prof = profiles_with_qemu_config(t.path(), &config("debian:ovmf=2024.11-1:usr/share/ovmf/OVMF.fd"));
    let run = run_in(t.path(), &["build", "--out", "out"], &prof, &mkosi, &[], &[]);
    assert_fails(
        &run,
        2,
        &[
            "mkosi.profiles/qemu/nodeimg.json",
            "ovmf=2024.11-1 is not a package nodeimg pins",
            "debian:ovmf=2025.02-8+deb13u1",
            "or give the firmware as a path relative to the profile directory",
        ],
    );
    assert!(!ran.exists(), "mkosi ran: {run:?}");
    assert_no_output(t.path());

    // Pinned, but this tools cache is empty.
    fs::write(
        prof.join("mkosi.profiles/qemu/nodeimg.json"),
        config("debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd"),
    )
    .unwrap();
    let empty = t.path().join("empty-tools");
    let run =
        run_in(t.path(), &["build", "--out", "out"], &prof, &mkosi, &["--tools-dir", empty.to_str().unwrap()], &[]);
    assert_fails(
        &run,
        2,
        &[
            "mkosi.profiles/qemu/nodeimg.json: tdx.firmware",
            "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd (package ovmf=2025.02-8+deb13u1) is not in the tools cache",
            &format!("run `nodeimg setup --tools-dir {}`", empty.display()),
        ],
    );
    assert!(!ran.exists(), "mkosi ran: {run:?}");
    assert_no_output(t.path());
}

/// Without NODEIMG_MKOSI, mkosi is the tools cache's; an empty cache says to run `nodeimg setup`.
#[test]
fn mkosi_comes_from_the_tools_cache() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty-tools");
    let run: Run = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["build", "--out", "out", "--cache-dir", "cache", "--profile", "gcp", "--tools-dir"])
        .arg(&empty)
        .arg("--profiles-dir")
        .arg(profiles())
        .env_remove("NODEIMG_MKOSI")
        .current_dir(t.path())
        .output()
        .unwrap()
        .into();
    assert_fails(
        &run,
        2,
        &[&format!("mkosi not found at {}/bin/mkosi", empty.display()), "run `nodeimg setup`", "make setup"],
    );
    assert_no_output(t.path());
}

/// SIGINT to nodeimg alone (as `kill -INT` or a CI cancel sends it): mkosi is stopped, the
/// partial output removed, and the exit says so.
#[test]
fn interrupted_build() {
    let t = tempfile::tempdir().unwrap();
    let mkosi = fake_mkosi(t.path(), "trap 'echo mkosi-got-sigint; exit 130' INT\nsleep 30 & wait");
    let child = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["build", "--out", "out", "--cache-dir", "cache", "--profiles-dir"])
        .arg(profiles())
        .env("NODEIMG_MKOSI", &mkosi)
        .current_dir(t.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the build has started (the partial directory exists), then interrupt.
    let partial = t.path().join("out/.nodeimg-0.1.0.partial");
    let start = Instant::now();
    while !partial.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let run: Run = child.wait_with_output().unwrap().into();
    assert!(started.elapsed() < Duration::from_secs(15), "nodeimg waited for mkosi to finish: {run:?}");
    assert_fails(&run, 2, &["interrupted"]);
    assert_no_output(t.path());
}

/// Where the packages come from is checked before mkosi runs: a malformed snapshot stamp, two
/// sources at once, a package archive that is not one (missing, extra or altered .deb), a mirror
/// URL that would break the apt sources file — each exit 2 naming the problem, nothing in out/.
#[test]
fn bad_package_sources() {
    let t = tempfile::tempdir().unwrap();
    let never = Path::new("/nonexistent/mkosi-must-not-run");
    for (extra, want) in [
        (&["--snapshot", "2026-12-04"][..], "--snapshot: snapshot \"2026-12-04\" is not YYYYMMDDTHHMMSSZ"),
        (&["--snapshot", "latest"][..], "is not YYYYMMDDTHHMMSSZ"),
        (&["--snapshot", "20261204T000000Z", "--mirror", "http://127.0.0.1:1"][..], "at most one of"),
        (&["--mirror", "http://a b"][..], "is not an http(s):// or file:/ URL"),
        (&["--snapshot-mirror", "http://127.0.0.1:1"][..], "--snapshot-mirror needs a snapshot"),
        (&["--packages", "/nonexistent/packages"][..], "/nonexistent/packages: not the package archive"),
    ] {
        let run = build(t.path(), never, extra);
        assert_fails(&run, 2, &[want]);
        assert_no_output(t.path());
    }

    // A package archive with one .deb of the lock altered, one missing and one extra.
    let lock = fs::read_to_string(profiles().join("packages.lock")).unwrap();
    let first: Vec<&str> = lock.lines().find(|l| l.starts_with("image ")).unwrap().split_whitespace().collect();
    let pkgs = t.path().join("pkgs");
    fs::create_dir_all(&pkgs).unwrap();
    let altered = format!("{}_{}_{}.deb", first[1], first[2].replace(':', "%3a"), first[3]);
    fs::write(pkgs.join(&altered), b"not the locked bytes").unwrap();
    fs::write(pkgs.join("evil_1.0_amd64.deb"), b"x").unwrap();
    let run = build(t.path(), never, &["--packages", pkgs.to_str().unwrap()]);
    assert_fails(
        &run,
        2,
        &[
            &format!("{altered} has sha256"),
            &format!("the lock says {}", first[4]),
            "not in the lock: evil_1.0_amd64.deb",
            "missing ",
        ],
    );
    assert!(!run.stderr.contains("mkosi-must-not-run"), "mkosi ran: {run:?}");
    assert_no_output(t.path());
}

/// A copy of the repository's profile directory at `dir/profiles`, with `dir/tools` the
/// repository's (where the qemu platform's firmware is, relative to the copy's parent).
fn copy_profiles(dir: &Path) -> PathBuf {
    let prof = dir.join("profiles");
    let status = Command::new("cp").arg("-r").arg(profiles()).arg(&prof).status().unwrap();
    assert!(status.success());
    prof
}

/// Appends `text` to `path`.
fn append(path: &Path, text: &str) {
    let mut old = fs::read_to_string(path).unwrap();
    old.push_str(text);
    fs::write(path, old).unwrap();
}

/// `nodeimg CMD --profiles-dir PROF …` in `dir` with mkosi at `mkosi` and `env` set.
fn run_in(dir: &Path, cmd: &[&str], prof: &Path, mkosi: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nodeimg"));
    c.args(cmd).arg("--cache-dir").arg("cache").arg("--profiles-dir").arg(prof).args(extra);
    c.env("NODEIMG_MKOSI", mkosi).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap().into()
}

fn build_in(dir: &Path, prof: &Path, mkosi: &Path, extra: &[&str]) -> Run {
    run_in(dir, &["build", "--out", "out"], prof, mkosi, extra, &[])
}

/// Where mkosi would be if the checks let it run: its absence, named in the error, shows that
/// every check before it passed.
const NEVER: &str = "/nonexistent/mkosi-must-not-run";

/// A directory that is not an image profile directory: exit 2 naming what is missing.
#[test]
fn not_a_profile_directory() {
    let t = tempfile::tempdir().unwrap();
    let never = Path::new(NEVER);
    let run = build_in(t.path(), &t.path().join("nowhere"), never, &[]);
    assert_fails(&run, 2, &["nowhere: no such directory", "--profiles-dir DIR"]);
    let empty = t.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let run = build_in(t.path(), &empty, never, &[]);
    assert_fails(&run, 2, &[&format!("no mkosi.conf in {}: is it an image profile directory?", empty.display())]);
    fs::copy(profiles().join("mkosi.conf"), empty.join("mkosi.conf")).unwrap();
    let run = build_in(t.path(), &empty, never, &[]);
    assert_fails(&run, 2, &["no mkosi.profiles/ directory", "mkosi.profiles/qemu/ with mkosi.conf and nodeimg.json"]);
    fs::create_dir_all(empty.join("mkosi.profiles/qemu")).unwrap();
    let run = build_in(t.path(), &empty, never, &[]);
    assert_fails(&run, 2, &["mkosi.profiles/qemu/mkosi.conf: profile qemu has no mkosi.conf"]);
    // `nodeimg lock` checks the same.
    let run = run_in(t.path(), &["lock"], &t.path().join("nowhere"), never, &[], &[]);
    assert_fails(&run, 2, &["nowhere: no such directory"]);
    assert_no_output(t.path());
}

/// The request lines a lock made for `Packages=systemd,udev` and no initrd or tools-tree
/// packages would have (lock format v3), on the repository's pins.
fn lock_requesting(prof: &Path, image: &str) {
    let lock = fs::read_to_string(profiles().join("packages.lock")).unwrap();
    assert!(!lock.contains("\nrequest "), "the repository lock now has request lines: update this test");
    fs::write(prof.join("packages.lock"), format!("{lock}request image {image}\nrequest initrd\nrequest tools\n"))
        .unwrap();
}

/// A package added to (or removed from) the profiles since the lock was made stops the build
/// before mkosi runs, naming each package, where it was asked for and `nodeimg lock`.
#[test]
fn lock_must_cover_the_package_list() {
    let t = tempfile::tempdir().unwrap();
    let never = Path::new(NEVER);
    let prof = copy_profiles(t.path());
    let conf = prof.join("mkosi.conf");
    let base = fs::read_to_string(&conf).unwrap();

    // A version-2 lock (the repository's: no request lines): an added package has no pin.
    append(&conf, "[Content]\nPackages=curl\n");
    let run = build_in(t.path(), &prof, never, &[]);
    assert_fails(
        &run,
        2,
        &[
            &format!("{} does not match the packages the profiles ask for", prof.join("packages.lock").display()),
            &format!("image curl: asked for by Packages= in {}, but the lock does not list it", conf.display()),
            &format!("Run `nodeimg lock --profiles-dir {}`", prof.display()),
            "no `request` lines",
        ],
    );
    assert!(!run.stderr.contains("mkosi-must-not-run"), "{run:?}");
    assert_no_output(t.path());

    // A version-3 lock made for `systemd udev`: the same list passes (mkosi is next) ...
    lock_requesting(&prof, "systemd udev");
    fs::write(&conf, format!("{base}[Content]\nPackages=\nPackages=systemd,udev\n")).unwrap();
    let run = build_in(t.path(), &prof, never, &[]);
    assert_fails(&run, 2, &["mkosi not found at /nonexistent/mkosi-must-not-run"]);
    // ... a package added, one removed and a tools-tree package added are each named.
    fs::write(
        &conf,
        format!("{base}[Content]\nPackages=\nPackages=systemd\n  curl=8.14\n[Build]\nToolsTreePackages=jq\n"),
    )
    .unwrap();
    let run = build_in(t.path(), &prof, never, &[]);
    assert_fails(
        &run,
        2,
        &[
            &format!("image curl: added to Packages= in {} since the lock was made", conf.display()),
            "image udev: removed from Packages= since the lock was made (the lock still pins it)",
            "tools jq: added to ToolsTreePackages=",
            "nodeimg lock --profiles-dir",
        ],
    );
    assert!(!run.stderr.contains("request` lines"), "a v3 lock is not called old: {run:?}");
    assert_no_output(t.path());
}

/// A platform may not ask for packages (the root is built once); an overlay only for packages
/// the lock pins (the lock is made without overlays).
#[test]
fn profiles_may_not_add_unlocked_packages() {
    let t = tempfile::tempdir().unwrap();
    let never = Path::new(NEVER);
    let prof = copy_profiles(t.path());
    let gcp = prof.join("mkosi.profiles/gcp/mkosi.conf");
    append(&gcp, "Packages=google-guest-agent\n");
    // Even a build of another platform: the tree is wrong.
    let run = build_in(t.path(), &prof, never, &["--profile", "qemu"]);
    assert_fails(
        &run,
        2,
        &[
            &format!("{}: platform gcp sets Packages=", gcp.display()),
            "may only add kernel command-line keys",
            "nodeimg lock --profiles-dir",
        ],
    );
    let run = run_in(t.path(), &["lock"], &prof, never, &[], &[]);
    assert_fails(&run, 2, &["platform gcp sets Packages="]);
    assert_no_output(t.path());
    fs::copy(profiles().join("mkosi.profiles/gcp/mkosi.conf"), &gcp).unwrap();

    let overlay = prof.join("mkosi.profiles/test/mkosi.conf");
    append(&overlay, "Packages=curl\n");
    let run = build_in(t.path(), &prof, never, &["--profile", "test"]);
    assert_fails(
        &run,
        2,
        &[
            &format!("image curl: asked for by overlay test (Packages= in {})", overlay.display()),
            "move it to Packages=",
        ],
    );
    assert_no_output(t.path());
    // bash is pinned (installed with the base image anyway): the overlay may name it.
    fs::copy(profiles().join("mkosi.profiles/test/mkosi.conf"), &overlay).unwrap();
    append(&overlay, "Packages=bash\n");
    let run = build_in(t.path(), &prof, never, &["--profile", "test"]);
    assert_fails(&run, 2, &["mkosi not found at /nonexistent/mkosi-must-not-run"]);
    assert_no_output(t.path());
}

/// mkosi that does not run, bwrap missing for a derived platform, reprepro missing for a
/// package archive: exit 2 naming the tool and `make setup`, nothing written.
#[test]
fn missing_tools() {
    let t = tempfile::tempdir().unwrap();
    let prof = profiles();
    let broken = t.path().join("broken-mkosi");
    fs::write(&broken, "#!/bin/sh\necho 'ModuleNotFoundError: No module named mkosi' >&2\nexit 1\n").unwrap();
    fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = build_in(t.path(), &prof, &broken, &[]);
    assert_fails(
        &run,
        2,
        &[&format!("mkosi at {} does not run", broken.display()), "make setup", "No module named mkosi"],
    );
    let run = run_in(t.path(), &["lock"], &prof, &broken, &[], &[]);
    assert_fails(&run, 2, &["does not run", "make setup"]);
    let run = run_in(t.path(), &["lock"], &prof, Path::new(NEVER), &["--check"], &[]);
    assert_fails(&run, 2, &["mkosi not found at /nonexistent/mkosi-must-not-run", "make setup"]);
    assert_no_output(t.path());

    let mkosi = fake_mkosi(t.path(), "echo mkosi-ran >&2; exit 1");
    let empty_path = t.path().join("no-tools");
    fs::create_dir_all(&empty_path).unwrap();
    let env: &[(&str, &Path)] = &[("PATH", &empty_path)];
    let run =
        run_in(t.path(), &["build", "--out", "out"], &prof, &mkosi, &["--profile", "qemu", "--profile", "gcp"], env);
    assert_fails(&run, 2, &["bwrap not found on PATH", "to derive gcp from qemu", "make setup", "bubblewrap"]);
    assert!(!run.stderr.contains("mkosi-ran"), "{run:?}");
    assert_no_output(t.path());

    // A package archive that is exactly a (one-package) lock's, without reprepro.
    let prof = copy_profiles(t.path());
    append(&prof.join("mkosi.conf"), "[Content]\nPackages=\nPackages=bash\n");
    let pkgs = t.path().join("pkgs");
    fs::create_dir_all(&pkgs).unwrap();
    fs::write(pkgs.join("bash_5.2_amd64.deb"), b"a deb").unwrap();
    let sha = common::tool(t.path(), "sha256sum", &[pkgs.join("bash_5.2_amd64.deb").to_str().unwrap()]);
    let sha = sha.stdout.split_whitespace().next().unwrap().to_owned();
    fs::write(
        prof.join("packages.lock"),
        format!("request image bash\nrequest initrd\nrequest tools\nimage bash 5.2 amd64 {sha}\n"),
    )
    .unwrap();
    let run = run_in(t.path(), &["build", "--out", "out"], &prof, &mkosi, &["--packages", "pkgs"], env);
    assert_fails(&run, 2, &["reprepro not found on PATH", "to index the package archive", "make setup"]);
    assert!(!run.stderr.contains("mkosi-ran"), "{run:?}");
    assert_no_output(t.path());
}

/// An output or cache directory that cannot be written stops the build before mkosi runs.
#[test]
fn unwritable_output_directory() {
    let t = tempfile::tempdir().unwrap();
    let mkosi = fake_mkosi(t.path(), "echo mkosi-ran >&2; exit 1");
    fs::write(t.path().join("a-file"), "").unwrap();
    for out in ["a-file", "a-file/out"] {
        let run = run_in(t.path(), &["build", "--out", out], &profiles(), &mkosi, &[], &[]);
        let abs = t.path().join(out);
        assert_fails(
            &run,
            2,
            &[
                &format!("cannot write to {} (--out)", abs.display()),
                &format!("{} is not a directory", t.path().join("a-file").display()),
                "choose another --out",
            ],
        );
        assert!(!run.stderr.contains("mkosi-ran"), "{run:?}");
        assert_eq!(fs::read(t.path().join("a-file")).unwrap(), b"", "the file is untouched");
    }
    let run: Run = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["build", "--out", "out", "--cache-dir", "a-file", "--profiles-dir"])
        .arg(profiles())
        .env("NODEIMG_MKOSI", &mkosi)
        .current_dir(t.path())
        .output()
        .unwrap()
        .into();
    assert_fails(&run, 2, &["(--cache-dir)", "a-file is not a directory"]);
    assert!(!run.stderr.contains("mkosi-ran"), "{run:?}");
    assert!(!t.path().join("out").exists(), "nothing created: {run:?}");
}
