//! The one error type of this crate.
//!
//! Structured variants so that callers (and tests) can match on what went
//! wrong; the cause sits in `#[source]` rather than in the message, so that
//! `anyhow`'s `{:#}` prints each step once.

use std::io;
use std::path::PathBuf;

use forge_oci::Digest;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while unpacking or running an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the image from the store failed (a missing blob, say).
    #[error(transparent)]
    Oci(#[from] forge_oci::Error),

    /// A file system operation outside any layer entry failed.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),

    /// The destination of [`unpack`](crate::unpack()) is already there.
    #[error("{} already exists; unpack needs a fresh destination", path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },

    /// The manifest and the config disagree on the number of layers.
    #[error("image {manifest} has {layers} layers but its config lists {diff_ids} diff IDs")]
    LayerCount {
        /// The image.
        manifest: Digest,
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },

    /// A layer whose media type we cannot read (zstd, or not a layer).
    #[error("layer {layer} has media type {media_type}, which cannot be unpacked (only tar and tar+gzip)")]
    UnsupportedLayer {
        /// The layer.
        layer: Digest,
        /// Its media type.
        media_type: String,
    },

    /// Reading a layer blob failed, or it does not match its digest.
    #[error("reading layer {layer}")]
    ReadLayer {
        /// The layer.
        layer: Digest,
        /// The cause (a [`forge_oci::store::MismatchError`] for corrupt blobs).
        #[source]
        source: io::Error,
    },

    /// The uncompressed layer does not hash to the diff ID of the config.
    #[error("layer {layer} has diff ID {found}, but the image config declares {expected}")]
    DiffIdMismatch {
        /// The layer.
        layer: Digest,
        /// The diff ID from the config.
        expected: Digest,
        /// The hash of the uncompressed tar.
        found: Digest,
    },

    /// One entry of a layer is unsafe or could not be written.
    #[error("layer {layer}: entry `{path}`")]
    Entry {
        /// The layer.
        layer: Digest,
        /// The entry's path as stored in the tar.
        path: String,
        /// What is wrong.
        #[source]
        source: EntryError,
    },

    /// Neither `Entrypoint` nor `Cmd` nor arguments give a command.
    #[error("the image has no ENTRYPOINT or CMD; pass a command after --")]
    NoCommand,

    /// The image's `User` is not `user[:group]` with sensible values.
    #[error("invalid user `{user}`: {reason}")]
    InvalidUser {
        /// The user as configured.
        user: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A user or group name that the image's passwd or group file lacks.
    #[error("unknown {kind} `{name}` (user `{user}`): not in the image's {file}")]
    UnknownUser {
        /// `"user"` or `"group"`.
        kind: &'static str,
        /// The name looked up.
        name: String,
        /// The whole user spec.
        user: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
    },

    /// A mode the image's `MODES` label does not list.
    #[error("plugin has no mode `{mode}`; its MODES are: {}", modes.join(", "))]
    UnknownMode {
        /// The mode asked for.
        mode: String,
        /// The image's modes.
        modes: Vec<String>,
    },

    /// A predefined run config title that is not in the plugin's file.
    #[error("no predefined run config titled `{title}`; the titles are: {}", if titles.is_empty() { "(none: the plugin has no predefined_run_configs.json entries)".to_owned() } else { titles.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ") })]
    UnknownConfig {
        /// The title asked for.
        title: String,
        /// The titles there are.
        titles: Vec<String>,
    },

    /// A predefined run config whose type does not fit the mode run.
    #[error("predefined run config `{title}` is of type `{found}`, but mode `{mode}` takes configs of type `{wanted}`")]
    ConfigTypeMismatch {
        /// The config's title.
        title: String,
        /// Its type.
        found: String,
        /// The mode.
        mode: String,
        /// The type the mode takes.
        wanted: String,
    },

    /// A directory to bind into the task directory does not exist.
    #[error("the {what} directory {} does not exist (it would be bound read-only at /sly_task_data/{what})", path.display())]
    InputMissing {
        /// `"data"` or `"model"`.
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },

    /// `bwrap` is not installed.
    #[error("`{program}` not found; install bubblewrap (`apt-get install bubblewrap`) to run images")]
    BwrapMissing {
        /// The program we tried to start.
        program: PathBuf,
    },

    /// Starting or waiting for `bwrap` failed.
    #[error("running {}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl From<forge_oci::DigestError> for Error {
    fn from(e: forge_oci::DigestError) -> Error {
        Error::Oci(e.into())
    }
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io(forge_input::IoError::new(op, path, source))
    }
}

/// Why one layer entry was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The path (or a hardlink target) is absolute, has `..`, or is empty.
    #[error("unsafe path: {reason}")]
    UnsafePath {
        /// What is wrong.
        reason: &'static str,
    },

    /// A parent component is a symlink that leads above the root.
    #[error("the parent `{link}` is a symlink that leads outside the root filesystem")]
    EscapingSymlink {
        /// The symlink, relative to the root.
        link: String,
    },

    /// Too many symlinks while resolving a parent (a loop).
    #[error("too many levels of symbolic links")]
    SymlinkLoop,

    /// A parent component exists and is not a directory.
    #[error("the parent `{parent}` is not a directory")]
    NotADirectory {
        /// The parent, relative to the root.
        parent: String,
    },

    /// A hardlink whose target does not exist or is a directory.
    #[error("hardlink target `{target}` is not an existing file")]
    BadHardlink {
        /// The target as stored.
        target: String,
    },

    /// A numeric owner beyond 32 bits.
    #[error("owner {uid}:{gid} does not fit 32 bits")]
    BadOwner {
        /// The uid from the header.
        uid: u64,
        /// The gid from the header.
        gid: u64,
    },

    /// A header field of the entry cannot be read (a mode or owner that is
    /// not a number).
    #[error("unreadable tar header")]
    BadHeader {
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// Reading the tar or writing the file system failed.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),
}

impl EntryError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> EntryError {
        EntryError::Io(forge_input::IoError::new(op, path, source))
    }
}
