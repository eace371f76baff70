//! `nodeimg release | verify | export` on a synthetic build output (small files; synthetic
//! reference values), checked with Debian's minisign, GNU tar, zstd and coreutils' sha256sum.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{assert_fails, flip_byte, nodeimg, tool, Run};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const VERSION: &str = "1.2.3";
const NAME: &str = "debian-cvm-1.2.3";

fn example() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("release/testdata/bundle/example.json");
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Writes a build output as `nodeimg build` leaves it (build.json, and per platform the
/// artefacts, manifest.json in the builder's form, reference-values.json), with the example
/// bundle's reference values. `big` adds a large artefact (for the interruption test).
fn build_output(dir: &Path, big: Option<usize>) {
    let ex = example();
    fs::create_dir_all(dir).unwrap();
    let info = json!({"image": ex["image"], "provenance": ex["provenance"]});
    fs::write(dir.join("build.json"), serde_json::to_vec_pretty(&info).unwrap()).unwrap();
    for (platform, values) in ex["platforms"].as_object().unwrap() {
        let p = dir.join(platform);
        fs::create_dir_all(&p).unwrap();
        let mut artefacts = Vec::new();
        let mut files: Vec<(String, Vec<u8>)> = ["disk.raw", "uki.efi", "root.raw", "root-verity.raw"]
            .iter()
            .map(|f| (f.to_string(), format!("{platform} {f}\n").repeat(300).into_bytes()))
            .collect();
        if let Some(n) = big {
            files.push(("big.raw".into(), common::random_bytes(n)));
        }
        for (f, content) in files {
            fs::write(p.join(&f), &content).unwrap();
            artefacts.push(json!({"name": f, "size": content.len(), "sha256": hex::encode(Sha256::digest(&content))}));
        }
        let manifest = json!({"image": "debian-cvm", "version": VERSION, "platform": platform, "overlays": [],
            "derived_from": null, "roothash": "00", "cmdline": "quiet", "artefacts": artefacts});
        fs::write(p.join("manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
        fs::write(p.join("reference-values.json"), serde_json::to_vec_pretty(values).unwrap()).unwrap();
    }
}

/// A build, an unencrypted key pair `k`, and a release of it in `rel/`.
fn released(d: &Path) -> PathBuf {
    build_output(&d.join("build"), None);
    assert_eq!(nodeimg(d, &["keygen", "-o", "k", "--unencrypted"]).code, 0);
    let run = nodeimg(d, &["release", "--version", VERSION, "--input", "build", "--key", "k.key", "--out", "rel"]);
    assert_eq!(run.code, 0, "{run:?}");
    d.join("rel").join(NAME)
}

#[test]
fn a_release_checks_out_with_debian_tools() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rel = released(d);
    let names: Vec<String> =
        fs::read_dir(d.join("rel")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, [NAME], "nothing but the release directory");

    // coreutils: every file listed in SHA256SUMS matches; minisign: both signatures verify.
    assert_eq!(tool(&rel, "sha256sum", &["--strict", "-c", "SHA256SUMS"]).code, 0);
    for f in ["bundle.json", "SHA256SUMS"] {
        let m = tool(&rel, "minisign", &["-V", "-H", "-p", "../../k.pub", "-m", f]);
        assert_eq!(m.code, 0, "{f}: {m:?}");
    }
    // zstd: an artefact decompresses to the build's bytes.
    let z = tool(&rel, "zstd", &["-q", "-d", "-c", "qemu-snp/uki.efi.zst"]);
    assert_eq!(z.code, 0, "{z:?}");
    assert!(
        z.stdout.as_bytes() == fs::read(d.join("build/qemu-snp/uki.efi")).unwrap(),
        "decompressed artefact differs"
    );

    // GNU tar: sorted entries, numeric root ownership, SOURCE_DATE_EPOCH; extracts to the same tree.
    let archive = format!("{NAME}.tar.zst");
    let t = tool(&rel, "tar", &["--zstd", "-tvf", &archive, "--numeric-owner", "--full-time", "--utc"]);
    assert_eq!(t.code, 0, "{t:?}");
    let mut listed = Vec::new();
    for line in t.stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((f[1], f[3], f[4]), ("0/0", "2023-11-14", "22:13:20"), "{line}");
        listed.push(f[5].to_owned());
    }
    assert_eq!(listed.first().map(String::as_str), Some(&*format!("{NAME}/")));
    assert!(
        listed.contains(&format!("{NAME}/bundle.json")) && !listed.iter().any(|l| l.ends_with(".tar.zst")),
        "{listed:?}"
    );
    let x = d.join("x");
    fs::create_dir(&x).unwrap();
    assert_eq!(tool(&x, "tar", &["--zstd", "-xf", &rel.join(&archive).display().to_string()]).code, 0);
    assert_eq!(tool(&x.join(NAME), "sha256sum", &["--strict", "-c", "SHA256SUMS"]).code, 0);

    // nodeimg verify: signature, artefacts (compressed in the release, plain in the build).
    for artefacts in [rel.display().to_string(), d.join("build").display().to_string()] {
        let v = nodeimg(
            d,
            &[
                "verify",
                "--bundle",
                &rel.join("bundle.json").display().to_string(),
                "--pubkey",
                "k.pub",
                "--artefacts",
                &artefacts,
                "--min-version",
                "1.2.0",
            ],
        );
        assert_eq!(v.code, 0, "{v:?}");
        assert!(v.stdout.contains("8 artefacts match"), "{v:?}");
    }

    // Reproducible: a second release of the same build is byte-identical, archive included.
    let run =
        nodeimg(d, &["release", "--version", VERSION, "--input", "build", "--key", "k.key", "--out", "rel2", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    for f in report["files"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        assert!(fs::read(rel.join(f)).unwrap() == fs::read(d.join("rel2").join(NAME).join(f)).unwrap(), "{f} differs");
    }
    // And a release is never overwritten.
    assert_fails(
        &nodeimg(d, &["release", "--version", VERSION, "--input", "build", "--key", "k.key", "--out", "rel"]),
        2,
        &["already exists"],
    );
}

/// Progress on stderr. Without a terminal: one plain line per artefact hashed and per artefact
/// compressed, each with its size, then one per step of the release, no carriage return or
/// escape; with `-q` nothing at all. On a terminal (`script` gives one): a bar per step that
/// ends as a `✓` line; with `-q` nothing again.
#[test]
fn progress_on_stderr_plain_without_a_terminal_bars_on_one_none_with_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build_output(&d.join("build"), None);
    assert_eq!(nodeimg(d, &["keygen", "-o", "k", "--unencrypted"]).code, 0);
    let release = |out: &str, quiet: bool| {
        let mut args = vec!["release", "--version", VERSION, "--input", "build", "--key", "k.key", "--out", out];
        if quiet {
            args.push("-q");
        }
        let run = nodeimg(d, &args);
        assert_eq!(run.code, 0, "{run:?}");
        run
    };
    let run = release("plain", false);
    assert!(!run.stderr.contains(['\r', '\x1b']), "no carriage return or escape without a terminal: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    let mut artefacts = Vec::new();
    for platform in example()["platforms"].as_object().unwrap().keys() {
        for f in ["disk.raw", "uki.efi", "root.raw", "root-verity.raw"] {
            artefacts.push(format!("{platform}/{f}"));
        }
    }
    for (i, verb) in ["hashing", "compressing"].into_iter().enumerate() {
        let part = &lines[i * artefacts.len()..(i + 1) * artefacts.len()];
        for a in &artefacts {
            let size = fs::metadata(d.join("build").join(a)).unwrap().len();
            let want = format!("‣ {verb} {a} ({:.2} kB)", size as f64 / 1000.0);
            assert_eq!(part.iter().filter(|l| **l == want).count(), 1, "{want:?} once among the first lines: {run:?}");
        }
    }
    assert_eq!(
        lines[2 * artefacts.len()..],
        [
            "‣ writing and signing bundle.json".to_owned(),
            format!("‣ hashing the files for SHA256SUMS ({:.2} kB)", sums_size(&d.join("plain").join(NAME)) / 1000.0),
            "‣ writing and signing SHA256SUMS".to_owned(),
            format!("‣ writing {NAME}.tar.zst ({:.2} kB)", archived_size(&d.join("plain").join(NAME)) / 1000.0),
            format!(
                "‣ hashing {NAME}.tar.zst ({:.2} kB)",
                file_size(&d.join("plain").join(NAME).join(format!("{NAME}.tar.zst"))) / 1000.0
            ),
        ],
        "{run:?}"
    );
    let quiet = release("quiet", true);
    assert_eq!(quiet.stderr, "", "{quiet:?}");

    // On a terminal.
    let bin = env!("CARGO_BIN_EXE_nodeimg");
    let on_tty = |out: &str, quiet: &str| {
        let cmd = format!("{bin} release --version {VERSION} --input build --key k.key --out {out} {quiet}");
        let run = tool(d, "script", &["-qec", &cmd, "/dev/null"]);
        assert_eq!(run.code, 0, "{run:?}");
        run
    };
    let tty = on_tty("tty", "");
    for a in &artefacts {
        for verb in ["hashing", "compressing"] {
            assert!(tty.stdout.contains(&format!("✓ {verb} {a} (")), "{verb} {a}: {tty:?}");
        }
    }
    assert!(tty.stdout.contains(&format!("✓ writing {NAME}.tar.zst (")), "{tty:?}");
    assert!(!tty.stdout.contains("‣ "), "bars, not plain lines, on a terminal: {tty:?}");
    let tty_quiet = on_tty("tty-quiet", "-q");
    assert_eq!(tty_quiet.stdout, "", "{tty_quiet:?}");
}

fn file_size(path: &Path) -> f64 {
    fs::metadata(path).unwrap().len() as f64
}

/// The bytes of the files SHA256SUMS lists in the release `rel`.
fn sums_size(rel: &Path) -> f64 {
    fs::read_to_string(rel.join("SHA256SUMS")).unwrap().lines().map(|l| file_size(&rel.join(&l[66..]))).sum()
}

/// The bytes of the files the archive of `rel` holds: what SHA256SUMS lists, and the list with
/// its signature.
fn archived_size(rel: &Path) -> f64 {
    sums_size(rel) + file_size(&rel.join("SHA256SUMS")) + file_size(&rel.join("SHA256SUMS.minisig"))
}

#[test]
fn every_kind_of_tampering_fails_with_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rel = released(d);
    assert_eq!(nodeimg(d, &["keygen", "-o", "other", "--unencrypted"]).code, 0);
    let verify = |case: &str, extra: &[&str]| -> Run {
        let c = d.join(case);
        let bundle = c.join("bundle.json").display().to_string();
        let mut args = vec!["verify", "--bundle", &bundle];
        args.extend_from_slice(extra);
        nodeimg(d, &args)
    };
    let fresh = |case: &str| -> PathBuf {
        let c = d.join(case);
        Command::new("cp").args(["-a", &rel.display().to_string(), &c.display().to_string()]).status().unwrap();
        c
    };
    let sig_line = |c: &Path, line: usize, edit: &dyn Fn(&str) -> String| {
        let sig = fs::read_to_string(c.join("bundle.json.minisig")).unwrap();
        let mut lines: Vec<String> = sig.lines().map(str::to_owned).collect();
        lines[line] = edit(&lines[line]);
        fs::write(c.join("bundle.json.minisig"), lines.join("\n") + "\n").unwrap();
    };
    let mut reasons = BTreeSet::new();
    let mut expect = |case: &str, run: Run, words: &[&str]| {
        assert_fails(&run, 1, words);
        let reason = run.stderr.lines().find(|l| l.contains("verification failed")).unwrap_or("").to_owned();
        assert!(
            reasons.insert(reason.split(case).last().unwrap().to_owned()),
            "{case}: same message as another case: {reason}"
        );
    };

    let c = fresh("bundle-byte");
    flip_byte(&c.join("bundle.json"), 200);
    expect("bundle-byte", verify("bundle-byte", &["--pubkey", "k.pub"]), &["altered after it was signed"]);

    let c = fresh("sig-byte");
    sig_line(&c, 1, &|l| {
        let mut b = l.as_bytes().to_vec();
        b[40] = if b[40] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    });
    expect("sig-byte", verify("sig-byte", &["--pubkey", "k.pub"]), &["signature was altered"]);

    let c = fresh("comment");
    sig_line(&c, 2, &|l| l.replace("version:1.2.3", "version:1.2.4"));
    expect("comment", verify("comment", &["--pubkey", "k.pub"]), &["trusted comment was altered"]);

    let c = fresh("truncated");
    let sig = fs::read(c.join("bundle.json.minisig")).unwrap();
    fs::write(c.join("bundle.json.minisig"), &sig[..sig.len() - 40]).unwrap();
    // A malformed signature is unusable input: exit 2, whether or not it is text.
    assert_fails(&verify("truncated", &["--pubkey", "k.pub"]), 2, &["malformed"]);
    fs::write(c.join("bundle.json.minisig"), [0xff, 0xfe, 0]).unwrap();
    assert_fails(&verify("truncated", &["--pubkey", "k.pub"]), 2, &["not UTF-8"]);

    fresh("wrong-key");
    expect("wrong-key", verify("wrong-key", &["--pubkey", "other.pub"]), &["wrong key"]);

    fresh("rollback");
    expect("rollback", verify("rollback", &["--pubkey", "k.pub", "--min-version", "1.3.0"]), &["rollback", "1.3.0"]);

    // Each artefact, flipped in the plain build output and in the release's compressed copy.
    for (platform, file) in
        [("qemu-snp", "disk.raw"), ("qemu-snp", "uki.efi"), ("qemu-tdx", "root.raw"), ("qemu-tdx", "root-verity.raw")]
    {
        let case = format!("artefact-{platform}-{file}");
        let c = fresh(&case);
        Command::new("cp")
            .args(["-a", &d.join("build").display().to_string(), &c.join("plain").display().to_string()])
            .status()
            .unwrap();
        flip_byte(&c.join("plain").join(platform).join(file), 10);
        let plain = c.join("plain").display().to_string();
        expect(
            &case,
            verify(&case, &["--pubkey", "k.pub", "--artefacts", &plain]),
            &[&format!("artefact {platform}/{file}: sha256")],
        );
        let zst = c.join(platform).join(format!("{file}.zst"));
        let len = fs::metadata(&zst).unwrap().len();
        flip_byte(&zst, len - 6);
        let run = verify(&case, &["--pubkey", "k.pub", "--artefacts", &c.display().to_string()]);
        assert_fails(&run, 1, &[&format!("artefact {platform}/{file}")]);
    }

    // The release directory's SHA256SUMS: it and its signature are checked too, and every
    // file it names.
    let c = fresh("sums-ok");
    let run = verify("sums-ok", &["--pubkey", "k.pub", "--artefacts", &c.display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    let c = fresh("sums-edited");
    let sums = fs::read_to_string(c.join("SHA256SUMS")).unwrap();
    let first = sums.lines().next().unwrap();
    let edited = format!("{}{}", if first.starts_with('0') { "1" } else { "0" }, &first[1..]);
    fs::write(c.join("SHA256SUMS"), sums.replacen(first, &edited, 1)).unwrap();
    expect(
        "sums-edited",
        verify("sums-edited", &["--pubkey", "k.pub", "--artefacts", &c.display().to_string()]),
        &["SHA256SUMS: altered after it was signed"],
    );
    // A directory that is not one: exit 2 naming it.
    assert_fails(
        &verify("sums-ok", &["--pubkey", "k.pub", "--artefacts", "/nonexistent/dir"]),
        2,
        &["/nonexistent/dir: not a directory"],
    );

    // --insecure skips the signature, says so, and still checks everything else.
    let c = fresh("insecure");
    fs::write(c.join("bundle.json.minisig"), "garbage").unwrap();
    let run = verify("insecure", &["--insecure"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("--insecure") && run.stderr.contains("NOT checked"), "{run:?}");
    flip_byte(&c.join("bundle.json"), 2);
    assert_fails(&verify("insecure", &["--insecure"]), 1, &["bundle:"]);
}

#[test]
fn an_interrupted_release_leaves_nothing_that_looks_complete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build_output(&d.join("build"), Some(96 << 20));
    assert_eq!(nodeimg(d, &["keygen", "-o", "k", "--unencrypted"]).code, 0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["release", "--version", VERSION, "--input", "build", "--key", "k.key", "--out", "rel"])
        .current_dir(d)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        if line.unwrap().contains("compressing qemu-snp/big.raw") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<String> =
        fs::read_dir(d.join("rel")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!left.iter().any(|n| n == NAME), "a complete-looking release after a kill: {left:?}");
    assert!(left.iter().all(|n| n.starts_with(&format!(".{NAME}.")) && n.ends_with(".partial")), "{left:?}");

    // The next release removes the stale partial directory, and its tree is 0755/0644 even
    // under umask 000.
    let run: Run = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000 && exec {} release --version {VERSION} --input build --key k.key --out rel",
            env!("CARGO_BIN_EXE_nodeimg")
        ))
        .current_dir(d)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{run:?}");
    let left: Vec<String> =
        fs::read_dir(d.join("rel")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(left, [NAME], "the stale .partial is gone");
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![d.join("rel").join(NAME)];
    while let Some(p) = stack.pop() {
        let meta = fs::metadata(&p).unwrap();
        let want = if meta.is_dir() { 0o755 } else { 0o644 };
        assert_eq!(meta.permissions().mode() & 0o777, want, "{} under umask 000", p.display());
        if meta.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
}

#[test]
fn development_key_observed_pcrs_and_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build_output(&d.join("build"), None);

    // The development key: generated on first use under OUT, called insecure.
    let run = nodeimg(d, &["release", "--version", VERSION, "--input", "build", "--insecure-dev-key", "--out", "rel"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("generated an INSECURE development signing key"), "{run:?}");
    assert!(run.stdout.contains("INSECURE"), "{run:?}");
    let key = d.join("rel/insecure-dev-key/nodeimg-dev.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let sig = fs::read_to_string(d.join("rel").join(NAME).join("bundle.json.minisig")).unwrap();
    assert!(sig.starts_with("untrusted comment: signature from an INSECURE"), "{sig}");
    fs::remove_dir_all(d.join("rel").join(NAME)).unwrap();
    let again =
        nodeimg(d, &["release", "--version", VERSION, "--input", "build", "--insecure-dev-key", "--out", "rel"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(!again.stderr.contains("generated"), "the key is reused: {again:?}");
    assert!(again.stderr.contains("signing with the INSECURE development key"), "{again:?}");
    let v = nodeimg(
        d,
        &["verify", "--bundle", &format!("rel/{NAME}/bundle.json"), "--pubkey", "rel/insecure-dev-key/nodeimg-dev.pub"],
    );
    assert_eq!(v.code, 0, "{v:?}");

    // Observed PCRs join the bundle as "observed"; they may not replace computed ones.
    assert_eq!(nodeimg(d, &["keygen", "-o", "k", "--unencrypted"]).code, 0);
    fs::write(d.join("obs.json"), json!({"sha256": {"1": "11".repeat(32)}}).to_string()).unwrap();
    let run = nodeimg(
        d,
        &[
            "release",
            "--version",
            VERSION,
            "--input",
            "build",
            "--key",
            "k.key",
            "--out",
            "obs",
            "--observed",
            "qemu-tdx=obs.json",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let b: Value = serde_json::from_slice(&fs::read(d.join("obs").join(NAME).join("bundle.json")).unwrap()).unwrap();
    assert_eq!(
        b["platforms"]["qemu-tdx"]["vtpm"]["sha256"]["1"],
        json!({"status": "observed", "value": "11".repeat(32)})
    );
    fs::write(d.join("clash.json"), json!({"sha256": {"4": "11".repeat(32)}}).to_string()).unwrap();
    assert_fails(
        &nodeimg(
            d,
            &[
                "release",
                "--version",
                VERSION,
                "--input",
                "build",
                "--key",
                "k.key",
                "--out",
                "clash",
                "--observed",
                "qemu-snp=clash.json",
            ],
        ),
        2,
        &["PCR 4 (sha256) is computed by the build"],
    );

    // Input errors: wrong version, a SOURCE_DATE_EPOCH that is not the build's, a stale manifest.
    assert_fails(
        &nodeimg(d, &["release", "--version", "1.2.4", "--input", "build", "--key", "k.key", "--out", "x"]),
        2,
        &["not 1.2.4"],
    );
    let run: Run = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["release", "--version", VERSION, "--input", "build", "--key", "k.key", "--out", "x"])
        .env("SOURCE_DATE_EPOCH", "1")
        .current_dir(d)
        .output()
        .unwrap()
        .into();
    assert_fails(&run, 2, &["SOURCE_DATE_EPOCH=1"]);
    fs::write(d.join("build/qemu-tdx/uki.efi"), b"changed").unwrap();
    assert_fails(
        &nodeimg(d, &["release", "--version", VERSION, "--input", "build", "--key", "k.key", "--out", "x"]),
        2,
        &["uki.efi", "manifest.json says"],
    );
    assert!(!d.join("x").join(NAME).exists());
}

#[test]
fn export_writes_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rel = released(d);
    let bundle = rel.join("bundle.json").display().to_string();
    for format in ["constellation", "trustee", "intoto"] {
        let run = nodeimg(d, &["export", "--bundle", &bundle, "--pubkey", "k.pub", "--format", format]);
        assert_eq!(run.code, 0, "{format}: {run:?}");
        let v: Value = serde_json::from_str(&run.stdout).unwrap();
        let key = match format {
            "constellation" => "list",
            "trustee" => "payload",
            _ => "subject",
        };
        assert!(v.get(key).is_some(), "{format}: {v}");
    }
    let run = nodeimg(
        d,
        &[
            "export",
            "--bundle",
            &bundle,
            "--no-verify",
            "--format",
            "constellation",
            "--platform",
            "qemu-tdx",
            "-o",
            "m.json",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let m: Value = serde_json::from_slice(&fs::read(d.join("m.json")).unwrap()).unwrap();
    assert_eq!(m["list"][0]["attestationVariant"], "qemu-tdx");
    assert_fails(
        &nodeimg(d, &["export", "--bundle", &bundle, "--pubkey", "k.pub", "--format", "trustee", "--platform", "nope"]),
        2,
        &["no platform \"nope\""],
    );
    // It exports only what verifies: an altered bundle is exit 1 and no output; saying nothing
    // about verification is a usage error.
    let mut altered = fs::read(rel.join("bundle.json")).unwrap();
    let at = altered.iter().position(|b| *b == b'1').unwrap();
    altered[at] = b'2';
    fs::write(d.join("altered.json"), &altered).unwrap();
    fs::copy(rel.join("bundle.json.minisig"), d.join("altered.json.minisig")).unwrap();
    let run =
        nodeimg(d, &["export", "--bundle", "altered.json", "--pubkey", "k.pub", "--format", "trustee", "-o", "t.json"]);
    assert_fails(&run, 1, &["altered.json: verification failed", "nothing exported"]);
    assert!(!d.join("t.json").exists());
    assert_fails(&nodeimg(d, &["export", "--bundle", &bundle, "--format", "trustee"]), 2, &["--pubkey"]);
}

/// A rolling upgrade: releases N and N+1 (another SNP launch digest) exported together give one
/// RVPS message that accepts both (an RVPS registration replaces a name's values); formats that
/// hold one release refuse two bundles.
#[test]
fn trustee_export_accepts_n_and_n_plus_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = released(d);
    build_output(&d.join("build-next"), None);
    // The next version of the same image.
    let retag = |path: &Path, pointer: &str| {
        let mut v: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        *v.pointer_mut(pointer).unwrap() = Value::String("1.2.4".into());
        fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    };
    retag(&d.join("build-next/build.json"), "/image/version");
    for p in ["qemu-snp", "qemu-tdx"] {
        retag(&d.join("build-next").join(p).join("manifest.json"), "/version");
    }
    let rv_path = d.join("build-next/qemu-snp/reference-values.json");
    let mut rv: Value = serde_json::from_slice(&fs::read(&rv_path).unwrap()).unwrap();
    let old = rv["snp"][0]["launch_digest"].as_str().unwrap().to_owned();
    rv["snp"][0]["launch_digest"] = Value::String("c9".repeat(48));
    fs::write(&rv_path, serde_json::to_vec_pretty(&rv).unwrap()).unwrap();
    let run =
        nodeimg(d, &["release", "--version", "1.2.4", "--input", "build-next", "--key", "k.key", "--out", "rel-next"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (b1, b2) = (n.join("bundle.json"), d.join("rel-next").join(NAME.replace(VERSION, "1.2.4")).join("bundle.json"));
    let (b1, b2) = (b1.to_str().unwrap(), b2.to_str().unwrap());
    let decode = |run: &Run| -> Value {
        let m: Value = serde_json::from_str(&run.stdout).unwrap();
        let payload =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, m["payload"].as_str().unwrap());
        serde_json::from_slice(&payload.unwrap()).unwrap()
    };
    let snp = |v: &Value| -> Vec<String> {
        v["snp_launch_measurement"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
    };
    let both = nodeimg(d, &["export", "--bundle", b1, "--bundle", b2, "--pubkey", "k.pub", "--format", "trustee"]);
    assert_eq!(both.code, 0, "{both:?}");
    let only_n = nodeimg(d, &["export", "--bundle", b1, "--pubkey", "k.pub", "--format", "trustee"]);
    let (both, only_n) = (snp(&decode(&both)), snp(&decode(&only_n)));
    assert!(both.contains(&old) && both.contains(&"c9".repeat(48)), "{both:?}");
    assert!(!only_n.contains(&"c9".repeat(48)), "{only_n:?}");
    assert_fails(
        &nodeimg(d, &["export", "--bundle", b1, "--bundle", b2, "--pubkey", "k.pub", "--format", "constellation"]),
        2,
        &["holds one release"],
    );
}

/// `--trusted-ak` registers AK public keys as `trusted_aks`, rendered as Trustee's attester sends
/// `ak_public` (its own TPM evidence fixture); anything else is an input error naming the file.
#[test]
fn trustee_export_takes_trusted_aks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rel = released(d);
    let bundle = rel.join("bundle.json").display().to_string();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("release/testdata/trustee");
    let ak = fixtures.join("ak.pem").display().to_string();
    let evidence: Value = serde_json::from_slice(&fs::read(fixtures.join("tpm_evidence.json")).unwrap()).unwrap();
    let export = |extra: &[&str]| {
        let mut args = vec!["export", "--bundle", &bundle, "--pubkey", "k.pub", "--format", "trustee"];
        args.extend_from_slice(extra);
        nodeimg(d, &args)
    };
    let run = export(&["--trusted-ak", &ak, "--trusted-ak", &ak]);
    assert_eq!(run.code, 0, "{run:?}");
    let m: Value = serde_json::from_str(&run.stdout).unwrap();
    let payload = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, m["payload"].as_str().unwrap());
    let payload: Value = serde_json::from_slice(&payload.unwrap()).unwrap();
    assert_eq!(payload["trusted_aks"], json!([evidence["ak_public"]]), "one key, once");

    fs::write(d.join("cert.pem"), fs::read_to_string(&ak).unwrap().replace("PUBLIC KEY", "CERTIFICATE")).unwrap();
    assert_fails(&export(&["--trusted-ak", "cert.pem"]), 2, &["cert.pem", "not a public key", "openssl x509 -pubkey"]);
    assert_fails(&export(&["--trusted-ak", "missing.pem"]), 2, &["missing.pem"]);
    assert_fails(
        &nodeimg(
            d,
            &["export", "--bundle", &bundle, "--pubkey", "k.pub", "--format", "constellation", "--trusted-ak", &ak],
        ),
        2,
        &["--trusted-ak is for --format trustee"],
    );
}

/// The PolicyPCR digest of predicted values equals the one `tpm2_createpolicy --policy-pcr`
/// (tpm2-tools, the oracle) computes in a swtpm trial session from the same values.
#[test]
fn tpm2_policy_equals_tpm2_createpolicy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rel = released(d);
    let bundle = rel.join("bundle.json").display().to_string();
    let policy = |args: &[&str]| {
        let base = ["export", "--bundle", &bundle, "--pubkey", "k.pub", "--format", "tpm2-policy"];
        nodeimg(d, &[&base[..], &["--platform", "qemu-snp"], args].concat())
    };
    let tpm = common::swtpm::Swtpm::start("sha256");
    for (pcrs, phase) in
        [("4,9,11", "enter-initrd"), ("0,4", "enter-initrd"), ("11", "enter-initrd:leave-initrd:sysinit:ready")]
    {
        let run = policy(&["--pcrs", pcrs, "--pcr11-phase", phase, "--pcr-values", "values.bin"]);
        assert_eq!(run.code, 0, "{pcrs}: {run:?}");
        let ours = run.stdout.trim().to_owned();
        let oracle = tool(
            d,
            "tpm2_createpolicy",
            &[
                "-T",
                &tpm.tcti(),
                "--policy-pcr",
                "-l",
                &format!("sha256:{pcrs}"),
                "-f",
                "values.bin",
                "-L",
                "policy.bin",
            ],
        );
        assert_eq!(oracle.code, 0, "{pcrs}: {oracle:?}");
        assert_eq!(ours, hex::encode(fs::read(d.join("policy.bin")).unwrap()), "{pcrs} at {phase}");
    }
    // A PCR the bundle has no value for is refused, not guessed.
    assert_fails(&policy(&["--pcrs", "5"]), 2, &["no sha256 value for PCR 5"]);
    // The values file and the digest are written together or not at all: with a directory in
    // the way of the digest, the values file does not appear.
    fs::create_dir(d.join("digest-dir")).unwrap();
    let run = policy(&["--pcrs", "4", "--pcr-values", "alone.bin", "-o", "digest-dir"]);
    assert_fails(&run, 2, &["digest-dir: a directory is in the way of a file"]);
    assert!(!d.join("alone.bin").exists(), "the values file without its digest");
}

/// A build output or release directory holding something other than regular files where its
/// files go (`/dev/zero`, a FIFO nobody writes to) is refused at once, never read for ever.
#[test]
fn devices_and_fifos_in_a_build_or_a_release_are_refused_not_read() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rel = released(d);
    let cp = |from: &Path, to: &str| {
        assert!(Command::new("cp").arg("-a").arg(from).arg(d.join(to)).status().unwrap().success());
        d.join(to)
    };
    let platform = example()["platforms"].as_object().unwrap().keys().next().unwrap().clone();
    // An artefact the manifest lists is /dev/zero; another build's manifest.json is a FIFO.
    let zero = cp(&d.join("build"), "zero");
    fs::remove_file(zero.join(&platform).join("disk.raw")).unwrap();
    symlink("/dev/zero", zero.join(&platform).join("disk.raw")).unwrap();
    let fifo = cp(&d.join("build"), "fifo");
    fs::remove_file(fifo.join(&platform).join("manifest.json")).unwrap();
    assert!(Command::new("mkfifo").arg(fifo.join(&platform).join("manifest.json")).status().unwrap().success());
    for (input, out) in [("zero", "rel-zero"), ("fifo", "rel-fifo")] {
        let args = ["release", "--version", VERSION, "--input", input, "--key", "k.key", "--out", out];
        let run = common::nodeimg_bounded(d, &args, Stdio::piped());
        assert_fails(&run, 2, &[&platform]);
        assert!(!d.join(out).exists(), "{input}: {run:?}");
    }
    // A file SHA256SUMS names is /dev/zero: a failed verification, not a hang.
    let sums = cp(&rel, "sums-zero");
    fs::copy(sums.join("bundle.json.minisig"), d.join("good.minisig")).unwrap();
    fs::remove_file(sums.join("bundle.json.minisig")).unwrap();
    symlink("/dev/zero", sums.join("bundle.json.minisig")).unwrap();
    let bundle = sums.join("bundle.json").display().to_string();
    let artefacts = sums.display().to_string();
    let args = ["verify", "--bundle", &bundle, "--pubkey", "k.pub", "--sig", "good.minisig", "--artefacts", &artefacts];
    let run = common::nodeimg_bounded(d, &args, Stdio::piped());
    assert_fails(&run, 1, &["bundle.json.minisig", "not a regular file"]);
}
