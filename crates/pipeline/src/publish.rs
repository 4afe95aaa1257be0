//! Build-then-push: the images that built are pushed to
//! `REGISTRY/NAME:TAG` without a daemon, several at once. Blobs the
//! registry has are skipped, blobs of sibling repositories mounted, the
//! manifest pushed last by digest and then the tag (forge-registry does
//! that), then the image's extra tags (`-t`); a plugin that did not build
//! is reported, not pushed. An image built for several platforms is
//! pushed as each platform's manifest by digest, then their index under
//! the tag. Each image's SBOM and provenance follow as its referrers
//! (forge-registry's `push_referrers`: the referrers API, or the
//! `sha256-<hex>` tag of registries without it). An image whose tag names
//! it already costs one `HEAD` per tag and one look at its referrers
//! (forge-registry's `Client::serves`), nothing is sent.
//! [`Session::dry_run`] asks the registry which blobs it lacks and writes
//! nothing to it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forge_builder::Built;
use forge_oci::Digest;
use forge_registry::{Client, PushEvent, PushReport, PushTo, Reference, Referred};
use rayon::prelude::*;

use crate::{
    client, Archived, Artifact, Attestation, BatchOptions, Error, Event, Observer, Outcome, Session,
};

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
    /// Its extra tags (`-t`), pushed after the main one.
    pub tags: Vec<String>,
    /// The plugin's title, when it built: with the image, what the
    /// instance's "Add plugin" dialog asks for.
    pub title: Option<String>,
    /// The SBOM and provenance artifacts pushed as referrers, and how the
    /// registry indexes them.
    pub referrers: Vec<(Digest, Referred)>,
    /// What the push did, or why there was none.
    pub result: Result<PushReport, Error>,
    /// Its tarball, when the run wrote them (`--tarballs`).
    pub tarball: Option<PathBuf>,
    /// Where it is in the run's archive (`--archive`).
    pub archive: Option<Archived>,
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
        let client = client(self.insecure_registries(), self.ca_certs(), options.chunk_size)?;
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
                        Ok(Artifact { built, attestations, tarball, archive }) => Pushed {
                            tarball,
                            archive,
                            ..crate::timings::phase("push", || {
                                self.push_one(&client, &outcome.plugin, &built, &attestations, observer)
                            })
                        },
                        Err(e) => Pushed {
                            plugin: outcome.plugin,
                            image: None,
                            tags: Vec::new(),
                            title: None,
                            referrers: Vec::new(),
                            result: Err(Error::NotBuilt { source: Box::new(e) }),
                            time: started.elapsed(),
                            tarball: None,
                            archive: None,
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

    fn push_one(
        &self,
        client: &Client,
        plugin: &Path,
        built: &Built,
        attestations: &[Attestation],
        observer: &dyn Observer,
    ) -> Pushed {
        let started = Instant::now();
        observer.event(&Event::PushStarted { plugin, image: &built.image, size: built.size });
        let progress = |event: PushEvent| observer.event(&Event::Push { plugin, event: &event });
        let store = self.workspace().store();
        let push = |name: &str| {
            Reference::parse(name).map_err(forge_registry::Error::from).and_then(|reference| {
                match &built.index {
                    Some(index) => {
                        client.push_index(PushTo { store, reference: &reference, progress: &progress }, index)
                    }
                    None => client.push(store, &built.stored, &reference, &progress),
                }
            })
        };
        // The main tag first; the extra tags find every blob there already;
        // then the SBOM and provenance, which refer to pushed manifests.
        let mut referrers = Vec::new();
        let result = push(&built.image)
            .and_then(|report| built.tags.iter().try_for_each(|tag| push(tag).map(drop)).map(|()| report))
            .and_then(|mut report| {
                let reference = Reference::parse(&built.image)?;
                for attestation in attestations {
                    referrers.extend(client.push_referrers(
                        store,
                        &attestation.descriptors(),
                        &attestation.image,
                        &reference,
                        &mut report,
                        &progress,
                    )?);
                }
                Ok(report)
            })
            .map_err(Error::from);
        observer.event(&Event::PushFinished { plugin, ok: result.is_ok() });
        Pushed {
            plugin: plugin.to_path_buf(),
            image: Some(built.image.clone()),
            tags: built.tags.clone(),
            title: Some(built.title.clone()),
            referrers,
            result,
            time: started.elapsed(),
            tarball: None,
            archive: None,
        }
    }

    /// What [`Session::publish`] would push: for each image that built,
    /// the blobs its repository lacks (found with `HEAD` requests, none
    /// when its tag names it already; nothing is written to the registry). Results are in the order of `outcomes`.
    pub fn dry_run(&self, outcomes: Vec<Outcome>, options: &PushOptions) -> Result<Vec<WouldPush>, Error> {
        let client = client(self.insecure_registries(), self.ca_certs(), options.chunk_size)?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| match outcome.result {
                Ok(Artifact { built, .. }) => WouldPush {
                    plugin: outcome.plugin,
                    image: Some(built.image.clone()),
                    tags: built.tags.clone(),
                    result: self.missing_blobs(&client, &built),
                },
                Err(e) => WouldPush {
                    plugin: outcome.plugin,
                    image: None,
                    tags: Vec::new(),
                    result: Err(Error::NotBuilt { source: Box::new(e) }),
                },
            })
            .collect())
    }

    fn missing_blobs(&self, client: &Client, built: &Built) -> Result<Missing, Error> {
        let reference = Reference::parse(&built.image).map_err(forge_registry::Error::from)?;
        let mut blobs = Vec::new();
        for image in built.images() {
            blobs.push(image.manifest.config().clone());
            blobs.extend(image.manifest.layers().iter().cloned());
        }
        let mut seen = std::collections::HashSet::new();
        blobs.retain(|d| seen.insert(d.digest().to_string()));
        let mut missing = Missing { digest: built.digest().clone(), missing: Vec::new(), present: 0 };
        let to = PushTo { store: self.workspace().store(), reference: &reference, progress: &|_| {} };
        if client.serves(to, built.digest())? {
            // The tag names this image already: it is complete there.
            missing.present = blobs.len();
            return Ok(missing);
        }
        for descriptor in &blobs {
            let digest = Digest::from_descriptor(descriptor).map_err(forge_registry::Error::from)?;
            if client.has_blob(&reference, &digest, &|_| {})? {
                missing.present += 1;
            } else {
                missing.missing.push((digest, descriptor.size()));
            }
        }
        Ok(missing)
    }
}

/// What [`Session::dry_run`] found for one plugin.
#[derive(Debug)]
pub struct WouldPush {
    /// The plugin, relative to the root.
    pub plugin: PathBuf,
    /// `REGISTRY/NAME:TAG`, when it built.
    pub image: Option<String>,
    /// Its extra tags (`-t`).
    pub tags: Vec<String>,
    /// The blobs the registry lacks, or why that is not known.
    pub result: Result<Missing, Error>,
}

/// The blobs of an image its repository lacks.
#[derive(Debug, Clone)]
pub struct Missing {
    /// The manifest digest the tag would point at.
    pub digest: Digest,
    /// Blobs (config and layers) to upload, with their sizes.
    pub missing: Vec<(Digest, u64)>,
    /// Blobs the repository has already.
    pub present: usize,
}

impl Missing {
    /// Bytes a push would upload at most (mounts from sibling repositories
    /// can save some).
    pub fn bytes(&self) -> u64 {
        self.missing.iter().map(|(_, size)| size).sum()
    }
}
