//! Daemonless plugin image builds.
//!
//! [`Workspace::open`] takes the monorepo root as build context (with its
//! `.dockerignore`) and the shared OCI layout under
//! `ROOT/target/plugin-forge/oci` as blob store and image store;
//! [`Workspace::build`] turns one plugin's Dockerfile into an image there,
//! exactly as `build_plugin.sh` would with `docker build` (same build args,
//! labels and file layout), and [`Workspace::export`] writes it as one
//! tarball that skopeo, podman and `docker load` accept.
//!
//! A build is two passes. [`plan()`] reads the Dockerfile over the base
//! image's config into a [`BuildPlan`]: a [`forge_oci::Tree`] per layer and
//! every config change, each with its instruction and position, with no
//! blob written and no ref set. [`execute()`] turns a plan into an image,
//! layers found in a [`forge_oci::LayerCache`] by their content key or
//! built. [`Workspace::build`] does both for one plugin (resolving the base
//! with the [`BaseResolver`] the caller injects) and sets its ref.
//!
//! A workspace is shared by parallel builds: layers with the same inputs
//! are built once per run (the others wait for it, [`LayerSlots`]) and once
//! across runs and checkouts (the layer cache in the store).

mod archive;
mod context;
mod copy_from;
mod dockerignore;
mod error;
pub mod execute;
mod extras;
mod image;
mod inline;
pub mod install;
mod labels;
pub mod plan;
mod resolve;
mod rootfs;
pub mod run;
pub mod sandboxed;
pub mod secrets;
mod stages;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use forge_manifest::{ImageRef, Plugin, DOCKERFILE};
use forge_oci::{ArchiveImage, BlobStore, Digest, LayerCache, Platform};

pub use context::{Context, CopyOptions, LOCK_FILE};
pub use copy_from::{CopyFrom, CopySource};
pub use dockerignore::DockerIgnore;
pub use error::{BuildError, Refusal};
pub use execute::{execute, Executed, LayerSlots, Rebuild};
pub use extras::{Extras, RESERVED_BUILD_ARGS, RESERVED_LABELS};
pub use image::BaseImage;
pub use install::{InstallError, InstallRequest, Installer, NoInstaller, RunAt};
pub use labels::supervisely_labels;
pub use plan::{
    base_reference, plan, plan_target, BuildPlan, ConfigChange, ParsedDockerfile, PlanInputs, StagePlan,
    Step, Target,
};
pub use resolve::{split_source, BaseResolver, LocalResolver, Override, Resolved};
pub use rootfs::image_from_rootfs;
pub use sandboxed::{LayerBelow, NoRunner, RunChain, RunError, RunMount, RunRequest, Runner, SandboxRun};

/// Where build outputs go under a monorepo root.
pub const TARGET_DIR: &str = "target/plugin-forge";

/// What does not depend on the plugin.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Registry prefix of image names (`REGISTRY` build arg).
    pub registry: String,
    /// Timestamp of every file, history entry and the image (`SOURCE_DATE_EPOCH`).
    pub epoch: u64,
    /// `org.opencontainers.image.revision`, when known (the git commit).
    pub revision: Option<String>,
    /// `org.opencontainers.image.source`, when known (the repository URL).
    pub source: Option<String>,
    /// Build args, labels, tags and cache policy from the command line.
    pub extras: Extras,
    /// The platforms to build for (`--platform`), in order: one image
    /// each, and an image index of them when there are several. Empty:
    /// linux/amd64.
    pub platforms: Vec<Platform>,
}

impl BuildOptions {
    /// The platforms to build for: [`BuildOptions::platforms`], or
    /// linux/amd64.
    pub fn platforms(&self) -> Vec<Platform> {
        if self.platforms.is_empty() {
            vec![Platform::default()]
        } else {
            self.platforms.clone()
        }
    }
}

/// Whether a build produced anything new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// New layers or a new manifest.
    Built,
    /// Everything came from the cache and the image is the one already stored.
    Cached,
}

/// One built image.
#[derive(Debug, Clone)]
pub struct Built {
    /// The plugin directory, relative to the root.
    pub plugin: PathBuf,
    /// `REGISTRY/NAME:TAG`.
    pub image: String,
    /// `NAME:TAG` from `VERSION`.
    pub image_ref: ImageRef,
    /// More names of the same image (`-t`), `REGISTRY/NAME:TAG` each.
    pub tags: Vec<String>,
    /// The plugin's title (`plugin_info.json`), which the instance's "Add
    /// plugin" dialog asks for with the image.
    pub title: String,
    /// The image in the store (the first platform's, when several).
    pub stored: forge_oci::Image,
    /// The index of the images of every platform, when several were
    /// built: what the refs point at.
    pub index: Option<forge_oci::Index>,
    /// Compressed size of config and layers (of every platform's image).
    pub size: u64,
    /// Layers compressed by this build.
    pub layers_built: usize,
    /// Layers reused from the cache.
    pub layers_cached: usize,
    /// Built or cached.
    pub status: Status,
}

impl Built {
    /// The digest the refs point at: the index's, or the manifest's.
    pub fn digest(&self) -> &Digest {
        match &self.index {
            Some(index) => &index.digest,
            None => &self.stored.manifest_digest,
        }
    }

    /// What an archive holds of it: the image (or index), its names (the
    /// image's, then `-t`'s) and `referrers`.
    pub fn archive_image(&self, referrers: &[forge_oci::oci_spec::image::Descriptor]) -> ArchiveImage {
        let mut repo_tags = vec![self.image.clone()];
        repo_tags.extend(self.tags.iter().cloned());
        ArchiveImage { manifest: self.digest().clone(), repo_tags, referrers: referrers.to_vec() }
    }

    /// The image of each platform, in the order built.
    pub fn images(&self) -> &[forge_oci::Image] {
        match &self.index {
            Some(index) => &index.images,
            None => std::slice::from_ref(&self.stored),
        }
    }
}

/// The monorepo being built and its store.
#[derive(Debug)]
pub struct Workspace {
    context: Context,
    store: BlobStore,
    /// One slot per layer cache key built in this run.
    layers: LayerSlots,
    /// Executes the sandboxed `RUN`s ([`NoRunner`] unless set).
    runner: std::sync::Arc<dyn Runner + Send>,
}

impl std::fmt::Debug for dyn Runner + Send {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runner")
    }
}

impl Workspace {
    /// Opens the monorepo at `root` with its store at `store_dir`
    /// (conventionally `ROOT/target/plugin-forge/oci`).
    pub fn open(root: &Path, store_dir: &Path) -> Result<Workspace, BuildError> {
        let context = Context::open(root)?;
        let store = BlobStore::open_or_create(store_dir)?;
        Ok(Workspace { context, store, layers: LayerSlots::default(), runner: std::sync::Arc::new(NoRunner) })
    }

    /// Executes the sandboxed `RUN`s of every later build with `runner`.
    pub fn set_runner(&mut self, runner: std::sync::Arc<dyn Runner + Send>) {
        self.runner = runner;
    }

    /// The store: blobs, layer cache, and every image built or imported.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// The canonical monorepo root.
    pub fn root(&self) -> &Path {
        self.context.root()
    }

    /// The build context: the root, and what its `.dockerignore` leaves out.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Records `image` in the store's index under `name` (the store locks
    /// its index against concurrent writers, threads and processes alike).
    pub fn set_ref(&self, name: &str, image: &forge_oci::Image) -> Result<(), BuildError> {
        self.store.set_ref(name, &image.manifest_descriptor())?;
        Ok(())
    }

    /// Builds the plugin at `ROOT/dir`: [`Workspace::plan`], then
    /// [`Workspace::execute`] with the store as layer cache and `installer`
    /// for the installing `RUN`s.
    pub fn build(
        &self,
        dir: &Path,
        options: &BuildOptions,
        resolver: &dyn BaseResolver,
        installer: &dyn Installer,
    ) -> Result<Built, BuildError> {
        let planned = self.plan(dir, options, resolver)?;
        if options.extras.no_cache {
            self.execute(&planned, &Rebuild(&self.store), installer)
        } else {
            self.execute(&planned, &self.store, installer)
        }
    }

    /// Plans the build of the plugin at `ROOT/dir` for each platform of
    /// `options`: its Dockerfile with the build args `build_plugin.sh`
    /// passed, over the base `resolver` finds for that platform, with the
    /// Supervisely labels and the image's annotations.
    pub fn plan(
        &self,
        dir: &Path,
        options: &BuildOptions,
        resolver: &dyn BaseResolver,
    ) -> Result<PluginPlan, BuildError> {
        let root = self.context.root();
        let plugin = Plugin::load(root, dir)?;
        let image_name = plugin.image.with_registry(&options.registry);
        let dockerfile_rel = dir.join(DOCKERFILE);
        let text = forge_manifest::read_text(&root.join(&dockerfile_rel), &dockerfile_rel)?
            .ok_or_else(|| forge_manifest::ManifestError::Missing { path: dockerfile_rel.clone() })?;
        let dockerfile = ParsedDockerfile::parse(&text, &dockerfile_rel)?;
        // The command line's build args, then ours (`Extras` refused overriding them).
        let mut build_args = options.extras.build_args.clone();
        build_args.extend([
            ("MODULE_PATH".to_string(), dir.to_string_lossy().into_owned()),
            ("REGISTRY".to_string(), options.registry.clone()),
            ("TAG".to_string(), plugin.image.tag.clone()),
        ]);
        let labels = supervisely_labels(root, &plugin, &image_name)?;
        let mut plans = Vec::new();
        for platform in options.platforms() {
            let inputs = PlanInputs {
                context: &self.context,
                build_args: &build_args,
                epoch: options.epoch,
                spool_parent: self.store.root(),
                preserve_modes: options.extras.preserve_modes,
            };
            // Only the stages the target needs have their images resolved.
            let target = Target { stage: options.extras.target.as_deref(), platform: &platform };
            let mut resolve = |reference: &str| resolver.resolve(reference, &platform, &self.store);
            let mut plan = plan_target(&dockerfile, &target, &mut resolve, &inputs)?;
            plan.labels = options.extras.labels.clone();
            plan.compression = options.extras.compression;
            plan.labels.extend(labels.clone());
            plan.annotations = annotations(&plugin, &image_name, options, &plan.base);
            plans.push(plan);
        }
        let tags = options
            .extras
            .tags
            .iter()
            .filter(|t| **t != plugin.image.tag)
            .map(|t| {
                ImageRef { name: plugin.image.name.clone(), tag: t.clone() }.with_registry(&options.registry)
            })
            .collect();
        Ok(PluginPlan {
            plugin: dir.to_path_buf(),
            image: image_name,
            image_ref: plugin.image.clone(),
            tags,
            title: plugin.info.title.clone(),
            plans,
        })
    }

    /// Executes a plugin's plans into the store with `cache` for layers and
    /// `installer` for the installing `RUN`s, single flight with the other
    /// builds of this workspace, and points the image's refs at the result:
    /// the image, or an index of the images when there are several plans.
    pub fn execute(
        &self,
        planned: &PluginPlan,
        cache: &dyn LayerCache,
        installer: &dyn Installer,
    ) -> Result<Built, BuildError> {
        let (mut images, mut layers_built, mut layers_cached) = (Vec::new(), 0, 0);
        for plan in &planned.plans {
            let executed = execute(plan, &self.store, cache, &self.layers, installer, &*self.runner)?;
            images.push(executed.image);
            layers_built += executed.layers_built;
            layers_cached += executed.layers_cached;
        }
        let index = match images.len() {
            0 | 1 => None,
            _ => Some(forge_oci::write_index(&self.store, &images, &BTreeMap::new())?),
        };
        let stored = images
            .into_iter()
            .next()
            .ok_or_else(|| BuildError::NoPlatform { plugin: planned.plugin.clone() })?;
        let descriptor = match &index {
            Some(index) => index.descriptor(),
            None => stored.manifest_descriptor(),
        };
        let previous = self.store.resolve_ref(&planned.image)?;
        self.store.set_ref(&planned.image, &descriptor)?;
        for tag in &planned.tags {
            self.store.set_ref(tag, &descriptor)?;
        }
        let unchanged = previous.is_some_and(|d| d.digest() == descriptor.digest());
        let mut built = Built {
            plugin: planned.plugin.clone(),
            image: planned.image.clone(),
            image_ref: planned.image_ref.clone(),
            tags: planned.tags.clone(),
            title: planned.title.clone(),
            size: 0,
            layers_built,
            layers_cached,
            status: if unchanged && layers_built == 0 { Status::Cached } else { Status::Built },
            stored,
            index,
        };
        built.size = built
            .images()
            .iter()
            .map(|i| i.manifest.config().size() + i.manifest.layers().iter().map(|l| l.size()).sum::<u64>())
            .sum();
        Ok(built)
    }

    /// Writes `built` as a tarball under `out_dir`, named after the image
    /// (`NAME_TAG.tar`, with the registry as a directory), unless the same
    /// tarball is already there (`forge_oci::update_archive`). Returns the
    /// path.
    pub fn export(&self, built: &Built, out_dir: &Path) -> Result<PathBuf, BuildError> {
        self.export_with(built, &[], out_dir)
    }

    /// [`Workspace::export`], with `referrers` (artifacts in the store
    /// about the images of `built`: SBOM, provenance) in the tarball,
    /// listed in its `index.json` after the image.
    pub fn export_with(
        &self,
        built: &Built,
        referrers: &[forge_oci::oci_spec::image::Descriptor],
        out_dir: &Path,
    ) -> Result<PathBuf, BuildError> {
        let path = out_dir.join(tarball_name(&built.image_ref));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BuildError::io("creating", parent, e))?;
        }
        let image = built.archive_image(referrers);
        forge_oci::update_archive(&self.store, &[image], forge_oci::RefNames::Tag, &path)?;
        Ok(path)
    }
}

/// A plugin's [`BuildPlan`] and the image it is for.
#[derive(Debug)]
pub struct PluginPlan {
    /// The plugin directory, relative to the root.
    pub plugin: PathBuf,
    /// `REGISTRY/NAME:TAG`, the ref the image gets.
    pub image: String,
    /// `NAME:TAG` from `VERSION`.
    pub image_ref: ImageRef,
    /// More refs the image gets (`-t`), `REGISTRY/NAME:TAG` each.
    pub tags: Vec<String>,
    /// The plugin's title (`plugin_info.json`).
    pub title: String,
    /// The plan of each platform, in order.
    pub plans: Vec<BuildPlan>,
}

/// The manifest annotations of a plugin's image: OCI's title, description,
/// version, time, ref name, revision and source, and the base.
fn annotations(
    plugin: &Plugin,
    image_name: &str,
    options: &BuildOptions,
    base: &BaseImage,
) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        ("org.opencontainers.image.title".to_string(), plugin.info.title.clone()),
        ("org.opencontainers.image.description".to_string(), plugin.info.description.clone()),
        ("org.opencontainers.image.version".to_string(), plugin.image.tag.clone()),
        ("org.opencontainers.image.created".to_string(), forge_oci::image::rfc3339(options.epoch)),
        ("org.opencontainers.image.ref.name".to_string(), image_name.to_string()),
    ]);
    if let Some(revision) = &options.revision {
        annotations.insert("org.opencontainers.image.revision".to_string(), revision.clone());
    }
    if let Some(source) = &options.source {
        annotations.insert("org.opencontainers.image.source".to_string(), source.clone());
    }
    if let Some(image) = &base.image {
        annotations.insert("org.opencontainers.image.base.name".to_string(), base.reference.clone());
        annotations
            .insert("org.opencontainers.image.base.digest".to_string(), image.manifest_digest.to_string());
    }
    annotations
}

/// `name:tag` → `name_tag.tar`, the name's `/` making directories. The
/// registry is left out: a `host:port` would make the path unusable in
/// `oci-archive:PATH` references.
pub fn tarball_name(image: &ImageRef) -> PathBuf {
    PathBuf::from(format!("{}_{}.tar", image.name, image.tag))
}
