//! `nodeimg build`: one mkosi run, checked, then one output directory per platform.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::debs::{self, DebStore};
use crate::lock::{self, Lock, Scope};
use crate::mkosi::{CacheDirs, CacheLock, Event, Invocation};
use crate::profiles::{ProfileSet, Selection};
use crate::run::{argv, CommandRunExt, INTERRUPTED};
use crate::source::{PackageSource, SourceChoice, SourceRecord};
use crate::tools::ToolsTree;
use crate::verify::{self, VerityFacts};
use crate::{fat, gpt, read_err, sparse, write_err, CheckFailure, Error};

/// Name of the lock file in the profile directory.
pub const LOCK_FILE: &str = "packages.lock";

/// Where the UKI lives in the ESP: the removable-media path OVMF and cloud firmware boot when
/// no boot entry says otherwise (UEFI 2.10 §3.5.1.1).
pub const ESP_UKI_PATH: &str = "EFI/BOOT/BOOTX64.EFI";

/// What to build and where.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The mkosi configuration directory (`mkosi-profiles/`).
    pub profiles_dir: PathBuf,
    pub selection: Selection,
    /// The parent of the output directory (`out/`).
    pub out_dir: PathBuf,
    /// Package cache, incremental cache and tools tree live here between builds.
    pub cache_dir: PathBuf,
    /// The mkosi program.
    pub mkosi: PathBuf,
    /// The version of nodeimg doing the build, recorded in `build.json`.
    pub nodeimg_version: String,
    /// Where the packages come from (`--mirror`, `--snapshot`, `--packages`).
    pub source: SourceChoice,
    /// The OpenPGP keyring (binary, as `Signed-By` takes it) that signs the mirror's or
    /// snapshot's Release files, when it is not Debian's (a private or test mirror).
    pub keyring: Option<PathBuf>,
    /// The firmware images the platforms' launch values were computed for (recorded in
    /// `build.json`; the caller reads and hashes them), sorted by name, each once.
    pub firmware: Vec<FirmwareRecord>,
}

/// A firmware image in `build.json`'s provenance (the release crate's `FirmwareInput`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FirmwareRecord {
    /// As `nodeimg.json` names it ([`crate::profiles::Firmware::name`]).
    pub name: String,
    /// SHA-256 of the image, lowercase hex.
    pub sha256: String,
    /// SHA-256 of the pinned `.deb` it comes from, for a `debian:` one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deb_sha256: Option<String>,
}

/// One artefact in a platform directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artefact {
    pub name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// What was built for one platform.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformReport {
    pub platform: String,
    /// True when the UKI, ESP and disk were derived from another platform's build rather than
    /// built by mkosi.
    pub derived_from: Option<String>,
    pub roothash: String,
    pub cmdline: String,
    pub artefacts: Vec<Artefact>,
}

/// The `manifest.json` of a platform directory.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformManifest<'a> {
    pub image: &'a str,
    pub version: &'a str,
    pub platform: &'a str,
    pub overlays: &'a [String],
    pub derived_from: Option<&'a str>,
    pub roothash: &'a str,
    pub verity: VerityManifest<'a>,
    pub cmdline: &'a str,
    pub artefacts: &'a [Artefact],
}

/// The verity parameters, as recomputed.
#[derive(Debug, Clone, Serialize)]
pub struct VerityManifest<'a> {
    pub hash_algorithm: &'a str,
    pub data_blocks: u64,
    pub data_block_size: u32,
    pub salt: &'a str,
}

/// The finished build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub image: String,
    pub version: String,
    /// The output directory (`OUT/<image>-<version>…`).
    pub dir: PathBuf,
    pub platforms: Vec<PlatformReport>,
}

/// The output directory name: `<image>-<version>`, plus `-<overlay>` for each overlay.
pub fn output_name(set: &ProfileSet, sel: &Selection) -> String {
    let mut name = format!("{}-{}", set.image_id, set.image_version);
    for o in &sel.overlays {
        name.push('-');
        name.push_str(o);
    }
    name
}

/// Called with each platform's name and finished directory once its artefacts are hashed into
/// `manifest.json`: the CLI writes the platform's reference values (measure crate) there, which
/// are not an artefact. An `Err` fails the build.
/// Platforms are finished in parallel: the hook may be called from several threads at once.
pub type PlatformHook<'a> = dyn Fn(&str, &Path) -> Result<(), String> + Sync + 'a;

/// Builds the selected platforms into `OUT/<name>/`, or fails leaving nothing that looks complete.
pub fn build(req: &BuildRequest, on_event: &mut dyn FnMut(Event)) -> Result<BuildReport, Error> {
    build_with_hook(req, on_event, &|_, _| Ok(()))
}

/// [`build`], calling `hook` for every platform directory before its manifest is written.
pub fn build_with_hook(
    req: &BuildRequest,
    on_event: &mut dyn FnMut(Event),
    hook: &PlatformHook<'_>,
) -> Result<BuildReport, Error> {
    let set = ProfileSet::load(&req.profiles_dir)?;
    let sel = &req.selection;
    let lock_path = req.profiles_dir.join(LOCK_FILE);
    let lock_text = crate::read_small_text(&lock_path, crate::MAX_PROFILE_FILE).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NoLock { path: lock_path.clone(), dir: req.profiles_dir.clone() },
        _ => Error::Read { path: lock_path.clone(), error: e },
    })?;
    let lock = Lock::parse(&lock_text, &lock_path)?;
    // Absolute: tools run in a sandbox whose working directory is not ours.
    let out_dir = std::path::absolute(&req.out_dir).map_err(write_err(&req.out_dir))?;
    let ready = preflight(req, &set, &lock, &lock_path, &out_dir, on_event)?;

    let name = output_name(&set, sel);
    let final_dir = out_dir.join(&name);
    let partial = out_dir.join(format!(".{name}.partial"));
    let result = (|| {
        remove_dir_if_exists(&partial)?;
        fs::create_dir_all(&partial).map_err(write_err(&partial))?;
        let report = build_into(req, &set, &lock, &lock_path, &ready, &partial, on_event, hook)?;
        on_event(Event::Phase(format!("renaming into {}", final_dir.display())));
        publish(&partial, &final_dir)?;
        Ok(BuildReport { dir: final_dir.clone(), ..report })
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    match result {
        Err(Error::Interrupted { .. }) => Err(Error::Interrupted { out: final_dir }),
        Err(_) if INTERRUPTED.load(Ordering::SeqCst) => Err(Error::Interrupted { out: final_dir }),
        r => r,
    }
}

fn check_interrupted() -> Result<(), Error> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(Error::Interrupted { out: PathBuf::new() });
    }
    Ok(())
}

/// What the checks before mkosi found out and the build goes on with.
#[derive(Debug)]
struct Ready {
    source: PackageSource,
    keyring: Option<Vec<u8>>,
    mkosi_version: String,
}

/// Everything that can fail before mkosi runs, in the order a user fixes it: the lock against
/// the profiles' package list, the package source, the tools, the directories written
/// ([`crate::preflight`]). Nothing is written.
fn preflight(
    req: &BuildRequest,
    set: &ProfileSet,
    lock: &Lock,
    lock_path: &Path,
    out_dir: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<Ready, Error> {
    let sel = &req.selection;
    crate::preflight::check_lock_covers(set, sel, lock, lock_path)?;
    let source = req.source.resolve(lock.snapshot.as_ref()).map_err(Error::Profile)?;
    let source = absolute_source(source)?;
    if let PackageSource::Archive { dir } = &source {
        on_event(Event::Phase(format!("checking the package archive {}", dir.display())));
        debs::check_archive(dir, lock)?;
    }
    let keyring = read_keyring(req.keyring.as_deref())?;
    let mkosi_version = crate::preflight::check_mkosi(&req.mkosi)?;
    if sel.platforms.len() > 1 {
        crate::preflight::check_tool(
            "bwrap",
            "bubblewrap",
            format!(
                "to derive {} from {}: systemd-repart runs from mkosi's tools tree in bubblewrap",
                sel.platforms[1..].join(", "),
                sel.platforms[0]
            ),
        )?;
    }
    crate::preflight::check_source_tools(&source)?;
    crate::preflight::check_writable_dir(out_dir, "--out")?;
    crate::preflight::check_writable_dir(&req.cache_dir, "--cache-dir")?;
    Ok(Ready { source, keyring, mkosi_version })
}

#[allow(clippy::too_many_arguments)]
fn build_into(
    req: &BuildRequest,
    set: &ProfileSet,
    lock: &Lock,
    lock_path: &Path,
    ready: &Ready,
    partial: &Path,
    on_event: &mut dyn FnMut(Event),
    hook: &PlatformHook<'_>,
) -> Result<BuildReport, Error> {
    let sel = &req.selection;
    let (source, keyring) = (&ready.source, ready.keyring.as_deref());
    let tree_sha256 = crate::tree::tree_sha256(&req.profiles_dir)?;
    let key = cache_key(lock, source, keyring, &crate::tree::cache_relevant_sha256(&req.profiles_dir)?, &sel.overlays);
    let _cache_lock = CacheLock::acquire(&req.cache_dir, on_event)?;
    let cache = CacheDirs::keyed(&req.cache_dir, &key);
    cache.create()?;
    for old in CacheDirs::prune(&req.cache_dir, &key) {
        on_event(Event::Phase(format!("removed an unused cache {}", old.display())));
    }
    let release = base_conf(&req.profiles_dir, "Release")?;
    let trees = SandboxTrees::write(&cache, Some(lock), source, keyring, &release)?;
    let first = &sel.platforms[0];
    let mut profiles = vec![first.clone()];
    profiles.extend(sel.overlays.iter().cloned());

    on_event(Event::Phase(format!("mkosi: building the root and the {first} image from {}", source.describe())));
    Invocation {
        mkosi: &req.mkosi,
        profiles_dir: &req.profiles_dir,
        profiles: &profiles,
        cache: &cache,
        sandbox_tree: Some(&trees.image),
        tools_sandbox_tree: Some(&trees.tools),
        package_dir: source.archive_dir(),
        fresh: false,
    }
    .run(on_event)?;
    check_interrupted()?;

    let base = partial.join(first);
    fs::create_dir_all(&base).map_err(write_err(&base))?;
    collect_mkosi_outputs(&cache.output, &set.image_id, &set.image_version, &base)?;
    let tools_tree = ToolsTree::open(&cache.tools_tree())?;
    extract_esp_extras(&tools_tree, &base)?;

    on_event(Event::Phase("checking the packages of the image, its initrd and the tools tree against the lock".into()));
    let installed = installed_packages(&cache, &base.join("packages.json"))?;
    let changes: Vec<_> =
        Scope::ALL.iter().flat_map(|scope| lock::compare_installed(*scope, lock, &installed[scope])).collect();
    let mut problems: Vec<String> = changes.iter().map(|c| format!("  {c}")).collect();
    // Then the bytes: every locked .deb with its sha256 (kept in the store when it has it).
    let search = deb_search_dirs(&cache, source);
    let search: Vec<&Path> = search.iter().map(PathBuf::as_path).collect();
    match DebStore::under(&req.cache_dir).check_and_keep(lock, &search) {
        Ok(()) => {}
        // A package that moved on has no locked .deb here: the version line says it already.
        Err(Error::DebMismatch { problems: p }) => problems.extend(
            p.lines()
                .filter(|l| !changes.iter().any(|c| l.trim_start().starts_with("missing ") && c.concerns(l)))
                .map(str::to_owned),
        ),
        Err(e) => return Err(e),
    }
    if !problems.is_empty() {
        forget_unlocked_packages(&cache, lock, on_event);
        return Err(Error::LockMismatch {
            path: lock_path.to_path_buf(),
            origin: source.describe(),
            changes: problems.join("\n"),
        });
    }

    on_event(Event::Phase("checking the UKI command line and the verity tree".into()));
    let uki_path = base.join("uki.efi");
    let cmdline = verify::uki_cmdline(&uki_path)?;
    let roothash = verify::roothash_of(&cmdline)
        .ok_or_else(|| CheckFailure::NoRootHash { uki: uki_path.clone(), cmdline: cmdline.clone() })?
        .to_owned();
    let expected = set.command_line(&roothash, first, &sel.overlays);
    if cmdline != expected {
        return Err(CheckFailure::CommandLine { uki: uki_path, actual: cmdline, expected }.into());
    }
    let facts = verify::check_verity(&base.join("root.raw"), &base.join("root-verity.raw"), &roothash)?;
    verify::check_partition_uuids(&base.join("disk.raw"), &roothash)?;
    check_interrupted()?;

    // The base platform's hashing and reference values and each derivation are independent
    // tasks, run on every core (the base's first: it is the longest).
    let deriver = match sel.platforms.len() {
        1 => None,
        _ => Some(Deriver::new(&base, &cache.tools_tree(), &req.profiles_dir, partial)?),
    };
    let digests = DigestCache::default();
    let platforms = run_parallel(&sel.platforms, on_event, |platform, emit| {
        check_interrupted()?;
        let Some(deriver) = deriver.as_ref().filter(|_| platform != first) else {
            return finish_platform(set, sel, first, None, &base, &roothash, &cmdline, &facts, &digests, emit, hook);
        };
        emit(Event::Phase(format!("deriving {platform} from {first}")));
        let dir = partial.join(platform);
        let cmdline = set.command_line(&roothash, platform, &sel.overlays);
        deriver.derive(&dir, &cmdline, emit)?;
        extract_esp_extras(&tools_tree, &dir)?;
        verify::check_partition_uuids(&dir.join("disk.raw"), &roothash)?;
        finish_platform(set, sel, platform, Some(first), &dir, &roothash, &cmdline, &facts, &digests, emit, hook)
    })?;
    if let Some(d) = deriver {
        d.finish()?;
    }
    write_build_info(req, set, lock_path, &tree_sha256, source, &ready.mkosi_version, partial)?;
    Ok(BuildReport {
        image: set.image_id.clone(),
        version: set.image_version.clone(),
        dir: partial.to_path_buf(),
        platforms,
    })
}

#[allow(clippy::too_many_arguments)]
fn finish_platform(
    set: &ProfileSet,
    sel: &Selection,
    platform: &str,
    derived_from: Option<&str>,
    dir: &Path,
    roothash: &str,
    cmdline: &str,
    facts: &VerityFacts,
    digests: &DigestCache,
    on_event: &dyn Fn(Event),
    hook: &PlatformHook<'_>,
) -> Result<PlatformReport, Error> {
    on_event(Event::Phase(format!("hashing the {platform} artefacts")));
    let artefacts = hash_dir_cached(dir, digests)?;
    let manifest = PlatformManifest {
        image: &set.image_id,
        version: &set.image_version,
        platform,
        overlays: &sel.overlays,
        derived_from,
        roothash,
        verity: VerityManifest {
            hash_algorithm: &facts.hash_algorithm,
            data_blocks: facts.data_blocks,
            data_block_size: facts.data_block_size,
            salt: &facts.salt,
        },
        cmdline,
        artefacts: &artefacts,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    json.push(b'\n');
    let path = dir.join("manifest.json");
    fs::write(&path, json).map_err(write_err(&path))?;
    // After the manifest: the reference values describe the artefacts, they are not one.
    hook(platform, dir).map_err(|reason| Error::Hook { platform: platform.to_owned(), reason })?;
    Ok(PlatformReport {
        platform: platform.to_owned(),
        derived_from: derived_from.map(str::to_owned),
        roothash: roothash.to_owned(),
        cmdline: cmdline.to_owned(),
        artefacts,
    })
}

/// `build.json`: the image and the build's provenance, as `nodeimg release` reads it (the
/// `release` crate's `BuildInfo`, documented in `release/src/input.rs`).
#[derive(Serialize)]
struct BuildInfo<'a> {
    image: BuildImage<'a>,
    provenance: BuildProvenance<'a>,
}

#[derive(Serialize)]
struct BuildImage<'a> {
    name: &'a str,
    version: &'a str,
    source_date_epoch: u64,
}

#[derive(Serialize)]
struct BuildProvenance<'a> {
    nodeimg_version: &'a str,
    mkosi_version: String,
    package_lock_sha256: String,
    /// The profile tree's content hash ([`crate::tree`]).
    profile_tree_sha256: &'a str,
    /// Where the packages came from.
    package_source: SourceRecord,
    /// The git commit of the profiles, when they are in a git checkout (or
    /// `$NODEIMG_SOURCE_COMMIT` says).
    #[serde(skip_serializing_if = "Option::is_none")]
    source_commit: Option<String>,
    /// The firmware the launch values were computed for.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    firmware: &'a [FirmwareRecord],
}

fn write_build_info(
    req: &BuildRequest,
    set: &ProfileSet,
    lock_path: &Path,
    tree_sha256: &str,
    source: &PackageSource,
    mkosi_version: &str,
    partial: &Path,
) -> Result<(), Error> {
    let lock = crate::read_small(lock_path, crate::MAX_PROFILE_FILE).map_err(read_err(lock_path))?;
    let info = BuildInfo {
        image: BuildImage {
            name: &set.image_id,
            version: &set.image_version,
            source_date_epoch: source_date_epoch(&req.profiles_dir)?,
        },
        provenance: BuildProvenance {
            nodeimg_version: &req.nodeimg_version,
            mkosi_version: mkosi_version.to_owned(),
            package_lock_sha256: hex::encode(Sha256::digest(&lock)),
            profile_tree_sha256: tree_sha256,
            package_source: source.record(),
            source_commit: crate::tools::source_commit(&req.profiles_dir)?,
            firmware: &req.firmware,
        },
    };
    let mut json = serde_json::to_vec_pretty(&info).expect("build info serialises");
    json.push(b'\n');
    let path = partial.join("build.json");
    fs::write(&path, json).map_err(write_err(&path))
}

/// `SourceDateEpoch=` of the base profile (mtools stamps the derived ESP with it).
fn source_date_epoch(profiles_dir: &Path) -> Result<u64, Error> {
    let v = base_conf(profiles_dir, "SourceDateEpoch")?;
    v.parse().map_err(|_| {
        Error::Profile(format!("{}: SourceDateEpoch={v:?} is not a number", profiles_dir.join("mkosi.conf").display()))
    })
}

/// The last value of `key` in the base profile (`mkosi.conf`, then `mkosi.conf.d/`).
fn base_conf(profiles_dir: &Path, key: &str) -> Result<String, Error> {
    let path = profiles_dir.join("mkosi.conf");
    crate::profiles::base_settings(profiles_dir)?
        .iter()
        .rev()
        .find(|(_, k, _)| k == key)
        .map(|(_, _, v)| v.clone())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Profile(format!("{}: no {key}=", path.display())))
}

/// A package archive's directory made absolute (mkosi resolves paths from the profiles).
fn absolute_source(source: PackageSource) -> Result<PackageSource, Error> {
    Ok(match source {
        PackageSource::Archive { dir } => {
            if !dir.is_dir() {
                return Err(Error::PackageArchive {
                    dir,
                    problems: "  not a directory (a release's packages/ directory, or `--packages DIR` of .deb files)"
                        .into(),
                });
            }
            PackageSource::Archive { dir: std::path::absolute(&dir).map_err(read_err(&dir))? }
        }
        s => s,
    })
}

/// The largest keyring nodeimg copies into a build (Debian's own is about 100 KiB).
const MAX_KEYRING: u64 = 1 << 20;

fn read_keyring(path: Option<&Path>) -> Result<Option<Vec<u8>>, Error> {
    let Some(path) = path else { return Ok(None) };
    let f = File::open(path).map_err(read_err(path))?;
    let mut bytes = Vec::new();
    f.take(MAX_KEYRING + 1).read_to_end(&mut bytes).map_err(read_err(path))?;
    if bytes.len() as u64 > MAX_KEYRING || bytes.is_empty() {
        return Err(Error::Profile(format!("{}: not a keyring (empty, or over 1 MiB)", path.display())));
    }
    Ok(Some(bytes))
}

/// The key of the caches a build may reuse: everything that decides which packages go into the
/// image, its initrd and the tools tree, and how mkosi assembles them up to its cache point (the
/// profile tree without what is applied after it: [`crate::tree::cache_relevant_sha256`]). A package archive's path
/// is not part of it: its content is exactly the lock's `.deb`s (checked before mkosi runs), so
/// two archives of one lock are one source.
fn cache_key(
    lock: &Lock,
    source: &PackageSource,
    keyring: Option<&[u8]>,
    cache_tree_sha256: &str,
    overlays: &[String],
) -> String {
    let mut h = Sha256::new();
    for part in [
        "nodeimg-cache-v1".as_bytes(),
        lock.to_text().as_bytes(),
        serde_json::to_string(&source.record()).expect("serialises").as_bytes(),
        &Sha256::digest(keyring.unwrap_or_default()),
        cache_tree_sha256.as_bytes(),
        overlays.join(",").as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex::encode(&h.finalize()[..12])
}

/// The sandbox trees nodeimg hands mkosi: one for the image and its initrd, one for the tools
/// tree, each with the apt sources of the build's [`PackageSource`] (as
/// `etc/apt/sources.list.d/mkosi.sources`, the one name that makes mkosi 25 leave out its own),
/// the lock's pins for that tree, and the mirror's keyring when it is not Debian's.
#[derive(Debug)]
struct SandboxTrees {
    image: PathBuf,
    tools: PathBuf,
}

/// Where a mirror keyring given with `--keyring` is inside the sandbox.
const KEYRING_IN_SANDBOX: &str = "etc/apt/keyrings/nodeimg-mirror.gpg";
/// Debian's archive keyring, from the tools tree (or the host, for the tools tree's own build).
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

impl SandboxTrees {
    fn write(
        cache: &CacheDirs,
        lock: Option<&Lock>,
        source: &PackageSource,
        keyring: Option<&[u8]>,
        release: &str,
    ) -> Result<Self, Error> {
        let signed_by = if keyring.is_some() { format!("/{KEYRING_IN_SANDBOX}") } else { DEBIAN_KEYRING.to_owned() };
        let sources = source.apt_sources(release, &signed_by);
        let write_tree = |name: &str, scopes: &[Scope]| -> Result<PathBuf, Error> {
            let tree = cache.sandbox.join(name);
            let _ = fs::remove_dir_all(&tree);
            let mut files = vec![("etc/apt/sources.list.d/mkosi.sources", sources.clone().into_bytes())];
            if let Some(lock) = lock {
                files.push(("etc/apt/preferences.d/nodeimg-lock.pref", lock.apt_preferences(scopes).into_bytes()));
            }
            if let Some(k) = keyring {
                files.push((KEYRING_IN_SANDBOX, k.to_vec()));
            }
            for (rel, bytes) in files {
                let path = tree.join(rel);
                let dir = path.parent().expect("has a parent");
                fs::create_dir_all(dir).map_err(write_err(dir))?;
                fs::write(&path, bytes).map_err(write_err(&path))?;
            }
            Ok(tree)
        };
        Ok(Self {
            image: write_tree("image", &[Scope::Image, Scope::Initrd])?,
            tools: write_tree("tools", &[Scope::Tools])?,
        })
    }
}

/// After a build whose packages are not the lock's: drops what mkosi cached from them (this key's
/// image, initrd and tools tree: the next build with this key starts cold and is checked again),
/// then evicts the downloads that carry a locked name with other bytes
/// ([`debs::evict_altered`]), saying what it removed. In that order: evicted downloads beside a
/// cache still holding what was built from them would let the next build with this key pass the
/// check on the store's genuine copies, so when the cache cannot be removed the downloads stay
/// (and the next build fails the same check). The build fails either way.
fn forget_unlocked_packages(cache: &CacheDirs, lock: &Lock, on_event: &mut dyn FnMut(Event)) {
    let keyed = cache.incremental.parent().unwrap_or(&cache.incremental).to_path_buf();
    if let Err(e) = cache.discard() {
        on_event(Event::Phase(format!(
            "could not remove the cache built from these packages ({e}): it and the downloads stay"
        )));
        return;
    }
    on_event(Event::Phase(format!("removed the cache built from these packages ({})", keyed.display())));
    match debs::evict_altered(lock, &cache.apt_archives()) {
        Ok(evicted) if evicted.is_empty() => {}
        Ok(evicted) => on_event(Event::Phase(format!(
            "removed from the download cache {}: {}",
            cache.apt_archives().display(),
            evicted.join(", ")
        ))),
        Err(e) => on_event(Event::Phase(format!("could not clean the download cache: {e}"))),
    }
}

/// Where the `.deb`s a build installed are: the package archive it was given, then apt's
/// download cache.
fn deb_search_dirs(cache: &CacheDirs, source: &PackageSource) -> Vec<PathBuf> {
    source.archive_dir().map(Path::to_path_buf).into_iter().chain([cache.apt_archives()]).collect()
}

/// What mkosi installed, per scope: the image (its manifest), the initrd and the tools tree (the
/// dpkg status of their cached trees).
fn installed_packages(
    cache: &CacheDirs,
    manifest: &Path,
) -> Result<std::collections::BTreeMap<Scope, lock::Installed>, Error> {
    let image = lock::from_mkosi_manifest(&fs::read(manifest).map_err(read_err(manifest))?, manifest)?;
    let tools = cache.tools_tree().join("var/lib/dpkg/status");
    let mut out = std::collections::BTreeMap::new();
    out.insert(Scope::Image, image);
    // mkosi builds a default initrd unless the profiles bring their own (`Initrds=`); then
    // there is none, and the lock has no initrd packages.
    out.insert(Scope::Initrd, lock::Installed::new());
    let mut trees = vec![(Scope::Tools, tools)];
    if let Some(initrd) = cache.initrd_status() {
        trees.push((Scope::Initrd, initrd));
    }
    for (scope, path) in trees {
        let text = fs::read_to_string(&path).map_err(read_err(&path))?;
        let installed = lock::from_dpkg_status(&text);
        if installed.is_empty() {
            return Err(Error::Installed { path, reason: "no installed package in this dpkg status".into() });
        }
        out.insert(scope, installed);
    }
    Ok(out)
}

/// mkosi's output files for `<image>_<version>` and the names they get in a platform directory.
pub const MKOSI_OUTPUTS: &[(&str, &str, &str)] = &[
    // (what, suffix after "<image>_<version>", name in the platform directory)
    ("disk image", ".raw", "disk.raw"),
    ("UKI", ".efi", "uki.efi"),
    ("ESP partition", ".esp.raw", "esp.raw"),
    ("root partition", ".root.raw", "root.raw"),
    ("root verity partition", ".root-verity.raw", "root-verity.raw"),
    ("package manifest", ".manifest", "packages.json"),
];

/// Moves mkosi's outputs from its output directory into `dest` under their platform names and
/// removes the rest (split kernel and initrd), leaving the tools tree.
fn collect_mkosi_outputs(mkosi_out: &Path, image: &str, version: &str, dest: &Path) -> Result<(), Error> {
    let stem = format!("{image}_{version}");
    for (what, suffix, name) in MKOSI_OUTPUTS {
        let src = mkosi_out.join(format!("{stem}{suffix}"));
        if !src.is_file() {
            return Err(Error::MissingArtefact {
                what,
                dir: mkosi_out.to_path_buf(),
                pattern: format!("{stem}{suffix}"),
            });
        }
        move_file(&src, &dest.join(name))?;
    }
    for entry in fs::read_dir(mkosi_out).map_err(read_err(mkosi_out))? {
        let entry = entry.map_err(read_err(mkosi_out))?;
        if entry.file_name().to_string_lossy().starts_with(&stem) {
            let p = entry.path();
            let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        }
    }
    Ok(())
}

fn move_file(src: &Path, dest: &Path) -> Result<(), Error> {
    if fs::rename(src, dest).is_ok() {
        return Ok(());
    }
    fs::copy(src, dest).map_err(write_err(dest))?;
    fs::remove_file(src).map_err(write_err(src))
}

/// Runs `task` for every item, on as many threads as there are cores (at most one per item),
/// passing their events to `on_event` on this thread. The results are in the order of `items`;
/// after a failure no further task starts, and the first error in that order is returned.
fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    on_event: &mut dyn FnMut(Event),
    task: impl Fn(&T, &dyn Fn(Event)) -> Result<R, Error> + Sync,
) -> Result<Vec<R>, Error> {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, items.len().max(1));
    let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    let results: Vec<Mutex<Option<Result<R, Error>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, failed, results, task) = (&next, &failed, &results, &task);
            s.spawn(move || {
                let emit = |e: Event| {
                    let _ = tx.send(e);
                };
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let r = task(&items[i], &emit);
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }
            });
        }
        drop(tx);
        for e in rx {
            on_event(e);
        }
    });
    let results: Vec<_> = results.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).collect();
    if results.iter().any(|r| !matches!(r, Some(Ok(_)))) {
        let first_err = results.into_iter().flatten().find_map(Result::err);
        return Err(first_err.unwrap_or(Error::Interrupted { out: PathBuf::new() }));
    }
    Ok(results.into_iter().flatten().map(|r| r.unwrap_or_else(|_| unreachable!())).collect())
}

/// The sha256 of files already hashed in this build, by inode: a derived platform's root,
/// verity and package manifest are hard links to the base's, hashed once. A file being hashed
/// by one thread is waited for by another, not hashed twice.
#[derive(Debug, Default)]
pub struct DigestCache(Mutex<HashMap<(u64, u64), Arc<DigestSlot>>>);

/// One file's size and sha256, once hashed.
type DigestSlot = Mutex<Option<(u64, String)>>;

impl DigestCache {
    fn hash(&self, path: &Path) -> Result<(u64, String), Error> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path).map_err(read_err(path))?;
        let entry = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((m.dev(), m.ino())).or_default().clone()
        };
        let mut slot = entry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = hash_file(path)?;
        *slot = Some(d.clone());
        Ok(d)
    }
}

/// Derives platform directories from the base one: the UKI with another command line
/// (uki::set_cmdline), the ESP around that UKI, the disk image with that ESP; root and verity
/// partitions are hard links to the base's bytes.
///
/// The ESP and the disk are the base's bytes with the UKI's data clusters overwritten (see
/// [`crate::fat`] for why that is what mkosi builds) when the derived UKI has the base UKI's
/// size and the base ESP holds the base UKI exactly there; otherwise the ESP is rebuilt with
/// systemd-repart from the tools tree ([`EspMaker`], checked first on the base ESP).
struct Deriver<'a> {
    base: &'a Path,
    uki: Vec<u8>,
    nul_terminated: bool,
    /// Where the base UKI's bytes are in `esp.raw`, and where the ESP starts in `disk.raw`;
    /// found (and checked) by the first derivation, in parallel with the base's hashing.
    patch: std::sync::OnceLock<Option<(fat::FileExtents, u64)>>,
    tools_tree: PathBuf,
    profiles_dir: &'a Path,
    work: PathBuf,
    /// Whether the systemd-repart way was checked on the base ESP (the first time it is needed).
    repart_checked: Mutex<bool>,
}

impl<'a> Deriver<'a> {
    fn new(base: &'a Path, tools_tree: &Path, profiles_dir: &'a Path, partial: &Path) -> Result<Self, Error> {
        let uki_path = base.join("uki.efi");
        let uki = fs::read(&uki_path).map_err(read_err(&uki_path))?;
        let nul_terminated = verify::cmdline_is_nul_terminated(&uki, &uki_path)?;
        Ok(Self {
            base,
            uki,
            nul_terminated,
            patch: std::sync::OnceLock::new(),
            tools_tree: tools_tree.to_path_buf(),
            profiles_dir,
            work: partial.join(".esp-work"),
            repart_checked: Mutex::new(false),
        })
    }

    fn derive(&self, dir: &Path, cmdline: &str, on_event: &dyn Fn(Event)) -> Result<(), Error> {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
        let uki_path = dir.join("uki.efi");
        // Keep the base UKI's convention: ukify (through mkosi) NUL-terminates `.cmdline`.
        let mut text = cmdline.as_bytes().to_vec();
        if self.nul_terminated {
            text.push(0);
        }
        let uki = uki::set_cmdline(&self.uki, &text)
            .map_err(|error| Error::UkiEdit { path: self.base.join("uki.efi"), error })?;
        fs::write(&uki_path, &uki).map_err(write_err(&uki_path))?;
        let got = verify::cmdline_of(&uki, &uki_path)?;
        if got != cmdline {
            return Err(CheckFailure::CommandLine { uki: uki_path, actual: got, expected: cmdline.to_owned() }.into());
        }
        let (esp, disk) = (dir.join("esp.raw"), dir.join("disk.raw"));
        let patch = match self.patch.get() {
            Some(p) => p,
            None => {
                let found = match esp_patch(self.base, &self.uki)? {
                    Ok(p) => Some(p),
                    Err(reason) => {
                        on_event(Event::Phase(format!("derived ESPs are rebuilt with systemd-repart: {reason}")));
                        None
                    }
                };
                self.patch.get_or_init(|| found)
            }
        };
        match patch {
            Some((extents, esp_offset)) if uki.len() == self.uki.len() => {
                copy_sparse(&self.base.join("esp.raw"), &esp)?;
                write_extents(&esp, 0, extents, &uki)?;
                copy_sparse(&self.base.join("disk.raw"), &disk)?;
                write_extents(&disk, *esp_offset, extents, &uki)?;
            }
            _ => self.derive_with_repart(&uki, &esp, &disk, on_event)?,
        }
        for name in ["root.raw", "root-verity.raw", "packages.json"] {
            let (src, dest) = (self.base.join(name), dir.join(name));
            if fs::hard_link(&src, &dest).is_err() {
                fs::copy(&src, &dest).map_err(write_err(&dest))?;
            }
        }
        Ok(())
    }

    fn derive_with_repart(&self, uki: &[u8], esp: &Path, disk: &Path, on_event: &dyn Fn(Event)) -> Result<(), Error> {
        // One systemd-repart at a time: they share the work directory.
        let mut checked = self.repart_checked.lock().unwrap_or_else(|p| p.into_inner());
        let tools = ToolsTree::open(&self.tools_tree)?.with_source_date_epoch(source_date_epoch(self.profiles_dir)?);
        let base_esp = self.base.join("esp.raw");
        let maker = EspMaker::new(&tools, self.profiles_dir, &base_esp, &self.work)?;
        // First rebuild the base platform's ESP the same way: it must come out as mkosi's,
        // byte for byte, or the derived ESPs would not be what mkosi builds either.
        if !*checked {
            on_event(Event::Phase("checking that the base ESP can be rebuilt exactly".into()));
            let again = self.work.join("base-esp.raw");
            maker.make(&self.uki, &again, on_event)?;
            let (same, _) = (hash_file(&again)? == hash_file(&base_esp)?, fs::remove_file(&again));
            if !same {
                return Err(Error::Uki {
                    path: base_esp,
                    reason: "rebuilding this ESP with systemd-repart from the tools tree does not give mkosi's bytes; \
                         derived platforms would differ from native mkosi builds"
                        .into(),
                });
            }
            *checked = true;
        }
        maker.make(uki, esp, on_event)?;
        copy_sparse(&self.base.join("disk.raw"), disk)?;
        let parts = gpt::read(disk)?;
        let esp_part = parts
            .iter()
            .find(|p| p.type_guid == gpt::TYPE_ESP)
            .ok_or_else(|| Error::Gpt { path: disk.to_path_buf(), reason: "no ESP partition".into() })?;
        let esp_bytes = fs::read(esp).map_err(read_err(esp))?;
        if esp_bytes.len() as u64 != esp_part.size {
            return Err(Error::Gpt {
                path: disk.to_path_buf(),
                reason: format!("ESP partition is {} bytes but esp.raw is {}", esp_part.size, esp_bytes.len()),
            });
        }
        let f = fs::OpenOptions::new().write(true).open(disk).map_err(write_err(disk))?;
        f.write_all_at(&esp_bytes, esp_part.offset).map_err(write_err(disk))
    }

    /// Removes the work directory of the systemd-repart way.
    fn finish(self) -> Result<(), Error> {
        remove_dir_if_exists(&self.work)
    }
}

/// Where the base UKI is in the base ESP and where that ESP is in the base disk, when deriving
/// by overwriting those bytes is exact: the ESP's `EFI/BOOT/BOOTX64.EFI` holds exactly the base
/// UKI at the extents found, and the disk's ESP partition holds exactly `esp.raw`. The inner
/// error says why not.
fn esp_patch(base: &Path, uki: &[u8]) -> Result<Result<(fat::FileExtents, u64), String>, Error> {
    let (esp_path, disk_path) = (base.join("esp.raw"), base.join("disk.raw"));
    let esp = File::open(&esp_path).map_err(read_err(&esp_path))?;
    let extents = match fat::file_extents(&esp, ESP_UKI_PATH) {
        Ok(x) => x,
        Err(e) => return Ok(Err(format!("{}: {e}", esp_path.display()))),
    };
    if extents.size != uki.len() as u64 || read_extents(&esp, 0, &extents).map_err(read_err(&esp_path))? != uki {
        return Ok(Err(format!("{ESP_UKI_PATH} in {} is not uki.efi", esp_path.display())));
    }
    let esp_part = gpt::read(&disk_path)?
        .into_iter()
        .find(|p| p.type_guid == gpt::TYPE_ESP)
        .ok_or_else(|| Error::Gpt { path: disk_path.clone(), reason: "no ESP partition".into() })?;
    let disk = File::open(&disk_path).map_err(read_err(&disk_path))?;
    let esp_len = esp.metadata().map_err(read_err(&esp_path))?.len();
    if esp_part.size != esp_len
        || !sparse::same_bytes(&esp, 0, &disk, esp_part.offset, esp_len).map_err(read_err(&disk_path))?
    {
        return Ok(Err(format!("the ESP partition of {} is not esp.raw", disk_path.display())));
    }
    Ok(Ok((extents, esp_part.offset)))
}

fn read_extents(f: &File, base: u64, extents: &fat::FileExtents) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; extents.size as usize];
    let mut at = 0usize;
    for &(off, len) in &extents.extents {
        f.read_exact_at(&mut out[at..at + len as usize], base + off)?;
        at += len as usize;
    }
    Ok(out)
}

/// Writes `bytes` over the extents (shifted by `base`) of the file at `path`.
fn write_extents(path: &Path, base: u64, extents: &fat::FileExtents, bytes: &[u8]) -> Result<(), Error> {
    let f = fs::OpenOptions::new().write(true).open(path).map_err(write_err(path))?;
    let mut at = 0usize;
    for &(off, len) in &extents.extents {
        f.write_all_at(&bytes[at..at + len as usize], base + off).map_err(write_err(path))?;
        at += len as usize;
    }
    Ok(())
}

/// Rebuilds an ESP around a UKI exactly as mkosi does: the base ESP's files (mkosi's `/efi`) with
/// `EFI/BOOT/BOOTX64.EFI` replaced, all stamped with `SourceDateEpoch=`, written by
/// systemd-repart from the tools tree with the profile's own ESP definition, `Seed=` and
/// `SectorSize=` — the same program, inputs and seed mkosi's repart run had, so the same bytes
/// (checked on the base platform before any derivation).
#[derive(Debug)]
struct EspMaker<'a> {
    tools: &'a ToolsTree,
    work: PathBuf,
    seed: String,
    sector_size: String,
    epoch: u64,
}

impl<'a> EspMaker<'a> {
    fn new(tools: &'a ToolsTree, profiles_dir: &Path, base_esp: &Path, work: &Path) -> Result<Self, Error> {
        let conf_path = profiles_dir.join("mkosi.conf");
        let conf = crate::profiles::parse_ini(
            &crate::read_small_text(&conf_path, crate::MAX_PROFILE_FILE).map_err(read_err(&conf_path))?,
        );
        let get = |key: &str| conf.iter().rev().find(|(_, k, _)| k == key).map(|(_, _, v)| v.clone());
        let seed = get("Seed").ok_or_else(|| Error::Profile(format!("{}: no Seed=", conf_path.display())))?;
        let sector_size = get("SectorSize").unwrap_or_else(|| "512".into());
        let epoch = source_date_epoch(profiles_dir)?;
        // The ESP definition: the one file in mkosi.repart/ with Type=esp.
        let defs = profiles_dir.join("mkosi.repart");
        let mut esp_def = None;
        for e in fs::read_dir(&defs).map_err(read_err(&defs))?.flatten() {
            let text = crate::read_small_text(&e.path(), crate::MAX_PROFILE_FILE).unwrap_or_default();
            if crate::profiles::parse_ini(&text).iter().any(|(s, k, v)| s == "Partition" && k == "Type" && v == "esp") {
                esp_def = Some(e.path());
            }
        }
        let esp_def = esp_def
            .ok_or_else(|| Error::Profile(format!("{}: no partition definition with Type=esp", defs.display())))?;
        let work = work.to_path_buf();
        let _ = fs::remove_dir_all(&work);
        for d in ["defs", "base/efi"] {
            fs::create_dir_all(work.join(d)).map_err(write_err(work.join(d)))?;
        }
        let def_copy = work.join("defs").join(esp_def.file_name().unwrap_or_default());
        fs::copy(&esp_def, &def_copy).map_err(write_err(&def_copy))?;
        // The base ESP's files, once.
        let mut cmd = tools.command("mcopy", &[base_esp.parent().unwrap_or(Path::new("/")), &work]);
        cmd.arg("-s").arg("-n").arg("-m").arg("-i").arg(base_esp).arg("::/*").arg(work.join("base/efi"));
        cmd.run_capture()?;
        Ok(Self { tools, work, seed, sector_size, epoch })
    }

    /// Writes to `dest` the ESP with `uki` as EFI/BOOT/BOOTX64.EFI.
    fn make(&self, uki: &[u8], dest: &Path, on_event: &dyn Fn(Event)) -> Result<(), Error> {
        let root = self.work.join("root");
        let _ = fs::remove_dir_all(&root);
        copy_tree(&self.work.join("base"), &root)?;
        let target = root.join("efi").join(ESP_UKI_PATH);
        fs::write(&target, uki).map_err(write_err(&target))?;
        stamp_tree(&root, std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.epoch))?;
        let disk = self.work.join("esp-disk.raw");
        let _ = fs::remove_file(&disk);
        let mut cmd = self.tools.command("systemd-repart", &[&self.work]);
        cmd.args(["--empty=create", "--size=auto", "--dry-run=no", "--offline=yes", "--split=yes", "--no-pager"])
            .arg(format!("--sector-size={}", self.sector_size))
            .arg(format!("--seed={}", self.seed))
            .arg(format!("--definitions={}", self.work.join("defs").display()))
            .arg(format!("--root={}", root.display()))
            .arg(&disk);
        on_event(Event::Command(argv(&cmd)));
        cmd.run_capture()?;
        let split = self.work.join("esp-disk.esp.raw");
        move_file(&split, dest)?;
        let _ = fs::remove_file(&disk);
        let _ = fs::remove_dir_all(&root);
        Ok(())
    }
}

/// The name prefix of the platform directory's copies of the files beside the UKI on the ESP
/// (`EFI/BOOT/BOOTX64.EFI.extra.d/NAME` becomes `extra.d-NAME`): artefacts, hashed, released and
/// compared by a rebuild like the others, and what the reference values are computed from.
pub const EXTRA_ARTEFACT_PREFIX: &str = "extra.d-";

/// Copies the regular files of `esp.raw`'s `EFI/BOOT/BOOTX64.EFI.extra.d/` (system extensions,
/// credentials, add-ons systemd-stub loads and measures) into `dir` as `extra.d-NAME`, read with
/// mtools from the tools tree. Nothing when the ESP has no such directory.
fn extract_esp_extras(tools: &ToolsTree, dir: &Path) -> Result<(), Error> {
    let esp = dir.join("esp.raw");
    let extra_dir = format!("::/{}", crate::project::ESP_EXTRA_DIR);
    let parent = &extra_dir[..extra_dir.rfind('/').expect("a parent directory")];
    let list = |path: &str| -> Result<Vec<String>, Error> {
        let mut cmd = tools.command("mdir", &[dir]);
        cmd.arg("-b").arg("-i").arg(&esp).arg(path);
        Ok(String::from_utf8_lossy(&cmd.run_capture()?).lines().map(str::to_owned).collect())
    };
    if !list(parent)?.iter().any(|l| l.trim_end_matches('/') == extra_dir) {
        return Ok(());
    }
    for line in list(&extra_dir)? {
        let Some(name) = line.strip_prefix(&format!("{extra_dir}/")) else { continue };
        if name.is_empty() || name.ends_with('/') {
            continue; // a directory: systemd-stub skips those
        }
        if name.contains(['*', '?', '[', ']', '\\']) {
            return Err(Error::Profile(format!(
                "the ESP's {} holds {name:?}, a name mtools would take as a pattern; rename it",
                crate::project::ESP_EXTRA_DIR
            )));
        }
        let dest = dir.join(format!("{EXTRA_ARTEFACT_PREFIX}{name}"));
        let mut cmd = tools.command("mcopy", &[dir]);
        cmd.arg("-n").arg("-i").arg(&esp).arg(format!("{extra_dir}/{name}")).arg(&dest);
        cmd.run_capture()?;
    }
    Ok(())
}

fn copy_tree(src: &Path, dest: &Path) -> Result<(), Error> {
    fs::create_dir_all(dest).map_err(write_err(dest))?;
    for e in fs::read_dir(src).map_err(read_err(src))? {
        let e = e.map_err(read_err(src))?;
        let (s, d) = (e.path(), dest.join(e.file_name()));
        if e.file_type().map_err(read_err(&s))?.is_dir() {
            copy_tree(&s, &d)?;
        } else {
            fs::copy(&s, &d).map_err(write_err(&d))?;
        }
    }
    Ok(())
}

/// Sets the modification time of every file and directory under `root` (mkosi normalises the
/// ESP's source tree to `SourceDateEpoch=` the same way).
fn stamp_tree(root: &Path, t: std::time::SystemTime) -> Result<(), Error> {
    if root.is_dir() {
        for e in fs::read_dir(root).map_err(read_err(root))? {
            stamp_tree(&e.map_err(read_err(root))?.path(), t)?;
        }
    }
    File::open(root).and_then(|f| f.set_modified(t)).map_err(write_err(root))
}

/// Copies a (sparse) disk image, keeping its holes: only the data extents (`SEEK_DATA` /
/// `SEEK_HOLE`) are copied, in the kernel (`copy_file_range`, a reflink where the filesystem
/// shares blocks).
fn copy_sparse(src: &Path, dest: &Path) -> Result<(), Error> {
    use std::os::fd::AsRawFd;
    let input = File::open(src).map_err(read_err(src))?;
    let out = File::create(dest).map_err(write_err(dest))?;
    let len = input.metadata().map_err(read_err(src))?.len();
    out.set_len(len).map_err(write_err(dest))?;
    let mut pos = 0u64;
    while let Some((start, end)) = sparse::next_data(&input, pos, len).map_err(read_err(src))? {
        let (mut off_in, mut off_out) = (start as libc::loff_t, start as libc::loff_t);
        while (off_in as u64) < end {
            let n = (end - off_in as u64).min(1 << 30) as usize;
            // SAFETY: both descriptors are open files owned here; the offsets are locals.
            #[allow(unsafe_code)]
            let r =
                unsafe { libc::copy_file_range(input.as_raw_fd(), &mut off_in, out.as_raw_fd(), &mut off_out, n, 0) };
            if r < 0 {
                return Err(write_err(dest)(io::Error::last_os_error()));
            }
            if r == 0 {
                return Err(read_err(src)(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while copied")));
            }
        }
        pos = end;
    }
    Ok(())
}

/// Size and sha256 of a file, streamed; its holes are hashed as the zeros they are, not read
/// ([`sparse`]).
pub fn hash_file(path: &Path) -> Result<(u64, String), Error> {
    let f = crate::open_regular(path).map_err(read_err(path))?;
    let size = f.metadata().map_err(read_err(path))?.len();
    let mut h = Sha256::new();
    sparse::for_each_chunk(&f, size, |chunk| h.update(chunk)).map_err(read_err(path))?;
    Ok((size, hex::encode(h.finalize())))
}

/// Every regular file in `dir` except `manifest.json`, sorted by name, with size and sha256.
pub fn hash_dir(dir: &Path) -> Result<Vec<Artefact>, Error> {
    hash_dir_cached(dir, &DigestCache::default())
}

/// [`hash_dir`], taking the sha256 of a file hashed before from `cache`.
pub fn hash_dir_cached(dir: &Path, cache: &DigestCache) -> Result<Vec<Artefact>, Error> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(read_err(dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.json")
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let (size, sha256) = cache.hash(&dir.join(&name))?;
            Ok(Artefact { name, size, sha256 })
        })
        .collect()
}

fn remove_dir_if_exists(dir: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(write_err(dir)(e)),
        _ => Ok(()),
    }
}

/// Renames the finished `partial` directory to `dest`, replacing an older build there: by
/// swapping the two atomically (`renameat2(RENAME_EXCHANGE)`), so there is no moment with
/// neither the old nor the new directory at `dest`; then the old one (now at `partial`) is
/// removed. The parent directory is synced so the swap survives a crash.
fn publish(partial: &Path, dest: &Path) -> Result<(), Error> {
    File::open(partial).and_then(|d| d.sync_all()).map_err(write_err(partial))?;
    let parent = dest.parent().unwrap_or(Path::new("."));
    match fs::symlink_metadata(dest) {
        Ok(_) => {
            rename2(partial, dest, libc::RENAME_EXCHANGE).map_err(write_err(dest))?;
            remove_dir_if_exists(partial)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(partial, dest).map_err(write_err(dest))?,
        Err(e) => return Err(write_err(dest)(e)),
    }
    File::open(parent).and_then(|d| d.sync_all()).map_err(write_err(parent))
}

/// `renameat2(2)` of `from` to `to` with `flags`: `libc::RENAME_EXCHANGE` swaps the two entries
/// atomically, `libc::RENAME_NOREPLACE` refuses an existing `to` (even an empty directory)
/// without a race.
#[allow(unsafe_code)]
pub fn rename2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (ca, cb) = (c(from)?, c(to)?);
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `nodeimg lock`: builds the default platform from `source` without pins, in a cache of its own
/// that is emptied first (so the archive is seen as it is today, and no pinned build ever reuses
/// what this run installed), and returns the lock of what it got: every package of the image,
/// its initrd and the tools tree with the sha256 of the `.deb` apt downloaded (and verified
/// against the archive's signed index). The caller compares and writes the lock.
pub fn resolve_packages(
    profiles_dir: &Path,
    cache_dir: &Path,
    mkosi: &Path,
    source: &PackageSource,
    keyring: Option<&Path>,
    on_event: &mut dyn FnMut(Event),
) -> Result<Resolution, Error> {
    let set = ProfileSet::load(profiles_dir)?;
    crate::preflight::check_platforms(&set)?;
    let requests = crate::preflight::lock_requests(&set)?;
    let platforms = vec![set.lock_platform()?.to_owned()];
    let source = absolute_source(source.clone())?;
    let keyring = read_keyring(keyring)?;
    crate::preflight::check_mkosi(mkosi)?;
    crate::preflight::check_source_tools(&source)?;
    crate::preflight::check_writable_dir(cache_dir, "--cache-dir")?;
    let _cache_lock = CacheLock::acquire(cache_dir, on_event)?;
    let cache = CacheDirs::keyed(cache_dir, "resolve");
    remove_dir_if_exists(&cache.incremental)?;
    remove_dir_if_exists(&cache.output)?;
    cache.create()?;
    let release = base_conf(profiles_dir, "Release")?;
    let trees = SandboxTrees::write(&cache, None, &source, keyring.as_deref(), &release)?;
    on_event(Event::Phase(format!("mkosi: resolving package versions from {} (no pins, no cache)", source.describe())));
    Invocation {
        mkosi,
        profiles_dir,
        profiles: &platforms,
        cache: &cache,
        sandbox_tree: Some(&trees.image),
        tools_sandbox_tree: Some(&trees.tools),
        package_dir: source.archive_dir(),
        fresh: true,
    }
    .run(on_event)?;
    let stem = format!("{}_{}", set.image_id, set.image_version);
    let manifest = cache.output.join(format!("{stem}.manifest"));
    let installed = installed_packages(&cache, &manifest)?;
    on_event(Event::Phase("hashing the .deb files".into()));
    let apt_archives = cache.apt_archives();
    let search = deb_search_dirs(&cache, &source);
    let search: Vec<&Path> = search.iter().map(PathBuf::as_path).collect();
    let mut lock = Lock { requested: Some(crate::preflight::names(&requests)), ..Lock::default() };
    for (scope, packages) in installed {
        for (name, (version, architecture)) in packages {
            let mut pin = lock::Pin { version, architecture, sha256: String::new() };
            let file = pin.deb_file_name(&name);
            let path = search.iter().map(|d| d.join(&file)).find(|p| p.is_file()).ok_or_else(|| Error::Installed {
                path: apt_archives.join(&file),
                reason: format!("{scope} package {name} is installed but apt kept no .deb of it"),
            })?;
            pin.sha256 = debs::sha256_file(&path)?;
            match scope {
                Scope::Image => lock.packages.insert(name, pin),
                Scope::Initrd => lock.initrd.insert(name, pin),
                Scope::Tools => lock.tools.insert(name, pin),
            };
        }
    }
    if let PackageSource::Snapshot { stamp, .. } = &source {
        lock.snapshot = Some(stamp.clone());
    }
    DebStore::under(cache_dir).check_and_keep(&lock, &search)?;
    let available = source.available(&cache.packages.join("lib/apt/lists"));
    for entry in fs::read_dir(&cache.output).map_err(read_err(&cache.output))?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&stem) {
            let p = entry.path();
            let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        }
    }
    Ok(Resolution { lock, available })
}

/// What `nodeimg lock` found.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The packages an unpinned build gets today.
    pub lock: Lock,
    /// Every (package, version) the source's indexes list today, when they could be read: what
    /// tells which pins of an older lock the archive has already dropped.
    pub available: Option<std::collections::BTreeSet<(String, String)>>,
}

impl Resolution {
    /// The pins of `old` that the source no longer serves (scope, name, version).
    pub fn dropped(&self, old: &Lock) -> Vec<(Scope, String, String)> {
        let Some(avail) = &self.available else { return Vec::new() };
        old.all()
            .filter(|(_, name, pin)| !avail.contains(&((*name).clone(), pin.version.clone())))
            .map(|(scope, name, pin)| (scope, name.clone(), pin.version.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_copy_is_identical() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("a");
        let mut data = vec![0u8; 3 << 20];
        data[5] = 1;
        data[(2 << 20) + 4097] = 7;
        data[(3 << 20) - 1] = 9;
        fs::write(&src, &data).unwrap();
        copy_sparse(&src, &t.path().join("b")).unwrap();
        assert_eq!(fs::read(t.path().join("b")).unwrap(), data);
        // A hole stays a hole: 64 MiB with data in its first and last 4 KiB.
        let (holey, copy) = (t.path().join("h"), t.path().join("h2"));
        let f = File::create(&holey).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[1; 4096], 0).unwrap();
        f.write_all_at(&[2; 4096], (64 << 20) - 4096).unwrap();
        copy_sparse(&holey, &copy).unwrap();
        assert!(fs::read(&holey).unwrap() == fs::read(&copy).unwrap());
        use std::os::unix::fs::MetadataExt;
        assert!(fs::metadata(&copy).unwrap().blocks() * 512 < 16 << 20, "the copy is sparse");
    }

    #[test]
    fn publish_replaces_an_older_build() {
        let t = tempfile::tempdir().unwrap();
        let (partial, dest) = (t.path().join(".x.partial"), t.path().join("x"));
        fs::create_dir_all(&dest).unwrap();
        fs::write(dest.join("old"), "").unwrap();
        fs::create_dir_all(&partial).unwrap();
        fs::write(partial.join("new"), "").unwrap();
        publish(&partial, &dest).unwrap();
        assert!(dest.join("new").exists() && !dest.join("old").exists() && !partial.exists());
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1, "no .old left behind");
        // The first build of a name: a plain rename.
        let fresh = t.path().join("y");
        fs::create_dir_all(&partial).unwrap();
        publish(&partial, &fresh).unwrap();
        assert!(fresh.is_dir() && !partial.exists());
    }

    #[test]
    fn manifest_hashes_with_sha256sum() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("b.raw"), b"bytes").unwrap();
        fs::write(t.path().join("a.efi"), b"").unwrap();
        fs::write(t.path().join("manifest.json"), b"{}").unwrap();
        let got = hash_dir(t.path()).unwrap();
        // sha256sum(1) of "" and of "bytes".
        assert_eq!(
            got,
            [
                Artefact {
                    name: "a.efi".into(),
                    size: 0,
                    sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()
                },
                Artefact {
                    name: "b.raw".into(),
                    size: 5,
                    sha256: "277089d91c0bdf4f2e6862ba7e4a07605119431f5d13f726dd352b06f1b206a9".into()
                },
            ]
        );
        // A sparse file (holes are hashed without being read): as sha256sum(1) reads it.
        let holey = t.path().join("c.raw");
        let f = File::create(&holey).unwrap();
        f.set_len(5 << 20).unwrap();
        f.write_all_at(&[3; 10_000], (2 << 20) + 17).unwrap();
        f.write_all_at(&[4; 100], (4 << 20) + 4090).unwrap();
        let out = std::process::Command::new("sha256sum").arg(&holey).output().unwrap();
        assert!(out.status.success());
        let want = String::from_utf8(out.stdout).unwrap();
        assert_eq!(hash_file(&holey).unwrap(), (5 << 20, want[..64].to_owned()));
    }
}
