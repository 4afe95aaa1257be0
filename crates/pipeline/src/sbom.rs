//! The SBOM and provenance of every image a run builds, attached to it as
//! OCI 1.1 artifacts (`subject` = the image manifest) in the store, then
//! written into its tarball ([`forge_builder::Workspace::export_with`])
//! and pushed as its referrers ([`crate::publish`]).
//!
//! The record of what was installed comes from the build's own lock
//! files, the typed record every installer works from and that a cached
//! build has as well: a base image of ours is matched to its
//! `base-images/NAME.lock` by the lock digest its manifest carries, and
//! each installing `RUN` of the image's history to its entry in the
//! plugin's `Dockerfile.lock` (the instruction and platform are its key).
//! Which packages the image holds is read from the finished image
//! (forge-sbom's `contents`), so a package of a base we pulled is listed
//! too, from its dpkg status, without a digest.
//!
//! An SBOM is remembered in the store's cache by the image's manifest
//! digest and its inputs, so an unchanged image does not read its layers
//! again; the provenance is rebuilt every time (it reads no layer).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use forge_baseimage::install::AptLock;
use forge_builder::Built;
use forge_debian::lock::Lock;
use forge_input::StatStamp;
use forge_manifest::DOCKERFILE;
use forge_oci::entries::EntryKind;
use forge_oci::referrers::{self, Artifact};
use forge_oci::{BlobStore, Digest, Image, ImageFiles, ImageLayers, Platform};
use forge_sbom::contents::Scan;
use forge_sbom::provenance::{Material, Provenance};
use forge_sbom::{Base, DebianRecord, Download, Format, Plugin, Record, Sbom, Subject, WheelRecord};

use crate::locks::{Locks, LOCK_FILE};
use crate::{Error, Session, BASE_IMAGES_DIR};

/// The annotation of base images of ours with the digest of their lock.
const LOCK_ANNOTATION: &str = "dev.plugin-forge.debian.lock";
/// The annotations the builder gives an image about its base.
const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// What a run attaches to the images it builds (`--sbom`,
/// `--no-provenance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestOptions {
    /// The SBOM format; `None`: no SBOM.
    pub sbom: Option<Format>,
    /// Whether images get a provenance statement.
    pub provenance: bool,
}

impl Default for AttestOptions {
    fn default() -> AttestOptions {
        AttestOptions { sbom: Some(Format::default()), provenance: true }
    }
}

/// The SBOM and provenance of one image of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The image manifest they are about.
    pub image: Digest,
    /// The SBOM artifact.
    pub sbom: Option<Artifact>,
    /// The provenance artifact.
    pub provenance: Option<Artifact>,
}

impl Attestation {
    /// Their artifact manifests' descriptors, SBOM first.
    pub fn descriptors(&self) -> Vec<forge_oci::oci_spec::image::Descriptor> {
        self.sbom.iter().chain(&self.provenance).map(|a| a.descriptor.clone()).collect()
    }
}

impl Session {
    /// Writes the SBOM and provenance of each image of `built` into the
    /// store as its referrers (listed in the store's `index.json`).
    pub(crate) fn attest(&self, built: &Built) -> Result<Vec<Attestation>, Error> {
        let options = self.attest_options();
        let store = self.workspace().store();
        let root = self.workspace().root();
        let mut attestations = Vec::new();
        for image in built.images() {
            let platform = Platform::of_config(&image.config);
            let subject = Subject {
                name: built.image.clone(),
                digest: image.manifest_digest.clone(),
                platform: platform.to_string(),
            };
            let base = base_of(image);
            let base_image = base.as_ref().and_then(|b| Image::load(store, &b.digest).ok());
            let base_lock = base_image.as_ref().and_then(|b| base_lock(root, b));
            let build = self.build_options();
            // The image's own revision (the last commit that changed its
            // inputs), not `HEAD`: the documents say what the image says.
            let revision = revision_of(image);
            let plugin = Plugin {
                path: built.plugin.display().to_string(),
                name: built.image_ref.name.clone(),
                version: built.image_ref.tag.clone(),
                title: built.title.clone(),
                revision: revision.clone(),
                source: build.source.clone(),
            };
            let sbom = match options.sbom {
                Some(format) => {
                    let mut record =
                        base_lock.as_ref().map(|(_, lock)| lock_record(lock)).unwrap_or_default();
                    record.extend(run_record(
                        self.installer().locks(),
                        &built.plugin.join(DOCKERFILE),
                        image,
                        &platform,
                    ));
                    let sbom = Sbom {
                        subject: subject.clone(),
                        plugin: Some(plugin),
                        base: base.clone(),
                        contents: forge_sbom::Contents::default(),
                        epoch: build.epoch,
                    };
                    let over = base_image.as_ref();
                    Some(sbom_artifact(store, image, over, sbom, &record, format, !build.extras.no_cache)?)
                }
                None => None,
            };
            let provenance = if options.provenance {
                let dockerfile = built.plugin.join(DOCKERFILE);
                let mut locks = Vec::new();
                let run_lock = built.plugin.join(LOCK_FILE);
                if root.join(&run_lock).is_file() {
                    locks.push(material(root, &run_lock)?);
                }
                if let Some((path, _)) = &base_lock {
                    locks.push(material(root, path)?);
                }
                let mut build_args = build.extras.build_args.clone();
                build_args.extend([
                    ("MODULE_PATH".to_string(), built.plugin.to_string_lossy().into_owned()),
                    ("REGISTRY".to_string(), build.registry.clone()),
                    ("TAG".to_string(), built.image_ref.tag.clone()),
                ]);
                let provenance = Provenance {
                    subject,
                    dockerfile: material(root, &dockerfile)?,
                    build_args: build_args.into_iter().collect(),
                    labels: build.extras.labels.clone().into_iter().collect(),
                    base,
                    locks,
                    source: build.source.clone(),
                    revision,
                    epoch: build.epoch,
                };
                Some(write(store, image, forge_sbom::IN_TOTO_MEDIA_TYPE, &provenance.render(), build.epoch)?)
            } else {
                None
            };
            attestations.push(Attestation { image: image.manifest_digest.clone(), sbom, provenance });
        }
        let all: Vec<_> = attestations.iter().flat_map(Attestation::descriptors).collect();
        referrers::add_referrers(store, &all)?;
        Ok(attestations)
    }
}

/// The document of type `media_type` (an SBOM format's or
/// [`forge_sbom::IN_TOTO_MEDIA_TYPE`]) that refers to the image `image`
/// in the store, if one does (the last one listed).
pub fn stored_document(
    store: &BlobStore,
    image: &Digest,
    media_type: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let found = referrers::referrers(store, image)?;
    let Some(artifact) =
        found.iter().rev().find(|d| d.artifact_type().as_ref().is_some_and(|t| t.to_string() == media_type))
    else {
        return Ok(None);
    };
    let read = referrers::read_artifact(store, artifact)?;
    let digest = Digest::from_descriptor(&read.document).map_err(forge_oci::Error::from)?;
    Ok(Some(store.read_verified(&digest)?))
}

/// Attaches an SPDX SBOM to a base image built from `lock` (its package
/// list, with the SHA-256 of every `.deb`), as a referrer in the store.
pub(crate) fn attest_base(
    store: &BlobStore,
    image: &Image,
    reference: &str,
    lock: &Lock,
    epoch: u64,
) -> Result<Artifact, Error> {
    let sbom = Sbom {
        subject: Subject {
            name: reference.to_string(),
            digest: image.manifest_digest.clone(),
            platform: Platform::of_config(&image.config).to_string(),
        },
        plugin: None,
        base: None,
        contents: forge_sbom::Contents::default(),
        epoch,
    };
    let artifact = sbom_artifact(store, image, None, sbom, &lock_record(lock), Format::Spdx, true)?;
    referrers::add_referrers(store, std::slice::from_ref(&artifact.descriptor))?;
    Ok(artifact)
}

/// The SBOM of `image` in `format`: from the store's cache when the same
/// inputs made one before (unless not `cached`: `--no-cache`), else with
/// the image's contents read (over those of its `base`, when given).
fn sbom_artifact(
    store: &BlobStore,
    image: &Image,
    base: Option<&Image>,
    mut sbom: Sbom,
    record: &Record,
    format: Format,
    cached: bool,
) -> Result<Artifact, Error> {
    let inputs =
        Digest::of(format!("{:?}{:?}{:?}{:?}", sbom.subject, sbom.plugin, sbom.base, record).as_bytes());
    let key = format!("sbom/v1/{}/{}/{}", format.name(), image.manifest_digest.hex(), inputs.hex());
    if let Some(cached) = store.cache_get(&key).filter(|_| cached).and_then(|d| Digest::parse(&d).ok()) {
        if let Ok(descriptor) = referrers::artifact_descriptor(store, &cached) {
            if let Ok(read) = referrers::read_artifact(store, &descriptor) {
                if let Ok(document) = Digest::from_descriptor(&read.document) {
                    return Ok(Artifact { descriptor, document });
                }
            }
        }
    }
    let files = crate::image_check::image_view(store, image, || ImageLayers::read(store, image))?;
    let scanned = match base.and_then(|base| scan_over_base(store, image, base, &files).transpose()) {
        Some(scanned) => scanned,
        None => forge_sbom::contents::scan(&*files),
    };
    sbom.contents =
        scanned.map_err(|source| Error::Sbom { image: sbom.subject.name.clone(), source })?.join(record);
    let artifact = write(store, image, format.media_type(), &sbom.render(format), sbom.epoch)?;
    store.cache_put(&key, artifact.descriptor.digest().as_ref())?;
    Ok(artifact)
}

/// The scan of a base image's contents, kept for the process by the store
/// and the base's layers (whose digests name their content): every image
/// of a monorepo over the same base reads the base's packages once. With
/// it, the top-level directories of the base that hold something (or are
/// not directories): an image's own layers that add elsewhere only add.
type BaseScan = (Arc<Scan>, BTreeSet<String>);

/// How many base scans the process keeps (a run has a base or two).
const KEPT_SCANS: usize = 16;
/// How many layers' top-level names the process keeps (a few names each).
const KEPT_LAYERS: usize = 4096;

/// The scan of `image`'s contents from its `base`'s, kept, when `image`
/// is `base`'s layers and then layers that only add new top-level
/// directories (plain directories and files: no link, whiteout or device,
/// as a `COPY` of sources makes); `None` when it is not (scan it whole).
/// Exactly what [`forge_sbom::contents::scan`] of `files` gives; see
/// [`Scan::over`].
fn scan_over_base(
    store: &BlobStore,
    image: &Image,
    base: &Image,
    files: &ImageLayers,
) -> Result<Option<Scan>, forge_sbom::Error> {
    /// A base by its store and layers.
    type Key = (PathBuf, Vec<Digest>);
    static SCANS: Mutex<Vec<(Key, BaseScan)>> = Mutex::new(Vec::new());
    let digests = |image: &Image| {
        image.manifest.layers().iter().map(Digest::from_descriptor).collect::<Result<Vec<_>, _>>()
    };
    let (Ok(below), Ok(all)) = (digests(base), digests(image)) else { return Ok(None) };
    let Some(own) = all.strip_prefix(below.as_slice()).filter(|own| !own.is_empty()) else { return Ok(None) };
    // A layer of the base again could replace a file with the same node.
    if own.iter().any(|d| below.contains(d)) {
        return Ok(None);
    }
    let mut added = BTreeSet::new();
    for desc in &image.manifest.layers()[below.len()..] {
        match top_level_names(store, desc) {
            Some(names) => added.extend(names.iter().cloned()),
            None => return Ok(None),
        }
    }
    let key = (store.root().to_path_buf(), below);
    let kept = SCANS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, s)| s.clone());
    let (scan, occupied) = match kept {
        Some(kept) => kept,
        None => {
            let Ok(view) = ImageLayers::read(store, base) else { return Ok(None) };
            let occupied = view
                .list("")
                .into_iter()
                .filter(|name| !view.node(name).is_some_and(|n| n.is_dir()) || !view.list(name).is_empty())
                .collect();
            let scanned = (Arc::new(forge_sbom::contents::scan(&view)?), occupied);
            let mut scans = SCANS.lock().unwrap_or_else(|e| e.into_inner());
            if scans.len() >= KEPT_SCANS {
                scans.remove(0);
            }
            scans.push((key, scanned.clone()));
            scanned
        }
    };
    if added.iter().any(|name| occupied.contains(name)) {
        return Ok(None);
    }
    scan.over(files, &added.into_iter().collect::<Vec<_>>())
}

/// The first components of the entries of the layer `desc`, when every
/// entry is a plain directory or file (no link, whiteout, device); kept
/// for the process by the layer's digest, which names its content. `None`
/// also when the layer cannot be read (the full scan reports why).
fn top_level_names(
    store: &BlobStore,
    desc: &forge_oci::oci_spec::image::Descriptor,
) -> Option<Arc<BTreeSet<String>>> {
    /// Names, or `None` for a layer that does not only add.
    type Names = Option<Arc<BTreeSet<String>>>;
    static NAMES: Mutex<Vec<(Digest, Names)>> = Mutex::new(Vec::new());
    let digest = Digest::from_descriptor(desc).ok()?;
    if let Some((_, names)) =
        NAMES.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(d, _)| *d == digest)
    {
        return names.clone();
    }
    let read = || -> Option<BTreeSet<String>> {
        let mut stream = store.open_uncompressed(desc).ok()?.without_diff_id();
        let mut names = BTreeSet::new();
        {
            let mut reader = forge_oci::LayerReader::new(&mut stream);
            for entry in reader.entries().ok()? {
                let entry = entry.ok()?;
                let plain = matches!(entry.kind, EntryKind::Dir | EntryKind::File { .. });
                let path = entry.path();
                if !plain || entry.marker().is_some() || path.split('/').any(|c| c == "..") {
                    return None;
                }
                if let Some(first) = path.split('/').next().filter(|c| !c.is_empty()) {
                    names.insert(first.to_owned());
                }
            }
        }
        // Read to the end: the blob's digest is checked.
        stream.finish().ok()?;
        Some(names)
    };
    let names = read().map(Arc::new);
    let mut kept = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() >= KEPT_LAYERS {
        kept.remove(0);
    }
    kept.push((digest, names.clone()));
    names
}

/// Stores `document` as an artifact about `image`, created at the epoch.
fn write(
    store: &BlobStore,
    image: &Image,
    media_type: &str,
    document: &[u8],
    epoch: u64,
) -> Result<Artifact, Error> {
    let annotations =
        BTreeMap::from([("org.opencontainers.image.created".to_string(), forge_oci::image::rfc3339(epoch))]);
    Ok(referrers::write_artifact(store, media_type, document, &image.manifest_descriptor(), &annotations)?)
}

/// The commit an image says it was built from (its revision annotation).
fn revision_of(image: &Image) -> Option<String> {
    image.manifest.annotations().as_ref()?.get(crate::session::REVISION).cloned()
}

/// The base an image says it was built from.
fn base_of(image: &Image) -> Option<Base> {
    let annotations = image.manifest.annotations().as_ref()?;
    let reference = annotations.get(BASE_NAME)?.clone();
    let digest = Digest::parse(annotations.get(BASE_DIGEST)?).ok()?;
    Some(Base { reference, digest })
}

/// The lock of `base-images/` a base image of ours was built from (its
/// path relative to `root`), matched by the digest its manifest carries.
fn base_lock(root: &Path, base: &Image) -> Option<(PathBuf, Lock)> {
    let wanted = base.manifest.annotations().as_ref()?.get(LOCK_ANNOTATION)?;
    let dir = root.join(BASE_IMAGES_DIR);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
        .collect();
    paths.sort();
    paths.into_iter().find_map(|path| {
        let (lock, digest) = &*digested_lock(&path)?;
        let name = path.file_name()?;
        (digest == wanted).then(|| (Path::new(BASE_IMAGES_DIR).join(name), lock.clone()))
    })
}

/// The lock at `path` and the digest of its TOML, as a base image's
/// annotation names it; kept per process by path and stat stamp, so that
/// the images of a run do not parse and print every lock again.
fn digested_lock(path: &Path) -> Option<Arc<(Lock, String)>> {
    type Kept = HashMap<(PathBuf, StatStamp), Arc<(Lock, String)>>;
    static LOCKS: std::sync::LazyLock<Mutex<Kept>> = std::sync::LazyLock::new(Mutex::default);
    // Stamped before it is read: a lock changed since is stamped anew.
    let key = (path.to_path_buf(), StatStamp::stat(path)?);
    if let Some(kept) = LOCKS.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Some(Arc::clone(kept));
    }
    let lock = Lock::load(path).ok()?;
    let digest = Digest::of(lock.to_toml().as_bytes()).to_string();
    let digested = Arc::new((lock, digest));
    LOCKS.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Arc::clone(&digested));
    Some(digested)
}

/// The `.deb`s of a base image lock.
fn lock_record(lock: &Lock) -> Record {
    Record {
        debian: lock.packages.iter().map(|p| DebianRecord::of_locked(p, &lock.mirror)).collect(),
        python: Vec::new(),
    }
}

/// What the installing `RUN`s of `image` installed, from their entries in
/// the lock of `dockerfile`: each layer's history entry names its
/// instruction, which is the entry's key with the platform.
fn run_record(locks: &Locks, dockerfile: &Path, image: &Image, platform: &Platform) -> Record {
    let mut record = Record::default();
    let history = image.config.history().iter().flatten();
    for entry in history.filter(|h| h.empty_layer() != Some(true)) {
        let Some(instruction) = entry.created_by() else { continue };
        if !instruction.starts_with("RUN ") {
            continue;
        }
        let Ok(Some(lock)) = locks.get(dockerfile, instruction, &platform.to_string()) else { continue };
        for command in &lock.commands {
            let mut table = command.clone();
            match table.remove("kind").as_ref().and_then(|k| k.as_str()) {
                Some("apt") => {
                    let Ok(apt) = table.try_into::<AptLock>() else { continue };
                    let mirror = apt.indexes.first().map(|i| i.mirror.clone()).unwrap_or_default();
                    record.debian.extend(apt.packages.iter().map(|p| DebianRecord::of_locked(p, &mirror)));
                }
                Some("pip") => {
                    let Ok(pip) = forge_python::lock::PipLock::from_toml_value(&toml::Value::Table(table))
                    else {
                        continue;
                    };
                    record.python.extend(pip.packages.into_iter().map(|w| WheelRecord {
                        name: w.name,
                        version: w.version,
                        filename: w.filename,
                        download: Download { sha256: w.sha256, url: Some(w.url) },
                    }));
                }
                _ => {}
            }
        }
    }
    record
}

/// A file of the monorepo by its path and digest.
fn material(root: &Path, path: &Path) -> Result<Material, Error> {
    let full = root.join(path);
    match forge_input::read(&full, path, forge_input::LOCK_LIMIT)? {
        Some(bytes) => Ok(Material { path: path.display().to_string(), digest: Digest::of(&bytes) }),
        None => Err(forge_manifest::ManifestError::Missing { path: path.to_path_buf() }.into()),
    }
}
