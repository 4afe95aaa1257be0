//! The image being built, as data: the base image, the runtime config the
//! plan's changes make step by step, the layers and history added; and its
//! assembly into a config and manifest in the store.

use std::collections::BTreeMap;

use forge_oci::image::{
    append_empty_layer, append_layer, empty_layer_history, layer_history, set_created, set_runtime_config,
};
use forge_oci::oci_spec::image::{Descriptor, ImageConfiguration};
use forge_oci::{BlobStore, Compression, Image, Layer, Platform, RuntimeConfig};

use crate::BuildError;

/// The image a `FROM` names.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The reference, after substitution (`scratch` for none).
    pub reference: String,
    /// The image in the store; `None` for `scratch`.
    pub image: Option<Image>,
    /// The platform the build is for: the image's (the resolver checked
    /// it is the one asked for), or the one asked for over `scratch`.
    pub platform: Platform,
}

impl BaseImage {
    /// `FROM scratch`, for linux/amd64.
    pub fn scratch() -> BaseImage {
        BaseImage::scratch_for(Platform::default())
    }

    /// `FROM scratch`, for `platform`.
    pub fn scratch_for(platform: Platform) -> BaseImage {
        BaseImage { reference: "scratch".to_string(), image: None, platform }
    }

    /// A base found in the store: the build is for its platform.
    pub fn found(reference: &str, image: Image) -> BaseImage {
        let platform = Platform::of_config(&image.config);
        BaseImage { reference: reference.to_string(), image: Some(image), platform }
    }
}

/// The state of the image while the Dockerfile is evaluated.
#[derive(Debug, Clone)]
pub(crate) struct ImageState {
    /// Env, labels, entrypoint, ... as the plan's changes leave them.
    pub(crate) runtime: RuntimeConfig,
    /// `MAINTAINER`.
    pub(crate) author: Option<String>,
    /// The base config with our layers and history appended so far.
    config: ImageConfiguration,
    /// Base layers, then ours.
    layers: Vec<Descriptor>,
    epoch: u64,
}

impl ImageState {
    pub(crate) fn from_base(base: &BaseImage, epoch: u64) -> ImageState {
        let (config, layers) = match &base.image {
            None => {
                let mut config = ImageConfiguration::default();
                base.platform.set_on(&mut config);
                (config, Vec::new())
            }
            Some(image) => {
                let mut config = image.config.clone();
                let layers: Vec<Descriptor> = image
                    .manifest
                    .layers()
                    .iter()
                    .map(|d| {
                        let mut d = d.clone();
                        // Docker media types become their OCI equivalents in an OCI manifest.
                        if let Some(compression) = Compression::of_layer(d.media_type()) {
                            d.set_media_type(compression.layer_media_type());
                        }
                        d
                    })
                    .collect();
                // A base without history gets one entry per layer, so that
                // history and layers stay in step.
                let with_layer =
                    config.history().iter().flatten().filter(|h| h.empty_layer() != Some(true)).count();
                if with_layer != layers.len() {
                    config.set_history(Some(
                        (0..layers.len())
                            .map(|i| layer_history(0, &format!("base layer {}", i + 1)))
                            .collect(),
                    ));
                }
                (config, layers)
            }
        };
        ImageState {
            runtime: RuntimeConfig::from_config(&config),
            author: config.author().clone(),
            config,
            layers,
            epoch,
        }
    }

    /// A history entry for a step that changed only the config.
    pub(crate) fn record(&mut self, created_by: &str) {
        append_empty_layer(&mut self.config, empty_layer_history(self.epoch, created_by));
    }

    /// Appends a layer with its history entry.
    pub(crate) fn push_layer(&mut self, layer: Layer, created_by: &str) {
        append_layer(&mut self.config, &layer.diff_id, layer_history(self.epoch, created_by));
        self.layers.push(layer.descriptor());
    }

    /// Writes config and manifest with `labels` over the Dockerfile's, and
    /// returns the stored image.
    pub(crate) fn assemble(
        mut self,
        store: &BlobStore,
        labels: BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Image, BuildError> {
        self.runtime.labels.extend(labels);
        set_runtime_config(&mut self.config, &self.runtime)?;
        set_created(&mut self.config, self.epoch);
        self.config.set_author(self.author.clone());
        Ok(forge_oci::write_image(store, &self.config, &self.layers, annotations)?)
    }
}
