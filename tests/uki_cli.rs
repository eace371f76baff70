//! `nodeimg uki …` run as a user would: against oracle outputs committed in uki/testdata (the
//! published Authenticode vectors, trixie ukify's UKIs from the pinned Debian stub and kernel,
//! fetched by `make setup`), and with bad input.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn testdata(rel: &str) -> String {
    repo().join("uki/testdata").join(rel).display().to_string()
}

fn tools_uki(name: &str) -> String {
    let p = repo().join("tools/uki").join(name);
    assert!(p.exists(), "{} is missing: run `make setup`", p.display());
    p.display().to_string()
}

fn json_file(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(testdata(rel)).unwrap()).unwrap()
}

fn sha256_file(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

#[test]
fn inspect_json_gives_the_published_authenticode_digests() {
    let dir = tempfile::tempdir().unwrap();
    let expected = json_file("authenticode/expected.json");
    for (file, want) in expected.as_object().unwrap() {
        let run = nodeimg(dir.path(), &["uki", "inspect", "--json", &testdata(&format!("authenticode/{file}"))]);
        assert_eq!(run.code, 0, "{file}: {run:?}");
        let got: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(got["authenticode"], *want, "{file}");
        assert_eq!(got["signed"], file.contains(".signed"), "{file}");
        assert_eq!(got["stub"]["version"], Value::Null, "{file}: not a systemd-stub");
        let names: Vec<&str> =
            got["sections"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, [".text", ".rdata"], "{file}");
    }
}

#[test]
fn build_and_set_cmdline_reproduce_ukify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = json_file("debian.json");
    let stub = tools_uki("linuxx64.efi.stub");
    // The "full" configuration, through the command line.
    let full = &fixture["ukis"]["full"];
    let run = nodeimg(
        d,
        &[
            "uki",
            "build",
            "--stub",
            &stub,
            "--linux",
            &tools_uki("vmlinuz.unsigned"),
            "--initrd",
            &testdata("inputs/initrd-a.bin"),
            "--initrd",
            &testdata("inputs/initrd-b.bin"),
            "--cmdline",
            "  root=/dev/vda \t ro  console=ttyS0 ",
            "--os-release",
            &format!("@{}", testdata("inputs/os-release")),
            "--uname",
            "6.12.0-test",
            "--sbat",
            &format!("@{}", testdata("inputs/sbat.csv")),
            "--splash",
            &testdata("inputs/splash.bmp"),
            "--devicetree",
            &testdata("inputs/devicetree.dtb"),
            "--pcrpkey",
            &testdata("inputs/pcrpkey.pem"),
            "--microcode",
            &testdata("inputs/ucode.bin"),
            "-o",
            "full.efi",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sha256_file(&d.join("full.efi")), full["sha256"].as_str().unwrap(), "not byte-identical to ukify's");

    // minimal → cmdline-b with set-cmdline equals ukify's cmdline-b.
    let run = nodeimg(
        d,
        &[
            "uki",
            "build",
            "--stub",
            &stub,
            "--linux",
            &tools_uki("vmlinuz.signed"),
            "--cmdline",
            "console=ttyS0",
            "-o",
            "a.efi",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sha256_file(&d.join("a.efi")), fixture["ukis"]["minimal"]["sha256"].as_str().unwrap());
    let b = &fixture["ukis"]["cmdline-b"];
    let cmdline = b["config"][1][1].as_str().unwrap();
    let run = nodeimg(d, &["uki", "set-cmdline", "a.efi", "--cmdline", cmdline, "-o", "b.efi"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sha256_file(&d.join("b.efi")), b["sha256"].as_str().unwrap(), "set-cmdline differs from ukify's build");

    let run = nodeimg(d, &["uki", "inspect", "--json", "b.efi"]);
    let got: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(got["authenticode"], b["authenticode"], "inspect: Authenticode of ukify's UKI (LIEF)");
    assert_eq!(got["stub"]["version"], "257.13-1~deb13u1");
    let cmdline_section = got["sections"].as_array().unwrap().iter().find(|s| s["name"] == ".cmdline").unwrap();
    assert_eq!(cmdline_section["text"], cmdline);
}

#[test]
fn bad_input_exits_2_naming_the_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiny = std::fs::read(testdata("authenticode/tiny64.efi")).unwrap();
    std::fs::write(d.join("truncated.efi"), &tiny[..0x100]).unwrap();
    let run = nodeimg(d, &["uki", "inspect", "truncated.efi"]);
    assert_fails(&run, 2, &["truncated.efi", "truncated", "optional header", "0x180"]);

    let mut past_eof = tiny.clone();
    past_eof[0x180 + 40 + 16..0x180 + 40 + 20].copy_from_slice(&0x10000u32.to_le_bytes());
    std::fs::write(d.join("past-eof.efi"), &past_eof).unwrap();
    let run = nodeimg(d, &["uki", "inspect", "--json", "past-eof.efi"]);
    assert_fails(&run, 2, &["past-eof.efi", ".rdata", "past the end of the file", "0x1a8"]);
    assert!(run.stdout.is_empty(), "no partial JSON: {run:?}");

    // A signed stub is refused, and no output (nor a temporary file) is left behind.
    let run = nodeimg(
        d,
        &[
            "uki",
            "build",
            "--stub",
            &testdata("authenticode/tiny64.signed.efi"),
            "--linux",
            "truncated.efi",
            "--cmdline",
            "x",
            "-o",
            "out.efi",
        ],
    );
    assert_fails(&run, 2, &["signed"]);
    let left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!left.iter().any(|f| f.contains("out.efi")), "output left behind: {left:?}");

    // An empty or non-PE kernel makes no bootable UKI.
    std::fs::write(d.join("not-a-kernel"), b"HALLO\n").unwrap();
    std::fs::write(d.join("empty-kernel"), b"").unwrap();
    let build_with = |linux: &str| {
        let stub = tools_uki("linuxx64.efi.stub");
        nodeimg(d, &["uki", "build", "--stub", &stub, "--linux", linux, "--cmdline", "x", "-o", "k.efi"])
    };
    assert_fails(&build_with("/dev/null"), 2, &["/dev/null is not a regular file"]);
    for (linux, why) in [("empty-kernel", "the file is empty"), ("not-a-kernel", "no MZ header")] {
        let run = build_with(linux);
        assert_fails(&run, 2, &[&format!("--linux {linux}: the kernel is not a PE/COFF image ({why})")]);
        assert!(!d.join("k.efi").exists(), "no output for {linux}");
    }

    let run =
        nodeimg(d, &["uki", "set-cmdline", &testdata("authenticode/tiny64.efi"), "--cmdline", "x", "-o", "out.efi"]);
    assert_fails(&run, 2, &["no .cmdline section"]);
    let run = nodeimg(d, &["uki", "inspect", "missing.efi"]);
    assert_fails(&run, 2, &["missing.efi"]);
}

/// Text from inputs reaches the terminal escaped: an escape sequence in a UKI's `.cmdline`, or
/// in a file name nodeimg reports, is printed as `\u{1b}`, never as the raw byte.
#[test]
fn control_characters_from_inputs_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hostile = "console=ttyS0 \u{1b}]0;owned\u{7}\u{1b}[2J";
    let run = nodeimg(
        d,
        &[
            "uki",
            "build",
            "--stub",
            &tools_uki("linuxx64.efi.stub"),
            "--linux",
            &tools_uki("vmlinuz.unsigned"),
            "--cmdline",
            hostile,
            "-o",
            "esc.efi",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let run = nodeimg(d, &["uki", "inspect", "esc.efi"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{7}'), "raw control bytes: {:?}", run.stdout);
    assert!(run.stdout.contains("console=ttyS0 \\u{1b}]0;owned\\u{7}\\u{1b}[2J"), "{}", run.stdout);
    // In an error message too.
    let run = nodeimg(d, &["uki", "inspect", "no\u{1b}[2Jsuch.efi"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(!run.stderr.contains('\u{1b}') && run.stderr.contains("no\\u{1b}[2Jsuch.efi"), "{:?}", run.stderr);
}
