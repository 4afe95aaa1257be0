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
//!
//! [`scan`] reads the packages without the record ([`Scan::join`] adds
//! it), and notes every file it read, as the image has it (the path it
//! resolves to, and its node: the layer and size of its content). The
//! images of a monorepo share their base, and their own layers only add
//! new top-level directories (`/workdir`): [`Scan::over`] reuses the scan
//! of the base for such an image, after checking that every file read
//! resolves to the same node of the same layer, and walks only the new
//! directories for `.dist-info`.

use std::collections::BTreeSet;

use forge_debian::deb822;
use forge_oci::files::{self, ImageFiles};
use forge_oci::{FileSource, Node, NodeKind};

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
    Ok(scan(files)?.join(record))
}

/// The packages of an image without the build's record, and the files
/// they were read from; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Scan {
    /// The packages, sorted as [`Contents`], no record joined.
    contents: Contents,
    /// The `.dist-info` directories found.
    dist_info: BTreeSet<String>,
    /// Every file read (dpkg's status, each `copyright`, each `METADATA`)
    /// and what it resolved to in the image; `None`: when one was not a
    /// regular file of a layer, whose node would not name its content.
    read: Option<Vec<Read>>,
}

/// A path read, and what it resolved to in the image (its path and node).
type Read = (String, Option<(String, Node)>);

/// Reads the packages of the image `files`, without a record.
pub fn scan(files: &dyn ImageFiles) -> Result<Scan, Error> {
    let mut reads = Reads::default();
    let debian = debian(files, &mut reads)?;
    let dist_info = dist_info_dirs(files, vec![String::new()]);
    let python = python(files, &dist_info, &mut reads)?;
    Ok(Scan::sorted(Contents { debian, python }, dist_info, reads))
}

impl Scan {
    fn sorted(mut contents: Contents, dist_info: BTreeSet<String>, reads: Reads) -> Scan {
        contents.debian.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
        contents
            .python
            .sort_by(|a, b| (normalize_name(&a.name), &a.path).cmp(&(normalize_name(&b.name), &b.path)));
        Scan { contents, dist_info, read: reads.comparable.then_some(reads.files) }
    }

    /// The contents, with what `record` says of each package.
    pub fn join(&self, record: &Record) -> Contents {
        let mut contents = self.contents.clone();
        for package in &mut contents.debian {
            package.record = record.deb(&package.name, &package.version, &package.architecture).cloned();
        }
        for package in &mut contents.python {
            package.record = record.wheel(&package.name, &package.version).cloned();
        }
        contents
    }

    /// The scan of `files`, an image that is the one this scan was made of
    /// with only the top-level directories `added` put in (each one it had
    /// nowhere, or empty): this scan's packages, when every file it read
    /// is the same in `files`, and the `.dist-info` directories of `added`.
    /// `None` when a file read is not the same (a symlink of the base
    /// pointed into `added`, say): [`scan`] `files` instead.
    pub fn over(&self, files: &dyn ImageFiles, added: &[String]) -> Result<Option<Scan>, Error> {
        let Some(read) = &self.read else { return Ok(None) };
        if read.iter().any(|(path, seen)| identity(files, path).as_ref() != seen.as_ref()) {
            return Ok(None);
        }
        let start = added
            .iter()
            .filter(|name| !SKIPPED.contains(&name.as_str()) && !name.contains('/'))
            .filter(|name| matches!(files.node(name).map(|n| n.kind), Some(NodeKind::Dir)))
            .cloned()
            .collect();
        let new = dist_info_dirs(files, start);
        let mut reads = Reads { files: read.clone(), comparable: true };
        let mut contents = self.contents.clone();
        contents.python.extend(python(files, &new, &mut reads)?);
        let mut dist_info = self.dist_info.clone();
        dist_info.extend(new);
        Ok(Some(Scan::sorted(contents, dist_info, reads)))
    }
}

/// The files a scan read, as [`Scan::read`] keeps them.
#[derive(Debug)]
struct Reads {
    files: Vec<Read>,
    comparable: bool,
}

impl Default for Reads {
    fn default() -> Reads {
        Reads { files: Vec::new(), comparable: true }
    }
}

/// What `path` is in the image: the path it resolves to and its node.
fn identity(files: &dyn ImageFiles, path: &str) -> Option<(String, Node)> {
    let real = files::resolve(files, path)?;
    let node = files.node(&real)?;
    Some((real, node))
}

fn read_text(
    files: &dyn ImageFiles,
    path: &str,
    limit: u64,
    reads: &mut Reads,
) -> Result<Option<String>, Error> {
    let seen = identity(files, path);
    // Only a regular file of a layer is named by its node (layer, size).
    reads.comparable &= seen.as_ref().is_none_or(|(_, node)| {
        matches!(&node.kind, NodeKind::File { source: FileSource::Layer { .. }, .. })
    });
    reads.files.push((path.to_owned(), seen));
    match files::read(files, path, limit) {
        Ok(Some(bytes)) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Ok(None) => Ok(None),
        Err(source) => Err(Error::ImageRead { path: format!("/{path}"), source }),
    }
}

/// Installed entries of dpkg's status (installed as dpkg means it).
fn debian(files: &dyn ImageFiles, reads: &mut Reads) -> Result<Vec<DebianPackage>, Error> {
    let Some(text) = read_text(files, "var/lib/dpkg/status", STATUS_LIMIT, reads)? else {
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
        let license =
            read_text(files, &copyright, TEXT_LIMIT, reads)?.and_then(|t| license::from_copyright(&t));
        packages.push(DebianPackage {
            record: None,
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

/// Every `NAME.dist-info` directory in a directory named `site-packages`
/// or `dist-packages` (by the end of its path) at or below the directories
/// `start` (`""`: the whole image, less `/proc`, `/sys` and `/dev`).
fn dist_info_dirs(files: &dyn ImageFiles, start: Vec<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = start;
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
    found
}

/// The distributions of the `.dist-info` directories `found` that have a
/// `METADATA` naming them.
fn python(
    files: &dyn ImageFiles,
    found: &BTreeSet<String>,
    reads: &mut Reads,
) -> Result<Vec<PythonPackage>, Error> {
    let metadata: Vec<String> =
        found.iter().filter_map(|dir| files::resolve(files, &format!("{dir}/METADATA"))).collect();
    files.prefetch(&metadata).map_err(|source| Error::ImageRead { path: "/".into(), source })?;
    let mut packages = Vec::new();
    for dir in found {
        let Some(metadata) = read_text(files, &format!("{dir}/METADATA"), TEXT_LIMIT, reads)? else {
            continue;
        };
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
            record: None,
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
    use forge_oci::Tree;

    /// A tree whose files say they are of a layer (named by their
    /// content's digest), as those of an image in a store do.
    struct AsLayers(Tree);

    impl ImageFiles for AsLayers {
        fn node(&self, path: &str) -> Option<Node> {
            let mut node = self.0.node(path)?;
            if let NodeKind::File { size, source: FileSource::Bytes(bytes) } = &node.kind {
                let layer = forge_digest::Digest::of(bytes);
                node.kind = NodeKind::File { size: *size, source: FileSource::Layer { layer } };
            }
            Some(node)
        }

        fn list(&self, dir: &str) -> Vec<String> {
            self.0.list(dir)
        }

        fn open(&self, path: &str) -> std::io::Result<Option<Box<dyn std::io::Read + '_>>> {
            self.0.open(path)
        }
    }

    /// An image with only dpkg's status, holding `status`.
    fn with_status(status: &str) -> Tree {
        let mut image = Tree::new();
        image.insert("var/lib/dpkg/status", Node::bytes(0o644, status));
        image
    }

    fn base_image() -> Tree {
        let mut image = with_status(
            "Package: jq\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.6-2.1\n\n\
             Package: libjq1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.6-2.1+b1\n",
        );
        image.insert(
            "usr/share/doc/jq/copyright",
            Node::bytes(0o644, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: Expat\n"),
        );
        // A dangling link into where a plugin puts its files.
        image.insert("usr/share/doc/libjq1", Node::symlink("/workdir/doc"));
        image.insert(
            "usr/lib/python3/dist-packages/PyYAML-6.0.2.dist-info/METADATA",
            Node::bytes(0o644, "Name: PyYAML\nVersion: 6.0.2\nLicense: MIT\n"),
        );
        image.insert("workdir", Node::dir(0o755));
        image
    }

    /// A record of the `.deb` of jq 1.6-2.1 and of the wheel `filename`.
    fn record_with(wheel: &str, version: &str, filename: &str) -> Record {
        Record {
            debian: vec![DebianRecord {
                name: "jq".into(),
                version: "1.6-2.1".into(),
                architecture: "amd64".into(),
                download: Download { sha256: "ab".repeat(32), url: None },
            }],
            python: vec![WheelRecord {
                name: wheel.into(),
                version: version.into(),
                filename: filename.into(),
                download: Download { sha256: "cd".repeat(32), url: None },
            }],
        }
    }

    fn record() -> Record {
        record_with("zeta", "1", "zeta-1-py3-none-any.whl")
    }

    #[test]
    fn a_base_scan_is_reused_for_new_directories_over_it() {
        let base = scan(&AsLayers(base_image())).unwrap();
        let mut image = base_image();
        image.insert("workdir/src/main.py", Node::bytes(0o644, "print()"));
        image.insert(
            "workdir/venv/site-packages/zeta-1.dist-info/METADATA",
            Node::bytes(0o644, "Name: zeta\nVersion: 1\n"),
        );
        image.insert(
            "opt/site-packages/alpha-2.dist-info/METADATA",
            Node::bytes(0o644, "Name: alpha\nVersion: 2\n"),
        );
        let image = AsLayers(image);
        let over = base.over(&image, &["workdir".into(), "opt".into()]).unwrap().expect("reused");
        let whole = read(&image, &record()).unwrap();
        assert_eq!(over.join(&record()), whole);
        let names: Vec<&str> = whole.python.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["alpha", "PyYAML", "zeta"]);
        assert!(whole.python[2].record.is_some() && whole.debian[0].record.is_some());
        // What is over the reused scan can be reused again.
        let mut more = image.0.clone();
        more.insert(
            "srv/site-packages/beta-3.dist-info/METADATA",
            Node::bytes(0o644, "Name: beta\nVersion: 3\n"),
        );
        let more = AsLayers(more);
        let again = over.over(&more, &["srv".into()]).unwrap().expect("reused");
        assert_eq!(again.join(&record()), read(&more, &record()).unwrap());
    }

    #[test]
    fn a_base_scan_is_not_reused_when_a_file_it_read_changed() {
        let base = scan(&AsLayers(base_image())).unwrap();
        // The base's dangling link now leads to a copyright.
        let mut image = base_image();
        image.insert(
            "workdir/doc/copyright",
            Node::bytes(0o644, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: MIT\n"),
        );
        let image = AsLayers(image);
        assert!(base.over(&image, &["workdir".into()]).unwrap().is_none());
        let whole = read(&image, &Record::default()).unwrap();
        assert_eq!(whole.debian[1].license.as_ref().unwrap().expression, "MIT");
        // Files that are not a layer's do not say what they hold.
        assert!(scan(&base_image()).unwrap().over(&base_image(), &[]).unwrap().is_none());
    }

    #[test]
    fn packages_come_from_the_image_and_facts_from_the_record() {
        let mut image = with_status(
            "Package: jq\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.6-2.1\n\n\
             Package: libjq1\nStatus: install ok installed\nArchitecture: amd64\nSource: jq (1.6-2)\nVersion: 1.6-2.1+b1\n\n\
             Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n",
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
        let record = record_with("pyyaml", "6.0.2", "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl");
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
