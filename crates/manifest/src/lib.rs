//! Plugin manifests: the files that make a directory a Supervisely plugin.
//!
//! - `plugin_info.json` ([`PluginInfo`]): title, description, type, and any
//!   other keys, kept.
//! - `VERSION` ([`ImageRef`]): `<image>:<tag>`, checked against the
//!   Docker/OCI reference grammar.
//! - `predefined_run_configs.json` ([`RunConfig`]): optional templates.
//! - entry points ([`EntryPoint`]): `src/main.py`, `src/train.py`, ...
//!
//! Each file has a parser over its text that reports every [`Problem`] with
//! a line and column, for the linter; [`Plugin::load`] reads a whole plugin
//! and stops at the first problem, for the builder. [`discover`] finds the
//! plugins of a monorepo.

mod discover;
mod entry;
mod error;
mod info;
pub mod json_span;
mod plugin;
pub mod plugin_type;
mod problem;
mod run_configs;
mod version;

pub use discover::{discover, Discovery, PLUGINS_DIR};
pub use entry::{modes_label, EntryPoint};
pub use error::ManifestError;
pub use forge_input::Position;
pub use info::PluginInfo;
pub use plugin::{
    entry_points, read_text, Plugin, DOCKERFILE, LICENSE, PLUGIN_INFO, README, RUN_CONFIGS, SRC, VERSION,
};
pub use problem::Problem;
pub use run_configs::RunConfig;
pub use version::ImageRef;
