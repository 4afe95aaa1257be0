//! End-to-end tests of the `cargo xtask` binary on real directories.

mod agent;
mod archive;
mod bench;
mod build;
mod compare;
mod compression;
mod crash;
mod docker_flags;
mod e2e;
mod fleet;
mod fresh;
mod lint;
mod locks;
mod new;
mod platform;
mod publish;
mod register;
mod runtimes;
mod sandboxed;
mod sbom;
mod standalone;
mod temporaries;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs the xtask binary with `args` in `cwd`.
pub(crate) fn xtask(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .expect("running xtask")
}

/// Writes `files` (path, content) under a new temporary directory.
/// The stdout of a command that must have succeeded; on failure, the
/// assertion shows its exit status, stdout and stderr.
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn write_tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

/// A root filesystem for a stand-in base image: `files`, plus the
/// executables the agent's `sh -c "python -u ..."` needs (rule PF401).
pub(crate) fn base_rootfs(files: &[(&str, &str)]) -> tempfile::TempDir {
    let mut all = files.to_vec();
    all.extend([("bin/sh", "stand-in\n"), ("usr/bin/python", "stand-in\n")]);
    let dir = write_tree(&all);
    for exe in ["bin/sh", "usr/bin/python"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path().join(exe), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Copies the directory `from` to `to` (without `__pycache__`).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
