//! An image from a root filesystem directory, as `docker import` makes one:
//! a single layer holding the tree exactly as it is (modes, owners, symlinks,
//! hard links), and a config with a default `PATH`. Until base images are
//! built from Debian packages, this is how a base such as a `debootstrap`
//! tree becomes `FROM`-able.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use forge_oci::image::{layer_history, new_config};
use forge_oci::{BlobStore, Entry, Image, LayerBuilder, LayerOptions, RuntimeConfig};
use walkdir::WalkDir;

use crate::BuildError;

/// The `PATH` Docker gives images that set none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Builds a one-layer image of the tree at `dir` into `store`.
pub fn image_from_rootfs(store: &BlobStore, dir: &Path, epoch: u64) -> Result<Image, BuildError> {
    let io = |path: &Path, source: std::io::Error| BuildError::Io { path: path.to_path_buf(), source };
    let mut builder = LayerBuilder::new(store, LayerOptions { mtime: epoch })?;
    let mut links: BTreeMap<(u64, u64), String> = BTreeMap::new();
    // Sorted by full path bytes, which puts every parent before its children.
    let mut entries: Vec<walkdir::DirEntry> = Vec::new();
    for entry in WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            io(&path, e.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop")))
        })?;
        entries.push(entry);
    }
    let rel =
        |e: &walkdir::DirEntry| e.path().strip_prefix(dir).unwrap_or(e.path()).to_string_lossy().into_owned();
    entries.sort_by_cached_key(|e| rel(e));
    for entry in &entries {
        let path = rel(entry);
        let meta = entry.metadata().map_err(|e| io(entry.path(), e.into()))?;
        let mode = meta.mode() & 0o7777;
        let ft = entry.file_type();
        let item = if ft.is_dir() {
            Entry::dir(path, mode)
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|e| io(entry.path(), e))?;
            Entry::symlink(path, target.to_string_lossy().into_owned())
        } else if ft.is_file() {
            let identity = (meta.dev(), meta.ino());
            match links.get(&identity) {
                Some(first) if meta.nlink() > 1 => Entry::hardlink(path, mode, first.clone()),
                _ => {
                    if meta.nlink() > 1 {
                        links.insert(identity, path.clone());
                    }
                    Entry::file(path, mode, meta.len(), entry.path().to_path_buf())
                }
            }
        } else {
            // Device nodes, FIFOs and sockets: the runtime provides /dev.
            continue;
        };
        builder.append(item.owned_by(u64::from(meta.uid()), u64::from(meta.gid())))?;
    }
    let layer = builder.finish()?;
    let runtime = RuntimeConfig {
        env: vec![format!("PATH={DEFAULT_PATH}")],
        cmd: Some(vec!["/bin/sh".to_string()]),
        ..RuntimeConfig::default()
    };
    let history =
        vec![layer_history(epoch, &format!("imported from a root filesystem ({} entries)", entries.len()))];
    let config = new_config(epoch, &runtime, std::slice::from_ref(&layer.diff_id), history)?;
    Ok(forge_oci::write_image(store, &config, &[layer.descriptor()], &BTreeMap::new())?)
}
