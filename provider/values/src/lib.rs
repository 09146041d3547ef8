//! Terraform's type system and values (the cty model), decoded once at the
//! gRPC boundary.
//!
//! This crate is pure: no IO, no async, no gRPC. The protocol crate carries
//! `DynamicValue` bytes; the provider binary decodes them here into
//! [`Value`]s with the schema's [`Type`], works with plain Rust data, and
//! encodes results back. Decode errors carry the [`AttributePath`] where
//! they happened so they become precise diagnostics.
//!
//! - [`Type`], [`ObjectType`]: types and their type JSON (`["list","string"]`).
//! - [`Value`], [`Number`]: values; null and unknown anywhere, exact numbers.
//! - [`decode_msgpack`]/[`encode_msgpack`]: `DynamicValue.msgpack`.
//! - [`decode_json`]/[`encode_json`]: `DynamicValue.json` and raw state.
//! - [`changed_attributes`], [`Value::paths_where`]: what plan logic needs.

#![warn(missing_docs)]

mod error;
mod json;
mod msgpack;
mod number;
mod path;
mod types;
mod value;

pub use error::{DecodeError, EncodeError, TypeError};
pub use json::{decode_json, decode_json_value, encode_json, encode_json_value};
pub use msgpack::{decode_msgpack, encode_msgpack, MAX_DEPTH};
pub use number::{Number, ParseNumberError};
pub use path::{AttributePath, PathStep};
pub use types::{ObjectType, Type};
pub use value::{changed_attributes, Value};
