//! Against Debian's real archive: resolve `python3` + `dash` for bookworm
//! amd64 and download `dash`. Fails under `CI=true` when the archive or
//! gpgv is unavailable; skips with a message elsewhere.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use forge_debian::deb::DebFile;
use forge_debian::description::Description;
use forge_debian::fetch::Fetcher;
use forge_debian::lock::Lock;
use forge_debian::release::{verify_inrelease, DEFAULT_KEYRING};
use forge_debian::Error;

const DESCRIPTION: &str = r#"name = "base-py"
mirror = "http://deb.debian.org/debian"
suite = "bookworm"
architecture = "amd64"
packages = ["python3", "dash"]
exclude = ["perl-base", "dpkg", "mailcap"]
"#;

fn cache_dir() -> PathBuf {
    // Kept across runs under target/, so the 9 MB index is fetched once.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("forge-debian-cache")
}

fn unreachable(e: &Error) -> bool {
    matches!(e, Error::Http { .. } | Error::HttpStatus { .. })
}

#[test]
fn bookworm_python3_and_dash() {
    if !forge_testkit::require_tool("gpgv") {
        return;
    }
    let keyring = Path::new(DEFAULT_KEYRING).exists();
    if !forge_testkit::prerequisite(
        keyring,
        &format!("{DEFAULT_KEYRING} is missing (install debian-archive-keyring)"),
    ) {
        return;
    }
    let ci = forge_testkit::ci();
    let description = Description::parse(DESCRIPTION, Path::new("base-py.toml")).unwrap();
    let fetcher = Fetcher::new(cache_dir(), &description.mirror_or_default()).unwrap();
    let options = forge_debian::release::ReleaseOptions { update: true, ..Default::default() };
    let lock = match Lock::resolve_with(&description, &fetcher, SystemTime::now(), &options) {
        Ok(lock) => lock,
        Err(e) if unreachable(&e) && !ci => {
            eprintln!("skipping: Debian's archive is unreachable: {e} ({:?})", std::error::Error::source(&e));
            return;
        }
        Err(e) => panic!("resolving against bookworm: {e} ({:?})", std::error::Error::source(&e)),
    };
    let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    for wanted in ["python3", "dash", "python3.11", "libpython3.11-stdlib", "libc6"] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    for excluded in ["perl-base", "dpkg", "mailcap"] {
        assert!(!names.contains(&excluded), "{excluded} in {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    println!(
        "bookworm closure of python3 + dash (excluding perl-base, dpkg, mailcap): {} packages, {} bytes of .deb\n{}",
        lock.packages.len(),
        lock.total_size(),
        names.join(" ")
    );
    assert!(lock.is_current_for(&description));
    let reparsed = Lock::parse(&lock.to_toml(), Path::new("base-py.lock")).unwrap();
    assert_eq!(reparsed, lock);

    // The same resolution offline, from the cache alone.
    let mut offline = Fetcher::new(cache_dir(), &description.mirror_or_default()).unwrap();
    offline.set_offline(true);
    let again = Lock::resolve(&description, &offline, SystemTime::now()).unwrap();
    assert_eq!(again, lock);

    // Download dash, verified, and read it.
    let dash = lock.packages.iter().find(|p| p.name == "dash").unwrap();
    let path = fetcher.fetch_verified(&dash.filename, &dash.sha256, dash.size).unwrap();
    assert_eq!(offline.fetch_verified(&dash.filename, &dash.sha256, dash.size).unwrap(), path);
    let deb = DebFile::open(&path).unwrap();
    let control = deb.control().unwrap();
    assert!(control.control.starts_with("Package: dash\n"), "{}", control.control);
    assert!(control.md5sums.unwrap().contains("bin/dash"));
    let mut data = deb.data().unwrap();
    let paths: Vec<String> =
        data.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert!(paths.iter().any(|p| p == "./bin/dash"), "{paths:?}");

    // A wrong digest for the same URL is refused, and nothing is kept.
    let wrong = "0".repeat(64);
    let err = fetcher.fetch_verified(&dash.filename, &wrong, dash.size).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&dash.sha256), "{err}");
    assert!(!fetcher.cached_path(&wrong).exists());

    // A tampered InRelease fails the signature check.
    let inrelease = fetcher.fetch_mutable("dists/bookworm/InRelease", false).unwrap();
    let text = std::fs::read_to_string(&inrelease).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tampered = tmp.path().join("InRelease");
    std::fs::write(&tampered, text.replacen("Codename: bookworm", "Codename: bookwurm", 1)).unwrap();
    let err = verify_inrelease(&tampered, Path::new(DEFAULT_KEYRING)).unwrap_err();
    assert!(err.to_string().contains("BAD signature"), "{err}");
}
