//! `cargo xtask test`: everything CI checks, in the order that fails fastest.
//! This is the README's test command and what `.ci/run` calls.

use std::process::ExitCode;

use xshell::{cmd, Shell};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only run the test suite (skip `cargo fmt --check` and clippy).
    #[arg(long)]
    quick: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    if !args.quick {
        cmd!(sh, "cargo fmt --all -- --check").run()?;
        cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?;
    }
    cmd!(sh, "cargo test --workspace --locked").run()?;
    Ok(ExitCode::SUCCESS)
}
