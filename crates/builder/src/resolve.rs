//! Finding the base image a `FROM` names, without a registry: the caller
//! injects a [`BaseResolver`], and pulling from a registry is one it may
//! wrap around [`LocalResolver`] (forge-pipeline does), so the builder never
//! talks to the network.
//!
//! In order: `--base-image REF=SOURCE` overrides, then the images of the
//! local store (`cargo xtask image import`). A name without a tag stands for
//! the repository at every tag, because plugin Dockerfiles say
//! `FROM ${REGISTRY}/base-py:${TAG}` with each plugin's own tag. A SOURCE is
//! an OCI layout directory (`DIR:TAG` when it holds several images), an
//! `oci-archive` or a `docker-archive` file, told apart by content; it is
//! imported (every digest verified) once per run.
//!
//! A base is resolved for the platform the build is for: a store ref may
//! point at an image index (a base image built for several platforms, see
//! [`forge_oci::set_platform_ref`]), and the image for that platform is
//! picked from it; an image of another platform is refused with what there
//! is instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use forge_oci::{BlobStore, Digest, Image, Platform, Target};

use crate::image::BaseImage;
use crate::BuildError;

/// Finds base images.
pub trait BaseResolver: Sync {
    /// The image `reference` names for `platform`, present in `store` once
    /// returned.
    fn resolve(&self, reference: &str, platform: &Platform, store: &BlobStore) -> Resolved;
}

/// What a [`BaseResolver`] answers.
pub type Resolved = Result<BaseImage, BuildError>;

/// `--base-image REF=SOURCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// `repo:tag`, or `repo` for every tag.
    pub reference: String,
    /// Where the image is.
    pub source: PathBuf,
    /// The image to pick in an OCI layout with several.
    pub tag: Option<String>,
}

impl Override {
    /// Parses `REF=SOURCE`, where SOURCE may end in `:TAG` for a layout
    /// directory holding several images.
    pub fn parse(text: &str) -> Result<Override, String> {
        let (reference, source) =
            text.split_once('=').ok_or_else(|| format!("`{text}` is not REF=SOURCE"))?;
        if reference.is_empty() || source.is_empty() {
            return Err(format!("`{text}` is not REF=SOURCE"));
        }
        let (source, tag) = split_source(source);
        Ok(Override { reference: reference.to_string(), source, tag })
    }
}

/// `PATH` or `PATH:TAG`: the tag is split off only when `PATH` exists
/// without it and the whole does not.
pub fn split_source(text: &str) -> (PathBuf, Option<String>) {
    if !Path::new(text).exists() {
        if let (path, Some(tag)) = forge_reference::split_tag(text) {
            if Path::new(path).exists() {
                return (PathBuf::from(path), Some(tag.to_string()));
            }
        }
    }
    (PathBuf::from(text), None)
}

/// Resolves through overrides, then the store's own refs.
#[derive(Debug, Default)]
pub struct LocalResolver {
    overrides: Vec<Override>,
    imported: Mutex<HashMap<(PathBuf, Option<String>), Digest>>,
}

impl LocalResolver {
    /// A resolver with these overrides.
    pub fn new(overrides: Vec<Override>) -> LocalResolver {
        LocalResolver { overrides, imported: Mutex::default() }
    }

    fn import(&self, o: &Override, store: &BlobStore) -> Result<Image, BuildError> {
        let key = (o.source.clone(), o.tag.clone());
        // Held during the import so that parallel builds import a source once.
        let mut imported = self.imported.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(digest) = imported.get(&key) {
            return Ok(Image::load(store, digest)?);
        }
        let image = forge_oci::import(&o.source, o.tag.as_deref(), store)?;
        imported.insert(key, image.manifest_digest.clone());
        Ok(image)
    }
}

impl BaseResolver for LocalResolver {
    fn resolve(&self, reference: &str, platform: &Platform, store: &BlobStore) -> Resolved {
        let repo = forge_reference::untagged(reference);
        let target = if let Some(o) = self.overrides.iter().find(|o| o.reference == reference) {
            Some(Target::Image(Box::new(self.import(o, store)?)))
        } else if let Some(o) = self.overrides.iter().find(|o| o.reference == repo) {
            Some(Target::Image(Box::new(self.import(o, store)?)))
        } else {
            match Target::load_ref(store, reference)? {
                Some(found) => Some(found),
                None => Target::load_ref(store, repo)?,
            }
        };
        let Some(target) = target else {
            return Err(BuildError::BaseNotFound {
                reference: reference.to_string(),
                help: format!(
                    "import it with `cargo xtask image import SOURCE {repo}` (for every tag) or pass `--base-image {reference}=SOURCE`"
                ),
            });
        };
        match target.image_for(platform) {
            Some(image) => Ok(BaseImage::found(reference, image.clone())),
            None => {
                let found: Vec<String> = target.platforms().iter().map(ToString::to_string).collect();
                Err(BuildError::BaseNotFound {
                    reference: reference.to_string(),
                    help: format!(
                        "the image found is for {}, and this build is for {platform}; import one for {platform} (or build without --platform {platform})",
                        found.join(", ")
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides() {
        let o = Override::parse("localhost:5000/base-py=/nonexistent/base.tar").unwrap();
        assert_eq!(o.reference, "localhost:5000/base-py");
        assert_eq!(o.source, PathBuf::from("/nonexistent/base.tar"));
        assert!(Override::parse("nothing").is_err());
        let dir = std::env::temp_dir();
        let o = Override::parse(&format!("x={}:v1", dir.display())).unwrap();
        assert_eq!((o.source, o.tag.as_deref()), (dir, Some("v1")));
    }
}
