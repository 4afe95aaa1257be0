//! Push, pull back, re-push, mount, chunked uploads, rejected manifests.

use forge_oci::oci_spec::image::Descriptor;
use forge_oci::validate;
use forge_registry::{
    cached_image, Client, ClientOptions, Error, Platform, PushEvent, PushTo, Reference, Referred,
};

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
    let [sbom, provenance] = attestations(&store, &image);
    assert!(client.referrers(&reference, &image.manifest_digest, &|_| {}).unwrap().is_empty());

    let tag = forge_registry::fallback_tag(&image.manifest_digest);
    let mut report = client.push(&store, &image, &reference, &|_| {}).unwrap();
    for artifact in [&sbom, &provenance, &sbom] {
        let how = client
            .push_referrer(&store, artifact, &image.manifest_digest, &reference, &mut report, &|_| {})
            .unwrap();
        assert_eq!(how, Referred::FallbackTag(tag.clone()));
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

/// An SBOM and a provenance artifact about `image`, in `store`.
fn attestations(store: &forge_oci::BlobStore, image: &forge_oci::Image) -> [Descriptor; 2] {
    let annotations = std::collections::BTreeMap::new();
    let write = |kind: &str, document: &[u8]| {
        forge_oci::referrers::write_artifact(
            store,
            kind,
            document,
            &image.manifest_descriptor(),
            &annotations,
        )
        .unwrap()
        .descriptor
    };
    [
        write("application/spdx+json", b"{\"spdxVersion\":\"SPDX-2.3\"}"),
        write("application/vnd.in-toto+json", b"{\"_type\":\"https://in-toto.io/Statement/v1\"}"),
    ]
}

/// The digest `docker-registry` serves `repo:tag` as (`HEAD`, by the
/// test's own HTTP client), if any.
fn served(registry: &Registry, repo: &str, tag: &str) -> Option<String> {
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
    let (status, response) = forge_testkit::registry::http(
        registry.port,
        "HEAD",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", accept)],
    )?;
    (status == 200).then_some(())?;
    response.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("docker-content-digest").then(|| value.trim().to_owned())
    })
}

/// What a push of `image` and its `artifacts` to `reference` (through a
/// logging proxy) did: the report and each artifact's way in.
fn push_with_referrers(
    client: &Client,
    store: &forge_oci::BlobStore,
    image: &forge_oci::Image,
    artifacts: &[Descriptor],
    reference: &Reference,
    events: &Events,
) -> (forge_registry::PushReport, Vec<Referred>) {
    let mut report = client.push(store, image, reference, &events.record()).unwrap();
    let referred = client
        .push_referrers(store, artifacts, &image.manifest_digest, reference, &mut report, &events.record())
        .unwrap();
    let digests: Vec<String> = referred.iter().map(|(d, _)| d.to_string()).collect();
    let expected: Vec<String> = artifacts.iter().map(|a| a.digest().to_string()).collect();
    assert_eq!(digests, expected);
    (report, referred.into_iter().map(|(_, how)| how).collect())
}

#[test]
fn an_unchanged_image_is_one_head_and_a_look_at_its_referrers() {
    let Some(registry) = Registry::start(None) else { return };
    let proxy = Proxy::start(registry.port, Vec::new(), None);
    let (_dir, store, image) = store_with_image(21, 40_000);
    let artifacts = attestations(&store, &image);
    let reference = at(&proxy.host(), "same/app:1");
    let tag = forge_registry::fallback_tag(&image.manifest_digest);
    let fallback = vec![Referred::FallbackTag(tag.clone()); 2];
    let (first, how) =
        push_with_referrers(&client(), &store, &image, &artifacts, &reference, &Events::default());
    assert!(!first.up_to_date);
    // The artifacts share their (empty) config blob.
    assert_eq!((first.blobs_uploaded, first.blobs_skipped), (6, 1), "{first:?}");
    assert_eq!(how, fallback);
    // The fallback tag's index is read and written once for both.
    let at_tag: Vec<String> = proxy.state().log.iter().filter(|l| l.ends_with(&tag)).cloned().collect();
    assert_eq!(
        at_tag,
        [format!("GET /v2/same/app/manifests/{tag}"), format!("PUT /v2/same/app/manifests/{tag}")]
    );
    proxy.state().log.clear();

    // Again, from a new client (a new run): the manifest's HEAD under the
    // tag, the referrers route (none: Debian's registry 2.8) and the
    // fallback tag are all that is asked; not a blob, nothing written.
    let events = Events::default();
    let (again, how) = push_with_referrers(&client(), &store, &image, &artifacts, &reference, &events);
    let hex = image.manifest_digest.to_string();
    assert_eq!(
        proxy.state().log,
        [
            "GET /v2/".to_owned(),
            "HEAD /v2/same/app/manifests/1".into(),
            format!("GET /v2/same/app/referrers/{hex}"),
            format!("GET /v2/same/app/manifests/{tag}"),
        ]
    );
    assert!(again.up_to_date);
    assert_eq!((again.bytes_uploaded, again.blobs_uploaded, again.blobs_skipped), (0, 0, 7), "{again:?}");
    assert_eq!(how, fallback);
    let events = events.0.lock().unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, PushEvent::UpToDate { digest, .. } if *digest == image.manifest_digest)));
    assert!(!events.iter().any(|e| matches!(e, PushEvent::ManifestPushed { .. } | PushEvent::Tagged { .. })));
    assert_eq!(events.iter().filter(|e| matches!(e, PushEvent::BlobSkipped { .. })).count(), 7);
    drop(events);

    // What is there is what the first push left.
    assert_eq!(served(&registry, "same/app", "1"), Some(image.manifest_digest.to_string()));
    let listed = client().referrers(&reference, &image.manifest_digest, &|_| {}).unwrap();
    let listed: Vec<&str> = listed.iter().map(|d| d.digest().as_ref()).collect();
    assert_eq!(listed, artifacts.iter().map(|a| a.digest().as_ref()).collect::<Vec<&str>>());

    // A client that learnt the registry has no referrers API asks the
    // fallback tag only.
    let client = client();
    push_with_referrers(&client, &store, &image, &artifacts, &reference, &Events::default());
    proxy.state().log.clear();
    push_with_referrers(&client, &store, &image, &artifacts, &reference, &Events::default());
    assert_eq!(
        proxy.state().log,
        ["HEAD /v2/same/app/manifests/1".to_owned(), format!("GET /v2/same/app/manifests/{tag}")]
    );
}

#[test]
fn a_tag_naming_another_image_is_pushed_and_missing_referrers_are_added() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, old, reference, client) = pushed_image(&registry.host(), "moved/app:1", 22, 30_000);
    let new = crate::sample_image(&store, 23, 30_000);
    let events = Events::default();
    let report = client.push(&store, &new, &reference, &events.record()).unwrap();
    assert!(!report.up_to_date);
    assert_eq!(report.blobs_uploaded, 3, "{report:?}");
    assert!(events.0.lock().unwrap().iter().any(|e| matches!(e, PushEvent::Tagged { .. })));
    assert_eq!(served(&registry, "moved/app", "1"), Some(new.manifest_digest.to_string()));
    assert_ne!(old.manifest_digest, new.manifest_digest);

    // The tag is right, the referrers are not there yet: they are pushed.
    let artifacts = attestations(&store, &new);
    let (again, _) = push_with_referrers(&client, &store, &new, &artifacts, &reference, &Events::default());
    assert!(again.up_to_date);
    // The image's blobs; the artifacts' documents and their shared config.
    assert_eq!((again.blobs_skipped, again.blobs_uploaded), (4, 3), "{again:?}");
    let listed = client.referrers(&reference, &new.manifest_digest, &|_| {}).unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    // A pinned digest is checked by digest: the old image is still there.
    let pinned = reference.with_digest(&old.manifest_digest);
    assert!(client
        .serves(PushTo { store: &store, reference: &pinned, progress: &|_| {} }, &old.manifest_digest)
        .unwrap());
}

#[test]
fn an_unchanged_index_is_one_head_and_a_changed_one_is_pushed() {
    let Some(registry) = Registry::start(None) else { return };
    let proxy = Proxy::start(registry.port, Vec::new(), None);
    let (_dir, store, amd) = store_with_image(24, 20_000);
    let index_of = |seed: u64| {
        let mut config = amd.config.clone();
        Platform::parse("linux/arm64").unwrap().set_on(&mut config);
        config.set_created(Some(format!("2024-01-0{seed}T00:00:00Z")));
        let arm =
            forge_oci::write_image(&store, &config, amd.manifest.layers(), &Default::default()).unwrap();
        forge_oci::write_index(&store, &[amd.clone(), arm], &Default::default()).unwrap()
    };
    let (one, two) = (index_of(1), index_of(2));
    let reference = at(&proxy.host(), "multi/app:2");
    let push = |index: &forge_oci::Index, events: &Events| {
        client()
            .push_index(PushTo { store: &store, reference: &reference, progress: &events.record() }, index)
            .unwrap()
    };
    let first = push(&one, &Events::default());
    assert!(!first.up_to_date);
    proxy.state().log.clear();
    let again = push(&one, &Events::default());
    assert_eq!(proxy.state().log, ["GET /v2/", "HEAD /v2/multi/app/manifests/2"]);
    assert!(again.up_to_date);
    assert_eq!((again.digest.clone(), again.blobs_skipped, again.bytes_uploaded), (one.digest.clone(), 6, 0));

    // Another index under the tag: its new image goes up by digest (the
    // unchanged one is found by its digest), then the index and the tag.
    proxy.state().log.clear();
    let events = Events::default();
    let changed = push(&two, &events);
    assert!(!changed.up_to_date);
    assert_eq!(changed.blobs_uploaded, 1, "{changed:?}");
    assert_eq!(served(&registry, "multi/app", "2"), Some(two.digest.to_string()));
    let log = proxy.state().log.clone();
    assert_eq!(
        log.iter().filter(|l| l.starts_with("HEAD ") && l.contains("/manifests/")).count(),
        3,
        "the index's tag and each image by digest: {log:#?}"
    );
    let pushed: Vec<String> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            PushEvent::ManifestPushed { digest } => Some(digest.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(pushed, [two.images[1].manifest_digest.to_string(), two.digest.to_string()]);
}
