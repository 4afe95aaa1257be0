//! The fetcher against a small HTTP server on the loopback interface that
//! answers a fixed script of responses and then stops.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use forge_debian::fetch::{hash_file, Fetcher};
use forge_debian::Error;

/// Serves `script` (status, body) in order, one per connection; returns the
/// base URL and the request paths seen.
fn serve(script: Vec<(u16, Vec<u8>)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/debian", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    thread::spawn(move || {
        for (status, body) in script {
            let Ok((stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or(0);
            log.lock().unwrap().push(line.split_whitespace().nth(1).unwrap_or("").to_owned());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let mut stream = reader.into_inner();
            let head =
                format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (url, seen)
}

fn sha256(data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(&p, data).unwrap();
    hash_file(&p).unwrap().1
}

#[test]
fn verified_download_retry_cache_and_offline() {
    let body = b"a .deb, honestly".to_vec();
    let digest = sha256(&body);
    // One transient 503, then the file.
    let (url, seen) = serve(vec![(503, b"busy".to_vec()), (200, body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(cache.path(), &url).unwrap();
    let path = fetcher.fetch_verified("pool/a.deb", &digest, body.len() as u64).unwrap();
    assert_eq!(path, cache.path().join("sha256").join(&digest));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(*seen.lock().unwrap(), ["/debian/pool/a.deb", "/debian/pool/a.deb"]);

    // Cached: no network needed.
    let mut offline = Fetcher::new(cache.path(), "http://127.0.0.1:9/debian").unwrap();
    offline.set_offline(true);
    assert_eq!(offline.fetch_verified("pool/a.deb", &digest, body.len() as u64).unwrap(), path);
    let err = offline.fetch_verified("pool/b.deb", &"1".repeat(64), 3).unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err}");

    // A damaged cache entry is fetched again.
    std::fs::write(&path, b"rotten").unwrap();
    let (url, _) = serve(vec![(200, body.clone())]);
    let again = Fetcher::new(cache.path(), &url).unwrap();
    assert_eq!(
        std::fs::read(again.fetch_verified("pool/a.deb", &digest, body.len() as u64).unwrap()).unwrap(),
        body
    );
}

#[test]
fn mismatches_keep_nothing() {
    let body = b"tampered".to_vec();
    let expected = "e".repeat(64);
    let (url, seen) = serve(vec![(200, body.clone()), (200, body.clone()), (404, vec![])]);
    let cache = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(cache.path(), &url).unwrap();
    let err = fetcher.fetch_verified("pool/x.deb", &expected, body.len() as u64).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("sha256 mismatch for {url}/pool/x.deb: expected {expected}, found {}", sha256(&body))
    );
    let err = fetcher.fetch_verified("pool/x.deb", &expected, 3).unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { expected: 3, found: 4, .. }), "{err}");
    // 404 is not retried.
    let err = fetcher.fetch_verified("pool/y.deb", &expected, 3).unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 404, .. }), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 3);
    for sub in ["sha256", "tmp"] {
        let left: Vec<_> = std::fs::read_dir(cache.path().join(sub)).unwrap().collect();
        assert!(left.is_empty(), "{sub}: {left:?}");
    }
    let err = fetcher.fetch_verified("pool/x.deb", "ABC", 3).unwrap_err();
    assert_eq!(err.to_string(), "invalid sha256 digest `ABC`");
}

#[test]
fn mutable_files_refresh_on_request() {
    let (url, seen) = serve(vec![(200, b"one".to_vec()), (200, b"two".to_vec())]);
    let cache = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(cache.path(), &url).unwrap();
    let p = fetcher.fetch_mutable("dists/x/InRelease", false).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"one");
    assert_eq!(std::fs::read(fetcher.fetch_mutable("dists/x/InRelease", false).unwrap()).unwrap(), b"one");
    assert_eq!(std::fs::read(fetcher.fetch_mutable("dists/x/InRelease", true).unwrap()).unwrap(), b"two");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn unsigned_inrelease_is_refused() {
    if !forge_testkit::require_tool("gpgv") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("InRelease");
    std::fs::write(&path, "Origin: Debian\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n").unwrap();
    let keyring = std::path::Path::new(forge_debian::release::DEFAULT_KEYRING);
    let err = forge_debian::release::verify_inrelease(&path, keyring).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains("gpgv: "), "{err}");
}

#[test]
fn downloads_are_temporaries_of_this_process_and_stale_ones_go() {
    let cache = tempfile::tempdir().unwrap();
    let tmp = cache.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let stale = tmp.join(format!(".tmp-{}-killed", forge_testkit::dead_pid()));
    let live = tmp.join(".tmp-1-running");
    std::fs::write(&stale, "partial").unwrap();
    std::fs::write(&live, "partial").unwrap();

    // A mirror that sends part of the body, then stalls until released.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/debian", listener.local_addr().unwrap());
    let (release, released) = std::sync::mpsc::channel::<()>();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let mut line = String::new();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        while reader.read_line(&mut line).unwrap_or(0) > 0 && !line.ends_with("\r\n\r\n") {}
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789");
        let _ = stream.flush();
        let _ = released.recv();
    });

    let fetcher = Fetcher::new(cache.path(), &url).unwrap();
    assert!(!stale.exists(), "the temporary of a process that is gone stays");
    assert!(live.exists(), "the temporary of a running process was removed");
    let fetching = thread::spawn(move || fetcher.fetch_verified("pool/a.deb", &"0".repeat(64), 100));
    let ours = format!(".tmp-{}-", std::process::id());
    let started = std::time::Instant::now();
    let temp = loop {
        let found = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(&ours))
            .map(|e| e.path());
        if let Some(found) = found {
            break found;
        }
        assert!(started.elapsed().as_secs() < 30, "no temporary named {ours}… in {}", tmp.display());
        thread::sleep(std::time::Duration::from_millis(5));
    };
    // What xtask's SIGTERM handler does for this process.
    let removed = forge_oci::temp::remove(&tmp, forge_oci::temp::Scope::Ours);
    assert_eq!(removed.count, 1);
    assert!(!temp.exists() && live.exists());
    drop(release);
    assert!(fetching.join().unwrap().is_err(), "a short body is an error");
}
