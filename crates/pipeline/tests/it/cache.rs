//! The `--cache` registry of a session vanishing in the middle of a
//! batch: the builds go on with local layers, one warning says so, and
//! the images are those of a run whose cache never failed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use forge_pipeline::{BatchOptions, CacheOptions, Event, Session, SessionOptions};
use forge_testkit::monorepo;
use forge_testkit::registry::Registry;

/// A generated monorepo of `plugins` plugins with `localhost:5000/base-py`
/// in its store (the same image in every root: builds are reproducible).
fn runner(plugins: usize) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    monorepo::generate(repo.path(), plugins);
    let rootfs = tempfile::tempdir().unwrap();
    for exe in ["bin/sh", "usr/bin/python"] {
        monorepo::write(rootfs.path(), exe, "stand-in\n");
        std::fs::set_permissions(rootfs.path().join(exe), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let store = forge_pipeline::open_store(repo.path()).unwrap();
    let base = forge_builder::image_from_rootfs(&store, rootfs.path(), 0).unwrap();
    store.set_ref("localhost:5000/base-py", &base.manifest_descriptor()).unwrap();
    repo
}

fn options(root: &std::path::Path, cache: &str) -> SessionOptions {
    SessionOptions {
        cache: CacheOptions { repositories: vec![cache.to_string()], ..CacheOptions::default() },
        ..crate::options(root)
    }
}

/// Builds every plugin of `root` one at a time: digest and layers built, by plugin.
fn build_all(
    session: &Session,
    root: &std::path::Path,
    observer: &dyn forge_pipeline::Observer,
) -> BTreeMap<PathBuf, (String, usize)> {
    let plugins = forge_pipeline::discover(root).unwrap();
    let outcomes = session.build(&plugins, &BatchOptions { jobs: Some(1), lint: true }, observer).unwrap();
    outcomes
        .into_iter()
        .map(|o| {
            let built = o.result.unwrap_or_else(|e| panic!("{}: {e}", o.plugin.display())).built;
            (o.plugin, (built.digest().to_string(), built.layers_built))
        })
        .collect()
}

#[test]
fn a_cache_that_vanishes_mid_batch_leaves_the_builds_and_their_images_as_they_were() {
    let Some(registry) = Registry::start(None) else { return };
    let cache = format!("{}/plugin-forge/cache", registry.host());

    let first = runner(6);
    let session = Session::open(options(first.path(), &cache), &forge_pipeline::Quiet).unwrap();
    let expected = build_all(&session, first.path(), &forge_pipeline::Quiet);
    assert_eq!(expected.values().map(|(_, built)| built).sum::<usize>(), 7, "{expected:?}");

    // The second runner loses the cache when its third plugin starts.
    let second = runner(6);
    let started = AtomicUsize::new(0);
    let warnings = Mutex::new(Vec::new());
    let observer = |event: &Event<'_>| match event {
        Event::BuildStarted { .. } if started.fetch_add(1, Ordering::SeqCst) == 2 => registry.kill(),
        Event::CacheWarning { message, .. } => warnings.lock().unwrap().push(message.to_string()),
        _ => {}
    };
    let session = Session::open(options(second.path(), &cache), &observer).unwrap();
    let found = build_all(&session, second.path(), &observer);
    let digests = |m: &BTreeMap<PathBuf, (String, usize)>| {
        m.iter().map(|(p, (d, _))| (p.clone(), d.clone())).collect::<Vec<_>>()
    };
    assert_eq!(digests(&found), digests(&expected));
    let built: usize = found.values().map(|(_, built)| built).sum();
    // The first two came from the cache (the SDK's layer with them), the last four were built here.
    assert_eq!(built, 4, "{found:?}");
    let warnings = warnings.into_inner().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("not used for the rest of this run"), "{warnings:?}");
}
