//! The workload description that import needs, stored in a cloud's tags.
//!
//! Clouds cap a tag value's length (EC2 and Azure: 256 characters) and the number of tags per
//! resource, so the description (JSON) is split over `hybrid:meta-0`, `hybrid:meta-1`, ... and
//! joined again on read. When it does not fit, the workload's ranked alternatives are dropped
//! (plan recomputes them); when it still does not fit, it is not stored and import says so.

use std::collections::BTreeMap;

use crate::Metadata;

/// Prefix of the tags carrying the stored workload description.
pub const TAG_META_PREFIX: &str = "hybrid:meta-";

/// The `(key, value)` tags holding `meta`, using at most `max_tags` tags of `value_max`
/// characters each; empty when it does not fit even without the alternatives.
pub fn encode(meta: &Metadata, max_tags: usize, value_max: usize) -> Vec<(String, String)> {
    let budget = max_tags.saturating_mul(value_max);
    let mut text = std::borrow::Cow::Borrowed(meta.as_str());
    if text.chars().count() > budget {
        if let Some(mut slim) = meta.parse() {
            if let Some(alternatives) = slim.pointer_mut("/state/alternatives") {
                *alternatives = serde_json::Value::Array(Vec::new());
            }
            text = std::borrow::Cow::Owned(slim.to_string());
        }
    }
    if text.chars().count() > budget {
        tracing::warn!(
            "workload description too large for the cloud's tags; this instance cannot be imported"
        );
        return Vec::new();
    }
    chunks(&text, value_max)
        .into_iter()
        .enumerate()
        .map(|(i, part)| (format!("{TAG_META_PREFIX}{i}"), part))
        .collect()
}

/// The stored description back from its tags; `None` when absent or damaged.
pub fn decode(tags: &BTreeMap<String, String>) -> Option<Metadata> {
    let mut text = String::new();
    for i in 0.. {
        match tags.get(&format!("{TAG_META_PREFIX}{i}")) {
            Some(part) => text.push_str(part),
            None => break,
        }
    }
    if text.is_empty() {
        return None;
    }
    Metadata::from_text(text).ok()
}

/// Splits `text` into pieces of at most `max` characters (never inside a character).
pub fn chunks(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(max.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let meta = Metadata::from_value(
            &serde_json::json!({"state": {"name": "api", "blob": "é".repeat(300), "alternatives": ["a".repeat(400)]}}),
        );
        let tags: BTreeMap<String, String> = encode(&meta, 24, 256).into_iter().collect();
        assert!(tags.values().all(|v| v.chars().count() <= 256));
        assert_eq!(decode(&tags), Some(meta.clone()));
        // Too small for everything: the alternatives go first.
        let slim: BTreeMap<String, String> = encode(&meta, 2, 256).into_iter().collect();
        let back = decode(&slim)
            .and_then(|m| m.parse())
            .expect("slim description");
        assert_eq!(back["state"]["alternatives"], serde_json::json!([]));
        // Damaged tags read as no description.
        let mut damaged = tags.clone();
        damaged.insert(format!("{TAG_META_PREFIX}0"), "{\"state\":".into());
        assert_eq!(decode(&damaged), None);
        assert!(encode(&meta, 1, 256).is_empty());
        assert_eq!(decode(&BTreeMap::new()), None);
    }
}
