//! The layer cache of a run: the store first, then the registry
//! repositories of `--cache REG/REPO` (forge-registry's `cache` module),
//! so that CI runners with empty stores build nothing another runner
//! built already.
//!
//! The first `--cache` is written to (unless `--cache-mode read`), the
//! others are read-only fallbacks, asked in order. A hit in a registry is
//! verified (key, digest, diff ID) and remembered in the store. Writes
//! happen after a layer is built (or found in the store but missing from
//! the registry), on a thread of their own, so a build never waits for
//! them; a registry that fails is a warning, never a failed build: a
//! lookup that fails is a miss (the layer is built here), and a cache that
//! cannot be reached (or answers 5xx) is not asked again in this run.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

use forge_oci::{BlobStore, Layer, LayerCache, LayerKey};
use forge_registry::{Client, Reference};

use crate::{Error, Event, Observer};

/// Whether the first `--cache` repository is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Only read (`--cache-mode read`: pull requests, forks).
    Read,
    /// Read, and write what is built to the first repository.
    #[default]
    ReadWrite,
}

/// The registry caches of a run (`--cache`, `--cache-mode`).
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    /// `REG/REPO` repositories, in the order they are asked.
    pub repositories: Vec<String>,
    /// Whether the first is written to.
    pub mode: CacheMode,
}

/// One `--cache` repository.
#[derive(Debug)]
struct Repository {
    reference: Reference,
    writable: bool,
    /// Set once it failed in a way that makes asking again pointless.
    broken: AtomicBool,
}

/// The `--cache` repositories and the client that talks to them.
#[derive(Debug)]
pub(crate) struct RegistryCaches {
    client: Client,
    repositories: Vec<Repository>,
}

impl RegistryCaches {
    /// The caches of `options`, talked to with `client`; `None` without any.
    pub(crate) fn new(options: &CacheOptions, client: Client) -> Result<Option<RegistryCaches>, Error> {
        let mut repositories = Vec::new();
        for (i, text) in options.repositories.iter().enumerate() {
            let refused = |reason: &str| Error::CacheFlag { value: text.clone(), reason: reason.to_string() };
            let (_, tag) = forge_reference::split_tag(text);
            if tag.is_some() || text.contains('@') {
                return Err(refused("name a repository, without tag or digest (REG/REPO)"));
            }
            let reference = Reference::parse(text).map_err(|e| refused(&e.to_string()))?;
            if !text.contains('/') {
                return Err(refused("name the registry and the repository (REG/REPO)"));
            }
            let writable = i == 0 && options.mode == CacheMode::ReadWrite;
            repositories.push(Repository { reference, writable, broken: AtomicBool::new(false) });
        }
        Ok((!repositories.is_empty()).then_some(RegistryCaches { client, repositories }))
    }

    /// The layer under `key` in the first repository that has it, its
    /// blob verified into `store`; every failure is a warning and a miss.
    fn get(&self, key: &LayerKey, store: &BlobStore, observer: &dyn Observer) -> Option<Layer> {
        for repo in self.repositories.iter().filter(|r| !r.broken.load(Ordering::Relaxed)) {
            match self.client.cached_layer(&repo.reference, key, store) {
                Ok(Some(layer)) => return Some(layer),
                Ok(None) => {}
                Err(e) => self.failed(repo, "reading", &e, observer),
            }
        }
        None
    }

    /// Writes `key`'s entry to the writable repository unless it has it.
    fn put(&self, key: &LayerKey, layer: &Layer, store: &BlobStore, observer: &dyn Observer) {
        let Some(repo) = self.writable() else { return };
        let written = self.client.has_cached_layer(&repo.reference, key).and_then(|has| match has {
            true => Ok(None),
            false => self.client.cache_layer(&repo.reference, key, layer, store).map(Some),
        });
        match written {
            Ok(Some(bytes)) => observer.event(&Event::CacheWritten {
                repository: &repo.reference.name(),
                layer: &layer.digest,
                bytes_uploaded: bytes,
            }),
            Ok(None) => {}
            Err(e) => self.failed(repo, "writing to", &e, observer),
        }
    }

    fn writable(&self) -> Option<&Repository> {
        self.repositories.iter().find(|r| r.writable && !r.broken.load(Ordering::Relaxed))
    }

    /// Warns about `error`; a registry that is unreachable or failing is
    /// not asked again in this run.
    fn failed(&self, repo: &Repository, doing: &str, error: &forge_registry::Error, observer: &dyn Observer) {
        let give_up =
            matches!(error, forge_registry::Error::Unreachable { .. } | forge_registry::Error::Tls { .. })
                || matches!(error, forge_registry::Error::Status { status, .. } if *status >= 500);
        if give_up && repo.broken.swap(true, Ordering::Relaxed) {
            return;
        }
        observer.event(&Event::CacheWarning {
            repository: &repo.reference.name(),
            message: &format!(
                "{doing} the layer cache failed ({}){}",
                forge_input::error_chain(error),
                if give_up { "; not used for the rest of this run" } else { "; the layer is built here" }
            ),
        });
    }
}

/// A run's layer cache (see the [module docs](self)): `local` (the store,
/// or `--no-cache`'s `Rebuild` of it), then `remote` unless `--no-cache`.
pub(crate) struct RunCache<'a> {
    pub(crate) local: &'a dyn LayerCache,
    pub(crate) read_remote: bool,
    pub(crate) remote: &'a RegistryCaches,
    pub(crate) store: &'a BlobStore,
    pub(crate) observer: &'a dyn Observer,
    writes: Mutex<Sender<(LayerKey, Layer)>>,
    queued: Mutex<HashSet<LayerKey>>,
}

impl RunCache<'_> {
    fn write_later(&self, key: &LayerKey, layer: &Layer) {
        if self.remote.writable().is_none() {
            return;
        }
        let new = self.queued.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone());
        if new {
            // The writer lives as long as this cache (see `with_run_cache`).
            let _ = self.writes.lock().unwrap_or_else(|e| e.into_inner()).send((key.clone(), layer.clone()));
        }
    }
}

impl LayerCache for RunCache<'_> {
    fn get(&self, key: &LayerKey) -> Option<Layer> {
        if let Some(layer) = self.local.get(key) {
            self.write_later(key, &layer);
            return Some(layer);
        }
        if !self.read_remote {
            return None;
        }
        let layer = self.remote.get(key, self.store, self.observer)?;
        // Found here from now on; a failure to remember only costs a lookup.
        let _ = self.local.put(key, &layer);
        Some(layer)
    }

    fn put(&self, key: &LayerKey, layer: &Layer) -> forge_oci::Result<()> {
        self.local.put(key, layer)?;
        self.write_later(key, layer);
        Ok(())
    }
}

/// Runs `work` with the run's layer cache over `local`: with `remote`, a
/// [`RunCache`] whose writes a thread of their own carries out while
/// `work` runs (and finishes before this returns); without, `local`.
pub(crate) fn with_run_cache<R>(
    local: &dyn LayerCache,
    read_remote: bool,
    remote: Option<&RegistryCaches>,
    store: &BlobStore,
    observer: &dyn Observer,
    work: impl FnOnce(&dyn LayerCache) -> R,
) -> R {
    let Some(remote) = remote else { return work(local) };
    let (sender, receiver) = channel::<(LayerKey, Layer)>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for (key, layer) in receiver {
                remote.put(&key, &layer, store, observer);
            }
        });
        let cache = RunCache {
            local,
            read_remote,
            remote,
            store,
            observer,
            writes: Mutex::new(sender),
            queued: Mutex::new(HashSet::new()),
        };
        work(&cache)
        // `cache` (the sender) is dropped here: the writer ends once the
        // queue is empty, and the scope waits for it.
    })
}
