//! `cargo xtask lint`: runs the lint rules over a monorepo and prints the
//! diagnostics rustc-style (stderr) or as JSON lines (stdout).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgMatches, ValueEnum};
use forge_lint::render::{self, HumanOptions};
use forge_lint::{lint_root, rules, Level, LintConfig, Severity};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// rustc-style diagnostics and a summary, on stderr.
    Human,
    /// One JSON object per diagnostic per line, on stdout.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The monorepo root, the directory that holds `plugins/` [default: this repository]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Report this rule (code or name) as an error; repeatable.
    #[arg(short = 'D', long = "deny", value_name = "RULE")]
    deny: Vec<String>,
    /// Report this rule as a warning; repeatable.
    #[arg(short = 'W', long = "warn", value_name = "RULE")]
    warn: Vec<String>,
    /// Do not report this rule; repeatable.
    #[arg(short = 'A', long = "allow", value_name = "RULE")]
    allow: Vec<String>,
    /// Print the explanation of a rule and exit.
    #[arg(long, value_name = "RULE", conflicts_with_all = ["list_rules"])]
    explain: Option<String>,
    /// List every rule with its code, default severity and name, and exit.
    #[arg(long)]
    list_rules: bool,
}

/// Exit code of a usage or I/O problem.
fn usage_error() -> ExitCode {
    ExitCode::from(2)
}

pub(crate) fn run(args: Args, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    if args.list_rules {
        for rule in rules::ALL {
            println!("{}  {:<7}  {}", rule.code, rule.default.to_string(), rule.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(wanted) = &args.explain {
        let Some(rule) = rules::lookup(wanted) else { return Ok(unknown_rule(wanted)) };
        println!("{} ({}, {} by default)\n\n{}", rule.code, rule.name, rule.default, rule.explanation);
        return Ok(ExitCode::SUCCESS);
    }

    // Later flags win over earlier ones, whatever their kind, as with rustc.
    let mut overrides: Vec<(usize, &str, Level)> = Vec::new();
    for (id, values, level) in [
        ("allow", &args.allow, Level::Allow),
        ("warn", &args.warn, Level::Warn),
        ("deny", &args.deny, Level::Deny),
    ] {
        let indices = matches.indices_of(id).into_iter().flatten();
        overrides.extend(indices.zip(values).map(|(i, v)| (i, v.as_str(), level)));
    }
    overrides.sort_by_key(|(i, ..)| *i);
    let mut config = LintConfig::default();
    for (_, name, level) in overrides {
        let Some(rule) = rules::lookup(name) else { return Ok(unknown_rule(name)) };
        config.set(rule, level);
    }

    let root = args.root.unwrap_or_else(crate::project_root);
    let report = match lint_root(&root, &config) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(usage_error());
        }
    };

    match args.format {
        Format::Json => {
            let mut out = std::io::stdout().lock();
            for (plugin, d) in report.diagnostics() {
                match writeln!(out, "{}", render::json(plugin, d)) {
                    // A closed pipe (`| head`) ends the output quietly, as with cat.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                    other => other.context("writing to stdout")?,
                }
            }
        }
        Format::Human => {
            let shown = crate::output::display_root(&root);
            let options = HumanOptions { root: &shown, color: true };
            let mut err = anstream::stderr().lock();
            for (_, d) in report.diagnostics() {
                write!(err, "{}", render::human(d, options)).context("writing to stderr")?;
            }
            if report.plugins.is_empty() {
                writeln!(err, "warning: no plugins found under {}", shown.join("plugins").display())?;
            }
            write!(err, "{}", render::summary(&report, options)).context("writing to stderr")?;
        }
    }
    Ok(if report.count(Severity::Error) > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn unknown_rule(name: &str) -> ExitCode {
    eprintln!("error: unknown lint rule `{name}`; `cargo xtask lint --list-rules` lists them");
    usage_error()
}
