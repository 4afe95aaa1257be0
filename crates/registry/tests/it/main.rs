//! Integration tests of forge-registry against Debian's `docker-registry`
//! on 127.0.0.1, checked with `skopeo` and forge-oci's validator, with a
//! fault-injecting proxy and a bearer-token proxy written here; over HTTPS
//! with a CA made per test (forge-testkit's `TestCa`), the registry's name
//! resolved to 127.0.0.1 by the client's resolver override (the bearer proxy
//! behind a rustls front for a token server over HTTPS).
//!
//! Tests that need a tool go through `require_tool` (from forge-testkit):
//! under `CI=true` a missing tool fails the test, elsewhere it skips with a
//! message. No traffic leaves 127.0.0.1.

mod auth;
mod faults;
mod push_pull;
mod servers;
mod tls;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use forge_oci::image::{layer_history, new_config, write_image};
use forge_oci::{BlobStore, Entry, Image, LayerBuilder, LayerOptions, RuntimeConfig};
use forge_registry::{Anonymous, Client, ClientOptions, CredentialSource, PushEvent, PushReport, Reference};

pub const MTIME: u64 = 1_700_000_000;

/// Bytes that gzip cannot shrink, so that layers have the size asked for.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A two-layer image: one of about `size` incompressible bytes, one tiny;
/// different seeds give different blobs.
pub fn sample_image(store: &BlobStore, seed: u64, size: usize) -> Image {
    let options = LayerOptions { mtime: MTIME };
    let mut big = LayerBuilder::new(store, options).unwrap();
    big.append(Entry::dir("app", 0o755)).unwrap();
    big.append(Entry::bytes("app/data.bin", 0o644, noise(seed, size))).unwrap();
    let big = big.finish().unwrap();
    let mut small = LayerBuilder::new(store, options).unwrap();
    small.append(Entry::dir("etc", 0o755)).unwrap();
    small.append(Entry::bytes("etc/hostname", 0o644, format!("sample-{seed}\n"))).unwrap();
    let small = small.finish().unwrap();
    let config = new_config(
        MTIME,
        &RuntimeConfig { cmd: Some(vec!["/bin/true".into()]), ..RuntimeConfig::default() },
        &[big.diff_id.clone(), small.diff_id.clone()],
        vec![layer_history(MTIME, "COPY data"), layer_history(MTIME, "COPY hostname")],
    )
    .unwrap();
    write_image(store, &config, &[big.descriptor(), small.descriptor()], &BTreeMap::new()).unwrap()
}

/// Client options for tests: quick retries.
pub fn options(credentials: Box<dyn CredentialSource>) -> ClientOptions {
    ClientOptions {
        retries: 3,
        retry_delay: Duration::from_millis(50),
        credentials,
        ..ClientOptions::default()
    }
}

/// `host/name` (`name` with its tag) as a reference.
pub fn at(host: &str, name: &str) -> Reference {
    Reference::parse(&format!("{host}/{name}")).unwrap()
}

pub fn client() -> Client {
    Client::new(options(Box::new(Anonymous)))
}

/// A new store holding [`sample_image`]`(seed, size)`.
pub fn store_with_image(seed: u64, size: usize) -> (tempfile::TempDir, BlobStore, Image) {
    let (dir, store) = store();
    let image = sample_image(&store, seed, size);
    (dir, store, image)
}

/// A new store holding [`sample_image`]`(seed, size)`, pushed to
/// `host/name` by a new [`client`], which is returned with the reference.
pub fn pushed_image(
    host: &str,
    name: &str,
    seed: u64,
    size: usize,
) -> (tempfile::TempDir, BlobStore, Image, Reference, Client) {
    let (dir, store, image) = store_with_image(seed, size);
    let reference = at(host, name);
    let client = client();
    client.push(&store, &image, &reference, &|_| {}).unwrap();
    (dir, store, image, reference, client)
}

/// What a push of [`sample_image`]`(seed, size)` to `host/name` by a new
/// [`client`] did (through a fault-injecting proxy, say).
#[derive(Debug)]
pub struct RecordedPush {
    pub image: Image,
    pub report: PushReport,
    pub events: Events,
    /// How long the push took, retries and their delays included.
    pub took: Duration,
}

pub fn recorded_push(host: &str, name: &str, seed: u64, size: usize) -> RecordedPush {
    let (_dir, store, image) = store_with_image(seed, size);
    let events = Events::default();
    let started = Instant::now();
    let report = client().push(&store, &image, &at(host, name), &events.record()).unwrap();
    RecordedPush { image, report, events, took: started.elapsed() }
}

pub fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    (dir, store)
}

/// Collects push events.
#[derive(Debug, Default)]
pub struct Events(pub Mutex<Vec<PushEvent>>);

impl Events {
    pub fn record(&self) -> impl Fn(PushEvent) + '_ {
        move |e| self.0.lock().unwrap().push(e)
    }

    pub fn retries(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                PushEvent::Retrying(n) => Some(format!("{} ({})", n.what, n.reason)),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn client_is_shared_between_threads() {
    fn check<T: Send + Sync>() {}
    check::<Client>();
}
