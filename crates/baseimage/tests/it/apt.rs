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
    let keyring = Path::new(DEFAULT_KEYRING).exists();
    if !forge_testkit::prerequisite(
        keyring,
        &format!("{DEFAULT_KEYRING} is missing (install debian-archive-keyring)"),
    ) {
        return None;
    }
    let ci = forge_testkit::ci();
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
    let apt_state = |p: &&str| p.starts_with("var/lib/apt/") && *p != "var/lib/apt/extended_states";
    let apt_leftovers = |p: &&str| apt_state(p) || p.starts_with("var/cache") || p.starts_with("var/log");
    assert!(!paths.iter().any(apt_leftovers), "{paths:?}");
    let status = String::from_utf8(read(&tree, "var/lib/dpkg/status")).unwrap();
    let listed: Vec<&str> = status.lines().filter_map(|l| l.strip_prefix("Package: ")).collect();
    assert_eq!(listed, ["gcc-12-base", "jq", "libc6", "libgcc-s1", "libjq1", "libonig5"]);
    assert!(status.contains("Package: jq\nStatus: install ok installed\n"), "{status}");
    assert!(status.contains("Version: 2.36-9+deb12u7\n"), "the image's libc6 stays: {status}");
    let states = String::from_utf8(read(&tree, "var/lib/apt/extended_states")).unwrap();
    let auto =
        |name: &str| format!("Package: {name}\nArchitecture: {}\nAuto-Installed: 1\n\n", target.architecture);
    assert_eq!(states, format!("{}{}", auto("libjq1"), auto("libonig5")));
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

/// A fetcher that never uses the network, caching in `cache`.
fn offline_fetcher(cache: &Path) -> Fetcher {
    let mut fetcher = Fetcher::new(cache, "http://127.0.0.1:9").unwrap();
    fetcher.set_offline(true);
    fetcher
}

/// A bookworm amd64 lock of `packages` for `requested`.
fn bookworm_lock(requested: &[&str], packages: Vec<forge_debian::lock::LockedPackage>) -> AptLock {
    AptLock {
        version: install::APT_LOCK_VERSION,
        distribution: "debian".into(),
        suite: "bookworm".into(),
        architecture: "amd64".into(),
        requested: requested.iter().map(|r| r.to_string()).collect(),
        recommends: true,
        indexes: vec![],
        packages,
    }
}

/// A locked package whose `.deb` (made here) is in `fetcher`'s cache.
fn cached_deb(
    fetcher: &Fetcher,
    name: &str,
    version: &str,
    control: &[(&str, Option<&str>)],
    data: &[(&str, Option<&str>)],
) -> forge_debian::lock::LockedPackage {
    let bytes = forge_testkit::deb::deb(control, data);
    let sha256 = forge_oci::Digest::of(&bytes).hex().to_owned();
    std::fs::write(fetcher.cached_path(&sha256), &bytes).unwrap();
    forge_debian::lock::LockedPackage {
        name: name.into(),
        version: version.into(),
        architecture: "amd64".into(),
        filename: format!("pool/main/{name}_{version}_amd64.deb"),
        size: bytes.len() as u64,
        sha256,
        source: None,
        mirror: Some(install::DEBIAN_ARCHIVE.into()),
        suite: Some("bookworm".into()),
    }
}

/// The tree as `PATH MODE UID:GID KIND`.
fn listing(tree: &Tree) -> Vec<String> {
    tree.iter()
        .map(|(path, node)| {
            let kind = match &node.kind {
                NodeKind::Dir => "dir".to_owned(),
                NodeKind::File { size, .. } => format!("file {size}"),
                NodeKind::Symlink { target } => format!("-> {target}"),
                NodeKind::Whiteout => "whiteout".to_owned(),
                other => format!("{other:?}"),
            };
            format!("{path} {:o} {}:{} {kind}", node.mode, node.uid, node.gid)
        })
        .collect()
}

#[test]
fn materialize_upgrades_follows_the_images_links_and_keeps_its_directories() {
    let status = "Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n\
        Package: already\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n\n\
        Package: zz-removed\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.1\n";
    let mut image = fake_bookworm("amd64");
    image.insert("var/lib/dpkg/status", Node::bytes(0o644, status));
    image.insert(
        "var/lib/dpkg/info/tool.list",
        Node::bytes(
            0o644,
            "/.\n/usr\n/usr/bin\n/usr/bin/tool\n/usr/share\n/usr/share/tool\n/usr/share/tool/old.txt\n",
        ),
    );
    image.insert("var/lib/dpkg/info/tool.postrm", Node::bytes(0o755, "#!/bin/sh\n"));
    image.insert("usr/bin/tool", Node::bytes(0o755, "old tool"));
    image.insert("usr/share/tool/old.txt", Node::bytes(0o644, "old"));
    image.insert("run", Node::dir(0o755));
    image.insert("var/run", Node::symlink("/run"));
    image.insert("var/mail", Node::dir(0o2775).owned_by(0, 8));
    image.insert(
        "var/lib/apt/extended_states",
        Node::bytes(
            0o644,
            "Package: tool\nArchitecture: amd64\nAuto-Installed: 1\n\nPackage: other\nArchitecture: amd64\nAuto-Installed: 1\n",
        ),
    );
    let target = install::detect(&image, "amd64").unwrap();

    let cache = tempfile::tempdir().unwrap();
    let fetcher = offline_fetcher(cache.path());
    let control = |text: &'static str| ("./control", Some(text));
    let tool = cached_deb(
        &fetcher,
        "tool",
        "2.0",
        &[
            control("Package: tool\nVersion: 2.0\nArchitecture: amd64\nDescription: a tool\n"),
            ("./md5sums", Some("00  usr/bin/tool\n")),
        ],
        &[
            ("./", None),
            ("./usr/", None),
            ("./usr/bin/", None),
            ("./usr/bin/tool", Some("new tool")),
            ("./usr/share/tool/new.txt", Some("new")),
        ],
    );
    let newpkg = cached_deb(
        &fetcher,
        "newpkg",
        "1.0",
        &[
            control("Package: newpkg\nVersion: 1.0\nArchitecture: amd64\nMulti-Arch: same\nFilename: x.deb\nDescription: new\n"),
            ("./conffiles", Some("/etc/newpkg.conf\n")),
            ("./postinst", Some("#!/bin/sh\nexit 0\n")),
        ],
        &[
            ("./", None),
            ("./bin/", None),
            ("./bin/newcmd", Some("#!/bin/sh\n")),
            ("./etc/newpkg.conf", Some("x=1\n")),
            ("./var/", None),
            ("./var/run/", None),
            ("./var/run/newpkg/", None),
            ("./var/run/newpkg/pid", Some("1")),
            ("./var/mail/", None),
        ],
    );
    let mut certificates = cached_deb(
        &fetcher,
        "ca-certificates",
        "1.0",
        &[control("Package: ca-certificates\nVersion: 1.0\nArchitecture: all\n")],
        &[("./usr/share/ca-certificates/mozilla/A_Root.crt", Some("-----BEGIN A-----"))],
    );
    certificates.architecture = "all".into();
    // Installed at this version already: not fetched (the fetcher is
    // offline and has no .deb for it), not unpacked.
    let already = forge_debian::lock::LockedPackage {
        name: "already".into(),
        version: "1.0".into(),
        architecture: "all".into(),
        filename: "pool/main/already_1.0_all.deb".into(),
        size: 1,
        sha256: "ee".repeat(32),
        source: None,
        mirror: Some(install::DEBIAN_ARCHIVE.into()),
        suite: Some("bookworm".into()),
    };
    let lock = bookworm_lock(&["newpkg", "tool"], vec![already, certificates, newpkg, tool]);
    let spool_dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::new(spool_dir.path()).unwrap();
    let tree = install::materialize(&image, &target, &lock, &fetcher, &mut spool).unwrap();
    let expected = [
        "etc 755 0:0 dir",
        "etc/newpkg.conf 755 0:0 file 4",
        "etc/ssl/certs/A_Root.pem 777 0:0 -> /usr/share/ca-certificates/mozilla/A_Root.crt",
        "etc/ssl/certs/ca-certificates.crt 644 0:0 file 18",
        "run 755 0:0 dir",
        "run/newpkg 755 0:0 dir",
        "run/newpkg/pid 755 0:0 file 1",
        "usr 755 0:0 dir",
        "usr/bin 755 0:0 dir",
        "usr/bin/newcmd 755 0:0 file 10",
        "usr/bin/tool 755 0:0 file 8",
        "usr/share 755 0:0 dir",
        "usr/share/ca-certificates/mozilla/A_Root.crt 755 0:0 file 17",
        "usr/share/tool 755 0:0 dir",
        "usr/share/tool/.wh.old.txt 0 0:0 whiteout",
        "usr/share/tool/new.txt 755 0:0 file 3",
        "var 755 0:0 dir",
        "var/lib 755 0:0 dir",
        "var/lib/apt 755 0:0 dir",
        "var/lib/apt/extended_states 644 0:0 file 118",
        "var/lib/dpkg 755 0:0 dir",
        "var/lib/dpkg/info 755 0:0 dir",
        "var/lib/dpkg/info/.wh.tool.postrm 0 0:0 whiteout",
        "var/lib/dpkg/info/ca-certificates.list 644 0:0 file 46",
        "var/lib/dpkg/info/newpkg:amd64.conffiles 644 0:0 file 17",
        "var/lib/dpkg/info/newpkg:amd64.list 644 0:0 file 97",
        "var/lib/dpkg/info/newpkg:amd64.postinst 755 0:0 file 17",
        "var/lib/dpkg/info/tool.list 644 0:0 file 55",
        "var/lib/dpkg/info/tool.md5sums 644 0:0 file 17",
        "var/lib/dpkg/status 644 0:0 file 524",
        "var/mail 2775 0:8 dir",
    ];
    assert_eq!(listing(&tree), expected);
    let list = String::from_utf8(read(&tree, "var/lib/dpkg/info/newpkg:amd64.list")).unwrap();
    assert_eq!(
        list,
        "/.\n/bin\n/bin/newcmd\n/etc/newpkg.conf\n/var\n/var/run\n/var/run/newpkg\n/var/run/newpkg/pid\n/var/mail\n"
    );
    let status = String::from_utf8(read(&tree, "var/lib/dpkg/status")).unwrap();
    let expected_status = "Package: already\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n\n\
        Package: ca-certificates\nStatus: install ok installed\nVersion: 1.0\nArchitecture: all\n\n\
        Package: newpkg\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nMulti-Arch: same\n\
        Conffiles:\n /etc/newpkg.conf f968f33f844c98de1d3b4fe70f2e1a0f\nDescription: new\n\n\
        Package: tool\nStatus: install ok installed\nVersion: 2.0\nArchitecture: amd64\nDescription: a tool\n\n\
        Package: zz-removed\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.1\n\n";
    assert_eq!(status, expected_status);
    // Requested packages are manual (tool's auto mark goes), new
    // dependencies are automatic, other marks stay.
    let states = String::from_utf8(read(&tree, "var/lib/apt/extended_states")).unwrap();
    assert_eq!(
        states,
        "Package: ca-certificates\nArchitecture: amd64\nAuto-Installed: 1\n\n\
         Package: other\nArchitecture: amd64\nAuto-Installed: 1\n\n"
    );

    // A lock for another architecture is refused.
    let arm = AptLock { architecture: "arm64".into(), ..lock.clone() };
    let err = install::materialize(&image, &target, &arm, &fetcher, &mut spool).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the apt lock is for bookworm arm64, but the image is bookworm amd64: re-resolve it (--update-locks)"
    );
}

#[test]
fn dpkg_path_filters_of_a_slim_image_leave_out_docs_as_dpkg_would() {
    // What debian:*-slim (and so python:*-slim) ship in /etc/dpkg/dpkg.cfg.d/docker.
    let slim = "# slim\npath-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n\
        path-exclude /usr/share/man/*\npath-exclude=/usr/share/locale/*\n";
    let mut image = fake_bookworm("amd64");
    image.insert("etc/dpkg/dpkg.cfg.d/docker", Node::bytes(0o644, slim));
    image.insert("etc/dpkg/dpkg.cfg.d/ignored.dpkg-old", Node::bytes(0o644, "path-exclude /usr/bin/*\n"));
    let target = install::detect(&image, "amd64").unwrap();
    let rules: Vec<(bool, &str)> = target.path_filters.rules().collect();
    assert_eq!(
        rules,
        [
            (false, "/usr/share/doc/*"),
            (true, "/usr/share/doc/*/copyright"),
            (false, "/usr/share/man/*"),
            (false, "/usr/share/locale/*")
        ]
    );
    let cache = tempfile::tempdir().unwrap();
    let fetcher = offline_fetcher(cache.path());
    let package = cached_deb(
        &fetcher,
        "docs",
        "1.0",
        &[("./control", Some("Package: docs\nVersion: 1.0\nArchitecture: amd64\n"))],
        &[
            ("./usr/", None),
            ("./usr/bin/x", Some("x")),
            ("./usr/share/", None),
            ("./usr/share/doc/", None),
            ("./usr/share/doc/docs/", None),
            ("./usr/share/doc/docs/copyright", Some("c")),
            ("./usr/share/doc/docs/changelog.gz", Some("z")),
            ("./usr/share/man/", None),
            ("./usr/share/man/man1/", None),
            ("./usr/share/man/man1/x.1.gz", Some("m")),
        ],
    );
    let lock = bookworm_lock(&["docs"], vec![package]);
    let spool_dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::new(spool_dir.path()).unwrap();
    let tree = install::materialize(&image, &target, &lock, &fetcher, &mut spool).unwrap();
    let paths: Vec<&str> = tree.iter().map(|(p, _)| p).filter(|p| p.starts_with("usr/")).collect();
    assert_eq!(
        paths,
        [
            "usr/bin/x",
            "usr/share",
            "usr/share/doc",
            "usr/share/doc/docs",
            "usr/share/doc/docs/copyright",
            "usr/share/man"
        ]
    );
    let list = String::from_utf8(read(&tree, "var/lib/dpkg/info/docs.list")).unwrap();
    assert_eq!(list, "/usr\n/usr/bin/x\n/usr/share\n/usr/share/doc\n/usr/share/doc/docs\n/usr/share/doc/docs/copyright\n/usr/share/man\n");
}
