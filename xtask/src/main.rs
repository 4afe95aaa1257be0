//! `cargo xtask`: the plugin-forge command line; installed, the same
//! commands as the standalone `plugin-forge` binary (`src/bin/`), which
//! takes the monorepo around the working directory as its default root.
//!
//! A thin driver: each subcommand parses its flags and calls into the
//! library crates, which hold the logic (forge-pipeline the orchestration
//! of builds and pushes). Command modules never import each other; what
//! they share is in `cli.rs` (flags), `output.rs` (tables, sizes, errors),
//! `progress.rs` (bars) and `report.rs` (tables and JSON lines of builds
//! and pushes). Run `cargo xtask --help`.

mod base_image;
mod bench;
mod build;
pub(crate) mod cli;
mod completions;
mod fuzz;
mod image;
mod lint;
mod login;
mod new;
pub(crate) mod output;
pub(crate) mod progress;
mod publish;
pub(crate) mod report;
mod run;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

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
    /// Create a plugin in the Supervisely layout under ROOT/plugins: entry
    /// points, Dockerfile, manifests, README, VERSION and LICENSE.
    New(new::Args),
    /// Check every plugin under ROOT/plugins against the lint rules.
    ///
    /// Exits 0 when there is no error (warnings allowed), 1 when there are
    /// errors, 2 on a usage or I/O problem.
    Lint(lint::Args),
    /// Build the images of the given plugins (tarballs under
    /// ROOT/target/plugin-forge/images, or one archive with --archive);
    /// the last lines name the images.
    Build(build::BuildArgs),
    /// Build every plugin in parallel (tarballs, or one archive of them
    /// all with --archive); a failing plugin does not stop the others, and
    /// the exit status is 1 if any failed.
    BuildAll(build::BuildAllArgs),
    /// Build base images from Debian packages (base-images/NAME.toml, pinned
    /// by NAME.lock) into the image store as REGISTRY/NAME.
    BaseImage(base_image::Args),
    /// Build a plugin's image and start it in a sandbox as the Supervisely
    /// agent does (task directory, config, `sh -c "python -u ..."`), or as
    /// `docker run --rm` with --docker-semantics.
    Run(Box<run::Args>),
    /// Build (cached when unchanged) and push plugin images to
    /// REGISTRY/NAME:TAG; all plugins unless some are named.
    Publish(publish::Args),
    /// Log in to a registry as `docker login` does: check the credentials
    /// against it, then store them in Docker's config.json (or the
    /// credential helper it names) for publish and pulls.
    Login(login::LoginArgs),
    /// Remove the stored credentials for a registry.
    Logout(login::LogoutArgs),
    /// Manage the local image store that FROM resolves through.
    #[command(subcommand)]
    Image(image::Command),
    /// Time our commands side by side with peers (tar|gzip, tar|pigz) and
    /// print the ratios.
    Bench(bench::Args),
    /// Run everything CI runs: formatting, clippy and the test suite.
    Test(test::Args),
    /// Print shell completions for the `plugin-forge` binary.
    Completions(completions::Args),
    /// Run a fuzz target (or `all`) for a time and report executions and crashes.
    Fuzz(fuzz::Args),
}

/// How the tool was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invocation {
    /// `cargo xtask` in this repository.
    Cargo,
    /// The installed `plugin-forge` binary, in any monorepo.
    Standalone,
}

static INVOCATION: OnceLock<Invocation> = OnceLock::new();

/// The name the tool was started by, for messages (`cargo xtask lint`).
pub(crate) fn command_name() -> &'static str {
    match INVOCATION.get() {
        Some(Invocation::Standalone) => STANDALONE_NAME,
        _ => "cargo xtask",
    }
}

/// The installed binary's name.
pub(crate) const STANDALONE_NAME: &str = "plugin-forge";

/// The command line definition, named as the tool was started.
pub(crate) fn cli_command() -> clap::Command {
    let name = command_name();
    Cli::command().name(name).bin_name(name)
}

/// On SIGINT or SIGTERM, removes the temporaries this process made (blob
/// temp files, spool directories, tarballs being written) and exits as the
/// signal would have (128 + its number); `kill -9` leaves them to the next
/// run, which removes those of processes that are gone.
fn remove_temporaries_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else { return };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            forge_oci::temp::remove_ours();
            std::process::exit(128 + signal);
        }
    });
}

fn main() -> ExitCode {
    run(Invocation::Cargo)
}

/// Parses the command line and runs the command.
pub(crate) fn run(invocation: Invocation) -> ExitCode {
    let _ = INVOCATION.set(invocation);
    remove_temporaries_on_signals();
    let matches = cli_command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let result = match cli.command {
        Command::New(args) => new::run(args),
        Command::Lint(args) => lint::run(args, matches.subcommand_matches("lint").expect("lint matches")),
        Command::Build(args) => build::run_build(args),
        Command::BuildAll(args) => build::run_build_all(args),
        Command::Login(args) => login::run_login(args),
        Command::Logout(args) => login::run_logout(args),
        Command::Image(command) => image::run(command),
        Command::BaseImage(args) => base_image::run(args),
        Command::Run(args) => run::run(*args),
        Command::Publish(args) => publish::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Test(args) => test::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Fuzz(args) => fuzz::run(args),
    };
    eprint!("{}", forge_pipeline::timings::summary());
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The default monorepo of every command: this repository for `cargo
/// xtask`; for `plugin-forge`, the nearest directory at or above the
/// working directory that holds `plugins/` (else the working directory).
pub(crate) fn project_root() -> PathBuf {
    if INVOCATION.get() == Some(&Invocation::Standalone) {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        return cwd
            .ancestors()
            .find(|dir| dir.join(forge_manifest::PLUGINS_DIR).is_dir())
            .map_or_else(|| cwd.clone(), Path::to_path_buf);
    }
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or(manifest_dir)
}

/// Whether `program` is on the `PATH` (or, with a `/`, exists).
pub(crate) fn has_program(sh: &xshell::Shell, program: &str) -> bool {
    let script = format!("command -v {program}");
    xshell::cmd!(sh, "sh -c {script}").quiet().ignore_stdout().run().is_ok()
}

#[cfg(test)]
mod tests {
    /// The modules every command may use; the others are commands.
    const SHARED: [&str; 5] = ["main", "cli", "output", "progress", "report"];

    /// A command module imports libraries and the shared modules, never
    /// another command's module.
    #[test]
    fn commands_do_not_import_each_other() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut modules: Vec<String> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        modules.sort();
        let commands: Vec<&String> = modules.iter().filter(|m| !SHARED.contains(&m.as_str())).collect();
        assert!(commands.iter().any(|c| *c == "build"), "{modules:?}");
        let mut offences = Vec::new();
        for module in &modules {
            let text = std::fs::read_to_string(src.join(format!("{module}.rs"))).unwrap();
            for other in commands.iter().filter(|c| **c != module) {
                if module != "main" && text.contains(&format!("crate::{other}::")) {
                    offences.push(format!("{module}.rs uses crate::{other}"));
                }
            }
        }
        assert!(offences.is_empty(), "command modules import each other: {offences:?}");
    }
}
