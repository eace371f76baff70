//! Helpers for tests that run the real `nodeimg` binary and oracle tools.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub mod http;
pub mod release;
pub mod swtpm;

/// The result of one run, printed in full when an assertion fails.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `nodeimg ARGS…` in `dir`.
pub fn nodeimg(dir: &Path, args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_nodeimg")).args(args).current_dir(dir).output().expect("running nodeimg").into()
}

/// Runs `nodeimg ARGS…` in `dir` with stdout to `stdout`, killed after 10 s: a read that never
/// ends fails as exit 124 instead of stalling the suite.
pub fn nodeimg_bounded(dir: &Path, args: &[&str], stdout: std::process::Stdio) -> Run {
    let mut cmd = Command::new("timeout");
    cmd.arg("10").arg(env!("CARGO_BIN_EXE_nodeimg")).args(args).current_dir(dir).stdout(stdout);
    cmd.output().expect("running nodeimg under timeout").into()
}

/// Runs an oracle tool installed by `make setup`; fails the test loudly when it is missing.
pub fn tool(dir: &Path, program: &str, args: &[&str]) -> Run {
    match Command::new(program).args(args).current_dir(dir).output() {
        Ok(o) => o.into(),
        Err(e) => panic!("cannot run the oracle `{program}` ({e}): run `make setup`"),
    }
}

/// Asserts exit code `code` and that stderr (or stdout) mentions every word in `words`.
#[track_caller]
pub fn assert_fails(run: &Run, code: i32, words: &[&str]) {
    assert_eq!(run.code, code, "{run:?}");
    let text = format!("{}{}", run.stderr, run.stdout);
    for w in words {
        assert!(text.contains(w), "expected {w:?} in the output:\n{run:?}");
    }
}

/// `n` bytes from /dev/urandom.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut buf).unwrap();
    buf
}

/// Flips the low bit of the byte at `offset` in the file at `path`.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

/// The cache `nodeimg build` uses by default (see `nodeimg build --help`).
pub fn default_cache_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    let var = |v: &str| std::env::var_os(v).filter(|x| !x.is_empty()).map(PathBuf::from);
    var("NODEIMG_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("nodeimg")))
        .unwrap_or_else(|| var("HOME").unwrap_or_else(|| "/var/tmp".into()).join(".cache/nodeimg"))
}

/// Where the image tests take their packages from, as `nodeimg build` arguments: the cached
/// package set (`--packages DIR`, every `.deb` of the repository's lock, from the store of
/// checked `.deb`s that every build fills) once a build has filled it, else the live archive
/// (the first build on a fresh machine). So `make test` does not go red merely because Debian
/// published a point release; `lock --check` (tests/rebuild_e2e.rs) and the local mirrors of
/// tests/mirror_e2e.rs check what a moved archive does.
pub fn image_package_source() -> Vec<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::read_to_string(repo.join("mkosi-profiles/packages.lock")).expect("reading packages.lock");
    let store = default_cache_dir().join("debs");
    // One directory per test binary: `make test` runs the binaries side by side (cargo-nextest),
    // and this one is emptied and refilled on every call.
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(concat!("lock-packages-", env!("CARGO_CRATE_NAME")));
    let mut wanted = Vec::new();
    for l in lock.lines().filter(|l| !l.starts_with('#') && !l.starts_with("snapshot") && !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let file = format!("{}_{}_{}.deb", f[1], f[2].replace(':', "%3a"), f[3]);
        let src = store.join(format!("{}.deb", f[4]));
        if !src.is_file() {
            return Vec::new();
        }
        wanted.push((file, src));
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, src) in wanted {
        let dest = dir.join(&file);
        if !dest.exists() {
            std::fs::hard_link(&src, &dest).or_else(|_| std::fs::copy(&src, &dest).map(drop)).unwrap();
        }
    }
    vec!["--packages".into(), dir.display().to_string()]
}
