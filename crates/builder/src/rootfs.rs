//! An image from a root filesystem directory, as `docker import` makes one:
//! a single layer holding the tree exactly as it is (modes, owners, symlinks,
//! hard links, device nodes and FIFOs; a socket is refused), and a config with a default `PATH`. Until base images are
//! built from Debian packages, this is how a base such as a `debootstrap`
//! tree becomes `FROM`-able.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use forge_oci::image::write_single_layer_image;
use forge_oci::{
    BlobStore, Compression, DeviceKind, Image, LayerOptions, Node, NodeKind, RuntimeConfig, Tree,
};
use walkdir::WalkDir;

use crate::BuildError;

/// Builds a one-layer image of the tree at `dir` into `store`.
pub fn image_from_rootfs(store: &BlobStore, dir: &Path, epoch: u64) -> Result<Image, BuildError> {
    let (tree, walked) = read_rootfs(dir)?;
    let layer = tree.write_layer(store, LayerOptions { mtime: epoch }, Compression::default())?;
    let runtime =
        RuntimeConfig { cmd: Some(vec!["/bin/sh".to_string()]), ..RuntimeConfig::with_default_path() };
    let created_by = format!("imported from a root filesystem ({walked} entries)");
    Ok(write_single_layer_image(
        store,
        &layer,
        &runtime,
        epoch,
        &created_by,
        &BTreeMap::new(),
        &forge_oci::Platform::default(),
    )?)
}

/// The device kind of a character or block device or a FIFO.
fn device_kind(ft: std::fs::FileType) -> Option<DeviceKind> {
    if ft.is_char_device() {
        Some(DeviceKind::Char)
    } else if ft.is_block_device() {
        Some(DeviceKind::Block)
    } else if ft.is_fifo() {
        Some(DeviceKind::Fifo)
    } else {
        None
    }
}

/// Major and minor numbers of a Linux `dev_t` (glibc's `gnu_dev_major` and
/// `gnu_dev_minor`).
fn split_rdev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// `path` as UTF-8, or refused with its bytes shown.
fn utf8(path: &Path) -> Result<&str, BuildError> {
    path.to_str()
        .ok_or_else(|| BuildError::NonUtf8Name { path: forge_oci::escape_name(path.as_os_str().as_bytes()) })
}

/// The tree at `dir` exactly as it is (modes, owners, symlinks; the second
/// and later names of a file, in path order, as hard links), and the number
/// of entries walked.
fn read_rootfs(dir: &Path) -> Result<(Tree, usize), BuildError> {
    let mut entries: Vec<(String, walkdir::DirEntry)> = Vec::new();
    for entry in WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            let source = e.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop"));
            BuildError::io("reading", path, source)
        })?;
        let rel = utf8(entry.path().strip_prefix(dir).unwrap_or(entry.path()))?.to_owned();
        entries.push((rel, entry));
    }
    // Hard links point at the first name in layer order: sort first.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut links: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut tree = Tree::new();
    for (path, entry) in &entries {
        let meta = entry.metadata().map_err(|e| BuildError::io("reading", entry.path(), e.into()))?;
        let mode = meta.mode() & 0o7777;
        let ft = entry.file_type();
        let node = if ft.is_dir() {
            Node::dir(mode)
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .map_err(|e| BuildError::io("reading the link", entry.path(), e))?;
            Node::symlink(utf8(&target)?)
        } else if ft.is_file() {
            let identity = (meta.dev(), meta.ino());
            match links.get(&identity) {
                Some(first) if meta.nlink() > 1 => Node::hardlink(mode, first.clone()),
                _ => {
                    if meta.nlink() > 1 {
                        links.insert(identity, path.clone());
                    }
                    Node::file(mode, meta.len(), entry.path())
                }
            }
        } else if let Some(kind) = device_kind(ft) {
            let (major, minor) = split_rdev(meta.rdev());
            Node { kind: NodeKind::Device { kind, major, minor }, mode, uid: 0, gid: 0 }
        } else {
            // A socket has no tar form; dropping it silently would lose it.
            return Err(BuildError::io(
                "importing",
                entry.path(),
                std::io::Error::other("a socket cannot be put into a layer; remove it"),
            ));
        };
        tree.insert(path.clone(), node.owned_by(u64::from(meta.uid()), u64::from(meta.gid())));
    }
    Ok((tree, entries.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_utf8_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"c\xff")), "one").unwrap();
        let err = read_rootfs(dir.path()).unwrap_err();
        assert!(matches!(&err, BuildError::NonUtf8Name { path } if path == "c\\xff"), "{err}");
    }

    #[test]
    fn device_nodes_and_fifos_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dev")).unwrap();
        let status =
            std::process::Command::new("mkfifo").arg(dir.path().join("dev/initctl")).status().unwrap();
        assert!(status.success());
        // Only root may make device nodes; a FIFO shows the path either way.
        let null = std::process::Command::new("mknod")
            .args(["-m", "666"])
            .arg(dir.path().join("dev/null"))
            .args(["c", "1", "3"])
            .status();
        let (tree, _) = read_rootfs(dir.path()).unwrap();
        let fifo = tree.get("dev/initctl").unwrap();
        assert_eq!(fifo.kind, NodeKind::Device { kind: DeviceKind::Fifo, major: 0, minor: 0 });
        if null.is_ok_and(|s| s.success()) {
            let null = tree.get("dev/null").unwrap();
            assert_eq!(
                (&null.kind, null.mode),
                (&NodeKind::Device { kind: DeviceKind::Char, major: 1, minor: 3 }, 0o666)
            );
        }
        assert_eq!(split_rdev(0x0000_0103), (1, 3));
        assert_eq!(split_rdev((259 << 8) | 0x12 | (0x34500 << 12)), (259, 0x34512));
    }
}
