//! Which plugins a run is about: every plugin of the monorepo
//! ([`discover`]), or the ones named on the command line ([`select`]), by
//! path (relative to the root or to the working directory) or by directory
//! name when that is unambiguous.

use std::path::{Path, PathBuf};

use forge_manifest::PLUGINS_DIR;

use crate::Error;

/// Every plugin under `ROOT/plugins`, relative to the root, sorted.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>, Error> {
    Ok(forge_manifest::discover(root)?.plugins)
}

/// The plugin among `all` that `wanted` names: a path relative to the root
/// (`plugins/import/csv`) or to the working directory, or a directory name
/// (`csv`) only one plugin has.
pub fn select(root: &Path, all: &[PathBuf], wanted: &str) -> Result<PathBuf, Error> {
    let as_path = Path::new(wanted.trim_end_matches('/'));
    if let Some(found) = all.iter().find(|p| p.as_path() == as_path) {
        return Ok(found.clone());
    }
    // A path given relative to the working directory.
    if let (Ok(abs), Ok(root_abs)) = (as_path.canonicalize(), root.canonicalize()) {
        if let Some(found) =
            abs.strip_prefix(&root_abs).ok().and_then(|rel| all.iter().find(|p| p.as_path() == rel))
        {
            return Ok(found.clone());
        }
    }
    let by_name: Vec<&PathBuf> = all.iter().filter(|p| p.file_name().is_some_and(|n| n == wanted)).collect();
    match by_name.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::NoSuchPlugin {
            wanted: wanted.to_string(),
            dir: root.join(PLUGINS_DIR),
            known: all.to_vec(),
        }),
        many => Err(Error::AmbiguousPlugin {
            wanted: wanted.to_string(),
            candidates: many.iter().map(|p| (*p).clone()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins() -> Vec<PathBuf> {
        ["plugins/import/csv", "plugins/export/csv", "plugins/nn/yolo"].iter().map(PathBuf::from).collect()
    }

    #[test]
    fn by_path_or_unique_name() {
        let root = Path::new("/nonexistent/repo");
        let all = plugins();
        assert_eq!(select(root, &all, "plugins/import/csv").unwrap(), PathBuf::from("plugins/import/csv"));
        assert_eq!(select(root, &all, "plugins/nn/yolo/").unwrap(), PathBuf::from("plugins/nn/yolo"));
        assert_eq!(select(root, &all, "yolo").unwrap(), PathBuf::from("plugins/nn/yolo"));
    }

    #[test]
    fn unknown_and_ambiguous_names_say_what_exists() {
        let root = Path::new("/nonexistent/repo");
        let all = plugins();
        assert_eq!(
            select(root, &all, "nope").unwrap_err().to_string(),
            "no plugin `nope` under /nonexistent/repo/plugins; plugins are: \
             plugins/import/csv, plugins/export/csv, plugins/nn/yolo"
        );
        assert_eq!(
            select(root, &all, "csv").unwrap_err().to_string(),
            "`csv` names several plugins (plugins/import/csv, plugins/export/csv); give the path"
        );
    }

    #[test]
    fn a_path_relative_to_the_working_directory() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path().join("plugins/nn/yolo");
        std::fs::create_dir_all(&dir).unwrap();
        let absolute = dir.to_str().unwrap();
        assert_eq!(select(repo.path(), &plugins(), absolute).unwrap(), PathBuf::from("plugins/nn/yolo"));
    }
}
