//! `cargo xtask`: the plugin-forge command line.
//!
//! A thin driver: each subcommand parses its flags and calls into the
//! library crates, which hold the logic. Run `cargo xtask --help`.

mod base_image;
mod bench;
mod build;
mod image;
mod image_check;
mod lint;
mod publish;
mod run;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Lint, build and publish a monorepo of Supervisely plugins without a
/// Docker daemon.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every plugin under ROOT/plugins against the lint rules.
    ///
    /// Exits 0 when there is no error (warnings allowed), 1 when there are
    /// errors, 2 on a usage or I/O problem.
    Lint(lint::Args),
    /// Build the images of the given plugins (tarballs under
    /// ROOT/target/plugin-forge/images); the last lines name the images.
    Build(build::BuildArgs),
    /// Build every plugin in parallel; a failing plugin does not stop the
    /// others, and the exit status is 1 if any failed.
    BuildAll(build::BuildAllArgs),
    /// Build base images from Debian packages (base-images/NAME.toml, pinned
    /// by NAME.lock) into the image store as REGISTRY/NAME.
    BaseImage(base_image::Args),
    /// Build a plugin's image and run its entry point in a sandbox, like
    /// `docker run --rm`.
    Run(run::Args),
    /// Build (cached when unchanged) and push plugin images to
    /// REGISTRY/NAME:TAG; all plugins unless some are named.
    Publish(publish::Args),
    /// Manage the local image store that FROM resolves through.
    #[command(subcommand)]
    Image(image::Command),
    /// Time our commands side by side with peers (tar|gzip, tar|pigz) and
    /// print the ratios.
    Bench(bench::Args),
    /// Run everything CI runs: formatting, clippy and the test suite.
    Test(test::Args),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let result = match cli.command {
        Command::Lint(args) => lint::run(args, matches.subcommand_matches("lint").expect("lint matches")),
        Command::Build(args) => build::run_build(args),
        Command::BuildAll(args) => build::run_build_all(args),
        Command::Image(command) => image::run(command),
        Command::BaseImage(args) => base_image::run(args),
        Command::Run(args) => run::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Test(args) => test::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The root of this repository: the default monorepo for every command.
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or(manifest_dir)
}

/// How to show `root` in messages: relative to the working directory when
/// it is inside it, as given otherwise.
pub(crate) fn display_root(root: &Path) -> PathBuf {
    let (Ok(cwd), Ok(abs)) = (std::env::current_dir().and_then(|d| d.canonicalize()), root.canonicalize())
    else {
        return root.to_path_buf();
    };
    match abs.strip_prefix(&cwd) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => root.to_path_buf(),
    }
}

/// Whether `program` is on the `PATH` (or, with a `/`, exists).
pub(crate) fn has_program(sh: &xshell::Shell, program: &str) -> bool {
    let script = format!("command -v {program}");
    xshell::cmd!(sh, "sh -c {script}").quiet().ignore_stdout().run().is_ok()
}
