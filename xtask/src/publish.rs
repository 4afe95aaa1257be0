//! `cargo xtask publish [PLUGIN...]`: build the images (cached when
//! unchanged) and push them to `REGISTRY/NAME:TAG` without a daemon (the
//! work is forge-pipeline's `Session::build_and_push`). Blobs the registry
//! has are skipped, blobs of sibling repositories mounted, the manifest
//! pushed last by digest and then the tag. Credentials come from Docker's
//! `config.json`.

use std::process::ExitCode;

use forge_pipeline::{discover, select, Session};

use crate::cli::{Common, PushFlags};
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Plugins to publish (paths relative to the root or directory names) [default: all]
    #[arg(value_name = "PLUGIN")]
    plugins: Vec<String>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    push: PushFlags,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.common.root();
    let all = discover(&root)?;
    let plugins = if args.plugins.is_empty() {
        all
    } else {
        args.plugins.iter().map(|p| select(&root, &all, p)).collect::<Result<_, _>>()?
    };
    let progress = Progress::new(args.common.format, &root);
    let session = Session::open(args.common.session(root)?, &progress)?;
    let pushed = session.build_and_push(&plugins, &args.common.batch(), &args.push.options(), &progress)?;
    Ok(crate::report::pushes(&pushed, args.common.format))
}
