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
//!
//! The same unpacking serves `apt-get install` into an existing image
//! ([`install`]): detection of the image's release, resolution against
//! its archive, and one layer's tree.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use forge_oci::image::write_single_layer_image;
use forge_oci::{
    read_tar, BlobStore, Compression, FileSource, Image, LayerOptions, Node, NodeKind, RuntimeConfig, Spool,
    TarError, Tree,
};

mod debian;
pub mod install;

pub use debian::{build_from_lock, BaseBuild};

/// Top-level directories that merged `/usr` moves under `usr/`.
const MERGED: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

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
    /// A lock's dpkg architecture has no OCI platform we know.
    #[error("the dpkg architecture `{architecture}` has no OCI platform plugin-forge knows (amd64, arm64, armhf, armel, i386, ppc64el, s390x, riscv64, mips64el, loong64)")]
    Architecture {
        /// The architecture.
        architecture: String,
    },
    /// Writing the image failed.
    #[error(transparent)]
    Oci(#[from] forge_oci::Error),
    /// Reading, fetching or verifying Debian packages failed.
    #[error(transparent)]
    Debian(#[from] forge_debian::Error),
    /// A file of the image could not be read.
    #[error("reading {path} in the image")]
    ImageRead {
        /// The file, absolute in the image.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `apt-get install` on an image that is not Debian or a derivative.
    #[error(
        "the image is not Debian-based ({found}): apt-get install needs the /etc/os-release of Debian \
         or a derivative and dpkg's /var/lib/dpkg/status"
    )]
    NotDebian {
        /// What the image has instead.
        found: String,
    },
    /// A Debian image whose release cannot be told.
    #[error(
        "cannot tell the Debian release of the image ({found}): /etc/os-release has no VERSION_CODENAME \
         and /etc/debian_version names no known release"
    )]
    UnknownRelease {
        /// What the image has.
        found: String,
    },
    /// An image architecture Debian does not build.
    #[error("the image's architecture {architecture} is not one Debian builds")]
    UnsupportedArchitecture {
        /// The OCI architecture.
        architecture: String,
    },
    /// The image config and the image's dpkg disagree about the architecture.
    #[error("the image config says {oci} (dpkg {expected}), but its dpkg database is for {dpkg}")]
    ArchitectureMismatch {
        /// The config's architecture.
        oci: String,
        /// The dpkg architecture that means.
        expected: String,
        /// dpkg's native architecture in the image.
        dpkg: String,
    },
    /// A derivative without apt sources: its archive is unknown.
    #[error(
        "the image ({distribution} {codename}) configures no apt sources, and only Debian's archive is \
         known: give a mirror"
    )]
    NoSources {
        /// `ID` of os-release.
        distribution: String,
        /// The release.
        codename: String,
    },
    /// An apt source entry that cannot be used.
    #[error("apt source {origin}: {message}")]
    Sources {
        /// Where it is (`/etc/apt/sources.list:3`).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A package request apt would take that we do not.
    #[error("apt-get install {package}: {message}")]
    BadRequest {
        /// The package as written.
        package: String,
        /// Why.
        message: String,
    },
    /// A suite the archive does not serve (an end-of-life release).
    #[error("the archive does not serve {suite} ({url} answers 404; the source is {origin}): {help}")]
    SuiteNotServed {
        /// The InRelease URL.
        url: String,
        /// The suite.
        suite: String,
        /// Where the source is configured.
        origin: String,
        /// What to do.
        help: String,
    },
    /// A suite without the image's architecture.
    #[error("{url} lists no packages for {architecture}")]
    NoArchitecture {
        /// The InRelease URL.
        url: String,
        /// dpkg's architecture.
        architecture: String,
    },
    /// An apt lock made for another release or architecture than the image's.
    #[error("the apt lock is for {lock}, but the image is {image}: re-resolve it (--update-locks)")]
    LockMismatch {
        /// The lock's release and architecture.
        lock: String,
        /// The image's.
        image: String,
    },
    /// A locked package that the archive no longer has.
    #[error(
        "{package} is no longer in the archive ({url} answers 404): Debian removes superseded versions; \
         re-resolve the lock (--update-locks)"
    )]
    Gone {
        /// `name version`.
        package: String,
        /// Where it was.
        url: String,
    },
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
    /// The platform the packages are for (the config's OS and architecture).
    pub platform: forge_oci::Platform,
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
    let mut spool = Spool::new(spool).map_err(|source| Error::Spool { path: spool.to_path_buf(), source })?;
    let mut tree = Tree::new();
    let mut status = Vec::new();
    for package in packages {
        let package = package?;
        unpack_package(&mut tree, &mut spool, package.data, &package.name, true)?;
        status.push(status_paragraph(&package.control));
    }
    status.sort();
    complete_system(&mut tree, &status)?;
    let layer = tree.write_layer(store, LayerOptions { mtime: spec.epoch }, Compression::default())?;
    let mut runtime = RuntimeConfig { cmd: spec.cmd.clone(), ..RuntimeConfig::with_default_path() };
    for (k, v) in &spec.env {
        runtime.set_env(k, v);
    }
    runtime.labels = spec.labels.clone();
    let created_by = format!("debian packages: {}", status.len());
    Ok(write_single_layer_image(
        store,
        &layer,
        &runtime,
        spec.epoch,
        &created_by,
        &spec.annotations,
        &spec.platform,
    )?)
}

/// Merges one package's data archive into `tree`, as unpacking it would:
/// its files replace earlier ones, shared directories keep the first
/// package's metadata, merged `/usr` applies when `merged`. Returns the
/// archive's paths in its order, as dpkg lists them in `PACKAGE.list`
/// (`/.`, `/usr`, `/usr/bin/jq`: not merged, without trailing `/`).
fn unpack_package(
    tree: &mut Tree,
    spool: &mut Spool,
    data: tar::Archive<Box<dyn Read + Send>>,
    name: &str,
    merged: bool,
) -> Result<Vec<String>, Error> {
    let unsafe_path = |path: String| Error::UnsafePath { package: name.to_owned(), path };
    let mut listed = Vec::new();
    let read = read_tar(data.into_inner(), spool, |raw, mut node| {
        let Some(path) = install_path(&raw, merged) else {
            return Err(unsafe_path(raw));
        };
        listed.push(list_path(&raw));
        if path.is_empty() {
            return Ok(());
        }
        match &mut node.kind {
            NodeKind::Dir => {
                tree.insert_if_absent(path, node);
                return Ok(());
            }
            NodeKind::Hardlink { target } => match install_path(target, merged) {
                Some(t) if !t.is_empty() => *target = t,
                _ => return Err(unsafe_path(target.clone())),
            },
            _ => {}
        }
        tree.insert(path, node);
        Ok(())
    });
    read.map_err(|e| match e {
        TarError::Visit(err) => err,
        TarError::Read(source) => Error::Package { package: name.to_owned(), source },
        TarError::Spool { path, source } => Error::Spool { path, source },
        other @ (TarError::NonUtf8 { .. } | TarError::Unsupported { .. }) => Error::Package {
            package: name.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        },
    })?;
    Ok(listed)
}

/// A data archive entry as dpkg's `.list` files name it: `./usr/bin/` →
/// `/usr/bin`, `./` → `/.`.
fn list_path(raw: &str) -> String {
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() {
        "/.".to_owned()
    } else {
        format!("/{}", parts.join("/"))
    }
}

/// What debootstrap and maintainer scripts would have made: merged `/usr`
/// links, users and groups, the dpkg status of `status` (sorted
/// paragraphs), the CA bundle and its links, `/tmp`, `/var/tmp`, `/root`.
fn complete_system(tree: &mut Tree, status: &[String]) -> Result<(), Error> {
    let merged: Vec<&str> = MERGED
        .into_iter()
        .filter(|d| tree.iter().any(|(p, _)| p.starts_with(&format!("usr/{d}/"))))
        .collect();
    for dir in merged {
        tree.insert(dir, Node::symlink(format!("usr/{dir}")));
    }
    tree.insert(
        "etc/passwd",
        Node::bytes(
            0o644,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        ),
    );
    tree.insert("etc/group", Node::bytes(0o644, "root:x:0:\nnogroup:x:65534:\n"));
    tree.insert("var/lib/dpkg/status", Node::bytes(0o644, status.join("\n")));
    update_ca_certificates(tree)?;
    for (dir, mode) in [("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700)] {
        tree.insert(dir, Node::dir(mode));
    }
    Ok(())
}

/// What `update-ca-certificates` leaves for the certificates in `tree`:
/// the bundle and one link per certificate in `/etc/ssl/certs`; nothing
/// when the tree ships no certificate.
fn update_ca_certificates(tree: &mut Tree) -> Result<(), Error> {
    let (bundle, certs) = (ca_bundle(tree)?, certificates(tree));
    if let Some(bundle) = bundle {
        tree.insert("etc/ssl/certs/ca-certificates.crt", Node::bytes(0o644, bundle));
    }
    for path in certs {
        let name = path.rsplit('/').next().unwrap_or(&path).trim_end_matches(".crt").to_string();
        tree.insert(format!("etc/ssl/certs/{name}.pem"), Node::symlink(format!("/{path}")));
    }
    Ok(())
}

/// The certificates `ca-certificates` ships, in path order.
fn certificates(tree: &Tree) -> Vec<String> {
    tree.iter()
        .filter(|(path, node)| {
            path.starts_with("usr/share/ca-certificates/")
                && path.ends_with(".crt")
                && matches!(node.kind, NodeKind::File { .. })
        })
        .map(|(path, _)| path.to_owned())
        .collect()
}

/// What `update-ca-certificates` (the trigger of `ca-certificates`) makes
/// of the shipped certificates, all enabled as its postinst enables them:
/// one PEM bundle, each certificate ending in a newline. `None` without
/// certificates.
fn ca_bundle(tree: &Tree) -> Result<Option<String>, Error> {
    let mut bundle = String::new();
    for path in certificates(tree) {
        let Some(Node { kind: NodeKind::File { source, .. }, .. }) = tree.get(&path) else { continue };
        let pem = match source {
            FileSource::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            FileSource::Path(spooled) | FileSource::Spooled { path: spooled, .. } => {
                std::fs::read_to_string(spooled)
                    .map_err(|source| Error::Spool { path: spooled.clone(), source })?
            }
            // Package trees hold spooled content, never a stored layer's.
            FileSource::Layer { .. } => continue,
        };
        bundle.push_str(&pem);
        if !pem.ends_with('\n') {
            bundle.push('\n');
        }
    }
    Ok((!bundle.is_empty()).then_some(bundle))
}

/// Where a data archive entry goes: `./bin/sh` → `usr/bin/sh` (with
/// `merged` /usr, else `bin/sh`); `None` when it would leave the root.
fn install_path(raw: &str, merged: bool) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    if merged && parts.first().is_some_and(|first| MERGED.contains(first)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_and_safety() {
        assert_eq!(install_path("./bin/sh", true).as_deref(), Some("usr/bin/sh"));
        assert_eq!(install_path("./bin/sh", false).as_deref(), Some("bin/sh"));
        assert_eq!(install_path("./lib64/ld.so", true).as_deref(), Some("usr/lib64/ld.so"));
        assert_eq!(install_path("./usr/bin/python3", true).as_deref(), Some("usr/bin/python3"));
        assert_eq!(install_path("./binaries/x", true).as_deref(), Some("binaries/x"));
        assert_eq!(install_path("./", true).as_deref(), Some(""));
        assert_eq!(install_path("./../etc/passwd", true), None);
        assert_eq!(list_path("./"), "/.");
        assert_eq!(list_path("./usr/bin/"), "/usr/bin");
        assert_eq!(list_path("./bin/sh"), "/bin/sh");
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
