//! Base image assembly from package data archives made in the test, and
//! the refusal of a `.deb` that does not match its lock.

mod apt;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use forge_baseimage::{assemble, build_from_lock, ImageSpec, Package};
use forge_debian::description::Description;
use forge_debian::fetch::Fetcher;
use forge_debian::lock::Lock;
use forge_oci::BlobStore;

/// A data archive with `entries` (as [`forge_testkit::deb::tar`] takes them).
fn data(entries: &[(&str, Option<&str>)]) -> tar::Archive<Box<dyn Read + Send>> {
    tar::Archive::new(Box::new(std::io::Cursor::new(forge_testkit::deb::tar(entries))))
}

/// The image's single layer, read back from the store (digest verified).
fn layer(store: &BlobStore, image: &forge_oci::Image) -> tar::Archive<impl Read> {
    let digest = forge_oci::Digest::from_descriptor(&image.manifest.layers()[0]).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(store.open(&digest).unwrap()))
}

/// The layer's entries as `TYPE MODE PATH [-> TARGET]`.
fn listing(store: &BlobStore, image: &forge_oci::Image) -> Vec<String> {
    layer(store, image)
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let kind = match e.header().entry_type() {
                tar::EntryType::Directory => "d",
                tar::EntryType::Symlink => "l",
                _ => "f",
            };
            let link = e.link_name().unwrap().map(|l| format!(" -> {}", l.display())).unwrap_or_default();
            format!("{kind} {:04o} {}{link}", e.header().mode().unwrap(), e.path().unwrap().display())
        })
        .collect()
}

/// A package `name` whose control file is `Package: NAME` then `fields`,
/// with a data archive of `entries` (as [`data`] takes them).
fn package(name: &str, fields: &str, entries: &[(&str, Option<&str>)]) -> Package {
    Package { name: name.into(), control: format!("Package: {name}\n{fields}"), data: data(entries) }
}

/// An empty store in a temporary directory (removed when the guard drops).
fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    (dir, store)
}

/// [`assemble`] with a spool directory of its own.
fn assemble_in(
    store: &BlobStore,
    packages: Vec<Package>,
    spec: &ImageSpec,
) -> Result<forge_oci::Image, forge_baseimage::Error> {
    let spool = tempfile::tempdir().unwrap();
    assemble(store, packages.into_iter().map(Ok), spec, spool.path())
}

/// A `dash` package shipping `/bin/sh` as a symlink, as Debian's does.
fn dash() -> Package {
    package(
        "dash",
        "Version: 0.5.12-2\nArchitecture: amd64\nDescription: POSIX shell\n",
        &[("./", None), ("./bin/", None), ("./bin/dash", Some("#!dash")), ("./bin/sh", Some("->dash"))],
    )
}

#[test]
fn packages_are_merged_with_merged_usr_and_a_status_database() {
    let (_dir, store) = store();
    let packages = vec![
        dash(),
        package(
            "python3-minimal",
            "Version: 3.11.2-1+b1\nArchitecture: amd64\nFilename: pool/x.deb\n",
            &[("./usr/", None), ("./usr/bin/", None), ("./usr/bin/python3", Some("->python3.11"))],
        ),
    ];
    let spec = ImageSpec { env: vec![("LANG".into(), "C.UTF-8".into())], ..ImageSpec::default() };
    let image = assemble_in(&store, packages, &spec).unwrap();
    forge_oci::validate::image(&store, &image.manifest_digest).unwrap();
    let entries = listing(&store, &image);
    let expected = [
        "l 0777 bin -> usr/bin",
        "d 0755 etc/",
        "f 0644 etc/group",
        "f 0644 etc/passwd",
        "d 0700 root/",
        "d 1777 tmp/",
        "d 0755 usr/",
        "d 0755 usr/bin/",
        "f 0755 usr/bin/dash",
        "l 0777 usr/bin/python3 -> python3.11",
        "l 0777 usr/bin/sh -> dash",
        "d 0755 var/",
        "d 0755 var/lib/",
        "d 0755 var/lib/dpkg/",
        "f 0644 var/lib/dpkg/status",
        "d 1777 var/tmp/",
    ];
    assert_eq!(entries, expected);
    let env = image.config.config().as_ref().unwrap().env().clone().unwrap();
    assert!(env.contains(&"LANG=C.UTF-8".to_string()) && env[0].starts_with("PATH="), "{env:?}");

    // The same packages again give the same bytes.
    let one = assemble_in(&store, vec![dash()], &spec).unwrap();
    let twice = assemble_in(&store, vec![dash()], &spec).unwrap();
    assert_eq!(one.manifest_digest, twice.manifest_digest);
}

#[test]
fn ca_certificates_get_the_bundle_update_ca_certificates_would_make() {
    let (_dir, store) = store();
    let certificates = package(
        "ca-certificates",
        "Version: 20230311\n",
        &[
            ("./usr/share/ca-certificates/mozilla/B_Root.crt", Some("-----BEGIN B-----\n")),
            ("./usr/share/ca-certificates/mozilla/A_Root.crt", Some("-----BEGIN A-----")),
        ],
    );
    let image = assemble_in(&store, vec![certificates], &ImageSpec::default()).unwrap();
    let entries = listing(&store, &image);
    assert!(entries.contains(&"f 0644 etc/ssl/certs/ca-certificates.crt".to_string()), "{entries:?}");
    assert!(entries.contains(
        &"l 0777 etc/ssl/certs/A_Root.pem -> /usr/share/ca-certificates/mozilla/A_Root.crt".to_string()
    ));
    let mut archive = layer(&store, &image);
    let mut bundle = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("etc/ssl/certs/ca-certificates.crt") {
            entry.read_to_string(&mut bundle).unwrap();
        }
    }
    assert_eq!(bundle, "-----BEGIN A-----\n-----BEGIN B-----\n");
}

#[test]
fn a_package_leaving_the_root_is_refused() {
    let (_dir, store) = store();
    let evil = package("evil", "", &[("./../../etc/x", Some("x"))]);
    let err = assemble_in(&store, vec![evil], &ImageSpec::default()).unwrap_err();
    assert_eq!(err.to_string(), "evil has an entry `./../../etc/x` outside the root filesystem");
}

/// Serves `body` with `status` for every request on a loopback port;
/// returns the URL.
fn serve(status: &'static str, body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head =
                format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    url
}

/// A lock with one package, `dash`, of `size` bytes at `mirror`, and its description.
fn dash_lock(mirror: &str, size: usize) -> (Lock, Description) {
    let lock_text = format!(
        r#"version = 1
mirror = "{mirror}"
suite = "bookworm"
architecture = "amd64"
release-date = "Sat, 11 Jul 2026 10:16:37 UTC"
packages-index = "dists/bookworm/main/binary-amd64/Packages.xz"
packages-sha256 = "{zeros}"
requested = ["dash"]
exclude = []

[[package]]
name = "dash"
version = "0.5.12-2"
architecture = "amd64"
filename = "pool/main/d/dash/dash_0.5.12-2_amd64.deb"
size = {size}
sha256 = "33ea40061da2f1a861ec46212b2b6a34f0776a049b1a3f0abce2fb8cb994258f"
"#,
        zeros = "0".repeat(64),
        size = size
    );
    let lock = Lock::parse(&lock_text, Path::new("base.lock")).unwrap();
    let description = Description::parse(
        "name = \"base\"\nsuite = \"bookworm\"\narchitecture = \"amd64\"\npackages = [\"dash\"]\n",
        Path::new("base.toml"),
    )
    .unwrap();
    (lock, description)
}

#[test]
fn a_locked_version_gone_from_the_archive_says_to_update_the_lock() {
    let mirror = serve("404 Not Found", b"");
    let (lock, description) = dash_lock(&mirror, 10);
    let cache = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(cache.path(), &mirror).unwrap();
    let (store_dir, store) = store();
    let err = build_from_lock(&store, &description, &lock, &fetcher, 0, None, store_dir.path()).unwrap_err();
    let message = format!("{err}");
    assert!(message.starts_with("dash 0.5.12-2 is no longer in the archive"), "{message}");
    assert!(message.contains("cargo xtask base-image --update"), "{message}");
}

#[test]
fn a_deb_whose_hash_does_not_match_the_lock_is_refused_and_nothing_is_stored() {
    let body: &'static [u8] = b"this is not the package the lock names";
    let mirror = serve("200 OK", body);
    let (lock, description) = dash_lock(&mirror, body.len());
    let cache = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(cache.path(), &mirror).unwrap();
    let (store_dir, store) = store();
    let err = build_from_lock(&store, &description, &lock, &fetcher, 0, None, store_dir.path()).unwrap_err();
    let message = format!("{err}");
    assert!(
        message.contains("33ea40061da2f1a861ec46212b2b6a34f0776a049b1a3f0abce2fb8cb994258f"),
        "{message}"
    );
    let blobs: Vec<_> = std::fs::read_dir(store_dir.path().join("blobs/sha256")).unwrap().collect();
    assert!(blobs.is_empty(), "nothing may be written to the store: {blobs:?}");
    assert!(store.refs().unwrap().is_empty());
    assert!(!fetcher
        .cached_path("33ea40061da2f1a861ec46212b2b6a34f0776a049b1a3f0abce2fb8cb994258f")
        .exists());
}
