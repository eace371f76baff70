//! `nodeimg keygen | sign | verify-signature`: minisign keys and signatures, interoperable with
//! the `minisign` CLI both ways.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use release::Bundle;
use serde::Serialize;
use sign::{KdfParams, PublicKey, SecretKey, SecretKeyFile, Signature};
use zeroize::Zeroizing;

use crate::fsutil::AtomicFile;
use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Generate a minisign key pair: NAME.key (secret, mode 0600, password-protected unless
    /// --unencrypted) and NAME.pub. Never overwrites a key.
    Keygen(KeygenArgs),
    /// Sign FILE with a minisign secret key, writing FILE.minisig. The trusted comment binds the
    /// file's SHA-256 (and, for a bundle, its name and version).
    Sign(SignArgs),
    /// Verify FILE's minisign signature (also those made by `minisign -S`). Exit 1 if it does not
    /// verify.
    VerifySignature(VerifySignatureArgs),
}

// Where a password comes from when a key needs one.
// (Not a doc comment: clap would make it the `about` of every command that flattens this
// struct, over the command's own, as the commands are built lazily: `defer` in lib.rs.)
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of FILE. Without it the password is read from the
    /// terminal (not echoed) or, when stdin is not a terminal, from stdin: one line, and for
    /// keygen two (the password and its confirmation); any other number of lines is an error.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Base name of the key pair: writes NAME.key and NAME.pub.
    #[arg(short = 'o', long = "output", value_name = "NAME", default_value = "nodeimg")]
    name: PathBuf,
    /// Store the secret key without a password.
    #[arg(long)]
    unencrypted: bool,
    #[command(flatten)]
    password: PasswordArgs,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The file to sign.
    file: PathBuf,
    /// The minisign secret key.
    #[arg(short, long, value_name = "KEY", default_value = "nodeimg.key")]
    key: PathBuf,
    /// Where to write the signature (default: FILE.minisig).
    #[arg(short = 'x', long = "sig", value_name = "SIG")]
    sig: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArgs,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct VerifySignatureArgs {
    /// The signed file.
    file: PathBuf,
    /// The minisign public key file.
    #[arg(long, value_name = "KEY")]
    pubkey: PathBuf,
    /// The signature (default: FILE.minisig).
    #[arg(short = 'x', long = "sig", value_name = "SIG")]
    sig: Option<PathBuf>,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command, global: Global) -> Result<Outcome> {
    match cmd {
        Command::Keygen(a) => keygen(a, global),
        Command::Sign(a) => sign_file(a, global),
        Command::VerifySignature(a) => verify_signature(a, global),
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The signature file of `file`: `sig` if given, else `FILE.minisig` beside it, read as text.
pub(crate) fn read_signature(file: &Path, sig: Option<&Path>) -> Result<String> {
    let path = sig.map_or_else(|| with_suffix(file, ".minisig"), Path::to_path_buf);
    crate::fsutil::read_input_text(&path, crate::fsutil::limits::KEY, "a minisign signature")
}

/// Reads a password as [`PasswordArgs`] says; `confirm` asks twice on a terminal.
pub fn read_password(args: &PasswordArgs, confirm: bool) -> Result<Zeroizing<Vec<u8>>> {
    let line = if let Some(file) = &args.password_file {
        let text = Zeroizing::new(crate::fsutil::read_input(file, crate::fsutil::limits::KEY, "a password file")?);
        let end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
        Zeroizing::new(text[..end].to_vec())
    } else if io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Password: ").context("reading the password")?);
        if confirm {
            let again =
                Zeroizing::new(rpassword::prompt_password("Password (again): ").context("reading the password")?);
            if *first != *again {
                bail!("the passwords do not match");
            }
        }
        Zeroizing::new(first.as_bytes().to_vec())
    } else {
        // Not a terminal: the password on the first line, and for a new key its confirmation on
        // the second; anything more is a mistake, not something to ignore.
        let mut text = Zeroizing::new(Vec::new());
        io::stdin()
            .lock()
            .take(crate::fsutil::limits::KEY + 1)
            .read_to_end(&mut text)
            .context("reading the password from stdin")?;
        if text.len() as u64 > crate::fsutil::limits::KEY {
            bail!("stdin holds more than a password (over 64 KiB)");
        }
        let body = text.strip_suffix(b"\n").unwrap_or(&text);
        let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect();
        match (confirm, lines.as_slice()) {
            (false, [one]) => Zeroizing::new(one.to_vec()),
            (false, _) => bail!(
                "stdin has {} lines: the password must be the only one (or use --password-file)",
                lines.len()
            ),
            (true, [one, again]) if one == again => Zeroizing::new(one.to_vec()),
            (true, [_, _]) => bail!("the passwords do not match (stdin's two lines differ)"),
            (true, _) => bail!(
                "keygen reads the password and its confirmation from stdin, two lines; found {} (or use --password-file)",
                lines.len()
            ),
        }
    };
    let mut line = line;
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.is_empty() {
        bail!("the password is empty (use --unencrypted for a key without one)");
    }
    Ok(line)
}

/// Opens a secret key file, asking for its password if it is encrypted.
pub fn open_secret_key(path: &Path, password: &PasswordArgs) -> Result<SecretKey> {
    let text =
        Zeroizing::new(crate::fsutil::read_input_text(path, crate::fsutil::limits::KEY, "a minisign secret key")?);
    let file = SecretKeyFile::parse(&text).with_context(|| path.display().to_string())?;
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            eprintln!(
                "warning: the secret key {} is readable or writable by others (mode {mode:04o}); chmod 600 it",
                path.display()
            );
        }
    }
    let password = if file.is_encrypted() { Some(read_password(password, false)?) } else { None };
    file.decrypt(password.as_ref().map(|p| p.as_slice())).with_context(|| path.display().to_string())
}

/// Reads a public key file.
pub fn read_public_key(path: &Path) -> Result<PublicKey> {
    let text = crate::fsutil::read_input_text(path, crate::fsutil::limits::KEY, "a minisign public key")?;
    PublicKey::parse(&text).with_context(|| path.display().to_string())
}

/// Fails if `base.key` or `base.pub` exists; returns both paths.
fn refuse_existing(base: &Path) -> Result<(PathBuf, PathBuf)> {
    let sk_path = with_suffix(base, ".key");
    let pk_path = with_suffix(base, ".pub");
    let there = |p: &Path| p.exists() || p.is_symlink();
    match (there(&sk_path), there(&pk_path)) {
        (false, false) => Ok((sk_path, pk_path)),
        (true, true) => {
            bail!("{} and {} already exist; refusing to overwrite a key", sk_path.display(), pk_path.display())
        }
        // Half a pair: an interrupted keygen (the secret key is written first, then the public).
        (true, false) => bail!(
            "{} exists without {}: an interrupted keygen left half a pair; delete {} and run keygen again",
            sk_path.display(),
            pk_path.display(),
            sk_path.display()
        ),
        (false, true) => bail!(
            "{} exists without {}: delete {} (a public key whose secret key is gone) and run keygen again",
            pk_path.display(),
            sk_path.display(),
            pk_path.display()
        ),
    }
}

/// Writes a new key pair `base.key` / `base.pub`; refuses if either exists.
pub fn write_key_pair(base: &Path, key: &SecretKey, password: Option<&[u8]>) -> Result<(PathBuf, PathBuf)> {
    let (sk_path, pk_path) = refuse_existing(base)?;
    let text = Zeroizing::new(key.to_file(password, KdfParams::SENSITIVE)?);
    let mut sk = AtomicFile::create_with_mode(&sk_path, 0o600)?;
    sk.file_mut().write_all(text.as_bytes()).with_context(|| format!("writing {}", sk_path.display()))?;
    let mut pk = AtomicFile::create(&pk_path)?;
    pk.file_mut()
        .write_all(key.public_key().to_file().as_bytes())
        .with_context(|| format!("writing {}", pk_path.display()))?;
    sk.commit_new()?;
    pk.commit_new()?;
    Ok((sk_path, pk_path))
}

#[derive(Serialize)]
struct KeygenReport {
    secret_key: String,
    public_key: String,
    key_id: String,
    encrypted: bool,
    public_key_base64: String,
}

fn keygen(a: KeygenArgs, global: Global) -> Result<Outcome> {
    refuse_existing(&a.name)?;
    let password = if a.unencrypted { None } else { Some(read_password(&a.password, true)?) };
    let key = SecretKey::generate()?;
    if password.is_some() && !global.quiet && !a.json {
        eprintln!("deriving the key encryption key (scrypt, 1 GiB)…");
    }
    let (sk, pk) = write_key_pair(&a.name, &key, password.as_ref().map(|p| p.as_slice()))?;
    let report = KeygenReport {
        secret_key: sk.display().to_string(),
        public_key: pk.display().to_string(),
        key_id: key.key_id().to_string(),
        encrypted: password.is_some(),
        public_key_base64: key.public_key().to_base64(),
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if !global.quiet {
        outln!("secret key: {} ({})", report.secret_key, if report.encrypted { "encrypted" } else { "UNENCRYPTED" });
        outln!("public key: {}", report.public_key);
        outln!("key id:     {}", report.key_id);
        outln!("verify with: nodeimg verify-signature FILE --pubkey {}", report.public_key);
        outln!("         or: minisign -Vm FILE -P {}", report.public_key_base64);
    }
    Ok(Outcome::Ok)
}

/// The largest file whose bytes are also tried as a bundle (bundles are tens of KiB).
const BUNDLE_PROBE: usize = 64 << 20;

/// The trusted comment `nodeimg sign` writes for a file named `name` with `bytes` (its whole
/// content when it is small enough to be a bundle) and `sha256`: the bundle form when it is a
/// valid bundle, `file:<name>\tsha256:<hex>` otherwise.
fn comment_for(name: &str, bytes: Option<&[u8]>, sha256: &str) -> String {
    if let Some(bundle) = bytes.and_then(|b| Bundle::parse(b).ok()) {
        return release::trusted_comment(&bundle.image, bytes.expect("parsed"));
    }
    format!("file:{}\tsha256:{sha256}", name.replace(['\t', '\r', '\n'], "_"))
}

/// Reads `file` once, computing what signing needs: the minisign prehash, the sha256 for the
/// trusted comment, and the bytes themselves when small enough to be a bundle. Reading it again
/// for each would let a file that changes in between be signed under another file's digest.
fn read_for_signing(file: &Path) -> Result<([u8; 64], String, Option<Vec<u8>>)> {
    use sha2::Digest;
    use std::io::Read;
    // A blocking open: a FIFO is signed as it is written, once its writer comes (as `cat` waits).
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let meta = f.metadata().with_context(|| format!("reading {}", file.display()))?;
    if meta.is_dir() {
        bail!("{} is a directory, not a file to sign", file.display());
    }
    // A regular file ends; a pipe or device (`/dev/zero`) need not, so it may bring a bundle's
    // worth of bytes at most.
    let limit = if meta.is_file() { u64::MAX } else { crate::fsutil::limits::BUNDLE };
    let mut total = 0u64;
    let (mut pre, mut sha) = (sign::Prehasher::new(), sha2::Sha256::new());
    let mut kept = Some(Vec::new());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {}", file.display()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            bail!("{}: more than {limit} bytes from a pipe or device; sign a regular file instead", file.display());
        }
        pre.update(&buf[..n]);
        sha.update(&buf[..n]);
        if let Some(k) = &mut kept {
            if k.len() + n > BUNDLE_PROBE {
                kept = None;
            } else {
                k.extend_from_slice(&buf[..n]);
            }
        }
    }
    Ok((pre.finalize(), hex::encode(sha.finalize()), kept))
}

#[derive(Serialize)]
struct SignReport {
    file: String,
    signature: String,
    key_id: String,
    trusted_comment: String,
}

fn sign_file(a: SignArgs, global: Global) -> Result<Outcome> {
    let key = open_secret_key(&a.key, &a.password)?;
    let (prehash, sha256, bytes) = read_for_signing(&a.file)?;
    let name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let comment = comment_for(&name, bytes.as_deref(), &sha256);
    let sig = sign::sign_prehash(&key, &prehash, &comment, "signature from nodeimg secret key")
        .with_context(|| format!("signing {}", a.file.display()))?;
    let sig_path = a.sig.unwrap_or_else(|| with_suffix(&a.file, ".minisig"));
    crate::fsutil::write_atomic(&sig_path, sig.to_file().as_bytes())?;
    let report = SignReport {
        file: a.file.display().to_string(),
        signature: sig_path.display().to_string(),
        key_id: key.key_id().to_string(),
        trusted_comment: comment,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if !global.quiet {
        outln!("signed {} with key {} -> {}", report.file, report.key_id, report.signature);
        outln!("trusted comment: {}", report.trusted_comment);
    }
    Ok(Outcome::Ok)
}

#[derive(Serialize)]
struct VerifyReport {
    file: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Checks the signature; `Err(reason)` for anything about the signature or the file's content.
fn check_signature(file: &Path, sig_text: &str, key: &PublicKey) -> Result<Result<Signature, String>> {
    // A malformed signature file is unusable input (exit 2), not a failed verification.
    let sig = Signature::parse(sig_text).context("the signature file is malformed")?;
    // One read: the signature is checked and the file hashed (for the trusted comment's sha256)
    // from the same bytes.
    let mut f = release::verify::HashingReader::new(crate::fsutil::open_regular(file, "a file to verify")?);
    if let Err(e) = sign::verify(key, io::BufReader::new(&mut f), &sig, false) {
        return Ok(Err(e.to_string()));
    }
    if let Some(want) = release::bundle::comment_fields(&sig.trusted_comment).get("sha256") {
        let sha = f.sha256();
        if sha.to_string() != *want {
            return Ok(Err(format!("the trusted comment names sha256 {want}, but the file's is {sha}")));
        }
    }
    Ok(Ok(sig))
}

fn verify_signature(a: VerifySignatureArgs, global: Global) -> Result<Outcome> {
    if a.file.is_dir() {
        bail!("{} is a directory, not a file to verify", a.file.display());
    }
    let key = read_public_key(&a.pubkey)?;
    let sig_text = read_signature(&a.file, a.sig.as_deref())?;
    let result = check_signature(&a.file, &sig_text, &key)?;
    let report = match &result {
        Ok(sig) => VerifyReport {
            file: a.file.display().to_string(),
            ok: true,
            key_id: Some(sig.key_id.to_string()),
            trusted_comment: Some(sig.trusted_comment.clone()),
            reason: None,
        },
        Err(reason) => VerifyReport {
            file: a.file.display().to_string(),
            ok: false,
            key_id: None,
            trusted_comment: None,
            reason: Some(reason.clone()),
        },
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    }
    match result {
        Ok(sig) => {
            if !a.json && !global.quiet {
                outln!("signature OK: {} signed by key {}", report.file, sig.key_id);
                outln!("trusted comment: {}", sig.trusted_comment);
            }
            Ok(Outcome::Ok)
        }
        Err(reason) => {
            eprintln!("{}: signature verification failed: {reason}", a.file.display());
            Ok(Outcome::Mismatch)
        }
    }
}
