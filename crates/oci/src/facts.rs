//! What the content of a store's blob says, learnt once per open store:
//! the subject of an artifact manifest, the images an index lists.
//!
//! Keeping the store's artifacts to those whose subject a ref reaches
//! ([`crate::referrers::add_referrers`]) and finding an image's referrers
//! ([`crate::referrers::referrers`]) look at every entry of `index.json`;
//! reading each artifact manifest and each index again on every call made
//! a run of n plugins read O(n²) blobs.
//!
//! **Architecture invariant:** a fact is kept only about a blob read
//! whole and verified against its digest, and only by the open store
//! ([`crate::BlobStore`] and its clones) that read it. That is sound
//! because a blob's content is fixed by its digest, and while a store is
//! open its blobs stay ([`crate::gc`] cannot run beside it): the fact is
//! what reading the blob again would say. What is not a fact (a blob that
//! could not be read) is not kept, so it is tried again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::digest::Digest;
use crate::error::Result;

/// The facts one open store learnt, by the blob's digest (as written in
/// descriptors).
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// Artifact manifests' subjects.
    subjects: Memo<Option<Digest>>,
    /// Indexes' images' manifest digests.
    images: Memo<Arc<[Digest]>>,
}

impl Facts {
    /// The subject of the artifact manifest `digest`, `read` when not known.
    pub(crate) fn subject(
        &self,
        digest: &str,
        read: impl FnOnce() -> Result<Option<Digest>>,
    ) -> Result<Option<Digest>> {
        self.subjects.get_or_try(digest, read)
    }

    /// The manifest digests of the images of the index `digest`, `read`
    /// when not known.
    pub(crate) fn index_images(
        &self,
        digest: &str,
        read: impl FnOnce() -> Result<Arc<[Digest]>>,
    ) -> Result<Arc<[Digest]>> {
        self.images.get_or_try(digest, read)
    }
}

/// Values by digest, each computed once (a failure is not kept).
#[derive(Debug)]
struct Memo<V>(Mutex<HashMap<String, V>>);

impl<V> Default for Memo<V> {
    fn default() -> Memo<V> {
        Memo(Mutex::new(HashMap::new()))
    }
}

impl<V: Clone> Memo<V> {
    fn get_or_try(&self, digest: &str, read: impl FnOnce() -> Result<V>) -> Result<V> {
        if let Some(value) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(digest) {
            return Ok(value.clone());
        }
        // Read without the lock held: two threads may both read a blob,
        // and find the same.
        let value = read()?;
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(digest.to_owned(), value.clone());
        Ok(value)
    }
}
