//! `Dockerfile.lock` through the command line, on the sample plugin that
//! installs from PyPI and Debian (class-catalog): its committed lock
//! rebuilds the image byte for byte from an empty download cache and a
//! fresh store, and `--locked` refuses a lock its requirements outgrew,
//! naming the lock and the `RUN`'s line. Needs Debian's archive and PyPI:
//! fails under `CI=true` when they are unreachable, skips elsewhere.

use std::fs;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::{copy_dir, ok, project_root};

const PLUGIN: &str = "plugins/tools/class-catalog";

/// Whether every `host:port` answers a TCP connect. Panics under `CI=true`
/// when one does not; elsewhere prints why the test is skipped.
pub(crate) fn require_network(hosts: &[&str]) -> bool {
    for host in hosts {
        let reachable = host
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(10)).is_ok());
        if !reachable {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{host} is unreachable, and CI=true requires the network"
            );
            eprintln!("skipping: {host} is unreachable");
            return false;
        }
    }
    true
}

/// A new monorepo holding class-catalog, the shared library and the base
/// image descriptions, copied from this repository.
fn monorepo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    for part in [PLUGIN, "supervisely_lib", "base-images"] {
        copy_dir(&project_root().join(part), &repo.path().join(part));
    }
    repo
}

/// `cargo xtask build class-catalog --root REPO --format json ARGS...`,
/// with its download cache in `cache` when given.
fn build(repo: &Path, cache: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(["build", "class-catalog", "--root", repo.to_str().unwrap(), "--format", "json"])
        .args(args)
        .current_dir(repo)
        .env_remove("CARGO_MANIFEST_DIR");
    if let Some(cache) = cache {
        command.env("XDG_CACHE_HOME", cache).env_remove("PLUGIN_FORGE_CACHE");
    }
    command.output().expect("running xtask")
}

fn digest(out: &Output) -> String {
    let report: Value = serde_json::from_str(ok(out).trim()).unwrap();
    assert_eq!(report["status"], "built", "{report}");
    report["digest"].as_str().unwrap().to_owned()
}

#[test]
fn the_lock_rebuilds_byte_for_byte_from_a_clean_cache_and_locked_refuses_a_stale_one() {
    if !require_tool_and_network() {
        return;
    }
    let committed = fs::read(project_root().join(PLUGIN).join("Dockerfile.lock")).unwrap();
    let tarball = "target/plugin-forge/images/supervisely/class-catalog_0.1.0.tar";

    // A first build, with whatever the user's cache holds.
    let first = monorepo();
    let first_digest = digest(&build(first.path(), None, &[]));
    assert_eq!(fs::read(first.path().join(PLUGIN).join("Dockerfile.lock")).unwrap(), committed);

    // From nothing: no downloads, no uv, no store; the lock alone decides.
    let second = monorepo();
    let cache = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let second_digest = digest(&build(second.path(), Some(cache.path()), &["--locked"]));
    eprintln!("clean-cache build with --locked: {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(second_digest, first_digest);
    assert!(
        fs::read(first.path().join(tarball)).unwrap() == fs::read(second.path().join(tarball)).unwrap(),
        "the tarballs differ"
    );
    assert!(cache.path().join("plugin-forge").is_dir(), "the build did not use the cache it was given");

    // The requirements change, the lock does not: --locked refuses, at the
    // RUN that reads them, and leaves the lock alone.
    let requirements = second.path().join(PLUGIN).join("requirements.txt");
    let mut text = fs::read_to_string(&requirements).unwrap();
    text.push_str("text-unidecode==1.3\n");
    fs::write(&requirements, text).unwrap();
    let dockerfile = fs::read_to_string(second.path().join(PLUGIN).join("Dockerfile")).unwrap();
    let line = 1 + dockerfile.lines().position(|l| l.starts_with("RUN pip3 install")).unwrap();
    let out = build(second.path(), Some(cache.path()), &["--locked"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    let error = report["error"].as_str().unwrap_or_default();
    let expected = format!(
        "{PLUGIN}/Dockerfile:{line}:1: {PLUGIN}/Dockerfile.lock was made from other inputs \
         (the command, its ENV or a requirements file changed) on linux/amd64, and --locked \
         forbids resolving it again\n  help: build once without --locked (or with --update-locks)"
    );
    assert!(error.starts_with(&expected), "{error}");
    assert_eq!(fs::read(second.path().join(PLUGIN).join("Dockerfile.lock")).unwrap(), committed);
}

/// gpgv (Debian's signatures), Debian's archive and PyPI's file host.
fn require_tool_and_network() -> bool {
    forge_testkit::require_tool("gpgv")
        && require_network(&["deb.debian.org:80", "pypi.org:443", "files.pythonhosted.org:443"])
}
