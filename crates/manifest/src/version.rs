//! `VERSION`: the image name (without registry) and tag of a plugin,
//! validated against the Docker/OCI reference grammar
//! (`distribution/reference`, checked by `forge-reference`): lowercase path
//! components separated by `/`, each `[a-z0-9]+` joined by `.`, `_`, `__`
//! or runs of `-`; a tag of `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. What is
//! particular to `VERSION` (one line, no registry, no digest, exactly one
//! `:`) is checked here.

use std::fmt;

use forge_reference::{check_path, check_tag};

use crate::{Position, Problem};

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
        if line.starts_with('\u{feff}') {
            return Err(Problem::at(Position::START, "VERSION starts with a byte order mark (U+FEFF)")
                .with_help("save VERSION as UTF-8 without a BOM (in most editors: encoding \"UTF-8\", not \"UTF-8 with BOM\")"));
        }
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
        check_path(name).map_err(|e| at(e.offset, e.message).with_help(e.help))?;
        check_tag(tag).map_err(|e| at(colon + 1 + e.offset, e.message).with_help(e.help))?;
        Ok(ImageRef { name: name.to_string(), tag: tag.to_string() })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_byte_order_mark_has_its_own_message_and_help() {
        let problem = ImageRef::parse_version_file("\u{feff}team/app:1.0\n").unwrap_err();
        assert_eq!(problem.message, "VERSION starts with a byte order mark (U+FEFF)");
        assert!(problem.help.unwrap().contains("without a BOM"));
    }

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
