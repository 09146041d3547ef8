//! Terraform values: null, unknown and known values of any type.
//!
//! Values are decoded once at the gRPC boundary and then handled as plain
//! Rust data. `Null` and `Unknown` are untyped here: the codecs always get
//! the [`Type`] alongside, and the schema gives every other consumer the
//! type, so repeating it in every value would only add ways to disagree.
//!
//! Dynamic positions (attributes of type `dynamic`) are the one place where
//! the type travels with the value on the wire; decoders wrap such a value
//! as [`Value::Dynamic`] holding its concrete type, so it can be encoded back
//! identically. A bare `Null`/`Unknown` at a dynamic position is cty's
//! untyped null/unknown. Accessors and equality look through the wrapper.

use crate::fields::Fields;
use crate::name::Name;
use crate::number::Number;
use crate::path::{AttributePath, PathStep};
use crate::types::{ObjectType, Type};
pub use smol_str::SmolStr;

/// A Terraform value.
#[derive(Clone, Debug)]
pub enum Value {
    /// `null` of whatever type the position has.
    Null,
    /// Not known until apply (unrefined; refinements are dropped on decode).
    Unknown,
    /// A known bool.
    Bool(bool),
    /// A known number.
    Number(Number),
    /// A known string: inline up to 23 bytes, shared beyond (decoding a state allocates
    /// only its long strings, and a clone of one is a reference count).
    String(SmolStr),
    /// A list; elements are values of the list's element type.
    List(Vec<Value>),
    /// A set; order carries no meaning and equality ignores it. Decoders
    /// drop duplicate wholly known elements.
    Set(Vec<Value>),
    /// A map with string keys.
    Map(Fields),
    /// An object; decoders always fill every attribute of the type
    /// (missing ones as `Null`).
    Object(Fields),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A value at a `dynamic` position with its concrete type (the inner
    /// value may be a typed null or unknown). Never produced for positions
    /// of a concrete type.
    Dynamic(Type, Box<Value>),
}

impl Value {
    /// An object value from `(name, value)` pairs.
    pub fn object<K: Into<Name>>(attrs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A map value from `(key, value)` pairs.
    pub fn map<K: Into<Name>>(elems: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(elems.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A list value.
    pub fn list(elems: impl IntoIterator<Item = Value>) -> Value {
        Value::List(elems.into_iter().collect())
    }

    /// A set value; duplicate wholly known elements are dropped.
    pub fn set(elems: impl IntoIterator<Item = Value>) -> Value {
        Value::Set(dedup_set(elems.into_iter().collect()))
    }

    /// A tuple value.
    pub fn tuple(elems: impl IntoIterator<Item = Value>) -> Value {
        Value::Tuple(elems.into_iter().collect())
    }

    /// A string value.
    pub fn string(s: impl Into<SmolStr>) -> Value {
        Value::String(s.into())
    }

    /// A number value.
    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }

    /// A value at a dynamic position, tagged with its concrete type.
    pub fn dynamic(ty: Type, v: Value) -> Value {
        Value::Dynamic(ty, Box::new(v))
    }

    /// An object of type `ty` whose attributes are all unknown, e.g. the
    /// planned value of a resource about to be created before any attribute
    /// is filled in.
    pub fn unknown_of(ty: &ObjectType) -> Value {
        Value::Object(Fields::from_sorted_vec(
            ty.attrs
                .keys()
                .map(|k| (k.clone(), Value::Unknown))
                .collect(),
        ))
    }

    /// An object of type `ty` whose attributes are all null.
    pub fn null_of(ty: &ObjectType) -> Value {
        Value::Object(Fields::from_sorted_vec(
            ty.attrs.keys().map(|k| (k.clone(), Value::Null)).collect(),
        ))
    }

    /// The value with any [`Value::Dynamic`] wrappers removed.
    pub fn unwrap_dynamic(&self) -> &Value {
        let mut v = self;
        while let Value::Dynamic(_, inner) = v {
            v = inner;
        }
        v
    }

    /// True for null (also null inside a dynamic wrapper).
    pub fn is_null(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Null)
    }

    /// True when this value itself is unknown (not looking inside).
    pub fn is_unknown(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Unknown)
    }

    /// True when no unknown appears anywhere in the value.
    pub fn is_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
            Value::List(xs) | Value::Set(xs) | Value::Tuple(xs) => xs.iter().all(Value::is_known),
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_known),
            Value::Dynamic(_, v) => v.is_known(),
        }
    }

    /// An attribute of an object or an element of a map.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self.unwrap_dynamic() {
            Value::Object(m) | Value::Map(m) => m.get(name),
            _ => None,
        }
    }

    /// An element of a list, tuple or (by stored position) set.
    pub fn index(&self, i: usize) -> Option<&Value> {
        self.as_elements().and_then(|xs| xs.get(i))
    }

    /// The value at a path, if every step exists.
    pub fn get_path(&self, path: &AttributePath) -> Option<&Value> {
        let mut v = self;
        for step in &path.steps {
            v = match step {
                PathStep::Attribute(a) | PathStep::ElementKeyString(a) => v.get(a)?,
                PathStep::ElementKeyInt(i) => v.index(usize::try_from(*i).ok()?)?,
            };
        }
        Some(v)
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The bool, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as the nearest f64 (see [`Number::as_f64`]).
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().map(Number::as_f64)
    }

    /// The number as i64, only when exact.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The number as u64, only when exact.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    /// The elements of a list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::List(xs) | Value::Set(xs) | Value::Tuple(xs) => Some(xs),
            _ => None,
        }
    }

    /// The entries of a map or the attributes of an object.
    pub fn as_entries(&self) -> Option<&Fields> {
        match self.unwrap_dynamic() {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// A short name of the value's kind for messages (`string`, `list`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Tuple(_) => "tuple",
            Value::Dynamic(_, v) => v.kind_name(),
        }
    }

    /// The concrete type of a known value, as needed to encode it at a
    /// dynamic position. `None` for null/unknown, for collections whose
    /// elements disagree, and for values whose type cannot be told (an
    /// empty list is taken as `list(dynamic)`, a null attribute as
    /// `dynamic`).
    pub fn infer_type(&self) -> Option<Type> {
        fn elem_type(xs: &[Value]) -> Option<Type> {
            let mut found: Option<Type> = None;
            for x in xs {
                if x.is_null() || x.is_unknown() {
                    continue;
                }
                let t = x.infer_type()?;
                match &found {
                    Some(f) if *f != t => return None,
                    Some(_) => {}
                    None => found = Some(t),
                }
            }
            Some(found.unwrap_or(Type::Dynamic))
        }
        fn or_dynamic(v: &Value) -> Option<Type> {
            if v.is_null() || v.is_unknown() {
                Some(Type::Dynamic)
            } else {
                v.infer_type()
            }
        }
        match self {
            Value::Null | Value::Unknown => None,
            Value::Bool(_) => Some(Type::Bool),
            Value::Number(_) => Some(Type::Number),
            Value::String(_) => Some(Type::String),
            Value::List(xs) => elem_type(xs).map(Type::list),
            Value::Set(xs) => elem_type(xs).map(Type::set),
            Value::Map(m) => elem_type(&m.values().cloned().collect::<Vec<_>>()).map(Type::map),
            Value::Object(m) => {
                let mut ot = ObjectType::default();
                for (k, v) in m {
                    ot.attrs.insert(k.clone(), or_dynamic(v)?);
                }
                Some(Type::Object(ot))
            }
            Value::Tuple(xs) => xs
                .iter()
                .map(or_dynamic)
                .collect::<Option<Vec<_>>>()
                .map(Type::Tuple),
            Value::Dynamic(t, _) => Some(t.clone()),
        }
    }

    /// Visits every value, outermost first, with its path. Dynamic
    /// wrappers are transparent (not visited separately).
    pub fn walk<F: FnMut(&AttributePath, &Value)>(&self, mut f: F) {
        let mut path = AttributePath::root();
        walk_inner(self, &mut path, &mut f);
    }

    /// Paths of every value for which `pred` holds, e.g.
    /// `v.paths_where(Value::is_unknown)`.
    pub fn paths_where<P: FnMut(&Value) -> bool>(&self, mut pred: P) -> Vec<AttributePath> {
        let mut out = Vec::new();
        self.walk(|p, v| {
            if pred(v) {
                out.push(p.clone());
            }
        });
        out
    }
}

fn walk_inner<F: FnMut(&AttributePath, &Value)>(v: &Value, path: &mut AttributePath, f: &mut F) {
    let v = v.unwrap_dynamic();
    f(path, v);
    match v {
        Value::List(xs) | Value::Set(xs) | Value::Tuple(xs) => {
            for (i, x) in xs.iter().enumerate() {
                path.push(PathStep::ElementKeyInt(i as i64));
                walk_inner(x, path, f);
                path.pop();
            }
        }
        Value::Map(m) => {
            for (k, x) in m {
                path.push(PathStep::ElementKeyString(k.to_string()));
                walk_inner(x, path, f);
                path.pop();
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                path.push(PathStep::Attribute(k.to_string()));
                walk_inner(x, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Drops duplicate wholly known elements, keeping the first occurrence.
/// Unknown-containing elements are kept: they may turn out distinct.
/// Uses canonical keys so a hostile set of a million elements costs
/// O(n log n), not O(n^2); sets of a few elements (state's usual) are
/// compared pairwise with `==`, which agrees with the keys, without
/// building any.
pub(crate) fn dedup_set(elems: Vec<Value>) -> Vec<Value> {
    const PAIRWISE_MAX: usize = 8;
    if elems.len() <= 1 {
        return elems;
    }
    if elems.len() <= PAIRWISE_MAX {
        let mut out: Vec<Value> = Vec::with_capacity(elems.len());
        for e in elems {
            if e.is_known() && out.iter().any(|kept| kept.is_known() && *kept == e) {
                continue;
            }
            out.push(e);
        }
        return out;
    }
    dedup_by_keys(elems)
}

fn dedup_by_keys(elems: Vec<Value>) -> Vec<Value> {
    let mut seen = std::collections::HashSet::with_capacity(elems.len());
    let mut out: Vec<Value> = Vec::with_capacity(elems.len());
    for e in elems {
        if e.is_known() && !seen.insert(canonical_key(&e)) {
            continue;
        }
        out.push(e);
    }
    out
}

/// A string that is equal for two values exactly when they are `==`:
/// numbers by [`Number::canonical_key`] (cty's equality), set elements
/// sorted, dynamic wrappers dropped. Every part is self-delimiting.
fn canonical_key(v: &Value) -> String {
    fn push(v: &Value, out: &mut String) {
        match v.unwrap_dynamic() {
            Value::Null => out.push('n'),
            Value::Unknown => out.push('u'),
            Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
            Value::Number(n) => {
                out.push('#');
                out.push_str(&n.canonical_key());
                out.push(';');
            }
            Value::String(s) => push_str(s, out),
            Value::List(xs) | Value::Tuple(xs) => {
                out.push(if matches!(v.unwrap_dynamic(), Value::List(_)) {
                    '['
                } else {
                    '('
                });
                for x in xs {
                    push(x, out);
                }
                out.push(']');
            }
            Value::Set(xs) => {
                let mut keys: Vec<String> = xs.iter().map(canonical_key).collect();
                keys.sort_unstable();
                out.push('{');
                keys.iter().for_each(|k| out.push_str(k));
                out.push('}');
            }
            Value::Map(m) | Value::Object(m) => {
                out.push(if matches!(v.unwrap_dynamic(), Value::Map(_)) {
                    'm'
                } else {
                    'o'
                });
                for (k, x) in m {
                    push_str(k, out);
                    push(x, out);
                }
                out.push('}');
            }
            Value::Dynamic(..) => {}
        }
    }
    fn push_str(s: &str, out: &mut String) {
        out.push('s');
        out.push_str(&s.len().to_string());
        out.push(':');
        out.push_str(s);
    }
    let mut out = String::new();
    push(v, &mut out);
    out
}

impl PartialEq for Value {
    /// Structural equality: numbers by value, sets ignoring order, dynamic
    /// wrappers ignored. `Unknown == Unknown` (same shape, not same value).
    fn eq(&self, other: &Value) -> bool {
        match (self.unwrap_dynamic(), other.unwrap_dynamic()) {
            (Value::Null, Value::Null) | (Value::Unknown, Value::Unknown) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => a == b,
            (Value::Map(a), Value::Map(b)) | (Value::Object(a), Value::Object(b)) => a == b,
            (Value::Set(a), Value::Set(b)) => set_eq(a, b),
            _ => false,
        }
    }
}

/// Multiset equality via sorted canonical keys (O(n log n)).
fn set_eq(a: &[Value], b: &[Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Sets decoded from Terraform come in cty's order, so equal ones are nearly always equal
    // element by element, and equal in the same order is equal as multisets.
    if a.iter().zip(b).all(|(x, y)| x == y) {
        return true;
    }
    let keys = |xs: &[Value]| {
        let mut k: Vec<String> = xs.iter().map(canonical_key).collect();
        k.sort_unstable();
        k
    };
    keys(a) == keys(b)
}

/// Names of the top-level attributes whose values differ between two
/// object values, sorted. A missing attribute counts as null, and a null or
/// unknown object counts as all its attributes null or unknown. Non-object
/// inputs that differ yield no names (compare them with `==`).
pub fn changed_attributes(a: &Value, b: &Value) -> Vec<String> {
    let (a, b) = (a.unwrap_dynamic(), b.unwrap_dynamic());
    let names: std::collections::BTreeSet<&Name> = a
        .as_entries()
        .into_iter()
        .chain(b.as_entries())
        .flat_map(|m| m.keys())
        .collect();
    let attr = |v: &Value, k: &str| -> Value {
        match v {
            Value::Unknown => Value::Unknown,
            _ => v.get(k).cloned().unwrap_or(Value::Null),
        }
    };
    names
        .into_iter()
        .filter(|k| attr(a, k) != attr(b, k))
        .map(|k| k.to_string())
        .collect()
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(SmolStr::new(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(SmolStr::from(s))
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(n.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Number(n.into())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n.into())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` becomes null.
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline strings and decimal digits must not make every value larger: the dynamic
    /// variant (a type and a box) sets the size, and numbers and strings fit beside it.
    #[test]
    fn inline_strings_and_digits_keep_values_at_64_bytes() {
        assert!(std::mem::size_of::<Value>() <= 64);
        let short = Value::from("eu-north-1");
        let long = Value::from("best hybrid score 77.9 of 3,742 feasible candidates");
        assert!(matches!(&short, Value::String(s) if !s.is_heap_allocated()));
        assert!(matches!(&long, Value::String(s) if s.is_heap_allocated()));
        assert_eq!(long.clone().as_str(), long.as_str());
    }

    /// Small sets are deduplicated pairwise with `==`, large ones by canonical keys: the two
    /// must keep the same elements, in the same order, for every mix of look-alikes.
    #[test]
    fn small_sets_deduplicate_as_the_canonical_keys_do() {
        let n = |s: &str| Value::Number(Number::parse(s).expect("number"));
        let tricky = [
            Value::Null,
            Value::Unknown,
            n("1"),
            Value::Number(Number::from(1.0)),
            n("0.1"),
            Value::Number(Number::from(0.1)),
            Value::from("1"),
            Value::from(true),
            Value::set([n("1"), n("2")]),
            Value::set([n("2"), n("1")]),
            Value::list([n("1"), Value::Unknown]),
            Value::object([("a", n("1"))]),
            Value::Map(Fields::from_iter([(Name::from("a"), n("1.0"))])),
        ];
        let k = tricky.len();
        for a in 0..k {
            for b in 0..k {
                for c in 0..k {
                    for d in [a, (a + b) % k, (b + c) % k] {
                        let elems = vec![
                            tricky[a].clone(),
                            tricky[b].clone(),
                            tricky[c].clone(),
                            tricky[d].clone(),
                        ];
                        assert_eq!(
                            format!("{:?}", dedup_set(elems.clone())),
                            format!("{:?}", dedup_by_keys(elems)),
                            "{a} {b} {c} {d}"
                        );
                    }
                }
            }
        }
    }

    fn sample() -> Value {
        Value::object([
            ("name", Value::from("web")),
            ("cpu", Value::from(2i64)),
            ("tags", Value::set(["a".into(), "b".into(), "a".into()])),
            (
                "placement",
                Value::object([(
                    "scores",
                    Value::map([("cost", Value::Unknown), ("latency", Value::from(0.5))]),
                )]),
            ),
            (
                "user_locations",
                Value::list([
                    Value::object([("lat", Value::Unknown)]),
                    Value::object([("lat", 1.0.into())]),
                ]),
            ),
        ])
    }

    #[test]
    fn accessors() {
        let v = sample();
        assert_eq!(v.get("name").and_then(Value::as_str), Some("web"));
        assert_eq!(v.get("cpu").and_then(Value::as_i64), Some(2));
        assert_eq!(v.get("cpu").and_then(Value::as_f64), Some(2.0));
        assert_eq!(
            v.get("tags")
                .and_then(Value::as_elements)
                .map(<[Value]>::len),
            Some(2)
        );
        assert!(!v.is_known());
        assert!(v.get("name").is_some_and(Value::is_known));
        assert!(v.get("missing").is_none());
        let p = AttributePath::root()
            .attr("user_locations")
            .index(1)
            .attr("lat");
        assert_eq!(v.get_path(&p).and_then(Value::as_f64), Some(1.0));
        let dynamic = Value::dynamic(Type::String, "x".into());
        assert_eq!(dynamic.as_str(), Some("x"));
        assert_eq!(Value::from(Some(true)).as_bool(), Some(true));
        assert!(Value::from(None::<bool>).is_null());
    }

    #[test]
    fn unknown_paths() {
        let paths: Vec<String> = sample()
            .paths_where(Value::is_unknown)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            paths,
            vec!["placement.scores[\"cost\"]", "user_locations[0].lat"]
        );
    }

    #[test]
    fn set_equality_ignores_order() {
        let a = Value::set([1i64.into(), 2i64.into(), 3i64.into()]);
        let b = Value::set([3i64.into(), 1i64.into(), 2i64.into()]);
        assert_eq!(a, b);
        assert_ne!(a, Value::set([1i64.into(), 2i64.into()]));
        assert_ne!(a, Value::list([1i64.into(), 2i64.into(), 3i64.into()]));
        assert_ne!(
            Value::list([1i64.into(), 2i64.into()]),
            Value::list([2i64.into(), 1i64.into()])
        );
        assert_eq!(Value::from(1i64), Value::from(1.0));
    }

    #[test]
    fn canonical_keys_agree_with_equality() {
        let vals = vec![
            Value::Null,
            Value::Unknown,
            Value::from(true),
            Value::from(1i64),
            Value::from(1.0),
            Value::from(0.1),
            Value::Number(Number::parse("0.1").expect("number")),
            Value::from(""),
            Value::from("1"),
            Value::list([1i64.into()]),
            Value::tuple([1i64.into()]),
            Value::set([1i64.into(), 2i64.into()]),
            Value::set([2i64.into(), 1.0.into()]),
            Value::map([("a", Value::Null)]),
            Value::object([("a", Value::Null)]),
            Value::dynamic(Type::String, "1".into()),
            Value::list([Value::from("ab"), Value::from("c")]),
            Value::list([Value::from("a"), Value::from("bc")]),
        ];
        for a in &vals {
            for b in &vals {
                assert_eq!(
                    canonical_key(a) == canonical_key(b),
                    a == b,
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn large_sets_are_fast() {
        let xs: Vec<Value> = (0..50_000i64).map(Value::from).collect();
        let mut ys = xs.clone();
        ys.reverse();
        let a = Value::set(xs);
        assert_eq!(a, Value::set(ys));
    }

    #[test]
    fn changed_attributes_table() {
        let a = Value::object([
            ("x", 1i64.into()),
            ("s", Value::set(["a".into(), "b".into()])),
            ("n", Value::Null),
        ]);
        let b = Value::object([
            ("x", 2i64.into()),
            ("s", Value::set(["b".into(), "a".into()])),
            ("y", "new".into()),
        ]);
        assert_eq!(changed_attributes(&a, &b), vec!["x", "y"]);
        assert_eq!(changed_attributes(&a, &a), Vec::<String>::new());
        assert_eq!(changed_attributes(&Value::Null, &b), vec!["s", "x", "y"]);
        assert_eq!(changed_attributes(&Value::Unknown, &b), vec!["s", "x", "y"]);
    }

    #[test]
    fn infer_types() {
        assert_eq!(
            Value::list([]).infer_type(),
            Some(Type::list(Type::Dynamic))
        );
        assert_eq!(
            Value::list(["a".into(), Value::Null]).infer_type(),
            Some(Type::list(Type::String))
        );
        assert_eq!(Value::list(["a".into(), 1i64.into()]).infer_type(), None);
        assert_eq!(
            Value::object([("a", Value::Null), ("b", true.into())]).infer_type(),
            Some(Type::object([("a", Type::Dynamic), ("b", Type::Bool)]))
        );
        assert_eq!(Value::Null.infer_type(), None);
    }

    #[test]
    fn unknown_of_object() {
        let t = ObjectType::new([("id", Type::String), ("n", Type::Number)]);
        let v = Value::unknown_of(&t);
        assert_eq!(v.paths_where(Value::is_unknown).len(), 2);
        assert!(Value::null_of(&t).get("id").is_some_and(Value::is_null));
    }
}
