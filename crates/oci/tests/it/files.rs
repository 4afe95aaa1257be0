//! `ImageLayers`, the merged view of a stored image, against `umoci
//! unpack` of the same image: whiteouts, opaque directories, hard links
//! (to files replaced or deleted later), symlinks, a directory over a
//! symlink, a file over a directory, entries under a symlinked parent or
//! under parents no entry made, long names.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use forge_oci::files::{read_to_string, resolve};
use forge_oci::image::{new_config, write_image};
use forge_oci::oci_spec::image::{Descriptor, MediaType};
use forge_oci::{
    descriptor, BlobStore, Compression, Digest, Error, FileSource, Image, ImageFiles, ImageLayers,
    LayerOptions, Node, NodeKind, RuntimeConfig, Tree,
};
use forge_testkit::{raw_tar, require_tool, rootfs_listing, umoci_unpack, RawEntry};

use crate::{long_dir, MTIME};

fn file(mode: u32, content: &str) -> Node {
    Node::bytes(mode, content)
}

/// A stored layer of hand-made entries; its diff ID is its digest.
fn raw_layer(store: &BlobStore, entries: &[RawEntry<'_>]) -> (Descriptor, Digest) {
    let (digest, size) = store.put_bytes(&raw_tar(entries, MTIME)).unwrap();
    (descriptor(MediaType::ImageLayer, &digest, size), digest)
}

/// Four layers, the last one hand-made; see the module docs.
fn layered(store: &BlobStore) -> Image {
    let mut one = Tree::new();
    one.insert("bin", Node::symlink("usr/bin"));
    one.insert("lib", Node::symlink("usr/lib"));
    one.insert("etc/config", file(0o644, "v1"));
    one.insert("etc/gone", file(0o600, "x"));
    one.insert("etc/keep", Node::symlink("config"));
    one.insert("gone-dir/f", file(0o644, "f"));
    one.insert("opaque", Node::dir(0o750));
    one.insert("opaque/old", file(0o644, "old"));
    one.insert("opaque/sub/deep", file(0o644, "deep"));
    one.insert("usr/bin/tool", file(0o755, "tool v1"));
    one.insert("usr/bin/tool-link", Node::hardlink(0o755, "usr/bin/tool"));
    one.insert("usr/lib/python3/dist-packages/a/__init__.py", file(0o644, "a"));
    one.insert("dir-to-file/x", file(0o644, "x"));
    one.insert(format!("{}/deep.txt", long_dir()), file(0o644, "long"));

    let mut two = Tree::new();
    two.whiteout("gone-dir");
    two.whiteout("etc/gone");
    two.insert("etc/config", file(0o644, "v2"));
    two.opaque("opaque");
    two.insert("opaque/new", file(0o644, "new"));
    two.insert("usr/bin/tool", file(0o755, "tool v2"));
    two.insert("usr/bin/tool2-link", Node::hardlink(0o755, "usr/bin/tool"));
    two.insert("dir-to-file", file(0o644, "now a file"));
    two.insert("usr/lib/python3/dist-packages/b.py", file(0o644, "b"));

    let mut three = Tree::new();
    three.whiteout("usr/bin/tool");
    three.insert("bin/extra", file(0o755, "a directory over the symlink"));

    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for tree in [one, two, three] {
        let layer = tree.write_layer(store, LayerOptions { mtime: MTIME }, Compression::Gzip).unwrap();
        descs.push(layer.descriptor());
        diff_ids.push(layer.diff_id);
    }
    // Written through the symlink `lib` of the first layer, without
    // parent entries, and a hard link across layers.
    let (desc, diff_id) = raw_layer(
        store,
        &[
            ("lib/python3/dist-packages/c.py", tar::EntryType::Regular, "", b"c"),
            ("etc/config-link", tar::EntryType::Link, "etc/config", b""),
            ("new/dir/x", tar::EntryType::Regular, "", b"x"),
        ],
    );
    descs.push(desc);
    diff_ids.push(diff_id);
    let config = new_config(0, &RuntimeConfig::default(), &diff_ids, Vec::new()).unwrap();
    write_image(store, &config, &descs, &BTreeMap::new()).unwrap()
}

/// [`rootfs_listing`] of every entry below `dir` of the view, hard links
/// shown as the files they are on disk.
fn listing(files: &dyn ImageFiles, dir: &str, out: &mut Vec<String>) {
    for name in files.list(dir) {
        let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
        let node = files.node(&path).unwrap_or_else(|| panic!("{path} is listed but has no node"));
        match &node.kind {
            NodeKind::Dir => {
                out.push(format!("d {:04o} {path}", node.mode));
                listing(files, &path, out);
            }
            NodeKind::Symlink { target } => out.push(format!("l {path} -> {target}")),
            NodeKind::File { .. } | NodeKind::Hardlink { .. } => {
                let mut content = String::new();
                files.open(&path).unwrap().unwrap().read_to_string(&mut content).unwrap();
                out.push(format!("f {:04o} {path} = {content}", node.mode));
            }
            other => out.push(format!("? {path} {other:?}")),
        }
    }
}

#[test]
fn image_layers_merge_as_umoci_unpacks() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    let image = layered(&store);
    let view = ImageLayers::read(&store, &image).unwrap();
    let mut ours = Vec::new();
    listing(&view, "", &mut ours);

    let long = long_dir();
    let mut expected = vec![
        "d 0755 bin".to_owned(),
        "f 0755 bin/extra = a directory over the symlink".into(),
        "f 0644 dir-to-file = now a file".into(),
        "d 0755 etc".into(),
        "f 0644 etc/config = v2".into(),
        "f 0644 etc/config-link = v2".into(),
        "l etc/keep -> config".into(),
        "l lib -> usr/lib".into(),
        "d 0755 new".into(),
        "d 0755 new/dir".into(),
        "f 0644 new/dir/x = x".into(),
    ];
    let mut path = String::new();
    for part in long.split('/') {
        path = if path.is_empty() { part.to_owned() } else { format!("{path}/{part}") };
        expected.push(format!("d 0755 {path}"));
    }
    expected.push(format!("f 0644 {long}/deep.txt = long"));
    expected.extend(
        [
            "d 0755 opaque",
            "f 0644 opaque/new = new",
            "d 0755 usr",
            "d 0755 usr/bin",
            "f 0755 usr/bin/tool-link = tool v1",
            "f 0755 usr/bin/tool2-link = tool v2",
            "d 0755 usr/lib",
            "d 0755 usr/lib/python3",
            "d 0755 usr/lib/python3/dist-packages",
            "d 0755 usr/lib/python3/dist-packages/a",
            "f 0644 usr/lib/python3/dist-packages/a/__init__.py = a",
            "f 0644 usr/lib/python3/dist-packages/b.py = b",
            "f 0644 usr/lib/python3/dist-packages/c.py = c",
        ]
        .map(String::from),
    );
    let ours_set: BTreeSet<_> = ours.iter().cloned().collect();
    let expected_set: BTreeSet<_> = expected.iter().cloned().collect();
    assert_eq!(ours.len(), ours_set.len(), "{ours:#?}");
    assert_eq!(ours_set, expected_set);

    // Stored as stored: links are links, whiteouts and markers are gone.
    assert_eq!(
        view.node("usr/bin/tool2-link").unwrap().kind,
        NodeKind::Hardlink { target: "usr/bin/tool".into() }
    );
    assert!(matches!(
        view.node("/etc/config").unwrap().kind,
        NodeKind::File { size: 2, source: FileSource::Layer { .. } }
    ));
    for gone in [
        "usr/bin/tool",
        "etc/gone",
        "gone-dir",
        "gone-dir/f",
        "opaque/old",
        "opaque/sub",
        "opaque/.wh..wh..opq",
        "etc/.wh.gone",
        "dir-to-file/x",
    ] {
        assert_eq!(view.node(gone), None, "{gone}");
        assert!(view.open(gone).unwrap().is_none(), "{gone}");
    }
    assert_eq!(
        resolve(&view, "/lib/python3/dist-packages/c.py").as_deref(),
        Some("usr/lib/python3/dist-packages/c.py")
    );
    assert_eq!(read_to_string(&view, "etc/keep", 100).unwrap().as_deref(), Some("v2"));
    assert!(view.open("etc/keep").unwrap().is_none(), "open takes the path literally");
    assert!(view.open("usr").unwrap().is_none());

    if !require_tool("umoci") {
        return;
    }
    store.set_ref("layered", &image.manifest_descriptor()).unwrap();
    let rootfs = umoci_unpack(store.root(), "layered", dir.path());
    let theirs = rootfs_listing(&rootfs);
    let theirs_set: BTreeSet<_> = theirs.iter().cloned().collect();
    assert_eq!(ours_set, theirs_set, "ours:\n{}\numoci:\n{}", ours.join("\n"), theirs.join("\n"));
}

#[test]
fn a_corrupt_layer_fails_the_read_that_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    let mut tree = Tree::new();
    tree.insert("etc/os-release", file(0o644, "ID=debian\n"));
    tree.insert("padding", file(0o644, &"x".repeat(4096)));
    let layer = tree.write_layer(&store, LayerOptions { mtime: MTIME }, Compression::None).unwrap();
    let config =
        new_config(0, &RuntimeConfig::default(), std::slice::from_ref(&layer.diff_id), Vec::new()).unwrap();
    let image = write_image(&store, &config, &[layer.descriptor()], &BTreeMap::new()).unwrap();
    let view = ImageLayers::read(&store, &image).unwrap();
    assert_eq!(read_to_string(&view, "etc/os-release", 100).unwrap().as_deref(), Some("ID=debian\n"));

    // Change a byte after the files: a file read before (kept, verified)
    // still reads; one opened now reads its content, but fails when it
    // reaches the end of the blob.
    let blob = store.path(&layer.digest);
    let mut bytes = fs::read(&blob).unwrap();
    let at = bytes.len() - 2048;
    bytes[at] ^= 1;
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, &bytes).unwrap();
    assert_eq!(read_to_string(&view, "etc/os-release", 100).unwrap().as_deref(), Some("ID=debian\n"));
    let mut content = Vec::new();
    // (A small file is read whole at its open, so the error comes there.)
    let err = match view.open("padding") {
        Err(err) => err,
        Ok(reader) => reader.unwrap().read_to_end(&mut content).unwrap_err(),
    };
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = ImageLayers::read(&store, &image).unwrap_err();
    assert!(matches!(err, Error::ReadLayer { .. } | Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn prefetched_files_are_read_in_one_pass_and_only_once_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    let image_of = |salt: &str| {
        let mut tree = Tree::new();
        for i in 0..20 {
            tree.insert(format!("usr/share/doc/p{i}/copyright"), file(0o644, &format!("{salt} {i}\n")));
        }
        tree.insert("padding", file(0o644, &"x".repeat(4096)));
        let layer = tree.write_layer(&store, LayerOptions { mtime: MTIME }, Compression::None).unwrap();
        let config =
            new_config(0, &RuntimeConfig::default(), std::slice::from_ref(&layer.diff_id), Vec::new())
                .unwrap();
        (write_image(&store, &config, &[layer.descriptor()], &BTreeMap::new()).unwrap(), layer.digest)
    };
    let tamper = |digest: &Digest| {
        let blob = store.path(digest);
        let mut bytes = fs::read(&blob).unwrap();
        // A byte of the padding's content: the tar stays readable.
        let at = bytes.windows(64).position(|w| w.iter().all(|&b| b == b'x')).unwrap();
        bytes[at] = b'y';
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&blob, &bytes).unwrap();
    };
    let paths: Vec<String> = (0..20).map(|i| format!("usr/share/doc/p{i}/copyright")).collect();

    // Prefetched, then the blob changes: every file reads as it was, from
    // the one verified pass, in this view and in another of the same layer.
    let (image, layer) = image_of("prefetched");
    let view = ImageLayers::read(&store, &image).unwrap();
    view.prefetch(&paths).unwrap();
    tamper(&layer);
    for (i, path) in paths.iter().enumerate() {
        assert_eq!(read_to_string(&view, path, 100).unwrap().unwrap(), format!("prefetched {i}\n"));
    }
    // (The view of the image cannot be read again: the layer is damaged.)
    assert!(ImageLayers::read(&store, &image).is_err());

    // A damaged layer fails the prefetch, and nothing of it is kept.
    let (image, layer) = image_of("damaged");
    let view = ImageLayers::read(&store, &image).unwrap();
    tamper(&layer);
    let err = view.prefetch(&paths).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = read_to_string(&view, &paths[0], 100).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn entries_no_runtime_applies_are_refused() {
    for (entries, reason) in [
        (&[("a/../../etc/passwd", tar::EntryType::Regular, "", &b"x"[..])][..], "`..`"),
        (&[(".wh.", tar::EntryType::Regular, "", &b""[..])][..], "a whiteout without a name"),
        (&[("link", tar::EntryType::Link, "missing", &b""[..])][..], "is not an existing file"),
        (
            &[("d", tar::EntryType::Regular, "", &b""[..]), ("d/x", tar::EntryType::Regular, "", &b""[..])][..],
            "is not a directory",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
        let (desc, diff_id) = raw_layer(&store, entries);
        let config = new_config(0, &RuntimeConfig::default(), &[diff_id], Vec::new()).unwrap();
        let image = write_image(&store, &config, &[desc], &BTreeMap::new()).unwrap();
        let err = ImageLayers::read(&store, &image).unwrap_err();
        let Error::ReadLayer { source, .. } = &err else { panic!("{err}") };
        assert!(source.to_string().contains(reason), "{reason}: {source}");
    }
}

/// GNU tar's sparse files (GNU and PAX 1.0 formats) open as the files they
/// were made from, and the entries after them still read.
#[test]
fn sparse_files_open_expanded() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let mut sparse = fs::File::create(src.join("s")).unwrap();
    sparse.seek(SeekFrom::Start(1 << 20)).unwrap();
    sparse.write_all(b"hello").unwrap();
    sparse.seek(SeekFrom::Start(2 << 20)).unwrap();
    sparse.write_all(b"end").unwrap();
    drop(sparse);
    fs::write(src.join("t"), "after").unwrap();
    let original = fs::read(src.join("s")).unwrap();
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    for format in ["--format=gnu", "--format=posix"] {
        let archive = dir.path().join("layer.tar");
        let made = std::process::Command::new("tar")
            .current_dir(&src)
            .args(["--sparse", format, "-cf"])
            .arg(&archive)
            .args(["s", "t"])
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped {format}: GNU tar cannot make it here");
            continue;
        }
        let (digest, size) = store.put_bytes(&fs::read(&archive).unwrap()).unwrap();
        let desc = descriptor(MediaType::ImageLayer, &digest, size);
        let config = new_config(0, &RuntimeConfig::default(), &[digest], Vec::new()).unwrap();
        let image = write_image(&store, &config, &[desc], &BTreeMap::new()).unwrap();
        let view = ImageLayers::read(&store, &image).unwrap();
        assert_eq!(view.list(""), ["s", "t"], "{format}");
        let mut content = Vec::new();
        view.open("s").unwrap().unwrap().read_to_end(&mut content).unwrap();
        assert!(content == original, "{format}: the sparse file differs");
        assert_eq!(read_to_string(&view, "t", 100).unwrap().as_deref(), Some("after"), "{format}");
    }
}
