//! The `Name`/`Version` of a distribution's core metadata (`METADATA`,
//! `PKG-INFO`), read from installed distributions and from wheels. (Names
//! are normalised with [`crate::index::normalize_name`].)

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
    fn metadata_header_only() {
        let text = "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\n\nName: not-this\n";
        let metadata = parse_metadata(text);
        assert_eq!(metadata.name.as_deref(), Some("PyYAML"));
        assert_eq!(metadata.version.as_deref(), Some("6.0.1"));
        assert_eq!(parse_metadata("Version: 1\n"), Metadata { name: None, version: Some("1".into()) });
    }
}
