//! `cargo xtask publish [PLUGIN...]` and `build-all --push`: build the
//! images (cached when unchanged) and push them to `REGISTRY/NAME:TAG`
//! without a daemon. Blobs the registry has are skipped, blobs of sibling
//! repositories mounted, the manifest pushed last by digest and then the
//! tag. Credentials come from Docker's `config.json`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use forge_registry::{Client, ClientOptions, DockerConfig, PushEvent, PushReport, Reference};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::build::{Common, Format, Outcome};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Plugins to publish (paths relative to the root or directory names) [default: all]
    #[arg(value_name = "PLUGIN")]
    plugins: Vec<String>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    push: PushFlags,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PushFlags {
    /// Images uploaded at once, across all plugins.
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_uploads: usize,
    /// Upload blobs larger than this many MiB in chunks (for proxies that
    /// limit request bodies) [default: never]
    #[arg(long, value_name = "MIB")]
    chunk_size: Option<u64>,
}

/// A registry client for `common`'s flags: Docker's credentials, plain
/// HTTP for loopback and `--insecure-registry` hosts.
pub(crate) fn client(common: &Common, chunk_size: u64) -> anyhow::Result<Client> {
    let credentials =
        DockerConfig::from_env().context("reading Docker's config.json for registry credentials")?;
    Ok(Client::new(ClientOptions {
        insecure_registries: common.insecure_registries.clone(),
        chunk_size,
        credentials: Box::new(credentials),
        ..ClientOptions::default()
    }))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.common.root.clone().unwrap_or_else(crate::project_root);
    let all = crate::build::discover(&root)?;
    let plugins = if args.plugins.is_empty() {
        all
    } else {
        args.plugins.iter().map(|p| crate::build::select(&root, &all, p)).collect::<anyhow::Result<_>>()?
    };
    build_and_push(&root, plugins, &args.common, &args.push)
}

struct Pushed {
    plugin: PathBuf,
    image: Option<String>,
    result: anyhow::Result<PushReport>,
    time: Duration,
}

/// Builds `plugins`, then pushes every image that built.
pub(crate) fn build_and_push(
    root: &Path,
    plugins: Vec<PathBuf>,
    common: &Common,
    flags: &PushFlags,
) -> anyhow::Result<ExitCode> {
    let setup = crate::build::setup(root, common)?;
    let outcomes = crate::build::build_plugins(&setup, &plugins, common)?;
    let chunk = flags.chunk_size.map_or(u64::MAX, |mib| mib.saturating_mul(1 << 20));
    let client = client(common, chunk)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(flags.max_uploads.max(1))
        .build()
        .context("starting upload threads")?;
    let human = common.format == Format::Human;
    let bars = human && std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:.bold} {bar:30} {bytes}/{total_bytes} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let store = setup.workspace.store();

    let pushed: Vec<Pushed> = pool.install(|| {
        outcomes
            .par_iter()
            .map(|outcome| {
                let started = Instant::now();
                let Outcome { plugin, result, .. } = outcome;
                let built = match result {
                    Ok((built, _)) => built,
                    Err(e) => {
                        return Pushed {
                            plugin: plugin.clone(),
                            image: None,
                            result: Err(anyhow::anyhow!("build failed: {e:#}")),
                            time: started.elapsed(),
                        }
                    }
                };
                let bar = bars.then(|| {
                    let bar = multi.add(ProgressBar::new(built.size).with_style(style.clone()));
                    bar.set_prefix(built.image.clone());
                    bar
                });
                if human && !bars {
                    eprintln!("pushing {}", built.image);
                }
                // Bytes sent of each blob in its current attempt, for the bar.
                let sent: Mutex<HashMap<String, u64>> = Mutex::default();
                let progress = |event: PushEvent| {
                    let Some(bar) = &bar else { return };
                    let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
                    match event {
                        PushEvent::BlobSkipped { digest, size }
                        | PushEvent::BlobMounted { digest, size, .. } => {
                            sent.insert(digest.to_string(), size);
                        }
                        PushEvent::BlobStarted { digest, .. } => {
                            sent.insert(digest.to_string(), 0);
                        }
                        PushEvent::BlobProgress { digest, sent: now, .. } => {
                            sent.insert(digest.to_string(), now);
                        }
                        PushEvent::Retrying(notice) => bar.set_message(format!("retrying: {notice:?}")),
                        _ => {}
                    }
                    bar.set_position(sent.values().sum());
                };
                let result = Reference::parse(&built.image)
                    .map_err(anyhow::Error::from)
                    .and_then(|reference| Ok(client.push(store, &built.stored, &reference, &progress)?));
                if let Some(bar) = bar {
                    bar.finish_with_message(if result.is_ok() { "pushed" } else { "failed" });
                }
                Pushed {
                    plugin: plugin.clone(),
                    image: Some(built.image.clone()),
                    result,
                    time: started.elapsed(),
                }
            })
            .collect()
    });

    let failed = pushed.iter().filter(|p| p.result.is_err()).count();
    match common.format {
        Format::Json => {
            for p in &pushed {
                println!("{}", json_line(p));
            }
        }
        Format::Human => {
            for p in &pushed {
                if let Err(e) = &p.result {
                    eprintln!("error: {}: {e:#}", p.plugin.display());
                }
            }
            let rows: Vec<[String; 6]> = pushed
                .iter()
                .map(|p| match &p.result {
                    Ok(report) => [
                        p.image.clone().unwrap_or_default(),
                        report.digest.to_string().chars().take(19).collect(),
                        crate::build::human_size(report.bytes_uploaded),
                        format!(
                            "{} uploaded, {} skipped, {} mounted",
                            report.blobs_uploaded, report.blobs_skipped, report.blobs_mounted
                        ),
                        format!("{:.2}s", p.time.as_secs_f64()),
                        "pushed".into(),
                    ],
                    Err(_) => [
                        p.image.clone().unwrap_or_else(|| p.plugin.display().to_string()),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        format!("{:.2}s", p.time.as_secs_f64()),
                        "failed".into(),
                    ],
                })
                .collect();
            crate::build::table(&["IMAGE", "DIGEST", "UPLOADED", "BLOBS", "TIME", "STATUS"], &rows);
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn json_line(p: &Pushed) -> String {
    let value = match &p.result {
        Ok(report) => serde_json::json!({
            "plugin": p.plugin,
            "image": p.image,
            "digest": report.digest.to_string(),
            "bytes_uploaded": report.bytes_uploaded,
            "blobs_uploaded": report.blobs_uploaded,
            "blobs_skipped": report.blobs_skipped,
            "blobs_mounted": report.blobs_mounted,
            "seconds": p.time.as_secs_f64(),
            "status": "pushed",
            "error": null,
        }),
        Err(e) => serde_json::json!({
            "plugin": p.plugin,
            "image": p.image,
            "digest": null,
            "bytes_uploaded": 0,
            "seconds": p.time.as_secs_f64(),
            "status": "failed",
            "error": format!("{e:#}"),
        }),
    };
    value.to_string()
}
