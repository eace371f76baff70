//! `nodeimg build`: mkosi profiles → checked, per-platform artefacts in `out/`.
//!
//! Also the shared plumbing of `nodeimg lock` and `nodeimg repro`: where the profiles, the
//! cache and mkosi are, Ctrl-C handling, and the progress display (indicatif on a terminal,
//! plain lines otherwise, nothing with `--quiet`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use builder::{BuildRequest, Event, ProfileSet};
use clap::Args;
use indicatif::{DecimalBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{Global, Outcome};

// Where the profiles, the cache and mkosi are (shared by build, lock, rebuild and release).
// (Not a doc comment: clap would make it the `about` of every command that flattens this
// struct, over the command's own, as the commands are built lazily: `defer` in lib.rs.)
#[derive(Debug, Args, Default)]
pub struct Locations {
    /// An image project (made by `nodeimg init`): its image/ and platforms/ on nodeimg's built-in
    /// base. Default: the current directory when it holds nodeimg-project.json.
    #[arg(long, value_name = "DIR", conflicts_with = "profiles_dir")]
    pub project: Option<PathBuf>,
    /// An mkosi profile directory (the repository's mkosi-profiles/, or a copy), instead of a
    /// project. Default: mkosi-profiles.
    #[arg(long, value_name = "DIR", alias = "profiles")]
    pub profiles_dir: Option<PathBuf>,
    /// Package cache, incremental image cache and mkosi tools tree, kept between builds.
    /// Default: $NODEIMG_CACHE_DIR, else $XDG_CACHE_HOME/nodeimg, else ~/.cache/nodeimg.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The tools cache `nodeimg setup` fills: mkosi and the pinned firmware.
    /// Default: $NODEIMG_TOOLS_DIR, else $XDG_CACHE_HOME/nodeimg/tools, else ~/.cache/nodeimg/tools.
    #[arg(long, value_name = "DIR")]
    pub tools_dir: Option<PathBuf>,
}

/// The profiles a command works on, resolved: a profile directory as given, or a project
/// composed with the built-in base ([`builder::project`]).
#[derive(Debug, Clone)]
pub struct Profiles {
    /// The directory mkosi reads.
    pub dir: PathBuf,
    /// The project, when there is one.
    pub project: Option<PathBuf>,
}

impl Profiles {
    /// The package lock the user edits and commits (the project's, or the profile directory's).
    pub fn lock_path(&self) -> PathBuf {
        self.project.as_ref().unwrap_or(&self.dir).join(builder::build::LOCK_FILE)
    }

    /// What relative paths in the profiles (firmware in `nodeimg.json`) are relative to: the
    /// project, or the profile directory.
    pub fn paths_root(&self) -> &Path {
        self.project.as_ref().unwrap_or(&self.dir)
    }

    /// Where a lock is written.
    pub fn lock_dir(&self) -> &Path {
        self.project.as_ref().unwrap_or(&self.dir)
    }
}

/// Paths of a composed project tree and what the user knows them as, for messages.
static ALIASES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// `text` with the paths of a composed project tree written as the project's own paths
/// (`…/projects/<hash>/mkosi.conf.d/50-image` → `PROJECT/image`).
pub fn user_paths(text: &str) -> String {
    let mut t = text.to_owned();
    for (from, to) in ALIASES.get().map(Vec::as_slice).unwrap_or_default() {
        t = t.replace(from, to);
    }
    t
}

impl Locations {
    /// The cache directory, absolute (mkosi resolves paths from the profile directory).
    pub fn cache_dir(&self) -> PathBuf {
        let d = self.cache_dir_as_given();
        std::path::absolute(&d).unwrap_or(d)
    }

    fn cache_dir_as_given(&self) -> PathBuf {
        if let Some(d) = &self.cache_dir {
            return d.clone();
        }
        if let Some(d) = std::env::var_os("NODEIMG_CACHE_DIR").filter(|d| !d.is_empty()) {
            return d.into();
        }
        builder::user_cache_home().join("nodeimg")
    }

    /// The tools cache (`--tools-dir`, else its default).
    pub fn tools(&self) -> builder::toolscache::ToolsCache {
        let dir = self.tools_dir.clone().unwrap_or_else(builder::toolscache::ToolsCache::default_dir);
        builder::toolscache::ToolsCache::new(&dir)
    }

    /// mkosi: $NODEIMG_MKOSI, else the tools cache's `bin/mkosi` (written by `nodeimg setup`;
    /// the preflight says to run it when it is missing).
    pub fn mkosi(&self) -> Result<PathBuf> {
        if let Some(m) = std::env::var_os("NODEIMG_MKOSI").filter(|m| !m.is_empty()) {
            return Ok(m.into());
        }
        Ok(self.tools().mkosi())
    }

    /// The profiles: `--project`, else `--profiles-dir`, else the current directory when it is a
    /// project, else `mkosi-profiles`. A project is composed with the built-in base here.
    pub fn profiles(&self) -> Result<Profiles> {
        let project = match (&self.project, &self.profiles_dir) {
            (Some(p), _) => Some(p.clone()),
            (None, None) if builder::project::Project::is_project(Path::new(".")) => Some(PathBuf::from(".")),
            _ => None,
        };
        if let Some(p) = project {
            let p = p.canonicalize().with_context(|| format!("--project {}", p.display()))?;
            let project = builder::project::Project::open(&p)?;
            let dir = project.compose(&self.cache_dir())?;
            let (c, u) = (dir.display().to_string(), p.display().to_string());
            let _ = ALIASES.set(vec![
                (format!("--profiles-dir {c}"), format!("--project {u}")),
                (format!("{c}/mkosi.conf.d/50-image"), format!("{u}/image")),
                (format!("{c}/mkosi.profiles"), format!("{u}/platforms")),
                (format!("{c}/{}", builder::build::LOCK_FILE), format!("{u}/{}", builder::build::LOCK_FILE)),
                (format!("{c}/{}", builder::project::SYSEXT_DIR), format!("{u}/{}", builder::project::SYSEXT_DIR)),
                // Last: the tree as a whole, where a message names it ("TREE: …"; a command
                // line that names it keeps the real path).
                (format!("{c}:"), format!("{u} (with nodeimg's base):")),
            ]);
            return Ok(Profiles { dir, project: Some(p) });
        }
        let d = self.profiles_dir.clone().unwrap_or_else(|| PathBuf::from("mkosi-profiles"));
        if !d.is_dir() {
            bail!(
                "{}: no such directory; give an image project with --project DIR (`nodeimg init DIR` makes one) \
                 or a profile directory with --profiles-dir DIR (default: mkosi-profiles in the working directory)",
                d.display()
            );
        }
        if !d.join("mkosi.conf").is_file() {
            bail!(
                "no mkosi.conf in {}: is it an image profile directory? Give --profiles-dir DIR (a copy of the \
                 repository's mkosi-profiles/), or --project DIR for an image project",
                d.display()
            );
        }
        let dir = d.canonicalize().with_context(|| format!("resolving {}", d.display()))?;
        Ok(Profiles { dir, project: None })
    }
}

// Where the packages come from (build, lock, rebuild). Default: the lock's `snapshot`, else the
// live Debian archive.
// (Not a doc comment: clap would make it the `about` of every command that flattens this
// struct, over the command's own, as the commands are built lazily: `defer` in lib.rs.)
#[derive(Debug, Args, Default)]
pub struct SourceArgs {
    /// Resolve from this snapshot of the Debian archive (YYYYMMDDTHHMMSSZ), for the image and
    /// the tools tree; overrides the lock's `snapshot` line.
    #[arg(long, value_name = "STAMP")]
    pub snapshot: Option<String>,
    /// Where snapshots are served, in the layout of snapshot.debian.org
    /// (URL/archive/debian/STAMP/).
    #[arg(long, value_name = "URL")]
    pub snapshot_mirror: Option<String>,
    /// Resolve from the live archive at this mirror (URL/debian, URL/debian-security): it
    /// moves on, and the build's provenance says so.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Build offline from a package archive: a directory holding exactly the lock's .deb files
    /// (a release's packages/ directory).
    #[arg(long, value_name = "DIR")]
    pub packages: Option<PathBuf>,
    /// OpenPGP keyring (binary) that signs the mirror's Release files, when it is not Debian's.
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
}

impl SourceArgs {
    /// The choice, with a malformed stamp or `latest` handled (`latest` only where `allow_latest`).
    pub fn choice(&self, allow_latest: bool) -> Result<builder::SourceChoice> {
        let snapshot = match self.snapshot.as_deref() {
            None => None,
            Some("latest") if allow_latest => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
                Some(builder::SnapshotStamp::at_unix(now))
            }
            Some(s) => Some(s.parse().map_err(|e: String| anyhow::anyhow!("--snapshot: {e}"))?),
        };
        Ok(builder::SourceChoice {
            mirror: self.mirror.clone(),
            snapshot,
            snapshot_mirror: self.snapshot_mirror.clone(),
            packages: self.packages.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A platform (qemu, gcp, aws, azure) or overlay (test) profile; repeat for several.
    /// Default: the qemu platform.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Every platform profile.
    #[arg(long)]
    pub all: bool,
    /// Parent directory of the output (`OUT/<image>-<version>/<platform>/`).
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub loc: Locations,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print the build report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Makes Ctrl-C stop the build cleanly: mkosi is interrupted, the partial output removed.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| builder::run::INTERRUPTED.store(true, Ordering::SeqCst));
}

/// Renders build events: a spinner with the current stage and download totals on a terminal,
/// plain lines otherwise; `+ argv` for every external command under `-v`.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    verbose: bool,
    phase: String,
    stage: String,
    packages: u64,
    bytes: u64,
}

impl Progress {
    pub fn new(global: Global) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (tty && !global.quiet).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Self {
            bar,
            plain: !tty && !global.quiet,
            verbose: global.verbose,
            phase: String::new(),
            stage: String::new(),
            packages: 0,
            bytes: 0,
        }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn redraw(&self) {
        if let Some(b) = &self.bar {
            let dl = if self.packages > 0 {
                format!(" · {} packages, {}", self.packages, DecimalBytes(self.bytes))
            } else {
                String::new()
            };
            b.set_message(format!("{} · {}{dl}", self.phase, self.stage));
        }
    }

    pub fn event(&mut self, e: Event) {
        match e {
            Event::Command(argv) => {
                if self.verbose {
                    self.say(&format!("+ {}", argv.join(" ")));
                }
            }
            Event::Phase(p) => {
                if self.plain {
                    eprintln!("== {p}");
                }
                self.phase = p;
                self.stage.clear();
                self.redraw();
            }
            Event::Stage(s) => {
                if self.plain {
                    eprintln!("‣ {s}");
                }
                self.stage = s;
                self.redraw();
            }
            Event::Download { bytes, .. } => {
                self.packages += 1;
                self.bytes += bytes;
                self.redraw();
            }
            Event::Fetched { bytes } => {
                if self.plain {
                    eprintln!("  downloaded {}", DecimalBytes(bytes));
                }
            }
            Event::Output(_) => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Maps a builder error: check failures print and become exit 1, the rest exit 2.
pub fn check_or_error(e: builder::Error) -> Result<Outcome> {
    if e.is_check_failure() {
        eprintln!("mismatch: {}", user_paths(&e.to_string()));
        return Ok(Outcome::Mismatch);
    }
    Err(anyhow::Error::new(e))
}

/// The PCRs `measure::boot` predicts for a UKI booted from a disk: what a platform's
/// `nodeimg.json` may enforce (the hook checks again against the prediction itself).
const MODELED_PCRS: [u32; 7] = [4, 5, 7, 9, 11, 12, 13];

/// One platform's reference values as its `nodeimg.json` ([`builder::PlatformConfig`]) asks for
/// them. Everything that depends on the firmware alone (SNP launch digests, MRTD) is computed
/// before mkosi runs, so a wrong firmware path fails the build at once, not after minutes.
#[derive(Debug)]
struct PlatformPlan {
    /// The platform's nodeimg.json, for error messages.
    config: PathBuf,
    attestation_variant: String,
    enforce_pcrs: Vec<u32>,
    /// SEV-SNP launch digests, one per VM shape, sorted.
    snp: Vec<release::bundle::SnpLaunchDigest>,
    /// What the SNP guest policy may allow (nodeimg.json `snp.smt`).
    snp_policy: Option<release::bundle::SnpPolicy>,
    /// MRTD, when the platform carries TDX values (RTMR1 and RTMR2 then follow from the image).
    mrtd: Option<[u8; 48]>,
    /// The firmware images read, for `build.json`.
    firmware: Vec<builder::FirmwareRecord>,
}

/// Reads the firmware image named by `field` of `config` (from the tools cache for a pinned
/// one), with a clear error when it is missing; records its name and sha256 in `plan`.
fn read_config_firmware(
    config: &Path,
    field: &str,
    firmware: &builder::profiles::Firmware,
    tools: &builder::toolscache::ToolsCache,
    plan: &mut PlatformPlan,
) -> Result<Vec<u8>> {
    use builder::profiles::Firmware;
    use sha2::Digest;
    let path = firmware.resolve(tools).with_context(|| format!("{}: {field}", config.display()))?;
    if !path.is_file() {
        bail!(
            "{}: {field} {} does not exist (a path is relative to the profile directory; Debian's OVMF builds are \
             named as \"debian:ovmf=VERSION:usr/share/ovmf/OVMF.fd\" and fetched by `nodeimg setup`)",
            config.display(),
            path.display()
        );
    }
    let image = crate::cmd::measure::read_firmware(&path).with_context(|| format!("{}: {field}", config.display()))?;
    plan.firmware.push(builder::FirmwareRecord {
        name: firmware.name(),
        sha256: hex::encode(sha2::Sha256::digest(&image)),
        deb_sha256: match firmware {
            Firmware::Pinned(f) => Some(f.pin.sha256.to_owned()),
            Firmware::Path { .. } => None,
        },
    });
    Ok(image)
}

/// Checks `platform`'s nodeimg.json against what nodeimg can compute and computes the values
/// that depend on the firmware alone.
fn plan(set: &ProfileSet, platform: &str, tools: &builder::toolscache::ToolsCache) -> Result<PlatformPlan> {
    use measure::snp::{self, SnpFirmware, SnpLaunch, Vmm};
    let c = set
        .profiles
        .get(platform)
        .and_then(|p| p.config.as_ref())
        .with_context(|| format!("{platform} is not a platform profile"))?;
    let config_path = c.source.clone();
    let cp = config_path.display();
    if let Some(p) = c.enforce_pcrs.iter().find(|p| !MODELED_PCRS.contains(p)) {
        bail!("{cp}: enforce_pcrs: PCR {p} is not predicted (the boot-chain model predicts PCRs {MODELED_PCRS:?})");
    }
    let mut plan = PlatformPlan {
        config: config_path.clone(),
        attestation_variant: c.attestation_variant.clone(),
        enforce_pcrs: c.enforce_pcrs.clone(),
        snp: Vec::new(),
        snp_policy: None,
        mrtd: None,
        firmware: Vec::new(),
    };
    if let Some(s) = &c.snp {
        let vmm: Vmm = s.vmm_type.parse().map_err(|e| anyhow::anyhow!("{cp}: snp.vmm_type: {e}"))?;
        let vcpu_sig = match (&s.vcpu_type, s.vcpu_sig) {
            (Some(t), _) => Some(snp::vcpu_type_sig(t).with_context(|| {
                let names: Vec<_> = snp::VCPU_TYPES.iter().map(|t| t.0).collect();
                format!("{cp}: snp.vcpu_type: unknown vCPU type {t:?} (known: {})", names.join(", "))
            })?),
            (None, sig) => sig.map(|s| s as u32), // checked to fit by the builder
        };
        if vmm == Vmm::Qemu && vcpu_sig.is_none() {
            bail!("{cp}: snp: QEMU puts the vCPU signature into every VMSA: give vcpu_type or vcpu_sig");
        }
        let image = read_config_firmware(&config_path, "snp.firmware", &s.firmware, tools, &mut plan)?;
        let fw = SnpFirmware::parse(&image).with_context(|| format!("{cp}: snp.firmware {}", s.firmware.name()))?;
        for &vcpus in &s.vcpus {
            let launch =
                SnpLaunch { vcpus, vcpu_sig, vmm, guest_features: s.guest_features, kernel: None, ovmf_hash: None };
            let ld = snp::launch_digest(&fw, &launch)
                .with_context(|| format!("{cp}: snp: {} with {vcpus} vCPUs", s.firmware.name()))?;
            plan.snp.push(release::bundle::SnpLaunchDigest {
                vcpus,
                vcpu_type: s.vcpu_type.clone(),
                vcpu_sig: vcpu_sig.unwrap_or(0),
                vmm_type: vmm.name().to_ascii_lowercase(),
                guest_features: s.guest_features,
                launch_digest: release::hex::Hex(ld.digest.to_vec()),
            });
        }
        plan.snp.sort_by(|a, b| a.shape().cmp(&b.shape()));
        plan.snp_policy = s.smt.map(|smt| release::bundle::SnpPolicy { smt });
    }
    if let Some(t) = &c.tdx {
        use measure::tdx::{self, PageAddOrder, TdvfMetadata};
        let image = read_config_firmware(&config_path, "tdx.firmware", &t.firmware, tools, &mut plan)?;
        let md = TdvfMetadata::parse(&image).with_context(|| format!("{cp}: tdx.firmware {}", t.firmware.name()))?;
        let order = match t.page_add_order {
            builder::profiles::PageAddOrder::SinglePass => PageAddOrder::SinglePass,
            builder::profiles::PageAddOrder::TwoPass => PageAddOrder::TwoPass,
        };
        plan.mrtd = Some(tdx::mrtd(&image, &md, order).digest);
    }
    Ok(plan)
}

/// Predicts (measure crate) what booting the platform directory's UKI from its disk extends into
/// the vTPM (and, for a platform with TDX values, into RTMR1 and RTMR2), adds the planned SNP
/// and MRTD values, and writes it all as `reference-values.json` (the release crate's input
/// contract).
fn write_reference_values(plan: &PlatformPlan, dir: &Path) -> Result<()> {
    use measure::boot::{predict, predict_tdx, BootInputs};
    use release::hex::Hex;
    let uki = std::fs::read(dir.join("uki.efi")).context("reading uki.efi")?;
    // The GPT (PCR 5, RTMR1) is in the first MiB of the disk.
    let mut disk = Vec::with_capacity(1 << 20);
    let f = std::fs::File::open(dir.join("disk.raw")).context("opening disk.raw")?;
    std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut disk).context("reading disk.raw")?;
    let mut inputs = BootInputs::new(&uki);
    inputs.disk = Some(&disk);
    inputs.extra_d = esp_extras(dir)?;
    let prediction = predict(&inputs)?;
    if let Some(p) = plan.enforce_pcrs.iter().find(|p| !prediction.pcrs.contains(p)) {
        bail!("{}: enforce_pcrs: PCR {p} is not predicted (predicted: {:?})", plan.config.display(), prediction.pcrs);
    }
    let mut values = release::input::vtpm_reference_values(&prediction, &plan.attestation_variant, &plan.enforce_pcrs)?;
    values.snp = plan.snp.clone();
    values.snp_policy = plan.snp_policy;
    if let Some(mrtd) = plan.mrtd {
        // A TD boots the same UKI from the same disk; RTMR0 (TD HOB, ACPI tables, boot
        // variables) is the platform's and stays out.
        let td = predict_tdx(&inputs).context("predicting the TD boot")?;
        let rtmr1 = td.rtmr1.context("RTMR1 not predicted although the disk was given")?;
        values.tdx =
            Some(release::bundle::Tdx { mrtd: Hex(mrtd.to_vec()), rtmr: [(1, Hex(rtmr1)), (2, Hex(td.rtmr2))].into() });
    }
    values.check("reference-values.json").context("the reference values do not pass the bundle's rules")?;
    let mut json = serde_json::to_vec_pretty(&values)?;
    json.push(b'\n');
    crate::fsutil::write_atomic(&dir.join("reference-values.json"), &json).context("writing reference-values.json")
}

/// The files beside the UKI on the platform's ESP (system extensions, credentials), which the
/// builder copied out of `esp.raw` as `extra.d-NAME`: systemd-stub measures them.
fn esp_extras(dir: &Path) -> Result<Vec<measure::boot::SidecarFile>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let file_name = e.file_name().to_string_lossy().into_owned();
        if let Some(name) = file_name.strip_prefix(builder::EXTRA_ARTEFACT_PREFIX) {
            let data = std::fs::read(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
            out.push(measure::boot::SidecarFile { name: name.to_owned(), data });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Builds `req` (whose profiles are `set`) and writes each platform's reference values, with
/// progress; the outer error is one found before mkosi runs (a platform's nodeimg.json, its
/// firmware, which `build.json` then records with its sha256).
pub(crate) fn build_measured(
    req: &BuildRequest,
    set: &ProfileSet,
    tools: &builder::toolscache::ToolsCache,
    global: Global,
) -> Result<std::result::Result<builder::BuildReport, builder::Error>> {
    let plans = req
        .selection
        .platforms
        .iter()
        .map(|p| Ok((p.clone(), plan(set, p, tools)?)))
        .collect::<Result<std::collections::BTreeMap<_, _>>>()?;
    let mut req = req.clone();
    req.firmware = plans.values().flat_map(|p| p.firmware.iter().cloned()).collect();
    req.firmware.sort();
    req.firmware.dedup();
    let req = &req;
    // The builder checks the output directory (and everything else it can) before mkosi runs,
    // and creates it only then.
    install_interrupt_handler();
    let mut progress = Progress::new(global);
    let result = builder::build_with_hook(req, &mut |e| progress.event(e), &|platform, dir| {
        let plan = plans.get(platform).ok_or_else(|| format!("{platform} was not planned"))?;
        write_reference_values(plan, dir).map_err(|e| format!("computing the reference values: {e:#}"))
    });
    progress.finish();
    Ok(result)
}

pub fn run(args: BuildArgs, global: Global) -> Result<Outcome> {
    let profiles = args.loc.profiles()?;
    let set = ProfileSet::load_resolving(&profiles.dir, profiles.paths_root())?;
    let selection = set.select(&args.profiles, args.all)?;
    let req = BuildRequest {
        profiles_dir: profiles.dir.clone(),
        selection,
        out_dir: std::path::absolute(&args.out).with_context(|| format!("resolving {}", args.out.display()))?,
        cache_dir: args.loc.cache_dir(),
        mkosi: args.loc.mkosi()?,
        nodeimg_version: env!("CARGO_PKG_VERSION").to_owned(),
        source: args.source.choice(false)?,
        keyring: args.source.keyring.clone(),
        firmware: Vec::new(),
    };
    let report = match build_measured(&req, &set, &args.loc.tools(), global)? {
        Ok(r) => r,
        Err(e) => return check_or_error(e),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Outcome::Ok);
    }
    outln!("{}", report.dir.display());
    for p in &report.platforms {
        let how = match &p.derived_from {
            Some(b) => format!(" (derived from {b})"),
            None => String::new(),
        };
        outln!("  {}{how}: roothash {}", p.platform, p.roothash);
        if !global.quiet {
            outln!("    cmdline: {}", p.cmdline);
            for a in &p.artefacts {
                outln!("    {:<16} {:>12}  {}", a.name, a.size, a.sha256);
            }
        }
    }
    Ok(Outcome::Ok)
}
