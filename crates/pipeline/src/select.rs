//! Which plugins a run is about: every plugin of the monorepo
//! ([`discover`]), or the ones named on the command line ([`select`]), by
//! path (relative to the root or to the working directory) or by directory
//! name when that is unambiguous; and one [`Shard`] of them (`--shard
//! K/N`), for N CI runners that split the work.
//!
//! A plugin's shard is a hash of its path relative to the root, never its
//! position in the list: adding or removing a plugin moves no other plugin
//! to another shard, so each runner's caches stay warm.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use forge_builder::{BuildOptions, Workspace};
use forge_oci::Digest;

use crate::{store_dir, SessionOptions};

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

/// Which of the plugins a run is about are built: those of one shard
/// (`--shard K/N`) whose inputs changed since a commit (`--changed-since
/// GITREF`, see [`crate::inputs`]); every one by default.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only the plugins of this shard.
    pub shard: Option<Shard>,
    /// Only the plugins whose build inputs differ from this commit.
    pub changed_since: Option<String>,
}

impl Selection {
    /// The plugins of `plugins` selected, in their order. Nothing is built
    /// (`--changed-since` plans the plugins, over bases left unresolved).
    pub fn apply(&self, options: &SessionOptions, plugins: Vec<PathBuf>) -> Result<Vec<PathBuf>, Error> {
        let plugins = match &self.shard {
            Some(shard) => shard.select(&plugins),
            None => plugins,
        };
        let Some(gitref) = &self.changed_since else { return Ok(plugins) };
        let workspace = Workspace::open(&options.root, &store_dir(&options.root))?;
        let build = BuildOptions {
            registry: options.registry.clone(),
            epoch: 0,
            revision: None,
            source: None,
            extras: options.extras.clone(),
            platforms: options.platforms.clone(),
        };
        crate::inputs::changed_since(&workspace, &build, &plugins, gitref)
    }
}

/// Shard `index` of `count` (`--shard K/N`, 1-based): the plugins whose
/// path hashes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, from 1 to `count`.
    pub index: u64,
    /// N, at least 1.
    pub count: u64,
}

/// `--shard` is not `K/N` with `1 <= K <= N`.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a shard: {reason}")]
pub struct ShardError {
    /// What was given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Shard {
    /// The shard (1-based) of `count` that `plugin` (relative to the
    /// root) belongs to: the first 8 bytes of the SHA-256 of its path,
    /// modulo `count`.
    pub fn of(plugin: &Path, count: u64) -> u64 {
        let digest = Digest::of(plugin.as_os_str().as_encoded_bytes()).to_string();
        let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
        // 16 hex digits always parse; a digest is 64 of them.
        let hash = u64::from_str_radix(&hex[..16], 16).unwrap_or_default();
        hash % count.max(1) + 1
    }

    /// Whether `plugin` (relative to the root) is in this shard.
    pub fn contains(&self, plugin: &Path) -> bool {
        Shard::of(plugin, self.count) == self.index
    }

    /// The plugins of `plugins` in this shard, in their order.
    pub fn select(&self, plugins: &[PathBuf]) -> Vec<PathBuf> {
        plugins.iter().filter(|p| self.contains(p)).cloned().collect()
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let error = |reason| ShardError { value: text.to_string(), reason };
        let (k, n) = text.split_once('/').ok_or_else(|| error("write K/N, e.g. 2/5"))?;
        let parse = |n: &str| n.trim().parse::<u64>().map_err(|_| error("K and N must be whole numbers"));
        let (index, count) = (parse(k)?, parse(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(error("K must be between 1 and N"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(n: usize) -> Vec<PathBuf> {
        (0..n).map(|i| PathBuf::from(format!("plugins/group-{}/plugin-{i}", i % 4))).collect()
    }

    #[test]
    fn shards_cover_every_plugin_once_and_adding_one_moves_none() {
        let all = generated(40);
        let shards: Vec<Shard> = (1..=3).map(|k| format!("{k}/3").parse().unwrap()).collect();
        let parts: Vec<Vec<PathBuf>> = shards.iter().map(|s| s.select(&all)).collect();
        let mut covered: Vec<PathBuf> = parts.concat();
        covered.sort();
        let mut expected = all.clone();
        expected.sort();
        assert_eq!(covered, expected, "every plugin exactly once");
        assert!(parts.iter().all(|p| !p.is_empty()), "a shard is empty for 40 plugins: {parts:?}");
        // Plugins added before, between and after the others move none of them.
        let mut more = all.clone();
        more.insert(0, PathBuf::from("plugins/aaa/new"));
        more.insert(20, PathBuf::from("plugins/group-1/plugin-new"));
        more.push(PathBuf::from("plugins/zzz/new"));
        for (shard, before) in shards.iter().zip(&parts) {
            let after: Vec<PathBuf> = shard.select(&more).into_iter().filter(|p| all.contains(p)).collect();
            assert_eq!(&after, before, "shard {shard}");
        }
        // The hash is part of the CI contract: runners of different
        // versions must agree, so its values are fixed.
        let fixed: Vec<u64> =
            ["plugins/import/csv-bboxes", "plugins/nn/tiny-classifier", "plugins/tools/class-catalog"]
                .iter()
                .map(|p| Shard::of(Path::new(p), 7))
                .collect();
        assert_eq!(fixed, [1, 1, 6]);
    }

    #[test]
    fn shard_flags() {
        assert_eq!("2/5".parse::<Shard>().unwrap(), Shard { index: 2, count: 5 });
        assert_eq!("2/5".parse::<Shard>().unwrap().to_string(), "2/5");
        for (bad, why) in [
            ("0/3", "K must be between 1 and N"),
            ("4/3", "K must be between 1 and N"),
            ("1/0", "K must be between 1 and N"),
            ("1", "write K/N, e.g. 2/5"),
            ("a/3", "K and N must be whole numbers"),
        ] {
            assert_eq!(
                bad.parse::<Shard>().unwrap_err().to_string(),
                format!("`{bad}` is not a shard: {why}")
            );
        }
    }

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
