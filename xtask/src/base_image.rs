//! `cargo xtask base-image [NAME]`: base images built from Debian packages,
//! described in `ROOT/base-images/NAME.toml` and pinned by the committed
//! `ROOT/base-images/NAME.lock`, stored as `REGISTRY/NAME` (every tag) in
//! the image store that `FROM` resolves through.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context as _};
use forge_baseimage::build_from_lock;
use forge_debian::description::Description;
use forge_debian::fetch::Fetcher;
use forge_debian::lock::Lock;
use forge_oci::{BlobStore, Image};

use crate::build::DEFAULT_REGISTRY;

/// Where descriptions and locks live under a monorepo root.
pub(crate) const BASE_IMAGES_DIR: &str = "base-images";

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The base image to build (`base-images/NAME.toml`) [default: all]
    name: Option<String>,
    /// The monorepo root [default: this repository]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Registry prefix of the stored name (`REGISTRY/NAME`).
    #[arg(long, value_name = "REG", default_value = DEFAULT_REGISTRY)]
    registry: String,
    /// Resolve the packages again against the archive and rewrite the lock.
    #[arg(long)]
    update: bool,
    /// Debian mirror to download from [default: the description's, else the machine's apt mirror]
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Never use the network: everything must be in the cache.
    #[arg(long)]
    offline: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.root.clone().unwrap_or_else(crate::project_root);
    let names = match &args.name {
        Some(name) => vec![name.clone()],
        None => descriptions(&root)?,
    };
    if names.is_empty() {
        bail!("no base image descriptions under {}", root.join(BASE_IMAGES_DIR).display());
    }
    let store = crate::image::store_at(&root)?;
    for name in names {
        ensure(
            &root,
            &store,
            &name,
            &args.registry,
            Mode { update: args.update, offline: args.offline, mirror: args.mirror.clone() },
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The names of `ROOT/base-images/*.toml`, sorted.
pub(crate) fn descriptions(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join(BASE_IMAGES_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut names = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Some(stem) = path.file_stem() {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Mode {
    pub(crate) update: bool,
    pub(crate) offline: bool,
    pub(crate) mirror: Option<String>,
}

/// Builds `REGISTRY/NAME` into the store unless the stored one was built
/// from the same lock; writes the lock first when it is missing, stale or
/// `--update` asks.
pub(crate) fn ensure(
    root: &Path,
    store: &BlobStore,
    name: &str,
    registry: &str,
    mode: Mode,
) -> anyhow::Result<(String, Image)> {
    let started = Instant::now();
    let description_path = root.join(BASE_IMAGES_DIR).join(format!("{name}.toml"));
    let lock_path = description_path.with_extension("lock");
    let description = Description::load(&description_path)?;
    let mirror = mode.mirror.clone().unwrap_or_else(|| description.mirror_or_default());
    let mut fetcher = Fetcher::new(cache_dir()?, &mirror)?;
    fetcher.set_offline(mode.offline);

    let existing = if lock_path.exists() { Some(Lock::load(&lock_path)?) } else { None };
    let lock = match existing {
        Some(lock) if !mode.update && lock.is_current_for(&description) => lock,
        stale => {
            let why = match stale {
                None => "no lock yet",
                Some(_) if mode.update => "--update",
                Some(_) => "the description changed",
            };
            eprintln!("resolving {name} against {mirror} ({why})");
            let lock = Lock::resolve(&description, &fetcher, SystemTime::now())
                .with_context(|| format!("resolving {}", description_path.display()))?;
            lock.write(&lock_path)?;
            eprintln!("wrote {} ({} packages)", lock_path.display(), lock.packages.len());
            lock
        }
    };

    let reference = format!("{}/{}", registry.trim_end_matches('/'), description.name);
    let previous = Image::load_ref(store, &reference)?;
    let epoch = crate::build::source_date_epoch()?;
    let built = build_from_lock(store, &description, &lock, &fetcher, epoch, previous, store.root())
        .with_context(|| format!("building base image {reference} from {}", lock_path.display()))?;
    store.set_ref(&reference, &built.image.manifest_descriptor())?;
    let size: u64 = built.image.manifest.layers().iter().map(|l| l.size()).sum();
    eprintln!(
        "{} {reference} {}: {} packages, {:.1} MiB of .debs, {:.1} MiB compressed, {:.1}s",
        if built.cached { "cached" } else { "built" },
        built.image.manifest_digest,
        built.packages,
        built.debs_size as f64 / (1 << 20) as f64,
        size as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    Ok((reference, built.image))
}

/// Downloaded `.deb` files and indexes: `$PLUGIN_FORGE_CACHE`, else
/// `$XDG_CACHE_HOME/plugin-forge/debian`, else `~/.cache/plugin-forge/debian`.
fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PLUGIN_FORGE_CACHE") {
        return Ok(PathBuf::from(dir).join("debian"));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    };
    Ok(base.join("plugin-forge").join("debian"))
}
