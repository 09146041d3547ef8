//! Stored state JSON straight to msgpack, with no [`Value`](crate::Value) in between.
//!
//! Terraform starts every refresh, re-plan and destroy by handing each resource's stored
//! state to UpgradeResourceState as JSON and expecting msgpack back. When the state was
//! written by the current schema the upgrade changes nothing, yet decoding it into a value
//! tree, encoding that tree and dropping it was a fifth of a re-plan's instructions: one
//! allocation per string and container, and every byte walked three times. Here the type
//! drives one pass over the JSON text that writes the msgpack as it goes.
//!
//! The pass only answers for input it transcodes exactly as `encode_msgpack(decode_json(..))`
//! would, and refuses the rest, which the caller then sends down that slower path: it either
//! produces the same bytes or reports the error with its attribute path. Refused (besides
//! anything malformed): strings with escapes or control characters, leaves in the forms
//! cty's JSON also accepts (`"true"`, numbers written as strings, numbers and bools at string
//! positions), names out of order, repeated or undeclared, `dynamic` positions, sets whose
//! duplicates it cannot rule out by their bytes, and nesting past [`MAX_DEPTH`]. Terraform
//! writes state with sorted names and plain leaves, so the usual state takes this path.

use crate::json_text::needs_escape;
use crate::msgpack::{Encoder, ARRAY_HEADER, MAP_HEADER, MAX_DEPTH};
use crate::number::Number;
use crate::types::{ObjectType, Type};

/// Appends to `out` the msgpack of the JSON `json` read as type `ty`, exactly the bytes that
/// [`encode_msgpack`](crate::encode_msgpack) writes for what [`decode_json`](crate::decode_json)
/// returns. Returns `false` with `out` unchanged when it cannot vouch for that (see the
/// module doc); the caller then decodes and encodes, which also finds any error.
pub fn transcode_json_to_msgpack(json: &[u8], ty: &Type, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut t = Transcoder {
        src: json,
        pos: 0,
        enc: Encoder {
            out: std::mem::take(out),
        },
    };
    let done = t.value(ty, 0).is_some() && {
        t.skip_space();
        t.pos == json.len()
    };
    *out = t.enc.out;
    if !done {
        out.truncate(start);
    }
    done
}

/// Longest set it deduplicates itself by comparing encoded elements pairwise.
const SET_PAIRWISE_MAX: usize = 16;

/// `None` everywhere below means "refused": nothing is reported, the caller takes the
/// decoding path.
struct Transcoder<'a> {
    src: &'a [u8],
    pos: usize,
    enc: Encoder,
}

impl<'a> Transcoder<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += usize::from(hit);
        hit
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(word.len())?;
        (self.src.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A string with no escapes or control characters, borrowed from the input.
    fn plain_string(&mut self) -> Option<&'a str> {
        let src: &'a [u8] = self.src;
        if src.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let end = start + memchr::memchr(b'"', src.get(start..)?)?;
        // Up to the first quote: an escaped one would follow a backslash found here.
        let text = &src[start..end];
        if needs_escape(text) {
            return None;
        }
        self.pos = end + 1;
        std::str::from_utf8(text).ok()
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number's text, checked against JSON's grammar.
    fn number_text(&mut self) -> Option<&'a str> {
        let src: &'a [u8] = self.src;
        let start = self.pos;
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        std::str::from_utf8(&src[start..self.pos]).ok()
    }

    /// The members of a JSON object, each handed to `member` with its name once the cursor is
    /// at its value.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        self.skip_space();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.skip_space();
            let name = self.plain_string()?;
            self.skip_space();
            if !self.eat(b':') {
                return None;
            }
            member(self, name)?;
            self.skip_space();
            if !self.eat(b',') {
                return self.eat(b'}').then_some(());
            }
        }
    }

    /// The elements of a JSON array, each handed to `element` with its index.
    fn elements(&mut self, mut element: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        self.skip_space();
        if self.eat(b']') {
            return Some(());
        }
        let mut i = 0;
        loop {
            element(self, i)?;
            i += 1;
            self.skip_space();
            if !self.eat(b',') {
                return self.eat(b']').then_some(());
            }
        }
    }

    fn value(&mut self, ty: &Type, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            self.enc.out.push(0xc0);
            return Some(());
        }
        match ty {
            Type::Bool => {
                let b = if self.peek()? == b't' {
                    self.literal(b"true")?;
                    0xc3
                } else {
                    self.literal(b"false")?;
                    0xc2
                };
                self.enc.out.push(b);
            }
            Type::Number => {
                let text = self.number_text()?;
                match plain_number(text) {
                    Some(PlainNumber::Int(i)) => self.enc.int(i),
                    Some(PlainNumber::DecimalText) => self.enc.str(text).ok()?,
                    None => self.enc.number(&Number::parse(text).ok()?).ok()?,
                }
            }
            Type::String => {
                let s = self.plain_string()?;
                self.enc.str(s).ok()?;
            }
            Type::List(e) => {
                let at = self.enc.reserve_len();
                let mut n = 0;
                self.elements(|t, _| {
                    n += 1;
                    t.value(e, depth + 1)
                })?;
                self.enc.patch_len(at, n, ARRAY_HEADER).ok()?;
            }
            Type::Set(e) => self.set(e, depth)?,
            Type::Tuple(ts) => {
                self.enc.array_header(ts.len()).ok()?;
                let mut n = 0;
                self.elements(|t, i| {
                    n += 1;
                    t.value(ts.get(i)?, depth + 1)
                })?;
                (n == ts.len()).then_some(())?;
            }
            Type::Map(e) => {
                let at = self.enc.reserve_len();
                let mut n = 0;
                let mut last: Option<&str> = None;
                self.members(|t, key| {
                    // Strictly increasing keys: the decoder would sort and deduplicate.
                    if last.is_some_and(|l| l >= key) {
                        return None;
                    }
                    last = Some(key);
                    n += 1;
                    t.enc.str(key).ok()?;
                    t.value(e, depth + 1)
                })?;
                self.enc.patch_len(at, n, MAP_HEADER).ok()?;
            }
            Type::Object(ot) => self.object(ot, depth)?,
            Type::Dynamic => return None,
        }
        Some(())
    }

    /// An object: every declared attribute in the type's (sorted) order, absent ones null.
    fn object(&mut self, ot: &ObjectType, depth: usize) -> Option<()> {
        self.enc.map_header(ot.attrs.len()).ok()?;
        let mut declared = ot.attrs.iter();
        self.members(|t, key| loop {
            // A name before `key` was absent; one after it means `key` is out of order,
            // repeated or undeclared.
            let (name, attr_ty) = declared.next()?;
            t.enc.str(name).ok()?;
            match name.as_str().cmp(key) {
                std::cmp::Ordering::Less => t.enc.out.push(0xc0),
                std::cmp::Ordering::Equal => return t.value(attr_ty, depth + 1),
                std::cmp::Ordering::Greater => return None,
            }
        })?;
        for (name, _) in declared {
            self.enc.str(name).ok()?;
            self.enc.out.push(0xc0);
        }
        Some(())
    }

    /// A set. The decoder drops repeated elements; this pass vouches for the result only when
    /// it can see there are none: sets of at most one element, and short sets of strings or
    /// bools (equal exactly when their bytes are) with no two elements encoded alike.
    fn set(&mut self, e: &Type, depth: usize) -> Option<()> {
        let bytewise = matches!(e, Type::String | Type::Bool);
        let at = self.enc.reserve_len();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        self.elements(|t, i| {
            if i >= 1 && (!bytewise || i >= SET_PAIRWISE_MAX) {
                return None;
            }
            let start = t.enc.out.len();
            t.value(e, depth + 1)?;
            let end = t.enc.out.len();
            let out = &t.enc.out;
            if spans.iter().any(|&(s, f)| out[s..f] == out[start..end]) {
                return None;
            }
            spans.push((start, end));
            Some(())
        })?;
        self.enc.patch_len(at, spans.len(), ARRAY_HEADER).ok()
    }
}

/// How the encoder writes a number whose JSON text is of a common plain form, found without
/// building a [`Number`] (parsing and printing one was half of this pass).
#[derive(Debug, PartialEq)]
enum PlainNumber {
    /// An integer of at most 18 digits: the encoder writes it as an integer.
    Int(i64),
    /// A fraction of at most 18 digits, written without exponent or trailing zeros, that no
    /// `f64` holds exactly: the encoder writes it as decimal text, and this text is already
    /// the text it would print.
    DecimalText,
}

/// `text` is a number in JSON's grammar.
fn plain_number(text: &str) -> Option<PlainNumber> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let neg = body.len() != text.len();
    let (int, frac) = match body.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (body, None),
    };
    let digits = |s: &str| {
        s.bytes().try_fold(0u64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
        })
    };
    match frac {
        None if int.len() <= 18 => {
            let n = i64::try_from(digits(int)?).ok()?;
            Some(PlainNumber::Int(if neg { -n } else { n }))
        }
        Some(frac) if int.len() + frac.len() <= 18 && !frac.ends_with('0') => {
            // value = m / 10^k = m / (2^k 5^k): a binary fraction only when 5^k divides m.
            let m = digits(int)? * 10u64.pow(frac.len() as u32) + digits(frac)?;
            let five_k = 5u64.pow(frac.len() as u32);
            (!m.is_multiple_of(five_k)).then_some(PlainNumber::DecimalText)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_json, encode_msgpack};

    /// What the slower path makes of `json`, if it makes anything.
    fn decoded_then_encoded(json: &str, ty: &Type) -> Option<Vec<u8>> {
        encode_msgpack(&decode_json(json.as_bytes(), ty).ok()?, ty).ok()
    }

    fn transcoded(json: &str, ty: &Type) -> Option<Vec<u8>> {
        let mut out = vec![0xee];
        let ok = transcode_json_to_msgpack(json.as_bytes(), ty, &mut out);
        assert_eq!(out[0], 0xee, "bytes already in the buffer stay");
        if ok {
            Some(out[1..].to_vec())
        } else {
            assert_eq!(out, [0xee], "a refusal leaves the buffer as it was");
            None
        }
    }

    /// Transcodes `json`, which must not be refused, and checks it against the slower path.
    fn same(json: &str, ty: &Type) {
        let fast = transcoded(json, ty).unwrap_or_else(|| panic!("refused {json}"));
        assert_eq!(Some(fast), decoded_then_encoded(json, ty), "{json}");
    }

    /// `json` must be refused (the slower path then decodes or reports it).
    fn refused(json: &str, ty: &Type) {
        assert_eq!(transcoded(json, ty), None, "{json}");
    }

    fn state_type() -> Type {
        Type::object([
            ("cpu", Type::Number),
            ("name", Type::String),
            ("on", Type::Bool),
            ("tags", Type::Map(Box::new(Type::String))),
            ("zones", Type::List(Box::new(Type::String))),
            ("labels", Type::Set(Box::new(Type::String))),
            ("sizes", Type::Set(Box::new(Type::Number))),
            (
                "placement",
                Type::object([("region", Type::String), ("score", Type::Number)]),
            ),
            ("pair", Type::Tuple(vec![Type::String, Type::Number])),
        ])
    }

    #[test]
    fn plain_state_is_transcoded_as_the_decoder_and_encoder_would() {
        let ty = state_type();
        same(
            r#"{"cpu":0.5,"labels":["a","b"],"name":"web","on":true,"pair":["x",3],"placement":{"region":"eu-north-1","score":77.92},"sizes":[4],"tags":{"a":"1","b":"2"},"zones":["z1","z2"]}"#,
            &ty,
        );
        // Absent attributes are null; whitespace anywhere.
        same(" { \"name\" : \"web\" ,\n\t\"zones\" : [ ] } ", &ty);
        same(r#"{}"#, &ty);
        same("null", &ty);
        same(r#"{"labels":null,"placement":null,"tags":{}}"#, &ty);
    }

    #[test]
    fn numbers_keep_every_digit_and_their_encoding() {
        let ty = Type::List(Box::new(Type::Number));
        for n in [
            "0",
            "-0",
            "1",
            "-1",
            "127",
            "128",
            "-32",
            "-33",
            "255",
            "65536",
            "-2147483649",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551616",
            "0.5",
            "0.1",
            "-0.0172",
            "1e3",
            "1E3",
            "1.5e-7",
            "2.5E+10",
            "123456789012345678901234567890.25",
            "1e400",
            "0.000000000000000000000000000001",
        ] {
            same(&format!("[{n}]"), &ty);
        }
        for bad in [
            "01", "1.", ".5", "+1", "1e", "-", "0x10", "\"1\"", "NaN", "1 2",
        ] {
            refused(&format!("[{bad}]"), &ty);
        }
    }

    #[test]
    fn plain_numbers_are_recognised_only_in_the_forms_the_encoder_would_print() {
        use PlainNumber::{DecimalText, Int};
        for (text, want) in [
            ("0", Some(Int(0))),
            ("-0", Some(Int(0))),
            ("-12", Some(Int(-12))),
            ("999999999999999999", Some(Int(999_999_999_999_999_999))),
            ("9999999999999999999", None), // 19 digits: the general path
            ("0.0172", Some(DecimalText)),
            ("-77.92", Some(DecimalText)),
            ("0.1", Some(DecimalText)),
            ("0.5", None),  // an exact f64: written as a float
            ("0.25", None), // likewise
            ("0.10", None), // trailing zero: printed as 0.1
            ("1e3", None),  // exponents: the general path
            ("1.5e3", None),
            ("12345678901234567.1", Some(DecimalText)), // 18 digits
            ("123456789012345678.1", None),             // 19: the general path
        ] {
            assert_eq!(plain_number(text), want, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_number_text_transcodes_as_decoding_and_encoding_do(
            text in "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?"
        ) {
            same(&format!("[{text}]"), &Type::List(Box::new(Type::Number)));
        }
    }

    #[test]
    fn lengths_past_the_fix_forms_get_the_encoders_prefixes() {
        let strings = Type::List(Box::new(Type::String));
        for n in [15, 16, 255, 256, 70_000] {
            let json = format!("[{}]", vec!["\"s\""; n].join(","));
            same(&json, &strings);
        }
        let long = "x".repeat(70_000);
        for len in [31, 32, 255, 256, 70_000] {
            same(&format!("[\"{}\"]", &long[..len]), &strings);
        }
        let map = Type::Map(Box::new(Type::Bool));
        let json = format!(
            "{{{}}}",
            (0..300)
                .map(|i| format!("\"k{i:04}\":true"))
                .collect::<Vec<_>>()
                .join(",")
        );
        same(&json, &map);
    }

    #[test]
    fn what_the_decoder_would_coerce_sort_or_deduplicate_is_refused() {
        let ty = state_type();
        for json in [
            r#"{"name":"a\"b"}"#,            // escape
            "{\"name\":\"a\tb\"}",           // control character
            r#"{"on":"true"}"#,              // bool as a string
            r#"{"cpu":"2"}"#,                // number as a string
            r#"{"name":5}"#,                 // number at a string position
            r#"{"name":"a","cpu":1}"#,       // out of order
            r#"{"cpu":1,"cpu":2}"#,          // repeated
            r#"{"cpu":1,"extra":2}"#,        // undeclared
            r#"{"tags":{"b":"1","a":"2"}}"#, // map keys out of order
            r#"{"tags":{"a":"1","a":"2"}}"#, // repeated map key
            r#"{"labels":["a","a"]}"#,       // duplicate set element
            r#"{"sizes":[1,2]}"#,            // set of numbers with more than one element
            r#"{"pair":["x"]}"#,             // short tuple
            r#"{"pair":["x",1,2]}"#,         // long tuple
        ] {
            refused(json, &ty);
            // The slower path either decodes it or reports it: never a different value.
        }
        refused(r#"{"v":1}"#, &Type::object([("v", Type::Dynamic)]));
    }

    #[test]
    fn malformed_json_is_refused() {
        let ty = state_type();
        for json in [
            "",
            "{",
            "{\"cpu\":1",
            "{\"cpu\":1,}",
            "{,}",
            "{\"cpu\" 1}",
            "{\"zones\":[\"a\",]}",
            "{\"zones\":[,]}",
            "{} {}",
            "{}x",
            "nul",
            "{\"on\":tru}",
            "{\"name\":\"\u{e9}",
        ] {
            refused(json, &ty);
            assert_eq!(decoded_then_encoded(json, &ty), None, "{json}");
        }
        // Invalid UTF-8 inside a string.
        let mut out = Vec::new();
        assert!(!transcode_json_to_msgpack(
            b"{\"name\":\"\xff\"}",
            &ty,
            &mut out
        ));
    }

    #[test]
    fn nesting_past_the_limit_is_refused() {
        let mut ty = Type::String;
        for _ in 0..(MAX_DEPTH + 2) {
            ty = Type::List(Box::new(ty));
        }
        let json = format!(
            "{}\"x\"{}",
            "[".repeat(MAX_DEPTH + 2),
            "]".repeat(MAX_DEPTH + 2)
        );
        refused(&json, &ty);
    }
}
