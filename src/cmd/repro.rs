//! `nodeimg repro A B`: are two build outputs bit-identical? Exit 1 and a list of what differs
//! (down to files inside partitions) when not.

use std::path::PathBuf;

use anyhow::Result;
use builder::mkosi::CacheDirs;
use builder::tools::ToolsTree;
use clap::Args;

use crate::cmd::build::{Locations, Progress};
use crate::{Global, Outcome};

#[derive(Debug, Args)]
pub struct ReproArgs {
    /// First build output (`out/<image>-<version>`).
    pub a: PathBuf,
    /// Second build output.
    pub b: PathBuf,
    /// Cache directory whose mkosi tools tree extracts differing partitions (see `build`).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ReproArgs, global: Global) -> Result<Outcome> {
    let loc = Locations { cache_dir: args.cache_dir.clone(), ..Locations::default() };
    let tools = CacheDirs::latest_tools_tree(&loc.cache_dir()).and_then(|t| ToolsTree::open(&t).ok());
    let work = tempfile::tempdir()?;
    let mut progress = Progress::new(global);
    let result = builder::repro::compare(&args.a, &args.b, tools.as_ref(), work.path(), &mut |e| progress.event(e));
    progress.finish();
    let report = result?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &report.artefacts {
            let short = |h: &Option<String>| h.as_deref().map_or("missing".to_owned(), |h| h[..16].to_owned());
            if d.identical() {
                if !global.quiet {
                    outln!("same     {}  {}", d.path, short(&d.a));
                }
                continue;
            }
            outln!("DIFFERS  {}  {} vs {}", d.path, short(&d.a), short(&d.b));
            for p in &d.parts {
                outln!("           {p} differs");
            }
            for f in &d.files {
                outln!("           {}: {}", f.path, f.difference);
            }
            if let Some(text) = &d.diffoscope {
                outln!("{text}");
            }
            if tools.is_none() && matches!(d.path.rsplit('/').next(), Some("root.raw" | "esp.raw")) {
                outln!("           (no mkosi tools tree in the cache to list the differing files; build once first)");
            }
        }
        let verdict = if report.identical { "identical" } else { "DIFFERENT" };
        outln!("{verdict}: {} vs {}", report.a.display(), report.b.display());
    }
    Ok(if report.identical { Outcome::Ok } else { Outcome::Mismatch })
}
