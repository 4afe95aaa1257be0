//! Warm runs across processes. An unchanged plugin is reported as the run
//! before reported it. A plugin with a source changed, built by a process
//! that read its base's layers from what an earlier process left in the
//! store (their entries' headers and the small files its SBOM read), gets
//! the image, SBOM and provenance a `--no-cache` run of a clean copy gets.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::{base_rootfs, copy_dir, ok, xtask};

/// `build-all --root REPO ARGS --format json`, by plugin, without the time.
fn build_all(repo: &Path, args: &[&str]) -> BTreeMap<String, Value> {
    let mut argv = vec!["build-all", "--root", repo.to_str().unwrap(), "--format", "json"];
    argv.extend(args);
    ok(&xtask(repo, &argv))
        .lines()
        .map(|l| {
            let mut line: Value = serde_json::from_str(l).unwrap();
            line.as_object_mut().unwrap().remove("seconds");
            (line["plugin"].as_str().unwrap().to_string(), line)
        })
        .collect()
}

/// A machine-readable (DEP-5) copyright file of one license.
fn copyright(license: &str) -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
         Files: *\nCopyright: 2020 Someone\nLicense: {license}\n"
    )
}

/// A base image tarball whose dpkg status lists two packages, each with a
/// copyright file (what an SBOM reads of a base).
fn base_with_packages(dir: &Path) -> std::path::PathBuf {
    let status = "Package: libfoo\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n\
                  Package: libbar\nStatus: install ok installed\nArchitecture: all\nVersion: 2.3\n";
    let rootfs = base_rootfs(&[
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("var/lib/dpkg/status", status),
        ("usr/share/doc/libfoo/copyright", &copyright("MIT")),
        ("usr/share/doc/libbar/copyright", &copyright("Apache-2.0")),
    ]);
    let root = dir.to_str().unwrap();
    ok(&xtask(dir, &["image", "from-rootfs", rootfs.path().to_str().unwrap(), "base", "--root", root]));
    let file = dir.join("base.tar");
    ok(&xtask(dir, &["image", "export", "base", file.to_str().unwrap(), "--root", root]));
    file
}

#[test]
fn a_plugin_built_over_what_earlier_runs_kept_is_what_a_clean_run_builds() {
    let scratch = tempfile::tempdir().unwrap();
    let base = format!("localhost:5000/base-py={}", base_with_packages(scratch.path()).display());
    let repo = tempfile::tempdir().unwrap();
    forge_testkit::monorepo::generate(repo.path(), 4);
    let args = ["--base-image", base.as_str()];
    let first = build_all(repo.path(), &args);
    assert_eq!(first.len(), 4);
    let kept: Vec<String> = fs::read_dir(repo.path().join("target/plugin-forge/oci/cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("layer-v1-"))
        .collect();
    assert!(kept.iter().any(|n| n.ends_with(".headers")), "{kept:?}");
    assert!(kept.iter().any(|n| n.ends_with(".files")), "{kept:?}");

    // Nothing changed: the same lines, every plugin cached.
    let second = build_all(repo.path(), &args);
    for (plugin, line) in &second {
        assert_eq!(line["status"], "cached", "{plugin}");
        assert_eq!(line["digest"], first[plugin]["digest"], "{plugin}");
        assert_eq!(line["sbom"], first[plugin]["sbom"], "{plugin}");
        assert_eq!(line["provenance"], first[plugin]["provenance"], "{plugin}");
    }

    // One source changed: that plugin's image changes, and nothing else's.
    let plugin = first.keys().next().unwrap().clone();
    let source = forge_testkit::files_below(&repo.path().join(&plugin))
        .into_iter()
        .find(|f| f.ends_with(".py"))
        .unwrap();
    let source = repo.path().join(&plugin).join(source);
    fs::write(&source, format!("{}\n# changed\n", fs::read_to_string(&source).unwrap())).unwrap();
    let third = build_all(repo.path(), &args);
    let changed: Vec<&String> = third.keys().filter(|p| third[*p]["digest"] != first[*p]["digest"]).collect();
    assert_eq!(changed, [&plugin]);
    assert_eq!(third[&plugin]["status"], "built");

    // A clean copy, in a store of its own, with no cache.
    let clean = tempfile::tempdir().unwrap();
    copy_dir(repo.path(), clean.path());
    fs::remove_dir_all(clean.path().join("target")).unwrap();
    let mut clean_args = args.to_vec();
    clean_args.push("--no-cache");
    let fresh = build_all(clean.path(), &clean_args);
    for (plugin, line) in &fresh {
        for field in ["digest", "sbom", "provenance", "size"] {
            assert_eq!(line[field], third[plugin][field], "{plugin}: {field}");
        }
    }
    // The SBOM read the base's packages.
    let store = clean.path().join("target/plugin-forge/oci");
    let sbom = fresh[&plugin]["sbom"].as_str().unwrap().to_string();
    let manifest: Value =
        serde_json::from_slice(&fs::read(store.join("blobs/sha256").join(&sbom[7..])).unwrap()).unwrap();
    let document = manifest["layers"][0]["digest"].as_str().unwrap();
    let text = fs::read_to_string(store.join("blobs/sha256").join(&document[7..])).unwrap();
    assert!(text.contains("libfoo") && text.contains("Apache-2.0"), "{text}");
}
