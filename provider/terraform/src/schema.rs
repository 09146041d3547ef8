//! Schemas as we write them, and the value type they imply.
//!
//! Resources declare their schema once with these small builders; the same declaration gives
//! Terraform its `GetProviderSchema` answer (see `grpc.rs`), gives us the [`Type`] to decode
//! `DynamicValue`s with, and feeds the schema JSON checked into `schemas/`.
//!
//! Nested attributes (protocol 6) are used only where Terraform 1.0 handles them: a nested
//! attribute sends `nested_type` and never `type` as well (sending both crashes Terraform 1.0.3).

use std::collections::BTreeMap;

use tfvalue::{Name, ObjectType, Type};

/// How a nested attribute or block repeats.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
    Map,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttrKind {
    /// A plain attribute with a type.
    Typed(Type),
    /// A protocol-6 nested attribute: an object with its own attributes, repeated by `Nesting`.
    Nested(Nesting, Vec<Attr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attr {
    pub name: &'static str,
    pub kind: AttrKind,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub description: &'static str,
}

impl Attr {
    fn new(name: &'static str, kind: AttrKind, description: &'static str) -> Attr {
        Attr {
            name,
            kind,
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            description,
        }
    }

    pub fn required(name: &'static str, ty: Type, description: &'static str) -> Attr {
        Attr {
            required: true,
            ..Attr::new(name, AttrKind::Typed(ty), description)
        }
    }

    pub fn optional(name: &'static str, ty: Type, description: &'static str) -> Attr {
        Attr {
            optional: true,
            ..Attr::new(name, AttrKind::Typed(ty), description)
        }
    }

    /// Optional in config; when omitted the provider fills a default at plan time.
    pub fn optional_computed(name: &'static str, ty: Type, description: &'static str) -> Attr {
        Attr {
            optional: true,
            computed: true,
            ..Attr::new(name, AttrKind::Typed(ty), description)
        }
    }

    pub fn computed(name: &'static str, ty: Type, description: &'static str) -> Attr {
        Attr {
            computed: true,
            ..Attr::new(name, AttrKind::Typed(ty), description)
        }
    }

    pub fn nested_optional(
        name: &'static str,
        nesting: Nesting,
        attrs: Vec<Attr>,
        description: &'static str,
    ) -> Attr {
        Attr {
            optional: true,
            ..Attr::new(name, AttrKind::Nested(nesting, attrs), description)
        }
    }

    pub fn sensitive(mut self) -> Attr {
        self.sensitive = true;
        self
    }

    /// The value type this attribute holds.
    pub fn value_type(&self) -> Type {
        match &self.kind {
            AttrKind::Typed(ty) => ty.clone(),
            AttrKind::Nested(nesting, attrs) => {
                let object = Type::Object(ObjectType::new(
                    attrs.iter().map(|a| (a.name, a.value_type())),
                ));
                wrap(*nesting, object)
            }
        }
    }
}

fn wrap(nesting: Nesting, object: Type) -> Type {
    match nesting {
        Nesting::Single => object,
        Nesting::List => Type::list(object),
        Nesting::Set => Type::set(object),
        Nesting::Map => Type::map(object),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NestedBlock {
    pub type_name: &'static str,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Block {
    pub attributes: Vec<Attr>,
    pub blocks: Vec<NestedBlock>,
    pub description: &'static str,
}

impl Block {
    /// The object type of a value of this block (what DynamicValues decode with).
    pub fn value_type(&self) -> Type {
        Type::Object(self.object_type())
    }

    pub fn object_type(&self) -> ObjectType {
        // Static names: every value decoded with this type shares them (see tfvalue::Name).
        let mut attrs: BTreeMap<Name, Type> = self
            .attributes
            .iter()
            .map(|a| (Name::from(a.name), a.value_type()))
            .collect();
        for b in &self.blocks {
            attrs.insert(
                Name::from(b.type_name),
                wrap(b.nesting, b.block.value_type()),
            );
        }
        ObjectType::new(attrs)
    }

    pub fn attribute(&self, name: &str) -> Option<&Attr> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// A resource's or data source's schema with its version (bumped with an upgrade path).
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

fn timeout_description(operation: &str) -> &'static str {
    match operation {
        "create" => "How long a create may take, retries included, as a duration such as \"20m\" or \"1h30m\" (default 20m).",
        "update" => "How long an in-place update may take, retries included, as a duration such as \"20m\" or \"1h30m\" (default 20m).",
        "delete" => "How long a delete may take, retries included, as a duration such as \"20m\" or \"1h30m\" (default 20m).",
        "read" => "How long a refresh may take, retries included, as a duration such as \"5m\".",
        _ => "How long the operation may take, retries included, as a duration such as \"20m\" or \"1h30m\".",
    }
}

/// The shared `timeouts` block (create/update/delete/read durations like "20m", "1h30m").
pub fn timeouts_block(operations: &[&'static str]) -> NestedBlock {
    NestedBlock {
        type_name: "timeouts",
        nesting: Nesting::Single,
        block: Block {
            attributes: operations
                .iter()
                .map(|op| Attr::optional(op, Type::String, timeout_description(op)))
                .collect(),
            blocks: Vec::new(),
            description: "Limits on how long each operation may take, retries included.",
        },
        min_items: 0,
        max_items: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_imply_object_types() {
        let attr = Attr::nested_optional(
            "user_locations",
            Nesting::List,
            vec![
                Attr::required("lat", Type::Number, ""),
                Attr::optional("weight", Type::Number, ""),
            ],
            "",
        );
        assert_eq!(
            attr.value_type(),
            Type::list(Type::object([
                ("lat".to_string(), Type::Number),
                ("weight".to_string(), Type::Number)
            ]))
        );
    }

    #[test]
    fn blocks_include_nested_blocks_in_their_type() {
        let block = Block {
            attributes: vec![Attr::required("name", Type::String, "")],
            blocks: vec![timeouts_block(&["create"])],
            description: "",
        };
        let ty = block.object_type();
        assert_eq!(ty.attrs.len(), 2);
        assert_eq!(
            ty.attrs.get("timeouts"),
            Some(&Type::object([("create".to_string(), Type::String)]))
        );
    }
}
