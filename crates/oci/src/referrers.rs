//! OCI 1.1 artifacts that refer to an image: an SBOM or a provenance
//! statement stored as an image manifest with an `artifactType`, the empty
//! config (`application/vnd.oci.empty.v1+json`, `{}`), the document as its
//! one layer, and the image's manifest as its `subject`
//! (image-spec 1.1, "Guidelines for Artifact Usage").
//!
//! In an image layout (the store, a tarball) the artifacts are listed in
//! `index.json` as oras does it: an entry per artifact, without a ref
//! name, with its `artifactType`, so they are found from the layout's
//! index without scanning blobs, and they keep their blobs alive in `gc`.
//! [`referrers`] answers what the distribution spec's referrers API
//! answers: the descriptors of the artifacts whose subject is a digest.
//!
//! Artifact manifests are canonical JSON, like every document we write:
//! the same document about the same image is the same artifact.

use std::collections::{BTreeMap, HashSet};

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::json;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::is_index_media_type;
use crate::store::{ref_name, BlobStore};

/// The media type of the empty config of artifacts.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The content of the empty config.
pub const EMPTY_CONTENT: &[u8] = b"{}";

/// An artifact in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Its manifest's descriptor as the referrers API lists it: media
    /// type, digest, size, `artifactType` and the manifest's annotations.
    pub descriptor: Descriptor,
    /// The digest of the document (the manifest's one layer).
    pub document: Digest,
}

/// Stores `document` as an artifact of type `artifact_type` (also the
/// document's media type) about `subject` (an image manifest's
/// descriptor), with `annotations` on its manifest. Nothing is added to
/// `index.json`: see [`add_referrers`].
pub fn write_artifact(
    store: &BlobStore,
    artifact_type: &str,
    document: &[u8],
    subject: &Descriptor,
    annotations: &BTreeMap<String, String>,
) -> Result<Artifact> {
    let (empty, empty_size) = store.put_bytes(EMPTY_CONTENT)?;
    let (layer, layer_size) = store.put_bytes(document)?;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty.to_string(), "size": empty_size},
        "layers": [{"mediaType": artifact_type, "digest": layer.to_string(), "size": layer_size}],
        "subject": {
            "mediaType": subject.media_type().to_string(),
            "digest": subject.digest().to_string(),
            "size": subject.size(),
        },
    });
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
    let bytes = crate::json::canonical_json(&manifest, "artifact manifest")?;
    let (digest, size) = store.put_bytes(&bytes)?;
    Ok(Artifact {
        descriptor: referrer_descriptor(&digest, size, artifact_type, annotations),
        document: layer,
    })
}

/// The descriptor of an artifact manifest as the referrers API lists it.
pub fn referrer_descriptor(
    digest: &Digest,
    size: u64,
    artifact_type: &str,
    annotations: &BTreeMap<String, String>,
) -> Descriptor {
    let mut descriptor = crate::digest::descriptor(MediaType::ImageManifest, digest, size);
    descriptor.set_artifact_type(Some(MediaType::from(artifact_type)));
    if !annotations.is_empty() {
        descriptor.set_annotations(Some(annotations.clone().into_iter().collect()));
    }
    descriptor
}

/// What an artifact manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactManifest {
    /// The digest of its subject, if it has one.
    pub subject: Option<Digest>,
    /// Its config (the empty one, for ours).
    pub config: Descriptor,
    /// Its first layer: the document.
    pub document: Descriptor,
}

/// Reads the artifact manifest `descriptor` names (verified).
pub fn read_artifact(store: &BlobStore, descriptor: &Descriptor) -> Result<ArtifactManifest> {
    let digest = Digest::from_descriptor(descriptor)?;
    let bytes = store.read_verified(&digest)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| Error::json(format!("artifact manifest {digest}"), e))?;
    let subject = manifest.subject().as_ref().map(Digest::from_descriptor).transpose()?;
    let document = manifest.layers().first().cloned().ok_or_else(|| Error::InvalidDocument {
        what: format!("artifact manifest {digest}"),
        reason: "it has no layer holding the document".into(),
    })?;
    Ok(ArtifactManifest { subject, config: manifest.config().clone(), document })
}

/// The referrers-API descriptor of the artifact manifest `digest` of
/// `store`, its `artifactType` and annotations read from it.
pub fn artifact_descriptor(store: &BlobStore, digest: &Digest) -> Result<Descriptor> {
    let bytes = store.read_verified(digest)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| Error::json(format!("artifact manifest {digest}"), e))?;
    let artifact_type =
        manifest.artifact_type().as_ref().map(ToString::to_string).ok_or_else(|| Error::InvalidDocument {
            what: format!("artifact manifest {digest}"),
            reason: "it has no artifactType".into(),
        })?;
    let annotations: BTreeMap<String, String> =
        manifest.annotations().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(referrer_descriptor(digest, bytes.len() as u64, &artifact_type, &annotations))
}

/// Whether an `index.json` entry is an artifact (not a ref of an image).
pub fn is_artifact_entry(descriptor: &Descriptor) -> bool {
    ref_name(descriptor).is_none() && descriptor.artifact_type().is_some()
}

/// Lists `artifacts` in the store's `index.json` (once each), and drops
/// the artifacts listed there whose subject no ref reaches any more (an
/// older build's image), so that `gc` can collect them. What each ref
/// reaches and each artifact's subject are read once per open store
/// (see [`crate::facts`]); `index.json` is not written when nothing
/// changes.
pub fn add_referrers(store: &BlobStore, artifacts: &[Descriptor]) -> Result<()> {
    store.update_index(|index| {
        let manifests = index.manifests();
        let mut reachable: HashSet<Digest> = HashSet::new();
        for entry in manifests.iter().filter(|d| ref_name(d).is_some()) {
            reachable.extend(reached(store, entry));
        }
        // An artifact that cannot be read is dropped.
        let keep = |entry: &Descriptor| {
            !is_artifact_entry(entry)
                || artifact_subject(store, entry).ok().flatten().is_some_and(|s| reachable.contains(&s))
        };
        let kept: Vec<&Descriptor> = manifests.iter().filter(|d| keep(d)).collect();
        // New artifacts go after what was listed; one listed stays where it was.
        let new: Vec<&Descriptor> = artifacts
            .iter()
            .enumerate()
            .filter(|(i, artifact)| {
                let listed = |d: &Descriptor| d.digest() == artifact.digest() && is_artifact_entry(d);
                !manifests.iter().any(listed) && !artifacts[..*i].iter().any(listed)
            })
            .map(|(_, artifact)| artifact)
            .filter(|d| keep(d))
            .collect();
        if kept.len() == manifests.len() && new.is_empty() {
            return Ok(None);
        }
        Ok(Some(kept.into_iter().chain(new).cloned().collect()))
    })
}

/// The manifest digests of the images the ref entry `entry` reaches: its
/// own, and an index's images (when the index can be read; a ref that
/// cannot be read is left alone).
fn reached(store: &BlobStore, entry: &Descriptor) -> Vec<Digest> {
    let Ok(digest) = Digest::from_descriptor(entry) else { return Vec::new() };
    let mut reached = vec![digest.clone()];
    if is_index_media_type(entry.media_type()) {
        let images = store.facts().index_images(entry.digest().as_ref(), || {
            let index = crate::Index::load(store, &digest)?;
            Ok(index.images.iter().map(|i| i.manifest_digest.clone()).collect())
        });
        reached.extend(images.iter().flat_map(|images| images.iter().cloned()));
    }
    reached
}

/// The subject of the artifact manifest `entry` names, read once per
/// open store.
fn artifact_subject(store: &BlobStore, entry: &Descriptor) -> Result<Option<Digest>> {
    store.facts().subject(entry.digest().as_ref(), || Ok(read_artifact(store, entry)?.subject))
}

/// The artifacts in the store's `index.json` whose subject is `subject`,
/// in `index.json` order.
pub fn referrers(store: &BlobStore, subject: &Digest) -> Result<Vec<Descriptor>> {
    let index = store.index()?;
    let mut found = Vec::new();
    for entry in index.manifests().iter().filter(|d| is_artifact_entry(d)) {
        if artifact_subject(store, entry)?.as_ref() == Some(subject) {
            found.push(entry.clone());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::new_config;
    use crate::RuntimeConfig;

    /// An SBOM artifact `{}` about `image`, without annotations.
    fn empty_sbom(store: &BlobStore, image: &crate::Image) -> Artifact {
        write_artifact(store, "application/spdx+json", b"{}", &image.manifest_descriptor(), &BTreeMap::new())
            .unwrap()
    }

    #[test]
    fn artifacts_refer_to_their_image_and_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path()).unwrap();
        let image = |cmd: &str| {
            let runtime = RuntimeConfig { cmd: Some(vec![cmd.into()]), ..RuntimeConfig::default() };
            let config = new_config(0, &runtime, &[], Vec::new()).unwrap();
            crate::write_image(&store, &config, &[], &BTreeMap::new()).unwrap()
        };
        let first = image("a");
        store.set_ref("app:1", &first.manifest_descriptor()).unwrap();
        let annotations =
            BTreeMap::from([("org.opencontainers.image.created".into(), "1970-01-01T00:00:00Z".into())]);
        let write = || {
            let subject = first.manifest_descriptor();
            write_artifact(&store, "application/spdx+json", b"{\"spdx\":1}", &subject, &annotations).unwrap()
        };
        let (sbom, again) = (write(), write());
        assert_eq!(sbom, again, "the same document is the same artifact");
        let digest = Digest::from_descriptor(&sbom.descriptor).unwrap();
        assert_eq!(artifact_descriptor(&store, &digest).unwrap(), sbom.descriptor);
        add_referrers(&store, std::slice::from_ref(&sbom.descriptor)).unwrap();
        add_referrers(&store, std::slice::from_ref(&sbom.descriptor)).unwrap();
        assert_eq!(
            referrers(&store, &first.manifest_digest).unwrap(),
            std::slice::from_ref(&sbom.descriptor)
        );
        assert_eq!(store.refs().unwrap().len(), 1, "artifacts have no ref name");
        let read = read_artifact(&store, &sbom.descriptor).unwrap();
        assert_eq!(read.subject.as_ref(), Some(&first.manifest_digest));
        assert_eq!(
            store.read_verified(&Digest::from_descriptor(&read.document).unwrap()).unwrap(),
            b"{\"spdx\":1}"
        );
        let text = String::from_utf8(
            store.read_verified(&Digest::from_descriptor(&sbom.descriptor).unwrap()).unwrap(),
        )
        .unwrap();
        assert!(text.contains(r#""artifactType":"application/spdx+json""#), "{text}");
        assert!(text.contains(r#""config":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a""#), "{text}");

        // The ref moves to a new image: the old image's artifact goes.
        let second = image("b");
        store.set_ref("app:1", &second.manifest_descriptor()).unwrap();
        let new = empty_sbom(&store, &second);
        add_referrers(&store, std::slice::from_ref(&new.descriptor)).unwrap();
        assert!(referrers(&store, &first.manifest_digest).unwrap().is_empty());
        assert_eq!(referrers(&store, &second.manifest_digest).unwrap(), [new.descriptor]);
    }

    /// A store of many refs and artifacts, the facts of its blobs known:
    /// moving refs still drops exactly the artifacts of the images no ref
    /// reaches (an index's images are reached), and an unchanged list is
    /// not written again.
    #[test]
    fn many_refs_still_prune_what_no_ref_reaches() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path()).unwrap();
        let image = |cmd: String, platform: &str| {
            let runtime = RuntimeConfig { cmd: Some(vec![cmd]), ..RuntimeConfig::default() };
            let mut config = new_config(0, &runtime, &[], Vec::new()).unwrap();
            crate::Platform::parse(platform).unwrap().set_on(&mut config);
            crate::write_image(&store, &config, &[], &BTreeMap::new()).unwrap()
        };
        let mut old = Vec::new();
        for i in 0..40 {
            let built = image(format!("v1-{i}"), "linux/amd64");
            store.set_ref(&format!("app-{i}:1"), &built.manifest_descriptor()).unwrap();
            add_referrers(&store, std::slice::from_ref(&empty_sbom(&store, &built).descriptor)).unwrap();
            old.push(built);
        }
        // app-0 becomes an index of two platforms, the amd64 one still the old image.
        let arm = image("arm".into(), "linux/arm64");
        crate::set_platform_ref(&store, "app-0:1", &arm).unwrap();
        let arm_sbom = empty_sbom(&store, &arm);
        // Every other ref moves to a new image.
        let mut new = Vec::new();
        for i in (1..40).step_by(2) {
            let built = image(format!("v2-{i}"), "linux/amd64");
            store.set_ref(&format!("app-{i}:1"), &built.manifest_descriptor()).unwrap();
            new.push(empty_sbom(&store, &built).descriptor);
        }
        new.push(arm_sbom.descriptor.clone());
        add_referrers(&store, &new).unwrap();
        for (i, image) in old.iter().enumerate() {
            let found = referrers(&store, &image.manifest_digest).unwrap();
            assert_eq!(found.len(), usize::from(i % 2 == 0), "app-{i}: {found:?}");
        }
        assert_eq!(referrers(&store, &arm.manifest_digest).unwrap(), [arm_sbom.descriptor]);
        let artifacts =
            store.read_index().unwrap().manifests().iter().filter(|d| is_artifact_entry(d)).count();
        assert_eq!(artifacts, 20 + 20 + 1, "the even olds, the odd news and arm64");
        // Another handle (another process) sees the same.
        let other = BlobStore::open_or_create(dir.path()).unwrap();
        assert_eq!(referrers(&other, &old[1].manifest_digest).unwrap(), []);

        let index = dir.path().join("index.json");
        let before = (std::fs::read(&index).unwrap(), forge_input::StatStamp::stat(&index));
        add_referrers(&store, &new).unwrap();
        add_referrers(&other, &new[..1]).unwrap();
        store.set_ref("app-1:1", &store.resolve_ref("app-1:1").unwrap().unwrap()).unwrap();
        assert_eq!((std::fs::read(&index).unwrap(), forge_input::StatStamp::stat(&index)), before);
    }

    #[test]
    fn an_archive_lists_referrers_after_the_image_and_imports_as_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
        let config = new_config(0, &RuntimeConfig::default(), &[], Vec::new()).unwrap();
        let image = crate::write_image(&store, &config, &[], &BTreeMap::new()).unwrap();
        let sbom = empty_sbom(&store, &image);
        let archive = dir.path().join("app.tar");
        let names = ["app:1".to_owned()];
        crate::export_archive_with(
            &store,
            &image.manifest_digest,
            &names,
            std::slice::from_ref(&sbom.descriptor),
            &archive,
        )
        .unwrap();
        let plain = dir.path().join("plain.tar");
        crate::export_archive(&store, &image.manifest_digest, &names, &plain).unwrap();

        let read = |path: &std::path::Path, name: &str| -> Vec<u8> {
            let mut tar = tar::Archive::new(std::fs::File::open(path).unwrap());
            let mut entry = tar
                .entries()
                .unwrap()
                .map(Result::unwrap)
                .find(|e| e.path().unwrap().to_str() == Some(name))
                .unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            bytes
        };
        let index: serde_json::Value = serde_json::from_slice(&read(&archive, "index.json")).unwrap();
        assert_eq!(index["manifests"][0]["digest"], image.manifest_digest.to_string());
        assert_eq!(index["manifests"][1]["artifactType"], "application/spdx+json");
        assert_eq!(
            read(&archive, "manifest.json"),
            read(&plain, "manifest.json"),
            "docker's view is the image alone"
        );
        let document = format!("blobs/sha256/{}", sbom.document.hex());
        assert_eq!(read(&archive, &document), b"{}");

        let other = BlobStore::open_or_create(dir.path().join("other")).unwrap();
        let imported = crate::import(&archive, None, &other).unwrap();
        assert_eq!(imported.manifest_digest, image.manifest_digest);
    }
}
