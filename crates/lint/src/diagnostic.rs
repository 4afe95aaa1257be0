//! Diagnostics and the per-rule severity configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use forge_manifest::{Position, Problem};

use crate::rules::{Rule, Severity};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The rule that found it.
    pub rule: &'static Rule,
    /// Its severity after command-line overrides.
    pub severity: Severity,
    /// What is wrong; lowercase, no trailing period.
    pub message: String,
    /// The file it is about, relative to the monorepo root.
    pub file: Option<PathBuf>,
    /// Where in the file.
    pub position: Option<Position>,
    /// The text of that line, for the snippet under the message.
    pub line_text: Option<String>,
    /// What to do.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A finding of a check outside the lint pass (the build's image
    /// checks) about `file`, with the severity `config` gives `rule`;
    /// `None` when the rule is allowed.
    pub fn outside_lint(
        config: &LintConfig,
        rule: &'static Rule,
        message: impl Into<String>,
        file: Option<PathBuf>,
        help: Option<String>,
    ) -> Option<Diagnostic> {
        Some(Diagnostic {
            rule,
            severity: config.severity(rule)?,
            message: message.into(),
            file,
            position: None,
            line_text: None,
            help,
        })
    }
}

/// Where diagnostics of one plugin are collected.
#[derive(Debug)]
pub(crate) struct Sink<'a> {
    pub(crate) config: &'a LintConfig,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Sink<'_> {
    /// Records a finding of `rule`, unless the rule is allowed (off).
    pub(crate) fn report(&mut self, rule: &'static Rule, finding: Finding) {
        let Some(severity) = self.config.severity(rule) else { return };
        let line_text = match (finding.position, &finding.source) {
            (Some(p), Some(src)) => {
                src.split('\n').nth(p.line as usize - 1).map(|l| l.trim_end_matches('\r').to_string())
            }
            _ => None,
        };
        self.diagnostics.push(Diagnostic {
            rule,
            severity,
            message: finding.message,
            file: finding.file,
            position: finding.position,
            line_text,
            help: finding.help,
        });
    }
}

/// What a check found, before the rule's severity is applied.
#[derive(Debug, Default)]
pub(crate) struct Finding {
    pub(crate) message: String,
    pub(crate) file: Option<PathBuf>,
    pub(crate) position: Option<Position>,
    /// The file's text, to quote the line at `position`.
    pub(crate) source: Option<String>,
    pub(crate) help: Option<String>,
}

impl Finding {
    pub(crate) fn new(message: impl Into<String>) -> Finding {
        Finding { message: message.into(), ..Finding::default() }
    }

    pub(crate) fn in_file(mut self, file: &Path) -> Finding {
        self.file = Some(file.to_path_buf());
        self
    }

    pub(crate) fn at(mut self, position: Position, source: &str) -> Finding {
        self.position = Some(position);
        self.source = Some(source.to_string());
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Finding {
        self.help = Some(help.into());
        self
    }

    /// A manifest problem found in `file` whose text is `source`.
    pub(crate) fn from_problem(problem: Problem, file: &Path, source: &str) -> Finding {
        Finding {
            message: problem.message,
            file: Some(file.to_path_buf()),
            position: problem.position,
            source: Some(source.to_string()),
            help: problem.help,
        }
    }
}

/// How seriously to take a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Do not report it.
    Allow,
    /// Report it as a warning.
    Warn,
    /// Report it as an error.
    Deny,
}

/// Severity overrides, by rule.
#[derive(Debug, Clone, Default)]
pub struct LintConfig {
    /// By rule code: ordered, so that the same settings print the same
    /// (an up-to-date plugin's record keys on the printed options).
    levels: BTreeMap<&'static str, Level>,
}

impl LintConfig {
    /// Sets the level of `rule`; a later call for the same rule wins.
    pub fn set(&mut self, rule: &'static Rule, level: Level) {
        self.levels.insert(rule.code, level);
    }

    /// The severity `rule` is reported with, or `None` when it is allowed.
    pub fn severity(&self, rule: &Rule) -> Option<Severity> {
        match self.levels.get(rule.code) {
            None => Some(rule.default),
            Some(Level::Allow) => None,
            Some(Level::Warn) => Some(Severity::Warning),
            Some(Level::Deny) => Some(Severity::Error),
        }
    }
}
