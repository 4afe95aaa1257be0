//! Images as the Supervisely agent starts them: the build's check of what
//! its command needs (rule PF401), and `cargo xtask run` in the agent's
//! way (task directory, config, results).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::{write_tree, xtask};

const DOCKERFILE: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
COPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";

#[test]
fn an_image_without_python_fails_the_build_with_pf401() {
    let repo = write_tree(&[
        ("plugins/p/plugin_info.json", r#"{"title": "t", "description": "d", "type": "architecture"}"#),
        ("plugins/p/VERSION", "team/p:1.0.0\n"),
        ("plugins/p/src/train.py", "print(1)\n"),
        ("plugins/p/src/inference.py", "print(1)\n"),
        ("plugins/p/Dockerfile", DOCKERFILE),
    ]);
    // A base with a shell and python3, but no `python`.
    let rootfs = write_tree(&[("bin/sh", "stand-in\n"), ("usr/bin/python3", "stand-in\n")]);
    for exe in ["bin/sh", "usr/bin/python3"] {
        fs::set_permissions(rootfs.path().join(exe), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let root = repo.path().to_str().unwrap();
    let out = xtask(
        repo.path(),
        &["image", "from-rootfs", rootfs.path().to_str().unwrap(), "localhost:5000/base-py", "--root", root],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = xtask(repo.path(), &["build", "p", "--root", root]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error[PF401]: localhost:5000/team/p:1.0.0: the image has no `python` on its PATH \
             (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), only `python3`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--> plugins/p/Dockerfile"), "{stderr}");
    assert!(stderr.contains("help: install Debian's `python-is-python3`"), "{stderr}");
    assert!(!repo.path().join("target/plugin-forge/images/team/p_1.0.0.tar").exists());

    // As a warning the image is built; allowed, nothing is said.
    let out = xtask(repo.path(), &["build", "p", "--root", root, "-W", "PF401"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning[PF401]"), "{stderr}");
    let out = xtask(repo.path(), &["build", "p", "--root", root, "-A", "agent-start"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("PF401"), "{stderr}");
}
