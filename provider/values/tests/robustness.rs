//! Hostile input: the decoders sit on the gRPC boundary, so garbage,
//! truncated and deeply nested input must produce errors, never panics,
//! stack overflows or huge allocations.
#![allow(clippy::unwrap_used)]

use tfvalue::{decode_json, decode_msgpack, encode_msgpack, Number, Type, Value};

/// xorshift64*: deterministic, dependency-free randomness for the loops.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn types() -> Vec<Type> {
    vec![
        Type::Bool,
        Type::Number,
        Type::String,
        Type::Dynamic,
        Type::list(Type::String),
        Type::set(Type::Number),
        Type::map(Type::Dynamic),
        Type::Tuple(vec![Type::Bool, Type::Dynamic]),
        Type::object([
            ("a", Type::String),
            (
                "b",
                Type::list(Type::object([
                    ("c", Type::Number),
                    ("d", Type::map(Type::Bool)),
                ])),
            ),
            ("e", Type::Dynamic),
        ]),
    ]
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tys = types();
    // Bias towards msgpack marker bytes so headers are exercised, not just fixints.
    let markers = [
        0xc0, 0xc4, 0xc7, 0xd4, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0x92, 0x81, 0xa1, 0xcb, 0xff,
    ];
    for _ in 0..20_000 {
        let len = rng.below(48) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(3) == 0 {
                    markers[rng.below(markers.len() as u64) as usize]
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        for ty in &tys {
            let _ = decode_msgpack(&bytes, ty);
            let _ = decode_json(&bytes, ty);
        }
    }
}

fn sample_encodings() -> Vec<(Type, Vec<u8>)> {
    let ty = types().pop().unwrap();
    let v = Value::object([
        ("a", "hello".into()),
        (
            "b",
            Value::list([
                Value::object([
                    ("c", Value::Number(Number::parse("1e30").unwrap())),
                    ("d", Value::map([("k", true.into())])),
                ]),
                Value::object([("c", Value::Unknown), ("d", Value::Null)]),
            ]),
        ),
        (
            "e",
            Value::object([("x", Value::tuple([1.5.into(), "y".into()]))]),
        ),
    ]);
    vec![(ty.clone(), encode_msgpack(&v, &ty).unwrap())]
}

#[test]
fn truncated_and_mutated_encodings_fail_cleanly() {
    let mut rng = Rng(42);
    for (ty, bytes) in sample_encodings() {
        assert!(decode_msgpack(&bytes, &ty).is_ok());
        for cut in 0..bytes.len() {
            assert!(
                decode_msgpack(&bytes[..cut], &ty).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0xc0);
        assert!(
            decode_msgpack(&longer, &ty).is_err(),
            "trailing bytes must be rejected"
        );
        for _ in 0..20_000 {
            let mut m = bytes.clone();
            for _ in 0..=rng.below(3) {
                let i = rng.below(m.len() as u64) as usize;
                m[i] = rng.next() as u8;
            }
            let _ = decode_msgpack(&m, &ty);
        }
    }
}

#[test]
fn huge_length_headers_do_not_allocate() {
    let cases: Vec<(Vec<u8>, Type)> = vec![
        (vec![0xdd, 0xff, 0xff, 0xff, 0xff], Type::list(Type::String)),
        (
            vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0],
            Type::set(Type::Number),
        ),
        (vec![0xdf, 0xff, 0xff, 0xff, 0xff], Type::map(Type::String)),
        (
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
            Type::object([("a", Type::String)]),
        ),
        (vec![0xdb, 0xff, 0xff, 0xff, 0xff, b'a'], Type::String),
        (vec![0xc6, 0xff, 0xff, 0xff, 0xff], Type::String),
        (vec![0xc9, 0xff, 0xff, 0xff, 0xff, 0x00], Type::String),
        (
            vec![0xdd, 0x00, 0x01, 0x00, 0x00, 0x01],
            Type::Tuple(vec![Type::Bool]),
        ),
    ];
    for (bytes, ty) in cases {
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert!(err.message.contains("exceeds"), "{bytes:02x?}: {err}");
    }
}

#[test]
fn nesting_depth_is_bounded() {
    // 200 nested lists of dynamic: each level is [type, value]; simpler to
    // nest list types directly.
    let mut ty = Type::String;
    for _ in 0..200 {
        ty = Type::list(ty);
    }
    let mut bytes = vec![0x91; 200];
    bytes.extend_from_slice(&[0xa1, b'x']);
    let err = decode_msgpack(&bytes, &ty).unwrap_err();
    assert!(err.message.contains("nested deeper than 64"), "{err}");
    // Self-describing nesting through dynamic values cannot recurse forever.
    let mut dyn_bytes = Vec::new();
    for _ in 0..1000 {
        dyn_bytes.extend_from_slice(&[0x92, 0xc4, 0x09]);
        dyn_bytes.extend_from_slice(b"\"dynamic\"");
    }
    dyn_bytes.push(0xc3);
    assert!(decode_msgpack(&dyn_bytes, &Type::Dynamic).is_err());
    // JSON: serde_json's own limit or ours, never a stack overflow.
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    assert!(decode_json(deep.as_bytes(), &ty).is_err());
    let json64 = format!("{}\"x\"{}", "[".repeat(100), "]".repeat(100));
    let err = decode_json(json64.as_bytes(), &ty).unwrap_err();
    assert!(err.message.contains("nested deeper than 64"), "{err}");
    // Encoding an over-deep value is an error too.
    let mut v = Value::from("x");
    for _ in 0..100 {
        v = Value::list([v]);
    }
    assert!(encode_msgpack(&v, &ty).is_err());
}

#[test]
fn large_hostile_sets_decode_in_reasonable_time() {
    // 65,536 distinct uint16 elements plus a duplicate of each: set dedup
    // must not be quadratic.
    let n: u32 = 2 * 65_536;
    let mut bytes = vec![0xdd];
    bytes.extend_from_slice(&n.to_be_bytes());
    for _ in 0..2 {
        for i in 0..=u16::MAX {
            bytes.push(0xcd);
            bytes.extend_from_slice(&i.to_be_bytes());
        }
    }
    let start = std::time::Instant::now();
    let v = decode_msgpack(&bytes, &Type::set(Type::Number)).unwrap();
    assert_eq!(v.as_elements().map(<[Value]>::len), Some(65_536));
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}
