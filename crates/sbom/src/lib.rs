//! What an image contains and how it was built, as documents a security
//! review reads: a software bill of materials (SPDX 2.3 JSON or CycloneDX
//! 1.6 JSON) and an in-toto statement with a SLSA v1 provenance predicate.
//!
//! Nothing here scans an image. The packages are what the image's own
//! package databases list ([`contents`]), which our installers wrote, and
//! the facts only the build knows (the SHA-256 of every `.deb` and wheel)
//! come from the build's [`record`]: the lock files it installed from.
//! Licenses are those the packages declare ([`license`]).
//!
//! Every document is a pure function of its inputs and canonical JSON
//! (sorted keys, compact): the same image built twice gives the same
//! bytes. The only time in them is `SOURCE_DATE_EPOCH`.

pub mod contents;
pub mod cyclonedx;
pub mod license;
pub mod provenance;
pub mod record;
pub mod spdx;

use forge_digest::Digest;

pub use contents::{Contents, DebianPackage, PythonPackage};
pub use license::License;
pub use record::{DebianRecord, Download, Record, WheelRecord};

/// The `artifactType` (and layer media type) of an SPDX document.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// The `artifactType` (and layer media type) of a CycloneDX document.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// The `artifactType` (and layer media type) of an in-toto statement.
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The tool that writes the documents, as they name it.
pub const TOOL: &str = "plugin-forge";
/// Its version.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the contents of an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the image could not be read.
    #[error("reading {path} in the image")]
    ImageRead {
        /// The file, absolute in the image.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// dpkg's status database is not one dpkg could read.
    #[error("reading /var/lib/dpkg/status in the image")]
    Status {
        /// The cause.
        #[source]
        source: Box<forge_debian::Error>,
    },
}

/// The SBOM format (`--sbom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// SPDX 2.3 JSON, the default: what Docker's BuildKit attaches and
    /// what most registries and scanners show.
    #[default]
    Spdx,
    /// CycloneDX 1.6 JSON.
    CycloneDx,
}

impl Format {
    /// `spdx`, `cyclonedx`.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "spdx" => Some(Format::Spdx),
            "cyclonedx" => Some(Format::CycloneDx),
            _ => None,
        }
    }

    /// The name `--sbom` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Spdx => "spdx",
            Format::CycloneDx => "cyclonedx",
        }
    }

    /// The media type of its documents.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => SPDX_MEDIA_TYPE,
            Format::CycloneDx => CYCLONEDX_MEDIA_TYPE,
        }
    }

    /// The format of a document of `media_type`.
    pub fn of_media_type(media_type: &str) -> Option<Format> {
        [Format::Spdx, Format::CycloneDx].into_iter().find(|f| f.media_type() == media_type)
    }
}

/// The image an SBOM or provenance is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `REGISTRY/NAME:TAG`.
    pub name: String,
    /// The digest of its manifest.
    pub digest: Digest,
    /// Its platform (`linux/amd64`).
    pub platform: String,
}

/// The plugin an image was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugin {
    /// Its directory, relative to the monorepo root.
    pub path: String,
    /// The image name of `VERSION` without tag.
    pub name: String,
    /// The tag of `VERSION`.
    pub version: String,
    /// The `title` of `plugin_info.json`.
    pub title: String,
    /// The git commit of the checkout, when known.
    pub revision: Option<String>,
    /// The repository URL (without credentials), when known.
    pub source: Option<String>,
}

/// The base image (`FROM`) as it was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The reference as the Dockerfile named it, expanded.
    pub reference: String,
    /// The digest of its manifest.
    pub digest: Digest,
}

/// Everything an SBOM says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    /// The image.
    pub subject: Subject,
    /// The plugin, when the image is a plugin's.
    pub plugin: Option<Plugin>,
    /// The base image, unless `FROM scratch`.
    pub base: Option<Base>,
    /// Its packages.
    pub contents: Contents,
    /// `SOURCE_DATE_EPOCH`: the documents' creation time.
    pub epoch: u64,
}

impl Sbom {
    /// The document in `format`, as canonical JSON.
    pub fn render(&self, format: Format) -> Vec<u8> {
        let value = match format {
            Format::Spdx => spdx::document(self),
            Format::CycloneDx => cyclonedx::document(self),
        };
        canonical(value)
    }
}

/// Compact JSON with sorted keys.
pub(crate) fn canonical(mut value: serde_json::Value) -> Vec<u8> {
    value.sort_all_objects();
    // A Value of strings, numbers, arrays and objects always serializes.
    serde_json::to_vec(&value).unwrap_or_default()
}

/// The package URL of a Debian package.
pub(crate) fn deb_purl(package: &DebianPackage) -> String {
    let mut purl = format!(
        "pkg:deb/debian/{}@{}?arch={}",
        purl_escape(&package.name),
        purl_escape(&package.version),
        purl_escape(&package.architecture)
    );
    if package.source != package.name || package.source_version != package.version {
        purl.push_str(&format!(
            "&upstream={}",
            purl_escape(&format!("{}@{}", package.source, package.source_version))
        ));
    }
    purl
}

/// The package URL of a Python distribution.
pub(crate) fn pypi_purl(package: &PythonPackage) -> String {
    format!(
        "pkg:pypi/{}@{}",
        purl_escape(&record::normalize_name(&package.name)),
        purl_escape(&package.version)
    )
}

/// The package URL of an OCI image (`pkg:oci/NAME@DIGEST?repository_url=...`).
pub(crate) fn oci_purl(reference: &str, digest: &Digest) -> String {
    let untagged = strip_tag(reference);
    let (repository, name) = match untagged.rsplit_once('/') {
        Some((_, name)) => (untagged, name),
        None => (untagged, untagged),
    };
    format!(
        "pkg:oci/{}@{}?repository_url={}",
        purl_escape(name),
        purl_escape(&digest.to_string()),
        purl_escape(repository)
    )
}

/// The reference without its tag (and without a digest).
pub(crate) fn strip_tag(reference: &str) -> &str {
    forge_reference::split_tag(reference.split('@').next().unwrap_or(reference)).0
}

/// A reference's name and tag (empty when it has none).
pub(crate) fn name_and_tag(reference: &str) -> (&str, &str) {
    let (name, tag) = forge_reference::split_tag(reference);
    (name, tag.unwrap_or_default())
}

/// Percent-encoding of a purl component: everything but unreserved
/// characters (`+` included, which purl reserves).
fn purl_escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::license::License;

    /// A small SBOM for the format tests.
    pub(crate) fn sample() -> Sbom {
        let license = |e: &str| Some(License { expression: e.to_owned(), references: Vec::new() });
        Sbom {
            subject: Subject {
                name: "localhost:5000/supervisely/class-catalog:0.4.0".into(),
                digest: Digest::of(b"manifest"),
                platform: "linux/amd64".into(),
            },
            plugin: Some(Plugin {
                path: "plugins/tools/class-catalog".into(),
                name: "supervisely/class-catalog".into(),
                version: "0.4.0".into(),
                title: "Class catalog".into(),
                revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
                source: Some("https://example.com/plugins.git".into()),
            }),
            base: Some(Base {
                reference: "localhost:5000/base-py:0.4.0".into(),
                digest: Digest::of(b"base"),
            }),
            contents: Contents {
                debian: vec![DebianPackage {
                    name: "libstdc++6".into(),
                    version: "12.2.0-14+deb12u1".into(),
                    architecture: "amd64".into(),
                    source: "gcc-12".into(),
                    source_version: "12.2.0-14+deb12u1".into(),
                    record: Some(DebianRecord {
                        name: "libstdc++6".into(),
                        version: "12.2.0-14+deb12u1".into(),
                        architecture: "amd64".into(),
                        download: Download {
                            sha256: "ab".repeat(32),
                            url: Some(
                                "http://deb.debian.org/debian/pool/main/g/gcc-12/libstdc++6.deb".into(),
                            ),
                        },
                    }),
                    license: Some(License {
                        expression: "GPL-3.0-or-later AND LicenseRef-GCC-exception".into(),
                        references: vec![license::LicenseRef {
                            id: "LicenseRef-GCC-exception".into(),
                            name: "GCC exception".into(),
                        }],
                    }),
                }],
                python: vec![PythonPackage {
                    name: "PyYAML".into(),
                    version: "6.0.2".into(),
                    path: "/usr/local/lib/python3.11/dist-packages/PyYAML-6.0.2.dist-info".into(),
                    record: Some(WheelRecord {
                        name: "pyyaml".into(),
                        version: "6.0.2".into(),
                        filename: "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl".into(),
                        download: Download { sha256: "cd".repeat(32), url: None },
                    }),
                    license: license("MIT"),
                }],
            },
            epoch: 1_700_000_000,
        }
    }

    #[test]
    fn purls() {
        let sbom = sample();
        assert_eq!(
            deb_purl(&sbom.contents.debian[0]),
            "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14%2Bdeb12u1?arch=amd64&upstream=gcc-12%4012.2.0-14%2Bdeb12u1"
        );
        assert_eq!(pypi_purl(&sbom.contents.python[0]), "pkg:pypi/pyyaml@6.0.2");
        assert_eq!(strip_tag("localhost:5000/a/b:1.0"), "localhost:5000/a/b");
        assert_eq!(strip_tag("localhost:5000/a/b"), "localhost:5000/a/b");
    }

    #[test]
    fn formats() {
        assert_eq!(Format::parse("spdx"), Some(Format::Spdx));
        assert_eq!(Format::parse("cyclonedx"), Some(Format::CycloneDx));
        assert_eq!(Format::parse("SPDX"), None);
        assert_eq!(Format::of_media_type(CYCLONEDX_MEDIA_TYPE), Some(Format::CycloneDx));
        assert_eq!(Format::default(), Format::Spdx);
    }
}
