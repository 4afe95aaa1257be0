//! The seam through which a native installer turns an installing `RUN`
//! (see [`crate::run`]) into a layer at execute time.
//!
//! Planning recognises the `RUN` and keeps it as a step's
//! [`InstallRun`]; [`crate::execute`] hands it to the [`Installer`] the
//! caller injects, in two calls:
//!
//! 1. [`Installer::resolve`] says what the `RUN` installs into the image
//!    below it (the files of the base and of the steps before, through
//!    [`ImageFiles`]), as a canonical text: every resolved package with
//!    its digest, the target, every path a clean-up removes. That text is
//!    the layer's cache key (with the instruction and the layer options,
//!    not the parent layers: twenty plugins that install the same set over
//!    the same base share one layer, whatever they copied before).
//! 2. [`Installer::materialize`] makes the layer's [`Tree`] from that text,
//!    only when the layer cache misses.
//!
//! The builder itself never resolves, downloads or executes anything: the
//! pipeline's installer (pip's and apt's, with their lock) does, and lint
//! plans without one. [`NoInstaller`] refuses every installing `RUN`.

use std::path::Path;

use forge_dockerfile::Position;
use forge_oci::{ImageFiles, Platform, Tree};

use crate::run::InstallRun;

/// Which `RUN` a request ([`InstallRequest`], [`crate::RunRequest`]) is
/// about, for its lock entry and its messages.
#[derive(Debug, Clone, Copy)]
pub struct RunAt<'a> {
    /// The Dockerfile, relative to the monorepo root.
    pub dockerfile: &'a Path,
    /// Where the `RUN` is.
    pub position: Position,
    /// The instruction as written (`RUN pip install ...`): a lock's key.
    pub instruction: &'a str,
    /// The image's platform (its base's).
    pub platform: &'a Platform,
}

/// What an [`Installer`] is asked to install, and where.
pub struct InstallRequest<'a> {
    /// The `RUN`.
    pub at: RunAt<'a>,
    /// The recognised commands.
    pub run: &'a InstallRun,
    /// The image below the `RUN`.
    pub files: &'a dyn ImageFiles,
    /// The image's environment at the `RUN` (`PATH` decides which `python3`).
    pub env: &'a [(String, String)],
}

impl std::fmt::Debug for InstallRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallRequest").field("at", &self.at).field("run", &self.run).finish_non_exhaustive()
    }
}

impl InstallRequest<'_> {
    /// The value of `name` in the image's environment at the `RUN`.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Why an installing `RUN` could not be installed.
#[derive(Debug)]
pub struct InstallError {
    /// The command of the `RUN` it is about, when it is about one
    /// (otherwise the `RUN` itself).
    pub position: Option<Position>,
    /// What went wrong, with its causes.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

impl InstallError {
    /// An error about the whole `RUN`.
    pub fn new(message: impl Into<String>) -> InstallError {
        InstallError { position: None, message: message.into(), help: None }
    }

    /// The same error pointing at the command at `position`.
    pub fn at(mut self, position: Position) -> InstallError {
        self.position = Some(position);
        self
    }

    /// The same error with a hint.
    pub fn help(mut self, help: impl Into<String>) -> InstallError {
        self.help = Some(help.into());
        self
    }
}

/// Turns installing `RUN`s into layers; see the [module docs](self).
pub trait Installer: Sync {
    /// The canonical text of what `request` installs; the layer's cache
    /// key and what [`Installer::materialize`] is given.
    fn resolve(&self, request: &InstallRequest<'_>) -> Result<String, InstallError>;

    /// The layer of `resolution` (a text [`Installer::resolve`] returned
    /// for `request`), its files spooled under `spool` (a directory that
    /// outlives the build's execution).
    fn materialize(
        &self,
        request: &InstallRequest<'_>,
        resolution: &str,
        spool: &Path,
    ) -> Result<Tree, InstallError>;
}

/// The installer of a build that has none (lint, or a caller that never
/// installs): every installing `RUN` is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInstaller;

impl Installer for NoInstaller {
    fn resolve(&self, _: &InstallRequest<'_>) -> Result<String, InstallError> {
        Err(InstallError::new("this build has no package installer for RUN"))
    }

    fn materialize(&self, _: &InstallRequest<'_>, _: &str, _: &Path) -> Result<Tree, InstallError> {
        Err(InstallError::new("this build has no package installer for RUN"))
    }
}
