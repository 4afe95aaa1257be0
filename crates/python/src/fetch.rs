//! Verified wheel downloads into a content-addressed cache, and the one
//! HTTP path of this crate (uv's own wheel, index pages, wheels).
//!
//! A wheel lives at `CACHE/wheels/sha256/<hex>/<filename>`: the directory
//! is its SHA-256, the file keeps the wheel's name (installers read the
//! name's tags). A download streams into a pid-named temporary of
//! `CACHE/wheels/tmp` (see [`forge_oci::temp`]) while it is hashed, and is
//! renamed into place only once its size and SHA-256 match the lock, so a
//! final name never holds a partial or wrong file. A cached wheel is
//! hashed again before it is handed out (a damaged one is fetched anew);
//! with every wheel cached nothing touches the network. Transient failures
//! are retried by `forge-retry`'s policy.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use forge_digest::{is_sha256_hex, HashingReader, HashingWriter};
use forge_retry::{is_transient_error, is_transient_status, retry_after, status_text, Attempt, RetryPolicy};
use rayon::prelude::*;
use tempfile::NamedTempFile;

use crate::resolve::LockedWheel;
use crate::resolve_error::ResolveError;

/// The HTTP agent of every request here: the platform's certificate
/// store (as the registry client's, and uv's with `UV_SYSTEM_CERTS`),
/// bounded waits, bytes as served (we hash them), statuses judged by us.
pub(crate) fn agent() -> ureq::Agent {
    forge_retry::download_agent()
}

/// What a download must be: its SHA-256 (lowercase hex) and, when known,
/// its size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub(crate) sha256: &'a str,
    pub(crate) size: Option<u64>,
}

/// Downloads `url` into a pid-named temporary of `tmp_dir`, verified
/// against `expected` before it is returned.
pub(crate) fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    tmp_dir: &Path,
    expected: Expected<'_>,
) -> Result<NamedTempFile, ResolveError> {
    let limit = expected.size.map(|n| n.saturating_add(1));
    let (tmp, size, sha256) = RetryPolicy::default().run(
        || format!("GET {url}"),
        &|_| {},
        || attempt(agent, url, None, |body| save(url, body, tmp_dir, limit)),
    )?;
    check(url, expected, size, &sha256)?;
    Ok(tmp)
}

/// The body of `url` (an index page), at most `limit` bytes, with the
/// `Accept` header given.
pub(crate) fn get_bytes(
    agent: &ureq::Agent,
    url: &str,
    accept: &str,
    limit: u64,
) -> Result<Vec<u8>, ResolveError> {
    RetryPolicy::default().run(
        || format!("GET {url}"),
        &|_| {},
        || {
            attempt(agent, url, Some(accept), |body| {
                let mut bytes = Vec::new();
                match body.into_reader().take(limit).read_to_end(&mut bytes) {
                    Ok(_) => Ok(bytes),
                    Err(e) => Err(ReadFailed::transient(ResolveError::io("downloading", Path::new(url), e))),
                }
            })
        },
    )
}

/// A failure while reading a body, and whether another try may help.
#[derive(Debug)]
struct ReadFailed {
    transient: bool,
    error: Box<ResolveError>,
}

impl ReadFailed {
    fn transient(error: ResolveError) -> ReadFailed {
        ReadFailed { transient: true, error: Box::new(error) }
    }

    fn fatal(error: ResolveError) -> ReadFailed {
        ReadFailed { transient: false, error: Box::new(error) }
    }
}

/// One GET, its failure classified; `read` takes the body of a success
/// and says whether its own failure is transient.
fn attempt<T>(
    agent: &ureq::Agent,
    url: &str,
    accept: Option<&str>,
    read: impl FnOnce(ureq::Body) -> Result<T, ReadFailed>,
) -> Attempt<T, ResolveError> {
    let mut request = agent.get(url);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let http_error = |e: ureq::Error| ResolveError::Http { url: url.to_owned(), source: Box::new(e) };
    let response = match request.call() {
        Ok(response) => response,
        Err(e) if is_transient_error(&e) => {
            return Attempt::Transient {
                reason: e.to_string(),
                retry_after: None,
                give_up: Err(http_error(e)),
            }
        }
        Err(e) => return Attempt::Done(Err(http_error(e))),
    };
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let error = ResolveError::HttpStatus { url: url.to_owned(), status: status_text(status) };
        return if is_transient_status(status) {
            Attempt::Transient {
                reason: status_text(status),
                retry_after: retry_after(&response),
                give_up: Err(error),
            }
        } else {
            Attempt::Done(Err(error))
        };
    }
    match read(response.into_body()) {
        Ok(value) => Attempt::Done(Ok(value)),
        Err(ReadFailed { transient: true, error }) => {
            Attempt::Transient { reason: error.to_string(), retry_after: None, give_up: Err(*error) }
        }
        Err(ReadFailed { transient: false, error }) => Attempt::Done(Err(*error)),
    }
}

/// Streams a body into a pid-named temporary of `tmp_dir`, hashing it;
/// stops after `limit` bytes. A read error (the connection lost midway)
/// is transient (`true`).
fn save(
    url: &str,
    body: ureq::Body,
    tmp_dir: &Path,
    limit: Option<u64>,
) -> Result<(NamedTempFile, u64, String), ReadFailed> {
    let mut tmp = temp_file_in(tmp_dir).map_err(ReadFailed::fatal)?;
    let reader = body.into_reader();
    let mut reader: Box<dyn Read> = match limit {
        Some(n) => Box::new(reader.take(n)),
        None => Box::new(reader),
    };
    let tmp_path = tmp.path().to_owned();
    let write_error = |e| ReadFailed::fatal(ResolveError::io("writing", &tmp_path, e));
    let mut out = HashingWriter::new(tmp.as_file_mut());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadFailed::transient(ResolveError::io("downloading", Path::new(url), e))),
        };
        out.write_all(&buf[..n]).map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    let (digest, size, _) = out.finish();
    Ok((tmp, size, digest.hex().to_owned()))
}

/// A temporary file in `dir` (created if needed) named after this process.
pub(crate) fn temp_file_in(dir: &Path) -> Result<NamedTempFile, ResolveError> {
    fs::create_dir_all(dir).map_err(|e| ResolveError::io("creating directory", dir, e))?;
    forge_oci::temp::register_dir(dir);
    tempfile::Builder::new()
        .prefix(&forge_oci::temp::prefix(".tmp-"))
        .tempfile_in(dir)
        .map_err(|e| ResolveError::io("creating a temporary file in", dir, e))
}

fn check(url: &str, expected: Expected<'_>, size: u64, sha256: &str) -> Result<(), ResolveError> {
    if let Some(want) = expected.size {
        if want != size {
            return Err(ResolveError::SizeMismatch { url: url.to_owned(), expected: want, found: size });
        }
    }
    if sha256 != expected.sha256 {
        return Err(ResolveError::DigestMismatch {
            url: url.to_owned(),
            expected: expected.sha256.to_owned(),
            found: sha256.to_owned(),
        });
    }
    Ok(())
}

/// The size and SHA-256 (lowercase hex) of a file.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String), ResolveError> {
    let file = File::open(path).map_err(|e| ResolveError::io("opening", path, e))?;
    let mut reader = HashingReader::new(file);
    io::copy(&mut reader, &mut io::sink()).map_err(|e| ResolveError::io("reading", path, e))?;
    let (digest, size, _) = reader.finish();
    Ok((size, digest.hex().to_owned()))
}

/// Where `wheel` is cached under `cache_dir` (whether or not it is).
pub fn cached_path(cache_dir: &Path, wheel: &LockedWheel) -> Result<PathBuf, ResolveError> {
    check_wheel(wheel)?;
    Ok(cache_dir.join("wheels/sha256").join(&wheel.sha256).join(&wheel.filename))
}

/// A SHA-256 and a file name fit to be a cache path.
fn check_wheel(wheel: &LockedWheel) -> Result<(), ResolveError> {
    if !is_sha256_hex(&wheel.sha256) {
        return Err(ResolveError::InvalidSha256 {
            what: wheel.filename.clone(),
            value: wheel.sha256.clone(),
        });
    }
    let name = &wheel.filename;
    if !name.ends_with(".whl") || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
        return Err(ResolveError::UvOutput { problem: format!("{name:?} is not a wheel file name") });
    }
    Ok(())
}

/// The wheels, each from the cache when it is there and verifies, else
/// downloaded and verified; paths in the order of `wheels`. Several
/// downloads run side by side.
pub fn fetch(wheels: &[LockedWheel], cache_dir: &Path) -> Result<Vec<PathBuf>, ResolveError> {
    let agent = agent();
    let tmp_dir = cache_dir.join("wheels/tmp");
    wheels.par_iter().map(|wheel| fetch_one(&agent, wheel, cache_dir, &tmp_dir)).collect()
}

fn fetch_one(
    agent: &ureq::Agent,
    wheel: &LockedWheel,
    cache_dir: &Path,
    tmp_dir: &Path,
) -> Result<PathBuf, ResolveError> {
    let dest = cached_path(cache_dir, wheel)?;
    let expected = Expected { sha256: &wheel.sha256, size: wheel.size };
    if dest.exists() {
        let (size, sha256) = hash_file(&dest)?;
        match check(&wheel.url, expected, size, &sha256) {
            Ok(()) => return Ok(dest),
            // A damaged cache entry is dropped and fetched again.
            Err(_) => fs::remove_file(&dest).map_err(|e| ResolveError::io("removing damaged", &dest, e))?,
        }
    }
    let tmp = download_verified(agent, &wheel.url, tmp_dir, expected)?;
    let dir = dest.parent().unwrap_or(cache_dir);
    fs::create_dir_all(dir).map_err(|e| ResolveError::io("creating directory", dir, e))?;
    tmp.persist(&dest).map_err(|e| ResolveError::io("storing in the cache", &dest, e.error))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(filename: &str, sha256: &str) -> LockedWheel {
        LockedWheel {
            name: "x".into(),
            version: "1".into(),
            filename: filename.into(),
            url: "unsupported-scheme://nowhere/x.whl".into(),
            sha256: sha256.into(),
            size: Some(5),
            requested: true,
        }
    }

    #[test]
    fn cache_paths_are_by_sha256_and_file_name() {
        let hex = "a".repeat(64);
        let dir = Path::new("/c");
        let path = cached_path(dir, &wheel("x-1-py3-none-any.whl", &hex)).unwrap();
        assert_eq!(path, Path::new("/c/wheels/sha256").join(&hex).join("x-1-py3-none-any.whl"));
        for bad_name in ["../x.whl", "x-1-py3-none-any.tar.gz", ".whl", "a/b.whl"] {
            assert!(cached_path(dir, &wheel(bad_name, &hex)).is_err(), "{bad_name}");
        }
        for bad_hash in ["", "A".repeat(64).as_str(), &"a".repeat(63)] {
            assert!(matches!(
                cached_path(dir, &wheel("x-1-py3-none-any.whl", bad_hash)),
                Err(ResolveError::InvalidSha256 { .. })
            ));
        }
    }

    #[test]
    fn a_cached_wheel_is_used_without_network_and_a_damaged_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let hex = forge_digest::Digest::of(b"hello").hex().to_owned();
        let good = wheel("x-1-py3-none-any.whl", &hex);
        let path = cached_path(dir.path(), &good).unwrap();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"hello").unwrap();
        // The URL cannot be fetched at all: a hit must not try.
        assert_eq!(fetch(std::slice::from_ref(&good), dir.path()).unwrap(), vec![path.clone()]);
        fs::write(&path, b"hellO").unwrap();
        let err = fetch(&[good], dir.path()).unwrap_err();
        assert!(matches!(err, ResolveError::Http { .. }), "{err:?}");
        assert!(!path.exists(), "the damaged entry is dropped");
    }

    #[test]
    fn size_and_digest_are_checked() {
        let hex = forge_digest::Digest::of(b"hello").hex().to_owned();
        let expected = Expected { sha256: &hex, size: Some(5) };
        assert!(check("u", expected, 5, &hex).is_ok());
        assert!(matches!(check("u", expected, 4, &hex), Err(ResolveError::SizeMismatch { .. })));
        let other = "0".repeat(64);
        assert!(matches!(check("u", expected, 5, &other), Err(ResolveError::DigestMismatch { .. })));
        assert!(check("u", Expected { sha256: &hex, size: None }, 9, &hex).is_ok());
    }
}
