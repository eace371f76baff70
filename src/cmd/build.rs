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

/// Where the profiles, the cache and mkosi are (shared by build, lock and repro).
#[derive(Debug, Args)]
pub struct Locations {
    /// The mkosi profile directory.
    #[arg(long, value_name = "DIR", default_value = "mkosi-profiles")]
    pub profiles_dir: PathBuf,
    /// Package cache, incremental image cache and mkosi tools tree, kept between builds.
    /// Default: $NODEIMG_CACHE_DIR, else $XDG_CACHE_HOME/nodeimg, else ~/.cache/nodeimg.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
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
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(d).join("nodeimg");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/var/tmp".into());
        home.join(".cache/nodeimg")
    }

    /// mkosi: $NODEIMG_MKOSI, else `tools/bin/mkosi` beside the profile directory (made by
    /// `make setup`).
    pub fn mkosi(&self) -> Result<PathBuf> {
        if let Some(m) = std::env::var_os("NODEIMG_MKOSI").filter(|m| !m.is_empty()) {
            return Ok(m.into());
        }
        let dir = self.profiles_dir()?;
        Ok(dir.parent().unwrap_or(Path::new(".")).join("tools/bin/mkosi"))
    }

    /// The profile directory, made absolute (mkosi runs with another working directory).
    pub fn profiles_dir(&self) -> Result<PathBuf> {
        let d = &self.profiles_dir;
        if !d.join("mkosi.conf").is_file() {
            bail!(
                "{}: not an mkosi profile directory (no mkosi.conf); run from the nodeimg repository or give --profiles-dir",
                d.display()
            );
        }
        d.canonicalize().with_context(|| format!("resolving {}", d.display()))
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
        eprintln!("mismatch: {e}");
        return Ok(Outcome::Mismatch);
    }
    Err(anyhow::Error::new(e))
}

/// The PCRs the image alone determines on every platform (PCR 11 per boot phase).
const IMAGE_PCRS: &[u32] = &[4, 9, 11, 12, 13];

/// Per platform: the attestation variant (named as Constellation names them) and the PCRs the
/// build enforces. The prediction's firmware is Debian's OVMF without Secure Boot, so PCR 5
/// (GPT) and PCR 7 (Secure Boot databases) are only enforced on `qemu`, whose firmware that is;
/// on a cloud they are the firmware's, added at release time as observed values
/// (`nodeimg release --observed`).
fn platform_policy(platform: &str) -> (String, &'static [u32]) {
    match platform {
        "qemu" => ("qemu-vtpm".into(), &[4, 5, 7, 9, 11, 12, 13]),
        "gcp" | "aws" | "azure" => (format!("{platform}-sev-snp"), IMAGE_PCRS),
        other => (format!("{other}-vtpm"), IMAGE_PCRS),
    }
}

/// Predicts (measure crate) what booting the platform directory's UKI from its disk extends into
/// the vTPM, and writes it as `reference-values.json` (the release crate's input contract).
fn write_reference_values(platform: &str, dir: &Path) -> Result<()> {
    use measure::boot::{predict, BootInputs};
    let uki = std::fs::read(dir.join("uki.efi")).context("reading uki.efi")?;
    // The GPT (PCR 5) is in the first MiB of the disk.
    let mut disk = Vec::with_capacity(1 << 20);
    let f = std::fs::File::open(dir.join("disk.raw")).context("opening disk.raw")?;
    std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut disk).context("reading disk.raw")?;
    let mut inputs = BootInputs::new(&uki);
    inputs.disk = Some(&disk);
    let prediction = predict(&inputs)?;
    let (variant, enforced) = platform_policy(platform);
    let values = release::input::vtpm_reference_values(&prediction, &variant, enforced)?;
    let mut json = serde_json::to_vec_pretty(&values)?;
    json.push(b'\n');
    std::fs::write(dir.join("reference-values.json"), json).context("writing reference-values.json")
}

pub fn run(args: BuildArgs, global: Global) -> Result<Outcome> {
    let profiles_dir = args.loc.profiles_dir()?;
    let set = ProfileSet::load(&profiles_dir)?;
    let selection = set.select(&args.profiles, args.all)?;
    let req = BuildRequest {
        profiles_dir,
        selection,
        out_dir: std::path::absolute(&args.out).with_context(|| format!("resolving {}", args.out.display()))?,
        cache_dir: args.loc.cache_dir(),
        mkosi: args.loc.mkosi()?,
        nodeimg_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    std::fs::create_dir_all(&req.out_dir).with_context(|| format!("creating {}", req.out_dir.display()))?;
    install_interrupt_handler();
    let mut progress = Progress::new(global);
    let result = builder::build_with_hook(&req, &mut |e| progress.event(e), &mut |platform, dir| {
        write_reference_values(platform, dir).map_err(|e| format!("computing the reference values: {e:#}"))
    });
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => return check_or_error(e),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Outcome::Ok);
    }
    println!("{}", report.dir.display());
    for p in &report.platforms {
        let how = match &p.derived_from {
            Some(b) => format!(" (derived from {b})"),
            None => String::new(),
        };
        println!("  {}{how}: roothash {}", p.platform, p.roothash);
        if !global.quiet {
            println!("    cmdline: {}", p.cmdline);
            for a in &p.artefacts {
                println!("    {:<16} {:>12}  {}", a.name, a.size, a.sha256);
            }
        }
    }
    Ok(Outcome::Ok)
}
