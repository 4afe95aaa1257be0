//! From a description and its lock file to an image in the store: every
//! `.deb` is fetched (or taken from the cache) and verified against the
//! lock *before* anything is written to the store, then the packages are
//! installed with [`crate::assemble`]. The image records the lock's digest,
//! so an unchanged lock reuses the stored image.

use std::collections::BTreeMap;
use std::path::Path;

use forge_debian::deb::DebFile;
use forge_debian::description::Description;
use forge_debian::fetch::Fetcher;
use forge_debian::lock::Lock;
use forge_oci::{BlobStore, Digest, Image};

use crate::install::oci_platform;
use crate::{assemble, Error, ImageSpec, Package};

/// Annotation holding the digest of the lock an image was built from.
pub const LOCK_ANNOTATION: &str = "dev.plugin-forge.debian.lock";
/// Annotation listing the installed packages, `name=version` comma-separated.
pub const PACKAGES_ANNOTATION: &str = "dev.plugin-forge.debian.packages";

/// A base image built or found.
#[derive(Debug, Clone)]
pub struct BaseBuild {
    /// The image in the store.
    pub image: Image,
    /// Whether the stored image for this lock was reused.
    pub cached: bool,
    /// Packages installed.
    pub packages: usize,
    /// Total size of their `.deb` files.
    pub debs_size: u64,
}

/// Builds the image for `lock` into `store`, or returns `previous` when it
/// was built from the same lock. `spool_parent` holds the temporary spool.
pub fn build_from_lock(
    store: &BlobStore,
    description: &Description,
    lock: &Lock,
    fetcher: &Fetcher,
    epoch: u64,
    previous: Option<Image>,
    spool_parent: &Path,
) -> Result<BaseBuild, Error> {
    let lock_digest = Digest::of(lock.to_toml().as_bytes()).to_string();
    let packages = lock.packages.len();
    let debs_size = lock.total_size();
    if let Some(image) = previous {
        let same =
            image.manifest.annotations().as_ref().and_then(|a| a.get(LOCK_ANNOTATION)) == Some(&lock_digest);
        if same {
            return Ok(BaseBuild { image, cached: true, packages, debs_size });
        }
    }
    // Every .deb verified first: a bad one stops the build before the store is touched.
    let debs = lock.fetch_debs(fetcher)?;

    let list: Vec<String> = lock.packages.iter().map(|p| format!("{}={}", p.name, p.version)).collect();
    let spec = ImageSpec {
        env: description.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        cmd: None,
        labels: BTreeMap::from([
            ("org.opencontainers.image.title".to_string(), description.name.clone()),
            (
                "org.opencontainers.image.description".to_string(),
                format!("Debian {} {}: {}", lock.suite, lock.architecture, description.packages.join(", ")),
            ),
        ]),
        annotations: BTreeMap::from([
            (LOCK_ANNOTATION.to_string(), lock_digest),
            (PACKAGES_ANNOTATION.to_string(), list.join(",")),
            ("org.opencontainers.image.title".to_string(), description.name.clone()),
        ]),
        epoch,
        platform: oci_platform(&lock.architecture)
            .ok_or_else(|| Error::Architecture { architecture: lock.architecture.clone() })?,
    };
    forge_oci::temp::register_dir(spool_parent);
    let spool = tempfile::Builder::new()
        .prefix(&forge_oci::temp::prefix("debian-spool-"))
        .tempdir_in(spool_parent)
        .map_err(|source| Error::Spool { path: spool_parent.to_path_buf(), source })?;
    let opened = lock.packages.iter().zip(debs).map(|(locked, path)| -> Result<Package, Error> {
        let deb = DebFile::open(&path)?;
        Ok(Package { name: locked.name.clone(), control: deb.control()?.control, data: deb.data()? })
    });
    let image = assemble(store, opened, &spec, spool.path())?;
    Ok(BaseBuild { image, cached: false, packages, debs_size })
}
