//! `cargo xtask run PLUGIN`: builds the plugin's image (cached when
//! unchanged) and starts it the way the Supervisely agent does: its
//! `sh -c "python -u /workdir/src/<mode>.py"`, its environment, its task
//! directory at `/sly_task_data` with `task_config.json`, `data/`,
//! `model/`, `results/` (see `forge_sandbox::agent`). `--docker-semantics`
//! runs it as `docker run --rm` would instead (ENTRYPOINT + CMD). Either
//! way in a bubblewrap sandbox without network, on a private writable
//! layer over a cached root (`forge_sandbox::rootcache`).

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use clap::ValueEnum;
use forge_builder::TARGET_DIR;
use forge_oci::RuntimeConfig;
use forge_sandbox::agent::{self, NamedConfig, TaskKind, TaskSetup};
use forge_sandbox::{LayerKind, RootCache, RunOptions, RunSpec};

use crate::cli::Format;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The plugin: a path relative to the root or a directory name.
    plugin: String,
    /// The mode to start: main, train, inference, deploy, deploy_smart
    /// [default: the type of --config, else main, else the first of MODES]
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Write the `config` of this entry of predefined_run_configs.json to
    /// task_config.json, as the agent does for the mode's task type.
    #[arg(long, value_name = "TITLE", conflicts_with = "config_file")]
    config: Option<String>,
    /// Take the task config from this JSON file (an object) instead.
    #[arg(long, value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Bind this directory read-only at /sly_task_data/data.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Bind this directory read-only at /sly_task_data/model.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Bind this directory read-write at /sly_task_data/results
    /// [default: ROOT/target/plugin-forge/runs/<plugin>/<time>/results]
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Run this program instead (as `docker run --entrypoint`); ARGS after
    /// `--` are its arguments.
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// Set a variable in the container, over the image's and the agent's;
    /// repeatable.
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Read variables from a file of `K=V` lines (`#` comments, blank
    /// lines), as `docker run --env-file`.
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Run as plain `docker run --rm` does: ENTRYPOINT + CMD (or ARGS),
    /// the image's environment only, no task directory.
    #[arg(long, conflicts_with_all = ["mode", "config", "config_file", "data", "model", "results"])]
    docker_semantics: bool,
    /// How each run gets its private writable layer.
    #[arg(long, value_enum, default_value_t = Layer::Overlay)]
    layer: Layer,
    /// Arguments: the command to run instead of the agent's (or of CMD
    /// with --docker-semantics), or the arguments of --entrypoint.
    #[arg(last = true)]
    args: Vec<String>,
    #[command(flatten)]
    common: crate::cli::Common,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Layer {
    /// An overlay over the cached root (falls back to a copy when the
    /// kernel refuses the mount).
    Overlay,
    /// A full copy of the cached root.
    Copy,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Absolute, as HOST_TASK_DIR, the binds and the overlay options need it.
    let root = args.common.root();
    let root = root.canonicalize().with_context(|| format!("--root {}", root.display()))?;
    // Inputs are checked before anything is built or unpacked.
    for (dir, what) in [(&args.data, "--data"), (&args.model, "--model")] {
        if let Some(dir) = dir {
            if !dir.is_dir() {
                bail!("{what} {}: no such directory", dir.display());
            }
        }
    }
    let mut env = Vec::new();
    for file in &args.env_file {
        env.extend(read_env_file(file)?);
    }
    for pair in &args.env {
        env.push(parse_env(pair).with_context(|| format!("--env {pair}"))?);
    }

    let plugin = forge_pipeline::select(&root, &forge_pipeline::discover(&root)?, &args.plugin)?;
    let progress = crate::progress::Progress::new(args.common.format, &root);
    let session = forge_pipeline::Session::open(args.common.session(root.clone())?, &progress)?;
    let built = session.build_one(&plugin, &progress)?.built;
    let workspace = session.workspace();
    let runtime = RuntimeConfig::from_config(&built.stored.config);
    let cache = RootCache::new(root.join(TARGET_DIR).join("roots"));
    let image_root = cache
        .root(workspace.store(), &built.stored, &built.image)
        .with_context(|| format!("unpacking {}", built.image))?;
    // Roots of earlier builds of this image only take space now.
    if let Err(e) = cache.prune(&image_root, &built.image) {
        eprintln!("note: could not remove old unpacked roots of {}: {e:#}", built.image);
    }
    let prefer = match args.layer {
        Layer::Overlay => LayerKind::Overlay,
        Layer::Copy => LayerKind::Copy,
    };
    let layer = cache.layer(&image_root, prefer)?;
    if let Some(reason) = layer.fallback_reason() {
        eprintln!("note: running on a copy of the root filesystem: {reason}");
    }

    let command = match (&args.entrypoint, args.args.is_empty()) {
        (Some(program), _) => {
            Some(std::iter::once(program.clone()).chain(args.args.iter().cloned()).collect())
        }
        (None, false) => Some(args.args.clone()),
        (None, true) => None,
    };
    let mut opts = RunOptions::default();
    let (spec, results) = if args.docker_semantics {
        let mut runtime = runtime.clone();
        if let Some(program) = &args.entrypoint {
            // As `docker run --entrypoint`: CMD is dropped with it.
            runtime.entrypoint = Some(vec![program.clone()]);
            runtime.cmd = None;
        }
        let mut spec = RunSpec::from_image(&runtime, &args.args, layer.image_root())?;
        for (key, value) in &env {
            spec.set_env(key, value);
        }
        eprintln!("running {} as {} (docker semantics)", built.image, shell_words(&spec.argv));
        (spec, None)
    } else {
        let plugin = forge_manifest::Plugin::load(&root, &built.plugin)?;
        let configs: Vec<NamedConfig> = plugin
            .run_configs
            .iter()
            .map(|c| (c.title.clone(), c.config_type.clone(), c.config.clone()))
            .collect();
        let modes = agent::modes(&runtime);
        let (mode, chosen) = agent::choose(
            &plugin.info.plugin_type,
            &modes,
            args.mode.as_deref(),
            &configs,
            args.config.as_deref(),
        )
        .with_context(|| format!("plugin {}", built.plugin.display()))?;
        let config = match (&args.config_file, chosen) {
            (Some(file), _) => read_config_file(file)?,
            (None, Some((_, _, config))) => config.clone(),
            (None, None) => serde_json::Map::new(),
        };
        let plugin_name = built.plugin.file_name().map_or_else(|| "plugin".into(), |n| n.to_string_lossy());
        let task_dir = new_run_dir(&root.join(TARGET_DIR).join("runs").join(&*plugin_name))?;
        let results = match &args.results {
            Some(dir) => std::path::absolute(dir).with_context(|| format!("--results {}", dir.display()))?,
            None => task_dir.join("results"),
        };
        let (data, model) = (absolute(args.data.as_deref())?, absolute(args.model.as_deref())?);
        let kind = TaskKind::of(&plugin.info.plugin_type, &mode);
        let setup = TaskSetup {
            kind,
            config: &config,
            data: data.as_deref(),
            model: model.as_deref(),
            results: &results,
        };
        opts.binds = agent::prepare_task(&task_dir, &setup)?;
        let mut all_env = agent::environment(&task_dir, |k| std::env::var(k).ok());
        all_env.extend(env);
        let spec = agent::spec(&runtime, layer.image_root(), &mode, command, &all_env)?;
        eprintln!("running {} mode {mode} as {}", built.image, shell_words(&spec.argv));
        eprintln!("task directory {}", task_dir.display());
        (spec, Some(results))
    };

    let status = match args.common.format {
        Format::Json => layer.run(&spec, &opts)?,
        Format::Human | Format::Markdown => {
            let color = std::io::stdout().is_terminal();
            let mut out = anstream::stdout().lock();
            layer.run_lines(&spec, &opts, &mut |line| {
                // A closed pipe only loses the rest of the display.
                let _ = writeln!(out, "{}", forge_sandbox::logs::render_line(line, color));
            })?
        }
    };
    if let Some(results) = results {
        eprintln!("results in {}", results.display());
    }
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn absolute(path: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    path.map(|p| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))).transpose()
}

/// A new directory `parent/<UTC time>` (`-2`, `-3`, ... when taken).
fn new_run_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let seconds = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp: String =
        forge_oci::image::rfc3339(seconds).chars().filter(|c| *c != '-' && *c != ':').collect();
    for n in 1.. {
        let name = if n == 1 { stamp.clone() } else { format!("{stamp}-{n}") };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    unreachable!("the loop returns")
}

fn parse_env(pair: &str) -> anyhow::Result<(String, String)> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        // `docker run -e KEY` takes the caller's value.
        None if !pair.is_empty() => Ok((pair.to_owned(), std::env::var(pair).unwrap_or_default())),
        _ => bail!("expected KEY=VALUE"),
    }
}

fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading --env-file {}", path.display()))?;
    let mut env = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        env.push(parse_env(line).with_context(|| format!("{}:{}", path.display(), i + 1))?);
    }
    Ok(env)
}

fn read_config_file(path: &Path) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading --config-file {}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => bail!("--config-file {}: expected a JSON object", path.display()),
        Err(e) => bail!("--config-file {}:{}:{}: {e}", path.display(), e.line(), e.column()),
    }
}

/// `argv` as a shell would need it typed (single quotes where needed).
fn shell_words(argv: &[String]) -> String {
    let quote = |word: &String| {
        if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
            word.clone()
        } else {
            format!("'{}'", word.replace('\'', "'\\''"))
        }
    };
    argv.iter().map(quote).collect::<Vec<_>>().join(" ")
}
