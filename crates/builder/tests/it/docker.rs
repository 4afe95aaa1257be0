//! `docker load` of a built sample plugin into a real Docker 20.10 engine,
//! where one can be started here.

use forge_testkit::Dockerd;

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
