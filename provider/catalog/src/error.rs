//! Errors of the catalog crate: loading a snapshot, checking its invariants, and reading user
//! tokens (data residency entries) against it. One enum so callers can map it to diagnostics.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CatalogError {
    /// The snapshot bytes are not the expected JSON document.
    #[error("catalog snapshot does not parse: {0}")]
    Parse(String),
    /// The snapshot has a format version this loader does not understand.
    #[error("catalog snapshot format {found} is not supported (expected {expected})")]
    Format { found: u32, expected: u32 },
    /// `Catalog::validate` found broken invariants; each string names one.
    #[error("catalog snapshot is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A data residency entry is neither a region code nor a jurisdiction/country token.
    #[error("data residency entry {0:?} is not a region code of any cloud, a jurisdiction (EU, EEA, US-GOV) or an ISO country code")]
    UnknownResidency(String),
}
