//! Linting a monorepo of Supervisely plugins.
//!
//! [`lint_root`] discovers the plugins under `ROOT/plugins` and runs every
//! rule of [`rules`] on each of them, collecting [`Diagnostic`]s per plugin.
//! One broken plugin never stops the others from being checked: every
//! problem becomes a diagnostic, and only a missing `plugins/` directory is
//! an error of the whole run. [`render`] turns diagnostics into rustc-style
//! text or JSON lines.
//!
//! Plugins are checked in parallel (on the caller's rayon pool); their
//! reports are gathered in discovery order, so the report, and what
//! [`render`] makes of it, is the same whatever the number of threads.

mod buildable;
mod checks;
mod diagnostic;
mod dockerfile;
mod forbidden;
pub mod render;
pub mod rules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use forge_manifest::{discover, ImageRef, ManifestError};
use rayon::prelude::*;

pub use diagnostic::{Diagnostic, Level, LintConfig};
pub use rules::{Rule, Severity};

use diagnostic::{Finding, Sink};

/// The diagnostics of one plugin (or of a directory that looks like one).
#[derive(Debug, Clone)]
pub struct PluginReport {
    /// The directory, relative to the monorepo root.
    pub dir: PathBuf,
    /// Findings, ordered by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl PluginReport {
    /// How many diagnostics have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == severity).count()
    }
}

/// The result of linting a monorepo.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One entry per plugin and per plugin-like directory, sorted by path.
    pub plugins: Vec<PluginReport>,
}

impl Report {
    /// How many diagnostics of this severity in all.
    pub fn count(&self, severity: Severity) -> usize {
        self.plugins.iter().map(|p| p.count(severity)).sum()
    }

    /// Every diagnostic with the plugin it belongs to.
    pub fn diagnostics(&self) -> impl Iterator<Item = (&Path, &Diagnostic)> {
        self.plugins.iter().flat_map(|p| p.diagnostics.iter().map(move |d| (p.dir.as_path(), d)))
    }
}

/// Lints every plugin of the monorepo at `root`. Fails only when `root`
/// has no `plugins/` directory.
pub fn lint_root(root: &Path, config: &LintConfig) -> Result<Report, ManifestError> {
    lint_some(root, config, &|_| true)
}

/// [`lint_root`] for the plugins `check` picks; the others only as far as
/// the rules across plugins look at them (their image, from `VERSION`):
/// the report of a picked plugin is the one [`lint_root`] gives, and an
/// unpicked one has only the diagnostics of those rules.
pub fn lint_some(
    root: &Path,
    config: &LintConfig,
    check: &(dyn Fn(&Path) -> bool + Sync),
) -> Result<Report, ManifestError> {
    let found = discover(root)?;
    let mut reports: BTreeMap<PathBuf, Vec<Diagnostic>> = BTreeMap::new();
    let mut images: BTreeMap<ImageRef, Vec<PathBuf>> = BTreeMap::new();

    // Each plugin's checks read only its own files (and plan its build):
    // independent, so in parallel; `collect` keeps discovery order, which
    // the duplicate check below lists the other plugins in.
    let checked: Vec<(Option<ImageRef>, Vec<Diagnostic>)> = found
        .plugins
        .par_iter()
        .map(|dir| {
            let mut sink = Sink { config, diagnostics: Vec::new() };
            let image = if check(dir) {
                checks::plugin(root, dir, &mut sink)
            } else {
                checks::version(root, dir, &mut Sink { config, diagnostics: Vec::new() })
            };
            (image, sink.diagnostics)
        })
        .collect();
    for (dir, (image, diagnostics)) in found.plugins.iter().zip(checked) {
        if let Some(image) = image {
            images.entry(image).or_default().push(dir.clone());
        }
        reports.insert(dir.clone(), diagnostics);
    }
    for (dir, marker) in &found.orphans {
        let mut sink = Sink { config, diagnostics: Vec::new() };
        sink.report(
            rules::PLUGIN_INFO_MISSING,
            Finding::new(format!("`{marker}` here, but no plugin_info.json: this directory is not a plugin"))
                .in_file(&dir.join(marker))
                .help(r#"add plugin_info.json with {"title": "...", "description": "...", "type": "..."}, or move the directory out of plugins/"#),
        );
        reports.entry(dir.clone()).or_default().extend(sink.diagnostics);
    }
    for err in found.errors {
        let mut sink = Sink { config, diagnostics: Vec::new() };
        let (dir, finding) = match err {
            ManifestError::Io(io) => (
                io.path.clone(),
                Finding::new(format!("cannot read this directory: {}", io.source)).in_file(&io.path),
            ),
            other => (PathBuf::from(forge_manifest::PLUGINS_DIR), Finding::new(other.to_string())),
        };
        sink.report(rules::UNREADABLE, finding.help("fix its permissions, or remove it"));
        reports.entry(dir).or_default().extend(sink.diagnostics);
    }

    for (image, dirs) in images.iter().filter(|(_, dirs)| dirs.len() > 1) {
        for dir in dirs {
            let others: Vec<String> =
                dirs.iter().filter(|d| *d != dir).map(|d| d.display().to_string()).collect();
            let version = dir.join(forge_manifest::VERSION);
            let source =
                forge_manifest::read_text(&root.join(&version), &version).ok().flatten().unwrap_or_default();
            let mut sink = Sink { config, diagnostics: Vec::new() };
            sink.report(
                rules::DUPLICATE_IMAGE,
                Finding::new(format!("image `{image}` is also built by {}", others.join(", ")))
                    .in_file(&version)
                    .at(forge_manifest::Position::START, &source)
                    .help("give each plugin its own image name or tag in VERSION"),
            );
            reports.entry(dir.clone()).or_default().extend(sink.diagnostics);
        }
    }

    let plugins = reports
        .into_iter()
        .map(|(dir, mut diagnostics)| {
            diagnostics.sort_by(|a, b| (&a.file, a.position).cmp(&(&b.file, b.position)));
            PluginReport { dir, diagnostics }
        })
        .collect();
    Ok(Report { plugins })
}
