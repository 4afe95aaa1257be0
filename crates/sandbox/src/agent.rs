//! How the Supervisely agent starts a plugin's container, so that
//! `cargo xtask run` can start it the same way and the build can check that
//! an image has what that start needs.
//!
//! From the public agent (`supervisely/agent`, `agent/worker/`):
//!
//! - `task_dockerized.py`: the image's `ENTRYPOINT`/`CMD` are ignored; the
//!   container runs `sh -c "python -u <entrypoint>"`, with the task
//!   directory bound read-write at `/sly_task_data` and the environment
//!   `LOG_LEVEL=DEBUG`, `LANG=C.UTF-8`, `PYTHONUNBUFFERED=1`, the proxy
//!   variables (upper and lower case, empty unless set), `HOST_TASK_DIR`
//!   and `PIP_ROOT_USER_ACTION=ignore`; stdout is read as JSON log lines
//!   (`message`, `level`, `event_type` defaulting to `EventType.LOGJ`).
//! - `task_import.py`, `task_train.py`, `task_inference.py`,
//!   `task_inference_rpc.py`, `task_custom.py`: the entry point per task
//!   type (`main.py`, `train.py`, `inference.py`, `deploy.py` /
//!   `deploy_smart.py`), the directories each creates (`data`, `results`,
//!   `model`, `tmp`), and `task_config.json` (with the deprecated
//!   `task_settings.json` beside it, the same content): the task's
//!   `config` as it is for train, inference and custom tasks; for imports
//!   a "human config" (`res_names`, `preset`, `options`,
//!   `append_to_existing_project`, `task_id`, `server_address`,
//!   `api_token`, `workspace_id`); for deploy the settings plus
//!   `connection` and `model_settings`.
//! - Supervisely's SDK, `supervisely_lib/task/paths.py`: the paths inside
//!   the container (`/sly_task_data/data`, `/results`, `/model`, `/tmp`).

use std::fs;
use std::io;
use std::path::Path;

use forge_oci::files::resolve;
use forge_oci::{BlobStore, Image, ImageFiles, ImageLayers, NodeKind, RuntimeConfig};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::run::Bind;
use crate::spec::{RunSpec, DEFAULT_PATH};

/// The task directory inside the container.
pub const TASK_DIR: &str = "/sly_task_data";

/// Where the plugin's code is, as `build_plugin.sh` laid it out.
pub const SRC_DIR: &str = "/workdir/src";

/// The modes the agent can start, as in the `MODES` label.
pub const MODES: [&str; 5] = ["main", "train", "inference", "deploy", "deploy_smart"];

/// The entry point file of `mode` inside the image.
pub fn entry_file(mode: &str) -> String {
    format!("{SRC_DIR}/{mode}.py")
}

/// The agent's command for `mode` (`get_spawn_entrypoint`).
pub fn command(mode: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), format!("python -u {}", entry_file(mode))]
}

/// The variables the agent sets (`spawn_container`), in its order;
/// `host_task_dir` is the task directory on the host, `host_env` reads the
/// agent's own environment (for the proxy settings, empty unless set).
pub fn environment(host_task_dir: &Path, host_env: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let proxy = |name: &str| host_env(name).unwrap_or_default();
    let mut env = vec![
        ("LOG_LEVEL".to_owned(), "DEBUG".to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
        ("HTTP_PROXY".to_owned(), proxy("HTTP_PROXY")),
        ("HTTPS_PROXY".to_owned(), proxy("HTTPS_PROXY")),
        ("HOST_TASK_DIR".to_owned(), host_task_dir.display().to_string()),
        ("NO_PROXY".to_owned(), proxy("NO_PROXY")),
        ("http_proxy".to_owned(), proxy("HTTP_PROXY")),
        ("https_proxy".to_owned(), proxy("HTTPS_PROXY")),
        ("no_proxy".to_owned(), proxy("NO_PROXY")),
        ("PIP_ROOT_USER_ACTION".to_owned(), "ignore".to_owned()),
    ];
    env.retain(|(k, _)| !k.is_empty());
    env
}

/// The kind of task the agent runs a mode of a plugin as: it decides the
/// directories and the shape of `task_config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// `task_import.py`: `main` of an import plugin.
    Import,
    /// `task_train.py`.
    Train,
    /// `task_inference.py`.
    Inference,
    /// `task_inference_rpc.py`: `deploy` and `deploy_smart`.
    Deploy,
    /// `task_custom.py`: `main` of custom and DTL plugins (and any other type).
    Custom,
}

impl TaskKind {
    /// The task `mode` of a plugin of `plugin_type` runs as.
    pub fn of(plugin_type: &str, mode: &str) -> TaskKind {
        match mode {
            "train" => TaskKind::Train,
            "inference" => TaskKind::Inference,
            "deploy" | "deploy_smart" => TaskKind::Deploy,
            _ if plugin_type == "import" => TaskKind::Import,
            _ => TaskKind::Custom,
        }
    }

    /// The `type` of the predefined run configs that fit this task.
    pub fn config_type(self, plugin_type: &str, mode: &str) -> String {
        match self {
            TaskKind::Import | TaskKind::Custom => plugin_type.to_owned(),
            TaskKind::Train | TaskKind::Inference | TaskKind::Deploy => mode.to_owned(),
        }
    }

    /// The subdirectories of the task directory the agent creates.
    pub fn directories(self) -> &'static [&'static str] {
        match self {
            TaskKind::Import | TaskKind::Custom => &["data", "results"],
            TaskKind::Train => &["data", "tmp", "results", "model"],
            TaskKind::Inference => &["data", "model", "results"],
            TaskKind::Deploy => &["model"],
        }
    }

    /// `task_config.json` for a task whose config (a predefined run
    /// config's `config`, or the server's task settings) is `config`, with
    /// the fields the agent takes from the server filled for a local run:
    /// task 0, no server, no token.
    pub fn task_config(self, config: &Map<String, Value>) -> Value {
        match self {
            TaskKind::Import => {
                let get = |key: &str, default: Value| config.get(key).cloned().unwrap_or(default);
                json!({
                    "res_names": get("res_names", json!({"project": "project"})),
                    "preset": get("preset", Value::Null),
                    "options": get("options", json!({})),
                    "append_to_existing_project": get("append_to_existing_project", json!(false)),
                    "task_id": 0,
                    "server_address": "",
                    "api_token": "",
                    "workspace_id": 0,
                })
            }
            TaskKind::Deploy => {
                let mut out = config.clone();
                out.insert("connection".into(), json!({"server_address": "", "token": "", "task_id": "0"}));
                out.insert("model_settings".into(), Value::Object(config.clone()));
                Value::Object(out)
            }
            TaskKind::Train | TaskKind::Inference | TaskKind::Custom => Value::Object(config.clone()),
        }
    }
}

/// A predefined run config: `title`, `type`, `config`.
pub type NamedConfig = (String, String, Map<String, Value>);

/// The mode to run and its config, as `--mode` and `--config TITLE` ask:
/// without a mode, the one the config's type names (`train`, ...), else
/// `main`, else the first of `modes` (the image's `MODES`). The mode must
/// be in `modes`; the config's type must be what the mode takes.
pub fn choose<'a>(
    plugin_type: &str,
    modes: &[String],
    mode: Option<&str>,
    configs: &'a [NamedConfig],
    title: Option<&str>,
) -> Result<(String, Option<&'a NamedConfig>)> {
    let config = match title {
        None => None,
        Some(title) => {
            Some(configs.iter().find(|(t, ..)| t == title).ok_or_else(|| Error::UnknownConfig {
                title: title.to_owned(),
                titles: configs.iter().map(|(t, ..)| t.clone()).collect(),
            })?)
        }
    };
    let mode = match (mode, config) {
        (Some(mode), _) => mode.to_owned(),
        (None, Some((_, config_type, _))) if MODES[1..].contains(&config_type.as_str()) => {
            config_type.clone()
        }
        (None, _) if modes.iter().any(|m| m == "main") => "main".to_owned(),
        (None, _) => modes.first().cloned().unwrap_or_else(|| "main".to_owned()),
    };
    if !modes.contains(&mode) {
        return Err(Error::UnknownMode { mode, modes: modes.to_vec() });
    }
    if let Some((title, found, _)) = config {
        let wanted = TaskKind::of(plugin_type, &mode).config_type(plugin_type, &mode);
        if *found != wanted {
            return Err(Error::ConfigTypeMismatch {
                title: title.clone(),
                found: found.clone(),
                mode,
                wanted,
            });
        }
    }
    Ok((mode, config))
}

/// What a run's task directory is made of.
#[derive(Debug, Clone)]
pub struct TaskSetup<'a> {
    /// The kind of task.
    pub kind: TaskKind,
    /// Its config, written as `task_config.json` (and `task_settings.json`).
    pub config: &'a Map<String, Value>,
    /// A host directory bound read-only at `/sly_task_data/data`.
    pub data: Option<&'a Path>,
    /// A host directory bound read-only at `/sly_task_data/model`.
    pub model: Option<&'a Path>,
    /// The host directory bound read-write at `/sly_task_data/results`
    /// (created if missing).
    pub results: &'a Path,
}

/// Fills the host task directory `task_dir` as the agent does (config
/// files, the kind's subdirectories) and returns the binds that show it,
/// and the data, model and results directories, inside the container.
pub fn prepare_task(task_dir: &Path, setup: &TaskSetup<'_>) -> Result<Vec<Bind>> {
    let io_error = |op, path: &Path, e| Error::io(op, path, e);
    for (dir, what) in [(setup.data, "data"), (setup.model, "model")] {
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(Error::InputMissing { what, path: dir.to_owned() });
            }
        }
    }
    fs::create_dir_all(task_dir).map_err(|e| io_error("creating", task_dir, e))?;
    let config = serde_json::to_string_pretty(&setup.kind.task_config(setup.config))
        .map_err(|e| io_error("serialising the task config for", task_dir, io::Error::other(e)))?;
    for name in ["task_config.json", "task_settings.json"] {
        let path = task_dir.join(name);
        fs::write(&path, format!("{config}\n")).map_err(|e| io_error("writing", &path, e))?;
    }
    let mut dirs: Vec<&str> = setup.kind.directories().to_vec();
    for extra in ["data", "model", "results"] {
        if !dirs.contains(&extra) {
            dirs.push(extra);
        }
    }
    for name in dirs {
        let path = task_dir.join(name);
        fs::create_dir_all(&path).map_err(|e| io_error("creating", &path, e))?;
    }
    fs::create_dir_all(setup.results).map_err(|e| io_error("creating", setup.results, e))?;
    let mut binds = vec![Bind { source: task_dir.to_owned(), dest: TASK_DIR.to_owned(), read_only: false }];
    for (source, name, read_only) in
        [(setup.data, "data", true), (setup.model, "model", true), (Some(setup.results), "results", false)]
    {
        if let Some(source) = source {
            binds.push(Bind { source: source.to_owned(), dest: format!("{TASK_DIR}/{name}"), read_only });
        }
    }
    Ok(binds)
}

/// The process the agent starts for `mode`: its command (or `command`,
/// when given, in its place), the image's environment with the agent's
/// variables over it and `env` over those, the image's working directory
/// and user (looked up in `image_root`).
pub fn spec(
    runtime: &RuntimeConfig,
    image_root: &Path,
    mode: &str,
    command_override: Option<Vec<String>>,
    agent_env: &[(String, String)],
) -> Result<RunSpec> {
    let argv = command_override.unwrap_or_else(|| command(mode));
    let mut spec = RunSpec::from_image(runtime, &argv, image_root)?;
    spec.argv = argv;
    for (key, value) in agent_env {
        spec.set_env(key, value);
    }
    Ok(spec)
}

/// Something the agent's command needs that an image lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No `sh` on the image's `PATH`.
    Shell {
        /// The `PATH` searched.
        path: String,
    },
    /// No `python` on the image's `PATH`.
    Python {
        /// The `PATH` searched.
        path: String,
        /// Whether there is a `python3` (then `python-is-python3`, or a
        /// symlink, is the fix).
        has_python3: bool,
    },
    /// A mode of the `MODES` label without its entry point file.
    EntryPoint {
        /// The mode.
        mode: String,
        /// The file that should be there.
        file: String,
    },
}

impl Missing {
    /// What is missing, in a sentence fragment (lowercase, no period).
    pub fn message(&self) -> String {
        match self {
            Missing::Shell { path } => format!(
                "the image has no `sh` on its PATH ({path}); the agent starts every plugin with `sh -c \"python -u ...\"`, so /bin/sh must exist"
            ),
            Missing::Python { path, has_python3 } => format!(
                "the image has no `python` on its PATH ({path}){}; the agent starts every plugin with `sh -c \"python -u ...\"`",
                if *has_python3 { ", only `python3`" } else { "" }
            ),
            Missing::EntryPoint { mode, file } => {
                format!("mode `{mode}` (in the MODES label) has no entry point {file} in the image")
            }
        }
    }

    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            Missing::Shell { .. } => "build on a base with a shell (Debian's `dash`)",
            Missing::Python { has_python3: true, .. } => {
                "install Debian's `python-is-python3` in the base image (or link /usr/bin/python to python3)"
            }
            Missing::Python { .. } => "build on a base image with Python, `python` included",
            Missing::EntryPoint { .. } => "copy the plugin to /workdir (`COPY ${MODULE_PATH} /workdir`)",
        }
    }
}

/// The files of `image` as [`check_image`] looks at them: its layers'
/// headers merged ([`ImageLayers`]), without unpacking.
pub fn image_files(store: &BlobStore, image: &Image) -> Result<ImageLayers> {
    ImageLayers::read(store, image).map_err(|err| match err {
        forge_oci::Error::ReadLayer { layer, source } => Error::ReadLayer { layer, source },
        other => crate::unpack::unsupported_layer(other),
    })
}

/// What the agent's command needs that the image with files `files` and
/// config `runtime` lacks: `sh` and `python` on the image's `PATH` (the
/// agent does not set one), and the entry point of every mode its `MODES`
/// label lists. Paths are looked up as a container runtime resolves a
/// program: symlinks followed inside the image.
pub fn check_image(files: &dyn ImageFiles, runtime: &RuntimeConfig) -> Vec<Missing> {
    let path = runtime.env_var("PATH").unwrap_or(DEFAULT_PATH).to_owned();
    let mut missing = Vec::new();
    if which(files, "sh", &path).is_none() {
        missing.push(Missing::Shell { path: path.clone() });
    }
    if which(files, "python", &path).is_none() {
        let has_python3 = which(files, "python3", &path).is_some();
        missing.push(Missing::Python { path: path.clone(), has_python3 });
    }
    for mode in modes(runtime) {
        let file = entry_file(&mode);
        if file_mode(files, &file).is_none() {
            missing.push(Missing::EntryPoint { mode, file });
        }
    }
    missing
}

/// The permission bits of the regular file `path` names, symlinks
/// followed (a hard link is its target's file); `None` when it is not one.
fn file_mode(files: &dyn ImageFiles, path: &str) -> Option<u32> {
    let node = files.node(&resolve(files, path)?)?;
    match node.kind {
        NodeKind::File { .. } => Some(node.mode),
        NodeKind::Hardlink { target } => {
            files.node(&target).filter(|n| matches!(n.kind, NodeKind::File { .. })).map(|n| n.mode)
        }
        _ => None,
    }
}

/// The first `dir/program` on `path` (a `PATH` value) that is an
/// executable file, as `execvp` looks it up.
fn which(files: &dyn ImageFiles, program: &str, path: &str) -> Option<String> {
    path.split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
        .find(|candidate| file_mode(files, candidate).is_some_and(|mode| mode & 0o111 != 0))
}

/// The modes of the image's `MODES` label, in order.
pub fn modes(runtime: &RuntimeConfig) -> Vec<String> {
    runtime.labels.get("MODES").map(|m| m.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use forge_oci::{Node, Tree};

    fn tree<'a>(nodes: impl IntoIterator<Item = (&'a str, Node)>) -> Tree {
        nodes.into_iter().map(|(path, node)| (path.to_owned(), node)).collect()
    }

    fn file(mode: u32) -> Node {
        Node::bytes(mode, "")
    }

    #[test]
    fn lookups_follow_symlinks_inside_the_image() {
        let tree = tree([
            ("bin", Node::symlink("usr/bin")),
            ("usr/bin/python3.11", file(0o755)),
            ("usr/bin/python3", Node::symlink("python3.11")),
            ("usr/bin/python", Node::symlink("/usr/bin/python3")),
            ("usr/bin/dash", file(0o755)),
            ("usr/bin/sh", Node::symlink("dash")),
            ("usr/bin/notes", file(0o644)),
            ("usr/bin/hard", Node::hardlink(0o755, "usr/bin/notes")),
            ("loop", Node::symlink("loop")),
            ("workdir/src/main.py", file(0o644)),
        ]);
        assert!(which(&tree, "sh", "/bin").is_some());
        assert!(which(&tree, "python", "/usr/bin").is_some());
        assert!(which(&tree, "notes", "/usr/bin").is_none());
        assert!(which(&tree, "hard", "/usr/bin").is_none(), "a hard link has its target's mode");
        assert!(file_mode(&tree, "/workdir/src/main.py").is_some());
        assert!(file_mode(&tree, "/workdir/../workdir/src/./main.py").is_some());
        assert!(file_mode(&tree, "/workdir/src/train.py").is_none());
        assert_eq!(resolve(&tree, "/loop/x"), None);
        assert_eq!(resolve(&tree, "/workdir/src/main.py/x"), None);
        assert_eq!(
            which(&tree, "python", "/usr/local/bin:/usr/bin:/bin").as_deref(),
            Some("/usr/bin/python")
        );
        assert_eq!(which(&tree, "python", "relative:/sbin"), None);
    }

    #[test]
    fn a_debian_python_image_passes_and_gaps_are_named() {
        let mut runtime = RuntimeConfig::default();
        runtime.labels.insert("MODES".into(), "train inference".into());
        let full = tree([
            ("bin", Node::symlink("usr/bin")),
            ("usr/bin/dash", file(0o755)),
            ("usr/bin/sh", Node::symlink("dash")),
            ("usr/bin/python3.11", file(0o755)),
            ("usr/bin/python3", Node::symlink("python3.11")),
            ("usr/bin/python", Node::symlink("python3")),
            ("workdir/src/train.py", file(0o644)),
            ("workdir/src/inference.py", file(0o644)),
        ]);
        assert_eq!(check_image(&full, &runtime), []);

        let bare = tree([("usr/bin/python3", file(0o755)), ("workdir/src/train.py", file(0o644))]);
        let missing = check_image(&bare, &runtime);
        let messages: Vec<String> = missing.iter().map(Missing::message).collect();
        assert_eq!(
            messages,
            [
                format!("the image has no `sh` on its PATH ({DEFAULT_PATH}); the agent starts every plugin with `sh -c \"python -u ...\"`, so /bin/sh must exist"),
                format!("the image has no `python` on its PATH ({DEFAULT_PATH}), only `python3`; the agent starts every plugin with `sh -c \"python -u ...\"`"),
                "mode `inference` (in the MODES label) has no entry point /workdir/src/inference.py in the image".to_owned(),
            ]
        );
        assert!(missing[1].help().contains("python-is-python3"));
    }

    #[test]
    fn modes_and_configs_are_chosen_and_checked() {
        let modes: Vec<String> = ["train", "inference", "deploy"].map(String::from).to_vec();
        let configs: Vec<NamedConfig> = vec![
            ("Train".into(), "train".into(), Map::new()),
            ("Infer".into(), "inference".into(), Map::new()),
        ];
        let pick = |mode, title| choose("architecture", &modes, mode, &configs, title);
        assert_eq!(pick(None, None).unwrap().0, "train");
        assert_eq!(pick(None, Some("Infer")).unwrap().0, "inference");
        assert_eq!(pick(Some("deploy"), None).unwrap().0, "deploy");
        let err = pick(Some("main"), None).unwrap_err().to_string();
        assert_eq!(err, "plugin has no mode `main`; its MODES are: train, inference, deploy");
        let err = pick(None, Some("Nope")).unwrap_err().to_string();
        assert_eq!(err, "no predefined run config titled `Nope`; the titles are: `Train`, `Infer`");
        let err = pick(Some("inference"), Some("Train")).unwrap_err().to_string();
        assert_eq!(
            err,
            "predefined run config `Train` is of type `train`, but mode `inference` takes configs of type `inference`"
        );
        let main = ["main".to_owned()];
        let imports: Vec<NamedConfig> = vec![("Csv".into(), "import".into(), Map::new())];
        assert_eq!(choose("import", &main, None, &imports, Some("Csv")).unwrap().0, "main");
    }

    #[test]
    fn task_configs_have_the_agents_shape() {
        let config: Map<String, Value> =
            serde_json::from_value(json!({"options": {"skip_invalid": true}, "extra": 1})).unwrap();
        let import = TaskKind::of("import", "main");
        assert_eq!(import, TaskKind::Import);
        assert_eq!(import.task_config(&config)["options"], json!({"skip_invalid": true}));
        assert_eq!(import.task_config(&config)["res_names"], json!({"project": "project"}));
        assert_eq!(TaskKind::of("architecture", "train").task_config(&config), Value::Object(config.clone()));
        let deploy = TaskKind::of("architecture", "deploy_smart").task_config(&config);
        assert_eq!(deploy["model_settings"], Value::Object(config.clone()));
        assert_eq!(deploy["extra"], json!(1));
        assert_eq!(TaskKind::of("custom", "main").config_type("custom", "main"), "custom");
        assert_eq!(
            TaskKind::of("architecture", "inference").config_type("architecture", "inference"),
            "inference"
        );
        assert_eq!(command("train"), ["sh", "-c", "python -u /workdir/src/train.py"]);
    }
}
