//! Build-then-push: the images that built are pushed to
//! `REGISTRY/NAME:TAG` without a daemon, several at once. Blobs the
//! registry has are skipped, blobs of sibling repositories mounted, the
//! manifest pushed last by digest and then the tag (forge-registry does
//! that); a plugin that did not build is reported, not pushed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forge_builder::Built;
use forge_registry::{Client, PushEvent, PushReport, Reference};
use rayon::prelude::*;

use crate::{client, Artifact, BatchOptions, Error, Event, Observer, Outcome, Session};

/// How [`Session::publish`] uploads.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    /// Images uploaded at once, across all plugins.
    pub max_uploads: usize,
    /// Blobs larger than this many bytes are uploaded in chunks (for
    /// proxies that limit request bodies); `u64::MAX`: never.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions { max_uploads: 4, chunk_size: u64::MAX }
    }
}

/// What became of one plugin of a [`Session::publish`].
#[derive(Debug)]
pub struct Pushed {
    /// The plugin, relative to the root.
    pub plugin: PathBuf,
    /// `REGISTRY/NAME:TAG`, when it built.
    pub image: Option<String>,
    /// What the push did, or why there was none.
    pub result: Result<PushReport, Error>,
    /// How long the push took.
    pub time: Duration,
}

impl Session {
    /// Pushes every image of `outcomes` that built; the others fail with
    /// [`Error::NotBuilt`]. Results are in the order of `outcomes`.
    pub fn publish(
        &self,
        outcomes: Vec<Outcome>,
        options: &PushOptions,
        observer: &dyn Observer,
    ) -> Result<Vec<Pushed>, Error> {
        let client = client(self.insecure_registries(), options.chunk_size)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.max_uploads.max(1))
            .build()
            .map_err(|source| Error::Threads { what: "upload", source })?;
        Ok(pool.install(|| {
            outcomes
                .into_par_iter()
                .map(|outcome| {
                    let started = Instant::now();
                    match outcome.result {
                        Ok(Artifact { built, .. }) => {
                            self.push_one(&client, &outcome.plugin, &built, observer)
                        }
                        Err(e) => Pushed {
                            plugin: outcome.plugin,
                            image: None,
                            result: Err(Error::NotBuilt { source: Box::new(e) }),
                            time: started.elapsed(),
                        },
                    }
                })
                .collect()
        }))
    }

    /// Builds `plugins` as [`Session::build`] does, then pushes every image
    /// that built.
    pub fn build_and_push(
        &self,
        plugins: &[PathBuf],
        batch: &BatchOptions,
        push: &PushOptions,
        observer: &dyn Observer,
    ) -> Result<Vec<Pushed>, Error> {
        let outcomes = self.build(plugins, batch, observer)?;
        self.publish(outcomes, push, observer)
    }

    fn push_one(&self, client: &Client, plugin: &Path, built: &Built, observer: &dyn Observer) -> Pushed {
        let started = Instant::now();
        observer.event(&Event::PushStarted { plugin, image: &built.image, size: built.size });
        let progress = |event: PushEvent| observer.event(&Event::Push { plugin, event: &event });
        let result = Reference::parse(&built.image)
            .map_err(forge_registry::Error::from)
            .and_then(|reference| client.push(self.workspace().store(), &built.stored, &reference, &progress))
            .map_err(Error::from);
        observer.event(&Event::PushFinished { plugin, ok: result.is_ok() });
        Pushed {
            plugin: plugin.to_path_buf(),
            image: Some(built.image.clone()),
            result,
            time: started.elapsed(),
        }
    }
}
