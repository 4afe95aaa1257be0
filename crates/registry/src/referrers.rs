//! Artifacts that refer to an image (OCI 1.1 `subject`): SBOMs and
//! provenance pushed beside the image, found by its digest.
//!
//! A push is the artifact's blobs, then its manifest by digest. A
//! registry with the referrers API indexes it by its `subject` and says
//! so with the `OCI-Subject` header of its answer; for one without
//! (Debian's `docker-registry` 2.8), the client keeps the index itself,
//! as the distribution spec's "referrers tag schema" says: an image index
//! under the tag `sha256-<hex of the subject>` listing the artifacts'
//! descriptors, read, extended and pushed again.
//! [`Client::referrers`] reads either the same way.

use forge_oci::oci_spec::image::{Descriptor, ImageIndex};
use forge_oci::referrers::read_artifact;
use forge_oci::{BlobStore, Digest};

use crate::auth::pull_scope;
use crate::client::{error_body, http_error, read_body, Call, Client, RetryNotice};
use crate::error::{Error, Result};
use crate::push::{PushEvent, PushReport, PushTo};
use crate::reference::{Reference, Target};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The largest referrers index read.
const MAX_INDEX: u64 = 4 << 20;

/// How the registry learnt of a referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referred {
    /// Through its referrers API.
    Api,
    /// Through the fallback tag, which this push wrote (or found up to date).
    FallbackTag(String),
}

/// The tag the referrers tag schema uses for `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

impl Client {
    /// Pushes the artifact `artifact` of `store` (an artifact manifest
    /// about `subject`, see [`forge_oci::referrers`]) into the repository
    /// of `reference`: its blobs, its manifest by digest, and, when the
    /// registry has no referrers API, its descriptor into the fallback
    /// tag's index. The subject must be pushed first. Its blobs are
    /// counted in `report`.
    pub fn push_referrer(
        &self,
        store: &BlobStore,
        artifact: &Descriptor,
        subject: &Digest,
        reference: &Reference,
        report: &mut PushReport,
        progress: &dyn Fn(PushEvent),
    ) -> Result<Referred> {
        let to = PushTo { store, reference, progress };
        let manifest = read_artifact(store, artifact)?;
        for blob in [&manifest.config, &manifest.document] {
            let digest = Digest::from_descriptor(blob)?;
            let outcome = self.push_blob(to, &digest)?;
            report.count(&outcome, store.size(&digest)?);
        }
        let digest = Digest::from_descriptor(artifact)?;
        let by_digest = reference.with_digest(&digest);
        if self.put_manifest(to.at(&by_digest), &digest, OCI_MANIFEST)?.is_some() {
            return Ok(Referred::Api);
        }
        let tag = fallback_tag(subject);
        let tagged = reference.with_target(Target::Tag(tag.clone()));
        let notify = |n: RetryNotice| progress(PushEvent::Retrying(n));
        let mut index = match self.fetch_manifest(&tagged, &tag, &notify) {
            Ok((_, bytes, _, _)) => {
                serde_json::from_slice::<ImageIndex>(&bytes).map_err(|e| Error::Protocol {
                    url: tagged.to_string(),
                    reason: format!("the referrers tag is not an image index: {e}"),
                })?
            }
            Err(Error::ManifestNotFound { .. }) => forge_oci::oci_spec::image::ImageIndexBuilder::default()
                .schema_version(2u32)
                .media_type(forge_oci::oci_spec::image::MediaType::ImageIndex)
                .manifests(Vec::<Descriptor>::new())
                .build()
                .map_err(|e| Error::Protocol { url: tagged.to_string(), reason: e.to_string() })?,
            Err(e) => return Err(e),
        };
        if index.manifests().iter().any(|d| d.digest() == artifact.digest()) {
            return Ok(Referred::FallbackTag(tag));
        }
        let mut manifests = index.manifests().clone();
        manifests.push(artifact.clone());
        index.set_manifests(manifests);
        let bytes = forge_oci::canonical_json(&index, "referrers index")?;
        let (index_digest, _) = store.put_bytes(&bytes)?;
        self.put_manifest(to.at(&tagged), &index_digest, OCI_INDEX)?;
        Ok(Referred::FallbackTag(tag))
    }

    /// The referrers of `subject` in the repository of `reference`: the
    /// referrers API's answer, else (a `404`) the fallback tag's index;
    /// empty when neither has any.
    pub fn referrers(
        &self,
        reference: &Reference,
        subject: &Digest,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<Vec<Descriptor>> {
        let url = format!("/v2/{}/referrers/{subject}", reference.repository());
        let call = Call {
            method: "GET",
            url: url.clone(),
            headers: vec![("Accept", OCI_INDEX.to_owned())],
            body: None,
            scopes: vec![pull_scope(reference.repository())],
            retry: true,
        };
        let response = self.call(reference, &call, notify)?;
        let status = response.status().as_u16();
        let bytes = match status {
            200 => read_body(response, MAX_INDEX).map_err(|e| http_error(reference, &url, e))?,
            404 => {
                let tag = fallback_tag(subject);
                let tagged = reference.with_target(Target::Tag(tag.clone()));
                match self.fetch_manifest(&tagged, &tag, notify) {
                    Ok((_, bytes, _, _)) => bytes,
                    Err(Error::ManifestNotFound { .. }) => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                }
            }
            _ => return Err(Error::Status { method: "GET", url, status, errors: error_body(response) }),
        };
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            url: reference.with_digest(subject).to_string(),
            reason: format!("the referrers are not an image index: {e}"),
        })?;
        Ok(index.manifests().clone())
    }
}
