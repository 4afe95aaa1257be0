//! Downloads from a Debian mirror into a content-addressed on-disk cache.
//!
//! Files the archive pins by digest (`Packages` indexes, `.deb`s) live under
//! `CACHE/sha256/<hex>`; they are written to a temporary file in the cache
//! (`CACHE/tmp/.tmp-<pid>-…`, removed on SIGTERM and, after a `kill -9`, by
//! the next fetcher: see `forge_oci::temp`) while hashed, checked against the expected size and SHA-256, and only
//! then renamed into place, so a final name never holds a partial or wrong
//! file. Files that change under a fixed URL (`InRelease`) live under
//! `CACHE/url/<sha256 of the URL>` and are fetched again only on request.
//! With everything cached, nothing touches the network. Transient failures
//! are retried by `forge-retry`'s policy (twice, after 1 s and 2 s, or after
//! the mirror's `Retry-After`).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use forge_digest::{is_sha256_hex, CopyError, Digest, HashingReader, HashingWriter};
use forge_retry::{is_transient_error, is_transient_status, retry_after, status_text, Attempt, RetryPolicy};

use crate::error::{Error, Result};

/// How transient failures are retried: three attempts in all, one second
/// before the first retry.
fn retry_policy() -> RetryPolicy {
    RetryPolicy { retries: 2, first_delay: Duration::from_secs(1), ..RetryPolicy::default() }
}

/// A mirror and the cache its files go through.
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache_dir: PathBuf,
    mirror: String,
    agent: ureq::Agent,
    offline: bool,
}

impl Fetcher {
    /// A fetcher for `mirror_url` (e.g. `http://deb.debian.org/debian`)
    /// caching under `cache_dir`, which is created if needed.
    pub fn new(cache_dir: impl Into<PathBuf>, mirror_url: &str) -> Result<Fetcher> {
        let cache_dir = cache_dir.into();
        for sub in ["sha256", "url", "tmp"] {
            let dir = cache_dir.join(sub);
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating cache directory", &dir, e))?;
        }
        // What killed runs left in `tmp/` (their pid no longer runs) goes;
        // a live run's downloads are never touched.
        forge_oci::temp::remove(&cache_dir.join("tmp"), forge_oci::temp::Scope::Stale);
        let agent = forge_retry::download_agent();
        Ok(Fetcher { cache_dir, mirror: mirror_url.trim_end_matches('/').to_owned(), agent, offline: false })
    }

    /// The same cache, HTTP agent and offline setting for another archive
    /// (for example `debian-security` beside `debian`).
    pub fn with_mirror(&self, mirror_url: &str) -> Fetcher {
        Fetcher {
            cache_dir: self.cache_dir.clone(),
            mirror: mirror_url.trim_end_matches('/').to_owned(),
            agent: self.agent.clone(),
            offline: self.offline,
        }
    }

    /// Never use the network: what is not cached is an [`Error::Offline`].
    pub fn set_offline(&mut self, offline: bool) {
        self.offline = offline;
    }

    /// The mirror's base URL, without a trailing slash.
    pub fn mirror(&self) -> &str {
        &self.mirror
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The URL of `path_on_mirror`.
    pub fn url(&self, path_on_mirror: &str) -> String {
        format!("{}/{}", self.mirror, path_on_mirror.trim_start_matches('/'))
    }

    /// Where the file of digest `sha256` is cached (whether or not it is).
    pub fn cached_path(&self, sha256: &str) -> PathBuf {
        self.cache_dir.join("sha256").join(sha256)
    }

    /// The file at `path_on_mirror` with the given SHA-256 (lowercase hex)
    /// and size: the cached copy if it is there and verifies, else a fresh
    /// download, verified before it is stored.
    pub fn fetch_verified(&self, path_on_mirror: &str, sha256: &str, size: u64) -> Result<PathBuf> {
        if !is_sha256_hex(sha256) {
            return Err(Error::InvalidDigest(sha256.to_owned()));
        }
        let url = self.url(path_on_mirror);
        let dest = self.cached_path(sha256);
        if dest.exists() {
            match verify_file(&dest, &url, sha256, size) {
                Ok(()) => return Ok(dest),
                // A damaged cache entry is dropped and fetched again.
                Err(Error::DigestMismatch { .. } | Error::SizeMismatch { .. }) => {
                    fs::remove_file(&dest)
                        .map_err(|e| Error::io("removing damaged cache entry", &dest, e))?;
                }
                Err(e) => return Err(e),
            }
        }
        let (tmp, found_size, found) = self.download(&url, Some(size))?;
        if found_size != size {
            return Err(Error::SizeMismatch { url, expected: size, found: found_size });
        }
        if found != sha256 {
            return Err(Error::DigestMismatch { url, expected: sha256.to_owned(), found });
        }
        tmp.persist(&dest).map_err(|e| Error::io("storing in cache", &dest, e.error))?;
        Ok(dest)
    }

    /// A file that changes under its URL (such as `InRelease`): the cached
    /// copy unless `refresh` is set or there is none, else a fresh download.
    /// Nothing is verified here; the caller checks the content.
    pub fn fetch_mutable(&self, path_on_mirror: &str, refresh: bool) -> Result<PathBuf> {
        let url = self.url(path_on_mirror);
        let dest = self.cache_dir.join("url").join(Digest::of(url.as_bytes()).hex());
        if dest.exists() && !refresh {
            return Ok(dest);
        }
        let (tmp, _, _) = self.download(&url, None)?;
        tmp.persist(&dest).map_err(|e| Error::io("storing in cache", &dest, e.error))?;
        Ok(dest)
    }

    /// Forgets the cached copy of a mutable file (after it failed verification).
    pub fn forget_mutable(&self, path_on_mirror: &str) -> Result<()> {
        let url = self.url(path_on_mirror);
        let dest = self.cache_dir.join("url").join(Digest::of(url.as_bytes()).hex());
        match fs::remove_file(&dest) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("removing cache entry", &dest, e)),
            _ => Ok(()),
        }
    }

    /// Downloads `url` into a temporary file of the cache, hashing it on
    /// the way (returns the file, its size and SHA-256), retrying
    /// transient failures; stops reading past `limit` bytes (+1, so that an
    /// oversized answer is seen as such).
    fn download(&self, url: &str, limit: Option<u64>) -> Result<Downloaded> {
        if self.offline {
            return Err(Error::Offline { url: url.to_owned(), cache: self.cache_dir.clone() });
        }
        retry_policy().run(|| format!("GET {url}"), &|_| {}, || self.download_once(url, limit))
    }

    fn download_once(&self, url: &str, limit: Option<u64>) -> Attempt<Downloaded, Error> {
        let transient = |reason: String, retry_after, error| Attempt::Transient {
            give_up: Err(error),
            reason,
            retry_after,
        };
        let response = match self.agent.get(url).call() {
            Ok(response) => response,
            Err(e) if is_transient_error(&e) => {
                return transient(
                    e.to_string(),
                    None,
                    Error::Http { url: url.to_owned(), source: Box::new(e) },
                )
            }
            Err(e) => return Attempt::Done(Err(Error::Http { url: url.to_owned(), source: Box::new(e) })),
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let error = Error::HttpStatus { url: url.to_owned(), status };
            return if is_transient_status(status) {
                transient(status_text(status), retry_after(&response), error)
            } else {
                Attempt::Done(Err(error))
            };
        }
        match self.save(url, response, limit) {
            Ok(downloaded) => Attempt::Done(Ok(downloaded)),
            Err((true, error)) => transient(error.to_string(), None, error),
            Err((false, error)) => Attempt::Done(Err(error)),
        }
    }

    /// Streams a response body into a temporary file of the cache; a read
    /// error (the connection lost midway) is transient (`true`).
    fn save(
        &self,
        url: &str,
        response: ureq::http::Response<ureq::Body>,
        limit: Option<u64>,
    ) -> Result<Downloaded, (bool, Error)> {
        let tmp_dir = self.cache_dir.join("tmp");
        // Named after this process (forge_oci::temp): removed on SIGTERM,
        // and by the next fetcher after a `kill -9`.
        forge_oci::temp::register_dir(&tmp_dir);
        let mut tmp = tempfile::Builder::new()
            .prefix(&forge_oci::temp::prefix(".tmp-"))
            .tempfile_in(&tmp_dir)
            .map_err(|e| (false, Error::io("creating temporary file in", &tmp_dir, e)))?;
        let reader = response.into_body().into_reader();
        let mut reader: Box<dyn Read> = match limit {
            Some(n) => Box::new(reader.take(n.saturating_add(1))),
            None => Box::new(reader),
        };
        let tmp_path = tmp.path().to_owned();
        let write_error = |e| (false, Error::io("writing", &tmp_path, e));
        let mut out = HashingWriter::new(tmp.as_file_mut());
        out.copy_from(&mut reader).map_err(|e| match e {
            CopyError::Read(e) => (true, Error::io("downloading", url, e)),
            CopyError::Write(e) => write_error(e),
        })?;
        out.flush().map_err(write_error)?;
        let (digest, size, _) = out.finish();
        Ok((tmp, size, digest.hex().to_owned()))
    }
}

/// A finished download: the temporary file, its size and SHA-256.
type Downloaded = (tempfile::NamedTempFile, u64, String);

/// The size and SHA-256 (lowercase hex) of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut reader = HashingReader::new(file);
    io::copy(&mut reader, &mut io::sink()).map_err(|e| Error::io("reading", path, e))?;
    let (digest, size, _) = reader.finish();
    Ok((size, digest.hex().to_owned()))
}

/// Checks a file against an expected size and SHA-256; `url` names it in errors.
pub fn verify_file(path: &Path, url: &str, sha256: &str, size: u64) -> Result<()> {
    let (found_size, found) = hash_file(path)?;
    if found_size != size {
        return Err(Error::SizeMismatch { url: url.to_owned(), expected: size, found: found_size });
    }
    if found != sha256 {
        return Err(Error::DigestMismatch { url: url.to_owned(), expected: sha256.to_owned(), found });
    }
    Ok(())
}
