//! Attribute names and map keys.
//!
//! Every decoded object used to allocate each of its attribute names afresh, although they are
//! the schema's names, fixed for the life of the process: a third of the allocations of a
//! resource's apply. A [`Name`] made from a `&'static str` (as schema names are) is only that
//! reference, so copying it into each decoded value costs nothing; names that arrive at run
//! time (map keys, types read from JSON) are owned as before.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use smol_str::SmolStr;

/// An attribute name or map key: a string that is static, or owned (inline when it is short,
/// as map keys mostly are, so those cost no allocation either).
#[derive(Clone)]
pub struct Name(SmolStr);

impl Name {
    /// A name for a string that lives as long as the program (no allocation).
    pub const fn from_static(s: &'static str) -> Name {
        Name(SmolStr::new_static(s))
    }

    /// A name copied from a borrowed string (no allocation up to 23 bytes).
    pub fn owned(s: &str) -> Name {
        Name(SmolStr::new(s))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for Name {
    fn from(s: &'static str) -> Name {
        Name::from_static(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(SmolStr::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name::owned(s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.as_str().to_owned()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

// Hash, Eq and Ord agree with `str`'s, as `Borrow<str>` requires.
impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn static_and_owned_names_are_the_same_name() {
        let a = Name::from("cpu");
        let b = Name::from(String::from("cpu"));
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert_eq!(a, "cpu");
        assert_eq!(format!("{a} {b:?}"), "cpu \"cpu\"");
        let mut m = BTreeMap::new();
        m.insert(b, 1);
        assert_eq!(m.get("cpu"), Some(&1));
        assert_eq!(m.get(a.as_str()), Some(&1));
        assert_eq!(String::from(a), "cpu");
    }
}
