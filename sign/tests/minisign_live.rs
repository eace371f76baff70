//! Live interoperability with Debian's `minisign` CLI (installed by `make setup`), both ways.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sign::{sign, verify, KdfParams, PublicKey, SecretKey, SecretKeyFile, Signature};

/// Runs minisign with `stdin`; fails loudly when it is not installed.
fn minisign(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the oracle `minisign` ({e}): run `make setup`"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "minisign failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn random_message(dir: &Path, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut buf).unwrap();
    std::fs::write(dir.join("msg"), &buf).unwrap();
    buf
}

#[test]
fn minisign_verifies_our_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Our key in the clear, our signature; minisign checks it and prints our trusted comment.
    let sk = SecretKey::generate().unwrap();
    std::fs::write(d.join("k.pub"), sk.public_key().to_file()).unwrap();
    for len in [0, 1, 65536, 200_000] {
        let msg = random_message(d, len);
        let comment = format!("name:x\tversion:1.2.3\tlen:{len}");
        let sig = sign(&sk, &msg[..], &comment, "signature from nodeimg").unwrap();
        std::fs::write(d.join("msg.minisig"), sig.to_file()).unwrap();
        let out = ok(&minisign(d, &["-V", "-H", "-p", "k.pub", "-m", "msg"], ""));
        assert!(out.contains(&format!("Trusted comment: {comment}")), "{len} bytes: {out}");

        let mut tampered = msg.clone();
        tampered.push(0);
        std::fs::write(d.join("msg"), &tampered).unwrap();
        let out = minisign(d, &["-V", "-p", "k.pub", "-m", "msg"], "");
        assert!(!out.status.success(), "{len} bytes: minisign accepted a tampered file");
    }
    // And the public key as a -P string.
    let msg = random_message(d, 10);
    let sig = sign(&sk, &msg[..], "c", "u").unwrap();
    std::fs::write(d.join("msg.minisig"), sig.to_file()).unwrap();
    ok(&minisign(d, &["-V", "-P", &sk.public_key().to_base64(), "-m", "msg"], ""));
}

#[test]
fn minisign_uses_our_secret_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sk = SecretKey::generate().unwrap();
    let pk = sk.public_key();
    random_message(d, 1000);
    let msg = std::fs::read(d.join("msg")).unwrap();

    // Unencrypted.
    std::fs::write(d.join("clear.key"), sk.to_file(None, KdfParams::SENSITIVE).unwrap()).unwrap();
    ok(&minisign(d, &["-S", "-W", "-s", "clear.key", "-m", "msg", "-t", "tc1"], ""));
    let sig = Signature::parse(&std::fs::read_to_string(d.join("msg.minisig")).unwrap()).unwrap();
    verify(&pk, &msg[..], &sig, true).unwrap();
    assert_eq!(sig.trusted_comment, "tc1");

    // Encrypted (cheap scrypt limits: minisign reads them from the file).
    std::fs::write(d.join("enc.key"), sk.to_file(Some(b"s3cret pass"), KdfParams::INTERACTIVE).unwrap()).unwrap();
    ok(&minisign(d, &["-S", "-s", "enc.key", "-m", "msg", "-t", "tc2"], "s3cret pass\n"));
    let sig = Signature::parse(&std::fs::read_to_string(d.join("msg.minisig")).unwrap()).unwrap();
    verify(&pk, &msg[..], &sig, true).unwrap();
    let out = minisign(d, &["-S", "-s", "enc.key", "-m", "msg"], "wrong\n");
    assert!(!out.status.success(), "minisign opened our key with a wrong password");

    // minisign recreates the same public key file from our secret key (-R).
    ok(&minisign(d, &["-R", "-s", "enc.key", "-p", "re.pub"], "s3cret pass\n"));
    assert_eq!(std::fs::read_to_string(d.join("re.pub")).unwrap(), pk.to_file());
}

#[test]
fn we_use_minisign_keys_and_verify_its_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // minisign's own encrypted key (its default, scrypt N = 2^20).
    ok(&minisign(d, &["-G", "-p", "m.pub", "-s", "m.key"], "pw pw\npw pw\n"));
    let pk = PublicKey::parse(&std::fs::read_to_string(d.join("m.pub")).unwrap()).unwrap();
    let file = SecretKeyFile::parse(&std::fs::read_to_string(d.join("m.key")).unwrap()).unwrap();
    assert_eq!(file.kdf_params(), Some(KdfParams::SENSITIVE));
    let sk = file.decrypt(Some(b"pw pw")).unwrap();
    assert_eq!(sk.public_key(), pk);

    random_message(d, 5000);
    let msg = std::fs::read(d.join("msg")).unwrap();
    // Prehashed and legacy signatures by minisign verify with us.
    for (flags, name) in [(&[][..], "prehashed"), (&["-l"][..], "legacy")] {
        let args = [&["-S", "-s", "m.key", "-m", "msg", "-t", name][..], flags].concat();
        ok(&minisign(d, &args, "pw pw\n"));
        let sig = Signature::parse(&std::fs::read_to_string(d.join("msg.minisig")).unwrap()).unwrap();
        verify(&pk, &msg[..], &sig, false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sig.trusted_comment, name);
    }
    // Our signature with minisign's key verifies with minisign.
    let sig = sign(&sk, &msg[..], "ours", "from nodeimg").unwrap();
    std::fs::write(d.join("msg.minisig"), sig.to_file()).unwrap();
    ok(&minisign(d, &["-V", "-p", "m.pub", "-m", "msg"], ""));
}
