//! What is said about a distribution in more than one place: its name
//! normalised (PEP 503), and the `Name`/`Version` of its core metadata
//! (`METADATA`, `PKG-INFO`).

/// A project name normalised per PEP 503: lowercase, runs of `-`, `_` and
/// `.` as one `-` (`Foo.Bar__baz` → `foo-bar-baz`).
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

/// The fields of core metadata an installer needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `Name`, as written.
    pub name: Option<String>,
    /// `Version`, as written.
    pub version: Option<String>,
}

/// Reads `Name` and `Version` from the header block of core metadata (an
/// email-style header; the body after the first blank line is the
/// description and is not read).
pub fn parse_metadata(text: &str) -> Metadata {
    let mut metadata = Metadata::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if key.eq_ignore_ascii_case("Name") && metadata.name.is_none() {
            metadata.name = Some(value.to_owned());
        } else if key.eq_ignore_ascii_case("Version") && metadata.version.is_none() {
            metadata.version = Some(value.to_owned());
        }
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_as_pep_503_says() {
        for (name, expected) in [
            ("PyYAML", "pyyaml"),
            ("Foo.Bar__baz", "foo-bar-baz"),
            ("zope.interface", "zope-interface"),
            ("a-_-b", "a-b"),
            ("python_slugify", "python-slugify"),
        ] {
            assert_eq!(normalize_name(name), expected, "{name}");
        }
    }

    #[test]
    fn metadata_header_only() {
        let text = "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\n\nName: not-this\n";
        let metadata = parse_metadata(text);
        assert_eq!(metadata.name.as_deref(), Some("PyYAML"));
        assert_eq!(metadata.version.as_deref(), Some("6.0.1"));
        assert_eq!(parse_metadata("Version: 1\n"), Metadata { name: None, version: Some("1".into()) });
    }
}
