//! Archive files that both OCI tools and `docker load` accept: one image
//! (a plugin's tarball) or many (`build-all --archive FILE`), one writer.
//!
//! [`write_archive`] writes a single tar that is at once
//!
//! - an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`),
//!   which is what `skopeo copy oci-archive:FILE:REF ...` and `podman load`
//!   read. `index.json` lists each image (its manifest, or its index when
//!   built for several platforms) annotated with `io.containerd.image.name`
//!   (the full name) and `org.opencontainers.image.ref.name`: the tag of
//!   its first name in a one-image tarball ([`RefNames::Tag`], as it has
//!   always been: `oci-archive:FILE:TAG`), or, in an archive of many, one
//!   entry per name with the full reference `registry/repo:tag`
//!   ([`RefNames::Reference`]), unique in the archive. Each image's
//!   referrers (SBOM, provenance) follow it without a ref name;
//! - a `docker save` archive: `manifest.json` (`Config`, `RepoTags`,
//!   `Layers`, with paths into the same `blobs/sha256/`, one entry per
//!   image) and `repositories`, which Docker 20.10's `docker load` needs (it
//!   cannot read a bare OCI archive). Docker decompresses the gzip layers on
//!   load and checks their diff IDs against the config, so the blobs serve
//!   both readers. For an index, `manifest.json` names the image for the
//!   machine's own platform, else the index's first (Docker loads one
//!   image per name).
//!
//! Every blob is in the archive once, however many images share it (the
//! base image's layers in an archive of fifty plugins).
//!
//! The archive is reproducible: images are in the order of their main
//! names and entries sorted by name, whatever order the caller gives;
//! every mtime is 0, owners are 0:0 with empty names, files are 0644 and
//! directories 0755, and the JSON is canonical. Blobs are streamed from the
//! store (constant memory) and verified against their digests on the way.
//! The output is written to a temp file next to `out` and renamed into
//! place, so `out` is either the old file or the complete new one.
//!
//! [`update_archive`] leaves a file alone that is already what it would
//! write: the store's cache records what was written to each output (the
//! digests, names and referrers, which decide every byte) with the file's
//! stat fingerprint; a file deleted, modified or replaced since has another
//! fingerprint and is written again.
//!
//! A blob is verified the first time this process copies it into an
//! archive; later archives of the same run (a build-all writes the base
//! image's layers into every plugin's tarball) copy it in the kernel
//! (`copy_file_range`, through `io::copy` between files), its size checked,
//! as long as the file is the one verified: the same inode, size, mtime and
//! ctime (a blob changed since is read through the verifying reader again).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use oci_spec::image::{MediaType, ANNOTATION_REF_NAME};
use serde::{Deserialize, Serialize};

use crate::digest::{descriptor, Digest};
use crate::error::{Error, Result};
use crate::index::Target;
use crate::json::canonical_json;
use crate::platform::Platform;
use crate::store::{self, BlobStore};
use crate::tarball::{self, Copied, Header, Kind};

/// The annotation containerd (and `podman load`) read the full image name from.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// One entry of Docker's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerManifestEntry {
    /// Path of the config JSON inside the archive.
    pub config: String,
    /// `name:tag` references; `null` in `docker save` output of untagged images.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars inside the archive, bottom first.
    pub layers: Vec<String>,
}

/// A repo tag split into name and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoTag {
    /// Everything before the tag: `registry:5000/team/app`.
    pub name: String,
    /// The tag, `latest` if none was given.
    pub tag: String,
}

impl RepoTag {
    /// Splits `name[:tag]` by [`forge_reference::split_tag`]'s rule. The name
    /// is kept as written (not normalised as a registry `Reference` is),
    /// because `docker save` writes repo tags as the user named them. The
    /// full grammar is checked upstream (forge-manifest's `ImageRef`); this
    /// refuses only what would make a broken archive.
    pub fn parse(text: &str) -> Result<RepoTag> {
        let invalid = |reason| Error::InvalidRepoTag { tag: text.to_owned(), reason };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it contains white space or control characters"));
        }
        if text.contains('@') {
            return Err(invalid("a digest (`@sha256:...`) cannot be a tag"));
        }
        let (name, tag) = forge_reference::split_tag(text);
        let tag = tag.unwrap_or("latest");
        if name.is_empty() || name.ends_with('/') {
            return Err(invalid("the name is empty"));
        }
        if tag.is_empty() {
            return Err(invalid("the tag after `:` is empty"));
        }
        Ok(RepoTag { name: name.to_owned(), tag: tag.to_owned() })
    }

    /// `name:tag`.
    pub fn full(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

/// How `index.json` names the images of an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefNames {
    /// One entry per image, `org.opencontainers.image.ref.name` the tag of
    /// its first repo tag: a tarball of one image, `oci-archive:FILE:TAG`.
    Tag,
    /// One entry per repo tag, named by the full reference
    /// (`registry/repo:tag`), which is unique in the archive: an archive of
    /// many images, `oci-archive:FILE:registry/repo:tag`.
    Reference,
}

impl RefNames {
    fn word(self) -> &'static str {
        match self {
            RefNames::Tag => "tag",
            RefNames::Reference => "reference",
        }
    }
}

/// One image of an archive and what names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    /// The image manifest, or the index of the images of several
    /// platforms, in the store.
    pub manifest: Digest,
    /// Its names, `name[:tag]`, the main one first.
    pub repo_tags: Vec<String>,
    /// Artifact manifests in the store about its images (SBOMs,
    /// provenance; see [`crate::referrers`]), listed in `index.json` after
    /// it, without a ref name, as an image layout lists referrers.
    pub referrers: Vec<oci_spec::image::Descriptor>,
}

/// What [`update_archive`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The file was written.
    Wrote,
    /// The file there is the one this archive would be, byte for byte; it
    /// was left alone.
    Unchanged,
}

enum Content {
    Dir,
    Bytes(Vec<u8>),
    Blob(Digest),
}

/// Writes the image (or the index of images) `manifest_digest` of
/// `store` to `out` as a combined oci-archive and docker-archive; see the
/// module docs. For an index, `index.json` points at the index, and
/// `manifest.json` (Docker loads one image per name) at the image for
/// the machine's own platform, else the index's first.
pub fn export_archive(
    store: &BlobStore,
    manifest_digest: &Digest,
    repo_tags: &[String],
    out: &Path,
) -> Result<()> {
    export_archive_with(store, manifest_digest, repo_tags, &[], out)
}

/// [`export_archive`], with `referrers` (artifact manifests in `store`
/// about its images: SBOMs, provenance; see [`crate::referrers`]) and
/// their blobs in the archive, listed in `index.json` after the image
/// without a ref name, as an image layout lists referrers. Docker's
/// `manifest.json` names the image only, so `docker load` loads just it.
pub fn export_archive_with(
    store: &BlobStore,
    manifest_digest: &Digest,
    repo_tags: &[String],
    referrers: &[oci_spec::image::Descriptor],
    out: &Path,
) -> Result<()> {
    let image = ArchiveImage {
        manifest: manifest_digest.clone(),
        repo_tags: repo_tags.to_vec(),
        referrers: referrers.to_vec(),
    };
    write_archive(store, std::slice::from_ref(&image), RefNames::Tag, out)
}

/// [`write_archive`], unless the file at `out` is the one it would write:
/// the store's cache records, per output file, what was written there
/// (the images, their names and referrers, how they are named) and the
/// file's stat fingerprint (inode, size, mtime, ctime) after the rename.
/// When both match, nothing is written: the same digests and names give
/// the same bytes, and a file deleted, replaced or modified since has
/// another fingerprint, so it is written again.
pub fn update_archive(
    store: &BlobStore,
    images: &[ArchiveImage],
    names: RefNames,
    out: &Path,
) -> Result<Written> {
    let key = format!("archive:{}", absolute(out).display());
    let what = summary(images, names);
    let record = |path: &Path| fingerprint(path).map(|(_, stamp)| format!("{what}stat {stamp:?}\n"));
    if record(out).is_some_and(|r| store.cache_get(&key).as_deref() == Some(r.as_str())) {
        return Ok(Written::Unchanged);
    }
    write_archive(store, images, names, out)?;
    if let Some(r) = record(out) {
        store.cache_put(&key, &r)?;
    }
    Ok(Written::Wrote)
}

/// The version of what [`write_archive`] makes of the same inputs: raise
/// it when the layout of archives changes, so no old file is kept.
const LAYOUT_VERSION: u32 = 1;

/// The text that decides an archive's bytes, besides the content the
/// digests name.
fn summary(images: &[ArchiveImage], names: RefNames) -> String {
    let mut text = format!("plugin-forge archive v{LAYOUT_VERSION} {}\n", names.word());
    for image in images {
        text.push_str(&image.manifest.to_string());
        for tag in &image.repo_tags {
            text.push(' ');
            text.push_str(tag);
        }
        for referrer in &image.referrers {
            text.push_str(" +");
            text.push_str(referrer.digest().as_ref());
        }
        text.push('\n');
    }
    text
}

/// `path` made absolute against the working directory (not resolved:
/// the cache key is the name the caller writes to).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// One image of an archive as it is written: what its manifest digest
/// points at and its names, checked.
struct Named<'a> {
    image: &'a ArchiveImage,
    target: Target,
    tags: Vec<RepoTag>,
}

/// Writes `images` of `store` to `out` as one combined oci-archive and
/// docker-archive (see the module docs), every blob once, `index.json`
/// naming them as `names` says, in the order of their main names; a name
/// given to two entries is refused. For an index, `index.json` points at
/// the index, and `manifest.json` (Docker loads one image per name) at
/// the image for the machine's own platform, else the index's first.
pub fn write_archive(store: &BlobStore, images: &[ArchiveImage], names: RefNames, out: &Path) -> Result<()> {
    let mut named = images
        .iter()
        .map(|image| {
            let target = Target::of_digest(store, &image.manifest)?;
            let tags = image.repo_tags.iter().map(|t| RepoTag::parse(t)).collect::<Result<Vec<_>>>()?;
            Ok(Named { image, target, tags })
        })
        .collect::<Result<Vec<_>>>()?;
    named.sort_by_cached_key(|n| (n.tags.first().map(RepoTag::full), n.image.manifest.clone()));

    let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let mut entries: BTreeMap<String, Content> = BTreeMap::new();
    entries.insert("blobs/".into(), Content::Dir);
    entries.insert("blobs/sha256/".into(), Content::Dir);
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    for Named { image, target, .. } in &named {
        blobs.insert(image.manifest.clone());
        for image in target.images() {
            blobs.insert(image.manifest_digest.clone());
            blobs.insert(image.config_digest()?);
            for desc in image.manifest.layers() {
                let digest = Digest::from_descriptor(desc)?;
                let found = store.size(&digest)?;
                if found != desc.size() {
                    return Err(Error::SizeMismatch {
                        what: format!("layer {digest}"),
                        expected: desc.size(),
                        found,
                    });
                }
                blobs.insert(digest);
            }
        }
        for referrer in &image.referrers {
            let artifact = crate::referrers::read_artifact(store, referrer)?;
            blobs.insert(Digest::from_descriptor(referrer)?);
            blobs.insert(Digest::from_descriptor(&artifact.config)?);
            blobs.insert(Digest::from_descriptor(&artifact.document)?);
        }
    }
    for digest in blobs {
        entries.insert(blob_path(&digest), Content::Blob(digest));
    }

    entries.insert("oci-layout".into(), Content::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()));
    let mut manifests = Vec::new();
    let mut ref_names = BTreeSet::new();
    let mut referrers_listed = BTreeSet::new();
    for Named { image, target, tags } in &named {
        let desc = match target {
            Target::Image(stored) => descriptor(
                stored.manifest.media_type().clone().unwrap_or(MediaType::ImageManifest),
                &image.manifest,
                stored.manifest_size,
            ),
            Target::Index(index) => index.descriptor(),
        };
        let annotated: Vec<(String, String)> = match names {
            RefNames::Tag => {
                tags.first().map(|first| (first.tag.clone(), first.full())).into_iter().collect()
            }
            RefNames::Reference => tags.iter().map(|tag| (tag.full(), tag.full())).collect(),
        };
        if annotated.is_empty() {
            manifests.push(desc.clone());
        }
        for (ref_name, full) in annotated {
            if !ref_names.insert(ref_name.clone()) {
                return Err(Error::DuplicateRefName { name: ref_name });
            }
            let mut entry = desc.clone();
            entry.set_annotations(Some(
                [(ANNOTATION_REF_NAME.to_owned(), ref_name), (ANNOTATION_CONTAINERD_NAME.to_owned(), full)]
                    .into(),
            ));
            manifests.push(entry);
        }
        manifests.extend(
            image.referrers.iter().filter(|r| referrers_listed.insert(r.digest().to_string())).cloned(),
        );
    }
    let mut index = store::empty_index()?;
    index.set_manifests(manifests);
    entries.insert("index.json".into(), Content::Bytes(canonical_json(&index, "index.json")?));

    let mut docker = Vec::new();
    let mut repositories: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    for Named { target, tags, .. } in &named {
        let image = target.image_for(&Platform::host()).unwrap_or(&target.images()[0]);
        let config_digest = image.config_digest()?;
        let layers: Vec<Digest> =
            image.manifest.layers().iter().map(Digest::from_descriptor).collect::<Result<_, _>>()?;
        docker.push(DockerManifestEntry {
            config: blob_path(&config_digest),
            repo_tags: Some(tags.iter().map(RepoTag::full).collect()),
            layers: layers.iter().map(blob_path).collect(),
        });
        let top = image.diff_ids()?.last().cloned().unwrap_or_else(|| config_digest.clone());
        for tag in tags {
            repositories.entry(&tag.name).or_default().insert(&tag.tag, top.hex().to_owned());
        }
    }
    entries.insert("manifest.json".into(), Content::Bytes(canonical_json(&docker, "manifest.json")?));
    if !repositories.is_empty() {
        entries.insert("repositories".into(), Content::Bytes(canonical_json(&repositories, "repositories")?));
    }

    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = store::temp_file_in(&dir)?;
    let temp_path = temp.path().to_path_buf();
    let write_error = |e| Error::io("writing", &temp_path, e);
    let mut writer = BufWriter::with_capacity(256 << 10, temp);
    for (name, content) in &entries {
        write_entry(store, &mut writer, name, content, &temp_path)?;
    }
    tarball::write_end(&mut writer).map_err(write_error)?;
    let temp = writer.into_inner().map_err(|e| write_error(e.into_error()))?;
    store::persist(temp, out)
}

/// What identifies the file at `path` as the one an archive was written to.
fn fingerprint(path: &Path) -> Option<(PathBuf, [i64; 6])> {
    Some((path.to_path_buf(), forge_input::StatStamp::stat(path)?.0))
}

/// Copies the blob at `path` (`size` bytes) after what `out` holds, in the
/// kernel; `false` if it was not `size` bytes.
fn copy_known(path: &Path, size: u64, out: &mut BufWriter<NamedTempFile>) -> io::Result<bool> {
    out.flush()?;
    let mut blob = File::open(path)?.take(size + 1);
    let copied = io::copy(&mut blob, out.get_mut().as_file_mut())?;
    Ok(copied == size)
}

fn write_entry(
    store: &BlobStore,
    out: &mut BufWriter<NamedTempFile>,
    name: &str,
    content: &Content,
    temp: &Path,
) -> Result<()> {
    let write_error = |e| Error::io("writing", temp, e);
    let mut header =
        Header { name, kind: Kind::File, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, link: None };
    match content {
        Content::Dir => {
            header.kind = Kind::Dir;
            header.mode = 0o755;
            tarball::write_header(out, &header).map_err(write_error)
        }
        Content::Bytes(bytes) => {
            header.size = bytes.len() as u64;
            tarball::write_header(out, &header).map_err(write_error)?;
            out.write_all(bytes).map_err(write_error)?;
            tarball::write_padding(out, header.size).map_err(write_error)
        }
        Content::Blob(digest) => {
            header.size = store.size(digest)?;
            let path = store.path(digest);
            if store::known_whole(&path) {
                tarball::write_header(out, &header).map_err(write_error)?;
                if !copy_known(&path, header.size, out).map_err(|e| Error::io("copying", &path, e))? {
                    return Err(Error::SizeMismatch {
                        what: path.display().to_string(),
                        expected: header.size,
                        found: store.size(digest)?,
                    });
                }
                return tarball::write_padding(out, header.size).map_err(write_error);
            }
            let mut reader = store.open(digest)?;
            tarball::write_header(out, &header).map_err(write_error)?;
            match tarball::copy_exact(&mut reader, out, header.size)
                .map_err(|e| Error::io("reading", &path, e))?
            {
                Copied::Exact => {}
                Copied::Short(found) => {
                    return Err(Error::SizeMismatch {
                        what: path.display().to_string(),
                        expected: header.size,
                        found,
                    })
                }
                Copied::Long => {
                    return Err(Error::SizeMismatch {
                        what: path.display().to_string(),
                        expected: header.size,
                        found: header.size + 1,
                    })
                }
            }
            // The reader checked the digest at the end of the content.
            store::mark_whole(&path);
            tarball::write_padding(out, header.size).map_err(write_error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags_split_at_the_last_colon_after_the_last_slash() {
        let split = |t: &str| RepoTag::parse(t).map(|r| (r.name, r.tag)).map_err(|e| e.to_string());
        assert_eq!(split("app:1.0"), Ok(("app".into(), "1.0".into())));
        assert_eq!(split("app"), Ok(("app".into(), "latest".into())));
        assert_eq!(split("localhost:5000/team/app"), Ok(("localhost:5000/team/app".into(), "latest".into())));
        assert_eq!(split("localhost:5000/team/app:v2"), Ok(("localhost:5000/team/app".into(), "v2".into())));
        assert!(split("").is_err());
        assert!(split("app:").is_err());
        assert!(split(":tag").is_err());
        assert!(split("app@sha256:abc").is_err());
        assert!(split("my app:1").is_err());
    }
}
