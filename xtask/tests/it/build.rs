//! `cargo xtask build`, `build-all` and `image` through the command line,
//! on monorepos in temporary directories.

use std::path::Path;

use serde_json::Value;

use crate::{base_rootfs, write_tree, xtask};

const GOOD: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
COPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";
/// Lint-clean, but its `RUN` fails in the sandbox: the stand-in base's
/// `/bin/sh` is no program.
const BAD: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
COPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n\
RUN make install\n";

fn plugin(dir: &str, version: &'static str, dockerfile: &'static str) -> Vec<(String, &'static str)> {
    vec![
        (format!("{dir}/plugin_info.json"), r#"{"title": "t", "description": "d", "type": "import"}"#),
        (format!("{dir}/VERSION"), version),
        (format!("{dir}/src/main.py"), "print(1)\n"),
        (format!("{dir}/Dockerfile"), dockerfile),
    ]
}

fn monorepo(with_bad: bool) -> tempfile::TempDir {
    let mut files = plugin("plugins/a", "team/a:1.0.0\n", GOOD);
    files.extend(plugin("plugins/group/b", "team/b:2.0.0\n", GOOD));
    if with_bad {
        files.extend(plugin("plugins/c", "team/c:1.0.0\n", BAD));
        files.extend(
            plugin("plugins/d", "team/d:1.0.0\n", GOOD).into_iter().filter(|(p, _)| !p.ends_with(".py")),
        );
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    write_tree(&files)
}

/// A base image tarball made with `image from-rootfs` and `image export`.
fn base_archive(dir: &Path) -> std::path::PathBuf {
    let rootfs =
        base_rootfs(&[("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("usr/bin/tool", "#!/bin/sh\n")]);
    let store_root = dir.to_str().unwrap();
    let out =
        xtask(dir, &["image", "from-rootfs", rootfs.path().to_str().unwrap(), "base", "--root", store_root]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.join("base.tar");
    let out = xtask(dir, &["image", "export", "base", file.to_str().unwrap(), "--root", store_root]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    file
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn build_all_goes_past_a_failure_and_reports_json() {
    let scratch = tempfile::tempdir().unwrap();
    let base = base_archive(scratch.path());
    let repo = monorepo(true);
    let root = repo.path().to_str().unwrap();
    let override_ = format!("localhost:5000/base-py={}", base.display());
    let args = ["build-all", "--root", root, "--base-image", &override_, "--format", "json", "-j", "2"];
    let out = xtask(repo.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out.stdout);
    let by_plugin =
        |p: &str| lines.iter().find(|l| l["plugin"] == p).unwrap_or_else(|| panic!("{p} in {lines:?}"));
    let a = by_plugin("plugins/a");
    assert_eq!(a["status"], "built");
    assert_eq!(a["image"], "localhost:5000/team/a:1.0.0");
    assert!(a["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        Path::new(a["tarball"].as_str().unwrap()).ends_with("target/plugin-forge/images/team/a_1.0.0.tar")
    );
    assert!(a["error"].is_null());
    assert_eq!(by_plugin("plugins/group/b")["status"], "built");
    let c = by_plugin("plugins/c");
    assert_eq!(c["status"], "failed");
    assert!(
        c["error"]
            .as_str()
            .unwrap()
            .contains("plugins/c/Dockerfile:7:1: `RUN make install` exited with status"),
        "{c}"
    );
    // A plugin with lint errors is not built: it fails with them.
    let d = by_plugin("plugins/d");
    assert_eq!(d["status"], "failed");
    let error = d["error"].as_str().unwrap();
    assert!(
        error.starts_with("lint error[PF201]: plugins/d/src: src/ is missing; run `cargo xtask lint`"),
        "{d}"
    );

    // Nothing changed: nothing is rebuilt.
    let again = xtask(repo.path(), &args);
    for line in
        json_lines(&again.stdout).iter().filter(|l| l["plugin"] != "plugins/c" && l["plugin"] != "plugins/d")
    {
        assert_eq!(line["status"], "cached", "{line}");
        assert_eq!(line["layers_built"], 0);
    }
}

#[test]
fn build_names_the_image_last_and_uses_the_store() {
    let scratch = tempfile::tempdir().unwrap();
    let base = base_archive(scratch.path());
    let repo = monorepo(false);
    let root = repo.path().to_str().unwrap();
    // Imported under the repository name, the base serves every tag.
    let out = xtask(
        repo.path(),
        &["image", "import", base.to_str().unwrap(), "localhost:5000/base-py", "--root", root],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        xtask(repo.path(), &["build", "b", "plugins/a", "--root", root, "--registry", "localhost:5000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.ends_with("localhost:5000/team/b:2.0.0\nlocalhost:5000/team/a:1.0.0\n"), "{stdout}");
    let out = xtask(repo.path(), &["image", "validate", "localhost:5000/team/a:1.0.0", "--root", root]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(": valid (") && said.contains(" layers, ") && !said.contains("ValidationReport"),
        "{said}"
    );
    // Without a tag: every tag of the name, as the README says.
    let out = xtask(repo.path(), &["image", "validate", "localhost:5000/team/a", "--root", root]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("localhost:5000/team/a:1.0.0 sha256:"));
    let listed = String::from_utf8(xtask(repo.path(), &["image", "list", "--root", root]).stdout).unwrap();
    assert!(listed.contains("localhost:5000/team/b:2.0.0  sha256:"), "{listed}");

    let out = xtask(repo.path(), &["build", "nope", "--root", root]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no plugin `nope`"));
}

#[test]
fn a_missing_base_says_how_to_provide_it() {
    let repo = monorepo(false);
    let root = repo.path().to_str().unwrap();
    let out = xtask(repo.path(), &["build", "plugins/a", "--root", root]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "base image `localhost:5000/base-py:1.0.0` is not in the local store and could not be pulled; \
             import it with `cargo xtask image import SOURCE localhost:5000/base-py`"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("is not in the local store").count(), 1, "the error is shown once: {stderr}");
}

/// A monorepo with plugin `plugins/a` whose Dockerfile ends with `last`,
/// and `localhost:5000/base-py` in its store.
fn monorepo_with_base(last: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dockerfile = format!("{GOOD}{last}\n");
    let mut files = plugin("plugins/a", "team/a:1.0.0\n", "");
    files.retain(|(p, _)| !p.ends_with("Dockerfile"));
    let mut files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    files.push(("plugins/a/Dockerfile", &dockerfile));
    files.extend_from_slice(extra);
    let repo = write_tree(&files);
    let root = repo.path().to_str().unwrap();
    let rootfs = base_rootfs(&[("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")]);
    let rootfs = rootfs.path().to_str().unwrap();
    crate::ok(&xtask(
        repo.path(),
        &["image", "from-rootfs", rootfs, "localhost:5000/base-py", "--root", root],
    ));
    repo
}

#[test]
fn a_path_through_a_file_says_not_a_directory_once() {
    // `afile` is a file, so `afile/b/c` fails with ENOTDIR.
    let repo = monorepo_with_base("COPY afile/b/c /x", &[("afile", "x")]);
    let root = repo.path().to_str().unwrap();
    for args in [
        &["lint", "--root", root][..],
        &["build", "plugins/a", "--root", root],
        &["build", "plugins/a", "--no-lint", "--root", root],
    ] {
        let out = xtask(repo.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let said =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // Once in each message (a build prints lint's diagnostic, then
        // its own one-line error).
        for line in said.lines() {
            assert!(line.matches("Not a directory").count() <= 1, "{args:?}: the cause twice in: {line}");
        }
        let last = said.lines().rfind(|l| l.contains("Not a directory")).unwrap_or_default();
        assert!(
            last.contains("Dockerfile:7:6") || said.contains("--> plugins/a/Dockerfile:7:6"),
            "{args:?}: {said}"
        );
    }
    // A `--root` through a file, and the output directory's parent a file.
    let through = repo.path().join("afile/x");
    let out = xtask(repo.path(), &["build", "plugins/a", "--root", through.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).matches("Not a directory").count() <= 1);
    let plain = monorepo(false);
    std::fs::write(plain.path().join("target"), "a file").unwrap();
    let out = xtask(plain.path(), &["build", "plugins/a", "--root", plain.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("Not a directory").count(), 1, "the cause once: {stderr}");
}

#[test]
fn an_unreadable_source_file_fails_the_build_at_its_copy() {
    // Root reads every file, so the build runs as `nobody` then.
    let repo = monorepo_with_base("COPY locked.txt /locked.txt", &[("locked.txt", "s")]);
    let root = repo.path().to_str().unwrap();
    let locked = repo.path().join("locked.txt");
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let home = repo.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let as_nobody = forge_testkit::is_root();
    if as_nobody {
        if !forge_testkit::require_tool("setpriv") {
            return;
        }
        std::fs::set_permissions(repo.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let chown = std::process::Command::new("chown").args(["-R", "65534:65534", root]).status().unwrap();
        assert!(chown.success());
    }
    for extra in [&[][..], &["--no-lint"]] {
        let mut command = if as_nobody {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_xtask")]);
            c
        } else {
            std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        };
        let out = command
            .args(["build", "plugins/a", "--root", root])
            .args(extra)
            .env("HOME", &home)
            .env_remove("CARGO_MANIFEST_DIR")
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "plugins/a/Dockerfile:7:1: building the layer of `COPY locked.txt /locked.txt`: \
                 opening {}: Permission denied",
                locked.display()
            )),
            "{extra:?}: {stderr}"
        );
    }
}
