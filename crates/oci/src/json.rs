//! Canonical JSON: the one way we serialize a document we hash.
//!
//! oci-spec keeps labels, annotations and exposed ports in `HashMap`s, whose
//! iteration order is random per process, so `serde_json::to_vec(&config)`
//! can give different bytes (and digests) for the same image. Everything we
//! store or archive (configs, manifests, `index.json`, Docker's
//! `manifest.json`) goes through [`canonical_json`] instead, which
//! serializes to a `serde_json::Value` first: its objects are sorted maps,
//! so keys come out sorted at every level.

use serde::Serialize;

use crate::error::{Error, Result};

/// Serializes `value` as canonical JSON: compact, object keys sorted at
/// every level. `what` names the document in errors.
pub fn canonical_json<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(value).map_err(|e| Error::json(what, e))?;
    // A no-op while serde_json's `preserve_order` is off (as the workspace
    // wants); keeps the output canonical should a dependency turn it on.
    value.sort_all_objects();
    serde_json::to_vec(&value).map_err(|e| Error::json(what, e))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level_and_output_is_compact() {
        let inner: HashMap<&str, u32> = [("z", 1), ("a", 2), ("m", 3)].into();
        let outer: HashMap<&str, HashMap<&str, u32>> = [("y", inner.clone()), ("b", inner)].into();
        let text = String::from_utf8(canonical_json(&outer, "test").unwrap()).unwrap();
        assert_eq!(text, r#"{"b":{"a":2,"m":3,"z":1},"y":{"a":2,"m":3,"z":1}}"#);
    }
}
