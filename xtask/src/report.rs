//! What the build and publish commands print once the work is done: a
//! table on stdout and the errors on stderr (human), or one JSON object per
//! plugin per line (json); and the exit status that goes with it.

use std::process::ExitCode;

use forge_pipeline::{Outcome, Pushed};

use crate::cli::Format;
use crate::output::{chain, human_size, status_word, table};

/// Exit status 1 when anything failed.
pub(crate) fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The outcomes of a build. The table is shown for `build-all` and for
/// more than one plugin; like build_plugin.sh, the last lines name the
/// images.
pub(crate) fn builds(outcomes: &[Outcome], format: Format, is_all: bool) -> ExitCode {
    match format {
        Format::Json => {
            for o in outcomes {
                println!("{}", build_json(o));
            }
        }
        Format::Human => {
            for o in outcomes {
                if let Err(e) = &o.result {
                    eprintln!("error: {}: {}", o.plugin.display(), chain(e));
                }
            }
            if is_all || outcomes.len() > 1 {
                build_table(outcomes);
            }
            for o in outcomes {
                if let Ok(artifact) = &o.result {
                    println!("{}", artifact.built.image);
                }
            }
        }
    }
    exit_code(outcomes.iter().any(|o| o.result.is_err()))
}

fn build_table(outcomes: &[Outcome]) {
    let rows: Vec<[String; 5]> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(artifact) => {
                let built = &artifact.built;
                [
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
                ]
            }
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

fn build_json(o: &Outcome) -> String {
    let value = match &o.result {
        Ok(artifact) => {
            let built = &artifact.built;
            serde_json::json!({
                "plugin": o.plugin,
                "image": built.image,
                "tarball": artifact.tarball,
                "digest": built.digest().to_string(),
                "size": built.size,
                "seconds": o.time.as_secs_f64(),
                "layers_built": built.layers_built,
                "layers_cached": built.layers_cached,
                "status": status_word(built.status),
                "error": null,
            })
        }
        Err(e) => serde_json::json!({
            "plugin": o.plugin,
            "image": null,
            "tarball": null,
            "digest": null,
            "seconds": o.time.as_secs_f64(),
            "status": "failed",
            "error": chain(e),
        }),
    };
    value.to_string()
}

/// The results of a publish.
pub(crate) fn pushes(pushed: &[Pushed], format: Format) -> ExitCode {
    match format {
        Format::Json => {
            for p in pushed {
                println!("{}", push_json(p));
            }
        }
        Format::Human => {
            for p in pushed {
                if let Err(e) = &p.result {
                    eprintln!("error: {}: {}", p.plugin.display(), chain(e));
                }
            }
            push_table(pushed);
        }
    }
    exit_code(pushed.iter().any(|p| p.result.is_err()))
}

fn push_table(pushed: &[Pushed]) {
    let rows: Vec<[String; 6]> = pushed
        .iter()
        .map(|p| match &p.result {
            Ok(report) => [
                p.image.clone().unwrap_or_default(),
                report.digest.to_string().chars().take(19).collect(),
                human_size(report.bytes_uploaded),
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
    table(&["IMAGE", "DIGEST", "UPLOADED", "BLOBS", "TIME", "STATUS"], &rows);
}

fn push_json(p: &Pushed) -> String {
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
            "error": chain(e),
        }),
    };
    value.to_string()
}
