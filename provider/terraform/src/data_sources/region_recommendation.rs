//! `hybrid_region_recommendation`: the regions closest to where the users are.
//!
//! Every catalog region that meets the compliance, residency and provider filters is ranked by
//! the weighted mean round-trip time to the user locations (the catalog's latency model, the
//! one the placement engine scores latency with), then by price when `cpu`/`memory_gb` ask for
//! one, then by provider and code. With `cpu` and `memory_gb`, a region needs a priced instance
//! type that fits, and the cheapest such type and its on-demand price are shown.

use async_trait::async_trait;
use catalog::{Catalog, Region, RegionId};
use placement::{Provider, RawRequirements, Requirements};
use tfvalue::{AttributePath, Type, Value};

use super::common;
use super::{DataSource, ReadResult};
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::resources::ProviderContext;
use crate::schema::{Attr, Block, Schema};

pub const TYPE_NAME: &str = "hybrid_region_recommendation";
const DEFAULT_TOP_K: usize = 5;

const INPUTS: &[&str] = &[
    "user_locations",
    "compliance",
    "data_residency_regions",
    "preferred_providers",
    "cpu",
    "memory_gb",
    "max_latency_ms",
    "top_k",
];

fn latency_type() -> Type {
    Type::object([
        ("name".to_string(), Type::String),
        ("lat".to_string(), Type::Number),
        ("lng".to_string(), Type::Number),
        ("weight".to_string(), Type::Number),
        ("latency_ms".to_string(), Type::Number),
    ])
}

fn recommendation_type() -> Type {
    Type::object([
        ("rank".to_string(), Type::Number),
        ("provider".to_string(), Type::String),
        ("region".to_string(), Type::String),
        ("display_name".to_string(), Type::String),
        ("country".to_string(), Type::String),
        ("weighted_latency_ms".to_string(), Type::Number),
        ("worst_latency_ms".to_string(), Type::Number),
        ("latencies".to_string(), Type::list(latency_type())),
        ("instance_type".to_string(), Type::String),
        ("hourly_price".to_string(), Type::Number),
    ])
}

pub struct RegionRecommendation {
    schema: Schema,
}

impl Default for RegionRecommendation {
    fn default() -> Self {
        RegionRecommendation::new()
    }
}

impl RegionRecommendation {
    pub fn new() -> RegionRecommendation {
        let attributes = vec![
            common::user_locations_attr(true, true, "Where users connect from, with a relative weight and an optional name per group."),
            common::compliance_attr(),
            common::residency_attr(),
            Attr::optional("preferred_providers", Type::list(Type::String), "Only regions of these clouds: aws, azure, gcp. Empty means all three."),
            Attr::optional("cpu", Type::Number, "vCPUs of the workload; with memory_gb, a region needs a priced type that fits and its cheapest price is shown."),
            Attr::optional("memory_gb", Type::Number, "Memory of the workload in GB (with cpu)."),
            Attr::optional("max_latency_ms", Type::Number, "Leave out regions whose round trip to any user location is above this, in ms."),
            common::top_k_attr("How many regions to recommend (1..50, default 5)."),
            Attr::computed("recommendations", Type::list(recommendation_type()), "Best regions first: rank, provider, region, display_name, country, weighted_latency_ms (weighted mean over user_locations), worst_latency_ms, latencies per user location, and with cpu/memory_gb the cheapest fitting instance_type and its hourly_price (USD, on-demand)."),
            Attr::computed("regions_considered", Type::Number, "Regions that met the compliance, residency, provider and latency filters."),
        ];
        RegionRecommendation {
            schema: Schema {
                version: 0,
                block: Block {
                    attributes,
                    blocks: Vec::new(),
                    description: "Recommends regions for weighted user locations, with the expected latency per location group and optional compliance, residency, provider and price requirements.",
                },
            },
        }
    }
}

struct Location {
    name: String,
    lat: f64,
    lng: f64,
    weight: f64,
}

struct Query {
    requirements: Requirements,
    clouds: Vec<catalog::Cloud>,
    locations: Vec<Location>,
    size: Option<(f64, f64)>,
    top_k: usize,
}

fn query(config: &Value, catalog: &Catalog) -> Result<Query, Diagnostics> {
    let mut diags = Diagnostics::new();
    let top_k = common::top_k(config, DEFAULT_TOP_K, &mut diags);
    let providers = common::preferred_providers(config, "preferred_providers", &mut diags);
    let cpu = attrs::number(config, "cpu");
    let memory_gb = attrs::number(config, "memory_gb");
    let size = match (cpu, memory_gb) {
        (Some(c), Some(m)) => Some((c, m)),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            let missing = if cpu.is_none() { "cpu" } else { "memory_gb" };
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr(missing),
                &format!("Missing {missing}"),
                "cpu and memory_gb go together: set both to price a fitting instance type in each region, or neither.",
            ));
            None
        }
    };
    let raw_locations = common::user_locations(config);
    if raw_locations.is_empty() {
        diags.push(Diagnostic::attribute_error(
            AttributePath::root().attr("user_locations"),
            "Missing user_locations",
            "At least one user location is needed to recommend a region.",
        ));
    }
    let raw = RawRequirements {
        cpu: Some(size.map_or(1.0, |s| s.0)),
        memory_gb: Some(size.map_or(1.0, |s| s.1)),
        max_latency_ms: attrs::number(config, "max_latency_ms"),
        compliance: attrs::strings(config, "compliance"),
        data_residency_regions: attrs::strings(config, "data_residency_regions"),
        preferred_providers: providers.clone(),
        user_locations: raw_locations,
        ..RawRequirements::default()
    };
    let requirements = match Requirements::validate(&raw, catalog) {
        Ok(r) => Some(r),
        Err(errors) => {
            diags.extend(common::field_errors(errors, &[]));
            None
        }
    };
    let mut clouds = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        match Provider::parse(p) {
            Some(Provider::Aws) => clouds.push(catalog::Cloud::Aws),
            Some(Provider::Azure) => clouds.push(catalog::Cloud::Azure),
            Some(Provider::Gcp) => clouds.push(catalog::Cloud::Gcp),
            Some(other) => diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("preferred_providers").index(i as i64),
                "Invalid preferred_providers",
                format!("preferred_providers[{i}]: {other} sites are not catalog regions; choose among aws, azure and gcp."),
            )),
            None => {}
        }
    }
    let names: Vec<Option<String>> = attrs::get(config, "user_locations")
        .and_then(|v| v.as_elements())
        .map(|elems| elems.iter().map(|l| attrs::string(l, "name")).collect())
        .unwrap_or_default();
    match requirements {
        Some(requirements) if !diags.has_errors() => {
            let locations = requirements
                .user_locations
                .iter()
                .enumerate()
                .map(|(i, u)| Location {
                    name: names
                        .get(i)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| format!("{},{}", u.lat, u.lng)),
                    lat: u.lat,
                    lng: u.lng,
                    weight: u.weight,
                })
                .collect();
            Ok(Query {
                requirements,
                clouds,
                locations,
                size,
                top_k,
            })
        }
        _ => Err(diags),
    }
}

struct Ranked<'a> {
    region: &'a Region,
    latencies: Vec<f64>,
    weighted: f64,
    worst: f64,
    cheapest: Option<(String, f64)>,
}

/// The cheapest priced type in the region with at least `cpu` vCPUs and `memory_gb` GiB
/// (ties by name).
fn cheapest_fit(
    catalog: &Catalog,
    id: RegionId,
    cpu: f64,
    memory_gb: f64,
) -> Option<(String, f64)> {
    catalog
        .offers_in_region(id)
        .iter()
        .filter_map(|o| {
            let t = catalog.instance_type(o.instance_type);
            (f64::from(t.vcpu) >= cpu && t.memory_gib >= memory_gb)
                .then(|| (t.name.clone(), o.on_demand_hourly_usd))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
}

fn rank<'a>(q: &Query, catalog: &'a Catalog) -> Vec<Ranked<'a>> {
    let total_weight: f64 = q.locations.iter().map(|l| l.weight).sum();
    let mut out: Vec<Ranked<'a>> = catalog
        .region_ids()
        .filter_map(|id| {
            let region = catalog.region(id);
            if !q.clouds.is_empty() && !q.clouds.contains(&region.cloud) {
                return None;
            }
            if !placement::validate_compliance(region, &q.requirements).is_empty() {
                return None;
            }
            let latencies: Vec<f64> = q
                .locations
                .iter()
                .map(|l| catalog.rtt_to_region(l.lat, l.lng, id))
                .collect();
            let worst = latencies.iter().copied().fold(0.0, f64::max);
            if q.requirements.max_latency_ms.is_some_and(|max| worst > max) {
                return None;
            }
            let weighted = q
                .locations
                .iter()
                .zip(&latencies)
                .map(|(l, ms)| l.weight * ms)
                .sum::<f64>()
                / total_weight;
            let cheapest = match q.size {
                Some((cpu, mem)) => Some(cheapest_fit(catalog, id, cpu, mem)?),
                None => None,
            };
            Some(Ranked {
                region,
                latencies,
                weighted,
                worst,
                cheapest,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        attrs::round(a.weighted, 1)
            .total_cmp(&attrs::round(b.weighted, 1))
            .then_with(|| {
                let pa = a.cheapest.as_ref().map_or(f64::INFINITY, |c| c.1);
                let pb = b.cheapest.as_ref().map_or(f64::INFINITY, |c| c.1);
                pa.total_cmp(&pb)
            })
            .then_with(|| a.region.cloud.cmp(&b.region.cloud))
            .then_with(|| a.region.code.cmp(&b.region.code))
    });
    out
}

fn recommendation_value(q: &Query, n: usize, r: &Ranked) -> Value {
    let latencies = q.locations.iter().zip(&r.latencies).map(|(l, ms)| {
        Value::object([
            ("name", Value::string(l.name.clone())),
            ("lat", Value::number(l.lat)),
            ("lng", Value::number(l.lng)),
            ("weight", Value::number(l.weight)),
            ("latency_ms", Value::number(attrs::round(*ms, 1))),
        ])
    });
    Value::object([
        ("rank", Value::number(n as u64 + 1)),
        ("provider", Value::string(r.region.cloud.as_str())),
        ("region", Value::string(r.region.code.clone())),
        ("display_name", Value::string(r.region.display_name.clone())),
        ("country", Value::string(r.region.country.clone())),
        (
            "weighted_latency_ms",
            Value::number(attrs::round(r.weighted, 1)),
        ),
        ("worst_latency_ms", Value::number(attrs::round(r.worst, 1))),
        ("latencies", Value::list(latencies)),
        (
            "instance_type",
            attrs::str_value(r.cheapest.as_ref().map(|c| c.0.as_str())),
        ),
        (
            "hourly_price",
            attrs::num_value(r.cheapest.as_ref().map(|c| attrs::round(c.1, 4))),
        ),
    ])
}

#[async_trait]
impl DataSource for RegionRecommendation {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        if common::any_unknown(config, INPUTS) {
            return Diagnostics::new();
        }
        crate::engine_values::check_with_catalog(|catalog| query(config, catalog))
    }

    async fn read(&self, ctx: &ProviderContext, config: Value) -> ReadResult {
        let mut state = config;
        let q = match query(&state, ctx.catalog) {
            Ok(q) => q,
            Err(diagnostics) => return ReadResult { state, diagnostics },
        };
        let ranked = rank(&q, ctx.catalog);
        let mut diagnostics = Diagnostics::new();
        if ranked.is_empty() {
            diagnostics.push(Diagnostic::warning(
                "No region matches",
                "No region of the embedded catalog meets every filter; `recommendations` is empty.",
            ));
        }
        attrs::set(
            &mut state,
            "regions_considered",
            Value::number(ranked.len() as u64),
        );
        attrs::set(
            &mut state,
            "recommendations",
            Value::list(
                ranked
                    .iter()
                    .take(q.top_k)
                    .enumerate()
                    .map(|(n, r)| recommendation_value(&q, n, r)),
            ),
        );
        if attrs::get(&state, "top_k").is_none() {
            attrs::set(&mut state, "top_k", Value::number(q.top_k as u64));
        }
        ReadResult { state, diagnostics }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin_and_paris() -> Value {
        Value::list([
            Value::object([
                ("lat", Value::number(52.52)),
                ("lng", Value::number(13.40)),
                ("weight", Value::number(3i64)),
                ("name", Value::string("berlin")),
            ]),
            Value::object([
                ("lat", Value::number(48.86)),
                ("lng", Value::number(2.35)),
                ("weight", Value::Null),
                ("name", Value::Null),
            ]),
        ])
    }

    #[test]
    fn the_best_region_for_berlin_is_in_central_europe_and_ranks_are_ordered() {
        let catalog = catalog::embedded();
        let q = query(
            &Value::object([("user_locations", berlin_and_paris())]),
            catalog,
        )
        .expect("valid");
        let ranked = rank(&q, catalog);
        assert!(ranked.len() > 100);
        assert!(ranked
            .windows(2)
            .all(|w| w[0].weighted <= w[1].weighted + 0.05));
        assert_eq!(ranked[0].region.country, "DE", "{}", ranked[0].region.code);
    }

    #[test]
    fn a_price_needs_both_cpu_and_memory() {
        let err = query(
            &Value::object([
                ("user_locations", berlin_and_paris()),
                ("cpu", Value::number(2i64)),
            ]),
            catalog::embedded(),
        )
        .err()
        .expect("invalid");
        assert_eq!(err.0[0].path, Some(AttributePath::root().attr("memory_gb")));
    }
}
