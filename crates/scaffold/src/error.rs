//! Why a plugin could not be created.

use std::path::PathBuf;

/// Errors of [`crate::plan`] and [`crate::write`].
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The path does not name a directory under `ROOT/plugins`.
    #[error("`{}` is not a plugin directory under plugins/: {why}", path.display())]
    BadPath {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The image name (from `--image` or the directory name) is not a valid
    /// `NAME:TAG`.
    #[error("image `{image}` is not a valid NAME:TAG: {message}; give one with --image, e.g. --image my-team/my-plugin:0.1.0")]
    BadImage {
        /// The image.
        image: String,
        /// What the reference grammar says.
        message: String,
    },
    /// Another plugin already builds this image.
    #[error("image `{image}` is already built by {}; give another with --image NAME:TAG", plugin.display())]
    DuplicateImage {
        /// The image.
        image: String,
        /// The plugin whose `VERSION` names it.
        plugin: PathBuf,
    },
    /// Unknown `--license`.
    #[error("unknown license `{id}`; known SPDX ids: {}", known.join(", "))]
    UnknownLicense {
        /// The id given.
        id: String,
        /// The ids offered.
        known: Vec<&'static str>,
    },
    /// Unknown `--type`.
    #[error("unknown plugin type `{0}`; one of import, architecture, dtl, custom")]
    UnknownType(String),
    /// Files the plugin would create exist already; nothing was written.
    #[error("{} already exists ({}); nothing was written: pick another path or remove them", dir.display(), existing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Exists {
        /// The plugin directory, relative to the root.
        dir: PathBuf,
        /// What exists, relative to the root.
        existing: Vec<PathBuf>,
    },
    /// The new plugin would sit inside another plugin.
    #[error("{} is inside the plugin {}; plugins cannot nest", dir.display(), plugin.display())]
    Nested {
        /// The new plugin's directory.
        dir: PathBuf,
        /// The plugin around it.
        plugin: PathBuf,
    },
    /// Reading the monorepo failed.
    #[error(transparent)]
    Manifest(#[from] forge_manifest::ManifestError),
    /// Writing a file failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
