//! Streaming, reproducible image layers.
//!
//! A [`LayerBuilder`] writes a tar stream into an [`Encoder`] (gzip unless
//! the caller picks another [`Compression`]) into a [`BlobWriter`], hashing the uncompressed tar (the *diff ID*, which goes
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
//! Only what is in the [`Node`]s, their paths, the [`LayerOptions`] and the
//! [`Compression`] reaches the bytes:
//! mtime is `LayerOptions::mtime` (`SOURCE_DATE_EPOCH`) for every entry,
//! owners are numeric with empty names, there are no atime/ctime, and the
//! gzip header has no file name and mtime 0 at the fixed level 6
//! ([`crate::compression`]). Whiteout and opaque nodes are written as empty
//! regular files under their `.wh.` names. The same
//! entries therefore give the same digest whatever the umask, the source
//! files' own mtimes or the machine.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::path::PathBuf;

use oci_spec::image::{Descriptor, MediaType};

use crate::compression::{Compression, Encoder};
use crate::digest::{descriptor, Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::store::{BlobStore, BlobWriter};
use crate::tarball::{self, Copied, Header, Kind};
use crate::tree::{FileSource, Node, NodeKind, OPAQUE_MARKER, WHITEOUT_PREFIX};

/// Settings that apply to every entry of a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// The mtime of every entry, in seconds since the epoch: the build's
    /// `SOURCE_DATE_EPOCH`.
    pub mtime: u64,
}

/// One entry of a layer: a [`Node`] and its path, for appending entries one
/// by one (a [`Tree`](crate::Tree) is the usual way to describe a layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated path without a leading or trailing `/`.
    pub path: String,
    /// What is there.
    pub node: Node,
}

impl Entry {
    /// A directory owned by root.
    pub fn dir(path: impl Into<String>, mode: u32) -> Entry {
        Entry { path: path.into(), node: Node::dir(mode) }
    }

    /// A file with in-memory content, owned by root.
    pub fn bytes(path: impl Into<String>, mode: u32, content: impl Into<Vec<u8>>) -> Entry {
        Entry { path: path.into(), node: Node::bytes(mode, content) }
    }

    /// A file streamed from `source`, which must have `size` bytes, owned by root.
    pub fn file(path: impl Into<String>, mode: u32, size: u64, source: impl Into<PathBuf>) -> Entry {
        Entry { path: path.into(), node: Node::file(mode, size, source) }
    }

    /// A symlink (mode 0o777), owned by root.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry { path: path.into(), node: Node::symlink(target) }
    }

    /// A hardlink to the earlier entry `target`, owned by root.
    pub fn hardlink(path: impl Into<String>, mode: u32, target: impl Into<String>) -> Entry {
        Entry { path: path.into(), node: Node::hardlink(mode, target) }
    }

    /// The same entry with another owner.
    pub fn owned_by(self, uid: u64, gid: u64) -> Entry {
        Entry { path: self.path, node: self.node.owned_by(uid, gid) }
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
    /// The layer media type of its compression
    /// (`application/vnd.oci.image.layer.v1.tar+gzip` by default).
    pub media_type: MediaType,
}

impl Layer {
    /// The manifest descriptor of this layer.
    pub fn descriptor(&self) -> Descriptor {
        descriptor(self.media_type.clone(), &self.digest, self.size)
    }
}

/// Builds one layer; see the [module docs](self) for the contract.
pub struct LayerBuilder {
    out: Option<HashingWriter<Encoder<BlobWriter>>>,
    store: BlobStore,
    compression: Compression,
    mtime: u64,
    previous: Option<String>,
    dirs: HashSet<String>,
    linkable: HashSet<String>,
}

impl fmt::Debug for LayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerBuilder")
            .field("compression", &self.compression)
            .field("mtime", &self.mtime)
            .field("previous", &self.previous)
            .field("poisoned", &self.out.is_none())
            .finish()
    }
}

impl LayerBuilder {
    /// Starts a layer whose blob will be written to `store`, compressed
    /// with [`Compression::default`].
    pub fn new(store: &BlobStore, options: LayerOptions) -> Result<LayerBuilder> {
        LayerBuilder::with_compression(store, options, Compression::default())
    }

    /// Starts a layer compressed with `compression`.
    pub fn with_compression(
        store: &BlobStore,
        options: LayerOptions,
        compression: Compression,
    ) -> Result<LayerBuilder> {
        LayerBuilder::sized(store, options, compression, 0)
    }

    /// Starts a layer compressed with `compression` that will hold
    /// `content` bytes of file content, which picks the encoder
    /// ([`Encoder::sized`]: large layers are gzip in blocks).
    pub fn sized(
        store: &BlobStore,
        options: LayerOptions,
        compression: Compression,
        content: u64,
    ) -> Result<LayerBuilder> {
        let blob = store.writer()?;
        let Some(encoder) = Encoder::sized(blob, compression, content) else {
            return Err(Error::Unsupported {
                path: store.root().to_path_buf(),
                what: format!("writing {}-compressed layers", compression.name()),
            });
        };
        Ok(LayerBuilder {
            out: Some(HashingWriter::new(encoder)),
            store: store.clone(),
            compression,
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
        self.append_node(&entry.path, &entry.node)
    }

    /// Appends `node` at `path`; see [`LayerBuilder::append`].
    pub fn append_node(&mut self, path: &str, node: &Node) -> Result<()> {
        if self.out.is_none() {
            return Err(Error::Poisoned);
        }
        self.check(path, node)?;

        let mut source: Option<(File, PathBuf)> = None;
        let mut bytes: Option<&[u8]> = None;
        let dir_name;
        let (tar_kind, size, link, name) = match &node.kind {
            NodeKind::Dir => {
                dir_name = format!("{path}/");
                (Kind::Dir, 0, None, dir_name.as_str())
            }
            NodeKind::Symlink { target } => (Kind::Symlink, 0, Some(target.as_str()), path),
            NodeKind::Hardlink { target } => (Kind::Hardlink, 0, Some(target.as_str()), path),
            NodeKind::Whiteout | NodeKind::Opaque => (Kind::File, 0, None, path),
            NodeKind::Device { kind, major, minor } => {
                (Kind::Device(kind.typeflag(), *major, *minor), 0, None, path)
            }
            NodeKind::File { size, source: FileSource::Bytes(content) } => {
                if content.len() as u64 != *size {
                    return Err(Error::SizeMismatch {
                        what: format!("content of layer entry `{path}`"),
                        expected: *size,
                        found: content.len() as u64,
                    });
                }
                bytes = Some(content);
                (Kind::File, *size, None, path)
            }
            NodeKind::File { source: FileSource::Layer { layer }, .. } => {
                return Err(Error::ContentInLayer { path: path.to_owned(), layer: layer.clone() })
            }
            NodeKind::File {
                size,
                source: FileSource::Path(file_path) | FileSource::Spooled { path: file_path, .. },
            } => {
                let file = open_source(file_path)?;
                let found =
                    file.metadata().map_err(|e| Error::io("reading metadata of", file_path, e))?.len();
                if found != *size {
                    return Err(Error::FileChanged { path: file_path.clone(), expected: *size, found });
                }
                source = Some((file, file_path.clone()));
                (Kind::File, *size, None, path)
            }
        };

        let header = Header {
            name,
            kind: tar_kind,
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            size,
            mtime: self.mtime,
            link,
        };
        if let Err(err) = self.write_entry(&header, source, bytes) {
            self.out = None;
            return Err(err);
        }

        match tar_kind {
            Kind::Dir => {
                self.dirs.insert(path.to_owned());
            }
            Kind::File | Kind::Symlink | Kind::Hardlink | Kind::Device(..) => {
                self.linkable.insert(path.to_owned());
            }
        }
        self.previous = Some(path.to_owned());
        Ok(())
    }

    /// Ends the tar stream and the compressed stream and stores the blob.
    pub fn finish(mut self) -> Result<Layer> {
        let Some(mut out) = self.out.take() else {
            return Err(Error::Poisoned);
        };
        let write_error = |e| Error::io("writing", "layer blob", e);
        tarball::write_end(&mut out).map_err(write_error)?;
        let (diff_id, _, encoder) = out.finish();
        let blob = encoder.finish().map_err(write_error)?;
        let (digest, size) = blob.finish()?;
        // Hashed as written: an archive of it need not read it again.
        crate::store::mark_whole(&self.store.path(&digest));
        Ok(Layer { digest, diff_id, size, media_type: self.compression.layer_media_type() })
    }

    fn check(&self, path: &str, node: &Node) -> Result<()> {
        check_path(path)?;
        if node.mode & !0o7777 != 0 {
            return Err(Error::InvalidMode { path: path.to_owned(), mode: node.mode });
        }
        if let Some(previous) = &self.previous {
            if path.as_bytes() <= previous.as_bytes() {
                return Err(Error::OutOfOrder { previous: previous.clone(), path: path.to_owned() });
            }
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            if !self.dirs.contains(parent) {
                return Err(Error::MissingParent { path: path.to_owned(), parent: parent.to_owned() });
            }
        }
        let name = path.rsplit_once('/').map_or(path, |(_, name)| name);
        let invalid = |reason| Err(Error::InvalidPath { path: path.to_owned(), reason });
        match &node.kind {
            NodeKind::Symlink { target } => {
                let reason = if target.is_empty() {
                    Some("the target is empty")
                } else if target.contains('\0') {
                    Some("the target contains a NUL byte")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(Error::BadSymlink { path: path.to_owned(), reason });
                }
            }
            NodeKind::Hardlink { target } => {
                if !self.linkable.contains(target.as_str()) {
                    return Err(Error::BadHardlink { path: path.to_owned(), target: target.clone() });
                }
            }
            NodeKind::Whiteout => {
                if name == OPAQUE_MARKER
                    || name.len() <= WHITEOUT_PREFIX.len()
                    || !name.starts_with(WHITEOUT_PREFIX)
                {
                    return invalid("a whiteout's name is `.wh.` and the name it hides");
                }
            }
            NodeKind::Opaque => {
                if name != OPAQUE_MARKER {
                    return invalid("an opaque marker's name is `.wh..wh..opq`");
                }
            }
            NodeKind::Dir | NodeKind::File { .. } | NodeKind::Device { .. } => {}
        }
        Ok(())
    }

    fn write_entry(
        &mut self,
        header: &Header<'_>,
        source: Option<(File, PathBuf)>,
        bytes: Option<&[u8]>,
    ) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(Error::Poisoned);
        };
        let entry_path = || PathBuf::from(header.name);
        tarball::write_header(out, header).map_err(|e| Error::io("writing layer entry", entry_path(), e))?;
        if let Some(mut content) = bytes {
            // Through the same 128 KiB chunks as a file: the compressed bytes
            // depend on how the input is split, not only on the content.
            tarball::copy_exact(&mut content, out, header.size)
                .map_err(|e| Error::io("writing layer entry", entry_path(), e))?;
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

/// Opens a layer's source file for reading without blocking: a FIFO,
/// device or directory put in its place since it was planned is
/// [`Error::Source`]; a file that cannot be opened (gone, say) is
/// [`Error::Io`] of "opening".
pub(crate) fn open_source(path: &std::path::Path) -> Result<File> {
    forge_input::open_regular(path).map_err(|e| match e {
        forge_input::InputError::Io(io) => Error::io("opening", path, io.source),
        other => Error::Source(other),
    })
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
        wrong.node.kind = NodeKind::File { size: 4, source: FileSource::Bytes(b"abc".to_vec()) };
        assert!(err(&mut b, wrong).contains("descriptor says 4"));
        b.append(Entry::bytes("etc/x", 0o644, "abc")).unwrap();
        b.append(Entry::hardlink("etc/y", 0o644, "etc/x")).unwrap();
        b.finish().unwrap();
    }

    #[test]
    fn content_in_memory_and_on_disk_give_the_same_blob() {
        // Larger than one 128 KiB chunk: gzip's output depends on how the
        // input is split, so both sources must be fed alike.
        let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (dir, store, mut from_bytes) = builder();
        from_bytes.append(Entry::bytes("f", 0o644, content.clone())).unwrap();
        let file = dir.path().join("src");
        std::fs::write(&file, &content).unwrap();
        let mut from_file = LayerBuilder::new(&store, LayerOptions { mtime: 1_700_000_000 }).unwrap();
        from_file.append(Entry::file("f", 0o644, content.len() as u64, &file)).unwrap();
        assert_eq!(from_bytes.finish().unwrap(), from_file.finish().unwrap());
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
