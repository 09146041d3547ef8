//! Checks the msgpack codec against byte vectors cty produces and against
//! round trips of every type, so a change that breaks Terraform's wire
//! format fails here rather than in an acceptance run.
#![allow(clippy::unwrap_used)]

use tfvalue::{decode_msgpack, encode_msgpack, Number, ObjectType, Type, Value};

fn n(s: &str) -> Value {
    Value::Number(Number::parse(s).unwrap())
}

/// (type, value, bytes cty writes). Bytes derived by hand from the msgpack
/// spec (github.com/msgpack/msgpack spec.md) and cty's rules: smallest
/// integer form within int64, float64 only for exact fractions, else the
/// decimal string; objects as maps with every attribute in sorted order;
/// unknown as fixext1 type 0 with one zero byte; dynamic as
/// [bin type JSON, value]. Every vector was also checked once (2026-11-25)
/// against the output of go-cty v1.14.4's msgpack.Marshal, built from
/// source; the only deliberate difference is noted at float 2^70.
fn wire_table() -> Vec<(Type, Value, Vec<u8>)> {
    vec![
        // nil
        (Type::String, Value::Null, vec![0xc0]),
        // fixext1 (d4), ext type 0, payload 00
        (Type::String, Value::Unknown, vec![0xd4, 0x00, 0x00]),
        (Type::Bool, true.into(), vec![0xc3]),
        (Type::Bool, false.into(), vec![0xc2]),
        // fixstr: 0xa0 | len
        (Type::String, "hi".into(), vec![0xa2, b'h', b'i']),
        (Type::String, "".into(), vec![0xa0]),
        // positive fixint 0x00-0x7f
        (Type::Number, 1i64.into(), vec![0x01]),
        (Type::Number, 127i64.into(), vec![0x7f]),
        // negative fixint: -1 is 0xff, -32 is 0xe0
        (Type::Number, (-1i64).into(), vec![0xff]),
        (Type::Number, (-32i64).into(), vec![0xe0]),
        // uint8 for 128..=255 (cty encodes non-negative ints as uint forms)
        (Type::Number, 200i64.into(), vec![0xcc, 0xc8]),
        // int8 for -33..=-128
        (Type::Number, (-33i64).into(), vec![0xd0, 0xdf]),
        // int16 big endian: -200 = 0xff38
        (Type::Number, (-200i64).into(), vec![0xd1, 0xff, 0x38]),
        // uint16: 1000 = 0x03e8
        (Type::Number, 1000i64.into(), vec![0xcd, 0x03, 0xe8]),
        // uint32: 70000 = 0x00011170
        (
            Type::Number,
            70000i64.into(),
            vec![0xce, 0x00, 0x01, 0x11, 0x70],
        ),
        // uint64: 2^40 = 0x0000010000000000
        (
            Type::Number,
            (1i64 << 40).into(),
            vec![0xcf, 0, 0, 1, 0, 0, 0, 0, 0],
        ),
        // int64: i64::MIN
        (
            Type::Number,
            i64::MIN.into(),
            vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ),
        // float64 1.5 = 0x3ff8000000000000
        (
            Type::Number,
            1.5.into(),
            vec![0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
        ),
        // a float that is an integer goes out as an integer, like cty
        (Type::Number, 3.0.into(), vec![0x03]),
        // 2^63 does not fit int64: whole numbers beyond int64 are strings
        // (fixstr 0xa0|19 = 0xb3), even though 2^63 is an exact float64
        (
            Type::Number,
            (1u64 << 63).into(),
            [&[0xb3][..], b"9223372036854775808"].concat(),
        ),
        // a float64 2^70 likewise goes out as a string, with every digit
        // (cty would write its shortest form, 1180591620717411300000)
        (
            Type::Number,
            2f64.powi(70).into(),
            [&[0xb6][..], b"1180591620717411303424"].concat(),
        ),
        // 0.1 as written in config is not an exact float64: string "0.1"
        (Type::Number, n("0.1"), vec![0xa3, b'0', b'.', b'1']),
        (
            Type::Number,
            n("-0.0172"),
            [&[0xa7][..], b"-0.0172"].concat(),
        ),
        (
            Type::Number,
            n("1.10e-3"),
            [&[0xa6][..], b"0.0011"].concat(),
        ),
        // decimal text longer than a fixstr holds: str8, then str16
        (
            Type::Number,
            n("1234567890123456789012345678901234567890.1"),
            [
                &[0xd9, 42][..],
                b"1234567890123456789012345678901234567890.1",
            ]
            .concat(),
        ),
        (
            Type::Number,
            n("1e300"),
            [&[0xda, 0x01, 0x2d, b'1'][..], &[b'0'; 300][..]].concat(),
        ),
        // +Inf as float64 0x7ff0000000000000
        (
            Type::Number,
            f64::INFINITY.into(),
            vec![0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
        ),
        // list(string) ["a"]: fixarray 0x91
        (
            Type::list(Type::String),
            Value::list(["a".into()]),
            vec![0x91, 0xa1, b'a'],
        ),
        (Type::list(Type::String), Value::list([]), vec![0x90]),
        // set(number) {1, 2}
        (
            Type::set(Type::Number),
            Value::set([1i64.into(), 2i64.into()]),
            vec![0x92, 0x01, 0x02],
        ),
        // map(bool) {"x": true}: fixmap 0x81
        (
            Type::map(Type::Bool),
            Value::map([("x", true.into())]),
            vec![0x81, 0xa1, b'x', 0xc3],
        ),
        // tuple([bool, number])
        (
            Type::Tuple(vec![Type::Bool, Type::Number]),
            Value::tuple([true.into(), 1i64.into()]),
            vec![0x92, 0xc3, 0x01],
        ),
        // object({a=number, b=string}) with b null: both attributes, sorted
        (
            Type::object([("b", Type::String), ("a", Type::Number)]),
            Value::object([("a", 1i64.into()), ("b", Value::Null)]),
            vec![0x82, 0xa1, b'a', 0x01, 0xa1, b'b', 0xc0],
        ),
        // object with an unknown attribute
        (
            Type::object([("id", Type::String)]),
            Value::object([("id", Value::Unknown)]),
            vec![0x81, 0xa2, b'i', b'd', 0xd4, 0x00, 0x00],
        ),
        // dynamic "x": fixarray 2, bin8 of the 8 bytes "string" (quoted), then "x"
        (
            Type::Dynamic,
            Value::dynamic(Type::String, "x".into()),
            [&[0x92, 0xc4, 0x08][..], b"\"string\"", &[0xa1, b'x']].concat(),
        ),
        // untyped null and unknown at a dynamic position are written bare
        (Type::Dynamic, Value::Null, vec![0xc0]),
        (Type::Dynamic, Value::Unknown, vec![0xd4, 0x00, 0x00]),
        // a typed null / unknown keeps its type, as cty's marshalDynamic does
        (
            Type::Dynamic,
            Value::dynamic(Type::Number, Value::Null),
            [&[0x92, 0xc4, 0x08][..], b"\"number\"", &[0xc0]].concat(),
        ),
        (
            Type::Dynamic,
            Value::dynamic(Type::Bool, Value::Unknown),
            [&[0x92, 0xc4, 0x06][..], b"\"bool\"", &[0xd4, 0x00, 0x00]].concat(),
        ),
        // a plain object at a dynamic position: its type is inferred, then
        // written as type JSON (34 bytes, bin8 0xc4 0x22)
        (
            Type::Dynamic,
            Value::object([("a", Value::list(["x".into()]))]),
            [
                &[0x92, 0xc4, 0x22][..],
                br#"["object",{"a":["list","string"]}]"#,
                &[0x81, 0xa1, b'a', 0x91, 0xa1, b'x'],
            ]
            .concat(),
        ),
        // inside an object: {"d": ["string", "v"]}
        (
            Type::object([("d", Type::Dynamic)]),
            Value::object([("d", Value::dynamic(Type::String, "v".into()))]),
            [
                &[0x81, 0xa1, b'd', 0x92, 0xc4, 0x08][..],
                b"\"string\"",
                &[0xa1, b'v'],
            ]
            .concat(),
        ),
    ]
}

#[test]
fn encodes_like_cty_and_decodes_back() {
    for (ty, v, bytes) in wire_table() {
        assert_eq!(
            encode_msgpack(&v, &ty).unwrap(),
            bytes,
            "encoding {v:?} as {ty}"
        );
        assert_eq!(
            decode_msgpack(&bytes, &ty).unwrap(),
            v,
            "decoding {bytes:02x?} as {ty}"
        );
    }
}

#[test]
fn big_numbers_as_strings() {
    // 2^64 + 1 fits no machine type and no exact float64: string form.
    let v = n("18446744073709551617");
    let bytes = encode_msgpack(&v, &Type::Number).unwrap();
    assert_eq!(bytes, [&[0xb4][..], b"18446744073709551617"].concat());
    let back = decode_msgpack(&bytes, &Type::Number).unwrap();
    assert_eq!(
        back.as_number().map(ToString::to_string).as_deref(),
        Some("18446744073709551617")
    );
    assert_eq!(back.as_i64(), None);
    // 1e400: no float64 either; goes out as 401 digits (str16, 0xda 0x0191).
    let v = n("1e400");
    let bytes = encode_msgpack(&v, &Type::Number).unwrap();
    assert_eq!(&bytes[..3], &[0xda, 0x01, 0x91]);
    assert_eq!(decode_msgpack(&bytes, &Type::Number).unwrap(), v);
    // u64::MAX is not an exact float64: string, as cty does.
    let v = Value::from(u64::MAX);
    let bytes = encode_msgpack(&v, &Type::Number).unwrap();
    assert_eq!(bytes, [&[0xb4][..], b"18446744073709551615"].concat());
    assert_eq!(
        decode_msgpack(&bytes, &Type::Number).unwrap().as_u64(),
        Some(u64::MAX)
    );
}

#[test]
fn decodes_every_number_form() {
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (vec![0xcc, 0xff], 255i64.into()),
        (vec![0xcd, 0xff, 0xff], 65535i64.into()),
        (vec![0xce, 0xff, 0xff, 0xff, 0xff], 4294967295i64.into()),
        (
            vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            u64::MAX.into(),
        ),
        (vec![0xd0, 0x80], (-128i64).into()),
        (vec![0xd1, 0x80, 0x00], (-32768i64).into()),
        (vec![0xd2, 0x80, 0, 0, 0], (-2147483648i64).into()),
        (
            vec![0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            i64::MAX.into(),
        ),
        // float32 0.5 = 0x3f000000
        (vec![0xca, 0x3f, 0, 0, 0], 0.5.into()),
        // str8 form of a number
        ([&[0xd9, 0x03][..], b"1e2"].concat(), 100i64.into()),
        // bin is accepted for strings-as-numbers too
        ([&[0xc4, 0x02][..], b"-7"].concat(), (-7i64).into()),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            decode_msgpack(&bytes, &Type::Number).unwrap(),
            want,
            "{bytes:02x?}"
        );
    }
}

#[test]
fn f64_edge_values_round_trip() {
    for f in [
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        0.1,
        1.0 / 3.0,
        -2.5e-300,
        9007199254740993.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        let v = Value::from(f);
        let bytes = encode_msgpack(&v, &Type::Number).unwrap();
        let back = decode_msgpack(&bytes, &Type::Number).unwrap();
        assert_eq!(back, v, "{f:e}");
        assert_eq!(
            back.as_f64().map(f64::to_bits).map(|b| b & !(1 << 63)),
            Some(f.to_bits() & !(1 << 63))
        );
    }
    assert!(encode_msgpack(&Value::from(f64::NAN), &Type::Number).is_err());
    assert!(decode_msgpack(&[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], &Type::Number).is_err());
}

fn workload_type() -> Type {
    Type::Object(
        ObjectType::new([
            ("name", Type::String),
            ("cpu", Type::Number),
            ("gpu", Type::Bool),
            ("tags", Type::set(Type::String)),
            ("labels", Type::map(Type::String)),
            ("extra", Type::Dynamic),
            ("pair", Type::Tuple(vec![Type::String, Type::Number])),
            (
                "user_locations",
                Type::list(Type::object([
                    ("lat", Type::Number),
                    ("lon", Type::Number),
                    ("weight", Type::Number),
                ])),
            ),
            (
                "placement",
                Type::object([
                    ("scores", Type::map(Type::Number)),
                    ("provider", Type::String),
                ]),
            ),
        ])
        .with_optional(["gpu"]),
    )
}

fn workload_values() -> Vec<Value> {
    let loc = |lat: f64, w: Value| {
        Value::object([("lat", lat.into()), ("lon", Value::Unknown), ("weight", w)])
    };
    vec![
        Value::Null,
        Value::Unknown,
        Value::object([
            ("name", "web".into()),
            ("cpu", 4i64.into()),
            ("gpu", Value::Null),
            ("tags", Value::set(["b".into(), "a".into()])),
            (
                "labels",
                Value::map([("team", "core".into()), ("tier", Value::Unknown)]),
            ),
            (
                "extra",
                Value::dynamic(
                    Type::object([("k", Type::list(Type::Number))]),
                    Value::object([("k", Value::list([1i64.into(), n("0.1"), n("1e400")]))]),
                ),
            ),
            (
                "pair",
                Value::tuple(["x".into(), n("18446744073709551617")]),
            ),
            (
                "user_locations",
                Value::list([loc(52.5, 1i64.into()), loc(-33.9, Value::Null)]),
            ),
            ("placement", Value::Unknown),
        ]),
        Value::object([
            ("name", Value::Unknown),
            ("cpu", Value::Null),
            ("gpu", true.into()),
            ("tags", Value::Unknown),
            ("labels", Value::map(Vec::<(String, Value)>::new())),
            ("extra", Value::Unknown),
            ("pair", Value::Null),
            ("user_locations", Value::list([])),
            (
                "placement",
                Value::object([
                    ("scores", Value::map([("cost", 0.25.into())])),
                    ("provider", "aws".into()),
                ]),
            ),
        ]),
    ]
}

#[test]
fn nested_round_trips() {
    let ty = workload_type();
    for v in workload_values() {
        let bytes = encode_msgpack(&v, &ty).unwrap();
        let back = decode_msgpack(&bytes, &ty).unwrap();
        assert_eq!(back, v);
        assert_eq!(
            encode_msgpack(&back, &ty).unwrap(),
            bytes,
            "re-encoding is stable"
        );
    }
}

#[test]
fn dynamic_infers_type_of_plain_values() {
    let v = Value::object([("a", Value::list(["x".into()]))]);
    let bytes = encode_msgpack(&v, &Type::Dynamic).unwrap();
    let back = decode_msgpack(&bytes, &Type::Dynamic).unwrap();
    assert_eq!(back, v);
    match back {
        Value::Dynamic(t, _) => assert_eq!(t, Type::object([("a", Type::list(Type::String))])),
        other => panic!("expected a dynamic wrapper, got {other:?}"),
    }
    assert!(encode_msgpack(&Value::list(["x".into(), 1i64.into()]), &Type::Dynamic).is_err());
}

#[test]
fn refined_unknowns_decode_as_unknown() {
    // ext8 (c7), length 3, type 12, payload msgpack {1: false} (not null)
    let bytes = [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2];
    assert!(decode_msgpack(&bytes, &Type::String).unwrap().is_unknown());
    // fixext1 type 12 with an empty map payload
    assert!(
        decode_msgpack(&[0xd4, 0x0c, 0x80], &Type::list(Type::Number))
            .unwrap()
            .is_unknown()
    );
    // as in cty, any extension of at most one byte is an unknown ...
    assert!(decode_msgpack(&[0xd4, 0x05, 0x00], &Type::String)
        .unwrap()
        .is_unknown());
    assert!(decode_msgpack(&[0xc7, 0x00, 0x00], &Type::String)
        .unwrap()
        .is_unknown());
    // ... and a longer one must be type 12
    assert!(decode_msgpack(&[0xd5, 0x05, 0x00, 0x00], &Type::String).is_err());
}

#[test]
fn sets_deduplicate_on_decode() {
    let bytes = [0x93, 0xa1, b'a', 0xa1, b'b', 0xa1, b'a'];
    let v = decode_msgpack(&bytes, &Type::set(Type::String)).unwrap();
    assert_eq!(v.as_elements().map(<[Value]>::len), Some(2));
    assert_eq!(v, Value::set(["b".into(), "a".into()]));
    // unknowns are kept apart: they may become different values
    let bytes = [0x92, 0xd4, 0x00, 0x00, 0xd4, 0x00, 0x00];
    let v = decode_msgpack(&bytes, &Type::set(Type::String)).unwrap();
    assert_eq!(v.as_elements().map(<[Value]>::len), Some(2));
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
    let good = Value::object([(
        "user_locations",
        Value::list([Value::object([
            ("lat", 1i64.into()),
            ("weight", 1i64.into()),
        ])]),
    )]);
    let mut bytes = encode_msgpack(&good, &ty).unwrap();
    // Second element whose weight is a string.
    let bad = Value::object([("lat", 2i64.into()), ("weight", 1i64.into())]);
    let bad_bytes = encode_msgpack(
        &bad,
        &Type::object([("lat", Type::Number), ("weight", Type::String)]),
    );
    assert!(bad_bytes.is_err());
    // Build by hand: map{user_locations: [ {lat:1,weight:1}, {lat:2, weight:"x"} ]}
    bytes.clear();
    bytes.extend_from_slice(&[0x81, 0xae]);
    bytes.extend_from_slice(b"user_locations");
    bytes.extend_from_slice(&[0x92]);
    bytes.extend_from_slice(&[0x82, 0xa3, b'l', b'a', b't', 0x01, 0xa6]);
    bytes.extend_from_slice(b"weight");
    bytes.push(0x01);
    bytes.extend_from_slice(&[0x82, 0xa3, b'l', b'a', b't', 0x02, 0xa6]);
    bytes.extend_from_slice(b"weight");
    bytes.extend_from_slice(&[0xa1, b'x']);
    let err = decode_msgpack(&bytes, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "user_locations[1].weight: invalid number \"x\": no digits"
    );
    bytes.truncate(bytes.len() - 2);
    bytes.push(0xc3);
    let err = decode_msgpack(&bytes, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "user_locations[1].weight: expected number, found bool"
    );

    let err = decode_msgpack(&[0x81, 0xa1, b'z', 0x01], &ty).unwrap_err();
    assert_eq!(err.to_string(), "unsupported attribute \"z\"");
    let err = decode_msgpack(&[0xa1, b'x'], &Type::map(Type::String)).unwrap_err();
    assert_eq!(err.to_string(), "expected map of string, found string");
    let err = decode_msgpack(&[0x81, 0xa1, b'k', 0xc3], &Type::map(Type::String)).unwrap_err();
    assert_eq!(err.to_string(), "[\"k\"]: expected string, found bool");
}

#[test]
fn missing_attributes_decode_as_null() {
    let ty = Type::object([("a", Type::String), ("b", Type::Number)]);
    let v = decode_msgpack(&[0x81, 0xa1, b'a', 0xa1, b'x'], &ty).unwrap();
    assert!(v.get("b").is_some_and(Value::is_null));
    assert_eq!(v.get("a").and_then(Value::as_str), Some("x"));
}

#[test]
fn objects_decode_the_same_whatever_the_order_of_their_names() {
    let inner = Type::object([("x", Type::Number), ("y", Type::String)]);
    let ty = Type::object([
        ("a", Type::String),
        ("m", inner.clone()),
        ("n", Type::Number),
        ("z", Type::Bool),
    ]);
    // cty's order (sorted), with "n" absent.
    let mut sorted = vec![0x83, 0xa1, b'a', 0xa1, b'p', 0xa1, b'm'];
    sorted.extend_from_slice(&[0x82, 0xa1, b'x', 0x01, 0xa1, b'y', 0xa1, b'q']);
    sorted.extend_from_slice(&[0xa1, b'z', 0xc3]);
    // The same object with its names (and the inner object's) reversed.
    let mut reversed = vec![0x83, 0xa1, b'z', 0xc3, 0xa1, b'm'];
    reversed.extend_from_slice(&[0x82, 0xa1, b'y', 0xa1, b'q', 0xa1, b'x', 0x01]);
    reversed.extend_from_slice(&[0xa1, b'a', 0xa1, b'p']);
    let want = Value::object([
        ("a", "p".into()),
        ("m", Value::object([("x", 1i64.into()), ("y", "q".into())])),
        ("n", Value::Null),
        ("z", true.into()),
    ]);
    assert_eq!(decode_msgpack(&sorted, &ty).unwrap(), want);
    assert_eq!(decode_msgpack(&reversed, &ty).unwrap(), want);
    assert_eq!(encode_msgpack(&want, &ty).unwrap()[..3], [0x84, 0xa1, b'a']);

    // A repeated name is refused whether it repeats in order or not.
    for bytes in [
        vec![0x82, 0xa1, b'a', 0xa1, b'p', 0xa1, b'a', 0xa1, b'q'],
        vec![
            0x83, 0xa1, b'z', 0xc3, 0xa1, b'a', 0xa1, b'p', 0xa1, b'z', 0xc2,
        ],
    ] {
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert!(err.to_string().starts_with("duplicate attribute"), "{err}");
    }
    // An undeclared name is named, sorted or not; an error inside a value keeps its path.
    let err = decode_msgpack(&[0x82, 0xa1, b'a', 0xa1, b'p', 0xa1, b'b', 0x01], &ty).unwrap_err();
    assert_eq!(err.to_string(), "unsupported attribute \"b\"");
    let err = decode_msgpack(&[0x82, 0xa1, b'z', 0xc3, 0xa1, b'b', 0x01], &ty).unwrap_err();
    assert_eq!(err.to_string(), "unsupported attribute \"b\"");
    let err = decode_msgpack(&[0x82, 0xa1, b'z', 0xc3, 0xa1, b'n', 0xc3], &ty).unwrap_err();
    assert_eq!(err.to_string(), "n: expected number, found bool");
}

#[test]
fn encode_rejects_mismatches() {
    let ty = Type::object([("a", Type::String)]);
    let err = encode_msgpack(&Value::object([("a", 1i64.into())]), &ty).unwrap_err();
    assert_eq!(err.to_string(), "a: expected string, found number");
    let err = encode_msgpack(&Value::object([("b", "x".into())]), &ty).unwrap_err();
    assert_eq!(err.to_string(), "unsupported attribute \"b\"");
    let err = encode_msgpack(&Value::tuple(["x".into()]), &Type::Tuple(vec![])).unwrap_err();
    assert!(err.to_string().contains("tuple of 0 elements"));
}

#[test]
fn encode_errors_name_the_whole_path_and_the_first_extra_attribute() {
    let inner = Type::object([("lat", Type::Number), ("tag", Type::String)]);
    let ty = Type::object([
        ("a", Type::String),
        ("spots", Type::List(Box::new(inner.clone()))),
        ("z", Type::Map(Box::new(inner))),
    ]);
    let good = Value::object([("lat", 1i64.into()), ("tag", "x".into())]);
    let bad = Value::object([("lat", "north".into()), ("tag", "x".into())]);
    let v = Value::object([
        ("a", "x".into()),
        ("spots", Value::list([good.clone(), bad.clone()])),
    ]);
    let err = encode_msgpack(&v, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spots[1].lat: expected number, found string"
    );
    let v = Value::object([("z", Value::map([("k\"1", bad)]))]);
    let err = encode_msgpack(&v, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "z[\"k\\\"1\"].lat: expected number, found string"
    );
    // Extras before, between and after the declared names are all refused; the first in
    // name order is the one named.
    for (extra, named) in [("0", "0"), ("b", "b"), ("zz", "zz")] {
        let v = Value::object([("a", "x".into()), (extra, "y".into()), ("zzz", "q".into())]);
        let err = encode_msgpack(&v, &ty).unwrap_err();
        assert_eq!(err.to_string(), format!("unsupported attribute {named:?}"));
    }
    let nested = Value::object([("spots", Value::list([good.clone()])), ("a", "x".into())]);
    assert!(encode_msgpack(&nested, &ty).is_ok());
}

#[test]
fn long_strings_and_collections_use_wider_headers() {
    let s = "x".repeat(300);
    let bytes = encode_msgpack(&Value::string(s.clone()), &Type::String).unwrap();
    assert_eq!(&bytes[..3], &[0xda, 0x01, 0x2c]);
    let s40 = "y".repeat(40);
    let bytes = encode_msgpack(&Value::string(s40), &Type::String).unwrap();
    assert_eq!(&bytes[..2], &[0xd9, 40]);
    let list = Value::list((0..20i64).map(Value::from));
    let bytes = encode_msgpack(&list, &Type::list(Type::Number)).unwrap();
    assert_eq!(&bytes[..3], &[0xdc, 0x00, 0x14]);
    assert_eq!(
        decode_msgpack(&bytes, &Type::list(Type::Number)).unwrap(),
        list
    );
    let map = Value::map((0..20).map(|i| (format!("k{i:02}"), Value::from(i64::from(i)))));
    let bytes = encode_msgpack(&map, &Type::map(Type::Number)).unwrap();
    assert_eq!(&bytes[..3], &[0xde, 0x00, 0x14]);
    assert_eq!(
        decode_msgpack(&bytes, &Type::map(Type::Number)).unwrap(),
        map
    );
    let back = decode_msgpack(
        &encode_msgpack(&Value::string(s.clone()), &Type::String).unwrap(),
        &Type::String,
    );
    assert_eq!(back.unwrap().as_str(), Some(s.as_str()));
}

/// Every form in the wire table, before and after the sought attribute, is stepped over
/// (`msgpack_object_str` reads one attribute of a request without decoding the rest).
#[test]
fn one_string_attribute_is_found_past_every_wire_form() {
    for (ty, v, bytes) in wire_table() {
        let object = Type::Object(ObjectType::new([
            ("before", ty.clone()),
            ("name", Type::String),
            ("zafter", ty.clone()),
        ]));
        let value = Value::object([
            ("before", v.clone()),
            ("name", "web-1".into()),
            ("zafter", v),
        ]);
        let encoded = encode_msgpack(&value, &object).unwrap();
        assert_eq!(
            tfvalue::msgpack_object_str(&encoded, "name"),
            Some("web-1"),
            "past {bytes:02x?}"
        );
        assert_eq!(tfvalue::msgpack_object_str(&encoded, "missing"), None);
    }
}

#[test]
fn a_string_attribute_that_is_not_there_is_none() {
    let object = Type::Object(ObjectType::new([
        ("name", Type::String),
        ("tags", Type::map(Type::String)),
    ]));
    let with = |name: Value| {
        encode_msgpack(
            &Value::object([("name", name), ("tags", Value::Null)]),
            &object,
        )
        .unwrap()
    };
    assert_eq!(
        tfvalue::msgpack_object_str(&with(Value::Null), "name"),
        None
    );
    assert_eq!(
        tfvalue::msgpack_object_str(&with(Value::Unknown), "name"),
        None
    );
    // Not an object; damaged or cut-off input; a sought key after damage.
    assert_eq!(tfvalue::msgpack_object_str(&[0xc0], "name"), None);
    assert_eq!(
        tfvalue::msgpack_object_str(&[0xa4, b'n', b'a', b'm', b'e'], "name"),
        None
    );
    assert_eq!(tfvalue::msgpack_object_str(&[], "name"), None);
    let good = with("web".into());
    assert_eq!(tfvalue::msgpack_object_str(&good, "name"), Some("web"));
    for cut in 0..good.len() - 1 {
        let found = tfvalue::msgpack_object_str(&good[..cut], "name");
        assert!(found.is_none() || found == Some("web"), "cut at {cut}");
    }
    // A map claiming more entries than the input holds, and nesting past the limit.
    assert_eq!(
        tfvalue::msgpack_object_str(&[0xdf, 0xff, 0xff, 0xff, 0xff], "name"),
        None
    );
    let mut deep = vec![0x82, 0xa1, b'a'];
    deep.extend(std::iter::repeat_n(0x91, 10_000));
    deep.push(0xc0);
    deep.extend([0xa4, b'n', b'a', b'm', b'e', 0xa1, b'x']);
    assert_eq!(tfvalue::msgpack_object_str(&deep, "name"), None);
}

/// `msgpack_object_field` gives an attribute's bytes as they stand, past and of every wire
/// form: they decode to the value that was encoded.
#[test]
fn one_attribute_s_bytes_are_found_past_and_of_every_wire_form() {
    for (ty, v, bytes) in wire_table() {
        let object = Type::Object(ObjectType::new([
            ("before", ty.clone()),
            ("field", ty.clone()),
            ("zafter", ty.clone()),
        ]));
        let value = Value::object([
            ("before", v.clone()),
            ("field", v.clone()),
            ("zafter", v.clone()),
        ]);
        let encoded = encode_msgpack(&value, &object).unwrap();
        let found = tfvalue::msgpack_object_field(&encoded, "field").expect("found");
        assert_eq!(found, &bytes[..], "the bytes of {bytes:02x?}");
        assert_eq!(decode_msgpack(found, &ty).unwrap(), v);
        assert_eq!(tfvalue::msgpack_object_field(&encoded, "missing"), None);
    }
}

#[test]
fn an_attribute_in_damaged_input_is_none() {
    let object = Type::Object(ObjectType::new([
        ("name", Type::String),
        ("tags", Type::map(Type::String)),
    ]));
    let good = encode_msgpack(
        &Value::object([
            ("name", "web".into()),
            ("tags", Value::map([("a", "b".into())])),
        ]),
        &object,
    )
    .unwrap();
    let tags = tfvalue::msgpack_object_field(&good, "tags").expect("found");
    assert_eq!(tags, &good[good.len() - tags.len()..]);
    // Cut anywhere, the attribute is either absent or whole.
    for cut in 0..good.len() {
        if let Some(found) = tfvalue::msgpack_object_field(&good[..cut], "tags") {
            assert_eq!(found, tags, "cut at {cut}");
        }
    }
    assert_eq!(tfvalue::msgpack_object_field(&[0xc0], "name"), None);
    assert_eq!(tfvalue::msgpack_object_field(&[], "name"), None);
    assert_eq!(
        tfvalue::msgpack_object_field(&[0xdf, 0xff, 0xff, 0xff, 0xff], "name"),
        None
    );
    // Nested past the limit, in the sought value itself.
    let mut deep = vec![0x81, 0xa4, b'n', b'a', b'm', b'e'];
    deep.extend(std::iter::repeat_n(0x91, 10_000));
    deep.push(0xc0);
    assert_eq!(tfvalue::msgpack_object_field(&deep, "name"), None);
}
