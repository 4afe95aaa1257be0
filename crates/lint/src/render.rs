//! Showing diagnostics: rustc-style text for people, JSON lines for tools.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};

use crate::{Diagnostic, Report, Severity};

/// Text output options.
#[derive(Debug, Clone, Copy)]
pub struct HumanOptions<'a> {
    /// Prefix for shown paths: the monorepo root as the user gave it, so
    /// paths can be clicked from their working directory.
    pub root: &'a Path,
    /// Whether to emit ANSI styles (the caller strips them where unwanted).
    pub color: bool,
}

struct Styles {
    error: Style,
    warning: Style,
    accent: Style,
    bold: Style,
}

impl Styles {
    fn new(color: bool) -> Styles {
        if !color {
            return Styles {
                error: Style::new(),
                warning: Style::new(),
                accent: Style::new(),
                bold: Style::new(),
            };
        }
        Styles {
            error: AnsiColor::Red.on_default().bold(),
            warning: AnsiColor::Yellow.on_default().bold(),
            accent: AnsiColor::Blue.on_default().bold(),
            bold: Style::new().bold(),
        }
    }

    fn severity(&self, severity: Severity) -> Style {
        match severity {
            Severity::Error => self.error,
            Severity::Warning => self.warning,
        }
    }
}

fn shown(root: &Path, file: &Path) -> PathBuf {
    if root.as_os_str().is_empty() || root == Path::new(".") {
        file.to_path_buf()
    } else {
        root.join(file)
    }
}

/// One diagnostic as rustc would show it, ending with a blank line.
pub fn human(d: &Diagnostic, options: HumanOptions<'_>) -> String {
    let s = Styles::new(options.color);
    let sev = s.severity(d.severity);
    let mut out = String::new();
    let _ = writeln!(out, "{sev}{}[{}]{sev:#}{}: {}{:#}", d.severity, d.rule.code, s.bold, d.message, s.bold);
    let line_no = d.position.map(|p| p.line.to_string()).unwrap_or_default();
    let gutter = " ".repeat(line_no.len().max(1));
    let acc = s.accent;
    if let Some(file) = &d.file {
        let location = match d.position {
            Some(p) => format!("{}:{}:{}", shown(options.root, file).display(), p.line, p.column),
            None => shown(options.root, file).display().to_string(),
        };
        let _ = writeln!(out, "{gutter}{acc}-->{acc:#} {location}");
    }
    if let (Some(p), Some(text)) = (d.position, &d.line_text) {
        let (text, caret) = clip(&text.replace('\t', " "), (p.column as usize).saturating_sub(1));
        let caret_pad = " ".repeat(caret);
        let _ = writeln!(out, "{gutter} {acc}|{acc:#}");
        let _ = writeln!(out, "{acc}{line_no} |{acc:#} {text}");
        let _ = writeln!(out, "{gutter} {acc}|{acc:#} {caret_pad}{sev}^{sev:#}");
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{gutter} {acc}={acc:#} {}help{:#}: {help}", s.bold, s.bold);
    }
    out.push('\n');
    out
}

/// Characters of a source line shown under a diagnostic; a longer line
/// (a minified file, a 10 MB one-line `VERSION`) is clipped around the
/// caret with `…` on the cut sides.
const SNIPPET_WIDTH: usize = 100;

/// `text` clipped to [`SNIPPET_WIDTH`] characters around the character
/// `caret` (0-based), and where the caret falls in what is shown.
fn clip(text: &str, caret: usize) -> (String, usize) {
    let len = text.chars().count();
    if len <= SNIPPET_WIDTH {
        return (text.to_string(), caret);
    }
    let start = caret.saturating_sub(SNIPPET_WIDTH / 2).min(len.saturating_sub(SNIPPET_WIDTH));
    let end = (start + SNIPPET_WIDTH).min(len);
    let mut shown: String = text.chars().skip(start).take(end - start).collect();
    let mut caret = caret - start;
    if start > 0 {
        shown.insert(0, '…');
        caret += 1;
    }
    if end < len {
        shown.push('…');
    }
    (shown, caret)
}

/// The closing summary: one line per plugin, then the totals.
pub fn summary(report: &Report, options: HumanOptions<'_>) -> String {
    let s = Styles::new(options.color);
    let mut out = String::new();
    for plugin in &report.plugins {
        let (errors, warnings) = (plugin.count(Severity::Error), plugin.count(Severity::Warning));
        let (style, status) = match (errors, warnings) {
            (0, 0) => (s.accent, "ok"),
            (0, _) => (s.warning, "warn"),
            _ => (s.error, "FAIL"),
        };
        let counts =
            if errors + warnings == 0 { String::new() } else { format!(": {}", counts(errors, warnings)) };
        let _ = writeln!(
            out,
            "{style}{status:>4}{style:#} {}{counts}",
            shown(options.root, &plugin.dir).display()
        );
    }
    let failing = report.plugins.iter().filter(|p| p.count(Severity::Error) > 0).count();
    let _ = writeln!(
        out,
        "{}lint{:#}: {} checked, {failing} with errors; {}",
        s.bold,
        s.bold,
        plural(report.plugins.len(), "plugin"),
        counts(report.count(Severity::Error), report.count(Severity::Warning))
    );
    out
}

fn counts(errors: usize, warnings: usize) -> String {
    format!("{}, {}", plural(errors, "error"), plural(warnings, "warning"))
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[derive(serde::Serialize)]
struct JsonDiagnostic<'a> {
    plugin: Cow<'a, str>,
    severity: Severity,
    code: &'a str,
    name: &'a str,
    message: &'a str,
    file: Option<Cow<'a, str>>,
    line: Option<u32>,
    column: Option<u32>,
    help: Option<&'a str>,
}

/// One diagnostic as a JSON object on one line (no newline). Paths are
/// relative to the monorepo root; a name that is not UTF-8 is shown with
/// U+FFFD in place of the bad bytes (JSON strings are Unicode), so the
/// diagnostic is never lost.
pub fn json(plugin: &Path, d: &Diagnostic) -> String {
    let value = JsonDiagnostic {
        plugin: plugin.to_string_lossy(),
        severity: d.severity,
        code: d.rule.code,
        name: d.rule.name,
        message: &d.message,
        file: d.file.as_deref().map(Path::to_string_lossy),
        line: d.position.map(|p| p.line),
        column: d.position.map(|p| p.column),
        help: d.help.as_deref(),
    };
    serde_json::to_string(&value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_lines_are_clipped_around_the_caret() {
        let line = format!("{}X{}", "a".repeat(10_000), "b".repeat(10_000));
        let (shown, caret) = super::clip(&line, 10_000);
        assert_eq!(shown.chars().count(), super::SNIPPET_WIDTH + 2);
        assert_eq!(shown.chars().nth(caret), Some('X'));
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(super::clip("short", 2), ("short".to_string(), 2));
        let (start, caret) = super::clip(&line, 3);
        assert!(start.starts_with("aaa") && start.ends_with('…') && caret == 3);
    }
}
