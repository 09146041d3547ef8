//! Attribute paths: where in a value something happened.
//!
//! Terraform diagnostics point at attributes with a path; decode errors and
//! the value walkers here produce the same shape so the provider can turn
//! them into diagnostics without re-deriving locations.

use std::fmt;

/// One step into a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathStep {
    /// An object attribute by name.
    Attribute(String),
    /// A map element by key.
    ElementKeyString(String),
    /// A list or tuple element by index. Set elements also use this step
    /// with their position in the set as stored (sets have no stable index in
    /// Terraform; the number is for humans).
    ElementKeyInt(i64),
}

/// A path from the root of a value, e.g. `placement.scores["cost"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributePath {
    /// The steps, outermost first. Empty means the whole value.
    pub steps: Vec<PathStep>,
}

impl AttributePath {
    /// The empty path (the whole value).
    pub fn root() -> Self {
        AttributePath::default()
    }

    /// This path followed by an attribute step.
    pub fn attr(mut self, name: impl Into<String>) -> Self {
        self.steps.push(PathStep::Attribute(name.into()));
        self
    }

    /// This path followed by a map key step.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.steps.push(PathStep::ElementKeyString(key.into()));
        self
    }

    /// This path followed by a list index step.
    pub fn index(mut self, i: i64) -> Self {
        self.steps.push(PathStep::ElementKeyInt(i));
        self
    }

    /// Appends a step in place.
    pub fn push(&mut self, step: PathStep) {
        self.steps.push(step);
    }

    /// Removes and returns the last step.
    pub fn pop(&mut self) -> Option<PathStep> {
        self.steps.pop()
    }

    /// True for the root path.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl fmt::Display for AttributePath {
    /// `placement.scores["cost"]`, `user_locations[0].lat`; the root is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::Attribute(name) if i == 0 => f.write_str(name)?,
                PathStep::Attribute(name) => write!(f, ".{name}")?,
                PathStep::ElementKeyString(key) => {
                    f.write_str("[\"")?;
                    for c in key.chars() {
                        match c {
                            '"' => f.write_str("\\\"")?,
                            '\\' => f.write_str("\\\\")?,
                            '\n' => f.write_str("\\n")?,
                            c => write!(f, "{c}")?,
                        }
                    }
                    f.write_str("\"]")?;
                }
                PathStep::ElementKeyInt(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_table() {
        let cases = [
            (AttributePath::root(), ""),
            (AttributePath::root().attr("a"), "a"),
            (
                AttributePath::root()
                    .attr("placement")
                    .attr("scores")
                    .key("cost"),
                "placement.scores[\"cost\"]",
            ),
            (
                AttributePath::root()
                    .attr("user_locations")
                    .index(0)
                    .attr("lat"),
                "user_locations[0].lat",
            ),
            (AttributePath::root().key("a\"b"), "[\"a\\\"b\"]"),
            (AttributePath::root().index(3), "[3]"),
        ];
        for (path, want) in cases {
            assert_eq!(path.to_string(), want);
        }
    }
}
