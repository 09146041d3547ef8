//! Terraform's type system (cty types) and its JSON form.
//!
//! Schemas send attribute types to Terraform as type JSON, and dynamic values
//! carry their concrete type as type JSON inside msgpack and JSON encodings,
//! so both directions live here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value as Json;

use crate::error::TypeError;
use crate::name::Name;

/// Deepest type nesting accepted from type JSON.
const MAX_TYPE_DEPTH: usize = 64;

/// A Terraform (cty) type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// `bool`.
    Bool,
    /// `number` (arbitrary precision).
    Number,
    /// `string`.
    String,
    /// `dynamic` (any type, decided per value; cty's DynamicPseudoType).
    Dynamic,
    /// `list(T)`.
    List(Box<Type>),
    /// `set(T)`.
    Set(Box<Type>),
    /// `map(T)`, string keys.
    Map(Box<Type>),
    /// `object({...})`.
    Object(ObjectType),
    /// `tuple([...])`.
    Tuple(Vec<Type>),
}

/// The attributes of an object type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectType {
    /// Attribute names and types.
    pub attrs: BTreeMap<Name, Type>,
    /// Names of attributes that are optional (type constraints only; a
    /// subset of `attrs`).
    pub optional: BTreeSet<String>,
}

impl ObjectType {
    /// An object type from `(name, type)` pairs, no optional attributes.
    pub fn new<K: Into<Name>>(attrs: impl IntoIterator<Item = (K, Type)>) -> Self {
        ObjectType {
            attrs: attrs.into_iter().map(|(k, t)| (k.into(), t)).collect(),
            optional: BTreeSet::new(),
        }
    }

    /// Marks attributes as optional.
    pub fn with_optional<K: Into<String>>(mut self, names: impl IntoIterator<Item = K>) -> Self {
        self.optional.extend(names.into_iter().map(Into::into));
        self
    }
}

impl Type {
    /// `list(elem)`.
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }

    /// `set(elem)`.
    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }

    /// `map(elem)`.
    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }

    /// `object({...})` from `(name, type)` pairs.
    pub fn object<K: Into<Name>>(attrs: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object(ObjectType::new(attrs))
    }

    /// True for [`Type::Dynamic`].
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Type::Dynamic)
    }

    /// True when the type is `dynamic` or holds a `dynamic` position anywhere. Only there can
    /// two values that compare equal (`==` looks through dynamic wrappers) encode differently.
    pub fn has_dynamic(&self) -> bool {
        match self {
            Type::Bool | Type::Number | Type::String => false,
            Type::Dynamic => true,
            Type::List(e) | Type::Set(e) | Type::Map(e) => e.has_dynamic(),
            Type::Object(ot) => ot.attrs.values().any(Type::has_dynamic),
            Type::Tuple(ts) => ts.iter().any(Type::has_dynamic),
        }
    }

    /// The type as a `serde_json::Value` in Terraform's type JSON.
    pub fn to_json_value(&self) -> Json {
        match self {
            Type::Bool => Json::from("bool"),
            Type::Number => Json::from("number"),
            Type::String => Json::from("string"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(e) => Json::Array(vec![Json::from("list"), e.to_json_value()]),
            Type::Set(e) => Json::Array(vec![Json::from("set"), e.to_json_value()]),
            Type::Map(e) => Json::Array(vec![Json::from("map"), e.to_json_value()]),
            Type::Object(o) => {
                let attrs: serde_json::Map<String, Json> = o
                    .attrs
                    .iter()
                    .map(|(k, t)| (k.to_string(), t.to_json_value()))
                    .collect();
                let mut parts = vec![Json::from("object"), Json::Object(attrs)];
                if !o.optional.is_empty() {
                    parts.push(Json::Array(
                        o.optional.iter().map(|s| Json::from(s.as_str())).collect(),
                    ));
                }
                Json::Array(parts)
            }
            Type::Tuple(elems) => Json::Array(vec![
                Json::from("tuple"),
                Json::Array(elems.iter().map(Type::to_json_value).collect()),
            ]),
        }
    }

    /// The type in Terraform's type JSON, e.g. `["list","string"]`, as used
    /// for `Schema.Attribute.type` and inside dynamic values.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serialising a serde_json::Value to a Vec cannot fail.
        serde_json::to_vec(&self.to_json_value()).unwrap_or_default()
    }

    /// Parses Terraform's type JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Type, TypeError> {
        let v: Json = serde_json::from_slice(bytes).map_err(|e| TypeError(e.to_string()))?;
        Type::from_json_value(&v)
    }

    /// Parses Terraform's type JSON from an already parsed JSON value.
    pub fn from_json_value(v: &Json) -> Result<Type, TypeError> {
        type_from_json(v, 0)
    }
}

fn type_from_json(v: &Json, depth: usize) -> Result<Type, TypeError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(TypeError(format!(
            "nested deeper than {MAX_TYPE_DEPTH} levels"
        )));
    }
    match v {
        Json::String(s) => match s.as_str() {
            "bool" => Ok(Type::Bool),
            "number" => Ok(Type::Number),
            "string" => Ok(Type::String),
            "dynamic" => Ok(Type::Dynamic),
            other => Err(TypeError(format!("unknown primitive type {other:?}"))),
        },
        Json::Array(parts) => {
            let kind = parts
                .first()
                .and_then(Json::as_str)
                .ok_or_else(|| TypeError("type array must start with a kind string".into()))?;
            let elem = |parts: &[Json]| -> Result<Type, TypeError> {
                if parts.len() != 2 {
                    return Err(TypeError(format!(
                        "{kind} type needs exactly one element type"
                    )));
                }
                type_from_json(&parts[1], depth + 1)
            };
            match kind {
                "list" => Ok(Type::List(Box::new(elem(parts)?))),
                "set" => Ok(Type::Set(Box::new(elem(parts)?))),
                "map" => Ok(Type::Map(Box::new(elem(parts)?))),
                "tuple" => {
                    let elems = match parts.as_slice() {
                        [_, Json::Array(elems)] => elems,
                        _ => {
                            return Err(TypeError(
                                "tuple type needs an array of element types".into(),
                            ))
                        }
                    };
                    elems
                        .iter()
                        .map(|e| type_from_json(e, depth + 1))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Type::Tuple)
                }
                "object" => {
                    let (attrs, optional) = match parts.as_slice() {
                        [_, Json::Object(a)] => (a, None),
                        [_, Json::Object(a), Json::Array(o)] => (a, Some(o)),
                        _ => {
                            return Err(TypeError(
                                "object type needs an attribute map and optionally a list of optional names".into(),
                            ))
                        }
                    };
                    let mut ot = ObjectType::default();
                    for (name, t) in attrs {
                        ot.attrs
                            .insert(Name::from(name), type_from_json(t, depth + 1)?);
                    }
                    for o in optional.into_iter().flatten() {
                        let name = o.as_str().ok_or_else(|| {
                            TypeError("optional attribute names must be strings".into())
                        })?;
                        if !ot.attrs.contains_key(name) {
                            return Err(TypeError(format!(
                                "optional attribute {name:?} is not an attribute"
                            )));
                        }
                        ot.optional.insert(name.to_string());
                    }
                    Ok(Type::Object(ot))
                }
                other => Err(TypeError(format!("unknown type kind {other:?}"))),
            }
        }
        _ => Err(TypeError("a type must be a string or an array".into())),
    }
}

impl fmt::Display for Type {
    /// Short human names as used in error messages: `string`,
    /// `list of number`, `object`, `tuple`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Dynamic => f.write_str("dynamic"),
            Type::List(e) => write!(f, "list of {e}"),
            Type::Set(e) => write!(f, "set of {e}"),
            Type::Map(e) => write!(f, "map of {e}"),
            Type::Object(_) => f.write_str("object"),
            Type::Tuple(_) => f.write_str("tuple"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_positions_are_found_at_any_depth() {
        assert!(!Type::object([("a", Type::list(Type::String))]).has_dynamic());
        assert!(Type::Dynamic.has_dynamic());
        assert!(Type::object([("a", Type::map(Type::set(Type::Dynamic)))]).has_dynamic());
        assert!(Type::Tuple(vec![Type::Number, Type::list(Type::Dynamic)]).has_dynamic());
    }

    #[test]
    fn json_round_trip_table() {
        let cases: Vec<(Type, &str)> = vec![
            (Type::String, r#""string""#),
            (Type::Number, r#""number""#),
            (Type::Bool, r#""bool""#),
            (Type::Dynamic, r#""dynamic""#),
            (Type::list(Type::String), r#"["list","string"]"#),
            (Type::set(Type::Number), r#"["set","number"]"#),
            (
                Type::map(Type::list(Type::Bool)),
                r#"["map",["list","bool"]]"#,
            ),
            (
                Type::object([("b", Type::String), ("a", Type::Number)]),
                r#"["object",{"a":"number","b":"string"}]"#,
            ),
            (
                Type::Object(
                    ObjectType::new([("a", Type::Number), ("b", Type::String)])
                        .with_optional(["b"]),
                ),
                r#"["object",{"a":"number","b":"string"},["b"]]"#,
            ),
            (
                Type::Tuple(vec![Type::String, Type::Dynamic]),
                r#"["tuple",["string","dynamic"]]"#,
            ),
            (Type::Tuple(vec![]), r#"["tuple",[]]"#),
            (
                Type::object(Vec::<(String, Type)>::new()),
                r#"["object",{}]"#,
            ),
        ];
        for (t, json) in cases {
            assert_eq!(String::from_utf8(t.to_json_bytes()).expect("utf8"), json);
            assert_eq!(Type::from_json(json.as_bytes()), Ok(t));
        }
    }

    #[test]
    fn rejects_bad_type_json() {
        for bad in [
            "",
            "1",
            r#""str""#,
            r#"["list"]"#,
            r#"["list","string","x"]"#,
            r#"["foo","string"]"#,
            r#"["object",[]]"#,
            r#"["object",{"a":"string"},["b"]]"#,
            r#"["tuple","string"]"#,
            "[]",
            "{}",
        ] {
            assert!(
                Type::from_json(bad.as_bytes()).is_err(),
                "{bad} should fail"
            );
        }
        let deep = format!("{}\"string\"{}", "[\"list\",".repeat(100), "]".repeat(100));
        assert!(Type::from_json(deep.as_bytes()).is_err());
    }
}
