//! The build's checks of a finished image (the `PF4xx` rules): whether the
//! Supervisely agent's command can start it. The checks themselves are
//! [`forge_sandbox::agent::check_image`] over the image's files; this
//! module applies the rule's severity (the session's [`LintConfig`]) and
//! remembers images that passed, by manifest digest, in the store's cache.

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use forge_builder::{Built, Workspace};
use forge_lint::{rules, Diagnostic, LintConfig, Severity};
use forge_oci::{BlobStore, Digest, Image, ImageLayers, Platform, RuntimeConfig};
use forge_sandbox::agent;

use crate::{Error, Event, Observer};

/// Why the agent could not start an image: the error diagnostics of the
/// image checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRejection {
    /// The plugin's Dockerfile, relative to the root.
    pub dockerfile: PathBuf,
    /// The errors (at least one).
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ImageRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the agent could not start this image:")?;
        for d in &self.errors {
            write!(
                f,
                "\nerror[{}]: {}\n  --> {}\n  = help: {}",
                d.rule.code,
                d.message,
                self.dockerfile.display(),
                d.help.as_deref().unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

/// Checks the image of each platform of `built` against the agent's
/// command: an error diagnostic fails the build
/// ([`Error::ImageRejected`]); warnings are reported as
/// [`Event::ImageWarnings`].
pub(crate) fn check(
    workspace: &Workspace,
    built: &Built,
    config: &LintConfig,
    observer: &dyn Observer,
) -> Result<(), Error> {
    if config.severity(rules::AGENT_START).is_none() {
        return Ok(());
    }
    for image in built.images() {
        // The platform is named only when there are several.
        let name = match built.images().len() {
            1 => built.image.clone(),
            _ => format!("{} ({})", built.image, Platform::of_config(&image.config)),
        };
        check_image(workspace, built, image, &name, config, observer)?;
    }
    Ok(())
}

fn check_image(
    workspace: &Workspace,
    built: &Built,
    image: &Image,
    name: &str,
    config: &LintConfig,
    observer: &dyn Observer,
) -> Result<(), Error> {
    let store = workspace.store();
    let key = format!("agent-start/v1/{}", image.manifest_digest.hex());
    if store.cache_get(&key).as_deref() == Some("ok") {
        return Ok(());
    }
    let files = image_view(store, image, || agent::image_files(store, image))?;
    let runtime = RuntimeConfig::from_config(&image.config);
    let missing = agent::check_image(&*files, &runtime);
    if missing.is_empty() {
        store.cache_put(&key, "ok")?;
        return Ok(());
    }
    let dockerfile = built.plugin.join("Dockerfile");
    let diagnostics: Vec<Diagnostic> = missing
        .iter()
        .filter_map(|m| {
            let message = format!("{name}: {}", m.message());
            let help = format!("{}; or allow with -A {}", m.help(), rules::AGENT_START.code);
            Diagnostic::outside_lint(
                config,
                rules::AGENT_START,
                message,
                Some(dockerfile.clone()),
                Some(help),
            )
        })
        .collect();
    let errors: Vec<Diagnostic> =
        diagnostics.iter().filter(|d| d.severity == Severity::Error).cloned().collect();
    if errors.is_empty() {
        observer.event(&Event::ImageWarnings {
            plugin: &built.plugin,
            root: workspace.root(),
            warnings: &diagnostics,
        });
        return Ok(());
    }
    Err(Error::ImageRejected(ImageRejection { dockerfile, errors }))
}
/// The merged view of `image`'s layers in `store`, made by `read` unless
/// this thread made it last: a build's image check and its SBOM, one after
/// the other on the build's thread, read the image's layers once. The view
/// is a function of the store and of the layers the manifest digest names.
pub(crate) fn image_view<E>(
    store: &BlobStore,
    image: &Image,
    read: impl FnOnce() -> Result<ImageLayers, E>,
) -> Result<Arc<ImageLayers>, E> {
    type Last = Option<(PathBuf, Digest, Arc<ImageLayers>)>;
    thread_local! {
        static LAST: RefCell<Last> = const { RefCell::new(None) };
    }
    let same = |(root, digest, _): &&(PathBuf, Digest, Arc<ImageLayers>)| {
        root == store.root() && *digest == image.manifest_digest
    };
    if let Some(view) =
        LAST.with_borrow(|last| last.as_ref().filter(same).map(|(_, _, view)| Arc::clone(view)))
    {
        return Ok(view);
    }
    let view = Arc::new(read()?);
    LAST.set(Some((store.root().to_path_buf(), image.manifest_digest.clone(), Arc::clone(&view))));
    Ok(view)
}
