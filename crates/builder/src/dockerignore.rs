//! `.dockerignore` with Docker's semantics (moby's `patternmatcher`):
//! patterns are matched against the whole path relative to the context
//! root, `*` and `?` never cross `/`, `**` spans any number of directories,
//! a path is excluded when it *or one of its parents* matches, `!` re-includes,
//! and the last matching pattern wins. Lines starting with `#` are comments;
//! patterns are trimmed and cleaned (`./a//b/` is `a/b`, a leading `/` is
//! dropped).

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use crate::BuildError;

/// The parsed `.dockerignore` of a build context.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    matcher: GlobMatcher,
    exception: bool,
    /// The cleaned pattern, for [`DockerIgnore::may_include_below`].
    text: String,
}

impl DockerIgnore {
    /// Reads `root/.dockerignore` (bounded, a regular file); no file means
    /// nothing is excluded.
    pub fn load(root: &Path) -> Result<DockerIgnore, BuildError> {
        let shown = Path::new(".dockerignore");
        match forge_manifest::read_text(&root.join(shown), shown)? {
            Some(text) => DockerIgnore::parse(&text, shown),
            None => Ok(DockerIgnore::default()),
        }
    }

    /// Parses the text of a `.dockerignore`; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<DockerIgnore, BuildError> {
        let mut patterns = Vec::new();
        for (index, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
            }
            let cleaned = clean(pattern);
            let cleaned = cleaned.strip_prefix('/').filter(|s| !s.is_empty()).unwrap_or(&cleaned);
            let glob = GlobBuilder::new(cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .empty_alternates(false)
                .build()
                .map_err(|e| BuildError::DockerIgnore {
                    file: PathBuf::from(file),
                    line: index + 1,
                    message: format!("invalid pattern `{pattern}`: {}", e.kind()),
                })?;
            patterns.push(Pattern { matcher: glob.compile_matcher(), exception, text: cleaned.to_string() });
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether `rel` ('/'-separated, relative to the context root) is left
    /// out of the context.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let mut excluded = false;
        for pattern in &self.patterns {
            if excluded != pattern.exception {
                // This pattern could not change the outcome.
                continue;
            }
            if matches_or_parent(&pattern.matcher, rel) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether any `!` pattern exists: then an excluded directory may still
    /// hold included files and must be walked.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether the excluded directory `dir` is walked at all, as Docker
    /// walks a context: only when some `!` pattern, as written, starts
    /// with `dir/` (`!a/b/keep` reaches into `a` and `a/b`; `!a/**/keep`
    /// reaches into `a` but not into `a/x`, whose files stay excluded).
    pub fn may_include_below(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.patterns.iter().any(|p| p.exception && format!("{}/", p.text).starts_with(&prefix))
    }
}

fn matches_or_parent(matcher: &GlobMatcher, rel: &str) -> bool {
    if matcher.is_match(rel) {
        return true;
    }
    rel.match_indices('/').any(|(i, _)| matcher.is_match(&rel[..i]))
}

pub(crate) use forge_oci::files::clean;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ignore: &str, cases: &[(&str, bool)]) {
        let ignore = DockerIgnore::parse(ignore, Path::new(".dockerignore")).unwrap();
        for (path, excluded) in cases {
            assert_eq!(ignore.is_excluded(path), *excluded, "{path}");
        }
    }

    #[test]
    fn docker_semantics() {
        check("*.pyc\n", &[("a.pyc", true), ("src/a.pyc", false), ("a.py", false)]);
        check("**/*.pyc\n", &[("a.pyc", true), ("src/deep/a.pyc", true)]);
        check("target\n", &[("target", true), ("target/x/y", true), ("src/target", false)]);
        check("/docs/\n./build//out\n", &[("docs/a", true), ("build/out/x", true), ("build/in", false)]);
        check("data/*\n!data/keep.txt\n", &[("data/a", true), ("data/keep.txt", false), ("data", false)]);
        check("!data/keep.txt\ndata\n", &[("data/keep.txt", true)]);
        check("# comment\n\n  spaced  \n", &[("spaced", true), ("# comment", false)]);
        check("a?c\n[bc]x\n", &[("abc", true), ("a/c", false), ("bx", true), ("dx", false)]);
        check("plugins/**/secrets\n", &[("plugins/secrets", true), ("plugins/a/b/secrets/k", true)]);
    }

    #[test]
    fn bad_pattern_names_the_line() {
        let err = DockerIgnore::parse("ok\n[unclosed\n", Path::new(".dockerignore")).unwrap_err();
        assert!(err.to_string().starts_with(".dockerignore:2: invalid pattern `[unclosed`"), "{err}");
    }
}
