//! No input makes nodeimg read without bound: `/dev/zero` given as any input file is refused
//! with exit 2 (never a hang, never an allocation of its "size"), with a peak RSS under 64 MiB.
//! Each run is killed after 10 s, so a hang fails as exit 124 instead of stalling the suite;
//! speed itself is `make bench`'s business.

mod common;

use std::process::Command;

#[test]
fn dev_zero_as_any_input_exits_2_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty"), b"").unwrap();
    let z = "/dev/zero";
    let cases: &[&[&str]] = &[
        &["eventlog", "show", z],
        &["eventlog", "replay", z],
        &["eventlog", "diff", z, z],
        &["verify-signature", z, "--pubkey", z],
        &["verify-signature", "empty", "--pubkey", z],
        &["verify", "--bundle", z, "--pubkey", z],
        &["export", "--bundle", z, "--no-verify", "--format", "trustee"],
        &["export", "--bundle", z, "--pubkey", z, "--format", "trustee"],
        &["export", "--bundle", "empty", "--no-verify", "--format", "trustee", "--trusted-ak", z],
        &["sign", "empty", "--key", z],
        &["sign", z, "--key", z],
        &["uki", "inspect", z],
        &["uki", "set-cmdline", z, "--cmdline", "x", "-o", "out.efi"],
        &["uki", "build", "--stub", z, "--linux", z, "--cmdline", "x", "-o", "out.efi"],
        &["measure", "pcrs", "--uki", z],
        &["measure", "snp", "--ovmf", z, "--vcpus", "1", "--vcpu-type", "EPYC-v4"],
        &["measure", "tdx", "--ovmf", z],
        &["verity", "dump", z],
        &["attest", "check", "--bundle", z, "--pubkey", z, "--platform", "qemu", "--pcrs", z],
        &["attest", "check", "--bundle", "empty", "--pubkey", "empty", "--platform", "qemu", "--snp-report", z],
    ];
    for args in cases {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "maxrss-kib %M", "timeout", "10"])
            .arg(env!("CARGO_BIN_EXE_nodeimg"))
            .args(*args)
            .current_dir(d)
            .output()
            .expect("/usr/bin/time (package time): run `make setup`");
        let run: common::Run = out.into();
        let rss: u64 = run
            .stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("maxrss-kib "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{args:?}: no RSS from /usr/bin/time: {run:?}"));
        // /usr/bin/time passes the exit code through, and reports a signal as its own line.
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(rss < 64 * 1024, "{args:?}: peak RSS {rss} KiB");
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run:?}");
    }
    assert!(!d.join("out.efi").exists(), "no output from a refused input");
}

/// A newline in an input's name does not split the error line about it.
#[test]
fn a_newline_in_a_name_stays_on_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = common::nodeimg(dir.path(), &["eventlog", "show", "no\nsuch\u{1b}[2J.log"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("no\\nsuch\\u{1b}[2J.log"), "{run:?}");
}

/// The repository path of a file `make setup` put under `tools/`.
fn setup_file(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    assert!(p.is_file(), "{}: missing, run `make setup`", p.display());
    p.display().to_string()
}

/// Inputs that are valid but for one, which is `/dev/zero`, a FIFO nobody writes to or a file
/// over its kind's bound: exit 2 at once, never a hang or a read of the whole thing; and stdout
/// that cannot be written is an error too (exit 2), not a panic. (`sign` alone reads a FIFO once
/// its writer comes, as `cat` would: `sign_cli` signs through one.)
#[test]
fn devices_fifos_and_oversized_inputs_beside_valid_ones_exit_2() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let uki = setup_file("tools/boot/sb-off/uki.efi");
    let ovmf = setup_file("tools/ovmf/2025.02-8+deb13u1/usr/share/ovmf/OVMF.fd");
    assert_eq!(common::nodeimg(d, &["keygen", "-o", "k", "--unencrypted"]).code, 0);
    std::fs::write(d.join("f"), b"signed\n").unwrap();
    assert_eq!(common::nodeimg(d, &["sign", "f", "--key", "k.key"]).code, 0);
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // A build output whose build.json is /dev/zero; a project whose project file is; a profile
    // tree whose mkosi.conf is.
    for (dir, file) in [("in", "build.json"), ("proj", "nodeimg-project.json"), ("prof", "mkosi.conf")] {
        std::fs::create_dir(d.join(dir)).unwrap();
        symlink("/dev/zero", d.join(dir).join(file)).unwrap();
    }
    // A file beside the UKI over the 1 GiB all of them may have (sparse: no disk used).
    std::fs::create_dir(d.join("xd")).unwrap();
    std::fs::File::create(d.join("xd/big.raw")).unwrap().set_len((1 << 30) + 1).unwrap();
    let (z, f) = ("/dev/zero", "fifo");
    let snp = ["measure", "snp", "--ovmf", &ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4"];
    let cases: Vec<Vec<&str>> = vec![
        vec!["sign", z, "--key", "k.key"],
        vec!["verify-signature", z, "--pubkey", "k.pub", "--sig", "f.minisig"],
        vec!["verify-signature", f, "--pubkey", "k.pub", "--sig", "f.minisig"],
        vec!["verify-signature", "f", "--pubkey", f],
        [&snp[..], &["--kernel", z]].concat(),
        [&snp[..], &["--kernel", f]].concat(),
        vec!["measure", "tdx", "--ovmf", f],
        vec!["eventlog", "show", f],
        vec!["uki", "inspect", f],
        vec!["measure", "pcrs", "--uki", &uki, "--check-eventlog", f],
        vec!["measure", "pcrs", "--uki", &uki, "--extra-d", "xd"],
        vec!["release", "--version", "1.0.0", "--insecure-dev-key", "--input", "in", "--out", "rel"],
        vec!["build", "--project", "proj", "--out", "o", "--cache-dir", "c"],
        vec!["build", "--profiles-dir", "prof", "--out", "o", "--cache-dir", "c"],
    ];
    for args in &cases {
        let run = common::nodeimg_bounded(d, args, std::process::Stdio::piped());
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains("error: "), "{args:?}: {run:?}");
    }
    for out in ["rel", "o"] {
        assert!(!d.join(out).exists(), "{out}: no output from a refused input");
    }
    let full = || std::process::Stdio::from(std::fs::File::options().write(true).open("/dev/full").unwrap());
    for args in [&["uki", "inspect", &uki][..], &["verify-signature", "f", "--pubkey", "k.pub", "--sig", "f.minisig"]] {
        let run = common::nodeimg_bounded(d, args, full());
        assert_eq!(run.code, 2, "{args:?} > /dev/full: {run:?}");
        assert!(run.stderr.contains("error: writing to stdout"), "{args:?}: {run:?}");
    }
}
