//! `RUN`s no native installer takes, executed in the build sandbox
//! (bubblewrap) through the command line: a failure reports its exit
//! status, output and position and leaves nothing behind; a cached `RUN`
//! never executes again (a counter in a `--mount=type=cache` directory,
//! outside the image, says how often it ran) until a `COPY` before it
//! changes; the same Dockerfile gives the same digest from clean caches;
//! `--native-only` and a machine without bubblewrap refuse with the `RUN`'s
//! position. Over a base of the host's own `sh` and coreutils (copied with
//! their libraries), so no Debian base is needed.
//!
//! [`shell_notes_is_the_same_everywhere`] checks the sample plugin
//! `shell-notes` after the e2e test's build: its file tree under
//! `umoci unpack`, `runc run`, `docker run` and `cargo xtask run`.

use std::path::{Path, PathBuf};

use forge_testkit::{require_tool, Dockerd};
use serde_json::Value;

use crate::{ok, write_tree, xtask};

/// A base image tarball of the host's userland.
fn userland_base(dir: &Path) -> PathBuf {
    let rootfs = tempfile::tempdir().unwrap();
    forge_testkit::host_userland(rootfs.path(), &["sh", "mkdir", "ln", "rm", "cat", "cp", "touch"]);
    for (path, content) in
        [("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("usr/bin/python", "stand-in\n")]
    {
        let path = rootfs.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(rootfs.path().join("usr/bin/python"), executable).unwrap();
    let root = dir.to_str().unwrap();
    ok(&xtask(dir, &["image", "from-rootfs", rootfs.path().to_str().unwrap(), "base", "--root", root]));
    let file = dir.join("base.tar");
    ok(&xtask(dir, &["image", "export", "base", file.to_str().unwrap(), "--root", root]));
    file
}

/// A monorepo with plugin `plugins/p` (image `team/p:1.0.0`) whose
/// Dockerfile is `FROM` the base, then `body`.
fn monorepo(body: &str) -> tempfile::TempDir {
    let dockerfile = format!(
        "ARG REGISTRY\nARG TAG\nFROM ${{REGISTRY}}/base-py:${{TAG}}\nARG MODULE_PATH\n{body}\
         ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n"
    );
    write_tree(&[
        ("plugins/p/plugin_info.json", r#"{"title": "t", "description": "d", "type": "import"}"#),
        ("plugins/p/VERSION", "team/p:1.0.0\n"),
        ("plugins/p/src/main.py", "print(1)\n"),
        ("plugins/p/Dockerfile", &dockerfile),
    ])
}

/// `cargo xtask build p` over the base `base`, with `extra` flags.
fn build(repo: &Path, base: &Path, extra: &[&str]) -> std::process::Output {
    let override_ = format!("localhost:5000/base-py={}", base.display());
    let root = repo.to_str().unwrap();
    let mut args = vec!["build", "p", "--root", root, "--base-image", &override_, "--format", "json"];
    args.extend(extra);
    xtask(repo, &args)
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_str(ok(out).trim()).unwrap()
}

/// Every temporary (`.tmp-*`) below `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .map(|e| e.path().display().to_string())
        .collect()
}

#[test]
fn a_failing_run_names_its_status_output_and_line_and_leaves_nothing() {
    if !require_tool("bwrap") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let base = userland_base(scratch.path());
    let repo = monorepo(
        "COPY ${MODULE_PATH} /workdir\nRUN mkdir /made && echo first line \\\n    && echo to stderr >&2 && exit 3\n",
    );
    let out = build(repo.path(), &base, &[]);
    assert_eq!(out.status.code(), Some(1));
    let line: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let error = line["error"].as_str().unwrap();
    assert!(error.contains("plugins/p/Dockerfile:6:1: `RUN mkdir /made && echo first line"), "{error}");
    assert!(error.contains("exited with status 3"), "{error}");
    assert!(error.contains("\n  | first line\n  | to stderr"), "{error}");
    assert!(error.contains("help: sandboxed RUNs have no network"), "{error}");
    // No tarball, no ref, no temporary: nothing of this plugin stays.
    let target = repo.path().join("target/plugin-forge");
    assert!(!target.join("images/team").exists(), "a tarball was written");
    let list = ok(&xtask(repo.path(), &["image", "list", "--root", repo.path().to_str().unwrap()]));
    assert!(!list.contains("team/p"), "{list}");
    assert_eq!(temporaries(&target), Vec::<String>::new());
}

#[test]
fn a_cached_run_never_executes_again_until_what_is_below_it_changes() {
    if !require_tool("bwrap") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let base = userland_base(scratch.path());
    let repo = monorepo(
        "COPY ${MODULE_PATH}/src /workdir/src\n\
         RUN --mount=type=cache,target=/cache,id=counter echo ran >> /cache/runs \\\n\
         \x20   && mkdir -p /opt/out && cp /workdir/src/main.py /opt/out/ && touch /etc/passwd\n",
    );
    let runs = repo
        .path()
        .join("target/plugin-forge/run-cache")
        .join(forge_digest::Digest::of(b"counter").hex())
        .join("runs");
    let count = || std::fs::read_to_string(&runs).unwrap_or_default().lines().count();

    let first = json(&build(repo.path(), &base, &[]));
    assert_eq!(count(), 1);
    let again = json(&build(repo.path(), &base, &[]));
    assert_eq!((count(), again["layers_built"].as_u64()), (1, Some(0)), "{again}");
    assert_eq!(again["digest"], first["digest"]);

    // The RUN's layer: the new files, not the cache directory, not the
    // touched /etc/passwd.
    let tarball = PathBuf::from(first["tarball"].as_str().unwrap());
    let listing = forge_testkit::python_check_archive(&tarball);
    let layer: Vec<&str> = listing.rsplit("--\n").next().unwrap().lines().collect();
    assert_eq!(
        layer,
        ["d 0755 0:0 0 opt", "d 0755 0:0 0 opt/out", "f 0644 0:0 0 opt/out/main.py"],
        "{listing}"
    );

    // A COPY below the RUN changed: the RUN executes again.
    std::fs::write(repo.path().join("plugins/p/src/main.py"), "print(2)\n").unwrap();
    let changed = json(&build(repo.path(), &base, &[]));
    assert_eq!(count(), 2);
    assert_ne!(changed["digest"], first["digest"]);
    // --no-cache executes it too, and makes the same image.
    let rebuilt = json(&build(repo.path(), &base, &["--no-cache"]));
    assert_eq!((count(), &rebuilt["digest"]), (3, &changed["digest"]));
}

#[test]
fn the_same_run_gives_the_same_digest_from_clean_caches() {
    if !require_tool("bwrap") {
        return;
    }
    let body = "COPY ${MODULE_PATH} /workdir\n\
        RUN mkdir -p /opt/a/b && echo hello > /opt/a/b/f && ln -s b/f /opt/a/link && ln /opt/a/b/f /opt/a/hard \\\n\
        \x20   && rm /etc/passwd && echo 'root:x:0:0::/root:/bin/sh' > /etc/passwd\n";
    let digests: Vec<Value> = (0..2)
        .map(|_| {
            let scratch = tempfile::tempdir().unwrap();
            let base = userland_base(scratch.path());
            let repo = monorepo(body);
            json(&build(repo.path(), &base, &[]))["digest"].clone()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn native_only_and_a_missing_sandbox_refuse_with_the_runs_position() {
    let scratch = tempfile::tempdir().unwrap();
    let base = userland_base(scratch.path());
    let repo = monorepo("COPY ${MODULE_PATH} /workdir\nRUN mkdir /made\n");
    let out = build(repo.path(), &base, &["--native-only"]);
    let line: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let error = line["error"].as_str().unwrap();
    assert!(error.starts_with("plugins/p/Dockerfile:6:1: --native-only refuses this RUN"), "{error}");
    assert!(error.contains("`mkdir` is not a package installer command at 6:5"), "{error}");

    // A PATH with the tools a build uses, but no bwrap.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["sh", "cp", "unshare", "mount"] {
        let found = forge_testkit::run("sh", &["-c", &format!("command -v {tool}")]);
        std::os::unix::fs::symlink(found.trim(), bin.path().join(tool)).unwrap();
    }
    let override_ = format!("localhost:5000/base-py={}", base.display());
    let root = repo.path().to_str().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build", "p", "--root", root, "--base-image", &override_])
        .env("PATH", bin.path())
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("plugins/p/Dockerfile:6:1: this RUN must execute in the sandbox, and no sandbox can run here: bubblewrap (`bwrap`) is not installed"), "{stderr}");
    assert!(stderr.contains("install bubblewrap (`apt-get install bubblewrap`)"), "{stderr}");
}

/// What `find` prints of the sample's RUN in an image: every entry under
/// the paths it made or changed, with type, mode and link target.
const FIND: [&str; 5] = ["find", "/opt/notes", "/etc/update-motd.d", "-printf", "%y %m %u:%g %p %l\\n"];
const TREE: &str = "d 755 root:root /opt/notes \n\
l 777 root:root /opt/notes/banner templates/banner.txt\n\
d 755 root:root /opt/notes/templates \n\
f 644 root:root /opt/notes/templates/banner.txt \n\
d 755 root:root /etc/update-motd.d \n\
f 755 root:root /etc/update-motd.d/00-notes \n";
const NOTES: &str = r#"{"banner": "made by a sandboxed RUN", "banner_link": "templates/banner.txt", "issue_net": false, "update_motd": ["00-notes"]}"#;
const IMAGE: &str = "localhost:5000/supervisely/shell-notes:0.1.0";
const TARBALL: &str = "target/plugin-forge/images/supervisely/shell-notes_0.1.0.tar";

/// `find`'s lines, sorted (directory order differs between file systems).
fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The sample plugin `shell-notes`, built in `repo` by the e2e test: its
/// RUN's tree as `umoci unpack` applies the layers, and as `runc run` and
/// `cargo xtask run` see it; the plugin itself prints the same.
pub(crate) fn shell_notes_is_the_same_everywhere(repo: &Path) {
    let root = repo.to_str().unwrap();
    let ours = |args: &[&str]| {
        let mut argv = vec!["run", "shell-notes", "--root", root, "--format", "json"];
        argv.extend(args);
        ok(&xtask(repo, &argv))
    };
    let mut find = vec!["--"];
    find.extend(FIND);
    assert_eq!(sorted(&ours(&find)), sorted(TREE), "cargo xtask run");
    assert!(ours(&["--docker-semantics"]).lines().any(|l| l == NOTES), "cargo xtask run");
    let tarball = repo.join(TARBALL);
    if !(require_tool("umoci") && require_tool("skopeo") && require_tool("runc")) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let (_, layout) = forge_testkit::skopeo_check(&tarball, scratch.path());
    let rootfs = forge_testkit::umoci_unpack(&layout, "checked", scratch.path());
    assert_eq!(
        forge_testkit::rootfs_listing(&rootfs.join("opt/notes")),
        [
            "l banner -> templates/banner.txt",
            "d 0755 templates",
            "f 0644 templates/banner.txt = made by a sandboxed RUN\n"
        ],
        "umoci unpack"
    );
    assert_eq!(
        forge_testkit::rootfs_listing(&rootfs.join("etc/update-motd.d")),
        ["f 0755 00-notes = #!/bin/sh\ncat /opt/notes/banner\n"],
        "umoci unpack: the base's 10-uname is hidden by the opaque directory"
    );
    assert!(!rootfs.join("etc/issue.net").exists(), "umoci unpack: the whiteout");
    assert!(rootfs.join("etc/issue").exists(), "umoci unpack: the base's /etc");
    let bundle = scratch.path().join("bundle");
    let config_path = bundle.join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = Value::Bool(false);
    config["process"]["args"] = serde_json::json!(FIND);
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let state = scratch.path().join("runc-state");
    let out = forge_testkit::run(
        "runc",
        &["--root", state.to_str().unwrap(), "run", "-b", bundle.to_str().unwrap(), "shell-notes"],
    );
    assert_eq!(sorted(&out), sorted(TREE), "runc run");
}

/// The same under `docker load` and `docker run` in `engine`.
pub(crate) fn shell_notes_under_docker(repo: &Path, engine: &Dockerd) {
    engine.docker(&["load", "-i", repo.join(TARBALL).to_str().unwrap()]).unwrap();
    let mut args = vec!["run", "--rm", "--network", "none", "--entrypoint", "find", IMAGE];
    args.extend(&FIND[1..]);
    assert_eq!(sorted(&engine.docker(&args).unwrap()), sorted(TREE), "docker run");
    let plain = engine.docker(&["run", "--rm", "--network", "none", IMAGE]).unwrap();
    assert!(plain.lines().any(|l| l == NOTES), "docker run: {plain}");
}
