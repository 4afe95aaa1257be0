//! Pushing an image from the local store.
//!
//! The order is what makes a failed push harmless: blobs first (each one
//! skipped when the registry has it, mounted from a sibling repository when
//! possible, uploaded otherwise), then the manifest by digest, and the tag
//! last. A push that fails at any point leaves no tag pointing at missing
//! blobs, and the tag moves only once everything it names is there.
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
        })
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
        let mut report = PushReport::start(reference, &image.manifest_digest, "image")?;
        let mut blobs = vec![image.manifest.config().clone()];
        blobs.extend(image.manifest.layers().iter().cloned());
        for descriptor in &blobs {
            let digest = Digest::from_descriptor(descriptor)?;
            let size = store.size(&digest)?;
            let outcome = self.push_blob(store, &digest, reference, progress)?;
            report.count(&outcome, size);
        }
        self.push_manifest(store, image, reference, progress)?;
        Ok(report)
    }

    /// Makes sure the registry has one blob of `store` in `reference`'s
    /// repository: skipped if there, mounted if possible, else uploaded.
    /// Safe to call from several threads for different blobs.
    pub fn push_blob(
        &self,
        store: &BlobStore,
        digest: &Digest,
        reference: &Reference,
        progress: &dyn Fn(PushEvent),
    ) -> Result<BlobOutcome> {
        // Single flight per digest across threads (see `Client::blob_locks`).
        let lock = {
            let mut locks = self.blob_locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(digest.to_string()).or_default().clone()
        };
        let _flight = lock.lock().unwrap_or_else(|e| e.into_inner());
        let size = store.size(digest)?;
        let notify = |n: RetryNotice| progress(PushEvent::Retrying(n));
        if self.has_blob(reference, digest, &notify)? {
            remember_source(store, reference, [digest.clone()]);
            progress(PushEvent::BlobSkipped { digest: digest.clone(), size });
            return Ok(BlobOutcome::Skipped);
        }
        let session = match self.mount(store, reference, digest, &notify)? {
            Mount::Mounted(from) => {
                remember_source(store, reference, [digest.clone()]);
                progress(PushEvent::BlobMounted { digest: digest.clone(), size, from: from.clone() });
                return Ok(BlobOutcome::Mounted(from));
            }
            Mount::Refused { session } => session,
        };
        self.upload_with_retries(store, digest, size, reference, session, progress)?;
        remember_source(store, reference, [digest.clone()]);
        progress(PushEvent::BlobUploaded { digest: digest.clone(), size });
        Ok(BlobOutcome::Uploaded)
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
    fn mount(
        &self,
        store: &BlobStore,
        reference: &Reference,
        digest: &Digest,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<Mount> {
        let repository = reference.repository();
        for from in mount_sources(store, reference, digest) {
            let mount = Call {
                method: "POST",
                url: format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"),
                headers: Vec::new(),
                body: None,
                scopes: vec![push_scope(repository), pull_scope(&from)],
                retry: true,
            };
            let response = self.call(reference, &mount, notify)?;
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
    fn upload_with_retries(
        &self,
        store: &BlobStore,
        digest: &Digest,
        size: u64,
        reference: &Reference,
        mut session: Option<String>,
        progress: &dyn Fn(PushEvent),
    ) -> Result<()> {
        let notify = |n: RetryNotice| progress(PushEvent::Retrying(n));
        self.retry_policy().run(
            || format!("upload of blob {digest}"),
            &notify,
            || {
                progress(PushEvent::BlobStarted { digest: digest.clone(), size });
                match self.upload(store, digest, size, reference, session.take(), progress) {
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
    fn upload(
        &self,
        store: &BlobStore,
        digest: &Digest,
        size: u64,
        reference: &Reference,
        session: Option<String>,
        progress: &dyn Fn(PushEvent),
    ) -> std::result::Result<(), Failure> {
        let notify = |n: RetryNotice| progress(PushEvent::Retrying(n));
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
                let response = self.upload_step(reference, &start, 202, &notify)?;
                location_of(&response, &start.url)?
            }
        };
        let path = store.path(digest);
        let chunk = self.options.chunk_size.max(1);
        let octets = || vec![("Content-Type", "application/octet-stream".to_owned())];
        let mut offset = 0;
        if size > chunk {
            while offset < size {
                let len = chunk.min(size - offset);
                let body = |start: u64, len: u64| blob_body(&path, digest, start, len, size, progress);
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
                let response = self.upload_step(reference, &patch, 202, &notify)?;
                location = location_of(&response, &patch.url)?;
                offset += len;
            }
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let make = || blob_body(&path, digest, offset, size - offset, size, progress);
        let put = Call {
            method: "PUT",
            url: format!("{location}{separator}digest={digest}"),
            headers: octets(),
            body: Some(&make as BodyFn),
            scopes,
            retry: false,
        };
        self.upload_step(reference, &put, 201, &notify)?;
        Ok(())
    }

    /// Sends one request of an upload session; a status other than
    /// `expected` is a [`Failure`] (retryable as [`Client::failure`] says).
    fn upload_step(
        &self,
        reference: &Reference,
        call: &Call<'_>,
        expected: u16,
        notify: &dyn Fn(RetryNotice),
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, Failure> {
        let response = self.call(reference, call, notify)?;
        let status = response.status().as_u16();
        if status != expected {
            return Err(self.failure(reference, call.method, &call.url, status, response));
        }
        Ok(response)
    }

    /// Pushes the manifest by digest, then tags it (if `reference` has a
    /// tag). All its blobs must be in the registry already.
    pub fn push_manifest(
        &self,
        store: &BlobStore,
        image: &Image,
        reference: &Reference,
        progress: &dyn Fn(PushEvent),
    ) -> Result<()> {
        let media_type = image
            .manifest
            .media_type()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned());
        self.put_manifest(store, &image.manifest_digest, &media_type, reference, progress).map(drop)
    }

    /// Pushes `index` (whose images are in `store`) to `reference`: each
    /// image as [`Client::push`] does but by digest only, then the index
    /// by digest, then the tag. The report counts the blobs of every
    /// image and has the index's digest.
    pub fn push_index(
        &self,
        store: &BlobStore,
        index: &forge_oci::Index,
        reference: &Reference,
        progress: &dyn Fn(PushEvent),
    ) -> Result<PushReport> {
        let mut report = PushReport::start(reference, &index.digest, "index")?;
        for image in &index.images {
            let pushed = self.push(store, image, &reference.with_digest(&image.manifest_digest), progress)?;
            report.bytes_uploaded += pushed.bytes_uploaded;
            report.blobs_skipped += pushed.blobs_skipped;
            report.blobs_mounted += pushed.blobs_mounted;
            report.blobs_uploaded += pushed.blobs_uploaded;
        }
        self.put_manifest(
            store,
            &index.digest,
            "application/vnd.oci.image.index.v1+json",
            reference,
            progress,
        )?;
        Ok(report)
    }

    /// PUTs the manifest or index `digest` of `store` by digest, then
    /// under the tag of `reference` if it has one. Returns the
    /// `OCI-Subject` header of the answer to the PUT by digest: a registry
    /// with the referrers API sends it for a manifest with a `subject`.
    pub(crate) fn put_manifest(
        &self,
        store: &BlobStore,
        digest: &Digest,
        media_type: &str,
        reference: &Reference,
        progress: &dyn Fn(PushEvent),
    ) -> Result<Option<String>> {
        let mut oci_subject = None;
        let notify = |n: RetryNotice| progress(PushEvent::Retrying(n));
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
            let response = self.call(reference, &put, &notify)?;
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

    fn failure(
        &self,
        reference: &Reference,
        method: &'static str,
        url: &str,
        status: u16,
        response: ureq::http::Response<ureq::Body>,
    ) -> Failure {
        let retry_after = retry_after(&response);
        // A lost session (404 BLOB_UPLOAD_UNKNOWN) is worth a new one.
        let retryable = is_transient_status(status) || status == 404;
        Failure {
            error: Box::new(self.unexpected(reference, method, url, status, response)),
            retryable,
            retry_after,
        }
    }
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
