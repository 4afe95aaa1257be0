//! The file tree an image's layers make, listed without unpacking: what
//! the build's image checks look at (is there a `python` on the `PATH`,
//! does `/workdir/src/main.py` exist) before anyone runs the image.
//!
//! Each layer is read once through the store's one layer reader
//! ([`BlobStore::open_uncompressed`], the blob's digest verified) with
//! forge-oci's one tar reader, only the tar headers are kept, and OCI whiteouts and opaque directories
//! are applied as [`mod@crate::unpack`] applies them. Entry paths are taken
//! literally; symlinks are followed when a path is looked up, inside the
//! image (an absolute target restarts at the image's root), as a container
//! runtime resolves a program.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};
use std::ops::Bound;

use forge_oci::entries::{EntryKind, LayerReader, Marker, ReadError};
use forge_oci::{BlobStore, Digest, Image};

use crate::error::{Error, Result};

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

/// One entry of the image's final file tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file (or a hardlink to one) with its permission bits.
    File {
        /// The mode's permission bits.
        mode: u32,
    },
    /// A symbolic link and its target as stored.
    Symlink(String),
    /// A device, FIFO or other special file.
    Other,
}

/// The final file tree of an image: every path (relative, `/`-separated,
/// no `./`) and what is there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageTree {
    nodes: BTreeMap<String, Node>,
}

impl ImageTree {
    /// Lists the layers of `image` in order, applying whiteouts.
    pub fn read(store: &BlobStore, image: &Image) -> Result<ImageTree> {
        let mut tree = ImageTree::default();
        for desc in image.manifest.layers() {
            let digest = Digest::from_descriptor(desc)?;
            let mut reader = store.open_uncompressed(desc).map_err(crate::unpack::unsupported_layer)?;
            tree.apply_layer(&mut reader)
                .and_then(|()| reader.finish().map(drop))
                .map_err(|source| Error::ReadLayer { layer: digest, source })?;
        }
        Ok(tree)
    }

    /// A tree of `(path, node)` pairs, for tests and callers that list
    /// trees some other way.
    pub fn from_nodes<'a>(nodes: impl IntoIterator<Item = (&'a str, Node)>) -> ImageTree {
        ImageTree { nodes: nodes.into_iter().map(|(p, n)| (normalise(p), n)).collect() }
    }

    fn apply_layer(&mut self, reader: impl Read) -> io::Result<()> {
        let mut archive = LayerReader::new(reader);
        let mut written: HashSet<String> = HashSet::new();
        for entry in archive.entries().map_err(ReadError::into_io)? {
            let entry = entry.map_err(ReadError::into_io)?;
            let path = entry.path();
            if path.is_empty() {
                continue;
            }
            let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent).to_owned();
            match entry.marker() {
                Some(Marker::Opaque) => {
                    let below: Vec<String> =
                        self.below(&parent).filter(|p| !written.contains(*p)).map(str::to_owned).collect();
                    for p in below {
                        self.nodes.remove(&p);
                    }
                    continue;
                }
                Some(Marker::Whiteout(hidden)) => {
                    let hidden =
                        if parent.is_empty() { hidden.to_owned() } else { format!("{parent}/{hidden}") };
                    self.remove_subtree(&hidden);
                    continue;
                }
                None => {}
            }
            let link = || String::from_utf8_lossy(entry.link_bytes().unwrap_or_default()).into_owned();
            let node = match entry.kind {
                EntryKind::Dir => Node::Dir,
                EntryKind::File { .. } => Node::File { mode: entry.mode().unwrap_or(0o644) },
                EntryKind::Hardlink => self.nodes.get(&normalise(&link())).cloned().unwrap_or(Node::Other),
                EntryKind::Symlink => Node::Symlink(link()),
                EntryKind::Device { .. } | EntryKind::Other(_) => Node::Other,
            };
            if node != Node::Dir {
                self.remove_subtree(&path);
            }
            written.insert(path.clone());
            self.nodes.insert(path, node);
        }
        // The padding after the end-of-archive blocks, so that the
        // verifying reader sees the whole blob and checks its digest.
        io::copy(&mut archive.into_inner(), &mut io::sink())?;
        Ok(())
    }

    /// Paths strictly below `dir` ("" is the root).
    fn below<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        self.nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .map(|(p, _)| p.as_str())
            .take_while(move |p| p.starts_with(&prefix))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn remove_subtree(&mut self, path: &str) {
        let below: Vec<String> = self.below(path).map(str::to_owned).collect();
        for p in below {
            self.nodes.remove(&p);
        }
        self.nodes.remove(path);
    }

    /// What an absolute or relative `path` names, every symlink followed
    /// inside the image; `None` when something on the way is missing, a
    /// loop, or not a directory.
    pub fn resolve(&self, path: &str) -> Option<&Node> {
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: std::collections::VecDeque<String> =
            path.split('/').filter(|c| !c.is_empty() && *c != ".").map(str::to_owned).collect();
        let mut links = 0;
        let mut last: Option<&Node> = Some(&Node::Dir);
        while let Some(component) = pending.pop_front() {
            if !matches!(last, Some(Node::Dir)) {
                return None;
            }
            if component == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(component);
            let key = resolved.join("/");
            match self.nodes.get(&key) {
                Some(Node::Symlink(target)) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return None;
                    }
                    resolved.pop();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    let mut next: std::collections::VecDeque<String> =
                        target.split('/').filter(|c| !c.is_empty() && *c != ".").map(str::to_owned).collect();
                    next.extend(pending.drain(..));
                    pending = next;
                    last = Some(&Node::Dir);
                }
                Some(node) => last = Some(node),
                // A directory that only exists as the parent of entries.
                None if self.below(&key).next().is_some() => last = Some(&Node::Dir),
                None => return None,
            }
        }
        last
    }

    /// Whether `path` is a regular file with an execute bit, after symlinks.
    pub fn is_executable(&self, path: &str) -> bool {
        matches!(self.resolve(path), Some(Node::File { mode }) if mode & 0o111 != 0)
    }

    /// Whether `path` is a regular file, after symlinks.
    pub fn is_file(&self, path: &str) -> bool {
        matches!(self.resolve(path), Some(Node::File { .. }))
    }

    /// The first `dir/program` on `path` (a `PATH` value) that is an
    /// executable file, as `execvp` looks it up.
    pub fn which(&self, program: &str, path: &str) -> Option<String> {
        path.split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
            .find(|candidate| self.is_executable(candidate))
    }
}

/// `./a//b/` → `a/b`.
fn normalise(path: &str) -> String {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> ImageTree {
        ImageTree::from_nodes([
            ("bin", Node::Symlink("usr/bin".into())),
            ("usr/bin/python3.11", Node::File { mode: 0o755 }),
            ("usr/bin/python3", Node::Symlink("python3.11".into())),
            ("usr/bin/python", Node::Symlink("/usr/bin/python3".into())),
            ("usr/bin/dash", Node::File { mode: 0o755 }),
            ("usr/bin/sh", Node::Symlink("dash".into())),
            ("usr/bin/notes", Node::File { mode: 0o644 }),
            ("loop", Node::Symlink("loop".into())),
            ("workdir/src/main.py", Node::File { mode: 0o644 }),
        ])
    }

    #[test]
    fn lookups_follow_symlinks_inside_the_image() {
        let tree = tree();
        assert!(tree.is_executable("/bin/sh"));
        assert!(tree.is_executable("/usr/bin/python"));
        assert!(!tree.is_executable("/usr/bin/notes"));
        assert!(tree.is_file("/workdir/src/main.py"));
        assert!(tree.is_file("/workdir/../workdir/src/./main.py"));
        assert!(!tree.is_file("/workdir/src/train.py"));
        assert_eq!(tree.resolve("/loop/x"), None);
        assert_eq!(tree.resolve("/workdir/src/main.py/x"), None);
        assert_eq!(tree.which("python", "/usr/local/bin:/usr/bin:/bin").as_deref(), Some("/usr/bin/python"));
        assert_eq!(tree.which("python", "relative:/sbin"), None);
    }
}
