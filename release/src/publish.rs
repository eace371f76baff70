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
use crate::progress::{Counted, Progress};
use crate::verify::HashingReader;

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

/// `sha256sum`-format lines (`<hex>  <path>`) for `files` (relative to `dir`), in order;
/// `progress` hears how many bytes are hashed so far.
pub fn sha256sums(dir: &Path, files: &[String], progress: &mut dyn FnMut(u64)) -> Result<String, PublishError> {
    let mut out = String::new();
    let mut done = 0;
    for f in files {
        let path = dir.join(f);
        let file = File::open(&path).map_err(io_err(&path))?;
        let (size, digest) =
            crate::verify::hash(Counted::new(file, &mut |n| progress(done + n))).map_err(io_err(&path))?;
        done += size;
        out.push_str(&format!("{digest}  {f}\n"));
    }
    Ok(out)
}

/// The total size of `files` (relative to `dir`).
fn total_size<'a>(dir: &Path, files: impl IntoIterator<Item = &'a String>) -> Result<u64, PublishError> {
    files.into_iter().try_fold(0, |sum, f| {
        let path = dir.join(f);
        Ok(sum + fs::metadata(&path).map_err(io_err(&path))?.len())
    })
}

/// The directory of a release that holds the package archive (`--with-packages`).
pub const PACKAGES_DIR: &str = "packages";

/// Writes the release of `build` (whose bundle is `bundle`) into the directory `dir`, signing
/// with `key`; `untrusted_comment` goes on both signatures. `dir` is empty but for the
/// `packages` the caller put there (paths relative to `dir`, under [`PACKAGES_DIR`]), which are
/// listed in SHA256SUMS and left out of the archive. `progress` hears about each step and the
/// bytes it has gone through: compressing each artefact, hashing for SHA256SUMS, writing the
/// archive and hashing it.
pub fn write_release(
    build: &BuildOutput,
    bundle: &Bundle,
    key: &SecretKey,
    untrusted_comment: &str,
    dir: &Path,
    packages: &[String],
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ReleaseReport, PublishError> {
    let mut files: Vec<String> = packages.to_vec();
    for (path, artefact) in &bundle.artefacts {
        progress(Progress::Step { what: &format!("compressing {path}"), bytes: artefact.size });
        let src = build.artefact_file(path);
        let rel = format!("{path}.zst");
        let dst = dir.join(&rel);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let out = BufWriter::new(File::create(&dst).map_err(io_err(&dst))?);
        let input = File::open(&src).map_err(io_err(&src))?;
        let mut report = |n| progress(Progress::Bytes(n));
        let mut hashing = HashingReader::new(Counted::new(input, &mut report));
        let (size, out) = archive::compress(&mut hashing, out).map_err(io_err(&src))?;
        out.into_inner().map_err(|e| PublishError::Io { path: dst.clone(), source: e.into_error() })?;
        if size != artefact.size || hashing.sha256() != artefact.sha256 {
            return Err(PublishError::Changed { path: src });
        }
        files.push(rel);
    }

    progress(Progress::Step { what: "writing and signing bundle.json", bytes: 0 });
    let text = bundle.to_canonical_json()?;
    write(dir, BUNDLE, text.as_bytes())?;
    let comment = trusted_comment(&bundle.image, text.as_bytes());
    let sig = sign::sign(key, text.as_bytes(), &comment, untrusted_comment)?;
    write(dir, BUNDLE_SIG, sig.to_file().as_bytes())?;
    files.push(BUNDLE.into());
    files.push(BUNDLE_SIG.into());
    files.sort();

    let bytes = total_size(dir, &files)?;
    progress(Progress::Step { what: "hashing the files for SHA256SUMS", bytes });
    let sums = sha256sums(dir, &files, &mut |n| progress(Progress::Bytes(n)))?;
    progress(Progress::Step { what: "writing and signing SHA256SUMS", bytes: 0 });
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
    let bytes = total_size(dir, files.iter().filter(|f| !f.starts_with(&format!("{PACKAGES_DIR}/"))))?;
    progress(Progress::Step { what: &format!("writing {archive_name}"), bytes });
    let archive_path = dir.join(&archive_name);
    let out = BufWriter::new(File::create(&archive_path).map_err(io_err(&archive_path))?);
    let skip = [archive_name.as_str(), PACKAGES_DIR];
    let epoch = bundle.image.source_date_epoch;
    let out = archive::write_tree_zst(dir, &name, epoch, &skip, out, &mut |n| progress(Progress::Bytes(n)))?;
    let file = out.into_inner().map_err(|e| PublishError::Io { path: archive_path.clone(), source: e.into_error() })?;
    file.sync_all().map_err(io_err(&archive_path))?;
    let archive_file = File::open(&archive_path).map_err(io_err(&archive_path))?;
    let bytes = archive_file.metadata().map_err(io_err(&archive_path))?.len();
    progress(Progress::Step { what: &format!("hashing {archive_name}"), bytes });
    let (_, archive_sha256) = crate::verify::hash(Counted::new(archive_file, &mut |n| progress(Progress::Bytes(n))))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::input::tests::synthetic;
    use sign::KeyId;

    /// A release of the build in `build_dir`, and what it said of its steps: each step's name
    /// with its size and the last byte count it reported.
    fn release(build_dir: &Path, key: &SecretKey) -> (tempfile::TempDir, ReleaseReport, Vec<(String, u64, u64)>) {
        let build = BuildOutput::read(build_dir).unwrap();
        let artefacts = build.check_artefacts(&mut |_| {}).unwrap();
        let bundle = build.bundle(artefacts, &BTreeMap::new()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut steps: Vec<(String, u64, u64)> = Vec::new();
        let report = write_release(&build, &bundle, key, "nodeimg test", out.path(), &[], &mut |p| match p {
            Progress::Step { what, bytes } => steps.push((what.to_owned(), bytes, 0)),
            Progress::Bytes(n) => steps.last_mut().expect("bytes within a step").2 = n,
        })
        .unwrap();
        (out, report, steps)
    }

    #[test]
    fn a_release_verifies_and_is_reproducible() {
        let build = tempfile::tempdir().unwrap();
        synthetic(build.path());
        let key = SecretKey::from_seed(KeyId(*b"pubtest!"), &[5; 32]);
        let (a, ra, steps) = release(build.path(), &key);
        let (b, rb, _) = release(build.path(), &key);
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

        // Every step was told, each measured one to its last byte: the artefacts' sizes, what
        // SHA256SUMS lists, the files in the archive, the archive.
        let names: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "compressing qemu-snp/disk.raw",
                "compressing qemu-snp/uki.efi",
                "compressing qemu-tdx/disk.raw",
                "compressing qemu-tdx/uki.efi",
                "writing and signing bundle.json",
                "hashing the files for SHA256SUMS",
                "writing and signing SHA256SUMS",
                "writing debian-cvm-1.2.3.tar.zst",
                "hashing debian-cvm-1.2.3.tar.zst"
            ]
        );
        let size = |f: &str| fs::metadata(a.path().join(f)).unwrap().len();
        let listed: u64 = sums.lines().map(|l| size(&l[66..])).sum();
        let archived = listed + size(SUMS) + size(SUMS_SIG);
        let want = [
            ra.files[5..].iter().map(|f| fs::metadata(build.path().join(&f[..f.len() - 4])).unwrap().len()).collect(),
            vec![0, listed, 0, archived, size(&ra.archive)],
        ]
        .concat();
        for ((name, bytes, last), want) in steps.iter().zip(want) {
            assert_eq!((*bytes, *last), (want, want), "{name}");
        }

        // Another key: only signatures and the archive differ.
        let other = SecretKey::from_seed(KeyId(*b"another!"), &[6; 32]);
        let (c, rc, _) = release(build.path(), &other);
        for f in &rc.files {
            let same = fs::read(a.path().join(f)).unwrap() == fs::read(c.path().join(f)).unwrap();
            let expect_same = !(f.ends_with(".minisig") || f.ends_with(".tar.zst") || f == SUMS);
            assert_eq!(same, expect_same, "{f}");
        }
    }
}
