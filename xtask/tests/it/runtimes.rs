//! The image of the sample plugin that installs from PyPI and Debian
//! (class-catalog) behaves in real runtimes as under `cargo xtask run`:
//! `docker load` + `docker run`, and `umoci unpack` + `runc run`, print the
//! same jq path, PyYAML version (with its C extension) and demo catalogue,
//! started by the image's entry point and as the agent starts it
//! (`sh -c "python -u /workdir/src/main.py"`). Called by the e2e test
//! after its build, with its engine.

use std::fs;
use std::path::Path;

use forge_testkit::{require_tool, Dockerd};
use serde_json::Value;

use crate::{ok, xtask};

const IMAGE: &str = "localhost:5000/supervisely/class-catalog:0.1.0";
const TARBALL: &str = "target/plugin-forge/images/supervisely/class-catalog_0.1.0.tar";
const AGENT: [&str; 3] = ["sh", "-c", "python -u /workdir/src/main.py"];

/// What the program printed: stdout without the log records (JSON lines
/// with a timestamp, which differ between runs).
fn printed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).map_or(true, |v| v.get("timestamp").is_none()))
        .map(str::to_owned)
        .collect()
}

/// class-catalog, built in the monorepo `repo` (its tarball under
/// `target/`), run by `cargo xtask run --docker-semantics`, by `engine`
/// (when given) and by runc, plainly and as the agent; every run prints
/// the same. The coordinator's end-to-end test can call this after its
/// build.
pub(crate) fn class_catalog_behaves_the_same_in_real_runtimes(repo: &Path, engine: Option<&Dockerd>) {
    let root = repo.to_str().unwrap();
    let ours = |command: &[&str]| {
        let mut argv = vec!["run", "class-catalog", "--root", root, "--docker-semantics", "--format", "json"];
        if !command.is_empty() {
            argv.push("--");
            argv.extend(command);
        }
        printed(&ok(&xtask(repo, &argv)))
    };
    let expected = ours(&[]);
    assert!(expected.first().is_some_and(|l| l == "jq: /usr/bin/jq"), "{expected:?}");
    assert!(expected.get(1).is_some_and(|l| l == "PyYAML 6.0.2 (C extension: True)"), "{expected:?}");
    assert!(expected.contains(&"  slug: strasse".to_owned()), "{expected:?}");
    assert_eq!(ours(&AGENT), expected, "the agent's command under cargo xtask run");

    let tarball = repo.join(TARBALL);
    if let Some(engine) = engine {
        engine.docker(&["load", "-i", tarball.to_str().unwrap()]).unwrap();
        let plain = engine.docker(&["run", "--rm", "--network", "none", IMAGE]).unwrap();
        assert_eq!(printed(&plain), expected, "docker run");
        let agent = engine
            .docker(&["run", "--rm", "--network", "none", "--entrypoint", "sh", IMAGE, AGENT[1], AGENT[2]])
            .unwrap();
        assert_eq!(printed(&agent), expected, "docker run as the agent");
    }

    if !(require_tool("runc") && require_tool("umoci") && require_tool("skopeo")) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let (_, layout) = forge_testkit::skopeo_check(&tarball, scratch.path());
    forge_testkit::umoci_unpack(&layout, "checked", scratch.path());
    let bundle = scratch.path().join("bundle");
    let state = scratch.path().join("runc-state");
    for (id, command) in [("class-catalog-plain", None), ("class-catalog-agent", Some(AGENT))] {
        let config_path = bundle.join("config.json");
        let mut config: Value = serde_json::from_str(&fs::read_to_string(&config_path).unwrap()).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        if let Some(command) = command {
            config["process"]["args"] = serde_json::json!(command);
        }
        fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
        let out = forge_testkit::run(
            "runc",
            &["--root", state.to_str().unwrap(), "run", "-b", bundle.to_str().unwrap(), id],
        );
        assert_eq!(printed(&out), expected, "runc run {id}");
    }
}
