//! `COPY --from=STAGE|IMAGE`: files of another stage's image (or of an
//! image) copied into a layer, read through forge-oci's merged view of the
//! image ([`ImageFiles`]: its layers, whiteouts and symlinks applied),
//! never unpacked.
//!
//! The step is planned with its sources, destination and options
//! ([`CopyFrom`]); its tree is made at execute time, once the image it
//! reads exists, by [`tree`]. Docker's rules: sources are paths from the
//! image's root (globs match one component at a time, symlinks on the way
//! and a symlink named as the source are followed), a directory copies its
//! contents, several sources need a destination ending in `/`; files keep
//! their mode and owner from the image (unlike a `COPY` from the context)
//! unless `--chmod`/`--chown` say otherwise; a destination directory the
//! copy creates is 0755 and root's (or `--chown`'s). Contents are spooled
//! (hashed while written), so the layer's cache key is known without
//! reading them again. Hard links are copied as regular files.

use std::path::Path;

use forge_dockerfile::Position;
use forge_oci::files::{clean, resolve};
use forge_oci::{Digest, ImageFiles, Node, NodeKind, Spool, Tree};

use crate::context::{component_matcher, join, layer_path, CopyOptions};
use crate::error::{BuildError, Refusal};

/// What a `COPY --from` step reads and where it puts it; see the [module
/// docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFrom {
    /// The stage or image it reads.
    pub source: CopySource,
    /// The source paths, expanded, each with where it is written.
    pub sources: Vec<(String, Position)>,
    /// The destination, expanded.
    pub dest: String,
    /// The stage's working directory, which a relative destination is in.
    pub workdir: String,
    /// `--chown`, `--chmod`.
    pub options: CopyOptions,
}

/// What `--from` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// A stage of the same Dockerfile, built first.
    Stage {
        /// Its index (`0` is the first `FROM`).
        index: usize,
        /// Its name, or its index when it has none.
        label: String,
    },
    /// An image, resolved (and pulled) like a `FROM`'s base.
    Image {
        /// The reference as given.
        reference: String,
        /// The manifest found for the build's platform.
        digest: Digest,
    },
}

impl CopySource {
    fn describe(&self) -> String {
        match self {
            CopySource::Stage { label, .. } => format!("stage `{label}`"),
            CopySource::Image { reference, .. } => format!("image `{reference}`"),
        }
    }
}

/// The tree of `copy` over `files`, the image it reads, with file contents
/// spooled into `spool`; errors point into `dockerfile` at the instruction
/// (`at`) or the source they are about.
pub(crate) fn tree(
    files: &dyn ImageFiles,
    copy: &CopyFrom,
    spool: &mut Spool,
    dockerfile: &Path,
    at: Position,
) -> Result<Tree, BuildError> {
    let error = |position: Position, refusal: Refusal| BuildError::Dockerfile {
        file: dockerfile.to_path_buf(),
        line: position.line,
        column: position.column,
        message: refusal.message,
        help: refusal.help,
    };
    let what = copy.source.describe();
    let dest = &copy.dest;
    let dest_is_dir = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
    let dest_abs = layer_path(&crate::context::resolve(&copy.workdir, dest));
    let mut matched = Vec::new();
    for (source, position) in &copy.sources {
        let found = matches(files, source).map_err(|r| error(*position, r))?;
        if found.is_empty() {
            return Err(error(
                *position,
                Refusal::new(format!("`{source}` not found in {what}"))
                    .help("COPY --from sources are paths from the root of the stage or image it names"),
            ));
        }
        matched.extend(found.into_iter().map(|(name, real)| (name, real, *position)));
    }
    if matched.len() > 1 && !dest_is_dir {
        return Err(error(
            at,
            Refusal::new(format!(
                "`{dest}` must be a directory ending in `/`: more than one source file is copied"
            ))
            .help(format!("write `{dest}/`")),
        ));
    }
    let (uid, gid) = copy.options.chown.unwrap_or((0, 0));
    let mut copier = Copier { files, options: copy.options, spool, what: &what, tree: Tree::new() };
    for (name, real, position) in matched {
        let node = if real.is_empty() { Some(Node::dir(0o755)) } else { files.node(&real) };
        let Some(node) = node else { continue };
        if node.is_dir() {
            if !dest_abs.is_empty() {
                copier.tree.insert(
                    dest_abs.clone(),
                    Node::dir(copy.options.chmod.unwrap_or(0o755)).owned_by(uid, gid),
                );
            }
            copier.dir(&real, &dest_abs).map_err(|r| error(position, r))?;
        } else {
            let target = if dest_is_dir { join(&dest_abs, &name) } else { dest_abs.clone() };
            if target.is_empty() {
                return Err(error(
                    position,
                    Refusal::new("cannot copy a file onto `/`").help("name a destination file or directory"),
                ));
            }
            copier.entry(&real, node, target).map_err(|r| error(position, r))?;
        }
    }
    Ok(copier.tree)
}

/// The paths `pattern` names in `files`: (the name it was matched by, the
/// path with every symlink followed), sorted by name within each directory.
fn matches(files: &dyn ImageFiles, pattern: &str) -> Result<Vec<(String, String)>, Refusal> {
    let cleaned = clean(&format!("/{pattern}"));
    let mut current = vec![(String::new(), String::new())];
    for component in cleaned.split('/').filter(|c| !c.is_empty()) {
        let matcher = component_matcher(component, pattern)?;
        let mut next = Vec::new();
        for (_, path) in &current {
            let Some(dir) = resolve(files, path) else { continue };
            match &matcher {
                None => {
                    let candidate = join(&dir, component);
                    if files.node(&candidate).is_some() {
                        next.push((component.to_string(), candidate));
                    }
                }
                Some(matcher) => {
                    for name in files.list(&dir).into_iter().filter(|n| matcher.is_match(n)) {
                        let candidate = join(&dir, &name);
                        next.push((name, candidate));
                    }
                }
            }
        }
        current = next;
    }
    Ok(current.into_iter().filter_map(|(name, path)| Some((name, resolve(files, &path)?))).collect())
}

/// Copying entries of an image into a tree.
struct Copier<'a> {
    files: &'a dyn ImageFiles,
    options: CopyOptions,
    spool: &'a mut Spool,
    what: &'a str,
    tree: Tree,
}

impl Copier<'_> {
    /// The contents of the directory `dir` of the image, below `dest`.
    fn dir(&mut self, dir: &str, dest: &str) -> Result<(), Refusal> {
        for name in self.files.list(dir) {
            let path = join(dir, &name);
            let Some(node) = self.files.node(&path) else { continue };
            let target = join(dest, &name);
            if node.is_dir() {
                self.tree.insert(target.clone(), self.owned(node));
                self.dir(&path, &target)?;
            } else {
                self.entry(&path, node, target)?;
            }
        }
        Ok(())
    }

    /// One entry other than a directory, at `target`.
    fn entry(&mut self, path: &str, node: Node, target: String) -> Result<(), Refusal> {
        let node = match node.kind {
            NodeKind::File { .. } | NodeKind::Hardlink { .. } => {
                let unreadable = |e: &dyn std::fmt::Display| {
                    Refusal::new(format!("reading `/{path}` of {}: {e}", self.what))
                };
                let mut reader = self.files.open(path).map_err(|e| unreadable(&e))?.ok_or_else(|| {
                    Refusal::new(format!("`/{path}` of {} cannot be read as a file", self.what))
                })?;
                let (source, size) = self.spool.spool(&mut reader).map_err(|e| unreadable(&e))?;
                Node { kind: NodeKind::File { size, source }, ..node }
            }
            NodeKind::Whiteout | NodeKind::Opaque => return Ok(()),
            _ => node,
        };
        self.tree.insert(target, self.owned(node));
        Ok(())
    }

    /// `node` with `--chown`'s owner and `--chmod`'s mode, if given.
    fn owned(&self, node: Node) -> Node {
        let (uid, gid) = self.options.chown.unwrap_or((node.uid, node.gid));
        let mode = match (&node.kind, self.options.chmod) {
            (NodeKind::Symlink { .. }, _) | (_, None) => node.mode,
            (_, Some(mode)) => mode,
        };
        Node { mode, ..node }.owned_by(uid, gid)
    }
}
