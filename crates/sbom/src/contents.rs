//! What a finished image holds, read from its own package databases
//! through [`ImageFiles`] (never by unpacking it): the installed entries
//! of dpkg's `/var/lib/dpkg/status` and the `.dist-info` directories of
//! its `site-packages`/`dist-packages` directories, each joined with the
//! build's [`Record`] for what only the build knows (the SHA-256 of the
//! `.deb` or wheel, where it came from) and with the license the package
//! declares (its DEP-5 `copyright` file, its `METADATA`).
//!
//! A package the record lacks (one of a base image we pulled rather than
//! built) is still listed, exactly as dpkg or the `.dist-info` records it,
//! without a digest.

use std::collections::BTreeSet;

use forge_debian::deb822;
use forge_oci::files::{self, ImageFiles};
use forge_oci::NodeKind;

use crate::license::{self, License};
use crate::record::{normalize_name, DebianRecord, Record, WheelRecord};
use crate::Error;

/// The largest dpkg status database read.
const STATUS_LIMIT: u64 = 64 << 20;
/// The largest `copyright` or `METADATA` file read.
const TEXT_LIMIT: u64 = 4 << 20;
/// Directories never walked for `.dist-info`.
const SKIPPED: [&str; 3] = ["proc", "sys", "dev"];

/// The packages of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Installed Debian packages, sorted by name and architecture.
    pub debian: Vec<DebianPackage>,
    /// Installed Python distributions, sorted by normalised name and path.
    pub python: Vec<PythonPackage>,
}

/// One installed Debian package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianPackage {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// The source package (`Source`, else the package itself).
    pub source: String,
    /// The source version (`Source: NAME (VERSION)`, else the version).
    pub source_version: String,
    /// What the build recorded of its `.deb`.
    pub record: Option<DebianRecord>,
    /// What its `copyright` file declares, when machine-readable.
    pub license: Option<License>,
}

/// One installed Python distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonPackage {
    /// `Name` as its `METADATA` spells it.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// Its `.dist-info` directory in the image, absolute.
    pub path: String,
    /// What the build recorded of its wheel.
    pub record: Option<WheelRecord>,
    /// What its `METADATA` declares.
    pub license: Option<License>,
}

/// Reads the packages of the image `files`, joined with `record`.
pub fn read(files: &dyn ImageFiles, record: &Record) -> Result<Contents, Error> {
    let mut contents = Contents { debian: debian(files, record)?, python: python(files, record)? };
    contents.debian.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    contents
        .python
        .sort_by(|a, b| (normalize_name(&a.name), &a.path).cmp(&(normalize_name(&b.name), &b.path)));
    Ok(contents)
}

fn read_text(files: &dyn ImageFiles, path: &str, limit: u64) -> Result<Option<String>, Error> {
    match files::read(files, path, limit) {
        Ok(Some(bytes)) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Ok(None) => Ok(None),
        Err(source) => Err(Error::ImageRead { path: format!("/{path}"), source }),
    }
}

/// Installed entries of dpkg's status (installed as dpkg means it).
fn debian(files: &dyn ImageFiles, record: &Record) -> Result<Vec<DebianPackage>, Error> {
    let Some(text) = read_text(files, "var/lib/dpkg/status", STATUS_LIMIT)? else {
        return Ok(Vec::new());
    };
    let db = forge_debian::status::StatusDb::parse(&text, "/var/lib/dpkg/status")
        .map_err(|source| Error::Status { source: Box::new(source) })?;
    // Every package's `copyright` in one pass of each layer holding them.
    let copyrights: Vec<String> = db
        .entries()
        .iter()
        .filter_map(|e| e.installed.as_ref())
        .filter_map(|i| files::resolve(files, &format!("usr/share/doc/{}/copyright", i.name)))
        .collect();
    files
        .prefetch(&copyrights)
        .map_err(|source| Error::ImageRead { path: "/usr/share/doc".into(), source })?;
    let mut packages = Vec::new();
    for entry in db.entries() {
        let Some(installed) = &entry.installed else { continue };
        let version = installed.version.to_string();
        let paragraph = deb822::parse(&entry.raw, "/var/lib/dpkg/status")
            .ok()
            .and_then(|p| p.into_iter().next().map(|p| p.get("Source").map(str::to_owned)))
            .flatten();
        let (source, source_version) = match paragraph {
            Some(source) => match source.split_once(' ') {
                Some((name, v)) => (name.to_owned(), v.trim().trim_matches(['(', ')']).to_owned()),
                None => (source, version.clone()),
            },
            None => (installed.name.clone(), version.clone()),
        };
        let copyright = format!("usr/share/doc/{}/copyright", installed.name);
        let license = read_text(files, &copyright, TEXT_LIMIT)?.and_then(|t| license::from_copyright(&t));
        packages.push(DebianPackage {
            record: record.deb(&installed.name, &version, &installed.architecture).cloned(),
            name: installed.name.clone(),
            version,
            architecture: installed.architecture.clone(),
            source,
            source_version,
            license,
        });
    }
    Ok(packages)
}

/// Every `NAME.dist-info` directory with a `METADATA` in a directory
/// named `site-packages` or `dist-packages`, anywhere in the image.
fn python(files: &dyn ImageFiles, record: &Record) -> Result<Vec<PythonPackage>, Error> {
    let mut found = BTreeSet::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        let is_site = dir.ends_with("site-packages") || dir.ends_with("dist-packages");
        for name in files.list(&dir) {
            let path = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
            if dir.is_empty() && SKIPPED.contains(&name.as_str()) {
                continue;
            }
            // Symlinked directories are not followed: what they point at is walked where it is.
            if !matches!(files.node(&path).map(|n| n.kind), Some(NodeKind::Dir)) {
                continue;
            }
            if is_site && name.ends_with(".dist-info") {
                found.insert(path);
            } else {
                pending.push(path);
            }
        }
    }
    let metadata: Vec<String> =
        found.iter().filter_map(|dir| files::resolve(files, &format!("{dir}/METADATA"))).collect();
    files.prefetch(&metadata).map_err(|source| Error::ImageRead { path: "/".into(), source })?;
    let mut packages = Vec::new();
    for dir in found {
        let Some(metadata) = read_text(files, &format!("{dir}/METADATA"), TEXT_LIMIT)? else { continue };
        let header = |field: &str| {
            metadata
                .split("\n\n")
                .next()
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(field)))
                .map(|(_, v)| v.trim().to_owned())
        };
        let (Some(name), Some(version)) = (header("Name"), header("Version")) else { continue };
        packages.push(PythonPackage {
            record: record.wheel(&name, &version).cloned(),
            license: license::from_metadata(&metadata),
            path: format!("/{dir}"),
            name,
            version,
        });
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Download;
    use forge_oci::{Node, Tree};

    #[test]
    fn packages_come_from_the_image_and_facts_from_the_record() {
        let mut image = Tree::new();
        image.insert(
            "var/lib/dpkg/status",
            Node::bytes(
                0o644,
                "Package: jq\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.6-2.1\n\n\
                 Package: libjq1\nStatus: install ok installed\nArchitecture: amd64\nSource: jq (1.6-2)\nVersion: 1.6-2.1+b1\n\n\
                 Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n",
            ),
        );
        image.insert(
            "usr/share/doc/jq/copyright",
            Node::bytes(
                0o644,
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: Expat\n",
            ),
        );
        let dist = "usr/local/lib/python3.11/dist-packages";
        image.insert(
            format!("{dist}/PyYAML-6.0.2.dist-info/METADATA"),
            Node::bytes(0o644, "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.2\nLicense: MIT\n\nbody"),
        );
        image.insert(format!("{dist}/yaml/__init__.py"), Node::bytes(0o644, ""));
        image.insert("opt/x.dist-info/METADATA", Node::bytes(0o644, "Name: not-in-site\nVersion: 1\n"));
        let record = Record {
            debian: vec![DebianRecord {
                name: "jq".into(),
                version: "1.6-2.1".into(),
                architecture: "amd64".into(),
                download: Download { sha256: "ab".repeat(32), url: None },
            }],
            python: vec![WheelRecord {
                name: "pyyaml".into(),
                version: "6.0.2".into(),
                filename: "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl".into(),
                download: Download { sha256: "cd".repeat(32), url: None },
            }],
        };
        let contents = read(&image, &record).unwrap();
        let debs: Vec<String> = contents
            .debian
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} {}/{} {} {}",
                    d.name,
                    d.version,
                    d.architecture,
                    d.source,
                    d.source_version,
                    d.record.is_some(),
                    d.license.as_ref().map_or("-", |l| l.expression.as_str())
                )
            })
            .collect();
        assert_eq!(
            debs,
            ["jq 1.6-2.1 amd64 jq/1.6-2.1 true MIT", "libjq1 1.6-2.1+b1 amd64 jq/1.6-2 false -"]
        );
        assert_eq!(contents.python.len(), 1);
        let yaml = &contents.python[0];
        assert_eq!((yaml.name.as_str(), yaml.version.as_str()), ("PyYAML", "6.0.2"));
        assert_eq!(yaml.path, format!("/{dist}/PyYAML-6.0.2.dist-info"));
        assert_eq!(yaml.record.as_ref().unwrap().download.sha256, "cd".repeat(32));
        assert_eq!(yaml.license.as_ref().unwrap().expression, "MIT");
    }
}
