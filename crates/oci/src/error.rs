//! The one error type of this crate.
//!
//! Variants are structured (what, where, expected, found) so that callers can
//! match on them; the underlying cause is kept in `#[source]` rather than
//! repeated in the message, so that `anyhow`'s `{:#}` prints each step once.

use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, DigestError};
use crate::validate::Problem;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while storing, building, exporting, importing
/// or validating images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string is not `sha256:` followed by 64 lowercase hex digits.
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),

    /// `gc` found a build using the store.
    #[error("another run (a build, a push) is using the store {}; run gc again when it has finished", path.display())]
    StoreBusy {
        /// The store.
        path: PathBuf,
    },

    /// A file system operation failed.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),

    /// A blob that should be in the store is not there.
    #[error("blob {digest} is not in the store (expected at {})", path.display())]
    BlobNotFound {
        /// The missing blob.
        digest: Digest,
        /// Where it was looked for.
        path: PathBuf,
    },

    /// Content does not hash to the digest it is stored or referenced under.
    #[error("{what} does not match its digest: expected {expected}, found {found}")]
    DigestMismatch {
        /// Which content (a blob path, an archive member).
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest of the bytes actually read.
        found: Digest,
    },

    /// Content has a different size than its descriptor says.
    #[error("{what} is {found} bytes, but its descriptor says {expected}")]
    SizeMismatch {
        /// Which content.
        what: String,
        /// The size from the descriptor or header.
        expected: u64,
        /// The size actually found.
        found: u64,
    },

    /// A JSON blob is larger than we are willing to read into memory.
    #[error("{what} is {size} bytes, more than the {limit} bytes allowed for a JSON document")]
    TooLarge {
        /// Which content.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// A JSON document could not be parsed or written.
    #[error("{what} is not valid JSON of the expected shape")]
    Json {
        /// Which document.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },

    /// oci-spec rejected a value (a builder without a required field, a
    /// digest it does not accept).
    #[error("building {what}")]
    Spec {
        /// What was being built.
        what: &'static str,
        /// The cause.
        #[source]
        source: oci_spec::OciSpecError,
    },

    /// A document is well-formed JSON but not what the OCI spec allows here.
    #[error("{what}: {reason}")]
    InvalidDocument {
        /// Which document.
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A layer entry's path is not a clean relative path.
    #[error("invalid layer entry path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Layer entries must come strictly sorted by path bytes.
    #[error(
        "layer entry `{path}` comes after `{previous}`; entries must be sorted by path bytes, \
         each path once (sort them before appending)"
    )]
    OutOfOrder {
        /// The entry appended before.
        previous: String,
        /// The entry that broke the order.
        path: String,
    },

    /// A layer entry was appended before its parent directory.
    #[error("layer entry `{path}` has no parent directory `{parent}` before it; append `{parent}` first")]
    MissingParent {
        /// The entry.
        path: String,
        /// The directory that must come first.
        parent: String,
    },

    /// A hardlink points to something that is not an earlier non-directory
    /// entry of the same layer.
    #[error(
        "hardlink `{path}` points to `{target}`, which is not a file or link appended earlier in this layer"
    )]
    BadHardlink {
        /// The hardlink.
        path: String,
        /// Its target.
        target: String,
    },

    /// A file whose content is in a stored layer ([`crate::FileSource::Layer`])
    /// was given to a layer builder or a cache key.
    #[error(
        "layer entry `{path}` is a file of the stored layer {layer}; read it with ImageFiles::open and \
         insert its bytes (or a spooled copy) to write it into a new layer"
    )]
    ContentInLayer {
        /// The entry.
        path: String,
        /// The layer that holds its content.
        layer: Digest,
    },

    /// A stored layer could not be read as a file system: a read failure,
    /// a blob that does not match its digest, or an entry no runtime would
    /// apply (a `..` path, a whiteout without a name, a hard link to
    /// nothing).
    #[error("reading layer {layer}")]
    ReadLayer {
        /// The layer.
        layer: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// A symlink target is empty or holds a NUL byte.
    #[error("symlink `{path}` has an invalid target: {reason}")]
    BadSymlink {
        /// The symlink.
        path: String,
        /// What is wrong with the target.
        reason: &'static str,
    },

    /// A mode with bits beyond the permission bits (file type bits, say).
    #[error("mode {mode:#o} of `{path}` has bits outside 0o7777; pass permission bits only")]
    InvalidMode {
        /// The entry.
        path: String,
        /// The mode as given.
        mode: u32,
    },

    /// A source file grew or shrank while the layer was being written.
    #[error("{} changed size while it was being read: the entry says {expected} bytes, found {found}", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// The size the entry declared.
        expected: u64,
        /// What was found (for a file that grew: at least this much).
        found: u64,
    },

    /// A layer's source file is no longer a regular file: a FIFO, device or
    /// directory put in its place since it was planned (the open never
    /// blocks), or it cannot be opened.
    #[error(transparent)]
    Source(forge_input::InputError),

    /// A previous error left a layer half-written; the builder cannot go on.
    #[error("the layer builder failed earlier and cannot be used any more; start a new layer")]
    Poisoned,

    /// Two entries of an archive's `index.json` would have the same ref
    /// name (two images given the same name).
    #[error("two images of the archive are named `{name}`; give each image its own name")]
    DuplicateRefName {
        /// The name.
        name: String,
    },

    /// A repo tag for an archive is not `name[:tag]`.
    #[error("invalid repo tag `{tag}`: {reason}")]
    InvalidRepoTag {
        /// The tag as given.
        tag: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A file given to `import` is no image we know.
    #[error("{}: {reason}; {help}", path.display())]
    NotAnImage {
        /// The file or directory.
        path: PathBuf,
        /// What we found instead.
        reason: String,
        /// What the user can do.
        help: &'static str,
    },

    /// The requested tag is not in the image source.
    #[error("{}: no image tagged `{tag}`; available: {}", path.display(), list(available))]
    TagNotFound {
        /// The image source.
        path: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The tags (ref names) that are there.
        available: Vec<String>,
    },

    /// The image source holds several images and no tag chose one.
    #[error("{}: holds {} images; pass a tag to choose one of: {}", path.display(), available.len(), list(available))]
    AmbiguousImage {
        /// The image source.
        path: PathBuf,
        /// The tags (ref names) that are there.
        available: Vec<String>,
    },

    /// The image source lacks a blob that its manifests reference.
    #[error("{}: blob {digest} ({what}) is referenced but not present; the image source is incomplete", path.display())]
    MissingBlob {
        /// The image source.
        path: PathBuf,
        /// The missing blob.
        digest: Digest,
        /// What references it.
        what: String,
    },

    /// An imported layer does not have the diff ID its config declares.
    #[error("{}: layer {index} has diff ID {found}, but the image config declares {expected}", path.display())]
    DiffIdMismatch {
        /// The image source.
        path: PathBuf,
        /// Position of the layer in the manifest.
        index: usize,
        /// The diff ID from the config.
        expected: Digest,
        /// The diff ID of the layer's content.
        found: Digest,
    },

    /// Something valid that this crate does not handle (zstd layers, images
    /// for other platforms, other digest algorithms).
    #[error("{}: {what} is not supported", path.display())]
    Unsupported {
        /// The image source or blob.
        path: PathBuf,
        /// What is not supported.
        what: String,
    },

    /// A layer whose media type is not a layer, or whose compression this
    /// crate cannot read.
    #[error("layer {digest} has media type {media_type}, which cannot be read here")]
    UnsupportedLayer {
        /// The layer blob.
        digest: Digest,
        /// Its media type (or compression).
        media_type: String,
    },

    /// The validator found problems; each one is listed.
    #[error("image {manifest} is invalid:\n  {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    InvalidImage {
        /// The manifest that was validated.
        manifest: Digest,
        /// Everything that is wrong, in the order found.
        problems: Vec<Problem>,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

impl Error {
    /// An I/O error on `path`. If the cause is a digest mismatch reported by a
    /// [`VerifyingReader`](crate::store::VerifyingReader), the structured
    /// [`Error::DigestMismatch`] is returned instead, so callers can match on it.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if let Some(mismatch) =
            source.get_ref().and_then(|inner| inner.downcast_ref::<crate::store::MismatchError>())
        {
            return Error::DigestMismatch {
                what: path.display().to_string(),
                expected: mismatch.expected.clone(),
                found: mismatch.found.clone(),
            };
        }
        Error::Io(forge_input::IoError::new(op, path, source))
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Error {
        Error::Json { what: what.into(), source }
    }
}
