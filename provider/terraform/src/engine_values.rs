//! Engine results as Terraform values, written once for resources and data sources alike: the
//! `placement` object (the same shape in `hybrid_workload.placement`, its `alternatives` and
//! `data.hybrid_placement`), and engine field errors as diagnostics on attribute paths.

use placement::{FieldError, Placement};
use tfvalue::{Type, Value};

use crate::attrs;
use crate::diagnostics::{path_from_field, Diagnostic, Diagnostics};

/// The type of `placement` and of each element of `alternatives`.
pub fn placement_type() -> Type {
    Type::object([
        ("provider".to_string(), Type::String),
        ("region".to_string(), Type::String),
        ("zone".to_string(), Type::String),
        ("node".to_string(), Type::String),
        ("instance_type".to_string(), Type::String),
        ("estimated_cost_hourly".to_string(), Type::Number),
        ("estimated_latency_ms".to_string(), Type::Number),
        ("score".to_string(), Type::Number),
        ("scores".to_string(), Type::map(Type::Number)),
        ("reason".to_string(), Type::String),
    ])
}

/// The same object as `hybrid_workload.placement` (see `resources::workload::placement_type`).
pub fn placement_value(p: &Placement) -> Value {
    let scores = Value::map([
        (
            "cost",
            attrs::num_value(Some(attrs::round(p.scores.cost, 2))),
        ),
        (
            "performance",
            attrs::num_value(Some(attrs::round(p.scores.performance, 2))),
        ),
        (
            "latency",
            attrs::num_value(Some(attrs::round(p.scores.latency, 2))),
        ),
        (
            "resilience",
            attrs::num_value(Some(attrs::round(p.scores.resilience, 2))),
        ),
    ]);
    Value::object([
        ("provider", Value::string(p.provider.clone())),
        ("region", Value::string(p.region.clone())),
        ("zone", attrs::str_value(p.zone.as_deref())),
        ("node", attrs::str_value(p.node.as_deref())),
        (
            "instance_type",
            attrs::str_value(p.instance_type.as_deref()),
        ),
        (
            "estimated_cost_hourly",
            attrs::num_value(
                p.cost_known
                    .then(|| attrs::round(p.estimated_cost_hourly, 4)),
            ),
        ),
        (
            "estimated_latency_ms",
            attrs::num_value(p.estimated_latency_ms.map(|ms| attrs::round(ms, 1))),
        ),
        ("score", attrs::num_value(Some(attrs::round(p.score, 2)))),
        ("scores", scores),
        ("reason", Value::string(p.reason.clone())),
    ])
}

/// Engine field errors as diagnostics on their attribute paths (as `hybrid_workload` does).
/// `rename` maps an engine field name to this data source's attribute name.
pub fn field_errors(errors: Vec<FieldError>, rename: &[(&str, &str)]) -> Diagnostics {
    errors
        .into_iter()
        .map(|e| {
            let mut field = e.field.clone();
            for (from, to) in rename {
                if let Some(rest) = field.strip_prefix(from) {
                    if rest.is_empty() || rest.starts_with(['.', '[']) {
                        field = format!("{to}{rest}");
                    }
                }
            }
            let top = field.split(['.', '[']).next().unwrap_or("").to_string();
            Diagnostic::attribute_error(
                path_from_field(&field),
                &format!("Invalid {top}"),
                format!("{field}: {}", e.message),
            )
        })
        .collect::<Vec<_>>()
        .into()
}
