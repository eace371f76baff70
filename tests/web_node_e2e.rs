//! "Your own image", as a new user would do it (part of `make test`).
//!
//! Runs exactly the shell blocks of the README's "Your own image" section, in order, from an
//! empty directory outside the repository with `nodeimg` on `PATH`:
//!
//! * **0.1.0, the workload in the root** (`nodeimg init`, the edits, `lock`, `build`, `keygen`,
//!   `release`): boots the built qemu disk (no unit may fail in either boot) under QEMU (TCG) + Debian's OVMF + swtpm with the
//!   guest's port 80 forwarded to 127.0.0.1 (`tests/image/serve.sh`), fetches the page, and asks
//!   the node's `/cgi-bin/evidence` for a TPM quote (tpm2-tools in the guest: an AK under the EK,
//!   a quote of the enforced PCRs with the test's nonce, the PCR values and the firmware event
//!   log). `nodeimg attest check --evidence` verifies the quote (signature, the test's nonce, the
//!   PCR digest) and finds the PCRs it vouches for equal to the project's **signed** reference
//!   values (exit 0, authenticated); with another nonce it fails (exit 1), and against the gcp
//!   platform of the same release (another kernel command line) it fails naming the UKI's
//!   `.cmdline` (exit 1).
//! * **0.2.0, the workload as a system extension** (the subsection's block: the files move to
//!   `sysext/web-node/`, `build`, `release`): the project now equals `examples/web-node/` file for
//!   file (but `packages.lock`, which `nodeimg lock` takes from the archive of the day); the node
//!   boots, serves the page from the merged extension, and its quote
//!   verifies against the 0.2.0 bundle, which lists the extension among the artefacts. A build
//!   that fails (a finalize script of the project's) leaves no output, and the next build, with
//!   other file times and directory modes, uses the cache and gives every artefact the same; built without
//!   `sysext/`, the root, its verity tree and the UKI are the same bytes and the reference values
//!   differ in PCRs 9 and 13 only.
//!
//! The judge of the PCR values is the real boot: the release's bundle predicted them before the
//! machine ever ran. Takes 15–20 minutes on the 2-core CI machine (a `nodeimg lock`, a cold
//! mkosi build of a new package set, three warm builds, two TCG boots).

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

/// The ```sh blocks of the README section `## Your own image`, in order: those before its
/// subsection "The workload as a system extension", and those in it.
fn readme_commands() -> (Vec<String>, Vec<String>) {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("\n## Your own image\n").expect("README has a \"Your own image\" section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let section = &section[..end];
    let split = section
        .find("\n### The workload as a system extension\n")
        .expect("the section has a subsection \"The workload as a system extension\"");
    let blocks = |mut rest: &str| {
        let mut blocks = Vec::new();
        while let Some(i) = rest.find("```sh\n") {
            let body = &rest[i + 6..];
            let j = body.find("\n```\n").expect("a closed code block");
            blocks.push(body[..j + 1].to_owned());
            rest = &body[j + 5..];
        }
        blocks
    };
    let (image, sysext) = (blocks(&section[..split]), blocks(&section[split..]));
    assert!(image.len() >= 3 && !sysext.is_empty(), "the section's commands: {image:?} {sysext:?}");
    (image, sysext)
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

/// Runs `script` (README commands) in `home` with this nodeimg first on `PATH`.
fn run_readme(home: &Path, blocks: &[String]) {
    let bin = Path::new(env!("CARGO_BIN_EXE_nodeimg")).parent().unwrap();
    let script = format!("set -euo pipefail\ncd {}\n{}", home.display(), blocks.join("\n"));
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
}

/// Boots `disk`, waits for the page and asks the node for evidence with a fresh nonce:
/// (page, evidence file, nonce). The guest is stopped before this returns.
fn boot_and_ask(disk: &Path, work: &Path, evidence_file: &Path) -> (Vec<u8>, String) {
    assert!(disk.is_file(), "{} was not built", disk.display());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let guest = Guest(
        Command::new(repo().join("tests/image/serve.sh"))
            .arg(disk)
            .arg(port.to_string())
            .arg(work)
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
    let nonce = hex::encode(common::random_bytes(16));
    let (status, evidence) = get(port, &format!("/cgi-bin/evidence?{nonce}")).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&evidence));
    let (bad_status, _) = get(port, "/cgi-bin/evidence?not-hex").unwrap();
    assert_eq!(bad_status, 400, "a nonce that is not hex is refused");
    drop(guest);
    // The node boots without a failed unit (the extension machinery included: in the initrd,
    // systemd-sysext is masked; the base disables systemd-pcrlock's policy services).
    let console = String::from_utf8_lossy(&fs::read(work.join("console.log")).unwrap_or_default()).into_owned();
    let failed: Vec<&str> = console.lines().filter(|l| l.contains("FAILED")).collect();
    assert!(failed.is_empty(), "units failed during boot: {failed:?}");
    fs::write(evidence_file, &evidence).unwrap();
    (page, nonce)
}

/// `nodeimg attest check` of `evidence` against `platform` of the signed `bundle`.
fn attest(
    home: &Path,
    bundle: &Path,
    pubkey: &Path,
    platform: &str,
    evidence: &Path,
    nonce: &str,
    ak: Option<&Path>,
) -> common::Run {
    let mut args = vec![
        "attest",
        "check",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pubkey",
        pubkey.to_str().unwrap(),
        "--platform",
        platform,
        "--evidence",
        evidence.to_str().unwrap(),
        "--nonce",
        nonce,
    ];
    if let Some(ak) = ak {
        args.extend(["--ak", ak.to_str().unwrap()]);
    }
    common::nodeimg(home, &args)
}

/// `nodeimg build --profile qemu --out OUT` in the project.
fn build_qemu(project: &Path, out: &str) {
    let run: common::Run = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["build", "--profile", "qemu", "--out", out, "--quiet"])
        .current_dir(project)
        .env("NODEIMG_TOOLS_DIR", repo().join("tools"))
        .output()
        .expect("running nodeimg")
        .into();
    assert_eq!(run.code, 0, "{run:?}");
}

/// A platform build's artefact digests (`manifest.json`), by name.
fn artefacts(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let m: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m["artefacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_owned(), a["sha256"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn readme_web_node_project_builds_boots_serves_and_attests() {
    let tmp = tempfile::Builder::new().prefix("nodeimg-web-node.").tempdir_in("/var/tmp").unwrap();
    let home = tmp.path();
    let (image_blocks, sysext_blocks) = readme_commands();
    run_readme(home, &image_blocks);
    let project = home.join("web-node");
    let pubkey = project.join("keys/release.pub");

    // 0.1.0: the workload in the root. Boot it and talk to it.
    let evidence = home.join("evidence-0.1.0.json");
    let (page, nonce) =
        boot_and_ask(&project.join("out/web-node-0.1.0/qemu/disk.raw"), &home.join("vm-0.1.0"), &evidence);
    assert!(String::from_utf8_lossy(&page).contains("Hello from a measured node."), "{page:?}");
    // The quote verifies with the test's nonce, and the PCRs it vouches for are the project's
    // signed reference values.
    let bundle_1 = project.join("out/release/web-node-0.1.0/bundle.json");
    let ok = attest(home, &bundle_1, &pubkey, "qemu", &evidence, &nonce, None);
    assert_eq!(ok.code, 0, "the booted node's quote against its signed bundle:\n{ok:?}");
    // The AK came with the evidence: every value matches, but nothing proves the key the TPM's.
    assert!(ok.stdout.contains("UNAUTHENTICATED: every enforced value matches"), "{ok:?}");
    // A verifier that enrolled the node's AK (here: the one the node sent, taken as known) gets
    // authenticated evidence.
    let ak = home.join("ak-0.1.0.pem");
    let sent: serde_json::Value = serde_json::from_slice(&fs::read(&evidence).unwrap()).unwrap();
    fs::write(&ak, sent["tpm_quote"]["ak"].as_str().expect("the node sends its AK as PEM")).unwrap();
    let ok = attest(home, &bundle_1, &pubkey, "qemu", &evidence, &nonce, Some(&ak));
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("OK: the evidence is authentic"), "a verified quote by a known AK: {ok:?}");
    // Another nonce: the quote is not fresh.
    let stale = attest(home, &bundle_1, &pubkey, "qemu", &evidence, &"00".repeat(16), None);
    assert_eq!(stale.code, 1, "{stale:?}");
    // The gcp platform's values (another kernel command line): refused, naming the .cmdline event.
    let other = attest(home, &bundle_1, &pubkey, "gcp", &evidence, &nonce, None);
    assert_eq!(other.code, 1, "{other:?}");
    assert!(other.stdout.contains(".cmdline"), "the mismatch is explained by the command line: {other:?}");

    // 0.2.0: the workload as a system extension on the ESP.
    run_readme(&project, &sysext_blocks);
    // The project the README made is examples/web-node.
    let example = repo().join("examples/web-node");
    let skip = ["packages.lock", "out", "keys"];
    let (mut made, mut committed) = (Vec::new(), Vec::new());
    files(&project, Path::new(""), &skip, &mut made);
    files(&example, Path::new(""), &skip, &mut committed);
    assert_eq!(made, committed, "the README's project and examples/web-node have other files");
    for f in &made {
        let (a, b) = (project.join(f), example.join(f));
        assert_eq!(fs::read_link(&a).ok(), fs::read_link(&b).ok(), "{}: link target", f.display());
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "{} differs from examples/web-node", f.display());
        let exec = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o111 != 0;
        assert_eq!(exec(&a), exec(&b), "{}: execute bit", f.display());
    }
    let qemu_2 = project.join("out/web-node-0.2.0/qemu");
    let with_sysext = artefacts(&qemu_2);
    assert!(with_sysext.contains_key("extra.d-web-node.raw"), "{with_sysext:?}");
    let evidence = home.join("evidence-0.2.0.json");
    let (page, nonce) = boot_and_ask(&qemu_2.join("disk.raw"), &home.join("vm-0.2.0"), &evidence);
    assert!(String::from_utf8_lossy(&page).contains("Hello from a measured node."), "served from the sysext: {page:?}");
    let bundle_2 = project.join("out/release/web-node-0.2.0/bundle.json");
    let ok = attest(home, &bundle_2, &pubkey, "qemu", &evidence, &nonce, None);
    assert_eq!(ok.code, 0, "the booted node with its extension against the 0.2.0 bundle:\n{ok:?}");
    let signed: serde_json::Value = serde_json::from_slice(&fs::read(&bundle_2).unwrap()).unwrap();
    assert_eq!(
        signed["artefacts"]["qemu/extra.d-web-node.raw"]["sha256"].as_str(),
        Some(with_sysext["extra.d-web-node.raw"].as_str()),
        "the signed bundle lists the extension: {}",
        signed["artefacts"]
    );

    // A build that fails (here a finalize script of the project's, after mkosi's packages are
    // in place) leaves no output and a cache the next build uses.
    let failing = project.join("image/mkosi.finalize");
    fs::write(&failing, "#!/bin/sh\necho 'the project says no' >&2\nexit 3\n").unwrap();
    fs::set_permissions(&failing, fs::Permissions::from_mode(0o755)).unwrap();
    let failed: common::Run = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["build", "--profile", "qemu", "--out", "failed", "--quiet"])
        .current_dir(&project)
        .env("NODEIMG_TOOLS_DIR", repo().join("tools"))
        .output()
        .unwrap()
        .into();
    assert_ne!(failed.code, 0, "{failed:?}");
    assert!(format!("{failed:?}").contains("the project says no"), "mkosi's error reaches the user: {failed:?}");
    let left: Vec<_> =
        fs::read_dir(project.join("failed")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "a failed build leaves no output: {left:?}");
    fs::remove_file(&failing).unwrap();

    // The extension is reproducible: other file times and directory modes, the same bytes.
    let status = Command::new("sh")
        .arg("-c")
        .arg("find sysext -exec touch -h -d @86400 {} + && find sysext -type d -exec chmod 700 {} +")
        .current_dir(&project)
        .status()
        .unwrap();
    assert!(status.success());
    build_qemu(&project, "again");
    let again = artefacts(&project.join("again/web-node-0.2.0/qemu"));
    assert_eq!(again, with_sysext, "the same project built again");

    // Without the extension: the root, its verity tree and the UKI are the same bytes, and of
    // the reference values only PCRs 9 and 13 differ.
    fs::rename(project.join("sysext"), home.join("sysext.away")).unwrap();
    build_qemu(&project, "bare");
    let bare_dir = project.join("bare/web-node-0.2.0/qemu");
    let bare = artefacts(&bare_dir);
    for a in ["root.raw", "root-verity.raw", "uki.efi"] {
        assert_eq!(bare[a], with_sysext[a], "{a} does not depend on the extension");
    }
    assert!(!bare.contains_key("extra.d-web-node.raw"));
    let values = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(dir.join("reference-values.json")).unwrap()).unwrap()
    };
    let (v_sysext, v_bare) = (values(&qemu_2), values(&bare_dir));
    assert_eq!(v_sysext["pcr11"], v_bare["pcr11"]);
    for (bank, pcrs) in v_sysext["vtpm"].as_object().unwrap() {
        let differ: Vec<&str> = pcrs
            .as_object()
            .unwrap()
            .iter()
            .filter(|(i, v)| v_bare["vtpm"][bank][i.as_str()] != **v)
            .map(|(i, _)| i.as_str())
            .collect();
        assert_eq!(differ, ["13", "9"], "{bank}: the PCRs the extension changes");
    }
}
