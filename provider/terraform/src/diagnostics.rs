//! Diagnostics: what a user reads when something is wrong, with the attribute it is about.
//!
//! Every error from the libraries (placement, catalog, drivers, value decoding) becomes a
//! [`Diagnostic`] here and nowhere else, so wording and paths stay consistent. Conversion to the
//! protocol's message happens in `grpc.rs`.

use tfvalue::{AttributePath, DecodeError};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub path: Option<AttributePath>,
}

impl Diagnostic {
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }

    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(summary, detail)
        }
    }

    pub fn at(mut self, path: AttributePath) -> Diagnostic {
        self.path = Some(path);
        self
    }

    /// An error about one attribute, e.g. `attribute_error("cpu", "Invalid cpu", "must be > 0")`.
    pub fn attribute_error(path: AttributePath, summary: &str, detail: impl Into<String>) -> Self {
        Diagnostic::error(summary, detail).at(path)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// A value Terraform sent that we could not decode with the schema's type.
    pub fn decode(what: &str, err: &DecodeError) -> Diagnostic {
        Diagnostic::error(
            format!("Invalid {what}"),
            format!("The provider could not read the {what}: {err}"),
        )
        .at(err.path.clone())
    }

    /// A crash inside a handler, turned into an error instead of a dead plugin.
    pub fn internal(rpc: &str, message: &str) -> Diagnostic {
        Diagnostic::error(
            "Internal provider error",
            format!(
                "The provider hit an internal error while handling {rpc}: {message}. \
                 This is a bug in terraform-provider-hybrid; please report it with the configuration that triggered it."
            ),
        )
    }
}

/// A list of diagnostics with helpers for the common "stop if any error" flow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(v: Vec<Diagnostic>) -> Self {
        Diagnostics(v)
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Parses a field path the way the libraries report them (`weights.cost`,
/// `data_residency_regions[1]`, `user_locations[0].lat`) into an attribute path.
pub fn path_from_field(field: &str) -> AttributePath {
    let mut path = AttributePath::root();
    for part in field.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            path = path.attr(name);
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            let inner = &stripped[..end];
            path = match inner.parse::<i64>() {
                Ok(i) => path.index(i),
                Err(_) => path.key(inner.trim_matches('"')),
            };
            rest = &stripped[end + 1..];
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_become_attribute_paths() {
        assert_eq!(path_from_field("cpu"), AttributePath::root().attr("cpu"));
        assert_eq!(
            path_from_field("weights.cost"),
            AttributePath::root().attr("weights").attr("cost")
        );
        assert_eq!(
            path_from_field("user_locations[1].lat"),
            AttributePath::root()
                .attr("user_locations")
                .index(1)
                .attr("lat")
        );
        assert_eq!(
            path_from_field("tags[\"team\"]"),
            AttributePath::root().attr("tags").key("team")
        );
    }
}
