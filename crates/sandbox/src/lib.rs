//! Unpacking an image into a root filesystem and running its entry point in
//! a sandbox (bubblewrap), the library half of `cargo xtask run`, which does
//! what `docker run --rm` does without a daemon:
//!
//! - [`mod@unpack`]: applies an image's layers in order to a fresh root
//!   filesystem, streaming each verified blob once, with OCI whiteouts, and
//!   refusing every entry that would write outside the root.
//! - [`spec`]: the process Docker would start for an image config:
//!   `Entrypoint` + (arguments or `Cmd`), environment, working directory and
//!   user (names looked up in the image's own `/etc/passwd`).
//! - [`run`](mod@run): that process under `bwrap`, in fresh namespaces with
//!   the root filesystem as `/`.
//! - [`agent`]: how the Supervisely agent starts a plugin (command,
//!   environment, task directory, `task_config.json`) and what an image
//!   needs for that ([`agent::check_image`], over the image's files merged
//!   from its layer headers by forge-oci's `ImageLayers`, without
//!   unpacking).
//! - [`rootcache`]: one verified unpacked root per image and a private
//!   writable layer per run (an overlay, or a copy), for fast starts that
//!   never leak one run's writes into the next.
//! - [`logs`]: the agent's JSON log lines, shown readably.
//! - [`build`] and [`diff`]: a build's `RUN`s over the root of the image
//!   so far (one per build chain, grown in place), each in a private
//!   overlay whose upper directory becomes the layer's tree.
//!
//! Only the root filesystem is trusted to be ours: layer content is the
//! image author's, so unpacking treats every path and link in it as hostile.

#![deny(missing_docs)]

pub mod agent;
pub mod build;
pub mod diff;
mod error;
pub mod logs;
pub mod rootcache;
pub mod run;
mod scope;
pub mod spec;
pub mod unpack;

pub use build::{BuildCommand, BuildOutcome, BuildRoot};
pub use error::{EntryError, Error, Result};
pub use rootcache::{LayerKind, RootCache, RunLayer};
pub use run::{bwrap_command, run, run_captured, Bind, RunOptions};
pub use spec::RunSpec;
pub use unpack::{apply, unpack, unpack_cached};
