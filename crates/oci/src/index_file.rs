//! The store's `index.json`, parsed once per version of the file.
//!
//! Every ref lookup and every update of the store reads `index.json`, and
//! it grows with the number of images (a ref and its artifacts per
//! plugin): parsing it on each call made a run of n plugins cost O(n²).
//! An open store keeps the last version it read or wrote
//! ([`CachedIndex`]): the file's bytes, their parse, and the file's
//! [`StatStamp`] with the time it was taken.
//!
//! **Architecture invariant:** a cached `index.json` is used only when it
//! is the file's current content. An update (under `index.lock`, see
//! [`crate::BlobStore::update_ref`]) always reads the file and reuses the
//! parse only for the same bytes, so it starts from what the last writer
//! left. A read outside the lock trusts an equal stamp alone once the
//! file is [settled](SETTLED): a file replacing the cached one may reuse
//! its inode number, but was created after the cached one was read, so
//! its ctime is later than the cached file's when the latter is older
//! than the file system's timestamp granularity (git's "racily clean"
//! check). Otherwise the bytes are read and compared.
//!
//! Writing serializes only the entries that changed: each entry's
//! canonical JSON is kept beside the parse, and the file is the index's
//! canonical JSON with the entries' bytes joined in order, byte for byte
//! what [`canonical_json`] of the whole index gives (a test checks it).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use forge_input::StatStamp;
use oci_spec::image::{Descriptor, ImageIndex};

use crate::error::{Error, Result};
use crate::json::canonical_json;
use crate::store::ref_name;

/// How old (by ctime) `index.json` must be when it was read for an equal
/// stamp alone to say it is unchanged: above any file system's timestamp
/// granularity (2 s on FAT) and the lag of the kernel's coarse clock.
pub(crate) const SETTLED: Duration = Duration::from_secs(3);

/// One version of `index.json`: its bytes and their parse.
#[derive(Debug)]
pub(crate) struct IndexSnapshot {
    bytes: Vec<u8>,
    index: ImageIndex,
    /// Each entry's canonical JSON, made when first needed.
    entries: Vec<OnceLock<Arc<[u8]>>>,
    /// The position of the first entry of each ref name.
    names: OnceLock<HashMap<String, usize>>,
}

impl IndexSnapshot {
    /// Parses the bytes of `index.json` at `path`.
    pub(crate) fn parse(path: &Path, bytes: Vec<u8>) -> Result<IndexSnapshot> {
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| Error::json(path.display().to_string(), e))?;
        let entries = index.manifests().iter().map(|_| OnceLock::new()).collect();
        Ok(IndexSnapshot { bytes, index, entries, names: OnceLock::new() })
    }

    /// The index.
    pub(crate) fn index(&self) -> &ImageIndex {
        &self.index
    }

    /// Its entries, in order.
    pub(crate) fn manifests(&self) -> &[Descriptor] {
        self.index.manifests()
    }

    /// The position of the first entry with the ref name `name`.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        let names = self.names.get_or_init(|| {
            let mut names = HashMap::new();
            for (at, entry) in self.manifests().iter().enumerate() {
                if let Some(name) = ref_name(entry) {
                    names.entry(name.to_owned()).or_insert(at);
                }
            }
            names
        });
        names.get(name).copied()
    }

    /// The canonical JSON of entry `at`.
    fn entry_bytes(&self, at: usize) -> Result<Arc<[u8]>> {
        if let Some(bytes) = self.entries[at].get() {
            return Ok(bytes.clone());
        }
        let bytes: Arc<[u8]> = canonical_json(&self.manifests()[at], "index.json entry")?.into();
        Ok(self.entries[at].get_or_init(|| bytes).clone())
    }

    /// The next version: this index with `manifests` as its entries, and
    /// its canonical JSON, serializing only the entries this one lacks.
    pub(crate) fn with_manifests(&self, manifests: Vec<Descriptor>) -> Result<IndexSnapshot> {
        let mut by_key: HashMap<(&str, Option<&str>), usize> = HashMap::with_capacity(self.manifests().len());
        for (at, entry) in self.manifests().iter().enumerate() {
            by_key.entry((entry.digest().as_ref(), ref_name(entry))).or_insert(at);
        }
        let mut entries = Vec::with_capacity(manifests.len());
        for entry in &manifests {
            let old = by_key.get(&(entry.digest().as_ref(), ref_name(entry))).copied();
            let bytes = match old.filter(|&at| &self.manifests()[at] == entry) {
                Some(at) => self.entry_bytes(at)?,
                None => canonical_json(entry, "index.json entry")?.into(),
            };
            entries.push(bytes);
        }
        let mut index = without_manifests(&self.index);
        let (head, tail) = frame(&index)?;
        let mut bytes =
            Vec::with_capacity(head.len() + tail.len() + entries.iter().map(|e| e.len() + 1).sum::<usize>());
        bytes.extend_from_slice(&head);
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(entry);
        }
        bytes.extend_from_slice(&tail);
        index.set_manifests(manifests);
        Ok(IndexSnapshot {
            bytes,
            index,
            entries: entries.into_iter().map(OnceLock::from).collect(),
            names: OnceLock::new(),
        })
    }

    /// The bytes of the file.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// What comes before and after the entries in the canonical JSON of
/// `index` (whose `manifests` are empty).
fn frame(index: &ImageIndex) -> Result<(Vec<u8>, Vec<u8>)> {
    const MARK: &[u8] = br#""manifests":[]"#;
    let bytes = canonical_json(index, "index.json")?;
    // Inside a JSON string every `"` is escaped, so the key is the only match.
    let at = bytes.windows(MARK.len()).position(|w| w == MARK).ok_or_else(|| Error::InvalidDocument {
        what: "index.json".into(),
        reason: "its canonical JSON has no `manifests` array".into(),
    })?;
    let split = at + MARK.len() - 1;
    Ok((bytes[..split].to_vec(), bytes[split..].to_vec()))
}

/// `index` without its entries.
fn without_manifests(index: &ImageIndex) -> ImageIndex {
    let mut empty = ImageIndex::default();
    empty.set_schema_version(index.schema_version());
    empty.set_media_type(index.media_type().clone());
    empty.set_artifact_type(index.artifact_type().clone());
    empty.set_subject(index.subject().clone());
    empty.set_annotations(index.annotations().clone());
    empty
}

/// The version of `index.json` an open store knows: its snapshot, the
/// file's stamp and when the stamp was taken (while the file was known
/// to hold the snapshot's bytes).
#[derive(Debug, Clone)]
pub(crate) struct CachedIndex {
    pub(crate) snapshot: Arc<IndexSnapshot>,
    pub(crate) stamp: StatStamp,
    pub(crate) seen: SystemTime,
}

impl CachedIndex {
    /// Whether a file with `stamp` now is this version without reading
    /// it: the same stamp, of a file that was settled when seen.
    pub(crate) fn is_current(&self, stamp: &StatStamp) -> bool {
        let [.., ctime, ctime_nsec] = stamp.0;
        let Ok(ctime) = u64::try_from(ctime) else { return false };
        let ctime = UNIX_EPOCH + Duration::new(ctime, u32::try_from(ctime_nsec).unwrap_or(0));
        &self.stamp == stamp && ctime + SETTLED < self.seen
    }
}

/// Reads `index.json` at `path`: its bytes and its stamp, from one open
/// file, with the time after reading (when the file was still open, so
/// no other file could have its inode number yet).
pub(crate) fn read(path: &Path) -> Result<(Vec<u8>, StatStamp, SystemTime)> {
    let mut file = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("reading metadata of", path, e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(|e| Error::io("reading", path, e))?;
    let seen = SystemTime::now();
    Ok((bytes, StatStamp::of(&meta), seen))
}

/// The snapshot of `bytes` read at `path`: `known`'s when they are the
/// same, else a new parse.
pub(crate) fn snapshot_of(
    path: &Path,
    bytes: Vec<u8>,
    known: Option<&CachedIndex>,
) -> Result<Arc<IndexSnapshot>> {
    match known {
        Some(known) if known.snapshot.bytes == bytes => Ok(known.snapshot.clone()),
        _ => Ok(Arc::new(IndexSnapshot::parse(path, bytes)?)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use oci_spec::image::MediaType;

    use super::*;
    use crate::digest::{descriptor, Digest};

    fn entry(content: &str, name: Option<&str>, artifact: bool) -> Descriptor {
        let mut d = descriptor(MediaType::ImageManifest, &Digest::of(content.as_bytes()), 10);
        if let Some(name) = name {
            d.set_annotations(Some(HashMap::from([
                ("org.opencontainers.image.ref.name".to_owned(), name.to_owned()),
                ("z.note".to_owned(), "\"manifests\":[]".to_owned()),
            ])));
        }
        if artifact {
            d.set_artifact_type(Some(MediaType::Other("application/spdx+json".into())));
        }
        d
    }

    /// Joined entries give what `canonical_json` of the whole index gives,
    /// whatever the index's own fields, for entries kept, moved and new.
    #[test]
    fn written_bytes_are_the_canonical_json_of_the_index() {
        let mut annotated = ImageIndex::default();
        annotated.set_media_type(Some(MediaType::ImageIndex));
        annotated.set_annotations(Some(HashMap::from([("manifests".to_owned(), "[]".to_owned())])));
        annotated.set_subject(Some(entry("subject", None, false)));
        for index in [ImageIndex::default(), annotated] {
            let empty = canonical_json(&index, "test").unwrap();
            let first = IndexSnapshot::parse(Path::new("index.json"), empty).unwrap();
            let lists = [
                vec![],
                vec![entry("a", Some("app:1"), false)],
                vec![
                    entry("a", Some("app:1"), false),
                    entry("s", None, true),
                    entry("a", Some("app:2"), false),
                ],
                vec![entry("s", None, true), entry("b", Some("app:1"), false), entry("t", None, true)],
                vec![entry("b", Some("app:1"), false)],
            ];
            let mut snapshot = first;
            for manifests in lists {
                let mut whole = index.clone();
                whole.set_manifests(manifests.clone());
                let next = snapshot.with_manifests(manifests).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(next.bytes()),
                    String::from_utf8_lossy(&canonical_json(&whole, "test").unwrap())
                );
                assert_eq!(next.index(), &whole);
                // Parsed back from its bytes, the same index.
                assert_eq!(
                    IndexSnapshot::parse(Path::new("index.json"), next.bytes().to_vec()).unwrap().index(),
                    &whole
                );
                snapshot = next;
            }
        }
    }

    #[test]
    fn positions_are_of_the_first_entry_of_a_name() {
        let mut index = ImageIndex::default();
        index.set_manifests(vec![
            entry("s", None, true),
            entry("a", Some("app:1"), false),
            entry("b", Some("app:1"), false),
        ]);
        let snapshot =
            IndexSnapshot::parse(Path::new("index.json"), canonical_json(&index, "test").unwrap()).unwrap();
        assert_eq!(snapshot.position("app:1"), Some(1));
        assert_eq!(snapshot.position("app:2"), None);
    }

    /// Only a settled file's stamp is trusted alone.
    #[test]
    fn a_stamp_is_trusted_only_for_a_settled_file() {
        let snapshot = Arc::new(
            IndexSnapshot::parse(Path::new("index.json"), b"{\"schemaVersion\":2,\"manifests\":[]}".to_vec())
                .unwrap(),
        );
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        let stamp = |ctime: i64| StatStamp([7, 40, ctime, 0, ctime, 5]);
        let cached =
            |ctime, seen| CachedIndex { snapshot: snapshot.clone(), stamp: stamp(ctime), seen: at(seen) };
        assert!(cached(1000, 1010).is_current(&stamp(1000)));
        assert!(!cached(1000, 1010).is_current(&stamp(1001)), "another stamp");
        assert!(!cached(1000, 1001).is_current(&stamp(1000)), "racily new when seen");
        assert!(!cached(1000, 1000).is_current(&stamp(1000)));
    }
}
