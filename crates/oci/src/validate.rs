//! Re-reads an image from disk and checks everything that can be checked.
//!
//! In the spirit of go-containerregistry's `pkg/v1/validate`: nothing is
//! trusted that was computed while writing. The manifest, the config and
//! every layer are read back from the store; their digests and sizes are
//! recomputed and compared with the descriptors; every layer is decompressed
//! and parsed as a tar to recompute its diff ID, which must equal the
//! config's `rootfs.diff_ids` entry; the history must have one non-empty
//! entry per layer; media types must be those of a manifest, a config and
//! layers. All problems are collected, not just the first. An index
//! ([`index`]) is valid when each image it lists is, with the `platform`
//! its config says.
//!
//! This is public, not test-only, because the builder's tests and
//! `cargo xtask` run it on every image they produce.

use std::fmt;
use std::io;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use rayon::prelude::*;

use crate::compression::{Compression, UncompressedReader};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image;
use crate::platform::Platform;
use crate::store::BlobStore;

/// What was checked, for a valid image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationReport {
    /// The manifest validated.
    pub manifest_digest: Digest,
    /// Its config.
    pub config_digest: Digest,
    /// Every layer, in manifest order.
    pub layers: Vec<LayerReport>,
}

/// One layer as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerReport {
    /// Digest of the stored blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the stored blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Number of tar entries.
    pub entries: u64,
}

/// One thing wrong with an image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A blob or document could not be read or parsed.
    Unreadable {
        /// What.
        what: String,
        /// Why (the error, rendered).
        error: String,
    },
    /// Content does not hash to its digest.
    Digest {
        /// What.
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest of the content.
        found: Digest,
    },
    /// Content has another size than its descriptor.
    Size {
        /// What.
        what: String,
        /// The size in the descriptor.
        expected: u64,
        /// The size on disk.
        found: u64,
    },
    /// A layer's uncompressed content does not match the config's diff ID.
    DiffId {
        /// Position of the layer.
        index: usize,
        /// The config's diff ID.
        expected: Digest,
        /// The content's.
        found: Digest,
    },
    /// The manifest has a different number of layers than the config has diff IDs.
    LayerCount {
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// The history has a different number of non-empty entries than layers.
    History {
        /// Layers in the manifest.
        layers: usize,
        /// History entries without `empty_layer: true`.
        non_empty: usize,
    },
    /// An index entry's platform is not its image's.
    Platform {
        /// The image.
        manifest: Digest,
        /// The entry's platform.
        listed: String,
        /// The config's.
        found: String,
    },
    /// An unexpected media type.
    MediaType {
        /// What.
        what: String,
        /// The media type found.
        found: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable { what, error } => write!(f, "{what}: cannot be read: {error}"),
            Problem::Digest { what, expected, found } => {
                write!(f, "{what}: digest mismatch: expected {expected}, found {found}")
            }
            Problem::Size { what, expected, found } => {
                write!(f, "{what}: size mismatch: descriptor says {expected}, found {found}")
            }
            Problem::DiffId { index, expected, found } => {
                write!(f, "layer {index}: diff ID mismatch: config says {expected}, content is {found}")
            }
            Problem::LayerCount { layers, diff_ids } => {
                write!(f, "manifest has {layers} layers, config has {diff_ids} diff IDs")
            }
            Problem::History { layers, non_empty } => {
                write!(f, "history has {non_empty} entries that are not empty_layer, for {layers} layers")
            }
            Problem::MediaType { what, found } => write!(f, "{what}: unexpected media type {found}"),
            Problem::Platform { manifest, listed, found } => {
                write!(f, "index entry {manifest} says {listed}, and its config says {found}")
            }
        }
    }
}

/// Validates the index `digest` and every image it lists, each of which
/// must have the platform its entry says; the reports of the images, in
/// the index's order.
pub fn index(store: &BlobStore, digest: &Digest) -> Result<Vec<ValidationReport>> {
    let invalid = |problems| Error::InvalidImage { manifest: digest.clone(), problems };
    let index: ImageIndex = read_json(store, digest, "index").map_err(|p| invalid(vec![p]))?;
    if index.media_type().as_ref().is_some_and(|m| !image::is_index_media_type(m)) {
        let found = index.media_type().as_ref().map(ToString::to_string).unwrap_or_default();
        return Err(invalid(vec![Problem::MediaType { what: "index".into(), found }]));
    }
    let mut reports = Vec::new();
    for entry in index.manifests() {
        let manifest = Digest::from_descriptor(entry)?;
        reports.push(image(store, &manifest)?);
        let config: ImageConfiguration =
            read_json(store, &reports[reports.len() - 1].config_digest, "config")
                .map_err(|p| invalid(vec![p]))?;
        let found = Platform::of_config(&config);
        let listed = entry.platform().as_ref().map(Platform::of_oci);
        if listed.as_ref() != Some(&found) {
            let listed = listed.map_or("no platform".to_string(), |p| p.to_string());
            return Err(invalid(vec![Problem::Platform { manifest, listed, found: found.to_string() }]));
        }
    }
    Ok(reports)
}

/// Validates the image with manifest `manifest_digest`; see the module docs.
/// Returns [`Error::InvalidImage`] listing every problem found.
pub fn image(store: &BlobStore, manifest_digest: &Digest) -> Result<ValidationReport> {
    let mut problems = Vec::new();
    let invalid = |problems| Error::InvalidImage { manifest: manifest_digest.clone(), problems };

    let manifest: ImageManifest = match read_json(store, manifest_digest, "manifest") {
        Ok(m) => m,
        Err(p) => return Err(invalid(vec![p])),
    };
    if let Some(media_type) = manifest.media_type() {
        if !image::is_manifest_media_type(media_type) {
            problems.push(Problem::MediaType { what: "manifest".into(), found: media_type.to_string() });
        }
    }

    let config_desc = manifest.config();
    if !image::is_config_media_type(config_desc.media_type()) {
        problems
            .push(Problem::MediaType { what: "config".into(), found: config_desc.media_type().to_string() });
    }
    let config_digest = match Digest::from_descriptor(config_desc) {
        Ok(d) => d,
        Err(e) => {
            problems.push(Problem::Unreadable { what: "config descriptor".into(), error: e.to_string() });
            return Err(invalid(problems));
        }
    };
    if !check_size(store, &config_digest, config_desc, "config", &mut problems) {
        return Err(invalid(problems));
    }
    let config: ImageConfiguration = match read_json(store, &config_digest, "config") {
        Ok(c) => c,
        Err(p) => {
            problems.push(p);
            return Err(invalid(problems));
        }
    };

    let diff_ids: Vec<Option<Digest>> =
        config.rootfs().diff_ids().iter().map(|d| Digest::parse(d).ok()).collect();
    for (index, d) in config.rootfs().diff_ids().iter().enumerate() {
        if Digest::parse(d).is_err() {
            problems.push(Problem::Unreadable {
                what: format!("config rootfs.diff_ids[{index}]"),
                error: format!("`{d}` is not a sha256 digest"),
            });
        }
    }
    let layers = manifest.layers();
    if layers.len() != diff_ids.len() {
        problems.push(Problem::LayerCount { layers: layers.len(), diff_ids: diff_ids.len() });
    }
    if let Some(history) = config.history() {
        let non_empty = history.iter().filter(|h| h.empty_layer() != Some(true)).count();
        if non_empty != layers.len() {
            problems.push(Problem::History { layers: layers.len(), non_empty });
        }
    }

    let results: Vec<(Option<LayerReport>, Vec<Problem>)> = layers
        .par_iter()
        .enumerate()
        .map(|(index, desc)| check_layer(store, index, desc, diff_ids.get(index).cloned().flatten()))
        .collect();
    let mut reports = Vec::new();
    for (report, layer_problems) in results {
        reports.extend(report);
        problems.extend(layer_problems);
    }

    if problems.is_empty() {
        Ok(ValidationReport { manifest_digest: manifest_digest.clone(), config_digest, layers: reports })
    } else {
        Err(invalid(problems))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    store: &BlobStore,
    digest: &Digest,
    what: &str,
) -> Result<T, Problem> {
    let problem =
        |e: &dyn fmt::Display| Problem::Unreadable { what: format!("{what} {digest}"), error: e.to_string() };
    let bytes = match store.read_verified(digest) {
        Ok(b) => b,
        Err(Error::DigestMismatch { expected, found, .. }) => {
            return Err(Problem::Digest { what: format!("{what} blob"), expected, found })
        }
        Err(e) => return Err(problem(&e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| problem(&e))
}

/// Checks the stored size against the descriptor; false if the blob is not
/// there at all (so there is nothing more to check).
fn check_size(
    store: &BlobStore,
    digest: &Digest,
    desc: &Descriptor,
    what: &str,
    problems: &mut Vec<Problem>,
) -> bool {
    match store.size(digest) {
        Ok(found) => {
            if found != desc.size() {
                problems.push(Problem::Size {
                    what: format!("{what} {digest}"),
                    expected: desc.size(),
                    found,
                });
            }
            true
        }
        Err(e) => {
            problems.push(Problem::Unreadable { what: format!("{what} {digest}"), error: e.to_string() });
            false
        }
    }
}

fn check_layer(
    store: &BlobStore,
    index: usize,
    desc: &Descriptor,
    expected_diff_id: Option<Digest>,
) -> (Option<LayerReport>, Vec<Problem>) {
    let mut problems = Vec::new();
    let what = format!("layer {index}");
    let digest = match Digest::from_descriptor(desc) {
        Ok(d) => d,
        Err(e) => {
            problems.push(Problem::Unreadable { what, error: e.to_string() });
            return (None, problems);
        }
    };
    if !Compression::of_layer(desc.media_type()).is_some_and(Compression::is_readable) {
        problems.push(Problem::MediaType { what, found: desc.media_type().to_string() });
        return (None, problems);
    }
    if !check_size(store, &digest, desc, &what, &mut problems) {
        return (None, problems);
    }
    let reader = match store.open_uncompressed(desc) {
        Ok(r) => r,
        Err(e) => {
            problems.push(Problem::Unreadable { what, error: e.to_string() });
            return (None, problems);
        }
    };
    match read_layer(reader) {
        Ok((diff_id, uncompressed_size, entries, size)) => {
            if let Some(expected) = expected_diff_id {
                if expected != diff_id {
                    problems.push(Problem::DiffId { index, expected, found: diff_id.clone() });
                }
            }
            (Some(LayerReport { digest, diff_id, size, uncompressed_size, entries }), problems)
        }
        Err(e) => {
            match Error::io("reading", store.path(&digest), e) {
                Error::DigestMismatch { expected, found, .. } => {
                    problems.push(Problem::Digest { what, expected, found })
                }
                other => problems.push(Problem::Unreadable { what, error: forge_input::error_chain(&other) }),
            }
            (None, problems)
        }
    }
}

/// Parses a layer; returns its diff ID, uncompressed size, entry count and
/// compressed size. The whole blob is read, so that its digest is verified.
fn read_layer(reader: UncompressedReader) -> io::Result<(Digest, u64, u64, u64)> {
    let mut archive = tar::Archive::new(reader);
    let mut entries = 0u64;
    for entry in archive.entries()? {
        entry?;
        entries += 1;
    }
    let found = archive.into_inner().finish()?;
    Ok((found.diff_id, found.size, entries, found.blob_size))
}
