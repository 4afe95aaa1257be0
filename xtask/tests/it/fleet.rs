//! CI at fleet scale (issue 12), through the command line: `--shard K/N`
//! and `--list`, `--changed-since GITREF` over a fixture git history, and
//! the image's revision (the last commit that changed the plugin's build
//! inputs, so an unrelated commit changes no digest).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

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

/// Runs git in `root` as a fixed author.
fn git(root: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .envs([
            ("GIT_AUTHOR_NAME", "t"),
            ("GIT_AUTHOR_EMAIL", "t@example.com"),
            ("GIT_COMMITTER_NAME", "t"),
            ("GIT_COMMITTER_EMAIL", "t@example.com"),
            ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ])
        .output()
        .expect("running git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
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
            (l["plugin"].as_str().unwrap().to_owned(), (digest, revision))
        })
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
