//! What a build's `RUN` changed, as a layer [`Tree`]: the upper directory
//! of its overlay read against the root below it.
//!
//! The overlay's upper directory holds exactly what the command created,
//! changed (copied up) or deleted: a whiteout is a character device 0/0,
//! a directory that replaced one below carries `user.overlay.opaque=y`
//! (the overlay is mounted with `userxattr`). Each path there is compared
//! with the lower root: a file copied up whose content, mode and owner are
//! unchanged (only touched, or rewritten the same) is left out, as is a
//! directory whose metadata is unchanged and under which nothing changed.
//! Parents of what changed are written with their own metadata (not the
//! 0755 root directory a tree implies), files that share an inode become
//! one file and hard links to it, and OCI's `.wh.` whiteouts and
//! `.wh..wh..opq` opaque markers replace the overlay's. Files are moved
//! into a spool directory (renamed when it is on the same file system),
//! so the layer can be written after the run's directory is gone.
//!
//! Owners: the sandbox maps one id, the `RUN`'s user, to this process's
//! id; files owned by this process are the `RUN` user's (root's, unless
//! `USER` says otherwise). Modification times are not compared or kept:
//! every layer's mtimes are `SOURCE_DATE_EPOCH`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use forge_oci::{DeviceKind, Node, NodeKind, Tree};

use crate::error::{Error, Result};

/// How host owners map to the image's.
#[derive(Debug, Clone, Copy)]
pub struct Owners {
    /// This process's uid and gid (what the sandbox's user is on the host).
    pub host: (u32, u32),
    /// The `RUN`'s uid and gid in the image.
    pub run: (u32, u32),
}

impl Owners {
    fn map(&self, meta: &Metadata) -> (u64, u64) {
        let uid = if meta.uid() == self.host.0 { self.run.0 } else { meta.uid() };
        let gid = if meta.gid() == self.host.1 { self.run.1 } else { meta.gid() };
        (uid.into(), gid.into())
    }
}

/// The changes in the overlay upper directory `upper` over `lower`, with
/// file content moved to `spool`; `skip` are paths (relative, no leading
/// `/`) that the sandbox itself created as mount points, left out when
/// `lower` lacks them.
pub fn overlay_changes(
    lower: &Path,
    upper: &Path,
    owners: Owners,
    spool: &Path,
    skip: &[String],
) -> Result<Tree> {
    let mut diff =
        Diff { owners, spool: spool.to_owned(), next: 0, tree: Tree::new(), inodes: BTreeMap::new() };
    diff.dir(upper, Some(lower), "")?;
    for path in skip {
        diff.drop_mount_point(lower, path);
    }
    diff.link_inodes();
    Ok(diff.tree)
}

struct Diff {
    owners: Owners,
    spool: PathBuf,
    next: u64,
    tree: Tree,
    /// Regular files by (device, inode), to make hard links of them.
    inodes: BTreeMap<(u64, u64), Vec<String>>,
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
    move |e| Error::io(op, path, e)
}

impl Diff {
    /// Reads the upper directory `dir` (the image's `rel`), whose lower
    /// counterpart is `lower` when that is a real directory; returns
    /// whether anything below it went into the tree.
    fn dir(&mut self, dir: &Path, lower: Option<&Path>, rel: &str) -> Result<bool> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(io_err("listing", dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(io_err("listing", dir))?;
        names.sort();
        let mut changed = false;
        for name in names {
            let path = dir.join(&name);
            let name = name.to_str().ok_or_else(|| {
                Error::io(
                    "reading",
                    &path,
                    io::Error::other("a name that is not UTF-8 cannot go into a layer"),
                )
            })?;
            let child = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
            let meta = fs::symlink_metadata(&path).map_err(io_err("reading metadata of", &path))?;
            let below = lower.map(|l| l.join(name));
            let below_meta = below.as_deref().and_then(|b| fs::symlink_metadata(b).ok());
            changed |= self.entry(&path, &meta, below.as_deref(), below_meta.as_ref(), &child)?;
        }
        Ok(changed)
    }

    fn entry(
        &mut self,
        path: &Path,
        meta: &Metadata,
        below: Option<&Path>,
        below_meta: Option<&Metadata>,
        rel: &str,
    ) -> Result<bool> {
        let kind = meta.file_type();
        let (uid, gid) = self.owners.map(meta);
        let mode = meta.mode() & 0o7777;
        if kind.is_char_device() && meta.rdev() == 0 {
            // The overlay's whiteout: something below was deleted.
            if below_meta.is_some() {
                self.tree.whiteout(rel);
                return Ok(true);
            }
            return Ok(false);
        }
        let owners = self.owners;
        let same_owner_mode = |b: &Metadata| owners.map(b) == (uid, gid) && b.mode() & 0o7777 == mode;
        if kind.is_dir() {
            let below_dir = below_meta.filter(|b| b.is_dir());
            let opaque = below_dir.is_some() && is_opaque(path);
            let lower = if opaque { None } else { below_dir.and(below) };
            let inner = self.dir(path, lower, rel)?;
            let changed = below_dir.is_none_or(|b| !same_owner_mode(b)) || opaque;
            if changed || inner {
                self.tree.insert(rel, Node { kind: NodeKind::Dir, mode, uid, gid });
            }
            if opaque {
                self.tree.opaque(rel);
            }
            return Ok(changed || inner);
        }
        if kind.is_file() {
            if let (Some(b), Some(bm)) = (below, below_meta) {
                if bm.is_file() && bm.len() == meta.len() && same_owner_mode(bm) && same_content(path, b)? {
                    return Ok(false);
                }
            }
            let source = self.spool_file(path, meta)?;
            self.inodes.entry((meta.dev(), meta.ino())).or_default().push(rel.to_string());
            self.tree.insert(rel, Node { kind: NodeKind::File { size: meta.len(), source }, mode, uid, gid });
            return Ok(true);
        }
        if kind.is_symlink() {
            let target = fs::read_link(path).map_err(io_err("reading the symlink", path))?;
            let target = target.to_str().ok_or_else(|| {
                Error::io("reading the symlink", path, io::Error::other("a target that is not UTF-8"))
            })?;
            if let (Some(b), Some(bm)) = (below, below_meta) {
                let same = bm.file_type().is_symlink()
                    && fs::read_link(b).is_ok_and(|t| t.as_os_str().as_bytes() == target.as_bytes())
                    && self.owners.map(bm) == (uid, gid);
                if same {
                    return Ok(false);
                }
            }
            self.tree.insert(rel, Node::symlink(target).owned_by(uid, gid));
            return Ok(true);
        }
        if kind.is_fifo() {
            let node = NodeKind::Device { kind: DeviceKind::Fifo, major: 0, minor: 0 };
            self.tree.insert(rel, Node { kind: node, mode, uid, gid });
            return Ok(true);
        }
        // Sockets (and devices, which the sandbox cannot make): a layer
        // has no place for a socket, and Docker leaves them out too.
        Ok(false)
    }

    /// Moves the content of `path` into the spool (copies it when the
    /// spool is on another file system). A file with several names is
    /// moved once.
    fn spool_file(&mut self, path: &Path, meta: &Metadata) -> Result<forge_oci::FileSource> {
        if let Some(first) = self.inodes.get(&(meta.dev(), meta.ino())).and_then(|paths| paths.first()) {
            if let Some(Node { kind: NodeKind::File { source, .. }, .. }) = self.tree.get(first) {
                return Ok(source.clone());
            }
        }
        self.next += 1;
        let dest = self.spool.join(format!("run-{}", self.next));
        if fs::rename(path, &dest).is_err() {
            fs::copy(path, &dest).map_err(io_err("copying into the spool", path))?;
        }
        Ok(forge_oci::FileSource::Path(dest))
    }

    /// Leaves out a mount point the sandbox made (and the directories it
    /// made for it) where the root below has nothing.
    fn drop_mount_point(&mut self, lower: &Path, path: &str) {
        let mut rel = path.trim_matches('/').to_string();
        while !rel.is_empty() {
            if fs::symlink_metadata(lower.join(&rel)).is_ok() {
                return;
            }
            let has_children = self.tree.iter().any(|(p, _)| p.starts_with(&format!("{rel}/")));
            if has_children || self.tree.remove(&rel).is_none() {
                return;
            }
            rel = rel.rsplit_once('/').map(|(parent, _)| parent.to_string()).unwrap_or_default();
        }
    }

    /// Files that share an inode: the first by layer order stays a file,
    /// the others become hard links to it.
    fn link_inodes(&mut self) {
        for paths in self.inodes.values() {
            let mut paths = paths.clone();
            paths.sort();
            let Some((first, rest)) = paths.split_first() else { continue };
            for path in rest {
                if let Some(node) = self.tree.get(path).cloned() {
                    let link = Node::hardlink(node.mode, first.clone()).owned_by(node.uid, node.gid);
                    self.tree.insert(path.clone(), link);
                }
            }
        }
    }
}

/// Whether the upper directory `dir` hides the lower one (overlay's
/// opaque marker, with `userxattr`).
fn is_opaque(dir: &Path) -> bool {
    let mut value = [0u8; 4];
    rustix::fs::lgetxattr(dir, "user.overlay.opaque", &mut value).is_ok_and(|n| n == 1 && value[0] == b'y')
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    let mut fa = io::BufReader::new(fs::File::open(a).map_err(io_err("opening", a))?);
    let mut fb = io::BufReader::new(fs::File::open(b).map_err(io_err("opening", b))?);
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(io_err("reading", a))?;
        let m = read_full(&mut fb, &mut bb).map_err(io_err("reading", b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }

    fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }
}

/// The relative layer path of an absolute image path.
pub(crate) fn rel(path: &str) -> String {
    Path::new(OsStr::new(path.trim_start_matches('/'))).to_string_lossy().into_owned()
}
