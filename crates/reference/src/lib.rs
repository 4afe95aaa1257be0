//! Image references (`host[:port]/repo[:tag|@digest]`) as Docker reads them.
//!
//! Users write `python:3.11` and mean Docker Hub's `library/python`; the
//! registry API wants a host to connect to and a repository path. Parsing
//! follows the distribution reference grammar: the first path component is
//! a registry only if it holds a `.` or a `:` or is `localhost`, otherwise
//! the image is on Docker Hub. Docker Hub's name variants (`docker.io`,
//! `index.docker.io`, `registry-1.docker.io`) all become `docker.io`, whose
//! API endpoint is `registry-1.docker.io`, and one-component Hub names get
//! the `library/` prefix, so that one image has one [`Reference`].
//!
//! This crate is the one place that knows the grammar: the rule "a `:`
//! after the last `/` starts the tag" ([`split_tag`]), the path and tag
//! grammars with the position of the first offence ([`check_path`],
//! [`check_tag`], which `VERSION`'s lint errors are made of), and the
//! normalised [`Reference`] the registry client, the base-image resolver
//! and the archive writer use.

#![deny(missing_docs)]

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

pub use forge_digest::Digest;

/// Longest image name Docker accepts, registry included.
pub const NAME_MAX: usize = 255;
/// Longest tag the grammar allows.
pub const TAG_MAX: usize = 128;

/// A text that is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{reference}`: {reason}")]
pub struct Error {
    /// The text as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";

/// A tag or a digest: what a reference points at in its repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `:tag` (`latest` when the reference names neither).
    Tag(String),
    /// `@sha256:...`, with the tag written before it if any (kept for
    /// display only: the digest decides).
    Digest(Digest, Option<String>),
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    target: Target,
}

impl Reference {
    /// Parses `[host[:port]/]repo[:tag][@digest]`; see the module docs.
    pub fn parse(text: &str) -> Result<Reference> {
        let invalid = |reason: String| Error { reference: text.to_owned(), reason };
        if text.is_empty() {
            return Err(invalid("empty reference".into()));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let digest = Digest::parse(digest).map_err(|e| invalid(e.to_string()))?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        let (name, tag) = split_tag(name);
        if let Some(tag) = tag {
            check_tag(tag).map_err(|e| invalid(e.to_string()))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (normalise_registry(first), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        check_registry(&registry).map_err(invalid)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        check_path(&repository).map_err(|e| invalid(e.to_string()))?;
        let target = match digest {
            Some(digest) => Target::Digest(digest, tag.map(str::to_owned)),
            None => Target::Tag(tag.unwrap_or("latest").to_owned()),
        };
        Ok(Reference { registry, repository, target })
    }

    /// The same repository with another target.
    pub fn with_target(&self, target: Target) -> Reference {
        Reference { registry: self.registry.clone(), repository: self.repository.clone(), target }
    }

    /// The same repository at `digest`.
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        self.with_target(Target::Digest(digest.clone(), None))
    }

    /// The registry as named (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) the API is served from: the registry, except
    /// for Docker Hub.
    pub fn endpoint(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_ENDPOINT
        } else {
            &self.registry
        }
    }

    /// The repository path (`library/python`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag or digest.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        match &self.target {
            Target::Tag(tag) | Target::Digest(_, Some(tag)) => Some(tag),
            Target::Digest(_, None) => None,
        }
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.target {
            Target::Digest(digest, _) => Some(digest),
            Target::Tag(_) => None,
        }
    }

    /// What goes after `/manifests/` in a URL: the digest if pinned, else
    /// the tag.
    pub fn manifest_path_part(&self) -> String {
        match &self.target {
            Target::Tag(tag) => tag.clone(),
            Target::Digest(digest, _) => digest.to_string(),
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match &self.target {
            Target::Tag(tag) => write!(f, ":{tag}"),
            Target::Digest(digest, Some(tag)) => write!(f, ":{tag}@{digest}"),
            Target::Digest(digest, None) => write!(f, "@{digest}"),
        }
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

/// Docker Hub's spellings (`index.docker.io`, `registry-1.docker.io`, with
/// or without `https://` and `/v1/`) become `docker.io`; other names are
/// lowercased, without scheme and path.
pub fn normalise_registry(name: &str) -> String {
    let name = name.trim();
    let name = name.strip_prefix("https://").or_else(|| name.strip_prefix("http://")).unwrap_or(name);
    let host = name.split('/').next().unwrap_or(name).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

/// Whether `host` (with an optional port) is a loopback address, which we
/// talk to over plain HTTP: `localhost`, `127.0.0.0/8`, `[::1]`.
pub fn is_loopback(host: &str) -> bool {
    let bare = host_without_port(host);
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => ip == Ipv6Addr::LOCALHOST,
        Err(_) => false,
    }
}

/// `host` of `host:port`, `[v6]` of `[v6]:port`.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((bare, port)) if port.bytes().all(|b| b.is_ascii_digit()) => bare,
        _ => host,
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let bare = host_without_port(registry);
    let ok = !bare.is_empty()
        && (bare.starts_with('[') && bare.ends_with(']')
            || bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!("`{registry}` is not a valid registry host"))
    }
}

/// `name[:tag]` split by the one rule: a `:` after the last `/` starts the
/// tag (a `:` before it belongs to a registry port). Nothing is validated.
pub fn split_tag(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (name, None),
    }
}

/// The name of a reference as written, without tag or digest:
/// `localhost:5000/base-py` of `localhost:5000/base-py:1.0@sha256:...`.
pub fn untagged(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    split_tag(name).0
}

/// Where a name or tag breaks the grammar: the byte offset of the offence
/// in the text checked, what is wrong, and what the grammar wants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}; {help}")]
pub struct GrammarError {
    /// Byte offset into the checked text.
    pub offset: usize,
    /// What is wrong (`uppercase letter `S` in image name`).
    pub message: String,
    /// What the grammar allows.
    pub help: &'static str,
}

/// What a valid image name looks like.
pub const NAME_HELP: &str =
    "image names are lowercase letters and digits in `/`-separated parts, joined inside a part by `.`, `_`, `__` or `-`";

/// What a valid tag looks like.
pub const TAG_HELP: &str =
    "tags are letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 128 characters";

/// Checks a repository path (`team/app`, no registry): lowercase path
/// components `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*` separated by `/`,
/// at most [`NAME_MAX`] bytes.
pub fn check_path(name: &str) -> Result<(), GrammarError> {
    let error = |offset, message| GrammarError { offset, message, help: NAME_HELP };
    if name.is_empty() {
        return Err(error(0, "missing image name before `:`".into()));
    }
    if name.len() > NAME_MAX {
        return Err(error(NAME_MAX, format!("image name is longer than {NAME_MAX} characters")));
    }
    let mut start = 0;
    for component in name.split('/') {
        check_component(component).map_err(|(i, m)| error(start + i, m))?;
        start += component.len() + 1;
    }
    Ok(())
}

/// One path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn check_component(component: &str) -> Result<(), (usize, String)> {
    if component.is_empty() {
        return Err((0, "empty part in image name (`//`, or `/` at an end)".into()));
    }
    // Start of the current separator run, if inside one.
    let mut separator: Option<usize> = None;
    for (idx, c) in component.char_indices() {
        match c {
            'a'..='z' | '0'..='9' => {
                if let Some(s) = separator.take() {
                    let sep = &component[s..idx];
                    let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
                    if !ok {
                        return Err((s, format!("invalid separator `{sep}` in image name")));
                    }
                }
            }
            '.' | '_' | '-' => {
                if idx == 0 {
                    return Err((
                        0,
                        format!("image name parts must start with a letter or digit, found `{c}`"),
                    ));
                }
                separator.get_or_insert(idx);
            }
            'A'..='Z' => {
                return Err((idx, format!("uppercase letter `{c}` in image name")));
            }
            _ => return Err((idx, format!("invalid character `{c}` in image name"))),
        }
    }
    if let Some(s) = separator {
        return Err((s, "image name parts must end with a letter or digit".into()));
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), GrammarError> {
    let error = |offset, message| GrammarError { offset, message, help: TAG_HELP };
    let mut chars = tag.char_indices();
    match chars.next() {
        None => return Err(error(0, "empty tag after `:`".into())),
        Some((_, c)) if c.is_ascii_alphanumeric() || c == '_' => {}
        Some((_, c)) => {
            return Err(error(0, format!("tag must start with a letter, digit or `_`, found `{c}`")))
        }
    }
    if let Some((i, c)) = chars.find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(error(i, format!("invalid character `{c}` in tag")));
    }
    if tag.len() > TAG_MAX {
        return Err(error(TAG_MAX, format!("tag is longer than {TAG_MAX} characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parts(text: &str) -> (String, String, String, String) {
        let r = Reference::parse(text).unwrap();
        (r.registry().to_owned(), r.endpoint().to_owned(), r.repository().to_owned(), r.to_string())
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        let hub = |repo: &str, full: &str| {
            (DOCKER_HUB.to_owned(), DOCKER_HUB_ENDPOINT.to_owned(), repo.to_owned(), full.to_owned())
        };
        assert_eq!(parts("python"), hub("library/python", "docker.io/library/python:latest"));
        assert_eq!(parts("python:3.11"), hub("library/python", "docker.io/library/python:3.11"));
        assert_eq!(
            parts("supervisely/base-py:6.1"),
            hub("supervisely/base-py", "docker.io/supervisely/base-py:6.1")
        );
        for variant in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(
                parts(&format!("{variant}/python:3")),
                hub("library/python", "docker.io/library/python:3")
            );
        }
    }

    #[test]
    fn registries_ports_tags_and_digests() {
        assert_eq!(
            parts("localhost:5000/base-py:1.0"),
            (
                "localhost:5000".into(),
                "localhost:5000".into(),
                "base-py".into(),
                "localhost:5000/base-py:1.0".into()
            )
        );
        assert_eq!(parts("127.0.0.1:5000/a/b").3, "127.0.0.1:5000/a/b:latest");
        assert_eq!(parts("[::1]:5000/a").0, "[::1]:5000");
        let r = Reference::parse(&format!("ghcr.io/o/r:v1@{D}")).unwrap();
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.manifest_path_part(), D);
        assert_eq!(r.to_string(), format!("ghcr.io/o/r:v1@{D}"));
        let r = Reference::parse(&format!("ghcr.io/o/r@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), format!("ghcr.io/o/r@{D}"));
    }

    #[test]
    fn invalid_references_are_refused() {
        for bad in
            ["", "UPPER/case", "a//b", "a:", "a:-tag", "a@sha256:00", "repo/-x", "a/b..c", "host:5000/"]
        {
            assert!(Reference::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let err = Reference::parse("Python").unwrap_err().to_string();
        assert!(err.contains("lowercase"), "{err}");
    }

    #[test]
    fn loopback_hosts() {
        for yes in ["localhost", "localhost:5000", "127.0.0.1:80", "127.1.2.3", "[::1]:5000", "[::1]"] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in ["example.com", "10.0.0.1:5000", "localhost.example.com", "[::2]:5000", "docker.io"] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn registry_spellings() {
        for (spelling, registry) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("Registry-1.Docker.io", "docker.io"),
            ("https://ghcr.io", "ghcr.io"),
            ("localhost:5000", "localhost:5000"),
        ] {
            assert_eq!(normalise_registry(spelling), registry, "{spelling}");
        }
    }

    #[test]
    fn the_tag_is_a_colon_after_the_last_slash() {
        for (reference, name, tag) in [
            ("app:1.0", "app", Some("1.0")),
            ("app", "app", None),
            ("localhost:5000/team/app", "localhost:5000/team/app", None),
            ("localhost:5000/team/app:v2", "localhost:5000/team/app", Some("v2")),
            ("/srv/images:v1", "/srv/images", Some("v1")),
        ] {
            assert_eq!(split_tag(reference), (name, tag), "{reference}");
        }
        for (reference, name) in [
            ("localhost:5000/base-py:1.0", "localhost:5000/base-py"),
            ("localhost:5000/base-py", "localhost:5000/base-py"),
            ("base-py@sha256:00", "base-py"),
            ("python:3.11@sha256:00", "python"),
        ] {
            assert_eq!(untagged(reference), name, "{reference}");
        }
    }

    #[test]
    fn grammar_errors_point_at_the_offence() {
        let path = |name: &str| check_path(name).map_err(|e| (e.offset, e.message));
        assert_eq!(path("team/app"), Ok(()));
        assert_eq!(path("team/App"), Err((5, "uppercase letter `A` in image name".into())));
        assert_eq!(path("a.-b"), Err((1, "invalid separator `.-` in image name".into())));
        let tag = |tag: &str| check_tag(tag).map_err(|e| (e.offset, e.message));
        assert_eq!(tag("_v1.0-rc"), Ok(()));
        assert_eq!(tag("1+b"), Err((1, "invalid character `+` in tag".into())));
        assert_eq!(tag(&"t".repeat(129)), Err((128, "tag is longer than 128 characters".into())));
    }
}
