//! JSON text straight from [`Value`]s, without serde_json's tree in between.
//!
//! Every `hybrid_workload` create and update stores its whole state beside the instance as JSON
//! text. Going through [`crate::json`]'s tree first cost a `BTreeMap` insert and a `String` per
//! attribute, a walk to print the tree and another to free it: about a fifth of the provider's
//! instructions in an apply of a thousand workloads. Here the [`Type`] drives a writer that
//! appends to one `String`.
//!
//! The text is exactly `serde_json::to_string` of the tree [`crate::json`] would build for the
//! same value (sorted keys, integers as integers, every digit of other numbers, serde_json's
//! string escapes), and the errors are the same, with the same paths: this module follows
//! `json::encode` case by case, shares its leading cases and object walk
//! ([`crate::encode_steps`]) and its number rule ([`json_number`]), and the property tests
//! in `tests/roundtrip_props.rs` compare the two on random values of random types.

use std::fmt::Write as _;

use crate::encode_steps::{lead, mismatch, object_attributes, tuple_length, Lead};
use crate::error::EncodeError;
use crate::json::{json_number, UnknownAsNull};
use crate::number::Number;
use crate::path::PathStep;
use crate::types::Type;
use crate::value::Value;

/// Appends `v`, a value of type `ty`, to `out` as JSON text: the text of
/// [`encode_json_value`](crate::encode_json_value)'s tree. On error `out` is left as it was.
pub fn write_json(v: &Value, ty: &Type, out: &mut String) -> Result<(), EncodeError> {
    write_keeping_out_on_error(v, ty, out, Style::EXACT)
}

/// Like [`write_json`], but an unknown anywhere is written as `null` instead of failing: the
/// text of [`encode_json_value_unknown_as_null`](crate::encode_json_value_unknown_as_null)'s
/// tree.
pub fn write_json_unknown_as_null(
    v: &Value,
    ty: &Type,
    out: &mut String,
) -> Result<(), EncodeError> {
    write_keeping_out_on_error(v, ty, out, Style::UNKNOWN_AS_NULL)
}

/// Like [`write_json_unknown_as_null`], but an object attribute that would be written as
/// `null` is left out: shorter text for the same value, since a reader of cty JSON takes an
/// absent attribute as null ([`decode_json`](crate::decode_json) does). For stores where size
/// counts (a workload's state beside its instance: leaving out its nulls takes a third off,
/// and lets two rows share a page of the sim's database). Nulls elsewhere stay: a list's or
/// set's elements, and a map's values, whose keys are part of the value.
pub fn write_json_without_null_attributes(
    v: &Value,
    ty: &Type,
    out: &mut String,
) -> Result<(), EncodeError> {
    write_keeping_out_on_error(v, ty, out, Style::WITHOUT_NULL_ATTRIBUTES)
}

/// How values are written.
#[derive(Clone, Copy)]
struct Style {
    unknown_as_null: UnknownAsNull,
    /// Object attributes written as `null` are left out.
    omit_null_attributes: bool,
}

impl Style {
    const EXACT: Style = Style {
        unknown_as_null: UnknownAsNull(false),
        omit_null_attributes: false,
    };
    const UNKNOWN_AS_NULL: Style = Style {
        unknown_as_null: UnknownAsNull(true),
        omit_null_attributes: false,
    };
    const WITHOUT_NULL_ATTRIBUTES: Style = Style {
        unknown_as_null: UnknownAsNull(true),
        omit_null_attributes: true,
    };

    /// Whether `v`, an object attribute, is left out.
    fn omits(self, v: &Value) -> bool {
        self.omit_null_attributes
            && (v.is_null() || (self.unknown_as_null.0 && matches!(v, Value::Unknown)))
    }
}

fn write_keeping_out_on_error(
    v: &Value,
    ty: &Type,
    out: &mut String,
    style: Style,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write(v, ty, 0, style, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write(
    v: &Value,
    ty: &Type,
    depth: usize,
    style: Style,
    out: &mut String,
) -> Result<(), EncodeError> {
    let v = match lead(v, ty, depth, style.unknown_as_null)? {
        Lead::Null => {
            out.push_str("null");
            return Ok(());
        }
        Lead::Dynamic(t, inner) => return write_dynamic(&t, inner, depth, style, out),
        Lead::Typed(v) => v,
    };
    match (ty, v) {
        (Type::Bool, Value::Bool(b)) => {
            out.push_str(if *b { "true" } else { "false" });
            Ok(())
        }
        (Type::Number, Value::Number(n)) => write_number(n, out),
        (Type::String, Value::String(s)) => {
            push_string(out, s);
            Ok(())
        }
        (Type::List(e) | Type::Set(e), Value::List(xs) | Value::Set(xs)) => {
            write_elements(xs.iter().map(|x| (x, &**e)), depth, style, out)
        }
        (Type::Tuple(ts), Value::Tuple(xs) | Value::List(xs)) => {
            if ts.len() != xs.len() {
                return Err(tuple_length(ts.len(), xs.len()));
            }
            write_elements(xs.iter().zip(ts), depth, style, out)
        }
        // Keys come out of [`crate::Fields`], whose order is `str`'s: the order of the
        // tree's `serde_json::Map` (a `BTreeMap<String, _>`).
        (Type::Map(e), Value::Map(m) | Value::Object(m)) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, k);
                out.push(':');
                write(x, e, depth + 1, style, out)
                    .map_err(|err| err.within(PathStep::ElementKeyString(k.to_string())))?;
            }
            out.push('}');
            Ok(())
        }
        (Type::Object(ot), Value::Object(m) | Value::Map(m)) => {
            out.push('{');
            let mut first = true;
            for (k, t, x) in object_attributes(ot, m)? {
                if style.omits(x) {
                    continue;
                }
                if !std::mem::take(&mut first) {
                    out.push(',');
                }
                push_string(out, k);
                out.push(':');
                write(x, t, depth + 1, style, out)
                    .map_err(|err| err.within(PathStep::Attribute(k.to_string())))?;
            }
            out.push('}');
            Ok(())
        }
        _ => Err(mismatch(ty, v)),
    }
}

/// `[..]` of list, set or tuple elements, each with its type.
fn write_elements<'v>(
    elements: impl Iterator<Item = (&'v Value, &'v Type)>,
    depth: usize,
    style: Style,
    out: &mut String,
) -> Result<(), EncodeError> {
    out.push('[');
    for (i, (x, t)) in elements.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(x, t, depth + 1, style, out)
            .map_err(|err| err.within(PathStep::ElementKeyInt(i as i64)))?;
    }
    out.push(']');
    Ok(())
}

/// `{"type":..,"value":..}`: the tree's two keys in its (sorted) order.
fn write_dynamic(
    t: &Type,
    v: &Value,
    depth: usize,
    style: Style,
    out: &mut String,
) -> Result<(), EncodeError> {
    out.push_str("{\"type\":");
    out.push_str(&t.to_json_value().to_string());
    out.push_str(",\"value\":");
    write(v, t, depth + 1, style, out)?;
    out.push('}');
    Ok(())
}

/// A number as the tree holds it. Integers that fit a machine word and plain decimals (what
/// [`Number`]'s `Display` prints for every finite number) are serde_json's text as they are:
/// with `arbitrary_precision` it keeps a number's text verbatim. Anything else goes through
/// [`json_number`] itself, which also says why NaN and infinities cannot be written.
fn write_number(n: &Number, out: &mut String) -> Result<(), EncodeError> {
    if let Some(i) = n.as_i64() {
        out.push_str(itoa::Buffer::new().format(i));
        return Ok(());
    }
    if !n.is_nan() && !n.is_infinite() {
        let start = out.len();
        n.write_text(out);
        if is_plain_json_number(&out[start..]) {
            return Ok(());
        }
        out.truncate(start);
    }
    let j = json_number(n)?;
    let _ = write!(out, "{j}");
    Ok(())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: a JSON number without an exponent, which serde_json's parser
/// keeps as written (it rewrites only exponents, as `e+N`).
fn is_plain_json_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let int_len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let (int, rest) = digits.split_at(int_len);
    let int_ok = int == b"0" || (!int.is_empty() && int[0] != b'0');
    let frac_ok = match rest.split_first() {
        None => true,
        Some((b'.', frac)) => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    int_ok && frac_ok
}

/// `s` as a JSON string with serde_json's escapes: `\"`, `\\`, the short forms `\b \t \n \f
/// \r`, `\u00XX` (lowercase hex) for the other control characters, everything else as it is.
fn push_string(out: &mut String, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, so a character boundary.
        out.push_str(&s[run..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Whether `bytes` hold a quote, a backslash or a control character: eight bytes at a time
/// (names and most values hold none, and are then copied whole).
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte below `n` (n <= 0x80) in `w`: the classic test, exact about whether there is one.
    let has_below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH != 0;
    let has_byte = |w: u64, b: u8| has_below(w ^ (ONES * u64::from(b)), 1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        if has_below(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\') {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{encode_json_value, encode_json_value_unknown_as_null};
    use crate::msgpack::MAX_DEPTH;

    /// The tree's text, or its error.
    fn tree(v: &Value, ty: &Type, unknown_as_null: bool) -> Result<String, EncodeError> {
        let j = if unknown_as_null {
            encode_json_value_unknown_as_null(v, ty)?
        } else {
            encode_json_value(v, ty)?
        };
        Ok(serde_json::to_string(&j).unwrap_or_default())
    }

    fn text(v: &Value, ty: &Type, unknown_as_null: bool) -> Result<String, EncodeError> {
        let mut out = String::from("prefix ");
        let result = if unknown_as_null {
            write_json_unknown_as_null(v, ty, &mut out)
        } else {
            write_json(v, ty, &mut out)
        };
        match result {
            Ok(()) => Ok(out.strip_prefix("prefix ").unwrap_or("lost").to_string()),
            Err(e) => {
                assert_eq!(out, "prefix ", "left as it was on error");
                Err(e)
            }
        }
    }

    fn num(s: &str) -> Value {
        match Number::parse(s) {
            Ok(n) => Value::Number(n),
            Err(e) => unreachable!("bad test number {s}: {e}"),
        }
    }

    #[test]
    fn text_is_the_trees_text_case_by_case() {
        let strings = Type::map(Type::String);
        let cases: Vec<(&str, Type, Value, Option<&str>)> = vec![
            ("null", Type::String, Value::Null, Some("null")),
            ("bool", Type::Bool, Value::Bool(false), Some("false")),
            ("i64 min", Type::Number, num("-9223372036854775808"), None),
            ("u64 max", Type::Number, num("18446744073709551615"), None),
            ("2^70", Type::Number, num("1180591620717411303424"), None),
            ("fraction", Type::Number, num("0.1"), Some("0.1")),
            ("negative fraction", Type::Number, num("-2.5"), Some("-2.5")),
            ("exponent", Type::Number, num("1e400"), None),
            ("tiny", Type::Number, num("1e-30"), None),
            (
                "f64 whole",
                Type::Number,
                Value::Number(Number::from(1e300)),
                None,
            ),
            (
                "f64 -0",
                Type::Number,
                Value::Number(Number::from(-0.0)),
                Some("0"),
            ),
            (
                "nan",
                Type::Number,
                Value::Number(Number::from(f64::NAN)),
                None,
            ),
            (
                "inf",
                Type::Number,
                Value::Number(Number::from(f64::INFINITY)),
                None,
            ),
            (
                "escapes",
                Type::String,
                Value::string("q\" b\\ \u{8}\u{c}\n\r\t \u{0}\u{1f}\u{7f} / é 😀 \u{2028}"),
                Some("\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0000\\u001f\u{7f} / é 😀 \u{2028}\""),
            ),
            (
                "map keys are escaped and sorted",
                strings.clone(),
                Value::Map(
                    [("b\n", "1"), ("a", "2"), ("é", "3"), ("B", "4")]
                        .into_iter()
                        .map(|(k, v)| (k.to_string().into(), Value::string(v)))
                        .collect(),
                ),
                Some(r#"{"B":"4","a":"2","b\n":"1","é":"3"}"#),
            ),
            (
                "object fills absent attributes",
                Type::object([("z", Type::Number), ("a", Type::list(Type::Bool))]),
                Value::object([("z", Value::Number(Number::from(1i64)))]),
                Some(r#"{"a":null,"z":1}"#),
            ),
            (
                "set, tuple, unknown",
                Type::Tuple(vec![Type::set(Type::Number), Type::String]),
                Value::Tuple(vec![Value::Set(vec![num("1"), num("0.5")]), Value::Unknown]),
                None,
            ),
            (
                "dynamic",
                Type::Dynamic,
                Value::dynamic(Type::list(Type::String), Value::list([Value::string("x")])),
                Some(r#"{"type":["list","string"],"value":["x"]}"#),
            ),
            (
                "dynamic inferred",
                Type::object([("d", Type::Dynamic)]),
                Value::object([("d", Value::Number(Number::from(3i64)))]),
                Some(r#"{"d":{"type":"number","value":3}}"#),
            ),
            ("mismatch", Type::Number, Value::string("x"), None),
            (
                "mismatch inside",
                Type::object([("l", Type::list(Type::Number))]),
                Value::object([("l", Value::list([num("1"), Value::Bool(true)]))]),
                None,
            ),
            (
                "undeclared attribute",
                Type::object([("a", Type::String)]),
                Value::object([("zz", Value::Null)]),
                None,
            ),
            (
                "short tuple",
                Type::Tuple(vec![Type::Bool]),
                Value::Tuple(vec![]),
                None,
            ),
        ];
        for (name, ty, v, want) in cases {
            for unknown_as_null in [false, true] {
                let got = text(&v, &ty, unknown_as_null);
                assert_eq!(
                    got,
                    tree(&v, &ty, unknown_as_null),
                    "{name} ({unknown_as_null})"
                );
                if let (Some(want), Ok(got)) = (want, &got) {
                    assert_eq!(got, want, "{name}");
                }
            }
        }
    }

    #[test]
    fn needs_escape_finds_every_byte_that_needs_one_wherever_it_is() {
        let scalar = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    assert_eq!(
                        needs_escape(&bytes),
                        scalar(&bytes),
                        "{b:#x} at {at} of {len}"
                    );
                    // Neighbours that borrow in the subtraction (0x00, 0x80, 0xff) around it.
                    for n in [0x00, 0x1f, 0x20, 0x21, 0x80, 0xff] {
                        let mut with = bytes.clone();
                        with[(at + 1) % len] = n;
                        assert_eq!(needs_escape(&with), scalar(&with), "{b:#x} at {at}, {n:#x}");
                    }
                }
            }
        }
        let mut out = String::new();
        push_string(&mut out, "plain text \u{e9} of some length");
        assert_eq!(out, "\"plain text \u{e9} of some length\"");
    }

    #[test]
    fn too_deep_is_the_same_error() {
        let mut ty = Type::String;
        let mut v = Value::string("deep");
        for _ in 0..=MAX_DEPTH + 1 {
            ty = Type::list(ty);
            v = Value::list([v]);
        }
        let got = text(&v, &ty, true);
        assert!(got.is_err());
        assert_eq!(got, tree(&v, &ty, true));
    }

    #[test]
    fn plain_numbers() {
        for yes in ["0", "-0", "1", "-12", "0.5", "10.25", "-0.001"] {
            assert!(is_plain_json_number(yes), "{yes}");
        }
        for no in [
            "", "-", "01", "1.", ".5", "1e5", "1.5E-3", "+1", "NaN", "+Inf", "1.2.3",
        ] {
            assert!(!is_plain_json_number(no), "{no}");
        }
    }
}
