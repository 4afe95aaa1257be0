//! The build's record of what its installers put into an image: every
//! Debian package with the SHA-256 of its `.deb`, every wheel with its
//! SHA-256, as the lock files pinned them (a base image's `NAME.lock`, a
//! plugin's `Dockerfile.lock` entries of its installing `RUN`s). The
//! record is what only the build knows; which packages the finished image
//! holds is read from the image itself ([`crate::contents`]), so that a
//! package a later step removed or replaced is told right.

use forge_debian::lock::LockedPackage;

/// What installers put into an image, in the order they did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Debian packages, as locked.
    pub debian: Vec<DebianRecord>,
    /// Python wheels, as locked.
    pub python: Vec<WheelRecord>,
}

/// One `.deb` an installer unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianRecord {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// The `.deb` (its URL: mirror and pool path).
    pub download: Download,
}

/// One wheel an installer installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelRecord {
    /// The distribution's name, normalised (PEP 503: lowercase, runs of
    /// `-_.` as `-`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// The wheel's file name.
    pub filename: String,
    /// The wheel.
    pub download: Download,
}

/// The file an installer downloaded, as its lock pinned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// Where it was downloaded from, when known.
    pub url: Option<String>,
}

impl DebianRecord {
    /// The record of a locked package, `mirror` being the lock's archive
    /// (the package's own `mirror` wins).
    pub fn of_locked(package: &LockedPackage, mirror: &str) -> DebianRecord {
        let mirror = package.mirror.as_deref().unwrap_or(mirror).trim_end_matches('/');
        DebianRecord {
            name: package.name.clone(),
            version: package.version.clone(),
            architecture: package.architecture.clone(),
            download: Download {
                sha256: package.sha256.clone(),
                url: Some(format!("{mirror}/{}", package.filename)),
            },
        }
    }
}

impl Record {
    /// Appends what a later step installed.
    pub fn extend(&mut self, other: Record) {
        self.debian.extend(other.debian);
        self.python.extend(other.python);
    }

    /// The last record of a `.deb` of this name, version and architecture.
    pub fn deb(&self, name: &str, version: &str, architecture: &str) -> Option<&DebianRecord> {
        self.debian
            .iter()
            .rev()
            .find(|d| d.name == name && d.version == version && d.architecture == architecture)
    }

    /// The last record of a wheel of this distribution (any spelling) and
    /// version.
    pub fn wheel(&self, name: &str, version: &str) -> Option<&WheelRecord> {
        let name = normalize_name(name);
        self.python.iter().rev().find(|w| normalize_name(&w.name) == name && w.version == version)
    }
}

/// PEP 503's normalised distribution name.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_as_pep_503() {
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
        assert_eq!(normalize_name("python_slugify"), "python-slugify");
        assert_eq!(normalize_name("Text..Unidecode"), "text-unidecode");
    }
}
