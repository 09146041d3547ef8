//! Terraform numbers without silent precision loss.
//!
//! cty numbers are arbitrary-precision decimals, but nearly every number a
//! provider sees is a small integer or an ordinary float. [`Number`] keeps
//! those in machine form and falls back to an exact decimal for everything
//! else (2^70, `0.1` as written in configuration, `1e400`), so a value read
//! from Terraform can be written back unchanged. Equality is by value,
//! whatever the representation, with cty's allowance for floats that went
//! through a decimal text form (state JSON) and back.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use smallvec::SmallVec;

/// Longest plain decimal expansion (digits plus zeros) accepted when parsing,
/// so a hostile `1e999999999` cannot make us allocate gigabytes.
const MAX_PLAIN_DIGITS: i64 = 4096;

/// A Terraform number, stored exactly.
///
/// Integers that fit `i64` (or `u64`) are kept as such, floats received as
/// binary floats stay `f64`, and every other value is kept as a canonical
/// exact decimal. Conversions out of it say whether they are exact
/// ([`Number::as_i64`], [`Number::as_u64`], [`Number::as_f64_exact`]) or
/// rounding ([`Number::as_f64`]). Equality follows cty (see the `PartialEq`
/// impl): exact for whole numbers, by shortest decimal text for fractions.
#[derive(Clone, Debug)]
pub struct Number(Repr);

#[derive(Clone, Debug)]
enum Repr {
    I64(i64),
    /// Only for values above `i64::MAX`.
    U64(u64),
    F64(f64),
    /// Never an integer that fits `i64`/`u64`.
    Big(Decimal),
}

/// Exact decimal `(-1)^neg * digits * 10^exp`, normalised: `digits` are
/// ASCII digits without leading or trailing zeros; zero is the empty string.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Decimal {
    neg: bool,
    digits: Digits,
    exp: i64,
}

/// A decimal's digits: inline up to 23 (every price and score cty sends as text has far
/// fewer), so decoding one allocates nothing. `Value` does not grow: its largest variant is
/// the dynamic one.
type Digits = SmallVec<[u8; 23]>;

/// Where a number's text goes: the msgpack encoder's bytes or the JSON writer's `String`.
pub(crate) trait AsciiSink {
    /// Appends ASCII text.
    fn put(&mut self, ascii: &[u8]);
    /// Appends `n` zeros.
    fn put_zeros(&mut self, n: usize);
    /// Appends what `value` displays.
    fn put_display(&mut self, value: &dyn fmt::Display);
}

impl AsciiSink for Vec<u8> {
    fn put(&mut self, ascii: &[u8]) {
        self.extend_from_slice(ascii);
    }

    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, b'0');
    }

    fn put_display(&mut self, value: &dyn fmt::Display) {
        // Writing to a vector cannot fail.
        let _ = std::io::Write::write_fmt(self, format_args!("{value}"));
    }
}

impl AsciiSink for String {
    fn put(&mut self, ascii: &[u8]) {
        // Callers pass ASCII only, so this never drops anything.
        self.push_str(std::str::from_utf8(ascii).unwrap_or_default());
    }

    fn put_zeros(&mut self, n: usize) {
        self.extend(std::iter::repeat_n('0', n));
    }

    fn put_display(&mut self, value: &dyn fmt::Display) {
        // Writing to a `String` cannot fail.
        let _ = fmt::Write::write_fmt(self, format_args!("{value}"));
    }
}

/// Why a string is not a number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid number {input:?}: {reason}")]
pub struct ParseNumberError {
    input: String,
    reason: &'static str,
}

impl Decimal {
    fn zero() -> Self {
        Decimal {
            neg: false,
            digits: Digits::new(),
            exp: 0,
        }
    }

    fn normalised(neg: bool, mut digits: Digits, mut exp: i64) -> Self {
        let lead = digits.iter().take_while(|d| **d == b'0').count();
        digits.drain(..lead);
        while digits.last() == Some(&b'0') {
            digits.pop();
            exp += 1;
        }
        if digits.is_empty() {
            return Decimal::zero();
        }
        Decimal { neg, digits, exp }
    }

    fn parse(s: &str) -> Result<Self, &'static str> {
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut neg = false;
        if let Some(&c) = bytes.first() {
            if c == b'-' || c == b'+' {
                neg = c == b'-';
                i = 1;
            }
        }
        let mut digits = Digits::new();
        let mut frac_len: i64 = 0;
        let mut seen_digit = false;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            digits.push(bytes[i]);
            seen_digit = true;
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                digits.push(bytes[i]);
                frac_len += 1;
                seen_digit = true;
                i += 1;
            }
        }
        if !seen_digit {
            return Err("no digits");
        }
        let mut exp: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let mut exp_neg = false;
            if i < bytes.len() && (bytes[i] == b'-' || bytes[i] == b'+') {
                exp_neg = bytes[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                // Saturate: anything this large is rejected below anyway.
                exp = exp
                    .saturating_mul(10)
                    .saturating_add(i64::from(bytes[i] - b'0'));
                exp = exp.min(1 << 40);
                i += 1;
            }
            if i == start {
                return Err("exponent has no digits");
            }
            if exp_neg {
                exp = -exp;
            }
        }
        if i != bytes.len() {
            return Err("unexpected character");
        }
        let d = Decimal::normalised(neg, digits, exp - frac_len);
        if d.plain_len() > MAX_PLAIN_DIGITS {
            return Err("too many digits");
        }
        Ok(d)
    }

    /// Length of the plain (no exponent) expansion, without sign.
    fn plain_len(&self) -> i64 {
        let n = self.digits.len() as i64;
        if self.exp >= 0 {
            n + self.exp
        } else {
            n.max(-self.exp) + 1
        }
    }

    fn is_integer(&self) -> bool {
        self.exp >= 0
    }

    /// The integer value as i128 when it is an integer that fits.
    fn to_i128(&self) -> Option<i128> {
        if !self.is_integer() || self.digits.len() as i64 + self.exp > 38 {
            return None;
        }
        let mut v: i128 = 0;
        for d in &self.digits {
            v = v * 10 + i128::from(d - b'0');
        }
        for _ in 0..self.exp {
            v *= 10;
        }
        Some(if self.neg { -v } else { v })
    }

    /// Plain decimal text without exponent, like Go's `Text('f', -1)`.
    fn plain(&self) -> String {
        let mut out = String::new();
        self.write_plain(&mut out);
        out
    }

    /// Appends [`Decimal::plain`]'s text to `out` (the encoders write fractions as text, and
    /// going through `fmt` and a `String` cost them several times the copying).
    fn write_plain(&self, out: &mut impl AsciiSink) {
        if self.digits.is_empty() {
            out.put(b"0");
            return;
        }
        if self.neg {
            out.put(b"-");
        }
        let digits = &self.digits[..];
        if self.exp >= 0 {
            out.put(digits);
            out.put_zeros(self.exp as usize);
        } else {
            let frac = (-self.exp) as usize;
            if digits.len() > frac {
                let (int, f) = digits.split_at(digits.len() - frac);
                out.put(int);
                out.put(b".");
                out.put(f);
            } else {
                out.put(b"0.");
                out.put_zeros(frac - digits.len());
                out.put(digits);
            }
        }
    }

    /// The exact decimal value of a finite f64.
    fn from_f64(f: f64) -> Option<Self> {
        if !f.is_finite() {
            return None;
        }
        if f == 0.0 {
            return Some(Decimal::zero());
        }
        let bits = f.to_bits();
        let neg = bits >> 63 == 1;
        let raw_exp = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (mantissa, exp2) = if raw_exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), raw_exp - 1075)
        };
        // value = mantissa * 2^exp2
        let mut big = BigUint::from_u64(mantissa);
        let exp10 = if exp2 >= 0 {
            let mut left = exp2;
            while left > 0 {
                let step = left.min(29);
                big.mul_small(1u32 << step);
                left -= step;
            }
            0
        } else {
            // m * 2^-k == m * 5^k / 10^k
            let mut left = -exp2;
            while left > 0 {
                let step = left.min(13);
                big.mul_small(5u32.pow(step as u32));
                left -= step;
            }
            exp2
        };
        Some(Decimal::normalised(
            neg,
            Digits::from_vec(big.to_digits()),
            exp10,
        ))
    }

    /// True when no binary fraction, so no `f64`, can equal this decimal: `digits * 10^-k`
    /// with `digits` (no trailing zeros) not divisible by `5^k` keeps a factor 5 in its
    /// reduced denominator. Cheap, so that `as_f64_exact` on the common `0.0184` skips the
    /// exact expansion of the nearest `f64`. `false` means "maybe": ask the slow way.
    fn surely_not_binary(&self) -> bool {
        let Ok(k) = u32::try_from(-self.exp) else {
            return false;
        };
        // 5^55 and every 38-digit number fit u128.
        if self.exp >= 0 || k > 55 || self.digits.len() > 38 {
            return false;
        }
        let digits = self
            .digits
            .iter()
            .fold(0u128, |n, d| n * 10 + u128::from(d - b'0'));
        digits % 5u128.pow(k) != 0
    }

    fn cmp_value(&self, other: &Decimal) -> Ordering {
        match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => {
                return if other.neg {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                return if self.neg {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            _ => {}
        }
        if self.neg != other.neg {
            return if self.neg {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let mag = self.cmp_magnitude(other);
        if self.neg {
            mag.reverse()
        } else {
            mag
        }
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        // Position of the most significant digit.
        let a_top = self.digits.len() as i64 + self.exp;
        let b_top = other.digits.len() as i64 + other.exp;
        if a_top != b_top {
            return a_top.cmp(&b_top);
        }
        // Same magnitude: compare digit strings, padding with zeros.
        let n = self.digits.len().max(other.digits.len());
        for i in 0..n {
            let a = self.digits.get(i).copied().unwrap_or(b'0');
            let b = other.digits.get(i).copied().unwrap_or(b'0');
            if a != b {
                return a.cmp(&b);
            }
        }
        Ordering::Equal
    }
}

/// Minimal unsigned big integer in base 1e9, only for exact f64 expansion.
struct BigUint(Vec<u32>);

impl BigUint {
    const BASE: u64 = 1_000_000_000;

    fn from_u64(mut v: u64) -> Self {
        let mut limbs = Vec::new();
        while v > 0 {
            limbs.push((v % Self::BASE) as u32);
            v /= Self::BASE;
        }
        BigUint(limbs)
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry: u64 = 0;
        for limb in &mut self.0 {
            let x = u64::from(*limb) * u64::from(m) + carry;
            *limb = (x % Self::BASE) as u32;
            carry = x / Self::BASE;
        }
        while carry > 0 {
            self.0.push((carry % Self::BASE) as u32);
            carry /= Self::BASE;
        }
    }

    fn to_digits(&self) -> Vec<u8> {
        let mut out = String::new();
        for (i, limb) in self.0.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&limb.to_string());
            } else {
                out.push_str(&format!("{limb:09}"));
            }
        }
        out.into_bytes()
    }
}

impl Number {
    /// Parses a decimal number as Terraform writes it (`42`, `-1.5`,
    /// `1e400`, `0.1`). The value is kept exactly.
    pub fn parse(s: &str) -> Result<Number, ParseNumberError> {
        let d = Decimal::parse(s).map_err(|reason| ParseNumberError {
            input: s.chars().take(64).collect(),
            reason,
        })?;
        Ok(Number::from_decimal(d))
    }

    fn from_decimal(d: Decimal) -> Number {
        if let Some(v) = d.to_i128() {
            if let Ok(i) = i64::try_from(v) {
                return Number(Repr::I64(i));
            }
            if let Ok(u) = u64::try_from(v) {
                return Number(Repr::U64(u));
            }
        }
        Number(Repr::Big(d))
    }

    /// The value as `i64` when it is an integer in range; never rounds.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::I64(i) => Some(*i),
            Repr::U64(u) => i64::try_from(*u).ok(),
            Repr::F64(f) => {
                // 2^63 is exactly representable, so the bounds are exact.
                if f.fract() == 0.0
                    && *f >= -9_223_372_036_854_775_808.0
                    && *f < 9_223_372_036_854_775_808.0
                {
                    Some(*f as i64)
                } else {
                    None
                }
            }
            Repr::Big(_) => None,
        }
    }

    /// The value as `u64` when it is a non-negative integer in range; never rounds.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::I64(i) => u64::try_from(*i).ok(),
            Repr::U64(u) => Some(*u),
            Repr::F64(f) => {
                if f.fract() == 0.0 && *f >= 0.0 && *f < 18_446_744_073_709_551_616.0 {
                    Some(*f as u64)
                } else {
                    None
                }
            }
            Repr::Big(_) => None,
        }
    }

    /// The nearest `f64` (rounding; `1e400` becomes infinity). Use
    /// [`Number::as_f64_exact`] when rounding is not acceptable.
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::I64(i) => *i as f64,
            Repr::U64(u) => *u as f64,
            Repr::F64(f) => *f,
            Repr::Big(d) => d.plain().parse().unwrap_or(f64::NAN),
        }
    }

    /// The value as `f64` only when that `f64` is exactly this number.
    pub fn as_f64_exact(&self) -> Option<f64> {
        match &self.0 {
            Repr::F64(f) => return Some(*f),
            Repr::Big(d) if d.surely_not_binary() => return None,
            _ => {}
        }
        let f = self.as_f64();
        let exact = Decimal::from_f64(f)?;
        (self.to_decimal().as_ref() == Some(&exact)).then_some(f)
    }

    /// Appends the number's `Display` text to `out`; exact decimals are written directly.
    pub(crate) fn write_text(&self, out: &mut impl AsciiSink) {
        match &self.0 {
            Repr::Big(d) => d.write_plain(out),
            Repr::I64(i) => out.put(itoa::Buffer::new().format(*i).as_bytes()),
            Repr::U64(u) => out.put(itoa::Buffer::new().format(*u).as_bytes()),
            // A fraction: when the shortest round-trip text has at most 15 significant digits
            // it is the only one that short (15-digit decimals lie further apart than a
            // float's rounding interval), so ryu and `Display` print the same digits. Longer
            // ones may differ in the last digit between the two, and exponent forms differ in
            // notation: those go to `Display`.
            Repr::F64(v) if v.is_finite() && v.fract() != 0.0 => {
                let mut buf = ryu::Buffer::new();
                let text = buf.format_finite(*v);
                let bytes = text.as_bytes();
                let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
                let leading_zeros = bytes
                    .iter()
                    .filter(|b| **b != b'-' && **b != b'.')
                    .take_while(|b| **b == b'0')
                    .count();
                if digits - leading_zeros <= 15 && !bytes.contains(&b'e') {
                    out.put(bytes);
                } else {
                    out.put_display(self);
                }
            }
            _ => out.put_display(self),
        }
    }

    /// True when the value is a whole number (infinities are not).
    pub fn is_integer(&self) -> bool {
        match &self.0 {
            Repr::I64(_) | Repr::U64(_) => true,
            Repr::F64(f) => f.is_finite() && f.fract() == 0.0,
            Repr::Big(d) => d.is_integer(),
        }
    }

    /// True for positive or negative infinity.
    pub fn is_infinite(&self) -> bool {
        matches!(self.0, Repr::F64(f) if f.is_infinite())
    }

    /// True for NaN, which Terraform cannot represent; encoders reject it.
    pub fn is_nan(&self) -> bool {
        matches!(self.0, Repr::F64(f) if f.is_nan())
    }

    /// Whether the value is held as an exact decimal because it fits
    /// neither `i64`, `u64` nor (as received) `f64`.
    pub fn is_big(&self) -> bool {
        matches!(self.0, Repr::Big(_))
    }

    fn to_decimal(&self) -> Option<Decimal> {
        match &self.0 {
            Repr::I64(i) => Some(Decimal::normalised(
                *i < 0,
                Digits::from_slice(itoa::Buffer::new().format(i.unsigned_abs()).as_bytes()),
                0,
            )),
            Repr::U64(u) => Some(Decimal::normalised(
                false,
                Digits::from_slice(itoa::Buffer::new().format(*u).as_bytes()),
                0,
            )),
            Repr::F64(f) => Decimal::from_f64(*f),
            Repr::Big(d) => Some(d.clone()),
        }
    }

    /// Numeric comparison; `None` only when NaN is involved.
    pub fn partial_cmp_value(&self, other: &Number) -> Option<Ordering> {
        match (&self.0, &other.0) {
            (Repr::I64(a), Repr::I64(b)) => Some(a.cmp(b)),
            (Repr::I64(_) | Repr::U64(_), Repr::I64(_) | Repr::U64(_)) => {
                Some(self.int_i128().cmp(&other.int_i128()))
            }
            (Repr::F64(a), Repr::F64(b)) => a.partial_cmp(b),
            _ => {
                if self.is_nan() || other.is_nan() {
                    return None;
                }
                match (self.infinite_sign(), other.infinite_sign()) {
                    (Some(a), Some(b)) => return Some(a.cmp(&b)),
                    (Some(a), None) => return Some(a.cmp(&0)),
                    (None, Some(b)) => return Some(0.cmp(&b)),
                    (None, None) => {}
                }
                let a = self.to_decimal()?;
                let b = other.to_decimal()?;
                Some(a.cmp_value(&b))
            }
        }
    }

    /// A compact text equal for two numbers exactly when they are `==`:
    /// whole numbers by exact value, fractions by their shortest decimal
    /// text (cty's rule), written as `[-]digits e exp` so that `1e4000`
    /// costs six bytes, not four thousand.
    pub(crate) fn canonical_key(&self) -> String {
        let d = match &self.0 {
            Repr::F64(v) if v.is_nan() => return "NaN".to_string(),
            Repr::F64(v) if v.is_infinite() => return self.to_string(),
            Repr::F64(v) if v.fract() != 0.0 => Decimal::parse(&format!("{v}")).ok(),
            _ => self.to_decimal(),
        };
        match d {
            Some(d) => format!(
                "{}{}e{}",
                if d.neg { "-" } else { "" },
                String::from_utf8_lossy(&d.digits),
                d.exp
            ),
            None => self.to_string(),
        }
    }

    fn infinite_sign(&self) -> Option<i8> {
        match self.0 {
            Repr::F64(f) if f == f64::INFINITY => Some(1),
            Repr::F64(f) if f == f64::NEG_INFINITY => Some(-1),
            _ => None,
        }
    }

    fn int_i128(&self) -> i128 {
        match self.0 {
            Repr::I64(i) => i128::from(i),
            Repr::U64(u) => i128::from(u),
            _ => 0,
        }
    }
}

impl PartialEq for Number {
    /// Equal by value, with cty's rule: whole numbers compare exactly
    /// (`Number::from(1) == Number::from(1.0)`, `2^70` as f64 equals the
    /// decimal `1180591620717411303424`); fractions compare by their shortest
    /// decimal text, so the float `0.1` equals the decimal `0.1` it is
    /// written as in state. NaN equals nothing.
    fn eq(&self, other: &Number) -> bool {
        // Like with like needs no text: integers compare as integers, two floats are the same
        // shortest decimal exactly when they are the same float (NaN aside), and decimals are
        // normalised, so equal values have equal digits and exponents.
        match (&self.0, &other.0) {
            (Repr::I64(a), Repr::I64(b)) => return a == b,
            (Repr::F64(a), Repr::F64(b)) => return a == b,
            (Repr::Big(a), Repr::Big(b)) => return a == b,
            _ => {}
        }
        if self.is_nan() || other.is_nan() {
            return false;
        }
        match (self.is_integer(), other.is_integer()) {
            (true, true) => self.partial_cmp_value(other) == Some(Ordering::Equal),
            (false, false) => self.canonical_key() == other.canonical_key(),
            _ => false,
        }
    }
}

impl PartialOrd for Number {
    /// Exact numeric order, except that values equal under `==` are `Equal`.
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        if self == other {
            return Some(Ordering::Equal);
        }
        self.partial_cmp_value(other)
    }
}

impl FromStr for Number {
    type Err = ParseNumberError;
    fn from_str(s: &str) -> Result<Number, ParseNumberError> {
        Number::parse(s)
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Number {
        Number(Repr::I64(v))
    }
}

impl From<i32> for Number {
    fn from(v: i32) -> Number {
        Number(Repr::I64(i64::from(v)))
    }
}

impl From<u32> for Number {
    fn from(v: u32) -> Number {
        Number(Repr::I64(i64::from(v)))
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Number {
        match i64::try_from(v) {
            Ok(i) => Number(Repr::I64(i)),
            Err(_) => Number(Repr::U64(v)),
        }
    }
}

impl From<f64> for Number {
    /// Keeps the float as is (NaN included; encoders reject NaN).
    fn from(v: f64) -> Number {
        Number(Repr::F64(v))
    }
}

impl fmt::Display for Number {
    /// Plain decimal without exponent, as cty prints numbers (`1e400` is a
    /// 1 followed by 400 zeros; a float prints its shortest round-trip
    /// form, except whole floats of 2^53 and more, which print exactly);
    /// infinities print as `+Inf`/`-Inf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::I64(i) => write!(f, "{i}"),
            Repr::U64(u) => write!(f, "{u}"),
            Repr::F64(v) if v.is_nan() => f.write_str("NaN"),
            Repr::F64(v) if *v == f64::INFINITY => f.write_str("+Inf"),
            Repr::F64(v) if *v == f64::NEG_INFINITY => f.write_str("-Inf"),
            // Whole floats beyond 2^53 print every digit (not the shortest
            // round-trip form, as cty would), so the text parses back to
            // exactly the same whole number.
            Repr::F64(v) if v.fract() == 0.0 && v.abs() >= 9_007_199_254_740_992.0 => {
                match Decimal::from_f64(*v) {
                    Some(d) => f.write_str(&d.plain()),
                    None => write!(f, "{v}"),
                }
            }
            // Terraform has no negative zero (cty encodes it as integer 0).
            Repr::F64(v) if *v == 0.0 => f.write_str("0"),
            Repr::F64(v) => write!(f, "{v}"),
            Repr::Big(d) => f.write_str(&d.plain()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).expect("valid number")
    }

    /// `as_f64_exact` without the shortcut: the nearest `f64`, expanded exactly.
    fn exact_the_slow_way(x: &Number) -> Option<f64> {
        let f = x.as_f64();
        let exact = Decimal::from_f64(f)?;
        (x.to_decimal().as_ref() == Some(&exact)).then_some(f)
    }

    #[test]
    fn the_not_binary_shortcut_agrees_with_the_exact_expansion() {
        let mut fixed = vec![
            "0.0184",
            "0.5",
            "0.25",
            "0.125",
            "1.375",
            "0.1",
            "0.2",
            "0.3",
            "2.5e-3",
            "0.0009765625",
            "1e-5",
            "3.0517578125e-05",
            "123456789.75",
            "1e-30",
            "0.30000000000000004",
            "5e-324",
            "4.9406564584124654e-324",
            "1.7976931348623157e308",
            "9007199254740993.5",
            "0.000000000000000000000000000001",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        // Every m / 2^k and m / 10^k for small m and k, both signs.
        for m in 1..200u64 {
            for k in 0..40u32 {
                fixed.push(format!("{}", m as f64 / 2f64.powi(k as i32)));
                fixed.push(format!("{m}e-{k}"));
                fixed.push(format!("-{m}e-{k}"));
            }
        }
        for text in &fixed {
            let x = n(text);
            assert_eq!(
                x.as_f64_exact().map(f64::to_bits),
                exact_the_slow_way(&x).map(f64::to_bits),
                "{text}"
            );
        }
        assert_eq!(n("0.0184").as_f64_exact(), None);
        assert_eq!(n("0.375").as_f64_exact(), Some(0.375));
    }

    #[test]
    fn parse_and_display_table() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("42", "42"),
            ("-17", "-17"),
            ("1.0", "1"),
            ("1.50", "1.5"),
            ("0.1", "0.1"),
            ("-0.001", "-0.001"),
            ("1e3", "1000"),
            ("1E-3", "0.001"),
            ("+7", "7"),
            ("18446744073709551615", "18446744073709551615"),
            ("18446744073709551617", "18446744073709551617"),
            ("1180591620717411303424", "1180591620717411303424"),
            (
                "12345678901234567890.123456789",
                "12345678901234567890.123456789",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(n(input).to_string(), want, "input {input}");
        }
        let big = n("1e400").to_string();
        assert_eq!(big.len(), 401);
        assert!(big.starts_with('1') && big[1..].bytes().all(|b| b == b'0'));
    }

    #[test]
    fn parse_rejects_garbage_and_huge() {
        for bad in [
            "",
            "-",
            "abc",
            "1.2.3",
            "1e",
            "1e+",
            "0x10",
            " 1",
            "1 ",
            "1e999999999",
            ".",
        ] {
            assert!(Number::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn representation_choice() {
        assert_eq!(n("9223372036854775807").as_i64(), Some(i64::MAX));
        assert_eq!(n("9223372036854775808").as_i64(), None);
        assert_eq!(n("9223372036854775808").as_u64(), Some(1 << 63));
        assert!(n("18446744073709551616").is_big());
        assert!(n("0.1").is_big());
        assert_eq!(n("0.5").as_f64_exact(), Some(0.5));
        assert_eq!(n("0.1").as_f64_exact(), None);
        assert_eq!(Number::from(0.1).as_f64_exact(), Some(0.1));
        assert_eq!(n("2.5").as_i64(), None);
        assert_eq!(Number::from(3.0).as_i64(), Some(3));
        assert_eq!(Number::from(-1.0).as_u64(), None);
        assert_eq!(Number::from(f64::INFINITY).as_i64(), None);
        assert!(n("1e400").as_f64().is_infinite());
    }

    #[test]
    fn equality_is_numeric() {
        assert_eq!(Number::from(1), Number::from(1.0));
        assert_eq!(Number::from(u64::MAX), n("18446744073709551615"));
        assert_eq!(Number::from(0.5), n("0.5"));
        // cty: fractions are equal when their shortest decimal text is.
        assert_eq!(Number::from(0.1), n("0.1"));
        assert_eq!(Number::from(0.1 + 0.2), n("0.30000000000000004"));
        assert_ne!(Number::from(0.1 + 0.2), n("0.3"));
        assert_eq!(Number::from(-0.0), Number::from(0));
        assert_ne!(n("0.5"), Number::from(1));
        // 2^70 is exactly representable as f64.
        assert_eq!(Number::from(2f64.powi(70)), n("1180591620717411303424"));
        assert_ne!(Number::from(2f64.powi(70)), n("1180591620717411303425"));
        assert_ne!(Number::from(f64::NAN), Number::from(f64::NAN));
        assert_eq!(Number::from(f64::INFINITY), Number::from(f64::INFINITY));
        assert!(n("1e400") < Number::from(f64::INFINITY));
        assert!(n("-1e400") < n("-1e399"));
        assert!(n("0.001") < n("0.01"));
        assert!(Number::from(-1) < Number::from(u64::MAX));
    }

    /// The fast text of integers and fractions is exactly what `Display` prints.
    #[test]
    fn fast_number_text_matches_display() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut nums: Vec<Number> = vec![
            Number::from(0.0172),
            Number::from(77.92),
            Number::from(-0.5),
            Number::from(1e-7),
            Number::from(1.5e16),
            Number::from(123_456.789),
            Number::from(i64::MIN),
            Number::from(u64::MAX),
            Number::from(0),
        ];
        for _ in 0..20_000 {
            let bits = next();
            nums.push(Number::from(f64::from_bits(bits)));
            // Prices and scores: a few decimal places, over a wide range.
            let scale = 10f64.powi((bits % 9) as i32);
            nums.push(Number::from((bits >> 20) as f64 / scale / 1000.0));
            nums.push(Number::from(bits as i64));
        }
        for n in nums {
            if n.is_nan() {
                continue;
            }
            let mut fast = String::new();
            n.write_text(&mut fast);
            assert_eq!(fast, n.to_string(), "{n:?}");
        }
    }

    #[test]
    fn canonical_keys_are_compact_and_match_equality() {
        assert_eq!(n("1e4000").canonical_key(), "1e4000");
        assert_eq!(n("-0.25").canonical_key(), "-25e-2");
        let nums = [
            Number::from(0.1),
            n("0.1"),
            n("0.10000000000000001"),
            Number::from(1),
            Number::from(1.0),
            n("1e0"),
            Number::from(u64::MAX),
            n("18446744073709551615"),
            Number::from(2f64.powi(70)),
            n("1180591620717411303424"),
            n("1180591620717411300000"),
            Number::from(f64::INFINITY),
            Number::from(f64::NEG_INFINITY),
            Number::from(-0.0),
            Number::from(0),
            n("1e400"),
            // Decimals as cty sends prices and scores, and the same values spelled otherwise.
            n("0.0172"),
            n("0.01720"),
            n("172e-4"),
            n("-0.0172"),
            n("77.92"),
            Number::from(0.5),
            n("0.5"),
            n("5e-1"),
        ];
        for a in &nums {
            for b in &nums {
                assert_eq!(
                    a.canonical_key() == b.canonical_key(),
                    a == b,
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn big_whole_floats_display_exactly() {
        assert_eq!(
            Number::from(2f64.powi(70)).to_string(),
            "1180591620717411303424"
        );
        assert_eq!(Number::from(1e300).to_string().len(), 301);
        assert_eq!(
            n(&Number::from(-2.921415268030591e306).to_string()),
            Number::from(-2.921415268030591e306)
        );
        assert_eq!(Number::from(0.1).to_string(), "0.1");
        assert_eq!(Number::from(1e15).to_string(), "1000000000000000");
    }

    #[test]
    fn exact_f64_expansion() {
        assert_eq!(
            Decimal::from_f64(0.1).map(|d| d.plain()),
            Some("0.1000000000000000055511151231257827021181583404541015625".to_string())
        );
        assert_eq!(
            Decimal::from_f64(-2.0).map(|d| d.plain()),
            Some("-2".to_string())
        );
        let tiny = Decimal::from_f64(f64::from_bits(1)).map(|d| d.plain());
        assert!(tiny.is_some_and(|s| s.starts_with("0.000") && s.ends_with("625")));
        let max = Decimal::from_f64(f64::MAX).map(|d| d.plain().len());
        assert_eq!(max, Some(309));
    }
}
