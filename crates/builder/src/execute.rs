//! Executing a [`BuildPlan`]: each planned tree becomes a layer (or is
//! found in the layer cache by its content key), each installing `RUN` is
//! resolved and, on a cache miss, materialised by the [`Installer`] over
//! the files of the image below it, each sandboxed `RUN` is found in the
//! cache by its parents and command or run by the [`Runner`] (one
//! [`RunChain`] per execution), each config change is applied, and the
//! config and manifest are written to the store. Nothing here reads the
//! Dockerfile: what to do was decided by [`crate::plan`].
//!
//! A multi-stage plan executes the stages the target needs first, each
//! into an image of its own (config and manifest in the store, no ref),
//! those that do not need each other in parallel; a stage based on another
//! starts from that stage's image, and a `COPY --from` reads the files of
//! the image it names ([`crate::copy_from`]). The target's image holds its
//! own chain's layers only.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use forge_oci::files::{Empty, ImageLayers};
use forge_oci::{
    BlobStore, Compression, Digest, FileDigests, Image, ImageFiles, KeyInputs, Layer, LayerCache, LayerKey,
    LayerOptions, Platform, Spool, Stack, Tree,
};

use crate::copy_from::{CopyFrom, CopySource};
use crate::error::BuildError;
use crate::image::{BaseImage, ImageState};
use crate::install::{InstallError, InstallRequest, Installer, RunAt};
use crate::plan::{BuildPlan, StagePlan, Step};
use crate::sandboxed::{LayerBelow, RunChain, RunError, RunRequest, Runner};

/// The outcome of [`execute`]: the image and how its layers were obtained.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The image in the store (no ref is set).
    pub image: Image,
    /// Layers compressed by this execution.
    pub layers_built: usize,
    /// Layers found in the cache (or built by a parallel execution).
    pub layers_cached: usize,
}

/// Single flight for layers within a run: the first execution that needs a
/// layer builds it while the others (parallel builds sharing the SDK
/// layer) wait for the result.
#[derive(Debug, Default)]
pub struct LayerSlots {
    slots: Mutex<HashMap<LayerKey, Arc<Mutex<Option<Layer>>>>>,
}

impl LayerSlots {
    fn slot(&self, key: &LayerKey) -> Arc<Mutex<Option<Layer>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key.clone()).or_default().clone()
    }
}

/// Executes `plan` into `store`, with `cache` for finished layers,
/// `slots` shared by the executions of one run, and `installer` for the
/// installing `RUN`s and `runner` for the sandboxed ones.
pub fn execute(
    plan: &BuildPlan,
    store: &BlobStore,
    cache: &dyn LayerCache,
    slots: &LayerSlots,
    installer: &dyn Installer,
    runner: &dyn Runner,
) -> Result<Executed, BuildError> {
    let context = Context { store, cache, slots, installer, runner, compression: plan.compression };
    let (images, mut layers_built, mut layers_cached) = execute_stages(plan, &context)?;
    let base = stage_base(&plan.base, plan.base_stage, &plan.stages, &images);
    let stage = Stage { dockerfile: &plan.dockerfile, base: &base, epoch: plan.epoch, steps: &plan.steps };
    let ran = run(&stage, &context, &images)?;
    layers_built += ran.built;
    layers_cached += ran.cached;
    let image = ran.image.assemble(store, plan.labels.clone(), &plan.annotations)?;
    Ok(Executed { image, layers_built, layers_cached })
}

/// What every stage of an execution shares.
#[derive(Clone, Copy)]
struct Context<'a> {
    store: &'a BlobStore,
    cache: &'a dyn LayerCache,
    slots: &'a LayerSlots,
    installer: &'a dyn Installer,
    runner: &'a dyn Runner,
    /// The compression of every layer built (`--compression`).
    compression: Compression,
}

/// One stage as it is executed: the target or one of [`BuildPlan::stages`].
struct Stage<'a> {
    dockerfile: &'a Path,
    base: &'a BaseImage,
    epoch: u64,
    steps: &'a [Step],
}

/// A stage's image before its config is written, and how its layers were
/// obtained.
struct Ran {
    image: ImageState,
    built: usize,
    cached: usize,
}

/// Executes the stages the target needs, in waves: each wave the stages
/// whose own stages are done, in parallel. Returns their images by stage
/// index and the layers built and found.
fn execute_stages(
    plan: &BuildPlan,
    context: &Context<'_>,
) -> Result<(BTreeMap<usize, Image>, usize, usize), BuildError> {
    let (mut images, mut built, mut cached) = (BTreeMap::new(), 0, 0);
    let mut pending: Vec<&StagePlan> = plan.stages.iter().collect();
    while !pending.is_empty() {
        let (ready, waiting): (Vec<&StagePlan>, Vec<&StagePlan>) =
            pending.into_iter().partition(|s| needs(s).all(|n| images.contains_key(&n)));
        if ready.is_empty() {
            return Err(BuildError::Dockerfile {
                file: plan.dockerfile.clone(),
                line: waiting[0].steps.first().map_or(1, |s| s.position.line),
                column: 1,
                message: format!("stage `{}` needs a stage that is not planned", waiting[0].label),
                help: None,
            });
        }
        let done: Vec<Result<(usize, Image, usize, usize), BuildError>> = ready
            .par_iter()
            .map(|stage| {
                let base = stage_base(&stage.base, stage.base_stage, &plan.stages, &images);
                let run_stage = Stage {
                    dockerfile: &plan.dockerfile,
                    base: &base,
                    epoch: plan.epoch,
                    steps: &stage.steps,
                };
                let ran = run(&run_stage, context, &images)?;
                let image = ran.image.assemble(context.store, BTreeMap::new(), &BTreeMap::new())?;
                Ok((stage.index, image, ran.built, ran.cached))
            })
            .collect();
        for result in done {
            let (index, image, b, c) = result?;
            images.insert(index, image);
            built += b;
            cached += c;
        }
        pending = waiting;
    }
    Ok((images, built, cached))
}

/// The stages `stage` needs done first: the one it is based on and those
/// its `COPY --from`s read.
fn needs(stage: &StagePlan) -> impl Iterator<Item = usize> + '_ {
    stage.base_stage.into_iter().chain(stage.steps.iter().filter_map(|s| match &s.copy_from {
        Some(CopyFrom { source: CopySource::Stage { index, .. }, .. }) => Some(*index),
        _ => None,
    }))
}

/// The base a stage starts from: the image of the stage it is based on,
/// once executed, or its own base image.
fn stage_base(
    base: &BaseImage,
    base_stage: Option<usize>,
    stages: &[StagePlan],
    images: &BTreeMap<usize, Image>,
) -> BaseImage {
    match base_stage.and_then(|index| Some((index, images.get(&index)?))) {
        Some((index, image)) => {
            let label = stages
                .iter()
                .find(|s| s.index == index)
                .map_or_else(|| index.to_string(), |s| s.label.clone());
            BaseImage { reference: label, image: Some(image.clone()), platform: base.platform.clone() }
        }
        None => base.clone(),
    }
}

/// Executes the steps of `stage` over its base; `images` are the stages
/// done, which its `COPY --from`s read.
fn run(stage: &Stage<'_>, context: &Context<'_>, images: &BTreeMap<usize, Image>) -> Result<Ran, BuildError> {
    let store = context.store;
    let (installer, runner) = (context.installer, context.runner);
    let mut state = ImageState::from_base(stage.base, stage.epoch);
    let mut parents = match &stage.base.image {
        Some(image) => image.diff_ids()?,
        None => Vec::new(),
    };
    let mut executor = Executor {
        store,
        cache: context.cache,
        slots: context.slots,
        digests: FileDigests::new(store),
        epoch: stage.epoch,
        compression: context.compression,
        built: 0,
        cached: 0,
    };
    let mut installs = Installs::new(stage, store)?;
    let mut runs = Runs::new(stage)?;
    let mut copies = Copies::default();
    for (index, step) in stage.steps.iter().enumerate() {
        if let Some(change) = &step.change {
            change.apply(&mut state.runtime, &mut state.author);
        }
        let layer = match (&step.layer, &step.install, &step.copy_from) {
            (Some(tree), _, _) => {
                Some(executor.layer(tree, step, &parents).map_err(|e| layer_error(stage, step, e))?)
            }
            (None, Some(_), _) => {
                let env: Vec<(String, String)> = state
                    .runtime
                    .env
                    .iter()
                    .map(|e| {
                        e.split_once('=').map_or((e.clone(), String::new()), |(k, v)| (k.into(), v.into()))
                    })
                    .collect();
                Some(installs.layer(stage, index, &env, &mut executor, installer)?)
            }
            (None, None, Some(copy)) => {
                let tree = copies.tree(stage, step, copy, store, images)?;
                let layer = executor.layer(&tree, step, &parents).map_err(|e| layer_error(stage, step, e))?;
                if installs.last_install.is_some_and(|last| last > index) {
                    installs.run_trees.insert(index, tree);
                }
                Some(layer)
            }
            (None, None, None) if step.sandbox.is_some() => {
                let layer = runs.layer(stage, index, &parents, &mut executor, runner)?;
                if installs.last_install.is_some_and(|last| last > index) {
                    installs.run_trees.insert(index, runs.read_back(stage, step, &layer, store)?);
                }
                Some(layer)
            }
            (None, None, None) => None,
        };
        match layer {
            Some(layer) => {
                runs.below
                    .push(LayerBelow { descriptor: layer.descriptor(), diff_id: layer.diff_id.clone() });
                parents.push(layer.diff_id.clone());
                state.push_layer(layer, &step.created_by);
            }
            None => state.record(&step.created_by),
        }
    }
    Ok(Ran { image: state, built: executor.built, cached: executor.cached })
}

/// The `COPY --from`s of one stage: the files of the images they read
/// (each read once) and the spool their contents go to until the layers
/// are written.
#[derive(Default)]
struct Copies {
    files: HashMap<Digest, ImageLayers>,
    spool: Option<(tempfile::TempDir, Spool)>,
}

impl Copies {
    fn tree(
        &mut self,
        stage: &Stage<'_>,
        step: &Step,
        copy: &CopyFrom,
        store: &BlobStore,
        images: &BTreeMap<usize, Image>,
    ) -> Result<Tree, BuildError> {
        let image = match &copy.source {
            CopySource::Stage { index, label } => {
                images.get(index).cloned().ok_or_else(|| BuildError::Dockerfile {
                    file: stage.dockerfile.to_path_buf(),
                    line: step.position.line,
                    column: step.position.column,
                    message: format!("the stage `{label}` was not built before this COPY --from"),
                    help: None,
                })?
            }
            CopySource::Image { digest, .. } => Image::load(store, digest)?,
        };
        if !self.files.contains_key(&image.manifest_digest) {
            let files = ImageLayers::read(store, &image)?;
            self.files.insert(image.manifest_digest.clone(), files);
        }
        if self.spool.is_none() {
            forge_oci::temp::register_dir(store.root());
            let dir = tempfile::Builder::new()
                .prefix(&format!("{}from-", forge_oci::temp::prefix(".tmp-")))
                .tempdir_in(store.root())
                .map_err(|e| BuildError::io("creating a spool directory in", store.root(), e))?;
            let spool = Spool::new(dir.path()).map_err(|e| BuildError::io("creating", dir.path(), e))?;
            self.spool = Some((dir, spool));
        }
        let files = &self.files[&image.manifest_digest];
        let (_, spool) = self.spool.as_mut().expect("made above");
        crate::copy_from::tree(files, copy, spool, stage.dockerfile, step.position)
    }
}

fn layer_error(plan: &Stage<'_>, step: &Step, source: forge_oci::Error) -> BuildError {
    BuildError::Layer {
        file: plan.dockerfile.to_path_buf(),
        line: step.position.line,
        column: step.position.column,
        instruction: step.created_by.clone(),
        source: Box::new(source),
    }
}

/// What the installing steps of one execution share: the base image's
/// files (read once, when the first `RUN` needs them), the trees of the
/// steps so far (what a `RUN` sees of the `COPY`s and `RUN`s before it),
/// and the spool their files live in until the layers are written.
struct Installs {
    base: Option<Box<dyn ImageFiles + Send + Sync>>,
    /// The trees of the steps so far, by step index; `None` for a step
    /// without a layer, or an install found in the cache and not needed by
    /// a later `RUN`.
    trees: Vec<Option<Tree>>,
    platform: Platform,
    spool: Option<tempfile::TempDir>,
    /// The index of the last installing step: after it, no tree is kept.
    last_install: Option<usize>,
    /// The trees of sandboxed `RUN`s a later installing step needs, by
    /// step index.
    run_trees: BTreeMap<usize, Tree>,
}

impl Installs {
    fn new(plan: &Stage<'_>, store: &BlobStore) -> Result<Installs, BuildError> {
        let last_install = plan.steps.iter().rposition(|s| s.install.is_some());
        let platform = plan.base.platform.clone();
        let spool = match last_install {
            Some(_) => {
                forge_oci::temp::register_dir(store.root());
                Some(
                    tempfile::Builder::new()
                        .prefix(&format!("{}install-", forge_oci::temp::prefix(".tmp-")))
                        .tempdir_in(store.root())
                        .map_err(|e| BuildError::io("creating a spool directory in", store.root(), e))?,
                )
            }
            None => None,
        };
        Ok(Installs {
            base: None,
            trees: Vec::new(),
            platform,
            spool,
            last_install,
            run_trees: Default::default(),
        })
    }

    /// The layer of the installing step `index`.
    fn layer(
        &mut self,
        plan: &Stage<'_>,
        index: usize,
        env: &[(String, String)],
        executor: &mut Executor<'_>,
        installer: &dyn Installer,
    ) -> Result<Layer, BuildError> {
        let step = &plan.steps[index];
        let run = step.install.as_ref().expect("an installing step");
        // The trees of the steps before this one that have layers.
        while self.trees.len() < index {
            let at = self.trees.len();
            let tree = self.run_trees.remove(&at).or_else(|| plan.steps[at].layer.clone());
            self.trees.push(tree);
        }
        if self.base.is_none() {
            self.base = Some(match &plan.base.image {
                Some(image) => Box::new(ImageLayers::read(executor.store, image)?),
                None => Box::new(Empty),
            });
        }
        let base = self.base.as_deref().expect("read above");
        let files = Stack::new(base, self.trees.iter().flatten());
        let at = RunAt {
            dockerfile: plan.dockerfile,
            position: step.position,
            instruction: &step.created_by,
            platform: &self.platform,
        };
        let request = InstallRequest { at, run, files: &files, env };
        let install_error = |e: InstallError| {
            let at = e.position.unwrap_or(step.position);
            BuildError::Install {
                file: plan.dockerfile.to_path_buf(),
                line: at.line,
                column: at.column,
                instruction: step.created_by.clone(),
                message: e.message,
                help: e.help,
            }
        };
        let resolution = installer.resolve(&request).map_err(install_error)?;
        let options = LayerOptions { mtime: executor.epoch };
        let compression = executor.compression;
        let inputs = KeyInputs { instruction: &step.created_by, parents: &[], options, compression };
        let key = LayerKey::of_resolution(&resolution, &inputs);
        let spool = self.spool.as_ref().expect("made when the plan installs").path();
        let needed_later = self.last_install.is_some_and(|last| last > index);
        let mut tree = None;
        let store = executor.store;
        let layer = executor.cached_or(&key, || {
            let made = installer.materialize(&request, &resolution, spool).map_err(install_error)?;
            let layer =
                made.write_layer(store, options, compression).map_err(|e| layer_error(plan, step, e))?;
            tree = Some(made);
            Ok::<_, BuildError>(layer)
        })?;
        if needed_later && tree.is_none() {
            tree = Some(installer.materialize(&request, &resolution, spool).map_err(install_error)?);
        }
        self.trees.push(if needed_later { tree } else { None });
        Ok(layer)
    }
}

/// What the sandboxed steps of one execution share: the layers below the
/// step (the base's, then every step's so far), the chain the runner keeps
/// its root file system in (made at the first `RUN` that misses the
/// cache), and the spool the changed files wait in until their layer is
/// written.
struct Runs<'r> {
    below: Vec<LayerBelow>,
    base_layers: usize,
    chain: Option<Box<dyn RunChain + 'r>>,
    spool: Option<tempfile::TempDir>,
}

impl<'r> Runs<'r> {
    fn new(plan: &Stage<'_>) -> Result<Runs<'r>, BuildError> {
        let mut below = Vec::new();
        if let Some(image) = &plan.base.image {
            for (descriptor, diff_id) in image.manifest.layers().iter().zip(image.diff_ids()?) {
                below.push(LayerBelow { descriptor: descriptor.clone(), diff_id });
            }
        }
        Ok(Runs { base_layers: below.len(), below, chain: None, spool: None })
    }

    /// The layer of the sandboxed step `index` over the layers `parents`.
    fn layer(
        &mut self,
        plan: &Stage<'_>,
        index: usize,
        parents: &[Digest],
        executor: &mut Executor<'_>,
        runner: &'r dyn Runner,
    ) -> Result<Layer, BuildError> {
        let step = &plan.steps[index];
        let run = step.sandbox.as_ref().expect("a sandboxed step");
        let at = RunAt {
            dockerfile: plan.dockerfile,
            position: step.position,
            instruction: &step.created_by,
            platform: &plan.base.platform,
        };
        let request = RunRequest { at, run, below: &self.below, base_layers: self.base_layers };
        let run_error = |e: RunError| run_error(plan, step, e);
        runner.check(&request).map_err(run_error)?;
        let options = LayerOptions { mtime: executor.epoch };
        let compression = executor.compression;
        let key_text = run.key_text();
        let inputs = KeyInputs { instruction: &key_text, parents, options, compression };
        let digests = executor.digests;
        let key = LayerKey::new(&run.key_tree(), &inputs, &mut |path, size| digests.digest(path, size))
            .map_err(|e| layer_error(plan, step, e))?;
        let store = executor.store;
        let (chain, spool) = (&mut self.chain, &mut self.spool);
        executor.cached_or(&key, || {
            let spool = match spool {
                Some(dir) => dir.path().to_owned(),
                None => spool.insert(spool_dir(store)?).path().to_owned(),
            };
            let chain = chain.get_or_insert_with(|| runner.chain());
            let tree = chain.run(&request, &spool).map_err(run_error)?;
            tree.write_layer(store, options, compression).map_err(|e| layer_error(plan, step, e))
        })
    }

    /// The tree of a sandboxed step's `layer`, read back from the store,
    /// for an installing step after it.
    fn read_back(
        &mut self,
        plan: &Stage<'_>,
        step: &Step,
        layer: &Layer,
        store: &BlobStore,
    ) -> Result<Tree, BuildError> {
        let dir = match &self.spool {
            Some(dir) => dir.path().to_owned(),
            None => self.spool.insert(spool_dir(store)?).path().to_owned(),
        };
        let spool_path = dir.join(format!("layer-{}", self.below.len()));
        let mut spool = Spool::new(&spool_path).map_err(|e| BuildError::io("creating", &spool_path, e))?;
        let reader = store.open_uncompressed(&layer.descriptor()).map_err(|e| layer_error(plan, step, e))?;
        let mut tree = Tree::new();
        forge_oci::read_tar(reader, &mut spool, |path, node| {
            tree.insert(path, node);
            Ok::<_, std::convert::Infallible>(())
        })
        .map_err(|e| {
            BuildError::io(
                "reading back the layer of",
                plan.dockerfile.to_path_buf(),
                std::io::Error::other(e.to_string()),
            )
        })?;
        Ok(tree)
    }
}

/// A spool directory for a build's sandboxed `RUN`s, in the store (so
/// moving files there is a rename), named after this process.
fn spool_dir(store: &BlobStore) -> Result<tempfile::TempDir, BuildError> {
    forge_oci::temp::register_dir(store.root());
    tempfile::Builder::new()
        .prefix(&format!("{}run-", forge_oci::temp::prefix(".tmp-")))
        .tempdir_in(store.root())
        .map_err(|e| BuildError::io("creating a spool directory in", store.root(), e))
}

fn run_error(plan: &Stage<'_>, step: &Step, e: RunError) -> BuildError {
    BuildError::Run {
        file: plan.dockerfile.to_path_buf(),
        line: step.position.line,
        column: step.position.column,
        message: e.message,
        output: e.output,
        help: e.help,
    }
}

/// The layer cache of `--no-cache`: nothing is found, so every layer is
/// built again (with the same bytes: builds are reproducible), and what is
/// built is still remembered by the wrapped cache.
#[derive(Clone, Copy)]
pub struct Rebuild<'a>(pub &'a dyn LayerCache);

impl std::fmt::Debug for Rebuild<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rebuild")
    }
}

impl LayerCache for Rebuild<'_> {
    fn get(&self, _: &LayerKey) -> Option<Layer> {
        None
    }

    fn put(&self, key: &LayerKey, layer: &Layer) -> forge_oci::Result<()> {
        self.0.put(key, layer)
    }
}

struct Executor<'a> {
    store: &'a BlobStore,
    cache: &'a dyn LayerCache,
    slots: &'a LayerSlots,
    digests: FileDigests<'a>,
    epoch: u64,
    compression: Compression,
    built: usize,
    cached: usize,
}

impl Executor<'_> {
    /// The layer of `tree`, from the cache by its content key or built.
    fn layer(&mut self, tree: &Tree, step: &Step, parents: &[Digest]) -> forge_oci::Result<Layer> {
        let options = LayerOptions { mtime: self.epoch };
        let compression = self.compression;
        let inputs = KeyInputs { instruction: &step.created_by, parents, options, compression };
        let digests = self.digests;
        digests.prefetch(tree);
        let key = LayerKey::new(tree, &inputs, &mut |path, size| digests.digest(path, size))?;
        let store = self.store;
        self.cached_or(&key, || tree.write_layer(store, options, compression))
    }

    /// The layer under `key`: from this run's slots, the cache, or `build`
    /// (then remembered in both).
    fn cached_or<E: From<forge_oci::Error>>(
        &mut self,
        key: &LayerKey,
        build: impl FnOnce() -> Result<Layer, E>,
    ) -> Result<Layer, E> {
        let slot = self.slots.slot(key);
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let layer = match slot.clone().or_else(|| self.cache.get(key)) {
            Some(layer) => {
                self.cached += 1;
                layer
            }
            None => {
                let layer = build()?;
                self.cache.put(key, &layer)?;
                self.built += 1;
                layer
            }
        };
        *slot = Some(layer.clone());
        Ok(layer)
    }
}
