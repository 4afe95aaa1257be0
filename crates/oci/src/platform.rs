//! The one OCI platform type (`os/architecture[/variant]`): what a build
//! targets, what a pull picks from an index, what a native installer
//! installs for.

use std::fmt;

use oci_spec::image::ImageConfiguration;

/// An OS and architecture (and variant) of an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, as in an OCI config.
    pub architecture: String,
    /// `v8`, `v7`; `None` matches any.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` (`linux/arm64`, `linux/arm/v7`).
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.split('/');
        let os = parts.next().filter(|s| !s.is_empty())?.to_owned();
        let architecture = parts.next().filter(|s| !s.is_empty())?.to_owned();
        let variant = match parts.next() {
            Some("") => return None,
            other => other.map(str::to_owned),
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Platform { os, architecture, variant })
    }

    /// The platform an image configuration says it is for.
    pub fn of_config(config: &ImageConfiguration) -> Platform {
        Platform {
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            variant: config.variant().clone().filter(|v| !v.is_empty()),
        }
    }

    /// Whether an image of `other` serves a request for `self`: the same
    /// OS and architecture, and the same variant unless `self` names none.
    pub fn accepts(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl Default for Platform {
    /// `linux/amd64`, what plugins are built for unless told otherwise.
    fn default() -> Platform {
        Platform { os: "linux".into(), architecture: "amd64".into(), variant: None }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_show() {
        for text in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
            assert_eq!(Platform::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", "linux", "linux/", "/amd64", "linux/arm/", "a/b/c/d"] {
            assert_eq!(Platform::parse(bad), None, "{bad}");
        }
        let any = Platform::parse("linux/arm64").unwrap();
        assert!(any.accepts(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!Platform::parse("linux/arm64/v8").unwrap().accepts(&any));
        assert!(!any.accepts(&Platform::default()));
    }
}
