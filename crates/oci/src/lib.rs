//! OCI images without a daemon.
//!
//! Everything a build needs to turn files into an image that `skopeo`,
//! `podman`, `umoci` and `docker load` accept, with no daemon and no
//! root privileges:
//!
//! - [`digest`]: sha256 content addresses, the only algorithm we write.
//! - [`store`]: a content-addressed blob store that *is* an OCI image
//!   layout directory (`oci-layout`, `index.json`, `blobs/sha256/`), with
//!   atomic writes, verified reads, refs and a small keyed cache.
//! - [`tree`]: the one description of a layer's files ([`Tree`]: sorted,
//!   parents implied, whiteouts, links) and the one tree-to-layer writer.
//! - [`entries`]: the one reader of tar entries ([`LayerReader`]: kinds,
//!   names, links, whiteouts, sparse files), and archives read into trees
//!   ([`read_tar`]).
//! - [`layer`]: a streaming, reproducible layer builder (tar, compression
//!   and both digests in one pass, constant memory).
//! - [`cache`]: the layer cache seam ([`LayerCache`], implemented by the
//!   store) and its portable content keys ([`LayerKey`]).
//! - [`compression`]: the compression of layers, chosen in one place, and
//!   the one way to read a stored layer back
//!   ([`BlobStore::open_uncompressed`]).
//! - [`image`]: image configs and manifests as small pure operations.
//! - [`json`]: canonical JSON, so that the same inputs give the same digests.
//! - [`archive`]: one tar file of one image or many that is both an
//!   `oci-archive` and a `docker save` archive, every blob once.
//! - [`mod@import`]: base images from OCI layouts, oci-archives and
//!   docker-archives, recognised by content, every digest verified.
//! - [`validate`]: re-reads an image from disk and recomputes every digest,
//!   size and diff ID, like go-containerregistry's `validate.Image`.
//!
//! Reproducibility is the rule throughout: tar headers carry only what the
//! caller chose (mtime from `SOURCE_DATE_EPOCH`, owners, modes), gzip
//! headers carry no name or time, and JSON objects are written with sorted
//! keys.

#![deny(missing_docs)]

pub mod archive;
pub mod cache;
pub mod compression;
pub mod digest;
pub mod entries;
mod error;
mod facts;
pub mod files;
pub mod image;
pub mod import;
pub mod index;
mod index_file;
pub mod json;
pub mod layer;
pub mod platform;
pub mod referrers;
pub mod store;
mod tarball;
pub mod temp;
pub mod tree;
pub mod validate;

pub use archive::{
    export_archive, export_archive_with, update_archive, write_archive, ArchiveImage, RefNames, Written,
};
pub use cache::{FileDigests, KeyInputs, LayerCache, LayerKey};
pub use compression::{Compression, LayerContent, UncompressedReader};
pub use digest::{descriptor, Digest, DigestError, HashingReader, HashingWriter};
pub use entries::{escape_name, read_tar, LayerReader, TarError};
pub use error::{Error, Result};
pub use files::{ImageFiles, ImageLayers, Stack};
pub use image::{write_image, Image, RuntimeConfig};
pub use import::import;
pub use index::{set_platform_ref, write_index, Index, Target};
pub use json::canonical_json;
pub use layer::{Entry, Layer, LayerBuilder, LayerOptions};
pub use platform::Platform;
pub use store::{gc, BlobStore, BlobWriter, Collected, VerifyingReader};
pub use tree::{DeviceKind, FileSource, Node, NodeKind, Spool, Tree};
pub use validate::ValidationReport;

/// The OCI image-spec types this crate speaks, re-exported so that callers
/// use the same version.
pub use oci_spec;
