//! Plugin types and what each one implies: required entry points and the
//! run-config types that fit it.

use crate::EntryPoint;

/// The plugin types this tool knows, as written in `plugin_info.json`.
pub const KNOWN_TYPES: [&str; 4] = ["import", "architecture", "dtl", "custom"];

/// Whether `plugin_type` is one of [`KNOWN_TYPES`].
pub fn is_known(plugin_type: &str) -> bool {
    KNOWN_TYPES.contains(&plugin_type)
}

/// The entry points a plugin of this type must have. Neural networks
/// (`architecture`) are started as `train` and `inference`; every other
/// type, known or not, through `main`.
pub fn required_entry_points(plugin_type: &str) -> &'static [EntryPoint] {
    match plugin_type {
        "architecture" => &[EntryPoint::Train, EntryPoint::Inference],
        _ => &[EntryPoint::Main],
    }
}

/// The `type` values a predefined run config of such a plugin may carry, or
/// `None` when the plugin type is unknown and nothing can be said.
pub fn config_types(plugin_type: &str) -> Option<&'static [&'static str]> {
    Some(match plugin_type {
        "architecture" => &["train", "inference", "deploy", "deploy_smart"],
        "import" => &["import"],
        "dtl" => &["dtl"],
        "custom" => &["custom"],
        _ => return None,
    })
}
