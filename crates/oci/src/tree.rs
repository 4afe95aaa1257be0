//! The one description of a layer's file system tree.
//!
//! Everything that makes a layer describes it as a [`Tree`] first: `COPY`
//! and `ADD` planning, archives read with [`read_tar`], a root filesystem
//! directory, the merged files of Debian packages (and, next, the diff a
//! `RUN` leaves). [`Tree::write_layer`] is the one way a tree becomes a
//! layer blob.
//!
//! A tree maps relative, `/`-separated paths (no leading `/`, as in a layer
//! tar) to [`Node`]s and keeps them sorted by the bytes of the path, the
//! order the layer is written in. Parent directories are implied: a path
//! whose parent is not in the tree gets a root-owned 0755 directory when the
//! tree is written or listed with [`Tree::entries`], once, however many
//! children it has; an explicit node for the directory, inserted before or
//! after its children, always wins.
//!
//! Whiteouts and opaque directories are nodes too, stored under the tar
//! name that carries them (`dir/.wh.name`, `dir/.wh..wh..opq`), so they sort
//! where the layer has them; [`Tree::whiteout`] and [`Tree::opaque`] name
//! them for you.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use crate::compression::Compression;
use crate::digest::{Digest, HashingWriter};
use crate::error::Result;
use crate::layer::{Layer, LayerBuilder, LayerOptions};
use crate::store::BlobStore;

/// The prefix of a whiteout's file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The file name that makes its directory opaque.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// One file system entry: what it is, its permission bits and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What the entry is.
    pub kind: NodeKind,
    /// Permission bits, including setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
}

/// The type and content of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
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
    /// A hard link to an earlier entry of the same layer.
    Hardlink {
        /// The path of an entry that comes before this one.
        target: String,
    },
    /// A device node or a FIFO (kept as the archive or root filesystem has
    /// it; the runtime decides what a container may open).
    Device {
        /// Character or block device, or FIFO.
        kind: DeviceKind,
        /// The device's major number (0 for a FIFO).
        major: u32,
        /// The device's minor number (0 for a FIFO).
        minor: u32,
    },
    /// Deletes what the layers below have at the path this whiteout hides
    /// (its node's path is `dir/.wh.name`).
    Whiteout,
    /// Hides what the layers below have in its directory (its node's path
    /// is `dir/.wh..wh..opq`).
    Opaque,
}

/// The kinds of [`NodeKind::Device`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A character device (`/dev/null`).
    Char,
    /// A block device.
    Block,
    /// A FIFO (named pipe).
    Fifo,
}

impl DeviceKind {
    /// The tar type flag of this kind.
    pub fn typeflag(self) -> u8 {
        match self {
            DeviceKind::Char => b'3',
            DeviceKind::Block => b'4',
            DeviceKind::Fifo => b'6',
        }
    }

    /// A word for messages and cache keys.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Char => "char",
            DeviceKind::Block => "block",
            DeviceKind::Fifo => "fifo",
        }
    }
}

/// The content of a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A file on disk, opened and streamed when the layer is written.
    Path(PathBuf),
    /// Content in memory.
    Bytes(Vec<u8>),
    /// A file a [`Spool`] wrote, whose content digest is known.
    Spooled {
        /// The spooled file.
        path: PathBuf,
        /// The digest of its content.
        digest: Digest,
    },
}

impl FileSource {
    /// The file on disk holding the content, if it is not in memory.
    pub fn path(&self) -> Option<&Path> {
        match self {
            FileSource::Path(path) | FileSource::Spooled { path, .. } => Some(path),
            FileSource::Bytes(_) => None,
        }
    }
}

/// The directory a tree implies for a missing parent.
static IMPLIED_DIR: Node = Node { kind: NodeKind::Dir, mode: 0o755, uid: 0, gid: 0 };

impl Node {
    /// A directory owned by root.
    pub fn dir(mode: u32) -> Node {
        Node { kind: NodeKind::Dir, mode, uid: 0, gid: 0 }
    }

    /// A file with in-memory content, owned by root.
    pub fn bytes(mode: u32, content: impl Into<Vec<u8>>) -> Node {
        let content = content.into();
        let size = content.len() as u64;
        Node { kind: NodeKind::File { size, source: FileSource::Bytes(content) }, mode, uid: 0, gid: 0 }
    }

    /// A file streamed from `source`, which must have `size` bytes, owned by root.
    pub fn file(mode: u32, size: u64, source: impl Into<PathBuf>) -> Node {
        Node { kind: NodeKind::File { size, source: FileSource::Path(source.into()) }, mode, uid: 0, gid: 0 }
    }

    /// A symlink (mode 0o777), owned by root.
    pub fn symlink(target: impl Into<String>) -> Node {
        Node { kind: NodeKind::Symlink { target: target.into() }, mode: 0o777, uid: 0, gid: 0 }
    }

    /// A hardlink to the earlier entry `target`, owned by root.
    pub fn hardlink(mode: u32, target: impl Into<String>) -> Node {
        Node { kind: NodeKind::Hardlink { target: target.into() }, mode, uid: 0, gid: 0 }
    }

    /// The same node with another owner.
    pub fn owned_by(self, uid: u64, gid: u64) -> Node {
        Node { uid, gid, ..self }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir)
    }
}

/// A layer's file system tree; see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Puts `node` at `path`, replacing what was there (as a later package
    /// or a later `COPY` source replaces an earlier file). Returns the node
    /// replaced.
    pub fn insert(&mut self, path: impl Into<String>, node: Node) -> Option<Node> {
        self.nodes.insert(path.into(), node)
    }

    /// Puts `node` at `path` unless something is there already (directories
    /// shared between packages keep the first one's metadata). Returns
    /// whether it was inserted.
    pub fn insert_if_absent(&mut self, path: impl Into<String>, node: Node) -> bool {
        let mut inserted = false;
        self.nodes.entry(path.into()).or_insert_with(|| {
            inserted = true;
            node
        });
        inserted
    }

    /// A whiteout for `path` (a file or directory of the layers below):
    /// stored as `parent/.wh.name`.
    pub fn whiteout(&mut self, path: &str) {
        let at = match path.rsplit_once('/') {
            Some((parent, name)) => format!("{parent}/{WHITEOUT_PREFIX}{name}"),
            None => format!("{WHITEOUT_PREFIX}{path}"),
        };
        self.nodes.insert(at, Node { kind: NodeKind::Whiteout, mode: 0, uid: 0, gid: 0 });
    }

    /// Makes the directory `dir` opaque: stored as `dir/.wh..wh..opq`.
    pub fn opaque(&mut self, dir: &str) {
        let at = if dir.is_empty() { OPAQUE_MARKER.to_owned() } else { format!("{dir}/{OPAQUE_MARKER}") };
        self.nodes.insert(at, Node { kind: NodeKind::Opaque, mode: 0, uid: 0, gid: 0 });
    }

    /// The node at `path`, if inserted (implied parents are not).
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Whether a node was inserted at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// Removes and returns the node at `path`.
    pub fn remove(&mut self, path: &str) -> Option<Node> {
        self.nodes.remove(path)
    }

    /// The number of inserted nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The inserted nodes in layer order, without implied parents.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(path, node)| (path.as_str(), node))
    }

    /// The inserted nodes in layer order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Node)> {
        self.nodes.iter_mut().map(|(path, node)| (path.as_str(), node))
    }

    /// Inserts every node of `other`, replacing nodes at the same paths.
    pub fn extend(&mut self, other: Tree) {
        self.nodes.extend(other.nodes);
    }

    /// Every entry of the layer in order: the inserted nodes and, before
    /// their children, the implied parent directories.
    pub fn entries(&self) -> Entries<'_> {
        let mut implied = BTreeSet::new();
        for path in self.nodes.keys() {
            let mut rest = path.as_str();
            while let Some((parent, _)) = rest.rsplit_once('/') {
                // An inserted parent has its own turn in this loop; an
                // implied one had its ancestors implied when it was.
                if self.nodes.contains_key(parent) || !implied.insert(parent) {
                    break;
                }
                rest = parent;
            }
        }
        Entries { nodes: self.nodes.iter().peekable(), implied: implied.into_iter().peekable() }
    }

    /// Writes the tree as one layer into `store`; the layer builder checks
    /// paths, links and modes (see [`crate::layer`]).
    pub fn write_layer(
        &self,
        store: &BlobStore,
        options: LayerOptions,
        compression: Compression,
    ) -> Result<Layer> {
        let mut builder = LayerBuilder::with_compression(store, options, compression)?;
        for (path, node) in self.entries() {
            builder.append_node(path, node)?;
        }
        builder.finish()
    }
}

impl FromIterator<(String, Node)> for Tree {
    fn from_iter<I: IntoIterator<Item = (String, Node)>>(iter: I) -> Tree {
        Tree { nodes: iter.into_iter().collect() }
    }
}

/// The entries of a [`Tree`] with its implied parents, in layer order.
#[derive(Debug)]
pub struct Entries<'a> {
    nodes: Peekable<std::collections::btree_map::Iter<'a, String, Node>>,
    implied: Peekable<std::collections::btree_set::IntoIter<&'a str>>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, &'a Node);

    fn next(&mut self) -> Option<Self::Item> {
        let implied_first = match (self.nodes.peek(), self.implied.peek()) {
            (Some((path, _)), Some(dir)) => dir.as_bytes() < path.as_bytes(),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if implied_first {
            self.implied.next().map(|dir| (dir, &IMPLIED_DIR))
        } else {
            self.nodes.next().map(|(path, node)| (path.as_str(), node))
        }
    }
}

/// A directory of temporary files holding content read from archives, each
/// hashed while written; see [`read_tar`].
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    next: u64,
}

impl Spool {
    /// Spools into `dir`, which is created if missing. File names are a
    /// counter, so one spool must be used for every archive whose files
    /// end up in the same tree.
    pub fn new(dir: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool { dir: dir.to_path_buf(), next: 0 })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `content` to a new spool file; returns its source and size.
    /// An error names the spool file or the content (`TarError::Read`).
    pub fn spool(
        &mut self,
        content: &mut impl Read,
    ) -> Result<(FileSource, u64), TarError<std::convert::Infallible>> {
        self.next += 1;
        let path = self.dir.join(self.next.to_string());
        let file = File::create(&path).map_err(|source| TarError::Spool { path: path.clone(), source })?;
        let mut out = HashingWriter::new(io::BufWriter::with_capacity(128 << 10, file));
        let spool_error = |source| TarError::Spool { path: path.clone(), source };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            // A read error is the content's, a write error the spool's.
            let n = match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(TarError::Read(e)),
            };
            out.write_all(&buf[..n]).map_err(spool_error)?;
        }
        let (digest, size, file) = out.finish();
        file.into_inner().map_err(|e| spool_error(e.into_error()))?;
        Ok((FileSource::Spooled { path, digest }, size))
    }
}

/// Why [`read_tar`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum TarError<E> {
    /// The archive could not be read (or is not a tar).
    #[error("reading the archive")]
    Read(#[source] io::Error),
    /// A spool file could not be written.
    #[error("spooling to {}", path.display())]
    Spool {
        /// The spool file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry's name or link target is not UTF-8: layers keep names as
    /// given, and replacing bytes could merge two files into one.
    #[error("the archive has an entry named `{name}` that is not valid UTF-8")]
    NonUtf8 {
        /// The name with its invalid bytes as `\xNN`.
        name: String,
    },
    /// An entry of a kind we cannot extract faithfully (a multi-volume
    /// header, an old sparse format): refused rather than dropped.
    #[error("the archive's entry `{name}` is {what}, which cannot be extracted")]
    Unsupported {
        /// The entry's name.
        name: String,
        /// What it is.
        what: String,
    },
    /// The visitor refused an entry.
    #[error(transparent)]
    Visit(E),
}

impl TarError<std::convert::Infallible> {
    fn widen<E>(self) -> TarError<E> {
        match self {
            TarError::Read(e) => TarError::Read(e),
            TarError::Spool { path, source } => TarError::Spool { path, source },
            TarError::NonUtf8 { name } => TarError::NonUtf8 { name },
            TarError::Unsupported { name, what } => TarError::Unsupported { name, what },
            TarError::Visit(never) => match never {},
        }
    }
}

/// Reads the tar stream `reader` and hands each entry to `visit` as a node
/// under its name (as in the archive: callers clean and map it, and the
/// targets of hard links; a name that is not UTF-8 is refused). Modes keep
/// their permission bits and owners are the archive's; regular files are
/// spooled into `spool` (constant memory, content digest known). Sparse
/// files (GNU, and PAX formats 0.1 and 1.0) are expanded; device nodes and
/// FIFOs are kept; global PAX headers are skipped; any other entry type is
/// refused ([`TarError::Unsupported`]), never dropped.
pub fn read_tar<E>(
    reader: impl Read,
    spool: &mut Spool,
    mut visit: impl FnMut(String, Node) -> std::result::Result<(), E>,
) -> std::result::Result<(), TarError<E>> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(TarError::Read)? {
        let mut entry = entry.map_err(TarError::Read)?;
        let sparse = pax_sparse(&mut entry).map_err(TarError::Read)?;
        let name = match &sparse {
            Some(PaxSparse { name: Some(real), .. }) => utf8(real.clone())?,
            _ => utf8(entry.path_bytes().into_owned())?,
        };
        let header = entry.header();
        let mode = header.mode().map_err(TarError::Read)? & 0o7777;
        let (uid, gid) = (header.uid().map_err(TarError::Read)?, header.gid().map_err(TarError::Read)?);
        let link = |entry: &tar::Entry<'_, _>| {
            utf8(entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default())
        };
        let device = |kind| -> std::result::Result<NodeKind, TarError<E>> {
            let major = header.device_major().map_err(TarError::Read)?.unwrap_or(0);
            let minor = header.device_minor().map_err(TarError::Read)?.unwrap_or(0);
            Ok(NodeKind::Device { kind, major, minor })
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => NodeKind::Dir,
            tar::EntryType::Symlink => NodeKind::Symlink { target: link(&entry)? },
            tar::EntryType::Link => NodeKind::Hardlink { target: link(&entry)? },
            tar::EntryType::Char => device(DeviceKind::Char)?,
            tar::EntryType::Block => device(DeviceKind::Block)?,
            tar::EntryType::Fifo => device(DeviceKind::Fifo)?,
            tar::EntryType::XGlobalHeader => continue,
            // The tar crate expands GNU sparse entries as they are read.
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let (source, size) = match sparse {
                    None => spool.spool(&mut entry).map_err(TarError::widen)?,
                    Some(sparse) => {
                        let mut expanded = sparse.reader(&mut entry, &name)?;
                        spool.spool(&mut expanded).map_err(TarError::widen)?
                    }
                };
                NodeKind::File { size, source }
            }
            other => {
                let what = format!("a tar entry of type `{}`", char::from(other.as_byte()).escape_default());
                return Err(TarError::Unsupported { name, what });
            }
        };
        visit(name, Node { kind, mode, uid, gid }).map_err(TarError::Visit)?;
    }
    Ok(())
}

/// A PAX sparse file (GNU tar's `--sparse --format=posix`): the real name
/// and size, and where the map of data segments is.
struct PaxSparse {
    /// `GNU.sparse.name`, the file's real name.
    name: Option<Vec<u8>>,
    /// `GNU.sparse.realsize` (or `GNU.sparse.size`), the expanded size.
    real_size: u64,
    /// Format 0.1's `GNU.sparse.map`; `None` for format 1.0, whose map
    /// starts the entry's data.
    map: Option<Vec<(u64, u64)>>,
}

/// The most segments a sparse map may list: beyond, the map is not a map.
const MAX_SPARSE_SEGMENTS: u64 = 1 << 20;

fn pax_sparse<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Option<PaxSparse>> {
    let invalid =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("invalid PAX sparse header: {what}"));
    let Some(extensions) = entry.pax_extensions()? else { return Ok(None) };
    let (mut major, mut minor, mut name, mut real_size, mut map, mut old_format) =
        (None, None, None, None, None, false);
    for extension in extensions {
        let extension = extension?;
        let value =
            || std::str::from_utf8(extension.value_bytes()).map_err(|_| invalid("a value is not UTF-8"));
        let number = || value()?.trim().parse::<u64>().map_err(|_| invalid("a number is not one"));
        match extension.key_bytes() {
            b"GNU.sparse.major" => major = Some(number()?),
            b"GNU.sparse.minor" => minor = Some(number()?),
            b"GNU.sparse.name" => name = Some(extension.value_bytes().to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => real_size = Some(number()?),
            b"GNU.sparse.map" => {
                let numbers: Vec<u64> = value()?
                    .split(',')
                    .map(|n| n.trim().parse::<u64>().map_err(|_| invalid("the map has a bad number")))
                    .collect::<io::Result<_>>()?;
                if !numbers.len().is_multiple_of(2) {
                    return Err(invalid("the map has an odd count of numbers"));
                }
                map = Some(numbers.chunks(2).map(|c| (c[0], c[1])).collect());
            }
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => old_format = true,
            _ => {}
        }
    }
    let Some(real_size) = real_size else { return Ok(None) };
    if old_format {
        return Err(invalid(
            "format 0.0 (GNU.sparse.offset) is not supported; repack with GNU tar 1.27 or later",
        ));
    }
    match (major, minor, &map) {
        (Some(1), Some(0), None) | (None | Some(0), None | Some(1), Some(_)) => {}
        _ => return Err(invalid("unknown format version")),
    }
    Ok(Some(PaxSparse { name, real_size, map }))
}

impl PaxSparse {
    /// A reader of the expanded content of the sparse entry `data`.
    fn reader<'r, R: Read, E>(
        self,
        data: &'r mut R,
        name: &str,
    ) -> std::result::Result<SparseReader<'r, R>, TarError<E>> {
        let invalid = |what: String| {
            TarError::Read(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sparse file `{name}`: {what}"),
            ))
        };
        let mut consumed = 0u64;
        let segments = match self.map {
            Some(map) => map,
            None => {
                // Format 1.0: decimal numbers, one a line (the count, then
                // offset and size pairs), padded to a 512-byte block.
                let mut line = |consumed: &mut u64| -> std::result::Result<u64, TarError<E>> {
                    let mut text = Vec::new();
                    loop {
                        let mut byte = [0u8];
                        data.read_exact(&mut byte).map_err(TarError::Read)?;
                        *consumed += 1;
                        if byte[0] == b'\n' {
                            break;
                        }
                        if text.len() >= 20 || !byte[0].is_ascii_digit() {
                            return Err(invalid("the map is not decimal numbers".into()));
                        }
                        text.push(byte[0]);
                    }
                    String::from_utf8_lossy(&text)
                        .parse()
                        .map_err(|_| invalid("an empty line in the map".into()))
                };
                let count = line(&mut consumed)?;
                if count > MAX_SPARSE_SEGMENTS {
                    return Err(invalid(format!("{count} segments")));
                }
                let mut map = Vec::new();
                for _ in 0..count {
                    map.push((line(&mut consumed)?, line(&mut consumed)?));
                }
                let padding = (512 - consumed % 512) % 512;
                io::copy(&mut data.take(padding), &mut io::sink()).map_err(TarError::Read)?;
                map
            }
        };
        let mut end = 0u64;
        for &(offset, size) in &segments {
            let segment_end =
                offset.checked_add(size).ok_or_else(|| invalid("a segment overflows".into()))?;
            if offset < end || segment_end > self.real_size {
                return Err(invalid("segments overlap, are out of order or pass the end".into()));
            }
            end = segment_end;
        }
        Ok(SparseReader {
            data,
            segments: segments.into_iter(),
            position: 0,
            current: None,
            real_size: self.real_size,
        })
    }
}

/// The expanded content of a sparse file: zeros between the data segments.
struct SparseReader<'r, R> {
    data: &'r mut R,
    segments: std::vec::IntoIter<(u64, u64)>,
    position: u64,
    /// The segment being read: its offset and size.
    current: Option<(u64, u64)>,
    real_size: u64,
}

impl<R: Read> Read for SparseReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let (offset, size) = match self.current {
                Some(segment) => segment,
                None => match self.segments.next() {
                    Some(segment) => {
                        self.current = Some(segment);
                        segment
                    }
                    // After the last segment, zeros up to the real size.
                    None => (self.real_size, 0),
                },
            };
            if self.position < offset {
                let n = buf.len().min(usize::try_from(offset - self.position).unwrap_or(usize::MAX));
                buf[..n].fill(0);
                self.position += n as u64;
                return Ok(n);
            }
            let end = offset + size;
            if self.position < end {
                let want = buf.len().min(usize::try_from(end - self.position).unwrap_or(usize::MAX));
                let n = self.data.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "sparse file data ends early"));
                }
                self.position += n as u64;
                return Ok(n);
            }
            if self.current.take().is_none() {
                return Ok(0);
            }
        }
    }
}

fn utf8<E>(bytes: Vec<u8>) -> std::result::Result<String, TarError<E>> {
    String::from_utf8(bytes).map_err(|e| TarError::NonUtf8 { name: escape_name(e.as_bytes()) })
}

/// A file name for messages: valid UTF-8 as it is, every other byte as
/// `\xNN`, so two names that differ only in invalid bytes stay apart.
pub fn escape_name(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    fn paths(tree: &Tree) -> Vec<String> {
        tree.entries().map(|(p, n)| format!("{p} {:o} {}", n.mode, n.uid)).collect()
    }

    #[test]
    fn parents_are_implied_once_and_explicit_ones_win() {
        let mut tree = Tree::new();
        tree.insert("a/b-x", Node::bytes(0o644, "x"));
        tree.insert("a/b/c", Node::bytes(0o644, "c"));
        tree.insert("a/b/d/e", Node::bytes(0o644, "e"));
        tree.insert("z/y", Node::symlink("../a"));
        assert_eq!(
            paths(&tree),
            [
                "a 755 0",
                "a/b 755 0",
                "a/b-x 644 0",
                "a/b/c 644 0",
                "a/b/d 755 0",
                "a/b/d/e 644 0",
                "z 755 0",
                "z/y 777 0"
            ]
        );
        tree.insert("a/b", Node::dir(0o700).owned_by(1000, 1000));
        assert!(!tree.insert_if_absent("a/b", Node::dir(0o755)));
        assert_eq!(paths(&tree)[..2], ["a 755 0", "a/b 700 1000"]);
        // Sorted by bytes, not components: `a/b-x` before `a/b/c`.
        assert_eq!(paths(&tree)[2], "a/b-x 644 0");
    }

    #[test]
    fn whiteouts_sort_under_their_tar_names() {
        let mut tree = Tree::new();
        tree.whiteout("etc/gone");
        tree.opaque("opt");
        tree.whiteout("top");
        tree.insert("etc/kept", Node::bytes(0o644, ""));
        let listed: Vec<&str> = tree.entries().map(|(p, _)| p).collect();
        assert_eq!(listed, [".wh.top", "etc", "etc/.wh.gone", "etc/kept", "opt", "opt/.wh..wh..opq"]);
    }

    #[test]
    fn tar_entries_become_nodes_with_spooled_content() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o100755);
        header.set_uid(7);
        header.set_gid(0);
        header.set_size(5);
        tar.append_data(&mut header, "./bin/tool", &b"hello"[..]).unwrap();
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(tar::EntryType::Link);
        link.set_mode(0o644);
        link.set_uid(0);
        link.set_gid(0);
        link.set_size(0);
        tar.append_link(&mut link, "bin/again", "/bin/tool").unwrap();
        let bytes = tar.into_inner().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(&dir.path().join("spool")).unwrap();
        let mut seen = Vec::new();
        read_tar::<()>(&bytes[..], &mut spool, |name, node| {
            seen.push((name, node));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "bin/tool");
        assert_eq!((seen[0].1.mode, seen[0].1.uid), (0o755, 7));
        let NodeKind::File { size: 5, source: FileSource::Spooled { path, digest } } = &seen[0].1.kind else {
            panic!("{:?}", seen[0].1)
        };
        assert_eq!(std::fs::read(path).unwrap(), b"hello");
        assert_eq!(*digest, Digest::of(b"hello"));
        assert_eq!(seen[1].1.kind, NodeKind::Hardlink { target: "/bin/tool".into() });
        // Names that are not UTF-8 are refused, never replaced.
        let mut odd = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_cksum();
        odd.append_data(&mut header, std::ffi::OsStr::from_bytes(b"src/c\xff"), &b"one"[..]).unwrap();
        let odd = odd.into_inner().unwrap();
        let err = read_tar::<()>(&odd[..], &mut spool, |_, _| Ok(())).unwrap_err();
        assert!(matches!(&err, TarError::NonUtf8 { name } if name == "src/c\\xff"), "{err:?}");
        let refused = read_tar(&bytes[..], &mut spool, |_, _| Err("no"));
        assert!(matches!(refused, Err(TarError::Visit("no"))));
        assert!(matches!(
            read_tar::<()>(&b"not a tar at all"[..], &mut spool, |_, _| Ok(())),
            Err(TarError::Read(_))
        ));
    }
}

#[cfg(test)]
mod special_entries {
    use std::process::Command;

    use super::*;

    fn read_all(archive: &[u8], spool: &mut Spool) -> std::result::Result<Vec<(String, Node)>, TarError<()>> {
        let mut seen = Vec::new();
        read_tar::<()>(archive, spool, |name, node| {
            seen.push((name, node));
            Ok(())
        })?;
        Ok(seen)
    }

    fn content(node: &Node) -> Vec<u8> {
        let NodeKind::File { source, size } = &node.kind else { panic!("{node:?}") };
        let bytes = std::fs::read(source.path().unwrap()).unwrap();
        assert_eq!(bytes.len() as u64, *size);
        bytes
    }

    /// GNU tar's sparse formats come out as the file they were made from.
    #[test]
    fn sparse_files_are_expanded() {
        let dir = tempfile::tempdir().unwrap();
        let mut sparse = File::create(dir.path().join("s")).unwrap();
        use std::io::{Seek, SeekFrom};
        sparse.seek(SeekFrom::Start(1 << 20)).unwrap();
        sparse.write_all(b"hello").unwrap();
        sparse.seek(SeekFrom::Start(3 << 20)).unwrap();
        sparse.write_all(b"end").unwrap();
        drop(sparse);
        let original = std::fs::read(dir.path().join("s")).unwrap();
        let mut spool = Spool::new(&dir.path().join("spool")).unwrap();
        for (archive, args) in [
            ("gnu.tar", &["--format=gnu"][..]),
            ("pax1.tar", &["--format=posix"][..]),
            ("pax01.tar", &["--format=posix", "--sparse-version=0.1"][..]),
            ("pax00.tar", &["--format=posix", "--sparse-version=0.0"][..]),
        ] {
            let made = Command::new("tar")
                .current_dir(dir.path())
                .args(["--sparse", "-cf", archive])
                .args(args)
                .arg("s")
                .status();
            if !made.is_ok_and(|s| s.success()) {
                eprintln!("skipped {archive}: GNU tar cannot make it here");
                continue;
            }
            let bytes = std::fs::read(dir.path().join(archive)).unwrap();
            let read = read_all(&bytes, &mut spool);
            if archive == "pax00.tar" {
                let err = read.unwrap_err();
                assert!(format!("{:?}", err).contains("format 0.0"), "{err:?}");
                continue;
            }
            let seen = read.unwrap_or_else(|e| panic!("{archive}: {e:?}"));
            assert_eq!(seen.len(), 1, "{archive}: {seen:?}");
            assert_eq!(seen[0].0, "s", "{archive}");
            assert!(content(&seen[0].1) == original, "{archive}: content differs");
        }
    }

    #[test]
    fn devices_and_fifos_are_kept_and_unknown_entries_refused() {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, kind, major, minor) in [
            ("dev/null", tar::EntryType::Char, 1, 3),
            ("dev/sda", tar::EntryType::Block, 8, 0),
            ("run/fifo", tar::EntryType::Fifo, 0, 0),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(kind);
            header.set_mode(0o666);
            header.set_size(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_device_major(major).unwrap();
            header.set_device_minor(minor).unwrap();
            tar.append_data(&mut header, name, io::empty()).unwrap();
        }
        let bytes = tar.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(&dir.path().join("spool")).unwrap();
        let seen = read_all(&bytes, &mut spool).unwrap();
        let kinds: Vec<(&str, &NodeKind)> = seen.iter().map(|(n, node)| (n.as_str(), &node.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("dev/null", &NodeKind::Device { kind: DeviceKind::Char, major: 1, minor: 3 }),
                ("dev/sda", &NodeKind::Device { kind: DeviceKind::Block, major: 8, minor: 0 }),
                ("run/fifo", &NodeKind::Device { kind: DeviceKind::Fifo, major: 0, minor: 0 }),
            ]
        );

        // Written into a layer, they read back the same.
        let tree: Tree = seen.into_iter().collect();
        let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
        let layer = tree.write_layer(&store, LayerOptions { mtime: 0 }, Compression::None).unwrap();
        let mut layer_tar = tar::Archive::new(File::open(store.path(&layer.digest)).unwrap());
        let entries: Vec<(String, u8, Option<u32>, Option<u32>)> = layer_tar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                (name, h.entry_type().as_byte(), h.device_major().unwrap(), h.device_minor().unwrap())
            })
            .collect();
        assert_eq!(entries[1], ("dev/null".to_string(), b'3', Some(1), Some(3)));
        assert_eq!(entries[2], ("dev/sda".to_string(), b'4', Some(8), Some(0)));
        assert_eq!(entries[4], ("run/fifo".to_string(), b'6', Some(0), Some(0)));

        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::new(b'V'));
        header.set_size(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o644);
        tar.append_data(&mut header, "volume", io::empty()).unwrap();
        let bytes = tar.into_inner().unwrap();
        let err = read_all(&bytes, &mut spool).unwrap_err();
        assert!(matches!(&err, TarError::Unsupported { name, .. } if name == "volume"), "{err:?}");
    }
}
