//! Error types of the codecs, each carrying the path where it happened.
//!
//! The provider turns these into Terraform diagnostics in one place, so they
//! keep the path as data instead of only as text.

use crate::path::AttributePath;

fn prefix(path: &AttributePath) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// A value could not be decoded from msgpack or JSON.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", prefix(.path), .message)]
pub struct DecodeError {
    /// Where in the value decoding failed (empty for the whole value).
    pub path: AttributePath,
    /// What went wrong, e.g. `expected number, found string`.
    pub message: String,
}

/// A value could not be encoded for the given type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", prefix(.path), .message)]
pub struct EncodeError {
    /// Where in the value encoding failed.
    pub path: AttributePath,
    /// What went wrong, e.g. `unknown value cannot be written to state`.
    pub message: String,
}

impl DecodeError {
    /// The same error one step further out (see [`EncodeError::within`]).
    pub(crate) fn within(mut self, step: crate::path::PathStep) -> Self {
        self.path.steps.insert(0, step);
        self
    }
}

impl EncodeError {
    /// The same error one step further out: encoders build the path while the error travels
    /// up, so that encoding a value that is fine allocates no path at all.
    pub(crate) fn within(mut self, step: crate::path::PathStep) -> Self {
        self.path.steps.insert(0, step);
        self
    }
}

/// A type description (Terraform's type JSON) is malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid type: {0}")]
pub struct TypeError(pub String);
