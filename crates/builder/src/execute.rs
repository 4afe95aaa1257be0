//! Executing a [`BuildPlan`]: each planned tree becomes a layer (or is
//! found in the layer cache by its content key), each config change is
//! applied, and the config and manifest are written to the store. Nothing
//! here reads the Dockerfile: what to do was decided by [`crate::plan`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use forge_oci::{
    BlobStore, Compression, Digest, FileDigests, Image, KeyInputs, Layer, LayerCache, LayerKey, LayerOptions,
    Tree,
};

use crate::error::BuildError;
use crate::image::ImageState;
use crate::plan::{BuildPlan, Step};

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

/// Executes `plan` into `store`, with `cache` for finished layers and
/// `slots` shared by the executions of one run.
pub fn execute(
    plan: &BuildPlan,
    store: &BlobStore,
    cache: &dyn LayerCache,
    slots: &LayerSlots,
) -> Result<Executed, BuildError> {
    let mut state = ImageState::from_base(&plan.base, plan.epoch);
    let mut parents = match &plan.base.image {
        Some(image) => image.diff_ids()?,
        None => Vec::new(),
    };
    let mut executor = Executor {
        store,
        cache,
        slots,
        digests: FileDigests::new(store),
        epoch: plan.epoch,
        built: 0,
        cached: 0,
    };
    for step in &plan.steps {
        if let Some(change) = &step.change {
            change.apply(&mut state.runtime, &mut state.author);
        }
        match &step.layer {
            Some(tree) => {
                let layer = executor.layer(tree, step, &parents).map_err(|source| BuildError::Layer {
                    file: plan.dockerfile.clone(),
                    line: step.position.line,
                    column: step.position.column,
                    instruction: step.created_by.clone(),
                    source: Box::new(source),
                })?;
                parents.push(layer.diff_id.clone());
                state.push_layer(layer, &step.created_by);
            }
            None => state.record(&step.created_by),
        }
    }
    let image = state.assemble(store, plan.labels.clone(), &plan.annotations)?;
    Ok(Executed { image, layers_built: executor.built, layers_cached: executor.cached })
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
    built: usize,
    cached: usize,
}

impl Executor<'_> {
    /// The layer of `tree`, from the cache by its content key or built.
    fn layer(&mut self, tree: &Tree, step: &Step, parents: &[Digest]) -> forge_oci::Result<Layer> {
        let options = LayerOptions { mtime: self.epoch };
        let compression = Compression::default();
        let inputs = KeyInputs { instruction: &step.created_by, parents, options, compression };
        let digests = self.digests;
        let key = LayerKey::new(tree, &inputs, &mut |path, size| digests.digest(path, size))?;
        let slot = self.slots.slot(&key);
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let layer = match slot.clone().or_else(|| self.cache.get(&key)) {
            Some(layer) => {
                self.cached += 1;
                layer
            }
            None => {
                let layer = tree.write_layer(self.store, options, compression)?;
                self.cache.put(&key, &layer)?;
                self.built += 1;
                layer
            }
        };
        *slot = Some(layer.clone());
        Ok(layer)
    }
}
