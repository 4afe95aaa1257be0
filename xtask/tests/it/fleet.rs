//! CI at fleet scale (issue 12), through the command line: `--shard K/N`
//! and `--list`, `--changed-since GITREF` over a fixture git history, and
//! the image's revision (the last commit that changed the plugin's build
//! inputs, so an unrelated commit changes no digest).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use forge_testkit::git;
use forge_testkit::monorepo::{self, plugin_path};
use serde_json::Value;

use crate::{ok, xtask};

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `--list --format json` of `build-all` with `extra` flags: the plugins.
fn listed(root: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["build-all", "--list", "--format", "json", "--root", root.to_str().unwrap()];
    args.extend(extra);
    json_lines(&ok(&xtask(root, &args))).iter().map(|l| l["plugin"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn shards_cover_every_plugin_once_and_adding_a_plugin_moves_none() {
    let repo = tempfile::tempdir().unwrap();
    monorepo::generate(repo.path(), 20);
    let shard = |k: usize| listed(repo.path(), &["--shard", &format!("{k}/3")]);
    let before: Vec<Vec<String>> = (1..=3).map(shard).collect();
    let mut all: Vec<String> = before.concat();
    all.sort();
    let mut expected: Vec<String> = (0..20).map(plugin_path).collect();
    expected.sort();
    assert_eq!(all, expected, "every plugin exactly once: {before:?}");
    assert!(before.iter().all(|s| !s.is_empty()), "{before:?}");
    // `--list` says the shard and the image.
    let root = repo.path().to_str().unwrap();
    let lines = json_lines(&ok(&xtask(
        repo.path(),
        &["publish", "--list", "--shard", "2/3", "--format", "json", "--root", root],
    )));
    assert_eq!(lines.len(), before[1].len());
    for line in &lines {
        assert_eq!(line["shard"], "2/3", "{line}");
        let n = &line["plugin"].as_str().unwrap()[line["plugin"].as_str().unwrap().len() - 2..];
        assert_eq!(line["image"], format!("localhost:5000/team/plugin-{n}:1.0.0"), "{line}");
    }

    for i in 20..26 {
        monorepo::add_plugin(repo.path(), i);
    }
    let after: Vec<Vec<String>> = (1..=3).map(shard).collect();
    for (old, new) in before.iter().zip(&after) {
        let kept: Vec<&String> = new.iter().filter(|p| expected.contains(p)).collect();
        assert_eq!(kept, old.iter().collect::<Vec<_>>(), "an old plugin changed shard");
    }
    assert_eq!(after.concat().len(), 26);
    let bad = xtask(repo.path(), &["build-all", "--list", "--shard", "4/3", "--root", root]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`4/3` is not a shard: K must be between 1 and N"));
}

fn commit(root: &Path, message: &str) -> String {
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", message]);
    git(root, &["rev-parse", "HEAD"])
}

/// Builds every plugin: image digest and revision annotation by plugin.
fn build(root: &Path, base: &Path) -> BTreeMap<String, (String, Option<String>)> {
    let override_ = format!("localhost:5000/base-py={}", base.display());
    let args =
        ["build-all", "--root", root.to_str().unwrap(), "--base-image", &override_, "--format", "json"];
    json_lines(&ok(&xtask(root, &args)))
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().unwrap().to_owned();
            let hex = digest.strip_prefix("sha256:").unwrap();
            let manifest = root.join("target/plugin-forge/oci/blobs/sha256").join(hex);
            let manifest: Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
            let revision =
                manifest["annotations"]["org.opencontainers.image.revision"].as_str().map(str::to_owned);
            // Its SBOM and provenance name the same revision.
            let documents = referring_documents(root, hex);
            assert_eq!(documents.len(), 2, "{digest}: an SBOM and a provenance statement");
            for document in documents {
                let named = document["predicate"]["buildDefinition"]["externalParameters"]["revision"]
                    .as_str()
                    .or_else(|| {
                        let packages = document["packages"].as_array()?;
                        let plugin = packages.iter().find(|p| p["SPDXID"] == "SPDXRef-Plugin")?;
                        plugin["sourceInfo"].as_str()?.strip_prefix("git revision ")
                    });
                assert_eq!(named, revision.as_deref(), "{digest}: {document}");
            }
            (l["plugin"].as_str().unwrap().to_owned(), (digest, revision))
        })
        .collect()
}

/// The documents (SBOM, provenance) the store's `index.json` lists as
/// referrers of the manifest `hex`, parsed.
fn referring_documents(root: &Path, hex: &str) -> Vec<Value> {
    let store = root.join("target/plugin-forge/oci");
    let blob = |digest: &str| -> Value {
        let path = store.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap());
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index: Value = serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["artifactType"].is_string())
        .filter(|d| seen.insert(d["digest"].as_str().unwrap().to_owned()))
        .map(|d| blob(d["digest"].as_str().unwrap()))
        .filter(|m| m["subject"]["digest"].as_str() == Some(&format!("sha256:{hex}")))
        .map(|m| blob(m["layers"][0]["digest"].as_str().unwrap()))
        .collect()
}

#[test]
fn changed_since_selects_exactly_the_plugins_a_commit_touched() {
    if !forge_testkit::require_tool("git") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let base = crate::publish::base_tarball(scratch.path());
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    monorepo::generate(root, 4);
    // plugin-03 does not copy the SDK.
    monorepo::write(root, &format!("{}/Dockerfile", plugin_path(3)), monorepo::DOCKERFILE_WITHOUT_SDK);
    monorepo::write(root, ".gitignore", "target/\n");
    git(root, &["init", "-q"]);
    let c0 = commit(root, "four plugins");
    let d0 = build(root, &base);
    assert!(d0.values().all(|(_, r)| r.as_deref() == Some(c0.as_str())), "{d0:?}");

    monorepo::write(root, "sdk/__init__.py", "VERSION = '1.1'\n");
    let c1 = commit(root, "the shared SDK");
    monorepo::write(root, &format!("{}/src/main.py", plugin_path(1)), "print('changed')\n");
    let c2 = commit(root, "plugin-01's source");
    monorepo::write(root, &format!("{}/README.md", plugin_path(2)), "# Plugin 2, documented\n");
    let c3 = commit(root, "plugin-02's README");
    let d3 = build(root, &base);
    // Nothing any plugin reads: a top-level file, the SDK's tests
    // (excluded by .dockerignore), another directory.
    monorepo::write(root, "NOTES.md", "notes\n");
    monorepo::write(root, "sdk/tests/test_more.py", "def test_more():\n    pass\n");
    monorepo::write(root, "docs/ci.md", "# CI\n");
    let c4 = commit(root, "nothing relevant");

    let changed = |gitref: &str| listed(root, &["--changed-since", gitref]);
    let p = |i: usize| plugin_path(i);
    assert_eq!(changed(&c4), Vec::<String>::new());
    assert_eq!(changed(&c3), Vec::<String>::new());
    assert_eq!(changed(&c2), [p(2)]);
    assert_eq!(changed(&c1), [p(1), p(2)]);
    assert_eq!(changed(&c0), [p(0), p(1), p(2)], "plugin-03 does not copy the SDK");
    // With a shard, the intersection.
    let shard_of_1 = listed(root, &["--shard", "1/2"]);
    let both: Vec<String> = [p(1), p(2)].into_iter().filter(|x| shard_of_1.contains(x)).collect();
    assert_eq!(listed(root, &["--changed-since", &c1, "--shard", "1/2"]), both);
    // An uncommitted change counts too; an unknown ref is an error.
    monorepo::write(root, &format!("{}/src/new.py", plugin_path(3)), "print(3)\n");
    assert_eq!(changed(&c4), [p(3)]);
    std::fs::remove_file(root.join(plugin_path(3)).join("src/new.py")).unwrap();
    let bad = xtask(
        root,
        &["build-all", "--list", "--changed-since", "no-such-ref", "--root", root.to_str().unwrap()],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("`no-such-ref` is not a commit of this repository"),
        "{bad:?}"
    );

    // Revisions: the last commit that changed each plugin's inputs.
    let revision = |d: &BTreeMap<String, (String, Option<String>)>, i: usize| d[&p(i)].1.clone().unwrap();
    assert_eq!(revision(&d3, 0), c1);
    assert_eq!(revision(&d3, 1), c2);
    assert_eq!(revision(&d3, 2), c3);
    assert_eq!(revision(&d3, 3), c0);
    // The commit that touches nothing relevant changes no digest.
    let d4 = build(root, &base);
    assert_eq!(d4, d3);
    assert_ne!(d3[&p(2)].0, d0[&p(2)].0, "a README is a label");
}

/// Runs the xtask binary with Docker's config in `docker_config` (empty:
/// anonymous), returning the JSON lines of a successful run and the time.
fn timed(root: &Path, docker_config: &Path, args: &[&str]) -> (Vec<Value>, std::time::Duration, String) {
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(root)
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .unwrap();
    let time = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (json_lines(&ok(&out)), time, stderr)
}

/// A "registry" that answers 500 to every request.
fn failing_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    host
}

/// Files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn sizes_of(dir: &Path) -> u64 {
    files_under(dir).iter().map(|f| f.metadata().map_or(0, |m| m.len())).sum()
}

#[test]
fn two_runners_share_a_cache_repository_and_a_failing_cache_changes_nothing() {
    let Some(registry) = forge_testkit::registry::Registry::start(None) else { return };
    let host = registry.host();
    let scratch = tempfile::tempdir().unwrap();
    let base = crate::publish::base_tarball(scratch.path());
    let override_ = format!("{host}/base-py={}", base.display());
    let docker_config = tempfile::tempdir().unwrap();
    let cache = format!("{host}/plugin-forge/cache");
    let runner = || {
        let root = tempfile::tempdir().unwrap();
        monorepo::generate(root.path(), 20);
        root
    };
    let run = |root: &Path, command: &[&str], extra: &[&str]| {
        let mut args = command.to_vec();
        args.extend(["--root", root.to_str().unwrap(), "--registry", &host, "--base-image", &override_]);
        args.extend(["--format", "json"]);
        args.extend(extra);
        timed(root, docker_config.path(), &args)
    };
    let digests = |lines: &[Value]| -> BTreeMap<String, String> {
        lines
            .iter()
            .map(|l| (l["plugin"].as_str().unwrap().into(), l["digest"].as_str().unwrap().into()))
            .collect()
    };
    let sum = |lines: &[Value], field: &str| lines.iter().map(|l| l[field].as_u64().unwrap()).sum::<u64>();

    // Runner 1: cold, writes the cache, then publishes.
    let one = runner();
    let (built1, build1_time, _) = run(one.path(), &["build-all"], &["--cache", &cache]);
    assert_eq!(built1.len(), 20);
    // Each plugin compresses its own layer; the SDK's is compressed once.
    assert_eq!(sum(&built1, "layers_built"), 21, "{built1:?}");
    let cache_bytes = sizes_of(&registry.storage);
    let (pushed1, publish1_time, _) = run(one.path(), &["publish"], &["--cache", &cache]);
    assert!(pushed1.iter().all(|l| l["status"] == "pushed"), "{pushed1:?}");
    // The 40 cached layers are mounted from the cache repository (and the
    // base's from the first repository that got it): only the 20 configs,
    // the base layer and each image's two referrers (SBOM, provenance) are
    // uploaded; the referrers' empty config is mounted from the cache
    // repository, whose entries have it too.
    let referrers = pushed1.iter().map(|l| l["referrers"].as_array().unwrap().len() as u64).sum::<u64>();
    assert_eq!(referrers, 40, "{pushed1:?}");
    assert_eq!(sum(&pushed1, "blobs_uploaded"), 21 + referrers, "{pushed1:?}");
    assert_eq!(sum(&pushed1, "blobs_mounted"), 59 + 20, "{pushed1:?}");

    // Runner 2: another root with an empty store, the same sources.
    let two = runner();
    let (built2, build2_time, _) = run(two.path(), &["build-all"], &["--cache", &cache]);
    assert_eq!(sum(&built2, "layers_built"), 0, "{built2:?}");
    assert_eq!(sum(&built2, "layers_cached"), 40);
    assert_eq!(digests(&built2), digests(&built1));
    let (pushed2, publish2_time, _) = run(two.path(), &["publish"], &["--cache", &cache]);
    assert_eq!(sum(&pushed2, "bytes_uploaded"), 0, "{pushed2:?}");
    assert_eq!(sum(&pushed2, "blobs_uploaded"), 0, "{pushed2:?}");
    assert_eq!(digests(&pushed2), digests(&built1));
    let validate = ok(&xtask(
        two.path(),
        &["image", "validate", &format!("{host}/team/plugin-07"), "--root", two.path().to_str().unwrap()],
    ));
    assert!(!validate.is_empty());
    eprintln!(
        "20 plugins: runner 1 (cold) build-all {:.2}s, publish {:.2}s ({} cache bytes, {} blob bytes uploaded); \
         runner 2 (shared cache) build-all {:.2}s, publish {:.2}s ({} blob bytes uploaded)",
        build1_time.as_secs_f64(),
        publish1_time.as_secs_f64(),
        cache_bytes,
        sum(&pushed1, "bytes_uploaded"),
        build2_time.as_secs_f64(),
        publish2_time.as_secs_f64(),
        sum(&pushed2, "bytes_uploaded"),
    );

    // A cache answering 500: built here, a warning, nothing else.
    let failing = format!("{}/cache", failing_server());
    let three = runner();
    let (built3, _, stderr) = run(three.path(), &["build-all"], &["--cache", &failing]);
    assert_eq!(sum(&built3, "layers_built"), 21, "{built3:?}");
    assert_eq!(digests(&built3), digests(&built1));
    assert!(stderr.contains("not used for the rest of this run"), "{stderr}");
    assert_eq!(stderr.matches("warning: cache").count(), 1, "one warning: {stderr}");

    // Wrong bytes: every layer blob the registry stores is damaged (same
    // size); the entries are refused, the layers built here.
    for data in files_under(&registry.storage).iter().filter(|f| f.ends_with("data")) {
        let mut bytes = std::fs::read(data).unwrap();
        if bytes.len() > 8 << 10 {
            let at = bytes.len() / 2;
            bytes[at] ^= 0xff;
            std::fs::write(data, bytes).unwrap();
        }
    }
    let four = runner();
    let read = ["--cache", cache.as_str(), "--cache-mode", "read"];
    let (built4, _, stderr) = run(four.path(), &["build-all"], &read);
    assert_eq!(sum(&built4, "layers_built"), 21, "{built4:?}");
    assert_eq!(digests(&built4), digests(&built1));
    assert!(stderr.contains("digest"), "{stderr}");
    assert!(stderr.contains("the layer is built here"), "{stderr}");
    let validate = xtask(
        four.path(),
        &["image", "validate", &format!("{host}/team/plugin-03"), "--root", four.path().to_str().unwrap()],
    );
    ok(&validate);

    // The cache vanishes: the first failure is a warning, the rest is built here, quickly.
    registry.kill();
    let five = runner();
    let (built5, time5, stderr) = run(five.path(), &["build-all"], &["--cache", &cache]);
    assert_eq!(sum(&built5, "layers_built"), 21, "{built5:?}");
    assert_eq!(digests(&built5), digests(&built1));
    assert_eq!(stderr.matches("warning: cache").count(), 1, "one warning: {stderr}");
    assert!(time5 < build1_time * 3, "{time5:?} against a cold {build1_time:?}");
}
