//! Temporaries never outlive a run: SIGTERM removes them at once, and
//! after `kill -9` the next run (or `image gc`) removes them, never those
//! of a run still going.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{write_tree, xtask};

/// A root filesystem with one 128 MiB incompressible file.
fn big_rootfs() -> tempfile::TempDir {
    let rootfs = write_tree(&[]);
    let mut noise = Vec::with_capacity(128 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 128 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(rootfs.path().join("noise"), noise).unwrap();
    rootfs
}

/// Starts `image from-rootfs` of `rootfs` into the store of `root` and
/// waits until it writes the layer's temp file: the run is then in the
/// middle of a blob.
fn writing_a_layer(root: &Path, rootfs: &Path) -> (Child, PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["image", "from-rootfs", rootfs.to_str().unwrap(), "big:1", "--root", root.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let blobs = root.join("target/plugin-forge/oci/blobs");
    let prefix = format!(".tmp-{}-", child.id());
    let started = Instant::now();
    loop {
        let temp = fs::read_dir(&blobs)
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path());
        if let Some(temp) = temp {
            return (child, temp);
        }
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().is_ok_and(|s| s.is_some()) {
            child.kill().ok();
            child.wait().ok();
            panic!("the run made no temp file, or ended before it was seen");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, name: &str) {
    assert!(Command::new("kill").args([name, &child.id().to_string()]).status().unwrap().success());
}

#[test]
fn sigterm_removes_the_runs_temporaries() {
    let repo = write_tree(&[("plugins/.keep", "")]);
    let rootfs = big_rootfs();
    let (mut child, temp) = writing_a_layer(repo.path(), rootfs.path());
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    assert!(!temp.exists(), "{} is left after SIGTERM", temp.display());
}

#[test]
fn after_kill_9_the_next_run_and_gc_clean_up() {
    let repo = write_tree(&[("plugins/.keep", "")]);
    let root = repo.path();
    let rootfs = big_rootfs();
    let (mut child, temp) = writing_a_layer(root, rootfs.path());
    signal(&child, "-KILL");
    child.wait().unwrap();
    assert!(temp.exists(), "kill -9 cannot clean up; the next run must");
    let listed = xtask(root, &["image", "list", "--root", root.to_str().unwrap()]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(!temp.exists(), "{} is left after the next run", temp.display());

    // gc: the image's blobs stay, an orphan goes.
    let small = write_tree(&[("etc/os-release", "ID=test\n")]);
    let made = xtask(
        root,
        &[
            "image",
            "from-rootfs",
            small.path().to_str().unwrap(),
            "small:1",
            "--root",
            root.to_str().unwrap(),
        ],
    );
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let blobs = root.join("target/plugin-forge/oci/blobs/sha256");
    let orphan = blobs.join("0".repeat(64));
    fs::write(&orphan, "orphan").unwrap();
    let collected = xtask(root, &["image", "gc", "--root", root.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&collected.stdout);
    assert!(collected.status.success(), "{}", String::from_utf8_lossy(&collected.stderr));
    assert!(stdout.starts_with("removed 1 unreferenced blobs (6 bytes)"), "{stdout}");
    assert!(!orphan.exists());
    let validated = xtask(root, &["image", "validate", "small:1", "--root", root.to_str().unwrap()]);
    assert!(validated.status.success(), "{}", String::from_utf8_lossy(&validated.stderr));
}
