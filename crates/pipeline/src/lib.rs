//! The orchestration of a plugin-forge run, between the command line and
//! the libraries that do the work.
//!
//! A [`Session`] is one run over a monorepo: it opens the builder's
//! [`Workspace`](forge_builder::Workspace) (the root as context, the store at
//! `ROOT/target/plugin-forge/oci`), builds the base images described in
//! `ROOT/base-images` that the store lacks, chains the base resolvers
//! (`--base-image` overrides, then the store, then a registry pull) and reads
//! `SOURCE_DATE_EPOCH` and the git provenance once. Its methods build one
//! plugin ([`Session::build_one`]), many in parallel behind the lint gate
//! ([`Session::build`]) and push what built ([`Session::publish`]); every
//! image built is checked for what the agent needs to start it (rule
//! PF401) before its tarball is written. Plugins
//! are found with [`discover`] and picked with [`select`].
//!
//! Results are plain data ([`Outcome`], [`Pushed`]); progress is reported
//! as [`Event`]s to an [`Observer`] the caller passes, so the command line
//! draws bars and prints tables while this crate prints nothing.

mod base_image;
mod error;
mod events;
mod fresh;
mod image_check;
mod inputs;
mod install;
mod lint_gate;
pub mod locks;
mod outputs;
mod provenance;
mod publish;
mod registry;
mod runner;
mod sbom;
mod select;
mod session;
mod shared_cache;
pub mod timings;

use std::path::{Path, PathBuf};

use forge_builder::TARGET_DIR;
use forge_oci::BlobStore;

pub use base_image::{descriptions, ensure, BaseImageOptions, BaseImageReport, LockReason, BASE_IMAGES_DIR};
pub use error::Error;
pub use events::{Event, Observer, Quiet};
pub use forge_registry::login::Stored;
pub use image_check::ImageRejection;
pub use inputs::{changed_since, BuildInputs, Unresolved};
pub use install::NativeInstaller;
pub use lint_gate::{lint_gate, Rejection};
pub use locks::{LockMode, LOCK_FILE};
pub use outputs::{Archived, Outputs};
pub use provenance::{source_date_epoch, strip_credentials};
pub use publish::{Missing, PushOptions, Pushed, WouldPush};
pub use registry::{client, login, logout, LoggedIn, LoginOptions, PullingResolver};
pub use runner::{RunPolicy, SandboxRunner};
pub use sbom::{stored_document, AttestOptions, Attestation};
pub use select::{discover, select, Selection, Shard, ShardError};
pub use session::{Artifact, BatchOptions, Outcome, Session, SessionOptions};
pub use shared_cache::{CacheMode, CacheOptions};

/// The registry image names get when none is given.
pub const DEFAULT_REGISTRY: &str = "localhost:5000";

/// The image store of the monorepo at `root`: `ROOT/target/plugin-forge/oci`.
pub fn store_dir(root: &Path) -> PathBuf {
    root.join(TARGET_DIR).join("oci")
}

/// Opens (creating it if needed) the image store of the monorepo at `root`.
pub fn open_store(root: &Path) -> Result<BlobStore, Error> {
    let dir = store_dir(root);
    BlobStore::open_or_create(&dir).map_err(|source| Error::Store { dir, source })
}
