//! The one OCI platform type (`os/architecture[/variant]`): what a build
//! targets, what a pull picks from an index, what a native installer
//! installs for.

use std::fmt;

use oci_spec::image::{Arch, ImageConfiguration, Os, PlatformBuilder};

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

    /// The machine plugin-forge runs on (`BUILDPLATFORM`): `linux/amd64`
    /// on x86-64, `linux/arm64` on aarch64.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform { os: std::env::consts::OS.into(), architecture: architecture.into(), variant: None }
    }

    /// Parses a comma-separated list (`linux/amd64,linux/arm64`, as
    /// `docker build --platform` takes it): each once, in the order given.
    pub fn parse_list(text: &str) -> Result<Vec<Platform>, String> {
        let mut platforms: Vec<Platform> = Vec::new();
        for part in text.split(',').map(str::trim) {
            let platform = Platform::parse(part).ok_or_else(|| {
                format!("`{part}` is not a platform; write OS/ARCH[/VARIANT], e.g. linux/arm64")
            })?;
            if !platforms.contains(&platform) {
                platforms.push(platform);
            }
        }
        Ok(platforms)
    }

    /// Sets the OS, architecture and variant of an image configuration.
    pub fn set_on(&self, config: &mut ImageConfiguration) {
        config.set_os(Os::from(self.os.as_str()));
        config.set_architecture(Arch::from(self.architecture.as_str()));
        config.set_variant(self.variant.clone());
    }

    /// The `platform` of an index entry for an image of this platform.
    pub fn to_oci(&self) -> oci_spec::image::Platform {
        let mut platform = PlatformBuilder::default()
            .os(Os::from(self.os.as_str()))
            .architecture(Arch::from(self.architecture.as_str()))
            .build()
            .expect("os and architecture are set");
        platform.set_variant(self.variant.clone());
        platform
    }

    /// The platform of an index entry's `platform`.
    pub fn of_oci(platform: &oci_spec::image::Platform) -> Platform {
        Platform {
            os: platform.os().to_string(),
            architecture: platform.architecture().to_string(),
            variant: platform.variant().clone().filter(|v| !v.is_empty()),
        }
    }

    /// `BuildKit`'s automatic build args for this platform as the target
    /// (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`) or,
    /// with `prefix` `BUILD`, as the build machine's.
    pub fn build_args(&self, prefix: &str) -> [(String, String); 4] {
        [
            (format!("{prefix}PLATFORM"), self.to_string()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.architecture.clone()),
            (format!("{prefix}VARIANT"), self.variant.clone().unwrap_or_default()),
        ]
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

    #[test]
    fn lists_and_configs() {
        let both = Platform::parse_list("linux/amd64, linux/arm64,linux/amd64").unwrap();
        assert_eq!(both, [Platform::default(), Platform::parse("linux/arm64").unwrap()]);
        assert_eq!(
            Platform::parse_list("linux/amd64,arm64").unwrap_err(),
            "`arm64` is not a platform; write OS/ARCH[/VARIANT], e.g. linux/arm64"
        );
        let arm = Platform::parse("linux/arm/v7").unwrap();
        let mut config = ImageConfiguration::default();
        arm.set_on(&mut config);
        assert_eq!(Platform::of_config(&config), arm);
        assert_eq!(Platform::of_oci(&arm.to_oci()), arm);
        let args: Vec<String> = arm.build_args("TARGET").iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            args,
            ["TARGETPLATFORM=linux/arm/v7", "TARGETOS=linux", "TARGETARCH=arm", "TARGETVARIANT=v7"]
        );
        let json = serde_json::to_string(&Platform::default().to_oci()).unwrap();
        assert_eq!(json, r#"{"architecture":"amd64","os":"linux"}"#);
    }
}
