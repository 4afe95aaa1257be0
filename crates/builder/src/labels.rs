//! The labels Supervisely's web instance reads from a plugin image, set
//! exactly as `build_plugin.sh` set them with `docker build --label`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use forge_manifest::{modes_label, EntryPoint, Plugin, PLUGIN_INFO, README, RUN_CONFIGS};

use crate::BuildError;

/// `VERSION`, `INFO`, `MODES`, `README` and `CONFIGS` for `plugin`, whose
/// directory is `root/plugin.dir`; `image` is the full image name.
pub fn supervisely_labels(
    root: &Path,
    plugin: &Plugin,
    image: &str,
) -> Result<BTreeMap<String, String>, BuildError> {
    let dir = root.join(&plugin.dir);
    let encoded = |name: &str| -> Result<String, BuildError> {
        let bytes = forge_input::read(&dir.join(name), &plugin.dir.join(name), forge_input::TEXT_LIMIT)
            .map_err(forge_manifest::ManifestError::from)?;
        Ok(bytes.map(|b| base64::engine::general_purpose::STANDARD.encode(b)).unwrap_or_default())
    };
    let present: Vec<EntryPoint> = forge_manifest::entry_points(&dir);
    Ok(BTreeMap::from([
        ("VERSION".to_string(), image.to_string()),
        ("INFO".to_string(), encoded(PLUGIN_INFO)?),
        ("MODES".to_string(), modes_label(&present)),
        ("README".to_string(), encoded(README)?),
        ("CONFIGS".to_string(), encoded(RUN_CONFIGS)?),
    ]))
}
