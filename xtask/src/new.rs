//! `cargo xtask new PATH --type TYPE`: create a plugin in the Supervisely
//! layout (the files are decided and written by forge-scaffold; this module
//! reads the flags, asks for missing ones on a terminal, and prints what
//! was created).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::builder::PossibleValuesParser;
use forge_scaffold::{License, PluginType, Request};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The plugin directory, under ROOT/plugins (`import/my-csv` or
    /// `plugins/import/my-csv`).
    path: PathBuf,
    /// The plugin type [asked on a terminal when missing]
    #[arg(long = "type", value_name = "TYPE", value_parser = PossibleValuesParser::new(["import", "architecture", "dtl", "custom"]))]
    plugin_type: Option<String>,
    /// The title shown on the instance [default: from the directory name]
    #[arg(long)]
    title: Option<String>,
    /// The description shown on the instance [default: a sentence naming the type]
    #[arg(long)]
    description: Option<String>,
    /// The license, by SPDX id (Apache-2.0, MIT, BSD-3-Clause, MPL-2.0); its full text is written to LICENSE.
    #[arg(long, value_name = "SPDX", default_value = "Apache-2.0")]
    license: String,
    /// The image of VERSION, NAME:TAG [default: NAMESPACE/DIR:0.1.0, NAMESPACE shared by the other plugins]
    #[arg(long, value_name = "NAME:TAG")]
    image: Option<String>,
    /// The copyright holders of the license [default: "the TITLE authors"]
    #[arg(long, value_name = "HOLDERS")]
    copyright: Option<String>,
    /// The monorepo root, the directory that holds `plugins/` [default: this repository]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.root.clone().unwrap_or_else(crate::project_root);
    let license = License::find(&args.license).ok_or_else(|| {
        forge_scaffold::ScaffoldError::UnknownLicense { id: args.license.clone(), known: License::ids() }
    })?;
    let interactive = std::io::stdin().is_terminal() && std::env::var_os("CI").is_none();
    let (plugin_type, title, description) = match (&args.plugin_type, interactive) {
        (Some(t), _) => (t.parse::<PluginType>()?, args.title.clone(), args.description.clone()),
        (None, true) => ask(&args)?,
        (None, false) => anyhow::bail!(
            "no --type given: pass --type import|architecture|dtl|custom (questions are asked only on a terminal, never in CI)"
        ),
    };
    let year = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1970, |d| forge_scaffold::year_of(i64::try_from(d.as_secs()).unwrap_or(0)));
    let request = Request {
        path: args.path.clone(),
        plugin_type,
        title,
        description,
        license,
        image: args.image.clone(),
        copyright: args.copyright.clone(),
        year,
    };
    let scaffold = forge_scaffold::plan(&root, &request)?;
    forge_scaffold::write(&root, &scaffold)?;
    println!(
        "created {} ({plugin_type} plugin \"{}\", image {}, license {}):",
        scaffold.dir.display(),
        scaffold.title,
        scaffold.image,
        scaffold.license.id
    );
    for f in &scaffold.files {
        println!("  {}", scaffold.dir.join(&f.path).display());
    }
    let name = scaffold.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tool = crate::command_name();
    println!("next: {tool} lint, then {tool} run {name}, then {tool} publish {name} --registry REG");
    Ok(ExitCode::SUCCESS)
}

/// Asks for the type, title and description the flags left out.
fn ask(args: &Args) -> anyhow::Result<(PluginType, Option<String>, Option<String>)> {
    let plugin_type = loop {
        let answer = prompt("plugin type (import, architecture, dtl, custom)", Some("custom"))?;
        match answer.parse::<PluginType>() {
            Ok(t) => break t,
            Err(e) => eprintln!("{e}"),
        }
    };
    let title = match &args.title {
        Some(t) => Some(t.clone()),
        None => Some(prompt("title (empty: from the directory name)", None)?).filter(|t| !t.is_empty()),
    };
    let description = match &args.description {
        Some(d) => Some(d.clone()),
        None => {
            Some(prompt("description (empty: a sentence naming the type)", None)?).filter(|d| !d.is_empty())
        }
    };
    Ok((plugin_type, title, description))
}

fn prompt(question: &str, default: Option<&str>) -> anyhow::Result<String> {
    match default {
        Some(d) => eprint!("{question} [{d}]: "),
        None => eprint!("{question}: "),
    }
    std::io::stderr().flush().context("writing the question")?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).context("reading the answer")? == 0 {
        anyhow::bail!("no answer (end of input); pass the flags instead");
    }
    let line = line.trim().to_string();
    Ok(if line.is_empty() { default.unwrap_or_default().to_string() } else { line })
}
