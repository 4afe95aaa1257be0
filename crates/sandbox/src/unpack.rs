//! Image layers applied to a root filesystem, as a container runtime's
//! snapshotter would, but in plain directories and without root.
//!
//! Each layer blob is read once, through the store's one layer reader
//! ([`BlobStore::open_uncompressed`]: the blob verified, decompressed as its
//! media type says), straight into the tar parser: nothing is buffered
//! whole. The uncompressed stream is hashed on the way and checked against
//! the config's diff ID, so a rootfs is never built from content the image
//! does not declare.
//!
//! Entries come from forge-oci's one tar reader
//! ([`forge_oci::entries::LayerReader`]: kinds, link targets, whiteouts,
//! sparse files expanded). OCI whiteouts: `.wh.NAME` deletes `NAME` from
//! the layers below; `.wh..wh..opq` in a directory hides everything the
//! layers below put there (what this layer itself adds stays). Neither
//! marker is written.
//!
//! Safety: see [`crate::scope`]. Paths are relative without `..`, parents
//! are resolved inside the root, the last component is never followed.
//! Device nodes and FIFOs are skipped (creating them needs privileges or
//! `libc`, and a sandboxed run gets its own `/dev`). Owners are applied only
//! when we are root. Directory modes and mtimes are applied once all layers
//! are in place, so that a read-only directory does not stop later entries
//! and later entries do not bump the recorded mtimes.
//!
//! The rootfs is built in a temporary directory next to the destination and
//! renamed into place when complete, so a destination that exists is whole.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read};
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use forge_oci::entries::{EntryKind, LayerEntry, LayerReader, Marker, ReadError};
use forge_oci::oci_spec::image::Descriptor;
use forge_oci::{BlobStore, Digest, Image};

use crate::error::{EntryError, Error, Result};
use crate::scope;

/// Unpacks the layers of `image` into a new directory `dest`, which must not
/// exist yet (its parent is created if needed).
pub fn unpack(store: &BlobStore, image: &Image, dest: &Path) -> Result<()> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(Error::DestinationExists { path: dest.to_owned() });
    }
    unpack_to(store, image, dest)
}

/// Unpacks `image` once into `cache_dir/<manifest hex>/rootfs` and returns
/// that path; an existing one is complete (it is renamed into place only
/// when finished) and is reused as it is.
///
/// Runs must not write into it: [`crate::rootcache`] gives each run a
/// private layer over it.
pub fn unpack_cached(store: &BlobStore, image: &Image, cache_dir: &Path) -> Result<PathBuf> {
    let rootfs = cache_dir.join(image.manifest_digest.hex()).join("rootfs");
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    match unpack_to(store, image, &rootfs) {
        // Another process finished the same image first: theirs is as good.
        Ok(()) | Err(Error::DestinationExists { .. }) => Ok(rootfs),
        Err(err) => Err(err),
    }
}

fn unpack_to(store: &BlobStore, image: &Image, dest: &Path) -> Result<()> {
    unpack_with(dest, |root| apply_layers(store, image, root))
}

/// Unpacks `layers` into a new directory `dest`, renamed into place when
/// complete (as [`unpack_cached`] does for an image).
pub(crate) fn unpack_layers_to(
    store: &BlobStore,
    layers: &[(Descriptor, Digest)],
    dest: &Path,
) -> Result<()> {
    unpack_with(dest, |root| apply_to(store, layers, root, true))
}

fn unpack_with(dest: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    // Named after this process (forge_oci::temp): removed on SIGTERM, and
    // by the next run after a `kill -9`.
    forge_oci::temp::remove(parent, forge_oci::temp::Scope::Stale);
    forge_oci::temp::register_dir(parent);
    let temp = tempfile::Builder::new()
        .prefix(&format!("{}unpack-", forge_oci::temp::prefix(".tmp-")))
        .tempdir_in(parent)
        .map_err(|e| Error::io("creating a temporary directory in", parent, e))?;
    fill(temp.path())?;
    let temp_path = temp.keep();
    fs::rename(&temp_path, dest).map_err(|e| {
        // Best effort: the error that matters is the rename's.
        let _ = fs::remove_dir_all(&temp_path);
        if matches!(e.kind(), io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists) {
            Error::DestinationExists { path: dest.to_owned() }
        } else {
            Error::io("renaming the unpacked root filesystem to", dest, e)
        }
    })
}

/// Mode and mtime of an entry (for directories, applied after the last layer).
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    mtime: u64,
}

struct Unpacker<'a> {
    root: &'a Path,
    chown: bool,
    dirs: BTreeMap<PathBuf, DirMeta>,
    /// Paths (on disk) written by the current layer, which its own opaque
    /// markers must not delete.
    written: HashSet<PathBuf>,
}

fn apply_layers(store: &BlobStore, image: &Image, root: &Path) -> Result<()> {
    let diff_ids = image.diff_ids()?;
    let layers = image.manifest.layers();
    if diff_ids.len() != layers.len() {
        return Err(Error::LayerCount {
            manifest: image.manifest_digest.clone(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let layers: Vec<(Descriptor, Digest)> = layers.iter().cloned().zip(diff_ids).collect();
    apply_to(store, &layers, root, true)
}

/// Applies `layers` (each blob with its diff ID, checked) in order to the
/// root filesystem `root` as it is, with the same rules as [`unpack`]: a
/// build's root grows by the layers of its steps this way.
pub fn apply(store: &BlobStore, layers: &[(Descriptor, Digest)], root: &Path) -> Result<()> {
    apply_to(store, layers, root, false)
}

fn apply_to(store: &BlobStore, layers: &[(Descriptor, Digest)], root: &Path, fresh: bool) -> Result<()> {
    let owner = fs::metadata(root).map_err(|e| Error::io("reading metadata of", root, e))?.uid();
    let mut unpacker = Unpacker { root, chown: owner == 0, dirs: BTreeMap::new(), written: HashSet::new() };
    if fresh {
        // The temporary directory is 0700; a root filesystem is 0755 unless
        // the image says otherwise.
        unpacker.dirs.insert(root.to_owned(), DirMeta { mode: 0o755, mtime: 0 });
    }
    for (desc, diff_id) in layers {
        let digest = Digest::from_descriptor(desc)?;
        let mut layer = store.open_uncompressed(desc).map_err(unsupported_layer)?;
        unpacker.written.clear();
        unpacker.apply_layer(&digest, &mut layer)?;
        // Reading to the end hashes the padding after the end-of-archive
        // blocks (part of the diff ID) and verifies the blob's digest.
        let found =
            layer.finish().map_err(|source| Error::ReadLayer { layer: digest.clone(), source })?.diff_id;
        if &found != diff_id {
            return Err(Error::DiffIdMismatch { layer: digest, expected: diff_id.clone(), found });
        }
    }
    unpacker.finish_dirs()
}

/// This crate's error for a layer [`BlobStore::open_uncompressed`] refused.
pub(crate) fn unsupported_layer(err: forge_oci::Error) -> Error {
    match err {
        forge_oci::Error::UnsupportedLayer { digest, media_type } => {
            Error::UnsupportedLayer { layer: digest, media_type }
        }
        other => Error::Oci(other),
    }
}

impl Unpacker<'_> {
    fn apply_layer(&mut self, layer: &Digest, reader: &mut dyn Read) -> Result<()> {
        let read_error = |source| Error::ReadLayer { layer: layer.clone(), source };
        let entry_error = |path: String, source| Error::Entry { layer: layer.clone(), path, source };
        let mut archive = LayerReader::new(reader);
        for entry in archive.entries().map_err(|e| read_error(e.into_io()))? {
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(ReadError::Header { name, source }) => {
                    return Err(entry_error(name, EntryError::BadHeader { source }))
                }
                Err(e) => return Err(read_error(e.into_io())),
            };
            self.apply_entry(&mut entry).map_err(|source| {
                entry_error(String::from_utf8_lossy(entry.name_bytes()).into_owned(), source)
            })?;
        }
        Ok(())
    }

    fn apply_entry(&mut self, entry: &mut LayerEntry<'_, &mut dyn Read>) -> Result<(), EntryError> {
        let components = scope::clean(entry.name_bytes())?;
        let Some((name, parents)) = components.split_last() else {
            // `./`: the root itself.
            if entry.kind == EntryKind::Dir {
                let meta = meta(entry)?;
                self.dirs.insert(self.root.to_owned(), meta);
            }
            return Ok(());
        };

        if let Some(marker) = entry.marker() {
            return self.apply_whiteout(marker, parents);
        }

        let parent = scope::resolve_dir(self.root, parents)?;
        let path = parent.join(name);
        let (uid, gid) = owner(entry)?;
        match entry.kind {
            EntryKind::Dir => {
                if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    remove_existing(&path)?;
                    fs::create_dir(&path).map_err(|e| EntryError::io("creating directory", &path, e))?;
                }
                self.chown(&path, uid, gid)?;
                let meta = meta(entry)?;
                self.dirs.insert(path.clone(), meta);
            }
            EntryKind::File { .. } => self.write_file(entry, &path, (uid, gid))?,
            EntryKind::Symlink => {
                let target = entry
                    .link_bytes()
                    .ok_or(EntryError::UnsafePath { reason: "a symlink without a target" })?;
                let target = PathBuf::from(OsStr::from_bytes(target));
                remove_existing(&path)?;
                self.forget_dirs(&path);
                symlink(&target, &path).map_err(|e| EntryError::io("creating symlink", &path, e))?;
                self.chown(&path, uid, gid)?;
            }
            EntryKind::Hardlink => self.write_hardlink(entry, &path)?,
            // Device nodes, FIFOs, and anything newer than tar's basics.
            _ => return Ok(()),
        }
        self.written.insert(path);
        Ok(())
    }

    /// A `.wh.` entry: deletes `hidden` from the layers below, or (the
    /// opaque marker) everything they put in its directory.
    fn apply_whiteout(
        &mut self,
        marker: Marker<'_>,
        parents: &[std::ffi::OsString],
    ) -> Result<(), EntryError> {
        let Some(parent) = scope::resolve_existing(self.root, parents)? else {
            return Ok(());
        };
        match marker {
            Marker::Opaque => {
                if fs::symlink_metadata(&parent).is_ok_and(|m| m.is_dir()) {
                    self.make_opaque(&parent)?;
                }
            }
            Marker::Whiteout("" | "." | "..") => {
                return Err(EntryError::UnsafePath { reason: "a whiteout without a name" })
            }
            Marker::Whiteout(hidden) => {
                remove_existing(&parent.join(hidden))?;
                self.forget_dirs(&parent.join(hidden));
            }
        }
        Ok(())
    }

    /// A regular file, replacing whatever is at `path`; mode and mtime are
    /// set after the owner, since chown clears setuid and setgid bits.
    fn write_file(
        &mut self,
        entry: &mut LayerEntry<'_, &mut dyn Read>,
        path: &Path,
        (uid, gid): (u32, u32),
    ) -> Result<(), EntryError> {
        remove_existing(path)?;
        self.forget_dirs(path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| EntryError::io("creating", path, e))?;
        io::copy(entry, &mut file).map_err(|e| EntryError::io("writing", path, e))?;
        self.chown(path, uid, gid)?;
        let DirMeta { mode, mtime } = meta(entry)?;
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| EntryError::io("setting the mode of", path, e))?;
        file.set_times(times(mtime)).map_err(|e| EntryError::io("setting the mtime of", path, e))
    }

    /// A hard link to an entry already unpacked (see [`Self::hardlink_target`]).
    fn write_hardlink(
        &mut self,
        entry: &LayerEntry<'_, &mut dyn Read>,
        path: &Path,
    ) -> Result<(), EntryError> {
        let raw_target =
            entry.link_bytes().ok_or(EntryError::UnsafePath { reason: "a hardlink without a target" })?;
        let target = self.hardlink_target(raw_target)?;
        if target != path {
            remove_existing(path)?;
            self.forget_dirs(path);
            fs::hard_link(&target, path).map_err(|e| EntryError::io("creating hardlink", path, e))?;
        }
        Ok(())
    }

    /// The file a hardlink entry points at: an existing non-directory, the
    /// link target's parents resolved like any entry's, never followed at
    /// the last component (a hardlink to a symlink is to the symlink).
    fn hardlink_target(&self, raw: &[u8]) -> Result<PathBuf, EntryError> {
        let bad = || EntryError::BadHardlink { target: String::from_utf8_lossy(raw).into_owned() };
        let components = scope::clean(raw)?;
        let (name, parents) = components.split_last().ok_or_else(bad)?;
        let parent = scope::resolve_existing(self.root, parents)?.ok_or_else(bad)?;
        let target = parent.join(name);
        match fs::symlink_metadata(&target) {
            Ok(meta) if !meta.is_dir() => Ok(target),
            _ => Err(bad()),
        }
    }

    /// Deletes what the layers below put in `dir`, keeping what this layer
    /// wrote (and, inside directories it wrote, looking further down).
    fn make_opaque(&mut self, dir: &Path) -> Result<(), EntryError> {
        let children = fs::read_dir(dir).map_err(|e| EntryError::io("listing", dir, e))?;
        for child in children {
            let child = child.map_err(|e| EntryError::io("listing", dir, e))?.path();
            if !self.written.contains(&child) {
                remove_existing(&child)?;
                self.forget_dirs(&child);
            } else if fs::symlink_metadata(&child).is_ok_and(|m| m.is_dir()) {
                self.make_opaque(&child)?;
            }
        }
        Ok(())
    }

    /// Drops the pending metadata of `path` and everything below it. Paths
    /// order by components, so those are one range of the map.
    fn forget_dirs(&mut self, path: &Path) {
        let below: Vec<PathBuf> = self
            .dirs
            .range::<Path, _>((Bound::Included(path), Bound::Unbounded))
            .map(|(dir, _)| dir)
            .take_while(|dir| dir.starts_with(path))
            .cloned()
            .collect();
        for dir in below {
            self.dirs.remove(&dir);
        }
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> Result<(), EntryError> {
        if self.chown {
            lchown(path, Some(uid), Some(gid))
                .map_err(|e| EntryError::io("changing the owner of", path, e))?;
        }
        Ok(())
    }

    /// Directory modes and mtimes, deepest first.
    fn finish_dirs(&self) -> Result<()> {
        for (dir, meta) in self.dirs.iter().rev() {
            let Ok(found) = fs::symlink_metadata(dir) else { continue };
            if !found.is_dir() {
                continue;
            }
            let io_error = |op, e| Error::io(op, dir, e);
            let handle = File::open(dir).map_err(|e| io_error("opening", e))?;
            handle.set_times(times(meta.mtime)).map_err(|e| io_error("setting the mtime of", e))?;
            fs::set_permissions(dir, Permissions::from_mode(meta.mode))
                .map_err(|e| io_error("setting the mode of", e))?;
        }
        Ok(())
    }
}

fn bad_header(e: ReadError) -> EntryError {
    EntryError::BadHeader { source: e.into_io() }
}

fn meta(entry: &LayerEntry<'_, &mut dyn Read>) -> Result<DirMeta, EntryError> {
    Ok(DirMeta { mode: entry.mode().map_err(bad_header)?, mtime: entry.mtime().map_err(bad_header)? })
}

fn owner(entry: &LayerEntry<'_, &mut dyn Read>) -> Result<(u32, u32), EntryError> {
    let (uid, gid) = entry.owner().map_err(bad_header)?;
    match (u32::try_from(uid), u32::try_from(gid)) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(EntryError::BadOwner { uid, gid }),
    }
}

fn times(mtime: u64) -> FileTimes {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    FileTimes::new().set_modified(time).set_accessed(time)
}

/// Removes whatever is at `path` without following a symlink there; a
/// directory goes with its content.
fn remove_existing(path: &Path) -> Result<(), EntryError> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| EntryError::io("removing", path, e))
}
