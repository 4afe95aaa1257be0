//! `cargo xtask completions bash|zsh|fish`: shell completions for the
//! installed `plugin-forge` binary, from the command line's definition
//! (clap's generator), on stdout.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell: bash, zsh, fish (also elvish, powershell).
    shell: clap_complete::Shell,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut command = crate::cli_command().name(crate::STANDALONE_NAME).bin_name(crate::STANDALONE_NAME);
    clap_complete::generate(args.shell, &mut command, crate::STANDALONE_NAME, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
