//! Integration tests of daemonless builds: the sample plugins end to end
//! with real tools, reproducibility and caching, COPY/ADD semantics, and
//! errors that point at the Dockerfile.

mod copy;
mod docker;
mod errors;
mod plan;
mod platforms;
mod repro;
mod run;
mod samples;
mod stages;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use forge_builder::{BuildOptions, Built, LocalResolver, Workspace};
use forge_oci::BlobStore;

/// The repository root, whose `plugins/` are the samples.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub(crate) const BASE: &str = "localhost:5000/base-py";

/// A small base image: `/etc/passwd`, `/tmp` (1777), a `/bin` symlink
/// target, stored as `localhost:5000/base-py` (every tag).
pub(crate) fn add_base(store: &BlobStore) {
    let rootfs = tempfile::tempdir().unwrap();
    let r = rootfs.path();
    for dir in ["etc", "tmp", "usr/bin"] {
        fs::create_dir_all(r.join(dir)).unwrap();
    }
    fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(r.join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(r.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
    let image = forge_builder::image_from_rootfs(store, r, 0).unwrap();
    store.set_ref(BASE, &image.manifest_descriptor()).unwrap();
}

pub(crate) fn options() -> BuildOptions {
    BuildOptions {
        registry: "localhost:5000".into(),
        epoch: 0,
        revision: None,
        source: None,
        extras: Default::default(),
        platforms: Vec::new(),
    }
}

/// Builds `plugin` of the monorepo at `root` into the store at `store_dir`
/// (which gets the base image first).
pub(crate) fn build(
    root: &Path,
    store_dir: &Path,
    plugin: &str,
) -> Result<(Workspace, Built), forge_builder::BuildError> {
    let ws = Workspace::open(root, store_dir)?;
    if ws.store().resolve_ref(BASE).unwrap().is_none() {
        add_base(ws.store());
    }
    let built =
        ws.build(Path::new(plugin), &options(), &LocalResolver::default(), &forge_builder::NoInstaller)?;
    Ok((ws, built))
}

/// Writes `files` (path, content) under a new temporary directory.
pub(crate) fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

/// A monorepo holding the minimal plugin `plugins/p` whose Dockerfile is
/// `dockerfile`, and the files `extra`.
pub(crate) fn plugin_repo(dockerfile: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let mut files = plugin_files("plugins/p", dockerfile);
    files.extend(extra.iter().map(|(p, c)| (p.to_string(), *c)));
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    tree(&files)
}

/// `built`, or the error of a build.
pub(crate) fn outcome<T>(result: Result<T, forge_builder::BuildError>) -> String {
    match result {
        Ok(_) => "built".to_string(),
        Err(e) => e.to_string(),
    }
}

/// The files of a minimal valid plugin at `dir` whose Dockerfile is `dockerfile`.
pub(crate) fn plugin_files<'a>(dir: &str, dockerfile: &'a str) -> Vec<(String, &'a str)> {
    vec![
        (format!("{dir}/plugin_info.json"), r#"{"title": "t", "description": "d", "type": "import"}"#),
        (format!("{dir}/VERSION"), "tests/p:1.0.0\n"),
        (format!("{dir}/src/main.py"), "print('main')\n"),
        (format!("{dir}/Dockerfile"), dockerfile),
    ]
}
