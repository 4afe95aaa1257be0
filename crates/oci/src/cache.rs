//! The layer cache seam: finished layers stored and found by a key of
//! their *content*.
//!
//! A [`LayerKey`] is the sha256 of everything that decides a layer's bytes
//! and its place in an image: every entry's relative path, kind, mode,
//! owner and link target, every file's content digest, the instruction
//! that made the layer, the diff IDs of the layers below it, the mtime
//! (`SOURCE_DATE_EPOCH`) and the compression. Nothing of the machine goes
//! in (no absolute path, inode, device or file time), so the same inputs
//! give the same key in any checkout on any machine, and a shared cache
//! (a registry, next) can serve it.
//!
//! Reading every file to hash it would cost as much as building the layer,
//! so [`FileDigests`] keeps a *local* shortcut: a file's stat fingerprint
//! (path, size, mtime, ctime, inode, device) maps to its content digest in
//! the store's key-value cache, and an unchanged file is not read again.
//! Only files of [`KEPT_FROM`] bytes and more are kept there: a smaller
//! one is read as fast as its cache entry would be, and an entry per
//! source file made a cold build of 200 plugins create 3,500 files (the
//! process still remembers every digest it learnt, by fingerprint).
//! The fingerprint never reaches a key.
//!
//! [`BlobStore`] implements [`LayerCache`] with its key-value cache; a hit
//! is only used while the layer's blob is still in the store.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::compression::Compression;
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::layer::{Layer, LayerOptions};
use crate::store::BlobStore;
use crate::tree::{FileSource, NodeKind, Tree};

/// Finished layers by the key of their inputs.
pub trait LayerCache: Sync {
    /// The layer cached under `key`, its blob present in the store the
    /// build writes to; `None` for a miss (a cache only saves work, so an
    /// unreadable entry is a miss too).
    fn get(&self, key: &LayerKey) -> Option<Layer>;

    /// Remembers `layer` (whose blob is in the store) under `key`.
    fn put(&self, key: &LayerKey, layer: &Layer) -> Result<()>;
}

/// The content key of a layer; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerKey(Digest);

/// What goes into a [`LayerKey`] besides the tree.
#[derive(Debug, Clone, Copy)]
pub struct KeyInputs<'a> {
    /// The instruction that makes the layer, as written (`COPY src /app`).
    pub instruction: &'a str,
    /// The diff IDs of the layers below, in order.
    pub parents: &'a [Digest],
    /// The layer's options (the mtime).
    pub options: LayerOptions,
    /// The layer's compression.
    pub compression: Compression,
}

/// The version of [`LayerKey::new`]'s key text. v2: layers of 128 MiB and
/// more are gzip in blocks; v3: their incompressible blocks are stored.
/// The key of a RUN's layer is made before its size is known, so the
/// version, not the content size, keeps a layer compressed by an older
/// encoder from being taken for one this one writes.
const LAYER_KEY_VERSION: &[u8] = b"forge-layer-key-v3";
/// The version of [`LayerKey::of_resolution`]'s key text (v3: as above).
const INSTALL_KEY_VERSION: &[u8] = b"forge-install-key-v3";

impl LayerKey {
    /// The key of `tree` with `inputs`; `content` gives the digest of a
    /// file on disk (see [`FileDigests`]); spooled and in-memory content
    /// has its digest already.
    pub fn new(
        tree: &Tree,
        inputs: &KeyInputs<'_>,
        content: &mut dyn FnMut(&Path, u64) -> Result<Digest>,
    ) -> Result<LayerKey> {
        let mut h = Sha256::new();
        let field = |h: &mut Sha256, bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(&mut h, LAYER_KEY_VERSION);
        field(&mut h, inputs.instruction.as_bytes());
        for parent in inputs.parents {
            field(&mut h, parent.to_string().as_bytes());
        }
        field(&mut h, b"end of parents");
        field(&mut h, inputs.options.mtime.to_string().as_bytes());
        field(&mut h, inputs.compression.key_name(tree.content_bytes()).as_bytes());
        for (path, node) in tree.entries() {
            field(&mut h, path.as_bytes());
            field(&mut h, format!("{:o} {} {}", node.mode, node.uid, node.gid).as_bytes());
            match &node.kind {
                NodeKind::Dir => field(&mut h, b"dir"),
                NodeKind::File { size, source } => {
                    let digest = match source {
                        FileSource::Path(path) => content(path, *size)?,
                        FileSource::Bytes(bytes) => Digest::of(bytes),
                        FileSource::Spooled { digest, .. } => digest.clone(),
                        FileSource::Layer { layer } => {
                            return Err(Error::ContentInLayer { path: path.to_owned(), layer: layer.clone() })
                        }
                    };
                    field(&mut h, format!("file {size} {digest}").as_bytes());
                }
                NodeKind::Symlink { target } => {
                    field(&mut h, b"symlink");
                    field(&mut h, target.as_bytes());
                }
                NodeKind::Hardlink { target } => {
                    field(&mut h, b"hardlink");
                    field(&mut h, target.as_bytes());
                }
                NodeKind::Whiteout => field(&mut h, b"whiteout"),
                NodeKind::Opaque => field(&mut h, b"opaque"),
                NodeKind::Device { kind, major, minor } => {
                    field(&mut h, format!("device {} {major} {minor}", kind.name()).as_bytes());
                }
            }
        }
        Ok(LayerKey(Digest::from_hasher(h)))
    }

    /// The key of a layer a native installer makes: `resolution` is the
    /// installer's canonical text of everything that decides the layer's
    /// content (see forge-builder's `install` module). Neither the parents
    /// nor the instruction's spelling are part of it (`inputs.parents` and
    /// `inputs.instruction` are ignored): the same packages over the same
    /// base make one layer whatever was copied before and however the
    /// `RUN` was written.
    pub fn of_resolution(resolution: &str, inputs: &KeyInputs<'_>) -> LayerKey {
        let mut h = Sha256::new();
        for bytes in [
            INSTALL_KEY_VERSION,
            inputs.options.mtime.to_string().as_bytes(),
            inputs.compression.name().as_bytes(),
            resolution.as_bytes(),
        ] {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        LayerKey(Digest::from_hasher(h))
    }

    /// The digest the key is.
    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The key that is `digest` (as a cache that stores keys reads them back).
    pub fn from_digest(digest: Digest) -> LayerKey {
        LayerKey(digest)
    }
}

impl std::fmt::Display for LayerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "layer:{}", self.0)
    }
}

impl LayerCache for BlobStore {
    fn get(&self, key: &LayerKey) -> Option<Layer> {
        let text = self.cache_get(&key.to_string())?;
        let layer: Layer = serde_json::from_str(&text).ok()?;
        // Verified before it is trusted unread: a blob a power loss tore is
        // a miss (and removed), so the layer is built again.
        (self.size(&layer.digest).ok()? == layer.size && self.verify(&layer.digest).ok()?).then_some(layer)
    }

    fn put(&self, key: &LayerKey, layer: &Layer) -> Result<()> {
        let text = serde_json::to_string(layer).map_err(|e| Error::json("layer cache entry", e))?;
        self.cache_put(&key.to_string(), &text)
    }
}

/// The size from which [`FileDigests::prefetch`] reads a file ahead.
const PREFETCHED: u64 = 1 << 20;

/// The size from which a file's digest is kept in the store's cache; see
/// the [module docs](self).
pub const KEPT_FROM: u64 = 64 << 10;

/// Content digests of files on disk, with the local stat-fingerprint
/// shortcut of the [module docs](self), kept in `store`'s key-value cache.
#[derive(Debug, Clone, Copy)]
pub struct FileDigests<'a> {
    store: &'a BlobStore,
}

impl<'a> FileDigests<'a> {
    /// Digests remembered in `store`.
    pub fn new(store: &'a BlobStore) -> FileDigests<'a> {
        FileDigests { store }
    }

    /// Reads the digests of the large files of `tree` (1 MiB and more) on
    /// every core of the caller's pool, so that the [`FileDigests::digest`]
    /// calls of [`LayerKey::new`] (one file after the other) find them
    /// cached: a cold layer of large files (model weights) is hashed in a
    /// fraction of the time one core takes. An error is left for that call
    /// to report.
    pub fn prefetch(&self, tree: &Tree) {
        let large: Vec<(&Path, u64)> = tree
            .entries()
            .filter_map(|(_, node)| match &node.kind {
                NodeKind::File { size, source: FileSource::Path(path) } if *size >= PREFETCHED => {
                    Some((path.as_path(), *size))
                }
                _ => None,
            })
            .collect();
        if large.len() > 1 {
            large.par_iter().for_each(|(path, size)| drop(self.digest(path, *size)));
        }
    }

    /// The digest of the file at `path`, which must have `size` bytes:
    /// from the cache while its fingerprint is unchanged, else read.
    pub fn digest(&self, path: &Path, size: u64) -> Result<Digest> {
        let fingerprint = |meta: &std::fs::Metadata| {
            format!(
                "file-digest:{}\0{}\0{}.{}\0{}.{}\0{}\0{}",
                path.display(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
                meta.dev(),
                meta.ino()
            )
        };
        // A regular file (not a link) this process has seen with the same
        // fingerprint: one `lstat`, not an open and a read of the cache
        // (the SDK every plugin copies is fingerprinted once per run).
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if meta.file_type().is_file() && meta.len() == size {
                if let Some(digest) = SEEN.lock().ok().and_then(|seen| seen.get(&fingerprint(&meta)).cloned())
                {
                    return Ok(digest);
                }
            }
        }
        // Never blocks: a FIFO swapped in since the plan is refused, and the
        // fingerprint is of the file opened.
        let file = crate::layer::open_source(path)?;
        let meta = file.metadata().map_err(|e| Error::io("reading metadata of", path, e))?;
        if meta.len() != size {
            return Err(Error::FileChanged { path: path.to_path_buf(), expected: size, found: meta.len() });
        }
        let fingerprint = fingerprint(&meta);
        let remember = |digest: &Digest| {
            if let Ok(mut seen) = SEEN.lock() {
                seen.insert(fingerprint.clone(), digest.clone());
            }
        };
        let kept = size >= KEPT_FROM;
        if let Some(digest) =
            self.store.cache_get(&fingerprint).filter(|_| kept).and_then(|t| Digest::parse(&t).ok())
        {
            remember(&digest);
            return Ok(digest);
        }
        let mut reader = HashingReader::new(io::BufReader::with_capacity(128 << 10, file));
        io::copy(&mut reader, &mut io::sink()).map_err(|e| Error::io("reading", path, e))?;
        let (digest, found, _) = reader.finish();
        if found != size {
            return Err(Error::FileChanged { path: path.to_path_buf(), expected: size, found });
        }
        if kept {
            self.store.cache_put(&fingerprint, &digest.to_string())?;
        }
        remember(&digest);
        Ok(digest)
    }
}

/// File digests by fingerprint, known to this process (in front of the
/// store's cache, which is a file per entry).
static SEEN: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, Digest>>> =
    std::sync::LazyLock::new(Default::default);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Node;

    fn key(tree: &Tree, instruction: &str, parents: &[Digest]) -> LayerKey {
        key_with(tree, instruction, parents, Compression::Gzip)
    }

    fn key_with(tree: &Tree, instruction: &str, parents: &[Digest], compression: Compression) -> LayerKey {
        let inputs = KeyInputs { instruction, parents, options: LayerOptions { mtime: 7 }, compression };
        LayerKey::new(tree, &inputs, &mut |path, _| Ok(Digest::of(&std::fs::read(path).unwrap()))).unwrap()
    }

    #[test]
    fn gzip_and_zstd_layers_never_share_a_key() {
        let mut tree = Tree::new();
        tree.insert("app/f", Node::bytes(0o644, "same"));
        let gzip = key_with(&tree, "COPY f /app/f", &[], Compression::Gzip);
        let zstd = key_with(&tree, "COPY f /app/f", &[], Compression::Zstd);
        assert_ne!(gzip, zstd);
        let inputs = |compression| KeyInputs {
            instruction: "RUN pip install six",
            parents: &[],
            options: LayerOptions { mtime: 7 },
            compression,
        };
        assert_ne!(
            LayerKey::of_resolution("six==1.16.0", &inputs(Compression::Gzip)),
            LayerKey::of_resolution("six==1.16.0", &inputs(Compression::Zstd))
        );
    }

    #[test]
    fn keys_follow_content_not_location() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            std::fs::write(dir.path().join(name), "same").unwrap();
        }
        let tree_at = |name: &str| {
            let mut tree = Tree::new();
            tree.insert("app/f", Node::file(0o644, 4, dir.path().join(name)));
            tree
        };
        let base = key(&tree_at("a"), "COPY f /app/f", &[]);
        assert_eq!(base, key(&tree_at("b"), "COPY f /app/f", &[]));
        let mut bytes = Tree::new();
        bytes.insert("app/f", Node::bytes(0o644, "same"));
        assert_eq!(base, key(&bytes, "COPY f /app/f", &[]));
        assert_ne!(base, key(&tree_at("a"), "COPY g /app/f", &[]));
        assert_ne!(base, key(&tree_at("a"), "COPY f /app/f", &[Digest::of(b"base")]));
        let mut other = tree_at("a");
        other.insert("app/f", Node::file(0o755, 4, dir.path().join("a")));
        assert_ne!(base, key(&other, "COPY f /app/f", &[]));
    }

    #[test]
    fn the_store_caches_layers_and_file_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "content").unwrap();
        let digests = FileDigests::new(&store);
        assert_eq!(digests.digest(&file, 7).unwrap(), Digest::of(b"content"));
        // Cached: the same answer without reading (the fingerprint is unchanged).
        assert_eq!(digests.digest(&file, 7).unwrap(), Digest::of(b"content"));
        std::fs::write(&file, "changed").unwrap();
        // Same size; a file system's mtime may be coarser than two writes apart.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(10);
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap();
        assert_eq!(digests.digest(&file, 7).unwrap(), Digest::of(b"changed"));
        assert!(matches!(digests.digest(&file, 8), Err(Error::FileChanged { .. })));
    }

    #[test]
    fn only_large_files_leave_their_digest_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
        let entries = || std::fs::read_dir(store.root().join("cache")).map_or(0, |d| d.count());
        let (small, large) = (dir.path().join("small"), dir.path().join("large"));
        std::fs::write(&small, vec![b's'; KEPT_FROM as usize - 1]).unwrap();
        std::fs::write(&large, vec![b'l'; KEPT_FROM as usize]).unwrap();
        let digests = FileDigests::new(&store);
        assert_eq!(
            digests.digest(&small, KEPT_FROM - 1).unwrap(),
            Digest::of(&vec![b's'; KEPT_FROM as usize - 1])
        );
        assert_eq!(entries(), 0);
        assert_eq!(digests.digest(&large, KEPT_FROM).unwrap(), Digest::of(&vec![b'l'; KEPT_FROM as usize]));
        assert_eq!(entries(), 1);
    }
}
