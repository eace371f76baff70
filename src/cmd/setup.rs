//! `nodeimg setup`: fetches the pinned tools nodeimg runs (mkosi) and the firmware it measures
//! (Debian's OVMF builds) into the tools cache, checked by sha256 (`builder::toolscache`); with
//! `--test-inputs` also the repository's test inputs (trixie's systemd-stub and cloud kernel,
//! signed and unsigned, as `uki/…` in the cache), which building images does not need.
//!
//! `nodeimg build` never fetches tools by itself: a build that finds no mkosi, or a `debian:`
//! firmware that is not unpacked, stops before mkosi runs and says to run `nodeimg setup`. The
//! network access is then one explicit step, which a machine without network replaces by putting
//! the pinned `.deb`s into `TOOLS/debs/<sha256>.deb` by hand.

use std::path::PathBuf;

use anyhow::Result;
use builder::toolscache::{Group, ToolsCache, DEFAULT_MIRROR};
use clap::Args;

use crate::cmd::build::Progress;
use crate::{Global, Outcome};

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The tools cache to fill.
    /// Default: $NODEIMG_TOOLS_DIR, else $XDG_CACHE_HOME/nodeimg/tools, else ~/.cache/nodeimg/tools.
    #[arg(long, value_name = "DIR")]
    pub tools_dir: Option<PathBuf>,
    /// The Debian mirror to fetch the pinned .debs from (plain http://; its root, as
    /// http://deb.debian.org/debian, or a snapshot such as
    /// http://snapshot.debian.org/archive/debian/20260101T000000Z).
    #[arg(long, value_name = "URL", default_value = DEFAULT_MIRROR)]
    pub mirror: String,
    /// Also fetch the inputs of nodeimg's own test suite (~70 MB of .debs: Debian's
    /// systemd-stub and cloud kernel, unpacked as uki/linuxx64.efi.stub, uki/vmlinuz.signed and
    /// uki/vmlinuz.unsigned); `make setup` passes it.
    #[arg(long)]
    pub test_inputs: bool,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SetupArgs, global: Global) -> Result<Outcome> {
    let tools = ToolsCache::new(&args.tools_dir.clone().unwrap_or_else(ToolsCache::default_dir));
    // No Ctrl-C handler: an interrupted setup just ends; the next one removes its partial files.
    let mut progress = Progress::new(global);
    let groups: &[Group] = if args.test_inputs { &[Group::Build, Group::TestInputs] } else { &[Group::Build] };
    let steps = tools.setup(&args.mirror, groups, &mut |e| progress.event(e));
    progress.finish();
    let steps = steps?;
    if args.json {
        let report = serde_json::json!({
            "tools_dir": tools.root(),
            "mkosi": tools.mkosi(),
            "packages": steps,
        });
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Outcome::Ok);
    }
    for s in &steps {
        let how = match s.action {
            "downloaded" => format!("downloaded ({} bytes), checked, unpacked", s.bytes),
            "unpacked" => "unpacked from the cached .deb".to_owned(),
            _ => "present".to_owned(),
        };
        outln!("{}={}  {how}  {}", s.package, s.version, s.dir.display());
        for f in &s.files {
            outln!("  {}", f.display());
        }
    }
    outln!("mkosi: {}", tools.mkosi().display());
    Ok(Outcome::Ok)
}
