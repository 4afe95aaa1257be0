//! The flags authors know from `docker build` on `build`, `build-all` and
//! `publish`: `--build-arg` (and `ARG`s without default), `--label`,
//! `-t/--tag`, `--no-cache`, `-q`, and `publish --dry-run`, checked in the
//! store, with skopeo, and in a real registry.

use std::path::{Path, PathBuf};

use forge_testkit::registry::Registry;
use serde_json::Value;

use crate::{base_rootfs, ok, write_tree, xtask};

/// Declares `WORKER_PATH` without default and uses it, as real plugin
/// Dockerfiles do.
const DOCKERFILE: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
ARG WORKER_PATH\nCOPY ${MODULE_PATH} /workdir\n\
ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto WORKER=${WORKER_PATH}\n";

/// One plugin, `team/w`, that copies its directory to /workdir.
pub(crate) fn monorepo() -> tempfile::TempDir {
    write_tree(&[
        ("plugins/w/plugin_info.json", r#"{"title": "Worker", "description": "d", "type": "custom"}"#),
        ("plugins/w/VERSION", "team/w:1.0.0\n"),
        ("plugins/w/src/main.py", "print(1)\n"),
        ("plugins/w/README.md", "# Worker\n"),
        ("plugins/w/LICENSE", "MIT\n"),
        ("plugins/w/Dockerfile", DOCKERFILE),
    ])
}

/// A stand-in base image tarball (`image from-rootfs`, then `image export`).
fn base_tarball(dir: &Path) -> PathBuf {
    let rootfs = base_rootfs(&[("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")]);
    let root = dir.to_str().unwrap();
    ok(&xtask(dir, &["image", "from-rootfs", rootfs.path().to_str().unwrap(), "base", "--root", root]));
    let file = dir.join("base.tar");
    ok(&xtask(dir, &["image", "export", "base", file.to_str().unwrap(), "--root", root]));
    file
}

fn json(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn skopeo_config(tarball: &str) -> Value {
    let image = forge_testkit::oci_archive(Path::new(tarball));
    serde_json::from_str(&forge_testkit::run("skopeo", &["inspect", &image])).unwrap()
}

#[test]
fn build_args_labels_tags_no_cache_and_quiet() {
    if !forge_testkit::require_tool("skopeo") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let base = format!("localhost:5000/base-py={}", base_tarball(scratch.path()).display());
    let repo = monorepo();
    let root = repo.path().to_str().unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "w", "--root", root, "--base-image", &base, "--format", "json"];
        args.extend(extra);
        xtask(repo.path(), &args)
    };

    // Without --build-arg the ARG is empty, as in Docker, and lint says so.
    let plain = json(&ok(&build(&[])));
    let env = &skopeo_config(plain[0]["tarball"].as_str().unwrap())["Env"];
    assert!(env.as_array().unwrap().iter().any(|e| e == "WORKER="), "{env}");
    let lint = xtask(repo.path(), &["lint", "--root", root, "--format", "json"]);
    let lint = json(&ok(&lint));
    assert_eq!(lint.len(), 1, "{lint:?}");
    assert_eq!(lint[0]["code"], "PF306");

    let flags = [
        "--build-arg",
        "WORKER_PATH=/opt/worker",
        "--label",
        "team=vision",
        "-t",
        "latest",
        "--tag",
        "abc1234",
    ];
    let tagged = json(&ok(&build(&flags)));
    let tarball = tagged[0]["tarball"].as_str().unwrap();
    let inspect = skopeo_config(tarball);
    assert!(inspect["Env"].as_array().unwrap().iter().any(|e| e == "WORKER=/opt/worker"), "{inspect}");
    assert_eq!(inspect["Labels"]["team"], "vision");
    assert_eq!(inspect["Labels"]["VERSION"], "localhost:5000/team/w:1.0.0");
    assert_eq!(
        tagged[0]["tags"],
        serde_json::json!(["localhost:5000/team/w:latest", "localhost:5000/team/w:abc1234"])
    );
    let list = ok(&xtask(repo.path(), &["image", "list", "--root", root]));
    let digest = tagged[0]["digest"].as_str().unwrap();
    for tag in ["1.0.0", "latest", "abc1234"] {
        let line = list
            .lines()
            .find(|l| l.starts_with(&format!("localhost:5000/team/w:{tag} ")))
            .unwrap_or_else(|| panic!("{tag} in {list}"));
        assert!(line.contains(&digest[..19]), "{line} {digest}");
    }

    // --no-cache builds every layer again, into the same image.
    let rebuilt = json(&ok(&build(&[&flags[..], &["--no-cache"]].concat())));
    assert_eq!(rebuilt[0]["digest"], tagged[0]["digest"]);
    assert_eq!(rebuilt[0]["layers_cached"], 0, "{}", rebuilt[0]);
    assert!(rebuilt[0]["layers_built"].as_u64().unwrap() >= 1);
    let cached = json(&ok(&build(&flags)));
    assert_eq!(cached[0]["status"], "cached");

    // -q prints only the names.
    let quiet =
        ok(&xtask(repo.path(), &["build", "w", "--root", root, "--base-image", &base, "-q", "-t", "latest"]));
    assert_eq!(quiet, "localhost:5000/team/w:1.0.0\nlocalhost:5000/team/w:latest\n");

    // Our build args cannot be overridden.
    let refused = build(&["--build-arg", "MODULE_PATH=plugins/other"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--build-arg MODULE_PATH=plugins/other: MODULE_PATH cannot be overridden"),
        "{stderr}"
    );
}

/// Every file the registry stores.
fn stored_files(dir: &Path) -> usize {
    walk(dir)
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries.map(|e| e.unwrap().path()).map(|p| if p.is_dir() { walk(&p) } else { 1 }).sum()
    })
}

#[test]
fn publish_dry_run_writes_nothing_and_tags_follow_the_main_tag() {
    let Some(registry) = Registry::start(None) else { return };
    if !forge_testkit::require_tool("skopeo") {
        return;
    }
    let host = registry.host();
    let scratch = tempfile::tempdir().unwrap();
    let base = format!("{host}/base-py={}", base_tarball(scratch.path()).display());
    let repo = monorepo();
    let root = repo.path().to_str().unwrap();
    let docker_config = tempfile::tempdir().unwrap();
    let publish = |extra: &[&str]| {
        let mut args = vec!["publish", "--root", root, "--registry", &host, "--base-image", &base];
        args.extend(extra);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(&args)
            .env("DOCKER_CONFIG", docker_config.path())
            .output()
            .unwrap();
        ok(&out)
    };

    let before = stored_files(&registry.storage);
    let dry = json(&publish(&["--dry-run", "-t", "latest", "--format", "json"]));
    assert_eq!(dry.len(), 1);
    assert_eq!(dry[0]["status"], "dry-run");
    let missing = dry[0]["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 3, "config, base layer, plugin layer: {}", dry[0]);
    assert_eq!(dry[0]["present"], 0);
    assert_eq!(stored_files(&registry.storage), before, "a dry run writes nothing to the registry");
    let human = publish(&["--dry-run"]);
    assert!(human.contains("dry run: nothing was pushed"), "{human}");
    assert!(human.contains(&format!("{host}/team/w:1.0.0: missing sha256:")), "{human}");

    let pushed = json(&publish(&["-t", "latest", "-t", "abc1234", "--format", "json"]));
    assert_eq!(pushed[0]["status"], "pushed");
    for tag in ["1.0.0", "latest", "abc1234"] {
        assert_eq!(registry.skopeo_inspect("team/w", tag)["Digest"], pushed[0]["digest"], "{tag}");
    }
    let again = json(&publish(&["--dry-run", "--format", "json"]));
    assert_eq!(again[0]["missing"], serde_json::json!([]));
    assert_eq!(again[0]["present"], 3);
    let quiet = publish(&["-q", "-t", "latest"]);
    assert_eq!(quiet, format!("{host}/team/w:1.0.0\n{host}/team/w:latest\n"));
}
