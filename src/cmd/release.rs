//! `nodeimg release | verify | export`: the signed reference-value bundle.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use release::export::{self, constellation, intoto, keylime, tpm2_policy, trustee};
use release::input::{BuildOutput, ObservedPcrs};
use release::publish::{self, release_name};
use release::Bundle;
use serde::Serialize;
use sign::SecretKey;

use super::sign::{open_secret_key, read_public_key, read_signature, write_key_pair, PasswordArgs};
use crate::{Global, Outcome};

/// Where `--insecure-dev-key` keeps its key, under the output directory.
const DEV_KEY_DIR: &str = "insecure-dev-key";
/// The development key's base name.
const DEV_KEY_NAME: &str = "nodeimg-dev";

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Turn a build output into a signed release: bundle.json and its signature, SHA256SUMS and
    /// its signature, the zstd-compressed artefacts, and one reproducible .tar.zst of them all.
    Release(ReleaseArgs),
    /// Verify a bundle: signature, trusted comment, schema, artefact hashes and rollback.
    /// Exit 0 only if all hold, 1 with the reason otherwise.
    Verify(VerifyArgs),
    /// Write a bundle's reference values in a format an attestation service reads.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The image version to release (semantic version, as in the build).
    #[arg(long)]
    version: String,
    /// The build output directory (default: the one directory out/<image>-<VERSION> with a
    /// build.json).
    #[arg(long, value_name = "DIR")]
    input: Option<PathBuf>,
    /// The minisign secret key to sign with.
    #[arg(short, long, value_name = "KEY", required_unless_present = "insecure_dev_key")]
    key: Option<PathBuf>,
    /// Sign with a development key kept (unencrypted) under OUT/insecure-dev-key/, generated on
    /// first use. INSECURE: for local builds only, never for a published release.
    #[arg(long, conflicts_with = "key")]
    insecure_dev_key: bool,
    #[command(flatten)]
    password: PasswordArgs,
    /// Where releases go: the release is written to OUT/<image>-<VERSION>/.
    #[arg(long, value_name = "OUT", default_value = "out/release")]
    out: PathBuf,
    /// Add PCR values observed on a running instance of PLATFORM (status "observed"), from a
    /// JSON file {"sha256": {"0": "<hex>", …}, …}. Repeatable.
    #[arg(long, value_name = "PLATFORM=FILE")]
    observed: Vec<String>,
    /// Publish every .deb of the package lock beside the artefacts (packages/, listed in
    /// SHA256SUMS and named by the bundle), so that anyone can rebuild the release offline with
    /// `nodeimg rebuild`. Redistributing Debian's binaries obliges you to offer their sources
    /// too (see README, "Rebuilding a release"); a snapshot-built release does not need this.
    #[arg(long)]
    with_packages: bool,
    /// With --with-packages: the project or profile directory the build was made from (its lock
    /// names the packages; its content hash must be the one in build.json), and the cache whose
    /// store (CACHE/debs) holds the build's .debs.
    #[command(flatten)]
    loc: crate::cmd::build::Locations,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle (bundle.json).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The minisign public key of the publisher.
    #[arg(long, value_name = "KEY", required_unless_present = "insecure")]
    pubkey: Option<PathBuf>,
    /// The signature (default: BUNDLE.minisig).
    #[arg(long, value_name = "SIG")]
    sig: Option<PathBuf>,
    /// Also check every artefact in DIR (a release directory, or one extracted from it: PATH
    /// or PATH.zst); when DIR holds SHA256SUMS (a release directory), also that list, its
    /// signature by the same key, and every file it names.
    #[arg(long, value_name = "DIR")]
    artefacts: Option<PathBuf>,
    /// Refuse bundles older than this version (rollback protection).
    #[arg(long, value_name = "VERSION")]
    min_version: Option<String>,
    /// Skip the signature check. INSECURE: nothing then vouches for the values.
    #[arg(long, conflicts_with_all = ["pubkey", "sig"])]
    insecure: bool,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Constellation image measurements v2 (measurements.json).
    Constellation,
    /// A Trustee RVPS message (type "sample") with the default policy's reference-value names.
    Trustee,
    /// An in-toto Statement v1 with an SLSA Provenance v1 predicate.
    Intoto,
    /// The TPM2 PolicyPCR digest (hex) of the predicted values of --pcrs in --bank, what
    /// tpm2_createpolicy --policy-pcr and systemd-cryptenroll --tpm2-pcrs= seal to.
    #[value(name = "tpm2-policy")]
    Tpm2Policy,
    /// Keylime, into the directory -o DIR: tpm_policy.json (keylime_tenant --tpm_policy: the
    /// enforced PCRs and PCR 11 at --pcr11-phase), refstate.json (a measured-boot reference
    /// state from the predicted event log) and nodeimg_uki.py (the verifier's policy module that
    /// evaluates it; docs/verifying-keylime.md).
    Keylime,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle (bundle.json). It is verified first (signature, trusted comment, schema), as
    /// `nodeimg verify` does; exit 1 when it does not verify. Trustee and Keylime: repeat it to
    /// accept several releases (a rolling upgrade from N to N+1).
    #[arg(long = "bundle", value_name = "FILE", required = true)]
    bundles: Vec<PathBuf>,
    /// The minisign public key of the publisher.
    #[arg(long, value_name = "KEY", required_unless_present = "no_verify")]
    pubkey: Option<PathBuf>,
    /// The bundle's signature (default: BUNDLE.minisig; with several bundles, each its own).
    #[arg(long, value_name = "FILE")]
    sig: Option<PathBuf>,
    /// Export without verifying: say so when the caller has verified the bundle itself.
    #[arg(long, conflicts_with_all = ["pubkey", "sig"])]
    no_verify: bool,
    /// The output format.
    #[arg(long, value_enum)]
    format: Format,
    /// Export only this platform.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// The boot phase whose PCR 11 is the reference (default: the latest, a fully booted node).
    #[arg(long, value_name = "PHASE")]
    pcr11_phase: Option<String>,
    /// Trustee: an AK public key (PEM "PUBLIC KEY" or DER) to register as `trusted_aks`, what
    /// the default policy's TPM branch requires of a node's `ak_public`. Repeat it for every
    /// node: the message replaces the AKs registered before. See docs/verifying-trustee.md.
    #[arg(long = "trusted-ak", value_name = "FILE")]
    trusted_aks: Vec<PathBuf>,
    /// Constellation: the release ref.
    #[arg(long = "ref", value_name = "REF", default_value = "-")]
    reference: String,
    /// Constellation: the release stream.
    #[arg(long, default_value = "stable")]
    stream: String,
    /// tpm2-policy: the PCRs the policy covers (PCR 11 at --pcr11-phase).
    #[arg(long, value_name = "N,…", value_delimiter = ',', default_value = "4,7,11")]
    pcrs: Vec<u8>,
    /// tpm2-policy: the PCR bank (and policy session hash).
    #[arg(long, value_name = "ALG", default_value = "sha256")]
    bank: eventlog::HashAlg,
    /// tpm2-policy: also write the selected PCR values, concatenated in index order (the file
    /// tpm2_createpolicy --policy-pcr -f reads).
    #[arg(long, value_name = "FILE")]
    pcr_values: Option<PathBuf>,
    /// in-toto: the SLSA builder id (a URI naming the build platform).
    #[arg(long, value_name = "URI", default_value = intoto::DEFAULT_BUILDER_ID)]
    builder_id: String,
    /// Write to FILE instead of stdout (keylime: the directory to write its three files into,
    /// created if missing).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(cmd: Command, global: Global) -> Result<Outcome> {
    match cmd {
        Command::Release(a) => release_cmd(a, global),
        Command::Verify(a) => verify(a, global),
        Command::Export(a) => export_cmd(a),
    }
}

/// The build output for `version`: `--input`, or the single out/*/build.json naming it.
fn find_input(version: &str, input: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = input {
        return Ok(dir);
    }
    let out = Path::new("out");
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir(out) {
        for e in entries.flatten() {
            let build_json = e.path().join("build.json");
            if let Ok(bytes) = crate::fsutil::read_input(&build_json, release::input::MAX_JSON, "a build.json") {
                let info: release::input::BuildInfo =
                    serde_json::from_slice(&bytes).with_context(|| build_json.display().to_string())?;
                if info.image.version == version {
                    found.push(e.path());
                }
            }
        }
    }
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "no build of version {version} under out/ (a directory with build.json); run nodeimg build or pass --input"
        ),
        _ => bail!(
            "several builds of version {version} under out/: {}; choose one with --input",
            found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn parse_observed(specs: &[String]) -> Result<BTreeMap<String, ObservedPcrs>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (platform, file) =
            spec.split_once('=').with_context(|| format!("--observed {spec:?}: expected PLATFORM=FILE"))?;
        let bytes = crate::fsutil::read_input(
            Path::new(file),
            crate::fsutil::limits::SMALL_JSON,
            "a JSON file of observed PCR values",
        )?;
        let pcrs: ObservedPcrs = serde_json::from_slice(&bytes)
            .with_context(|| format!("{file}: expected {{\"sha256\": {{\"<pcr>\": \"<lowercase hex>\", …}}, …}}"))?;
        if out.insert(platform.to_owned(), pcrs).is_some() {
            bail!("--observed given twice for platform {platform}");
        }
    }
    Ok(out)
}

/// The development key under `out`, generated (unencrypted) on first use.
fn dev_key(out: &Path, global: Global) -> Result<SecretKey> {
    let dir = out.join(DEV_KEY_DIR);
    let base = dir.join(DEV_KEY_NAME);
    let key_path = base.with_extension("key");
    if !key_path.exists() {
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let key = SecretKey::generate()?;
        write_key_pair(&base, &key, None)?;
        eprintln!(
            "WARNING: generated an INSECURE development signing key {} (unencrypted); \
             anyone who can read it can sign bundles",
            key_path.display()
        );
    }
    let key = open_secret_key(&key_path, &PasswordArgs { password_file: None })?;
    if !global.quiet {
        eprintln!(
            "WARNING: signing with the INSECURE development key {} (key id {}): never publish this release",
            key_path.display(),
            key.key_id()
        );
    }
    Ok(key)
}

#[derive(Serialize)]
struct ReleaseReport {
    image: String,
    version: String,
    dir: String,
    archive: String,
    archive_sha256: String,
    bundle_sha256: String,
    key_id: String,
    insecure_dev_key: bool,
    files: Vec<String>,
}

fn release_cmd(a: ReleaseArgs, global: Global) -> Result<Outcome> {
    let requested = semver::Version::parse(&a.version).with_context(|| format!("--version {:?}", a.version))?;
    let input = find_input(&a.version, a.input.clone())?;
    let build = BuildOutput::read(&input)?;
    if build.info.image.version != requested.to_string() {
        bail!("{}: the build is version {}, not {}", input.display(), build.info.image.version, a.version);
    }
    if let Ok(env) = std::env::var("SOURCE_DATE_EPOCH") {
        if env.trim() != build.info.image.source_date_epoch.to_string() {
            bail!(
                "SOURCE_DATE_EPOCH={env} but the build was made with {}; unset it or use the build's",
                build.info.image.source_date_epoch
            );
        }
    }
    let observed = parse_observed(&a.observed)?;
    let key = match &a.key {
        Some(path) => open_secret_key(path, &a.password)?,
        None => dev_key(&a.out, global)?,
    };
    let mut steps = super::steps::Steps::new(global);
    let lock = match a.with_packages {
        true => Some(lock_of_build(&build.info.provenance, &a.loc.profiles()?.dir)?),
        false => None,
    };
    let artefacts = build.check_artefacts(&mut |p| steps.event(p))?;
    let mut bundle = build.bundle(artefacts, &observed)?;
    if lock.is_some() {
        bundle.provenance.package_archive = Some(publish::PACKAGES_DIR.to_owned());
    }
    let name = release_name(&bundle);
    let final_dir = a.out.join(&name);
    if final_dir.exists() {
        bail!("{} already exists; a release is never overwritten", final_dir.display());
    }
    fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    // Everything is written into a hidden directory beside the destination and renamed into
    // place at the end: an interrupted release leaves only `.NAME.*.partial`, which the next
    // release of that name removes.
    remove_stale_partials(&a.out, &name)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempdir_in(&a.out)
        .with_context(|| format!("creating a temporary directory in {}", a.out.display()))?;
    let untrusted = if a.insecure_dev_key {
        "signature from an INSECURE nodeimg development key"
    } else {
        "signature from nodeimg secret key"
    };
    let mut packages = Vec::new();
    if let Some(lock) = &lock {
        let what = "copying the package archive (the lock's .debs) into packages/";
        steps.event(release::Progress::Step { what, bytes: 0 });
        let store = builder::debs::DebStore::under(&a.loc.cache_dir());
        let debs = store.export(lock, &tmp.path().join(publish::PACKAGES_DIR))?;
        packages = debs.into_iter().map(|(file, _)| format!("{}/{file}", publish::PACKAGES_DIR)).collect();
    }
    let report =
        publish::write_release(&build, &bundle, &key, untrusted, tmp.path(), &packages, &mut |p| steps.event(p))?;
    steps.finish();
    crate::fsutil::publish_modes(tmp.path())?;
    let tmp_path = tmp.keep();
    // Never over a release that appeared meanwhile (even an empty directory): atomically.
    if let Err(e) = crate::fsutil::rename_noreplace(&tmp_path, &final_dir) {
        let _ = fs::remove_dir_all(&tmp_path);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            bail!("{} appeared while the release was written; a release is never overwritten", final_dir.display());
        }
        return Err(e).with_context(|| format!("renaming the finished release to {}", final_dir.display()));
    }
    crate::fsutil::sync_dir(&a.out)?;
    let out = ReleaseReport {
        image: bundle.image.name.clone(),
        version: bundle.image.version.clone(),
        dir: final_dir.display().to_string(),
        archive: final_dir.join(&report.archive).display().to_string(),
        archive_sha256: report.archive_sha256,
        bundle_sha256: report.bundle_sha256,
        key_id: key.key_id().to_string(),
        insecure_dev_key: a.insecure_dev_key,
        files: report.files,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else if !global.quiet {
        outln!("released {} {} into {}", out.image, out.version, out.dir);
        outln!("archive: {} (sha256 {})", out.archive, out.archive_sha256);
        outln!("bundle.json sha256 {}, signed by key {}", out.bundle_sha256, out.key_id);
        if out.insecure_dev_key {
            outln!("signed with an INSECURE development key: do not publish");
        }
    }
    Ok(Outcome::Ok)
}

/// Removes `OUT/.NAME.*.partial`, what an interrupted release of NAME left.
fn remove_stale_partials(out: &Path, name: &str) -> Result<()> {
    let prefix = format!(".{name}.");
    for e in fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".partial") && e.path().is_dir() {
            fs::remove_dir_all(e.path()).with_context(|| format!("removing the stale {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// The package lock of the profiles a build was made from, checked against the build's
/// provenance (the lock's sha256 and, when recorded, the profile tree's content hash).
pub(crate) fn lock_of_build(prov: &release::bundle::Provenance, profiles_dir: &Path) -> Result<builder::Lock> {
    let path = profiles_dir.join(builder::build::LOCK_FILE);
    let text = crate::fsutil::read_input(&path, crate::fsutil::limits::BUNDLE, "a package lock")?;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&text));
    if sha != prov.package_lock_sha256.to_string() {
        bail!(
            "{}: its sha256 is {sha}, but the build was made with the lock {} (give the build's profile directory)",
            path.display(),
            prov.package_lock_sha256
        );
    }
    if let Some(want) = &prov.profile_tree_sha256 {
        let got = builder::tree::tree_sha256(profiles_dir)?;
        if got != want.to_string() {
            bail!(
                "{}: the profile tree's content hash is {got}, but the build was made from {want}",
                profiles_dir.display()
            );
        }
    }
    let text = String::from_utf8(text).with_context(|| format!("{}: not UTF-8", path.display()))?;
    Ok(builder::Lock::parse(&text, &path)?)
}

#[derive(Serialize)]
struct VerifyReport {
    bundle: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// None when the signature was skipped (--insecure).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    signature_checked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    artefacts_checked: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `--min-version V` (a leading `v` allowed), as `verify` and `attest check` take it.
pub(crate) fn parse_min_version(v: Option<&str>) -> Result<Option<semver::Version>> {
    v.map(|v| semver::Version::parse(v.strip_prefix('v').unwrap_or(v)).with_context(|| format!("--min-version {v:?}")))
        .transpose()
}

fn verify(a: VerifyArgs, global: Global) -> Result<Outcome> {
    let min_version = parse_min_version(a.min_version.as_deref())?;
    let bytes = crate::fsutil::read_input(&a.bundle, crate::fsutil::limits::BUNDLE, "a bundle")?;
    let signed = match &a.pubkey {
        Some(pk) if !a.insecure => {
            let key = read_public_key(pk)?;
            Some((key, read_signature(&a.bundle, a.sig.as_deref())?))
        }
        _ => {
            eprintln!(
                "WARNING: --insecure: the signature of {} was NOT checked; nothing vouches for these values",
                a.bundle.display()
            );
            None
        }
    };
    if let Some(dir) = &a.artefacts {
        if !dir.is_dir() {
            bail!("--artefacts {}: not a directory", dir.display());
        }
    }
    let result = release::verify_bundle(&bytes, signed.as_ref().map(|(k, s)| (k, s.as_str())), min_version.as_ref())
        .and_then(|v| {
            let n = match &a.artefacts {
                Some(dir) => {
                    let n = release::verify_artefacts(&v.bundle, dir)?;
                    if let (Some((key, _)), true) = (&signed, dir.join(publish::SUMS).exists()) {
                        release::verify_sums(dir, &v.bundle, &v.sha256, key)?;
                    }
                    Some(n)
                }
                None => None,
            };
            Ok((v, n))
        });
    // A malformed signature file is unusable input (exit 2), not a failed verification.
    if let Err(e @ release::VerifyError::MalformedSignature(_)) = &result {
        bail!("{}: {e}", a.bundle.display());
    }
    let bundle_name = a.bundle.display().to_string();
    let (report, outcome) = match result {
        Ok((v, n)) => (
            VerifyReport {
                bundle: bundle_name,
                ok: true,
                image: Some(v.bundle.image.name.clone()),
                version: Some(v.bundle.image.version.clone()),
                sha256: Some(hex::encode(v.sha256)),
                key_id: v.key_id.map(|k| k.to_string()),
                signature_checked: v.key_id.is_some(),
                artefacts_checked: n,
                reason: None,
            },
            Outcome::Ok,
        ),
        Err(e) => {
            let reason = e.to_string();
            (
                VerifyReport {
                    bundle: bundle_name,
                    ok: false,
                    image: None,
                    version: None,
                    sha256: None,
                    key_id: None,
                    signature_checked: signed.is_some(),
                    artefacts_checked: None,
                    reason: Some(reason),
                },
                Outcome::Mismatch,
            )
        }
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    }
    match outcome {
        Outcome::Ok if !a.json && !global.quiet => {
            let signer = match &report.key_id {
                Some(k) => format!("signed by key {k}"),
                None => "signature NOT checked".to_owned(),
            };
            let artefacts = match report.artefacts_checked {
                Some(n) => format!("; {n} artefacts match"),
                None => String::new(),
            };
            outln!(
                "OK: {} {} (sha256 {}), {signer}{artefacts}",
                report.image.as_deref().unwrap_or(""),
                report.version.as_deref().unwrap_or(""),
                report.sha256.as_deref().unwrap_or("")
            );
        }
        Outcome::Mismatch => {
            eprintln!("{}: verification failed: {}", report.bundle, report.reason.as_deref().unwrap_or(""))
        }
        Outcome::Ok => {}
    }
    Ok(outcome)
}

fn export_cmd(a: ExportArgs) -> Result<Outcome> {
    if a.bundles.len() > 1 && !matches!(a.format, Format::Trustee | Format::Keylime) {
        bail!("this format holds one release: give one --bundle (trustee and keylime take several)");
    }
    if matches!(a.format, Format::Keylime) {
        match &a.output {
            None => bail!("keylime writes three files: give the directory with -o DIR"),
            Some(dir) if dir.exists() && !dir.is_dir() => bail!("-o {}: not a directory", dir.display()),
            Some(_) => {}
        }
    }
    if !a.trusted_aks.is_empty() && !matches!(a.format, Format::Trustee) {
        bail!("--trusted-ak is for --format trustee");
    }
    let trusted_aks = a
        .trusted_aks
        .iter()
        .map(|path| {
            let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::KEY, "an AK public key")?;
            trustee::ak_public(&bytes).with_context(|| crate::text::clean(&path.display().to_string()).into_owned())
        })
        .collect::<Result<Vec<_>>>()?;
    if a.bundles.len() > 1 && a.sig.is_some() {
        bail!("--sig names one bundle's signature; with several bundles each is read from BUNDLE.minisig");
    }
    let key = a.pubkey.as_deref().map(read_public_key).transpose()?;
    let mut loaded = Vec::new();
    for path in &a.bundles {
        let bytes = crate::fsutil::read_input(path, crate::fsutil::limits::BUNDLE, "a bundle")?;
        let bundle = match &key {
            Some(key) => {
                let sig = read_signature(path, a.sig.as_deref())?;
                match release::verify_bundle(&bytes, Some((key, &sig)), None) {
                    Ok(v) => v.bundle,
                    // A malformed signature file is unusable input (exit 2), not a failed
                    // verification.
                    Err(e @ release::VerifyError::MalformedSignature(_)) => bail!("{}: {e}", path.display()),
                    Err(e) => {
                        eprintln!("{}: verification failed: {e}; nothing exported", path.display());
                        return Ok(Outcome::Mismatch);
                    }
                }
            }
            None => Bundle::parse(&bytes).with_context(|| path.display().to_string())?,
        };
        loaded.push((bundle, bytes));
    }
    let (bundle, bytes) = &loaded[0];
    let opts = export::Options { platform: a.platform.clone(), pcr11_phase: a.pcr11_phase.clone() };
    // `--pcr-values FILE` of tpm2-policy: written with the output, or not at all.
    let mut pcr_values: Option<(&Path, Vec<u8>)> = None;
    let text = match a.format {
        Format::Constellation => constellation::export(bundle, &opts, &a.reference, &a.stream)?,
        Format::Trustee => {
            trustee::export_message(&loaded.iter().map(|(b, _)| b).collect::<Vec<_>>(), &opts, &trusted_aks)?
        }
        Format::Intoto => intoto::export(bundle, bytes, &opts, &a.builder_id)?,
        Format::Keylime => {
            let bundles: Vec<&Bundle> = loaded.iter().map(|(b, _)| b).collect();
            let e = keylime::export_releases(&bundles, &opts)?;
            let dir = a.output.as_deref().expect("checked above");
            write_keylime(dir, &e)?;
            return Ok(Outcome::Ok);
        }
        Format::Tpm2Policy => {
            let p = tpm2_policy::export(bundle, &opts, &a.pcrs, a.bank)?;
            if let Some(path) = &a.pcr_values {
                pcr_values = Some((path.as_path(), p.values));
            }
            let list: Vec<String> = p.pcrs.iter().map(u8::to_string).collect();
            eprintln!(
                "PolicyPCR over {} PCRs {} (systemd-cryptenroll --tpm2-pcrs={})",
                p.bank,
                list.join(","),
                list.join("+")
            );
            format!("{}\n", hex::encode(&p.digest))
        }
    };
    let mut files: Vec<(&Path, &[u8])> = pcr_values.iter().map(|(path, v)| (*path, v.as_slice())).collect();
    if let Some(path) = &a.output {
        files.push((path, text.as_bytes()));
    }
    crate::fsutil::write_atomic_all(&files)?;
    if a.output.is_none() {
        out!("{text}");
    }
    Ok(Outcome::Ok)
}

/// Writes a Keylime export into `dir` (all three files or none), and says what went where.
fn write_keylime(dir: &Path, e: &keylime::Export) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        ("tpm_policy.json", e.tpm_policy.as_str()),
        ("refstate.json", e.refstate.as_str()),
        (keylime::POLICY_MODULE_FILE, keylime::POLICY_MODULE),
    ];
    let paths: Vec<PathBuf> = files.iter().map(|(name, _)| dir.join(name)).collect();
    let files: Vec<(&Path, &[u8])> =
        paths.iter().zip(files).map(|(path, (_, text))| (path.as_path(), text.as_bytes())).collect();
    crate::fsutil::write_atomic_all(&files)?;
    let pcrs: Vec<String> = e.tpm_policy_pcrs.iter().map(u8::to_string).collect();
    eprintln!(
        "wrote {0}/tpm_policy.json (PCRs {1}), {0}/refstate.json ({2} boot(s)) and {0}/{3} (measured boot policy {4:?})",
        dir.display(),
        pcrs.join(", "),
        e.boots,
        keylime::POLICY_MODULE_FILE,
        keylime::POLICY_NAME
    );
    Ok(())
}
