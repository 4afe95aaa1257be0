//! Streaming, reproducible image layers.
//!
//! A [`LayerBuilder`] writes a tar stream into a gzip encoder into a
//! [`BlobWriter`], hashing the uncompressed tar (the *diff ID*, which goes
//! into the image config) and the compressed bytes (the *digest*, which goes
//! into the manifest) in the same pass: file content is read once and never
//! held in memory, whatever its size. Memory grows only with the number of
//! entries (their paths are kept to check parents and hardlinks).
//!
//! # The caller's contract
//!
//! The builder writes entries in the order given and does not sort, because
//! the caller knows its inputs and sorting is where reproducibility is won or
//! lost. It checks instead, and refuses (with an error, leaving the layer
//! usable) an entry that
//!
//! - does not come strictly after the previous one by the bytes of its path
//!   (so each path appears once; note `a-b` sorts between `a` and `a/b`);
//! - has a parent directory that was not appended as a directory before it
//!   (top-level entries need none; there is no entry for the root itself);
//! - has a path that is not relative and clean (`/`-separated, no leading or
//!   trailing `/`, no empty, `.` or `..` components, no NUL);
//! - is a hardlink to anything but an earlier file, symlink or hardlink of
//!   this layer;
//! - has mode bits outside `0o7777` (pass permission bits, not `st_mode`).
//!
//! An error while writing (a source file that cannot be read or changes size
//! under us) leaves a half-written tar: the builder is then poisoned and only
//! reports [`Error::Poisoned`]; dropping it deletes the temp blob.
//!
//! # Reproducibility
//!
//! Only what is in the [`Entry`] and [`LayerOptions`] reaches the bytes:
//! mtime is `LayerOptions::mtime` (`SOURCE_DATE_EPOCH`) for every entry,
//! owners are numeric with empty names, there are no atime/ctime, and the
//! gzip header has no file name and mtime 0 at the fixed level 6. The same
//! entries therefore give the same digest whatever the umask, the source
//! files' own mtimes or the machine.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use oci_spec::image::{Descriptor, MediaType};
use sha2::{Digest as _, Sha256};

use crate::digest::{descriptor, Digest};
use crate::error::{Error, Result};
use crate::store::{BlobStore, BlobWriter};
use crate::tarball::{self, Copied, Header, Kind};

/// The gzip level of every layer we write. Fixed, because the level changes
/// the bytes and so the digest.
pub const GZIP_LEVEL: u32 = 6;

/// Settings that apply to every entry of a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// The mtime of every entry, in seconds since the epoch: the build's
    /// `SOURCE_DATE_EPOCH`.
    pub mtime: u64,
}

/// One file system entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated path without a leading or trailing `/`.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits, including setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
}

/// The type and content of an [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file of `size` bytes.
    File {
        /// The content size; the source must have exactly this many bytes.
        size: u64,
        /// Where the content comes from.
        source: FileSource,
    },
    /// A symbolic link; the target is stored as given.
    Symlink {
        /// The link target, relative or absolute.
        target: String,
    },
    /// A hard link to an earlier entry of this layer.
    Hardlink {
        /// The path of an entry already appended to this layer.
        target: String,
    },
}

/// The content of a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A file on disk, opened and streamed when the entry is appended.
    Path(PathBuf),
    /// Content in memory.
    Bytes(Vec<u8>),
}

impl Entry {
    /// A directory owned by root.
    pub fn dir(path: impl Into<String>, mode: u32) -> Entry {
        Entry { path: path.into(), kind: EntryKind::Dir, mode, uid: 0, gid: 0 }
    }

    /// A file with in-memory content, owned by root.
    pub fn bytes(path: impl Into<String>, mode: u32, content: impl Into<Vec<u8>>) -> Entry {
        let content = content.into();
        let size = content.len() as u64;
        let kind = EntryKind::File { size, source: FileSource::Bytes(content) };
        Entry { path: path.into(), kind, mode, uid: 0, gid: 0 }
    }

    /// A file streamed from `source`, which must have `size` bytes, owned by root.
    pub fn file(path: impl Into<String>, mode: u32, size: u64, source: impl Into<PathBuf>) -> Entry {
        let kind = EntryKind::File { size, source: FileSource::Path(source.into()) };
        Entry { path: path.into(), kind, mode, uid: 0, gid: 0 }
    }

    /// A symlink (mode 0o777), owned by root.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        let kind = EntryKind::Symlink { target: target.into() };
        Entry { path: path.into(), kind, mode: 0o777, uid: 0, gid: 0 }
    }

    /// A hardlink to the earlier entry `target`, owned by root.
    pub fn hardlink(path: impl Into<String>, mode: u32, target: impl Into<String>) -> Entry {
        let kind = EntryKind::Hardlink { target: target.into() };
        Entry { path: path.into(), kind, mode, uid: 0, gid: 0 }
    }

    /// The same entry with another owner.
    pub fn owned_by(self, uid: u64, gid: u64) -> Entry {
        Entry { uid, gid, ..self }
    }
}

/// A finished layer: what a manifest and a config need to reference it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// Digest of the blob as stored (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar, for `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// Size of the blob as stored (compressed).
    pub size: u64,
    /// `application/vnd.oci.image.layer.v1.tar+gzip` for layers we build.
    pub media_type: MediaType,
}

impl Layer {
    /// The manifest descriptor of this layer.
    pub fn descriptor(&self) -> Descriptor {
        descriptor(self.media_type.clone(), &self.digest, self.size)
    }
}

/// The layer cached under `key` by [`cache_layer`], if its blob is still in
/// the store with the recorded size. Anything else is a miss.
pub fn cached_layer(store: &BlobStore, key: &str) -> Option<Layer> {
    let text = store.cache_get(key)?;
    let layer: Layer = serde_json::from_str(&text).ok()?;
    (store.size(&layer.digest).ok()? == layer.size).then_some(layer)
}

/// Remembers `layer` under `key` (the hash of everything that went into the
/// layer), so that the next build with the same inputs skips building it.
pub fn cache_layer(store: &BlobStore, key: &str, layer: &Layer) -> Result<()> {
    let text = serde_json::to_string(layer).map_err(|e| Error::json("layer cache entry", e))?;
    store.cache_put(key, &text)
}

/// Builds one layer; see the [module docs](self) for the contract.
pub struct LayerBuilder {
    out: Option<HashingWriter<GzEncoder<BlobWriter>>>,
    mtime: u64,
    previous: Option<String>,
    dirs: HashSet<String>,
    linkable: HashSet<String>,
}

impl fmt::Debug for LayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerBuilder")
            .field("mtime", &self.mtime)
            .field("previous", &self.previous)
            .field("poisoned", &self.out.is_none())
            .finish()
    }
}

impl LayerBuilder {
    /// Starts a layer whose blob will be written to `store`.
    pub fn new(store: &BlobStore, options: LayerOptions) -> Result<LayerBuilder> {
        let blob = store.writer()?;
        let gzip = GzBuilder::new().mtime(0).operating_system(255).write(blob, Compression::new(GZIP_LEVEL));
        Ok(LayerBuilder {
            out: Some(HashingWriter { inner: gzip, hasher: Sha256::new(), size: 0 }),
            mtime: options.mtime,
            previous: None,
            dirs: HashSet::new(),
            linkable: HashSet::new(),
        })
    }

    /// Appends one entry. Contract violations are reported before anything
    /// is written, and the layer stays usable; a failure while writing
    /// poisons it.
    pub fn append(&mut self, entry: Entry) -> Result<()> {
        if self.out.is_none() {
            return Err(Error::Poisoned);
        }
        self.check(&entry)?;
        let Entry { path, kind, mode, uid, gid } = entry;

        let mut source: Option<(File, PathBuf)> = None;
        let mut bytes: Option<Vec<u8>> = None;
        let (tar_kind, size, link, name) = match kind {
            EntryKind::Dir => (Kind::Dir, 0, None, format!("{path}/")),
            EntryKind::Symlink { target } => (Kind::Symlink, 0, Some(target), path.clone()),
            EntryKind::Hardlink { target } => (Kind::Hardlink, 0, Some(target), path.clone()),
            EntryKind::File { size, source: FileSource::Bytes(content) } => {
                if content.len() as u64 != size {
                    return Err(Error::SizeMismatch {
                        what: format!("content of layer entry `{path}`"),
                        expected: size,
                        found: content.len() as u64,
                    });
                }
                bytes = Some(content);
                (Kind::File, size, None, path.clone())
            }
            EntryKind::File { size, source: FileSource::Path(file_path) } => {
                let file = File::open(&file_path).map_err(|e| Error::io("opening", &file_path, e))?;
                let found =
                    file.metadata().map_err(|e| Error::io("reading metadata of", &file_path, e))?.len();
                if found != size {
                    return Err(Error::FileChanged { path: file_path, expected: size, found });
                }
                source = Some((file, file_path));
                (Kind::File, size, None, path.clone())
            }
        };

        let header = Header {
            name: &name,
            kind: tar_kind,
            mode,
            uid,
            gid,
            size,
            mtime: self.mtime,
            link: link.as_deref(),
        };
        if let Err(err) = self.write_entry(&header, source, bytes) {
            self.out = None;
            return Err(err);
        }

        match tar_kind {
            Kind::Dir => {
                self.dirs.insert(path.clone());
            }
            Kind::File | Kind::Symlink | Kind::Hardlink => {
                self.linkable.insert(path.clone());
            }
        }
        self.previous = Some(path);
        Ok(())
    }

    /// Ends the tar stream and the gzip stream and stores the blob.
    pub fn finish(mut self) -> Result<Layer> {
        let Some(mut out) = self.out.take() else {
            return Err(Error::Poisoned);
        };
        let write_error = |e| Error::io("writing", "layer blob", e);
        tarball::write_end(&mut out).map_err(write_error)?;
        let HashingWriter { inner: gzip, hasher, .. } = out;
        let blob = gzip.finish().map_err(write_error)?;
        let (digest, size) = blob.finish()?;
        Ok(Layer {
            digest,
            diff_id: Digest::from_hasher(hasher),
            size,
            media_type: MediaType::ImageLayerGzip,
        })
    }

    fn check(&self, entry: &Entry) -> Result<()> {
        let path = &entry.path;
        check_path(path)?;
        if entry.mode & !0o7777 != 0 {
            return Err(Error::InvalidMode { path: path.clone(), mode: entry.mode });
        }
        if let Some(previous) = &self.previous {
            if path.as_bytes() <= previous.as_bytes() {
                return Err(Error::OutOfOrder { previous: previous.clone(), path: path.clone() });
            }
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            if !self.dirs.contains(parent) {
                return Err(Error::MissingParent { path: path.clone(), parent: parent.to_owned() });
            }
        }
        match &entry.kind {
            EntryKind::Symlink { target } => {
                let reason = if target.is_empty() {
                    Some("the target is empty")
                } else if target.contains('\0') {
                    Some("the target contains a NUL byte")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(Error::BadSymlink { path: path.clone(), reason });
                }
            }
            EntryKind::Hardlink { target } => {
                if !self.linkable.contains(target.as_str()) {
                    return Err(Error::BadHardlink { path: path.clone(), target: target.clone() });
                }
            }
            EntryKind::Dir | EntryKind::File { .. } => {}
        }
        Ok(())
    }

    fn write_entry(
        &mut self,
        header: &Header<'_>,
        source: Option<(File, PathBuf)>,
        bytes: Option<Vec<u8>>,
    ) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(Error::Poisoned);
        };
        let entry_path = || PathBuf::from(header.name);
        tarball::write_header(out, header).map_err(|e| Error::io("writing layer entry", entry_path(), e))?;
        if let Some(content) = bytes {
            out.write_all(&content).map_err(|e| Error::io("writing layer entry", entry_path(), e))?;
        }
        if let Some((mut file, file_path)) = source {
            let copied = tarball::copy_exact(&mut file, out, header.size)
                .map_err(|e| Error::io("copying into the layer", &file_path, e))?;
            match copied {
                Copied::Exact => {}
                Copied::Short(found) => {
                    return Err(Error::FileChanged { path: file_path, expected: header.size, found });
                }
                Copied::Long => {
                    return Err(Error::FileChanged {
                        path: file_path,
                        expected: header.size,
                        found: header.size + 1,
                    });
                }
            }
        }
        tarball::write_padding(out, header.size)
            .map_err(|e| Error::io("writing layer entry", entry_path(), e))
    }
}

/// Checks that `path` is relative and clean; see the module docs.
fn check_path(path: &str) -> Result<()> {
    let reason = if path.is_empty() {
        Some("the path is empty")
    } else if path.starts_with('/') {
        Some("the path must be relative (no leading `/`)")
    } else if path.ends_with('/') {
        Some("no trailing `/` (directories get theirs in the tar)")
    } else if path.contains('\0') {
        Some("the path contains a NUL byte")
    } else if path.split('/').any(str::is_empty) {
        Some("the path has an empty component (`//`)")
    } else if path.split('/').any(|c| c == "." || c == "..") {
        Some("`.` and `..` components are not allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidPath { path: path.to_owned(), reason }),
        None => Ok(()),
    }
}

/// Hashes what passes through on the way to `inner`: the diff ID.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> (tempfile::TempDir, BlobStore, LayerBuilder) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path()).unwrap();
        let builder = LayerBuilder::new(&store, LayerOptions { mtime: 1_700_000_000 }).unwrap();
        (dir, store, builder)
    }

    #[test]
    fn empty_layer_is_two_zero_blocks() {
        let (_dir, store, builder) = builder();
        let layer = builder.finish().unwrap();
        assert_eq!(layer.diff_id, Digest::of(&[0u8; 1024]));
        assert_eq!(store.size(&layer.digest).unwrap(), layer.size);
        assert_eq!(layer.media_type, MediaType::ImageLayerGzip);
    }

    #[test]
    fn gzip_header_has_no_name_and_no_time() {
        let (_dir, store, builder) = builder();
        let layer = builder.finish().unwrap();
        let bytes = std::fs::read(store.path(&layer.digest)).unwrap();
        // Magic, deflate, no flags, mtime 0, XFL 0 (level 6), OS 255.
        assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn contract_violations_are_refused_and_the_layer_stays_usable() {
        let (_dir, _store, mut b) = builder();
        let err = |b: &mut LayerBuilder, e: Entry| b.append(e).unwrap_err().to_string();
        assert!(err(&mut b, Entry::dir("/etc", 0o755)).contains("relative"));
        assert!(err(&mut b, Entry::dir("etc/", 0o755)).contains("trailing"));
        assert!(err(&mut b, Entry::dir("a//b", 0o755)).contains("empty component"));
        assert!(err(&mut b, Entry::dir("a/../b", 0o755)).contains("`..`"));
        assert!(err(&mut b, Entry::dir("", 0o755)).contains("empty"));
        assert!(err(&mut b, Entry::dir("etc", 0o40755)).contains("0o7777"));
        assert!(err(&mut b, Entry::bytes("etc/passwd", 0o644, "x")).contains("parent directory `etc`"));
        b.append(Entry::dir("etc", 0o755)).unwrap();
        assert!(err(&mut b, Entry::dir("etc", 0o755)).contains("sorted"));
        assert!(err(&mut b, Entry::dir("bin", 0o755)).contains("sorted"));
        assert!(err(&mut b, Entry::hardlink("etc/x", 0o644, "etc/y")).contains("not a file"));
        assert!(err(&mut b, Entry::hardlink("etc/x", 0o644, "etc")).contains("not a file"));
        assert!(err(&mut b, Entry::symlink("etc/x", "")).contains("empty"));
        let mut wrong = Entry::bytes("etc/x", 0o644, "abc");
        wrong.kind = EntryKind::File { size: 4, source: FileSource::Bytes(b"abc".to_vec()) };
        assert!(err(&mut b, wrong).contains("descriptor says 4"));
        b.append(Entry::bytes("etc/x", 0o644, "abc")).unwrap();
        b.append(Entry::hardlink("etc/y", 0o644, "etc/x")).unwrap();
        b.finish().unwrap();
    }

    #[test]
    fn a_file_that_changed_size_is_refused() {
        let (dir, _store, mut b) = builder();
        let file = dir.path().join("src");
        std::fs::write(&file, "12345").unwrap();
        let err = b.append(Entry::file("f", 0o644, 4, &file)).unwrap_err();
        assert!(matches!(err, Error::FileChanged { expected: 4, found: 5, .. }), "{err}");
        b.append(Entry::file("f", 0o644, 5, &file)).unwrap();
        b.finish().unwrap();
    }
}
