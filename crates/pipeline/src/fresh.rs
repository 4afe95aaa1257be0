//! Whole-plugin up-to-date checks, as cargo's fingerprints: a plugin whose
//! build inputs, options and base images are what they were when its
//! image was last built is not linted, planned, executed or attested
//! again. Its image, SBOM and provenance are taken from the store, its
//! tarball is checked as any run's is, and it is reported as cached.
//!
//! After a plugin builds, its record goes into the store's cache
//! (`fresh/v1/PLUGIN`):
//! - the run's key: the binary's own [`StatStamp`] and every option of
//!   the run, including `SOURCE_DATE_EPOCH` and the `HEAD` commit (the
//!   revision annotation comes from the history);
//! - its input paths ([`BuildInputs`] and the sources of `RUN
//!   --mount=type=bind`), and a digest of what a walk of them finds:
//!   each file's mode and stamp (inode, size, mtime, ctime with
//!   nanoseconds), each directory's mode and entries, each symlink and
//!   what it points at; below the context paths, what the context
//!   leaves out is left out of the walk too;
//! - every image its plans resolved (bases, stages' bases, `COPY
//!   --from` images) with the digest it resolved to;
//! - what the build made: the digest its refs point at, its names, the
//!   SBOM and provenance.
//!
//! A plugin is fresh when its record has the run's key, the walk finds
//! the same digest, each image resolves to the same digest again (through
//! the run's resolver, so an override or a rebuilt base counts), its refs
//! in the store still point at its image, and its image, layers (by size)
//! and documents are still in the store. Anything missing, unreadable or
//! different makes it stale, and it builds as it would have: the check
//! only saves work, it never changes an output.
//!
//! Invariants:
//! - A record's input digest is the one taken before the build read its
//!   inputs, and it is written only when a walk after the run's builds
//!   finds the same: a file changed while its plugin was built leaves no
//!   record, so the next run builds it again.
//! - Runs that must rebuild or whose outputs the record does not cover
//!   keep no records and read none: `--no-cache`, `--update-locks` and
//!   `--cache` registries.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use forge_builder::{BaseImage, BaseResolver, Built, Context, CopySource, PluginPlan, RunMount, Status};
use forge_input::StatStamp;
use forge_manifest::ImageRef;
use forge_oci::{referrers, BlobStore, Digest, Image, Index, Platform};
use serde::{Deserialize, Serialize};

use crate::inputs::BuildInputs;
use crate::Attestation;

/// The version of the records: a change of what they hold or mean gets
/// a new one, and older records are not read.
const VERSION: &str = "fresh/v1";

/// The up-to-date checks of one run: its key, and what it walked and
/// resolved (once each per run, whichever plugins share it).
#[derive(Debug)]
pub(crate) struct Fresh {
    /// The run's key; `None`: no records are read or written.
    key: Option<String>,
    /// Input path (and whether the context filters it) to the digest of
    /// its walk before any build of the run.
    walked: Mutex<HashMap<(String, bool), String>>,
    /// The same, walked again after the run's builds.
    rewalked: Mutex<HashMap<(String, bool), String>>,
    /// Reference and platform to the digest they resolve to.
    resolved: Mutex<HashMap<(String, String), Option<String>>>,
    /// The store's refs and the digests they point at, read once: the
    /// checks run before any build of the run sets a ref.
    refs: OnceLock<HashMap<String, String>>,
}

/// What a plugin's build leaves for its record: its inputs as they were
/// before the build.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    paths: InputPaths,
    inputs: String,
    images: Vec<ResolvedImage>,
}

/// The paths a plugin is built from, relative to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InputPaths {
    /// Walked whole (the plugin directory, `.dockerignore`, base-image
    /// descriptions and locks).
    always: BTreeSet<String>,
    /// Walked without what the context leaves out.
    context: BTreeSet<String>,
}

/// An image a plan resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ResolvedImage {
    reference: String,
    platform: String,
    /// `None` for `scratch`.
    digest: Option<String>,
}

/// One plugin's record.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    key: String,
    paths: InputPaths,
    inputs: String,
    images: Vec<ResolvedImage>,
    /// What the refs point at: the index's digest, or the manifest's.
    target: String,
    /// Whether `target` is an index.
    index: bool,
    image: String,
    name: String,
    tag: String,
    tags: Vec<String>,
    title: String,
    /// Layers of the build (built and cached): a fresh run reports them
    /// all cached, as a warm build does.
    layers: usize,
    attestations: Vec<Attested>,
}

/// An image's documents, by their artifact manifests' digests.
#[derive(Debug, Serialize, Deserialize)]
struct Attested {
    image: String,
    sbom: Option<String>,
    provenance: Option<String>,
}

impl Fresh {
    /// The checks of a run whose options print as `options`; `enabled`
    /// is false for runs that keep no records.
    pub(crate) fn new(options: &str, enabled: bool) -> Fresh {
        let exe = std::env::current_exe().ok().and_then(|p| StatStamp::stat(&p));
        let key = match exe {
            Some(exe) if enabled => {
                Some(Digest::of(format!("{VERSION}\n{exe:?}\n{options}").as_bytes()).hex().to_string())
            }
            _ => None,
        };
        Fresh {
            key,
            walked: Mutex::default(),
            rewalked: Mutex::default(),
            resolved: Mutex::default(),
            refs: OnceLock::new(),
        }
    }

    /// Whether records are read and written.
    pub(crate) fn enabled(&self) -> bool {
        self.key.is_some()
    }

    /// What the build of `planned` records, taken now (before it runs):
    /// `inputs` are its build inputs.
    pub(crate) fn pending(
        &self,
        root: &Path,
        context: &Context,
        planned: &PluginPlan,
        inputs: &BuildInputs,
    ) -> Pending {
        let mut paths = InputPaths { always: inputs.always.clone(), context: inputs.context.clone() };
        let mut images = Vec::new();
        for plan in &planned.plans {
            let platform = plan.base.platform.to_string();
            let stages = plan.stages.iter().map(|s| (&s.base, &s.steps));
            for (base, steps) in std::iter::once((&plan.base, &plan.steps)).chain(stages) {
                // `scratch` (no image) resolves to nothing, and is never asked about.
                if base.image.is_some() {
                    images.push(resolved(base));
                }
                for step in steps {
                    if let Some(CopySource::Image { reference, digest }) =
                        step.copy_from.as_ref().map(|c| &c.source)
                    {
                        images.push(ResolvedImage {
                            reference: reference.clone(),
                            platform: platform.clone(),
                            digest: Some(digest.to_string()),
                        });
                    }
                    for mount in step.sandbox.iter().flat_map(|s| &s.mounts) {
                        if let RunMount::Bind { source, .. } = mount {
                            paths.context.insert(Context::source_root(source));
                        }
                    }
                }
            }
        }
        images.sort_by(|a, b| (&a.reference, &a.platform).cmp(&(&b.reference, &b.platform)));
        images.dedup();
        let inputs = self.digest(root, context, &paths, &self.walked);
        Pending { paths, inputs, images }
    }

    /// The artifact of the plugin `plugin` if its record says it is
    /// fresh; `None`: it must be built.
    pub(crate) fn check(
        &self,
        plugin: &Path,
        root: &Path,
        context: &Context,
        store: &BlobStore,
        resolver: &dyn BaseResolver,
    ) -> Option<(Built, Vec<Attestation>)> {
        let key = self.key.as_ref()?;
        let record: Record = serde_json::from_str(&store.cache_get(&record_key(plugin))?).ok()?;
        if &record.key != key || self.digest(root, context, &record.paths, &self.walked) != record.inputs {
            return None;
        }
        for image in &record.images {
            if self.resolve(image, store, resolver)? != image.digest {
                return None;
            }
        }
        let target = Digest::parse(&record.target).ok()?;
        let refs = self.refs.get_or_init(|| {
            let refs = store.refs().unwrap_or_default();
            refs.into_iter().map(|(name, d)| (name, d.digest().to_string())).collect()
        });
        for name in std::iter::once(&record.image).chain(&record.tags) {
            if refs.get(name) != Some(&record.target) {
                return None;
            }
        }
        let (stored, index) = if record.index {
            let index = Index::load(store, &target).ok()?;
            (index.images.first()?.clone(), Some(index))
        } else {
            (Image::load(store, &target).ok()?, None)
        };
        let mut built = Built {
            plugin: plugin.to_path_buf(),
            image: record.image,
            image_ref: ImageRef { name: record.name, tag: record.tag },
            tags: record.tags,
            title: record.title,
            stored,
            index,
            size: 0,
            layers_built: 0,
            layers_cached: record.layers,
            status: Status::Cached,
        };
        for image in built.images() {
            for layer in image.manifest.layers() {
                let digest = Digest::from_descriptor(layer).ok()?;
                if fs::metadata(store.path(&digest)).ok()?.len() != layer.size() {
                    return None;
                }
            }
        }
        built.size = built
            .images()
            .iter()
            .map(|i| i.manifest.config().size() + i.manifest.layers().iter().map(|l| l.size()).sum::<u64>())
            .sum();
        let artifact = |digest: &Option<String>| -> Option<Option<referrers::Artifact>> {
            let Some(digest) = digest else { return Some(None) };
            let digest = Digest::parse(digest).ok()?;
            let descriptor = referrers::artifact_descriptor(store, &digest).ok()?;
            let document =
                Digest::from_descriptor(&referrers::read_artifact(store, &descriptor).ok()?.document).ok()?;
            store.contains(&document).then_some(Some(referrers::Artifact { descriptor, document }))
        };
        let mut attestations = Vec::new();
        for (attested, image) in record.attestations.iter().zip(built.images()) {
            if attested.image != image.manifest_digest.to_string() {
                return None;
            }
            attestations.push(Attestation {
                image: image.manifest_digest.clone(),
                sbom: artifact(&attested.sbom)?,
                provenance: artifact(&attested.provenance)?,
            });
        }
        (attestations.len() == record.attestations.len()).then_some((built, attestations))
    }

    /// Writes the record of `built` if its inputs are still what
    /// `pending` found before it was built; call once the run's builds
    /// are done.
    pub(crate) fn record(
        &self,
        root: &Path,
        context: &Context,
        store: &BlobStore,
        built: &Built,
        attestations: &[Attestation],
        pending: Pending,
    ) -> Result<(), forge_oci::Error> {
        let Some(key) = &self.key else { return Ok(()) };
        if self.digest(root, context, &pending.paths, &self.rewalked) != pending.inputs {
            return Ok(());
        }
        let name = |a: &Option<referrers::Artifact>| a.as_ref().map(|a| a.descriptor.digest().to_string());
        let record = Record {
            key: key.clone(),
            paths: pending.paths,
            inputs: pending.inputs,
            images: pending.images,
            target: built.digest().to_string(),
            index: built.index.is_some(),
            image: built.image.clone(),
            name: built.image_ref.name.clone(),
            tag: built.image_ref.tag.clone(),
            tags: built.tags.clone(),
            title: built.title.clone(),
            layers: built.layers_built + built.layers_cached,
            attestations: attestations
                .iter()
                .map(|a| Attested {
                    image: a.image.to_string(),
                    sbom: name(&a.sbom),
                    provenance: name(&a.provenance),
                })
                .collect(),
        };
        // A record that cannot be written only saves less work next time.
        let Ok(text) = serde_json::to_string(&record) else { return Ok(()) };
        store.cache_put(&record_key(&built.plugin), &text)
    }

    /// The digest of the walks of `paths`, each walked once per memo.
    fn digest(
        &self,
        root: &Path,
        context: &Context,
        paths: &InputPaths,
        memo: &Mutex<HashMap<(String, bool), String>>,
    ) -> String {
        let mut all = String::new();
        let walks = paths.always.iter().map(|p| (p, false)).chain(paths.context.iter().map(|p| (p, true)));
        for (path, filtered) in walks {
            let key = (path.clone(), filtered);
            let found = memo.lock().ok().and_then(|m| m.get(&key).cloned());
            let digest = found.unwrap_or_else(|| {
                let mut text = String::new();
                walk(root, path, filtered.then_some(context), &mut text);
                let digest = Digest::of(text.as_bytes()).hex().to_string();
                if let Ok(mut m) = memo.lock() {
                    m.insert(key, digest.clone());
                }
                digest
            });
            let _ = writeln!(all, "{path}\t{filtered}\t{digest}");
        }
        Digest::of(all.as_bytes()).hex().to_string()
    }

    /// What `image`'s reference resolves to now (`Some(None)`: scratch;
    /// `None`: it does not resolve).
    fn resolve(
        &self,
        image: &ResolvedImage,
        store: &BlobStore,
        resolver: &dyn BaseResolver,
    ) -> Option<Option<String>> {
        let key = (image.reference.clone(), image.platform.clone());
        if let Some(found) = self.resolved.lock().ok()?.get(&key) {
            return Some(found.clone());
        }
        let platform = Platform::parse(&image.platform)?;
        let found = resolver.resolve(&image.reference, &platform, store).ok()?;
        let digest = found.image.map(|i| i.manifest_digest.to_string());
        self.resolved.lock().ok()?.insert(key, digest.clone());
        Some(digest)
    }
}

/// The store cache key of `plugin`'s record.
fn record_key(plugin: &Path) -> String {
    format!("{VERSION}/{}", plugin.display())
}

fn resolved(base: &BaseImage) -> ResolvedImage {
    ResolvedImage {
        reference: base.reference.clone(),
        platform: base.platform.to_string(),
        digest: base.image.as_ref().map(|i| i.manifest_digest.to_string()),
    }
}

/// Writes what `rel` (below `root`; `""` is the root) is into `text`:
/// see the [module docs](self). Below it, what `context` leaves out is
/// skipped.
fn walk(root: &Path, rel: &str, context: Option<&Context>, text: &mut String) {
    let path = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    entry(&path, rel, context, true, text);
}

fn entry(path: &Path, rel: &str, context: Option<&Context>, top: bool, text: &mut String) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        let _ = writeln!(text, "{rel}\t-");
        return;
    };
    let mut is_dir = meta.is_dir();
    if meta.file_type().is_symlink() {
        let _ = write!(text, "{rel}\tl\t{:?}\t", StatStamp::of(&meta).0);
        match fs::metadata(path) {
            Ok(target) => {
                let _ = writeln!(text, "{:o}\t{:?}", target.mode(), StatStamp::of(&target).0);
                // A source that is a link to a directory is copied as the directory.
                is_dir = top && target.is_dir();
            }
            Err(_) => text.push_str("-\n"),
        }
    } else if is_dir {
        // Entries are listed below; a directory's times change with
        // what is created and removed in it, which a walk sees anyway.
        let _ = writeln!(text, "{rel}\td\t{:o}", meta.mode());
    } else {
        let _ = writeln!(text, "{rel}\tf\t{:o}\t{:?}", meta.mode(), StatStamp::of(&meta).0);
    }
    if !is_dir {
        return;
    }
    let Ok(read) = fs::read_dir(path) else {
        let _ = writeln!(text, "{rel}\tunreadable");
        return;
    };
    let mut names: Vec<_> = read.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
    names.sort();
    for name in names {
        let name_text = name.to_string_lossy();
        let child = if rel.is_empty() { name_text.into_owned() } else { format!("{rel}/{name_text}") };
        if context.is_some_and(|c| c.is_excluded(&child)) {
            continue;
        }
        entry(&path.join(&name), &child, context, false, text);
    }
}
