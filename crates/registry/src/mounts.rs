//! Which repositories of a registry are known to hold a blob: the sources a
//! push can mount it from instead of uploading it again.
//!
//! Pulls and pushes both note what they saw, in the store's small cache
//! (best effort: a lost entry costs an upload, never correctness, because
//! the registry checks every mount).

use forge_oci::{BlobStore, Digest};

use crate::reference::Reference;

/// How many repositories per blob we remember as mount sources.
const MAX_SOURCES: usize = 8;

fn source_key(reference: &Reference, digest: &Digest) -> String {
    format!("forge-registry/blob-sources/{}/{digest}", reference.registry())
}

/// Repositories of `reference`'s registry known to hold `digest`, other
/// than `reference`'s own.
pub(crate) fn mount_sources(store: &BlobStore, reference: &Reference, digest: &Digest) -> Vec<String> {
    store
        .cache_get(&source_key(reference, digest))
        .unwrap_or_default()
        .lines()
        .filter(|r| !r.is_empty() && *r != reference.repository())
        .map(str::to_owned)
        .collect()
}

/// Notes that `reference`'s repository holds these blobs. Best effort: the
/// cache only saves uploads.
pub(crate) fn remember_source(
    store: &BlobStore,
    reference: &Reference,
    digests: impl IntoIterator<Item = Digest>,
) {
    for digest in digests {
        let key = source_key(reference, &digest);
        let known = store.cache_get(&key).unwrap_or_default();
        let mut repos: Vec<&str> =
            known.lines().filter(|r| !r.is_empty() && *r != reference.repository()).collect();
        repos.insert(0, reference.repository());
        repos.truncate(MAX_SOURCES);
        let value = repos.join("\n");
        // A re-push finds itself noted first already: no write.
        if value != known {
            let _ = store.cache_put(&key, &value);
        }
    }
}
