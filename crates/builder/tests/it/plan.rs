//! Planning is a pass of its own: every layer's tree and every config
//! change, with positions, before anything is written to the store.

use std::fs;
use std::path::Path;

use forge_builder::{BuildError, ConfigChange, LocalResolver, Workspace};
use forge_oci::{BlobStore, Compression, Digest, Entry, FileSource, LayerBuilder, LayerOptions, NodeKind};

use crate::{add_base, options, plugin_files, tree};

const DOCKERFILE: &str = r#"FROM localhost:5000/base-py:1.0.0
ARG MODULE_PATH
COPY ${MODULE_PATH}/src /app/src
ENV A=1 B=$A
ADD one.tar two.tar /data/
WORKDIR /work
CMD ["python3", "main.py"]
"#;

/// A plain tar holding `name` with `content`, written with our own layer
/// builder (uncompressed, so the blob is the tar).
fn tar_file(path: &Path, name: &str, content: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    let mut builder =
        LayerBuilder::with_compression(&store, LayerOptions::default(), Compression::None).unwrap();
    builder.append(Entry::bytes(name, 0o644, content)).unwrap();
    let layer = builder.finish().unwrap();
    fs::copy(store.path(&layer.digest), path).unwrap();
}

fn blobs(store: &Path) -> usize {
    fs::read_dir(store.join("blobs/sha256")).unwrap().count()
}

#[test]
fn a_plan_has_every_step_and_writes_nothing() {
    let files = plugin_files("plugins/p", DOCKERFILE);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let repo = tree(&files);
    // Two archives in one ADD, each with a first member: their spooled
    // contents must not overwrite each other.
    tar_file(&repo.path().join("one.tar"), "x.txt", "first archive\n");
    tar_file(&repo.path().join("two.tar"), "y.txt", "second archive\n");
    let store = tempfile::tempdir().unwrap();
    let ws = Workspace::open(repo.path(), store.path()).unwrap();
    add_base(ws.store());
    let (blobs_before, index_before) =
        (blobs(store.path()), fs::read(store.path().join("index.json")).unwrap());

    let planned = ws.plan(Path::new("plugins/p"), &options(), &LocalResolver::default()).unwrap();
    assert_eq!(blobs(store.path()), blobs_before, "planning wrote a blob");
    assert_eq!(fs::read(store.path().join("index.json")).unwrap(), index_before, "planning set a ref");

    let plan = &planned.plans[0];
    let summary: Vec<String> = plan
        .steps
        .iter()
        .map(|s| {
            format!("{}:{} {} layer={}", s.position.line, s.position.column, s.created_by, s.layer.is_some())
        })
        .collect();
    assert_eq!(
        summary,
        [
            "2:1 ARG MODULE_PATH layer=false",
            "3:1 COPY ${MODULE_PATH}/src /app/src layer=true",
            "4:1 ENV A=1 B=$A layer=false",
            "5:1 ADD one.tar two.tar /data/ layer=true",
            "6:1 WORKDIR /work layer=true",
            "7:1 CMD [\"python3\", \"main.py\"] layer=false",
        ]
    );
    assert_eq!(
        plan.steps[2].change,
        Some(ConfigChange::Env(vec![("A".into(), "1".into()), ("B".into(), String::new())]))
    );
    assert_eq!(plan.steps[4].change, Some(ConfigChange::Workdir("/work".into())));

    let added = plan.steps[3].layer.as_ref().unwrap();
    for (path, content) in [("data/x.txt", "first archive\n"), ("data/y.txt", "second archive\n")] {
        let Some(NodeKind::File { source: FileSource::Spooled { path: spooled, digest }, .. }) =
            added.get(path).map(|n| &n.kind)
        else {
            panic!("{path} is not a spooled file: {added:?}")
        };
        assert_eq!(fs::read_to_string(spooled).unwrap(), content);
        assert_eq!(*digest, Digest::of(content.as_bytes()));
    }

    let built = ws.execute(&planned, ws.store(), &forge_builder::NoInstaller).unwrap();
    assert_eq!(built.layers_built, 3);
    forge_oci::validate::image(ws.store(), built.digest()).unwrap();
}

#[test]
fn a_file_gone_between_plan_and_execute_points_at_its_instruction() {
    let files = plugin_files(
        "plugins/p",
        "FROM localhost:5000/base-py:1.0.0\nARG MODULE_PATH\nCOPY ${MODULE_PATH}/src /app/src\n",
    );
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let repo = tree(&files);
    let store = tempfile::tempdir().unwrap();
    let ws = Workspace::open(repo.path(), store.path()).unwrap();
    add_base(ws.store());
    let planned = ws.plan(Path::new("plugins/p"), &options(), &LocalResolver::default()).unwrap();
    fs::remove_file(repo.path().join("plugins/p/src/main.py")).unwrap();
    let err = ws.execute(&planned, ws.store(), &forge_builder::NoInstaller).unwrap_err();
    assert!(matches!(&err, BuildError::Layer { line: 3, column: 1, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugins/p/Dockerfile:3:1: building the layer of `COPY ${MODULE_PATH}/src /app/src`"
    );
    assert!(std::error::Error::source(&err).unwrap().to_string().contains("main.py"), "{err:?}");
}
