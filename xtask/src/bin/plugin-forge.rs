//! The standalone `plugin-forge` binary (`cargo install --path xtask`):
//! every command of `cargo xtask`, the same code, for any monorepo (the
//! default root is the one around the working directory).

#[path = "../main.rs"]
#[allow(dead_code)]
mod app;

// The modules name what they share as `crate::cli`, `crate::project_root`,
// ...: at this binary's root, those are `app`'s.
use app::{
    cli, cli_command, command_name, has_program, output, progress, project_root, report, STANDALONE_NAME,
};

fn main() -> std::process::ExitCode {
    app::run(app::Invocation::Standalone)
}
