//! `cargo xtask build PLUGIN...` and `cargo xtask build-all`: build plugin
//! images without a daemon, in parallel, into one tarball each.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::ValueEnum;
use forge_builder::{
    BuildOptions, Built, LocalResolver, Override, PullingResolver, Status, Workspace, TARGET_DIR,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;
use xshell::{cmd, Shell};

/// The registry image names get when `--registry` is not given.
pub(crate) const DEFAULT_REGISTRY: &str = "localhost:5000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Progress on stderr, a summary table on stdout.
    Human,
    /// One JSON object per plugin per line on stdout.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// The monorepo root, the directory that holds `plugins/` [default: this repository]
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// Registry prefix of image names (the `REGISTRY` build arg).
    #[arg(long, value_name = "REG", default_value = DEFAULT_REGISTRY)]
    registry: String,
    /// Use SOURCE (OCI layout dir[:TAG], oci-archive or docker-archive) for
    /// the base image REF (`repo:tag`, or `repo` for every tag); repeatable.
    #[arg(long = "base-image", value_name = "REF=SOURCE")]
    base_images: Vec<String>,
    /// Where tarballs go [default: ROOT/target/plugin-forge/images]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Plugins built at once [default: all cores]
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
    /// Talk plain HTTP to this registry (loopback registries always are); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub(crate) insecure_registries: Vec<String>,
    /// Build even plugins the linter finds errors in (by default they fail
    /// with the lint errors, as they could not be built or run correctly).
    #[arg(long)]
    no_lint: bool,
    /// Do not check this rule (code or name), e.g. `-A PF401` for images
    /// the agent never starts; repeatable.
    #[arg(short = 'A', long = "allow", value_name = "RULE")]
    allow: Vec<String>,
    /// Report this rule as a warning only; repeatable.
    #[arg(short = 'W', long = "warn", value_name = "RULE")]
    warn: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// Plugins to build: paths relative to the root (`plugins/import/csv`)
    /// or directory names (`csv`).
    #[arg(required = true, value_name = "PLUGIN")]
    plugins: Vec<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BuildAllArgs {
    #[command(flatten)]
    common: Common,
    /// Publish the images once built (as `cargo xtask publish`).
    #[arg(long)]
    push: bool,
    #[command(flatten)]
    push_flags: crate::publish::PushFlags,
}

pub(crate) fn run_build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let root = args.common.root.clone().unwrap_or_else(crate::project_root);
    let all = discover(&root)?;
    let mut selected = Vec::new();
    for wanted in &args.plugins {
        selected.push(select(&root, &all, wanted)?);
    }
    build(&root, selected, &args.common, false)
}

pub(crate) fn run_build_all(args: BuildAllArgs) -> anyhow::Result<ExitCode> {
    let root = args.common.root.clone().unwrap_or_else(crate::project_root);
    let all = discover(&root)?;
    if all.is_empty() {
        bail!("no plugins found under {}", root.join("plugins").display());
    }
    if args.push {
        return crate::publish::build_and_push(&root, all, &args.common, &args.push_flags);
    }
    build(&root, all, &args.common, true)
}

pub(crate) fn discover(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(forge_manifest::discover(root)?.plugins)
}

/// A plugin by path relative to the root, or by its directory name.
pub(crate) fn select(root: &Path, all: &[PathBuf], wanted: &str) -> anyhow::Result<PathBuf> {
    let as_path = Path::new(wanted.trim_end_matches('/'));
    if let Some(found) = all.iter().find(|p| p.as_path() == as_path) {
        return Ok(found.clone());
    }
    // A path given relative to the working directory.
    if let (Ok(abs), Ok(root_abs)) = (as_path.canonicalize(), root.canonicalize()) {
        if let Some(found) =
            abs.strip_prefix(&root_abs).ok().and_then(|rel| all.iter().find(|p| p.as_path() == rel))
        {
            return Ok(found.clone());
        }
    }
    let by_name: Vec<&PathBuf> = all.iter().filter(|p| p.file_name().is_some_and(|n| n == wanted)).collect();
    match by_name.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!(
            "no plugin `{wanted}` under {}; plugins are: {}",
            root.join("plugins").display(),
            all.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
        many => bail!(
            "`{wanted}` names several plugins ({}); give the path",
            many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

pub(crate) struct Outcome {
    pub(crate) plugin: PathBuf,
    pub(crate) result: anyhow::Result<(Built, PathBuf)>,
    pub(crate) time: Duration,
}

/// What every build of a run shares.
pub(crate) struct Setup {
    resolver: PullingResolver,
    pub(crate) workspace: Workspace,
    out: PathBuf,
    options: BuildOptions,
    /// Severities of the image rules (`-A`/`-W`).
    lint: forge_lint::LintConfig,
}

pub(crate) fn setup(root: &Path, common: &Common) -> anyhow::Result<Setup> {
    let overrides = common
        .base_images
        .iter()
        .map(|o| Override::parse(o).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let workspace = Workspace::open(root, &root.join(TARGET_DIR).join("oci"))?;
    // Base images described in base-images/ are built when missing.
    for name in crate::base_image::descriptions(root)? {
        let description = root.join(crate::base_image::BASE_IMAGES_DIR).join(format!("{name}.toml"));
        let repo = forge_debian::description::Description::load(&description)?.name;
        let reference = format!("{}/{repo}", common.registry.trim_end_matches('/'));
        let overridden = overrides.iter().any(|o| forge_builder::repository(&o.reference) == reference);
        if !overridden && workspace.store().resolve_ref(&reference)?.is_none() {
            eprintln!("base image {reference} is missing: building it from {}", description.display());
            crate::base_image::ensure(root, workspace.store(), &name, &common.registry, Default::default())?;
        }
    }
    Ok(Setup {
        resolver: PullingResolver::new(
            LocalResolver::new(overrides),
            crate::publish::client(common, u64::MAX)?,
        ),
        workspace,
        out: common.out.clone().unwrap_or_else(|| root.join(TARGET_DIR).join("images")),
        lint: crate::image_check::config(&common.allow, &common.warn)?,
        options: BuildOptions {
            registry: common.registry.clone(),
            epoch: source_date_epoch()?,
            revision: git(root, &["rev-parse", "HEAD"]),
            source: git(root, &["remote", "get-url", "origin"]).map(|url| strip_credentials(&url)),
        },
    })
}

/// Builds one plugin (for `cargo xtask run`): its workspace and image.
pub(crate) fn build_one(root: &Path, wanted: &str, common: &Common) -> anyhow::Result<(Workspace, Built)> {
    let all = discover(root)?;
    let plugin = select(root, &all, wanted)?;
    let setup = setup(root, common)?;
    let built = setup.workspace.build(&plugin, &setup.options, &setup.resolver)?;
    crate::image_check::check(&setup.workspace, &built, &setup.lint)?;
    setup.workspace.export(&built, &setup.out)?;
    Ok((setup.workspace, built))
}

fn build(root: &Path, plugins: Vec<PathBuf>, common: &Common, is_all: bool) -> anyhow::Result<ExitCode> {
    let setup = setup(root, common)?;
    let outcomes = build_plugins(&setup, &plugins, common)?;
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    report(&outcomes, common, is_all);
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Lints `plugins` first (unless `--no-lint`): a plugin with lint errors
/// fails with them and is not built; the others build in parallel, with
/// progress on stderr. Outcomes are in the order of `plugins`.
pub(crate) fn build_plugins(
    setup: &Setup,
    plugins: &[PathBuf],
    common: &Common,
) -> anyhow::Result<Vec<Outcome>> {
    let rejected =
        if common.no_lint { HashMap::new() } else { lint_gate(setup.workspace.root(), plugins, common)? };
    let buildable: Vec<PathBuf> = plugins.iter().filter(|p| !rejected.contains_key(*p)).cloned().collect();
    let mut built: HashMap<PathBuf, Outcome> =
        build_in_parallel(setup, &buildable, common)?.into_iter().map(|o| (o.plugin.clone(), o)).collect();
    Ok(plugins
        .iter()
        .filter_map(|p| match rejected.get(p) {
            Some(why) => Some(Outcome {
                plugin: p.clone(),
                result: Err(anyhow::anyhow!("{why}")),
                time: Duration::ZERO,
            }),
            None => built.remove(p),
        })
        .collect())
}

/// The plugins among `plugins` with lint errors, each with a one-line
/// summary; in human mode their errors are shown rustc-style on stderr.
fn lint_gate(root: &Path, plugins: &[PathBuf], common: &Common) -> anyhow::Result<HashMap<PathBuf, String>> {
    let report = forge_lint::lint_root(root, &crate::image_check::config(&common.allow, &common.warn)?)?;
    let mut rejected = HashMap::new();
    for plugin in report.plugins.iter().filter(|p| plugins.contains(&p.dir)) {
        let errors: Vec<&forge_lint::Diagnostic> =
            plugin.diagnostics.iter().filter(|d| d.severity == forge_lint::Severity::Error).collect();
        let Some(first) = errors.first() else { continue };
        if common.format == Format::Human {
            let shown = crate::display_root(root);
            let options =
                forge_lint::render::HumanOptions { root: &shown, color: std::io::stderr().is_terminal() };
            for d in &errors {
                eprint!("{}", forge_lint::render::human(d, options));
            }
        }
        let location = match (&first.file, first.position) {
            (Some(file), Some(p)) => format!("{}:{}:{}: ", file.display(), p.line, p.column),
            (Some(file), None) => format!("{}: ", file.display()),
            _ => String::new(),
        };
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        rejected.insert(
            plugin.dir.clone(),
            format!(
                "lint error[{}]: {location}{}{more}; run `cargo xtask lint`, or build anyway with --no-lint",
                first.rule.code, first.message
            ),
        );
    }
    Ok(rejected)
}

fn build_in_parallel(setup: &Setup, plugins: &[PathBuf], common: &Common) -> anyhow::Result<Vec<Outcome>> {
    let Setup { resolver, workspace, out, options, lint } = setup;
    let jobs =
        common.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build().context("starting build threads")?;

    let human = common.format == Format::Human;
    let bars = human && std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} {elapsed:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());

    let outcomes: Vec<Outcome> = pool.install(|| {
        plugins
            .par_iter()
            .map(|plugin| {
                let bar = bars.then(|| {
                    let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()));
                    bar.set_prefix(plugin.display().to_string());
                    bar.set_message("building");
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                if human && !bars {
                    eprintln!("building {}", plugin.display());
                }
                let started = Instant::now();
                let result = workspace
                    .build(plugin, options, resolver)
                    .map_err(anyhow::Error::from)
                    .and_then(|built| {
                        crate::image_check::check(workspace, &built, lint)?;
                        if let Some(bar) = &bar {
                            bar.set_message("writing tarball");
                        }
                        let tarball = workspace.export(&built, out)?;
                        Ok((built, tarball))
                    });
                let time = started.elapsed();
                if let Some(bar) = bar {
                    match &result {
                        Ok((built, _)) => {
                            bar.finish_with_message(format!("{} {}", status_word(built.status), built.image))
                        }
                        Err(_) => bar.finish_with_message("failed"),
                    }
                } else if human {
                    match &result {
                        Ok((built, _)) => eprintln!(
                            "{} {} ({:.1}s)",
                            status_word(built.status),
                            built.image,
                            time.as_secs_f64()
                        ),
                        Err(_) => eprintln!("failed {}", plugin.display()),
                    }
                }
                Outcome { plugin: plugin.clone(), result, time }
            })
            .collect()
    });
    Ok(outcomes)
}

fn report(outcomes: &[Outcome], common: &Common, is_all: bool) {
    match common.format {
        Format::Json => {
            for o in outcomes {
                println!("{}", json_line(o));
            }
        }
        Format::Human => {
            for o in outcomes {
                if let Err(e) = &o.result {
                    eprintln!("error: {}: {e:#}", o.plugin.display());
                }
            }
            if is_all || outcomes.len() > 1 {
                print_table(outcomes);
            }
            // Like build_plugin.sh, the last line names the image(s).
            for o in outcomes {
                if let Ok((built, _)) = &o.result {
                    println!("{}", built.image);
                }
            }
        }
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Built => "built",
        Status::Cached => "cached",
    }
}

fn print_table(outcomes: &[Outcome]) {
    let rows: Vec<[String; 5]> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok((built, _)) => [
                built.image.clone(),
                built.digest().to_string().chars().take(19).collect(),
                human_size(built.size),
                format!("{:.2}s", o.time.as_secs_f64()),
                format!(
                    "{} ({} layers built, {} cached)",
                    status_word(built.status),
                    built.layers_built,
                    built.layers_cached
                ),
            ],
            Err(_) => [
                o.plugin.display().to_string(),
                "-".into(),
                "-".into(),
                format!("{:.2}s", o.time.as_secs_f64()),
                "failed".into(),
            ],
        })
        .collect();
    table(&["IMAGE", "DIGEST", "SIZE", "TIME", "STATUS"], &rows);
}

/// Prints left-aligned columns with a header row on stdout.
pub(crate) fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let header = header.map(String::from);
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().chain(std::iter::once(&header)).map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn json_line(o: &Outcome) -> String {
    let value = match &o.result {
        Ok((built, tarball)) => serde_json::json!({
            "plugin": o.plugin,
            "image": built.image,
            "tarball": tarball,
            "digest": built.digest().to_string(),
            "size": built.size,
            "seconds": o.time.as_secs_f64(),
            "layers_built": built.layers_built,
            "layers_cached": built.layers_cached,
            "status": status_word(built.status),
            "error": null,
        }),
        Err(e) => serde_json::json!({
            "plugin": o.plugin,
            "image": null,
            "tarball": null,
            "digest": null,
            "seconds": o.time.as_secs_f64(),
            "status": "failed",
            "error": format!("{e:#}"),
        }),
    };
    value.to_string()
}

/// `SOURCE_DATE_EPOCH`, or 0: the same inputs give the same bytes.
pub(crate) fn source_date_epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH=`{v}` is not a whole number of seconds")),
        _ => Ok(0),
    }
}

/// The output of `git ARGS` in `root`, when it is a git checkout.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let sh = Shell::new().ok()?;
    sh.change_dir(root);
    let out = cmd!(sh, "git {args...}").quiet().ignore_stderr().read().ok()?;
    let out = out.trim().to_string();
    (!out.is_empty()).then_some(out)
}

/// `https://user:token@host/repo` → `https://host/repo`: credentials never
/// go into an image.
fn strip_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{host}/{path}")
            }
            None => format!("{scheme}://{}", rest.rsplit_once('@').map_or(rest, |(_, h)| h)),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped() {
        assert_eq!(strip_credentials("https://u:t@github.com/a/b.git"), "https://github.com/a/b.git");
        assert_eq!(strip_credentials("git@github.com:a/b.git"), "git@github.com:a/b.git");
        assert_eq!(strip_credentials("https://host"), "https://host");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(50 * 1024 * 1024), "50.0 MiB");
    }
}
