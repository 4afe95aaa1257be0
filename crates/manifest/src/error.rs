//! Errors of this crate.

use std::path::{Path, PathBuf};

use crate::Problem;

/// Why a plugin or a monorepo could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file or directory exists but could not be read.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),
    /// A file is not a regular file or is too large (a FIFO, a link to
    /// `/dev/zero`, a 4 GB `VERSION`).
    #[error(transparent)]
    Input(#[from] forge_input::InputError),
    /// A required file is absent.
    #[error("{} is missing", path.display())]
    Missing {
        /// The path that should exist.
        path: PathBuf,
    },
    /// A file's content is wrong.
    #[error("{}{}: {}", path.display(), problem.position.map(|p| format!(":{p}")).unwrap_or_default(), problem.message)]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        problem: Problem,
    },
    /// The monorepo root holds no `plugins/` directory.
    #[error("{} has no `plugins/` directory; pass the monorepo root, the directory that holds `plugins/`", root.display())]
    NoPluginsDir {
        /// The root given.
        root: PathBuf,
    },
}

impl ManifestError {
    pub(crate) fn invalid(path: &Path, problem: Problem) -> ManifestError {
        ManifestError::Invalid { path: path.to_path_buf(), problem }
    }
}
