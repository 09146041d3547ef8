//! The entries of an object or map value: a vector kept sorted by name.
//!
//! Objects and maps used to be `BTreeMap<Name, Value>`s. A workload's state is an object of
//! some 33 attributes holding smaller objects and maps, and applying a thousand workloads spent
//! about a quarter of its instructions building, cloning and searching tree nodes: each node is
//! an allocation, a clone walks every node, a lookup compares strings at every level. These
//! objects are small, are decoded from input that is already sorted (cty writes names in order)
//! and are then mostly read whole, so one vector sorted by name does the same job with one
//! allocation, a `memcpy`-like clone and a binary search.
//!
//! The order is `str`'s, the order the `BTreeMap` had, so iteration, both encodings and
//! equality are unchanged. Building from unsorted input sorts once (`O(n log n)`); only
//! [`Fields::insert`] out of order moves entries, and the decoders never use it that way.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::name::Name;
use crate::value::Value;

/// `a.cmp(b)`, decided on the first bytes when they differ. Attribute names mostly differ
/// there, and `str`'s own `cmp` calls `memcmp` for every comparison: a tenth of the
/// instructions of a lookup-heavy apply went to those calls. Bytes compare as `str`s do.
/// (An eight-byte prefix compared as one number was tried: building it for short names cost
/// more than the calls it saved.)
#[inline]
fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// Where recent lookups found their names, by the address of the name asked for.
///
/// Most lookups ask for a literal (`"placement"`) in objects of one schema, where each name
/// always sits at the same index. One equality check against the index it was last found at
/// then replaces a binary search, whose comparisons (several `memcmp` calls among names that
/// share their first letters) were a twentieth of an apply's instructions. A guess is always
/// checked, so a stale or shared slot only costs the search it would have cost anyway.
static POSITION_HINTS: [AtomicU16; HINT_SLOTS] = [const { AtomicU16::new(u16::MAX) }; HINT_SLOTS];
const HINT_SLOTS: usize = 128;

fn hint_slot(name: &str) -> usize {
    let addr = name.as_ptr() as usize;
    (addr ^ (addr >> 7) ^ name.len()) % HINT_SLOTS
}

/// Attributes of an object or entries of a map, sorted by name, each name once.
#[derive(Clone, Default, PartialEq)]
pub struct Fields(Vec<(Name, Value)>);

impl Fields {
    /// No entries.
    pub const fn new() -> Fields {
        Fields(Vec::new())
    }

    /// No entries, with room for `n`.
    pub fn with_capacity(n: usize) -> Fields {
        Fields(Vec::with_capacity(n))
    }

    /// Entries already sorted by name with no name repeated (as decoders walking a type's
    /// names produce them); not checked in release builds.
    pub fn from_sorted_vec(entries: Vec<(Name, Value)>) -> Fields {
        debug_assert!(
            is_strictly_sorted(&entries),
            "entries are not sorted and unique"
        );
        Fields(entries)
    }

    /// The entries as a slice, sorted by name.
    pub fn as_slice(&self) -> &[(Name, Value)] {
        &self.0
    }

    /// The entries as a vector, sorted by name.
    pub fn into_vec(self) -> Vec<(Name, Value)> {
        self.0
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        let hint = &POSITION_HINTS[hint_slot(name)];
        let guess = usize::from(hint.load(Ordering::Relaxed));
        if self.0.get(guess).is_some_and(|(k, _)| k.as_str() == name) {
            return Ok(guess);
        }
        let found = self
            .0
            .binary_search_by(|(k, _)| name_order(k.as_str(), name));
        if let Some(at) = found.ok().and_then(|i| u16::try_from(i).ok()) {
            hint.store(at, Ordering::Relaxed);
        }
        found
    }

    /// The value under `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    /// The stored name and value under `name`.
    pub fn get_key_value(&self, name: &str) -> Option<(&Name, &Value)> {
        self.position(name).ok().map(|i| {
            let (k, v) = &self.0[i];
            (k, v)
        })
    }

    /// The value under `name`, to change in place.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self.position(name) {
            Ok(i) => Some(&mut self.0[i].1),
            Err(_) => None,
        }
    }

    /// True when `name` has an entry.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets the value under `name`, returning the one it replaces. Appending in name order
    /// costs no search.
    pub fn insert(&mut self, name: Name, value: Value) -> Option<Value> {
        if self
            .0
            .last()
            .is_none_or(|(last, _)| last.as_str() < name.as_str())
        {
            self.0.push((name, value));
            return None;
        }
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    /// Removes the entry under `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.position(name).ok().map(|i| self.0.remove(i).1)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Names and values in name order.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter(self.0.iter())
    }

    /// Names and changeable values in name order.
    pub fn iter_mut(&mut self) -> FieldsIterMut<'_> {
        FieldsIterMut(self.0.iter_mut())
    }

    /// Names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Name> + ExactSizeIterator + Clone {
        self.0.iter().map(|(k, _)| k)
    }

    /// Values in name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + Clone {
        self.0.iter().map(|(_, v)| v)
    }

    /// Changeable values in name order.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut Value> + ExactSizeIterator {
        self.0.iter_mut().map(|(_, v)| v)
    }

    /// Restores the invariant after entries were appended in any order: sorts (stably) and
    /// keeps the last of each repeated name, as a `BTreeMap` fed the same pairs would.
    fn normalize(&mut self) {
        if is_strictly_sorted(&self.0) {
            return;
        }
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the earlier of two equal neighbours: move the later value into it.
        self.0.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                std::mem::swap(&mut later.1, &mut kept.1);
                true
            } else {
                false
            }
        });
    }
}

/// Collects entries whose names must not repeat (msgpack maps and objects), in the order they
/// arrive. While they come sorted, as cty writes them, each is only compared with the last;
/// from the first one out of order on, the names seen are kept in a set, so unsorted hostile
/// input costs `O(n log n)` rather than a shift per entry, and a repeat is still caught where
/// it occurs.
pub(crate) struct UniqueEntries {
    entries: Vec<(Name, Value)>,
    seen: Option<HashSet<Name>>,
}

impl UniqueEntries {
    pub(crate) fn with_capacity(n: usize) -> UniqueEntries {
        UniqueEntries {
            entries: Vec::with_capacity(n),
            seen: None,
        }
    }

    /// Adds an entry; `Err` with the name when it was added before.
    pub(crate) fn push(&mut self, name: Name, value: Value) -> Result<(), Name> {
        let in_order = self.seen.is_none()
            && self
                .entries
                .last()
                .is_none_or(|(last, _)| last.as_str() < name.as_str());
        if !in_order {
            let entries = &self.entries;
            let seen = self
                .seen
                .get_or_insert_with(|| entries.iter().map(|(k, _)| k.clone()).collect());
            if !seen.insert(name.clone()) {
                return Err(name);
            }
        }
        self.entries.push((name, value));
        Ok(())
    }

    pub(crate) fn finish(self) -> Fields {
        if self.seen.is_none() {
            Fields::from_sorted_vec(self.entries)
        } else {
            self.entries.into_iter().collect()
        }
    }
}

fn is_strictly_sorted(entries: &[(Name, Value)]) -> bool {
    entries
        .windows(2)
        .all(|w| w[0].0.as_str() < w[1].0.as_str())
}

impl fmt::Debug for Fields {
    /// As a map, the way the `BTreeMap` printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(Name, Value)> for Fields {
    /// Sorts by name; a repeated name keeps its last value.
    fn from_iter<I: IntoIterator<Item = (Name, Value)>>(iter: I) -> Fields {
        let mut fields = Fields(iter.into_iter().collect());
        fields.normalize();
        fields
    }
}

impl Extend<(Name, Value)> for Fields {
    /// Adds or replaces entries; a repeated name keeps its last value.
    fn extend<I: IntoIterator<Item = (Name, Value)>>(&mut self, iter: I) {
        self.0.extend(iter);
        self.normalize();
    }
}

impl IntoIterator for Fields {
    type Item = (Name, Value);
    type IntoIter = std::vec::IntoIter<(Name, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a Name, &'a Value);
    type IntoIter = FieldsIter<'a>;

    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Fields {
    type Item = (&'a Name, &'a mut Value);
    type IntoIter = FieldsIterMut<'a>;

    fn into_iter(self) -> FieldsIterMut<'a> {
        self.iter_mut()
    }
}

/// Names and values of [`Fields`] in name order.
#[derive(Clone, Debug)]
pub struct FieldsIter<'a>(std::slice::Iter<'a, (Name, Value)>);

impl<'a> Iterator for FieldsIter<'a> {
    type Item = (&'a Name, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for FieldsIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

/// Names and changeable values of [`Fields`] in name order (names stay fixed, so the order
/// holds).
#[derive(Debug)]
pub struct FieldsIterMut<'a>(std::slice::IterMut<'a, (Name, Value)>);

impl<'a> Iterator for FieldsIterMut<'a> {
    type Item = (&'a Name, &'a mut Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for FieldsIterMut<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (&*k, v))
    }
}

impl ExactSizeIterator for FieldsIterMut<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pairs(kvs: &[(&'static str, i64)]) -> Vec<(Name, Value)> {
        kvs.iter()
            .map(|&(k, v)| (Name::from(k), Value::from(v)))
            .collect()
    }

    #[test]
    fn name_order_is_strs_order() {
        let words = [
            "",
            "a",
            "ab",
            "b",
            "B",
            "é",
            "e",
            "ee",
            "cpu",
            "cost",
            "\u{7f}",
            "zz",
            "z",
            "a\0",
            "a\0b",
            "tags",
            "tags_all",
            "tags_al",
            "tags_alm",
            "alternatives",
            "alternatives_count",
            "12345678",
            "12345678\0",
            "1234567",
            "\u{ff}\u{ff}",
        ];
        for a in words {
            for b in words {
                assert_eq!(name_order(a, b), a.cmp(b), "{a:?} against {b:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn name_order_is_strs_order_on_any_strings(
            a in "[\\x00a-c\u{e9}\u{1f600}]{0,12}",
            b in "[\\x00a-c\u{e9}\u{1f600}]{0,12}",
        ) {
            proptest::prop_assert_eq!(name_order(&a, &b), a.cmp(&b));
            proptest::prop_assert_eq!(name_order(&a, &a), std::cmp::Ordering::Equal);
        }
    }

    /// The same literal looked up in objects of different layouts: each lookup's remembered
    /// index is only a guess, checked before use.
    #[test]
    fn lookups_are_right_whatever_the_last_lookup_of_the_name_found() {
        let wide: Fields = pairs(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)])
            .into_iter()
            .collect();
        let narrow: Fields = pairs(&[("b", 5), ("c", 6)]).into_iter().collect();
        let shifted: Fields = pairs(&[("a", 7), ("c", 8), ("d", 9)]).into_iter().collect();
        let no_c: Fields = pairs(&[("a", 1), ("b", 2), ("d", 4)]).into_iter().collect();
        for _ in 0..3 {
            for (f, want) in [
                (&wide, Some(3)),
                (&narrow, Some(6)),
                (&shifted, Some(8)),
                (&no_c, None),
            ] {
                let got = f.get("c").and_then(Value::as_f64);
                assert_eq!(got, want.map(f64::from));
                assert_eq!(f.contains_key("c"), want.is_some());
            }
        }
        // A name found at an index past the end of a shorter object.
        assert_eq!(wide.get("d").and_then(Value::as_f64), Some(4.0));
        assert_eq!(narrow.get("d"), None);
        let mut grown = narrow.clone();
        assert!(grown.insert(Name::from("a"), Value::from(0i64)).is_none());
        assert_eq!(names(&grown), ["a", "b", "c"]);
        assert_eq!(grown.get("c").and_then(Value::as_f64), Some(6.0));
    }

    fn names(f: &Fields) -> Vec<&str> {
        f.keys().map(Name::as_str).collect()
    }

    #[test]
    fn order_of_insertion_does_not_matter() {
        let kvs = [("b", 2), ("a", 1), ("é", 4), ("B", 0), ("c", 3)];
        let mut inserted = Fields::new();
        for (k, v) in pairs(&kvs) {
            assert!(inserted.insert(k, v).is_none());
        }
        let mut reversed = Fields::with_capacity(kvs.len());
        for (k, v) in pairs(&kvs).into_iter().rev() {
            reversed.insert(k, v);
        }
        let collected: Fields = pairs(&kvs).into_iter().collect();
        assert_eq!(names(&inserted), ["B", "a", "b", "c", "é"]);
        assert_eq!(inserted, reversed);
        assert_eq!(inserted, collected);
        // The same order as the map it replaces.
        let tree: BTreeMap<Name, Value> = pairs(&kvs).into_iter().collect();
        let tree_names: Vec<&str> = tree.keys().map(Name::as_str).collect();
        assert_eq!(names(&inserted), tree_names);
        assert_eq!(format!("{inserted:?}"), format!("{tree:?}"));
    }

    #[test]
    fn insert_replaces_in_place() {
        let mut f: Fields = pairs(&[("a", 1), ("b", 2), ("c", 3)]).into_iter().collect();
        assert_eq!(f.insert("b".into(), 20i64.into()), Some(Value::from(2i64)));
        assert_eq!(f.len(), 3);
        assert_eq!(f.get("b"), Some(&Value::from(20i64)));
        assert_eq!(names(&f), ["a", "b", "c"]);
        if let Some(v) = f.get_mut("c") {
            *v = Value::Null;
        }
        assert_eq!(f.get("c"), Some(&Value::Null));
        for v in f.values_mut() {
            *v = Value::Unknown;
        }
        assert!(f.values().all(Value::is_unknown));
    }

    #[test]
    fn repeated_names_keep_the_last_value() {
        let kvs = [("x", 1), ("a", 0), ("x", 2), ("x", 3), ("b", 9), ("a", 5)];
        let f: Fields = pairs(&kvs).into_iter().collect();
        let tree: BTreeMap<Name, Value> = pairs(&kvs).into_iter().collect();
        assert_eq!(names(&f), ["a", "b", "x"]);
        assert_eq!(f.get("x"), Some(&Value::from(3i64)));
        assert_eq!(f.get("a"), Some(&Value::from(5i64)));
        assert!(f.iter().eq(tree.iter()));

        let mut g: Fields = pairs(&[("a", 1), ("c", 1)]).into_iter().collect();
        g.extend(pairs(&[("c", 7), ("b", 2), ("c", 8)]));
        assert_eq!(names(&g), ["a", "b", "c"]);
        assert_eq!(g.get("c"), Some(&Value::from(8i64)));
    }

    #[test]
    fn missing_names_and_removal() {
        let mut f: Fields = pairs(&[("a", 1), ("c", 3)]).into_iter().collect();
        assert_eq!(f.get("b"), None);
        assert_eq!(f.get(""), None);
        assert_eq!(f.get("z"), None);
        assert!(!f.contains_key("b"));
        assert!(f.get_mut("b").is_none());
        assert_eq!(f.remove("b"), None);
        assert_eq!(f.remove("a"), Some(Value::from(1i64)));
        assert_eq!(names(&f), ["c"]);
        assert_eq!(f.get_key_value("c").map(|(k, _)| k.as_str()), Some("c"));
        assert_eq!(f.remove("c"), Some(Value::from(3i64)));
        assert!(f.is_empty());
        assert_eq!(Fields::new(), Fields::default());
        assert_eq!(Fields::new().get("a"), None);
    }

    #[test]
    fn from_sorted_vec_keeps_the_entries() {
        let f = Fields::from_sorted_vec(pairs(&[("a", 1), ("b", 2), ("c", 3)]));
        assert_eq!(names(&f), ["a", "b", "c"]);
        assert_eq!(f.get("b"), Some(&Value::from(2i64)));
        assert_eq!(f.iter().rev().map(|(k, _)| k.as_str()).next(), Some("c"));
        let owned: Vec<(Name, Value)> = f.clone().into_iter().collect();
        assert_eq!(owned, f.into_vec());
        assert!(Fields::from_sorted_vec(Vec::new()).is_empty());
    }

    #[test]
    fn unique_entries_find_repeats_in_any_order() {
        let mut sorted = UniqueEntries::with_capacity(3);
        for (k, v) in pairs(&[("a", 1), ("b", 2), ("c", 3)]) {
            assert!(sorted.push(k, v).is_ok());
        }
        assert_eq!(names(&sorted.finish()), ["a", "b", "c"]);

        let mut repeat_in_order = UniqueEntries::with_capacity(2);
        assert!(repeat_in_order.push("a".into(), Value::Null).is_ok());
        assert_eq!(
            repeat_in_order
                .push("a".into(), Value::Null)
                .map_err(String::from),
            Err("a".to_string())
        );

        let mut unsorted = UniqueEntries::with_capacity(0);
        for (k, v) in pairs(&[("c", 3), ("a", 1), ("d", 4), ("b", 2)]) {
            assert!(unsorted.push(k, v).is_ok());
        }
        assert!(unsorted.push("c".into(), Value::Null).is_err());
        let f = unsorted.finish();
        assert_eq!(names(&f), ["a", "b", "c", "d"]);
        assert_eq!(f.get("c"), Some(&Value::from(3i64)));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not sorted")]
    fn from_sorted_vec_checks_in_debug_builds() {
        let _ = Fields::from_sorted_vec(pairs(&[("b", 1), ("a", 2)]));
    }
}
