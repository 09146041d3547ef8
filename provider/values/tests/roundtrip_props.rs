//! Property tests: any value of any type survives msgpack (and, when wholly
//! known, JSON) round trips, and decoding random bytes never panics. Tables
//! cover the cases we thought of; these cover the ones we did not.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Value as Json};
use tfvalue::{
    decode_json, decode_json_value, decode_msgpack, encode_json, encode_json_value,
    encode_json_value_unknown_as_null, encode_msgpack, write_json, write_json_unknown_as_null,
    write_json_without_null_attributes, EncodeError, Number, ObjectType, Type, Value,
};

fn leaf_type() -> impl Strategy<Value = Type> {
    prop_oneof![
        Just(Type::Bool),
        Just(Type::Number),
        Just(Type::String),
        Just(Type::Dynamic)
    ]
}

fn any_type() -> impl Strategy<Value = Type> {
    leaf_type().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Type::Tuple),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4).prop_map(|attrs| Type::Object(
                ObjectType {
                    attrs: attrs.into_iter().map(|(k, t)| (k.into(), t)).collect(),
                    optional: Default::default()
                }
            )),
        ]
    })
}

fn number() -> BoxedStrategy<Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Number::from),
        "-?[1-9][0-9]{0,40}(\\.[0-9]{1,30})?(e-?[0-9]{1,3})?"
            .prop_map(|s| Number::parse(&s).unwrap()),
    ]
    .boxed()
}

/// Any text, or text full of what JSON escapes (quotes, backslashes, control characters) beside
/// what it does not (DEL, `/`, non-ASCII, U+2028).
fn text(max: usize) -> BoxedStrategy<String> {
    let regex = |r: String| proptest::string::string_regex(&r).unwrap();
    prop_oneof![
        regex(format!(".{{0,{max}}}")),
        regex(format!(
            "[\"\\\\\\x00-\\x1f\\x7f/aé😀{}]{{0,{max}}}",
            '\u{2028}'
        )),
    ]
    .boxed()
}

/// A value of type `ty`; `Null`/`Unknown` anywhere with some probability.
fn value_of(ty: &Type, depth: u32) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => number().prop_map(Value::Number).boxed(),
        Type::String => text(12).prop_map(Value::from).boxed(),
        Type::Dynamic => {
            if depth > 3 {
                Just(Value::Null).boxed()
            } else {
                let d = depth;
                leaf_type()
                    .prop_filter("concrete", |t| !t.is_dynamic())
                    .prop_flat_map(move |t| {
                        value_of(&t, d + 1).prop_map(move |v| Value::dynamic(t.clone(), v))
                    })
                    .boxed()
            }
        }
        Type::List(e) => prop::collection::vec(value_of(e, depth + 1), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(e) => prop::collection::vec(value_of(e, depth + 1), 0..4)
            .prop_map(Value::set)
            .boxed(),
        Type::Map(e) => prop::collection::btree_map(text(4), value_of(e, depth + 1), 0..4)
            .prop_map(|m| Value::Map(m.into_iter().map(|(k, v)| (k.into(), v)).collect()))
            .boxed(),
        Type::Tuple(ts) => ts
            .iter()
            .map(|t| value_of(t, depth + 1))
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Object(ot) => ot
            .attrs
            .iter()
            .map(|(k, t)| {
                let k = k.clone();
                value_of(t, depth + 1).prop_map(move |v| (k.clone(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(|kvs| Value::Object(kvs.into_iter().collect()))
            .boxed(),
    };
    prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
}

fn type_and_value() -> impl Strategy<Value = (Type, Value)> {
    any_type().prop_flat_map(|t| value_of(&t, 0).prop_map(move |v| (t.clone(), v)))
}

/// JSON that is mostly of type `ty` (as Terraform's state is), with wrong shapes, coerced
/// leaves, nulls, absent and undeclared names mixed in.
fn json_near(ty: &Type) -> BoxedStrategy<Json> {
    let wrong = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i32>().prop_map(Json::from),
        "[a-z0-9.]{0,4}".prop_map(Json::from),
        Just(json!([])),
        Just(json!({})),
    ];
    let right: BoxedStrategy<Json> = match ty {
        Type::Bool => prop_oneof![
            any::<bool>().prop_map(Json::from),
            Just(json!("true")),
            Just(json!("false"))
        ]
        .boxed(),
        Type::Number => prop_oneof![
            any::<i64>().prop_map(Json::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Json::from),
            "-?[0-9]{1,25}(\\.[0-9]{1,5})?".prop_map(Json::from),
        ]
        .boxed(),
        Type::String => prop_oneof![
            ".{0,6}".prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            any::<bool>().prop_map(Json::from)
        ]
        .boxed(),
        Type::Dynamic => prop_oneof![
            ".{0,4}".prop_map(|s| json!({"type": "string", "value": s})),
            Just(json!({"type": ["list", "number"], "value": [1, "2"]})),
            Just(json!({"value": 1})),
        ]
        .boxed(),
        Type::List(e) | Type::Set(e) => prop::collection::vec(json_near(e), 0..4)
            .prop_map(Json::Array)
            .boxed(),
        Type::Map(e) => prop::collection::btree_map(".{0,3}", json_near(e), 0..4)
            .prop_map(|m| Json::Object(m.into_iter().collect()))
            .boxed(),
        Type::Tuple(ts) => (ts.iter().map(json_near).collect::<Vec<_>>(), 0..8u8)
            .prop_map(|(mut xs, roll)| {
                match roll {
                    0 => xs.push(Json::Null),
                    1 => {
                        xs.pop();
                    }
                    _ => {}
                }
                Json::Array(xs)
            })
            .boxed(),
        Type::Object(ot) => (
            ot.attrs
                .iter()
                .map(|(k, t)| {
                    let k = k.clone();
                    (json_near(t), 0..6u8).prop_map(move |(v, roll)| (k.clone(), v, roll))
                })
                .collect::<Vec<_>>(),
            0..8u8,
        )
            .prop_map(|(kvs, roll)| {
                let mut m = serde_json::Map::new();
                for (k, v, r) in kvs {
                    if r != 0 {
                        m.insert(k.to_string(), v);
                    }
                }
                if roll == 0 {
                    m.insert("zz_undeclared".into(), json!(1));
                }
                Json::Object(m)
            })
            .boxed(),
    };
    prop_oneof![1 => Just(Json::Null), 1 => wrong, 8 => right].boxed()
}

fn type_and_json() -> impl Strategy<Value = (Type, Json)> {
    any_type().prop_flat_map(|t| json_near(&t).prop_map(move |j| (t.clone(), j)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn msgpack_round_trip((ty, v) in type_and_value()) {
        let bytes = encode_msgpack(&v, &ty).unwrap();
        let back = decode_msgpack(&bytes, &ty).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(encode_msgpack(&back, &ty).unwrap(), bytes);
    }

    #[test]
    fn json_round_trip((ty, v) in type_and_value()) {
        if v.is_known() {
            let bytes = encode_json(&v, &ty).unwrap();
            let back = decode_json(&bytes, &ty).unwrap();
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(encode_json(&back, &ty).unwrap(), bytes);
        } else {
            prop_assert!(encode_json(&v, &ty).is_err());
        }
    }

    #[test]
    fn type_json_round_trip(ty in any_type()) {
        prop_assert_eq!(Type::from_json(&ty.to_json_bytes()).unwrap(), ty);
    }

    #[test]
    fn garbage_never_panics(ty in any_type(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_msgpack(&bytes, &ty);
        let _ = decode_json(&bytes, &ty);
        let _ = Type::from_json(&bytes);
    }

    /// `write_json` writes text straight from values; `encode_json_value` builds serde_json's
    /// tree. Printed by serde_json, the tree must be the same text, or both fail alike.
    #[test]
    fn json_text_is_the_trees_text((ty, v) in type_and_value()) {
        prop_assert_eq!(text_of(&v, &ty, false), tree_text(&v, &ty, false));
        prop_assert_eq!(text_of(&v, &ty, true), tree_text(&v, &ty, true));
    }

    /// The same for values of another type: the same error at the same path.
    #[test]
    fn json_text_fails_like_the_tree(ty in any_type(), (_, v) in type_and_value()) {
        prop_assert_eq!(text_of(&v, &ty, true), tree_text(&v, &ty, true));
    }

    /// Leaving null attributes out changes the text, never the value read back, and fails
    /// where the full text fails.
    #[test]
    fn json_without_null_attributes_reads_back_the_same_value(
        ty in any_type(),
        (_, v) in type_and_value(),
    ) {
        let full = text_of(&v, &ty, true);
        let mut short = String::new();
        let written = write_json_without_null_attributes(&v, &ty, &mut short);
        prop_assert_eq!(written.is_ok(), full.is_ok());
        if let Ok(full) = full {
            prop_assert!(short.len() <= full.len());
            let a = decode_json(full.as_bytes(), &ty).map_err(|e| e.to_string());
            let b = decode_json(short.as_bytes(), &ty).map_err(|e| e.to_string());
            prop_assert_eq!(a, b);
        } else {
            prop_assert!(short.is_empty());
        }
    }

    /// `decode_json` reads bytes straight into values; `decode_json_value` goes through
    /// serde_json's tree. They must agree on every input: the same value, or the same error.
    #[test]
    fn json_direct_decoding_agrees_with_the_tree_decoder((ty, j) in type_and_json()) {
        let bytes = serde_json::to_vec(&j).unwrap();
        let direct = decode_json(&bytes, &ty).map_err(|e| e.to_string());
        let tree = decode_json_value(&j, &ty).map_err(|e| e.to_string());
        prop_assert_eq!(direct, tree);
    }
}

fn text_of(v: &Value, ty: &Type, unknown_as_null: bool) -> Result<String, EncodeError> {
    let mut out = String::new();
    if unknown_as_null {
        write_json_unknown_as_null(v, ty, &mut out)?;
    } else {
        write_json(v, ty, &mut out)?;
    }
    Ok(out)
}

fn tree_text(v: &Value, ty: &Type, unknown_as_null: bool) -> Result<String, EncodeError> {
    let tree = if unknown_as_null {
        encode_json_value_unknown_as_null(v, ty)?
    } else {
        encode_json_value(v, ty)?
    };
    Ok(serde_json::to_string(&tree).unwrap())
}

#[test]
fn null_attributes_are_left_out_at_every_depth_and_map_values_are_kept() {
    let ty = Type::Object(ObjectType::new([
        ("a", Type::String),
        ("b", Type::Number),
        (
            "inner",
            Type::Object(ObjectType::new([("x", Type::String), ("y", Type::Bool)])),
        ),
        ("list", Type::list(Type::String)),
        ("map", Type::map(Type::String)),
    ]));
    let v = Value::object([
        ("a", Value::Null),
        ("b", Value::Unknown),
        (
            "inner",
            Value::object([("x", Value::Null), ("y", Value::Bool(true))]),
        ),
        ("list", Value::list([Value::Null, Value::string("s")])),
        ("map", Value::map([("k", Value::Null)])),
    ]);
    let mut out = String::new();
    write_json_without_null_attributes(&v, &ty, &mut out).unwrap();
    assert_eq!(
        out,
        r#"{"inner":{"y":true},"list":[null,"s"],"map":{"k":null}}"#
    );
    let all_null = Value::object([
        ("a", Value::Null),
        ("b", Value::Null),
        ("inner", Value::Null),
        ("list", Value::Null),
        ("map", Value::Null),
    ]);
    out.clear();
    write_json_without_null_attributes(&all_null, &ty, &mut out).unwrap();
    assert_eq!(out, "{}");
    assert_eq!(decode_json(out.as_bytes(), &ty).unwrap(), all_null);
}
