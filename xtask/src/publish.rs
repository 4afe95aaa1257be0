//! `cargo xtask publish [PLUGIN...]`: build the images (cached when
//! unchanged) and push them to `REGISTRY/NAME:TAG` without a daemon (the
//! work is forge-pipeline's `Session::build_and_push`). Blobs the registry
//! has are skipped, blobs of sibling repositories mounted, the manifest
//! pushed last by digest and then the tag. Credentials come from Docker's
//! `config.json`. No tarball is written unless `--tarballs`; `--archive`
//! also writes one archive of every image. `--dry-run` asks the registry which blobs it lacks and
//! pushes nothing.

use std::process::ExitCode;

use forge_pipeline::{discover, select, Session, SessionOptions};

use crate::cli::{Common, DockerFlags, OutputFlags, PushFlags, SelectFlags};
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Plugins to publish (paths relative to the root or directory names) [default: all]
    #[arg(value_name = "PLUGIN")]
    plugins: Vec<String>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    docker: DockerFlags,
    #[command(flatten)]
    push: PushFlags,
    #[command(flatten)]
    outputs: OutputFlags,
    /// Build, then show what would be pushed and which blobs the registry
    /// lacks, without writing anything to it.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    select: SelectFlags,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.common.root();
    let all = discover(&root)?;
    let plugins = if args.plugins.is_empty() {
        all
    } else {
        args.plugins.iter().map(|p| select(&root, &all, p)).collect::<Result<_, _>>()?
    };
    let options = SessionOptions {
        outputs: args.outputs.outputs(true),
        ..args.common.session_with(root.clone(), &args.docker)?
    };
    let plugins = match args.select.apply(&root, &options, plugins, args.common.format)? {
        Ok(selected) => selected,
        Err(listed) => return Ok(listed),
    };
    let output = args.docker.output(args.common.format);
    let progress = Progress::new(output.progress_format(), &root);
    let session = Session::open(options, &progress)?;
    if args.dry_run {
        let outcomes = session.build(&plugins, &args.common.batch(), &progress)?;
        let planned = session.dry_run(outcomes, &args.push.options())?;
        return Ok(crate::report::dry_run(&planned, output));
    }
    let pushed = session.build_and_push(&plugins, &args.common.batch(), &args.push.options(), &progress)?;
    Ok(crate::report::pushes(&pushed, output))
}
