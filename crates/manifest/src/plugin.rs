//! One plugin directory read as a whole, for tools that need a valid plugin
//! (the builder); the linter reads the same files through the per-file
//! parsers so that it can report every problem instead of the first.

use std::path::{Path, PathBuf};

use crate::{EntryPoint, ImageRef, ManifestError, PluginInfo, Problem, RunConfig};

/// `plugin_info.json`: marks a directory as a plugin.
pub const PLUGIN_INFO: &str = "plugin_info.json";
/// `VERSION`: image name and tag.
pub const VERSION: &str = "VERSION";
/// `predefined_run_configs.json`: optional templates.
pub const RUN_CONFIGS: &str = "predefined_run_configs.json";
/// The plugin's Dockerfile.
pub const DOCKERFILE: &str = "Dockerfile";
/// Shown on the plugin page.
pub const README: &str = "README.md";
/// The plugin's license.
pub const LICENSE: &str = "LICENSE";
/// Where the sources live.
pub const SRC: &str = "src";

/// A plugin whose manifest files are all valid.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// The plugin directory relative to the monorepo root (`MODULE_PATH`).
    pub dir: PathBuf,
    /// `plugin_info.json`.
    pub info: PluginInfo,
    /// `VERSION`.
    pub image: ImageRef,
    /// `predefined_run_configs.json`, empty when the file is absent.
    pub run_configs: Vec<RunConfig>,
    /// Entry points found under `src/`, in [`EntryPoint::ALL`] order.
    pub entry_points: Vec<EntryPoint>,
}

impl Plugin {
    /// Reads the plugin at `root/dir`; the first problem found is the error.
    pub fn load(root: &Path, dir: &Path) -> Result<Plugin, ManifestError> {
        let abs = root.join(dir);
        let file = |name: &str| (abs.join(name), dir.join(name));

        let (info_path, info_rel) = file(PLUGIN_INFO);
        let info_src = read_text(&info_path, &info_rel)?
            .ok_or_else(|| ManifestError::Missing { path: info_rel.clone() })?;
        let info =
            PluginInfo::parse(&info_src).map_err(|mut p| ManifestError::invalid(&info_rel, p.remove(0)))?;

        let (version_path, version_rel) = file(VERSION);
        let version_src = read_text(&version_path, &version_rel)?
            .ok_or_else(|| ManifestError::Missing { path: version_rel.clone() })?;
        let image = ImageRef::parse_version_file(&version_src)
            .map_err(|p| ManifestError::invalid(&version_rel, p))?;

        let (configs_path, configs_rel) = file(RUN_CONFIGS);
        let run_configs = match read_text(&configs_path, &configs_rel)? {
            None => Vec::new(),
            Some(src) => RunConfig::parse_file(&src)
                .map_err(|mut p| ManifestError::invalid(&configs_rel, p.remove(0)))?,
        };

        Ok(Plugin { dir: dir.to_path_buf(), info, image, run_configs, entry_points: entry_points(&abs) })
    }
}

/// The entry points present under `plugin_dir/src`, in [`EntryPoint::ALL`] order.
pub fn entry_points(plugin_dir: &Path) -> Vec<EntryPoint> {
    EntryPoint::ALL.into_iter().filter(|e| plugin_dir.join(e.path()).is_file()).collect()
}

/// Reads a UTF-8 text file of at most [`forge_input::TEXT_LIMIT`] bytes (a
/// manifest, a Dockerfile, `.dockerignore`); `Ok(None)` when it does not
/// exist. A FIFO, a device or a directory is refused. `shown` is the path
/// used in errors (relative to the monorepo root).
pub fn read_text(path: &Path, shown: &Path) -> Result<Option<String>, ManifestError> {
    let Some(bytes) = forge_input::read(path, shown, forge_input::TEXT_LIMIT)? else { return Ok(None) };
    String::from_utf8(bytes).map(Some).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let problem = Problem::at(crate::Position::of_offset(&text, valid), "file is not valid UTF-8")
            .with_help("save the file as UTF-8");
        ManifestError::invalid(shown, problem)
    })
}
