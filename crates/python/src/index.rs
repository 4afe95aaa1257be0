//! What we read from a package index ourselves, beside uv: wheel file
//! names and their tags (PEP 427/425), version order (PEP 440), and a
//! project's files from the simple API (PEP 691 JSON, or PEP 503 HTML from
//! an index without JSON), to name the newest version that has a wheel
//! for the target when a requirement has none.

use std::cmp::Ordering;

use serde::Deserialize;

use crate::resolve_error::ResolveError;

/// A wheel file name: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// The distribution, as written in the file name.
    pub name: String,
    /// The version, as written.
    pub version: String,
    /// Every tag the file supports (the compressed sets expanded):
    /// `py2-none-any`, `py3-none-any` for `py2.py3-none-any`.
    pub tags: Vec<String>,
}

impl WheelName {
    /// Parses a wheel file name; `None` for anything else (a path too).
    pub fn parse(filename: &str) -> Option<WheelName> {
        let stem = filename.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, python, abi, platform) = match parts[..] {
            [n, v, py, abi, plat] | [n, v, _, py, abi, plat] => (n, v, py, abi, plat),
            _ => return None,
        };
        if [name, version, python, abi, platform].iter().any(|p| p.is_empty()) || filename.contains('/') {
            return None;
        }
        let mut tags = Vec::new();
        for py in python.split('.') {
            for abi in abi.split('.') {
                for plat in platform.split('.') {
                    tags.push(format!("{py}-{abi}-{plat}"));
                }
            }
        }
        Some(WheelName { name: name.to_owned(), version: version.to_owned(), tags })
    }

    /// The rank of the file's best tag in `target_tags` (best first), or
    /// `None` when it has no tag the target takes.
    pub fn rank(&self, target_tags: &[String]) -> Option<usize> {
        self.tags.iter().filter_map(|tag| target_tags.iter().position(|t| t == tag)).min()
    }
}

/// A project name normalised per PEP 503: lowercase, runs of `-`, `_` and
/// `.` as one `-` (`Foo.Bar__baz` is `foo-bar-baz`).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_separator = false;
        }
    }
    out
}

/// A PEP 440 version, for ordering (`1.0` and `1.0.0` are equal).
#[derive(Debug, Clone)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// `(0, n)` alpha, `(1, n)` beta, `(2, n)` release candidate.
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: String,
}

impl Version {
    /// Parses a version in any of PEP 440's spellings (`1.0RC1`,
    /// `v2.0-post1`, `1!2.0.dev3+local`); `None` for anything else.
    pub fn parse(text: &str) -> Option<Version> {
        let lower = text.trim().to_ascii_lowercase();
        let (public, local) = match lower.split_once('+') {
            Some((p, l)) if !l.is_empty() => (p, l.replace(['-', '_'], ".")),
            Some(_) => return None,
            None => (lower.as_str(), String::new()),
        };
        let public = public.strip_prefix('v').unwrap_or(public);
        let (epoch, rest) = match public.split_once('!') {
            Some((e, r)) => (e.parse().ok()?, r),
            None => (0, public),
        };
        let mut s = Scanner { rest };
        let mut release = vec![s.number()?];
        while s.rest.starts_with('.') && s.rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
            s.rest = &s.rest[1..];
            release.push(s.number()?);
        }
        let mut version = Version { epoch, release, pre: None, post: None, dev: None, local };
        let pre_words: [(&str, u8); 8] =
            [("alpha", 0), ("beta", 1), ("preview", 2), ("pre", 2), ("rc", 2), ("a", 0), ("b", 1), ("c", 2)];
        if let Some(phase) = s.word(&pre_words) {
            version.pre = Some((phase, s.optional_number()));
        }
        if s.word(&[("post", 0), ("rev", 0), ("r", 0)]).is_some() {
            version.post = Some(s.optional_number());
        } else if let Some(rest) = s.rest.strip_prefix('-') {
            // `1.0-1`: an implicit post release.
            s.rest = rest;
            version.post = Some(s.number()?);
        }
        if s.word(&[("dev", 0)]).is_some() {
            version.dev = Some(s.optional_number());
        }
        s.rest.is_empty().then_some(version)
    }

    /// Whether this is a pre-release or development release.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// The release numbers (`[3, 11]` for `3.11`).
    pub fn release(&self) -> &[u64] {
        &self.release
    }

    fn key(&self) -> VersionKey<'_> {
        let mut release = self.release.clone();
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        // `1.0.dev1` sorts before `1.0a1`; a final release after its pre-releases.
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (0, 0),
            (Some((phase, n)), _, _) => (phase + 1, n),
            (None, _, _) => (4, 0),
        };
        let dev = self.dev.map_or((1, 0), |n| (0, n));
        (self.epoch, release, pre, self.post, dev, &self.local)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What versions are ordered by: epoch, release without trailing zeros,
/// pre-release, post-release, development release, local label.
type VersionKey<'a> = (u64, Vec<u64>, (u8, u64), Option<u64>, (u8, u64), &'a str);

struct Scanner<'a> {
    rest: &'a str,
}

impl Scanner<'_> {
    fn number(&mut self) -> Option<u64> {
        let end = self.rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(self.rest.len());
        let n = self.rest[..end].parse().ok()?;
        self.rest = &self.rest[end..];
        Some(n)
    }

    /// A number after an optional separator, 0 when there is none.
    fn optional_number(&mut self) -> u64 {
        let after = self.rest.strip_prefix(['.', '-', '_']).unwrap_or(self.rest);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            self.rest = after;
            self.number().unwrap_or(0)
        } else {
            0
        }
    }

    /// One of `words` (longest first), after an optional separator.
    fn word(&mut self, words: &[(&str, u8)]) -> Option<u8> {
        let after = self.rest.strip_prefix(['.', '-', '_']).unwrap_or(self.rest);
        let (word, value) = words.iter().find(|(w, _)| after.starts_with(w))?;
        self.rest = &after[word.len()..];
        Some(*value)
    }
}

/// Whether `python` (`3.11`, `3.11.4`) satisfies a `Requires-Python`
/// specifier set (`>=3.8, !=3.9.*, <4`). A clause we cannot read counts
/// as satisfied: this only narrows a hint, never a resolution.
pub fn python_satisfies(python: &Version, specifiers: &str) -> bool {
    specifiers.split(',').map(str::trim).filter(|c| !c.is_empty()).all(|clause| clause_holds(python, clause))
}

fn clause_holds(python: &Version, clause: &str) -> bool {
    let ops = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"];
    let Some(op) = ops.iter().find(|op| clause.starts_with(**op)) else { return true };
    let operand = clause[op.len()..].trim();
    if let Some(prefix) = operand.strip_suffix(".*") {
        let Some(prefix) = Version::parse(prefix) else { return true };
        let n = prefix.release.len();
        let mut padded = python.release.clone();
        padded.resize(n.max(padded.len()), 0);
        let matches = padded[..n] == prefix.release[..];
        return match *op {
            "==" => matches,
            "!=" => !matches,
            _ => true,
        };
    }
    let Some(operand) = Version::parse(operand) else { return true };
    match *op {
        "==" | "===" => python == &operand,
        "!=" => python != &operand,
        "<=" => python <= &operand,
        ">=" => python >= &operand,
        "<" => python < &operand,
        ">" => python > &operand,
        _ => {
            // `~=3.8` is `>=3.8, ==3.*`.
            let n = operand.release.len().saturating_sub(1).max(1);
            let mut padded = python.release.clone();
            padded.resize(n.max(padded.len()), 0);
            python >= &operand && padded[..n] == operand.release[..n.min(operand.release.len())]
        }
    }
}

/// A project page of the JSON simple API (PEP 691), as far as we read it.
#[derive(Debug, Deserialize)]
pub struct ProjectPage {
    /// The project's files.
    pub files: Vec<IndexFile>,
}

/// A file on a project page.
#[derive(Debug, Deserialize)]
pub struct IndexFile {
    /// The file name.
    pub filename: String,
    /// `Requires-Python`, if the index gave it.
    #[serde(rename = "requires-python", default)]
    pub requires_python: Option<String>,
    /// `false`, `true` or the reason it was yanked.
    #[serde(default)]
    pub yanked: serde_json::Value,
}

impl ProjectPage {
    /// Parses a PEP 691 JSON page, or a PEP 503 HTML page.
    pub fn parse(bytes: &[u8]) -> Option<ProjectPage> {
        let text = std::str::from_utf8(bytes).ok()?;
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).ok()
        } else if text.contains("<a") || text.contains("<A") {
            Some(ProjectPage::parse_html(text))
        } else {
            None
        }
    }

    /// The anchors of a PEP 503 page: the file name is the anchor's text,
    /// `data-requires-python` and `data-yanked` its attributes.
    fn parse_html(text: &str) -> ProjectPage {
        let mut files = Vec::new();
        let lower = text.to_ascii_lowercase();
        let mut at = 0;
        while let Some(start) = lower[at..].find("<a").map(|i| at + i) {
            let Some(tag_end) = lower[start..].find('>').map(|i| start + i) else { break };
            let Some(close) = lower[tag_end..].find("</a>").map(|i| tag_end + i) else { break };
            let tag = &text[start..tag_end];
            let attribute = |name: &str| {
                let from = tag.find(&format!("{name}=\""))? + name.len() + 2;
                let to = tag[from..].find('"')? + from;
                Some(html_unescape(&tag[from..to]))
            };
            let yanked = tag.contains("data-yanked");
            files.push(IndexFile {
                filename: html_unescape(text[tag_end + 1..close].trim()),
                requires_python: attribute("data-requires-python"),
                yanked: serde_json::Value::Bool(yanked),
            });
            at = close + 4;
        }
        ProjectPage { files }
    }

    /// The newest version (as its wheel spells it) with a wheel that is
    /// not yanked, has a tag in `target_tags` and takes `python`;
    /// pre-releases only if `pre`.
    pub fn newest_with_wheel(
        &self,
        target_tags: &[String],
        python: &Version,
        pre: bool,
    ) -> Option<(Version, String)> {
        self.files
            .iter()
            .filter(|f| matches!(f.yanked, serde_json::Value::Null | serde_json::Value::Bool(false)))
            .filter(|f| f.requires_python.as_deref().is_none_or(|spec| python_satisfies(python, spec)))
            .filter_map(|f| WheelName::parse(&f.filename))
            .filter(|w| w.rank(target_tags).is_some())
            .filter_map(|w| Some((Version::parse(&w.version)?, w.version)))
            .filter(|(v, _)| pre || !v.is_prerelease())
            .max_by(|a, b| a.0.cmp(&b.0))
    }
}

/// `&lt;` and its kin, as PEP 503 pages escape attribute values.
fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// What the indexes say of the newest version with a wheel for a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewestWheel {
    /// This version (as its wheel spells it).
    Version(String),
    /// The indexes answered, and no version has such a wheel.
    NoneOnIndex,
    /// No index could be asked, and why.
    Unknown(String),
}

impl std::fmt::Display for NewestWheel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewestWheel::Version(v) => write!(f, "the newest version with such a wheel is {v}"),
            NewestWheel::NoneOnIndex => write!(f, "no version on the index has such a wheel"),
            NewestWheel::Unknown(why) => write!(f, "which version has one is unknown: {why}"),
        }
    }
}

/// The newest version of `name` with a wheel for the target, looked up on
/// each index (the greatest wins).
pub(crate) fn newest_with_wheel(
    indexes: &[String],
    name: &str,
    target_tags: &[String],
    python: &Version,
    pre: bool,
) -> NewestWheel {
    if indexes.is_empty() {
        return NewestWheel::Unknown("no index to ask (--no-index)".into());
    }
    let agent = crate::fetch::agent();
    let accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";
    let mut answered = false;
    let mut failures = Vec::new();
    let mut best: Option<(Version, String)> = None;
    for index in indexes {
        let url = format!("{}/{}/", index.trim_end_matches('/'), normalize_name(name));
        let page = match crate::fetch::get_bytes(&agent, &url, accept, 64 << 20) {
            Ok(bytes) => ProjectPage::parse(&bytes),
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        let Some(page) = page else {
            failures.push(format!("{url}: not a simple API page"));
            continue;
        };
        answered = true;
        if let Some(found) = page.newest_with_wheel(target_tags, python, pre) {
            if best.as_ref().is_none_or(|b| found.0 > b.0) {
                best = Some(found);
            }
        }
    }
    match best {
        Some((_, text)) => NewestWheel::Version(text),
        None if answered => NewestWheel::NoneOnIndex,
        None => NewestWheel::Unknown(failures.join("; ")),
    }
}

/// Why a version does not parse, for errors.
pub(crate) fn parse_python_version(text: &str) -> Result<Version, ResolveError> {
    let version = Version::parse(text).filter(|v| v.release.len() >= 2 && v.release[0] == 3);
    version.ok_or_else(|| ResolveError::Target {
        what: format!("python version {text:?}"),
        problem: "expected a CPython 3 version such as 3.11 or 3.11.4".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap_or_else(|| panic!("{text} does not parse"))
    }

    #[test]
    fn wheel_names_expand_their_tag_sets() {
        let w = WheelName::parse("text_unidecode-1.3-py2.py3-none-any.whl").unwrap();
        assert_eq!((w.name.as_str(), w.version.as_str()), ("text_unidecode", "1.3"));
        assert_eq!(w.tags, ["py2-none-any", "py3-none-any"]);
        let w = WheelName::parse(
            "pyyaml-6.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.tags.len(), 3);
        assert_eq!(w.tags[1], "cp311-cp311-manylinux_2_17_x86_64");
        let w = WheelName::parse("foo-1.0-1build-py3-none-any.whl").unwrap();
        assert_eq!(w.tags, ["py3-none-any"]);
        for bad in [
            "foo-1.0.tar.gz",
            "foo-1.0-py3-none.whl",
            "foo--py3-none-any.whl",
            ".whl",
            "",
            "d/x-1-py3-none-any.whl",
            "x-1-py3--any.whl",
        ] {
            assert_eq!(WheelName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_normalised_as_pep_503_says() {
        for (name, expected) in [
            ("PyYAML", "pyyaml"),
            ("Foo.Bar__baz", "foo-bar-baz"),
            ("zope.interface", "zope-interface"),
            ("a-_-b", "a-b"),
            ("python_slugify", "python-slugify"),
            ("_private", "-private"),
        ] {
            assert_eq!(normalize_name(name), expected, "{name}");
        }
    }

    #[test]
    fn versions_order_per_pep_440() {
        let ordered = [
            "1.0.dev1",
            "1.0a1",
            "1.0a2.dev1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+local",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.1",
            "2.3.5",
            "2.10",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0"), v("1.0"));
        assert_eq!(v("1.0").cmp(&v("1.0.0")), Ordering::Equal);
        assert_eq!(v("1.0RC1").cmp(&v("1.0rc1")), Ordering::Equal);
        assert_eq!(v("1.0-1").cmp(&v("1.0.post1")), Ordering::Equal);
        assert_eq!(v("v1.0c1").cmp(&v("1.0rc1")), Ordering::Equal);
        assert_eq!(v("1.0alpha").cmp(&v("1.0a0")), Ordering::Equal);
        assert!(
            v("1.0b2").is_prerelease() && v("2.0.dev0").is_prerelease() && !v("2.0.post1").is_prerelease()
        );
        for bad in ["", "abc", "1.0+", "1..0", "1.0-", "1.0 beta", "1.0foo"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn requires_python() {
        let py = v("3.11");
        for ok in
            [">=3.8", ">=3.8, <4", "!=3.9.*", "==3.*", "~=3.9", "==3.11.*", "", ">=3.11", "<=3.11.0", "weird"]
        {
            assert!(python_satisfies(&py, ok), "{ok}");
        }
        for no in [">=3.12", "<3.11", "==3.10.*", "!=3.11.*", "~=3.12", ">3.11", ">=3.8, <3.11"] {
            assert!(!python_satisfies(&py, no), "{no}");
        }
    }

    #[test]
    fn the_newest_compatible_wheel_is_found_on_a_page() {
        let page = br#"{"meta": {"api-version": "1.1"}, "name": "numpy", "files": [
            {"filename": "numpy-1.16.0-cp37-cp37m-manylinux1_x86_64.whl", "url": "u", "hashes": {}},
            {"filename": "numpy-2.3.5-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "url": "u", "hashes": {}, "requires-python": ">=3.11"},
            {"filename": "numpy-2.3.5-cp311-cp311-manylinux_2_27_aarch64.whl", "url": "u", "hashes": {}},
            {"filename": "numpy-2.4.0-cp312-cp312-manylinux_2_28_x86_64.whl", "url": "u", "hashes": {}},
            {"filename": "numpy-2.4.0rc1-cp311-cp311-manylinux_2_28_x86_64.whl", "url": "u", "hashes": {}},
            {"filename": "numpy-2.3.6-cp311-cp311-manylinux_2_28_x86_64.whl", "url": "u", "hashes": {}, "yanked": "broken"},
            {"filename": "numpy-2.3.7-cp311-cp311-manylinux_2_28_x86_64.whl", "url": "u", "hashes": {}, "requires-python": ">=3.12"},
            {"filename": "numpy-2.5.0.tar.gz", "url": "u", "hashes": {}}
        ]}"#;
        let page = ProjectPage::parse(page).unwrap();
        let tags: Vec<String> = ["cp311-cp311-manylinux_2_36_x86_64", "cp311-cp311-manylinux_2_28_x86_64"]
            .map(String::from)
            .into();
        let newest = |pre| page.newest_with_wheel(&tags, &v("3.11"), pre).map(|(_, text)| text);
        assert_eq!(newest(false).as_deref(), Some("2.3.5"));
        assert_eq!(newest(true).as_deref(), Some("2.4.0rc1"));
        assert!(page.newest_with_wheel(&tags[..1], &v("3.11"), true).is_none());
        assert!(ProjectPage::parse(b"<html>").is_none());
        assert!(ProjectPage::parse(b"\xff").is_none());
    }

    #[test]
    fn html_pages_of_indexes_without_json() {
        let page = br#"<!DOCTYPE html><html><body><h1>Links for numpy</h1>
            <a href="https://e/numpy-2.3.5-cp311-cp311-manylinux_2_28_x86_64.whl#sha256=00" data-requires-python="&gt;=3.11">numpy-2.3.5-cp311-cp311-manylinux_2_28_x86_64.whl</a><br/>
            <A HREF="https://e/numpy-2.3.6-cp311-cp311-manylinux_2_28_x86_64.whl" data-yanked="">numpy-2.3.6-cp311-cp311-manylinux_2_28_x86_64.whl</A>
            <a href="https://e/numpy-2.4.0-cp312-cp312-manylinux_2_28_x86_64.whl" data-requires-python="&gt;=3.12">numpy-2.4.0-cp312-cp312-manylinux_2_28_x86_64.whl</a>
            <a href="https://e/numpy-2.3.7-cp311-cp311-manylinux_2_28_x86_64.whl" data-requires-python="&gt;=3.12">numpy-2.3.7-cp311-cp311-manylinux_2_28_x86_64.whl</a>
            </body></html>"#;
        let page = ProjectPage::parse(page).unwrap();
        assert_eq!(page.files.len(), 4);
        assert_eq!(page.files[0].requires_python.as_deref(), Some(">=3.11"));
        let tags = vec!["cp311-cp311-manylinux_2_28_x86_64".to_owned()];
        let newest = page.newest_with_wheel(&tags, &v("3.11"), false).map(|(_, text)| text);
        assert_eq!(newest.as_deref(), Some("2.3.5"));
        // Truncated markup ends the list instead of failing.
        assert_eq!(ProjectPage::parse(b"<a href=x>numpy-1-py3-none-any.whl").unwrap().files.len(), 0);
        assert_eq!(
            NewestWheel::Version("2.3.5".into()).to_string(),
            "the newest version with such a wheel is 2.3.5"
        );
    }
}
