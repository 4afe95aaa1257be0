//! `cargo xtask test`: everything CI checks, in the order that fails fastest.
//! This is the README's test command and what `.ci/run` calls.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only run the test suite (skip `cargo fmt --check` and clippy).
    #[arg(long)]
    quick: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    if !args.quick {
        cmd!(sh, "cargo fmt --all -- --check").run()?;
        cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?;
    }

    // The test run is streamed through and tallied, so that the last line
    // says how many tests ran in all rather than the count of the last
    // target (often the doc tests, with none).
    let mut child = Command::new("cargo")
        .args(["test", "--workspace", "--locked", "--color", "always"])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("capturing cargo test's output")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        if let Some(counts) = line.split("test result: ").nth(1) {
            for part in counts.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(what), Some(n)) = (words.next(), words.next()) else { continue };
                let n = n.trim_start_matches(|c: char| !c.is_ascii_digit()).parse::<u64>().unwrap_or(0);
                match what {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    "ignored" => ignored += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!("\ntests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        bail!("cargo test failed");
    }
    if passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(ExitCode::SUCCESS)
}
