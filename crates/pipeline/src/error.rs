//! Errors of a run. Those of the libraries below pass through unchanged
//! (`transparent`), so a message and its causes read the same whichever
//! layer reports them.

use std::path::PathBuf;

use forge_builder::BuildError;

/// Why a run, or one plugin of it, failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A build failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A `Dockerfile.lock` is not a lock file of ours (reading or writing
    /// it fails as `Io` or `Input`).
    #[error("{}: not a valid lock file: {message}", path.display())]
    InvalidLock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The monorepo or a plugin's manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] forge_manifest::ManifestError),
    /// The image store failed.
    #[error(transparent)]
    Oci(#[from] forge_oci::Error),
    /// Talking to a registry failed.
    #[error(transparent)]
    Registry(#[from] forge_registry::Error),
    /// A base image description, lock or download failed (boxed: it is
    /// large, and rare).
    #[error(transparent)]
    Debian(Box<forge_debian::Error>),
    /// An image's file tree could not be read for the image checks.
    #[error(transparent)]
    Sandbox(#[from] forge_sandbox::Error),
    /// An image's packages could not be read for its SBOM.
    #[error("writing the SBOM of {image}")]
    Sbom {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: forge_sbom::Error,
    },
    /// The image checks found errors: the agent could not start the image.
    #[error("{0}")]
    ImageRejected(crate::ImageRejection),
    /// The image store could not be opened.
    #[error("opening the image store {}", dir.display())]
    Store {
        /// The store directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: forge_oci::Error,
    },
    /// A file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),
    /// A file of the monorepo could not be read (for provenance).
    #[error(transparent)]
    Input(#[from] forge_input::InputError),
    /// `--base-image` is not `REF=SOURCE`.
    #[error("{message}")]
    BaseImageFlag {
        /// What is wrong with it.
        message: String,
    },
    /// `SOURCE_DATE_EPOCH` is set to something else than seconds.
    #[error("SOURCE_DATE_EPOCH=`{value}` is not a whole number of seconds")]
    SourceDateEpoch {
        /// The value found.
        value: String,
        /// The cause.
        #[source]
        source: std::num::ParseIntError,
    },
    /// Docker's `config.json` could not be read.
    #[error("reading Docker's config.json for registry credentials")]
    Credentials {
        /// The cause.
        #[source]
        source: forge_registry::Error,
    },
    /// The run's archive (`--archive FILE`) could not be written.
    #[error("writing the archive {}", path.display())]
    Archive {
        /// The archive file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: forge_oci::Error,
    },
    /// The thread pool could not be started.
    #[error("starting {what} threads")]
    Threads {
        /// `build` or `upload`.
        what: &'static str,
        /// The cause.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// The monorepo has no plugin at all.
    #[error("no plugins found under {}", dir.display())]
    NoPlugins {
        /// `ROOT/plugins`.
        dir: PathBuf,
    },
    /// No plugin has this path or directory name.
    #[error(
        "no plugin `{wanted}` under {}; plugins are: {}",
        dir.display(),
        known.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoSuchPlugin {
        /// What was asked for.
        wanted: String,
        /// `ROOT/plugins`.
        dir: PathBuf,
        /// Every plugin, relative to the root.
        known: Vec<PathBuf>,
    },
    /// Several plugins have this directory name.
    #[error(
        "`{wanted}` names several plugins ({}); give the path",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousPlugin {
        /// What was asked for.
        wanted: String,
        /// The plugins of that name, relative to the root.
        candidates: Vec<PathBuf>,
    },
    /// The linter found errors in the plugin, so it was not built.
    #[error("{0}")]
    LintRejected(crate::Rejection),
    /// A plugin's image was not pushed because it did not build.
    #[error("build failed")]
    NotBuilt {
        /// Why it did not build.
        #[source]
        source: Box<Error>,
    },
    /// A base image lock could not be resolved against the archive.
    #[error("resolving {}", description.display())]
    ResolveLock {
        /// The description.
        description: PathBuf,
        /// The cause (boxed: it is large, and rare).
        #[source]
        source: Box<forge_debian::Error>,
    },
    /// A base image could not be built from its lock.
    #[error("building base image {reference} from {}", lock.display())]
    BaseImage {
        /// `REGISTRY/NAME`.
        reference: String,
        /// The lock.
        lock: PathBuf,
        /// The cause (boxed: it is large, and rare).
        #[source]
        source: Box<forge_baseimage::Error>,
    },
    /// A base image cannot be built for an architecture.
    #[error("{}: cannot build it for `{architecture}`: Debian has no such architecture plugin-forge knows", description.display())]
    Architecture {
        /// The description.
        description: PathBuf,
        /// The platform or dpkg architecture asked for.
        architecture: String,
    },
    /// `--cache` does not name a repository.
    #[error("--cache {value}: {reason}")]
    CacheFlag {
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// git could not answer what `--changed-since` asks.
    #[error("{what} (in {})\nhelp: {help}", root.display())]
    Git {
        /// The monorepo root.
        root: PathBuf,
        /// What failed.
        what: String,
        /// What to do.
        help: String,
    },
    /// The cache directory for Debian downloads is unknown.
    #[error("HOME is not set")]
    NoHome,
}

impl From<forge_debian::Error> for Error {
    fn from(error: forge_debian::Error) -> Error {
        Error::Debian(Box::new(error))
    }
}
