//! `nodeimg init`: a new image project on nodeimg's built-in base ([`builder::project`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::{Global, Outcome};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project directory to create (new, or empty).
    pub dir: PathBuf,
    /// The platforms to build for (qemu, gcp, aws, azure), comma-separated or repeated.
    #[arg(long = "platform", value_name = "NAME", value_delimiter = ',', default_value = "qemu")]
    pub platforms: Vec<String>,
    /// The image's name (ImageId=). Default: the directory's name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

pub fn run(args: InitArgs, global: Global) -> Result<Outcome> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => {
            let abs = std::path::absolute(&args.dir)?;
            abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        }
    };
    let mut platforms = args.platforms.clone();
    platforms.dedup();
    builder::project::init(&args.dir, &builder::project::InitOptions { name: &name, platforms: &platforms })?;
    if !global.quiet {
        eprintln!(
            "made image project {} ({name}, platforms {}) on base sha256:{}",
            args.dir.display(),
            platforms.join(", "),
            builder::project::base_sha256()
        );
        eprintln!(
            "next: add packages and files under {0}/image/ (see {0}/README.md), then `nodeimg lock` and \
             `nodeimg build --all` in {0}",
            args.dir.display()
        );
    }
    Ok(Outcome::Ok)
}
