//! A layer cache in a registry repository (`--cache REG/REPO`): finished
//! layers by their content key ([`LayerKey`]), shared by every machine
//! that can reach the registry.
//!
//! An entry is a small OCI image manifest tagged by the key
//! (`forge-layer-<hex of the key>`), with `artifactType`
//! [`ARTIFACT_TYPE`], the empty config (`application/vnd.oci.empty.v1+json`,
//! `{}`), the finished compressed layer as its one layer, and the key and
//! the layer's diff ID as annotations. A tag, not the OCI 1.1 referrers
//! API: a lookup is one `GET` of a manifest by a name we can compute,
//! every distribution registry serves tags (Docker Registry 2, Harbor,
//! GHCR, ECR, Artifactory; not all serve referrers), and the layer blob is
//! a blob of the cache repository, which a push to a repository of the
//! same registry mounts instead of uploading.
//!
//! A hit is verified like every blob we read: the manifest's key must be
//! the key asked for, the layer blob (fetched only when the store lacks
//! it) must have its digest and size, and its uncompressed content the
//! diff ID the entry claims, so a wrong or damaged entry is an error (the
//! caller builds the layer) and never reaches an image. What the entry
//! says cannot be checked is only that the key's inputs make that layer:
//! whoever may push to the cache repository is trusted as much as whoever
//! may push the images.

use forge_oci::oci_spec::image::{Descriptor, MediaType};
use forge_oci::{BlobStore, Digest, Layer, LayerKey};

use crate::auth::push_scope;
use crate::client::{Call, Client, RetryNotice};
use crate::error::{Error, Result};
use crate::mounts::remember_source;
use crate::reference::{Reference, Target};

/// The `artifactType` of a cache entry's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.plugin-forge.layer-cache.v1";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";
const KEY: &str = "dev.plugin-forge.layer.key";
const DIFF_ID: &str = "dev.plugin-forge.layer.diff-id";

/// The tag of `key`'s entry.
pub fn cache_tag(key: &LayerKey) -> String {
    let digest = key.digest().to_string();
    format!("forge-layer-{}", digest.strip_prefix("sha256:").unwrap_or(&digest))
}

/// `repository` (a cache repository, without tag) at `key`'s entry.
fn entry(repository: &Reference, key: &LayerKey) -> Reference {
    repository.with_target(Target::Tag(cache_tag(key)))
}

/// The manifest of `key`'s entry for `layer`, as canonical JSON.
fn entry_manifest(key: &LayerKey, layer: &Layer) -> Vec<u8> {
    let value = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_TYPE, "digest": Digest::of(EMPTY).to_string(), "size": EMPTY.len(), "data": "e30="},
        "layers": [layer.descriptor()],
        "annotations": {KEY: key.digest().to_string(), DIFF_ID: layer.diff_id.to_string()},
    });
    value.to_string().into_bytes()
}

/// The layer an entry's manifest names, if it is an entry for `key`.
fn read_entry(url: &str, key: &LayerKey, bytes: &[u8]) -> Result<Layer> {
    let bad = |reason: &str| Error::Protocol {
        url: url.to_owned(),
        reason: format!("not a layer cache entry: {reason}"),
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
    if value["artifactType"] != ARTIFACT_TYPE {
        return Err(bad("another artifactType"));
    }
    if value["annotations"][KEY] != key.digest().to_string() {
        return Err(bad("the entry is for another key"));
    }
    let diff_id = value["annotations"][DIFF_ID].as_str().and_then(|d| Digest::parse(d).ok());
    let diff_id = diff_id.ok_or_else(|| bad("no diff ID"))?;
    let layers: Vec<Descriptor> =
        serde_json::from_value(value["layers"].clone()).map_err(|_| bad("no layer descriptors"))?;
    let [descriptor] = layers.as_slice() else { return Err(bad("not exactly one layer")) };
    if forge_oci::Compression::of_layer(descriptor.media_type()).is_none() {
        return Err(bad("the layer's media type is not a layer's"));
    }
    Ok(Layer {
        digest: Digest::from_descriptor(descriptor)?,
        diff_id,
        size: descriptor.size(),
        media_type: MediaType::from(descriptor.media_type().to_string().as_str()),
    })
}

impl Client {
    /// The layer the cache `repository` holds under `key`, its blob in
    /// `store` (fetched and verified unless the store has it, and then
    /// remembered as a blob of `repository`, so a push to that registry
    /// mounts it), its diff ID checked; `Ok(None)` when there is no
    /// entry. See the module docs.
    pub fn cached_layer(
        &self,
        repository: &Reference,
        key: &LayerKey,
        store: &BlobStore,
    ) -> Result<Option<Layer>> {
        let quiet = |_: RetryNotice| {};
        let reference = entry(repository, key);
        let (_, bytes, _) = match self.resolve_manifest(&reference, &quiet) {
            Ok(found) => found,
            Err(Error::ManifestNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let layer = read_entry(&reference.to_string(), key, &bytes)?;
        if !store.size(&layer.digest).is_ok_and(|size| size == layer.size) {
            self.fetch_blob(&reference, &layer.digest, layer.size, store, &quiet)?;
        }
        // Reading to the end verifies the blob's digest too.
        let found = store
            .open_uncompressed(&layer.descriptor())?
            .finish()
            .map_err(|e| Error::from(forge_input::IoError::new("reading", store.path(&layer.digest), e)))?;
        if found.diff_id != layer.diff_id {
            return Err(Error::DigestMismatch {
                what: format!("uncompressed layer {} of {reference} (its diff ID)", layer.digest),
                expected: layer.diff_id,
                found: found.diff_id,
            });
        }
        remember_source(store, repository, [layer.digest.clone()]);
        Ok(Some(layer))
    }

    /// Whether the cache `repository` has an entry for `key` (`HEAD` of
    /// its manifest).
    pub fn has_cached_layer(&self, repository: &Reference, key: &LayerKey) -> Result<bool> {
        let reference = entry(repository, key);
        let head = Call {
            method: "HEAD",
            url: format!("/v2/{}/manifests/{}", reference.repository(), cache_tag(key)),
            headers: vec![("Accept", OCI_MANIFEST.to_owned())],
            body: None,
            scopes: vec![push_scope(reference.repository())],
            retry: true,
        };
        let response = self.call(&reference, &head, &|_| {})?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(Error::Status {
                method: "HEAD",
                url: self.absolute(&reference, &head.url),
                status,
                errors: crate::client::error_body(response),
            }),
        }
    }

    /// Writes `key`'s entry for `layer` (whose blob is in `store`) to the
    /// cache `repository`: the layer's blob (skipped if there, mounted if
    /// possible), the empty config, then the manifest under the key's
    /// tag. Returns the blob bytes uploaded.
    pub fn cache_layer(
        &self,
        repository: &Reference,
        key: &LayerKey,
        layer: &Layer,
        store: &BlobStore,
    ) -> Result<u64> {
        let reference = entry(repository, key);
        let (empty, _) = store.put_bytes(EMPTY)?;
        let mut uploaded = 0;
        let to = crate::PushTo { store, reference: &reference, progress: &|_| {} };
        for digest in [&layer.digest, &empty] {
            if self.push_blob(to, digest)? == crate::BlobOutcome::Uploaded {
                uploaded += store.size(digest)?;
            }
        }
        let (manifest, _) = store.put_bytes(&entry_manifest(key, layer))?;
        self.put_manifest(to, &manifest, OCI_MANIFEST)?;
        Ok(uploaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> Layer {
        Layer {
            digest: Digest::of(b"blob"),
            diff_id: Digest::of(b"tar"),
            size: 4,
            media_type: MediaType::from("application/vnd.oci.image.layer.v1.tar+gzip"),
        }
    }

    #[test]
    fn entries_read_back_and_refuse_what_is_not_theirs() {
        let key = LayerKey::from_digest(Digest::of(b"key"));
        let bytes = entry_manifest(&key, &layer());
        assert_eq!(read_entry("u", &key, &bytes).unwrap(), layer());
        assert!(cache_tag(&key).starts_with("forge-layer-") && cache_tag(&key).len() == 76);
        forge_reference::check_tag(&cache_tag(&key)).unwrap();
        let other = LayerKey::from_digest(Digest::of(b"other"));
        let err = read_entry("u", &other, &bytes).unwrap_err().to_string();
        assert!(err.contains("the entry is for another key"), "{err}");
        let text = String::from_utf8(bytes).unwrap();
        for (from, to, why) in [
            (ARTIFACT_TYPE, "application/x", "another artifactType"),
            ("tar+gzip", "json", "not a layer's"),
            (DIFF_ID, "x", "no diff ID"),
        ] {
            let err = read_entry("u", &key, text.replace(from, to).as_bytes()).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
