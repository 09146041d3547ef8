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
//! - [`decode_json`]/[`encode_json`]: `DynamicValue.json` and raw state;
//!   [`write_json`] appends the same text to a `String` (stored documents).
//! - [`changed_attributes`], [`Value::paths_where`]: what plan logic needs.
//!
//! ```
//! use tfvalue::{decode_msgpack, encode_msgpack, changed_attributes, Type, Value};
//!
//! let ty = Type::object([("name", Type::String), ("cpu", Type::Number)]);
//! let planned = Value::object([("name", "web".into()), ("cpu", Value::Unknown)]);
//! let bytes = encode_msgpack(&planned, &ty)?;
//! let back = decode_msgpack(&bytes, &ty)?;
//! assert_eq!(back.get("name").and_then(Value::as_str), Some("web"));
//! let unknown: Vec<String> = back.paths_where(Value::is_unknown).iter().map(ToString::to_string).collect();
//! assert_eq!(unknown, ["cpu"]);
//! let prior = Value::object([("name", "web".into()), ("cpu", 2i64.into())]);
//! assert_eq!(changed_attributes(&prior, &back), ["cpu"]);
//!
//! let err = decode_msgpack(&[0x81, 0xa3, b'c', b'p', b'u', 0xa1, b'x'], &ty).unwrap_err();
//! assert_eq!(err.to_string(), "cpu: invalid number \"x\": no digits");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Decisions
//!
//! - `Null` and `Unknown` carry no type: the codecs always get the type, and
//!   so does every caller through the schema. Values at `dynamic` positions
//!   are wrapped as [`Value::Dynamic`] with their concrete type, as they are
//!   on the wire; accessors and `==` look through the wrapper.
//! - Refined unknowns (cty >= 1.13, msgpack extension 12) decode as plain
//!   `Unknown`; refinements are dropped and never written.
//! - Numbers keep every digit ([`Number`]). Equality follows cty: whole
//!   numbers exactly, fractions by shortest decimal text.
//! - Decoding is lenient where it is safe: a msgpack object may omit
//!   attributes (null), JSON state may hold primitives as strings as cty
//!   allows. Attributes the type does not have are errors naming them.
//! - Hostile input: lengths are checked against the bytes left before any
//!   allocation, nesting is limited to [`MAX_DEPTH`], and set dedup and
//!   set equality are O(n log n).
//!
//! # Differences from go-cty (checked against v1.14.4 built from source)
//!
//! - A float that is a whole number beyond int64 (say 2^70 received as a
//!   float64) is written with all its digits, where cty writes its shortest
//!   round-trip digits followed by zeros, which would change the value.
//! - Collections of `dynamic` elements are not required to hold values of
//!   one concrete type (cty requires it and rejects such values).
//! - JSON objects are written with sorted keys, so a dynamic value is
//!   `{"type":..,"value":..}` (cty writes `value` first; readers don't care).

#![warn(missing_docs)]

mod encode_steps;
mod error;
mod fields;
mod json;
mod json_direct;
mod json_text;
mod msgpack;
mod name;
mod number;
mod path;
mod types;
mod value;

pub use error::{DecodeError, EncodeError, TypeError};
pub use fields::{Fields, FieldsIter, FieldsIterMut};
pub use json::{
    decode_json, decode_json_value, encode_json, encode_json_value,
    encode_json_value_unknown_as_null,
};
pub use json_text::{write_json, write_json_unknown_as_null, write_json_without_null_attributes};
pub use msgpack::{
    decode_msgpack, encode_msgpack, encode_msgpack_into, msgpack_object_field, msgpack_object_str,
    MAX_DEPTH,
};
pub use name::Name;
pub use number::{Number, ParseNumberError};
pub use path::{AttributePath, PathStep};
pub use types::{ObjectType, Type};
pub use value::{changed_attributes, SmolStr, Value};
