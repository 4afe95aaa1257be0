//! A content-addressed blob store that is an OCI image layout.
//!
//! The directory is laid out exactly as the OCI image-layout spec says, so
//! that `skopeo copy oci:DIR:TAG ...` and `umoci unpack --image DIR:TAG` read
//! it as it is:
//!
//! ```text
//! DIR/oci-layout            {"imageLayoutVersion":"1.0.0"}
//! DIR/index.json            the refs (tags) of this layout
//! DIR/blobs/sha256/<hex>    every blob, named by the sha256 of its bytes
//! DIR/cache/<hex>           our own keyed cache (see below); tools ignore it
//! ```
//!
//! Writes are atomic: a blob is written to a temp file inside `blobs/` while
//! it is hashed, and renamed to `blobs/sha256/<hex>` only once it is
//! complete, so a killed run or an error never leaves a half-written blob
//! under its final name. (Temp files are `.tmp-<pid>-…`; a crash may leave
//! one behind, never a wrong blob, and the next store opened removes it
//! once its process is gone: see [`crate::temp`].) `index.json` and cache
//! entries are replaced the same way. Reads verify: [`BlobStore::open`]
//! hashes while reading and fails at the end if the content does not match
//! its name.
//!
//! **Durability** (see [`fsync_each`]): files are not fsynced one by one
//! (`PLUGIN_FORGE_FSYNC=1` does), as `docker save`, buildah and cargo do
//! not: a kill cannot tear a renamed file, only a power loss or a kernel
//! crash can, and the store is a cache of builds. Such a blob is never
//! trusted: every reader verifies the digest ([`BlobStore::open`],
//! [`BlobStore::read_verified`], the layers' readers, archives), a layer
//! cache hit is verified once per process ([`BlobStore::verify`]) and a
//! damaged blob is removed there, so the layer is built again, and writing
//! a blob replaces what is under its name.
//!
//! The **key-value cache** maps a caller-chosen key to a short string. It
//! backs the store's [`LayerCache`](crate::LayerCache) (content keys to
//! finished layers, see [`crate::cache`]), the stat shortcut to file content
//! digests, and the export stamps. An unreadable entry is just a miss.
//!
//! Blobs need no locking: two processes may write the same blob
//! concurrently (the rename makes that safe, both write the same bytes).
//! [`BlobStore::set_ref`] holds an exclusive lock on `index.lock` for its
//! read-modify-write of `index.json`, so concurrent runs never lose a ref.
//! Every open store holds a shared lock on `store.lock`; [`gc`] takes it
//! exclusively (without waiting), so it never removes a blob a running
//! build has written but not yet given a ref.

use std::collections::BTreeSet;

use forge_input::StatStamp;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oci_spec::image::{Descriptor, ImageIndex, MediaType, ANNOTATION_REF_NAME};
use tempfile::NamedTempFile;

use crate::compression::{Compression, UncompressedReader};
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::index_file::{self, CachedIndex, IndexSnapshot};
use crate::temp;

/// Larger JSON blobs than this are refused by [`BlobStore::read_verified`]: a
/// manifest or config is a few kilobytes, and a hostile file must not make us
/// allocate gigabytes.
pub const MAX_JSON_SIZE: u64 = 64 << 20;

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const LAYOUT_VERSION: &str = "1.0.0";
const BUFFER_SIZE: usize = 128 << 10;

/// An OCI image layout directory used as a blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    lease: Arc<Lease>,
}

/// What the clones of one open store share.
#[derive(Debug, Default)]
struct Lease {
    /// A shared lock on `store.lock` for as long as the store is open, so
    /// that [`gc`] (which takes it exclusively) never runs beside a build.
    _lock: Option<File>,
    /// The last version of `index.json` read or written.
    index: Mutex<Option<CachedIndex>>,
    /// What its blobs' contents say, learnt once.
    facts: Facts,
}

/// The file whose lock says who uses the store: shared by every open
/// store, exclusive for [`gc`].
const STORE_LOCK: &str = "store.lock";

impl BlobStore {
    /// Opens the layout at `dir`, creating the directory, `oci-layout`,
    /// `index.json` and `blobs/sha256/` if they are missing.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<BlobStore> {
        let root = dir.as_ref().to_path_buf();
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| Error::io("creating", &blobs, e))?;
        let lock = lock_store(&root, false)?;
        let store = BlobStore { root, lease: Arc::new(Lease { _lock: Some(lock), ..Lease::default() }) };
        // What killed runs left (their pid no longer runs) goes; a live
        // build's temporaries are never touched.
        for dir in store.temp_dirs() {
            temp::remove(&dir, temp::Scope::Stale);
        }

        let layout = store.root.join(LAYOUT_FILE);
        match fs::read(&layout) {
            Ok(bytes) => check_layout_file(&layout, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let text = format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#);
                write_atomic(&store.root, &layout, text.as_bytes())?;
            }
            Err(e) => return Err(Error::io("reading", layout, e)),
        }
        let index = store.root.join(INDEX_FILE);
        if !index.exists() {
            store.write_index(&empty_index()?)?;
        }
        Ok(store)
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` is (or would be) stored.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Whether the blob is in the store (its content is not checked).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The size of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.path(digest);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound { digest: digest.clone(), path })
            }
            Err(e) => Err(Error::io("reading metadata of", path, e)),
        }
    }

    /// Stores `bytes` as a blob. A blob file that holds these bytes
    /// already is kept (see [`holds`]).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::of(bytes);
        let path = self.path(&digest);
        if !holds(&path, bytes) {
            write_atomic(&self.root.join("blobs"), &path, bytes)?;
        }
        Ok((digest, bytes.len() as u64))
    }

    /// Stores `value` as a blob of canonical JSON (see
    /// [`canonical_json`](crate::json::canonical_json)); `what` names it in
    /// errors (`"image manifest"`).
    pub fn put_json<T: serde::Serialize>(&self, value: &T, what: &str) -> Result<(Digest, u64)> {
        self.put_bytes(&crate::json::canonical_json(value, what)?)
    }

    /// A writer for a new blob; see [`BlobWriter`].
    pub fn writer(&self) -> Result<BlobWriter> {
        let dir = self.root.join("blobs");
        let file = temp_file_in(&dir)?;
        Ok(BlobWriter {
            file: HashingWriter::new(BufWriter::with_capacity(BUFFER_SIZE, file)),
            blobs_dir: self.blobs_dir(),
        })
    }

    /// Opens a blob for reading; the reader fails at the end if the content
    /// does not hash to `digest`.
    pub fn open(&self, digest: &Digest) -> Result<VerifyingReader> {
        let path = self.path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobNotFound { digest: digest.clone(), path })
            }
            Err(e) => return Err(Error::io("opening", path, e)),
        };
        Ok(VerifyingReader::new(BufReader::with_capacity(BUFFER_SIZE, file), digest.clone()))
    }

    /// Opens a layer blob for reading its uncompressed content, with the
    /// compression its media type names: the one way to read a layer. The
    /// reader hashes the uncompressed stream (the diff ID) and verifies the
    /// blob's own digest once read to the end ([`UncompressedReader::finish`]).
    /// Media types that are not layers, or whose compression this crate
    /// cannot read, are [`Error::UnsupportedLayer`].
    pub fn open_uncompressed(&self, layer: &Descriptor) -> Result<UncompressedReader> {
        let digest = Digest::from_descriptor(layer)?;
        let compression =
            Compression::of_layer(layer.media_type()).filter(|c| c.is_readable()).ok_or_else(|| {
                Error::UnsupportedLayer { digest: digest.clone(), media_type: layer.media_type().to_string() }
            })?;
        self.open_uncompressed_as(&digest, compression)
    }

    /// Like [`BlobStore::open_uncompressed`], for a blob whose compression
    /// is known otherwise (sniffed from its content, say).
    pub fn open_uncompressed_as(
        &self,
        digest: &Digest,
        compression: Compression,
    ) -> Result<UncompressedReader> {
        let blob = self.open(digest)?;
        UncompressedReader::new(blob, compression).ok_or_else(|| Error::UnsupportedLayer {
            digest: digest.clone(),
            media_type: format!("{compression:?} compression"),
        })
    }

    /// The compression of a stored blob, told by its first bytes.
    pub fn sniff_compression(&self, digest: &Digest) -> Result<Compression> {
        let path = self.path(digest);
        let mut file = File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
        let mut magic = [0u8; 4];
        let n = crate::compression::read_up_to(&mut file, &mut magic)
            .map_err(|e| Error::io("reading", &path, e))?;
        Ok(Compression::sniff(&magic[..n]))
    }

    /// Whether the stored blob hashes to `digest`, read once per process
    /// while its file is unchanged (same inode, size, mtime and ctime); a
    /// blob that does not is removed, damaged (a power loss before it
    /// reached the disk), so that it is written again. For content trusted
    /// without being read (a layer cache hit).
    pub fn verify(&self, digest: &Digest) -> Result<bool> {
        let path = self.path(digest);
        if !path.is_file() {
            return Ok(false);
        }
        if known_whole(&path) {
            return Ok(true);
        }
        match self.open(digest)?.finish() {
            Ok(_) => {
                mark_whole(&path);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                fs::remove_file(&path).map_err(|e| Error::io("removing the damaged blob", &path, e))?;
                Ok(false)
            }
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// Reads a small blob (a config, a manifest) whole and verifies it.
    /// Blobs over [`MAX_JSON_SIZE`] are refused.
    pub fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        let size = self.size(digest)?;
        if size > MAX_JSON_SIZE {
            return Err(Error::TooLarge { what: path.display().to_string(), size, limit: MAX_JSON_SIZE });
        }
        let bytes = fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
        let found = Digest::of(&bytes);
        if &found != digest {
            return Err(Error::DigestMismatch {
                what: path.display().to_string(),
                expected: digest.clone(),
                found,
            });
        }
        Ok(bytes)
    }

    /// The cached value for `key`, if any. Any problem reading it (missing,
    /// unreadable, not UTF-8) is a miss: the cache only saves work.
    pub fn cache_get(&self, key: &str) -> Option<String> {
        fs::read_to_string(self.cache_path(key)).ok()
    }

    /// Stores `value` under `key`, atomically replacing an older value
    /// (an entry that holds `value` already is kept, see [`holds`]).
    pub fn cache_put(&self, key: &str, value: &str) -> Result<()> {
        let path = self.cache_path(key);
        if holds(&path, value.as_bytes()) {
            return Ok(());
        }
        let dir = self.root.join("cache");
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        write_atomic(&dir, &path, value.as_bytes())
    }

    /// The layout's `index.json`.
    pub fn read_index(&self) -> Result<ImageIndex> {
        Ok(self.index()?.index().clone())
    }

    /// The current version of `index.json`, parsed once per version (see
    /// [`crate::index_file`]).
    pub(crate) fn index(&self) -> Result<Arc<IndexSnapshot>> {
        let path = self.root.join(INDEX_FILE);
        let known = self.lease.index.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let (Some(known), Some(stamp)) = (&known, StatStamp::stat(&path)) {
            if known.is_current(&stamp) {
                return Ok(known.snapshot.clone());
            }
        }
        let (bytes, stamp, seen) = index_file::read(&path)?;
        let snapshot = index_file::snapshot_of(&path, bytes, known.as_ref())?;
        self.remember_index(CachedIndex { snapshot: snapshot.clone(), stamp, seen });
        Ok(snapshot)
    }

    fn remember_index(&self, cached: CachedIndex) {
        *self.lease.index.lock().unwrap_or_else(|e| e.into_inner()) = Some(cached);
    }

    /// What the blobs' contents say, learnt once by this open store.
    pub(crate) fn facts(&self) -> &Facts {
        &self.lease.facts
    }

    /// Points the ref `name` (`org.opencontainers.image.ref.name`) at
    /// `manifest`, replacing any entry with the same ref name; other entries
    /// keep their order. `index.json` is replaced atomically, and the
    /// read-modify-write holds an exclusive lock on `index.lock`, so that
    /// concurrent processes (two `cargo xtask` runs) never lose a ref.
    pub fn set_ref(&self, name: &str, manifest: &Descriptor) -> Result<()> {
        self.update_ref(name, |_| Ok(manifest.clone()))
    }

    /// Points the ref `name` at the descriptor `next` makes from the one
    /// it points at now, as [`BlobStore::set_ref`] does, with `index.lock`
    /// held while `next` runs (it may write blobs): concurrent updates of
    /// one ref see each other's result.
    pub fn update_ref(
        &self,
        name: &str,
        next: impl FnOnce(Option<&Descriptor>) -> Result<Descriptor>,
    ) -> Result<()> {
        check_ref_name(name)?;
        self.update_index(|index| {
            let manifests = index.manifests();
            let at = index.position(name);
            let mut entry = next(at.map(|at| &manifests[at]))?;
            let mut annotations = entry.annotations().clone().unwrap_or_default();
            annotations.insert(ANNOTATION_REF_NAME.to_owned(), name.to_owned());
            entry.set_annotations(Some(annotations));
            let Some(at) = at else {
                let mut changed = manifests.to_vec();
                changed.push(entry);
                return Ok(Some(changed));
            };
            let later = |(i, d): &(usize, &Descriptor)| *i > at && ref_name(d) == Some(name);
            if manifests[at] == entry && !manifests.iter().enumerate().any(|e| later(&e)) {
                return Ok(None);
            }
            let mut changed = Vec::with_capacity(manifests.len());
            for (i, d) in manifests.iter().enumerate() {
                if i == at {
                    changed.push(entry.clone());
                } else if !later(&(i, d)) {
                    changed.push(d.clone());
                }
            }
            Ok(Some(changed))
        })
    }

    /// Changes the entries of `index.json` to what `change` returns from
    /// its current version (`None`: unchanged, nothing is written),
    /// holding an exclusive lock on `index.lock` for the
    /// read-modify-write (see [`BlobStore::set_ref`]); `index.json` is
    /// replaced atomically. The file is read whatever this store knows,
    /// so the change starts from what the last writer left.
    pub(crate) fn update_index(
        &self,
        change: impl FnOnce(&IndexSnapshot) -> Result<Option<Vec<Descriptor>>>,
    ) -> Result<()> {
        let lock_path = self.root.join("index.lock");
        let lock = open_lock_file(&lock_path)?;
        // Released when `lock` is dropped at the end of this function.
        lock.lock().map_err(|e| Error::io("locking", &lock_path, e))?;
        let path = self.root.join(INDEX_FILE);
        let known = self.lease.index.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (bytes, stamp, seen) = index_file::read(&path)?;
        let current = index_file::snapshot_of(&path, bytes, known.as_ref())?;
        let Some(manifests) = change(&current)? else {
            self.remember_index(CachedIndex { snapshot: current, stamp, seen });
            return Ok(());
        };
        let next = current.with_manifests(manifests)?;
        write_atomic(&self.root, &path, next.bytes())?;
        // Still ours: every writer holds the lock.
        let meta = fs::metadata(&path).map_err(|e| Error::io("reading metadata of", &path, e))?;
        let seen = std::time::SystemTime::now();
        self.remember_index(CachedIndex { snapshot: Arc::new(next), stamp: StatStamp::of(&meta), seen });
        Ok(())
    }

    /// The manifest descriptor the ref `name` points at.
    pub fn resolve_ref(&self, name: &str) -> Result<Option<Descriptor>> {
        let index = self.index()?;
        Ok(index.position(name).map(|at| index.manifests()[at].clone()))
    }

    /// Every ref of the layout with its descriptor, in `index.json` order.
    pub fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        let index = self.index()?;
        Ok(index
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(|name| (name.to_owned(), d.clone())))
            .collect())
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = crate::json::canonical_json(index, INDEX_FILE)?;
        write_atomic(&self.root, &self.root.join(INDEX_FILE), &bytes)
    }

    /// The directories the store makes temporaries in.
    fn temp_dirs(&self) -> [PathBuf; 3] {
        [self.root.clone(), self.root.join("blobs"), self.root.join("cache")]
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        self.root.join("cache").join(Digest::of(key.as_bytes()).hex())
    }
}

/// Blob files this process found whole (hashed to their name: read by
/// [`BlobStore::verify`] or into an archive, or hashed as they were
/// written), by path and [`StatStamp`]: a file changed since is not.
static VERIFIED: Mutex<BTreeSet<(PathBuf, StatStamp)>> = Mutex::new(BTreeSet::new());

/// Whether the blob file at `path`, as it is now, is one this process
/// found whole ([`mark_whole`]).
pub(crate) fn known_whole(path: &Path) -> bool {
    StatStamp::stat(path)
        .is_some_and(|stamp| VERIFIED.lock().is_ok_and(|set| set.contains(&(path.to_path_buf(), stamp))))
}

/// Records the blob file at `path`, as it is now, as found whole: its
/// content was just hashed to its name.
pub(crate) fn mark_whole(path: &Path) {
    if let (Some(stamp), Ok(mut set)) = (StatStamp::stat(path), VERIFIED.lock()) {
        set.insert((path.to_path_buf(), stamp));
    }
}

/// Whether the file at `path` holds `bytes` (a small blob, a cache
/// entry) already, so that writing them would change nothing: a write
/// makes a file and frees the one it replaces, and on ext4 without a
/// journal every file made scans past the inodes freed in the last
/// seconds, so a run that rewrote what it found made each new file cost
/// more (a run of n plugins rewrote the empty config and `index.json`
/// O(n) times).
fn holds(path: &Path, bytes: &[u8]) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() == bytes.len() as u64)
        && fs::read(path).is_ok_and(|found| found == bytes)
}

/// The `org.opencontainers.image.ref.name` annotation of a descriptor.
pub fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor.annotations().as_ref()?.get(ANNOTATION_REF_NAME).map(String::as_str)
}

pub(crate) fn empty_index() -> Result<ImageIndex> {
    oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::<Descriptor>::new())
        .build()
        .map_err(|source| Error::Spec { what: "image index", source })
}

fn check_ref_name(name: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidRepoTag { tag: name.to_owned(), reason };
    if name.is_empty() {
        return Err(invalid("a ref name cannot be empty"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("a ref name cannot contain white space or control characters"));
    }
    Ok(())
}

pub(crate) fn check_layout_file(path: &Path, bytes: &[u8]) -> Result<()> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let layout: Layout =
        serde_json::from_slice(bytes).map_err(|e| Error::json(path.display().to_string(), e))?;
    if layout.image_layout_version != LAYOUT_VERSION {
        return Err(Error::InvalidDocument {
            what: path.display().to_string(),
            reason: format!(
                "image layout version {:?} is not supported (only {LAYOUT_VERSION})",
                layout.image_layout_version
            ),
        });
    }
    Ok(())
}

/// What [`gc`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Blobs no ref reaches, removed.
    pub blobs: u64,
    /// Their size in bytes.
    pub blob_bytes: u64,
    /// Temporaries removed (temp files, spool directories).
    pub temporaries: u64,
    /// Their size in bytes.
    pub temporary_bytes: u64,
}

/// Removes every blob of the store at `dir` that no ref of `index.json`
/// reaches (manifests, their configs and layers, nested indexes) and every
/// temporary, in the store and below each of `tarball_dirs`, holding the
/// store exclusively: when a build has the store
/// open this fails with [`Error::StoreBusy`] at once, and a build that
/// starts meanwhile waits for the collection to end. Layers only the
/// layer cache remembered are collected too (the cache then misses).
pub fn gc(dir: &Path, tarball_dirs: &[PathBuf]) -> Result<Collected> {
    let _lock = lock_store(dir, true)?;
    let store = BlobStore { root: dir.to_path_buf(), lease: Arc::default() };
    let mut collected = Collected::default();
    let in_store = store.temp_dirs().map(|d| temp::remove(&d, temp::Scope::All));
    for removed in
        in_store.into_iter().chain(tarball_dirs.iter().map(|d| temp::remove_under(d, temp::Scope::All)))
    {
        collected.temporaries += removed.count;
        collected.temporary_bytes += removed.bytes;
    }
    let mut reachable = std::collections::HashSet::new();
    let mut pending: Vec<Descriptor> = store.read_index()?.manifests().clone();
    while let Some(descriptor) = pending.pop() {
        let digest = Digest::from_descriptor(&descriptor)?;
        if !reachable.insert(digest.hex().to_owned()) || !store.contains(&digest) {
            continue;
        }
        match descriptor.media_type() {
            MediaType::ImageManifest | MediaType::Other(_) => {
                let bytes = store.read_verified(&digest)?;
                let Ok(manifest) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes) else {
                    continue;
                };
                pending.push(manifest.config().clone());
                pending.extend(manifest.layers().iter().cloned());
            }
            MediaType::ImageIndex => {
                let bytes = store.read_verified(&digest)?;
                if let Ok(index) = serde_json::from_slice::<ImageIndex>(&bytes) {
                    pending.extend(index.manifests().iter().cloned());
                }
            }
            _ => {}
        }
    }
    let blobs = store.blobs_dir();
    let entries = fs::read_dir(&blobs).map_err(|e| Error::io("reading", &blobs, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading", &blobs, e))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|hex| reachable.contains(hex)) {
            continue;
        }
        let size = entry.metadata().map_or(0, |m| m.len());
        fs::remove_file(entry.path()).map_err(|e| Error::io("removing", entry.path(), e))?;
        collected.blobs += 1;
        collected.blob_bytes += size;
    }
    Ok(collected)
}

/// Opens (creating it) the file at `path` whose lock guards something.
fn open_lock_file(path: &Path) -> Result<File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("opening", path, e))
}

/// Locks `dir/store.lock`: shared (waiting for a collection to end), or
/// exclusive without waiting (failing when a build has the store open).
fn lock_store(dir: &Path, exclusive: bool) -> Result<File> {
    let path = dir.join(STORE_LOCK);
    let file = open_lock_file(&path)?;
    if !exclusive {
        file.lock_shared().map_err(|e| Error::io("locking", &path, e))?;
        return Ok(file);
    }
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::StoreBusy { path: dir.to_path_buf() }),
        Err(fs::TryLockError::Error(e)) => Err(Error::io("locking", &path, e)),
    }
}

/// A temp file in `dir`, readable by others once renamed (0644 before umask),
/// as blobs and `index.json` must be for tools running as another user;
/// named after this process (see [`crate::temp`]).
pub(crate) fn temp_file_in(dir: &Path) -> Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    let prefix = temp::prefix(".tmp-");
    builder.prefix(&prefix);
    temp::register_dir(dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir).map_err(|e| Error::io("creating a temp file in", dir, e))
}

/// Writes `bytes` to `path` through a temp file in `dir` (same file system)
/// and renames it: readers see the old content or the new, never a part.
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = temp_file_in(dir)?;
    file.write_all(bytes).map_err(|e| Error::io("writing", file.path(), e))?;
    persist(file, path)
}

/// The environment variable that makes every output fsynced before its
/// rename ([`fsync_each`]).
pub const FSYNC_VAR: &str = "PLUGIN_FORGE_FSYNC";

/// Whether each blob, ref, cache entry and archive is fsynced (with its
/// directory) before and after its rename: only when `PLUGIN_FORGE_FSYNC=1`
/// (read once per process). By default nothing is: the rename alone makes
/// an output atomic against kills, and what a power loss may tear is
/// detected where it is read (see the [module docs](self)).
pub fn fsync_each() -> bool {
    static EACH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *EACH.get_or_init(|| std::env::var(FSYNC_VAR).is_ok_and(|v| v.trim() == "1"))
}

/// Renames a complete temp file to `path`, fsyncing it and the directory
/// around the rename when [`fsync_each`] says so.
pub(crate) fn persist(file: NamedTempFile, path: &Path) -> Result<()> {
    let sync = fsync_each();
    if sync {
        file.as_file().sync_all().map_err(|e| Error::io("syncing", file.path(), e))?;
    }
    file.persist(path).map_err(|e| Error::io("renaming a temp file to", path, e.error))?;
    if sync {
        sync_parent(path);
    }
    Ok(())
}

/// Best effort: some file systems refuse to fsync a directory, and the data
/// itself is already on disk by then.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
}

/// A blob being written: bytes go to a temp file in the store while they
/// are hashed. [`BlobWriter::finish`] moves the complete blob into place;
/// dropping the writer without finishing deletes the temp file, leaving
/// nothing behind.
pub struct BlobWriter {
    file: HashingWriter<BufWriter<NamedTempFile>>,
    blobs_dir: PathBuf,
}

impl fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobWriter").field("temp", &self.temp_path()).field("size", &self.size()).finish()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.file.size()
    }

    fn temp_path(&self) -> PathBuf {
        self.file.get_ref().get_ref().path().to_path_buf()
    }

    /// Completes the blob: flushes it and renames it to its digest,
    /// replacing what the store holds under that name (the same bytes, or
    /// a blob a power loss tore).
    pub fn finish(self) -> Result<(Digest, u64)> {
        let (placed, digest, size) = self.complete()?;
        Self::place(placed, &digest)?;
        Ok((digest, size))
    }

    /// Completes the blob only if its content hashes to `expected`: for
    /// content received under a name (an archive member, a descriptor).
    /// Otherwise the temp file is deleted and [`Error::DigestMismatch`]
    /// returned.
    pub fn finish_verified(self, expected: &Digest) -> Result<u64> {
        let (file, found, size) = self.complete()?;
        if &found != expected {
            return Err(Error::DigestMismatch {
                what: format!("content received for blob {expected}"),
                expected: expected.clone(),
                found,
            });
        }
        Self::place(file, &found)?;
        Ok(size)
    }

    fn complete(self) -> Result<(Placed, Digest, u64)> {
        let temp_path = self.temp_path();
        let BlobWriter { file, blobs_dir } = self;
        let (digest, size, file) = file.finish();
        let file = file.into_inner().map_err(|e| Error::io("writing", temp_path, e.into_error()))?;
        Ok((Placed { file, blobs_dir }, digest, size))
    }

    fn place(placed: Placed, digest: &Digest) -> Result<()> {
        persist(placed.file, &placed.blobs_dir.join(digest.hex()))
    }
}

struct Placed {
    file: NamedTempFile,
    blobs_dir: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The cause inside the `io::Error` that a [`VerifyingReader`] returns when
/// content does not match; [`Error`] turns it back into
/// [`Error::DigestMismatch`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("content does not match its digest: expected {expected}, found {found}")]
pub struct MismatchError {
    /// The digest the content is stored under.
    pub expected: Digest,
    /// The digest of the bytes read.
    pub found: Digest,
}

/// Reads a blob while hashing it. When the end is reached and the content
/// does not hash to the expected digest, `read` returns an `io::Error` of
/// kind `InvalidData` (with a [`MismatchError`] inside) instead of `Ok(0)`,
/// so that the consumer never mistakes corrupt content for a clean end.
/// Only a reader read to the end verifies: use [`VerifyingReader::finish`]
/// when a consumer (a tar parser, say) may stop early.
pub struct VerifyingReader {
    inner: HashingReader<BufReader<File>>,
    expected: Digest,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Reading,
    Verified,
    Mismatch(MismatchError),
}

impl fmt::Debug for VerifyingReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingReader")
            .field("expected", &self.expected)
            .field("read", &self.inner.size())
            .field("state", &self.state)
            .finish()
    }
}

impl VerifyingReader {
    fn new(inner: BufReader<File>, expected: Digest) -> VerifyingReader {
        VerifyingReader { inner: HashingReader::new(inner), expected, state: State::Reading }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.inner.size()
    }

    /// Reads what is left and verifies; returns the blob's size.
    pub fn finish(mut self) -> io::Result<u64> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.inner.size())
    }

    fn mismatch(err: &MismatchError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, err.clone())
    }
}

impl Read for VerifyingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.state {
            State::Verified => return Ok(0),
            State::Mismatch(err) => return Err(Self::mismatch(err)),
            State::Reading => {}
        }
        let n = self.inner.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let found = self.inner.digest();
        if found == self.expected {
            self.state = State::Verified;
            Ok(0)
        } else {
            let err = MismatchError { expected: self.expected.clone(), found };
            let io_err = Self::mismatch(&err);
            self.state = State::Mismatch(err);
            Err(io_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use forge_testkit::files_below;

    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path().join("layout")).unwrap();
        (dir, store)
    }

    #[test]
    fn creates_a_layout() {
        let (_dir, store) = store();
        let layout = fs::read_to_string(store.root().join("oci-layout")).unwrap();
        assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
        let index = fs::read_to_string(store.root().join("index.json")).unwrap();
        assert_eq!(
            index,
            r#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#
        );
        // Opening again keeps what is there.
        BlobStore::open_or_create(store.root()).unwrap();
    }

    #[test]
    fn refuses_an_unknown_layout_version() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
        let err = BlobStore::open_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn put_read_and_dedupe() {
        let (_dir, store) = store();
        let (digest, size) = store.put_bytes(b"hello").unwrap();
        assert_eq!(size, 5);
        assert_eq!(digest, Digest::of(b"hello"));
        assert!(store.contains(&digest));
        assert_eq!(store.read_verified(&digest).unwrap(), b"hello");
        let stamp = StatStamp::stat(&store.path(&digest));
        let again = store.put_bytes(b"hello").unwrap();
        assert_eq!(again, (digest.clone(), 5));
        assert_eq!(StatStamp::stat(&store.path(&digest)), stamp, "the same blob was written again");
        assert_eq!(files_below(&store.root().join("blobs")), vec![format!("sha256/{}", digest.hex())]);
    }

    #[test]
    fn verifying_reader_fails_at_the_end_on_corruption() {
        let (_dir, store) = store();
        let (digest, _) = store.put_bytes(b"original content").unwrap();
        let mut ok = String::new();
        store.open(&digest).unwrap().read_to_string(&mut ok).unwrap();
        assert_eq!(ok, "original content");

        fs::write(store.path(&digest), b"tampered content").unwrap();
        let mut out = Vec::new();
        let err = store.open(&digest).unwrap().read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let message = err.to_string();
        assert!(message.contains(&digest.to_string()), "{message}");
        assert!(message.contains(&Digest::of(b"tampered content").to_string()), "{message}");
        assert!(matches!(store.read_verified(&digest), Err(Error::DigestMismatch { .. })));
        assert!(matches!(
            Error::io("reading", "x", err),
            Error::DigestMismatch { expected, .. } if expected == digest
        ));
    }

    #[test]
    fn a_dropped_writer_leaves_nothing() {
        let (_dir, store) = store();
        let mut writer = store.writer().unwrap();
        writer.write_all(&[7u8; 300_000]).unwrap();
        drop(writer);
        assert_eq!(files_below(&store.root().join("blobs")), Vec::<String>::new());
    }

    #[test]
    fn finish_verified_refuses_wrong_content() {
        let (_dir, store) = store();
        let mut writer = store.writer().unwrap();
        writer.write_all(b"abc").unwrap();
        let err = writer.finish_verified(&Digest::of(b"abd")).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert_eq!(files_below(&store.root().join("blobs")), Vec::<String>::new());
    }

    #[test]
    fn a_torn_blob_is_removed_when_verified_and_replaced_when_written_again() {
        let (_dir, store) = store();
        let content = vec![9u8; 10_000];
        let (digest, size) = store.put_bytes(&content).unwrap();
        assert!(store.verify(&digest).unwrap());
        // What a power loss may leave: the name, not the bytes.
        fs::write(store.path(&digest), vec![0u8; content.len()]).unwrap();
        assert!(!store.verify(&digest).unwrap(), "a damaged blob was trusted");
        assert!(!store.contains(&digest), "the damaged blob was kept");
        // A layer cache entry over a damaged blob is a miss.
        let layer = crate::Layer {
            digest: digest.clone(),
            diff_id: digest.clone(),
            size,
            media_type: MediaType::ImageLayerGzip,
        };
        let key = crate::LayerKey::from_digest(Digest::of(b"key"));
        store.put_bytes(&content).unwrap();
        crate::LayerCache::put(&store, &key, &layer).unwrap();
        assert!(crate::LayerCache::get(&store, &key).is_some());
        fs::write(store.path(&digest), &content[..100]).unwrap();
        assert!(crate::LayerCache::get(&store, &key).is_none(), "a truncated blob was a hit");
        fs::write(store.path(&digest), vec![1u8; content.len()]).unwrap();
        assert!(crate::LayerCache::get(&store, &key).is_none(), "a damaged blob was a hit");
        // Writing the blob again puts the whole one in place.
        fs::write(store.path(&digest), b"torn").unwrap();
        store.put_bytes(&content).unwrap();
        assert_eq!(store.read_verified(&digest).unwrap(), content);
        assert_eq!(files_below(&store.root().join("blobs")), vec![format!("sha256/{}", digest.hex())]);
    }

    #[test]
    fn cache_round_trip() {
        let (_dir, store) = store();
        assert_eq!(store.cache_get("key"), None);
        store.cache_put("key", "one").unwrap();
        store.cache_put("key", "two").unwrap();
        assert_eq!(store.cache_get("key").as_deref(), Some("two"));
        let stamp = StatStamp::stat(&store.cache_path("key"));
        store.cache_put("key", "two").unwrap();
        assert_eq!(StatStamp::stat(&store.cache_path("key")), stamp, "the same value was written again");
        assert_eq!(store.cache_get("other"), None);
    }

    #[test]
    fn gc_keeps_what_refs_reach_and_never_runs_beside_a_build() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path()).unwrap();
        let (config, config_size) = store.put_bytes(b"{}").unwrap();
        let (layer, layer_size) = store.put_bytes(b"layer").unwrap();
        let (orphan, _) = store.put_bytes(b"orphan").unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": layer_size}],
        });
        let (manifest, manifest_size) = store.put_bytes(manifest.to_string().as_bytes()).unwrap();
        store
            .set_ref("app:1", &crate::digest::descriptor(MediaType::ImageManifest, &manifest, manifest_size))
            .unwrap();
        // A temporary of a killed run, and one of an older version.
        fs::write(dir.path().join("blobs/.tmp-legacy"), "x".repeat(100)).unwrap();
        fs::create_dir(dir.path().join("spool-4000000-x")).unwrap();

        // While a build has the store open, gc refuses at once.
        let err = gc(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, Error::StoreBusy { .. }), "{err}");
        drop(store);
        let collected = gc(dir.path(), &[]).unwrap();
        assert_eq!((collected.blobs, collected.blob_bytes), (1, 6));
        assert_eq!(collected.temporaries, 2);
        let store = BlobStore::open_or_create(dir.path()).unwrap();
        assert!(!store.contains(&orphan));
        for kept in [&manifest, &config, &layer] {
            assert!(store.contains(kept));
        }
        assert!(!dir.path().join("blobs/.tmp-legacy").exists());
    }

    #[test]
    fn opening_a_store_removes_what_killed_runs_left() {
        let dir = tempfile::tempdir().unwrap();
        drop(BlobStore::open_or_create(dir.path()).unwrap());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!("blobs/.tmp-{dead}-abc"));
        let live = dir.path().join("blobs/.tmp-1-abc");
        let spool = dir.path().join(format!("spool-{dead}-abc"));
        fs::write(&stale, "x").unwrap();
        fs::write(&live, "x").unwrap();
        fs::create_dir(&spool).unwrap();
        let _store = BlobStore::open_or_create(dir.path()).unwrap();
        assert!(!stale.exists() && !spool.exists());
        assert!(live.exists(), "a running process's temporary was removed");
    }

    /// What a store knows of `index.json` never hides another writer's
    /// change, even one of the same size made in place at once (the same
    /// inode and, within the clock's granularity, the same times).
    #[test]
    fn a_known_index_does_not_hide_another_writer() {
        let (_dir, store) = store();
        let (a, size) = store.put_bytes(b"a").unwrap();
        let (b, _) = store.put_bytes(b"b").unwrap();
        let desc = |d: &Digest| crate::digest::descriptor(MediaType::ImageManifest, d, size);
        store.set_ref("one", &desc(&a)).unwrap();
        assert_eq!(store.resolve_ref("one").unwrap().unwrap().digest().to_string(), a.to_string());
        let path = store.root().join(INDEX_FILE);
        let text = fs::read_to_string(&path).unwrap().replace(a.hex(), b.hex());
        fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(text.as_bytes()).unwrap();
        assert_eq!(store.resolve_ref("one").unwrap().unwrap().digest().to_string(), b.to_string());
        // An update starts from the file, whatever the store read before.
        fs::write(&path, text.replace(b.hex(), a.hex())).unwrap();
        store.set_ref("two", &desc(&b)).unwrap();
        let refs: Vec<(String, String)> =
            store.refs().unwrap().into_iter().map(|(name, d)| (name, d.digest().to_string())).collect();
        assert_eq!(refs, vec![("one".to_owned(), a.to_string()), ("two".to_owned(), b.to_string())]);
        assert_eq!(
            fs::read(&path).unwrap(),
            crate::json::canonical_json(&store.read_index().unwrap(), "index").unwrap()
        );
    }

    #[test]
    fn refs_are_replaced_not_duplicated() {
        let (_dir, store) = store();
        let (a, a_size) = store.put_bytes(b"a").unwrap();
        let (b, b_size) = store.put_bytes(b"b").unwrap();
        let desc = |d: &Digest, s| crate::digest::descriptor(MediaType::ImageManifest, d, s);
        store.set_ref("one", &desc(&a, a_size)).unwrap();
        store.set_ref("two", &desc(&a, a_size)).unwrap();
        store.set_ref("one", &desc(&b, b_size)).unwrap();
        let refs: Vec<(String, String)> =
            store.refs().unwrap().into_iter().map(|(name, d)| (name, d.digest().to_string())).collect();
        assert_eq!(refs, vec![("one".to_owned(), b.to_string()), ("two".to_owned(), a.to_string())]);
        assert_eq!(store.resolve_ref("one").unwrap().unwrap().digest().to_string(), b.to_string());
        assert!(store.resolve_ref("three").unwrap().is_none());
        assert!(store.set_ref("has space", &desc(&a, a_size)).is_err());
    }
}
