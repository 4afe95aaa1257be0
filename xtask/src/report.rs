//! What the build and publish commands print once the work is done: a
//! table on stdout and the errors on stderr (human), or one JSON object per
//! plugin per line (json); and the exit status that goes with it.

use std::process::ExitCode;

use forge_pipeline::{Outcome, Pushed, WouldPush};

use crate::cli::{Format, Output};
use crate::output::{chain, human_size, markdown_table, status_word, table};

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
pub(crate) fn builds(outcomes: &[Outcome], output: Output, is_all: bool) -> ExitCode {
    let format = match output {
        Output::Format(format) => format,
        Output::Names => {
            errors(outcomes.iter().map(|o| (o.plugin.as_path(), o.result.as_ref().err())));
            for artifact in outcomes.iter().filter_map(|o| o.result.as_ref().ok()) {
                println!("{}", artifact.built.image);
                for tag in &artifact.built.tags {
                    println!("{tag}");
                }
            }
            return exit_code(outcomes.iter().any(|o| o.result.is_err()));
        }
    };
    match format {
        Format::Json => {
            for o in outcomes {
                println!("{}", build_json(o));
            }
        }
        Format::Markdown => {
            errors(outcomes.iter().map(|o| (o.plugin.as_path(), o.result.as_ref().err())));
            archive_note(outcomes.iter().map(|o| o.result.as_ref().ok().and_then(|a| a.archive.as_ref())));
            markdown_table(&BUILD_HEADER, &build_rows(outcomes));
        }
        Format::Human => {
            errors(outcomes.iter().map(|o| (o.plugin.as_path(), o.result.as_ref().err())));
            archive_note(outcomes.iter().map(|o| o.result.as_ref().ok().and_then(|a| a.archive.as_ref())));
            if is_all || outcomes.len() > 1 {
                table(&BUILD_HEADER, &build_rows(outcomes));
            }
            for o in outcomes {
                if let Ok(artifact) = &o.result {
                    println!("{}", artifact.built.image);
                    for tag in &artifact.built.tags {
                        println!("{tag}");
                    }
                }
            }
        }
    }
    exit_code(outcomes.iter().any(|o| o.result.is_err()))
}

const BUILD_HEADER: [&str; 5] = ["IMAGE", "DIGEST", "SIZE", "TIME", "STATUS"];

fn build_rows(outcomes: &[Outcome]) -> Vec<[String; 5]> {
    outcomes
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
        .collect()
}

fn build_json(o: &Outcome) -> String {
    let value = match &o.result {
        Ok(artifact) => {
            let built = &artifact.built;
            // Of the first platform's image (the one `digest` names unless there are several).
            let first = artifact.attestations.first();
            let digest_of =
                |a: Option<&forge_oci::referrers::Artifact>| a.map(|a| a.descriptor.digest().to_string());
            serde_json::json!({
                "sbom": digest_of(first.and_then(|a| a.sbom.as_ref())),
                "provenance": digest_of(first.and_then(|a| a.provenance.as_ref())),
                "plugin": o.plugin,
                "image": built.image,
                "tags": built.tags,
                "tarball": artifact.tarball,
                "archive": archive_json(artifact.archive.as_ref()),
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
            "archive": null,
            "digest": null,
            "sbom": null,
            "provenance": null,
            "seconds": o.time.as_secs_f64(),
            "status": "failed",
            "error": chain(e),
        }),
    };
    value.to_string()
}

/// Where an image is in the run's archive: `{"file", "ref"}`, or null.
fn archive_json(archived: Option<&forge_pipeline::Archived>) -> serde_json::Value {
    match archived {
        Some(a) => serde_json::json!({"file": a.file, "ref": a.ref_name}),
        None => serde_json::Value::Null,
    }
}

/// On stderr, what became of the run's archive, if it has one.
fn archive_note<'a>(archived: impl Iterator<Item = Option<&'a forge_pipeline::Archived>>) {
    let archived: Vec<_> = archived.flatten().collect();
    if let Some(first) = archived.first() {
        let what = match first.written {
            forge_oci::Written::Wrote => "wrote",
            forge_oci::Written::Unchanged => "unchanged:",
        };
        eprintln!("{what} archive {} ({} images)", first.file.display(), archived.len());
    }
}

/// Each plugin's error on stderr, with its causes.
fn errors<'a, E: std::error::Error + 'a>(
    results: impl Iterator<Item = (&'a std::path::Path, Option<&'a E>)>,
) {
    for (plugin, error) in results {
        if let Some(e) = error {
            eprintln!("error: {}: {}", plugin.display(), chain(e));
        }
    }
}

/// `--list`: the plugins a run would build, with their images (from
/// `VERSION`) and shards (of `shards`, when `--shard` was given); nothing
/// is built.
pub(crate) fn list(
    root: &std::path::Path,
    plugins: &[std::path::PathBuf],
    registry: &str,
    shards: Option<u64>,
    format: Format,
) -> ExitCode {
    let rows: Vec<(String, Result<String, String>, Option<String>)> = plugins
        .iter()
        .map(|plugin| {
            let image = forge_manifest::Plugin::load(root, plugin)
                .map(|p| p.image.with_registry(registry))
                .map_err(|e| chain(&e));
            let shard = shards.map(|n| format!("{}/{n}", forge_pipeline::Shard::of(plugin, n)));
            (plugin.display().to_string(), image, shard)
        })
        .collect();
    match format {
        Format::Json => {
            for (plugin, image, shard) in &rows {
                let value = serde_json::json!({
                    "plugin": plugin,
                    "image": image.as_ref().ok(),
                    "shard": shard,
                    "error": image.as_ref().err(),
                });
                println!("{value}");
            }
        }
        Format::Human | Format::Markdown => {
            let cells: Vec<[String; 3]> = rows
                .iter()
                .map(|(plugin, image, shard)| {
                    let image = image.clone().unwrap_or_else(|e| format!("error: {e}"));
                    [plugin.clone(), image, shard.clone().unwrap_or_else(|| "-".into())]
                })
                .collect();
            let header = ["PLUGIN", "IMAGE", "SHARD"];
            if format == Format::Markdown {
                markdown_table(&header, &cells);
            } else {
                table(&header, &cells);
            }
        }
    }
    exit_code(rows.iter().any(|(_, image, _)| image.is_err()))
}

/// The results of a publish.
pub(crate) fn pushes(pushed: &[Pushed], output: Output) -> ExitCode {
    errors(pushed.iter().map(|p| (p.plugin.as_path(), p.result.as_ref().err())));
    if output != Output::Format(Format::Json) {
        archive_note(pushed.iter().map(|p| p.archive.as_ref()));
    }
    match output {
        Output::Format(Format::Json) => {
            for p in pushed {
                println!("{}", push_json(p));
            }
        }
        Output::Format(Format::Human) => {
            table(&PUSH_HEADER, &push_rows(pushed));
            let register = register_rows(pushed);
            if !register.is_empty() {
                println!();
                println!("Register on the instance (Plugins > Add plugin):");
                table(&REGISTER_HEADER, &register);
            }
        }
        Output::Format(Format::Markdown) => markdown_table(&["Title", "Image"], &register_rows(pushed)),
        Output::Names => {
            for p in pushed.iter().filter(|p| p.result.is_ok()) {
                for name in p.image.iter().chain(&p.tags) {
                    println!("{name}");
                }
            }
        }
    }
    exit_code(pushed.iter().any(|p| p.result.is_err()))
}

/// What a `publish --dry-run` found: per image, the blobs the registry
/// lacks.
pub(crate) fn dry_run(planned: &[WouldPush], output: Output) -> ExitCode {
    errors(planned.iter().map(|p| (p.plugin.as_path(), p.result.as_ref().err())));
    match output {
        Output::Format(Format::Json) => {
            for p in planned {
                println!("{}", dry_run_json(p));
            }
        }
        Output::Format(format @ (Format::Human | Format::Markdown)) => {
            let rows: Vec<[String; 5]> = planned
                .iter()
                .map(|p| {
                    let image = p.image.clone().unwrap_or_else(|| p.plugin.display().to_string());
                    let tags = if p.tags.is_empty() { "-".into() } else { tag_names(&p.tags).join(", ") };
                    match &p.result {
                        Ok(m) => [
                            image,
                            tags,
                            format!("{} of {}", m.missing.len(), m.missing.len() + m.present),
                            human_size(m.bytes()),
                            "would push".into(),
                        ],
                        Err(_) => [image, tags, "-".into(), "-".into(), "failed".into()],
                    }
                })
                .collect();
            let header = ["IMAGE", "MORE TAGS", "BLOBS MISSING", "TO UPLOAD", "STATUS"];
            if format == Format::Markdown {
                markdown_table(&header, &rows);
                return exit_code(planned.iter().any(|p| p.result.is_err()));
            }
            table(&header, &rows);
            for p in planned {
                if let (Some(image), Ok(m)) = (&p.image, &p.result) {
                    for (digest, size) in &m.missing {
                        println!("{image}: missing {digest} ({})", human_size(*size));
                    }
                }
            }
            println!("dry run: nothing was pushed");
        }
        Output::Names => {
            for p in planned.iter().filter(|p| p.result.is_ok()) {
                for name in p.image.iter().chain(&p.tags) {
                    println!("{name}");
                }
            }
        }
    }
    exit_code(planned.iter().any(|p| p.result.is_err()))
}

/// `REGISTRY/NAME:TAG` → `TAG`.
fn tag_names(names: &[String]) -> Vec<&str> {
    names.iter().map(|n| n.rsplit_once(':').map_or(n.as_str(), |(_, t)| t)).collect()
}

fn dry_run_json(p: &WouldPush) -> String {
    let value = match &p.result {
        Ok(m) => serde_json::json!({
            "plugin": p.plugin,
            "image": p.image,
            "tags": p.tags,
            "digest": m.digest.to_string(),
            "missing": m.missing.iter().map(|(d, size)| serde_json::json!({"digest": d.to_string(), "size": size})).collect::<Vec<_>>(),
            "present": m.present,
            "bytes_to_upload": m.bytes(),
            "status": "dry-run",
            "error": null,
        }),
        Err(e) => serde_json::json!({
            "plugin": p.plugin,
            "image": p.image,
            "tags": p.tags,
            "digest": null,
            "status": "failed",
            "error": chain(e),
        }),
    };
    value.to_string()
}

const PUSH_HEADER: [&str; 6] = ["IMAGE", "DIGEST", "UPLOADED", "BLOBS", "TIME", "STATUS"];
const REGISTER_HEADER: [&str; 2] = ["TITLE", "IMAGE"];

/// What the "Add plugin" dialog asks for, per plugin pushed: the title of
/// `plugin_info.json` and the full image name (of its `VERSION` tag).
fn register_rows(pushed: &[Pushed]) -> Vec<[String; 2]> {
    pushed
        .iter()
        .filter(|p| p.result.is_ok())
        .filter_map(|p| Some([p.title.clone()?, p.image.clone()?]))
        .collect()
}

fn push_rows(pushed: &[Pushed]) -> Vec<[String; 6]> {
    pushed
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
        .collect()
}

fn push_json(p: &Pushed) -> String {
    let referrers: Vec<serde_json::Value> = p
        .referrers
        .iter()
        .map(|(digest, how)| {
            let via = match how {
                forge_registry::Referred::Api => "referrers API".to_owned(),
                forge_registry::Referred::FallbackTag(tag) => format!("tag {tag}"),
            };
            serde_json::json!({"digest": digest.to_string(), "via": via})
        })
        .collect();
    let value = match &p.result {
        Ok(report) => serde_json::json!({
            "referrers": referrers,
            "plugin": p.plugin,
            "title": p.title,
            "image": p.image,
            "tags": p.tags,
            "digest": report.digest.to_string(),
            "bytes_uploaded": report.bytes_uploaded,
            "blobs_uploaded": report.blobs_uploaded,
            "blobs_skipped": report.blobs_skipped,
            "blobs_mounted": report.blobs_mounted,
            "tarball": p.tarball,
            "archive": archive_json(p.archive.as_ref()),
            "seconds": p.time.as_secs_f64(),
            "status": "pushed",
            "error": null,
        }),
        Err(e) => serde_json::json!({
            "plugin": p.plugin,
            "title": p.title,
            "image": p.image,
            "tags": p.tags,
            "digest": null,
            "referrers": referrers,
            "bytes_uploaded": 0,
            // The same fields as a pushed line; what a failed push sent
            // before it stopped is not counted.
            "blobs_uploaded": null,
            "blobs_skipped": null,
            "blobs_mounted": null,
            "tarball": p.tarball,
            "archive": archive_json(p.archive.as_ref()),
            "seconds": p.time.as_secs_f64(),
            "status": "failed",
            "error": chain(e),
        }),
    };
    value.to_string()
}
