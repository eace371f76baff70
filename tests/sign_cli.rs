//! `nodeimg keygen | sign | verify-signature` against Debian's `minisign` (the oracle), both ways.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_fails, flip_byte, nodeimg, Run};

/// Runs `program ARGS…` in `dir` with `stdin` piped in.
fn piped(dir: &Path, program: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}): run `make setup`"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap().into()
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nodeimg")
}

#[test]
fn keygen_protects_and_never_overwrites_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = nodeimg(d, &["keygen", "-o", "k", "--unencrypted"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("UNENCRYPTED"), "{run:?}");
    let mode = std::fs::metadata(d.join("k.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "secret key mode");
    let before = std::fs::read(d.join("k.key")).unwrap();
    for args in [&["keygen", "-o", "k", "--unencrypted"][..], &["keygen", "-o", "k"][..]] {
        let run = nodeimg(d, args);
        assert_fails(&run, 2, &["k.key and k.pub already exist", "refusing to overwrite"]);
    }
    assert_eq!(std::fs::read(d.join("k.key")).unwrap(), before, "the key is untouched");
    // Only the pub half exists: still refused, saying what to delete.
    std::fs::write(d.join("p.pub"), "x").unwrap();
    assert_fails(
        &nodeimg(d, &["keygen", "-o", "p", "--unencrypted"]),
        2,
        &["p.pub exists without p.key", "delete p.pub"],
    );
    assert!(!d.join("p.key").exists());
    // Half a pair as a keygen killed between its two files leaves it: refused, naming the fix.
    std::fs::copy(d.join("k.key"), d.join("q.key")).unwrap();
    assert_fails(
        &nodeimg(d, &["keygen", "-o", "q", "--unencrypted"]),
        2,
        &["q.key exists without q.pub", "delete q.key"],
    );
    // A secret key others can read: signing still works, with a warning.
    std::fs::set_permissions(d.join("k.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(d.join("f"), b"x").unwrap();
    let run = nodeimg(d, &["sign", "f", "--key", "k.key"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("readable or writable by others (mode 0644); chmod 600 it"), "{run:?}");
}

#[test]
fn encrypted_keys_work_with_minisign_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let password = "correct horse battery";
    std::fs::write(d.join("pw"), format!("{password}\n")).unwrap();
    let run = nodeimg(d, &["keygen", "-o", "enc", "--password-file", "pw"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password), "the password leaked: {run:?}");
    std::fs::write(d.join("file"), b"some data\n").unwrap();

    // minisign opens our encrypted key (password on stdin) and signs; we verify.
    let m = piped(d, "minisign", &["-S", "-s", "enc.key", "-m", "file", "-t", "by minisign"], &format!("{password}\n"));
    assert_eq!(m.code, 0, "minisign -S with our key: {m:?}");
    let v = nodeimg(d, &["verify-signature", "file", "--pubkey", "enc.pub"]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("trusted comment: by minisign"), "{v:?}");

    // We sign with the password from stdin; minisign verifies and shows our trusted comment.
    let s = piped(d, bin(), &["sign", "file", "--key", "enc.key"], &format!("{password}\n"));
    assert_eq!(s.code, 0, "{s:?}");
    let m = piped(d, "minisign", &["-V", "-p", "enc.pub", "-m", "file"], "");
    assert_eq!(m.code, 0, "minisign -V of our signature: {m:?}");
    assert!(m.stdout.contains("Trusted comment: file:file\tsha256:"), "{m:?}");

    // Passwords on a stdin that is not a terminal: exactly one line to sign, exactly two (the
    // password and its confirmation) for keygen; anything else is said, not ignored.
    let s = piped(d, bin(), &["sign", "file", "--key", "enc.key"], &format!("{password}\nleftover\n"));
    assert_fails(&s, 2, &["stdin has 2 lines: the password must be the only one"]);
    let k = piped(d, bin(), &["keygen", "-o", "one-line"], &format!("{password}\n"));
    assert_fails(&k, 2, &["two lines; found 1"]);
    let k = piped(d, bin(), &["keygen", "-o", "mismatch"], &format!("{password}\nother\n"));
    assert_fails(&k, 2, &["the passwords do not match"]);
    assert!(!d.join("one-line.key").exists() && !d.join("mismatch.key").exists());
    let k = piped(d, bin(), &["keygen", "-o", "two-lines"], &format!("{password}\n{password}\n"));
    assert_eq!(k.code, 0, "{k:?}");
    let s =
        piped(d, bin(), &["sign", "file", "--key", "two-lines.key", "--sig", "t.minisig"], &format!("{password}\n"));
    assert_eq!(s.code, 0, "the key opens with the password given twice: {s:?}");

    // A wrong password is an input error.
    std::fs::write(d.join("wrong"), "not it\n").unwrap();
    assert_fails(
        &nodeimg(d, &["sign", "file", "--key", "enc.key", "--password-file", "wrong"]),
        2,
        &["wrong password"],
    );
}

#[test]
fn minisign_keys_and_signatures_work_with_us() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = piped(d, "minisign", &["-G", "-W", "-p", "m.pub", "-s", "m.key"], "");
    assert_eq!(g.code, 0, "{g:?}");
    std::fs::write(d.join("file"), common::random_bytes(100_000)).unwrap();

    // Our signature with minisign's key, checked by minisign.
    let s = nodeimg(d, &["sign", "file", "--key", "m.key"]);
    assert_eq!(s.code, 0, "{s:?}");
    let m = piped(d, "minisign", &["-V", "-H", "-p", "m.pub", "-m", "file"], "");
    assert_eq!(m.code, 0, "{m:?}");

    // minisign's prehashed and legacy signatures, checked by us.
    for flags in [&[][..], &["-l"][..]] {
        let args = [&["-S", "-W", "-s", "m.key", "-m", "file"][..], flags].concat();
        assert_eq!(piped(d, "minisign", &args, "").code, 0);
        let v = nodeimg(d, &["verify-signature", "file", "--pubkey", "m.pub", "--json"]);
        assert_eq!(v.code, 0, "{flags:?}: {v:?}");
        let j: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
        assert_eq!(j["ok"], true);
        assert!(j["trusted_comment"].as_str().unwrap().starts_with("timestamp:"), "{j}");
    }

    // Tampering: exit 1 with the reason.
    flip_byte(&d.join("file"), 500);
    assert_fails(&nodeimg(d, &["verify-signature", "file", "--pubkey", "m.pub"]), 1, &["does not match the file"]);
    flip_byte(&d.join("file"), 500);
    let sig = std::fs::read_to_string(d.join("file.minisig")).unwrap();
    std::fs::write(
        d.join("file.minisig"),
        sig.replacen("trusted comment: timestamp:", "trusted comment: timestamp:1", 1),
    )
    .unwrap();
    assert_fails(&nodeimg(d, &["verify-signature", "file", "--pubkey", "m.pub"]), 1, &["trusted comment"]);
    // A malformed signature, text or not, and a directory as FILE are unusable input: exit 2.
    std::fs::write(d.join("file.minisig"), &sig[..sig.len() / 2]).unwrap();
    assert_fails(&nodeimg(d, &["verify-signature", "file", "--pubkey", "m.pub"]), 2, &["malformed"]);
    std::fs::write(d.join("file.minisig"), [0xff, 0xfe, 0]).unwrap();
    assert_fails(&nodeimg(d, &["verify-signature", "file", "--pubkey", "m.pub"]), 2, &["not UTF-8"]);
    std::fs::create_dir(d.join("adir")).unwrap();
    std::fs::write(d.join("adir.minisig"), &sig).unwrap();
    assert_fails(&nodeimg(d, &["verify-signature", "adir", "--pubkey", "m.pub"]), 2, &["adir is a directory"]);
    // A missing public key is a usage/input error.
    assert_fails(&nodeimg(d, &["verify-signature", "file", "--pubkey", "nope.pub"]), 2, &["nope.pub"]);
}

#[test]
fn signing_a_bundle_binds_name_version_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("release/testdata/bundle/example.json");
    std::fs::copy(example, d.join("bundle.json")).unwrap();
    assert_eq!(nodeimg(d, &["keygen", "-o", "k", "--unencrypted"]).code, 0);
    let s = nodeimg(d, &["sign", "bundle.json", "--key", "k.key", "--json"]);
    assert_eq!(s.code, 0, "{s:?}");
    let j: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    let sha = hex::encode(sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
        std::fs::read(d.join("bundle.json")).unwrap(),
    )));
    assert_eq!(j["trusted_comment"], format!("name:debian-cvm\tversion:1.2.3\tsha256:{sha}"));
    // Debian's minisign shows the same comment, authenticated.
    let m = piped(d, "minisign", &["-V", "-p", "k.pub", "-m", "bundle.json"], "");
    assert_eq!(m.code, 0, "{m:?}");
    assert!(m.stdout.contains(&format!("Trusted comment: name:debian-cvm\tversion:1.2.3\tsha256:{sha}")), "{m:?}");
    // And nodeimg verify accepts it.
    let v = nodeimg(d, &["verify", "--bundle", "bundle.json", "--pubkey", "k.pub"]);
    assert_eq!(v.code, 0, "{v:?}");
}

/// `sign` reads the file once: the sha256 in the trusted comment is of the very bytes signed.
/// A FIFO can be read only once (a second read would block, or see nothing), so signing one
/// proves it; the signature then verifies, with minisign too, over a regular file of the bytes.
#[test]
fn sign_reads_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(nodeimg(d, &["keygen", "-o", "k", "--unencrypted"]).code, 0);
    let status = Command::new("mkfifo").arg(d.join("fifo")).status().unwrap();
    assert!(status.success());
    let content = b"signed through a pipe\n".repeat(1000);
    let writer = {
        let (path, content) = (d.join("fifo"), content.clone());
        std::thread::spawn(move || std::fs::write(path, content).unwrap())
    };
    let run: Run = Command::new("timeout")
        .args(["20", bin(), "sign", "fifo", "--key", "k.key", "--sig", "fifo.minisig"])
        .current_dir(d)
        .output()
        .unwrap()
        .into();
    writer.join().unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
    let sig = std::fs::read_to_string(d.join("fifo.minisig")).unwrap();
    assert!(sig.contains(&format!("trusted comment: file:fifo\tsha256:{sha}")), "{sig}");
    std::fs::write(d.join("plain"), &content).unwrap();
    let v = nodeimg(d, &["verify-signature", "plain", "--sig", "fifo.minisig", "--pubkey", "k.pub"]);
    assert_eq!(v.code, 0, "{v:?}");
    let m =
        Command::new("minisign").args(["-Vm", "plain", "-x", "fifo.minisig", "-p", "k.pub"]).current_dir(d).output();
    let m: Run = m.expect("minisign: run `make setup`").into();
    assert_eq!(m.code, 0, "minisign: {m:?}");
}
