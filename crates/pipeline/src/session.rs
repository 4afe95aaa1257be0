//! One run over a monorepo: [`Session::open`] sets up what every build
//! shares (the builder's workspace and store, fresh base images, the
//! resolver chain, the build options), and its methods build plugins, one
//! or many in parallel behind the lint gate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forge_builder::{BuildOptions, Built, Extras, LocalResolver, Override, Rebuild, Workspace, TARGET_DIR};
use forge_debian::description::Description;
use forge_lint::LintConfig;
use forge_oci::{LayerCache, Platform, Target};
use rayon::prelude::*;

use crate::base_image::description_path;
use crate::fresh::{Fresh, Pending};
use crate::image_check;
use crate::inputs::BuildInputs;
use crate::install::NativeInstaller;
use crate::locks::LockMode;
use crate::registry::cache_client;
use crate::runner::{RunPolicy, SandboxRunner};
use crate::sbom::{AttestOptions, Attestation};
use crate::shared_cache::{with_run_cache, CacheOptions, RegistryCaches};
use crate::timings;
use crate::{
    client, descriptions, ensure, lint_gate, provenance, store_dir, Archived, BaseImageOptions, Error, Event,
    Observer, Outputs, PullingResolver,
};

/// What a run is over, as the command line gives it.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The monorepo root, the directory that holds `plugins/`.
    pub root: PathBuf,
    /// Registry prefix of image names (the `REGISTRY` build arg).
    pub registry: String,
    /// `REF=SOURCE` base image overrides (`--base-image`).
    pub base_images: Vec<String>,
    /// Where tarballs go [default: `ROOT/target/plugin-forge/images`].
    pub out: Option<PathBuf>,
    /// Registries spoken to over plain HTTP (loopback ones always are).
    pub insecure_registries: Vec<String>,
    /// CA certificates (PEM files) trusted for every registry of this run
    /// (`--ca-cert`), on top of the system's and Docker's `certs.d`.
    pub ca_certs: Vec<PathBuf>,
    /// Severities of the lint rules, for the lint gate and the image
    /// checks (`-A`/`-W`).
    pub lint: LintConfig,
    /// `--build-arg`, `--label`, `-t` and `--no-cache`.
    pub extras: Extras,
    /// What builds do with `Dockerfile.lock` (`--locked`, `--update-locks`).
    pub locks: LockMode,
    /// `--debian-mirror`: the mirror `apt-get install` resolves against in
    /// Debian images that do not name one [default: deb.debian.org].
    pub debian_mirror: Option<String>,
    /// `--platform`: the platforms every plugin is built for, an image
    /// index of them when several [default: linux/amd64].
    pub platforms: Vec<Platform>,
    /// How `RUN`s no native installer takes run (`--native-only`,
    /// `--run-network`).
    pub run: RunPolicy,
    /// `--cache`, `--cache-mode`: layer caches in registries.
    pub cache: CacheOptions,
    /// `--sbom` and `--no-provenance`: what each image gets attached.
    pub attest: AttestOptions,
    /// `--tarballs`, `--archive`: what is written besides the store.
    pub outputs: Outputs,
}

/// How [`Session::build`] runs.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Plugins built at once [default: all cores].
    pub jobs: Option<usize>,
    /// Whether plugins with lint errors fail with them instead of building.
    pub lint: bool,
}

impl Default for BatchOptions {
    fn default() -> BatchOptions {
        BatchOptions { jobs: None, lint: true }
    }
}

/// A plugin's image, built, and where it was written.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The image in the store.
    pub built: Built,
    /// Its tarball, when the run writes them ([`Outputs::tarballs`]).
    pub tarball: Option<PathBuf>,
    /// Where it is in the run's archive, when there is one.
    pub archive: Option<Archived>,
    /// The SBOM and provenance of each image (in the tarball and the
    /// store), in the order of [`Built::images`].
    pub attestations: Vec<Attestation>,
}

/// What became of one plugin of a [`Session::build`].
#[derive(Debug)]
pub struct Outcome {
    /// The plugin, relative to the root.
    pub plugin: PathBuf,
    /// Its image, or why there is none.
    pub result: Result<Artifact, Error>,
    /// How long it took (zero when it was not built at all).
    pub time: Duration,
}

/// What every build of a run shares.
#[derive(Debug)]
pub struct Session {
    workspace: Workspace,
    resolver: PullingResolver,
    out: PathBuf,
    options: BuildOptions,
    insecure_registries: Vec<String>,
    ca_certs: Vec<PathBuf>,
    lint: LintConfig,
    installer: NativeInstaller,
    /// The `--cache` registries, if any.
    caches: Option<RegistryCaches>,
    attest: AttestOptions,
    outputs: Outputs,
    /// The up-to-date checks of whole plugins.
    fresh: Fresh,
}

impl Session {
    /// Opens the monorepo and its store, builds the base images described
    /// in `ROOT/base-images` that the store lacks (unless overridden), and
    /// reads `SOURCE_DATE_EPOCH` and the git provenance.
    pub fn open(options: SessionOptions, observer: &dyn Observer) -> Result<Session, Error> {
        // Every option but where the archive goes is part of what an
        // up-to-date plugin was built with; the runs that must rebuild,
        // or push layers to `--cache` registries, keep no records.
        let keyed = SessionOptions {
            outputs: Outputs { archive: None, ..options.outputs.clone() },
            ..options.clone()
        };
        let keep_records = !options.extras.no_cache
            && options.locks != LockMode::Update
            && options.cache.repositories.is_empty();
        let SessionOptions {
            root,
            registry,
            base_images,
            out,
            insecure_registries,
            ca_certs,
            lint,
            extras,
            locks,
            debian_mirror,
            platforms,
            run,
            cache,
            attest,
            outputs,
        } = options;
        let overrides = base_images
            .iter()
            .map(|o| Override::parse(o).map_err(|message| Error::BaseImageFlag { message }))
            .collect::<Result<Vec<_>, _>>()?;
        let epoch = provenance::source_date_epoch()?;
        let mut workspace = Workspace::open(&root, &store_dir(&root))?;
        let runner = SandboxRunner::new(workspace.root(), workspace.store().clone(), run);
        workspace.set_runner(std::sync::Arc::new(runner));
        let installer = NativeInstaller::new(workspace.root(), locks, tool_cache()?, debian_mirror);
        let base = BaseImageOptions { epoch, ..BaseImageOptions::default() };
        let options = BuildOptions {
            registry,
            epoch,
            revision: provenance::revision(&root),
            source: provenance::source(&root),
            extras,
            platforms,
        };
        for platform in options.platforms() {
            let base = BaseImageOptions { platform: Some(platform), ..base.clone() };
            ensure_base_images(&root, &workspace, &options.registry, &overrides, &base, observer)?;
        }
        let fresh = Fresh::new(&format!("{keyed:?}\n{options:?}"), keep_records);
        let resolver = PullingResolver::new(
            LocalResolver::new(overrides),
            client(&insecure_registries, &ca_certs, u64::MAX)?,
        );
        let caches = RegistryCaches::new(&cache, cache_client(&insecure_registries, &ca_certs)?)?;
        let out = out.unwrap_or_else(|| root.join(TARGET_DIR).join("images"));
        // Tarballs half-written by killed runs (the store cleans its own;
        // the archive's directory is cleaned when it is written).
        forge_oci::temp::remove_under(&out, forge_oci::temp::Scope::Stale);
        Ok(Session {
            workspace,
            resolver,
            out,
            options,
            insecure_registries,
            ca_certs,
            lint,
            installer,
            caches,
            attest,
            outputs,
            fresh,
        })
    }

    /// The builder's workspace: the canonical root and the store.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// What every build gets: registry, epoch, provenance.
    pub fn build_options(&self) -> &BuildOptions {
        &self.options
    }

    /// Where tarballs go.
    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    /// Registries spoken to over plain HTTP.
    pub(crate) fn insecure_registries(&self) -> &[String] {
        &self.insecure_registries
    }

    /// The `--ca-cert` files.
    pub(crate) fn ca_certs(&self) -> &[PathBuf] {
        &self.ca_certs
    }

    /// The installer of the run's `RUN`s, with its lock files.
    pub(crate) fn installer(&self) -> &NativeInstaller {
        &self.installer
    }

    /// What images get attached.
    pub(crate) fn attest_options(&self) -> AttestOptions {
        self.attest
    }

    /// What is written besides the store.
    pub(crate) fn outputs(&self) -> &Outputs {
        &self.outputs
    }

    /// Attaches the SBOM and provenance to `built` and writes its tarball
    /// with them (when the run writes tarballs).
    fn export(&self, built: Built) -> Result<Artifact, Error> {
        let attestations = timings::phase("attest", || self.attest(&built))?;
        let tarball = timings::phase("export", || self.write_tarball(&built, &attestations))?;
        Ok(Artifact { built, tarball, archive: None, attestations })
    }

    /// Builds the plugin at `ROOT/plugin`, checks the image and writes its
    /// tarball; no lint gate.
    pub fn build_one(&self, plugin: &Path, observer: &dyn Observer) -> Result<Artifact, Error> {
        if let Some(artifact) = self.fresh_artifact(plugin, false, observer) {
            return artifact;
        }
        let built = self.with_cache(observer, |cache| self.build_plugin(plugin, cache));
        self.write_locks(observer)?;
        // No lint gate ran: no record (a fresh plugin is one that passed it).
        let (built, _) = built?;
        image_check::check(&self.workspace, &built, &self.lint, observer)?;
        self.export(built)
    }

    /// The artifact of `plugin` if it is up to date ([`crate::fresh`]):
    /// its image checked (warnings reported again) and its tarball
    /// written if it is not there as it was; `batch`: with the events of a
    /// batch's build around them.
    fn fresh_artifact(
        &self,
        plugin: &Path,
        batch: bool,
        observer: &dyn Observer,
    ) -> Option<Result<Artifact, Error>> {
        let (built, attestations) = timings::phase("fresh", || {
            let workspace = &self.workspace;
            self.fresh.check(plugin, workspace.root(), workspace.context(), workspace.store(), &self.resolver)
        })?;
        observer.event(&Event::UpToDate { plugin });
        if batch {
            observer.event(&Event::BuildStarted { plugin });
        }
        let result = timings::phase("image check", || {
            image_check::check(&self.workspace, &built, &self.lint, observer)
        })
        .and_then(|()| {
            if batch {
                observer.event(&Event::Exporting { plugin });
            }
            let tarball = timings::phase("export", || self.write_tarball(&built, &attestations))?;
            Ok(Artifact { built, tarball, archive: None, attestations })
        });
        Some(result)
    }

    /// Lints `plugins` first (unless [`BatchOptions::lint`] is off): a
    /// plugin with lint errors fails with them and is not built; the others
    /// build in parallel. A failing plugin does not stop the others.
    /// Outcomes are in the order of `plugins`. The run's archive, if any,
    /// is written last, of the images that built.
    pub fn build(
        &self,
        plugins: &[PathBuf],
        batch: &BatchOptions,
        observer: &dyn Observer,
    ) -> Result<Vec<Outcome>, Error> {
        let jobs =
            batch.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build()
            .map_err(|source| Error::Threads { what: "build", source })?;
        // Up-to-date plugins first: when every one is, nothing is linted.
        let fresh: Vec<Option<Outcome>> =
            pool.install(|| plugins.par_iter().map(|p| self.fresh_outcome(p, observer)).collect());
        let mut fresh: HashMap<PathBuf, Outcome> =
            fresh.into_iter().flatten().map(|o| (o.plugin.clone(), o)).collect();
        let stale: Vec<&PathBuf> = plugins.iter().filter(|p| !fresh.contains_key(*p)).collect();
        // The gate checks the stale plugins; its rules across plugins (two
        // plugins with one image name) can reject a fresh one too.
        let rejected = if batch.lint && !stale.is_empty() {
            let passed = |p: &Path| fresh.contains_key(p);
            timings::phase("lint gate", || {
                lint_gate(self.workspace.root(), plugins, &passed, &self.lint, observer)
            })?
        } else {
            HashMap::new()
        };
        let buildable: Vec<PathBuf> =
            stale.into_iter().filter(|p| !rejected.contains_key(*p)).cloned().collect();
        let outcomes = self.with_cache(observer, |cache| {
            pool.install(|| {
                buildable
                    .par_iter()
                    .map(|plugin| self.build_observed(plugin, cache, observer))
                    .collect::<Vec<_>>()
            })
        });
        // What resolved is kept even when a build failed later.
        self.write_locks(observer)?;
        let mut built: HashMap<PathBuf, Outcome> = HashMap::new();
        for (outcome, pending) in outcomes {
            // Records are written once every build is done (and the locks
            // written), of what passed the gate.
            if let (Ok(artifact), Some(pending)) = (&outcome.result, pending.filter(|_| batch.lint)) {
                let workspace = &self.workspace;
                timings::phase("fresh", || {
                    let (root, context, store) = (workspace.root(), workspace.context(), workspace.store());
                    self.fresh.record(root, context, store, &artifact.built, &artifact.attestations, pending)
                })?;
            }
            built.insert(outcome.plugin.clone(), outcome);
        }
        built.extend(fresh.drain());
        let mut rejected = rejected;
        let mut outcomes: Vec<Outcome> = plugins
            .iter()
            .filter_map(|p| match rejected.remove(p) {
                Some(why) => Some(Outcome {
                    plugin: p.clone(),
                    result: Err(Error::LintRejected(why)),
                    time: Duration::ZERO,
                }),
                None => built.remove(p),
            })
            .collect();
        self.write_archive(&mut outcomes)?;
        Ok(outcomes)
    }

    /// Plans the plugin at `ROOT/plugin`, gives its image the revision of
    /// its build inputs (the last commit that changed them, not `HEAD`),
    /// and executes the plan with the run's layer cache. With the image
    /// comes what its up-to-date record needs, taken before it executes.
    fn build_plugin(&self, plugin: &Path, cache: &dyn LayerCache) -> Result<(Built, Option<Pending>), Error> {
        let mut planned =
            timings::phase("plan", || self.workspace.plan(plugin, &self.options, &self.resolver))?;
        let (root, context) = (self.workspace.root(), self.workspace.context());
        // Listed once for both the up-to-date record and the revision.
        let inputs = (self.fresh.enabled() || self.options.revision.is_some())
            .then(|| BuildInputs::of(root, &planned, &self.options.registry));
        // Inputs that cannot be listed leave no record; the revision
        // reports what is wrong with them.
        let pending = match &inputs {
            Some(Ok(inputs)) if self.fresh.enabled() => {
                Some(timings::phase("fresh", || self.fresh.pending(root, context, &planned, inputs)))
            }
            _ => None,
        };
        if let (Some(head), Some(inputs)) = (&self.options.revision, inputs) {
            let revision = timings::phase("revision", || -> Result<_, Error> {
                Ok(inputs?.revision(root, head, context))
            })?;
            for plan in &mut planned.plans {
                match &revision {
                    Some(revision) => plan.annotations.insert(REVISION.to_string(), revision.clone()),
                    None => plan.annotations.remove(REVISION),
                };
            }
        }
        let built = timings::phase("execute", || self.workspace.execute(&planned, cache, &self.installer))?;
        Ok((built, pending))
    }

    /// Runs `work` with the run's layer cache: the store (bypassed by
    /// `--no-cache`), then the `--cache` registries.
    fn with_cache<R>(&self, observer: &dyn Observer, work: impl FnOnce(&dyn LayerCache) -> R) -> R {
        let store = self.workspace.store();
        let no_cache = self.options.extras.no_cache;
        let rebuild = Rebuild(store);
        let local: &dyn LayerCache = if no_cache { &rebuild } else { store };
        with_run_cache(local, !no_cache, self.caches.as_ref(), store, observer, work)
    }

    /// Writes the `Dockerfile.lock`s the builds so far changed.
    fn write_locks(&self, observer: &dyn Observer) -> Result<(), Error> {
        for path in self.installer.locks().write()? {
            observer.event(&Event::RunLockWritten { path: &path });
        }
        Ok(())
    }

    /// One plugin of a batch: build, image checks, tarball, with events
    /// around them.
    fn build_observed(
        &self,
        plugin: &Path,
        cache: &dyn LayerCache,
        observer: &dyn Observer,
    ) -> (Outcome, Option<Pending>) {
        observer.event(&Event::BuildStarted { plugin });
        let started = Instant::now();
        let mut pending = None;
        let result = self.build_plugin(plugin, cache).and_then(|(built, p)| {
            pending = p;
            timings::phase("image check", || {
                image_check::check(&self.workspace, &built, &self.lint, observer)
            })?;
            observer.event(&Event::Exporting { plugin });
            self.export(built)
        });
        let time = started.elapsed();
        observer.event(&Event::BuildFinished { plugin, result: result.as_ref().map(|a| &a.built), time });
        (Outcome { plugin: plugin.to_path_buf(), result, time }, pending)
    }

    /// One plugin of a batch if it is up to date, with the events of a
    /// build; `None`: it must be built.
    fn fresh_outcome(&self, plugin: &Path, observer: &dyn Observer) -> Option<Outcome> {
        let started = Instant::now();
        let result = self.fresh_artifact(plugin, true, observer)?;
        let time = started.elapsed();
        observer.event(&Event::BuildFinished { plugin, result: result.as_ref().map(|a| &a.built), time });
        Some(Outcome { plugin: plugin.to_path_buf(), result, time })
    }
}

/// The annotation of the commit an image was built from.
pub(crate) const REVISION: &str = "org.opencontainers.image.revision";

/// The tool cache: `$XDG_CACHE_HOME/plugin-forge`, else
/// `~/.cache/plugin-forge` (uv, wheels, `.deb`s, indexes).
fn tool_cache() -> Result<PathBuf, Error> {
    Ok(crate::base_image::cache_dir()?.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Builds the base images described in `ROOT/base-images` that are
/// missing from the store, unless `--base-image` overrides them.
fn ensure_base_images(
    root: &Path,
    workspace: &Workspace,
    registry: &str,
    overrides: &[Override],
    options: &BaseImageOptions,
    observer: &dyn Observer,
) -> Result<(), Error> {
    for name in descriptions(root)? {
        let description = description_path(root, &name);
        let repo = Description::load(&description)?.name;
        let reference = format!("{}/{repo}", registry.trim_end_matches('/'));
        let overridden = overrides.iter().any(|o| forge_reference::untagged(&o.reference) == reference);
        let platform = options.platform.clone().unwrap_or_default();
        // A ref that cannot be read any more is built again.
        let stored = Target::load_ref(workspace.store(), &reference).ok().flatten();
        if !overridden && stored.is_none_or(|t| t.image_for(&platform).is_none()) {
            observer.event(&Event::BaseImageMissing { reference: &reference, description: &description });
            ensure(root, workspace.store(), &name, registry, options, observer)?;
        }
    }
    Ok(())
}
