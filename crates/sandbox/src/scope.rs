//! Paths inside a root filesystem that never lead out of it.
//!
//! Layer entries and symlinks come from the image author. An entry
//! `etc/x` below a symlink `etc -> /etc` must land in the root filesystem's
//! `etc`, not the host's, and `evil -> ../../..` must not let `evil/x`
//! climb out. So parents are resolved one component at a time with
//! `symlink_metadata`, symlinks are followed *as if the root were `/`* (an
//! absolute target restarts at the root, as in a chroot or containerd's
//! `fs.RootPath`), and a `..` that would go above the root is refused.
//! The last component of an entry is never followed: the entry replaces
//! whatever is there.
//!
//! This is free of races only because nobody else writes into the fresh
//! temporary directory while we unpack; it is not a defence against a
//! concurrent attacker on the host.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use crate::error::EntryError;

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

/// The components of a tar entry path (or hardlink target), which must be
/// relative and free of `..`. `./` prefixes, `.` components and trailing
/// slashes are dropped; no components at all means the root itself.
pub(crate) fn clean(raw: &[u8]) -> Result<Vec<OsString>, EntryError> {
    let unsafe_path = |reason| EntryError::UnsafePath { reason };
    if raw.is_empty() {
        return Err(unsafe_path("the path is empty"));
    }
    if raw.starts_with(b"/") {
        return Err(unsafe_path("absolute paths are not allowed in layers"));
    }
    let mut components = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(unsafe_path("`..` components are not allowed in layers")),
            name => components.push(OsStr::from_bytes(name).to_owned()),
        }
    }
    Ok(components)
}

/// The directory `components` name under `root`, following symlinks within
/// the root and creating missing directories (mode 0755, as tar does).
pub(crate) fn resolve_dir(root: &Path, components: &[OsString]) -> Result<PathBuf, EntryError> {
    walk(root, components, true).map(|found| found.unwrap_or_else(|| root.to_owned()))
}

/// What `components` name under `root`, every symlink followed within the
/// root; `None` when something on the way is missing or not a directory.
pub(crate) fn resolve_existing(root: &Path, components: &[OsString]) -> Result<Option<PathBuf>, EntryError> {
    walk(root, components, false)
}

fn walk(root: &Path, components: &[OsString], create: bool) -> Result<Option<PathBuf>, EntryError> {
    let mut resolved = PathBuf::new();
    let mut pending: VecDeque<OsString> = components.iter().cloned().collect();
    let mut last_link = PathBuf::new();
    let mut links = 0;
    while let Some(component) = pending.pop_front() {
        if component == "." {
            continue;
        }
        if component == ".." {
            if !resolved.pop() {
                return Err(EntryError::EscapingSymlink { link: last_link.display().to_string() });
            }
            continue;
        }
        let relative = resolved.join(&component);
        let full = root.join(&relative);
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(EntryError::SymlinkLoop);
                }
                let target = fs::read_link(&full).map_err(|e| EntryError::io("reading link", &full, e))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut next: VecDeque<OsString> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(name) => Some(name.to_owned()),
                        Component::ParentDir => Some("..".into()),
                        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
                    })
                    .collect();
                next.extend(pending.drain(..));
                pending = next;
                last_link = relative;
            }
            Ok(meta) if meta.is_dir() => resolved = relative,
            Ok(_) if !create && pending.is_empty() => resolved = relative,
            Ok(_) if !create => return Ok(None),
            Ok(_) => return Err(EntryError::NotADirectory { parent: relative.display().to_string() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                DirBuilder::new()
                    .mode(0o755)
                    .create(&full)
                    .map_err(|e| EntryError::io("creating directory", &full, e))?;
                resolved = relative;
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Ok(None)
            }
            Err(e) => return Err(EntryError::io("reading metadata of", &full, e)),
        }
    }
    Ok(Some(root.join(resolved)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(parts: &[&str]) -> Vec<OsString> {
        parts.iter().map(OsString::from).collect()
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean(b"./a//b/./c/").unwrap(), names(&["a", "b", "c"]));
        assert_eq!(clean(b"./").unwrap(), names(&[]));
        assert!(clean(b"/etc/passwd").is_err());
        assert!(clean(b"a/../../b").is_err());
        assert!(clean(b"..").is_err());
        assert!(clean(b"").is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/usr", root.join("abs")).unwrap();
        symlink("../../..", root.join("usr/up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(resolve_dir(root, &names(&["lib", "x"])).unwrap(), root.join("usr/lib/x"));
        assert_eq!(resolve_dir(root, &names(&["abs", "lib"])).unwrap(), root.join("usr/lib"));
        assert!(matches!(
            resolve_dir(root, &names(&["usr", "up", "x"])),
            Err(EntryError::EscapingSymlink { .. })
        ));
        assert!(matches!(resolve_dir(root, &names(&["loop", "x"])), Err(EntryError::SymlinkLoop)));
        assert_eq!(resolve_existing(root, &names(&["abs", "nothing"])).unwrap(), None);
    }
}
