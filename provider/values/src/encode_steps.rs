//! The decisions the encoders share before they look at a value's shape.
//!
//! [`crate::json`] builds serde_json's tree and [`crate::json_text`] writes text, and the two
//! must agree on every value: the same `null`s, the same `{"type":..,"value":..}` wrappers, the
//! same errors with the same paths (the property tests compare them). What is common to both
//! lives here once, so that they cannot drift apart: the depth limit, nulls and unknowns,
//! dynamic wrappers, and which attributes an object writes, in which order. The msgpack encoder
//! has its own nulls, unknowns and wrappers, and shares the object walk and the errors.

use std::borrow::Cow;
use std::collections::btree_map;

use crate::error::EncodeError;
use crate::json::{eerr, UnknownAsNull};
use crate::msgpack::MAX_DEPTH;
use crate::name::Name;
use crate::types::{ObjectType, Type};
use crate::value::Value;
use crate::Fields;

/// What to write for a value, decided before its shape is looked at.
pub(crate) enum Lead<'v> {
    /// `null`: a null value, or an unknown one when unknowns are written as null.
    Null,
    /// The wrapper of a dynamic attribute, `{"type":..,"value":..}`, for this value of this
    /// type (the value's own when it carries one, else the type it infers).
    Dynamic(Cow<'v, Type>, &'v Value),
    /// This known value, to be written as the declared type says.
    Typed(&'v Value),
}

/// Decides [`Lead`] for `v`, a value of type `ty` at `depth`.
pub(crate) fn lead<'v>(
    v: &'v Value,
    ty: &Type,
    depth: usize,
    nulls: UnknownAsNull,
) -> Result<Lead<'v>, EncodeError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let mut v = v;
    loop {
        match v {
            Value::Null => return Ok(Lead::Null),
            Value::Unknown if nulls.0 => return Ok(Lead::Null),
            Value::Unknown => {
                return Err(eerr("value is not known; JSON cannot hold unknown values"));
            }
            Value::Dynamic(t, inner) if ty.is_dynamic() => {
                return Ok(Lead::Dynamic(Cow::Borrowed(t), inner.unwrap_dynamic()));
            }
            // A static type: the wrapper adds nothing to what is written.
            Value::Dynamic(_, inner) => v = inner,
            _ => break,
        }
    }
    if ty.is_dynamic() {
        return Ok(Lead::Dynamic(Cow::Owned(inferred_type(v)?), v));
    }
    Ok(Lead::Typed(v))
}

/// The type of a value at a dynamic position that carries none, or why it has none.
pub(crate) fn inferred_type(v: &Value) -> Result<Type, EncodeError> {
    v.infer_type()
        .ok_or_else(|| eerr("cannot tell the type of this value for a dynamic attribute"))
}

/// The error for a value nested deeper than [`MAX_DEPTH`].
pub(crate) fn too_deep() -> EncodeError {
    eerr(format!("value nested deeper than {MAX_DEPTH} levels"))
}

/// The error for a value whose shape is not the declared type's.
pub(crate) fn mismatch(ty: &Type, v: &Value) -> EncodeError {
    eerr(format!("expected {ty}, found {}", v.kind_name()))
}

/// The error for a tuple of the wrong length.
pub(crate) fn tuple_length(expected: usize, found: usize) -> EncodeError {
    eerr(format!(
        "expected a tuple of {expected} elements, found {found}"
    ))
}

/// Every attribute of object type `ot` with its type and its value in `fields` (null where
/// absent), in name order; or the first attribute of `fields` that `ot` does not declare.
///
/// Both lists are sorted by name, so this is one merge, with no lookups.
pub(crate) fn object_attributes<'a>(
    ot: &'a ObjectType,
    fields: &'a Fields,
) -> Result<ObjectAttributes<'a>, EncodeError> {
    let mut declared = ot.attrs.keys().peekable();
    for name in fields.keys() {
        loop {
            match declared.next_if(|d| d.as_str() <= name.as_str()) {
                Some(d) if d.as_str() == name.as_str() => break,
                Some(_) => {}
                None => return Err(eerr(format!("unsupported attribute {name:?}"))),
            }
        }
    }
    Ok(ObjectAttributes {
        declared: ot.attrs.iter(),
        fields: fields.as_slice(),
    })
}

/// See [`object_attributes`].
pub(crate) struct ObjectAttributes<'a> {
    declared: btree_map::Iter<'a, Name, Type>,
    /// What is left of the value's entries, every name among those still to come.
    fields: &'a [(Name, Value)],
}

static NULL: Value = Value::Null;

impl<'a> Iterator for ObjectAttributes<'a> {
    type Item = (&'a Name, &'a Type, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, ty) = self.declared.next()?;
        match self.fields.split_first() {
            Some(((k, v), rest)) if k.as_str() == name.as_str() => {
                self.fields = rest;
                Some((name, ty, v))
            }
            _ => Some((name, ty, &NULL)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.declared.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> Fields {
        names
            .iter()
            .map(|n| (Name::from(n.to_string()), Value::String((*n).into())))
            .collect()
    }

    fn object(names: &[&'static str]) -> ObjectType {
        ObjectType::new(names.iter().map(|n| (*n, Type::String)))
    }

    #[test]
    fn object_attributes_fill_absent_ones_with_null_in_name_order() {
        let ot = object(&["a", "b", "c", "d"]);
        let got: Vec<_> = object_attributes(&ot, &fields(&["b", "d"]))
            .map_err(|e| e.message)
            .expect("every attribute is declared")
            .map(|(n, _, v)| (n.as_str().to_owned(), v.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".to_owned(), Value::Null),
                ("b".to_owned(), Value::String("b".into())),
                ("c".to_owned(), Value::Null),
                ("d".to_owned(), Value::String("d".into())),
            ]
        );
    }

    #[test]
    fn object_attributes_name_the_first_undeclared_one() {
        let ot = object(&["b", "d"]);
        for (given, extra) in [
            (&["a", "b"][..], "a"),
            (&["b", "c", "z"][..], "c"),
            (&["b", "d", "e"][..], "e"),
            (&["bb"][..], "bb"),
        ] {
            let err = object_attributes(&ot, &fields(given))
                .err()
                .expect("an error");
            assert_eq!(
                err.message,
                format!("unsupported attribute {:?}", Name::from(extra.to_string()))
            );
        }
    }

    #[test]
    fn lead_sees_through_dynamic_wrappers_under_a_static_type() {
        let v = Value::Dynamic(
            Type::String,
            Box::new(Value::Dynamic(Type::String, Box::new(Value::Null))),
        );
        assert!(matches!(
            lead(&v, &Type::String, 0, UnknownAsNull(false)),
            Ok(Lead::Null)
        ));
        let deep = lead(
            &Value::Bool(true),
            &Type::Bool,
            MAX_DEPTH + 1,
            UnknownAsNull(false),
        );
        assert!(deep.is_err());
        assert!(lead(&Value::Unknown, &Type::Bool, 0, UnknownAsNull(false)).is_err());
        assert!(matches!(
            lead(&Value::Unknown, &Type::Bool, 0, UnknownAsNull(true)),
            Ok(Lead::Null)
        ));
    }
}
