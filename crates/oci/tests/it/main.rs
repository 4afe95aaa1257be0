//! Integration tests of forge-oci: layers, the store, images, archives and
//! imports, checked by our validator and by real tools (Python's `tarfile`,
//! `skopeo`, `umoci`).
//!
//! Tests that need a tool go through `require_tool` (from forge-testkit): on CI (`CI=true`) a
//! missing tool is a failure, elsewhere the test says it is skipping and
//! returns.

mod archives;
mod files;
mod layers;
mod stores;
mod tools;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use forge_oci::image::{self, empty_layer_history, layer_history, new_config, write_image};
use forge_oci::{BlobStore, Entry, Image, Layer, LayerBuilder, LayerOptions, RuntimeConfig};
pub use forge_testkit::{require_tool, run};

#[test]
fn require_tool_follows_the_ci_policy() {
    assert!(require_tool("sh"));
    let missing = "forge-oci-no-such-tool";
    if forge_testkit::ci() {
        assert!(std::panic::catch_unwind(|| require_tool(missing)).is_err());
    } else {
        assert!(!require_tool(missing));
    }
}

pub const MTIME: u64 = 1_700_000_000;

/// A directory name long enough to need a PAX `path` record.
pub fn long_dir() -> String {
    format!("opt/app/{}", "very-long-directory-name-".repeat(6))
}

/// What a file system entry of the sample image should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// One expected entry: path, what it is, permission bits, uid, gid.
pub type Expected = (String, Expect, u32, u64, u64);

/// Source files for the sample's streamed entries, written with the given
/// permission bits and mtime so that tests can show neither matters.
pub fn write_sources(dir: &Path, mode: u32, mtime: SystemTime) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap();
    let hosts = src.join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let big = src.join("big.bin");
    // Larger than the copy buffer, not a multiple of 512.
    let content: Vec<u8> = (0..300_001u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&big, content).unwrap();
    for path in [&hosts, &big] {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
    }
    src
}

/// The entries of the sample's first layer, sorted, from `src`.
pub fn base_entries(src: &Path) -> (Vec<Entry>, Vec<Expected>) {
    let big: Vec<u8> = fs::read(src.join("big.bin")).unwrap();
    let hosts = fs::read(src.join("hosts")).unwrap();
    let long = long_dir();
    let long_file = format!("{long}/{}", "f".repeat(80));
    let mut entries = vec![
        Entry::dir("bin", 0o755),
        Entry::symlink("bin/sh", "/usr/bin/dash"),
        Entry::dir("etc", 0o755),
        Entry::bytes("etc/hostname", 0o644, "forge\n"),
        Entry::file("etc/hosts", 0o644, hosts.len() as u64, src.join("hosts")),
        Entry::dir("home", 0o755),
        Entry::dir("home/user", 0o700).owned_by(1000, 1000),
        Entry::bytes("home/user/.profile", 0o600, "export A=1\n").owned_by(1000, 1000),
        Entry::dir("opt", 0o755),
        Entry::dir("opt/app", 0o755),
        Entry::bytes("opt/app/caf\u{e9}-\u{65e5}\u{672c}.txt", 0o644, "non-ascii name\n"),
        Entry::dir(long.clone(), 0o755),
        Entry::bytes(long_file.clone(), 0o644, "deep\n"),
        Entry::symlink(format!("{long}/link"), format!("../../{}", "t".repeat(120))),
        Entry::file("opt/app/big.bin", 0o644, big.len() as u64, src.join("big.bin")),
        Entry::bytes("opt/app/run.sh", 0o755, "#!/bin/sh\necho hi\n"),
        Entry::hardlink("opt/app/run2", 0o755, "opt/app/run.sh"),
        Entry::dir("tmp", 0o1777),
        Entry::dir("usr", 0o755),
        Entry::dir("usr/bin", 0o755),
        Entry::bytes("usr/bin/su", 0o4755, "setuid\n"),
    ];
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let expected = vec![
        ("bin".into(), Expect::Dir, 0o755, 0, 0),
        ("bin/sh".into(), Expect::Symlink("/usr/bin/dash".into()), 0o777, 0, 0),
        ("etc".into(), Expect::Dir, 0o755, 0, 0),
        ("etc/hostname".into(), Expect::File(b"forge\n".to_vec()), 0o644, 0, 0),
        ("etc/hosts".into(), Expect::File(hosts), 0o644, 0, 0),
        ("home".into(), Expect::Dir, 0o755, 0, 0),
        ("home/user".into(), Expect::Dir, 0o700, 1000, 1000),
        ("home/user/.profile".into(), Expect::File(b"export A=1\n".to_vec()), 0o600, 1000, 1000),
        ("opt".into(), Expect::Dir, 0o755, 0, 0),
        ("opt/app".into(), Expect::Dir, 0o755, 0, 0),
        ("opt/app/big.bin".into(), Expect::File(big), 0o644, 0, 0),
        (
            "opt/app/caf\u{e9}-\u{65e5}\u{672c}.txt".into(),
            Expect::File(b"non-ascii name\n".to_vec()),
            0o644,
            0,
            0,
        ),
        ("opt/app/run.sh".into(), Expect::File(b"#!/bin/sh\necho hi\n".to_vec()), 0o755, 0, 0),
        ("opt/app/run2".into(), Expect::File(b"#!/bin/sh\necho hi\n".to_vec()), 0o755, 0, 0),
        (long.clone(), Expect::Dir, 0o755, 0, 0),
        (long_file, Expect::File(b"deep\n".to_vec()), 0o644, 0, 0),
        (format!("{long}/link"), Expect::Symlink(format!("../../{}", "t".repeat(120))), 0o777, 0, 0),
        ("tmp".into(), Expect::Dir, 0o1777, 0, 0),
        ("usr".into(), Expect::Dir, 0o755, 0, 0),
        ("usr/bin".into(), Expect::Dir, 0o755, 0, 0),
        ("usr/bin/su".into(), Expect::File(b"setuid\n".to_vec()), 0o4755, 0, 0),
    ];
    (entries, expected)
}

/// Builds one layer from `entries`.
pub fn build_layer(store: &BlobStore, entries: Vec<Entry>) -> Layer {
    let mut builder = LayerBuilder::new(store, LayerOptions { mtime: MTIME }).unwrap();
    for entry in entries {
        builder.append(entry).unwrap();
    }
    builder.finish().unwrap()
}

/// A two-layer image (the base entries, then a small app layer), with a
/// config-only history step in between.
#[derive(Debug)]
pub struct Sample {
    pub dir: tempfile::TempDir,
    pub store: BlobStore,
    pub image: Image,
    pub layers: Vec<Layer>,
    pub expected: Vec<Expected>,
}

pub fn sample() -> Sample {
    let dir = tempfile::tempdir().unwrap();
    let src = write_sources(dir.path(), 0o640, SystemTime::UNIX_EPOCH + Duration::from_secs(12345));
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    let (entries, mut expected) = base_entries(&src);
    let base = build_layer(&store, entries);
    let app = build_layer(
        &store,
        vec![
            Entry::dir("opt", 0o755),
            Entry::dir("opt/app", 0o755),
            Entry::bytes("opt/app/VERSION", 0o644, "1.2.3\n"),
        ],
    );
    expected.push(("opt/app/VERSION".into(), Expect::File(b"1.2.3\n".to_vec()), 0o644, 0, 0));
    expected.sort_by(|a, b| a.0.cmp(&b.0));

    let mut runtime = RuntimeConfig::default();
    runtime.set_env("PATH", "/usr/local/bin:/usr/bin:/bin");
    runtime.entrypoint = Some(vec!["/opt/app/run.sh".into()]);
    runtime.working_dir = Some("/opt/app".into());
    runtime.labels.insert("org.opencontainers.image.title".into(), "sample".into());
    runtime.exposed_ports.insert("8080/tcp".into());
    let mut config = new_config(MTIME, &runtime, &[], Vec::new()).unwrap();
    image::append_layer(&mut config, &base.diff_id, layer_history(MTIME, "COPY rootfs /"));
    image::append_empty_layer(
        &mut config,
        empty_layer_history(MTIME, "ENV PATH=/usr/local/bin:/usr/bin:/bin"),
    );
    image::append_layer(&mut config, &app.diff_id, layer_history(MTIME, "COPY VERSION /opt/app/"));
    let layers = vec![base, app];
    let descriptors: Vec<_> = layers.iter().map(Layer::descriptor).collect();
    let image = write_image(&store, &config, &descriptors, &Default::default()).unwrap();
    Sample { dir, store, image, layers, expected }
}
