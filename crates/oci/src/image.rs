//! Image configs and manifests: small pure operations and canonical JSON.
//!
//! An image is a config (how to run it, and the diff IDs of its layers) and
//! a manifest (the config's and the layers' descriptors), both stored as
//! blobs. As in go-containerregistry's `mutate`, building one is a few plain
//! functions over oci-spec's types: [`new_config`] from a [`RuntimeConfig`],
//! [`append_layer`] and [`append_empty_layer`] for each build step, and
//! [`write_image`] to store it. [`Image::load`] reads one back (a base image,
//! say), verifying every digest.
//!
//! Configs and manifests are stored as canonical JSON ([`crate::json`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::digest::{descriptor, Digest};
use crate::error::{Error, Result};
use crate::store::BlobStore;
use oci_spec::image::{
    Arch, Config, ConfigBuilder, Descriptor, History, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageManifest, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

/// Docker's manifest media type, still found in OCI layouts copied from
/// Docker registries.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list (multi-platform) media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's gzip layer media type.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's uncompressed layer media type.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// `seconds` since the epoch as RFC 3339 in UTC, `1970-01-01T00:00:00Z`.
pub fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Howard Hinnant's `civil_from_days`, for days since 1970-01-01 (never
/// negative here, so all unsigned).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// How a container runs: the `config` object of an image config, with
/// ordered collections so that the result does not depend on insertion
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `USER`.
    pub user: Option<String>,
    /// `ENV`, as `KEY=value`, in order.
    pub env: Vec<String>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `WORKDIR`.
    pub working_dir: Option<String>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `EXPOSE`, as `port/proto`.
    pub exposed_ports: BTreeSet<String>,
    /// `VOLUME`s.
    pub volumes: BTreeSet<String>,
    /// `STOPSIGNAL`.
    pub stop_signal: Option<String>,
}

impl RuntimeConfig {
    /// The runtime config of an existing image (a base image).
    pub fn from_config(config: &ImageConfiguration) -> RuntimeConfig {
        let Some(c) = config.config() else {
            return RuntimeConfig::default();
        };
        RuntimeConfig {
            user: c.user().clone(),
            env: c.env().clone().unwrap_or_default(),
            entrypoint: c.entrypoint().clone(),
            cmd: c.cmd().clone(),
            working_dir: c.working_dir().clone(),
            labels: c.labels().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
            exposed_ports: c.exposed_ports().iter().flatten().cloned().collect(),
            volumes: c.volumes().iter().flatten().cloned().collect(),
            stop_signal: c.stop_signal().clone(),
        }
    }

    /// Sets `key` in `env`, replacing an earlier value in place, as `ENV` does.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self.env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
            Some(existing) => *existing = entry,
            None => self.env.push(entry),
        }
    }

    /// The value of `key` in `env`.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    fn to_oci(&self) -> Result<Config> {
        let mut builder = ConfigBuilder::default();
        if let Some(user) = &self.user {
            builder = builder.user(user.clone());
        }
        if !self.env.is_empty() {
            builder = builder.env(self.env.clone());
        }
        if let Some(entrypoint) = &self.entrypoint {
            builder = builder.entrypoint(entrypoint.clone());
        }
        if let Some(cmd) = &self.cmd {
            builder = builder.cmd(cmd.clone());
        }
        if let Some(dir) = &self.working_dir {
            builder = builder.working_dir(dir.clone());
        }
        if !self.labels.is_empty() {
            builder =
                builder.labels(self.labels.clone().into_iter().collect::<std::collections::HashMap<_, _>>());
        }
        if !self.exposed_ports.is_empty() {
            builder = builder.exposed_ports(self.exposed_ports.iter().cloned().collect::<Vec<_>>());
        }
        if !self.volumes.is_empty() {
            builder = builder.volumes(self.volumes.iter().cloned().collect::<Vec<_>>());
        }
        if let Some(signal) = &self.stop_signal {
            builder = builder.stop_signal(signal.clone());
        }
        builder.build().map_err(|source| Error::Spec { what: "image runtime config", source })
    }
}

/// The `PATH` Docker gives images that set none: the first variable of
/// every image we make from a bare tree.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl RuntimeConfig {
    /// A runtime config with only `PATH=`[`DEFAULT_PATH`].
    pub fn with_default_path() -> RuntimeConfig {
        RuntimeConfig { env: vec![format!("PATH={DEFAULT_PATH}")], ..RuntimeConfig::default() }
    }
}

/// Stores a one-layer image of `layer` (already in the store): a new config
/// created at `epoch` with `runtime` and one history entry `created_by`,
/// and a manifest with `annotations`, for `platform`. What `docker import`
/// makes, and what base images built from packages are.
pub fn write_single_layer_image(
    store: &BlobStore,
    layer: &crate::layer::Layer,
    runtime: &RuntimeConfig,
    epoch: u64,
    created_by: &str,
    annotations: &BTreeMap<String, String>,
    platform: &crate::Platform,
) -> Result<Image> {
    let history = vec![layer_history(epoch, created_by)];
    let mut config = new_config(epoch, runtime, std::slice::from_ref(&layer.diff_id), history)?;
    platform.set_on(&mut config);
    write_image(store, &config, &[layer.descriptor()], annotations)
}

/// A linux/amd64 image config created at `created` (seconds since the
/// epoch), with the given runtime config, layers and history.
pub fn new_config(
    created: u64,
    runtime: &RuntimeConfig,
    diff_ids: &[Digest],
    history: Vec<History>,
) -> Result<ImageConfiguration> {
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>())
        .build()
        .map_err(|source| Error::Spec { what: "image rootfs", source })?;
    let mut builder = ImageConfigurationBuilder::default()
        .created(rfc3339(created))
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(runtime.to_oci()?)
        .rootfs(rootfs);
    if !history.is_empty() {
        builder = builder.history(history);
    }
    builder.build().map_err(|source| Error::Spec { what: "image config", source })
}

/// Replaces the runtime config (`config`) of an image config.
pub fn set_runtime_config(config: &mut ImageConfiguration, runtime: &RuntimeConfig) -> Result<()> {
    config.set_config(Some(runtime.to_oci()?));
    Ok(())
}

/// Sets the `created` time of the image config.
pub fn set_created(config: &mut ImageConfiguration, created: u64) {
    config.set_created(Some(rfc3339(created)));
}

/// A history entry for a step that added a layer.
pub fn layer_history(created: u64, created_by: &str) -> History {
    history(created, created_by, None)
}

/// A history entry for a step that changed only the config (`ENV`, `CMD`).
pub fn empty_layer_history(created: u64, created_by: &str) -> History {
    history(created, created_by, Some(true))
}

fn history(created: u64, created_by: &str, empty_layer: Option<bool>) -> History {
    let mut entry = HistoryBuilder::default()
        .created(rfc3339(created))
        .created_by(created_by.to_owned())
        .build()
        .unwrap_or_default();
    entry.set_empty_layer(empty_layer);
    entry
}

/// Adds a layer to the config: its diff ID and a history entry.
pub fn append_layer(config: &mut ImageConfiguration, diff_id: &Digest, history: History) {
    config.rootfs_mut().diff_ids_mut().push(diff_id.to_string());
    config.history_mut().get_or_insert_with(Vec::new).push(history);
}

/// Adds a history entry for a step without a layer.
pub fn append_empty_layer(config: &mut ImageConfiguration, history: History) {
    config.history_mut().get_or_insert_with(Vec::new).push(history);
}

/// An image in a store: its manifest (with digest and size) and config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Digest of the manifest blob.
    pub manifest_digest: Digest,
    /// Size of the manifest blob.
    pub manifest_size: u64,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config the manifest points at.
    pub config: ImageConfiguration,
}

impl Image {
    /// Reads the image with manifest `digest` from `store`, verifying the
    /// digests and sizes of the manifest and the config.
    pub fn load(store: &BlobStore, digest: &Digest) -> Result<Image> {
        let bytes = store.read_verified(digest)?;
        let what = || format!("manifest {digest}");
        let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| Error::json(what(), e))?;
        if let Some(media_type) = manifest.media_type() {
            if !is_manifest_media_type(media_type) {
                return Err(Error::InvalidDocument {
                    what: what(),
                    reason: format!("media type {media_type} is not an image manifest"),
                });
            }
        }
        let config_desc = manifest.config();
        let config_digest = Digest::from_descriptor(config_desc)?;
        let config_bytes = store.read_verified(&config_digest)?;
        if config_bytes.len() as u64 != config_desc.size() {
            return Err(Error::SizeMismatch {
                what: format!("config {config_digest}"),
                expected: config_desc.size(),
                found: config_bytes.len() as u64,
            });
        }
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::json(format!("config {config_digest}"), e))?;
        Ok(Image { manifest_digest: digest.clone(), manifest_size: bytes.len() as u64, manifest, config })
    }

    /// Reads the image a ref of the store's `index.json` points at.
    pub fn load_ref(store: &BlobStore, name: &str) -> Result<Option<Image>> {
        match store.resolve_ref(name)? {
            Some(desc) => Image::load(store, &Digest::from_descriptor(&desc)?).map(Some),
            None => Ok(None),
        }
    }

    /// The descriptor of the manifest, for `index.json`.
    pub fn manifest_descriptor(&self) -> Descriptor {
        let media_type = self.manifest.media_type().clone().unwrap_or(MediaType::ImageManifest);
        descriptor(media_type, &self.manifest_digest, self.manifest_size)
    }

    /// Digest of the config blob.
    pub fn config_digest(&self) -> Result<Digest> {
        Ok(Digest::from_descriptor(self.manifest.config())?)
    }

    /// The layers' diff IDs from the config.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.config.rootfs().diff_ids().iter().map(|d| Ok(Digest::parse(d)?)).collect()
    }
}

/// Stores `config` and a manifest for it and `layers` (whose blobs must be
/// in the store already), both as canonical JSON, and returns the image.
pub fn write_image(
    store: &BlobStore,
    config: &ImageConfiguration,
    layers: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<Image> {
    let (config_digest, config_size) = store.put_json(config, "image config")?;
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config_digest, config_size))
        .layers(layers.to_vec())
        .build()
        .map_err(|source| Error::Spec { what: "image manifest", source })?;
    manifest.set_annotations(annotation_map(annotations));
    let (manifest_digest, manifest_size) = store.put_json(&manifest, "image manifest")?;
    Ok(Image { manifest_digest, manifest_size, manifest, config: config.clone() })
}

/// A manifest's or an index's `annotations`: none when empty (the field
/// is then left out of the JSON).
pub(crate) fn annotation_map(
    annotations: &BTreeMap<String, String>,
) -> Option<std::collections::HashMap<String, String>> {
    (!annotations.is_empty()).then(|| annotations.clone().into_iter().collect())
}

pub(crate) fn is_manifest_media_type(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageManifest)
        || matches!(media_type, MediaType::Other(other) if other == DOCKER_MANIFEST)
}

pub(crate) fn is_index_media_type(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || matches!(media_type, MediaType::Other(other) if other == DOCKER_MANIFEST_LIST)
}

pub(crate) fn is_config_media_type(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageConfig)
        || matches!(media_type, MediaType::Other(other) if other == DOCKER_CONFIG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::canonical_json;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        // Absurd inputs format without panicking.
        assert!(rfc3339(u64::MAX).ends_with('Z'));
    }

    #[test]
    fn canonical_json_does_not_depend_on_insertion_order() {
        let keys: Vec<String> = (0..200).map(|i| format!("org.example.label-{i:03}")).collect();
        let config_with = |order: &mut dyn Iterator<Item = &String>| {
            let mut runtime = RuntimeConfig::default();
            let mut config = new_config(0, &runtime, &[], Vec::new()).unwrap();
            // Go through oci-spec's HashMap the way a base image does.
            let labels: std::collections::HashMap<String, String> =
                order.map(|k| (k.clone(), format!("value of {k}"))).collect();
            let oci = ConfigBuilder::default().labels(labels).build().unwrap();
            config.set_config(Some(oci));
            runtime.exposed_ports = (8000..8050).map(|p| format!("{p}/tcp")).collect();
            config
        };
        let a = config_with(&mut keys.iter());
        let b = config_with(&mut keys.iter().rev());
        let ja = canonical_json(&a, "a").unwrap();
        let jb = canonical_json(&b, "b").unwrap();
        assert_eq!(ja, jb);
        let text = String::from_utf8(ja).unwrap();
        let first = text.find("label-000").unwrap();
        let last = text.find("label-199").unwrap();
        assert!(first < last);
        assert!(text.starts_with(r#"{"architecture":"amd64","config":{"Labels":{"#), "{text}");
    }

    #[test]
    fn config_from_runtime_is_canonical() {
        let mut runtime = RuntimeConfig::default();
        runtime.set_env("PATH", "/usr/bin");
        runtime.set_env("LANG", "C.UTF-8");
        runtime.set_env("PATH", "/usr/local/bin:/usr/bin");
        runtime.entrypoint = Some(vec!["python3".into(), "-m".into(), "app".into()]);
        runtime.working_dir = Some("/app".into());
        runtime.user = Some("1000:1000".into());
        runtime.exposed_ports = ["8080/tcp".to_owned(), "443/tcp".to_owned()].into();
        runtime.labels.insert("b".into(), "2".into());
        runtime.labels.insert("a".into(), "1".into());
        runtime.stop_signal = Some("SIGINT".into());
        let diff_id = Digest::of(b"layer");
        let mut config = new_config(0, &runtime, &[], Vec::new()).unwrap();
        append_layer(&mut config, &diff_id, layer_history(0, "COPY . /app"));
        append_empty_layer(&mut config, empty_layer_history(0, "ENV LANG=C.UTF-8"));
        let text = String::from_utf8(canonical_json(&config, "config").unwrap()).unwrap();
        expect_test::expect![[r#"{"architecture":"amd64","config":{"Entrypoint":["python3","-m","app"],"Env":["PATH=/usr/local/bin:/usr/bin","LANG=C.UTF-8"],"ExposedPorts":{"443/tcp":{},"8080/tcp":{}},"Labels":{"a":"1","b":"2"},"StopSignal":"SIGINT","User":"1000:1000","WorkingDir":"/app"},"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":"COPY . /app"},{"created":"1970-01-01T00:00:00Z","created_by":"ENV LANG=C.UTF-8","empty_layer":true}],"os":"linux","rootfs":{"diff_ids":["sha256:dac1d7cfa95021764849fd102524e141488c5e3a90f861dbb5a12d9ac8584f85"],"type":"layers"}}"#]]
        .assert_eq(&text);
        assert_eq!(RuntimeConfig::from_config(&config), runtime);
        assert_eq!(runtime.env_var("LANG"), Some("C.UTF-8"));
    }
}
