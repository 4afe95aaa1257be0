//! The one description of a layer's file system tree.
//!
//! Everything that makes a layer describes it as a [`Tree`] first: `COPY`
//! and `ADD` planning, archives read with [`read_tar`](crate::read_tar), a root filesystem
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
use std::io::{self, Read};
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use crate::compression::Compression;
use crate::digest::{CopyError, Digest, HashingWriter};
use crate::entries::TarError;
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
    /// A file of a stored image, as [`ImageLayers`](crate::files::ImageLayers)
    /// lists it: its content is read with
    /// [`ImageFiles::open`](crate::ImageFiles::open). A layer cannot be
    /// written from it as it is (insert the bytes, or spool them, first).
    Layer {
        /// The digest of the layer blob that holds the content.
        layer: Digest,
    },
}

impl FileSource {
    /// The file on disk holding the content, if it is not in memory.
    pub fn path(&self) -> Option<&Path> {
        match self {
            FileSource::Path(path) | FileSource::Spooled { path, .. } => Some(path),
            FileSource::Bytes(_) | FileSource::Layer { .. } => None,
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

    /// The bytes of file content the tree's layer holds (which picks the
    /// layer's encoder, [`crate::compression::Encoder::sized`]).
    pub fn content_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|node| match node.kind {
                NodeKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }

    /// Writes the tree as one layer into `store`; the layer builder checks
    /// paths, links and modes (see [`crate::layer`]).
    pub fn write_layer(
        &self,
        store: &BlobStore,
        options: LayerOptions,
        compression: Compression,
    ) -> Result<Layer> {
        let mut builder = LayerBuilder::sized(store, options, compression, self.content_bytes())?;
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
/// hashed while written; see [`read_tar`](crate::read_tar).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    next: u64,
    /// Whether `dir` was made (a lazy spool makes it at its first file).
    made: bool,
}

impl Spool {
    /// Spools into `dir`, which is created if missing. File names are a
    /// counter, so one spool must be used for every archive whose files
    /// end up in the same tree.
    pub fn new(dir: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool { dir: dir.to_path_buf(), next: 0, made: true })
    }

    /// A spool into `dir`, which is made only when a first file is spooled
    /// (most builds spool nothing).
    pub fn lazy(dir: PathBuf) -> Spool {
        Spool { dir, next: 0, made: false }
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
        if !self.made {
            std::fs::create_dir_all(&self.dir)
                .map_err(|source| TarError::Spool { path: self.dir.clone(), source })?;
            self.made = true;
        }
        self.next += 1;
        let path = self.dir.join(self.next.to_string());
        let file = File::create(&path).map_err(|source| TarError::Spool { path: path.clone(), source })?;
        let mut out = HashingWriter::new(io::BufWriter::with_capacity(128 << 10, file));
        let spool_error = |source| TarError::Spool { path: path.clone(), source };
        // A read error is the content's, a write error the spool's.
        out.copy_from(content).map_err(|e| match e {
            CopyError::Read(e) => TarError::Read(e),
            CopyError::Write(e) => spool_error(e),
        })?;
        let (digest, size, file) = out.finish();
        file.into_inner().map_err(|e| spool_error(e.into_error()))?;
        Ok((FileSource::Spooled { path, digest }, size))
    }
}

#[cfg(test)]
mod tests {

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
}
