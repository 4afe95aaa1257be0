//! The store and images in it: refs, loading, canonical JSON and the
//! validator, on good and on corrupted content.

use std::collections::HashMap;
use std::fs;
use std::io::Read;

use forge_oci::image::{new_config, write_image};
use forge_oci::oci_spec::image::ConfigBuilder;
use forge_oci::validate::{self, Problem};
use forge_oci::{BlobStore, Error, Image};

use crate::sample;

#[test]
fn the_validator_accepts_what_we_build() {
    let s = sample();
    let report = validate::image(&s.store, &s.image.manifest_digest).unwrap();
    assert_eq!(report.layers.len(), 2);
    for (found, built) in report.layers.iter().zip(&s.layers) {
        assert_eq!(found.digest, built.digest);
        assert_eq!(found.diff_id, built.diff_id);
        assert_eq!(found.size, built.size);
    }
    // Every base entry; PAX headers are not entries of their own.
    assert_eq!(report.layers[0].entries, 21);
    assert_eq!(report.config_digest, s.image.config_digest().unwrap());
}

#[test]
fn images_load_back_through_refs() {
    let s = sample();
    s.store.set_ref("sample:1.0", &s.image.manifest_descriptor()).unwrap();
    let loaded = Image::load_ref(&s.store, "sample:1.0").unwrap().unwrap();
    assert_eq!(loaded, s.image);
    assert_eq!(Image::load_ref(&s.store, "other").unwrap(), None);
    assert_eq!(s.store.refs().unwrap().len(), 1);
}

#[test]
fn a_corrupted_layer_is_found_by_open_and_by_the_validator() {
    let s = sample();
    let layer = &s.layers[1];
    let path = s.store.path(&layer.digest);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let mut sink = Vec::new();
    let err = s.store.open(&layer.digest).unwrap().read_to_end(&mut sink).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(&layer.digest.to_string()), "{err}");

    let Err(Error::InvalidImage { problems, .. }) = validate::image(&s.store, &s.image.manifest_digest)
    else {
        panic!("corruption not found");
    };
    // A flipped bit breaks gzip (CRC or deflate) or the digest; either way layer 1.
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].to_string().starts_with("layer 1"), "{}", problems[0]);
}

#[test]
fn a_layer_with_the_wrong_diff_id_is_found_by_the_validator() {
    let s = sample();
    let mut config = s.image.config.clone();
    config.rootfs_mut().diff_ids_mut().swap(0, 1);
    let descriptors: Vec<_> = s.layers.iter().map(forge_oci::Layer::descriptor).collect();
    let image = write_image(&s.store, &config, &descriptors, &Default::default()).unwrap();
    let Err(Error::InvalidImage { problems, .. }) = validate::image(&s.store, &image.manifest_digest) else {
        panic!("wrong diff IDs not found");
    };
    assert!(
        matches!(problems[..], [Problem::DiffId { index: 0, .. }, Problem::DiffId { index: 1, .. }]),
        "{problems:?}"
    );

    // Missing history and a wrong size.
    let mut short = descriptors.clone();
    let size = short[0].size();
    short[0].set_size(size + 1);
    let mut config = s.image.config.clone();
    config.history_mut().as_mut().unwrap().pop();
    let image = write_image(&s.store, &config, &short, &Default::default()).unwrap();
    let err = validate::image(&s.store, &image.manifest_digest).unwrap_err().to_string();
    assert!(err.contains("history has 1 entries that are not empty_layer, for 2 layers"), "{err}");
    assert!(err.contains("size mismatch"), "{err}");
}

#[test]
fn a_corrupted_config_is_found_by_loading_and_validating() {
    let s = sample();
    let config = s.image.config_digest().unwrap();
    fs::write(s.store.path(&config), b"{}").unwrap();
    assert!(matches!(Image::load(&s.store, &s.image.manifest_digest), Err(Error::DigestMismatch { .. })));
    let err = validate::image(&s.store, &s.image.manifest_digest).unwrap_err();
    assert!(err.to_string().contains("config blob: digest mismatch"), "{err}");
}

#[test]
fn configs_with_labels_in_any_order_have_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("label.{i}")).collect();
    let mut digests = Vec::new();
    for order in [keys.clone(), keys.iter().rev().cloned().collect()] {
        let labels: HashMap<String, String> = order.into_iter().map(|k| (k.clone(), k)).collect();
        let mut config = new_config(0, &Default::default(), &[], vec![]).unwrap();
        config.set_config(Some(ConfigBuilder::default().labels(labels).build().unwrap()));
        let image =
            write_image(&store, &config, &[], &[("b".into(), "2".into()), ("a".into(), "1".into())].into())
                .unwrap();
        digests.push((image.config_digest().unwrap(), image.manifest_digest));
    }
    assert_eq!(digests[0], digests[1]);
}

/// Many writers at once, each with its own store handle (as separate
/// processes would have), each reading `index.json` between its writes
/// (so that what it knows of the file is often stale): no ref is lost,
/// and each sees its own.
#[test]
fn concurrent_set_ref_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let (digest, size) = store.put_bytes(b"{}").unwrap();
    let desc = forge_oci::descriptor(oci_spec::image::MediaType::ImageManifest, &digest, size);
    assert!(store.refs().unwrap().is_empty());
    std::thread::scope(|scope| {
        for i in 0..16 {
            let desc = desc.clone();
            let path = dir.path().to_path_buf();
            scope.spawn(move || {
                let store = BlobStore::open_or_create(path).unwrap();
                for round in 0..4 {
                    store.set_ref(&format!("ref-{i}-{round}"), &desc).unwrap();
                    for seen in 0..=round {
                        assert!(store.resolve_ref(&format!("ref-{i}-{seen}")).unwrap().is_some());
                    }
                }
            });
        }
    });
    assert_eq!(store.refs().unwrap().len(), 64);
}
