//! `apt-get install jq` into a minimal fake bookworm image, against
//! Debian's real archive, for amd64 and arm64: resolution leaves out what
//! the image has, the layer holds jq's binary for the right machine and
//! dpkg's records of it. Fails under `CI=true` when the archive or gpgv
//! is unavailable; skips with a message elsewhere.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use forge_baseimage::install::{self, AptLock, AptRequest};
use forge_debian::fetch::Fetcher;
use forge_debian::release::{ReleaseOptions, DEFAULT_KEYRING};
use forge_oci::files::ImageFiles;
use forge_oci::{FileSource, Node, NodeKind, Spool, Tree};

fn cache_dir() -> PathBuf {
    // Shared with forge-debian's network test and kept across runs under
    // target/, so the indexes are fetched once.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("forge-debian-cache")
}

/// A bookworm image that has little more than libc6: os-release, merged
/// /usr and a dpkg status database.
fn fake_bookworm(arch: &str) -> Tree {
    let status = format!(
        "Package: libc6\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
         Architecture: {arch}\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u7\n\
         Depends: libgcc-s1\nDescription: GNU C Library: Shared libraries\n\n\
         Package: libgcc-s1\nStatus: install ok installed\nArchitecture: {arch}\nMulti-Arch: same\n\
         Source: gcc-12\nVersion: 12.2.0-14\nDepends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)\n\n\
         Package: gcc-12-base\nStatus: install ok installed\nArchitecture: {arch}\nMulti-Arch: same\n\
         Source: gcc-12\nVersion: 12.2.0-14\n"
    );
    let mut tree = Tree::new();
    tree.insert(
        "usr/lib/os-release",
        Node::bytes(
            0o644,
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        ),
    );
    tree.insert("etc/os-release", Node::symlink("../usr/lib/os-release"));
    tree.insert("var/lib/dpkg/status", Node::bytes(0o644, status));
    for dir in ["bin", "lib", "sbin"] {
        tree.insert(dir, Node::symlink(format!("usr/{dir}")));
    }
    tree
}

/// Paths, kinds, modes and content digests: what a layer's bytes depend on.
fn render(tree: &Tree) -> Vec<String> {
    tree.iter()
        .map(|(path, node)| match &node.kind {
            NodeKind::File { size, source: FileSource::Spooled { digest, .. } } => {
                format!("{path} {:o} {size} {digest}", node.mode)
            }
            NodeKind::File { size, source: FileSource::Bytes(b) } => {
                format!("{path} {:o} {size} {}", node.mode, forge_oci::Digest::of(b))
            }
            other => format!("{path} {:o} {other:?}", node.mode),
        })
        .collect()
}

fn read(tree: &Tree, path: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    tree.open(path).unwrap().unwrap_or_else(|| panic!("{path} missing")).read_to_end(&mut bytes).unwrap();
    bytes
}

/// Resolves and materializes `jq` for `oci_arch`; `None` when skipped.
fn jq(oci_arch: &str, machine: u16) -> Option<()> {
    if !forge_testkit::require_tool("gpgv") {
        return None;
    }
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !Path::new(DEFAULT_KEYRING).exists() {
        assert!(!ci, "{DEFAULT_KEYRING} is missing, and CI=true requires it");
        eprintln!("skipping: {DEFAULT_KEYRING} is missing (install debian-archive-keyring)");
        return None;
    }
    let start = Instant::now();
    let image = fake_bookworm(install::dpkg_architecture(oci_arch).unwrap());
    let target = install::detect(&image, oci_arch).unwrap();
    let fetcher = Fetcher::new(cache_dir(), install::DEBIAN_ARCHIVE).unwrap();
    let request = AptRequest { packages: vec![("jq".into(), None)], recommends: true };
    let options = ReleaseOptions { update: true, ..ReleaseOptions::default() };
    let lock = match install::resolve(&target, &request, &fetcher, &options, SystemTime::now()) {
        Ok(lock) => lock,
        Err(forge_baseimage::Error::Debian(
            e @ (forge_debian::Error::Http { .. } | forge_debian::Error::HttpStatus { .. }),
        )) if !ci => {
            eprintln!("skipping: Debian's archive is unreachable: {e} ({:?})", std::error::Error::source(&e));
            return None;
        }
        Err(e) => panic!("resolving jq for {oci_arch}: {e} ({:?})", std::error::Error::source(&e)),
    };
    let resolved = start.elapsed();
    let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["jq", "libjq1", "libonig5"], "libc6 and libgcc-s1 are installed already");
    assert!(lock.packages.iter().all(|p| p.mirror.is_some() && p.suite.is_some()));
    assert_eq!(lock.indexes.len(), 3, "bookworm, -updates, -security: {:?}", lock.indexes);
    assert_eq!(AptLock::parse(&lock.to_toml(), Path::new("apt.lock")).unwrap(), lock);
    assert!(lock.is_current_for(&target, &request));

    let spool_dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::new(spool_dir.path()).unwrap();
    let tree = install::materialize(&image, &target, &lock, &fetcher, &mut spool).unwrap();
    let jq = read(&tree, "usr/bin/jq");
    assert_eq!(&jq[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([jq[18], jq[19]]), machine, "e_machine of usr/bin/jq for {oci_arch}");
    let paths: Vec<&str> = tree.iter().map(|(p, _)| p).collect();
    assert!(paths.iter().any(|p| p.starts_with("usr/lib/") && p.contains("libjq.so.1")), "{paths:?}");
    assert!(paths.iter().any(|p| p.contains("libonig.so.5")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("libc.so.6")), "libc6 is not unpacked again");
    assert!(!paths.iter().any(|p| p.starts_with("bin/") || p.starts_with("lib/")), "merged /usr: {paths:?}");
    assert!(!paths
        .iter()
        .any(|p| p.starts_with("var/lib/apt") || p.starts_with("var/cache") || p.starts_with("var/log")));
    let status = String::from_utf8(read(&tree, "var/lib/dpkg/status")).unwrap();
    let listed: Vec<&str> = status.lines().filter_map(|l| l.strip_prefix("Package: ")).collect();
    assert_eq!(listed, ["gcc-12-base", "jq", "libc6", "libgcc-s1", "libjq1", "libonig5"]);
    assert!(status.contains("Package: jq\nStatus: install ok installed\n"), "{status}");
    assert!(status.contains("Version: 2.36-9+deb12u7\n"), "the image's libc6 stays: {status}");
    let list = String::from_utf8(read(&tree, "var/lib/dpkg/info/jq.list")).unwrap();
    assert!(list.starts_with("/.\n") && list.contains("\n/usr/bin/jq\n"), "{list}");
    let dpkg_arch = &target.architecture;
    assert!(
        tree.contains(&format!("var/lib/dpkg/info/libjq1:{dpkg_arch}.list")),
        "Multi-Arch: same: {paths:?}"
    );
    assert!(tree.contains(&format!("var/lib/dpkg/info/libjq1:{dpkg_arch}.md5sums")));

    // The same lock again, from the cache, gives the same tree.
    let other_spool = tempfile::tempdir().unwrap();
    let mut spool = Spool::new(other_spool.path()).unwrap();
    let again = install::materialize(&image, &target, &lock, &fetcher, &mut spool).unwrap();
    assert_eq!(render(&again), render(&tree));
    println!(
        "apt-get install jq on bookworm {dpkg_arch}: {} packages, {} bytes of .deb, {} entries; \
         resolved in {resolved:.1?}, materialized twice in {:.1?} more",
        lock.packages.len(),
        lock.total_size(),
        tree.len(),
        start.elapsed() - resolved
    );
    Some(())
}

#[test]
fn jq_for_amd64() {
    jq("amd64", 0x3E);
}

#[test]
fn jq_for_arm64() {
    jq("arm64", 0xB7);
}
