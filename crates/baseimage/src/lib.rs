//! A base image from Debian packages, assembled without dpkg, apt or a
//! chroot, the way apko and distroless do it.
//!
//! The data archives of the packages are merged into one tree (in the order
//! given; a later package's file replaces an earlier one's, as unpacking
//! would), with Debian's merged `/usr` applied (`bin/x` lands in `usr/bin/x`
//! and `/bin` is a symlink to `usr/bin`), and completed with what maintainer
//! scripts and debootstrap would have made for a running system: `/etc/passwd`
//! and `/etc/group` with root, `/tmp` and `/var/tmp` with mode 1777,
//! `/root`, `/var/lib/dpkg/status` listing every package as installed so
//! that scanners recognise them, and the CA bundle `update-ca-certificates`
//! would build when `ca-certificates` is installed. The tree becomes a single layer: file
//! contents are spooled to a temporary directory first, because packages
//! must be merged before entries can be written in sorted order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use forge_oci::image::{layer_history, new_config};
use forge_oci::{BlobStore, Entry, Image, LayerBuilder, LayerOptions, RuntimeConfig};

mod debian;

pub use debian::{build_from_lock, BaseBuild};

/// Top-level directories that merged `/usr` moves under `usr/`.
const MERGED: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// The `PATH` of the image.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why the base image could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A package's data archive could not be read.
    #[error("reading the files of {package}")]
    Package {
        /// The package.
        package: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry of a package would land outside the root filesystem.
    #[error("{package} has an entry `{path}` outside the root filesystem")]
    UnsafePath {
        /// The package.
        package: String,
        /// The entry.
        path: String,
    },
    /// The spool directory failed.
    #[error("spooling package files in {}", path.display())]
    Spool {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the image failed.
    #[error(transparent)]
    Oci(#[from] forge_oci::Error),
    /// Reading, fetching or verifying Debian packages failed.
    #[error(transparent)]
    Debian(#[from] forge_debian::Error),
}

/// One package to install.
pub struct Package {
    /// Its name.
    pub name: String,
    /// Its control paragraph as in the `Packages` index or the `.deb`
    /// (without a `Status` field; one is added).
    pub control: String,
    /// Its data archive.
    pub data: tar::Archive<Box<dyn Read + Send>>,
}

impl std::fmt::Debug for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Package").field("name", &self.name).finish_non_exhaustive()
    }
}

/// What the image looks like besides its files.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// Environment, after `PATH`.
    pub env: Vec<(String, String)>,
    /// The default command.
    pub cmd: Option<Vec<String>>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations (for example the package list).
    pub annotations: BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: u64,
}

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File(PathBuf, u64),
    Symlink(String),
    Hardlink(String),
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Installs `packages` into a one-layer image in `store`, spooling file
/// contents under `spool` (a directory that may be removed afterwards).
/// Packages are opened one at a time, as the iterator yields them.
pub fn assemble(
    store: &BlobStore,
    packages: impl IntoIterator<Item = Result<Package, Error>>,
    spec: &ImageSpec,
    spool: &Path,
) -> Result<Image, Error> {
    let spool_err = |source| Error::Spool { path: spool.to_path_buf(), source };
    std::fs::create_dir_all(spool).map_err(spool_err)?;
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    let mut status = Vec::new();
    let mut counter = 0u64;
    for package in packages {
        let mut package = package?;
        let name = package.name.clone();
        let failed = |source| Error::Package { package: name.clone(), source };
        for entry in package.data.entries().map_err(failed)? {
            let mut entry = entry.map_err(failed)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = install_path(&raw) else {
                return Err(Error::UnsafePath { package: name.clone(), path: raw });
            };
            if path.is_empty() {
                continue;
            }
            let header = entry.header();
            let mode = header.mode().map_err(failed)? & 0o7777;
            let (uid, gid) = (header.uid().map_err(failed)?, header.gid().map_err(failed)?);
            let link = || -> io::Result<String> {
                Ok(entry.link_name()?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default())
            };
            let kind = match header.entry_type() {
                tar::EntryType::Directory => {
                    // Directories are shared between packages: the first keeps its metadata.
                    tree.entry(path).or_insert(Node { kind: Kind::Dir, mode, uid, gid });
                    continue;
                }
                tar::EntryType::Symlink => Kind::Symlink(link().map_err(failed)?),
                tar::EntryType::Link => {
                    let target = link().map_err(failed)?;
                    match install_path(&target) {
                        Some(t) if !t.is_empty() => Kind::Hardlink(t),
                        _ => return Err(Error::UnsafePath { package: name.clone(), path: target }),
                    }
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    counter += 1;
                    let spooled = spool.join(counter.to_string());
                    let mut out = File::create(&spooled).map_err(spool_err)?;
                    let size = io::copy(&mut entry, &mut out).map_err(failed)?;
                    Kind::File(spooled, size)
                }
                // Device nodes and FIFOs: the runtime provides /dev.
                _ => continue,
            };
            tree.insert(path, Node { kind, mode, uid, gid });
        }
        status.push(status_paragraph(&package.control));
    }

    // What debootstrap and maintainer scripts would have made.
    let (bundle, certs) = (ca_bundle(&tree)?, certificates(&tree));
    let merged: Vec<&str> =
        MERGED.into_iter().filter(|d| tree.keys().any(|p| p.starts_with(&format!("usr/{d}/")))).collect();
    for dir in merged {
        tree.insert(
            dir.to_string(),
            Node { kind: Kind::Symlink(format!("usr/{dir}")), mode: 0o777, uid: 0, gid: 0 },
        );
    }
    let mut generated = |path: &str, content: String, mode: u32| -> Result<(), Error> {
        counter += 1;
        let spooled = spool.join(counter.to_string());
        std::fs::write(&spooled, &content).map_err(spool_err)?;
        tree.insert(
            path.to_string(),
            Node { kind: Kind::File(spooled, content.len() as u64), mode, uid: 0, gid: 0 },
        );
        Ok(())
    };
    generated(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n".into(),
        0o644,
    )?;
    generated("etc/group", "root:x:0:\nnogroup:x:65534:\n".into(), 0o644)?;
    status.sort();
    generated("var/lib/dpkg/status", status.join("\n"), 0o644)?;
    if let Some(bundle) = bundle {
        generated("etc/ssl/certs/ca-certificates.crt", bundle, 0o644)?;
    }
    for path in certs {
        let name = path.rsplit('/').next().unwrap_or(&path).trim_end_matches(".crt").to_string();
        tree.insert(
            format!("etc/ssl/certs/{name}.pem"),
            Node { kind: Kind::Symlink(format!("/{path}")), mode: 0o777, uid: 0, gid: 0 },
        );
    }
    for (dir, mode) in [("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700)] {
        tree.insert(dir.to_string(), Node { kind: Kind::Dir, mode, uid: 0, gid: 0 });
    }
    add_parents(&mut tree);

    let mut builder = LayerBuilder::new(store, LayerOptions { mtime: spec.epoch })?;
    for (path, node) in &tree {
        let entry = match &node.kind {
            Kind::Dir => Entry::dir(path.clone(), node.mode),
            Kind::File(source, size) => Entry::file(path.clone(), node.mode, *size, source.clone()),
            Kind::Symlink(target) => Entry::symlink(path.clone(), target.clone()),
            Kind::Hardlink(target) => Entry::hardlink(path.clone(), node.mode, target.clone()),
        };
        builder.append(entry.owned_by(node.uid, node.gid))?;
    }
    let layer = builder.finish()?;
    let mut runtime = RuntimeConfig {
        env: vec![format!("PATH={PATH}")],
        cmd: spec.cmd.clone(),
        ..RuntimeConfig::default()
    };
    for (k, v) in &spec.env {
        runtime.set_env(k, v);
    }
    runtime.labels = spec.labels.clone();
    let history = vec![layer_history(spec.epoch, &format!("debian packages: {}", status.len()))];
    let config = new_config(spec.epoch, &runtime, std::slice::from_ref(&layer.diff_id), history)?;
    Ok(forge_oci::write_image(store, &config, &[layer.descriptor()], &spec.annotations)?)
}

/// The certificates `ca-certificates` ships, in path order.
fn certificates(tree: &BTreeMap<String, Node>) -> Vec<String> {
    tree.iter()
        .filter(|(path, node)| {
            path.starts_with("usr/share/ca-certificates/")
                && path.ends_with(".crt")
                && matches!(node.kind, Kind::File(..))
        })
        .map(|(path, _)| path.clone())
        .collect()
}

/// What `update-ca-certificates` (the trigger of `ca-certificates`) makes
/// of the shipped certificates, all enabled as its postinst enables them:
/// one PEM bundle, each certificate ending in a newline. `None` without
/// certificates.
fn ca_bundle(tree: &BTreeMap<String, Node>) -> Result<Option<String>, Error> {
    let mut bundle = String::new();
    for path in certificates(tree) {
        let Some(Node { kind: Kind::File(spooled, _), .. }) = tree.get(&path) else { continue };
        let pem = std::fs::read_to_string(spooled)
            .map_err(|source| Error::Spool { path: spooled.clone(), source })?;
        bundle.push_str(&pem);
        if !pem.ends_with('\n') {
            bundle.push('\n');
        }
    }
    Ok((!bundle.is_empty()).then_some(bundle))
}

/// Where a data archive entry goes: `./bin/sh` → `usr/bin/sh`; `None` when
/// it would leave the root.
fn install_path(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    if parts.first().is_some_and(|first| MERGED.contains(first)) {
        parts.insert(0, "usr");
    }
    Some(parts.join("/"))
}

/// A control paragraph as `/var/lib/dpkg/status` holds it: `Status` after
/// `Package`, index-only fields dropped, ending in a newline.
fn status_paragraph(control: &str) -> String {
    const INDEX_ONLY: [&str; 7] = ["Filename", "Size", "MD5sum", "SHA256", "Description-md5", "Tag", "SHA1"];
    let mut out = String::new();
    let mut skipping = false;
    for line in control.trim_end().lines() {
        if line.starts_with([' ', '\t']) {
            if !skipping {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let field = line.split(':').next().unwrap_or("");
        skipping =
            INDEX_ONLY.iter().any(|f| f.eq_ignore_ascii_case(field)) || field.eq_ignore_ascii_case("Status");
        if skipping {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if field.eq_ignore_ascii_case("Package") {
            out.push_str("Status: install ok installed\n");
        }
    }
    out
}

fn add_parents(tree: &mut BTreeMap<String, Node>) {
    let mut missing = Vec::new();
    for path in tree.keys() {
        let mut rest = path.as_str();
        while let Some((parent, _)) = rest.rsplit_once('/') {
            if !tree.contains_key(parent) {
                missing.push(parent.to_string());
            }
            rest = parent;
        }
    }
    for dir in missing {
        tree.entry(dir).or_insert(Node { kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_and_safety() {
        assert_eq!(install_path("./bin/sh").as_deref(), Some("usr/bin/sh"));
        assert_eq!(install_path("./lib64/ld.so").as_deref(), Some("usr/lib64/ld.so"));
        assert_eq!(install_path("./usr/bin/python3").as_deref(), Some("usr/bin/python3"));
        assert_eq!(install_path("./binaries/x").as_deref(), Some("binaries/x"));
        assert_eq!(install_path("./").as_deref(), Some(""));
        assert_eq!(install_path("./../etc/passwd"), None);
    }

    #[test]
    fn status_paragraphs() {
        let control = "Package: dash\nVersion: 0.5.12-2\nFilename: pool/main/d/dash/dash_0.5.12-2_amd64.deb\nSize: 1\nDescription: POSIX shell\n long text\nSHA256: ab\n";
        assert_eq!(
            status_paragraph(control),
            "Package: dash\nStatus: install ok installed\nVersion: 0.5.12-2\nDescription: POSIX shell\n long text\n"
        );
    }
}
