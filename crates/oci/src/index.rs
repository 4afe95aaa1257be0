//! Image indexes over per-platform images: what the ref of a plugin built
//! for several platforms points at (and what is pushed under its tag), what
//! the ref of a base image built for several platforms becomes in the
//! store, and how the image for one platform is found behind a ref.
//!
//! Each entry of an index we write is an image manifest with its
//! `platform` (from its config); entries are in the order given, and the
//! index is canonical JSON like every document we write, so the same images
//! give the same index digest.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};

use crate::digest::{descriptor, Digest};
use crate::error::{Error, Result};
use crate::image::{annotation_map, is_index_media_type, Image};
use crate::platform::Platform;
use crate::store::BlobStore;

/// An image index in the store and the images it lists.
#[derive(Debug, Clone)]
pub struct Index {
    /// Digest of the index blob.
    pub digest: Digest,
    /// Size of the index blob.
    pub size: u64,
    /// The images, in the index's order.
    pub images: Vec<Image>,
}

impl Index {
    /// Reads the index `digest` of `store` and every image it lists
    /// (verified as [`Image::load`] does); an index of indexes is refused.
    pub fn load(store: &BlobStore, digest: &Digest) -> Result<Index> {
        let bytes = store.read_verified(digest)?;
        let what = || format!("index {digest}");
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| Error::json(what(), e))?;
        let mut images = Vec::new();
        for entry in index.manifests() {
            if is_index_media_type(entry.media_type()) {
                return Err(Error::InvalidDocument {
                    what: what(),
                    reason: "it lists another index; only indexes of image manifests are supported".into(),
                });
            }
            images.push(Image::load(store, &Digest::from_descriptor(entry)?)?);
        }
        Ok(Index { digest: digest.clone(), size: bytes.len() as u64, images })
    }

    /// The descriptor of the index, for `index.json` or a registry.
    pub fn descriptor(&self) -> Descriptor {
        descriptor(MediaType::ImageIndex, &self.digest, self.size)
    }
}

/// Writes an index of `images` (in this order, each entry with its
/// image's platform) into `store`.
pub fn write_index(
    store: &BlobStore,
    images: &[Image],
    annotations: &BTreeMap<String, String>,
) -> Result<Index> {
    let manifests: Vec<Descriptor> = images
        .iter()
        .map(|image| {
            let mut entry = image.manifest_descriptor();
            entry.set_platform(Some(Platform::of_config(&image.config).to_oci()));
            entry
        })
        .collect();
    let mut index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|source| Error::Spec { what: "image index", source })?;
    index.set_annotations(annotation_map(annotations));
    let (digest, size) = store.put_json(&index, "image index")?;
    Ok(Index { digest, size, images: images.to_vec() })
}

/// What a ref of the store points at: one image, or an index of images.
#[derive(Debug, Clone)]
pub enum Target {
    /// An image manifest.
    Image(Box<Image>),
    /// An index.
    Index(Index),
}

impl Target {
    /// What `descriptor` (an entry of `index.json`) points at.
    pub fn load(store: &BlobStore, descriptor: &Descriptor) -> Result<Target> {
        let digest = Digest::from_descriptor(descriptor)?;
        if is_index_media_type(descriptor.media_type()) {
            Ok(Target::Index(Index::load(store, &digest)?))
        } else {
            Ok(Target::Image(Box::new(Image::load(store, &digest)?)))
        }
    }

    /// What the blob `digest` is: an image manifest or an index (told by
    /// its `mediaType`).
    pub fn of_digest(store: &BlobStore, digest: &Digest) -> Result<Target> {
        #[derive(serde::Deserialize)]
        struct Kind {
            #[serde(rename = "mediaType", default)]
            media_type: Option<MediaType>,
        }
        let bytes = store.read_verified(digest)?;
        let kind: Kind =
            serde_json::from_slice(&bytes).map_err(|e| Error::json(format!("manifest {digest}"), e))?;
        if kind.media_type.as_ref().is_some_and(is_index_media_type) {
            Ok(Target::Index(Index::load(store, digest)?))
        } else {
            Ok(Target::Image(Box::new(Image::load(store, digest)?)))
        }
    }

    /// What the ref `name` points at, if there is one.
    pub fn load_ref(store: &BlobStore, name: &str) -> Result<Option<Target>> {
        match store.resolve_ref(name)? {
            Some(descriptor) => Target::load(store, &descriptor).map(Some),
            None => Ok(None),
        }
    }

    /// Its images: the one, or the index's.
    pub fn images(&self) -> &[Image] {
        match self {
            Target::Image(image) => std::slice::from_ref(image),
            Target::Index(index) => &index.images,
        }
    }

    /// The first image whose platform serves a request for `platform`.
    pub fn image_for(&self, platform: &Platform) -> Option<&Image> {
        self.images().iter().find(|image| platform.accepts(&Platform::of_config(&image.config)))
    }

    /// The platforms of its images, in order.
    pub fn platforms(&self) -> Vec<Platform> {
        self.images().iter().map(|image| Platform::of_config(&image.config)).collect()
    }
}

/// Points the ref `name` at `image` for its platform, keeping what the ref
/// holds for other platforms: the ref becomes the image itself when it
/// held nothing else (so a store of one platform looks as it always did),
/// otherwise an index of the images by platform (sorted by platform, so
/// the order in which platforms were added does not matter). A ref that
/// cannot be read any more is replaced.
pub fn set_platform_ref(store: &BlobStore, name: &str, image: &Image) -> Result<()> {
    let platform = Platform::of_config(&image.config);
    store.update_ref(name, |current| {
        let mut images: Vec<Image> = match current.map(|d| Target::load(store, d)) {
            Some(Ok(target)) => target.images().to_vec(),
            Some(Err(_)) | None => Vec::new(),
        };
        images.retain(|other| Platform::of_config(&other.config) != platform);
        if images.is_empty() {
            return Ok(image.manifest_descriptor());
        }
        images.push(image.clone());
        images.sort_by_key(|image| Platform::of_config(&image.config));
        Ok(write_index(store, &images, &BTreeMap::new())?.descriptor())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::new_config;
    use crate::RuntimeConfig;

    fn image_for(store: &BlobStore, platform: &str, cmd: &str) -> Image {
        let runtime = RuntimeConfig { cmd: Some(vec![cmd.into()]), ..RuntimeConfig::default() };
        let mut config = new_config(0, &runtime, &[], Vec::new()).unwrap();
        Platform::parse(platform).unwrap().set_on(&mut config);
        crate::write_image(store, &config, &[], &BTreeMap::new()).unwrap()
    }

    #[test]
    fn a_platform_ref_is_the_image_alone_until_another_platform_comes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path()).unwrap();
        let amd = image_for(&store, "linux/amd64", "a");
        let arm = image_for(&store, "linux/arm64", "b");
        let arm2 = image_for(&store, "linux/arm64", "c");
        let arm64 = Platform::parse("linux/arm64").unwrap();

        set_platform_ref(&store, "base", &amd).unwrap();
        assert_eq!(store.resolve_ref("base").unwrap().unwrap().digest(), amd.manifest_descriptor().digest());
        let target = Target::load_ref(&store, "base").unwrap().unwrap();
        assert!(target.image_for(&arm64).is_none());
        assert_eq!(target.platforms(), [Platform::default()]);

        set_platform_ref(&store, "base", &arm).unwrap();
        set_platform_ref(&store, "base", &arm2).unwrap();
        let Some(Target::Index(index)) = Target::load_ref(&store, "base").unwrap() else {
            panic!("an index")
        };
        let digests: Vec<String> = index.images.iter().map(|i| i.manifest_digest.to_string()).collect();
        assert_eq!(digests, [amd.manifest_digest.to_string(), arm2.manifest_digest.to_string()]);
        assert_eq!(crate::validate::index(&store, &index.digest).unwrap().len(), 2);
        let target = Target::Index(index.clone());
        assert_eq!(target.image_for(&arm64).unwrap().manifest_digest, arm2.manifest_digest);
        assert_eq!(target.image_for(&Platform::default()).unwrap().manifest_digest, amd.manifest_digest);

        // The same images in the other order give the same index.
        let dir2 = tempfile::tempdir().unwrap();
        let store2 = BlobStore::open_or_create(dir2.path()).unwrap();
        let arm2b = image_for(&store2, "linux/arm64", "c");
        let amdb = image_for(&store2, "linux/amd64", "a");
        set_platform_ref(&store2, "base", &arm2b).unwrap();
        set_platform_ref(&store2, "base", &amdb).unwrap();
        assert_eq!(store2.resolve_ref("base").unwrap().unwrap().digest(), index.descriptor().digest());

        let json: serde_json::Value =
            serde_json::from_slice(&store.read_verified(&index.digest).unwrap()).unwrap();
        assert_eq!(json["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(json["manifests"][1]["platform"]["architecture"], "arm64");
        assert_eq!(json["manifests"][0]["platform"]["os"], "linux");
    }

    #[test]
    fn an_index_of_indexes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path()).unwrap();
        let amd = image_for(&store, "linux/amd64", "a");
        let inner = write_index(&store, &[amd], &BTreeMap::new()).unwrap();
        let outer = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![inner.descriptor()])
            .build()
            .unwrap();
        let (digest, _) = store.put_json(&outer, "index").unwrap();
        let err = Index::load(&store, &digest).unwrap_err().to_string();
        assert!(err.contains("it lists another index"), "{err}");
    }
}
