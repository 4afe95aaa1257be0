//! The errors of resolving, fetching and locking `pip install`
//! requirements (the uv bootstrap, the resolution, the wheel downloads and
//! the pip part of the lock).

use std::path::{Path, PathBuf};

/// What went wrong while resolving or fetching wheels.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A local file operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done (`writing`, `renaming`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A request could not be made or its answer not read.
    #[error("GET {url}")]
    Http {
        /// The URL.
        url: String,
        /// What failed.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server answered with an error status.
    #[error("GET {url}: {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// `404 Not Found`, `503 Service Unavailable`.
        status: String,
    },
    /// A download's bytes are not those the lock or the index pinned.
    #[error("{url}: SHA-256 {found}, expected {expected} (the file on the server changed or was damaged in transit)")]
    DigestMismatch {
        /// Where it came from.
        url: String,
        /// The pinned SHA-256.
        expected: String,
        /// What the bytes hash to.
        found: String,
    },
    /// A download's size is not the pinned one.
    #[error("{url}: {found} bytes, expected {expected}")]
    SizeMismatch {
        /// Where it came from.
        url: String,
        /// The pinned size.
        expected: u64,
        /// How many bytes came.
        found: u64,
    },
    /// A SHA-256 that is not 64 lowercase hex digits.
    #[error("{what}: {value:?} is not a SHA-256 (64 lowercase hex digits)")]
    InvalidSha256 {
        /// Whose.
        what: String,
        /// The value.
        value: String,
    },
    /// uv cannot be fetched for this machine.
    #[error("no pinned uv for a {arch} host (pinned: x86_64, aarch64); set PLUGIN_FORGE_UV=/path/to/uv")]
    UnsupportedHost {
        /// `std::env::consts::ARCH`.
        arch: String,
    },
    /// `PLUGIN_FORGE_UV` names no executable file.
    #[error("PLUGIN_FORGE_UV={}: not an executable file", path.display())]
    UvOverride {
        /// The path it names.
        path: PathBuf,
    },
    /// The uv wheel is not what a uv wheel should be.
    #[error("{}: {problem}", wheel.display())]
    UvWheel {
        /// The downloaded wheel.
        wheel: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// uv could not be started.
    #[error("running {}", uv.display())]
    UvSpawn {
        /// The uv binary.
        uv: PathBuf,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// uv refused the requirements; its own explanation follows.
    #[error("resolving {requirements} for {target} failed:\n{stderr}")]
    UvFailed {
        /// The requirements, as asked (`numpy==1.16.0, -r /app/requirements.txt`).
        requirements: String,
        /// The target (`CPython 3.11 on manylinux_2_36_x86_64`).
        target: String,
        /// uv's stderr, trimmed, with our temporary paths replaced by the
        /// image paths they stand for.
        stderr: String,
    },
    /// A requirement has no wheel for the target.
    #[error("{0}")]
    NoWheel(Box<MissingWheel>),
    /// The target given to the resolver cannot be used.
    #[error("target {what}: {problem}")]
    Target {
        /// Which value (`python version "3"`, `platform "x86_64"`).
        what: String,
        /// Why not.
        problem: String,
    },
    /// A requirement that would change what the requirement file says
    /// (a line break, or an option where a requirement is expected).
    #[error("requirement {requirement:?}: {problem}")]
    BadRequirement {
        /// The requirement.
        requirement: String,
        /// What is wrong.
        problem: String,
    },
    /// uv's output is not what was expected.
    #[error("reading uv's pylock.toml: {problem}")]
    UvOutput {
        /// What is wrong.
        problem: String,
    },
    /// The pip part of a lock file is malformed.
    #[error("pip lock: {problem}")]
    Lock {
        /// What is wrong, with the field (`packages[2].wheels: ...`).
        problem: String,
    },
}

/// A requirement without a wheel for the target, and the newest version
/// that has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no wheel of {requirement} for {target} (tags {tags}); {newest}")]
pub struct MissingWheel {
    /// The requirement as asked (`numpy==1.16.0`), or the name of the
    /// dependency that needs the wheel.
    pub requirement: String,
    /// The target (`CPython 3.11 on manylinux_2_36_x86_64`).
    pub target: String,
    /// The first few compatible tags, best first, then `...`.
    pub tags: String,
    /// The newest version on the index with a compatible wheel.
    pub newest: crate::index::NewestWheel,
    /// uv's explanation, trimmed.
    pub uv_says: String,
}

impl ResolveError {
    /// An [`ResolveError::Io`] error.
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> ResolveError {
        ResolveError::Io { action, path: path.to_path_buf(), source }
    }
}
