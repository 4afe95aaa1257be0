//! `cargo xtask run PLUGIN [-- ARGS]`: like `docker run --rm`: builds the
//! plugin's image (cached when unchanged), unpacks it into a fresh root
//! filesystem and runs its entry point there in a bubblewrap sandbox
//! (no network), with the image's environment, working directory and user.

use std::process::ExitCode;

use anyhow::Context as _;
use forge_oci::RuntimeConfig;
use forge_sandbox::{RunOptions, RunSpec};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The plugin: a path relative to the root or a directory name.
    plugin: String,
    /// Arguments replacing the image's CMD (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
    #[command(flatten)]
    common: crate::cli::Common,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.common.root();
    let plugin = forge_pipeline::select(&root, &forge_pipeline::discover(&root)?, &args.plugin)?;
    let progress = crate::progress::Progress::new(args.common.format, &root);
    let session = forge_pipeline::Session::open(args.common.session(root)?, &progress)?;
    let built = session.build_one(&plugin, &progress)?.built;
    let workspace = session.workspace();
    let scratch = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(workspace.store().root())
        .context("making a scratch directory")?;
    let rootfs = scratch.path().join("rootfs");
    forge_sandbox::unpack(workspace.store(), &built.stored, &rootfs)
        .with_context(|| format!("unpacking {}", built.image))?;
    let runtime = RuntimeConfig::from_config(&built.stored.config);
    let spec = RunSpec::from_image(&runtime, &args.args, &rootfs)?;
    eprintln!("running {} as {}", built.image, spec.argv.join(" "));
    let status = forge_sandbox::run(&rootfs, &spec, &RunOptions::default())?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
