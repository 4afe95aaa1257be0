//! The temporaries of a run (blob and index temp files, spool directories,
//! tarballs being written), named after the process that made them:
//! `.tmp-<pid>-…`, `spool-<pid>-…`, `debian-spool-<pid>-…`.
//!
//! The name is what makes cleaning up safe without stopping anyone: on
//! SIGINT or SIGTERM a run removes its own ([`remove_ours`], which xtask's
//! signal handler calls), and every store opened removes those of processes
//! that are gone ([`Scope::Stale`]) after a `kill -9` or a power cut, never
//! one a live build is writing. `cargo xtask image gc` holds the store
//! exclusively ([`crate::store::gc`]), so there every temporary is stale
//! ([`Scope::All`], including those of older versions without a pid).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The prefixes of temporaries, before the pid.
const PREFIXES: [&str; 3] = [".tmp-", "spool-", "debian-spool-"];

/// Directories in which this process makes temporaries, for [`remove_ours`].
static DIRS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// The prefix of a temporary of this process: `.tmp-` becomes `.tmp-<pid>-`.
pub fn prefix(kind: &str) -> String {
    format!("{kind}{}-", std::process::id())
}

/// Remembers that this process makes temporaries in `dir` (not
/// recursively), so that [`remove_ours`] looks there.
pub fn register_dir(dir: &Path) {
    if let Ok(mut dirs) = DIRS.lock() {
        dirs.insert(dir.to_path_buf());
    }
}

/// Which temporaries [`remove`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Those of this process (it is stopping).
    Ours,
    /// Those of processes that no longer run.
    Stale,
    /// All of them: nobody else is using the directory.
    All,
}

/// What [`remove`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Files and directories removed.
    pub count: u64,
    /// Their size in bytes.
    pub bytes: u64,
}

impl Removed {
    fn add(&mut self, other: Removed) {
        self.count += other.count;
        self.bytes += other.bytes;
    }
}

/// Removes the temporaries directly in `dir` that `scope` covers. Best
/// effort: what cannot be removed stays for a later run.
pub fn remove(dir: &Path, scope: Scope) -> Removed {
    let mut removed = Removed::default();
    let Ok(entries) = fs::read_dir(dir) else { return removed };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(owner) = owner(name) else { continue };
        let covered = match (scope, owner) {
            (Scope::All, _) => true,
            (Scope::Ours, Some(pid)) => pid == std::process::id(),
            (Scope::Stale, Some(pid)) => pid != std::process::id() && !is_running(pid),
            (Scope::Ours | Scope::Stale, None) => false,
        };
        if covered {
            removed.add(remove_path(&entry.path()));
        }
    }
    removed
}

/// [`remove`] in `dir` and every directory below it (the tarball tree,
/// `images/<registry>/...`); temporaries are not looked into.
pub fn remove_under(dir: &Path, scope: Scope) -> Removed {
    let mut removed = remove(dir, scope);
    let Ok(entries) = fs::read_dir(dir) else { return removed };
    for entry in entries.flatten() {
        let is_dir = entry.file_type().is_ok_and(|ft| ft.is_dir());
        let is_temporary = entry.file_name().to_str().is_some_and(|n| owner(n).is_some());
        if is_dir && !is_temporary {
            removed.add(remove_under(&entry.path(), scope));
        }
    }
    removed
}

/// Removes the temporaries of this process in every directory it made
/// them in; for a signal handler, before the process exits.
pub fn remove_ours() -> Removed {
    remove_ours_in(&registered())
}

/// The directories this process made temporaries in ([`register_dir`]).
fn registered() -> Vec<PathBuf> {
    DIRS.lock().map(|d| d.iter().cloned().collect()).unwrap_or_default()
}

fn remove_ours_in(dirs: &[PathBuf]) -> Removed {
    let mut removed = Removed::default();
    for dir in dirs {
        removed.add(remove(dir, Scope::Ours));
    }
    removed
}

/// Whether `name` is a temporary: `Some(Some(pid))` with its maker's pid,
/// `Some(None)` for one without a pid (made by an older version).
fn owner(name: &str) -> Option<Option<u32>> {
    // `debian-spool-` first: `spool-` would not match it anyway, but a
    // longer prefix must win.
    let rest = PREFIXES.iter().rev().find_map(|p| name.strip_prefix(p))?;
    let pid = rest.split_once('-').and_then(|(pid, _)| pid.parse::<u32>().ok());
    Some(pid)
}

/// Whether a process `pid` exists (Linux `/proc`); where that cannot be
/// told, it is taken to run, so nothing of it is removed.
fn is_running(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

fn remove_path(path: &Path) -> Removed {
    let Ok(meta) = fs::symlink_metadata(path) else { return Removed::default() };
    if meta.is_dir() {
        let bytes = walk_size(path);
        match fs::remove_dir_all(path) {
            Ok(()) => Removed { count: 1, bytes },
            Err(_) => Removed::default(),
        }
    } else {
        match fs::remove_file(path) {
            Ok(()) => Removed { count: 1, bytes: meta.len() },
            Err(_) => Removed::default(),
        }
    }
}

fn walk_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(ft) if ft.is_dir() => walk_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_their_owner() {
        assert_eq!(owner(".tmp-123-abc"), Some(Some(123)));
        assert_eq!(owner("spool-9-x"), Some(Some(9)));
        assert_eq!(owner("debian-spool-77-x"), Some(Some(77)));
        assert_eq!(owner(".tmpXYZ"), None);
        assert_eq!(owner(".tmp-abcdef"), Some(None));
        assert_eq!(owner("index.json"), None);
        assert!(prefix(".tmp-").starts_with(&format!(".tmp-{}-", std::process::id())));
    }

    #[test]
    fn only_what_the_scope_covers_is_removed() {
        // A process that has exited: its pid names a stale temporary.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ours = format!(".tmp-{}-a", std::process::id());
        let stale = format!(".tmp-{dead}-b");
        let live = ".tmp-1-c".to_string(); // init always runs
        let spool = format!("spool-{dead}-d");
        for name in [&ours, &stale, &live] {
            fs::write(dir.path().join(name), "12345").unwrap();
        }
        fs::create_dir_all(dir.path().join(&spool).join("inner")).unwrap();
        fs::write(dir.path().join(&spool).join("inner/1"), "123").unwrap();
        fs::write(dir.path().join(".tmp-legacy"), "1").unwrap();
        fs::write(dir.path().join("kept"), "1").unwrap();
        let names = || {
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        assert_eq!(remove(dir.path(), Scope::Stale), Removed { count: 2, bytes: 8 });
        let mut expected = vec![ours.clone(), ".tmp-1-c".into(), ".tmp-legacy".into(), "kept".into()];
        expected.sort();
        assert_eq!(names(), expected);
        // `remove_ours` itself would also clear the temporaries that tests
        // running beside this one have in their own registered directories.
        register_dir(dir.path());
        assert!(registered().iter().any(|d| d.as_path() == dir.path()));
        assert_eq!(remove_ours_in(&[dir.path().to_path_buf()]), Removed { count: 1, bytes: 5 });
        assert_eq!(names(), [".tmp-1-c", ".tmp-legacy", "kept"]);
        assert_eq!(remove(dir.path(), Scope::All).count, 2);
        assert_eq!(names(), ["kept"]);
    }
}
