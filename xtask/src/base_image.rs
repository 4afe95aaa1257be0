//! `cargo xtask base-image [NAME]`: base images built from Debian packages,
//! described in `ROOT/base-images/NAME.toml` and pinned by the committed
//! `ROOT/base-images/NAME.lock`, stored as `REGISTRY/NAME` (every tag) in
//! the image store that `FROM` resolves through (the work is
//! forge-pipeline's `ensure`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use forge_oci::Platform;
use forge_pipeline::{descriptions, ensure, BaseImageOptions, BASE_IMAGES_DIR, DEFAULT_REGISTRY};

use crate::cli::Format;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The base image to build (`base-images/NAME.toml`) [default: all]
    name: Option<String>,
    /// The monorepo root [default: this repository]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Registry prefix of the stored name (`REGISTRY/NAME`).
    #[arg(long, value_name = "REG", default_value = DEFAULT_REGISTRY)]
    registry: String,
    /// Resolve the packages again against the archive and rewrite the lock.
    #[arg(long)]
    update: bool,
    /// Debian mirror to download from [default: the description's, else the machine's apt mirror]
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Never use the network: everything must be in the cache.
    #[arg(long)]
    offline: bool,
    /// Build for these platforms (`linux/arm64`, comma-separated) instead of
    /// the description's architecture; another architecture is pinned by
    /// its own lock, `NAME.ARCH.lock` [default: the description's]
    #[arg(long, value_name = "OS/ARCH[,...]")]
    platform: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.root.clone().unwrap_or_else(crate::project_root);
    let names = match &args.name {
        Some(name) => vec![name.clone()],
        None => descriptions(&root)?,
    };
    if names.is_empty() {
        bail!("no base image descriptions under {}", root.join(BASE_IMAGES_DIR).display());
    }
    let store = forge_pipeline::open_store(&root)?;
    let platforms: Vec<Option<Platform>> = match &args.platform {
        Some(text) => Platform::parse_list(text)
            .map_err(|why| anyhow::anyhow!("--platform {text}: {why}"))?
            .into_iter()
            .map(Some)
            .collect(),
        None => vec![None],
    };
    let progress = Progress::new(Format::Human, &root);
    for platform in platforms {
        let options = BaseImageOptions {
            update: args.update,
            offline: args.offline,
            mirror: args.mirror.clone(),
            epoch: forge_pipeline::source_date_epoch()?,
            platform,
        };
        for name in &names {
            ensure(&root, &store, name, &args.registry, &options, &progress)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
