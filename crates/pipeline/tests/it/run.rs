//! Sandboxed `RUN`s through a session: over a base made of the host's own
//! `sh`, `mkdir`, `ln`, `rm` and `cat` (copied with their libraries), each
//! `RUN` executed under bubblewrap and its changes captured as a layer,
//! checked with Python's `tarfile`.

use std::path::Path;

use forge_pipeline::{RunPolicy, Session, SessionOptions};

use super::{options, write};

/// A monorepo with plugin `plugins/r` whose Dockerfile is `dockerfile`,
/// and `localhost:5000/base-py` made of the host's userland plus
/// `/etc/gone`, `/srv/data/old` and a `python` stand-in.
pub(super) fn monorepo(dockerfile: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "plugins/r/plugin_info.json",
        r#"{"title": "t", "description": "d", "type": "import"}"#,
    );
    write(repo.path(), "plugins/r/VERSION", "team/r:1.0.0\n");
    write(repo.path(), "plugins/r/Dockerfile", dockerfile);
    write(repo.path(), "plugins/r/src/main.py", "print(1)\n");
    let rootfs = tempfile::tempdir().unwrap();
    forge_testkit::host_userland(rootfs.path(), &["sh", "mkdir", "ln", "rm", "cat"]);
    write(rootfs.path(), "etc/gone", "old\n");
    write(rootfs.path(), "srv/data/old", "old\n");
    write(rootfs.path(), "usr/bin/python", "stand-in\n");
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(rootfs.path().join("usr/bin/python"), executable).unwrap();
    let store = forge_pipeline::open_store(repo.path()).unwrap();
    let base = forge_builder::image_from_rootfs(&store, rootfs.path(), 0).unwrap();
    store.set_ref("localhost:5000/base-py", &base.manifest_descriptor()).unwrap();
    repo
}

const HEADER: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n";

pub(super) fn session(repo: &Path, run: RunPolicy) -> Session {
    Session::open(SessionOptions { run, ..options(repo) }, &forge_pipeline::Quiet).unwrap()
}

/// The members of each layer of the image, as Python's tarfile reads them.
fn layers(tarball: &Path) -> Vec<Vec<String>> {
    let listing = forge_testkit::python_check_archive(tarball);
    listing.split("--\n").map(|layer| layer.lines().map(str::to_string).collect()).collect()
}

#[test]
fn a_run_becomes_a_layer_of_what_it_changed() {
    if !forge_testkit::require_tool("bwrap") {
        return;
    }
    let dockerfile = format!(
        "{HEADER}COPY ${{MODULE_PATH}} /workdir\n\
         RUN mkdir -p /opt/made && echo hello > /opt/made/greeting && ln -s made/greeting /opt/link \\\n\
         \x20   && rm /etc/gone && rm -rf /srv/data && mkdir /srv/data && echo new > /srv/data/new \\\n\
         \x20   && cat /workdir/src/main.py > /opt/made/copied && echo same > /tmp/scratch\n\
         RUN cat /opt/made/greeting /srv/data/new > /second && rm /opt/link\n\
         ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n"
    );
    let repo = monorepo(&dockerfile);
    let session = session(repo.path(), RunPolicy::default());
    let built = session.build_one(Path::new("plugins/r"), &forge_pipeline::Quiet).unwrap();
    let layers = layers(built.tarball.as_ref().unwrap());
    assert_eq!(
        layers[layers.len() - 2],
        [
            "d 0755 0:0 0 etc",
            "f 0000 0:0 0 etc/.wh.gone",
            "d 0755 0:0 0 opt",
            "l 0777 0:0 0 opt/link -> made/greeting",
            "d 0755 0:0 0 opt/made",
            "f 0644 0:0 0 opt/made/copied",
            "f 0644 0:0 0 opt/made/greeting",
            "d 0755 0:0 0 srv",
            "d 0755 0:0 0 srv/data",
            "f 0000 0:0 0 srv/data/.wh..wh..opq",
            "f 0644 0:0 0 srv/data/new",
        ]
    );
    // The second RUN saw the first one's files (and not its /tmp).
    assert_eq!(
        layers[layers.len() - 1],
        ["d 0755 0:0 0 opt", "f 0000 0:0 0 opt/.wh.link", "f 0644 0:0 0 second"]
    );
    assert_eq!(built.built.layers_built, 3, "COPY and the RUNs");
    // The unpacked base is as it was: the RUNs wrote only to their overlays.
    let roots = repo.path().join("target/plugin-forge/roots");
    let base = std::fs::read_dir(&roots)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("layers-"))
        .unwrap()
        .path()
        .join("rootfs");
    assert_eq!(std::fs::read_to_string(base.join("etc/gone")).unwrap(), "old\n");
    assert!(base.join("srv/data/old").is_file() && !base.join("srv/data/new").exists());
    assert!(!base.join("opt").exists());

    // Built again: every layer from the cache, the RUN not executed.
    let again = session.build_one(Path::new("plugins/r"), &forge_pipeline::Quiet).unwrap();
    assert_eq!(again.built.digest(), built.built.digest());
    assert_eq!(again.built.layers_built, 0);
}

#[test]
fn the_same_run_over_the_same_layers_executes_once_for_parallel_plugins() {
    if !forge_testkit::require_tool("bwrap") {
        return;
    }
    // Before `ARG MODULE_PATH`: the RUN's environment is the same in every
    // plugin (after it, MODULE_PATH would differ, and so would the key, as
    // in Docker).
    let dockerfile = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\n\
        RUN --mount=type=cache,target=/count,id=shared echo ran >> /count/runs && mkdir /made\n\
        ARG MODULE_PATH\nCOPY ${MODULE_PATH} /workdir\n\
        ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";
    let repo = monorepo(dockerfile);
    let plugins: Vec<std::path::PathBuf> = ["plugins/r", "plugins/s", "plugins/t"].map(Into::into).to_vec();
    for other in &plugins[1..] {
        let dir = repo.path().join(other);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        for file in ["plugin_info.json", "Dockerfile", "src/main.py"] {
            std::fs::copy(repo.path().join("plugins/r").join(file), dir.join(file)).unwrap();
        }
        let name = other.file_name().unwrap().to_str().unwrap();
        write(repo.path(), &format!("{}/VERSION", other.display()), &format!("team/{name}:1.0.0\n"));
    }
    let session = session(repo.path(), RunPolicy::default());
    let batch = forge_pipeline::BatchOptions { jobs: Some(3), lint: false };
    let outcomes = session.build(&plugins, &batch, &forge_pipeline::Quiet).unwrap();
    let run_layers: Vec<_> = outcomes
        .iter()
        .map(|o| o.result.as_ref().unwrap().built.stored.manifest.layers()[1].digest().clone())
        .collect();
    assert!(run_layers.iter().all(|d| *d == run_layers[0]), "{run_layers:?}");
    let counter = repo
        .path()
        .join("target/plugin-forge/run-cache")
        .join(forge_oci::Digest::of(b"shared").hex())
        .join("runs");
    assert_eq!(std::fs::read_to_string(counter).unwrap(), "ran\n", "the RUN executed more than once");
}
