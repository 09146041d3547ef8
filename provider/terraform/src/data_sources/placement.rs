//! `hybrid_placement`: the placement `hybrid_workload` would choose, without provisioning.
//!
//! Same requirement inputs and the same engine call as the resource (no current placement, so
//! no stickiness): the winner in the same object shape as `hybrid_workload.placement`, the
//! ranked list (winner first, one entry per provider and region) with per-dimension scores, how
//! many candidates were considered and feasible, and how many were rejected for each reason.

use async_trait::async_trait;
use placement::{PlaceOptions, Requirements, Strategy};
use tfvalue::{Type, Value};

use super::common::{self, HOURS_PER_MONTH};
use super::{DataSource, ReadResult};
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::resources::workload::placement_type;
use crate::resources::ProviderContext;
use crate::schema::{Attr, Block, Schema};

pub const TYPE_NAME: &str = "hybrid_placement";
const DEFAULT_TOP_K: usize = 5;

/// Inputs that feed the engine; unknown ones mean "read at apply".
const INPUTS: &[&str] = &[
    "workload_type",
    "cpu",
    "memory_gb",
    "storage_gb",
    "gpu_count",
    "gpu_model",
    "max_latency_ms",
    "cost_budget_hourly",
    "compliance",
    "preferred_providers",
    "data_residency_regions",
    "user_locations",
    "strategy",
    "weights",
    "replicas",
    "spot_allowed",
    "top_k",
];

pub struct PlacementSource {
    schema: Schema,
}

impl Default for PlacementSource {
    fn default() -> Self {
        PlacementSource::new()
    }
}

impl PlacementSource {
    pub fn new() -> PlacementSource {
        let attributes = vec![
            Attr::optional("workload_type", Type::String, "web, api, batch, ml_inference, ml_training, data_analytics, database, cache or streaming."),
            Attr::required("cpu", Type::Number, "vCPUs per replica (> 0)."),
            Attr::required("memory_gb", Type::Number, "Memory per replica in GB (> 0)."),
            Attr::optional("storage_gb", Type::Number, "Block storage per replica in GB (default 0); priced into the estimate."),
            Attr::optional("gpu_count", Type::Number, "GPUs per replica (default 0)."),
            Attr::optional("gpu_model", Type::String, "Required GPU model, matched case-insensitively as a substring (e.g. \"a100\", \"t4\")."),
            Attr::optional("max_latency_ms", Type::Number, "Maximum round-trip latency to any of user_locations, in ms."),
            Attr::optional("cost_budget_hourly", Type::Number, "Maximum hourly cost in USD for all replicas, storage included."),
            common::compliance_attr(),
            common::preferred_providers_attr(),
            common::residency_attr(),
            common::user_locations_attr(false, false, "Where users connect from; latency is the weighted mean round trip to these points."),
            Attr::optional_computed("strategy", Type::String, "cost_optimized, performance_optimized, latency_optimized, resilience_optimized, hybrid (default, 25% each) or custom (with weights)."),
            Attr::optional("weights", Type::object([
                ("cost".to_string(), Type::Number),
                ("performance".to_string(), Type::Number),
                ("latency".to_string(), Type::Number),
                ("resilience".to_string(), Type::Number),
            ]), "Scoring weights for strategy = \"custom\"; each >= 0, summing to 1."),
            Attr::optional("replicas", Type::Number, "Number of replicas (default 1); the cost estimate covers all of them."),
            Attr::optional("spot_allowed", Type::Bool, "Allow spot/preemptible pricing where the catalog has real spot prices."),
            common::top_k_attr("Length of `ranked`, the winner included (1..50, default 5)."),
            Attr::computed("placement", placement_type(), "The winner, exactly as hybrid_workload.placement would show it for these requirements (without a current placement)."),
            Attr::computed("ranked", Type::list(placement_type()), "The winner and the next best placements, best first, one per provider and region, each with its per-dimension scores."),
            Attr::computed("estimated_cost_monthly", Type::Number, "The winner's estimated_cost_hourly x 730 h; null when its cost is unknown."),
            Attr::computed("considered", Type::Number, "Candidates examined (catalog offers)."),
            Attr::computed("feasible", Type::Number, "Candidates that met every hard constraint."),
            Attr::computed("rejections", Type::map(Type::Number), "Rejected candidates by the first constraint they failed: insufficient_cpu, insufficient_memory, no_gpu, gpu_model, compliance_<regime>, data_residency, provider_not_preferred, no_price, no_capacity, over_budget, over_latency."),
            Attr::computed("warnings", Type::list(Type::String), "Warnings from the engine (e.g. latency limits ignored without user locations)."),
        ];
        PlacementSource {
            schema: Schema {
                version: 0,
                block: Block {
                    attributes,
                    blocks: Vec::new(),
                    description: "Ranks placements for a set of requirements with the same engine as hybrid_workload, without provisioning anything.",
                },
            },
        }
    }
}

struct Validated {
    requirements: Requirements,
    strategy: Strategy,
    top_k: usize,
}

fn validated(config: &Value, catalog: &catalog::Catalog) -> Result<Validated, Diagnostics> {
    let mut diags = Diagnostics::new();
    let raw = common::raw_requirements(config, &mut diags);
    let top_k = common::top_k(config, DEFAULT_TOP_K, &mut diags);
    let weights = common::strategy_weights(config);
    if diags.has_errors() {
        return Err(diags);
    }
    let mut errors = Vec::new();
    let requirements = Requirements::validate(&raw, catalog).map_err(|e| errors.extend(e));
    let strategy_name = attrs::string(config, "strategy").unwrap_or_else(|| "hybrid".to_string());
    let strategy = Strategy::parse(&strategy_name, weights).map_err(|e| errors.push(e));
    match (requirements, strategy) {
        (Ok(requirements), Ok(strategy)) if errors.is_empty() => Ok(Validated {
            requirements,
            strategy,
            top_k,
        }),
        _ => Err(common::field_errors(errors, &[])),
    }
}

#[async_trait]
impl DataSource for PlacementSource {
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
        crate::engine_values::check_with_catalog(|catalog| validated(config, catalog))
    }

    async fn read(&self, ctx: &ProviderContext, config: Value) -> ReadResult {
        let mut state = config;
        let v = match validated(&state, ctx.catalog) {
            Ok(v) => v,
            Err(diagnostics) => return ReadResult { state, diagnostics },
        };
        let mut diagnostics = Diagnostics::new();
        let options = PlaceOptions {
            top_k: v.top_k.saturating_sub(1),
            ..PlaceOptions::default()
        };
        match placement::place(ctx.catalog, &[], &v.requirements, &v.strategy, &options) {
            Ok(decision) => {
                let winner = common::placement_value(&decision.placement);
                let mut ranked = vec![winner.clone()];
                ranked.extend(decision.alternatives.iter().map(common::placement_value));
                let monthly = decision.placement.cost_known.then(|| {
                    attrs::round(
                        decision.placement.estimated_cost_hourly * HOURS_PER_MONTH,
                        2,
                    )
                });
                attrs::set(&mut state, "placement", winner);
                attrs::set(&mut state, "ranked", Value::list(ranked));
                attrs::set(
                    &mut state,
                    "estimated_cost_monthly",
                    attrs::num_value(monthly),
                );
                attrs::set(
                    &mut state,
                    "considered",
                    Value::number(decision.considered as u64),
                );
                attrs::set(
                    &mut state,
                    "feasible",
                    Value::number(decision.feasible as u64),
                );
                attrs::set(
                    &mut state,
                    "rejections",
                    common::rejection_counts_value(&decision.rejected),
                );
                attrs::set(
                    &mut state,
                    "warnings",
                    common::strings_value(&decision.warnings),
                );
                for warning in &decision.warnings {
                    diagnostics.push(Diagnostic::warning("Placement warning", warning.clone()));
                }
            }
            Err(no_fit) => diagnostics.push(Diagnostic::error(
                "No placement satisfies the requirements",
                no_fit.to_string(),
            )),
        }
        // Defaults only where the configuration left them out: a configured value is returned
        // exactly as written.
        if attrs::get(&state, "strategy").is_none() {
            attrs::set(&mut state, "strategy", Value::string(v.strategy.name()));
        }
        if attrs::get(&state, "top_k").is_none() {
            attrs::set(&mut state, "top_k", Value::number(v.top_k as u64));
        }
        ReadResult { state, diagnostics }
    }
}
