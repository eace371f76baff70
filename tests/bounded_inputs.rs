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
