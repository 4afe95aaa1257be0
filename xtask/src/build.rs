//! `cargo xtask build PLUGIN...` and `cargo xtask build-all`: build plugin
//! images without a daemon, in parallel, into one tarball each, or one
//! archive of them all with `--archive` (the work is forge-pipeline's
//! `Session::build`; this module turns flags into options and the outcomes
//! into a table or JSON lines).

use std::process::ExitCode;

use forge_pipeline::{discover, select, Error, Session, SessionOptions};

use crate::cli::{Common, DockerFlags, OutputFlags, PushFlags, SelectFlags};
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// Plugins to build: paths relative to the root (`plugins/import/csv`)
    /// or directory names (`csv`).
    #[arg(required = true, value_name = "PLUGIN")]
    plugins: Vec<String>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    docker: DockerFlags,
    #[command(flatten)]
    outputs: OutputFlags,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BuildAllArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    docker: DockerFlags,
    #[command(flatten)]
    outputs: OutputFlags,
    /// Publish the images once built (as `cargo xtask publish`); no
    /// tarballs unless --tarballs.
    #[arg(long)]
    push: bool,
    #[command(flatten)]
    push_flags: PushFlags,
    #[command(flatten)]
    select: SelectFlags,
}

pub(crate) fn run_build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let root = args.common.root();
    let all = discover(&root)?;
    let selected =
        args.plugins.iter().map(|wanted| select(&root, &all, wanted)).collect::<Result<Vec<_>, _>>()?;
    let output = args.docker.output(args.common.format);
    let progress = Progress::new(output.progress_format(), &root);
    let options = SessionOptions {
        outputs: args.outputs.outputs(false),
        ..args.common.session_with(root, &args.docker)?
    };
    let session = Session::open(options, &progress)?;
    let outcomes = session.build(&selected, &args.common.batch(), &progress)?;
    Ok(crate::report::builds(&outcomes, output, false))
}

pub(crate) fn run_build_all(args: BuildAllArgs) -> anyhow::Result<ExitCode> {
    let root = args.common.root();
    let all = discover(&root)?;
    if all.is_empty() {
        return Err(Error::NoPlugins { dir: root.join(forge_manifest::PLUGINS_DIR) }.into());
    }
    let options = SessionOptions {
        outputs: args.outputs.outputs(args.push),
        ..args.common.session_with(root.clone(), &args.docker)?
    };
    let all = match args.select.apply(&root, &options, all, args.common.format)? {
        Ok(selected) => selected,
        Err(listed) => return Ok(listed),
    };
    let output = args.docker.output(args.common.format);
    let progress = Progress::new(output.progress_format(), &root);
    let session = Session::open(options, &progress)?;
    if args.push {
        let pushed =
            session.build_and_push(&all, &args.common.batch(), &args.push_flags.options(), &progress)?;
        return Ok(crate::report::pushes(&pushed, output));
    }
    let outcomes = session.build(&all, &args.common.batch(), &progress)?;
    Ok(crate::report::builds(&outcomes, output, true))
}
