//! `VERSION`: the image name (without registry) and tag of a plugin,
//! validated against the Docker/OCI reference grammar
//! (`distribution/reference`): lowercase path components separated by `/`,
//! each `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`; a tag of
//! `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.

use std::fmt;

use crate::{Position, Problem};

/// Longest image name Docker accepts, registry included.
const NAME_MAX: usize = 255;
/// Longest tag the grammar allows.
const TAG_MAX: usize = 128;

/// An image name and tag, as written in `VERSION`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// Repository path without registry, e.g. `supervisely/import-csv`.
    pub name: String,
    /// Tag, e.g. `1.2.0`.
    pub tag: String,
}

impl ImageRef {
    /// The full reference once pushed to `registry` (`REGISTRY/NAME:TAG`,
    /// as `build_plugin.sh` names it). An empty registry gives `NAME:TAG`.
    pub fn with_registry(&self, registry: &str) -> String {
        let registry = registry.trim_end_matches('/');
        if registry.is_empty() {
            self.to_string()
        } else {
            format!("{registry}/{self}")
        }
    }

    /// Parses the text of a `VERSION` file: one line `<image>:<tag>`, with an
    /// optional trailing newline and nothing else.
    pub fn parse_version_file(src: &str) -> Result<ImageRef, Problem> {
        let line = src.strip_suffix('\n').unwrap_or(src);
        if let Some(nl) = line.find('\n') {
            let extra = Position::of_offset(src, nl + 1);
            return Err(Problem::at(extra, "VERSION must hold exactly one line")
                .with_help("keep only `<image>:<tag>` on the first line"));
        }
        if line.is_empty() {
            return Err(Problem::at(Position::START, "VERSION is empty")
                .with_help("write `<image>:<tag>`, for example `my-team/import-csv:1.0.0`"));
        }
        ImageRef::parse(line)
    }

    /// Parses `<image>:<tag>` (no registry, no digest). Error positions are
    /// columns on line 1.
    pub fn parse(text: &str) -> Result<ImageRef, Problem> {
        let at = |byte: usize, message: String| Problem::at(Position::of_offset(text, byte), message);
        if let Some((i, c)) = text.char_indices().find(|(_, c)| c.is_whitespace()) {
            let what = match c {
                '\r' => "carriage return".to_string(),
                '\t' => "tab".to_string(),
                ' ' => "space".to_string(),
                c => format!("whitespace {c:?}"),
            };
            let help = if c == '\r' {
                "save VERSION with Unix (LF) line endings"
            } else {
                "remove it: VERSION holds `<image>:<tag>` and nothing else"
            };
            return Err(at(i, format!("unexpected {what} in VERSION")).with_help(help));
        }
        if let Some(i) = text.find('@') {
            return Err(
                at(i, "a digest does not belong in VERSION".into()).with_help("write a tag: `<image>:<tag>`")
            );
        }
        let Some(colon) = text.find(':') else {
            return Err(at(text.len(), "missing `:<tag>` after the image name".into())
                .with_help(format!("write `{text}:<tag>`, for example `{text}:1.0.0`")));
        };
        let (name, tag) = (&text[..colon], &text[colon + 1..]);
        if let Some(second) = tag.find(':') {
            let problem = at(colon + 1 + second, "more than one `:` in VERSION".into());
            return Err(if name.contains('.') || tag[..second].contains('/') {
                problem.with_help("the registry is given at build time: drop `host:port/` from VERSION")
            } else {
                problem.with_help("write `<image>:<tag>`; a tag may not contain `:`")
            });
        }
        validate_name(name).map_err(|(i, m, help)| at(i, m).with_help(help))?;
        validate_tag(tag).map_err(|(i, m, help)| at(colon + 1 + i, m).with_help(help))?;
        Ok(ImageRef { name: name.to_string(), tag: tag.to_string() })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

type GrammarError = (usize, String, String);

const NAME_HELP: &str =
    "image names are lowercase letters and digits in `/`-separated parts, joined inside a part by `.`, `_`, `__` or `-`";

fn validate_name(name: &str) -> Result<(), GrammarError> {
    if name.is_empty() {
        return Err((0, "missing image name before `:`".into(), NAME_HELP.into()));
    }
    if name.len() > NAME_MAX {
        return Err((NAME_MAX, format!("image name is longer than {NAME_MAX} characters"), NAME_HELP.into()));
    }
    let mut start = 0;
    for component in name.split('/') {
        validate_component(component).map_err(|(i, m)| (start + i, m, NAME_HELP.into()))?;
        start += component.len() + 1;
    }
    Ok(())
}

/// One path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn validate_component(component: &str) -> Result<(), (usize, String)> {
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

fn validate_tag(tag: &str) -> Result<(), GrammarError> {
    const TAG_HELP: &str =
        "tags are letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 128 characters";
    let mut chars = tag.char_indices();
    match chars.next() {
        None => return Err((0, "empty tag after `:`".into(), TAG_HELP.into())),
        Some((_, c)) if c.is_ascii_alphanumeric() || c == '_' => {}
        Some((_, c)) => {
            return Err((
                0,
                format!("tag must start with a letter, digit or `_`, found `{c}`"),
                TAG_HELP.into(),
            ))
        }
    }
    if let Some((i, c)) = chars.find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err((i, format!("invalid character `{c}` in tag"), TAG_HELP.into()));
    }
    if tag.len() > TAG_MAX {
        return Err((TAG_MAX, format!("tag is longer than {TAG_MAX} characters"), TAG_HELP.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    fn check(src: &str, expect: Expect) {
        let actual = match ImageRef::parse_version_file(src) {
            Ok(r) => format!("ok name={} tag={}", r.name, r.tag),
            Err(p) => format!("{}: {}", p.position.unwrap(), p.message),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn valid_references() {
        check("some/prefix/nn-icnet:4.0.0\n", expect![["ok name=some/prefix/nn-icnet tag=4.0.0"]]);
        check("a:b", expect![["ok name=a tag=b"]]);
        check("a__b.c_d---e/x9:_Latest-1.2", expect![["ok name=a__b.c_d---e/x9 tag=_Latest-1.2"]]);
    }

    #[test]
    fn line_rules() {
        check("", expect![["1:1: VERSION is empty"]]);
        check("\n", expect![["1:1: VERSION is empty"]]);
        check("a:1\n\n", expect![["2:1: VERSION must hold exactly one line"]]);
        check("a:1\r\n", expect![["1:4: unexpected carriage return in VERSION"]]);
        check("a:1 # comment\n", expect![["1:4: unexpected space in VERSION"]]);
        check(" a:1", expect![["1:1: unexpected space in VERSION"]]);
    }

    #[test]
    fn name_grammar() {
        check("Some/image:1", expect![["1:1: uppercase letter `S` in image name"]]);
        check("some//image:1", expect![["1:6: empty part in image name (`//`, or `/` at an end)"]]);
        check("some/image/:1", expect![["1:12: empty part in image name (`//`, or `/` at an end)"]]);
        check("-x:1", expect![["1:1: image name parts must start with a letter or digit, found `-`"]]);
        check("x-:1", expect![["1:2: image name parts must end with a letter or digit"]]);
        check("a___b:1", expect![["1:2: invalid separator `___` in image name"]]);
        check("a.-b:1", expect![["1:2: invalid separator `.-` in image name"]]);
        check("imäge:1", expect![["1:3: invalid character `ä` in image name"]]);
        check(":1", expect![["1:1: missing image name before `:`"]]);
        check(
            &format!("{}:1", "a".repeat(256)),
            expect![["1:256: image name is longer than 255 characters"]],
        );
    }

    #[test]
    fn tag_grammar() {
        check("image", expect![["1:6: missing `:<tag>` after the image name"]]);
        check("image:", expect![["1:7: empty tag after `:`"]]);
        check("image:.1", expect![["1:7: tag must start with a letter, digit or `_`, found `.`"]]);
        check("image:1+build", expect![["1:8: invalid character `+` in tag"]]);
        check("image:1:2", expect![["1:8: more than one `:` in VERSION"]]);
        check("localhost:5000/image:1", expect![["1:21: more than one `:` in VERSION"]]);
        check("image@sha256:abc", expect![["1:6: a digest does not belong in VERSION"]]);
        check(&format!("image:{}", "t".repeat(129)), expect![["1:135: tag is longer than 128 characters"]]);
    }
}
