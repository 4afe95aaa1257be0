//! Same inputs, same bytes: whatever the checkout path, mtimes or umask;
//! and nothing rebuilt that did not change.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use std::sync::Mutex;

use forge_builder::{LocalResolver, Status, Workspace};
use forge_oci::{BlobStore, Layer, LayerCache, LayerKey};
use walkdir::WalkDir;

use crate::{add_base, options, project_root};

/// Two checkouts of the samples: one in a temporary directory, old mtimes,
/// group-write bits off; one at `deeper` below another, mtimes of now,
/// group-write bits on. Returns both directories and the second's root.
fn two_checkouts(deeper: &str) -> (tempfile::TempDir, tempfile::TempDir, std::path::PathBuf) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b_root = b.path().join(deeper);
    checkout(a.path(), false, SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
    checkout(&b_root, true, SystemTime::now());
    (a, b, b_root)
}

/// Copies the samples and the shared package into `dest`, then gives every
/// file `file_mode`-like permissions (keeping executable bits) and `mtime`.
fn checkout(dest: &Path, group_writable: bool, mtime: SystemTime) {
    let root = project_root();
    for part in ["plugins", "supervisely_lib"] {
        for entry in WalkDir::new(root.join(part)) {
            let entry = entry.unwrap();
            let rel = entry.path().strip_prefix(&root).unwrap();
            if rel.components().any(|c| c.as_os_str() == "__pycache__") {
                continue;
            }
            let target = dest.join(rel);
            if entry.file_type().is_dir() {
                fs::create_dir_all(&target).unwrap();
            } else {
                fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    for entry in WalkDir::new(dest).contents_first(true) {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let exec = meta.permissions().mode() & 0o111 != 0;
        let mode = match (entry.file_type().is_dir(), group_writable, exec) {
            (true, true, _) => 0o775,
            (true, false, _) => 0o755,
            (false, true, true) => 0o775,
            (false, true, false) => 0o664,
            (false, false, true) => 0o755,
            (false, false, false) => 0o644,
        };
        fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode)).unwrap();
        if entry.file_type().is_file() {
            fs::File::options().write(true).open(entry.path()).unwrap().set_modified(mtime).unwrap();
        }
    }
}

#[test]
fn two_checkouts_give_identical_images() {
    let (a, _b, b_root) = two_checkouts("deeper/checkout");
    let mut digests = Vec::new();
    for root in [a.path(), b_root.as_path()] {
        let store = tempfile::tempdir().unwrap();
        let ws = Workspace::open(root, store.path()).unwrap();
        add_base(ws.store());
        let mut per_plugin = Vec::new();
        for plugin in
            ["plugins/import/csv-bboxes", "plugins/nn/tiny-classifier", "plugins/tools/dataset-stats"]
        {
            let built = ws
                .build(Path::new(plugin), &options(), &LocalResolver::default(), &forge_builder::NoInstaller)
                .unwrap();
            per_plugin.push(built.digest().to_string());
        }
        digests.push(per_plugin);
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn unchanged_plugins_rebuild_nothing_and_a_change_rebuilds_one_layer() {
    let repo = tempfile::tempdir().unwrap();
    checkout(repo.path(), false, SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
    let store = tempfile::tempdir().unwrap();
    let plugins = ["plugins/import/csv-bboxes", "plugins/nn/tiny-classifier"];
    let build_all = || {
        // A new workspace each time, as a new `cargo xtask build-all` run.
        let ws = Workspace::open(repo.path(), store.path()).unwrap();
        if ws.store().resolve_ref(crate::BASE).unwrap().is_none() {
            add_base(ws.store());
        }
        plugins
            .iter()
            .map(|p| {
                ws.build(Path::new(p), &options(), &LocalResolver::default(), &forge_builder::NoInstaller)
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let first = build_all();
    // The shared supervisely_lib layer is compressed once in the run.
    assert_eq!(first.iter().map(|b| b.layers_built).sum::<usize>(), 3);

    let second = build_all();
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(b.status, Status::Cached);
        assert_eq!(b.layers_built, 0);
        assert_eq!(a.digest(), b.digest());
    }

    fs::write(repo.path().join("plugins/nn/tiny-classifier/src/model.py"), "# changed\n").unwrap();
    let third = build_all();
    assert_eq!((third[0].status, third[0].layers_built), (Status::Cached, 0));
    assert_eq!((third[1].status, third[1].layers_built, third[1].layers_cached), (Status::Built, 1, 1));
    assert_ne!(third[1].digest(), second[1].digest());
}

/// The store's layer cache, recording every key asked for.
struct Recording<'a> {
    store: &'a BlobStore,
    keys: Mutex<Vec<LayerKey>>,
}

impl LayerCache for Recording<'_> {
    fn get(&self, key: &LayerKey) -> Option<Layer> {
        self.keys.lock().unwrap().push(key.clone());
        self.store.get(key)
    }

    fn put(&self, key: &LayerKey, layer: &Layer) -> forge_oci::Result<()> {
        self.store.put(key, layer)
    }
}

/// The layer cache keys a build of `plugin` in the checkout at `root` asks
/// for, with the store at `store`.
fn layer_keys(root: &Path, store: &Path, plugin: &str) -> Vec<LayerKey> {
    let ws = Workspace::open(root, store).unwrap();
    if ws.store().resolve_ref(crate::BASE).unwrap().is_none() {
        add_base(ws.store());
    }
    let planned = ws.plan(Path::new(plugin), &options(), &LocalResolver::default()).unwrap();
    let recording = Recording { store: ws.store(), keys: Mutex::new(Vec::new()) };
    ws.execute(&planned, &recording, &forge_builder::NoInstaller).unwrap();
    recording.keys.into_inner().unwrap()
}

#[test]
fn layer_cache_keys_are_the_same_in_two_checkouts_and_follow_content() {
    let (a, _b, b_root) = two_checkouts("elsewhere/checkout");
    let (store_a, store_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plugin = "plugins/import/csv-bboxes";
    let keys_a = layer_keys(a.path(), store_a.path(), plugin);
    let keys_b = layer_keys(&b_root, store_b.path(), plugin);
    // The SDK layer and the plugin's layer.
    assert_eq!(keys_a.len(), 2);
    assert_eq!(keys_a, keys_b);

    // One file of the SDK changes in B: its layer's key, and the key of
    // every layer above it, change.
    let changed = b_root.join("supervisely_lib/logger.py");
    let mut text = fs::read_to_string(&changed).unwrap();
    text.push_str("# changed\n");
    fs::write(&changed, text).unwrap();
    let keys_changed = layer_keys(&b_root, store_b.path(), plugin);
    assert_eq!(keys_changed.len(), 2);
    assert_ne!(keys_changed[0], keys_a[0]);
    assert_ne!(keys_changed[1], keys_a[1]);

    // And back: the same content gives the old keys again, whatever the mtime.
    let mut text = fs::read_to_string(&changed).unwrap();
    text.truncate(text.len() - "# changed\n".len());
    fs::write(&changed, text).unwrap();
    assert_eq!(layer_keys(&b_root, store_b.path(), plugin), keys_a);
}

/// `COPY . /workdir` (the seed tutorial's advice) with the store and the
/// tarballs inside the checkout, at `ROOT/target/plugin-forge`: our own
/// output is never copied, so the second build equals the first, two
/// checkouts agree, and ten plugins building in parallel beside it never
/// read each other's half-written files.
#[test]
fn copying_the_whole_root_never_copies_our_own_output() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b_root = b.path().join("deeper/checkout");
    let mut digests = Vec::new();
    for root in [a.path(), b_root.as_path()] {
        checkout(root, false, SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        let dockerfile =
            "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nCOPY . /workdir\nWORKDIR /workdir\n";
        let sample = root.join("plugins/tools/dataset-stats");
        fs::write(sample.join("Dockerfile"), dockerfile).unwrap();
        let mut others = Vec::new();
        for i in 0..10 {
            let dir = root.join(format!("plugins/extra/p{i}"));
            fs::create_dir_all(dir.join("src")).unwrap();
            for file in ["plugin_info.json", "Dockerfile", "README.md"] {
                fs::copy(sample.join(file), dir.join(file)).unwrap();
            }
            fs::copy(sample.join("src/main.py"), dir.join("src/main.py")).unwrap();
            fs::write(dir.join("VERSION"), format!("supervisely/extra-p{i}:0.1.0\n")).unwrap();
            others.push(format!("plugins/extra/p{i}"));
        }
        let store_dir = root.join(forge_builder::TARGET_DIR).join("oci");
        let ws = Workspace::open(root, &store_dir).unwrap();
        add_base(ws.store());
        let out = root.join(forge_builder::TARGET_DIR).join("images");
        let build = |plugin: &str| {
            let built = ws
                .build(Path::new(plugin), &options(), &LocalResolver::default(), &forge_builder::NoInstaller)
                .unwrap();
            ws.export(&built, &out).unwrap();
            built.digest().to_string()
        };
        let first = build("plugins/tools/dataset-stats");
        let parallel: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = others.iter().map(|p| scope.spawn(|| build(p))).collect();
            let again = build("plugins/tools/dataset-stats");
            assert_eq!(again, first, "the second build differs from the first");
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(parallel.len(), 10);
        assert_eq!(build("plugins/tools/dataset-stats"), first);
        digests.push(first);
    }
    assert_eq!(digests[0], digests[1], "two checkouts differ");
}
