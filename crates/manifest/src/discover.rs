//! Finding the plugins of a monorepo: every directory below `plugins/`, at
//! any depth, that holds a `plugin_info.json`.

use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::plugin::{DOCKERFILE, PLUGIN_INFO, VERSION};
use crate::ManifestError;

/// What a walk of `ROOT/plugins` found. Paths are relative to the root.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Plugin directories, sorted.
    pub plugins: Vec<PathBuf>,
    /// Directories that look like a plugin (a `Dockerfile` or a `VERSION`)
    /// but have no `plugin_info.json`, with the file that gave them away.
    pub orphans: Vec<(PathBuf, &'static str)>,
    /// Directories that could not be read; the walk went on past them.
    pub errors: Vec<ManifestError>,
}

/// The directory that holds the plugins of the monorepo at `root`.
pub const PLUGINS_DIR: &str = "plugins";

/// Walks `root/plugins`. Symbolic links are not followed, hidden directories
/// (`.git`, `.venv`) and caches are skipped, and a plugin's own
/// subdirectories are not searched for more plugins.
pub fn discover(root: &Path) -> Result<Discovery, ManifestError> {
    let plugins_dir = root.join(PLUGINS_DIR);
    if !plugins_dir.is_dir() {
        return Err(ManifestError::NoPluginsDir { root: root.to_path_buf() });
    }
    let mut found = Discovery::default();
    let mut walk = WalkDir::new(&plugins_dir).follow_links(false).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err.path().unwrap_or(&plugins_dir);
                let path = path.strip_prefix(root).unwrap_or(path).to_path_buf();
                let source = err.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop"));
                found.errors.push(forge_input::IoError::new("reading", path, source).into());
                continue;
            }
        };
        if !entry.file_type().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if entry.depth() > 0 && (name.starts_with('.') || matches!(&*name, "__pycache__" | "node_modules")) {
            walk.skip_current_dir();
            continue;
        }
        let dir = entry.path();
        let rel = dir.strip_prefix(root).unwrap_or(dir).to_path_buf();
        if dir.join(PLUGIN_INFO).exists() {
            found.plugins.push(rel);
            walk.skip_current_dir();
        } else if let Some(marker) = [DOCKERFILE, VERSION].into_iter().find(|m| dir.join(m).is_file()) {
            found.orphans.push((rel, marker));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn finds_plugins_at_any_depth_and_reports_orphans() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for dir in [
            "plugins/a",
            "plugins/group/b/src",
            "plugins/group/orphan",
            "plugins/.hidden/c",
            "plugins/a/nested",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in [
            "plugins/a/plugin_info.json",
            "plugins/a/nested/plugin_info.json",
            "plugins/group/b/plugin_info.json",
            "plugins/.hidden/c/plugin_info.json",
        ] {
            fs::write(root.join(file), "{}").unwrap();
        }
        fs::write(root.join("plugins/group/orphan/Dockerfile"), "FROM x").unwrap();
        let found = discover(root).unwrap();
        assert_eq!(found.plugins, [PathBuf::from("plugins/a"), PathBuf::from("plugins/group/b")]);
        assert_eq!(found.orphans, [(PathBuf::from("plugins/group/orphan"), "Dockerfile")]);
        assert!(found.errors.is_empty());
    }

    #[test]
    fn missing_plugins_dir_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = discover(tmp.path()).unwrap_err();
        assert!(matches!(err, ManifestError::NoPluginsDir { .. }), "{err}");
    }
}
