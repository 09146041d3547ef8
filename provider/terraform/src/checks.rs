//! Small input checks several resources share: names, non-empty strings, label and tag keys.
//! Each pushes a diagnostic on the attribute's own path, so Terraform points at the line.
//! Unknown and null values are skipped (checked again once known).

use tfvalue::{AttributePath, Value};

use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};

/// Longest name accepted: the shortest limit among the places a name ends up (a Kubernetes
/// label value, a GCE instance name).
pub const MAX_NAME_LEN: usize = 63;
/// Longest tag or label key accepted (the EC2 and Azure tag key limit).
pub const MAX_KEY_LEN: usize = 128;
/// Tag keys the provider writes itself; a user tag may not claim them.
pub use clouds::RESERVED_TAG_PREFIX;

/// A name: 1..=63 characters of letters, digits, `-`, `_` and `.`, starting with a letter or
/// digit.
pub fn name(obj: &Value, path: AttributePath, attr: &str, diags: &mut Diagnostics) {
    let Some(text) = attrs::string(obj, attr) else {
        return;
    };
    let problem = if text.is_empty() {
        Some("must not be empty".to_string())
    } else if text.chars().count() > MAX_NAME_LEN {
        Some(format!(
            "must be at most {MAX_NAME_LEN} characters, got {}",
            text.chars().count()
        ))
    } else if !text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        Some(format!("must start with a letter or digit, got {text:?}"))
    } else {
        text.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .map(|c| {
                format!("may hold only letters, digits, '-', '_' and '.', found {c:?} in {text:?}")
            })
    };
    if let Some(problem) = problem {
        diags.push(Diagnostic::attribute_error(
            path,
            &format!("Invalid {attr}"),
            format!("{attr} {problem}."),
        ));
    }
}

/// A string that, when given, must not be empty or blank.
pub fn non_empty(obj: &Value, path: AttributePath, attr: &str, diags: &mut Diagnostics) {
    if let Some(text) = attrs::string(obj, attr) {
        if text.trim().is_empty() {
            diags.push(Diagnostic::attribute_error(
                path,
                &format!("Invalid {attr}"),
                format!("{attr} must not be empty; leave it out instead."),
            ));
        }
    }
}

/// The keys of a map of labels or tags: non-empty, at most 128 characters, and (for tags)
/// not in the provider's reserved `hybrid:` namespace.
pub fn map_keys(
    obj: &Value,
    path: AttributePath,
    attr: &str,
    reserved_prefix: Option<&str>,
    diags: &mut Diagnostics,
) {
    let Some(entries) = attrs::get(obj, attr).and_then(|v| v.as_entries()) else {
        return;
    };
    for key in entries.keys() {
        let problem = if key.trim().is_empty() {
            Some("keys must not be empty".to_string())
        } else if key.chars().count() > MAX_KEY_LEN {
            Some(format!("keys must be at most {MAX_KEY_LEN} characters"))
        } else if reserved_prefix.is_some_and(|p| key.to_ascii_lowercase().starts_with(p)) {
            Some(format!(
                "key {key:?} is reserved: the provider writes the {:?} keys itself",
                reserved_prefix.unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            diags.push(Diagnostic::attribute_error(
                path.clone().key(key.as_str()),
                &format!("Invalid {attr}"),
                format!("{attr}: {problem}."),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(attr: &str, v: Value) -> Value {
        Value::object([(attr.to_string(), v)])
    }

    fn errors(f: impl FnOnce(&mut Diagnostics)) -> usize {
        let mut d = Diagnostics::new();
        f(&mut d);
        d.0.len()
    }

    #[test]
    fn names_are_checked() {
        for (text, bad) in [
            ("api", false),
            ("crash-edge-0", false),
            ("a.b_c", false),
            ("", true),
            ("-x", true),
            ("has space", true),
            (&"x".repeat(64), true),
        ] {
            let o = obj("name", Value::string(text));
            let n = errors(|d| name(&o, AttributePath::root().attr("name"), "name", d));
            assert_eq!(n > 0, bad, "{text:?}");
        }
        let unknown = obj("name", Value::Unknown);
        assert_eq!(
            errors(|d| name(&unknown, AttributePath::root().attr("name"), "name", d)),
            0
        );
    }

    #[test]
    fn map_keys_are_checked() {
        let tags = obj(
            "tags",
            Value::map([
                ("".to_string(), Value::string("x")),
                ("hybrid:managed-by".to_string(), Value::string("me")),
                ("team".to_string(), Value::string("a")),
            ]),
        );
        let p = AttributePath::root().attr("tags");
        assert_eq!(
            errors(|d| map_keys(&tags, p.clone(), "tags", Some(RESERVED_TAG_PREFIX), d)),
            2
        );
        assert_eq!(errors(|d| map_keys(&tags, p, "tags", None, d)), 1);
    }
}
