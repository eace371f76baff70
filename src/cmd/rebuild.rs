//! `nodeimg rebuild RELEASE --pubkey P`: rebuild a signed release from its recorded inputs and
//! check that the same bytes and the same reference values come out.
//!
//! Order matters: the bundle is verified first (a release whose bundle does not verify is never
//! rebuilt); then the profile tree must be the one the bundle records (content hash) and its lock
//! the recorded lock (sha256); then the packages come from the release's own package archive
//! (`packages/`, when it was released `--with-packages`), a package directory given with
//! `--packages`, or the snapshot the bundle records; and a package archive must hold exactly
//! the lock's `.deb`s before mkosi runs. Only then is the image built (into a temporary
//! directory unless `--out` is given) and compared, artefact by artefact and platform by
//! platform, with the signed bundle.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use builder::{BuildRequest, ProfileSet, SourceChoice};
use clap::Args;
use release::bundle::{Bundle, PcrStatus, Platform};
use release::input::BuildOutput;
use serde::Serialize;

use crate::cmd::build::{check_or_error, Locations};
use crate::cmd::release::lock_of_build;
use crate::cmd::sign::{read_public_key, read_signature};
use crate::{Global, Outcome};

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The release directory (bundle.json, bundle.json.minisig, and packages/ when it was
    /// released with --with-packages).
    release: PathBuf,
    /// The release engineer's minisign public key: the bundle must verify with it.
    #[arg(long, value_name = "FILE")]
    pubkey: PathBuf,
    /// A package archive to build from (default: the release's packages/, else the snapshot
    /// the bundle records).
    #[arg(long, value_name = "DIR")]
    packages: Option<PathBuf>,
    /// Where the recorded snapshot is served (snapshot.debian.org's layout; default
    /// https://snapshot.debian.org).
    #[arg(long, value_name = "URL")]
    snapshot_mirror: Option<String>,
    /// OpenPGP keyring (binary) that signs the snapshot mirror's Release files, when it is not
    /// Debian's.
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// The project or profile directory the release was built from (its content hash, composed
    /// with the built-in base for a project, must be the one the bundle records), and the cache.
    #[command(flatten)]
    loc: Locations,
    /// Overlay profiles the release was built with (e.g. `test`); repeat for several.
    #[arg(long = "overlay", value_name = "NAME")]
    overlays: Vec<String>,
    /// Keep the rebuilt output under DIR (default: a temporary directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Difference {
    /// `artefact` or `platform`.
    kind: &'static str,
    /// The artefact's path or the platform's name.
    name: String,
    /// What differs.
    detail: String,
    /// For a differing artefact: the partitions or UKI sections that differ, then the files
    /// inside a differing partition (as `nodeimg repro` explains them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inside: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    release: String,
    source: String,
    artefacts: usize,
    platforms: usize,
    identical: bool,
    differences: Vec<Difference>,
}

/// The most a bundle may weigh before it is refused unread (real ones are tens of KiB).
const MAX_BUNDLE: u64 = 16 << 20;

pub fn run(args: RebuildArgs, global: Global) -> Result<Outcome> {
    let mut steps = crate::cmd::steps::Steps::new(global);
    // 1. The bundle, verified.
    let bundle_path = args.release.join(release::publish::BUNDLE);
    steps.stage(&format!("verifying {}", bundle_path.display()));
    let bytes = crate::fsutil::read_bounded(&bundle_path, MAX_BUNDLE)?;
    let key = read_public_key(&args.pubkey)?;
    let sig = read_signature(&bundle_path, None)?;
    let bundle = match release::verify_bundle(&bytes, Some((&key, &sig)), None) {
        Ok(v) => v.bundle,
        Err(e @ release::VerifyError::MalformedSignature(_)) => bail!("{}: {e}", bundle_path.display()),
        Err(e) => {
            eprintln!("{}: verification failed: {e}; nothing was rebuilt", bundle_path.display());
            return Ok(Outcome::Mismatch);
        }
    };
    let prov = &bundle.provenance;
    if prov.profile_tree_sha256.is_none() {
        bail!(
            "{}: the bundle records no profile tree hash (made before nodeimg could rebuild releases)",
            bundle_path.display()
        );
    }

    // 2. The recorded inputs: profile tree and lock.
    steps.stage(&format!(
        "checking {} {} and its package lock against the bundle",
        bundle.image.name, bundle.image.version
    ));
    let loc = &args.loc;
    let profiles = loc.profiles()?;
    let profiles_dir = profiles.dir.clone();
    let lock = lock_of_build(prov, &profiles_dir)?;

    // 3. Where the packages come from.
    let release_packages = prov.package_archive.as_ref().map(|d| args.release.join(d)).filter(|d| d.is_dir());
    let mut choice = SourceChoice::default();
    if let Some(dir) = args.packages.clone().or(release_packages) {
        choice.packages = Some(dir);
    } else if let Some(stamp) = prov.package_source.as_ref().and_then(|s| s.snapshot.as_deref()) {
        choice.snapshot = Some(stamp.parse().map_err(anyhow::Error::msg).context("the bundle's snapshot")?);
        choice.snapshot_mirror = args.snapshot_mirror.clone();
    } else {
        bail!(
            "{}: the release has no package archive (packages/) and records no snapshot: give --packages DIR",
            args.release.display()
        );
    }
    // (A package archive is checked against the lock by the build itself, before mkosi runs.)
    let source = choice.resolve(lock.snapshot.as_ref()).map_err(anyhow::Error::msg)?;

    // 4. The build, of every platform the bundle has.
    let set = ProfileSet::load_resolving(&profiles_dir, profiles.paths_root())?;
    if set.image_id != bundle.image.name || set.image_version != bundle.image.version {
        bail!(
            "{}: the profiles build {} {}, the release is {} {}",
            profiles_dir.display(),
            set.image_id,
            set.image_version,
            bundle.image.name,
            bundle.image.version
        );
    }
    let mut names: Vec<String> = bundle.platforms.keys().cloned().collect();
    names.extend(args.overlays.iter().cloned());
    let selection = set.select(&names, false)?;
    let tmp = tempfile::tempdir()?;
    let out_dir = match &args.out {
        Some(d) => std::path::absolute(d)?,
        None => tmp.path().to_path_buf(),
    };
    let req = BuildRequest {
        profiles_dir: profiles_dir.clone(),
        selection,
        out_dir,
        cache_dir: loc.cache_dir(),
        mkosi: loc.mkosi()?,
        nodeimg_version: env!("CARGO_PKG_VERSION").to_owned(),
        source: choice,
        keyring: args.keyring.clone(),
        firmware: Vec::new(),
    };
    steps.stage(&format!("rebuilding {} from {}", names.join(", "), source.describe()));
    let built = match crate::cmd::build::build_measured(&req, &set, &loc.tools(), global)? {
        Ok(r) => r,
        Err(e) => return check_or_error(e),
    };

    // 5. The comparison.
    let rebuilt = BuildOutput::read(&built.dir)?;
    steps.stage(&format!("comparing the {} rebuilt artefacts with the signed ones", bundle.artefacts.len()));
    let artefacts = rebuilt.check_artefacts(&mut |p| steps.event(p))?;
    steps.finish();
    let ours = rebuilt.bundle(artefacts, &BTreeMap::new())?;
    let mut differences = compare(&bundle, &ours);
    if differences.iter().any(|d| d.kind == "artefact") {
        steps.stage("looking inside the differing artefacts (partitions, UKI sections, files)");
    }
    explain_artefacts(&mut differences, &bundle, &args.release, &built.dir, &loc.cache_dir(), global)?;
    let report = Report {
        release: args.release.display().to_string(),
        source: source.describe(),
        artefacts: bundle.artefacts.len(),
        platforms: bundle.platforms.len(),
        identical: differences.is_empty(),
        differences,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &report.differences {
            outln!("DIFFERS  {} {}: {}", d.kind, d.name, d.detail);
            for line in &d.inside {
                outln!("           {line}");
            }
        }
        let verdict = if report.identical { "identical" } else { "DIFFERENT" };
        outln!(
            "{verdict}: {} {} rebuilt from {} ({} artefacts, {} platforms' reference values)",
            bundle.image.name,
            bundle.image.version,
            report.source,
            report.artefacts,
            report.platforms
        );
    }
    if args.out.is_none() {
        let _ = fs::remove_dir_all(tmp.path());
    }
    Ok(if report.identical { Outcome::Ok } else { Outcome::Mismatch })
}

/// Every artefact and every platform's reference values of `signed` against the rebuild's;
/// PCRs a release engineer added as `observed` (read from a running instance, not computed) are
/// not the build's to reproduce.
fn compare(signed: &Bundle, ours: &Bundle) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut names: Vec<&String> = signed.artefacts.keys().chain(ours.artefacts.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let detail = match (signed.artefacts.get(name), ours.artefacts.get(name)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => format!("sha256 {} (signed) vs {} (rebuilt)", a.sha256, b.sha256),
            (Some(_), None) => "not rebuilt".into(),
            (None, _) => "rebuilt but not in the release".into(),
        };
        out.push(Difference { kind: "artefact", name: name.clone(), detail, inside: Vec::new() });
    }
    for (name, p) in &signed.platforms {
        let detail = match ours.platforms.get(name) {
            None => "not rebuilt".to_owned(),
            Some(q) => match platform_difference(&without_observed(p), q) {
                None => continue,
                Some(d) => d,
            },
        };
        out.push(Difference { kind: "platform", name: name.clone(), detail, inside: Vec::new() });
    }
    out
}

/// For each artefact that both the release and the rebuild have but with other bytes: which
/// partitions or sections differ, and which files inside a partition (with the tools tree of the
/// cache, as `nodeimg repro` does).
fn explain_artefacts(
    differences: &mut [Difference],
    signed: &Bundle,
    release_dir: &std::path::Path,
    rebuilt_dir: &std::path::Path,
    cache_dir: &std::path::Path,
    global: Global,
) -> Result<()> {
    let tools =
        builder::mkosi::CacheDirs::latest_tools_tree(cache_dir).and_then(|t| builder::tools::ToolsTree::open(&t).ok());
    let work = tempfile::tempdir()?;
    let mut progress = crate::cmd::build::Progress::new(global);
    for d in differences.iter_mut().filter(|d| d.kind == "artefact") {
        let ours = rebuilt_dir.join(&d.name);
        if !signed.artefacts.contains_key(&d.name) || !ours.is_file() {
            continue;
        }
        let theirs = work.path().join("signed").join(&d.name);
        fs::create_dir_all(theirs.parent().expect("has a parent"))?;
        match release::extract_artefact(signed, release_dir, &d.name, &theirs) {
            Ok(()) => {}
            // Its bytes are not the signed ones: nothing to look into, and that is the answer.
            Err(e @ (release::VerifyError::ArtefactHash { .. } | release::VerifyError::ArtefactSize { .. })) => {
                d.inside
                    .push(format!("the release directory's copy is not the signed artefact ({e}); not looked into"));
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let diff =
            builder::repro::explain(&d.name, &theirs, &ours, tools.as_ref(), &work.path().join("x"), &mut |e| {
                progress.event(e)
            })?;
        d.inside.extend(diff.parts.iter().map(|p| format!("{p} differs")));
        d.inside.extend(diff.files.iter().map(|f| format!("{}: {}", f.path, f.difference)));
        let _ = fs::remove_file(&theirs);
    }
    progress.finish();
    Ok(())
}

fn without_observed(p: &Platform) -> Platform {
    let mut p = p.clone();
    for bank in p.vtpm.values_mut() {
        bank.retain(|_, pcr| pcr.status != PcrStatus::Observed);
    }
    p.vtpm.retain(|_, bank| !bank.is_empty());
    p
}

/// The first field in which two platform entries differ, by JSON pointer.
fn platform_difference(a: &Platform, b: &Platform) -> Option<String> {
    let (a, b) = (serde_json::to_value(a).ok()?, serde_json::to_value(b).ok()?);
    first_difference("", &a, &b)
}

fn first_difference(at: &str, a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(&format!("{at}/{k}"), p, q),
                (Some(_), None) => Some(format!("{at}/{k}: in the release, not predicted by the rebuild")),
                (None, _) => Some(format!("{at}/{k}: predicted by the rebuild, not in the release")),
            })
        }
        _ if a == b => None,
        _ => Some(format!("{at}: {a} (signed) vs {b} (rebuilt)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_field() {
        let a = serde_json::json!({"vtpm": {"sha256": {"4": {"value": "aa"}}}, "x": 1});
        let b = serde_json::json!({"vtpm": {"sha256": {"4": {"value": "bb"}}}, "x": 1});
        assert_eq!(first_difference("", &a, &b).unwrap(), "/vtpm/sha256/4/value: \"aa\" (signed) vs \"bb\" (rebuilt)");
        assert_eq!(first_difference("", &a, &a), None);
        let c = serde_json::json!({"x": 1});
        assert!(first_difference("", &a, &c).unwrap().starts_with("/vtpm: in the release"));
    }
}
