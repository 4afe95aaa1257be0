//! Progress of a run, as events: the library reports what it starts and
//! finishes, the caller decides how to show it (bars, lines or nothing).
//! Events come from the build and upload threads, so observers are `Sync`.

use std::path::Path;
use std::time::Duration;

use forge_builder::Built;
use forge_lint::Diagnostic;
use forge_registry::PushEvent;

use crate::{BaseImageReport, Error, LockReason};

/// Something that happened during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// A base image described in `base-images/` is not in the store; it is
    /// built now.
    BaseImageMissing {
        /// `REGISTRY/NAME`.
        reference: &'a str,
        /// Its description, `ROOT/base-images/NAME.toml`.
        description: &'a Path,
    },
    /// A base image's packages are resolved against the archive (slow: it
    /// downloads the indexes).
    LockResolving {
        /// The description's name.
        name: &'a str,
        /// The mirror.
        mirror: &'a str,
        /// Why the lock is resolved again.
        why: LockReason,
    },
    /// A base image lock was written.
    LockWritten {
        /// The lock file.
        path: &'a Path,
        /// Packages it pins.
        packages: usize,
    },
    /// A plugin's `Dockerfile.lock` was written (new or changed
    /// resolutions of its installing `RUN`s).
    RunLockWritten {
        /// The lock file, relative to the root.
        path: &'a Path,
    },
    /// A base image is in the store, built or reused.
    BaseImageReady(&'a BaseImageReport),
    /// The linter found errors in a plugin, which is not built.
    LintRejected {
        /// The plugin, relative to the root.
        plugin: &'a Path,
        /// Its errors (warnings left out).
        errors: &'a [&'a Diagnostic],
    },
    /// A plugin is up to date ([`Session::build`](crate::Session::build)
    /// takes its image from the store, unbuilt); its build's events follow.
    UpToDate {
        /// The plugin, relative to the root.
        plugin: &'a Path,
    },
    /// A plugin's build starts.
    BuildStarted {
        /// The plugin, relative to the root.
        plugin: &'a Path,
    },
    /// The image checks found problems in a plugin's image that are only
    /// warnings (errors fail the build with [`Error::ImageRejected`]).
    ImageWarnings {
        /// The plugin, relative to the root.
        plugin: &'a Path,
        /// The canonical monorepo root, which diagnostic paths are relative to.
        root: &'a Path,
        /// The warnings.
        warnings: &'a [Diagnostic],
    },
    /// A plugin's image is written as a tarball.
    Exporting {
        /// The plugin, relative to the root.
        plugin: &'a Path,
    },
    /// A plugin's build (and tarball) finished.
    BuildFinished {
        /// The plugin, relative to the root.
        plugin: &'a Path,
        /// The image, or why there is none.
        result: Result<&'a Built, &'a Error>,
        /// How long it took.
        time: Duration,
    },
    /// A plugin's image starts being pushed.
    PushStarted {
        /// The plugin, relative to the root.
        plugin: &'a Path,
        /// `REGISTRY/NAME:TAG`.
        image: &'a str,
        /// Compressed size of config and layers.
        size: u64,
    },
    /// Progress of a push.
    Push {
        /// The plugin, relative to the root.
        plugin: &'a Path,
        /// What the registry client reports.
        event: &'a PushEvent,
    },
    /// A `--cache` registry failed; the build goes on without it (the
    /// layer is built here).
    CacheWarning {
        /// The cache repository, `REG/REPO`.
        repository: &'a str,
        /// What failed.
        message: &'a str,
    },
    /// A layer's entry was written to the `--cache` registry.
    CacheWritten {
        /// The cache repository, `REG/REPO`.
        repository: &'a str,
        /// The layer blob.
        layer: &'a forge_oci::Digest,
        /// Blob bytes uploaded for it (0 when the registry had them).
        bytes_uploaded: u64,
    },
    /// A push finished.
    PushFinished {
        /// The plugin, relative to the root.
        plugin: &'a Path,
        /// Whether the image and its tag are in the registry.
        ok: bool,
    },
}

/// Receives the [`Event`]s of a run.
pub trait Observer: Sync {
    /// Called for every event, from any thread.
    fn event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Sync> Observer for F {
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// An observer that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: &Event<'_>) {}
}
