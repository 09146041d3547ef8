//! JSON straight into [`Value`]s, without serde_json's tree in between.
//!
//! Every refresh, re-plan and destroy starts with UpgradeResourceState, which hands over the
//! stored state as JSON; decoding it through a `serde_json::Value` first allocated every key and
//! string twice and was the largest single cost of a re-plan. Here the [`Type`] drives serde's
//! deserializer directly.
//!
//! This path only ever answers for input it decodes exactly as [`crate::json`]'s tree decoder
//! would; anything it refuses (malformed JSON, wrong types, undeclared names, too deep) is
//! decoded again by the tree decoder, whose errors, with their attribute paths, are the ones
//! reported. Leaves (bool, number, string) and dynamic values go through the tree decoder's own
//! rules, so the coercions (`"true"`, numbers as strings) cannot differ.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::fields::Fields;
use crate::json::decode_leaf;
use crate::msgpack::MAX_DEPTH;
use crate::name::Name;
use crate::types::Type;
use crate::value::{dedup_set, Value};

/// Decodes `bytes` as a value of type `ty`, or `None` when the tree decoder must (it then
/// either decodes it the same way or says what is wrong).
pub(crate) fn decode(bytes: &[u8], ty: &Type) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Seed { ty, depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// The type expected at one position, and how deep that position is.
#[derive(Clone, Copy)]
struct Seed<'t> {
    ty: &'t Type,
    depth: usize,
}

impl<'t> Seed<'t> {
    fn child(self, ty: &'t Type) -> Seed<'t> {
        Seed {
            ty,
            depth: self.depth + 1,
        }
    }
}

/// Only says "refused": the tree decoder finds the real error.
fn refused<E: de::Error>() -> E {
    E::custom("refused")
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(refused());
        }
        match self.ty {
            Type::Bool | Type::Number | Type::String | Type::Dynamic => {
                let j = Json::deserialize(d)?;
                decode_leaf(j, self.ty, self.depth).map_err(|_| refused())
            }
            // `null` or the container itself.
            _ => d.deserialize_option(self),
        }
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} or null", self.ty)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.ty {
            Type::List(_) | Type::Set(_) | Type::Tuple(_) => d.deserialize_seq(Container(self)),
            Type::Map(_) | Type::Object(_) => d.deserialize_map(Container(self)),
            _ => Err(refused()),
        }
    }
}

/// A list, set, tuple, map or object that is there (not null).
struct Container<'t>(Seed<'t>);

impl<'de> Visitor<'de> for Container<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.ty)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let seed = self.0;
        match seed.ty {
            Type::List(e) | Type::Set(e) => {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(v) = seq.next_element_seed(seed.child(e))? {
                    out.push(v);
                }
                Ok(if matches!(seed.ty, Type::Set(_)) {
                    Value::Set(dedup_set(out))
                } else {
                    Value::List(out)
                })
            }
            Type::Tuple(ts) => {
                let mut out = Vec::with_capacity(ts.len());
                for t in ts {
                    out.push(seq.next_element_seed(seed.child(t))?.ok_or_else(refused)?);
                }
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(refused());
                }
                Ok(Value::Tuple(out))
            }
            _ => Err(refused()),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let seed = self.0;
        match seed.ty {
            Type::Map(e) => {
                // A repeated key keeps its last value, as in serde_json's own maps.
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
                while let Some(k) = map.next_key_seed(KeySeed)? {
                    let v = map.next_value_seed(seed.child(e))?;
                    out.push((Name::owned(&k), v));
                }
                Ok(Value::Map(out.into_iter().collect::<Fields>()))
            }
            Type::Object(ot) => {
                // Terraform writes names sorted: each is found by walking the declared names
                // alongside, and looked up only when out of order.
                let mut given: Vec<(Name, Value)> = Vec::with_capacity(ot.attrs.len());
                let mut declared = ot.attrs.iter().peekable();
                while let Some(k) = map.next_key_seed(KeySeed)? {
                    let k: &str = &k;
                    while declared.next_if(|(name, _)| name.as_str() < k).is_some() {}
                    let (name, t) = match declared.next_if(|(name, _)| name.as_str() == k) {
                        Some(found) => found,
                        None => ot.attrs.get_key_value(k).ok_or_else(refused)?,
                    };
                    let v = map.next_value_seed(seed.child(t))?;
                    given.push((name.clone(), v));
                }
                // Sorted by name (a no-op for Terraform's order), the last of a repeated name
                // kept (as serde_json's maps do), absent names null.
                given.sort_by(|a, b| a.0.cmp(&b.0));
                let mut given = given.into_iter().peekable();
                let mut out = Vec::with_capacity(ot.attrs.len());
                for name in ot.attrs.keys() {
                    let mut found = None;
                    while let Some(entry) = given.next_if(|(k, _)| k == name) {
                        found = Some(entry);
                    }
                    out.push(found.unwrap_or_else(|| (name.clone(), Value::Null)));
                }
                Ok(Value::Object(Fields::from_sorted_vec(out)))
            }
            _ => Err(refused()),
        }
    }
}

/// Reads an object key, borrowing it from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s))
    }
}
