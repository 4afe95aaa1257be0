//! Rules PF307 and PF207: the build's own planning ([`forge_builder::plan`]), run
//! without building, so that whatever would fail the build fails lint
//! first, at the same Dockerfile position: expansion errors (unterminated
//! quotes, `${X:?msg}`, bombs), what the builder refuses (a duplicate stage
//! name, a `COPY --from` of its own or a later stage, `RUN`, `--chown` with
//! names), and every `COPY` and `ADD` source refused in the build context,
//! in every stage the final one needs. No base image is resolved (lint
//! needs no store): the plan runs over `scratch` for every `FROM` and
//! `COPY --from` image, which only changes the starting config. Nothing is written but the spool
//! directory of `ADD` archives, a temporary directory removed at the end.
//! The plan then says which files go into the image, whose modes on disk
//! PF207 checks.

use std::collections::BTreeMap;
use std::path::Path;

use std::os::unix::fs::MetadataExt;

use forge_builder::{BaseImage, BuildError, BuildPlan, Context, ParsedDockerfile, PlanInputs};
use forge_manifest::{ImageRef, Position, DOCKERFILE, VERSION};
use forge_oci::{FileSource, NodeKind};

use crate::diagnostic::{Finding, Sink};
use crate::rules::{self, Severity};

/// The `REGISTRY` build arg lint plans with (it only names the base image,
/// which lint does not resolve).
const LINT_REGISTRY: &str = "localhost";

/// Plans the build of `root/dir` and reports the error that would fail it.
pub(crate) fn check(root: &Path, dir: &Path, sink: &mut Sink<'_>) {
    let rel = dir.join(DOCKERFILE);
    // Unreadable or unparsable Dockerfiles are reported by PF003 and PF301.
    let Ok(Some(text)) = forge_manifest::read_text(&root.join(&rel), &rel) else { return };
    let Ok(parsed) = ParsedDockerfile::parse(&text, &rel) else { return };
    // An invalid .dockerignore fails the build with its own error.
    let context = match Context::open(root) {
        Ok(context) => context,
        Err(err) => return report(&err, &text, sink),
    };
    let version = dir.join(VERSION);
    let tag = forge_manifest::read_text(&root.join(&version), &version)
        .ok()
        .flatten()
        .and_then(|v| ImageRef::parse_version_file(&v).ok())
        .map_or_else(|| "latest".to_string(), |image| image.tag);
    let build_args = BTreeMap::from([
        ("MODULE_PATH".to_string(), dir.to_string_lossy().into_owned()),
        ("REGISTRY".to_string(), LINT_REGISTRY.to_string()),
        ("TAG".to_string(), tag),
    ]);
    let Ok(spool) = tempfile::Builder::new().prefix("forge-lint-").tempdir() else { return };
    let inputs = PlanInputs {
        context: &context,
        build_args: &build_args,
        epoch: 0,
        spool_parent: spool.path(),
        preserve_modes: false,
    };
    match forge_builder::plan(&parsed, BaseImage::scratch(), &inputs) {
        Ok(plan) => restrictive_modes(root, &plan, &rel, &text, sink),
        Err(err) => report(&err, &text, sink),
    }
}

/// Rule PF207: files the plan copies whose mode on disk keeps group or
/// others from reading them (0600, 0640, 0700); the build normalises
/// modes to 0644/0755, so the image makes them readable by every user.
/// One warning per `COPY`/`ADD`, naming the first such file.
fn restrictive_modes(root: &Path, plan: &BuildPlan, rel: &Path, text: &str, sink: &mut Sink<'_>) {
    for step in &plan.steps {
        let Some(layer) = &step.layer else { continue };
        let restrictive: Vec<(&Path, u32)> = layer
            .iter()
            .filter_map(|(_, node)| match &node.kind {
                NodeKind::File { source: FileSource::Path(path), .. } => Some(path.as_path()),
                _ => None,
            })
            .filter_map(|path| Some((path, std::fs::symlink_metadata(path).ok()?.mode() & 0o7777)))
            .filter(|(_, mode)| mode & 0o044 != 0o044)
            .collect();
        let Some((first, mode)) = restrictive.first() else { continue };
        let shown = first.strip_prefix(root).unwrap_or(first).display();
        let others = match restrictive.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        let position = step.position;
        sink.report(
            rules::RESTRICTIVE_MODE,
            Finding::new(format!(
                "`{shown}` is mode {mode:04o} on disk{others}; in the image it becomes readable by every user"
            ))
            .in_file(rel)
            .at(position, text)
            .help("builds normalise modes to 0644/0755 for reproducibility: keep secrets out of the context, `COPY --chmod=0600`, or build with --preserve-modes"),
        );
    }
}

/// Whether another error already says why the build fails: one at the
/// same place (PF302's missing `FROM`), or a forbidden file (PF206), which
/// the build refuses too.
fn already_reported(sink: &Sink<'_>, finding: &Finding) -> bool {
    sink.diagnostics.iter().any(|d| {
        d.severity == Severity::Error
            && (d.rule == rules::FORBIDDEN_FILE
                || (d.rule == rules::DOCKERFILE_NO_FROM
                    && d.file == finding.file
                    && d.position == finding.position))
    })
}

fn report(err: &BuildError, text: &str, sink: &mut Sink<'_>) {
    let finding = match err {
        BuildError::Dockerfile { file, line, column, message, help } => {
            let mut f = Finding::new(message.clone())
                .in_file(file)
                .at(Position { line: *line, column: *column }, text);
            f.help.clone_from(help);
            f
        }
        BuildError::DockerIgnore { file, line, message } => {
            Finding::new(format!("line {line}: {message}")).in_file(file).help("fix the pattern")
        }
        // Manifest problems have rules of their own.
        BuildError::Manifest(_) => return,
        other => Finding::new(other.to_string()),
    };
    let finding = if finding.help.is_none() {
        finding.help("the build fails here; fix it before building")
    } else {
        finding
    };
    if !already_reported(sink, &finding) {
        sink.report(rules::DOCKERFILE_UNBUILDABLE, finding);
    }
}
