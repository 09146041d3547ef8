//! What the data sources share: the requirement inputs (read the way `hybrid_workload` reads
//! them), engine errors turned into diagnostics on the attribute path, and the value shape of a
//! placement (the same object type as `hybrid_workload.placement`).
//!
//! The placement object and the field-error mapping shared with `hybrid_workload` live in
//! `crate::engine_values`.

#[cfg(test)]
use placement::FieldError;
use placement::RejectionCounts;
use tfvalue::{AttributePath, Type, Value};

use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
pub use crate::engine_values::{
    any_unknown, field_errors, placement_value, preferred_providers, raw_requirements,
    strategy_weights, user_locations, whole,
};
use crate::schema::{Attr, Nesting};

/// The `user_locations` nested attribute, optionally with a `name` label per location.
pub fn user_locations_attr(required: bool, with_name: bool, description: &'static str) -> Attr {
    let mut inner = vec![
        Attr::required("lat", Type::Number, "Latitude in degrees (-90..90)."),
        Attr::required("lng", Type::Number, "Longitude in degrees (-180..180)."),
        Attr::optional(
            "weight",
            Type::Number,
            "Relative share of users here (> 0, default 1).",
        ),
    ];
    if with_name {
        inner.push(Attr::optional(
            "name",
            Type::String,
            "A label for this group of users (default `lat,lng`).",
        ));
    }
    let mut attr = Attr::nested_optional("user_locations", Nesting::List, inner, description);
    if required {
        attr.optional = false;
        attr.required = true;
    }
    attr
}

pub fn compliance_attr() -> Attr {
    Attr::optional(
        "compliance",
        Type::list(Type::String),
        "Required compliance regimes: gdpr, fedramp, soc2, iso27001, hipaa, pci_dss.",
    )
}

pub fn residency_attr() -> Attr {
    Attr::optional(
        "data_residency_regions",
        Type::list(Type::String),
        "Where the data may live: region codes of any provider (eu-west-1, westeurope, europe-west1) or jurisdictions/countries (EU, EEA, US, DE).",
    )
}

pub fn preferred_providers_attr() -> Attr {
    Attr::optional(
        "preferred_providers",
        Type::list(Type::String),
        "Providers allowed: aws, azure, gcp, edge, onprem. Empty means any.",
    )
}

pub fn top_k_attr(description: &'static str) -> Attr {
    Attr::optional_computed("top_k", Type::Number, description)
}

/// Reads `top_k` (a whole number in 1..=50), or the default.
pub fn top_k(config: &Value, default: usize, diags: &mut Diagnostics) -> usize {
    match attrs::integer(config, "top_k") {
        Ok(None) => default,
        Ok(Some(n)) if (1..=50).contains(&n) => n as usize,
        Ok(Some(n)) => {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("top_k"),
                "Invalid top_k",
                format!("top_k must be between 1 and 50, got {n}."),
            ));
            default
        }
        Err(attrs::NotAWholeNumber) => {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("top_k"),
                "Invalid top_k",
                "top_k must be a whole number.",
            ));
            default
        }
    }
}

/// The rejection reasons, in the engine's check order, with their counts (zeros included so
/// the map has the same keys every time).
pub fn rejection_counts(r: &RejectionCounts) -> Vec<(String, usize)> {
    let mut out = vec![
        ("insufficient_cpu".to_string(), r.insufficient_cpu),
        ("insufficient_memory".to_string(), r.insufficient_memory),
        ("no_gpu".to_string(), r.no_gpu),
        ("gpu_model".to_string(), r.gpu_model),
    ];
    for (i, c) in catalog::Compliance::ALL.iter().enumerate() {
        out.push((
            format!("compliance_{}", c.as_str()),
            r.compliance.get(i).copied().unwrap_or(0),
        ));
    }
    out.extend([
        ("data_residency".to_string(), r.data_residency),
        (
            "provider_not_preferred".to_string(),
            r.provider_not_preferred,
        ),
        ("no_price".to_string(), r.no_price),
        ("no_capacity".to_string(), r.no_capacity),
        ("over_budget".to_string(), r.over_budget),
        ("over_latency".to_string(), r.over_latency),
    ]);
    out
}

pub fn rejection_counts_value(r: &RejectionCounts) -> Value {
    Value::map(
        rejection_counts(r)
            .into_iter()
            .map(|(k, n)| (k, Value::number(n as u64))),
    )
}

pub fn strings_value<S: AsRef<str>>(items: &[S]) -> Value {
    Value::list(items.iter().map(|s| Value::string(s.as_ref())))
}

/// Hours in a month, as the product guide and cloud price pages count them.
pub const HOURS_PER_MONTH: f64 = 730.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_rename_and_keep_indices() {
        let diags = field_errors(
            vec![FieldError::new(
                "preferred_providers[2]",
                "unknown provider",
            )],
            &[("preferred_providers", "providers")],
        );
        let d = &diags.0[0];
        assert_eq!(
            d.path,
            Some(AttributePath::root().attr("providers").index(2))
        );
        assert_eq!(d.summary, "Invalid providers");
    }

    #[test]
    fn rejection_counts_have_every_reason() {
        let mut r = RejectionCounts::default();
        r.add(&placement::Rejection::Compliance(catalog::Compliance::Gdpr));
        let counts = rejection_counts(&r);
        assert_eq!(counts.len(), 16);
        assert!(counts.contains(&("compliance_gdpr".to_string(), 1)));
    }
}
