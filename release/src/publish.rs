//! Writing a release directory from a build output.
//!
//! A release directory holds, for image `I` version `V`:
//!
//! ```text
//! bundle.json               the reference values (canonical JSON)
//! bundle.json.minisig       its signature; trusted comment name:I, version:V, sha256
//! SHA256SUMS                sha256sum(1) lines for every other file (bundle, signature, artefacts)
//! SHA256SUMS.minisig        its signature; trusted comment file:SHA256SUMS, name, version, sha256
//! <platform>/<file>.zst     each artefact, zstd-compressed (archive::ZSTD_LEVEL, ZSTD_WORKERS)
//! I-V.tar.zst               all of the above under the directory I-V/ (archive::write_tree)
//! packages/<name>.deb       with `--with-packages`: every .deb of the package lock, listed in
//!                           SHA256SUMS and named by the bundle (`provenance.package_archive`),
//!                           not in the .tar.zst (they are compressed already)
//! ```
//!
//! Nothing depends on the clock or the machine: the archive's timestamps are the build's
//! `SOURCE_DATE_EPOCH`, and Ed25519 signatures are deterministic, so two releases of the same
//! build with the same key are byte-identical (with different keys only the `.minisig` files and
//! the archive differ). [`write_release`] writes into a directory the caller created empty and
//! renames into place when it returns successfully (the CLI does that), so an interrupted
//! release leaves nothing that looks complete.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sign::SecretKey;

use crate::archive::{self, ArchiveError};
use crate::bundle::{trusted_comment, Bundle, BundleError};
use crate::input::BuildOutput;

/// File names in a release directory.
pub const BUNDLE: &str = "bundle.json";
/// The bundle's signature.
pub const BUNDLE_SIG: &str = "bundle.json.minisig";
/// The checksum list.
pub const SUMS: &str = "SHA256SUMS";
/// The checksum list's signature.
pub const SUMS_SIG: &str = "SHA256SUMS.minisig";

/// Why a release could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The bundle is invalid.
    #[error("bundle: {0}")]
    Bundle(#[from] BundleError),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(#[from] sign::Error),
    /// The archive could not be written.
    #[error("archive: {0}")]
    Archive(#[from] ArchiveError),
    /// An artefact changed between hashing and compressing.
    #[error("{path}: changed while the release was being written")]
    Changed { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PublishError + '_ {
    move |source| PublishError::Io { path: path.to_path_buf(), source }
}

/// What [`write_release`] wrote.
#[derive(Debug, Clone)]
pub struct ReleaseReport {
    /// The archive's file name (`<image>-<version>.tar.zst`).
    pub archive: String,
    /// SHA-256 of `bundle.json`.
    pub bundle_sha256: String,
    /// SHA-256 of the archive.
    pub archive_sha256: String,
    /// Every file written, relative to the release directory, sorted.
    pub files: Vec<String>,
}

/// The name of a release: `<image>-<version>`.
pub fn release_name(bundle: &Bundle) -> String {
    format!("{}-{}", bundle.image.name, bundle.image.version)
}

/// `sha256sum`-format lines (`<hex>  <path>`) for `files` (relative to `dir`), in order.
pub fn sha256sums(dir: &Path, files: &[String]) -> Result<String, PublishError> {
    let mut out = String::new();
    for f in files {
        let path = dir.join(f);
        let (_, digest) = crate::verify::hash(File::open(&path).map_err(io_err(&path))?).map_err(io_err(&path))?;
        out.push_str(&format!("{digest}  {f}\n"));
    }
    Ok(out)
}

/// The directory of a release that holds the package archive (`--with-packages`).
pub const PACKAGES_DIR: &str = "packages";

/// Writes the release of `build` (whose bundle is `bundle`) into the directory `dir`, signing
/// with `key`; `untrusted_comment` goes on both signatures. `dir` is empty but for the
/// `packages` the caller put there (paths relative to `dir`, under [`PACKAGES_DIR`]), which are
/// listed in SHA256SUMS and left out of the archive. `progress` hears about each step.
pub fn write_release(
    build: &BuildOutput,
    bundle: &Bundle,
    key: &SecretKey,
    untrusted_comment: &str,
    dir: &Path,
    packages: &[String],
    progress: &mut dyn FnMut(&str),
) -> Result<ReleaseReport, PublishError> {
    let mut files: Vec<String> = packages.to_vec();
    for (path, artefact) in &bundle.artefacts {
        progress(&format!("compressing {path}"));
        let src = build.artefact_file(path);
        let rel = format!("{path}.zst");
        let dst = dir.join(&rel);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let out = BufWriter::new(File::create(&dst).map_err(io_err(&dst))?);
        let mut hashing = HashingReader { inner: File::open(&src).map_err(io_err(&src))?, hash: Sha256::new() };
        let (size, out) = archive::compress(&mut hashing, out).map_err(io_err(&src))?;
        out.into_inner().map_err(|e| PublishError::Io { path: dst.clone(), source: e.into_error() })?;
        if size != artefact.size || hashing.hash.finalize().as_slice() != artefact.sha256.as_bytes() {
            return Err(PublishError::Changed { path: src });
        }
        files.push(rel);
    }

    progress("writing and signing bundle.json");
    let text = bundle.to_canonical_json()?;
    write(dir, BUNDLE, text.as_bytes())?;
    let comment = trusted_comment(&bundle.image, text.as_bytes());
    let sig = sign::sign(key, text.as_bytes(), &comment, untrusted_comment)?;
    write(dir, BUNDLE_SIG, sig.to_file().as_bytes())?;
    files.push(BUNDLE.into());
    files.push(BUNDLE_SIG.into());
    files.sort();

    progress("writing and signing SHA256SUMS");
    let sums = sha256sums(dir, &files)?;
    write(dir, SUMS, sums.as_bytes())?;
    let sums_comment = format!(
        "file:{SUMS}\tname:{}\tversion:{}\tsha256:{}",
        bundle.image.name,
        bundle.image.version,
        ::hex::encode(Sha256::digest(sums.as_bytes()))
    );
    let sig = sign::sign(key, sums.as_bytes(), &sums_comment, untrusted_comment)?;
    write(dir, SUMS_SIG, sig.to_file().as_bytes())?;
    files.push(SUMS.into());
    files.push(SUMS_SIG.into());

    let name = release_name(bundle);
    let archive_name = format!("{name}.tar.zst");
    progress(&format!("writing {archive_name}"));
    let archive_path = dir.join(&archive_name);
    let out = BufWriter::new(File::create(&archive_path).map_err(io_err(&archive_path))?);
    let out = archive::write_tree_zst(dir, &name, bundle.image.source_date_epoch, &[&archive_name, PACKAGES_DIR], out)?;
    let file = out.into_inner().map_err(|e| PublishError::Io { path: archive_path.clone(), source: e.into_error() })?;
    file.sync_all().map_err(io_err(&archive_path))?;
    let (_, archive_sha256) = crate::verify::hash(File::open(&archive_path).map_err(io_err(&archive_path))?)
        .map_err(io_err(&archive_path))?;
    files.push(archive_name.clone());
    files.sort();

    Ok(ReleaseReport {
        archive: archive_name,
        bundle_sha256: ::hex::encode(Sha256::digest(text.as_bytes())),
        archive_sha256: archive_sha256.to_string(),
        files,
    })
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PublishError> {
    let path = dir.join(name);
    let mut f = File::create(&path).map_err(io_err(&path))?;
    f.write_all(bytes).map_err(io_err(&path))?;
    f.sync_all().map_err(io_err(&path))
}

/// Hashes what passes through, so an artefact is compressed and re-checked in one read.
struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::input::tests::synthetic;
    use sign::KeyId;

    fn release(build_dir: &Path, key: &SecretKey) -> (tempfile::TempDir, ReleaseReport) {
        let build = BuildOutput::read(build_dir).unwrap();
        let artefacts = build.check_artefacts(|_| {}).unwrap();
        let bundle = build.bundle(artefacts, &BTreeMap::new()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let report = write_release(&build, &bundle, key, "nodeimg test", out.path(), &[], &mut |_| {}).unwrap();
        (out, report)
    }

    #[test]
    fn a_release_verifies_and_is_reproducible() {
        let build = tempfile::tempdir().unwrap();
        synthetic(build.path());
        let key = SecretKey::from_seed(KeyId(*b"pubtest!"), &[5; 32]);
        let (a, ra) = release(build.path(), &key);
        let (b, rb) = release(build.path(), &key);
        assert_eq!(ra.archive_sha256, rb.archive_sha256, "same build, same key: identical archives");
        assert_eq!(
            ra.files,
            [
                "SHA256SUMS",
                "SHA256SUMS.minisig",
                "bundle.json",
                "bundle.json.minisig",
                "debian-cvm-1.2.3.tar.zst",
                "qemu-snp/disk.raw.zst",
                "qemu-snp/uki.efi.zst",
                "qemu-tdx/disk.raw.zst",
                "qemu-tdx/uki.efi.zst"
            ]
        );
        for f in &ra.files {
            assert!(fs::read(a.path().join(f)).unwrap() == fs::read(b.path().join(f)).unwrap(), "{f} differs");
        }
        // The release verifies, artefacts and all, from the compressed files.
        let text = fs::read(a.path().join(BUNDLE)).unwrap();
        let sig = fs::read_to_string(a.path().join(BUNDLE_SIG)).unwrap();
        let v = crate::verify_bundle(&text, Some((&key.public_key(), &sig)), None).unwrap();
        assert_eq!(crate::verify_artefacts(&v.bundle, a.path()).unwrap(), 4);
        // SHA256SUMS covers every file but itself, its signature and the archive.
        let sums = fs::read_to_string(a.path().join(SUMS)).unwrap();
        assert_eq!(sums.lines().count(), 6);

        // Another key: only signatures and the archive differ.
        let other = SecretKey::from_seed(KeyId(*b"another!"), &[6; 32]);
        let (c, rc) = release(build.path(), &other);
        for f in &rc.files {
            let same = fs::read(a.path().join(f)).unwrap() == fs::read(c.path().join(f)).unwrap();
            let expect_same = !(f.ends_with(".minisig") || f.ends_with(".tar.zst") || f == SUMS);
            assert_eq!(same, expect_same, "{f}");
        }
    }
}
