//! Read access to an image's file system as a native installer needs it:
//! the files of the layers below a `RUN`, merged, with whiteouts and opaque
//! directories applied, without unpacking anything to disk.
//!
//! [`ImageFiles`] is the seam: an installer (pip's, apt's) asks it what
//! the image has (`/etc/os-release`, `/var/lib/dpkg/status`, the
//! `.dist-info` directories of a `site-packages`) and never sees layers.
//! [`Stack`] puts planned layer [`Tree`]s over a lower view (the base
//! image's layers), so a `RUN` sees what the `COPY`s before it added, as it
//! would in Docker. [`ImageLayers`] is the view of an image in a store:
//! its layers' headers merged, each file read from the layer that holds it.
//!
//! Paths are relative to the image root, without a leading `/`, with `/`
//! between components (`etc/os-release`). A path given with a leading `/`
//! is accepted and means the same. Symlinks are followed inside the image
//! by [`resolve`]: an absolute target restarts at the image root, `..`
//! never leaves it, and at most [`MAX_SYMLINKS`] links are followed.

use std::collections::BTreeSet;
use std::io::{self, Read};

use crate::tree::{FileSource, Node, NodeKind, Tree, OPAQUE_MARKER, WHITEOUT_PREFIX};

mod layers;
pub use layers::ImageLayers;

/// Linux's own limit on symlinks followed in one lookup.
pub const MAX_SYMLINKS: usize = 40;

/// What an installer may read of the image it installs into; see the
/// [module docs](self).
pub trait ImageFiles {
    /// The entry at `path` as stored (a symlink is returned as a symlink),
    /// or `None` when the image has nothing there. Components before the
    /// last are taken literally (not followed); use [`resolve`] first for
    /// a path that may cross a symlinked directory.
    fn node(&self, path: &str) -> Option<Node>;

    /// The names (not paths) of the entries directly in the directory
    /// `dir` (`""` for the root), sorted; empty when there is none.
    fn list(&self, dir: &str) -> Vec<String>;

    /// Opens the content of the regular file at `path` (taken literally,
    /// as [`ImageFiles::node`]); `None` when it is not a regular file.
    fn open(&self, path: &str) -> io::Result<Option<Box<dyn Read + '_>>>;

    /// Says that the small regular files at `paths` (taken literally, as
    /// [`ImageFiles::open`]) are about to be read, so that a view that
    /// decompresses layers reads them in one pass; the default does
    /// nothing. Reading them afterwards gives the same bytes either way.
    fn prefetch(&self, paths: &[String]) -> io::Result<()> {
        let _ = paths;
        Ok(())
    }
}

/// Normalises a path given to [`ImageFiles`]: no leading or trailing `/`,
/// no empty or `.` components.
pub fn normalize(path: &str) -> String {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

/// Go's `filepath.Clean` on a `/`-separated path: empty and `.`
/// components dropped, `..` taken lexically (never above `/` in a rooted
/// path, kept at the start of a relative one), `.` for nothing. Docker's
/// rules for `COPY` sources, `WORKDIR`s and `.dockerignore` patterns, and
/// the names in archives, all go through it.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// `path` with every symlink in it followed inside the image (see the
/// [module docs](self)); `None` when a component is missing or the links
/// loop. The final path exists (as something other than a symlink).
pub fn resolve(files: &dyn ImageFiles, path: &str) -> Option<String> {
    let path = normalize(path);
    match walk(files, path.split('/').filter(|c| !c.is_empty()), false) {
        Walk::Found(found) => Some(found),
        Walk::Missing | Walk::Loop | Walk::NotADirectory(_) => None,
    }
}

/// Where [`walk`] ended.
pub(crate) enum Walk {
    /// At this path (its last component is not a symlink).
    Found(String),
    /// A component is not there.
    Missing,
    /// More than [`MAX_SYMLINKS`] links.
    Loop,
    /// This path, met before the last component, is neither a directory
    /// nor a symlink.
    NotADirectory(String),
}

/// Follows `components` through `files`, every symlink followed inside the
/// image (an absolute target restarts at the root, `..` stops there). With
/// `imply`, missing components are taken as the directories a runtime
/// would create, so the walk finds where an entry would land.
pub(crate) fn walk<'c>(
    files: &dyn ImageFiles,
    components: impl Iterator<Item = &'c str>,
    imply: bool,
) -> Walk {
    let mut pending: Vec<String> = components.map(str::to_owned).collect();
    pending.reverse();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(component) = pending.pop() {
        if component == ".." {
            done.pop();
            continue;
        }
        if component == "." {
            continue;
        }
        done.push(component);
        let here = done.join("/");
        match files.node(&here).map(|node| node.kind) {
            Some(NodeKind::Symlink { target }) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Walk::Loop;
                }
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                for part in target.split('/').rev().filter(|c| !c.is_empty() && *c != ".") {
                    pending.push(part.to_owned());
                }
            }
            Some(NodeKind::Dir) => {}
            Some(_) if pending.is_empty() => {}
            Some(_) => return Walk::NotADirectory(here),
            None if imply => {}
            None => return Walk::Missing,
        }
    }
    Walk::Found(done.join("/"))
}

/// Reads the regular file at `path` (symlinks followed), refusing more
/// than `limit` bytes; `None` when there is no such file.
pub fn read(files: &dyn ImageFiles, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let Some(real) = resolve(files, path) else { return Ok(None) };
    let Some(mut reader) = files.open(&real)? else { return Ok(None) };
    let mut bytes = Vec::new();
    (&mut reader).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/{real} in the image is larger than {limit} bytes"),
        ));
    }
    Ok(Some(bytes))
}

/// The regular file at `path` as text (symlinks followed); see [`read`].
pub fn read_to_string(files: &dyn ImageFiles, path: &str, limit: u64) -> io::Result<Option<String>> {
    match read(files, path, limit)? {
        Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, format!("/{path} in the image is not UTF-8"))
        }),
        None => Ok(None),
    }
}

/// An image with nothing in it (`FROM scratch`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Empty;

impl ImageFiles for Empty {
    fn node(&self, _: &str) -> Option<Node> {
        None
    }

    fn list(&self, _: &str) -> Vec<String> {
        Vec::new()
    }

    fn open(&self, _: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        Ok(None)
    }
}

/// Layer trees over a lower view, the last tree on top; see the
/// [module docs](self). A tree's whiteouts hide what is below it, its
/// opaque markers empty their directory of what is below, and its implied
/// parent directories exist.
pub struct Stack<'a> {
    lower: &'a dyn ImageFiles,
    layers: Vec<&'a Tree>,
}

impl std::fmt::Debug for Stack<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("layers", &self.layers.len()).finish_non_exhaustive()
    }
}

impl<'a> Stack<'a> {
    /// `layers` (bottom first) over `lower`.
    pub fn new(lower: &'a dyn ImageFiles, layers: impl IntoIterator<Item = &'a Tree>) -> Stack<'a> {
        Stack { lower, layers: layers.into_iter().collect() }
    }
}

/// What one tree says about `path`.
enum Says {
    /// It has this node.
    Node(Node),
    /// It hides the path (a whiteout of it or of a parent, or an opaque
    /// parent), so nothing below counts.
    Hidden,
    /// It has nothing to say; look below.
    Nothing,
}

fn tree_says(tree: &Tree, path: &str) -> Says {
    if let Some(node) = tree.get(path) {
        return match node.kind {
            NodeKind::Whiteout | NodeKind::Opaque => Says::Hidden,
            _ => Says::Node(node.clone()),
        };
    }
    // A whiteout of the path itself or of one of its parents, or an opaque
    // marker in a parent, hides it.
    let mut prefix = String::new();
    let components: Vec<&str> = path.split('/').collect();
    for (index, component) in components.iter().enumerate() {
        let whiteout = if prefix.is_empty() {
            format!("{WHITEOUT_PREFIX}{component}")
        } else {
            format!("{prefix}/{WHITEOUT_PREFIX}{component}")
        };
        if tree.contains(&whiteout) {
            return Says::Hidden;
        }
        let opaque =
            if prefix.is_empty() { OPAQUE_MARKER.to_owned() } else { format!("{prefix}/{OPAQUE_MARKER}") };
        if index > 0 && tree.contains(&opaque) {
            // The directory itself stays (the tree has it, implied or
            // inserted); what is below it in lower layers is hidden.
            return Says::Hidden;
        }
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(component);
    }
    // An implied parent directory of an inserted node.
    let dir = format!("{path}/");
    if tree.iter().any(|(p, _)| p.starts_with(&dir)) {
        return Says::Node(Node::dir(0o755));
    }
    Says::Nothing
}

impl ImageFiles for Stack<'_> {
    fn node(&self, path: &str) -> Option<Node> {
        let path = normalize(path);
        if path.is_empty() {
            return Some(Node::dir(0o755));
        }
        for tree in self.layers.iter().rev() {
            match tree_says(tree, &path) {
                Says::Node(node) => return Some(node),
                Says::Hidden => return None,
                Says::Nothing => {}
            }
        }
        self.lower.node(&path)
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let dir = normalize(dir);
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let mut names = BTreeSet::new();
        let mut candidates: BTreeSet<String> = self.lower.list(&dir).into_iter().collect();
        for tree in &self.layers {
            for (path, _) in tree.iter() {
                if let Some(rest) = path.strip_prefix(&prefix) {
                    let name = rest.split('/').next().unwrap_or(rest);
                    if !name.is_empty() && !name.starts_with(WHITEOUT_PREFIX) {
                        candidates.insert(name.to_owned());
                    }
                }
            }
        }
        for name in candidates {
            if self.node(&format!("{prefix}{name}")).is_some() {
                names.insert(name);
            }
        }
        names.into_iter().collect()
    }

    fn open(&self, path: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        let path = normalize(path);
        for tree in self.layers.iter().rev() {
            match tree_says(tree, &path) {
                Says::Node(node) => return open_node(node),
                Says::Hidden => return Ok(None),
                Says::Nothing => {}
            }
        }
        self.lower.open(&path)
    }
}

fn open_node(node: Node) -> io::Result<Option<Box<dyn Read + 'static>>> {
    match node.kind {
        NodeKind::File { source: FileSource::Bytes(bytes), .. } => Ok(Some(Box::new(io::Cursor::new(bytes)))),
        NodeKind::File { source: FileSource::Path(path), .. }
        | NodeKind::File { source: FileSource::Spooled { path, .. }, .. } => {
            // Never blocks: a FIFO swapped in since the plan is refused.
            Ok(Some(Box::new(forge_input::open_regular(&path).map_err(io::Error::other)?)))
        }
        _ => Ok(None),
    }
}

impl ImageFiles for Tree {
    fn node(&self, path: &str) -> Option<Node> {
        Stack::new(&Empty, [self]).node(path)
    }

    fn list(&self, dir: &str) -> Vec<String> {
        Stack::new(&Empty, [self]).list(dir)
    }

    fn open(&self, path: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        match self.get(&normalize(path)) {
            Some(node) => open_node(node.clone()),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Tree {
        let mut tree = Tree::new();
        tree.insert("etc/os-release", Node::bytes(0o644, "ID=debian\n"));
        tree.insert("usr/lib/python3.11/os.py", Node::bytes(0o644, "# os\n"));
        tree.insert("usr/lib/python3/dist-packages/old.txt", Node::bytes(0o644, "old"));
        tree.insert("lib", Node::symlink("usr/lib"));
        tree.insert("usr/bin/python3", Node::symlink("python3.11"));
        tree.insert("usr/bin/python3.11", Node::bytes(0o755, "ELF"));
        tree.insert("loop", Node::symlink("/loop"));
        tree
    }

    #[test]
    fn clean_is_gos_filepath_clean() {
        for (path, cleaned) in [
            ("", "."),
            (".", "."),
            ("./a//b/", "a/b"),
            ("/../a", "/a"),
            ("a//b/./c/", "a/b/c"),
            ("a/../../b", "../b"),
            ("../../a", "../../a"),
            ("/../a/..", "/"),
            ("/a/b/../c", "/a/c"),
            ("//x", "/x"),
        ] {
            assert_eq!(clean(path), cleaned, "{path}");
        }
    }

    #[test]
    fn resolves_symlinks_inside_the_image() {
        let tree = base();
        assert_eq!(resolve(&tree, "/lib/python3.11/os.py").as_deref(), Some("usr/lib/python3.11/os.py"));
        assert_eq!(resolve(&tree, "usr/bin/python3").as_deref(), Some("usr/bin/python3.11"));
        assert_eq!(resolve(&tree, "../../../etc/os-release").as_deref(), Some("etc/os-release"));
        assert_eq!(resolve(&tree, "loop"), None);
        assert_eq!(resolve(&tree, "etc/missing"), None);
        assert_eq!(read_to_string(&tree, "/etc/os-release", 100).unwrap().as_deref(), Some("ID=debian\n"));
        assert!(read(&tree, "etc/os-release", 3).is_err());
        assert_eq!(read(&tree, "usr/bin", 100).unwrap(), None);
    }

    #[test]
    fn upper_trees_hide_and_add() {
        let lower = base();
        let mut upper = Tree::new();
        upper.whiteout("usr/lib/python3/dist-packages/old.txt");
        upper.insert("usr/local/lib/python3.11/dist-packages/new.py", Node::bytes(0o644, "new"));
        upper.insert("etc/os-release", Node::bytes(0o644, "ID=other\n"));
        let mut opaque = Tree::new();
        opaque.opaque("usr/lib/python3.11");
        let stack = Stack::new(&lower, [&upper, &opaque]);
        assert_eq!(stack.node("usr/lib/python3/dist-packages/old.txt"), None);
        assert_eq!(stack.list("usr/lib/python3/dist-packages"), Vec::<String>::new());
        assert_eq!(stack.list("usr/local/lib/python3.11"), vec!["dist-packages".to_string()]);
        assert!(stack.node("usr/local/lib").is_some_and(|n| n.is_dir()));
        assert_eq!(stack.node("usr/lib/python3.11/os.py"), None);
        assert_eq!(read_to_string(&stack, "etc/os-release", 100).unwrap().as_deref(), Some("ID=other\n"));
        assert_eq!(stack.list("usr/bin"), vec!["python3".to_string(), "python3.11".to_string()]);
    }
}
