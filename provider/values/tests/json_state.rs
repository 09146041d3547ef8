//! Checks the JSON codec on the shapes raw state and `DynamicValue.json`
//! take: exact numbers, lenient primitives, unknown attributes reported by
//! name, dynamic values as {"value","type"}.
#![allow(clippy::unwrap_used)]

use tfvalue::{
    decode_json, decode_json_value, decode_msgpack, encode_json, encode_msgpack, Number, Type,
    Value,
};

fn round_trip_bytes(json: &str, ty: &Type) {
    let v = decode_json(json.as_bytes(), ty).unwrap();
    let out = encode_json(&v, ty).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        json,
        "round trip of {json}"
    );
}

#[test]
fn exact_numbers_round_trip() {
    let ty = Type::object([("n", Type::Number)]);
    for json in [
        r#"{"n":1180591620717411303424}"#,
        r#"{"n":0.1}"#,
        r#"{"n":18446744073709551617}"#,
        r#"{"n":-9223372036854775808}"#,
        r#"{"n":123456789012345678901234567890.000000000000000000001}"#,
        r#"{"n":42}"#,
        r#"{"n":null}"#,
    ] {
        round_trip_bytes(json, &ty);
    }
    let v = decode_json(br#"{"n":1180591620717411303424}"#, &ty).unwrap();
    assert_eq!(
        v.get("n").and_then(Value::as_number),
        Some(&Number::from(2f64.powi(70)))
    );
    // 1e400 keeps its value; it is written back in plain digits.
    let v = decode_json(br#"{"n":1e400}"#, &ty).unwrap();
    let out = String::from_utf8(encode_json(&v, &ty).unwrap()).unwrap();
    assert_eq!(out.len(), r#"{"n":}"#.len() + 401);
    assert_eq!(decode_json(out.as_bytes(), &ty).unwrap(), v);
    // JSON and msgpack agree on the value.
    let mp = encode_msgpack(&v, &ty).unwrap();
    assert_eq!(decode_msgpack(&mp, &ty).unwrap(), v);
}

#[test]
fn whole_workload_round_trip() {
    let ty = Type::object([
        ("name", Type::String),
        ("tags", Type::set(Type::String)),
        ("labels", Type::map(Type::String)),
        ("pair", Type::Tuple(vec![Type::Bool, Type::Number])),
        ("extra", Type::Dynamic),
        (
            "locs",
            Type::list(Type::object([("lat", Type::Number), ("lon", Type::Number)])),
        ),
    ]);
    round_trip_bytes(
        r#"{"extra":{"type":["object",{"a":["list","string"]}],"value":{"a":["x"]}},"labels":{"team":"core"},"locs":[{"lat":52.5,"lon":null}],"name":"web","pair":[true,3],"tags":["a","b"]}"#,
        &ty,
    );
    round_trip_bytes(
        r#"{"extra":null,"labels":null,"locs":[],"name":null,"pair":null,"tags":[]}"#,
        &ty,
    );
}

#[test]
fn missing_attributes_are_null_and_extra_ones_are_named() {
    let ty = Type::object([("a", Type::String), ("b", Type::Number)]);
    let v = decode_json(br#"{"a":"x"}"#, &ty).unwrap();
    assert!(v.get("b").is_some_and(Value::is_null));
    let err = decode_json(br#"{"a":"x","old_one":1,"old_two":2}"#, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unsupported attributes "old_one", "old_two""#
    );
    let nested = Type::object([("p", ty.clone())]);
    let err = decode_json(br#"{"p":{"zz":true}}"#, &nested).unwrap_err();
    assert_eq!(err.to_string(), r#"p: unsupported attribute "zz""#);
    assert_eq!(err.path.to_string(), "p");
}

#[test]
fn errors_name_the_path() {
    let ty = Type::object([(
        "user_locations",
        Type::list(Type::object([
            ("lat", Type::Number),
            ("weight", Type::Number),
        ])),
    )]);
    let err = decode_json(
        br#"{"user_locations":[{"lat":1,"weight":1},{"lat":2,"weight":[]}]}"#,
        &ty,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "user_locations[1].weight: expected number, found array"
    );
    let err = decode_json(br#"{"user_locations":[{"lat":1,"weight":"heavy"}]}"#, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"user_locations[0].weight: invalid number "heavy": no digits"#
    );
    let err = decode_json(b"{not json", &ty).unwrap_err();
    assert!(err.to_string().starts_with("invalid JSON"));
    let err = decode_json(
        br#"{"m":{"k":1}}"#,
        &Type::object([("m", Type::map(Type::Bool))]),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), r#"m["k"]: expected bool, found number"#);
}

#[test]
fn lenient_primitives_like_cty() {
    assert_eq!(
        decode_json(br#""12.5""#, &Type::Number).unwrap(),
        Value::from(12.5)
    );
    assert_eq!(
        decode_json(b"12", &Type::String).unwrap(),
        Value::from("12")
    );
    assert_eq!(
        decode_json(b"true", &Type::String).unwrap(),
        Value::from("true")
    );
    assert_eq!(
        decode_json(br#""false""#, &Type::Bool).unwrap(),
        Value::from(false)
    );
    assert!(decode_json(br#""yes""#, &Type::Bool).is_err());
}

#[test]
fn unknown_cannot_be_written() {
    let ty = Type::object([("a", Type::list(Type::String))]);
    let v = Value::object([("a", Value::list(["x".into(), Value::Unknown]))]);
    let err = encode_json(&v, &ty).unwrap_err();
    assert_eq!(err.path.to_string(), "a[1]");
    assert!(err.to_string().contains("not known"));
    assert!(encode_json(&Value::from(f64::INFINITY), &Type::Number).is_err());
    assert!(encode_json(&Value::from(f64::NAN), &Type::Number).is_err());
}

#[test]
fn dynamic_values() {
    let v = decode_json(br#"{"value":"x","type":"string"}"#, &Type::Dynamic).unwrap();
    assert_eq!(v, Value::dynamic(Type::String, "x".into()));
    assert_eq!(
        String::from_utf8(encode_json(&v, &Type::Dynamic).unwrap()).unwrap(),
        r#"{"type":"string","value":"x"}"#
    );
    assert!(decode_json(b"null", &Type::Dynamic).unwrap().is_null());
    // a typed null keeps its type through a round trip
    let typed_null = decode_json(br#"{"value":null,"type":"number"}"#, &Type::Dynamic).unwrap();
    assert_eq!(typed_null, Value::dynamic(Type::Number, Value::Null));
    assert!(typed_null.is_null());
    let out = encode_json(&typed_null, &Type::Dynamic).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"type":"number","value":null}"#
    );
    assert_eq!(encode_json(&Value::Null, &Type::Dynamic).unwrap(), b"null");
    assert!(decode_json(br#"{"value":1}"#, &Type::Dynamic).is_err());
    assert!(decode_json(br#"{"value":1,"type":"strin"}"#, &Type::Dynamic).is_err());
    assert!(decode_json(br#"{"value":"x","type":"number"}"#, &Type::Dynamic).is_err());
    assert!(decode_json(br#""x""#, &Type::Dynamic).is_err());
    // a plain value at a dynamic position gets its inferred type
    let out = encode_json(&Value::list([1i64.into()]), &Type::Dynamic).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"type":["list","number"],"value":[1]}"#
    );
}

#[test]
fn sets_deduplicate_and_compare_unordered() {
    let ty = Type::set(Type::Number);
    let v = decode_json(b"[3,1,3,2,1.0]", &ty).unwrap();
    assert_eq!(v.as_elements().map(<[Value]>::len), Some(3));
    assert_eq!(v, decode_json(b"[1,2,3]", &ty).unwrap());
}

#[test]
fn tuple_length_is_checked() {
    let ty = Type::Tuple(vec![Type::String, Type::Number]);
    assert!(decode_json(br#"["a"]"#, &ty).is_err());
    assert_eq!(
        decode_json(br#"["a",1]"#, &ty).unwrap(),
        Value::tuple(["a".into(), 1i64.into()])
    );
}

#[test]
fn encode_errors_name_the_whole_path() {
    let spot = Type::object([("lat", Type::Number)]);
    let ty = Type::object([
        ("spots", Type::List(Box::new(spot.clone()))),
        ("by_name", Type::Map(Box::new(spot))),
    ]);
    let good = Value::object([("lat", 1i64.into())]);
    let bad = Value::object([("lat", "north".into())]);
    let v = Value::object([("spots", Value::list([good, bad.clone()]))]);
    let err = encode_json(&v, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spots[1].lat: expected number, found string"
    );
    let v = Value::object([("by_name", Value::map([("a", bad)]))]);
    let err = encode_json(&v, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "by_name[\"a\"].lat: expected number, found string"
    );
}

#[test]
fn names_in_any_order_and_repeated_names_decode_as_serde_json_reads_them() {
    let ty = Type::object([
        ("a", Type::String),
        ("m", Type::map(Type::Number)),
        ("o", Type::object([("x", Type::Number), ("y", Type::Bool)])),
    ]);
    let sorted = br#"{"a":"p","m":{"k":1,"l":2},"o":{"x":1,"y":true}}"#;
    let shuffled = br#"{"o":{"y":"true","x":"1"},"m":{"l":2,"k":1},"a":"p"}"#;
    // A repeated name keeps its last value, as serde_json's own maps do.
    let repeated = br#"{"a":"q","o":{"x":5,"y":true,"x":1},"a":"p","m":{"k":9,"l":2,"k":1}}"#;
    let want = decode_json(sorted, &ty).unwrap();
    for bytes in [&shuffled[..], &repeated[..]] {
        let direct = decode_json(bytes, &ty).unwrap();
        let tree = decode_json_value(&serde_json::from_slice(bytes).unwrap(), &ty).unwrap();
        assert_eq!(direct, want, "{}", String::from_utf8_lossy(bytes));
        assert_eq!(tree, want, "{}", String::from_utf8_lossy(bytes));
    }
    // Errors are the tree decoder's, path and all.
    let err = decode_json(br#"{"o":{"x":"north"},"a":"p"}"#, &ty).unwrap_err();
    assert_eq!(err.to_string(), r#"o.x: invalid number "north": no digits"#);
    let err = decode_json(br#"{"a":"p","a":"p","zz":1}"#, &ty).unwrap_err();
    assert_eq!(err.to_string(), r#"unsupported attribute "zz""#);
    let err = decode_json(br#"{"a":"p"} trailing"#, &ty).unwrap_err();
    assert!(err.to_string().starts_with("invalid JSON"), "{err}");
}

#[test]
fn unknowns_can_be_written_as_null_for_keeping_a_planned_value() {
    let ty = Type::object([
        ("id", Type::String),
        ("tags", Type::map(Type::String)),
        ("spots", Type::list(Type::Number)),
    ]);
    let planned = Value::object([
        ("id", Value::Unknown),
        (
            "tags",
            Value::map([("a", "x".into()), ("b", Value::Unknown)]),
        ),
        ("spots", Value::list([1i64.into(), Value::Unknown])),
    ]);
    assert!(tfvalue::encode_json_value(&planned, &ty).is_err());
    let kept = tfvalue::encode_json_value_unknown_as_null(&planned, &ty).unwrap();
    assert_eq!(
        kept,
        serde_json::json!({"id": null, "tags": {"a": "x", "b": null}, "spots": [1, null]})
    );
}
