//! Creating a new plugin in the Supervisely layout (`cargo xtask new`).
//!
//! [`plan`] decides every file of the plugin without touching the disk:
//! the entry points (`src/main.py`, or `src/train.py` and
//! `src/inference.py` for architecture plugins) on the shared SDK and its
//! JSON-lines logging, a `Dockerfile` in the monorepo's style (the SDK and
//! `${MODULE_PATH}` copied to `/workdir`, a complete `PYTHONPATH`),
//! `plugin_info.json`, `predefined_run_configs.json` with one example per
//! mode, `README.md`, `VERSION` (by default `NAMESPACE/DIR:0.1.0`, refused
//! when another plugin builds that image) and the full text of the chosen
//! [`License`]. [`write`] creates them, refusing to overwrite anything.
//! The templates are in `templates/`, the license texts in `licenses/`.

mod error;
mod license;

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use forge_manifest::{ImageRef, PLUGINS_DIR};

pub use error::ScaffoldError;
pub use license::{License, LICENSES};

/// The tag a new plugin's `VERSION` starts at.
pub const FIRST_TAG: &str = "0.1.0";

/// The kinds of plugin that can be created, as `plugin_info.json` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginType {
    /// Imports files into a project.
    Import,
    /// A neural network: `train` and `inference` modes.
    Architecture,
    /// Transforms projects (Data Transformation Language).
    Dtl,
    /// Anything else.
    Custom,
}

impl PluginType {
    /// Every type, in the order they are offered.
    pub const ALL: [PluginType; 4] =
        [PluginType::Import, PluginType::Architecture, PluginType::Dtl, PluginType::Custom];

    /// The `type` of `plugin_info.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginType::Import => "import",
            PluginType::Architecture => "architecture",
            PluginType::Dtl => "dtl",
            PluginType::Custom => "custom",
        }
    }

    /// The modes the agent starts a plugin of this type in, each with its
    /// `src/<mode>.py`.
    pub fn modes(self) -> &'static [&'static str] {
        match self {
            PluginType::Architecture => &["train", "inference"],
            _ => &["main"],
        }
    }
}

impl fmt::Display for PluginType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PluginType {
    type Err = ScaffoldError;
    fn from_str(s: &str) -> Result<PluginType, ScaffoldError> {
        PluginType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ScaffoldError::UnknownType(s.to_string()))
    }
}

/// What `cargo xtask new` was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The plugin directory: relative to `ROOT/plugins` (`import/my-csv`),
    /// or a path starting with `plugins/`, or an absolute path inside it.
    pub path: PathBuf,
    /// The plugin type.
    pub plugin_type: PluginType,
    /// The title [default: from the directory name].
    pub title: Option<String>,
    /// The description [default: a sentence naming the type].
    pub description: Option<String>,
    /// The license.
    pub license: License,
    /// `NAME:TAG` for `VERSION` [default: from the directory name].
    pub image: Option<String>,
    /// The copyright holders of the license [default: "the TITLE authors"].
    pub copyright: Option<String>,
    /// The year of the copyright line.
    pub year: i64,
}

/// One file of a new plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the plugin directory.
    pub path: PathBuf,
    /// The content.
    pub text: String,
}

/// A plugin to be created: what [`plan`] decided and [`write`] writes.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// The plugin directory, relative to the monorepo root.
    pub dir: PathBuf,
    /// The title of `plugin_info.json`.
    pub title: String,
    /// The image of `VERSION`.
    pub image: ImageRef,
    /// The license.
    pub license: License,
    /// The files, in the order they are written.
    pub files: Vec<File>,
}

/// Decides the files of the plugin `request` asks for in the monorepo at
/// `root`; writes nothing. Fails when the path is not under `plugins/`,
/// the image is invalid or already built by another plugin, or a file
/// would be overwritten.
pub fn plan(root: &Path, request: &Request) -> Result<Scaffold, ScaffoldError> {
    let dir = plugin_dir(root, &request.path)?;
    let existing_plugins = forge_manifest::discover(root)?.plugins;
    if let Some(outer) = existing_plugins.iter().find(|p| dir.starts_with(p) && **p != dir) {
        return Err(ScaffoldError::Nested { dir, plugin: outer.clone() });
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let images = existing_images(root, &existing_plugins);
    let image_text = match &request.image {
        Some(image) => image.clone(),
        None => format!("{}{name}:{FIRST_TAG}", namespace(&images)),
    };
    let image = ImageRef::parse(&image_text)
        .map_err(|p| ScaffoldError::BadImage { image: image_text.clone(), message: p.message })?;
    let title = request.title.clone().unwrap_or_else(|| title_of(&name));
    let description = request
        .description
        .clone()
        .unwrap_or_else(|| format!("{title}: a Supervisely {} plugin.", request.plugin_type.as_str()));
    let holders = request.copyright.clone().unwrap_or_else(|| format!("the {title} authors"));
    let vars = Vars { title: &title, description: &description, dir: &dir, image: &image, request };
    let mut files = entry_points(request.plugin_type, &vars);
    files.extend([
        file("Dockerfile", dockerfile(request.plugin_type)),
        file(forge_manifest::PLUGIN_INFO, plugin_info(&title, &description, request.plugin_type)),
        file(forge_manifest::RUN_CONFIGS, run_configs(request.plugin_type)),
        file(forge_manifest::README, vars.readme()),
        file(forge_manifest::VERSION, format!("{image}\n")),
        file(forge_manifest::LICENSE, request.license.text(request.year, &holders)),
    ]);
    let existing: Vec<PathBuf> = files
        .iter()
        .map(|f| dir.join(&f.path))
        .filter(|p| root.join(p).symlink_metadata().is_ok())
        .chain(
            // A directory in the way of `src/` counts too.
            [dir.join("src")]
                .into_iter()
                .filter(|p| root.join(p).symlink_metadata().is_ok_and(|m| !m.is_dir())),
        )
        .collect();
    if !existing.is_empty() {
        return Err(ScaffoldError::Exists { dir, existing });
    }
    if let Some((plugin, _)) = images.iter().find(|(_, i)| *i == image) {
        return Err(ScaffoldError::DuplicateImage { image: image.to_string(), plugin: plugin.clone() });
    }
    Ok(Scaffold { dir, title, image, license: request.license, files })
}

/// Creates the files of `scaffold` under `root`, never replacing one that
/// exists (it fails on the first such file, naming it).
pub fn write(root: &Path, scaffold: &Scaffold) -> Result<(), ScaffoldError> {
    use std::io::Write as _;
    for f in &scaffold.files {
        let rel = scaffold.dir.join(&f.path);
        let path = root.join(&rel);
        let err = |source| ScaffoldError::Write { path: rel.clone(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let mut out = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ScaffoldError::Exists { dir: scaffold.dir.clone(), existing: vec![rel] });
            }
            Err(e) => return Err(err(e)),
        };
        out.write_all(f.text.as_bytes()).map_err(err)?;
    }
    Ok(())
}

/// The year of a Unix time, in UTC (for the copyright line).
pub fn year_of(unix_seconds: i64) -> i64 {
    // Howard Hinnant's civil_from_days.
    let z = unix_seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

/// `path` as a plugin directory relative to the root: `plugins/` + path,
/// normalised; no `..`, at least one directory below `plugins/`.
fn plugin_dir(root: &Path, path: &Path) -> Result<PathBuf, ScaffoldError> {
    let bad = |why: &str| ScaffoldError::BadPath { path: path.to_path_buf(), why: why.to_string() };
    let relative = if path.is_absolute() {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let parent = path.parent().ok_or_else(|| bad("it is the file system root"))?;
        let parent = parent.canonicalize().map_err(|_| bad("its parent directory does not exist"))?;
        let rel = parent.strip_prefix(&root).map_err(|_| bad("it is outside the monorepo root"))?;
        rel.join(path.file_name().ok_or_else(|| bad("it has no directory name"))?)
    } else {
        path.to_path_buf()
    };
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_os_string()),
            Component::CurDir => {}
            _ => return Err(bad("use a path inside plugins/ without `..`")),
        }
    }
    if parts.first().is_some_and(|p| p == PLUGINS_DIR) {
        parts.remove(0);
    }
    if parts.is_empty() {
        return Err(bad("name the plugin's directory, e.g. import/my-plugin"));
    }
    let mut dir = PathBuf::from(PLUGINS_DIR);
    dir.extend(parts);
    Ok(dir)
}

/// The images of the plugins whose `VERSION` reads (broken ones are the
/// linter's business).
fn existing_images(root: &Path, plugins: &[PathBuf]) -> Vec<(PathBuf, ImageRef)> {
    plugins
        .iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(root.join(p).join(forge_manifest::VERSION)).ok()?;
            Some((p.clone(), ImageRef::parse_version_file(&text).ok()?))
        })
        .collect()
}

/// `NS/` when every existing image is `NS/...` (the monorepo's
/// convention), otherwise nothing.
fn namespace(images: &[(PathBuf, ImageRef)]) -> String {
    let first = |i: &ImageRef| i.name.split_once('/').map(|(ns, _)| ns.to_string());
    let mut namespaces = images.iter().map(|(_, i)| first(i));
    match namespaces.next() {
        Some(Some(ns)) if namespaces.all(|n| n.as_deref() == Some(ns.as_str())) => format!("{ns}/"),
        _ => String::new(),
    }
}

/// `my-csv_import` → `My csv import`.
fn title_of(name: &str) -> String {
    let words = name.replace(['-', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

fn file(path: &str, text: String) -> File {
    File { path: PathBuf::from(path), text }
}

/// The values templates are filled with.
struct Vars<'a> {
    title: &'a str,
    description: &'a str,
    dir: &'a Path,
    image: &'a ImageRef,
    request: &'a Request,
}

impl Vars<'_> {
    /// A Python template with the title (in a docstring: no `"`, no `\`).
    fn python(&self, template: &str) -> String {
        template.replace("{{title}}", &self.title.replace(['"', '\\'], "'"))
    }

    fn readme(&self) -> String {
        let plugin_type = self.request.plugin_type;
        let name = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let run = match plugin_type {
            PluginType::Architecture => format!(
                "cargo xtask run {name} --mode train --config Train\ncargo xtask run {name} --mode inference --config Inference --model DIR   # DIR: a checkpoint_000 from the train run's results"
            ),
            PluginType::Import => format!("cargo xtask run {name} --config \"Import into ds0\" --data DIR_OF_FILES"),
            PluginType::Dtl => format!("cargo xtask run {name} --config \"Copy the projects\" --data DIR_OF_PROJECTS"),
            PluginType::Custom => format!("cargo xtask run {name} --config Default"),
        };
        let inputs = match plugin_type {
            PluginType::Import => "the uploaded files",
            PluginType::Architecture => "the training data or the images to label; the model in `model/`",
            PluginType::Dtl => "the input projects, one directory each",
            PluginType::Custom => "whatever the task downloads",
        };
        include_str!("../templates/README.md")
            .replace("{{title}}", self.title)
            .replace("{{description}}", self.description)
            .replace("{{type}}", plugin_type.as_str())
            .replace("{{inputs}}", inputs)
            .replace("{{dir}}", &name)
            .replace("{{run}}", &run)
            .replace("{{image}}", &self.image.to_string())
            .replace("{{license}}", self.request.license.id)
    }
}

fn entry_points(plugin_type: PluginType, vars: &Vars<'_>) -> Vec<File> {
    let main = |template: &str| vec![file("src/main.py", vars.python(template))];
    match plugin_type {
        PluginType::Import => main(include_str!("../templates/import.py")),
        PluginType::Dtl => main(include_str!("../templates/dtl.py")),
        PluginType::Custom => main(include_str!("../templates/custom.py")),
        PluginType::Architecture => vec![
            file("src/train.py", vars.python(include_str!("../templates/train.py"))),
            file("src/inference.py", vars.python(include_str!("../templates/inference.py"))),
        ],
    }
}

/// The Dockerfile `new` writes for a plugin of `plugin_type` (a valid one:
/// the lint tests build their valid plugins with it).
pub fn dockerfile(plugin_type: PluginType) -> String {
    let start = match plugin_type {
        PluginType::Architecture => {
            "# The agent runs train.py or inference.py depending on the task; inference is the default.\n\
             CMD [\"python3\", \"-u\", \"/workdir/src/inference.py\"]"
        }
        _ => {
            "# For `docker run`; the agent runs `sh -c \"python -u /workdir/src/main.py\"` itself.\n\
             ENTRYPOINT [\"python3\", \"-u\", \"/workdir/src/main.py\"]"
        }
    };
    include_str!("../templates/Dockerfile").replace("{{start}}", start)
}

fn plugin_info(title: &str, description: &str, plugin_type: PluginType) -> String {
    let value = serde_json::json!({"title": title, "description": description, "type": plugin_type.as_str()});
    format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_default())
}

/// One example config per mode.
fn run_configs(plugin_type: PluginType) -> String {
    let configs = match plugin_type {
        PluginType::Import => serde_json::json!([{
            "title": "Import into ds0", "type": "import",
            "config": {"res_names": {"project": "imported"}, "preset": "default", "options": {"dataset_name": "ds0"}},
        }]),
        PluginType::Architecture => serde_json::json!([
            {"title": "Train", "type": "train", "config": {"epochs": 2}},
            {"title": "Inference", "type": "inference", "config": {"confidence_threshold": 0.5}},
        ]),
        PluginType::Dtl => serde_json::json!([{
            "title": "Copy the projects", "type": "dtl", "config": {"res_names": {"project": "transformed"}},
        }]),
        PluginType::Custom => serde_json::json!([{
            "title": "Default", "type": "custom", "config": {"verbose": false},
        }]),
    };
    format!("{}\n", serde_json::to_string_pretty(&configs).unwrap_or_default())
}

#[cfg(test)]
mod tests;
