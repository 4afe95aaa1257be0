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
//!
//! [`Client::push_referrers`] re-pushing about an image that was up to
//! date reads that listing once and sends only the artifacts it lacks: an
//! artifact listed is complete, because either index is written after the
//! artifact's manifest, which is written after its blobs.

use forge_oci::oci_spec::image::{Descriptor, ImageIndex};
use forge_oci::referrers::read_artifact;
use forge_oci::{BlobStore, Digest};

use crate::auth::pull_scope;
use crate::client::{error_body, http_error, read_body, Call, Client, RetryNotice};
use crate::error::{Error, Result};
use crate::push::{BlobOutcome, PushEvent, PushReport, PushTo};
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

/// The referrers API's answer about a subject.
enum ApiAnswer {
    /// Its referrers index.
    Listed(Vec<u8>),
    /// A `404` with a registry error (such as `NAME_UNKNOWN`).
    NotFound,
    /// A plain `404`: the registry has no such route.
    NoApi,
}

impl Client {
    /// Pushes the artifact `artifact` of `store` (an artifact manifest
    /// about `subject`, see [`forge_oci::referrers`]) into the repository
    /// of `reference`: its blobs, its manifest by digest, and, when the
    /// registry has no referrers API, its descriptor into the fallback
    /// tag's index. The subject must be pushed first. Its blobs are
    /// counted in `report`. [`Client::push_referrers`] of one artifact.
    pub fn push_referrer(
        &self,
        store: &BlobStore,
        artifact: &Descriptor,
        subject: &Digest,
        reference: &Reference,
        report: &mut PushReport,
        progress: &dyn Fn(PushEvent),
    ) -> Result<Referred> {
        let mut pushed =
            self.push_referrers(store, std::slice::from_ref(artifact), subject, reference, report, progress)?;
        Ok(pushed.remove(0).1)
    }

    /// Pushes the artifacts `artifacts` about `subject` (an image of the
    /// push `report` is of), in their order, as [`Client::push_referrer`]
    /// says, the fallback tag's index read and written once for all of
    /// them. When that push found the image up to date
    /// ([`PushReport::up_to_date`]), the referrers the registry lists for
    /// `subject` are read first (one request, two without the referrers
    /// API) and the artifacts listed there are not sent again: their
    /// blobs count as skipped. Returns each artifact's digest and how the
    /// registry indexes it.
    pub fn push_referrers(
        &self,
        store: &BlobStore,
        artifacts: &[Descriptor],
        subject: &Digest,
        reference: &Reference,
        report: &mut PushReport,
        progress: &dyn Fn(PushEvent),
    ) -> Result<Vec<(Digest, Referred)>> {
        let to = PushTo { store, reference, progress };
        let notify = |n: RetryNotice| progress(PushEvent::Retrying(n));
        let listed = if report.up_to_date { Some(self.listing(reference, subject, &notify)?) } else { None };
        let mut pushed = Vec::new();
        let mut unindexed = Vec::new();
        for artifact in artifacts {
            let digest = Digest::from_descriptor(artifact)?;
            let manifest = read_artifact(store, artifact)?;
            let blobs = [&manifest.config, &manifest.document].map(Digest::from_descriptor);
            match &listed {
                Some((found, how)) if found.iter().any(|d| d.digest() == artifact.digest()) => {
                    for blob in blobs {
                        let blob = blob?;
                        let size = store.size(&blob)?;
                        report.count(&BlobOutcome::Skipped, size);
                        progress(PushEvent::BlobSkipped { digest: blob, size });
                    }
                    pushed.push((digest, Some(how.clone())));
                }
                _ => {
                    for blob in blobs {
                        let blob = blob?;
                        let outcome = self.push_blob(to, &blob)?;
                        report.count(&outcome, store.size(&blob)?);
                    }
                    let by_digest = reference.with_digest(&digest);
                    if self.put_manifest(to.at(&by_digest), &digest, OCI_MANIFEST)?.is_some() {
                        pushed.push((digest, Some(Referred::Api)));
                    } else {
                        unindexed.push(artifact.clone());
                        pushed.push((digest, None));
                    }
                }
            }
        }
        let fallback = Referred::FallbackTag(fallback_tag(subject));
        if !unindexed.is_empty() {
            self.add_to_fallback_tag(to, subject, &unindexed)?;
        }
        Ok(pushed
            .into_iter()
            .map(|(digest, how)| (digest, how.unwrap_or_else(|| fallback.clone())))
            .collect())
    }

    /// Adds the descriptors of `artifacts` that the fallback tag's index
    /// of `subject` lacks to it (a new index if there is none), and pushes
    /// it again if any was added.
    fn add_to_fallback_tag(&self, to: PushTo<'_>, subject: &Digest, artifacts: &[Descriptor]) -> Result<()> {
        let tag = fallback_tag(subject);
        let tagged = to.reference.with_target(Target::Tag(tag.clone()));
        let mut index = match self.fetch_manifest(&tagged, &tag, &|n| (to.progress)(PushEvent::Retrying(n))) {
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
        let mut manifests = index.manifests().clone();
        for artifact in artifacts {
            if !manifests.iter().any(|d| d.digest() == artifact.digest()) {
                manifests.push(artifact.clone());
            }
        }
        if manifests.len() == index.manifests().len() {
            return Ok(());
        }
        index.set_manifests(manifests);
        let bytes = forge_oci::canonical_json(&index, "referrers index")?;
        let (index_digest, _) = to.store.put_bytes(&bytes)?;
        self.put_manifest(to.at(&tagged), &index_digest, OCI_INDEX)?;
        Ok(())
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
        Ok(self.listing(reference, subject, notify)?.0)
    }

    /// [`Client::referrers`], and where they were listed. A registry whose
    /// referrers route answers a plain `404` has no referrers API: the
    /// client remembers it for the endpoint and reads only the fallback
    /// tags there from then on (a registry does not gain an API within
    /// one run; `push_referrer` decides by the registry's answer to each
    /// artifact's push, never by this).
    fn listing(
        &self,
        reference: &Reference,
        subject: &Digest,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<(Vec<Descriptor>, Referred)> {
        let endpoint = reference.endpoint();
        let without_api = || self.no_referrers_api.lock().unwrap_or_else(|e| e.into_inner());
        let api = if without_api().contains(endpoint) {
            None
        } else {
            match self.api_referrers(reference, subject, notify)? {
                ApiAnswer::Listed(bytes) => Some(bytes),
                ApiAnswer::NotFound => None,
                ApiAnswer::NoApi => {
                    without_api().insert(endpoint.to_owned());
                    None
                }
            }
        };
        let (bytes, how) = match api {
            Some(bytes) => (bytes, Referred::Api),
            None => {
                let tag = fallback_tag(subject);
                let tagged = reference.with_target(Target::Tag(tag.clone()));
                match self.fetch_manifest(&tagged, &tag, notify) {
                    Ok((_, bytes, _, _)) => (bytes, Referred::FallbackTag(tag)),
                    Err(Error::ManifestNotFound { .. }) => {
                        return Ok((Vec::new(), Referred::FallbackTag(tag)))
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            url: reference.with_digest(subject).to_string(),
            reason: format!("the referrers are not an image index: {e}"),
        })?;
        Ok((index.manifests().clone(), how))
    }

    /// What the referrers API says of `subject`.
    fn api_referrers(
        &self,
        reference: &Reference,
        subject: &Digest,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<ApiAnswer> {
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
        match response.status().as_u16() {
            200 => Ok(ApiAnswer::Listed(
                read_body(response, MAX_INDEX).map_err(|e| http_error(reference, &url, e))?,
            )),
            404 => match error_body(response).errors.is_empty() {
                true => Ok(ApiAnswer::NoApi),
                false => Ok(ApiAnswer::NotFound),
            },
            status => Err(Error::Status { method: "GET", url, status, errors: error_body(response) }),
        }
    }
}
