//! A software TPM for tests: swtpm on two free TCP ports (or a Unix socket), fresh state,
//! killed on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tool;

/// A swtpm listening on 127.0.0.1:port (commands) and port+1 (control), or on the Unix socket
/// `sock` (commands) and `sock.ctrl` (control, where tpm2-tss looks for it); killed on drop.
pub struct Swtpm {
    child: Child,
    port: u16,
    socket: Option<std::path::PathBuf>,
    _state: tempfile::TempDir,
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Swtpm {
    /// A TPM 2.0 with the PCR banks `banks` (swtpm_setup syntax: `sha256,sha384`), started.
    pub fn start(banks: &str) -> Swtpm {
        let state = setup(banks);
        let dir = state.path().to_str().unwrap().to_owned();
        for _ in 0..20 {
            let port = free_port_pair();
            let server = format!("type=tcp,port={port},bindaddr=127.0.0.1");
            let ctrl = format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1);
            let ready = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if let Some(child) = spawn(&dir, &server, &ctrl, true, ready) {
                return Swtpm { child, port, socket: None, _state: state };
            }
            // Lost the race for the ports (or too slow): try another pair.
        }
        panic!("swtpm did not start");
    }

    /// A TPM 2.0 with the PCR banks `banks` on a Unix socket; `startup`: whether swtpm sends
    /// TPM2_Startup itself (without it the TPM answers every command TPM_RC_INITIALIZE).
    pub fn start_unix(banks: &str, startup: bool) -> Swtpm {
        let state = setup(banks);
        let dir = state.path().to_str().unwrap().to_owned();
        let socket = state.path().join("sock");
        let server = format!("type=unixio,path={}", socket.display());
        let ctrl = format!("type=unixio,path={}.ctrl", socket.display());
        let ready = || std::os::unix::net::UnixStream::connect(&socket).is_ok();
        if let Some(child) = spawn(&dir, &server, &ctrl, startup, ready) {
            return Swtpm { child, port: 0, socket: Some(socket), _state: state };
        }
        panic!("swtpm did not start on {}", socket.display());
    }

    /// Extends PCRs with `tpm2_pcrextend` (tpm2-tools: the oracle's way in), `specs` in its
    /// syntax (see [`extend_spec`]), sixteen per call.
    pub fn extend(&self, specs: &[String]) {
        let tcti = self.tcti();
        for chunk in specs.chunks(16) {
            let args: Vec<&str> = ["-T", tcti.as_str()].into_iter().chain(chunk.iter().map(String::as_str)).collect();
            let run = tool(std::path::Path::new("."), "tpm2_pcrextend", &args);
            assert_eq!(run.code, 0, "tpm2_pcrextend {chunk:?}: {run:?}");
        }
    }

    /// The TSS2 TCTI string that reaches it.
    pub fn tcti(&self) -> String {
        match &self.socket {
            Some(path) => format!("swtpm:path={}", path.display()),
            None => format!("swtpm:host=127.0.0.1,port={}", self.port),
        }
    }
}

/// Runs swtpm on state `dir` with `--server` and `--ctrl` options, and waits up to 10 s for
/// `ready`; `None` (and no process left) if it exited or never got ready.
fn spawn(dir: &str, server: &str, ctrl: &str, startup: bool, ready: impl Fn() -> bool) -> Option<Child> {
    let mut child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate", &format!("dir={dir}"), "--server", server, "--ctrl", ctrl])
        .args(["--flags", if startup { "not-need-init,startup-clear" } else { "not-need-init" }])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run swtpm ({e}): run `make setup`"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        if ready() {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// One event's digests as `tpm2_pcrextend` takes them: `PCR:alg=hex,alg=hex`.
pub fn extend_spec(e: &::eventlog::Event) -> String {
    let digests: Vec<String> = e.digests.iter().map(|d| format!("{}={}", d.alg, hex::encode(&d.bytes))).collect();
    format!("{}:{}", e.pcr, digests.join(","))
}

/// A fresh TPM state directory with `banks` allocated.
fn setup(banks: &str) -> tempfile::TempDir {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap().to_owned();
    let setup = tool(state.path(), "swtpm_setup", &["--tpm2", "--tpmstate", &dir, "--pcr-banks", banks, "--overwrite"]);
    assert_eq!(setup.code, 0, "swtpm_setup: {setup:?}");
    state
}

/// Two consecutive free TCP ports on 127.0.0.1 (swtpm wants the control port next to it).
pub fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}
