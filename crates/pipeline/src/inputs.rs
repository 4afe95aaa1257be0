//! A plugin's build inputs as paths of the monorepo, and what follows from
//! them: the plugins a change touches (`--changed-since GITREF`) and the
//! image's `org.opencontainers.image.revision`, the last commit that
//! changed them (not `HEAD`: a commit that touches none of a plugin's
//! inputs changes no byte of its image).
//!
//! The inputs of a plugin are
//! - every file under the plugin's directory (its sources, `Dockerfile`,
//!   `Dockerfile.lock`, and `README.md`, which is a label),
//! - every context path its `COPY`/`ADD` sources read, as the builder's
//!   plan names them ([`forge_builder::BuildPlan::context_paths`]: the
//!   shared SDK), less what the context leaves out (`.dockerignore`,
//!   other plugins' locks, our own output),
//! - the root's `.dockerignore`,
//! - the description and locks of the base image in `base-images/` its
//!   `FROM` names, if it is one of ours.
//!
//! No second Dockerfile reader: the paths come from the plan, made over a
//! base that is not resolved ([`Unresolved`]) when nothing is built.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use forge_builder::{BaseImage, BaseResolver, BuildOptions, Context, PluginPlan, Resolved, Workspace};
use forge_debian::description::Description;
use forge_oci::{BlobStore, Platform};

use crate::base_image::description_path;
use crate::{descriptions, provenance, Error, BASE_IMAGES_DIR};

/// The paths a plugin's image is made from; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInputs {
    /// Paths every change under which is an input: the plugin directory,
    /// `.dockerignore`, base-image descriptions and locks.
    pub(crate) always: BTreeSet<String>,
    /// What the `COPY`/`ADD`s read (`""`: the whole context); a change
    /// under them is an input unless the context excludes it.
    pub(crate) context: BTreeSet<String>,
}

impl BuildInputs {
    /// The inputs of the plugin `planned` (its plans for every platform):
    /// `registry` is the `REGISTRY` its base names are under.
    pub fn of(root: &Path, planned: &PluginPlan, registry: &str) -> Result<BuildInputs, Error> {
        let mut always = BTreeSet::from([path_string(&planned.plugin), ".dockerignore".to_string()]);
        let mut context = BTreeSet::new();
        let bases: BTreeSet<&str> =
            planned.plans.iter().map(|p| forge_reference::untagged(&p.base.reference)).collect();
        for name in descriptions(root)? {
            let repo = Description::load(&description_path(root, &name))?.name;
            if bases.contains(format!("{}/{repo}", registry.trim_end_matches('/')).as_str()) {
                always.extend(base_files(root, &name));
            }
        }
        for plan in &planned.plans {
            context.extend(plan.context_paths.iter().cloned());
        }
        Ok(BuildInputs { always, context })
    }

    /// Every path (a file or a directory, relative to the root; `""` for
    /// the whole context), sorted.
    pub fn paths(&self) -> BTreeSet<&str> {
        self.always.iter().chain(&self.context).map(String::as_str).collect()
    }

    /// Whether a change of `changed` (relative to the root) changes the
    /// image: under an input path, and not left out of the context unless
    /// it is one of the inputs that are not copied.
    pub fn touched_by(&self, changed: &str, context: &Context) -> bool {
        let under = |prefix: &String| {
            prefix.is_empty()
                || changed == prefix
                || changed.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/'))
        };
        self.always.iter().any(under) || (self.context.iter().any(under) && !context.is_excluded(changed))
    }

    /// The last commit of `head`'s history (a commit id) that changed an
    /// input (by the rule of [`BuildInputs::touched_by`]), if the root is
    /// in a git checkout and one did.
    pub fn revision(&self, root: &Path, head: &str, context: &Context) -> Option<String> {
        provenance::last_change(root, head, self.paths(), |f| self.touched_by(f, context))
    }
}

/// `base-images/NAME.toml`, `NAME.lock` and the other platforms' locks
/// beside it (`NAME.arm64.lock`).
fn base_files(root: &Path, name: &str) -> Vec<String> {
    let mut files = vec![format!("{BASE_IMAGES_DIR}/{name}.toml"), format!("{BASE_IMAGES_DIR}/{name}.lock")];
    if let Ok(entries) = std::fs::read_dir(root.join(BASE_IMAGES_DIR)) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.strip_prefix(name).and_then(|r| r.strip_prefix('.')).is_some_and(|r| r.ends_with(".lock"))
            {
                files.push(format!("{BASE_IMAGES_DIR}/{file}"));
            }
        }
    }
    files
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().trim_end_matches('/').to_string()
}

/// A resolver that resolves nothing: the base stays its reference, over
/// an empty config, for plans that only say what a build would read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unresolved;

impl BaseResolver for Unresolved {
    fn resolve(&self, reference: &str, platform: &Platform, _: &BlobStore) -> Resolved {
        Ok(BaseImage { reference: reference.to_string(), image: None, platform: platform.clone() })
    }
}

/// The plugins of `plugins` whose inputs differ between the commit
/// `gitref` and the working tree, in their order. A plugin that cannot be
/// planned (a broken Dockerfile) is selected: its build reports why.
pub fn changed_since(
    workspace: &Workspace,
    options: &BuildOptions,
    plugins: &[PathBuf],
    gitref: &str,
) -> Result<Vec<PathBuf>, Error> {
    let root = workspace.root();
    let changed = provenance::changed_since(root, gitref)?;
    let context = Context::open(root)?;
    let mut selected = Vec::new();
    for plugin in plugins {
        let touched = match workspace
            .plan(plugin, options, &Unresolved)
            .map_err(Error::from)
            .and_then(|planned| BuildInputs::of(root, &planned, &options.registry))
        {
            Ok(inputs) => changed.iter().any(|c| inputs.touched_by(c, &context)),
            Err(_) => true,
        };
        if touched {
            selected.push(plugin.clone());
        }
    }
    Ok(selected)
}
