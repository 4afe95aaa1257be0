//! Transient failures: a dropped connection, a 500, a 429 with
//! `Retry-After`, and a registry that dies in the middle of a push.

use std::time::Duration;

use forge_registry::{Client, ClientOptions, Error, PushEvent};

use crate::servers::{Fault, Proxy, Registry, Rule};
use crate::{at, options, pushed_image, recorded_push, store_with_image, Events, RecordedPush};

#[test]
fn a_push_survives_a_dropped_connection_a_500_and_a_429() {
    let Some(registry) = Registry::start(None) else { return };
    let rules = vec![
        Rule { method: "PUT", path: "/blobs/uploads/", fault: Fault::Drop },
        Rule { method: "PUT", path: "/blobs/uploads/", fault: Fault::Status(500, None) },
        Rule { method: "HEAD", path: "/blobs/", fault: Fault::Status(429, Some(1)) },
        Rule { method: "PUT", path: "/manifests/", fault: Fault::Status(503, None) },
    ];
    let proxy = Proxy::start(registry.port, rules, None);
    let RecordedPush { image, report, events, took } =
        recorded_push(&proxy.host(), "faulty/app:1", 20, 400_000);
    assert_eq!(report.digest, image.manifest_digest);
    assert_eq!(report.blobs_uploaded, 3);
    let state = proxy.state();
    assert!(state.rules.is_empty(), "faults not applied: {:?}", state.rules);
    let retries = events.retries();
    assert_eq!(retries.len(), 4, "{retries:#?}");
    assert!(retries.iter().any(|r| r.contains("429")), "{retries:#?}");
    assert!(retries.iter().any(|r| r.contains("500")), "{retries:#?}");
    // Retry-After: 1 was honoured.
    assert!(took >= Duration::from_secs(1));
    drop(state);
    // The registry itself has the right image under the tag.
    assert_eq!(registry.manifest_status("faulty/app", "1"), 200);
    assert_eq!(registry.manifest_status("faulty/app", &image.manifest_digest.to_string()), 200);
    if forge_testkit::require_tool("skopeo") {
        assert_eq!(registry.skopeo_inspect("faulty/app", "1")["Digest"], image.manifest_digest.to_string());
    }
}

#[test]
fn a_re_push_retries_its_manifest_head_and_still_finds_it_up_to_date() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, image, _, _) = pushed_image(&registry.host(), "faulty/same:1", 25, 20_000);
    let rules = vec![
        Rule { method: "HEAD", path: "/manifests/1", fault: Fault::Status(503, None) },
        Rule { method: "HEAD", path: "/manifests/1", fault: Fault::Drop },
    ];
    let proxy = Proxy::start(registry.port, rules, None);
    let events = Events::default();
    let report = crate::client().push(&store, &image, &at(&proxy.host(), "faulty/same:1"), &events.record());
    let report = report.unwrap();
    assert!(report.up_to_date, "{report:?}");
    assert_eq!(events.retries().len(), 2, "{:#?}", events.retries());
    let state = proxy.state();
    assert!(state.rules.is_empty(), "faults not applied: {:?}", state.rules);
    assert!(!state.log.iter().any(|l| l.contains("/blobs/")), "{:?}", state.log);
}

#[test]
fn a_dropped_chunk_restarts_the_blob() {
    let Some(registry) = Registry::start(None) else { return };
    let rules = vec![Rule { method: "PATCH", path: "/blobs/uploads/", fault: Fault::Drop }];
    let proxy = Proxy::start(registry.port, rules, None);
    let (_dir, store, image) = store_with_image(21, 200_000);
    let reference = at(&proxy.host(), "faulty/chunks:1");
    let client =
        Client::new(ClientOptions { chunk_size: 50_000, ..options(Box::new(forge_registry::Anonymous)) });
    let events = Events::default();
    client.push(&store, &image, &reference, &events.record()).unwrap();
    assert_eq!(events.retries().len(), 1, "{:#?}", events.retries());
    assert!(proxy.state().rules.is_empty());
    assert_eq!(registry.manifest_status("faulty/chunks", "1"), 200);
}

#[test]
fn a_registry_killed_mid_push_leaves_no_tag() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, store, image) = store_with_image(22, 2_000_000);
    let reference = at(&registry.host(), "dying/app:1");
    let client =
        Client::new(ClientOptions { chunk_size: 256 << 10, ..options(Box::new(forge_registry::Anonymous)) });
    let killed = std::sync::atomic::AtomicBool::new(false);
    let progress = |event: PushEvent| {
        if let PushEvent::BlobProgress { sent, .. } = event {
            if sent > 300_000 && !killed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                registry.kill();
            }
        }
    };
    let err = client.push(&store, &image, &reference, &progress).unwrap_err();
    assert!(killed.load(std::sync::atomic::Ordering::SeqCst));
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");

    // The same storage served again: no tag, no manifest.
    let Some(revived) = Registry::start_on(&registry.storage, None) else { return };
    assert_eq!(revived.manifest_status("dying/app", "1"), 404);
    assert_eq!(revived.manifest_status("dying/app", &image.manifest_digest.to_string()), 404);
}

#[test]
fn a_tag_pull_trusts_only_what_the_registry_serves_under_its_digest() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, _, image, _, client) = pushed_image(&registry.host(), "tampered/app:1", 23, 10_000);
    for drop_digest in [false, true] {
        // A proxy appends whitespace to the manifest of the tag: still
        // JSON, but not the bytes the registry has under that digest.
        let rules = vec![Rule { method: "GET", path: "/manifests/1", fault: Fault::Tamper(drop_digest) }];
        let proxy = Proxy::start(registry.port, rules, None);
        let reference = at(&proxy.host(), "tampered/app:1");
        let (_fresh_dir, fresh) = crate::store();
        let err = client.pull(&reference, &forge_registry::Platform::default(), &fresh).unwrap_err();
        assert!(proxy.state().rules.is_empty(), "the fault was not applied");
        if drop_digest {
            // Without the header the tag is resolved to the body's digest,
            // which the registry does not have.
            assert!(matches!(err, Error::ManifestNotFound { .. }), "{err:?}");
        } else {
            assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
            assert!(err.to_string().contains(&image.manifest_digest.to_string()), "{err}");
        }
        assert!(fresh.refs().unwrap().is_empty(), "nothing is stored under a tampered manifest");
    }
    // Untampered, both ways work and give the pushed digest.
    let proxy = Proxy::start(registry.port, Vec::new(), None);
    let reference = at(&proxy.host(), "tampered/app:1");
    let (_fresh_dir, fresh) = crate::store();
    let pulled = client.pull(&reference, &forge_registry::Platform::default(), &fresh).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
}

#[test]
fn a_blob_cut_short_every_time_is_named_as_such_not_as_an_unreachable_registry() {
    let Some(registry) = Registry::start(None) else { return };
    let (_dir, _, _, _, client) = pushed_image(&registry.host(), "cut/app:1", 24, 200_000);
    let rules =
        (0..10).map(|_| Rule { method: "GET", path: "/blobs/sha256:", fault: Fault::Truncate }).collect();
    let proxy = Proxy::start(registry.port, rules, None);
    let reference = at(&proxy.host(), "cut/app:1");
    let (_fresh_dir, fresh) = crate::store();
    let err = client.pull(&reference, &forge_registry::Platform::default(), &fresh).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("the blob ended after"), "{message}");
    assert!(!message.contains("unreachable"), "{message}");
}
