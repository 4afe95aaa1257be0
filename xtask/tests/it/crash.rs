//! Crash consistency: a `build-all` with a 300 MB layer killed with
//! `kill -9` at several moments (early, in the middle of the layer blob,
//! while the tarball is written) leaves a store that validates and no
//! tarball under its final name that is torn; the next run removes every
//! temporary and gives the clean build's digests. 30 to 70 s here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{write_tree, xtask};

const DOCKERFILE: &str = "FROM scratch\nARG MODULE_PATH\nCOPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";

/// A monorepo of one plugin holding 300 MB of incompressible data.
fn big_repo() -> tempfile::TempDir {
    let repo = write_tree(&[
        ("supervisely_lib/__init__.py", ""),
        (
            "plugins/tools/big/plugin_info.json",
            r#"{"title": "Big", "description": "A big plugin", "type": "custom"}"#,
        ),
        ("plugins/tools/big/VERSION", "tests/big:1.0.0\n"),
        ("plugins/tools/big/Dockerfile", DOCKERFILE),
        ("plugins/tools/big/README.md", "# Big\n"),
        ("plugins/tools/big/LICENSE", "MIT\n"),
        ("plugins/tools/big/src/main.py", "print('big')\n"),
    ]);
    let mut noise = Vec::with_capacity(300 << 20);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while noise.len() < 300 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(repo.path().join("plugins/tools/big/data.bin"), noise).unwrap();
    repo
}

fn build_all_args(root: &Path) -> Vec<String> {
    ["build-all", "--root", root.to_str().unwrap(), "-A", "PF401", "-j", "1"].map(String::from).to_vec()
}

/// Every file under `dir` (recursively) whose name `pred` accepts.
fn files_named(dir: &Path, pred: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| pred(&e.file_name().to_string_lossy()))
        .map(|e| e.path().to_path_buf())
        .collect()
}

fn is_temporary(name: &str) -> bool {
    name.starts_with(".tmp-") || name.starts_with("spool-")
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// The final tarballs under `root` and their hashes.
fn tarballs(root: &Path) -> Vec<(String, String)> {
    let images = root.join("target/plugin-forge/images");
    let mut found: Vec<(String, String)> = files_named(&images, &|n| n.ends_with(".tar") && !is_temporary(n))
        .into_iter()
        .map(|p| (p.strip_prefix(&images).unwrap().to_string_lossy().into_owned(), sha256(&p)))
        .collect();
    found.sort();
    found
}

/// Kills a `build-all` of `root` with SIGKILL once `moment` says so (or
/// after 120 s), and waits for it; false when it ended before.
fn kill_when(root: &Path, moment: &Moment) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(build_all_args(root))
        .env_remove("CARGO_MANIFEST_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !moment(root, started.elapsed()) && started.elapsed() < Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// When to kill a build: given the root and the time since it started.
type Moment<'a> = dyn Fn(&Path, Duration) -> bool + 'a;

#[test]
fn a_killed_build_all_leaves_a_consistent_store() {
    let started = Instant::now();
    let clean = big_repo();
    let built =
        xtask(clean.path(), &build_all_args(clean.path()).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let expected = tarballs(clean.path());
    assert_eq!(expected.len(), 1, "{expected:?}");
    drop(clean);

    let repo = big_repo();
    let root = repo.path();
    let store = root.join("target/plugin-forge/oci");
    let blob_temp =
        |root: &Path| !files_named(&root.join("target/plugin-forge/oci/blobs"), &is_temporary).is_empty();
    let tarball_temp = |root: &Path| {
        !files_named(&root.join("target/plugin-forge/images"), &|n| n.starts_with(".tmp-")).is_empty()
    };
    let moments: [(&str, &Moment); 3] = [
        ("early", &|_, elapsed| elapsed > Duration::from_millis(300)),
        ("in the middle of the layer blob", &|root, _| blob_temp(root)),
        ("while the tarball is written", &|root, _| tarball_temp(root)),
    ];
    for (name, moment) in moments {
        assert!(kill_when(root, moment), "the build ended before it could be killed {name}");
        // No tarball under its final name is torn: any there is the clean one.
        for found in tarballs(root) {
            assert!(expected.contains(&found), "killed {name}: torn tarball {found:?}");
        }
        // The store validates: every image it names is whole.
        if store.join("index.json").exists() {
            let store = forge_oci::BlobStore::open_or_create(&store).unwrap();
            for (name_ref, descriptor) in store.refs().unwrap() {
                let digest = forge_oci::Digest::from_descriptor(&descriptor).unwrap();
                forge_oci::validate::image(&store, &digest)
                    .unwrap_or_else(|e| panic!("killed {name}: {name_ref} does not validate: {e}"));
            }
        }
    }
    let rebuilt = xtask(root, &build_all_args(root).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    assert_eq!(tarballs(root), expected, "the next build gives the clean build's image");
    let left = files_named(&root.join("target/plugin-forge"), &is_temporary);
    assert!(left.is_empty(), "temporaries left after the next run: {left:?}");
    eprintln!("crash consistency: {} s", started.elapsed().as_secs());
}
