//! The document the resource layer stores beside an instance, kept as JSON text.
//!
//! Every driver stores the document as text (the sim cloud in a TEXT column, EC2 and Azure
//! chunked into tags, GCE as a metadata item, Kubernetes as an annotation), and the resource
//! layer writes it as text; almost nobody looks inside. Carrying it as a `serde_json::Value`
//! meant building a tree of the whole workload state for every create and update, copying it,
//! printing it and freeing both: about a fifth of the provider's instructions in an apply of a
//! thousand workloads. A [`Metadata`] is the text, shared (cloning is a reference count), and
//! always valid JSON, so the few readers (import, refresh, migrations, cost reports) parse it
//! when they need to.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A JSON document, as text that is guaranteed to be valid JSON.
///
/// Equality is equality of the text: the same document written with other whitespace or
/// another key order is a different `Metadata`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Metadata(Arc<str>);

/// Text that was to become a [`Metadata`] is not valid JSON (a damaged tag or annotation).
#[derive(Debug, thiserror::Error)]
#[error("the stored workload description is not valid JSON: {0}")]
pub struct InvalidMetadata(#[source] serde_json::Error);

impl Metadata {
    /// Checks that `text`, read back from a cloud where anyone could have changed it, is one
    /// valid JSON value (nested at most as deep as serde_json parses), and keeps it as it is.
    pub fn from_text(text: impl Into<Arc<str>>) -> Result<Metadata, InvalidMetadata> {
        let text = text.into();
        serde_json::from_str::<IgnoredAny>(&text).map_err(InvalidMetadata)?;
        Ok(Metadata(text))
    }

    /// Keeps `text` without checking it: only for text a JSON writer in this process produced
    /// (`tfvalue::write_json`, serde_json's printer), which is valid JSON by construction, so
    /// that the document of every create is not parsed once more just to be checked. Debug
    /// builds check it anyway.
    pub fn trusted(text: impl Into<Arc<str>>) -> Metadata {
        let text = text.into();
        debug_assert!(
            serde_json::from_str::<IgnoredAny>(&text).is_ok(),
            "trusted metadata is not valid JSON: {text}"
        );
        Metadata(text)
    }

    /// The document `value`, printed compactly (for builders that assemble a tree).
    pub fn from_value(value: &serde_json::Value) -> Metadata {
        Metadata(value.to_string().into())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The document as a tree. `None` only for a document nested deeper than serde_json parses
    /// (128 levels), which [`Metadata::from_text`] refuses and no writer here produces.
    pub fn parse(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.0).ok()
    }

    /// `document[key]` when the document is an object that has `key` (the last one, when it
    /// has it twice, as [`Metadata::parse`] would); the rest of the document is skipped over
    /// without being built.
    pub fn section(&self, key: &str) -> Option<serde_json::Value> {
        let mut de = serde_json::Deserializer::from_str(&self.0);
        de.deserialize_any(SectionOf { key }).ok().flatten()
    }
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// As the JSON value itself (not a string holding it), as when the field was a
/// `serde_json::Value`: migration journals embed instance specs this way.
impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Metadata, D::Error> {
        serde_json::Value::deserialize(deserializer).map(|v| Metadata::from_value(&v))
    }
}

/// Finds one key of a top-level object (see [`Metadata::section`]).
struct SectionOf<'k> {
    key: &'k str,
}

impl<'de> Visitor<'de> for SectionOf<'_> {
    type Value = Option<serde_json::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Anything but an object fails here, and has no sections.
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_key) = map.next_key_seed(IsKey(self.key))? {
            if is_key {
                found = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether an object key is the one sought, compared without copying it.
struct IsKey<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for IsKey<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for IsKey<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_checked_only_where_it_comes_from_outside() {
        for bad in ["", "{", "{\"a\":1} x", "{\"a\":}", "nul", "\"\\q\""] {
            assert!(Metadata::from_text(bad).is_err(), "{bad:?}");
        }
        let err = Metadata::from_text("{").expect_err("refused");
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        // Kept as written, whitespace and all.
        let spaced = Metadata::from_text(" { \"a\" : [1, 2] } ").expect("valid");
        assert_eq!(spaced.as_str(), " { \"a\" : [1, 2] } ");
        assert_eq!(spaced.parse(), Some(json!({"a": [1, 2]})));
        assert_eq!(Metadata::trusted("{\"a\":1}").as_str(), "{\"a\":1}");
    }

    #[test]
    fn from_value_is_serde_jsons_compact_text() {
        let doc = json!({"state": {"b": "x\ny", "a": [1, 2.5, null]}, "schema_version": 1});
        let m = Metadata::from_value(&doc);
        assert_eq!(m.as_str(), doc.to_string());
        assert_eq!(m.to_string(), doc.to_string());
        assert_eq!(m.parse(), Some(doc));
        let copy = m.clone();
        assert!(Arc::ptr_eq(&copy.0, &m.0), "a clone shares the text");
    }

    #[test]
    fn sections_are_found_without_building_the_rest() {
        let m = Metadata::from_value(&json!({
            "observed": {"replicas": 2},
            "state": {"placement": {"provider": "aws"}, "name": "web"},
        }));
        assert_eq!(m.section("observed"), Some(json!({"replicas": 2})));
        assert_eq!(
            m.section("state").and_then(|s| s.get("placement").cloned()),
            Some(json!({"provider": "aws"}))
        );
        assert_eq!(m.section("kubernetes"), None);
        let escaped = Metadata::from_text(r#"{"st\u0061te": 1, "state": 2}"#).expect("valid");
        assert_eq!(
            escaped.section("state"),
            Some(json!(2)),
            "the last one wins"
        );
        for not_an_object in ["[1, {\"state\": 1}]", "\"state\"", "3", "null", "true"] {
            let m = Metadata::from_text(not_an_object).expect("valid");
            assert_eq!(m.section("state"), None, "{not_an_object}");
        }
    }

    #[test]
    fn serializes_as_the_json_value_it_holds() {
        let doc = json!({"state": {"name": "api", "n": 12345678901234567890u64}});
        let m = Metadata::from_value(&doc);
        let spec = json!({ "metadata": m });
        assert_eq!(spec, json!({ "metadata": doc }));
        let back: Metadata = serde_json::from_value(doc.clone()).expect("deserialize");
        assert_eq!(back, m);
        let none: Option<Metadata> = serde_json::from_value(json!(null)).expect("null");
        assert_eq!(none, None);
    }
}
