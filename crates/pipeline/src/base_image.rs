//! Base images built from Debian packages, described in
//! `ROOT/base-images/NAME.toml` and pinned by the committed
//! `ROOT/base-images/NAME.lock`, stored as `REGISTRY/NAME` (every tag) in
//! the image store that `FROM` resolves through. [`ensure`] makes one
//! fresh: the lock rewritten when it is missing or stale, the image built
//! unless the stored one came from the same lock.
//!
//! A description names one architecture; a build for another platform
//! (`--platform linux/arm64`) builds the same description for that
//! platform's dpkg architecture, pinned by its own committed lock beside
//! the first, `NAME.ARCH.lock` (`base-py.arm64.lock`), resolved on first
//! use as the first is. The image of each platform is stored under the
//! same ref, `REGISTRY/NAME`: the image itself while there is one, an
//! index of them by platform once there are more
//! ([`forge_oci::set_platform_ref`]), which `FROM` resolves through for
//! the platform it builds for.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use forge_baseimage::build_from_lock;
use forge_baseimage::install::{dpkg_architecture, oci_platform};
use forge_debian::description::Description;
use forge_debian::fetch::Fetcher;
use forge_debian::lock::Lock;
use forge_input::IoResultExt;
use forge_oci::{BlobStore, Image, Platform, Target};

use crate::{Error, Event, Observer};

/// Where descriptions and locks live under a monorepo root.
pub const BASE_IMAGES_DIR: &str = "base-images";

/// The names of `ROOT/base-images/*.toml`, sorted; none without the
/// directory.
pub fn descriptions(root: &Path) -> Result<Vec<String>, Error> {
    let dir = root.join(BASE_IMAGES_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut names = Vec::new();
    for entry in entries {
        let path = entry.io("reading", &dir)?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Some(stem) = path.file_stem() {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// `ROOT/base-images/NAME.toml`.
pub(crate) fn description_path(root: &Path, name: &str) -> PathBuf {
    root.join(BASE_IMAGES_DIR).join(format!("{name}.toml"))
}

/// How [`ensure`] builds.
#[derive(Debug, Clone, Default)]
pub struct BaseImageOptions {
    /// Resolve the packages again and rewrite the lock.
    pub update: bool,
    /// Never use the network: everything must be in the download cache.
    pub offline: bool,
    /// The Debian mirror, instead of the description's (or the machine's).
    pub mirror: Option<String>,
    /// Timestamp of every file and of the image (`SOURCE_DATE_EPOCH`).
    pub epoch: u64,
    /// Build for this platform instead of the description's architecture.
    pub platform: Option<Platform>,
}

/// Why a lock is resolved again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// There is no lock file.
    Missing,
    /// [`BaseImageOptions::update`] asked for it.
    Update,
    /// The description no longer matches the lock.
    Stale,
}

impl fmt::Display for LockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockReason::Missing => "no lock yet",
            LockReason::Update => "--update",
            LockReason::Stale => "the description changed",
        })
    }
}

/// A base image in the store.
#[derive(Debug, Clone)]
pub struct BaseImageReport {
    /// `REGISTRY/NAME`, the ref it is stored under.
    pub reference: String,
    /// The image.
    pub image: Image,
    /// Whether the stored image for this lock was reused.
    pub cached: bool,
    /// Packages installed.
    pub packages: usize,
    /// Total size of their `.deb` files.
    pub debs_size: u64,
    /// Compressed size of its layers.
    pub size: u64,
    /// How long it took.
    pub time: Duration,
}

/// Builds `REGISTRY/NAME` into the store unless the stored one was built
/// from the same lock; writes the lock first when it is missing, stale or
/// [`BaseImageOptions::update`] asks.
pub fn ensure(
    root: &Path,
    store: &BlobStore,
    name: &str,
    registry: &str,
    options: &BaseImageOptions,
    observer: &dyn Observer,
) -> Result<BaseImageReport, Error> {
    let started = Instant::now();
    let description_path = description_path(root, name);
    let (description, lock_path) =
        for_platform(Description::load(&description_path)?, &description_path, options.platform.as_ref())?;
    let shown = match &options.platform {
        Some(platform) if lock_path != description_path.with_extension("lock") => {
            format!("{name} for {platform}")
        }
        _ => name.to_string(),
    };
    let name = shown.as_str();
    let mirror = options.mirror.clone().unwrap_or_else(|| description.mirror_or_default());
    let mut fetcher = Fetcher::new(cache_dir()?, &mirror)?;
    fetcher.set_offline(options.offline);

    let existing = if lock_path.exists() { Some(Lock::load(&lock_path)?) } else { None };
    let lock = match existing {
        Some(lock) if !options.update && lock.is_current_for(&description) => lock,
        stale => {
            let why = match stale {
                None => LockReason::Missing,
                Some(_) if options.update => LockReason::Update,
                Some(_) => LockReason::Stale,
            };
            observer.event(&Event::LockResolving { name, mirror: &mirror, why });
            let lock = Lock::resolve(&description, &fetcher, SystemTime::now()).map_err(|source| {
                Error::ResolveLock { description: description_path.clone(), source: Box::new(source) }
            })?;
            lock.write(&lock_path)?;
            observer.event(&Event::LockWritten { path: &lock_path, packages: lock.packages.len() });
            lock
        }
    };

    let reference = format!("{}/{}", registry.trim_end_matches('/'), description.name);
    let platform = oci_platform(&description.architecture).ok_or_else(|| Error::Architecture {
        description: description_path.clone(),
        architecture: description.architecture.clone(),
    })?;
    let previous = Target::load_ref(store, &reference)?.and_then(|t| t.image_for(&platform).cloned());
    let built = build_from_lock(store, &description, &lock, &fetcher, options.epoch, previous, store.root())
        .map_err(|source| Error::BaseImage {
            reference: reference.clone(),
            lock: lock_path.clone(),
            source: Box::new(source),
        })?;
    forge_oci::set_platform_ref(store, &reference, &built.image)?;
    // The image carries its package list (an SBOM) as a referrer.
    crate::sbom::attest_base(store, &built.image, &reference, &lock, options.epoch)?;
    let report = BaseImageReport {
        reference,
        size: built.image.manifest.layers().iter().map(|l| l.size()).sum(),
        image: built.image,
        cached: built.cached,
        packages: built.packages,
        debs_size: built.debs_size,
        time: started.elapsed(),
    };
    observer.event(&Event::BaseImageReady(&report));
    Ok(report)
}

/// The description as built for `platform` and its lock: the
/// description itself and `NAME.lock` when `platform` is its architecture
/// (or none is asked), otherwise the description for the platform's dpkg
/// architecture and `NAME.ARCH.lock`.
fn for_platform(
    mut description: Description,
    path: &Path,
    platform: Option<&Platform>,
) -> Result<(Description, PathBuf), Error> {
    let Some(platform) = platform else { return Ok((description, path.with_extension("lock"))) };
    let architecture = dpkg_architecture(&platform.to_string()).ok_or_else(|| Error::Architecture {
        description: path.to_path_buf(),
        architecture: platform.to_string(),
    })?;
    if architecture == description.architecture {
        return Ok((description, path.with_extension("lock")));
    }
    description.architecture = architecture.to_string();
    Ok((description, path.with_extension(format!("{architecture}.lock"))))
}

/// Downloaded `.deb` files and indexes: `$PLUGIN_FORGE_CACHE/debian`, else
/// `$XDG_CACHE_HOME/plugin-forge/debian`, else `~/.cache/plugin-forge/debian`.
pub(crate) fn cache_dir() -> Result<PathBuf, Error> {
    cache_dir_from(|name| std::env::var_os(name))
}

fn cache_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf, Error> {
    if let Some(dir) = var("PLUGIN_FORGE_CACHE") {
        return Ok(PathBuf::from(dir).join("debian"));
    }
    let base = match var("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(var("HOME").ok_or(Error::NoHome)?).join(".cache"),
    };
    Ok(base.join("plugin-forge").join("debian"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsString;

    use super::*;

    fn cache_with(vars: &[(&str, &str)]) -> Result<PathBuf, Error> {
        let vars: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        cache_dir_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_download_cache_follows_the_environment() {
        let all = [("PLUGIN_FORGE_CACHE", "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(cache_with(&all).unwrap(), PathBuf::from("/c/debian"));
        assert_eq!(cache_with(&all[1..]).unwrap(), PathBuf::from("/x/plugin-forge/debian"));
        assert_eq!(cache_with(&all[2..]).unwrap(), PathBuf::from("/h/.cache/plugin-forge/debian"));
        assert_eq!(cache_with(&[]).unwrap_err().to_string(), "HOME is not set");
    }

    #[test]
    fn descriptions_are_the_toml_files() {
        let root = tempfile::tempdir().unwrap();
        assert!(descriptions(root.path()).unwrap().is_empty());
        let dir = root.path().join(BASE_IMAGES_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["b.toml", "a.toml", "a.lock", "notes.md"] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        assert_eq!(descriptions(root.path()).unwrap(), ["a", "b"]);
    }

    #[test]
    fn another_platform_has_its_own_lock_beside_the_description() {
        let text = "name = \"b\"\nsuite = \"bookworm\"\narchitecture = \"amd64\"\npackages = [\"dash\"]\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(&path, text).unwrap();
        let load = || Description::load(&path).unwrap();
        let arm = Platform::parse("linux/arm64").unwrap();
        let (same, lock) = for_platform(load(), &path, None).unwrap();
        assert_eq!((same.architecture.as_str(), lock), ("amd64", dir.path().join("b.lock")));
        let (same, lock) = for_platform(load(), &path, Some(&Platform::default())).unwrap();
        assert_eq!((same.architecture.as_str(), lock), ("amd64", dir.path().join("b.lock")));
        let (other, lock) = for_platform(load(), &path, Some(&arm)).unwrap();
        assert_eq!((other.architecture.as_str(), lock), ("arm64", dir.path().join("b.arm64.lock")));
        assert_eq!(other.packages, load().packages);
        let sparc = Platform::parse("linux/sparc").unwrap();
        let err = for_platform(load(), &path, Some(&sparc)).unwrap_err().to_string();
        assert!(err.contains("linux/sparc"), "{err}");
    }

    #[test]
    fn lock_reasons_read_as_before() {
        let shown: Vec<String> = [LockReason::Missing, LockReason::Update, LockReason::Stale]
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(shown, ["no lock yet", "--update", "the description changed"]);
    }
}
