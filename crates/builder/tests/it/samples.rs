//! The sample plugins of this repository, built and checked by our
//! validator and by skopeo, umoci and Python's tarfile; labels decoded back.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use forge_testkit::{python_check_archive, require_tool, skopeo_check, umoci_unpack};
use walkdir::WalkDir;

use crate::{build, project_root};

const SAMPLES: [&str; 3] =
    ["plugins/import/csv-bboxes", "plugins/nn/tiny-classifier", "plugins/tools/dataset-stats"];

/// Every file and directory under `dir`, relative, with its mode and, for
/// files, content.
fn listing(dir: &Path) -> BTreeMap<String, (u32, Option<Vec<u8>>)> {
    WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.path().components().any(|c| c.as_os_str() == "__pycache__"))
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            let content = e.file_type().is_file().then(|| fs::read(e.path()).unwrap());
            (rel, (mode, content))
        })
        .collect()
}

/// What a checkout file becomes in the image: 0644, or 0755 if executable.
fn normalised(mode: u32, is_dir: bool) -> u32 {
    if is_dir || mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

#[test]
fn sample_plugins_build_validate_and_unpack() {
    let root = project_root();
    let store = tempfile::tempdir().unwrap();
    for plugin in SAMPLES {
        let (ws, built) = build(&root, store.path(), plugin).unwrap();
        forge_oci::validate::image(ws.store(), built.digest()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let tarball = ws.export(&built, out.path()).unwrap();
        assert!(tarball.starts_with(out.path()) && tarball.extension().is_some_and(|e| e == "tar"));

        // Python's strict reader: every layer, every member.
        if require_tool("python3") {
            let members = python_check_archive(&tarball);
            assert!(members.contains("d 0755 0:0 0 workdir/src\n"), "{members}");
        }

        if !(require_tool("skopeo") && require_tool("umoci")) {
            continue;
        }
        let scratch = tempfile::tempdir().unwrap();
        let (inspect, layout) = skopeo_check(&tarball, scratch.path());
        assert_eq!(inspect["Labels"]["VERSION"], built.image.as_str());
        let rootfs = umoci_unpack(&layout, "checked", scratch.path());

        // The plugin at /workdir, the shared package at /workdir/supervisely_lib.
        let unpacked = listing(&rootfs.join("workdir"));
        let mut expected = BTreeMap::new();
        for (rel, (mode, content)) in listing(&root.join(plugin)) {
            expected.insert(rel, (normalised(mode, content.is_none()), content));
        }
        for (rel, (mode, content)) in listing(&root.join("supervisely_lib")) {
            expected.insert(format!("supervisely_lib/{rel}"), (normalised(mode, content.is_none()), content));
        }
        expected.insert("supervisely_lib".into(), (0o755, None));
        assert_eq!(unpacked.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{plugin}");
        assert_eq!(unpacked, expected, "{plugin}: modes or contents differ");
        // The base image is there below it, symlinks and special modes kept.
        assert_eq!(fs::read_link(rootfs.join("bin")).unwrap(), Path::new("usr/bin"));
        assert_eq!(fs::metadata(rootfs.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    }
}

#[test]
fn labels_are_those_of_build_plugin_sh() {
    let root = project_root();
    let store = tempfile::tempdir().unwrap();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    for plugin in SAMPLES {
        let (_, built) = build(&root, store.path(), plugin).unwrap();
        let labels = built.stored.config.config().as_ref().unwrap().labels().clone().unwrap();
        let dir = root.join(plugin);
        let read_or_empty = |name: &str| fs::read(dir.join(name)).map(|b| b64(&b)).unwrap_or_default();
        assert_eq!(labels["VERSION"], built.image);
        assert_eq!(labels["INFO"], read_or_empty("plugin_info.json"));
        assert_eq!(labels["README"], read_or_empty("README.md"));
        assert_eq!(labels["CONFIGS"], read_or_empty("predefined_run_configs.json"));
        let modes: Vec<&str> = ["main", "train", "inference", "deploy", "deploy_smart"]
            .into_iter()
            .filter(|m| dir.join(format!("src/{m}.py")).is_file())
            .collect();
        assert_eq!(labels["MODES"], modes.join(" "));
        // And they decode back to the files' bytes.
        let decoded = base64::engine::general_purpose::STANDARD.decode(&labels["INFO"]).unwrap();
        assert_eq!(decoded, fs::read(dir.join("plugin_info.json")).unwrap());
    }
    let (_, nn) = build(&root, store.path(), "plugins/nn/tiny-classifier").unwrap();
    let labels = nn.stored.config.config().as_ref().unwrap().labels().clone().unwrap();
    assert_eq!(labels["MODES"], "train inference deploy");
    let (_, stats) = build(&root, store.path(), "plugins/tools/dataset-stats").unwrap();
    let labels = stats.stored.config.config().as_ref().unwrap().labels().clone().unwrap();
    assert_eq!(labels["CONFIGS"], "", "no predefined_run_configs.json gives an empty label");
}

#[test]
fn config_follows_the_dockerfile() {
    let root = project_root();
    let store = tempfile::tempdir().unwrap();
    let (_, built) = build(&root, store.path(), "plugins/nn/tiny-classifier").unwrap();
    let config = built.stored.config.config().as_ref().unwrap();
    assert_eq!(config.working_dir().as_deref(), Some("/workdir/src"));
    assert_eq!(config.cmd().as_ref().unwrap(), &["python3", "-u", "/workdir/src/inference.py"]);
    let env = config.env().as_ref().unwrap();
    assert!(
        env.contains(&"PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto".to_string())
    );
    assert!(env.contains(&"PYTHONDONTWRITEBYTECODE=1".to_string()), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "the base image's PATH is kept: {env:?}");
    let annotations = built.stored.manifest.annotations().clone().unwrap();
    assert_eq!(annotations["org.opencontainers.image.version"], "0.3.1");
    assert_eq!(annotations["org.opencontainers.image.base.name"], "localhost:5000/base-py:0.3.1");
    let history = built.stored.config.history().clone().unwrap();
    let layers = history.iter().filter(|h| h.empty_layer() != Some(true)).count();
    assert_eq!(layers, built.stored.manifest.layers().len());
}
