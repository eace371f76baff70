//! Verifying a bundle: signature, trusted comment, schema, canonical form, rollback, artefacts.
//!
//! The checks run in this order and stop at the first failure, each with its own
//! [`VerifyError`] variant so that a user (and a test) can tell a tampered bundle from a
//! tampered signature, a wrong key, a moved signature, an old version or a changed artefact.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};
use sign::{KeyId, PublicKey, Signature};

use crate::bundle::{comment_fields, Bundle, BundleError};
use crate::hex::Hex;

/// Why a bundle did not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The signature file is not a minisign signature.
    #[error("the signature file is malformed: {0}")]
    MalformedSignature(sign::Error),
    /// The signature names another key.
    #[error("wrong key: the bundle was signed by key {signature}, the public key given is {public_key}")]
    WrongKey { signature: KeyId, public_key: KeyId },
    /// The signature and its trusted comment are authentic, but for other bytes: the bundle was
    /// changed after signing (or the signature belongs to another bundle).
    #[error("the bundle was altered after it was signed (or the signature is for another bundle): the signed trusted comment names {signed}, but this bundle's sha256 is {actual}")]
    BundleAltered { signed: String, actual: String },
    /// Neither signature verifies: the signature itself was changed (or another key with the
    /// same id made it).
    #[error("the signature was altered (neither its file signature nor its trusted-comment signature verifies), or another key with the same key id made it")]
    BadSignature,
    /// The file signature holds but the trusted comment is not the one that was signed.
    #[error("the signature's trusted comment was altered after signing")]
    TrustedCommentAltered,
    /// A legacy (non-prehashed) signature, which nodeimg never writes.
    #[error("legacy (non-prehashed) signature: nodeimg bundles are signed prehashed")]
    LegacySignature,
    /// The signature could not be checked for another reason.
    #[error("checking the signature: {0}")]
    Signature(sign::Error),
    /// The (authentic) trusted comment does not describe this bundle.
    #[error("the signed trusted comment does not match the bundle: {field} is {found:?} in the comment but {expected:?} in the bundle")]
    TrustedCommentMismatch { field: &'static str, expected: String, found: String },
    /// The bundle itself is invalid.
    #[error("bundle: {0}")]
    Bundle(#[from] BundleError),
    /// The bundle is older than the minimum the verifier accepts.
    #[error("rollback: version {version} is older than the minimum accepted version {minimum}")]
    Rollback { version: String, minimum: String },
    /// An artefact is not in the artefact directory.
    #[error("artefact {path}: not found (looked for {path} and {path}.zst)")]
    ArtefactMissing { path: String },
    /// An artefact has the wrong size.
    #[error("artefact {path}: {actual} bytes, the bundle says {expected}")]
    ArtefactSize { path: String, expected: u64, actual: u64 },
    /// An artefact has the wrong hash.
    #[error("artefact {path}: sha256 {actual}, the bundle says {expected}")]
    ArtefactHash { path: String, expected: Hex, actual: Hex },
    /// An artefact could not be read.
    #[error("artefact {path}: {source}")]
    ArtefactIo { path: String, source: io::Error },
    /// The release's SHA256SUMS, or its signature, does not hold.
    #[error("SHA256SUMS: {0}")]
    Sums(String),
}

/// A bundle that passed [`verify_bundle`].
#[derive(Debug)]
pub struct Verified {
    /// The parsed bundle.
    pub bundle: Bundle,
    /// SHA-256 of the bundle's bytes.
    pub sha256: [u8; 32],
    /// The signing key's id, unless the signature was skipped.
    pub key_id: Option<KeyId>,
    /// The authenticated trusted comment, unless the signature was skipped.
    pub trusted_comment: Option<String>,
}

/// Verifies `bundle_bytes`. With `key` and `signature_text` (the `.minisig` file) the signature
/// and its trusted comment are checked; with `None` they are skipped (the caller's `--insecure`).
/// `min_version` is the rollback floor.
pub fn verify_bundle(
    bundle_bytes: &[u8],
    signed: Option<(&PublicKey, &str)>,
    min_version: Option<&semver::Version>,
) -> Result<Verified, VerifyError> {
    let sha256: [u8; 32] = Sha256::digest(bundle_bytes).into();
    let mut key_id = None;
    let mut trusted_comment = None;
    if let Some((key, signature_text)) = signed {
        let sig = Signature::parse(signature_text).map_err(VerifyError::MalformedSignature)?;
        let checks = sign::check(key, bundle_bytes, &sig, true).map_err(|e| match e {
            sign::Error::KeyIdMismatch { signature, public_key } => VerifyError::WrongKey { signature, public_key },
            sign::Error::LegacyNotAllowed => VerifyError::LegacySignature,
            other => VerifyError::Signature(other),
        })?;
        match (checks.file, checks.trusted_comment) {
            (true, true) => {}
            (true, false) => return Err(VerifyError::TrustedCommentAltered),
            (false, true) => {
                let fields = comment_fields(&sig.trusted_comment);
                let signed = match (fields.get("name"), fields.get("version"), fields.get("sha256")) {
                    (Some(n), Some(v), Some(h)) => format!("{n} {v} with sha256 {h}"),
                    _ => format!("{:?}", sig.trusted_comment),
                };
                return Err(VerifyError::BundleAltered { signed, actual: ::hex::encode(sha256) });
            }
            (false, false) => return Err(VerifyError::BadSignature),
        }
        key_id = Some(sig.key_id);
        trusted_comment = Some(sig.trusted_comment);
    }
    let bundle = Bundle::parse(bundle_bytes)?;
    if let Some(comment) = &trusted_comment {
        let fields = comment_fields(comment);
        let hash = ::hex::encode(sha256);
        for (field, expected) in
            [("name", bundle.image.name.as_str()), ("version", bundle.image.version.as_str()), ("sha256", &hash)]
        {
            let found = fields.get(field).copied().unwrap_or("<absent>");
            if found != expected {
                return Err(VerifyError::TrustedCommentMismatch {
                    field,
                    expected: expected.to_owned(),
                    found: found.to_owned(),
                });
            }
        }
    }
    if let Some(minimum) = min_version {
        let version = semver::Version::parse(&bundle.image.version).expect("checked by Bundle::parse");
        if version < *minimum {
            return Err(VerifyError::Rollback { version: version.to_string(), minimum: minimum.to_string() });
        }
    }
    Ok(Verified { bundle, sha256, key_id, trusted_comment })
}

/// Opens `path` for reading if it is a regular file. A symlink to `/dev/zero` or a FIFO in a
/// release directory would be hashed, or waited on, for ever; `stat` does neither.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    }
    File::open(path)
}

/// Reads the regular file `path` whole, refusing more than `limit` bytes.
pub(crate) fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// Checks every artefact of `bundle` under `dir`: the file at its path, or compressed at
/// `<path>.zst` (as a release directory holds it). Returns how many were checked.
pub fn verify_artefacts(bundle: &Bundle, dir: &Path) -> Result<usize, VerifyError> {
    for (path, want) in &bundle.artefacts {
        let io_err = |source| VerifyError::ArtefactIo { path: path.clone(), source };
        let plain = dir.join(path);
        let compressed = dir.join(format!("{path}.zst"));
        let (size, sha256) = if plain.is_file() {
            hash(File::open(&plain).map_err(io_err)?.take(want.size + 1)).map_err(io_err)?
        } else if compressed.is_file() {
            // At most the declared size plus one byte: a decompression bomb stops there.
            let decoder = zstd::Decoder::new(File::open(&compressed).map_err(io_err)?).map_err(io_err)?;
            hash(decoder.take(want.size + 1)).map_err(io_err)?
        } else {
            return Err(VerifyError::ArtefactMissing { path: path.clone() });
        };
        if size != want.size {
            return Err(VerifyError::ArtefactSize { path: path.clone(), expected: want.size, actual: size });
        }
        if sha256 != want.sha256 {
            return Err(VerifyError::ArtefactHash {
                path: path.clone(),
                expected: want.sha256.clone(),
                actual: sha256,
            });
        }
    }
    Ok(bundle.artefacts.len())
}

/// The largest SHA256SUMS read (a release's has a line per file: a few hundred).
const MAX_SUMS: u64 = 4 << 20;

/// Checks a release directory's `SHA256SUMS` against its signature (`SHA256SUMS.minisig`, by
/// `key`, with a trusted comment naming this file, the bundle's image and version and the
/// list's sha256), against the bundle (it must list `bundle.json` with `bundle_sha256`), and
/// against the files (each listed file must exist with that sha256; none may be listed twice or
/// escape the directory). Returns how many files were checked.
pub fn verify_sums(
    dir: &Path,
    bundle: &Bundle,
    bundle_sha256: &[u8; 32],
    key: &PublicKey,
) -> Result<usize, VerifyError> {
    let bad = |m: String| VerifyError::Sums(m);
    let read = |name: &str| -> Result<Vec<u8>, VerifyError> {
        let path = dir.join(name);
        read_regular(&path, MAX_SUMS).map_err(|e| bad(format!("{}: {e}", path.display())))
    };
    let sums = read(crate::publish::SUMS)?;
    let sig_text = String::from_utf8(read(crate::publish::SUMS_SIG)?)
        .map_err(|_| bad("its signature file is not UTF-8 text".into()))?;
    let sig = Signature::parse(&sig_text).map_err(VerifyError::MalformedSignature)?;
    let checks = sign::check(key, sums.as_slice(), &sig, true).map_err(|e| match e {
        sign::Error::KeyIdMismatch { signature, public_key } => VerifyError::WrongKey { signature, public_key },
        other => VerifyError::Signature(other),
    })?;
    match (checks.file, checks.trusted_comment) {
        (true, true) => {}
        (false, _) => return Err(bad("altered after it was signed (its signature does not verify)".into())),
        (true, false) => return Err(bad("the trusted comment of its signature was altered".into())),
    }
    let fields = comment_fields(&sig.trusted_comment);
    let sums_sha = ::hex::encode(Sha256::digest(&sums));
    for (field, expected) in [
        ("file", crate::publish::SUMS),
        ("name", bundle.image.name.as_str()),
        ("version", bundle.image.version.as_str()),
        ("sha256", sums_sha.as_str()),
    ] {
        let found = fields.get(field).copied().unwrap_or("<absent>");
        if found != expected {
            return Err(bad(format!("its signed trusted comment says {field} {found:?}, expected {expected:?}")));
        }
    }
    let text = String::from_utf8(sums).map_err(|_| bad("not UTF-8 text".into()))?;
    let mut seen = std::collections::BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let (listed, name) = line
            .split_once("  ")
            .filter(|(h, _)| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| bad(format!("line {}: not `SHA256  FILE`: {:?}", n + 1, line)))?;
        if name.split('/').any(|c| c.is_empty() || c == "." || c == "..") || !seen.insert(name) {
            return Err(bad(format!("line {}: {name:?} is not a plain relative path listed once", n + 1)));
        }
        let path = dir.join(name);
        let f = open_regular(&path).map_err(|e| bad(format!("{name}: listed but {e}")))?;
        let (_, actual) = hash(f).map_err(|e| bad(format!("{name}: {e}")))?;
        if actual.to_string() != listed {
            return Err(bad(format!("{name}: sha256 {actual}, SHA256SUMS says {listed}")));
        }
    }
    let bundle_hex = ::hex::encode(bundle_sha256);
    if !text.lines().any(|l| l == format!("{bundle_hex}  {}", crate::publish::BUNDLE)) {
        return Err(bad(format!(
            "does not list {} with the verified bundle's sha256 {bundle_hex}",
            crate::publish::BUNDLE
        )));
    }
    Ok(seen.len())
}

/// Writes artefact `path` of the release directory `dir` (stored as `<path>.zst`, or plain) to
/// `dest`, uncompressed, reading at most the bundle's declared size plus one byte (a
/// decompression bomb stops there), and checks its size and sha256 against the bundle (on a
/// mismatch `dest` is removed).
pub fn extract_artefact(bundle: &Bundle, dir: &Path, path: &str, dest: &Path) -> Result<(), VerifyError> {
    let io_err = |source| VerifyError::ArtefactIo { path: path.to_owned(), source };
    let want = bundle.artefacts.get(path).ok_or_else(|| VerifyError::ArtefactMissing { path: path.to_owned() })?;
    let (plain, compressed) = (dir.join(path), dir.join(format!("{path}.zst")));
    let reader: Box<dyn Read> = if plain.is_file() {
        Box::new(File::open(&plain).map_err(io_err)?)
    } else if compressed.is_file() {
        Box::new(zstd::Decoder::new(File::open(&compressed).map_err(io_err)?).map_err(io_err)?)
    } else {
        return Err(VerifyError::ArtefactMissing { path: path.to_owned() });
    };
    let mut reader = HashingReader::new(reader.take(want.size + 1));
    let n = io::copy(&mut reader, &mut File::create(dest).map_err(io_err)?).map_err(io_err)?;
    let actual = reader.sha256();
    // What it unpacked is looked into (PE, GPT, erofs): only the signed bytes are left at `dest`.
    let wrong = if n != want.size {
        Some(VerifyError::ArtefactSize { path: path.to_owned(), expected: want.size, actual: n })
    } else if actual != want.sha256 {
        Some(VerifyError::ArtefactHash { path: path.to_owned(), expected: want.sha256.clone(), actual })
    } else {
        None
    };
    match wrong {
        Some(e) => {
            let _ = std::fs::remove_file(dest);
            Err(e)
        }
        None => Ok(()),
    }
}

/// Hashes what passes through (SHA-256), so bytes are used and checked in one read: an
/// artefact compressed, extracted, or a file verified against its signature.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R> HashingReader<R> {
    /// Reads through `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, hash: Sha256::new() }
    }

    /// The SHA-256 of what was read.
    pub fn sha256(self) -> Hex {
        Hex(self.hash.finalize().to_vec())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Size and SHA-256 of everything `r` yields.
pub fn hash(mut r: impl Read) -> io::Result<(u64, Hex)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, Hex(h.finalize().to_vec())))
}

#[cfg(test)]
mod bomb_tests {
    use super::*;
    use std::collections::BTreeMap;

    /// 64 MiB of zeros compress to a few KiB; declared as 10 bytes, the check stops reading at
    /// 11 and names the size.
    #[test]
    fn a_zstd_bomb_stops_at_the_declared_size() {
        let t = tempfile::tempdir().unwrap();
        let mut bundle = crate::bundle::tests::sample();
        let zeros = vec![0u8; 64 << 20];
        let packed = zstd::encode_all(zeros.as_slice(), 19).unwrap();
        assert!(packed.len() < 64 << 10);
        std::fs::create_dir_all(t.path().join("p")).unwrap();
        std::fs::write(t.path().join("p/a.raw.zst"), packed).unwrap();
        bundle.artefacts =
            BTreeMap::from([("p/a.raw".to_owned(), crate::bundle::Artefact { size: 10, sha256: Hex(vec![0; 32]) })]);
        let err = verify_artefacts(&bundle, t.path()).unwrap_err();
        assert!(matches!(err, VerifyError::ArtefactSize { expected: 10, actual: 11, .. }), "{err}");
    }
}

#[cfg(test)]
mod sums_tests {
    use super::*;
    use sign::SecretKey;

    /// A release-like directory: bundle.json, a package listed only in SHA256SUMS, and the
    /// signed list. Each edit is caught with its own reason.
    #[test]
    fn sha256sums_and_what_it_lists() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let bundle = crate::bundle::tests::sample();
        let text = bundle.to_canonical_json().unwrap();
        std::fs::write(d.join("bundle.json"), &text).unwrap();
        std::fs::create_dir_all(d.join("packages")).unwrap();
        std::fs::write(d.join("packages/a_1_all.deb"), b"deb").unwrap();
        let key = SecretKey::from_seed(KeyId(*b"sumstest"), &[7; 32]);
        let write_sums = |sums: &str, comment_name: &str| {
            std::fs::write(d.join("SHA256SUMS"), sums).unwrap();
            let comment = format!(
                "file:SHA256SUMS\tname:{comment_name}\tversion:{}\tsha256:{}",
                bundle.image.version,
                ::hex::encode(Sha256::digest(sums.as_bytes()))
            );
            let sig = sign::sign(&key, sums.as_bytes(), &comment, "test").unwrap();
            std::fs::write(d.join("SHA256SUMS.minisig"), sig.to_file()).unwrap();
        };
        let sha = |b: &[u8]| ::hex::encode(Sha256::digest(b));
        let good = format!("{}  bundle.json\n{}  packages/a_1_all.deb\n", sha(text.as_bytes()), sha(b"deb"));
        let bundle_sha: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let check = || verify_sums(d, &bundle, &bundle_sha, &key.public_key()).map_err(|e| e.to_string());
        write_sums(&good, &bundle.image.name);
        assert_eq!(check(), Ok(2));

        std::fs::write(d.join("packages/a_1_all.deb"), b"deb!").unwrap();
        assert!(check().unwrap_err().contains("packages/a_1_all.deb: sha256"), "{:?}", check());
        std::fs::write(d.join("packages/a_1_all.deb"), b"deb").unwrap();

        std::fs::write(d.join("SHA256SUMS"), good.replace("bundle.json", "bundle.jsoN")).unwrap();
        assert!(check().unwrap_err().contains("altered after it was signed"), "{:?}", check());

        write_sums(&good, "another-image");
        assert!(check().unwrap_err().contains("name \"another-image\""), "{:?}", check());

        write_sums(&format!("{}  packages/a_1_all.deb\n", sha(b"deb")), &bundle.image.name);
        assert!(check().unwrap_err().contains("does not list bundle.json"), "{:?}", check());

        write_sums(&format!("{good}{}  ../escape\n", sha(b"x")), &bundle.image.name);
        assert!(check().unwrap_err().contains("not a plain relative path"), "{:?}", check());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{tests::sample, trusted_comment};
    use sign::SecretKey;

    fn key() -> SecretKey {
        SecretKey::from_seed(KeyId(*b"release!"), &[3; 32])
    }

    fn signed(bundle: &Bundle) -> (String, String) {
        let text = bundle.to_canonical_json().unwrap();
        let sig = sign::sign(&key(), text.as_bytes(), &trusted_comment(&bundle.image, text.as_bytes()), "nodeimg")
            .unwrap()
            .to_file();
        (text, sig)
    }

    #[test]
    fn a_good_bundle_verifies() {
        let (text, sig) = signed(&sample());
        let pk = key().public_key();
        let v = verify_bundle(text.as_bytes(), Some((&pk, &sig)), Some(&"1.2.3".parse().unwrap())).unwrap();
        assert_eq!(v.key_id, Some(pk.key_id()));
        assert_eq!(v.bundle, sample());
    }

    #[test]
    fn each_tampering_has_its_own_error() {
        let (text, sig) = signed(&sample());
        let pk = key().public_key();
        let check = |bundle: &str, sig: &str, pk: &PublicKey, min: Option<&str>| {
            let min = min.map(|m| m.parse().unwrap());
            verify_bundle(bundle.as_bytes(), Some((pk, sig)), min.as_ref()).unwrap_err()
        };

        let flipped = text.replacen("debian-cvm", "debian-cvn", 1);
        assert!(matches!(check(&flipped, &sig, &pk, None), VerifyError::BundleAltered { .. }));

        let lines: Vec<&str> = sig.lines().collect();
        let mut l2 = lines[1].as_bytes().to_vec();
        l2[40] = if l2[40] == b'A' { b'B' } else { b'A' };
        let bad_sig = format!("{}\n{}\n{}\n{}\n", lines[0], String::from_utf8(l2).unwrap(), lines[2], lines[3]);
        assert!(matches!(check(&text, &bad_sig, &pk, None), VerifyError::BadSignature));

        let truncated = &sig[..sig.len() - 30];
        assert!(matches!(check(&text, truncated, &pk, None), VerifyError::MalformedSignature(_)));

        let edited = sig.replace("version:1.2.3", "version:9.9.9");
        assert!(matches!(check(&text, &edited, &pk, None), VerifyError::TrustedCommentAltered));

        let other = SecretKey::from_seed(KeyId(*b"other!!!"), &[4; 32]).public_key();
        assert!(matches!(check(&text, &sig, &other, None), VerifyError::WrongKey { .. }));

        assert!(matches!(check(&text, &sig, &pk, Some("1.3.0")), VerifyError::Rollback { .. }));

        // A signature of another key that claims this key's id.
        let impostor = SecretKey::from_seed(KeyId(*b"release!"), &[9; 32]);
        let forged = sign::sign(&impostor, text.as_bytes(), &trusted_comment(&sample().image, text.as_bytes()), "x")
            .unwrap()
            .to_file();
        assert!(matches!(check(&text, &forged, &pk, None), VerifyError::BadSignature));

        // A correctly signed comment that names another bundle (e.g. a plain `minisign -S`).
        let generic = sign::sign(&key(), text.as_bytes(), "timestamp:0\tfile:bundle.json", "x").unwrap().to_file();
        match check(&text, &generic, &pk, None) {
            VerifyError::TrustedCommentMismatch { field: "name", .. } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn insecure_mode_still_checks_the_bundle() {
        let (text, _) = signed(&sample());
        assert!(verify_bundle(text.as_bytes(), None, None).unwrap().key_id.is_none());
        let broken = text.replace("\"schema_version\": 1", "\"schema_version\": 2");
        assert!(matches!(verify_bundle(broken.as_bytes(), None, None), Err(VerifyError::Bundle(_))));
    }

    #[test]
    fn artefacts_plain_and_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = sample();
        let (size, sha) = hash(&b"hello"[..]).unwrap();
        b.artefacts.clear();
        b.artefacts.insert("p/a.raw".into(), crate::Artefact { size, sha256: sha.clone() });
        b.artefacts.insert("p/b.raw".into(), crate::Artefact { size, sha256: sha });
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::write(dir.path().join("p/a.raw"), b"hello").unwrap();
        std::fs::write(dir.path().join("p/b.raw.zst"), zstd::encode_all(&b"hello"[..], 3).unwrap()).unwrap();
        assert_eq!(verify_artefacts(&b, dir.path()).unwrap(), 2);

        std::fs::write(dir.path().join("p/a.raw"), b"hellO").unwrap();
        assert!(
            matches!(verify_artefacts(&b, dir.path()), Err(VerifyError::ArtefactHash { path, .. }) if path == "p/a.raw")
        );
        std::fs::write(dir.path().join("p/a.raw"), b"hello!").unwrap();
        assert!(matches!(verify_artefacts(&b, dir.path()), Err(VerifyError::ArtefactSize { actual: 6, .. })));
        std::fs::remove_file(dir.path().join("p/a.raw")).unwrap();
        assert!(matches!(verify_artefacts(&b, dir.path()), Err(VerifyError::ArtefactMissing { .. })));
    }

    /// `rebuild` looks into what it extracts: only bytes of the signed size and sha256 stay.
    #[test]
    fn extracting_checks_size_and_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = sample();
        let (size, sha256) = hash(&b"hello"[..]).unwrap();
        b.artefacts.clear();
        b.artefacts.insert("p/a.raw".into(), crate::Artefact { size, sha256 });
        std::fs::create_dir(dir.path().join("p")).unwrap();
        let dest = dir.path().join("out");
        std::fs::write(dir.path().join("p/a.raw.zst"), zstd::encode_all(&b"hello"[..], 3).unwrap()).unwrap();
        extract_artefact(&b, dir.path(), "p/a.raw", &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        std::fs::write(dir.path().join("p/a.raw.zst"), zstd::encode_all(&b"hellO"[..], 3).unwrap()).unwrap();
        let err = extract_artefact(&b, dir.path(), "p/a.raw", &dest).unwrap_err();
        assert!(matches!(err, VerifyError::ArtefactHash { .. }), "{err}");
        assert!(!dest.exists());
        std::fs::write(dir.path().join("p/a.raw.zst"), zstd::encode_all(&b"hello!"[..], 3).unwrap()).unwrap();
        let err = extract_artefact(&b, dir.path(), "p/a.raw", &dest).unwrap_err();
        assert!(matches!(err, VerifyError::ArtefactSize { actual: 6, .. }), "{err}");
        assert!(!dest.exists());
    }
}
