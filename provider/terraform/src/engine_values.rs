//! Engine results as Terraform values, written once for resources and data sources alike: the
//! `placement` object (the same shape in `hybrid_workload.placement`, its `alternatives` and
//! `data.hybrid_placement`), the requirement inputs read from a configuration into the engine's
//! raw form, and engine field errors as diagnostics on attribute paths.

use placement::{FieldError, Placement, RawRequirements, RawUserLocation};
use tfvalue::{AttributePath, Type, Value};

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

/// Reads an optional whole-number attribute; a fraction is a diagnostic on the attribute.
pub fn whole(config: &Value, name: &str, diags: &mut Diagnostics) -> Option<i64> {
    match attrs::integer(config, name) {
        Ok(v) => v,
        Err(attrs::NotAWholeNumber) => {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr(name),
                &format!("Invalid {name}"),
                format!("{name} must be a whole number."),
            ));
            None
        }
    }
}

pub fn user_locations(config: &Value) -> Vec<RawUserLocation> {
    attrs::get(config, "user_locations")
        .and_then(|v| v.as_elements())
        .map(|elems| {
            elems
                .iter()
                .map(|loc| RawUserLocation {
                    lat: attrs::number(loc, "lat").unwrap_or(f64::NAN),
                    lng: attrs::number(loc, "lng").unwrap_or(f64::NAN),
                    weight: attrs::number(loc, "weight"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `preferred_providers` with the same "sim is a driver, not a place" diagnostic as the
/// workload resource.
pub fn preferred_providers(config: &Value, name: &str, diags: &mut Diagnostics) -> Vec<String> {
    let providers = attrs::strings(config, name);
    for (i, p) in providers.iter().enumerate() {
        if p.eq_ignore_ascii_case("sim") {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr(name).index(i as i64),
                "Invalid preferred provider",
                format!("{name}[{i}]: \"sim\" is the driver that provisions placements when no cloud is configured, not a place to run: choose among aws, azure, gcp, edge and onprem."),
            ));
        }
    }
    providers
}

/// The requirement inputs shared with `hybrid_workload`, as configured.
pub fn raw_requirements(config: &Value, diags: &mut Diagnostics) -> RawRequirements {
    let gpu_count = whole(config, "gpu_count", diags);
    let replicas = whole(config, "replicas", diags);
    RawRequirements {
        cpu: attrs::number(config, "cpu"),
        memory_gb: attrs::number(config, "memory_gb"),
        storage_gb: attrs::number(config, "storage_gb"),
        gpu_count,
        gpu_model: attrs::string(config, "gpu_model"),
        max_latency_ms: attrs::number(config, "max_latency_ms"),
        cost_budget_hourly: attrs::number(config, "cost_budget_hourly"),
        compliance: attrs::strings(config, "compliance"),
        preferred_providers: preferred_providers(config, "preferred_providers", diags),
        data_residency_regions: attrs::strings(config, "data_residency_regions"),
        user_locations: user_locations(config),
        workload_type: attrs::string(config, "workload_type"),
        replicas,
        spot_allowed: attrs::boolean(config, "spot_allowed"),
        pricing_model: None,
    }
}

/// True when any of `names` is unknown in `config` (validation then waits for apply).
pub fn any_unknown(config: &Value, names: &[&str]) -> bool {
    names.iter().any(|n| {
        config.get(n).is_some_and(|v| {
            let mut unknown = false;
            v.walk(|_, x| unknown |= x.is_unknown());
            unknown
        })
    })
}

/// `weights = { cost, performance, latency, resilience }` as the engine takes them; a missing
/// member is NaN so that validation names it instead of silently using 0.
pub fn strategy_weights(config: &Value) -> Option<[f64; 4]> {
    attrs::get(config, "weights").map(|w| {
        [
            attrs::number(w, "cost").unwrap_or(f64::NAN),
            attrs::number(w, "performance").unwrap_or(f64::NAN),
            attrs::number(w, "latency").unwrap_or(f64::NAN),
            attrs::number(w, "resilience").unwrap_or(f64::NAN),
        ]
    })
}

/// Runs a validation that needs the embedded catalog and returns its diagnostics (none on
/// success); a catalog that cannot load is itself a diagnostic.
pub fn check_with_catalog<T>(
    check: impl FnOnce(&'static catalog::Catalog) -> Result<T, Diagnostics>,
) -> Diagnostics {
    match catalog::try_embedded() {
        Ok(catalog) => check(catalog).err().unwrap_or_default(),
        Err(err) => Diagnostic::error(
            "Catalog unavailable",
            format!("The embedded catalog could not be loaded: {err}"),
        )
        .into(),
    }
}
