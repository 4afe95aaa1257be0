//! The per-plugin rules on manifest files and layout.

use std::fs;
use std::path::Path;

use forge_manifest::{
    plugin_type, read_text, EntryPoint, ImageRef, ManifestError, PluginInfo, RunConfig, DOCKERFILE,
    PLUGIN_INFO, README, RUN_CONFIGS, SRC, VERSION,
};

use crate::diagnostic::{Finding, Sink};
use crate::rules::{self, Rule};
use crate::{buildable, dockerfile, forbidden};

/// Files accepted as a plugin's license.
const LICENSE_NAMES: [&str; 4] = ["LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING"];

/// Runs the per-plugin rules on `root/dir`; returns the plugin's image when
/// its `VERSION` is valid, for the repository-wide duplicate check.
pub(crate) fn plugin(root: &Path, dir: &Path, sink: &mut Sink<'_>) -> Option<ImageRef> {
    let info = plugin_info(root, dir, sink);
    let image = version(root, dir, sink);
    run_configs(root, dir, info.as_ref(), sink);
    sources(root, dir, info.as_ref(), sink);
    dockerfile_present(root, dir, sink);
    docs(root, dir, sink);
    forbidden::check(root, dir, sink);
    buildable::check(root, dir, sink);
    image
}

/// `plugin_info.json`: valid, and of a known plugin type.
fn plugin_info(root: &Path, dir: &Path, sink: &mut Sink<'_>) -> Option<PluginInfo> {
    let info_rel = dir.join(PLUGIN_INFO);
    let src = read(root, &info_rel, rules::PLUGIN_INFO_INVALID, sink)?;
    let info = PluginInfo::parse(&src)
        .map_err(|problems| {
            for p in problems {
                sink.report(rules::PLUGIN_INFO_INVALID, Finding::from_problem(p, &info_rel, &src));
            }
        })
        .ok()?;
    if !plugin_type::is_known(&info.plugin_type) {
        sink.report(
            rules::UNKNOWN_PLUGIN_TYPE,
            Finding::new(format!("unknown plugin type `{}`", info.plugin_type))
                .in_file(&info_rel)
                .at(info.type_position, &src)
                .help(format!("known types are {}", quoted_list(&plugin_type::KNOWN_TYPES))),
        );
    }
    Some(info)
}

/// `VERSION`: present and a valid `<image>:<tag>`.
pub(crate) fn version(root: &Path, dir: &Path, sink: &mut Sink<'_>) -> Option<ImageRef> {
    let version_rel = dir.join(VERSION);
    if !root.join(dir).join(VERSION).exists() {
        sink.report(
            rules::VERSION_MISSING,
            Finding::new("VERSION is missing")
                .in_file(&version_rel)
                .help("create VERSION with one line `<image>:<tag>`, for example `my-team/my-plugin:1.0.0`"),
        );
        return None;
    }
    let src = read(root, &version_rel, rules::VERSION_INVALID, sink)?;
    ImageRef::parse_version_file(&src)
        .map_err(|p| sink.report(rules::VERSION_INVALID, Finding::from_problem(p, &version_rel, &src)))
        .ok()
}

/// `predefined_run_configs.json` (optional): valid, and its configs fit
/// the plugin's type.
fn run_configs(root: &Path, dir: &Path, info: Option<&PluginInfo>, sink: &mut Sink<'_>) {
    let configs_rel = dir.join(RUN_CONFIGS);
    let Some(src) = read(root, &configs_rel, rules::RUN_CONFIGS_INVALID, sink) else { return };
    match RunConfig::parse_file(&src) {
        Err(problems) => {
            for p in problems {
                sink.report(rules::RUN_CONFIGS_INVALID, Finding::from_problem(p, &configs_rel, &src));
            }
        }
        Ok(configs) => {
            if let Some(info) = info {
                config_types(info, &configs, &configs_rel, &src, sink);
            }
        }
    }
}

/// `src/` with the entry points the plugin's type needs.
fn sources(root: &Path, dir: &Path, info: Option<&PluginInfo>, sink: &mut Sink<'_>) {
    let abs = root.join(dir);
    if !abs.join(SRC).is_dir() {
        sink.report(
            rules::SRC_MISSING,
            Finding::new("src/ is missing")
                .in_file(&dir.join(SRC))
                .help("put the plugin's sources in src/; the platform starts them as /workdir/src/<mode>.py"),
        );
        return;
    }
    let Some(info) = info else { return };
    for entry in plugin_type::required_entry_points(&info.plugin_type) {
        if !abs.join(entry.path()).is_file() {
            sink.report(rules::ENTRY_POINT_MISSING, missing_entry_point(dir, *entry, &info.plugin_type));
        }
    }
}

/// The Dockerfile: present, then its own checks.
fn dockerfile_present(root: &Path, dir: &Path, sink: &mut Sink<'_>) {
    let dockerfile_rel = dir.join(DOCKERFILE);
    if root.join(&dockerfile_rel).exists() {
        if let Some(src) = read(root, &dockerfile_rel, rules::DOCKERFILE_SYNTAX, sink) {
            dockerfile::check(dir, &dockerfile_rel, &src, sink);
        }
    } else {
        sink.report(
            rules::DOCKERFILE_MISSING,
            Finding::new("Dockerfile is missing: this plugin cannot be built").in_file(&dockerfile_rel).help(
                "add a Dockerfile; the build context is the monorepo root, so it copies `${MODULE_PATH}` to /workdir",
            ),
        );
    }
}

/// README and LICENSE.
fn docs(root: &Path, dir: &Path, sink: &mut Sink<'_>) {
    let abs = root.join(dir);
    let readme = abs.join(README);
    if fs::symlink_metadata(&readme).is_ok() && !readme.is_file() {
        // A FIFO, a device, a directory: say what it is, not that it is missing.
        read(root, &dir.join(README), rules::UNREADABLE, sink);
    } else if !readme.is_file() {
        sink.report(
            rules::README_MISSING,
            Finding::new("README.md is missing: the plugin page will be empty")
                .in_file(&dir.join(README))
                .help("describe what the plugin does and its configuration in README.md"),
        );
    }
    if !LICENSE_NAMES.iter().any(|name| abs.join(name).is_file()) {
        sink.report(
            rules::LICENSE_MISSING,
            Finding::new("LICENSE is missing")
                .in_file(&dir.join("LICENSE"))
                .help("add a LICENSE file with the terms the plugin may be used under"),
        );
    }
}

/// Reads `root/rel`: `None` when it does not exist or could not be read (the
/// latter reported as [`rules::UNREADABLE`], bad UTF-8 as `invalid`).
fn read(root: &Path, rel: &Path, invalid: &'static Rule, sink: &mut Sink<'_>) -> Option<String> {
    match read_text(&root.join(rel), rel) {
        Ok(text) => text,
        Err(ManifestError::Invalid { path, problem }) => {
            sink.report(invalid, Finding::from_problem(problem, &path, ""));
            None
        }
        Err(err) => {
            let (message, help) = match &err {
                ManifestError::Io(io) => {
                    (format!("cannot read this file: {}", io.source), "fix the file's permissions")
                }
                ManifestError::Input(input) => (format!("this file {}", input.reason()), input.help()),
                other => (other.to_string(), "fix the file's permissions"),
            };
            sink.report(rules::UNREADABLE, Finding::new(message).in_file(rel).help(help));
            None
        }
    }
}

fn config_types(info: &PluginInfo, configs: &[RunConfig], rel: &Path, src: &str, sink: &mut Sink<'_>) {
    let Some(allowed) = plugin_type::config_types(&info.plugin_type) else { return };
    for config in configs.iter().filter(|c| !allowed.contains(&c.config_type.as_str())) {
        let help = if allowed.len() == 1 {
            format!("use \"type\": \"{}\"", allowed[0])
        } else {
            format!("use one of {}", quoted_list(allowed))
        };
        sink.report(
            rules::RUN_CONFIG_TYPE_MISMATCH,
            Finding::new(format!(
                "run config \"{}\" has type `{}`, which does not fit a plugin of type `{}`",
                config.title, config.config_type, info.plugin_type
            ))
            .in_file(rel)
            .at(config.type_position, src)
            .help(help),
        );
    }
}

fn missing_entry_point(dir: &Path, entry: EntryPoint, plugin_type: &str) -> Finding {
    let why = if plugin_type == "architecture" {
        format!("an `architecture` plugin is started as `{entry}`")
    } else {
        "the platform starts the plugin through it".to_string()
    };
    Finding::new(format!("entry point {} is missing: {why}", entry.path()))
        .in_file(&dir.join(entry.path()))
        .help(format!("add {}", entry.path()))
}

fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
}
