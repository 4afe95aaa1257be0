//! [`ImageLayers`]: the [`ImageFiles`] of an image in a store, its layers
//! merged from their tar headers, without unpacking.
//!
//! [`ImageLayers::read`] reads every layer once, in order, through the
//! store's one layer reader ([`BlobStore::open_uncompressed`], the blob's
//! digest verified at its end) and the one tar reader
//! ([`LayerReader`]), and keeps only headers: memory grows with the number
//! of paths, never with content. Each layer is applied as a runtime's
//! snapshotter applies it (umoci, containerd, forge-sandbox's unpack):
//!
//! - an entry's parent directories are looked up in what the layers below
//!   made, following symlinks inside the image (an absolute target restarts
//!   at the root, `..` stops there), and missing ones are implied (0755,
//!   root); the entry's own last component is never followed;
//! - a non-directory replaces whatever is at its path, with everything
//!   below it; a directory over a directory only changes its metadata;
//! - `.wh.NAME` deletes `NAME` of the layers below, with what is below it;
//!   `.wh..wh..opq` hides what the layers below have in its directory and
//!   keeps what this layer adds there; neither is listed;
//! - a hard link is to the file its target is when the link is applied, and
//!   opens as that file's content; device nodes and FIFOs are listed;
//!   entries of other tar types are skipped, as the sandbox skips them.
//!
//! An entry no runtime would apply (a `..` component, a whiteout without a
//! name, a hard link to nothing or to a directory, a parent that is a file)
//! is refused with [`Error::ReadLayer`], naming the layer and the entry.
//! Names that are not UTF-8 are listed with their invalid bytes replaced,
//! as [`LayerEntry::path`](crate::entries::LayerEntry::path) gives them.
//!
//! [`ImageFiles::open`] re-reads the layer that holds a file up to its
//! entry and streams the content from there; the rest of the blob is read
//! when the content ends, so the blob's digest is checked on every open, as
//! the store's reader checks it (a mismatch is the error of the last read).
//! Small files read whole once (an installer reads `/var/lib/dpkg/status`
//! and `/etc/os-release` several times) are kept for the process, by their
//! layer's digest and their entry, up to [`MEMO_FILE`] each and
//! [`MEMO_TOTAL`] in all, so that a second open (by this view or by the
//! view of another image on the same layer) does not decompress the layer
//! again; memory stays bounded. [`ImageFiles::prefetch`] reads many small
//! files of a layer in one pass of it (an SBOM reads the `copyright` file
//! of every package): one decompression instead of one per file.
//!
//! The merged view of a prefix of layers is kept for the process
//! ([`PREFIXES`] of them, by the store and the layers' digests), so that
//! the images of a monorepo, which share their base and SDK layers, read
//! those once per run rather than once per image: a build-all's agent
//! checks read only each plugin's own layers. A blob read once has had its
//! digest verified, and its digest names its content, so the kept view is
//! the one reading it again would give.
//!
//! Across processes, a layer read whole leaves its entries' headers in the
//! store's cache (`cache/layer-v1-HEX.headers`), and the small files read
//! whole from it beside them (`.files`, up to [`MEMO_TOTAL`]), each with
//! the [`StatStamp`](forge_input::StatStamp) of the blob file it verified.
//! A later process applies the headers instead of decompressing the layer,
//! and serves those files from there, as long as the blob file has that
//! stamp: a blob rewritten, replaced or touched since is read (and
//! verified) again. A warm build of one changed plugin over a 70 MB base
//! decompresses no byte of the base.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Seek};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use oci_spec::image::Descriptor;

use super::{normalize, walk, ImageFiles, Walk};
use crate::compression::{LayerContent, UncompressedReader};
use crate::digest::Digest;
use crate::entries::{EntryKind, LayerEntry, LayerReader, Marker, ReadError};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::store::BlobStore;
use crate::tree::DeviceKind;
use crate::tree::{FileSource, Node, NodeKind};

/// The merged file system of a stored image's layers; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct ImageLayers {
    store: BlobStore,
    /// Each layer's descriptor and digest, bottom first.
    layers: Vec<(Descriptor, Digest)>,
    /// Every path of the final tree (relative, `/`-separated) that an entry
    /// put there; parents without an entry of their own are implied.
    nodes: BTreeMap<String, Placed>,
}

/// A node of the merged tree and where its content is.
#[derive(Debug, Clone)]
struct Placed {
    node: Node,
    /// For a regular file, and a hard link to one: the entry that holds the
    /// content.
    content: Option<Located>,
}

/// An entry of a layer: the layer's index, the entry's index among the
/// layer's entries (as [`LayerReader`] yields them) and its size.
#[derive(Debug, Clone, Copy)]
struct Located {
    layer: usize,
    entry: usize,
    size: u64,
}

/// How many merged prefixes of layers the process keeps; see the
/// [module docs](self).
pub const PREFIXES: usize = 16;

/// A merged prefix: the store's root, the layers' digests, the view.
type Prefix = (std::path::PathBuf, Vec<Digest>, ImageLayers);

static KEPT: Mutex<Vec<Prefix>> = Mutex::new(Vec::new());

impl ImageLayers {
    /// Lists the layers of `image` in `store`, applying each over those
    /// below it; see the [module docs](self).
    pub fn read(store: &BlobStore, image: &Image) -> Result<ImageLayers> {
        let descs = image.manifest.layers();
        let digests = descs.iter().map(Digest::from_descriptor).collect::<Result<Vec<_>, _>>()?;
        let kept = KEPT.lock().ok().and_then(|kept| {
            kept.iter()
                .filter(|(root, prefix, _)| root == store.root() && digests.starts_with(prefix))
                .max_by_key(|(_, prefix, _)| prefix.len())
                .map(|(_, prefix, view)| (prefix.len(), view.clone()))
        });
        let (start, mut merged) = kept.unwrap_or_else(|| {
            (0, ImageLayers { store: store.clone(), layers: Vec::new(), nodes: BTreeMap::new() })
        });
        for (index, (desc, digest)) in descs.iter().zip(&digests).enumerate().skip(start) {
            let read_error = |source| Error::ReadLayer { layer: digest.clone(), source };
            merged.layers.push((desc.clone(), digest.clone()));
            if let Some(headers) = persisted::headers(store, digest) {
                merged.apply_headers(index, &headers).map_err(read_error)?;
            } else {
                let mut stream = store.open_uncompressed(desc)?.without_diff_id();
                let headers = merged.apply_layer(index, &mut stream).map_err(read_error)?;
                // Reading to the end verifies the blob's digest.
                stream.finish().map_err(read_error)?;
                persisted::save_headers(store, digest, &headers);
            }
            if index + 1 < digests.len() {
                if let Ok(mut kept) = KEPT.lock() {
                    if kept.len() >= PREFIXES {
                        kept.remove(0);
                    }
                    kept.push((store.root().to_path_buf(), digests[..=index].to_vec(), merged.clone()));
                }
            }
        }
        Ok(merged)
    }

    /// Applies the layer `stream` holds; returns its entries' headers.
    fn apply_layer(&mut self, layer: usize, stream: &mut LayerContent) -> io::Result<Vec<Header>> {
        let mut archive = LayerReader::new(stream);
        // Paths this layer put in place, which its own opaque markers keep.
        let mut written = HashSet::new();
        let mut headers = Vec::new();
        for (index, entry) in archive.entries().map_err(into_io)?.enumerate() {
            let entry = entry.map_err(into_io)?;
            let bad = |reason| {
                let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
                io::Error::new(io::ErrorKind::InvalidData, format!("entry `{name}`: {reason}"))
            };
            let header = Header::of(&entry).map_err(bad)?;
            self.apply_entry(Located { layer, entry: index, size: 0 }, &header, &mut written).map_err(bad)?;
            headers.push(header);
        }
        Ok(headers)
    }

    /// Applies a layer from its entries' headers, as kept by an earlier read.
    fn apply_headers(&mut self, layer: usize, headers: &[Header]) -> io::Result<()> {
        let mut written = HashSet::new();
        for (index, header) in headers.iter().enumerate() {
            self.apply_entry(Located { layer, entry: index, size: 0 }, header, &mut written).map_err(
                |reason| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("entry `{}`: {reason}", header.path))
                },
            )?;
        }
        Ok(())
    }

    fn apply_entry(
        &mut self,
        at: Located,
        entry: &Header,
        written: &mut HashSet<String>,
    ) -> std::result::Result<(), String> {
        let path = &entry.path;
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        if components.contains(&"..") {
            return Err("`..` components are not allowed in layers".into());
        }
        // The root itself (`./`) keeps the runtime's directory.
        let Some((name, parents)) = components.split_last() else { return Ok(()) };

        let (mode, uid, gid) = match &entry.kind {
            HeaderKind::Opaque | HeaderKind::Whiteout(_) => {
                let Some(dir) = self.lookup_dir(parents, false)? else { return Ok(()) };
                match &entry.kind {
                    HeaderKind::Opaque => self.make_opaque(&dir, written),
                    HeaderKind::Whiteout(hidden) if hidden.is_empty() || hidden == "." || hidden == ".." => {
                        return Err("a whiteout without a name".into())
                    }
                    HeaderKind::Whiteout(hidden) => self.remove_subtree(&join(&dir, hidden)),
                    _ => {}
                }
                return Ok(());
            }
            HeaderKind::Other => return Ok(()),
            _ => (entry.mode, entry.uid, entry.gid),
        };
        let node = |kind| Node { kind, mode, uid, gid };
        let placed = match &entry.kind {
            HeaderKind::Dir => Placed { node: node(NodeKind::Dir), content: None },
            HeaderKind::File { size } => {
                let size = *size;
                let layer = self.layer_digest(at.layer);
                let kind = NodeKind::File { size, source: FileSource::Layer { layer } };
                Placed { node: node(kind), content: Some(Located { size, ..at }) }
            }
            HeaderKind::Symlink(target) => {
                Placed { node: node(NodeKind::Symlink { target: target.clone() }), content: None }
            }
            HeaderKind::Hardlink(target) => {
                let (target, content) = self.hardlink_target(target)?;
                Placed { node: node(NodeKind::Hardlink { target }), content }
            }
            HeaderKind::Device { kind, major, minor } => {
                let kind = match kind {
                    0 => DeviceKind::Char,
                    1 => DeviceKind::Block,
                    _ => DeviceKind::Fifo,
                };
                Placed { node: node(NodeKind::Device { kind, major: *major, minor: *minor }), content: None }
            }
            HeaderKind::Opaque | HeaderKind::Whiteout(_) | HeaderKind::Other => return Ok(()),
        };
        let parent = self.lookup_dir(parents, true)?.unwrap_or_default();
        let path = join(&parent, name);
        if let Some(existing) = self.nodes.get(&path) {
            if !(existing.node.is_dir() && placed.node.is_dir()) {
                self.remove_subtree(&path);
            }
        } else if !placed.node.is_dir() {
            // A file over an implied directory replaces what is below it.
            self.remove_subtree(&path);
        }
        written.insert(path.clone());
        self.nodes.insert(path, placed);
        Ok(())
    }

    fn layer_digest(&self, index: usize) -> Digest {
        self.layers[index].1.clone()
    }

    /// What a hard link's `target` (as stored) names: its parents followed,
    /// the last component not; it must be an existing non-directory. A link
    /// to a hard link is to that link's file.
    fn hardlink_target(&self, target: &str) -> std::result::Result<(String, Option<Located>), String> {
        let bad = || format!("hardlink target `{target}` is not an existing file");
        let normal = normalize(target);
        let components: Vec<&str> = normal.split('/').filter(|c| !c.is_empty()).collect();
        let (name, parents) = components.split_last().ok_or_else(bad)?;
        if components.contains(&"..") {
            return Err(bad());
        }
        let parent = self.lookup_dir(parents, false)?.ok_or_else(bad)?;
        let path = join(&parent, name);
        match self.nodes.get(&path) {
            Some(Placed { node, content }) if !node.is_dir() => Ok((path, *content)),
            _ => Err(bad()),
        }
    }

    /// The directory `components` name in the tree so far, symlinks
    /// followed inside the image ([`walk`]); with `imply`, missing
    /// directories are taken as created, else a missing one is `None`. A
    /// component that is not a directory is an error, as for a runtime.
    fn lookup_dir(&self, components: &[&str], imply: bool) -> std::result::Result<Option<String>, String> {
        let not_a_dir = |path: &str| format!("the parent `{path}` is not a directory");
        match walk(self, components.iter().copied(), imply) {
            Walk::Found(dir) if dir.is_empty() || imply && self.node(&dir).is_none() => Ok(Some(dir)),
            Walk::Found(dir) if self.node(&dir).is_some_and(|n| n.is_dir()) => Ok(Some(dir)),
            Walk::Found(file) | Walk::NotADirectory(file) => Err(not_a_dir(&file)),
            Walk::Missing => Ok(None),
            Walk::Loop => Err("too many levels of symbolic links".into()),
        }
    }

    /// Removes what the layers below put in `dir`, keeping what this layer
    /// wrote there and the directories that lead to it.
    fn make_opaque(&mut self, dir: &str, written: &HashSet<String>) {
        let below: Vec<String> = self
            .below(dir)
            .filter(|p| !written.contains(*p) && !written.iter().any(|w| is_below(w, p)))
            .map(str::to_owned)
            .collect();
        for path in below {
            self.nodes.remove(&path);
        }
    }

    /// Paths strictly below `dir` (`""` is the root), in order.
    fn below<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        self.nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .map(|(p, _)| p.as_str())
            .take_while(move |p| p.starts_with(&prefix))
    }

    fn has_children(&self, dir: &str) -> bool {
        self.below(dir).next().is_some()
    }

    fn remove_subtree(&mut self, path: &str) {
        let below: Vec<String> = self.below(path).map(str::to_owned).collect();
        for p in below {
            self.nodes.remove(&p);
        }
        self.nodes.remove(path);
    }

    /// A reader of the content at `at`: from the memo, or read whole into
    /// it when small enough and there is room, else streamed from the layer.
    fn open_content(&self, at: Located) -> io::Result<Box<dyn Read + 'static>> {
        let key = self.memo_key(at);
        self.load_persisted(at.layer);
        if let Some(bytes) = memo().files.get(&key) {
            return Ok(Box::new(io::Cursor::new(Shared(Arc::clone(bytes)))));
        }
        if at.size > MEMO_FILE || memo().total + at.size > MEMO_TOTAL {
            return self.stream_content(at);
        }
        let mut bytes = Vec::with_capacity(usize::try_from(at.size).unwrap_or(0));
        // Read to the end: the blob's digest is checked before it is kept.
        self.stream_content(at)?.read_to_end(&mut bytes)?;
        let kept = keep(key, bytes);
        persisted::save_files(&self.store, &self.layers[at.layer].1, &[(at.entry, Arc::clone(&kept))]);
        Ok(Box::new(io::Cursor::new(Shared(kept))))
    }

    /// Puts the small files of layer `layer` kept by earlier processes
    /// into the memo (once per layer and process).
    fn load_persisted(&self, layer: usize) {
        let digest = &self.layers[layer].1;
        if !memo().loaded.insert(digest.clone()) {
            return;
        }
        for (entry, bytes) in persisted::files(&self.store, digest) {
            keep_shared((digest.clone(), entry), bytes);
        }
    }

    fn memo_key(&self, at: Located) -> (Digest, usize) {
        (self.layers[at.layer].1.clone(), at.entry)
    }

    /// Reads the small files at `paths` that are not kept yet into the
    /// memo, one pass per layer that holds some; see the [module docs](self).
    fn prefetch_paths(&self, paths: &[String]) -> io::Result<()> {
        for layer in 0..self.layers.len() {
            self.load_persisted(layer);
        }
        let mut wanted: BTreeMap<usize, BTreeMap<usize, u64>> = BTreeMap::new();
        let mut budget = MEMO_TOTAL.saturating_sub(memo().total);
        for path in paths {
            let Some(at) = self.nodes.get(&normalize(path)).and_then(|p| p.content) else { continue };
            if at.size > MEMO_FILE || at.size > budget || memo().files.contains_key(&self.memo_key(at)) {
                continue;
            }
            if wanted.entry(at.layer).or_default().insert(at.entry, at.size).is_none() {
                budget -= at.size;
            }
        }
        for (layer, entries) in wanted {
            let (desc, digest) = &self.layers[layer];
            let mut stream = self.store.open_uncompressed(desc).map_err(io::Error::other)?;
            let mut read = Vec::with_capacity(entries.len());
            {
                let mut archive = LayerReader::new(&mut stream);
                let last = entries.keys().next_back().copied().unwrap_or(0);
                for (index, entry) in archive.entries().map_err(into_io)?.enumerate().take(last + 1) {
                    let mut entry = entry.map_err(into_io)?;
                    let Some(&size) = entries.get(&index) else { continue };
                    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                    (&mut entry).take(size).read_to_end(&mut bytes)?;
                    read.push(((digest.clone(), index), bytes));
                }
            }
            // Kept only once the whole blob has matched its digest.
            stream.finish()?;
            let mut kept = Vec::with_capacity(read.len());
            for ((digest, entry), bytes) in read {
                kept.push((entry, keep((digest, entry), bytes)));
            }
            persisted::save_files(&self.store, digest, &kept);
        }
        Ok(())
    }

    /// A reader of the content at `at`, straight from its layer.
    fn stream_content(&self, at: Located) -> io::Result<Box<dyn Read + 'static>> {
        let (desc, digest) = &self.layers[at.layer];
        let mut stream = self.store.open_uncompressed(desc).map_err(io::Error::other)?;
        let spooled = {
            let mut archive = LayerReader::new(&mut stream);
            let mut entries = archive.entries().map_err(into_io)?;
            let mut entry = match entries.nth(at.entry) {
                Some(entry) => entry.map_err(into_io)?,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("layer {digest} ended before the entry read when it was listed"),
                    ))
                }
            };
            if entry.is_stored_plain() {
                // The stream is at the first byte of the content.
                None
            } else {
                // A sparse file: expanded into a temporary file first.
                let mut file = tempfile::tempfile()?;
                io::copy(&mut entry, &mut file)?;
                file.rewind()?;
                Some(file)
            }
        };
        match spooled {
            None => Ok(Box::new(LayerFile { stream: Some(stream), left: at.size })),
            Some(file) => {
                stream.finish()?;
                Ok(Box::new(file))
            }
        }
    }
}

/// What [`ImageLayers`] takes of a layer entry's header: all it applies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Header {
    /// [`LayerEntry::path`].
    path: String,
    kind: HeaderKind,
    mode: u32,
    uid: u64,
    gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum HeaderKind {
    Dir,
    File {
        size: u64,
    },
    /// The target, as [`LayerEntry::link_bytes`] (lossily).
    Symlink(String),
    Hardlink(String),
    /// `kind`: 0 character, 1 block, 2 FIFO.
    Device {
        kind: u8,
        major: u32,
        minor: u32,
    },
    /// `.wh..wh..opq`.
    Opaque,
    /// `.wh.NAME`: the name as stored.
    Whiteout(String),
    /// An entry of another type, skipped.
    Other,
}

impl Header {
    /// The header of `entry`: a marker's mode and owner are not read (a
    /// runtime does not look at them either).
    fn of<R: Read>(entry: &LayerEntry<'_, R>) -> std::result::Result<Header, String> {
        let path = entry.path();
        let unowned = |kind| Header { path: path.clone(), kind, mode: 0, uid: 0, gid: 0 };
        match entry.marker() {
            Some(Marker::Opaque) => return Ok(unowned(HeaderKind::Opaque)),
            Some(Marker::Whiteout(hidden)) => return Ok(unowned(HeaderKind::Whiteout(hidden.to_owned()))),
            None => {}
        }
        // Read for every other entry, as a runtime reads them: a bad one is refused.
        let (mode, (uid, gid)) = (entry.mode().map_err(header)?, entry.owner().map_err(header)?);
        let link = || String::from_utf8_lossy(entry.link_bytes().unwrap_or_default()).into_owned();
        let kind = match entry.kind {
            EntryKind::Dir => HeaderKind::Dir,
            EntryKind::File { size } => HeaderKind::File { size },
            EntryKind::Symlink => HeaderKind::Symlink(link()),
            EntryKind::Hardlink => HeaderKind::Hardlink(link()),
            EntryKind::Device { kind, major, minor } => {
                let kind = match kind {
                    DeviceKind::Char => 0,
                    DeviceKind::Block => 1,
                    DeviceKind::Fifo => 2,
                };
                HeaderKind::Device { kind, major, minor }
            }
            EntryKind::Other(_) => HeaderKind::Other,
        };
        Ok(Header { path, kind, mode, uid, gid })
    }
}

/// What a read of a layer leaves in the store for later processes: its
/// entries' headers (`cache/layer-v1-HEX.headers`) and the small files
/// read whole from it (`cache/layer-v1-HEX.files`), each with the
/// [`StatStamp`](forge_input::StatStamp) its blob file had when it was
/// read and verified. They are used only while the blob file has that
/// stamp (the blob as it was verified: a blob rewritten, replaced or
/// touched is read again, and fails if damaged), and only save work:
/// anything unreadable is a miss.
mod persisted {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Arc;

    use forge_input::StatStamp;

    use super::Header;
    use crate::digest::Digest;
    use crate::store::{write_atomic, BlobStore};

    /// The largest headers file read back (a layer of a million entries).
    const HEADERS_LIMIT: u64 = 256 << 20;

    fn path(store: &BlobStore, digest: &Digest, what: &str) -> (PathBuf, PathBuf) {
        let dir = store.root().join("cache");
        let file = dir.join(format!("layer-v1-{}.{what}", digest.hex()));
        (dir, file)
    }

    fn stamp(store: &BlobStore, digest: &Digest) -> Option<StatStamp> {
        StatStamp::stat(&store.path(digest))
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Headers {
        stamp: StampText,
        headers: Vec<Header>,
    }

    /// A stamp as kept in a file.
    type StampText = [i64; 6];

    /// The headers of the layer `digest` kept by an earlier read of it, if
    /// its blob is the one they were read from.
    pub(super) fn headers(store: &BlobStore, digest: &Digest) -> Option<Vec<Header>> {
        let (_, file) = path(store, digest, "headers");
        let now = stamp(store, digest)?;
        if std::fs::metadata(&file).ok()?.len() > HEADERS_LIMIT {
            return None;
        }
        let kept: Headers = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
        (kept.stamp == now.0).then_some(kept.headers)
    }

    /// Keeps `headers`, read from the verified blob of `digest`.
    pub(super) fn save_headers(store: &BlobStore, digest: &Digest, headers: &[Header]) {
        let Some(now) = stamp(store, digest) else { return };
        let (dir, file) = path(store, digest, "headers");
        let kept = Headers { stamp: now.0, headers: headers.to_vec() };
        if let Ok(bytes) = serde_json::to_vec(&kept) {
            let _ = std::fs::create_dir_all(&dir).map(|()| write_atomic(&dir, &file, &bytes));
        }
    }

    /// The small files of the layer `digest` kept by earlier reads, by
    /// entry index, if its blob is the one they were read from.
    pub(super) fn files(store: &BlobStore, digest: &Digest) -> BTreeMap<usize, Arc<Vec<u8>>> {
        let mut found = BTreeMap::new();
        let (_, file) = path(store, digest, "files");
        let (Some(now), Ok(bytes)) = (stamp(store, digest), std::fs::read(&file)) else { return found };
        let mut rest = bytes.as_slice();
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
            rest = tail;
            Some(head)
        };
        let word = |b: &[u8]| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let mut kept_stamp = [0i64; 6];
        for slot in &mut kept_stamp {
            let Some(b) = take(8) else { return found };
            *slot = word(b);
        }
        if kept_stamp != now.0 {
            return found;
        }
        let mut files = BTreeMap::new();
        while let Some(index) = take(8).map(word) {
            // A file cut short is no file: nothing of it is used.
            let Some(len) = take(8).map(word) else { return found };
            let Some(content) = usize::try_from(len).ok().and_then(&mut take) else { return found };
            files.insert(usize::try_from(index).unwrap_or(usize::MAX), Arc::new(content.to_vec()));
        }
        found = files;
        found
    }

    /// Keeps `files` (verified content of entries of the layer `digest`,
    /// by entry index) with those kept already.
    pub(super) fn save_files(store: &BlobStore, digest: &Digest, new: &[(usize, Arc<Vec<u8>>)]) {
        let Some(now) = stamp(store, digest) else { return };
        let mut all = files(store, digest);
        let before = all.len();
        let mut total: u64 = all.values().map(|b| b.len() as u64).sum();
        for (index, bytes) in new {
            // As much as a process keeps in memory, no more.
            if !all.contains_key(index) && total + bytes.len() as u64 <= super::MEMO_TOTAL {
                total += bytes.len() as u64;
                all.insert(*index, Arc::clone(bytes));
            }
        }
        if all.len() == before {
            return;
        }
        let mut out = Vec::new();
        for word in now.0 {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for (index, bytes) in &all {
            out.extend_from_slice(&(*index as i64).to_le_bytes());
            out.extend_from_slice(&(bytes.len() as i64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        let (dir, file) = path(store, digest, "files");
        let _ = std::fs::create_dir_all(&dir).map(|()| write_atomic(&dir, &file, &out));
    }
}

/// The largest file [`ImageLayers`] keeps in memory once read.
pub const MEMO_FILE: u64 = 4 << 20;
/// The most [`ImageLayers`] keeps in memory of files once read.
pub const MEMO_TOTAL: u64 = 32 << 20;

/// Bytes of the memo, shared by their readers.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Files read whole, by their layer's digest and entry index: the same
/// for every image and store that has the layer, since a layer's digest
/// names its content and only verified content is kept.
#[derive(Debug, Default)]
struct Memo {
    files: HashMap<(Digest, usize), Arc<Vec<u8>>>,
    total: u64,
    /// Layers whose persisted small files were loaded.
    loaded: HashSet<Digest>,
}

static MEMO: std::sync::LazyLock<Mutex<Memo>> = std::sync::LazyLock::new(Mutex::default);

/// The process's memo, locked.
fn memo() -> std::sync::MutexGuard<'static, Memo> {
    MEMO.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps `bytes` (verified content of the entry `key`) unless another
/// reader kept it first or the memo is full; returns the kept bytes.
fn keep(key: (Digest, usize), bytes: Vec<u8>) -> Arc<Vec<u8>> {
    keep_shared(key, Arc::new(bytes))
}

/// [`keep`], of bytes already shared.
fn keep_shared(key: (Digest, usize), bytes: Arc<Vec<u8>>) -> Arc<Vec<u8>> {
    let mut memo = memo();
    if let Some(kept) = memo.files.get(&key) {
        return Arc::clone(kept);
    }
    if memo.total + bytes.len() as u64 <= MEMO_TOTAL {
        memo.total += bytes.len() as u64;
        memo.files.insert(key, Arc::clone(&bytes));
    }
    bytes
}

/// The content of one entry straight from its layer's stream, then the
/// rest of the stream, so that the blob's digest is checked at the end.
struct LayerFile {
    stream: Option<UncompressedReader>,
    left: u64,
}

impl Read for LayerFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(stream) = self.stream.as_mut() else { return Ok(0) };
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left > 0 {
            let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let n = stream.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the layer ends inside a file"));
            }
            self.left -= n as u64;
            return Ok(n);
        }
        if let Some(stream) = self.stream.take() {
            stream.finish()?;
        }
        Ok(0)
    }
}

fn into_io(e: ReadError) -> io::Error {
    match e {
        ReadError::Read(e) => e,
        header @ ReadError::Header { .. } => io::Error::new(io::ErrorKind::InvalidData, header),
    }
}

fn header(e: ReadError) -> String {
    match e {
        ReadError::Header { source, .. } => format!("unreadable tar header: {source}"),
        ReadError::Read(source) => source.to_string(),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` is strictly below `dir`.
fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

impl ImageFiles for ImageLayers {
    fn node(&self, path: &str) -> Option<Node> {
        let path = normalize(path);
        if path.is_empty() {
            return Some(Node::dir(0o755));
        }
        match self.nodes.get(&path) {
            Some(placed) => Some(placed.node.clone()),
            None if self.has_children(&path) => Some(Node::dir(0o755)),
            None => None,
        }
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let dir = normalize(dir);
        let prefix_len = if dir.is_empty() { 0 } else { dir.len() + 1 };
        let names: BTreeSet<&str> = self
            .below(&dir)
            .map(|p| {
                let rest = &p[prefix_len..];
                rest.split('/').next().unwrap_or(rest)
            })
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }

    fn open(&self, path: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        match self.nodes.get(&normalize(path)).and_then(|p| p.content) {
            Some(at) => self.open_content(at).map(Some),
            None => Ok(None),
        }
    }

    fn prefetch(&self, paths: &[String]) -> io::Result<()> {
        self.prefetch_paths(paths)
    }
}
