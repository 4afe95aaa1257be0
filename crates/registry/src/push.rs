//! Pushing an image from the local store.
//!
//! The order is what makes a failed push harmless: blobs first (each one
//! skipped when the registry has it, mounted from a sibling repository when
//! possible, uploaded otherwise), then the manifest by digest, and the tag
//! last. A push that fails at any point leaves no tag pointing at missing
//! blobs, and the tag moves only once everything it names is there.
//!
//! So a tag that already names the manifest to push names a complete
//! image: one `HEAD` of the manifest under the tag (its
//! `Docker-Content-Digest` compared with ours) is the whole push of an
//! unchanged image, and its blobs count as skipped. A registry that lost a
//! blob of a manifest it serves is broken; `docker push` and `crane`
//! trust the manifest's `HEAD` the same way. A tag naming anything else,
//! or a registry that does not say the digest, gets the whole push.
//!
//! Cross-repository mounts need a repository that has the blob on the same
//! registry. We remember where blobs were seen (pulled from, pushed to, in
//! the store's small cache), so that pushing plugin images built on a base
//! image pulled from the same registry mounts the base layers instead of
//! uploading them. A registry that refuses the mount answers with an upload
//! session, which we use.
//!
//! Blob uploads are monolithic (`POST` then one `PUT`) unless the blob is
//! larger than [`ClientOptions::chunk_size`](crate::ClientOptions), in which
//! case the data goes in `PATCH` chunks of that size, for proxies that limit
//! request bodies. A transient failure during an upload starts that blob's
//! upload again with a new session, after a backoff.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::Duration;

use forge_input::IoError;
use forge_oci::{BlobStore, Digest, Image};
use forge_retry::{is_transient_status, retry_after, Attempt};

use crate::auth::{pull_scope, push_scope};
use crate::client::{error_body, header, BodyFn, Call, Client, RetryNotice};
use crate::error::{Error, Result};
use crate::mounts::{mount_sources, remember_source};
use crate::pull::accept_manifests;
use crate::reference::Reference;

/// How often (in bytes) an upload reports progress.
const PROGRESS_STEP: u64 = 256 << 10;

/// What happens during a push, for progress bars and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushEvent {
    /// The registry has the blob already.
    BlobSkipped {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// The blob was mounted from another repository of the registry.
    BlobMounted {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The repository it was mounted from.
        from: String,
    },
    /// An upload of the blob starts (again, after a retry).
    BlobStarted {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Bytes of the blob sent so far in the current attempt.
    BlobProgress {
        /// The blob.
        digest: Digest,
        /// Bytes sent.
        sent: u64,
        /// Its size.
        size: u64,
    },
    /// The blob is uploaded and the registry accepted it.
    BlobUploaded {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A request failed and is tried again after a delay.
    Retrying(RetryNotice),
    /// The manifest is in the registry, under its digest.
    ManifestPushed {
        /// The manifest's digest.
        digest: Digest,
    },
    /// The tag points at the manifest.
    Tagged {
        /// The full reference tagged.
        reference: String,
    },
    /// The registry serves the manifest under the reference already:
    /// nothing of it was sent (its blobs were each reported skipped).
    UpToDate {
        /// The full reference.
        reference: String,
        /// The manifest's digest.
        digest: Digest,
    },
}

/// What one blob's push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The registry had it.
    Skipped,
    /// Mounted from this repository.
    Mounted(String),
    /// Uploaded.
    Uploaded,
}

/// The result of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The manifest's digest.
    pub digest: Digest,
    /// Bytes of blobs uploaded (not counting retried attempts or the manifest).
    pub bytes_uploaded: u64,
    /// Blobs the registry had already.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Whether the registry served the manifest under the reference
    /// already, so that nothing was sent (every blob counts as skipped).
    pub up_to_date: bool,
}

impl PushReport {
    /// An empty report for pushing `digest` (an image's or an index's,
    /// as `what` says) to `reference`, which may pin no other digest.
    fn start(reference: &Reference, digest: &Digest, what: &str) -> Result<PushReport> {
        if let Some(pinned) = reference.digest() {
            if pinned != digest {
                return Err(Error::InvalidReference {
                    reference: reference.to_string(),
                    reason: format!("the {what} to push has digest {digest}"),
                });
            }
        }
        Ok(PushReport {
            digest: digest.clone(),
            bytes_uploaded: 0,
            blobs_skipped: 0,
            blobs_mounted: 0,
            blobs_uploaded: 0,
            up_to_date: false,
        })
    }

    /// Adds the counts of `other` (an image of an index pushed).
    fn add(&mut self, other: &PushReport) {
        self.bytes_uploaded += other.bytes_uploaded;
        self.blobs_skipped += other.blobs_skipped;
        self.blobs_mounted += other.blobs_mounted;
        self.blobs_uploaded += other.blobs_uploaded;
    }

    /// Counts one blob of `size` bytes that `outcome` made present.
    pub(crate) fn count(&mut self, outcome: &BlobOutcome, size: u64) {
        match outcome {
            BlobOutcome::Skipped => self.blobs_skipped += 1,
            BlobOutcome::Mounted(_) => self.blobs_mounted += 1,
            BlobOutcome::Uploaded => {
                self.blobs_uploaded += 1;
                self.bytes_uploaded += size;
            }
        }
    }
}

/// Where a push goes: the store its blobs come from, the reference (its
/// repository, and the tag a manifest gets), and what hears of its
/// progress. Every step of a push ([`Client::push_blob`],
/// [`Client::push_manifest`], [`Client::push_index`]) takes one.
#[derive(Clone, Copy)]
pub struct PushTo<'a> {
    /// The store that holds the blobs and manifests to push.
    pub store: &'a BlobStore,
    /// Where they go.
    pub reference: &'a Reference,
    /// Told of each step.
    pub progress: &'a dyn Fn(PushEvent),
}

impl std::fmt::Debug for PushTo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTo").field("reference", &self.reference).finish_non_exhaustive()
    }
}

impl<'a> PushTo<'a> {
    /// The same push, to `reference` instead.
    pub fn at(&self, reference: &'a Reference) -> PushTo<'a> {
        PushTo { reference, ..*self }
    }

    /// Reports a retry as a [`PushEvent::Retrying`].
    fn notify(&self, notice: RetryNotice) {
        (self.progress)(PushEvent::Retrying(notice))
    }
}

/// What a mount attempt came to.
enum Mount {
    /// The registry mounted the blob from this repository.
    Mounted(String),
    /// No mount worked; a refused mount may have opened an upload session.
    Refused {
        /// The session's location, if one was opened.
        session: Option<String>,
    },
}

/// Why an upload attempt failed, and whether starting it again may help.
struct Failure {
    error: Box<Error>,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let retryable = matches!(error, Error::Unreachable { .. });
        Failure { error: Box::new(error), retryable, retry_after: None }
    }
}

/// One blob to upload: which, how large, where.
#[derive(Clone, Copy)]
struct Blob<'a> {
    to: PushTo<'a>,
    digest: &'a Digest,
    size: u64,
}

impl Client {
    /// Pushes `image` (whose blobs are in `store`) to `reference`: blobs,
    /// then the manifest by digest, then the tag. See the module docs.
    pub fn push(
        &self,
        store: &BlobStore,
        image: &Image,
        reference: &Reference,
        progress: &dyn Fn(PushEvent),
    ) -> Result<PushReport> {
        self.push_image(PushTo { store, reference, progress }, image)
    }

    /// [`Client::push`], of a [`PushTo`].
    fn push_image(&self, to: PushTo<'_>, image: &Image) -> Result<PushReport> {
        let report = PushReport::start(to.reference, &image.manifest_digest, "image")?;
        let blobs = blobs_of(image)?;
        if self.serves(to, &image.manifest_digest)? {
            return self.up_to_date(to, report, &blobs);
        }
        self.push_blobs_and_manifest(to, report, image, &blobs)
    }

    /// The blobs of `image`, then its manifest by digest and under the tag.
    fn push_blobs_and_manifest(
        &self,
        to: PushTo<'_>,
        mut report: PushReport,
        image: &Image,
        blobs: &[Digest],
    ) -> Result<PushReport> {
        for digest in blobs {
            let outcome = self.push_blob(to, digest)?;
            report.count(&outcome, to.store.size(digest)?);
        }
        self.push_manifest(to, image)?;
        Ok(report)
    }

    /// Whether the registry serves the manifest `digest` under the
    /// reference's tag (by digest, for a reference without one): `HEAD`
    /// of the manifest, its `Docker-Content-Digest` compared. Any answer
    /// but a match (no such tag, another digest, no header, a refusal)
    /// is `false`: the push then goes the whole way and reports what is
    /// wrong. See the module docs.
    pub fn serves(&self, to: PushTo<'_>, digest: &Digest) -> Result<bool> {
        let reference = to.reference;
        let repository = reference.repository();
        let target = reference.tag().map_or_else(|| digest.to_string(), str::to_owned);
        let head = Call {
            method: "HEAD",
            url: format!("/v2/{repository}/manifests/{target}"),
            headers: vec![("Accept", accept_manifests())],
            body: None,
            scopes: vec![push_scope(repository)],
            retry: true,
        };
        let response = self.call(reference, &head, &|n| to.notify(n))?;
        if response.status().as_u16() != 200 {
            return Ok(false);
        }
        Ok(match header(&response, "docker-content-digest") {
            Some(said) => said == digest.to_string(),
            // The path named the digest: what answers to it is that manifest.
            None => reference.tag().is_none(),
        })
    }

    /// The report of a push that found the manifest there already: every
    /// blob of `blobs` counted and reported skipped, remembered as a blob
    /// of the repository (for mounts), nothing sent.
    fn up_to_date(&self, to: PushTo<'_>, mut report: PushReport, blobs: &[Digest]) -> Result<PushReport> {
        for digest in blobs {
            let size = to.store.size(digest)?;
            report.count(&BlobOutcome::Skipped, size);
            (to.progress)(PushEvent::BlobSkipped { digest: digest.clone(), size });
        }
        remember_source(to.store, to.reference, blobs.iter().cloned());
        report.up_to_date = true;
        (to.progress)(PushEvent::UpToDate {
            reference: to.reference.to_string(),
            digest: report.digest.clone(),
        });
        Ok(report)
    }

    /// Makes sure the registry has one blob of the store in the
    /// repository pushed to: skipped if there, mounted if possible, else
    /// uploaded. Safe to call from several threads for different blobs.
    pub fn push_blob(&self, to: PushTo<'_>, digest: &Digest) -> Result<BlobOutcome> {
        // Single flight per digest across threads (see `Client::blob_locks`).
        let lock = {
            let mut locks = self.blob_locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(digest.to_string()).or_default().clone()
        };
        let _flight = lock.lock().unwrap_or_else(|e| e.into_inner());
        let blob = Blob { to, digest, size: to.store.size(digest)? };
        let outcome = self.make_present(blob)?;
        remember_source(to.store, to.reference, [digest.clone()]);
        let (digest, size) = (digest.clone(), blob.size);
        (to.progress)(match &outcome {
            BlobOutcome::Skipped => PushEvent::BlobSkipped { digest, size },
            BlobOutcome::Mounted(from) => PushEvent::BlobMounted { digest, size, from: from.clone() },
            BlobOutcome::Uploaded => PushEvent::BlobUploaded { digest, size },
        });
        Ok(outcome)
    }

    /// Skips, mounts or uploads `blob`, in that order of preference.
    fn make_present(&self, blob: Blob<'_>) -> Result<BlobOutcome> {
        if self.has_blob(blob.to.reference, blob.digest, &|n| blob.to.notify(n))? {
            return Ok(BlobOutcome::Skipped);
        }
        match self.mount(blob)? {
            Mount::Mounted(from) => Ok(BlobOutcome::Mounted(from)),
            Mount::Refused { session } => {
                self.upload_with_retries(blob, session)?;
                Ok(BlobOutcome::Uploaded)
            }
        }
    }

    /// `HEAD /v2/NAME/blobs/DIGEST`: whether the repository has the blob.
    pub fn has_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<bool> {
        let repository = reference.repository();
        let head = Call {
            method: "HEAD",
            url: format!("/v2/{repository}/blobs/{digest}"),
            headers: Vec::new(),
            body: None,
            scopes: vec![push_scope(repository)],
            retry: true,
        };
        let response = self.call(reference, &head, notify)?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(self.unexpected(reference, "HEAD", &head.url, status, response)),
        }
    }

    /// Tries to mount the blob from each repository known to hold it.
    fn mount(&self, blob: Blob<'_>) -> Result<Mount> {
        let Blob { to, digest, .. } = blob;
        let repository = to.reference.repository();
        for from in mount_sources(to.store, to.reference, digest) {
            let mount = Call {
                method: "POST",
                url: format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"),
                headers: Vec::new(),
                body: None,
                scopes: vec![push_scope(repository), pull_scope(&from)],
                retry: true,
            };
            let response = self.call(to.reference, &mount, &|n| to.notify(n))?;
            match response.status().as_u16() {
                201 => return Ok(Mount::Mounted(from)),
                // Refused, but an upload session was opened for us.
                202 => return Ok(Mount::Refused { session: header(&response, "location") }),
                // Refused outright (no such source, not allowed): try the next.
                _ => {}
            }
        }
        Ok(Mount::Refused { session: None })
    }

    /// Uploads the blob, starting again in a new session after a transient
    /// failure (the first attempt uses `session` if a refused mount opened one).
    fn upload_with_retries(&self, blob: Blob<'_>, mut session: Option<String>) -> Result<()> {
        let Blob { to, digest, size } = blob;
        self.retry_policy().run(
            || format!("upload of blob {digest}"),
            &|n| to.notify(n),
            || {
                (to.progress)(PushEvent::BlobStarted { digest: digest.clone(), size });
                match self.upload(blob, session.take()) {
                    Ok(()) => Attempt::Done(Ok(())),
                    Err(failure) if failure.retryable => Attempt::Transient {
                        reason: failure.error.to_string(),
                        retry_after: failure.retry_after,
                        give_up: Err(*failure.error),
                    },
                    Err(failure) => Attempt::Done(Err(*failure.error)),
                }
            },
        )
    }

    /// One attempt at uploading a blob, in a new session unless `session`
    /// is one already opened (by a refused mount).
    fn upload(&self, blob: Blob<'_>, session: Option<String>) -> std::result::Result<(), Failure> {
        let Blob { to, digest, size } = blob;
        let reference = to.reference;
        let repository = reference.repository();
        let scopes = vec![push_scope(repository)];
        let mut location = match session {
            Some(location) => location,
            None => {
                let start = Call {
                    method: "POST",
                    url: format!("/v2/{repository}/blobs/uploads/"),
                    headers: Vec::new(),
                    body: None,
                    scopes: scopes.clone(),
                    retry: true,
                };
                let response = self.upload_step(to, &start, 202)?;
                location_of(&response, &start.url)?
            }
        };
        let path = to.store.path(digest);
        let chunk = self.options.chunk_size.max(1);
        let octets = || vec![("Content-Type", "application/octet-stream".to_owned())];
        let mut offset = 0;
        if size > chunk {
            while offset < size {
                let len = chunk.min(size - offset);
                let body = |start: u64, len: u64| blob_body(&path, digest, start, len, size, to.progress);
                let make = move || body(offset, len);
                let mut headers = octets();
                headers.push(("Content-Range", format!("{offset}-{}", offset + len - 1)));
                let patch = Call {
                    method: "PATCH",
                    url: location.clone(),
                    headers,
                    body: Some(&make as BodyFn),
                    scopes: scopes.clone(),
                    retry: false,
                };
                let response = self.upload_step(to, &patch, 202)?;
                location = location_of(&response, &patch.url)?;
                offset += len;
            }
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let make = || blob_body(&path, digest, offset, size - offset, size, to.progress);
        let put = Call {
            method: "PUT",
            url: format!("{location}{separator}digest={digest}"),
            headers: octets(),
            body: Some(&make as BodyFn),
            scopes,
            retry: false,
        };
        self.upload_step(to, &put, 201)?;
        Ok(())
    }

    /// Sends one request of an upload session; a status other than
    /// `expected` is a [`Failure`], retryable when transient or when the
    /// session was lost (`404 BLOB_UPLOAD_UNKNOWN` is worth a new one).
    fn upload_step(
        &self,
        to: PushTo<'_>,
        call: &Call<'_>,
        expected: u16,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, Failure> {
        let response = self.call(to.reference, call, &|n| to.notify(n))?;
        let status = response.status().as_u16();
        if status != expected {
            let retry_after = retry_after(&response);
            let error = self.unexpected(to.reference, call.method, &call.url, status, response);
            let retryable = is_transient_status(status) || status == 404;
            return Err(Failure { error: Box::new(error), retryable, retry_after });
        }
        Ok(response)
    }

    /// Pushes the manifest by digest, then tags it (if the reference has
    /// a tag). All its blobs must be in the registry already.
    pub fn push_manifest(&self, to: PushTo<'_>, image: &Image) -> Result<()> {
        let media_type = image
            .manifest
            .media_type()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned());
        self.put_manifest(to, &image.manifest_digest, &media_type).map(drop)
    }

    /// Pushes `index` (whose images are in the store) to the reference:
    /// each image as [`Client::push`] does but by digest only, then the
    /// index by digest, then the tag. The report counts the blobs of every
    /// image and has the index's digest.
    pub fn push_index(&self, to: PushTo<'_>, index: &forge_oci::Index) -> Result<PushReport> {
        let mut report = PushReport::start(to.reference, &index.digest, "index")?;
        if self.serves(to, &index.digest)? {
            let mut blobs = Vec::new();
            for image in &index.images {
                blobs.extend(blobs_of(image)?);
            }
            return self.up_to_date(to, report, &blobs);
        }
        for image in &index.images {
            let by_digest = to.reference.with_digest(&image.manifest_digest);
            report.add(&self.push_image(to.at(&by_digest), image)?);
        }
        self.put_manifest(to, &index.digest, "application/vnd.oci.image.index.v1+json")?;
        Ok(report)
    }

    /// PUTs the manifest or index `digest` of the store by digest, then
    /// under the tag of the reference if it has one. Returns the
    /// `OCI-Subject` header of the answer to the PUT by digest: a registry
    /// with the referrers API sends it for a manifest with a `subject`.
    pub(crate) fn put_manifest(
        &self,
        to: PushTo<'_>,
        digest: &Digest,
        media_type: &str,
    ) -> Result<Option<String>> {
        let PushTo { store, reference, progress } = to;
        let mut oci_subject = None;
        let bytes = store.read_verified(digest)?;
        let media_type = media_type.to_owned();
        let mut targets = vec![digest.to_string()];
        targets.extend(reference.tag().map(str::to_owned));
        for target in targets {
            let body = || Ok((Box::new(bytes.as_slice()) as Box<dyn Read>, bytes.len() as u64));
            let put = Call {
                method: "PUT",
                url: format!("/v2/{}/manifests/{target}", reference.repository()),
                headers: vec![("Content-Type", media_type.clone())],
                body: Some(&body as BodyFn),
                scopes: vec![push_scope(reference.repository())],
                retry: true,
            };
            let response = self.call(reference, &put, &|n| to.notify(n))?;
            let status = response.status().as_u16();
            match status {
                201 | 200 => {}
                403 => return Err(self.denied(reference, "push to", response)),
                _ if (400..500).contains(&status) => {
                    return Err(Error::ManifestRejected {
                        reference: reference.to_string(),
                        status,
                        errors: error_body(response),
                    })
                }
                _ => return Err(self.unexpected(reference, "PUT", &put.url, status, response)),
            }
            if let Some(said) = header(&response, "docker-content-digest") {
                if said != digest.to_string() {
                    let found = Digest::parse(&said)?;
                    return Err(Error::DigestMismatch {
                        what: format!("manifest pushed to {reference}"),
                        expected: digest.clone(),
                        found,
                    });
                }
            }
            if target == digest.to_string() {
                oci_subject = header(&response, "oci-subject");
                progress(PushEvent::ManifestPushed { digest: digest.clone() });
            } else {
                progress(PushEvent::Tagged { reference: reference.to_string() });
            }
        }
        Ok(oci_subject)
    }

    fn unexpected(
        &self,
        reference: &Reference,
        method: &'static str,
        url: &str,
        status: u16,
        response: ureq::http::Response<ureq::Body>,
    ) -> Error {
        if status == 403 {
            return self.denied(reference, "push to", response);
        }
        Error::Status { method, url: self.absolute(reference, url), status, errors: error_body(response) }
    }
}

/// The config and the layers of `image`, in the manifest's order.
fn blobs_of(image: &Image) -> Result<Vec<Digest>> {
    std::iter::once(image.manifest.config())
        .chain(image.manifest.layers())
        .map(|descriptor| Digest::from_descriptor(descriptor).map_err(Error::from))
        .collect()
}

/// The `Location` of an upload session.
fn location_of(
    response: &ureq::http::Response<ureq::Body>,
    url: &str,
) -> std::result::Result<String, Failure> {
    header(response, "location").ok_or_else(|| {
        Failure::from(Error::Protocol {
            url: url.to_owned(),
            reason: "the registry gave no upload location".into(),
        })
    })
}

/// `len` bytes of the blob from `start`, reporting progress as they are read.
fn blob_body<'a>(
    path: &std::path::Path,
    digest: &'a Digest,
    start: u64,
    len: u64,
    size: u64,
    progress: &'a dyn Fn(PushEvent),
) -> Result<(Box<dyn Read + 'a>, u64)> {
    let io_error = |source| Error::from(IoError::new("reading", path, source));
    let mut file = File::open(path).map_err(io_error)?;
    file.seek(SeekFrom::Start(start)).map_err(io_error)?;
    let reader = Counting { inner: file.take(len), digest, sent: start, reported: start, size, progress };
    Ok((Box::new(reader), len))
}

struct Counting<'a, R> {
    inner: R,
    digest: &'a Digest,
    sent: u64,
    reported: u64,
    size: u64,
    progress: &'a dyn Fn(PushEvent),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        if self.sent - self.reported >= PROGRESS_STEP || (n > 0 && self.sent == self.size) {
            self.reported = self.sent;
            (self.progress)(PushEvent::BlobProgress {
                digest: self.digest.clone(),
                sent: self.sent,
                size: self.size,
            });
        }
        Ok(n)
    }
}
