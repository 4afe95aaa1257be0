//! The image description file (TOML): which Debian packages make a base
//! image, from which mirror, suite and architecture, and its environment.
//!
//! ```toml
//! name = "base-py"
//! mirror = "http://deb.debian.org/debian"   # optional
//! suite = "bookworm"
//! architecture = "amd64"
//! packages = ["python3", "dash", "ca-certificates"]
//! exclude = ["perl-base", "dpkg", "mailcap"]
//! [env]
//! LANG = "C.UTF-8"
//! ```
//!
//! Without `mirror`, the machine's apt sources decide (the first http(s)
//! Debian archive in `/etc/apt/sources.list.d/debian.sources`, then in
//! `/etc/apt/sources.list`), else [`DEFAULT_MIRROR`].

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::deb822;
use crate::error::{Error, Result};
use crate::relation;

/// The mirror used when neither the description nor apt names one.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// A parsed description file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    /// The image repository name (the registry is added at build time).
    pub name: String,
    /// The mirror's base URL, if given.
    #[serde(default)]
    pub mirror: Option<String>,
    /// The suite (codename), e.g. `bookworm`.
    pub suite: String,
    /// The Debian architecture, e.g. `amd64`.
    pub architecture: String,
    /// The packages wanted (relations: `python3` or `python3 (>= 3.11)`).
    pub packages: Vec<String>,
    /// Packages that count as installed and are never chosen.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The image's environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// More suites resolved together with `suite`, the highest version of a
    /// package winning: stable updates, security fixes.
    #[serde(default, rename = "extra-suite")]
    pub extra_suites: Vec<ExtraSuite>,
}

/// A `[[extra-suite]]` of a description.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraSuite {
    /// The suite, e.g. `bookworm-security`.
    pub suite: String,
    /// Its archive when not the main mirror, e.g. `http://deb.debian.org/debian-security`.
    #[serde(default)]
    pub mirror: Option<String>,
}

impl Description {
    /// Reads and checks a description file.
    pub fn load(path: &Path) -> Result<Description> {
        let text = crate::error::read_toml(path)?;
        Description::parse(&text, path)
    }

    /// Parses and checks a description; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Description> {
        let d: Description = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
        let fail = |key: &str, message: String| {
            let (line, column) = key_position(text, key);
            Error::Toml { file: file.to_owned(), line, column, message }
        };
        if d.name.is_empty()
            || !d.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        {
            return Err(fail(
                "name",
                format!("invalid image name `{}` (lowercase letters, digits, `._-/`)", d.name),
            ));
        }
        if let Some(m) = &d.mirror {
            if !(m.starts_with("http://") || m.starts_with("https://")) {
                return Err(fail("mirror", format!("mirror `{m}` is not an http(s) URL")));
            }
        }
        for (key, value) in [("suite", &d.suite), ("architecture", &d.architecture)] {
            if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(fail(key, format!("invalid {key} `{value}`")));
            }
        }
        for extra in &d.extra_suites {
            if extra.suite.is_empty() || extra.suite.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(fail("extra-suite", format!("invalid suite `{}`", extra.suite)));
            }
            if let Some(m) = &extra.mirror {
                if !(m.starts_with("http://") || m.starts_with("https://")) {
                    return Err(fail("extra-suite", format!("mirror `{m}` is not an http(s) URL")));
                }
            }
        }
        if d.packages.is_empty() {
            return Err(fail("packages", "`packages` is empty".to_owned()));
        }
        for p in &d.packages {
            let clauses = relation::parse(p).map_err(|e| fail("packages", e.to_string()))?;
            if clauses.len() != 1 {
                return Err(fail("packages", format!("`{p}` is not one package")));
            }
        }
        for x in &d.exclude {
            if x.is_empty() || x.contains(|c: char| c.is_whitespace() || "(),|".contains(c)) {
                return Err(fail("exclude", format!("invalid package name `{x}`")));
            }
        }
        for key in d.env.keys() {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(fail("env", format!("invalid environment variable name `{key}`")));
            }
        }
        Ok(d)
    }

    /// The mirror: the description's, else the machine's apt sources', else [`DEFAULT_MIRROR`].
    pub fn mirror_or_default(&self) -> String {
        self.mirror.clone().unwrap_or_else(system_mirror)
    }
}

/// The first http(s) Debian archive of the machine's apt sources, or [`DEFAULT_MIRROR`].
pub fn system_mirror() -> String {
    let sources = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok();
    let list = fs::read_to_string("/etc/apt/sources.list").ok();
    mirror_from_apt_sources(sources.as_deref(), list.as_deref()).unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

/// The first http(s) Debian archive (a URL whose last path segment is
/// `debian`, so not `debian-security`) of a deb822 `.sources` file, then of
/// a one-line `sources.list`.
pub fn mirror_from_apt_sources(sources: Option<&str>, list: Option<&str>) -> Option<String> {
    let is_debian = |url: &str| {
        (url.starts_with("http://") || url.starts_with("https://"))
            && url.trim_end_matches('/').rsplit('/').next() == Some("debian")
    };
    if let Some(text) = sources {
        // A broken file is not ours to report; it just gives no mirror.
        for p in deb822::parse(text, "debian.sources").unwrap_or_default() {
            let is_deb = p.get("Types").is_none_or(|t| t.split_whitespace().any(|t| t == "deb"));
            let enabled = p.get("Enabled").is_none_or(|e| !e.eq_ignore_ascii_case("no"));
            if !is_deb || !enabled {
                continue;
            }
            if let Some(url) =
                p.get("URIs").into_iter().flat_map(str::split_whitespace).find(|u| is_debian(u))
            {
                return Some(url.trim_end_matches('/').to_owned());
            }
        }
    }
    for line in list.unwrap_or("").lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        // Skip `[ options ]`, written with or without spaces.
        let mut url = words.next();
        if url.is_some_and(|w| w.starts_with('[')) {
            let mut w = url;
            while let Some(x) = w {
                if x.ends_with(']') {
                    break;
                }
                w = words.next();
            }
            url = words.next();
        }
        if let Some(url) = url.filter(|u| is_debian(u)) {
            return Some(url.trim_end_matches('/').to_owned());
        }
    }
    None
}

/// A TOML syntax or type error in `file`, with its line and column.
pub fn toml_error(text: &str, file: &Path, e: &toml::de::Error) -> Error {
    let (line, column) = match e.span() {
        Some(span) => line_column(text, span.start),
        None => (1, 1),
    };
    Error::Toml { file: file.to_owned(), line, column, message: e.message().trim().to_owned() }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where the top-level `key` (or table `[key]`) is written, for errors
/// about values that parse but are wrong; the first line when not found.
fn key_position(text: &str, key: &str) -> (usize, usize) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let rest = t
            .strip_prefix(key)
            .or_else(|| t.strip_prefix('[').and_then(|r| r.trim_start().strip_prefix(key)));
        if rest.is_some_and(|r| r.trim_start().starts_with(['=', ']'])) {
            return line_column(text, offset + (line.len() - t.len()));
        }
        offset += line.len();
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"name = "base-py"                      # image repository name
mirror = "http://deb.debian.org/debian"
suite = "bookworm"
architecture = "amd64"
packages = ["python3", "dash", "ca-certificates"]
exclude = ["perl-base", "dpkg", "mailcap"]
[env]
LANG = "C.UTF-8"
PYTHONDONTWRITEBYTECODE = "1"
"#;

    #[test]
    fn parses_the_example() {
        let d = Description::parse(GOOD, Path::new("base-py.toml")).unwrap();
        assert_eq!(d.name, "base-py");
        assert_eq!(d.mirror.as_deref(), Some("http://deb.debian.org/debian"));
        assert_eq!(d.packages, ["python3", "dash", "ca-certificates"]);
        assert_eq!(d.exclude, ["perl-base", "dpkg", "mailcap"]);
        assert_eq!(d.env["LANG"], "C.UTF-8");
        assert_eq!(d.mirror_or_default(), "http://deb.debian.org/debian");
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: &[(&str, &str)] = &[
            ("name = \"x\"\nsuite = \"bookworm\"\n", "d.toml:1:1: missing field `architecture`"),
            (&GOOD.replace("suite = \"bookworm\"", "suite = bookworm"), "d.toml:3:9: "),
            (&GOOD.replace("packages = [", "pakages = ["), "d.toml:5:1: unknown field `pakages`"),
            (
                &GOOD.replace("[\"python3\", \"dash\", \"ca-certificates\"]", "[]"),
                "d.toml:5:1: `packages` is empty",
            ),
            (&GOOD.replace("\"dash\"", "\"dash (>= x)\""), "d.toml:5:1: invalid relation `dash (>= x)`"),
            (&GOOD.replace("\"dash\"", "\"dash, bash\""), "d.toml:5:1: `dash, bash` is not one package"),
            (&GOOD.replace("base-py\"", "Base Py\""), "d.toml:1:1: invalid image name `Base Py`"),
            (
                &GOOD.replace("http://deb", "ftp://deb"),
                "d.toml:2:1: mirror `ftp://deb.debian.org/debian` is not an http(s) URL",
            ),
            (&GOOD.replace("\"mailcap\"", "\"mail cap\""), "d.toml:6:1: invalid package name `mail cap`"),
            (&GOOD.replace("LANG =", "\"A=B\" ="), "d.toml:7:1: invalid environment variable name `A=B`"),
            (
                &GOOD.replace("PYTHONDONTWRITEBYTECODE = \"1\"", "PYTHONDONTWRITEBYTECODE = 1"),
                "d.toml:9:27: invalid type: integer `1`, expected a string",
            ),
        ];
        for (text, expected) in cases {
            let err = Description::parse(text, Path::new("d.toml")).unwrap_err().to_string();
            assert!(err.starts_with(expected), "got {err:?}, expected {expected:?}\n{text}");
        }
    }

    #[test]
    fn apt_sources() {
        let sources = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n\
                       Types: deb-src\nURIs: http://src.example/debian\n\n\
                       Types: deb\nURIs: https://mirror.example/debian/ http://other/debian\nSuites: bookworm\n";
        let list = "# deb http://commented/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main\n";
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (Some(sources), Some(list), Some("https://mirror.example/debian")),
            (None, Some(list), Some("http://list.example/debian")),
            (
                Some("garbage without colon\n"),
                Some("deb http://x/debian bookworm main\n"),
                Some("http://x/debian"),
            ),
            (None, Some("deb [trusted=yes] ftp://x/debian b main\ndeb cdrom:/x/debian b main\n"), None),
            (Some("Types: deb\nEnabled: no\nURIs: http://off/debian\n"), None, None),
            (None, None, None),
        ];
        for (s, l, expected) in cases {
            assert_eq!(mirror_from_apt_sources(*s, *l).as_deref(), *expected, "{s:?} {l:?}");
        }
    }
}
