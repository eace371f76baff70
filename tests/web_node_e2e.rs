//! "Your own image", as a new user would do it (part of `make test`).
//!
//! Runs exactly the shell blocks of the README's "Your own image" section, in order, from an
//! empty directory outside the repository with `nodeimg` on `PATH` (`nodeimg init`, the edits,
//! `lock`, `build`, `keygen`, `release`), then:
//!
//! * the project they made equals `examples/web-node/` file for file (but `packages.lock`, which
//!   `nodeimg lock` takes from the archive of the day), so the committed example is what the
//!   README makes;
//! * boots the built qemu disk under QEMU (TCG) + Debian's OVMF + swtpm with the guest's port 80
//!   forwarded to 127.0.0.1 (`tests/image/serve.sh`), fetches the page, and asks the node's
//!   `/cgi-bin/evidence` for a TPM quote (tpm2-tools in the guest: an AK under the EK, a quote of
//!   the enforced PCRs with the test's nonce, the PCR values and the firmware event log);
//! * `nodeimg attest check --evidence` verifies the quote (signature, the test's nonce, the PCR
//!   digest) and finds the PCRs it vouches for equal to the project's **signed** reference values
//!   (the release's bundle and the project's public key; exit 0, authenticated); with another
//!   nonce it fails (exit 1), and against the gcp platform of the same release (another kernel
//!   command line) it fails naming the UKI's `.cmdline` (exit 1).
//!
//! The judge of the PCR values is the real boot: the release's bundle predicted them before the
//! machine ever ran. Takes 10–15 minutes on the 2-core CI machine (a `nodeimg lock`, a cold
//! mkosi build of a new package set, a TCG boot).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The ```sh blocks of the README section `## Your own image`, in order.
fn readme_commands() -> Vec<String> {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("\n## Your own image\n").expect("README has a \"Your own image\" section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let section = &section[..end];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find("```sh\n") {
        let body = &rest[i + 6..];
        let j = body.find("\n```\n").expect("a closed code block");
        blocks.push(body[..j + 1].to_owned());
        rest = &body[j + 5..];
    }
    assert!(blocks.len() >= 3, "the section's commands: {blocks:?}");
    blocks
}

/// Relative paths of the files and links below `dir` (not `skip`ped), sorted.
fn files(dir: &Path, rel: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir.join(rel)).unwrap() {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        if skip.iter().any(|s| Path::new(s) == r) {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            files(dir, &r, skip, out);
        } else {
            out.push(r);
        }
    }
    out.sort();
}

/// A plain HTTP/1.0 GET of `path` on 127.0.0.1:`port`: (status, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: web-node\r\n\r\n")?;
    let mut resp = Vec::new();
    s.take(4 << 20).read_to_end(&mut resp)?;
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP header in {:?}", String::from_utf8_lossy(&resp))))?;
    let status = String::from_utf8_lossy(&resp[..head_end])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((status, resp[head_end + 4..].to_vec()))
}

/// The booted guest: its process group is killed when dropped.
struct Guest(Child);

impl Drop for Guest {
    fn drop(&mut self) {
        let pgid = self.0.id() as i32;
        let kill = |sig| {
            // SAFETY: kill(2) on the process group this test started.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(-pgid, sig);
            }
        };
        kill(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        kill(libc::SIGKILL);
        let _ = self.0.wait();
    }
}

#[test]
fn readme_web_node_project_builds_boots_serves_and_attests() {
    let tmp = tempfile::Builder::new().prefix("nodeimg-web-node.").tempdir_in("/var/tmp").unwrap();
    let home = tmp.path();
    let bin = Path::new(env!("CARGO_BIN_EXE_nodeimg")).parent().unwrap();
    let script = format!("set -euo pipefail\n{}", readme_commands().join("\n"));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(home)
        .env("PATH", path)
        // Where `make setup` keeps the pinned tools (`nodeimg setup` would fill the default).
        .env("NODEIMG_TOOLS_DIR", repo().join("tools"))
        .output()
        .expect("bash runs");
    let run: common::Run = out.into();
    assert_eq!(run.code, 0, "the README's commands failed:\n{script}\n{run:?}");

    // The project the README made is examples/web-node.
    let project = home.join("web-node");
    let example = repo().join("examples/web-node");
    let skip = ["packages.lock", "out", "keys"];
    let (mut made, mut committed) = (Vec::new(), Vec::new());
    files(&project, Path::new(""), &skip, &mut made);
    files(&example, Path::new(""), &skip, &mut committed);
    assert_eq!(made, committed, "the README's project and examples/web-node have other files");
    for f in &made {
        let (a, b) = (project.join(f), example.join(f));
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "{} differs from examples/web-node", f.display());
        let exec = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o111 != 0;
        assert_eq!(exec(&a), exec(&b), "{}: execute bit", f.display());
    }

    // Boot it and talk to it.
    let disk = project.join("out/web-node-0.1.0/qemu/disk.raw");
    assert!(disk.is_file(), "{} was not built", disk.display());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let work = home.join("vm");
    let guest = Guest(
        Command::new(repo().join("tests/image/serve.sh"))
            .arg(&disk)
            .arg(port.to_string())
            .arg(&work)
            .arg("900")
            .process_group(0)
            .spawn()
            .expect("tests/image/serve.sh runs"),
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    let page = loop {
        match get(port, "/") {
            Ok((200, body)) => break body,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_secs(3)),
            other => {
                let console = fs::read_to_string(work.join("console.log")).unwrap_or_default();
                let tail = &console[console.len().saturating_sub(4000)..];
                panic!("no page within 600 s ({other:?}); console tail:\n{tail}");
            }
        }
    };
    assert!(String::from_utf8_lossy(&page).contains("Hello from a measured node."), "{page:?}");
    let nonce = hex::encode(common::random_bytes(16));
    let (status, evidence) = get(port, &format!("/cgi-bin/evidence?{nonce}")).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&evidence));
    let (bad_status, _) = get(port, "/cgi-bin/evidence?not-hex").unwrap();
    assert_eq!(bad_status, 400, "a nonce that is not hex is refused");
    drop(guest);
    let evidence_file = home.join("evidence.json");
    fs::write(&evidence_file, &evidence).unwrap();

    // The quote verifies with the test's nonce, and the PCRs it vouches for are the project's
    // signed reference values.
    let bundle = project.join("out/release/web-node-0.1.0/bundle.json");
    let pubkey = project.join("keys/release.pub");
    let check = |platform: &str, nonce: &str| {
        common::nodeimg(
            home,
            &[
                "attest",
                "check",
                "--bundle",
                bundle.to_str().unwrap(),
                "--pubkey",
                pubkey.to_str().unwrap(),
                "--platform",
                platform,
                "--evidence",
                evidence_file.to_str().unwrap(),
                "--nonce",
                nonce,
            ],
        )
    };
    let ok = check("qemu", &nonce);
    assert_eq!(ok.code, 0, "the booted node's quote against its signed bundle:\n{ok:?}");
    assert!(!ok.stdout.contains("UNAUTHENTICATED"), "a verified quote is authenticated evidence: {ok:?}");

    // Another nonce: the quote is not fresh.
    let stale = check("qemu", &"00".repeat(16));
    assert_eq!(stale.code, 1, "{stale:?}");
    // The gcp platform's values (another kernel command line): refused, naming the .cmdline event.
    let other = check("gcp", &nonce);
    assert_eq!(other.code, 1, "{other:?}");
    assert!(other.stdout.contains(".cmdline"), "the mismatch is explained by the command line: {other:?}");
}
