//! Pulling an image into the local store.
//!
//! A tag is resolved to a manifest (or an image index, from which the
//! platform asked for is picked), and then the config and the layers are
//! streamed straight into the [`BlobStore`]: each blob goes to a temp file
//! while it is hashed and is renamed into place only if it has the digest it
//! was asked for by, so a broken or hostile registry cannot put a wrong
//! blob under a name. Blobs the store already has are not downloaded, and
//! the pulled image gets a ref in the store named after the reference, so
//! that [`cached_image`] finds it again without a network.

use std::io::{self, Read};

use forge_oci::{BlobStore, Digest, Image, Platform};
use forge_retry::Attempt;

use crate::auth::pull_scope;
use crate::client::{error_body, header, http_error, read_body, Call, Client, RetryNotice};
use crate::error::{Error, Result};
use crate::mounts::remember_source;
use crate::reference::{Reference, Target};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The `Accept` header of a manifest request: every kind we read.
pub(crate) fn accept_manifests() -> String {
    [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ")
}

/// Manifests larger than this are refused: they are a few kilobytes.
const MAX_MANIFEST: u64 = 4 << 20;

#[derive(serde::Deserialize)]
struct IndexPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

impl IndexPlatform {
    fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

#[derive(serde::Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    platform: Option<IndexPlatform>,
}

#[derive(serde::Deserialize)]
struct Document {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<IndexEntry>>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// The image `reference` names for `platform`, if a previous pull (or
/// anything else) left a ref of that name in the store with all its
/// blobs: no network needed.
pub fn cached_image(store: &BlobStore, reference: &Reference, platform: &Platform) -> Result<Option<Image>> {
    let Some(target) = forge_oci::Target::load_ref(store, &reference.to_string())? else { return Ok(None) };
    let Some(image) = target.image_for(platform) else { return Ok(None) };
    let complete = image
        .manifest
        .layers()
        .iter()
        .all(|layer| Digest::from_descriptor(layer).is_ok_and(|d| store.contains(&d)));
    Ok(complete.then(|| image.clone()))
}

impl Client {
    /// Pulls the image `reference` names for `platform` into `store` and
    /// returns it, loaded from the store. See the module docs.
    pub fn pull(&self, reference: &Reference, platform: &Platform, store: &BlobStore) -> Result<Image> {
        let quiet = |_: RetryNotice| {};
        // A digest already in the store needs no registry at all.
        if let Some(digest) = reference.digest() {
            if store.contains(digest) {
                if let Ok(image) = Image::load(store, digest) {
                    if self.has_all_layers(store, &image) {
                        return Ok(image);
                    }
                }
            }
        }
        let (digest, bytes, media_type) = self.resolve_manifest(reference, &quiet)?;
        let (digest, bytes) = if is_index(&media_type, &bytes) {
            let chosen = choose_platform(reference, &bytes, platform)?;
            let (d, b, m, _) = self.fetch_manifest(reference, &chosen.to_string(), &quiet)?;
            if d != chosen {
                return Err(Error::DigestMismatch {
                    what: format!("manifest of {reference}"),
                    expected: chosen,
                    found: d,
                });
            }
            if is_index(&m, &b) {
                return Err(Error::UnsupportedMediaType { reference: reference.to_string(), media_type: m });
            }
            (d, b)
        } else {
            (digest, bytes)
        };
        let document: Document = serde_json::from_slice(&bytes).map_err(|_| Error::Protocol {
            url: reference.to_string(),
            reason: "the manifest is not JSON".into(),
        })?;
        let media = document.media_type.clone().unwrap_or_default();
        if document.config.is_none()
            || !(media.is_empty() || media == OCI_MANIFEST || media == DOCKER_MANIFEST)
        {
            return Err(Error::UnsupportedMediaType { reference: reference.to_string(), media_type: media });
        }
        let manifest: forge_oci::oci_spec::image::ImageManifest =
            serde_json::from_slice(&bytes).map_err(|_| Error::Protocol {
                url: reference.to_string(),
                reason: "the manifest is not a valid image manifest".into(),
            })?;
        let mut blobs = vec![manifest.config().clone()];
        blobs.extend(manifest.layers().iter().cloned());
        for descriptor in &blobs {
            let digest = Digest::from_descriptor(descriptor)?;
            if !store.contains(&digest) {
                self.fetch_blob(reference, &digest, descriptor.size(), store, &quiet)?;
            }
        }
        let (stored, _) = store.put_bytes(&bytes)?;
        debug_assert_eq!(stored, digest);
        let image = Image::load(store, &digest)?;
        forge_oci::set_platform_ref(store, &reference.to_string(), &image)?;
        remember_source(store, reference, blobs.iter().filter_map(|d| Digest::from_descriptor(d).ok()));
        Ok(image)
    }

    fn has_all_layers(&self, store: &BlobStore, image: &Image) -> bool {
        image.manifest.layers().iter().all(|l| Digest::from_descriptor(l).is_ok_and(|d| store.contains(&d)))
    }

    /// The manifest `reference` names, always by digest: a tag is resolved
    /// first, by the `Docker-Content-Digest` the registry sends with it
    /// (checked against the body), or, without that header, by fetching
    /// the body's digest again, so that content is trusted only as the
    /// registry serves it under its digest, never as one response said.
    pub(crate) fn resolve_manifest(
        &self,
        reference: &Reference,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<(Digest, Vec<u8>, String)> {
        let target = reference.manifest_path_part();
        let (found, bytes, media_type, said) = self.fetch_manifest(reference, &target, notify)?;
        if reference.digest().is_some() {
            return Ok((found, bytes, media_type));
        }
        match said {
            Some(said) => {
                let said = Digest::parse(&said).map_err(|_| Error::Protocol {
                    url: format!("/v2/{}/manifests/{target}", reference.repository()),
                    reason: format!("the Docker-Content-Digest header `{said}` is not a sha256 digest"),
                })?;
                if said != found {
                    return Err(Error::DigestMismatch {
                        what: format!("manifest of {reference} (the registry's Docker-Content-Digest)"),
                        expected: said,
                        found,
                    });
                }
                Ok((found, bytes, media_type))
            }
            None => {
                let (again, bytes, media_type, _) =
                    self.fetch_manifest(reference, &found.to_string(), notify)?;
                debug_assert_eq!(again, found);
                Ok((again, bytes, media_type))
            }
        }
    }

    /// `GET /v2/NAME/manifests/REF`: digest (verified when REF is one),
    /// bytes, media type and the `Docker-Content-Digest` header the
    /// registry sent, if any.
    pub(crate) fn fetch_manifest(
        &self,
        reference: &Reference,
        target: &str,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<(Digest, Vec<u8>, String, Option<String>)> {
        let url = format!("/v2/{}/manifests/{target}", reference.repository());
        let call = Call {
            method: "GET",
            url: url.clone(),
            headers: vec![("Accept", accept_manifests())],
            body: None,
            scopes: vec![pull_scope(reference.repository())],
            retry: true,
        };
        let response = self.call(reference, &call, notify)?;
        let status = response.status().as_u16();
        if status == 404 {
            return Err(Error::ManifestNotFound {
                reference: reference.with_target(target_of(target)).to_string(),
            });
        }
        if status == 403 {
            return Err(self.denied(reference, "pull from", response));
        }
        if status != 200 {
            return Err(Error::Status { method: "GET", url, status, errors: error_body(response) });
        }
        let content_type = header(&response, "content-type").unwrap_or_default();
        let said = header(&response, "docker-content-digest");
        let bytes = read_body(response, MAX_MANIFEST).map_err(|e| http_error(reference, &url, e))?;
        let found = Digest::of(&bytes);
        if let Ok(expected) = Digest::parse(target) {
            if expected != found {
                return Err(Error::DigestMismatch {
                    what: format!("manifest of {reference}"),
                    expected,
                    found,
                });
            }
        }
        Ok((found, bytes, content_type, said))
    }

    /// Streams one blob into the store, verifying it; a connection lost in
    /// the middle starts the blob again.
    pub(crate) fn fetch_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        store: &BlobStore,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<()> {
        let url = format!("/v2/{}/blobs/{digest}", reference.repository());
        self.retry_policy().run(
            || format!("GET {url}"),
            notify,
            || self.fetch_blob_once(reference, &url, digest, size, store, notify),
        )
    }

    /// One attempt at [`Client::fetch_blob`]: a body cut short is transient.
    fn fetch_blob_once(
        &self,
        reference: &Reference,
        url: &str,
        digest: &Digest,
        size: u64,
        store: &BlobStore,
        notify: &dyn Fn(RetryNotice),
    ) -> Attempt<(), Error> {
        let call = Call {
            method: "GET",
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
            scopes: vec![pull_scope(reference.repository())],
            retry: true,
        };
        let response = match self.call(reference, &call, notify) {
            Ok(response) => response,
            Err(e) => return Attempt::Done(Err(e)),
        };
        let status = response.status().as_u16();
        if status != 200 {
            let errors = error_body(response);
            return Attempt::Done(Err(Error::Status { method: "GET", url: url.to_owned(), status, errors }));
        }
        let mut writer = match store.writer() {
            Ok(writer) => writer,
            Err(e) => return Attempt::Done(Err(e.into())),
        };
        // One byte more than announced shows a blob that is too long.
        let mut body = response.into_body().into_reader().take(size.saturating_add(1));
        if let Err(e) = io::copy(&mut body, &mut writer) {
            let got = writer.size();
            // A body that ended early is not an unreachable registry: say
            // how much came, so that a proxy cutting blobs is recognisable.
            let give_up = if got < size {
                Error::Protocol {
                    url: url.to_owned(),
                    reason: format!(
                        "the blob ended after {got} of its {size} bytes ({e}): the connection was cut, or something between us and {} truncates responses",
                        reference.registry()
                    ),
                }
            } else {
                Error::Unreachable {
                    host: reference.registry().to_owned(),
                    url: url.to_owned(),
                    source: Box::new(ureq::Error::Io(e)),
                }
            };
            return Attempt::Transient {
                reason: format!("the blob ended after {got} of {size} bytes"),
                retry_after: None,
                give_up: Err(give_up),
            };
        }
        Attempt::Done(match writer.finish_verified(digest) {
            Ok(_) => Ok(()),
            Err(forge_oci::Error::DigestMismatch { expected, found, .. }) => {
                Err(Error::DigestMismatch { what: format!("blob {digest} of {reference}"), expected, found })
            }
            Err(e) => Err(e.into()),
        })
    }
}

fn target_of(text: &str) -> Target {
    match Digest::parse(text) {
        Ok(d) => Target::Digest(d, None),
        Err(_) => Target::Tag(text.to_owned()),
    }
}

fn is_index(media_type: &str, bytes: &[u8]) -> bool {
    let declared = serde_json::from_slice::<Document>(bytes).ok().and_then(|d| d.media_type);
    let media = declared.as_deref().unwrap_or(media_type);
    media.starts_with(OCI_INDEX)
        || media.starts_with(DOCKER_LIST)
        || serde_json::from_slice::<Document>(bytes)
            .is_ok_and(|d| d.manifests.is_some() && d.config.is_none())
}

fn choose_platform(reference: &Reference, bytes: &[u8], platform: &Platform) -> Result<Digest> {
    let document: Document = serde_json::from_slice(bytes).map_err(|_| Error::Protocol {
        url: reference.to_string(),
        reason: "the image index is not JSON".into(),
    })?;
    let entries = document.manifests.unwrap_or_default();
    let mut available = Vec::new();
    for entry in &entries {
        let Some(p) = &entry.platform else { continue };
        // Attestations (`unknown/unknown`) and nested indexes are no images.
        let nested = entry.media_type.as_deref().is_some_and(|m| m == OCI_INDEX || m == DOCKER_LIST);
        if platform.accepts(&p.platform()) && !nested {
            return Ok(Digest::parse(&entry.digest)?);
        }
        let mut name = format!("{}/{}", p.os, p.architecture);
        if let Some(v) = &p.variant {
            name.push('/');
            name.push_str(v);
        }
        available.push(name);
    }
    Err(Error::NoMatchingPlatform {
        reference: reference.to_string(),
        platform: platform.to_string(),
        available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        assert_eq!(Platform::default().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap().variant.as_deref(), Some("v8"));
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("a/b/c/d").is_none());
    }

    #[test]
    fn index_selection() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}
            ]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let reference = Reference::parse("python:3.11").unwrap();
        assert!(is_index("", index.as_bytes()));
        assert_eq!(
            choose_platform(&reference, index.as_bytes(), &Platform::default()).unwrap().to_string(),
            d('b')
        );
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(choose_platform(&reference, index.as_bytes(), &arm).unwrap().to_string(), d('a'));
        let err = choose_platform(&reference, index.as_bytes(), &Platform::parse("linux/s390x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux/arm64/v8, linux/amd64, unknown/unknown"), "{err}");
    }
}
