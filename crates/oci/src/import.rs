//! Base images from OCI layouts, oci-archives and docker-archives.
//!
//! [`import`] looks at the *content* of its source, never at its name:
//!
//! - a directory with an `oci-layout` file is an **OCI image layout**
//!   (`skopeo copy ... oci:DIR:TAG`); the blobs the chosen image needs are
//!   copied into the store;
//! - a file is read as a tar (gzip-compressed or not; zstd is refused with
//!   a hint). If it holds `oci-layout` it is an **oci-archive** (also what
//!   our own [`export_archive`](crate::archive::export_archive) writes, and
//!   what Docker 25+ `docker save` writes); otherwise, if it holds
//!   `manifest.json`, it is a **docker-archive** (`docker save` output of
//!   older Dockers, with `<id>/layer.tar` members and symlinks between them).
//!
//! Archives are read once, as a stream: every regular member is written to
//! the store while it is hashed (constant memory), and members named
//! `blobs/sha256/<hex>` are kept only if their content has that digest.
//! Only the small JSON documents (`oci-layout`, `index.json`,
//! `manifest.json`) are held in memory, because they may come after the
//! blobs they describe. Every blob lands through [`BlobWriter`](crate::BlobWriter), so nothing
//! half-written ever has a blob's name; an import that fails half-way may
//! leave complete, verified blobs behind, which are harmless (content
//! addressed) and reused by the next attempt.
//!
//! **Choosing the image.** An index with one manifest needs no tag. With
//! several, `tag` selects by `org.opencontainers.image.ref.name` (or the
//! full `io.containerd.image.name`); for docker-archives it matches a
//! `RepoTags` entry or its tag part. A nested index (a multi-platform image)
//! resolves to its linux/amd64 manifest.
//!
//! **Docker archives become OCI images.** Layers are stored as they are in
//! the archive, not recompressed: an uncompressed `layer.tar` becomes an
//! `application/vnd.oci.image.layer.v1.tar` layer whose digest is also its
//! diff ID, a gzip one an `...tar+gzip` layer whose diff ID is computed by
//! decompressing it from the store. Each diff ID is checked against the
//! config's `rootfs.diff_ids`. The config blob is kept byte for byte (its
//! digest is Docker's image ID); the manifest is new.
//!
//! Digests of OCI layers are verified; their diff IDs are not recomputed on
//! import (run [`crate::validate::image`] for that).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifestBuilder, MediaType, Os,
};

use crate::archive::{DockerManifestEntry, RepoTag, ANNOTATION_CONTAINERD_NAME};
use crate::compression::{read_up_to, Compression, Decoder};
use crate::digest::{descriptor, Digest};
use crate::error::{Error, Result};
use crate::image::{self, Image};
use crate::store::{self, BlobStore, MAX_JSON_SIZE};

/// Imports the image in `source` into `into`; see the module docs. The
/// image is not given a ref: call [`BlobStore::set_ref`] for that.
pub fn import(source: &Path, tag: Option<&str>, into: &BlobStore) -> Result<Image> {
    let meta = fs::metadata(source).map_err(|e| Error::io("reading", source, e))?;
    if meta.is_dir() {
        if source.join("oci-layout").is_file() {
            return import_layout_dir(source, tag, into);
        }
        return Err(Error::NotAnImage {
            path: source.to_path_buf(),
            reason: "this directory has no `oci-layout` file".into(),
            help: "pass an OCI image layout directory (as `skopeo copy ... oci:DIR:TAG` writes) or an image archive file",
        });
    }
    import_archive(source, tag, into)
}

fn import_layout_dir(source: &Path, tag: Option<&str>, into: &BlobStore) -> Result<Image> {
    let layout = source.join("oci-layout");
    let bytes = fs::read(&layout).map_err(|e| Error::io("reading", &layout, e))?;
    store::check_layout_file(&layout, &bytes)?;
    let index_path = source.join("index.json");
    let bytes = read_small_file(&index_path)?;
    let index: ImageIndex =
        serde_json::from_slice(&bytes).map_err(|e| Error::json(index_path.display().to_string(), e))?;
    let mut fetch = |digest: &Digest, what: &str| -> Result<()> {
        if into.contains(digest) {
            return Ok(());
        }
        let path = source.join("blobs").join("sha256").join(digest.hex());
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob {
                    path: source.to_path_buf(),
                    digest: digest.clone(),
                    what: what.to_owned(),
                })
            }
            Err(e) => return Err(Error::io("opening", path, e)),
        };
        let mut writer = into.writer()?;
        io::copy(&mut file, &mut writer).map_err(|e| Error::io("copying", &path, e))?;
        writer.finish_verified(digest).map(drop).map_err(|e| name_mismatch(e, path.display().to_string()))
    };
    Layout { source, into, fetch: &mut fetch }.resolve(&index, tag)
}

/// Replaces the `what` of a digest mismatch with the name of the source.
fn name_mismatch(err: Error, what: String) -> Error {
    match err {
        Error::DigestMismatch { expected, found, .. } => Error::DigestMismatch { what, expected, found },
        other => other,
    }
}

fn read_small_file(path: &Path) -> Result<Vec<u8>> {
    let size = fs::metadata(path).map_err(|e| Error::io("reading", path, e))?.len();
    if size > MAX_JSON_SIZE {
        return Err(Error::TooLarge { what: path.display().to_string(), size, limit: MAX_JSON_SIZE });
    }
    fs::read(path).map_err(|e| Error::io("reading", path, e))
}

/// What one pass over an archive found.
#[derive(Default)]
struct Scan {
    oci_layout: Option<Vec<u8>>,
    index_json: Option<Vec<u8>>,
    manifest_json: Option<Vec<u8>>,
    /// Member path → the blob its content was stored as.
    files: HashMap<String, (Digest, u64)>,
    /// Member path → the member it links to (symlinks resolved relative to
    /// their directory).
    links: HashMap<String, String>,
}

fn import_archive(source: &Path, tag: Option<&str>, into: &BlobStore) -> Result<Image> {
    let mut file = File::open(source).map_err(|e| Error::io("opening", source, e))?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(|e| Error::io("reading", source, e))?;
    file.rewind().map_err(|e| Error::io("reading", source, e))?;
    let compression = Compression::sniff(&magic[..n]);
    let reader = BufReader::with_capacity(256 << 10, file);
    // zstd layers are read, a zstd-compressed archive is not (no tool
    // writes one).
    let decoder = match compression {
        Compression::Zstd => None,
        _ => Decoder::new(reader, compression),
    };
    let Some(mut stream) = decoder else {
        return Err(Error::Unsupported {
            path: source.to_path_buf(),
            what: format!("a {}-compressed archive", compression.name()),
        });
    };

    let mut first = [0u8; crate::tarball::BLOCK];
    let n = read_up_to(&mut stream, &mut first).map_err(|e| Error::io("reading", source, e))?;
    if n < first.len() || &first[257..262] != b"ustar" {
        return Err(Error::NotAnImage {
            path: source.to_path_buf(),
            reason: "this is not a tar archive (no ustar header at the start)".into(),
            help:
                "pass a `docker save` or oci-archive tar (gzip-compressed or not), or an OCI layout directory",
        });
    }
    let stream = io::Cursor::new(first).chain(stream);
    let scan = scan_archive(source, stream, into)?;

    if let Some(layout) = &scan.oci_layout {
        store::check_layout_file(&source.join("oci-layout"), layout)?;
        let Some(index) = &scan.index_json else {
            return Err(Error::NotAnImage {
                path: source.to_path_buf(),
                reason: "the archive has `oci-layout` but no `index.json`".into(),
                help: "the archive is incomplete; export it again",
            });
        };
        let index: ImageIndex = serde_json::from_slice(index)
            .map_err(|e| Error::json(format!("{}: index.json", source.display()), e))?;
        let mut fetch = |digest: &Digest, what: &str| -> Result<()> {
            if into.contains(digest) {
                Ok(())
            } else {
                Err(Error::MissingBlob {
                    path: source.to_path_buf(),
                    digest: digest.clone(),
                    what: what.to_owned(),
                })
            }
        };
        return Layout { source, into, fetch: &mut fetch }.resolve(&index, tag);
    }
    if scan.manifest_json.is_some() {
        return convert_docker(source, &scan, tag, into);
    }
    Err(Error::NotAnImage {
        path: source.to_path_buf(),
        reason: "the archive has neither `oci-layout` nor `manifest.json`".into(),
        help: "pass the output of `docker save` or `skopeo copy ... oci-archive:FILE`",
    })
}

fn scan_archive(source: &Path, stream: impl Read, into: &BlobStore) -> Result<Scan> {
    let member = |name: &str| format!("{}: {name}", source.display());
    let read_error = |e| Error::io("reading", source, e);
    let mut scan = Scan::default();
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let Some(target) = entry.link_name_bytes() else { continue };
            let target = String::from_utf8_lossy(&target).into_owned();
            let resolved = if kind.is_symlink() && !target.starts_with('/') {
                normalize(&format!("{}/{target}", name.rsplit_once('/').map_or("", |(dir, _)| dir)))
            } else {
                normalize(&target)
            };
            scan.links.insert(name, resolved);
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        let size = entry.header().size().map_err(read_error)?;
        let json_slot = match name.as_str() {
            "oci-layout" => Some(&mut scan.oci_layout),
            "index.json" => Some(&mut scan.index_json),
            "manifest.json" => Some(&mut scan.manifest_json),
            _ => None,
        };
        if let Some(slot) = json_slot {
            if size > MAX_JSON_SIZE {
                return Err(Error::TooLarge { what: member(&name), size, limit: MAX_JSON_SIZE });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes).map_err(|e| Error::io("reading", member(&name), e))?;
            *slot = Some(bytes);
            continue;
        }
        if let Some(rest) = name.strip_prefix("blobs/") {
            // `blobs/<algorithm>/<encoded>`: only sha256 is ours; other
            // algorithms are skipped and reported if an image needs them.
            let Some(hex) = rest.strip_prefix("sha256/") else { continue };
            let Ok(digest) = Digest::from_hex(hex) else { continue };
            if !into.contains(&digest) {
                let mut writer = into.writer()?;
                io::copy(&mut entry, &mut writer).map_err(|e| Error::io("reading", member(&name), e))?;
                writer.finish_verified(&digest).map_err(|e| name_mismatch(e, member(&name)))?;
            }
            scan.files.insert(name, (digest, size));
            continue;
        }
        // Legacy `docker save` metadata that we do not use.
        let base = name.rsplit_once('/').map_or(name.as_str(), |(_, base)| base);
        if name.contains('/') && (base == "json" || base == "VERSION") || name == "repositories" {
            continue;
        }
        let mut writer = into.writer()?;
        io::copy(&mut entry, &mut writer).map_err(|e| Error::io("reading", member(&name), e))?;
        let expected = name.strip_suffix(".json").and_then(|hex| Digest::from_hex(hex).ok());
        let stored = match &expected {
            // `<hex>.json` is a config named by its digest: hold it to that.
            Some(expected) => writer
                .finish_verified(expected)
                .map(|size| (expected.clone(), size))
                .map_err(|e| name_mismatch(e, member(&name)))?,
            None => writer.finish()?,
        };
        scan.files.insert(name, stored);
    }
    Ok(scan)
}

/// `./a//b/../c` → `a/c`; leading `/` dropped, `..` above the top dropped.
fn normalize(path: &str) -> String {
    crate::files::clean(&format!("/{path}")).trim_start_matches('/').to_owned()
}

/// An OCI layout being imported: where it is, the store its image goes
/// into, and how one of its blobs gets there (`fetch` copies or checks one).
struct Layout<'a> {
    source: &'a Path,
    into: &'a BlobStore,
    fetch: &'a mut dyn FnMut(&Digest, &str) -> Result<()>,
}

impl Layout<'_> {
    /// Picks the image in the layout's index and makes sure all its blobs
    /// are in the store.
    fn resolve(&mut self, index: &ImageIndex, tag: Option<&str>) -> Result<Image> {
        let source = self.source;
        let available: Vec<String> =
            index.manifests().iter().filter_map(|d| store::ref_name(d).map(str::to_owned)).collect();
        let desc = match tag {
            Some(tag) => index
                .manifests()
                .iter()
                .find(|d| {
                    store::ref_name(d) == Some(tag)
                        || d.annotations()
                            .as_ref()
                            .and_then(|a| a.get(ANNOTATION_CONTAINERD_NAME))
                            .map(String::as_str)
                            == Some(tag)
                })
                .ok_or_else(|| Error::TagNotFound {
                    path: source.to_path_buf(),
                    tag: tag.to_owned(),
                    available: available.clone(),
                })?,
            // The SBOM and provenance our archives list beside the image are not candidates.
            None => match index
                .manifests()
                .iter()
                .filter(|d| !crate::referrers::is_artifact_entry(d))
                .collect::<Vec<_>>()
                .as_slice()
            {
                [only] => *only,
                [] => {
                    return Err(Error::NotAnImage {
                        path: source.to_path_buf(),
                        reason: "its index.json lists no images".into(),
                        help: "copy an image into it first",
                    })
                }
                // Platform manifests listed directly in `index.json`.
                many if available.is_empty() && many.iter().any(|d| d.platform().is_some()) => {
                    return self.follow(pick_platform(source, index)?);
                }
                _ => return Err(Error::AmbiguousImage { path: source.to_path_buf(), available }),
            },
        }
        .clone();
        self.follow(desc)
    }

    /// Follows `desc` through nested indexes (multi-platform images) to a manifest.
    fn follow(&mut self, mut desc: Descriptor) -> Result<Image> {
        let source = self.source;
        for _ in 0..8 {
            let digest = Digest::from_descriptor(&desc).map_err(|_| Error::Unsupported {
                path: source.to_path_buf(),
                what: format!("digest `{}` (only sha256 is supported)", desc.digest()),
            })?;
            self.blob(&digest, &desc, "manifest")?;
            if !image::is_index_media_type(desc.media_type()) {
                return self.finish(&digest);
            }
            let bytes = self.into.read_verified(&digest)?;
            let nested: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| Error::json(format!("{}: index {digest}", source.display()), e))?;
            desc = pick_platform(source, &nested)?;
        }
        Err(Error::InvalidDocument {
            what: source.display().to_string(),
            reason: "indexes nested more than 8 deep".into(),
        })
    }

    /// Brings the config and layers of the manifest `manifest_digest` into
    /// the store and loads the image.
    fn finish(&mut self, manifest_digest: &Digest) -> Result<Image> {
        let bytes = self.into.read_verified(manifest_digest)?;
        let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(format!("{}: manifest {manifest_digest}", self.source.display()), e))?;
        let config = manifest.config();
        self.blob(&Digest::from_descriptor(config)?, config, "config")?;
        for (i, layer) in manifest.layers().iter().enumerate() {
            self.blob(&Digest::from_descriptor(layer)?, layer, &format!("layer {i}"))?;
        }
        Image::load(self.into, manifest_digest)
    }

    /// Brings blob `digest` (of `desc`, `what` in messages) into the store
    /// and checks its size against the descriptor.
    fn blob(&mut self, digest: &Digest, desc: &Descriptor, what: &str) -> Result<()> {
        (self.fetch)(digest, what)?;
        check_stored_size(self.into, digest, desc, self.source)
    }
}

fn pick_platform(source: &Path, index: &ImageIndex) -> Result<Descriptor> {
    let found = index.manifests().iter().find(|d| {
        d.platform().as_ref().is_some_and(|p| *p.architecture() == Arch::Amd64 && *p.os() == Os::Linux)
    });
    match found {
        Some(d) => Ok(d.clone()),
        None => {
            let platforms: Vec<String> = index
                .manifests()
                .iter()
                .map(|d| {
                    d.platform()
                        .as_ref()
                        .map_or("unknown".into(), |p| format!("{}/{}", p.os(), p.architecture()))
                })
                .collect();
            Err(Error::Unsupported {
                path: source.to_path_buf(),
                what: format!("an index without a linux/amd64 image (it has: {})", platforms.join(", ")),
            })
        }
    }
}

fn check_stored_size(into: &BlobStore, digest: &Digest, desc: &Descriptor, source: &Path) -> Result<()> {
    let found = into.size(digest)?;
    if found != desc.size() {
        return Err(Error::SizeMismatch {
            what: format!("{}: blob {digest}", source.display()),
            expected: desc.size(),
            found,
        });
    }
    Ok(())
}

/// A docker-archive becomes an OCI image: the entry `tag` picks, its config
/// kept byte for byte, its layers checked against the config's diff IDs.
fn convert_docker(source: &Path, scan: &Scan, tag: Option<&str>, into: &BlobStore) -> Result<Image> {
    let what = |name: &str| format!("{}: {name}", source.display());
    let bytes = scan.manifest_json.as_deref().unwrap_or_default();
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(bytes).map_err(|e| Error::json(what("manifest.json"), e))?;
    let entry = pick_docker_entry(source, &entries, tag)?;

    let (config_digest, config_size) = lookup(source, scan, &entry.config)?;
    let config_bytes = into.read_verified(&config_digest)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|e| Error::json(what(&entry.config), e))?;
    let layers = docker_layers(source, scan, entry, &config, into)?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config_digest, config_size))
        .layers(layers)
        .build()
        .map_err(|source| Error::Spec { what: "image manifest", source })?;
    let (manifest_digest, _) = into.put_json(&manifest, "image manifest")?;
    Image::load(into, &manifest_digest)
}

/// The `manifest.json` entry with `tag` among its `RepoTags` (the whole
/// reference, its normalised form, or the tag part), or the only one.
fn pick_docker_entry<'a>(
    source: &Path,
    entries: &'a [DockerManifestEntry],
    tag: Option<&str>,
) -> Result<&'a DockerManifestEntry> {
    let tags_of = |e: &DockerManifestEntry| e.repo_tags.clone().unwrap_or_default();
    let available: Vec<String> = entries.iter().flat_map(tags_of).collect();
    let Some(tag) = tag else {
        return match entries {
            [only] => Ok(only),
            [] => Err(Error::NotAnImage {
                path: source.to_path_buf(),
                reason: "its manifest.json lists no images".into(),
                help: "save an image into it with `docker save`",
            }),
            _ => Err(Error::AmbiguousImage { path: source.to_path_buf(), available }),
        };
    };
    let wanted = RepoTag::parse(tag).ok().map(|t| t.full());
    entries
        .iter()
        .find(|e| {
            tags_of(e).iter().any(|t| {
                t == tag
                    || Some(t) == wanted.as_ref()
                    || RepoTag::parse(t).is_ok_and(|parsed| parsed.tag == tag)
            })
        })
        .ok_or_else(|| Error::TagNotFound { path: source.to_path_buf(), tag: tag.to_owned(), available })
}

/// The OCI descriptors of a docker-archive entry's layers, each checked
/// against its diff ID in `config`.
fn docker_layers(
    source: &Path,
    scan: &Scan,
    entry: &DockerManifestEntry,
    config: &ImageConfiguration,
    into: &BlobStore,
) -> Result<Vec<Descriptor>> {
    let what = |name: &str| format!("{}: {name}", source.display());
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(Error::InvalidDocument {
            what: what("manifest.json"),
            reason: format!(
                "lists {} layers, but its config {} has {} diff IDs",
                entry.layers.len(),
                entry.config,
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::new();
    for (index, (path, expected)) in entry.layers.iter().zip(diff_ids).enumerate() {
        let expected = Digest::parse(expected)?;
        let (digest, size) = lookup(source, scan, path)?;
        let (media_type, diff_id) = docker_layer(into, &digest)?;
        if diff_id != expected {
            return Err(Error::DiffIdMismatch {
                path: PathBuf::from(what(path)),
                index,
                expected,
                found: diff_id,
            });
        }
        layers.push(descriptor(media_type, &digest, size));
    }
    Ok(layers)
}

/// The blob a member of the archive was stored as, following links.
fn lookup(source: &Path, scan: &Scan, path: &str) -> Result<(Digest, u64)> {
    let mut name = normalize(path);
    for _ in 0..16 {
        if let Some(found) = scan.files.get(&name) {
            return Ok(found.clone());
        }
        match scan.links.get(&name) {
            Some(target) => name = target.clone(),
            None => break,
        }
    }
    Err(Error::NotAnImage {
        path: source.to_path_buf(),
        reason: format!("manifest.json references `{path}`, which is not a file in the archive"),
        help: "the archive is incomplete or corrupt; save the image again",
    })
}

/// The media type and diff ID of a stored docker-archive layer, whose
/// compression is told by its content (a digest mismatch of the blob is
/// reported on the way).
fn docker_layer(into: &BlobStore, digest: &Digest) -> Result<(MediaType, Digest)> {
    let compression = into.sniff_compression(digest)?;
    match compression {
        Compression::None => Ok((MediaType::ImageLayer, digest.clone())),
        Compression::Gzip | Compression::Zstd => {
            let path = into.path(digest);
            let found = into
                .open_uncompressed_as(digest, compression)?
                .finish()
                .map_err(|e| Error::io("decompressing", &path, e))?;
            Ok((compression.layer_media_type(), found.diff_id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        for (path, normal) in [
            ("./a//b/../c", "a/c"),
            ("/abc/layer.tar", "abc/layer.tar"),
            ("abc/../../x", "x"),
            ("manifest.json", "manifest.json"),
        ] {
            assert_eq!(normalize(path), normal, "{path}");
        }
    }
}
