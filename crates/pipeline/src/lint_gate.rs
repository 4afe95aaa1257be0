//! The lint gate in front of builds: a plugin the linter finds errors in
//! could not be built or run correctly, so it fails with the first of them
//! (and a count of the others) instead of being built.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use forge_lint::{Diagnostic, LintConfig, Severity};

use crate::{Error, Event, Observer};

/// Why the lint gate stopped a plugin: its first error, and how many more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The rule code of the first error (`PF201`).
    pub code: &'static str,
    /// What the first error says.
    pub message: String,
    /// The file it is about, relative to the root.
    pub file: Option<PathBuf>,
    /// Line and column in that file.
    pub position: Option<(u32, u32)>,
    /// Errors after the first.
    pub more: usize,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lint error[{}]: ", self.code)?;
        match (&self.file, self.position) {
            (Some(file), Some((line, column))) => write!(f, "{}:{line}:{column}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            _ => {}
        }
        write!(f, "{}", self.message)?;
        if self.more > 0 {
            write!(f, " (and {} more)", self.more)?;
        }
        write!(f, "; run `cargo xtask lint`, or build anyway with --no-lint")
    }
}

/// Lints the monorepo at `root` with the rules' severities in `config` and
/// returns the plugins among `plugins` with errors. Each rejected plugin's errors are
/// reported as [`Event::LintRejected`].
///
/// Only `plugins` are checked, less those `passed` says passed with the
/// same inputs (an up-to-date plugin): the others only count for the
/// rules that look across plugins (two plugins with one image), which can
/// still reject one of `plugins`, a passed one too.
pub fn lint_gate(
    root: &Path,
    plugins: &[PathBuf],
    passed: &(dyn Fn(&Path) -> bool + Sync),
    config: &LintConfig,
    observer: &dyn Observer,
) -> Result<HashMap<PathBuf, Rejection>, Error> {
    let check = |dir: &Path| plugins.iter().any(|p| p == dir) && !passed(dir);
    let report = forge_lint::lint_some(root, config, &check)?;
    let mut rejected = HashMap::new();
    for plugin in report.plugins.iter().filter(|p| plugins.contains(&p.dir)) {
        let errors: Vec<&Diagnostic> =
            plugin.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        let Some(first) = errors.first() else { continue };
        observer.event(&Event::LintRejected { plugin: &plugin.dir, errors: &errors });
        rejected.insert(
            plugin.dir.clone(),
            Rejection {
                code: first.rule.code,
                message: first.message.clone(),
                file: first.file.clone(),
                position: first.position.map(|p| (p.line, p.column)),
                more: errors.len() - 1,
            },
        );
    }
    Ok(rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_points_at_the_first_error() {
        let mut rejection = Rejection {
            code: "PF201",
            message: "src/ is missing".into(),
            file: Some(PathBuf::from("plugins/d/src")),
            position: None,
            more: 0,
        };
        assert_eq!(
            rejection.to_string(),
            "lint error[PF201]: plugins/d/src: src/ is missing; run `cargo xtask lint`, or build anyway with --no-lint"
        );
        rejection.position = Some((3, 7));
        rejection.more = 2;
        assert_eq!(
            rejection.to_string(),
            "lint error[PF201]: plugins/d/src:3:7: src/ is missing (and 2 more); run `cargo xtask lint`, or build anyway with --no-lint"
        );
    }

    #[test]
    fn the_sample_plugins_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let plugins = crate::discover(&root).unwrap();
        assert!(!plugins.is_empty());
        let rejected = lint_gate(&root, &plugins, &|_| false, &LintConfig::default(), &crate::Quiet).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
    }

    #[test]
    fn a_plugin_with_errors_is_rejected_and_reported() {
        let repo = tempfile::tempdir().unwrap();
        let bad = repo.path().join("plugins/bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("plugin_info.json"), "{ not json").unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let observer = |event: &Event<'_>| {
            if let Event::LintRejected { plugin, errors } = event {
                seen.lock().unwrap().push((plugin.to_path_buf(), errors.len()));
            }
        };
        let plugins = crate::discover(repo.path()).unwrap();
        let rejected =
            lint_gate(repo.path(), &plugins, &|_| false, &LintConfig::default(), &observer).unwrap();
        let rejection = &rejected[Path::new("plugins/bad")];
        assert!(rejection.to_string().starts_with("lint error[PF"), "{rejection}");
        // Plugins not asked about are not rejected, whatever they hold.
        assert!(lint_gate(repo.path(), &[], &|_| false, &LintConfig::default(), &observer)
            .unwrap()
            .is_empty());
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen, vec![(PathBuf::from("plugins/bad"), rejection.more + 1)]);
    }
}
