//! cty's JSON encoding: `DynamicValue.json` and Terraform's raw state.
//!
//! State is JSON written by whatever provider version last saved it, so the
//! decoder is lenient where cty is (primitive values in string form,
//! missing attributes as null) but reports attributes the schema no longer
//! has, by name, so the provider can route them through
//! UpgradeResourceState. Unknown values cannot be written to JSON.
//! Numbers go through serde_json's arbitrary precision mode, so `2^70` and
//! `0.1` keep every digit.

use serde_json::Value as Json;

use crate::encode_steps::{lead, mismatch, object_attributes, tuple_length, Lead};
use crate::error::{DecodeError, EncodeError};
use crate::fields::Fields;
use crate::msgpack::MAX_DEPTH;
use crate::name::Name;
use crate::number::Number;
use crate::path::{AttributePath, PathStep};
use crate::types::Type;
use crate::value::{dedup_set, Value};

/// Decodes JSON bytes holding a value of type `ty`.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    if let Some(value) = crate::json_direct::decode(bytes, ty) {
        return Ok(value);
    }
    let j: Json = serde_json::from_slice(bytes).map_err(|e| DecodeError {
        path: AttributePath::root(),
        message: format!("invalid JSON: {e}"),
    })?;
    decode_json_value(&j, ty)
}

/// Decodes an already parsed JSON value holding a value of type `ty`.
pub fn decode_json_value(j: &Json, ty: &Type) -> Result<Value, DecodeError> {
    decode(j, ty, 0)
}

/// Encodes a value of type `ty` as JSON bytes (object keys sorted): the text of
/// [`encode_json_value`]'s tree, written without building it ([`crate::write_json`]).
pub fn encode_json(v: &Value, ty: &Type) -> Result<Vec<u8>, EncodeError> {
    let mut text = String::new();
    crate::json_text::write_json(v, ty, &mut text)?;
    Ok(text.into_bytes())
}

/// Encodes a value of type `ty` as a `serde_json::Value`.
pub fn encode_json_value(v: &Value, ty: &Type) -> Result<Json, EncodeError> {
    encode(v, ty, 0, UnknownAsNull(false))
}

/// Like [`encode_json_value`], but an unknown anywhere is written as `null` instead of failing:
/// for keeping a planned value whose computed attributes are not known yet.
pub fn encode_json_value_unknown_as_null(v: &Value, ty: &Type) -> Result<Json, EncodeError> {
    encode(v, ty, 0, UnknownAsNull(true))
}

/// Whether an unknown value is written as `null` (else it is an error).
#[derive(Clone, Copy)]
pub(crate) struct UnknownAsNull(pub(crate) bool);

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// An error at the value being decoded; callers above add their step with `within`.
fn derr(message: impl Into<String>) -> DecodeError {
    DecodeError {
        path: AttributePath::root(),
        message: message.into(),
    }
}

/// A bool, number or string (taking `j`, so a string is not copied), or a dynamic value;
/// shared with [`crate::json_direct`] so that both decoders coerce alike.
pub(crate) fn decode_leaf(j: Json, ty: &Type, depth: usize) -> Result<Value, DecodeError> {
    if j.is_null() {
        return Ok(Value::Null);
    }
    let mismatch = |j: &Json| derr(format!("expected {ty}, found {}", json_kind(j)));
    match ty {
        Type::Bool => match j {
            Json::Bool(b) => Ok(Value::Bool(b)),
            Json::String(s) if s == "true" => Ok(Value::Bool(true)),
            Json::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(mismatch(&j)),
        },
        Type::Number => {
            let text = match j {
                Json::Number(n) => n.to_string(),
                Json::String(s) => s,
                _ => return Err(mismatch(&j)),
            };
            Number::parse(&text)
                .map(Value::Number)
                .map_err(|e| derr(e.to_string()))
        }
        Type::String => match j {
            Json::String(s) => Ok(Value::String(s.into())),
            Json::Number(n) => Ok(Value::String(n.to_string().into())),
            Json::Bool(b) => Ok(Value::String(if b { "true" } else { "false" }.into())),
            _ => Err(mismatch(&j)),
        },
        _ => decode(&j, ty, depth),
    }
}

fn decode(j: &Json, ty: &Type, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(derr(format!("value nested deeper than {MAX_DEPTH} levels")));
    }
    if j.is_null() {
        return Ok(Value::Null);
    }
    let mismatch = || derr(format!("expected {ty}, found {}", json_kind(j)));
    match ty {
        Type::Bool | Type::Number | Type::String => decode_leaf(j.clone(), ty, depth),
        Type::List(e) | Type::Set(e) => {
            let Json::Array(xs) = j else {
                return Err(mismatch());
            };
            let mut out = Vec::with_capacity(xs.len());
            for (i, x) in xs.iter().enumerate() {
                out.push(
                    decode(x, e, depth + 1)
                        .map_err(|err| err.within(PathStep::ElementKeyInt(i as i64)))?,
                );
            }
            Ok(if matches!(ty, Type::Set(_)) {
                Value::Set(dedup_set(out))
            } else {
                Value::List(out)
            })
        }
        Type::Tuple(ts) => {
            let Json::Array(xs) = j else {
                return Err(mismatch());
            };
            if xs.len() != ts.len() {
                return Err(derr(format!(
                    "expected a tuple of {} elements, found {}",
                    ts.len(),
                    xs.len()
                )));
            }
            let mut out = Vec::with_capacity(xs.len());
            for (i, (x, t)) in xs.iter().zip(ts).enumerate() {
                out.push(
                    decode(x, t, depth + 1)
                        .map_err(|err| err.within(PathStep::ElementKeyInt(i as i64)))?,
                );
            }
            Ok(Value::Tuple(out))
        }
        Type::Map(e) => {
            let Json::Object(m) = j else {
                return Err(mismatch());
            };
            let out = m
                .iter()
                .map(|(k, x)| {
                    decode(x, e, depth + 1)
                        .map(|v| (Name::from(k), v))
                        .map_err(|err| err.within(PathStep::ElementKeyString(k.to_string())))
                })
                .collect::<Result<Fields, _>>()?;
            Ok(Value::Map(out))
        }
        Type::Object(ot) => {
            let Json::Object(m) = j else {
                return Err(mismatch());
            };
            let extra: Vec<String> = m
                .keys()
                .filter(|k| !ot.attrs.contains_key(k.as_str()))
                .map(|k| format!("{k:?}"))
                .collect();
            if !extra.is_empty() {
                let noun = if extra.len() == 1 {
                    "attribute"
                } else {
                    "attributes"
                };
                return Err(derr(format!("unsupported {noun} {}", extra.join(", "))));
            }
            let mut out = Vec::with_capacity(ot.attrs.len());
            for (k, t) in &ot.attrs {
                let v = match m.get(k.as_str()) {
                    Some(x) => decode(x, t, depth + 1)
                        .map_err(|err| err.within(PathStep::Attribute(k.to_string())))?,
                    None => Value::Null,
                };
                out.push((k.clone(), v));
            }
            Ok(Value::Object(Fields::from_sorted_vec(out)))
        }
        Type::Dynamic => {
            let Json::Object(m) = j else {
                return Err(derr(format!(
                    "dynamic value must be an object with \"value\" and \"type\", found {}",
                    json_kind(j)
                )));
            };
            let (Some(tj), Some(vj)) = (m.get("type"), m.get("value")) else {
                return Err(derr("dynamic value must have \"value\" and \"type\""));
            };
            if let Some(extra) = m.keys().find(|k| *k != "type" && *k != "value") {
                return Err(derr(format!("unsupported key {extra:?} in dynamic value")));
            }
            let t = Type::from_json_value(tj).map_err(|e| derr(e.to_string()))?;
            let v = decode(vj, &t, depth + 1)?;
            Ok(Value::Dynamic(t, Box::new(v)))
        }
    }
}

/// An error at the value being encoded; callers above add their step with `within`.
pub(crate) fn eerr(message: impl Into<String>) -> EncodeError {
    EncodeError {
        path: AttributePath::root(),
        message: message.into(),
    }
}

fn encode(v: &Value, ty: &Type, depth: usize, nulls: UnknownAsNull) -> Result<Json, EncodeError> {
    let v = match lead(v, ty, depth, nulls)? {
        Lead::Null => return Ok(Json::Null),
        Lead::Dynamic(t, inner) => return encode_dynamic(&t, inner, depth, nulls),
        Lead::Typed(v) => v,
    };
    match (ty, v) {
        (Type::Bool, Value::Bool(b)) => Ok(Json::Bool(*b)),
        (Type::Number, Value::Number(n)) => json_number(n).map(Json::Number),
        (Type::String, Value::String(s)) => Ok(Json::String(s.to_string())),
        (Type::List(e) | Type::Set(e), Value::List(xs) | Value::Set(xs)) => {
            let mut out = Vec::with_capacity(xs.len());
            for (i, x) in xs.iter().enumerate() {
                out.push(
                    encode(x, e, depth + 1, nulls)
                        .map_err(|err| err.within(PathStep::ElementKeyInt(i as i64)))?,
                );
            }
            Ok(Json::Array(out))
        }
        (Type::Tuple(ts), Value::Tuple(xs) | Value::List(xs)) => {
            if ts.len() != xs.len() {
                return Err(tuple_length(ts.len(), xs.len()));
            }
            let mut out = Vec::with_capacity(xs.len());
            for (i, (x, t)) in xs.iter().zip(ts).enumerate() {
                out.push(
                    encode(x, t, depth + 1, nulls)
                        .map_err(|err| err.within(PathStep::ElementKeyInt(i as i64)))?,
                );
            }
            Ok(Json::Array(out))
        }
        (Type::Map(e), Value::Map(m) | Value::Object(m)) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                out.insert(
                    k.to_string(),
                    encode(x, e, depth + 1, nulls)
                        .map_err(|err| err.within(PathStep::ElementKeyString(k.to_string())))?,
                );
            }
            Ok(Json::Object(out))
        }
        (Type::Object(ot), Value::Object(m) | Value::Map(m)) => {
            let mut out = serde_json::Map::new();
            for (k, t, x) in object_attributes(ot, m)? {
                let v = encode(x, t, depth + 1, nulls)
                    .map_err(|err| err.within(PathStep::Attribute(k.to_string())))?;
                out.insert(k.to_string(), v);
            }
            Ok(Json::Object(out))
        }
        _ => Err(mismatch(ty, v)),
    }
}

/// The JSON number for `n`, or why JSON cannot hold it (shared with [`crate::json_text`]).
pub(crate) fn json_number(n: &Number) -> Result<serde_json::Number, EncodeError> {
    if n.is_nan() || n.is_infinite() {
        return Err(eerr(format!("JSON cannot represent the number {n}")));
    }
    // Integers that fit a machine word go straight in; anything else (fractions, big
    // integers) through its exact decimal text (serde_json keeps it with
    // `arbitrary_precision`).
    if let Some(i) = n.as_i64() {
        return Ok(i.into());
    }
    n.to_string()
        .parse::<serde_json::Number>()
        .map_err(|e| eerr(e.to_string()))
}

fn encode_dynamic(
    t: &Type,
    v: &Value,
    depth: usize,
    nulls: UnknownAsNull,
) -> Result<Json, EncodeError> {
    let mut out = serde_json::Map::new();
    out.insert("value".to_string(), encode(v, t, depth + 1, nulls)?);
    out.insert("type".to_string(), t.to_json_value());
    Ok(Json::Object(out))
}
