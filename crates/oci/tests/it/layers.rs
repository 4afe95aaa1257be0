//! Layer building: reproducibility, PAX names, links, the ordering contract
//! and the layer cache.

use std::fs;
use std::io::Read;
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;
use forge_oci::{
    BlobStore, Compression, Digest, Entry, Error, Layer, LayerBuilder, LayerCache, LayerKey, LayerOptions,
    Node, Tree,
};

use forge_testkit::files_below;

use crate::{base_entries, build_layer, long_dir, write_sources, MTIME};

/// The uncompressed tar of a stored layer.
fn tar_bytes(store: &BlobStore, layer: &Layer) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(fs::File::open(store.path(&layer.digest)).unwrap()).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn same_entries_give_the_same_digests_whatever_the_source_files_modes_and_mtimes() {
    let mut results = Vec::new();
    for (mode, mtime) in
        [(0o600, SystemTime::UNIX_EPOCH + Duration::from_secs(1)), (0o777, SystemTime::now())]
    {
        let dir = tempfile::tempdir().unwrap();
        let src = write_sources(dir.path(), mode, mtime);
        let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
        let (entries, _) = base_entries(&src);
        results.push(build_layer(&store, entries));
    }
    assert_eq!(results[0], results[1]);
    assert_ne!(results[0].digest, results[0].diff_id);
}

#[test]
fn a_different_mtime_option_gives_a_different_layer() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let layer = |mtime| {
        let mut b = LayerBuilder::new(&store, LayerOptions { mtime }).unwrap();
        b.append(Entry::bytes("a", 0o644, "x")).unwrap();
        b.finish().unwrap()
    };
    assert_ne!(layer(0).diff_id, layer(1).diff_id);
    assert_eq!(layer(0), layer(0));
}

#[test]
fn headers_carry_only_what_the_entry_says() {
    let dir = tempfile::tempdir().unwrap();
    let src = write_sources(dir.path(), 0o640, SystemTime::now());
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    let (entries, expected) = base_entries(&src);
    let layer = build_layer(&store, entries);
    let tar = tar_bytes(&store, &layer);
    let mut archive = tar::Archive::new(&tar[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        assert!(header.as_ustar().is_some(), "{path}: not a ustar header");
        assert_eq!(header.mtime().unwrap(), MTIME, "{path}");
        assert_eq!(header.username_bytes(), Some(&b""[..]), "{path}");
        assert_eq!(header.groupname_bytes(), Some(&b""[..]), "{path}");
        let kind = header.entry_type();
        if kind.is_dir() {
            assert!(path.ends_with('/'), "{path}: directory without trailing /");
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let link = entry.link_name_bytes().map(|l| String::from_utf8(l.into_owned()).unwrap());
        seen.push((
            path.trim_end_matches('/').to_owned(),
            kind,
            header.mode().unwrap(),
            header.uid().unwrap(),
            link,
        ));
    }
    let paths: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    let mut want: Vec<&str> = expected.iter().map(|e| e.0.as_str()).collect();
    want.sort();
    assert_eq!(paths, want);

    let find = |p: &str| seen.iter().find(|s| s.0 == p).unwrap().clone();
    assert!(find("opt/app/run2").1.is_hard_link());
    assert_eq!(find("opt/app/run2").4.as_deref(), Some("opt/app/run.sh"));
    assert!(find("bin/sh").1.is_symlink());
    assert_eq!(find("bin/sh").4.as_deref(), Some("/usr/bin/dash"));
    assert_eq!(find("usr/bin/su").2, 0o4755);
    assert_eq!(find("tmp").2, 0o1777);
    assert_eq!(find("home/user").3, 1000);
    // The end: two zero blocks, nothing after.
    assert!(tar.len().is_multiple_of(512) && tar[tar.len() - 1024..].iter().all(|&b| b == 0));
}

#[test]
fn pax_headers_only_where_ustar_cannot_hold_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let long = long_dir();
    // Written from a `Tree`: `opt` and `opt/app` are implied.
    let mut tree = Tree::new();
    tree.insert("opt/app/caf\u{e9}", Node::bytes(0o644, "x"));
    tree.insert("opt/app/short", Node::bytes(0o644, "x"));
    tree.insert(long.clone(), Node::dir(0o755));
    tree.insert(format!("{long}/l"), Node::symlink("x".repeat(101)));
    let layer = tree.write_layer(&store, LayerOptions { mtime: MTIME }, Compression::default()).unwrap();
    let tar = tar_bytes(&store, &layer);
    let mut pax: Vec<Vec<(String, String)>> = Vec::new();
    let mut offset = 0;
    while offset + 512 <= tar.len() && tar[offset..offset + 512].iter().any(|&b| b != 0) {
        let header = &tar[offset..offset + 512];
        let size = usize::from_str_radix(std::str::from_utf8(&header[124..135]).unwrap(), 8).unwrap();
        if header[156] == b'x' {
            let mut text = std::str::from_utf8(&tar[offset + 512..offset + 512 + size]).unwrap();
            let mut records = Vec::new();
            while !text.is_empty() {
                let (len, _) = text.split_once(' ').unwrap();
                let (record, rest) = text.split_at(len.parse().unwrap());
                let (key, value) = record.split_once(' ').unwrap().1.split_once('=').unwrap();
                assert!(value.ends_with('\n'));
                records.push((key.to_owned(), value.trim_end_matches('\n').to_owned()));
                text = rest;
            }
            pax.push(records);
        }
        offset += 512 + size.div_ceil(512) * 512;
    }
    let record = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        pax,
        vec![
            vec![record("path", "opt/app/caf\u{e9}")],
            vec![record("path", &format!("{long}/"))],
            vec![record("path", &format!("{long}/l")), record("linkpath", &"x".repeat(101))],
        ]
    );
}

#[test]
fn the_ordering_contract_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let mut b = LayerBuilder::new(&store, LayerOptions::default()).unwrap();
    assert!(matches!(
        b.append(Entry::bytes("a/b", 0o644, "")),
        Err(Error::MissingParent { parent, .. }) if parent == "a"
    ));
    b.append(Entry::dir("a", 0o755)).unwrap();
    // "a-b" sorts between "a" and "a/..." by bytes ('-' < '/').
    b.append(Entry::dir("a-b", 0o755)).unwrap();
    assert!(matches!(
        b.append(Entry::dir("a", 0o755)),
        Err(Error::OutOfOrder { previous, path }) if previous == "a-b" && path == "a"
    ));
    b.append(Entry::bytes("a/b", 0o644, "")).unwrap();
    b.append(Entry::symlink("c", "a")).unwrap();
    assert!(matches!(b.append(Entry::bytes("c/d", 0o644, "")), Err(Error::MissingParent { .. })));
    assert!(matches!(b.append(Entry::hardlink("d", 0o644, "a")), Err(Error::BadHardlink { .. })));
    assert!(matches!(b.append(Entry::hardlink("d", 0o644, "zzz")), Err(Error::BadHardlink { .. })));
    b.append(Entry::hardlink("d", 0o777, "c")).unwrap();
    let layer = b.finish().unwrap();
    forge_oci::validate::image(&store, &{
        let config = forge_oci::image::new_config(
            0,
            &Default::default(),
            std::slice::from_ref(&layer.diff_id),
            vec![],
        )
        .unwrap();
        forge_oci::write_image(&store, &config, &[layer.descriptor()], &Default::default())
            .unwrap()
            .manifest_digest
    })
    .unwrap();
}

#[test]
fn a_missing_source_file_is_an_error_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    let mut b = LayerBuilder::new(&store, LayerOptions::default()).unwrap();
    let err = b.append(Entry::file("f", 0o644, 3, dir.path().join("missing"))).unwrap_err();
    assert!(err.to_string().starts_with("opening "), "{err}");
    b.append(Entry::bytes("f", 0o644, "abc")).unwrap();
    b.finish().unwrap();
}

#[test]
fn a_dropped_builder_leaves_no_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let mut b = LayerBuilder::new(&store, LayerOptions::default()).unwrap();
    b.append(Entry::bytes("f", 0o644, vec![1u8; 1 << 20])).unwrap();
    drop(b);
    let left = files_below(&store.root().join("blobs"));
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn the_layer_cache_hits_only_while_the_blob_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let layer = build_layer(&store, vec![Entry::bytes("f", 0o644, "cached")]);
    let key = LayerKey::from_digest(Digest::of(b"inputs"));
    assert_eq!(store.get(&key), None);
    store.put(&key, &layer).unwrap();
    assert_eq!(store.get(&key), Some(layer.clone()));
    // Survives reopening the store (another run).
    let again = BlobStore::open_or_create(dir.path()).unwrap();
    assert_eq!(again.get(&key), Some(layer.clone()));
    fs::remove_file(store.path(&layer.digest)).unwrap();
    assert_eq!(store.get(&key), None);
}

#[test]
fn a_file_that_grows_while_it_is_read_poisons_the_layer() {
    // Files in /proc report a size of 0 but have content: exactly what a
    // file that grew after it was opened looks like.
    let grows = std::path::Path::new("/proc/self/status");
    if !grows.exists() {
        eprintln!("skipping: no /proc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let mut b = LayerBuilder::new(&store, LayerOptions::default()).unwrap();
    b.append(Entry::bytes("a", 0o644, "fine")).unwrap();
    let err = b.append(Entry::file("status", 0o644, 0, grows)).unwrap_err();
    assert!(matches!(err, Error::FileChanged { expected: 0, .. }), "{err}");
    assert!(err.to_string().contains("changed size while it was being read"), "{err}");
    assert!(matches!(b.append(Entry::bytes("z", 0o644, "")), Err(Error::Poisoned)));
    assert!(matches!(b.finish(), Err(Error::Poisoned)));
    assert_eq!(files_below(&store.root().join("blobs")), Vec::<String>::new());
}
