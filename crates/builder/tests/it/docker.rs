//! `docker load` of a built sample plugin into a real Docker 20.10 engine,
//! where one can be started here.

use forge_testkit::{files_below, Dockerd};

use crate::{build, project_root};

#[test]
fn docker_load_accepts_our_tarball() {
    let Some(engine) = Dockerd::start() else { return };
    let store = tempfile::tempdir().unwrap();
    let (ws, built) = build(&project_root(), store.path(), "plugins/import/csv-bboxes").unwrap();
    let out = tempfile::tempdir().unwrap();
    let tarball = ws.export(&built, out.path()).unwrap();
    let loaded = engine.docker(&["load", "-i", tarball.to_str().unwrap()]).unwrap();
    assert!(loaded.contains(&format!("Loaded image: {}", built.image)), "{loaded}");
    let labels =
        engine.docker(&["image", "inspect", "--format", "{{json .Config.Labels}}", &built.image]).unwrap();
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["VERSION"], built.image.as_str());
    assert_eq!(labels["MODES"], "main");
    // Docker's image ID is our config digest: it read the same config bytes.
    let id = engine.docker(&["image", "inspect", "--format", "{{.Id}}", &built.image]).unwrap();
    assert_eq!(id.trim(), built.stored.config_digest().unwrap().to_string());
}

/// `.dockerignore` cases: (patterns, files of the context). Docker's own
/// matcher decides what `COPY . /ctx/` copies; ours must copy the same files.
const IGNORE_CASES: &[(&str, &[&str])] = &[
    (
        "supervisely_lib\n!supervisely_lib/__init__.py\n",
        &["supervisely_lib/__init__.py", "supervisely_lib/api.py", "a"],
    ),
    ("**/*.pyc\n", &["a.pyc", "src/deep/b.pyc", "src/c.py"]),
    ("src/**\n!src/**/keep\n", &["src/a", "src/x/keep", "src/x/y/keep", "keep"]),
    ("**\n!src\n", &["a", "src/b", "src/c/d"]),
    ("docs/\n/build\n", &["docs/a", "build/b", "src/docs/c", "src/build/d"]),
    ("../x\n./y//z/\nsrc/../w\n", &["x", "y/z/a", "w", "src/w"]),
    ("data/*\n!data/keep.txt\n", &["data/a", "data/keep.txt", "data/sub/b"]),
    ("!data/keep.txt\ndata\n", &["data/keep.txt", "data/a"]),
    ("a?c\n[bc]x\n*.log\n", &["abc", "a/c", "bx", "dx", "n.log", "d/n.log"]),
    ("plugins/**/secrets\n", &["plugins/secrets", "plugins/a/b/secrets/k", "plugins/a/k"]),
    ("*\n!*.py\n", &["a.py", "b.txt", "d/c.py"]),
];

#[test]
fn dockerignore_matches_docker_on_a_table_of_cases() {
    let Some(engine) = Dockerd::start() else { return };
    for (index, (ignore, files)) in IGNORE_CASES.iter().enumerate() {
        let context = tempfile::tempdir().unwrap();
        for file in *files {
            let path = context.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file).unwrap();
        }
        std::fs::write(context.path().join(".dockerignore"), ignore).unwrap();
        std::fs::write(context.path().join("Dockerfile.x"), "FROM scratch\nCOPY . /ctx/\n").unwrap();
        // Ours: what a COPY of the whole context puts in the layer.
        let ours = forge_builder::Context::open(context.path()).unwrap();
        let tree =
            ours.plan_copy(&[".".to_string()], "/ctx/", "/", forge_builder::CopyOptions::default()).unwrap();
        let mut ours: Vec<String> = tree
            .iter()
            .filter(|(_, node)| matches!(node.kind, forge_oci::NodeKind::File { .. }))
            .map(|(path, _)| path.trim_start_matches("ctx/").to_string())
            .filter(|p| !p.starts_with("Dockerfile.x") && p != ".dockerignore")
            .collect();
        ours.sort();
        // Docker's: build, export the container's filesystem, list it.
        let tag = format!("ignore-case-{index}");
        let dockerfile = context.path().join("Dockerfile.x");
        engine
            .docker(&[
                "build",
                "-q",
                "-f",
                dockerfile.to_str().unwrap(),
                "-t",
                &tag,
                context.path().to_str().unwrap(),
            ])
            .unwrap();
        let id = engine.docker(&["create", &tag, "x"]).unwrap();
        let export = tempfile::tempdir().unwrap();
        let tarball = export.path().join("fs.tar");
        engine.docker(&["export", "-o", tarball.to_str().unwrap(), id.trim()]).unwrap();
        let unpacked = export.path().join("fs");
        std::fs::create_dir(&unpacked).unwrap();
        forge_testkit::run("tar", &["-xf", tarball.to_str().unwrap(), "-C", unpacked.to_str().unwrap()]);
        let theirs: Vec<String> = files_below(&unpacked.join("ctx"))
            .into_iter()
            .filter(|p| !p.starts_with("Dockerfile.x") && p != ".dockerignore")
            .collect();
        assert_eq!(ours, theirs, "case {index}: .dockerignore {ignore:?} over {files:?}");
    }
}
