//! `cargo xtask publish` and `build-all --push` against a real registry
//! (Debian's `docker-registry` on loopback), and `FROM` pulled from one.

use std::path::Path;
use std::process::{Command, Output};

use forge_testkit::registry::Registry;
use serde_json::Value;

use crate::{base_rootfs, write_tree, xtask};

const DOCKERFILE: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
COPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";

/// A monorepo with plugins `a` (team/a:1.0.0) and `b` (team/b:1.0.0).
fn monorepo() -> tempfile::TempDir {
    let mut files = Vec::new();
    for name in ["a", "b"] {
        files.push((
            format!("plugins/{name}/plugin_info.json"),
            r#"{"title": "t", "description": "d", "type": "import"}"#.to_string(),
        ));
        files.push((format!("plugins/{name}/VERSION"), format!("team/{name}:1.0.0\n")));
        files.push((format!("plugins/{name}/src/main.py"), format!("print('{name}')\n")));
        files.push((format!("plugins/{name}/Dockerfile"), DOCKERFILE.to_string()));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    write_tree(&files)
}

/// A base image tarball (made with `image from-rootfs` and `image export`).
pub(crate) fn base_tarball(dir: &Path) -> std::path::PathBuf {
    let rootfs = base_rootfs(&[("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")]);
    let root = dir.to_str().unwrap();
    assert!(xtask(dir, &["image", "from-rootfs", rootfs.path().to_str().unwrap(), "base", "--root", root])
        .status
        .success());
    let file = dir.join("base.tar");
    assert!(xtask(dir, &["image", "export", "base", file.to_str().unwrap(), "--root", root])
        .status
        .success());
    file
}

fn run_with_env(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn json(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn publish_pulls_the_base_pushes_and_republishes_nothing() {
    let Some(registry) = Registry::start(None) else { return };
    if !forge_testkit::require_tool("skopeo") {
        return;
    }
    let host = registry.host();
    // The base image is in the registry only (pushed there by skopeo).
    let scratch = tempfile::tempdir().unwrap();
    let base = base_tarball(scratch.path());
    let dest = format!("docker://{host}/base-py:1.0.0");
    forge_testkit::run(
        "skopeo",
        &["copy", "--quiet", "--dest-tls-verify=false", &format!("oci-archive:{}", base.display()), &dest],
    );

    let repo = monorepo();
    let root = repo.path().to_str().unwrap();
    let docker_config = tempfile::tempdir().unwrap();
    let env = [("DOCKER_CONFIG", docker_config.path().to_str().unwrap())];
    let first = json(&run_with_env(
        repo.path(),
        &env,
        &["publish", "--root", root, "--registry", &host, "--format", "json"],
    ));
    assert_eq!(first.len(), 2);
    for line in &first {
        assert_eq!(line["status"], "pushed", "{line}");
        let image = line["image"].as_str().unwrap();
        let (repo_name, tag) = image.trim_start_matches(&format!("{host}/")).split_once(':').unwrap();
        let inspect = registry.skopeo_inspect(repo_name, tag);
        assert_eq!(inspect["Digest"], line["digest"]);
        assert_eq!(inspect["Labels"]["VERSION"], image);
    }
    assert!(first.iter().map(|l| l["bytes_uploaded"].as_u64().unwrap()).sum::<u64>() > 0);
    // The registry holds the images: no tarball unless --tarballs.
    assert!(first.iter().all(|l| l["tarball"].is_null() && l["archive"].is_null()), "{first:?}");
    assert!(!repo.path().join("target/plugin-forge/images").exists());
    for line in &first {
        referrers_are_in_the_registry(&registry, repo.path(), line);
    }

    // Everything is there: no blob bytes the second time, by build-all --push too;
    // not even a blob asked about: each tag's manifest and its referrers are.
    let blob_requests = || registry.log().matches("/blobs/").count();
    let before = blob_requests();
    let again = json(&run_with_env(
        repo.path(),
        &env,
        &["build-all", "--push", "--root", root, "--registry", &host, "--format", "json"],
    ));
    assert_eq!(again.len(), 2);
    for (line, first) in again.iter().zip(&first) {
        assert_eq!(line["bytes_uploaded"], 0, "{line}");
        assert_eq!(line["status"], "pushed");
        assert_eq!(line["digest"], first["digest"]);
        assert_eq!(line["referrers"], first["referrers"]);
        assert!(line["blobs_skipped"].as_u64() > Some(0), "{line}");
    }
    assert_eq!(blob_requests(), before, "{}", registry.log());
    for line in &again {
        referrers_are_in_the_registry(&registry, repo.path(), line);
    }
    assert!(!repo.path().join("target/plugin-forge/images").exists());

    // One plugin changed: its tag moves to the new image, the other is left.
    std::fs::write(repo.path().join("plugins/a/src/main.py"), "print('a, changed')\n").unwrap();
    let changed = json(&run_with_env(
        repo.path(),
        &env,
        &["publish", "--root", root, "--registry", &host, "--format", "json"],
    ));
    let (a, b) = (&changed[0], &changed[1]);
    assert!(a["plugin"].as_str().unwrap().ends_with('a'), "{a}");
    assert_ne!(a["digest"], first[0]["digest"]);
    assert!(a["bytes_uploaded"].as_u64() > Some(0), "{a}");
    assert_eq!(registry.skopeo_inspect("team/a", "1.0.0")["Digest"], a["digest"]);
    referrers_are_in_the_registry(&registry, repo.path(), a);
    assert_eq!((&b["digest"], &b["bytes_uploaded"]), (&first[1]["digest"], &0.into()), "{b}");

    // The pulled base is reused offline.
    registry.kill();
    let out = run_with_env(repo.path(), &env, &["build", "a", "--root", root, "--registry", &host]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn wrong_credentials_fail_clearly_and_leave_no_tag() {
    let Some(registry) = Registry::start(Some(("user", "right"))) else { return };
    let host = registry.host();
    let repo = monorepo();
    let root = repo.path().to_str().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let base = base_tarball(scratch.path());
    let override_ = format!("{host}/base-py={}", base.display());
    let docker_config = tempfile::tempdir().unwrap();
    use base64::Engine as _;
    let wrong = base64::engine::general_purpose::STANDARD.encode("user:wrong");
    std::fs::write(
        docker_config.path().join("config.json"),
        format!(r#"{{"auths": {{"{host}": {{"auth": "{wrong}"}}}}}}"#),
    )
    .unwrap();
    let env = [("DOCKER_CONFIG", docker_config.path().to_str().unwrap())];
    let args =
        ["publish", "a", "--root", root, "--registry", &host, "--base-image", &override_, "--format", "json"];
    let out = run_with_env(repo.path(), &env, &args);
    assert_eq!(out.status.code(), Some(1));
    let line: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "failed");
    // A failed line has every field a pushed one has.
    for field in ["tags", "blobs_uploaded", "blobs_skipped", "blobs_mounted", "bytes_uploaded", "digest"] {
        assert!(line.get(field).is_some(), "no `{field}` in {line}");
    }
    let error = line["error"].as_str().unwrap();
    assert!(error.contains("unauthorized"), "{error}");
    assert!(!error.contains("wrong"), "credentials never appear in messages: {error}");
    assert_eq!(registry.manifest_status("team/a", "1.0.0"), 404);

    let right = base64::engine::general_purpose::STANDARD.encode("user:right");
    std::fs::write(
        docker_config.path().join("config.json"),
        format!(r#"{{"auths": {{"{host}": {{"auth": "{right}"}}}}}}"#),
    )
    .unwrap();
    let lines = json(&run_with_env(repo.path(), &env, &args));
    assert_eq!(lines[0]["status"], "pushed");
    assert_eq!(registry.manifest_status("team/a", "1.0.0"), 200);
}

/// The SBOM and provenance `line` (of `publish --format json`) says were
/// pushed as referrers of its image are there: Debian's `docker-registry`
/// 2.8 has no referrers API, so they are listed by the fallback tag
/// `sha256-<hex>`; `skopeo inspect --raw` of it and of each artifact,
/// and a plain `GET` of each document, give the bytes of the store of the
/// monorepo at `repo`.
fn referrers_are_in_the_registry(registry: &Registry, repo: &Path, line: &Value) {
    let host = registry.host();
    let image = line["image"].as_str().unwrap();
    let (name, _) = image.trim_start_matches(&format!("{host}/")).split_once(':').unwrap();
    let digest = line["digest"].as_str().unwrap();
    let hex = digest.trim_start_matches("sha256:");
    let (status, _) = forge_testkit::registry::http(
        registry.address().port(),
        "GET",
        &format!("/v2/{name}/referrers/{digest}"),
        &[],
    )
    .unwrap();
    assert_eq!(status, 404, "this registry has no referrers API: the fallback tag is what is tested");
    let pushed: Vec<&str> =
        line["referrers"].as_array().unwrap().iter().map(|r| r["digest"].as_str().unwrap()).collect();
    assert_eq!(pushed.len(), 2, "{line}");
    for referrer in line["referrers"].as_array().unwrap() {
        assert_eq!(referrer["via"], format!("tag sha256-{hex}"), "{line}");
    }
    let raw = |target: &str| {
        let source = format!("docker://{host}/{name}{target}");
        forge_testkit::run("skopeo", &["inspect", "--raw", "--tls-verify=false", &source])
    };
    let index: Value = serde_json::from_str(&raw(&format!(":sha256-{hex}"))).unwrap();
    let listed: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
    assert_eq!(listed, pushed, "{index}");
    let kinds: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().map(|m| m["artifactType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["application/spdx+json", "application/vnd.in-toto+json"]);
    let stored = |digest: &str| {
        std::fs::read(
            repo.join("target/plugin-forge/oci/blobs/sha256").join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    for artifact in pushed {
        let manifest = raw(&format!("@{artifact}"));
        assert_eq!(manifest.as_bytes(), stored(artifact), "skopeo's raw bytes of {artifact}");
        let manifest: Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest["subject"]["digest"], digest);
        let document = manifest["layers"][0]["digest"].as_str().unwrap();
        let (status, response) = forge_testkit::registry::http(
            registry.address().port(),
            "GET",
            &format!("/v2/{name}/blobs/{document}"),
            &[],
        )
        .unwrap();
        assert_eq!(status, 200, "{response}");
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        assert_eq!(body.as_bytes(), stored(document), "the document {document} as the registry serves it");
    }
}
