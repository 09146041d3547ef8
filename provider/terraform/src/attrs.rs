//! Reading and writing object attributes of decoded values, with the conversions Terraform's
//! types need (numbers to f64 or exact integers, sets and lists of strings, string maps).
//!
//! Getters return `None` for null and for unknown; callers that must tell the two apart check
//! [`is_unknown`] first (plan does, since unknown inputs mean "decide later").

use std::collections::BTreeMap;

use tfvalue::{Number, Value};

pub fn get<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null() && !v.is_unknown())
}

pub fn is_unknown(obj: &Value, name: &str) -> bool {
    obj.get(name).is_some_and(|v| !v.is_known())
}

/// A known string attribute, borrowed.
pub fn str<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    get(obj, name).and_then(Value::as_str)
}

pub fn string(obj: &Value, name: &str) -> Option<String> {
    self::str(obj, name).map(str::to_owned)
}

pub fn number(obj: &Value, name: &str) -> Option<f64> {
    get(obj, name).and_then(|v| v.as_f64())
}

/// The value was a number but not a whole one that fits in 64 bits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NotAWholeNumber;

/// A whole number, or an error when the value is a number with a fraction or out of range.
pub fn integer(obj: &Value, name: &str) -> Result<Option<i64>, NotAWholeNumber> {
    match get(obj, name) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(NotAWholeNumber),
    }
}

pub fn boolean(obj: &Value, name: &str) -> Option<bool> {
    get(obj, name).and_then(|v| v.as_bool())
}

/// Elements of a list or set of strings (nulls inside are skipped; unknowns too).
pub fn strings(obj: &Value, name: &str) -> Vec<String> {
    get(obj, name)
        .and_then(|v| v.as_elements())
        .map(|elems| {
            elems
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn string_map(obj: &Value, name: &str) -> BTreeMap<String, String> {
    get(obj, name)
        .and_then(|v| v.as_entries())
        .map(|entries| {
            entries
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.to_string(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets (or adds) an attribute of an object value; a no-op on non-objects.
pub fn set(obj: &mut Value, name: &str, value: Value) {
    if let Value::Object(attrs) = obj {
        // An attribute of the schema is replaced in place, keeping its (static) name.
        match attrs.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                attrs.insert(name.to_string().into(), value);
            }
        }
    }
}

pub fn str_value(s: Option<&str>) -> Value {
    s.map(Value::string).unwrap_or(Value::Null)
}

pub fn num_value(n: Option<f64>) -> Value {
    n.map(|n| Value::Number(Number::from(n)))
        .unwrap_or(Value::Null)
}

pub fn string_map_value(map: &BTreeMap<String, String>) -> Value {
    Value::map(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::string(v.clone()))),
    )
}

/// Rounds to a fixed number of decimals so values shown in plans are stable and readable.
pub fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_treat_null_and_unknown_as_absent() {
        let obj = Value::object([
            ("a", Value::string("x")),
            ("b", Value::Null),
            ("c", Value::Unknown),
            ("n", Value::number(2.5)),
            ("i", Value::number(3i64)),
        ]);
        assert_eq!(string(&obj, "a").as_deref(), Some("x"));
        assert_eq!(string(&obj, "b"), None);
        assert_eq!(string(&obj, "c"), None);
        assert!(is_unknown(&obj, "c"));
        assert!(!is_unknown(&obj, "b"));
        assert_eq!(number(&obj, "n"), Some(2.5));
        assert_eq!(integer(&obj, "i"), Ok(Some(3)));
        assert_eq!(integer(&obj, "n"), Err(NotAWholeNumber));
    }

    #[test]
    fn rounding_is_stable() {
        assert_eq!(round(0.123456, 4), 0.1235);
        assert_eq!(round(12.0, 2), 12.0);
    }
}
