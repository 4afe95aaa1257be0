//! Push, pull back, re-push, mount, chunked uploads, rejected manifests.

use forge_oci::validate;
use forge_registry::{cached_image, Client, ClientOptions, Error, Platform, PushEvent, PushTo, Reference};

use crate::servers::{Proxy, Registry};
use crate::{at, client, options, pushed_image, store, store_with_image, Events};

#[test]
fn push_is_seen_by_skopeo_and_pulls_back_valid_and_repush_uploads_nothing() {
    let Some(registry) = Registry::start(None) else { return };
    if !forge_testkit::require_tool("skopeo") {
        return;
    }
    let (_dir, store, image) = store_with_image(1, 200_000);
    let reference = at(&registry.host(), "plugins/app:1.0");
    let client = client();
    let events = Events::default();
    let report = client.push(&store, &image, &reference, &events.record()).unwrap();
    assert_eq!(report.digest, image.manifest_digest);
    assert_eq!((report.blobs_uploaded, report.blobs_skipped, report.blobs_mounted), (3, 0, 0));
    let blob_bytes: u64 =
        image.manifest.layers().iter().map(|l| l.size()).sum::<u64>() + image.manifest.config().size();
    assert_eq!(report.bytes_uploaded, blob_bytes);
    {
        let events = events.0.lock().unwrap();
        let order: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                PushEvent::BlobUploaded { .. } => Some("blob"),
                PushEvent::ManifestPushed { .. } => Some("manifest"),
                PushEvent::Tagged { .. } => Some("tag"),
                _ => None,
            })
            .collect();
        assert_eq!(order, ["blob", "blob", "blob", "manifest", "tag"]);
        let last_progress = events.iter().rev().find_map(|e| match e {
            PushEvent::BlobProgress { sent, size, .. } => Some((*sent, *size)),
            _ => None,
        });
        let (sent, size) = last_progress.expect("progress events");
        assert_eq!(sent, size);
    }

    let inspect = registry.skopeo_inspect("plugins/app", "1.0");
    assert_eq!(inspect["Digest"], image.manifest_digest.to_string());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);

    // Pull into a fresh store: same digest, valid image, and a ref to find it offline.
    let (_dir2, fresh) = crate::store();
    let pulled = client.pull(&reference, &Platform::default(), &fresh).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    let checked = validate::image(&fresh, &pulled.manifest_digest).unwrap();
    assert_eq!(checked.layers.len(), 2);
    let cached =
        cached_image(&fresh, &reference, &Platform::default()).unwrap().expect("the pull left a ref");
    assert_eq!(cached.manifest_digest, image.manifest_digest);

    // Pulling by digest what the store has needs no registry.
    let by_digest = reference.with_digest(&image.manifest_digest);
    let offline = Client::new(ClientOptions::default());
    registry.kill();
    assert_eq!(
        offline.pull(&by_digest, &Platform::default(), &fresh).unwrap().manifest_digest,
        image.manifest_digest
    );
}

#[test]
fn repush_skips_every_blob_and_a_second_repository_mounts_them() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, image, first, client) = pushed_image(&registry.host(), "team/base:1", 2, 100_000);

    let again = client.push(&store, &image, &first, &|_| {}).unwrap();
    assert_eq!((again.bytes_uploaded, again.blobs_skipped, again.blobs_uploaded), (0, 3, 0));

    let second = at(&registry.host(), "team/plugin:1");
    let events = Events::default();
    let mounted = client.push(&store, &image, &second, &events.record()).unwrap();
    assert_eq!(
        (mounted.blobs_mounted, mounted.blobs_uploaded, mounted.bytes_uploaded),
        (3, 0, 0),
        "{mounted:?}"
    );
    assert!(events
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, PushEvent::BlobMounted { from, .. } if from == "team/base")));
    assert_eq!(registry.manifest_status("team/plugin", "1"), 200);
}

#[test]
fn parallel_pushes_of_a_shared_blob_upload_it_once() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, image) = store_with_image(5, 300_000);
    let client = client();
    let reports: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let reference = at(&registry.host(), &format!("team/p{i}:1"));
                let (client, store, image) = (&client, &store, &image);
                scope.spawn(move || client.push(store, image, &reference, &|_| {}).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Each of the three blobs crosses the network once; the other
    // repositories mount it.
    let uploaded: usize = reports.iter().map(|r| r.blobs_uploaded).sum();
    let mounted: usize = reports.iter().map(|r| r.blobs_mounted).sum();
    assert_eq!((uploaded, mounted), (3, 6), "{reports:?}");
}

#[test]
fn a_refused_mount_falls_back_to_an_upload() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, image, _, client) = pushed_image(&registry.host(), "a/one:1", 3, 50_000);
    // The source repository goes away: the registry answers the mount
    // with an upload session, which the push uses.
    std::fs::remove_dir_all(registry.storage.join("docker/registry/v2/repositories/a/one")).unwrap();
    let second = at(&registry.host(), "a/two:1");
    let report = client.push(&store, &image, &second, &|_| {}).unwrap();
    assert_eq!((report.blobs_mounted, report.blobs_uploaded, report.blobs_skipped), (0, 3, 0), "{report:?}");
    assert_eq!(registry.manifest_status("a/two", "1"), 200);
}

#[test]
fn chunked_uploads_with_a_small_chunk_size() {
    let Some(registry) = Registry::start(None) else { return };
    let proxy = Proxy::start(registry.port, Vec::new(), None);
    let (_dir, store, image) = store_with_image(4, 300_000);
    let reference = at(&proxy.host(), "chunked/app:v1");
    let client =
        Client::new(ClientOptions { chunk_size: 64 << 10, ..options(Box::new(forge_registry::Anonymous)) });
    let report = client.push(&store, &image, &reference, &|_| {}).unwrap();
    assert_eq!(report.blobs_uploaded, 3);
    let big = image.manifest.layers()[0].size();
    let patches = proxy.state().log.iter().filter(|l| l.starts_with("PATCH ")).count() as u64;
    // Only the big layer is larger than a chunk.
    assert_eq!(patches, big.div_ceil(64 << 10), "{:#?}", proxy.state().log);

    let (_dir2, fresh) = crate::store();
    let pulled = client.pull(&reference, &Platform::default(), &fresh).unwrap();
    validate::image(&fresh, &pulled.manifest_digest).unwrap();
}

#[test]
fn a_manifest_with_missing_blobs_is_rejected_with_the_registrys_reason() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, image) = store_with_image(5, 10_000);
    let reference = at(&registry.host(), "broken/app:1");
    let err = client()
        .push_manifest(PushTo { store: &store, reference: &reference, progress: &|_| {} }, &image)
        .unwrap_err();
    assert!(matches!(err, Error::ManifestRejected { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("MANIFEST_BLOB_UNKNOWN"), "{message}");
    assert_eq!(registry.manifest_status("broken/app", "1"), 404);
}

#[test]
fn pulling_what_is_not_there() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store) = store();
    let reference = at(&registry.host(), "nothing/here:1");
    let err = client().pull(&reference, &Platform::default(), &store).unwrap_err();
    assert!(matches!(err, Error::ManifestNotFound { .. }), "{err:?}");
}

#[test]
fn an_unreachable_registry_is_reported_as_such() {
    let port = crate::servers::free_port();
    let (_dir, store) = store();
    let reference = Reference::parse(&format!("127.0.0.1:{port}/x/y:1")).unwrap();
    let err = client().pull(&reference, &Platform::default(), &store).unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port} is unreachable")), "{err}");
}

#[test]
fn an_index_is_pushed_after_its_images_and_pulls_back_per_platform() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, amd) = store_with_image(7, 50_000);
    let arm64 = Platform::parse("linux/arm64").unwrap();
    let mut config = amd.config.clone();
    arm64.set_on(&mut config);
    let arm = forge_oci::write_image(&store, &config, amd.manifest.layers(), &Default::default()).unwrap();
    let index = forge_oci::write_index(&store, &[amd.clone(), arm.clone()], &Default::default()).unwrap();
    let reference = at(&registry.host(), "plugins/multi:1.0");
    let client = client();
    let events = Events::default();
    let report = client
        .push_index(PushTo { store: &store, reference: &reference, progress: &events.record() }, &index)
        .unwrap();
    assert_eq!(report.digest, index.digest);
    // The second image's blobs (the same layers, another config) are mostly there already.
    assert_eq!(report.blobs_uploaded, 4, "{report:?}");
    let order: Vec<String> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            PushEvent::ManifestPushed { digest } => Some(digest.to_string()),
            PushEvent::Tagged { .. } => Some("tag".into()),
            _ => None,
        })
        .collect();
    let expected = [
        amd.manifest_digest.to_string(),
        arm.manifest_digest.to_string(),
        index.digest.to_string(),
        "tag".into(),
    ];
    assert_eq!(order, expected);

    for (platform, image) in [(Platform::default(), &amd), (arm64, &arm)] {
        let (_dir, fresh) = crate::store();
        let pulled = client.pull(&reference, &platform, &fresh).unwrap();
        assert_eq!(pulled.manifest_digest, image.manifest_digest, "{platform}");
        validate::image(&fresh, &pulled.manifest_digest).unwrap();
        assert!(cached_image(&fresh, &reference, &platform).unwrap().is_some());
    }
}

#[test]
fn referrers_go_to_the_fallback_tag_of_a_registry_without_the_api() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, image) = store_with_image(5, 10_000);
    let reference = at(&registry.host(), "team/app:1");
    let client = client();
    client.push(&store, &image, &reference, &|_| {}).unwrap();
    let annotations = std::collections::BTreeMap::new();
    let write = |kind: &str, document: &[u8]| {
        forge_oci::referrers::write_artifact(
            &store,
            kind,
            document,
            &image.manifest_descriptor(),
            &annotations,
        )
        .unwrap()
        .descriptor
    };
    let sbom = write("application/spdx+json", b"{\"spdxVersion\":\"SPDX-2.3\"}");
    let provenance =
        write("application/vnd.in-toto+json", b"{\"_type\":\"https://in-toto.io/Statement/v1\"}");
    assert!(client.referrers(&reference, &image.manifest_digest, &|_| {}).unwrap().is_empty());

    let tag = forge_registry::fallback_tag(&image.manifest_digest);
    let mut report = client.push(&store, &image, &reference, &|_| {}).unwrap();
    for artifact in [&sbom, &provenance, &sbom] {
        let how = client
            .push_referrer(&store, artifact, &image.manifest_digest, &reference, &mut report, &|_| {})
            .unwrap();
        assert_eq!(how, forge_registry::Referred::FallbackTag(tag.clone()));
    }
    // Docker's registry 2.8 has no referrers API; the tag's index lists each artifact once.
    let found = client.referrers(&reference, &image.manifest_digest, &|_| {}).unwrap();
    let digests: Vec<String> = found.iter().map(|d| d.digest().to_string()).collect();
    assert_eq!(digests, [sbom.digest().to_string(), provenance.digest().to_string()]);
    assert_eq!(
        found[0].artifact_type().as_ref().map(ToString::to_string).as_deref(),
        Some("application/spdx+json")
    );
    if forge_testkit::require_tool("skopeo") {
        let source = format!("docker://{}/team/app:{tag}", registry.host());
        let raw = forge_testkit::run("skopeo", &["inspect", "--raw", "--tls-verify=false", &source]);
        let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(index["manifests"].as_array().map(Vec::len), Some(2), "{index}");
    }
}
