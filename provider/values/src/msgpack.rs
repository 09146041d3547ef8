//! cty's msgpack encoding, the form Terraform uses for `DynamicValue.msgpack`.
//!
//! A small codec of our own rather than a msgpack crate: decoding is driven
//! by the Terraform type (as cty does), and owning the reader lets every
//! length be checked against the remaining input before anything is
//! allocated, so hostile input can neither panic nor exhaust memory.
//!
//! Wire rules (after go-cty's `cty/msgpack`): null is nil; unknown is the
//! extension type 0 (written as `d4 00 00`), refined unknowns (extension 12)
//! are read as plain unknowns (refinements dropped); numbers are the
//! smallest integer form when they fit int64, float64 for fractions that
//! are exact float64s, else the decimal string; lists, sets and tuples are
//! arrays; maps and objects are maps keyed by string (objects carry every
//! attribute of the type, sorted); a value at a dynamic position is a
//! 2-array of its type JSON (as bin) and the value, except an untyped null
//! or unknown, which is written bare.

use crate::encode_steps::{inferred_type, mismatch, object_attributes, too_deep, tuple_length};
use crate::error::{DecodeError, EncodeError};
use crate::fields::{Fields, UniqueEntries};
use crate::json::eerr;
use crate::name::Name;
use crate::number::Number;
use crate::path::{AttributePath, PathStep};
use crate::types::{ObjectType, Type};
use crate::value::{dedup_set, SmolStr, Value};

/// Deepest value nesting accepted by the decoders and encoders.
pub const MAX_DEPTH: usize = 64;

const EXT_UNKNOWN: i8 = 0;
const EXT_REFINED_UNKNOWN: i8 = 12;

/// Decodes a msgpack `DynamicValue` of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let mut d = Decoder { buf: bytes, pos: 0 };
    let v = d.value(ty, 0)?;
    if d.pos != bytes.len() {
        return Err(d.err(format!(
            "{} trailing bytes after the value",
            bytes.len() - d.pos
        )));
    }
    Ok(v)
}

/// The string attribute `name` of the object that `bytes` encode, found without decoding
/// anything else (to look a request up before decoding it): the other attributes are skipped
/// over unread. `None` when the bytes are not a map with string keys, when `name` is absent,
/// null, unknown or not a string, or when the input is damaged before it.
pub fn msgpack_object_str<'a>(bytes: &'a [u8], name: &str) -> Option<&'a str> {
    let field = msgpack_object_field(bytes, name)?;
    std::str::from_utf8(Decoder { buf: field, pos: 0 }.raw_str().ok()??).ok()
}

/// The bytes of the attribute `name` of the object that `bytes` encode, as they stand (a
/// whole msgpack value, of any form: null and unknown included), found like
/// [`msgpack_object_str`] without decoding the others. `None` when the bytes are not a map with
/// string keys, when `name` is absent, or when the input is damaged before the value or in it.
pub fn msgpack_object_field<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut d = Decoder { buf: bytes, pos: 0 };
    let n = d.map_len(&Type::Dynamic).ok()?;
    for _ in 0..n {
        let key = d.raw_str().ok()??;
        let start = d.pos;
        d.skip(0).ok()?;
        if key == name.as_bytes() {
            return bytes.get(start..d.pos);
        }
    }
    None
}

/// Encodes a value of type `ty` as cty msgpack.
pub fn encode_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_msgpack_into(v, ty, &mut out)?;
    Ok(out)
}

/// Appends `v`'s msgpack to `out` (for callers that concatenate several values). On error
/// `out` is left as it was.
pub fn encode_msgpack_into(v: &Value, ty: &Type, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let mut e = Encoder {
        out: std::mem::take(out),
    };
    let result = e.value(v, ty, 0);
    *out = e.out;
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Reads msgpack. Like the encoder's, its errors start at the failing value and gain their path
/// on the way out ([`DecodeError::within`]), so a value that decodes builds no path.
struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// What a msgpack marker byte introduces, for error messages.
fn kind_name(code: u8) -> &'static str {
    match code {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => "integer",
        0x80..=0x8f | 0xde | 0xdf => "map",
        0x90..=0x9f | 0xdc | 0xdd => "array",
        0xa0..=0xbf | 0xd9..=0xdb => "string",
        0xc0 => "null",
        0xc2 | 0xc3 => "bool",
        0xc4..=0xc6 => "binary",
        0xc7..=0xc9 | 0xd4..=0xd8 => "extension",
        0xca | 0xcb => "float",
        _ => "invalid marker 0xc1",
    }
}

impl<'a> Decoder<'a> {
    fn err(&self, message: impl Into<String>) -> DecodeError {
        DecodeError {
            path: AttributePath::root(),
            message: message.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err("unexpected end of input"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "length {n} exceeds the {} bytes left in the input",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len_u8(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(self.byte()?))
    }

    fn len_u16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len_u32(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(u32::from_be_bytes(self.be()?)).map_err(|_| self.err("length too large"))
    }

    fn mismatch(&self, expected: &Type, code: u8) -> DecodeError {
        self.err(format!("expected {expected}, found {}", kind_name(code)))
    }

    /// Reads an extension if one is next; returns its type and length.
    fn try_ext(&mut self) -> Result<Option<(i8, usize)>, DecodeError> {
        let code = self.peek()?;
        let len = match code {
            0xd4 => 1,
            0xd5 => 2,
            0xd6 => 4,
            0xd7 => 8,
            0xd8 => 16,
            0xc7..=0xc9 => 0,
            _ => return Ok(None),
        };
        self.pos += 1;
        let len = match code {
            0xc7 => self.len_u8()?,
            0xc8 => self.len_u16()?,
            0xc9 => self.len_u32()?,
            _ => len,
        };
        let ext_type = self.byte()? as i8;
        self.take(len)?;
        Ok(Some((ext_type, len)))
    }

    /// Reads a string or binary payload.
    fn raw_str(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let code = self.peek()?;
        let len = match code {
            0xa0..=0xbf => usize::from(code & 0x1f),
            0xd9 | 0xc4 => {
                self.pos += 1;
                self.len_u8()?
            }
            0xda | 0xc5 => {
                self.pos += 1;
                self.len_u16()?
            }
            0xdb | 0xc6 => {
                self.pos += 1;
                self.len_u32()?
            }
            _ => return Ok(None),
        };
        if code <= 0xbf {
            self.pos += 1;
        }
        self.take(len).map(Some)
    }

    /// An object whose names come sorted and each at most once, as cty writes them (and
    /// our encoder): the declared names are walked side by side with the given ones, so no
    /// name is looked up, and the sorted entries build the map in one pass. `Ok(None)` when
    /// the input is not like that (out of order, repeated or undeclared names); the caller
    /// then decodes the object again from its start with [`Self::object_any_order`], which
    /// also gives the right error.
    fn object_in_order(
        &mut self,
        ot: &ObjectType,
        ty: &Type,
        depth: usize,
    ) -> Result<Option<Value>, DecodeError> {
        let n = self.map_len(ty)?;
        let mut entries: Vec<(Name, Value)> = Vec::with_capacity(ot.attrs.len());
        let mut declared = ot.attrs.iter().peekable();
        for _ in 0..n {
            let code = self.peek()?;
            // The name as bytes (`str`'s order is theirs): one equal to a declared name is
            // valid UTF-8 without a check; any other sends the object to the any-order path,
            // which checks it.
            let k = self
                .raw_str()?
                .ok_or_else(|| self.mismatch(&Type::String, code))?;
            // cty writes every attribute, so the next declared name is nearly always this one:
            // test that first (a length check rejects most others without comparing bytes).
            let (name, at) = loop {
                match declared.peek().copied() {
                    Some((name, at)) if name.as_str().as_bytes() == k => {
                        declared.next();
                        break (name, at);
                    }
                    // A declared name before this one was absent: null.
                    Some((name, _)) if name.as_str().as_bytes() < k => {
                        entries.push((name.clone(), Value::Null));
                        declared.next();
                    }
                    _ => return Ok(None),
                }
            };
            let v = self
                .value(at, depth + 1)
                .map_err(|e| e.within(PathStep::Attribute(name.to_string())))?;
            entries.push((name.clone(), v));
        }
        entries.extend(declared.map(|(name, _)| (name.clone(), Value::Null)));
        Ok(Some(Value::Object(Fields::from_sorted_vec(entries))))
    }

    /// An object whose names may come in any order: each is looked up in the type.
    fn object_any_order(
        &mut self,
        ot: &ObjectType,
        ty: &Type,
        depth: usize,
    ) -> Result<Value, DecodeError> {
        let n = self.map_len(ty)?;
        let mut given = UniqueEntries::with_capacity(ot.attrs.len());
        for _ in 0..n {
            let k = self.str(&Type::String)?;
            let Some((name, at)) = ot.attrs.get_key_value(k) else {
                return Err(self.err(format!("unsupported attribute {k:?}")));
            };
            let v = self
                .value(at, depth + 1)
                .map_err(|e| e.within(PathStep::Attribute(k.to_string())))?;
            if let Err(name) = given.push(name.clone(), v) {
                return Err(self.err(format!("duplicate attribute {name:?}")));
            }
        }
        // Every given name is declared: walk both in order, absent attributes null.
        let mut given = given.finish().into_iter().peekable();
        let entries = ot
            .attrs
            .keys()
            .map(|name| {
                given
                    .next_if(|(k, _)| k == name)
                    .unwrap_or_else(|| (name.clone(), Value::Null))
            })
            .collect();
        Ok(Value::Object(Fields::from_sorted_vec(entries)))
    }

    /// A string borrowed from the input (attribute names need no copy).
    fn str(&mut self, expected: &Type) -> Result<&'a str, DecodeError> {
        let code = self.peek()?;
        let raw = self
            .raw_str()?
            .ok_or_else(|| self.mismatch(expected, code))?;
        std::str::from_utf8(raw).map_err(|_| self.err("string is not valid UTF-8"))
    }

    fn string(&mut self, expected: &Type) -> Result<SmolStr, DecodeError> {
        self.str(expected).map(SmolStr::new)
    }

    /// Reads an array header; the count is checked against the input left
    /// (every element takes at least one byte).
    fn array_len(&mut self, expected: &Type) -> Result<usize, DecodeError> {
        let code = self.peek()?;
        let n = match code {
            0x90..=0x9f => {
                self.pos += 1;
                usize::from(code & 0x0f)
            }
            0xdc => {
                self.pos += 1;
                self.len_u16()?
            }
            0xdd => {
                self.pos += 1;
                self.len_u32()?
            }
            _ => return Err(self.mismatch(expected, code)),
        };
        if n > self.remaining() {
            return Err(self.err(format!("array of {n} elements exceeds the input")));
        }
        Ok(n)
    }

    /// Steps over the next value, whatever it is, without building it (nesting at most
    /// [`MAX_DEPTH`] deep, as the decoder accepts).
    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err("value nested too deeply"));
        }
        if self.raw_str()?.is_some() || self.try_ext()?.is_some() {
            return Ok(());
        }
        let code = self.byte()?;
        let (items, fixed) = match code {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0xcc | 0xd0 => (0, 1),
            0xcd | 0xd1 => (0, 2),
            0xce | 0xd2 | 0xca => (0, 4),
            0xcf | 0xd3 | 0xcb => (0, 8),
            0x90..=0x9f => (usize::from(code & 0x0f), 0),
            0x80..=0x8f => (2 * usize::from(code & 0x0f), 0),
            0xdc => (self.len_u16()?, 0),
            0xdd => (self.len_u32()?, 0),
            0xde => (2 * self.len_u16()?, 0),
            0xdf => (self.len_u32()?.saturating_mul(2), 0),
            _ => return Err(self.err(format!("unexpected {}", kind_name(code)))),
        };
        self.take(fixed)?;
        if items > self.remaining() {
            return Err(self.err(format!("{items} items exceed the input")));
        }
        for _ in 0..items {
            self.skip(depth + 1)?;
        }
        Ok(())
    }

    fn map_len(&mut self, expected: &Type) -> Result<usize, DecodeError> {
        let code = self.peek()?;
        let n = match code {
            0x80..=0x8f => {
                self.pos += 1;
                usize::from(code & 0x0f)
            }
            0xde => {
                self.pos += 1;
                self.len_u16()?
            }
            0xdf => {
                self.pos += 1;
                self.len_u32()?
            }
            _ => return Err(self.mismatch(expected, code)),
        };
        if n.saturating_mul(2) > self.remaining() {
            return Err(self.err(format!("map of {n} entries exceeds the input")));
        }
        Ok(n)
    }

    fn number(&mut self) -> Result<Number, DecodeError> {
        let code = self.peek()?;
        let n = match code {
            0x00..=0x7f => {
                self.pos += 1;
                Number::from(i64::from(code))
            }
            0xe0..=0xff => {
                self.pos += 1;
                Number::from(i64::from(code as i8))
            }
            0xca..=0xd3 => {
                self.pos += 1;
                match code {
                    0xcc => Number::from(u64::from(self.byte()?)),
                    0xcd => Number::from(u64::from(u16::from_be_bytes(self.be()?))),
                    0xce => Number::from(u64::from(u32::from_be_bytes(self.be()?))),
                    0xcf => Number::from(u64::from_be_bytes(self.be()?)),
                    0xd0 => Number::from(i64::from(self.byte()? as i8)),
                    0xd1 => Number::from(i64::from(i16::from_be_bytes(self.be()?))),
                    0xd2 => Number::from(i64::from(i32::from_be_bytes(self.be()?))),
                    0xd3 => Number::from(i64::from_be_bytes(self.be()?)),
                    0xca => Number::from(f64::from(f32::from_be_bytes(self.be()?))),
                    _ => Number::from(f64::from_be_bytes(self.be()?)),
                }
            }
            _ => {
                let Some(raw) = self.raw_str()? else {
                    return Err(self.mismatch(&Type::Number, code));
                };
                let s = std::str::from_utf8(raw)
                    .map_err(|_| self.err("number string is not valid UTF-8"))?;
                Number::parse(s).map_err(|e| self.err(e.to_string()))?
            }
        };
        if n.is_nan() {
            return Err(self.err("NaN is not a valid number"));
        }
        Ok(n)
    }

    fn value(&mut self, ty: &Type, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("value nested deeper than {MAX_DEPTH} levels")));
        }
        let code = self.peek()?;
        if code == 0xc0 {
            self.pos += 1;
            return Ok(Value::Null);
        }
        // As cty: an extension of at most one byte is an unknown whatever its
        // type code; a longer one must be a refinement map (type 12), whose
        // refinements we drop.
        if let Some((ext, len)) = self.try_ext()? {
            return match ext {
                _ if len <= 1 => Ok(Value::Unknown),
                EXT_REFINED_UNKNOWN => Ok(Value::Unknown),
                other => Err(self.err(format!(
                    "unsupported msgpack extension type {other} with length {len}"
                ))),
            };
        }
        match ty {
            Type::Bool => match code {
                0xc2 | 0xc3 => {
                    self.pos += 1;
                    Ok(Value::Bool(code == 0xc3))
                }
                _ => Err(self.mismatch(ty, code)),
            },
            Type::Number => self.number().map(Value::Number),
            Type::String => self.string(ty).map(Value::String),
            Type::List(elem) | Type::Set(elem) => {
                let n = self.array_len(ty)?;
                let mut xs = Vec::with_capacity(n);
                for i in 0..n {
                    xs.push(
                        self.value(elem, depth + 1)
                            .map_err(|e| e.within(PathStep::ElementKeyInt(i as i64)))?,
                    );
                }
                Ok(if matches!(ty, Type::Set(_)) {
                    Value::Set(dedup_set(xs))
                } else {
                    Value::List(xs)
                })
            }
            Type::Tuple(elems) => {
                let n = self.array_len(ty)?;
                if n != elems.len() {
                    return Err(self.err(format!(
                        "expected a tuple of {} elements, found {n}",
                        elems.len()
                    )));
                }
                let mut xs = Vec::with_capacity(n);
                for (i, et) in elems.iter().enumerate() {
                    xs.push(
                        self.value(et, depth + 1)
                            .map_err(|e| e.within(PathStep::ElementKeyInt(i as i64)))?,
                    );
                }
                Ok(Value::Tuple(xs))
            }
            Type::Map(elem) => {
                let n = self.map_len(ty)?;
                let mut m = UniqueEntries::with_capacity(n);
                for _ in 0..n {
                    let k = self.str(&Type::String)?;
                    let v = self
                        .value(elem, depth + 1)
                        .map_err(|e| e.within(PathStep::ElementKeyString(k.to_string())))?;
                    if let Err(name) = m.push(Name::owned(k), v) {
                        return Err(self.err(format!("duplicate map key {name:?}")));
                    }
                }
                Ok(Value::Map(m.finish()))
            }
            Type::Object(ot) => {
                let start = self.pos;
                match self.object_in_order(ot, ty, depth)? {
                    Some(object) => Ok(object),
                    None => {
                        self.pos = start;
                        self.object_any_order(ot, ty, depth)
                    }
                }
            }
            Type::Dynamic => {
                let n = self.array_len(ty)?;
                if n != 2 {
                    return Err(self.err(format!(
                        "dynamic value must be a 2-element array [type, value], found {n} elements"
                    )));
                }
                let code = self.peek()?;
                let raw = self.raw_str()?.ok_or_else(|| {
                    self.err(format!(
                        "dynamic value type must be type JSON bytes, found {}",
                        kind_name(code)
                    ))
                })?;
                let t = Type::from_json(raw).map_err(|e| self.err(e.to_string()))?;
                let v = self.value(&t, depth + 1)?;
                Ok(Value::Dynamic(t, Box::new(v)))
            }
        }
    }
}

/// A msgpack length prefix: a one-byte "fix" form for small lengths where the kind has one,
/// then 8-, 16- and 32-bit forms. The encoder writes the smallest that fits, as cty does.
#[derive(Clone, Copy)]
struct LenHeader {
    fix: Option<(u8, usize)>,
    c8: Option<u8>,
    c16: u8,
    c32: u8,
}

const STR_HEADER: LenHeader = LenHeader {
    fix: Some((0xa0, 31)),
    c8: Some(0xd9),
    c16: 0xda,
    c32: 0xdb,
};
const BIN_HEADER: LenHeader = LenHeader {
    fix: None,
    c8: Some(0xc4),
    c16: 0xc5,
    c32: 0xc6,
};
const ARRAY_HEADER: LenHeader = LenHeader {
    fix: Some((0x90, 15)),
    c8: None,
    c16: 0xdc,
    c32: 0xdd,
};
const MAP_HEADER: LenHeader = LenHeader {
    fix: Some((0x80, 15)),
    c8: None,
    c16: 0xde,
    c32: 0xdf,
};

impl LenHeader {
    /// The prefix for length `n` (its bytes and how many of them are used); lengths beyond
    /// 32 bits have none.
    fn bytes(self, n: usize) -> Result<([u8; 5], usize), EncodeError> {
        let mut b = [0u8; 5];
        match self.fix {
            Some((fix, max)) if n <= max => {
                b[0] = fix | n as u8;
                return Ok((b, 1));
            }
            _ => {}
        }
        if let (Some(c), Ok(x)) = (self.c8, u8::try_from(n)) {
            b[0] = c;
            b[1] = x;
            Ok((b, 2))
        } else if let Ok(x) = u16::try_from(n) {
            b[0] = self.c16;
            b[1..3].copy_from_slice(&x.to_be_bytes());
            Ok((b, 3))
        } else if let Ok(x) = u32::try_from(n) {
            b[0] = self.c32;
            b[1..5].copy_from_slice(&x.to_be_bytes());
            Ok((b, 5))
        } else {
            Err(eerr("too many elements for msgpack"))
        }
    }
}

/// Writes msgpack. Its errors start at the failing value and gain their path on the way out
/// ([`EncodeError::within`]), so the common case of a value that encodes builds no path.
struct Encoder {
    out: Vec<u8>,
}

impl Encoder {
    fn len_header(&mut self, n: usize, kind: LenHeader) -> Result<(), EncodeError> {
        // One byte for the short lengths that nearly every name, string, object and list has.
        if let Some((code, max)) = kind.fix {
            if n <= max {
                self.out.push(code | n as u8);
                return Ok(());
            }
        }
        let (b, used) = kind.bytes(n)?;
        self.out.extend_from_slice(&b[..used]);
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.out.reserve(s.len() + 1);
        self.len_header(s.len(), STR_HEADER)?;
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn bin(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        self.len_header(b.len(), BIN_HEADER)?;
        self.out.extend_from_slice(b);
        Ok(())
    }

    fn array_header(&mut self, n: usize) -> Result<(), EncodeError> {
        self.len_header(n, ARRAY_HEADER)
    }

    fn map_header(&mut self, n: usize) -> Result<(), EncodeError> {
        self.len_header(n, MAP_HEADER)
    }

    fn int(&mut self, i: i64) {
        if i >= 0 {
            self.uint(i as u64);
        } else if i >= -32 {
            self.out.push(i as u8);
        } else if let Ok(b) = i8::try_from(i) {
            self.out.push(0xd0);
            self.out.push(b as u8);
        } else if let Ok(b) = i16::try_from(i) {
            self.out.push(0xd1);
            self.out.extend_from_slice(&b.to_be_bytes());
        } else if let Ok(b) = i32::try_from(i) {
            self.out.push(0xd2);
            self.out.extend_from_slice(&b.to_be_bytes());
        } else {
            self.out.push(0xd3);
            self.out.extend_from_slice(&i.to_be_bytes());
        }
    }

    fn uint(&mut self, u: u64) {
        if u <= 0x7f {
            self.out.push(u as u8);
        } else if let Ok(b) = u8::try_from(u) {
            self.out.push(0xcc);
            self.out.push(b);
        } else if let Ok(b) = u16::try_from(u) {
            self.out.push(0xcd);
            self.out.extend_from_slice(&b.to_be_bytes());
        } else if let Ok(b) = u32::try_from(u) {
            self.out.push(0xce);
            self.out.extend_from_slice(&b.to_be_bytes());
        } else {
            self.out.push(0xcf);
            self.out.extend_from_slice(&u.to_be_bytes());
        }
    }

    fn number(&mut self, n: &Number) -> Result<(), EncodeError> {
        // cty: an exact int64 as an integer, else a fraction (or infinity)
        // that is an exact float64 as float64, else the decimal string;
        // whole numbers beyond int64 are always strings.
        if n.is_nan() {
            return Err(eerr("NaN cannot be encoded"));
        }
        if let Some(i) = n.as_i64() {
            self.int(i);
        } else if let Some(f) = n.as_f64_exact().filter(|_| !n.is_integer()) {
            self.out.push(0xcb);
            self.out.extend_from_slice(&f.to_be_bytes());
        } else {
            let at = self.reserve_len();
            n.write_text(&mut self.out);
            let len = self.out.len() - at - 1;
            self.patch_len(at, len, STR_HEADER)?;
        }
        Ok(())
    }

    /// Writes a one-byte stand-in for a length prefix whose length is not known yet, for
    /// [`Encoder::patch_len`] to replace.
    fn reserve_len(&mut self) -> usize {
        self.out.push(0);
        self.out.len() - 1
    }

    /// Replaces the stand-in at `at` with the prefix for length `n` (moving what follows when
    /// the prefix is longer than one byte).
    fn patch_len(&mut self, at: usize, n: usize, kind: LenHeader) -> Result<(), EncodeError> {
        let (b, used) = kind.bytes(n)?;
        if used == 1 {
            self.out[at] = b[0];
        } else {
            self.out.splice(at..=at, b[..used].iter().copied());
        }
        Ok(())
    }

    fn elems(&mut self, xs: &[Value], elem: &Type, depth: usize) -> Result<(), EncodeError> {
        self.array_header(xs.len())?;
        for (i, x) in xs.iter().enumerate() {
            self.value(x, elem, depth + 1)
                .map_err(|e| e.within(PathStep::ElementKeyInt(i as i64)))?;
        }
        Ok(())
    }

    fn value(&mut self, v: &Value, ty: &Type, depth: usize) -> Result<(), EncodeError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        match v {
            Value::Null => {
                self.out.push(0xc0);
                return Ok(());
            }
            Value::Unknown => {
                self.out.extend_from_slice(&[0xd4, EXT_UNKNOWN as u8, 0x00]);
                return Ok(());
            }
            // cty keeps the type of a typed null or unknown at a dynamic
            // position: [type, nil] / [type, unknown].
            Value::Dynamic(t, inner) if ty.is_dynamic() => {
                return self.dynamic(t, inner.unwrap_dynamic(), depth);
            }
            Value::Dynamic(_, inner) => return self.value(inner, ty, depth),
            _ => {}
        }
        match (ty, v) {
            (Type::Dynamic, _) => {
                let t = inferred_type(v)?;
                self.dynamic(&t, v, depth)
            }
            (Type::Bool, Value::Bool(b)) => {
                self.out.push(if *b { 0xc3 } else { 0xc2 });
                Ok(())
            }
            (Type::Number, Value::Number(n)) => self.number(n),
            (Type::String, Value::String(s)) => self.str(s),
            (Type::List(e) | Type::Set(e), Value::List(xs) | Value::Set(xs)) => {
                self.elems(xs, e, depth)
            }
            (Type::Tuple(ts), Value::Tuple(xs) | Value::List(xs)) => {
                if ts.len() != xs.len() {
                    return Err(tuple_length(ts.len(), xs.len()));
                }
                self.array_header(xs.len())?;
                for (i, (x, t)) in xs.iter().zip(ts).enumerate() {
                    self.value(x, t, depth + 1)
                        .map_err(|e| e.within(PathStep::ElementKeyInt(i as i64)))?;
                }
                Ok(())
            }
            (Type::Map(e), Value::Map(m) | Value::Object(m)) => {
                self.map_header(m.len())?;
                for (k, x) in m {
                    self.str(k)?;
                    self.value(x, e, depth + 1)
                        .map_err(|err| err.within(PathStep::ElementKeyString(k.to_string())))?;
                }
                Ok(())
            }
            (Type::Object(ot), Value::Object(m) | Value::Map(m)) => {
                let attributes = object_attributes(ot, m)?;
                self.map_header(ot.attrs.len())?;
                for (k, t, x) in attributes {
                    self.str(k)?;
                    self.value(x, t, depth + 1)
                        .map_err(|e| e.within(PathStep::Attribute(k.to_string())))?;
                }
                Ok(())
            }
            _ => Err(mismatch(ty, v)),
        }
    }

    fn dynamic(&mut self, t: &Type, v: &Value, depth: usize) -> Result<(), EncodeError> {
        self.out.push(0x92);
        self.bin(&t.to_json_bytes())?;
        self.value(v, t, depth + 1)
    }
}
