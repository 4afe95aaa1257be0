//! What the command line adds to every build, as `docker build`'s flags
//! do: `--build-arg KEY=VALUE`, `--label KEY=VALUE`, `-t/--tag TAG` and
//! `--no-cache` ([`Extras`]). The build args `MODULE_PATH`, `REGISTRY`
//! and `TAG` and the Supervisely labels are set by the build itself, as
//! `build_plugin.sh` set them, and are refused here rather than silently
//! overridden.

use std::collections::BTreeMap;

use forge_manifest::ImageRef;
use forge_oci::Compression;

use crate::BuildError;

/// The build args the build sets, and what to do instead of overriding
/// them.
pub const RESERVED_BUILD_ARGS: [(&str, &str); 3] = [
    ("MODULE_PATH", "it is the plugin's path, set for every plugin"),
    ("REGISTRY", "pass --registry instead"),
    ("TAG", "it is the tag of the plugin's VERSION; change VERSION, or add tags with -t"),
];

/// The labels the Supervisely instance reads, set from the plugin's files.
pub const RESERVED_LABELS: [&str; 5] = ["VERSION", "INFO", "MODES", "README", "CONFIGS"];

/// Build args, labels, extra tags and cache policy from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    /// `--build-arg`: values of the Dockerfile's `ARG`s.
    pub build_args: BTreeMap<String, String>,
    /// `--label`: labels over the Dockerfile's.
    pub labels: BTreeMap<String, String>,
    /// `-t/--tag`: more tags of the same image, `REGISTRY/NAME:TAG` each.
    pub tags: Vec<String>,
    /// `--no-cache`: build every layer again (the cache is not looked up,
    /// but what is built is still stored in it).
    pub no_cache: bool,
    /// `--preserve-modes`: files and directories keep their modes from
    /// disk, as `docker build` does, instead of 0644/0755 (which give the
    /// same image whatever the checkout's umask).
    pub preserve_modes: bool,
    /// `--target STAGE`: build that stage of a multi-stage Dockerfile (and
    /// the stages it needs) instead of the last.
    pub target: Option<String>,
    /// `--compression`: of every layer built (gzip by default; zstd for
    /// runtimes that read it).
    pub compression: Compression,
}

impl Extras {
    /// Checks and collects the flags' values: `KEY=VALUE` pairs (the last
    /// one for a key wins, as in Docker), tags valid under the reference
    /// grammar; reserved build args and labels are errors.
    pub fn from_flags(
        build_args: &[String],
        labels: &[String],
        tags: &[String],
        no_cache: bool,
    ) -> Result<Extras, BuildError> {
        let build_args = pairs("--build-arg", build_args)?;
        for (key, value) in &build_args {
            if let Some((_, why)) = RESERVED_BUILD_ARGS.iter().find(|(k, _)| k == key) {
                return Err(BuildError::Flag {
                    flag: "--build-arg",
                    value: format!("{key}={value}"),
                    why: format!("{key} cannot be overridden: {why}"),
                });
            }
        }
        let labels = pairs("--label", labels)?;
        if let Some(key) = labels.keys().find(|k| RESERVED_LABELS.contains(&k.as_str())) {
            return Err(BuildError::Flag {
                flag: "--label",
                value: format!("{key}={}", labels[key]),
                why: format!(
                    "the label {key} is what the Supervisely instance reads, set from the plugin's files; use another name"
                ),
            });
        }
        let mut checked: Vec<String> = Vec::new();
        for tag in tags {
            ImageRef::parse(&format!("image:{tag}")).map_err(|p| BuildError::Flag {
                flag: "--tag",
                value: tag.clone(),
                why: format!(
                    "not a valid tag ({}): letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 128",
                    p.message
                ),
            })?;
            if !checked.contains(tag) {
                checked.push(tag.clone());
            }
        }
        Ok(Extras {
            build_args,
            labels,
            tags: checked,
            no_cache,
            preserve_modes: false,
            target: None,
            ..Extras::default()
        })
    }
}

/// `KEY=VALUE` values of `flag`.
fn pairs(flag: &'static str, values: &[String]) -> Result<BTreeMap<String, String>, BuildError> {
    let mut map = BTreeMap::new();
    for value in values {
        match value.split_once('=') {
            Some((key, v)) if !key.is_empty() => {
                map.insert(key.to_string(), v.to_string());
            }
            _ => {
                return Err(BuildError::Flag {
                    flag,
                    value: value.clone(),
                    why: "write KEY=VALUE".to_string(),
                })
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_tags_and_refusals() {
        let extras = Extras::from_flags(
            &strings(&["WORKER_PATH=/opt/w", "EMPTY=", "WORKER_PATH=/w"]),
            &strings(&["team=vision"]),
            &strings(&["latest", "abc1234", "latest"]),
            true,
        )
        .unwrap();
        assert_eq!(extras.build_args["WORKER_PATH"], "/w");
        assert_eq!(extras.build_args["EMPTY"], "");
        assert_eq!(extras.tags, ["latest", "abc1234"]);
        let err = |b: &[&str], l: &[&str], t: &[&str]| {
            Extras::from_flags(&strings(b), &strings(l), &strings(t), false).unwrap_err().to_string()
        };
        assert_eq!(
            err(&["MODULE_PATH=plugins/x"], &[], &[]),
            "--build-arg MODULE_PATH=plugins/x: MODULE_PATH cannot be overridden: it is the plugin's path, set for every plugin"
        );
        assert_eq!(
            err(&["REGISTRY=r"], &[], &[]),
            "--build-arg REGISTRY=r: REGISTRY cannot be overridden: pass --registry instead"
        );
        assert_eq!(err(&["NOVALUE"], &[], &[]), "--build-arg NOVALUE: write KEY=VALUE");
        assert!(err(&[], &["INFO=x"], &[]).starts_with("--label INFO=x: the label INFO is what"));
        assert!(err(&[], &[], &[".bad"]).starts_with("--tag .bad: not a valid tag"));
    }
}
