//! `cargo xtask login REGISTRY [-u USER] [--password-stdin]` and `cargo
//! xtask logout REGISTRY`: Docker's `config.json` written as `docker login`
//! writes it (forge-pipeline's `login`/`logout` do the work: the check
//! against the registry, the credential helper, the atomic 0600 write).
//! Here: the flags, the prompts, the messages.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use forge_pipeline::{LoginOptions, Stored};

use crate::cli::Transport;

#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The registry, `host[:port]` (`docker.io` for Docker Hub).
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// The user name [default: asked on the terminal]
    #[arg(short = 'u', long, value_name = "USER")]
    username: Option<String>,
    /// Read the password (or access token) from stdin, e.g. `echo "$TOKEN" |
    /// cargo xtask login -u ci --password-stdin REGISTRY`.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    transport: Transport,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {
    /// The registry, `host[:port]` (`docker.io` for Docker Hub).
    #[arg(value_name = "REGISTRY")]
    registry: String,
}

pub(crate) fn run_login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let username = match (&args.username, args.password_stdin) {
        (Some(user), _) => user.clone(),
        (None, true) => anyhow::bail!("--password-stdin needs the user name as -u USER"),
        (None, false) => prompt_line("Username: ")?.trim().to_owned(),
    };
    anyhow::ensure!(!username.is_empty(), "the user name is empty");
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the password from stdin")?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        prompt_password()?
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    let logged_in = forge_pipeline::login(&LoginOptions {
        registry: &args.registry,
        username: &username,
        password: &password,
        insecure_registries: &args.transport.insecure_registries,
        ca_certs: &args.transport.ca_certs,
    })?;
    match &logged_in.stored {
        Stored::File(path) => eprintln!("credentials stored in {}", path.display()),
        Stored::Helper(helper) => eprintln!(
            "credentials stored by docker-credential-{helper} (as {} says)",
            logged_in.config.display()
        ),
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let (config, erased) = forge_pipeline::logout(&args.registry)?;
    if erased {
        println!("Removed the login credentials for {} ({})", args.registry, config.display());
    } else {
        println!("Not logged in to {} ({})", args.registry, config.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "no terminal to ask on: pass -u USER and --password-stdin"
    );
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Asks for the password with the terminal's echo off (`stty`), and turns
/// it back on whatever happens.
fn prompt_password() -> anyhow::Result<String> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "no terminal to ask for the password on: pass it with --password-stdin"
    );
    let sh = xshell::Shell::new()?;
    xshell::cmd!(sh, "stty -F /dev/tty -echo").quiet().run().context("turning the terminal's echo off")?;
    let read = prompt_line("Password: ");
    let restored = xshell::cmd!(sh, "stty -F /dev/tty echo").quiet().run();
    eprintln!();
    let password = read?;
    restored.context("turning the terminal's echo back on")?;
    Ok(password)
}
