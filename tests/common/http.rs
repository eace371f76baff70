//! A static HTTP server for tests: `python3 -m http.server` on 127.0.0.1 at an ephemeral port.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Serves `root` until dropped, and stops by itself after `max_seconds` in any case.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Starts the server; its request log goes to `log` (or nowhere).
    pub fn start(root: &Path, log: Option<&Path>, max_seconds: u32) -> Self {
        let stderr = match log {
            Some(l) => Stdio::from(std::fs::File::create(l).expect("creating the server's log")),
            None => Stdio::null(),
        };
        let mut child = Command::new("timeout")
            .arg(max_seconds.to_string())
            .args(["python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(root)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("python3 -m http.server: run `make setup`");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port: u16 = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("http.server said {line:?}"));
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM to `timeout`, which passes it on to the server; a SIGKILL would kill `timeout`
        // alone and leave the server running.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}
