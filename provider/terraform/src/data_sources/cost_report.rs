//! `hybrid_cost_report`: what the workloads this provider manages cost, and how to pay less.
//!
//! The live instances come from the driver (`list_managed`: the sim cloud today), each with its
//! provider, region and instance type; they are priced from the catalog's on-demand figures
//! times the workload's replicas (read from the workload description stored with the instance;
//! 1 when absent). Compute only: storage and egress are not in the report. An instance the
//! catalog cannot price (edge node, type or region not in the snapshot) is reported with a null
//! price and listed in `unpriced_workloads`; it is never counted as $0.
//!
//! Recommendations, each with the saving in USD and percent:
//! - `cheaper_region`: the same type from the same provider in a region of the same
//!   jurisdiction (same EU/EEA/US-GOV membership, or the same country when the region has none)
//!   that holds every compliance regime the current region holds.
//! - `cheaper_type`: a cheaper type in the same region with at least the vCPUs, memory and
//!   GPUs (same GPU model) of the current one, same CPU architecture.
//! - `spot`: the same type and region at the catalog's real spot/preemptible price, only when
//!   `spot_allowed = true` (AWS has no spot figures in the snapshot, so never for AWS).
//! - `right_size`: for a workload whose `cpu_utilization` is below 0.3, the type of the same
//!   family (else any family of the same architecture) with the next lower vCPU count in the
//!   region that still holds `memory_gib x memory_utilization x 1.25` (25 % headroom).

use std::collections::BTreeMap;

use async_trait::async_trait;
use catalog::{Catalog, Cloud, InstanceType, Offer, Region, RegionId, TypeId};
use clouds::Instance;
use tfvalue::{AttributePath, Type, Value};

use super::common::{self, HOURS_PER_MONTH};
use super::{DataSource, ReadResult};
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::resources::ProviderContext;
use crate::schema::{Attr, Block, Nesting, Schema};

pub const TYPE_NAME: &str = "hybrid_cost_report";

/// Below this CPU utilisation a workload is a right-sizing candidate.
pub const RIGHT_SIZE_CPU_THRESHOLD: f64 = 0.3;
/// Memory kept free above the observed use when right-sizing.
pub const MEMORY_HEADROOM: f64 = 1.25;

fn workload_type() -> Type {
    Type::object([
        ("workload_id".to_string(), Type::String),
        ("name".to_string(), Type::String),
        ("provider".to_string(), Type::String),
        ("region".to_string(), Type::String),
        ("instance_type".to_string(), Type::String),
        ("replicas".to_string(), Type::Number),
        ("hourly_cost".to_string(), Type::Number),
        ("monthly_cost".to_string(), Type::Number),
        ("price_known".to_string(), Type::Bool),
    ])
}

fn group_type(with_region: bool) -> Type {
    let mut attrs = vec![
        ("provider".to_string(), Type::String),
        ("workloads".to_string(), Type::Number),
        ("unpriced_workloads".to_string(), Type::Number),
        ("hourly_cost".to_string(), Type::Number),
        ("monthly_cost".to_string(), Type::Number),
    ];
    if with_region {
        attrs.push(("region".to_string(), Type::String));
    }
    Type::object(attrs)
}

fn recommendation_type() -> Type {
    Type::object([
        ("workload_id".to_string(), Type::String),
        ("kind".to_string(), Type::String),
        ("description".to_string(), Type::String),
        ("provider".to_string(), Type::String),
        ("current_region".to_string(), Type::String),
        ("current_instance_type".to_string(), Type::String),
        ("suggested_region".to_string(), Type::String),
        ("suggested_instance_type".to_string(), Type::String),
        ("pricing".to_string(), Type::String),
        ("current_hourly".to_string(), Type::Number),
        ("suggested_hourly".to_string(), Type::Number),
        ("savings_hourly".to_string(), Type::Number),
        ("savings_monthly".to_string(), Type::Number),
        ("savings_percentage".to_string(), Type::Number),
    ])
}

pub struct CostReport {
    schema: Schema,
}

impl Default for CostReport {
    fn default() -> Self {
        CostReport::new()
    }
}

impl CostReport {
    pub fn new() -> CostReport {
        let attributes = vec![
            Attr::nested_optional(
                "utilization",
                Nesting::List,
                vec![
                    Attr::required("workload_id", Type::String, "The hybrid_workload id (wl-...)."),
                    Attr::required("cpu_utilization", Type::Number, "Observed CPU utilisation, a fraction 0..1."),
                    Attr::required("memory_utilization", Type::Number, "Observed memory utilisation, a fraction 0..1."),
                ],
                "Observed utilisation per workload, for right-sizing: below 0.3 CPU a smaller type is suggested.",
            ),
            Attr::optional("spot_allowed", Type::Bool, "Suggest spot/preemptible pricing where the catalog has a real spot figure."),
            Attr::computed("workloads", Type::list(workload_type()), "Every managed workload: id, name, provider, region, instance_type, replicas, hourly and monthly cost (null when the catalog has no price), price_known."),
            Attr::computed("by_provider", Type::list(group_type(false)), "Cost per provider (priced workloads only; unpriced ones are counted apart)."),
            Attr::computed("by_region", Type::list(group_type(true)), "Cost per provider and region (priced workloads only; unpriced ones are counted apart)."),
            Attr::computed("total_hourly", Type::Number, "Sum of the known hourly costs, USD. Incomplete when unpriced_workloads is not empty."),
            Attr::computed("total_monthly", Type::Number, "total_hourly x 730 h, USD."),
            Attr::computed("unpriced_workloads", Type::list(Type::String), "Workloads whose price the catalog does not know (not counted in the totals)."),
            Attr::computed("recommendations", Type::list(recommendation_type()), "Ways to pay less, biggest saving first: kind (cheaper_region, cheaper_type, spot, right_size), what to change, current and suggested hourly cost (whole workload), savings per hour and month and savings_percentage."),
            Attr::computed("potential_savings_monthly", Type::Number, "The largest saving per workload, summed, USD per month (recommendations of one workload are alternatives, not additive)."),
        ];
        CostReport {
            schema: Schema {
                version: 0,
                block: Block {
                    attributes,
                    blocks: Vec::new(),
                    description: "Cost by provider and region of the workloads this provider manages, priced from the embedded catalog, with savings recommendations and right-sizing from supplied utilisation.",
                },
            },
        }
    }
}

/// Observed utilisation of one workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Utilization {
    pub cpu: f64,
    pub memory: f64,
}

struct Inputs {
    utilization: BTreeMap<String, Utilization>,
    spot_allowed: bool,
}

fn inputs(config: &Value) -> Result<Inputs, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut utilization = BTreeMap::new();
    let entries = attrs::get(config, "utilization")
        .and_then(|v| v.as_elements())
        .unwrap_or_default();
    for (i, e) in entries.iter().enumerate() {
        let mut fraction = |name: &str| -> f64 {
            let v = attrs::number(e, name).unwrap_or(f64::NAN);
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                diags.push(Diagnostic::attribute_error(
                    AttributePath::root()
                        .attr("utilization")
                        .index(i as i64)
                        .attr(name),
                    &format!("Invalid {name}"),
                    format!("utilization[{i}].{name} must be a fraction between 0 and 1 (0.25 means 25 %), got {v}."),
                ));
            }
            v
        };
        let cpu = fraction("cpu_utilization");
        let memory = fraction("memory_utilization");
        let id = attrs::string(e, "workload_id").unwrap_or_default();
        if utilization
            .insert(id.clone(), Utilization { cpu, memory })
            .is_some()
        {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root()
                    .attr("utilization")
                    .index(i as i64)
                    .attr("workload_id"),
                "Duplicate workload_id",
                format!("utilization lists {id:?} more than once."),
            ));
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Inputs {
        utilization,
        spot_allowed: attrs::boolean(config, "spot_allowed").unwrap_or(false),
    })
}

/// One managed workload as priced from the catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct Priced {
    pub workload_id: String,
    pub name: String,
    pub provider: String,
    pub region: String,
    pub instance_type: Option<String>,
    pub replicas: u32,
    /// On-demand price of one instance, USD/h; `None` when the catalog has none.
    pub unit_price: Option<f64>,
    ids: Option<(RegionId, TypeId)>,
}

impl Priced {
    pub fn hourly(&self) -> Option<f64> {
        self.unit_price.map(|p| p * f64::from(self.replicas))
    }
}

fn cloud_of(provider: &str) -> Option<Cloud> {
    Cloud::ALL
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(provider))
}

/// Replicas as recorded in the workload description stored with the instance (1 if absent).
fn replicas(inst: &Instance) -> u32 {
    inst.metadata
        .as_ref()
        .and_then(|m| m.section("state"))
        .as_ref()
        .and_then(|s| s.get("replicas"))
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

pub fn price(catalog: &Catalog, inst: &Instance) -> Priced {
    let ids = cloud_of(&inst.provider).and_then(|cloud| {
        let region = catalog.find_region_in(cloud, &inst.region)?;
        let ty = catalog.find_instance_type(cloud, inst.instance_type.as_deref()?)?;
        Some((region, ty))
    });
    let offer = ids.and_then(|(r, t)| catalog.offer(r, t));
    Priced {
        workload_id: inst.workload_id.clone(),
        name: inst.name.clone(),
        provider: inst.provider.clone(),
        region: inst.region.clone(),
        instance_type: inst.instance_type.clone(),
        replicas: replicas(inst),
        unit_price: offer.map(|o| o.on_demand_hourly_usd),
        ids: offer.map(|o| (o.region, o.instance_type)),
    }
}

/// One way to pay less for one workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub workload_id: String,
    pub kind: &'static str,
    pub description: String,
    pub provider: String,
    pub current_region: String,
    pub current_instance_type: String,
    pub suggested_region: String,
    pub suggested_instance_type: String,
    pub pricing: &'static str,
    /// Whole workload (all replicas), USD/h.
    pub current_hourly: f64,
    pub suggested_hourly: f64,
}

impl Recommendation {
    pub fn savings_hourly(&self) -> f64 {
        self.current_hourly - self.suggested_hourly
    }

    pub fn savings_percentage(&self) -> f64 {
        if self.current_hourly > 0.0 {
            self.savings_hourly() / self.current_hourly * 100.0
        } else {
            0.0
        }
    }
}

/// The jurisdictions that are not a country code (EU, EEA, US-GOV); when a region has none,
/// its country stands in.
fn jurisdiction_key(r: &Region) -> Vec<String> {
    let mut key: Vec<String> = r
        .jurisdictions
        .iter()
        .filter(|j| !j.eq_ignore_ascii_case(&r.country) && j.len() != 2)
        .map(|j| j.to_ascii_uppercase())
        .collect();
    key.sort();
    if key.is_empty() {
        key.push(r.country.to_ascii_uppercase());
    }
    key
}

fn same_gpu(a: &InstanceType, b: &InstanceType) -> bool {
    b.gpu_count >= a.gpu_count && (a.gpu_count == 0 || a.gpu_model == b.gpu_model)
}

/// Cheapest of `offers` by price, ties by type name.
fn cheapest<'a>(catalog: &Catalog, offers: impl Iterator<Item = &'a Offer>) -> Option<&'a Offer> {
    offers.min_by(|a, b| {
        a.on_demand_hourly_usd
            .total_cmp(&b.on_demand_hourly_usd)
            .then_with(|| {
                catalog
                    .instance_type(a.instance_type)
                    .name
                    .cmp(&catalog.instance_type(b.instance_type).name)
            })
            .then_with(|| {
                catalog
                    .region(a.region)
                    .code
                    .cmp(&catalog.region(b.region).code)
            })
    })
}

/// Every recommendation for one priced workload (empty when its price is unknown).
pub fn recommend(
    catalog: &Catalog,
    w: &Priced,
    utilization: Option<Utilization>,
    spot_allowed: bool,
) -> Vec<Recommendation> {
    let (Some((rid, tid)), Some(unit)) = (w.ids, w.unit_price) else {
        return Vec::new();
    };
    let region = catalog.region(rid);
    let ty = catalog.instance_type(tid);
    let n = f64::from(w.replicas);
    let mut out = Vec::new();
    let mut push = |kind: &'static str,
                    description: String,
                    to_region: RegionId,
                    to_type: TypeId,
                    pricing: &'static str,
                    price: f64| {
        if price < unit {
            out.push(Recommendation {
                workload_id: w.workload_id.clone(),
                kind,
                description,
                provider: w.provider.clone(),
                current_region: region.code.clone(),
                current_instance_type: ty.name.clone(),
                suggested_region: catalog.region(to_region).code.clone(),
                suggested_instance_type: catalog.instance_type(to_type).name.clone(),
                pricing,
                current_hourly: unit * n,
                suggested_hourly: price * n,
            });
        }
    };

    // Same type, same provider, another region of the same jurisdiction and compliance.
    let key = jurisdiction_key(region);
    let other_regions = catalog.regions_of(region.cloud).filter(|(id, r)| {
        *id != rid
            && jurisdiction_key(r) == key
            && region.compliance.iter().all(|c| r.compliance.contains(c))
    });
    let offers: Vec<&Offer> = other_regions
        .filter_map(|(id, _)| catalog.offer(id, tid))
        .collect();
    if let Some(o) = cheapest(catalog, offers.into_iter()) {
        let to = catalog.region(o.region);
        push(
            "cheaper_region",
            format!(
                "run {} in {} ({}) instead of {}: same type, same jurisdiction ({}) and compliance",
                ty.name,
                to.code,
                to.display_name,
                region.code,
                key.join("/")
            ),
            o.region,
            tid,
            "on_demand",
            o.on_demand_hourly_usd,
        );
    }

    // A cheaper type in the same region with at least the same resources.
    let equivalent = catalog.offers_in_region(rid).iter().filter(|o| {
        let t = catalog.instance_type(o.instance_type);
        o.instance_type != tid
            && t.arch == ty.arch
            && t.vcpu >= ty.vcpu
            && t.memory_gib >= ty.memory_gib
            && same_gpu(ty, t)
    });
    if let Some(o) = cheapest(catalog, equivalent) {
        let t = catalog.instance_type(o.instance_type);
        push(
            "cheaper_type",
            format!(
                "use {} ({} vCPU, {} GiB) instead of {} ({} vCPU, {} GiB) in {}",
                t.name, t.vcpu, t.memory_gib, ty.name, ty.vcpu, ty.memory_gib, region.code
            ),
            rid,
            o.instance_type,
            "on_demand",
            o.on_demand_hourly_usd,
        );
    }

    // Spot, where the catalog has a real figure and the user allows it.
    if spot_allowed {
        if let Some(spot) = catalog.offer(rid, tid).and_then(|o| o.spot_hourly_usd) {
            push(
                "spot",
                format!(
                    "run {} in {} at the spot/preemptible price (instances can be reclaimed)",
                    ty.name, region.code
                ),
                rid,
                tid,
                "spot",
                spot,
            );
        }
    }

    // Right-sizing from observed utilisation.
    if let Some(u) = utilization.filter(|u| u.cpu < RIGHT_SIZE_CPU_THRESHOLD) {
        let need_mem = ty.memory_gib * u.memory * MEMORY_HEADROOM;
        let fits = |t: &InstanceType| {
            t.arch == ty.arch && t.vcpu < ty.vcpu && t.memory_gib >= need_mem && same_gpu(ty, t)
        };
        let offers = catalog.offers_in_region(rid);
        let pick = |same_family: bool| -> Option<&Offer> {
            let pool: Vec<&Offer> = offers
                .iter()
                .filter(|o| {
                    let t = catalog.instance_type(o.instance_type);
                    fits(t) && (!same_family || t.family == ty.family)
                })
                .collect();
            let next_vcpu = pool
                .iter()
                .map(|o| catalog.instance_type(o.instance_type).vcpu)
                .max()?;
            cheapest(
                catalog,
                pool.into_iter()
                    .filter(|o| catalog.instance_type(o.instance_type).vcpu == next_vcpu),
            )
        };
        if let Some(o) = pick(true).or_else(|| pick(false)) {
            let t = catalog.instance_type(o.instance_type);
            push(
                "right_size",
                format!(
                    "CPU utilisation {:.0} % is below {:.0} %: use {} ({} vCPU, {} GiB) instead of {} ({} vCPU, {} GiB); memory in use {:.1} GiB + 25 % headroom fits",
                    u.cpu * 100.0,
                    RIGHT_SIZE_CPU_THRESHOLD * 100.0,
                    t.name,
                    t.vcpu,
                    t.memory_gib,
                    ty.name,
                    ty.vcpu,
                    ty.memory_gib,
                    ty.memory_gib * u.memory
                ),
                rid,
                o.instance_type,
                "on_demand",
                o.on_demand_hourly_usd,
            );
        }
    }
    out
}

fn money(v: f64) -> Value {
    Value::number(attrs::round(v, 4))
}

fn monthly(v: f64) -> Value {
    Value::number(attrs::round(v * HOURS_PER_MONTH, 2))
}

fn workload_value(w: &Priced) -> Value {
    Value::object([
        ("workload_id", Value::string(w.workload_id.clone())),
        ("name", Value::string(w.name.clone())),
        ("provider", Value::string(w.provider.clone())),
        ("region", Value::string(w.region.clone())),
        (
            "instance_type",
            attrs::str_value(w.instance_type.as_deref()),
        ),
        ("replicas", Value::number(w.replicas)),
        ("hourly_cost", w.hourly().map_or(Value::Null, money)),
        ("monthly_cost", w.hourly().map_or(Value::Null, monthly)),
        ("price_known", Value::Bool(w.unit_price.is_some())),
    ])
}

#[derive(Default)]
struct Group {
    workloads: u64,
    unpriced: u64,
    hourly: f64,
}

fn group_values(groups: &BTreeMap<(String, String), Group>, with_region: bool) -> Value {
    Value::list(groups.iter().map(|((provider, region), g)| {
        let mut v = Value::object([
            ("provider", Value::string(provider.clone())),
            ("workloads", Value::number(g.workloads)),
            ("unpriced_workloads", Value::number(g.unpriced)),
            ("hourly_cost", money(g.hourly)),
            ("monthly_cost", monthly(g.hourly)),
        ]);
        if with_region {
            attrs::set(&mut v, "region", Value::string(region.clone()));
        }
        v
    }))
}

fn recommendation_value(r: &Recommendation) -> Value {
    Value::object([
        ("workload_id", Value::string(r.workload_id.clone())),
        ("kind", Value::string(r.kind)),
        ("description", Value::string(r.description.clone())),
        ("provider", Value::string(r.provider.clone())),
        ("current_region", Value::string(r.current_region.clone())),
        (
            "current_instance_type",
            Value::string(r.current_instance_type.clone()),
        ),
        (
            "suggested_region",
            Value::string(r.suggested_region.clone()),
        ),
        (
            "suggested_instance_type",
            Value::string(r.suggested_instance_type.clone()),
        ),
        ("pricing", Value::string(r.pricing)),
        ("current_hourly", money(r.current_hourly)),
        ("suggested_hourly", money(r.suggested_hourly)),
        ("savings_hourly", money(r.savings_hourly())),
        ("savings_monthly", monthly(r.savings_hourly())),
        (
            "savings_percentage",
            Value::number(attrs::round(r.savings_percentage(), 1)),
        ),
    ])
}

/// The computed attributes of the report for these instances.
pub fn report(
    catalog: &Catalog,
    instances: &[Instance],
    utilization: &BTreeMap<String, Utilization>,
    spot_allowed: bool,
) -> (Vec<(&'static str, Value)>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let mut priced: Vec<Priced> = instances.iter().map(|i| price(catalog, i)).collect();
    priced.sort_by(|a, b| {
        (a.name.as_str(), a.workload_id.as_str()).cmp(&(b.name.as_str(), b.workload_id.as_str()))
    });
    for id in utilization.keys() {
        if !priced.iter().any(|w| &w.workload_id == id) {
            diags.push(Diagnostic::warning(
                "Unknown workload in utilization",
                format!("No live workload managed by this provider has id {id:?}; its utilisation is ignored."),
            ));
        }
    }
    let mut by_provider: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut by_region: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut total = 0.0;
    let mut unpriced = Vec::new();
    let mut recommendations = Vec::new();
    let mut best_savings = 0.0;
    for w in &priced {
        for g in [
            by_provider
                .entry((w.provider.clone(), String::new()))
                .or_default(),
            by_region
                .entry((w.provider.clone(), w.region.clone()))
                .or_default(),
        ] {
            g.workloads += 1;
            match w.hourly() {
                Some(h) => g.hourly += h,
                None => g.unpriced += 1,
            }
        }
        match w.hourly() {
            Some(h) => total += h,
            None => unpriced.push(w.workload_id.clone()),
        }
        let recs = recommend(
            catalog,
            w,
            utilization.get(&w.workload_id).copied(),
            spot_allowed,
        );
        best_savings += recs
            .iter()
            .map(Recommendation::savings_hourly)
            .fold(0.0, f64::max);
        recommendations.extend(recs);
    }
    if !unpriced.is_empty() {
        diags.push(Diagnostic::warning(
            "Some workloads have no known price",
            format!(
                "The catalog has no price for {} (edge nodes, or a type or region outside the snapshot); they are left out of the totals, not counted as $0.",
                unpriced.join(", ")
            ),
        ));
    }
    recommendations.sort_by(|a, b| {
        b.savings_hourly()
            .total_cmp(&a.savings_hourly())
            .then_with(|| a.workload_id.cmp(&b.workload_id))
            .then_with(|| a.kind.cmp(b.kind))
    });
    let values = vec![
        ("workloads", Value::list(priced.iter().map(workload_value))),
        ("by_provider", group_values(&by_provider, false)),
        ("by_region", group_values(&by_region, true)),
        ("total_hourly", money(total)),
        ("total_monthly", monthly(total)),
        ("unpriced_workloads", common::strings_value(&unpriced)),
        (
            "recommendations",
            Value::list(recommendations.iter().map(recommendation_value)),
        ),
        ("potential_savings_monthly", monthly(best_savings)),
    ];
    (values, diags)
}

#[async_trait]
impl DataSource for CostReport {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        if common::any_unknown(config, &["utilization", "spot_allowed"]) {
            return Diagnostics::new();
        }
        inputs(config).err().unwrap_or_default()
    }

    async fn read(&self, ctx: &ProviderContext, config: Value) -> ReadResult {
        let mut state = config;
        let inputs = match inputs(&state) {
            Ok(i) => i,
            Err(diagnostics) => return ReadResult { state, diagnostics },
        };
        let instances = match ctx.driver.list_managed().await {
            Ok(list) => list,
            Err(err) => {
                return ReadResult {
                    state,
                    diagnostics: Diagnostic::error(
                        "Could not list the managed workloads",
                        format!("{err}. The cost report needs the list of live instances from the {} cloud.", ctx.driver.name()),
                    )
                    .into(),
                }
            }
        };
        let (values, diagnostics) = report(
            ctx.catalog,
            &instances,
            &inputs.utilization,
            inputs.spot_allowed,
        );
        for (name, value) in values {
            attrs::set(&mut state, name, value);
        }
        ReadResult { state, diagnostics }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, provider: &str, region: &str, ty: &str) -> Instance {
        Instance {
            instance_id: format!("sim-{id}"),
            workload_id: id.to_string(),
            idempotency_key: id.to_string(),
            name: id.to_string(),
            provider: provider.to_string(),
            region: region.to_string(),
            zone: None,
            instance_type: Some(ty.to_string()),
            node: None,
            image: None,
            private_ip: "10.0.0.1".to_string(),
            status: "running".to_string(),
            tags: BTreeMap::new(),
            metadata: Some(clouds::Metadata::from_value(
                &serde_json::json!({"state": {"replicas": 2}}),
            )),
        }
    }

    #[test]
    fn prices_come_from_the_catalog_times_replicas() {
        let catalog = catalog::embedded();
        let w = price(catalog, &instance("a", "aws", "eu-central-1", "m5.large"));
        let (r, t) = (
            catalog.find_region("eu-central-1").expect("region"),
            catalog
                .find_instance_type(Cloud::Aws, "m5.large")
                .expect("type"),
        );
        let unit = catalog.offer(r, t).expect("offer").on_demand_hourly_usd;
        assert_eq!(w.replicas, 2);
        assert_eq!(w.hourly(), Some(unit * 2.0));
    }

    #[test]
    fn unknown_prices_are_unknown_not_zero() {
        let catalog = catalog::embedded();
        let inst = instance("e", "edge", "berlin-1", "node-1");
        let (values, diags) = report(catalog, &[inst], &BTreeMap::new(), false);
        let get = |n: &str| {
            values
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
                .expect("attr")
        };
        assert_eq!(get("total_hourly").as_f64(), Some(0.0));
        assert_eq!(get("unpriced_workloads"), common::strings_value(&["e"]));
        let workloads = get("workloads");
        let w = &workloads.as_elements().expect("list")[0];
        assert!(w.get("hourly_cost").is_some_and(Value::is_null));
        assert!(diags.0.iter().any(|d| d.summary.contains("no known price")));
    }

    #[test]
    fn cheaper_regions_stay_in_the_jurisdiction_and_right_sizing_shrinks() {
        let catalog = catalog::embedded();
        // eu-central-1 is among the dearer EU regions for m5: a cheaper EU one exists.
        let w = price(catalog, &instance("a", "aws", "eu-central-1", "m5.2xlarge"));
        let recs = recommend(
            catalog,
            &w,
            Some(Utilization {
                cpu: 0.1,
                memory: 0.2,
            }),
            true,
        );
        for r in &recs {
            assert!(r.suggested_hourly < r.current_hourly, "{r:?}");
            assert!(r.savings_percentage() > 0.0);
        }
        if let Some(r) = recs.iter().find(|r| r.kind == "cheaper_region") {
            let to = catalog.region(catalog.find_region(&r.suggested_region).expect("region"));
            assert!(to.jurisdictions.iter().any(|j| j == "EU"), "{r:?}");
        }
        let rs = recs
            .iter()
            .find(|r| r.kind == "right_size")
            .expect("right-size suggestion");
        let t = catalog.instance_type(
            catalog
                .find_instance_type(Cloud::Aws, &rs.suggested_instance_type)
                .expect("type"),
        );
        // The snapshot has no m5.xlarge price in eu-central-1: the next lower m5 is m5.large.
        assert_eq!((t.family.as_str(), t.vcpu), ("m5", 2), "{rs:?}");
        // AWS has no spot figures in the snapshot: no spot suggestion.
        assert!(recs.iter().all(|r| r.kind != "spot"));
    }

    #[test]
    fn utilisation_must_be_a_fraction() {
        let config = Value::object([(
            "utilization",
            Value::list([Value::object([
                ("workload_id", Value::string("wl-1")),
                ("cpu_utilization", Value::number(45i64)),
                ("memory_utilization", Value::number(0.5)),
            ])]),
        )]);
        let err = inputs(&config).err().expect("invalid");
        assert_eq!(
            err.0[0].path,
            Some(
                AttributePath::root()
                    .attr("utilization")
                    .index(0)
                    .attr("cpu_utilization")
            )
        );
    }
}
