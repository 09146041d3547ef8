//! `hybrid_migration_plan`: moves a `hybrid_workload` to a new placement by blue-green, canary
//! steps or a rolling update, reviewed in `terraform plan` and carried out by `terraform apply`.
//!
//! - Plan reads the workload as the cloud stores it (its requirements and current placement),
//!   resolves the target (a placement strategy through the engine, or an explicit place checked
//!   against the workload's requirements), and shows the steps, the downtime, the data to move,
//!   its duration and egress cost, and the hourly cost before and after. All of it is a function
//!   of the configuration, the catalog and the workload, so a re-plan is stable.
//! - Apply runs the steps (see `migration_run`), journaling progress in the sim store after each
//!   one, so a provider killed mid-migration is resumed by the next apply. A failed health gate
//!   rolls back by itself and ends apply with a diagnostic naming the step and the check; the
//!   state then says `status = "rolled_back"` (Terraform taints it: the next apply retries).
//! - `scheduled_time` in the future: apply records the plan as `scheduled` and runs nothing; the
//!   first plan after that time shows the run as an update, and that apply executes it.
//! - Destroy forgets the plan. A completed migration stays done (the workload keeps its new
//!   place); an unfinished one is aborted: traffic back to the old side, new side removed.
//! - Import is not offered: the configuration (strategy blocks, health check) is not stored in
//!   the cloud, and re-running a migration is a matter of applying the same configuration, whose
//!   id finds the journal.

use std::collections::BTreeMap;

use async_trait::async_trait;
use clouds::sim::migration::MigrationRecord;
use clouds::InstanceSpec;
use placement::migration::{
    link_gb_per_second, parse_rfc3339, transfer_seconds, MigrationSpec, RawBlueGreen, RawCanary,
    RawCanaryStep, RawHealthCheck, RawMigration, RawRolling,
};
use placement::{
    PlaceOptions, PlacementKey, Provider as PlacementProvider, Requirements, Strategy,
};
use tfvalue::{AttributePath, Type, Value};

use super::migration_run;
use super::workload;
use super::{
    decode_stored_state, sha256_hex, ApplyRequest, ApplyResponse, ImportResponse, PlanRequest,
    PlanResponse, ProviderContext, ReadResponse, Resource,
};
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::engine_values::{field_errors, placement_type, placement_value, raw_requirements};
use crate::schema::{Attr, Block, NestedBlock, Nesting, Schema};

pub const TYPE_NAME: &str = "hybrid_migration_plan";
pub const SCHEMA_VERSION: i64 = 0;
/// Overrides the clock that `scheduled_time` is compared with (RFC 3339), for tests.
pub const ENV_CLOCK: &str = "HYBRID_SIM_CLOCK";

/// The configuration that defines a migration; any change is a new migration (replacement).
/// `blue_green.auto_promote` is left out on purpose: turning it on resumes the same migration.
const DEFINING: &[&str] = &[
    "workload_id",
    "target_strategy",
    "target",
    "strategy",
    "blue_green",
    "canary",
    "rolling",
    "health_check",
    "scheduled_time",
];

/// Attributes apply fills in as the migration runs.
const RUN_FIELDS: &[&str] = &[
    "status",
    "status_message",
    "current_step",
    "traffic_percentage",
    "source_instance_id",
    "target_instance_id",
];

/// Attributes computed at plan from the workload and the catalog.
const PLAN_FIELDS: &[&str] = &[
    "source_placement",
    "target_placement",
    "estimated_downtime_seconds",
    "data_transfer_gb",
    "estimated_transfer_seconds",
    "estimated_egress_cost",
    "cost_hourly_before",
    "cost_hourly_after",
    "cost_hourly_delta",
    "steps",
];

pub fn step_type() -> Type {
    Type::object([
        ("index".to_string(), Type::Number),
        ("action".to_string(), Type::String),
        ("traffic_percentage".to_string(), Type::Number),
        ("wait_seconds".to_string(), Type::Number),
        ("health_gate".to_string(), Type::Bool),
        ("description".to_string(), Type::String),
    ])
}

fn single_block(
    type_name: &'static str,
    attributes: Vec<Attr>,
    description: &'static str,
) -> NestedBlock {
    NestedBlock {
        type_name,
        nesting: Nesting::Single,
        block: Block {
            attributes,
            blocks: Vec::new(),
            description,
        },
        min_items: 0,
        max_items: 0,
    }
}

pub struct MigrationPlan {
    schema: Schema,
}

impl Default for MigrationPlan {
    fn default() -> Self {
        MigrationPlan::new()
    }
}

impl MigrationPlan {
    pub fn new() -> MigrationPlan {
        let attributes = vec![
            Attr::computed("id", Type::String, "Same as migration_id."),
            Attr::computed("migration_id", Type::String, "Stable id of this migration (`mig-` + 16 hex digits of its defining configuration); apply journals progress under it."),
            Attr::required("workload_id", Type::String, "The hybrid_workload to move (its id, `wl-...`)."),
            Attr::optional("target_strategy", Type::String, "Where to move, decided by the placement engine over the workload's own requirements: cost_optimized, performance_optimized, latency_optimized, resilience_optimized or hybrid. Exactly one of target_strategy and a target block."),
            Attr::required("strategy", Type::String, "How to move: blue_green, canary or rolling (with the block of the same name, optional for defaults)."),
            Attr::optional("scheduled_time", Type::String, "Earliest time the migration may run (RFC 3339). Before it, apply records the plan as scheduled; the first plan after it shows the run and that apply executes it."),
            Attr::computed("source_placement", placement_type(), "Where the workload runs now."),
            Attr::computed("target_placement", placement_type(), "Where the workload will run."),
            Attr::computed("estimated_downtime_seconds", Type::Number, "Seconds of outage: 0 for blue_green and canary (the old side serves until the new one does); for rolling, the one-time state cut-over, plus a start-up when every replica may be down at once."),
            Attr::computed("data_transfer_gb", Type::Number, "Data to move: block storage plus in-memory state of every replica."),
            Attr::computed("estimated_transfer_seconds", Type::Number, "Time to move data_transfer_gb at the planning link speed (10 Gbit/s in a region, 5 between regions of a provider, 1 between providers or edge sites)."),
            Attr::computed("estimated_egress_cost", Type::Number, "USD for the data leaving the source region at the catalog's egress price; null when the catalog has no price for it."),
            Attr::computed("cost_hourly_before", Type::Number, "USD/h of the workload where it runs now."),
            Attr::computed("cost_hourly_after", Type::Number, "USD/h at the target."),
            Attr::computed("cost_hourly_delta", Type::Number, "cost_hourly_after - cost_hourly_before."),
            Attr::computed("steps", Type::list(step_type()), "The ordered steps apply runs."),
            Attr::computed("status", Type::String, "scheduled, awaiting_promotion, completed or rolled_back; in_progress or rolling_back when a refresh finds an apply that was interrupted (the next apply resumes it)."),
            Attr::computed("status_message", Type::String, "What happened last, in one line (the failed step and check after a rollback)."),
            Attr::computed("current_step", Type::Number, "Index of the first step not yet done (equal to the number of steps when completed)."),
            Attr::computed("traffic_percentage", Type::Number, "Share of traffic on the new side."),
            Attr::computed("source_instance_id", Type::String, "The old side's instance."),
            Attr::computed("target_instance_id", Type::String, "The new side's instance (null until created, and after a rollback removed it)."),
        ];
        let blocks = vec![
            single_block(
                "target",
                vec![
                    Attr::required("provider", Type::String, "aws, azure or gcp."),
                    Attr::required("region", Type::String, "The provider's region code."),
                    Attr::required("instance_type", Type::String, "The provider's instance type."),
                ],
                "An explicit target; it must satisfy the workload's requirements.",
            ),
            single_block(
                "blue_green",
                vec![
                    Attr::optional("validation_checks", Type::list(Type::String), "Named checks the new (green) side must pass in preview, besides the health check."),
                    Attr::optional("auto_promote", Type::Bool, "Promote after promote_after_seconds (default true). false: apply stops at awaiting_promotion; set it to true and apply again to promote."),
                    Attr::optional("promote_after_seconds", Type::Number, "Seconds of preview before promotion (default 0)."),
                    Attr::optional("scale_down_delay_seconds", Type::Number, "Seconds before the old (blue) side is removed after promotion (default 30)."),
                ],
                "Blue-green: the new side starts beside the old, is validated without traffic, then takes all traffic at once.",
            ),
            single_block(
                "canary",
                vec![
                    Attr::optional("steps", Type::list(Type::object([
                        ("traffic_percentage".to_string(), Type::Number),
                        ("duration_minutes".to_string(), Type::Number),
                    ])), "Traffic shares for the new side, strictly increasing and ending at 100, each watched for duration_minutes."),
                    Attr::optional("failure_threshold", Type::Number, "Failed checks within a step that abort the migration (default: health_check.failure_threshold)."),
                    Attr::optional("check_interval_seconds", Type::Number, "Seconds between checks during a step (default: health_check.interval_seconds)."),
                    Attr::optional("scale_down_delay_seconds", Type::Number, "Seconds before the old side is removed, or the new side after a rollback (default 30)."),
                ],
                "Canary: traffic moves to the new side step by step, each step watched by the health check.",
            ),
            single_block(
                "rolling",
                vec![
                    Attr::optional("max_unavailable", Type::String, "Replicas that may be down during the update: a count (\"1\") or a share (\"25%\", default)."),
                    Attr::optional("max_surge", Type::String, "Extra replicas allowed during the update: a count or a share (default \"25%\")."),
                    Attr::optional("progress_deadline_seconds", Type::Number, "Seconds a batch may take to become healthy before the update is rolled back (default 600)."),
                ],
                "Rolling: replicas move in batches of max_surge + max_unavailable.",
            ),
            single_block(
                "health_check",
                vec![
                    Attr::optional("type", Type::String, "http, tcp (default) or command."),
                    Attr::optional("path", Type::String, "HTTP path (default /)."),
                    Attr::optional("port", Type::Number, "Port for http and tcp (default 80)."),
                    Attr::optional("command", Type::String, "Command for type = command; exit 0 is healthy."),
                    Attr::optional("interval_seconds", Type::Number, "Seconds between probes (default 10)."),
                    Attr::optional("failure_threshold", Type::Number, "Consecutive failed probes that fail a gate (default 3)."),
                    Attr::optional("recovery_threshold", Type::Number, "Consecutive passing probes that make the new side healthy (default 2)."),
                ],
                "How each gate judges the new side.",
            ),
        ];
        MigrationPlan {
            schema: Schema {
                version: SCHEMA_VERSION,
                block: Block {
                    attributes,
                    blocks,
                    description: "Moves a hybrid_workload to a new placement by blue-green, canary or rolling steps: plan shows downtime, data to move, cost delta and the steps; apply runs them with health gates and rolls back by itself when a gate fails.",
                },
            },
        }
    }

    fn value_type(&self) -> Type {
        self.schema.block.value_type()
    }
}

/// `mig-` + 16 hex digits of the defining configuration.
pub fn migration_id(config: &Value) -> String {
    let mut text = String::from(TYPE_NAME);
    for name in DEFINING {
        let mut v = config.get(name).cloned().unwrap_or(Value::Null);
        if *name == "blue_green" {
            attrs::set(&mut v, "auto_promote", Value::Null);
        }
        text.push('|');
        text.push_str(&format!("{v:?}"));
    }
    format!("mig-{}", sha256_hex(text, 8))
}

fn number(config: &Value, block: &str, name: &str) -> Option<f64> {
    attrs::get(config, block).and_then(|b| attrs::number(b, name))
}

/// The strategy blocks as the engine's raw input.
pub fn raw_migration(config: &Value, replicas: u32) -> RawMigration {
    let block = |name: &str| attrs::get(config, name);
    RawMigration {
        strategy: attrs::string(config, "strategy"),
        blue_green: block("blue_green").map(|b| RawBlueGreen {
            validation_checks: attrs::strings(b, "validation_checks"),
            auto_promote: attrs::boolean(b, "auto_promote"),
            promote_after_seconds: attrs::number(b, "promote_after_seconds"),
            scale_down_delay_seconds: attrs::number(b, "scale_down_delay_seconds"),
        }),
        canary: block("canary").map(|c| RawCanary {
            steps: attrs::get(c, "steps")
                .and_then(|s| s.as_elements())
                .map(|elems| {
                    elems
                        .iter()
                        .map(|e| RawCanaryStep {
                            traffic_percentage: attrs::number(e, "traffic_percentage"),
                            duration_minutes: attrs::number(e, "duration_minutes"),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            failure_threshold: attrs::number(c, "failure_threshold"),
            check_interval_seconds: attrs::number(c, "check_interval_seconds"),
            scale_down_delay_seconds: attrs::number(c, "scale_down_delay_seconds"),
        }),
        rolling: block("rolling").map(|r| RawRolling {
            max_unavailable: attrs::string(r, "max_unavailable"),
            max_surge: attrs::string(r, "max_surge"),
            progress_deadline_seconds: attrs::number(r, "progress_deadline_seconds"),
        }),
        health_check: block("health_check").map(|h| RawHealthCheck {
            kind: attrs::string(h, "type"),
            path: attrs::string(h, "path"),
            port: number(config, "health_check", "port"),
            command: attrs::string(h, "command"),
            interval_seconds: attrs::number(h, "interval_seconds"),
            failure_threshold: attrs::number(h, "failure_threshold"),
            recovery_threshold: attrs::number(h, "recovery_threshold"),
        }),
        replicas,
    }
}

/// The spec, or diagnostics on attribute paths.
pub fn spec(config: &Value, replicas: u32) -> Result<MigrationSpec, Diagnostics> {
    MigrationSpec::validate(&raw_migration(config, replicas)).map_err(|e| field_errors(e, &[]))
}

/// Seconds since the epoch now, or as `HYBRID_SIM_CLOCK` says.
pub fn now_unix() -> i64 {
    if let Some(t) = std::env::var(ENV_CLOCK)
        .ok()
        .and_then(|t| parse_rfc3339(t.trim()))
    {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// When `scheduled_time` is still ahead: its epoch seconds.
fn scheduled_ahead(config: &Value) -> Option<i64> {
    let t = parse_rfc3339(&attrs::string(config, "scheduled_time")?)?;
    (t > now_unix()).then_some(t)
}

/// Checks that need only the configuration.
fn check_config(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if let Some(text) = attrs::string(config, "scheduled_time") {
        if parse_rfc3339(&text).is_none() {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("scheduled_time"),
                "Invalid scheduled_time",
                format!("scheduled_time = {text:?} is not an RFC 3339 time such as \"2026-12-01T02:00:00Z\"."),
            ));
        }
    }
    let has_strategy = config.get("target_strategy").is_some_and(|v| !v.is_null());
    let has_target = config.get("target").is_some_and(|v| !v.is_null());
    match (has_strategy, has_target) {
        (true, true) => diags.push(Diagnostic::attribute_error(
            AttributePath::root().attr("target"),
            "Conflicting targets",
            "Set either target_strategy or a target block, not both.",
        )),
        (false, false) => diags.push(Diagnostic::attribute_error(
            AttributePath::root().attr("target_strategy"),
            "Missing target",
            "Set target_strategy (cost_optimized, performance_optimized, latency_optimized, resilience_optimized, hybrid) or a target block with provider, region and instance_type.",
        )),
        _ => {}
    }
    if let Some(name) = attrs::string(config, "target_strategy") {
        if name == "custom" {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("target_strategy"),
                "Invalid target_strategy",
                "target_strategy takes a named strategy (cost_optimized, performance_optimized, latency_optimized, resilience_optimized, hybrid); for a hand-picked place use a target block.",
            ));
        } else if let Err(e) = Strategy::parse(&name, None) {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("target_strategy"),
                "Invalid target_strategy",
                e.message,
            ));
        }
    }
    if let Some(target) = attrs::get(config, "target") {
        if let Some(p) = attrs::string(target, "provider") {
            if !matches!(p.as_str(), "aws" | "azure" | "gcp") {
                diags.push(Diagnostic::attribute_error(
                    AttributePath::root().attr("target").attr("provider"),
                    "Invalid target provider",
                    format!("Migrations move workloads to aws, azure or gcp regions; got {p:?} (edge targets are not supported yet)."),
                ));
            }
        }
    }
    // Replicas are not known here (they belong to the workload); 100 makes every share of
    // max_surge / max_unavailable meaningful, and plan re-checks with the real count.
    if DEFINING.iter().all(|n| !attrs::is_unknown(config, n)) {
        if let Err(errors) = spec(config, 100) {
            diags.extend(errors);
        }
    }
    diags
}

/// The workload as the cloud stores it.
pub struct StoredWorkload {
    pub instance: clouds::Instance,
    pub state: Value,
    pub requirements: Requirements,
    pub strategy: Strategy,
    pub replace_threshold_percent: f64,
    pub replicas: u32,
    pub placement: Value,
}

fn workload_path() -> AttributePath {
    AttributePath::root().attr("workload_id")
}

pub async fn stored_workload(
    ctx: &ProviderContext,
    workload_id: &str,
) -> Result<StoredWorkload, Diagnostic> {
    let found = ctx
        .driver
        .find_by_workload(workload_id)
        .await
        .map_err(|e| {
            Diagnostic::error("Could not read the workload", e.to_string()).at(workload_path())
        })?;
    let Some(instance) = found else {
        return Err(Diagnostic::attribute_error(
            workload_path(),
            "Unknown workload",
            format!("No hybrid_workload with id {workload_id:?} runs in the {} cloud. Use the id of an applied workload (hybrid_workload.<name>.id).", ctx.driver.name()),
        ));
    };
    let wl = workload::Workload::new();
    let ty = wl.schema().block.value_type();
    let state = instance
        .metadata
        .as_ref()
        .and_then(|m| m.section("state"))
        .and_then(|s| tfvalue::decode_json_value(&s, &ty).ok())
        .ok_or_else(|| {
            Diagnostic::attribute_error(
                workload_path(),
                "Workload cannot be migrated",
                format!("Instance {} carries no readable workload description, so its requirements are not known.", instance.instance_id),
            )
        })?;
    let mut diags = Diagnostics::new();
    let raw = raw_requirements(&state, &mut diags);
    let requirements = Requirements::validate(&raw, ctx.catalog).map_err(|_| {
        Diagnostic::attribute_error(
            workload_path(),
            "Workload cannot be migrated",
            "The workload's stored requirements no longer validate against this provider's catalog; apply the workload first.",
        )
    })?;
    let strategy = Strategy::parse(
        &attrs::string(&state, "strategy").unwrap_or_else(|| "hybrid".into()),
        crate::engine_values::strategy_weights(&state),
    )
    .unwrap_or(Strategy::Hybrid);
    let replicas = attrs::integer(&state, "replicas")
        .ok()
        .flatten()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1)
        .max(1);
    let placement = attrs::get(&state, "placement")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(StoredWorkload {
        replace_threshold_percent: attrs::number(&state, "replace_threshold_percent")
            .unwrap_or(10.0),
        instance,
        state,
        requirements,
        strategy,
        replicas,
        placement,
    })
}

fn key_of(placement: &Value) -> Option<PlacementKey> {
    Some(PlacementKey {
        provider: PlacementProvider::parse(&attrs::string(placement, "provider")?)?,
        region: attrs::string(placement, "region")?,
        instance_type: attrs::string(placement, "instance_type"),
        node: attrs::string(placement, "node"),
    })
}

fn same_where(a: &Value, b: &Value) -> bool {
    ["provider", "region", "zone", "node", "instance_type"]
        .iter()
        .all(|f| attrs::string(a, f) == attrs::string(b, f))
}

fn describe(p: &Value) -> String {
    let mut s = format!(
        "{} {}",
        attrs::string(p, "provider").unwrap_or_default(),
        attrs::string(p, "region").unwrap_or_default()
    );
    if let Some(t) = attrs::string(p, "instance_type") {
        s.push(' ');
        s.push_str(&t);
    }
    s
}

/// Resolves the target placement for the workload.
fn resolve_target(
    ctx: &ProviderContext,
    config: &Value,
    wl: &StoredWorkload,
) -> Result<Value, Diagnostic> {
    if let Some(target) = attrs::get(config, "target") {
        let path = AttributePath::root().attr("target");
        let wanted = PlacementKey {
            provider: attrs::string(target, "provider")
                .and_then(|p| PlacementProvider::parse(&p))
                .ok_or_else(|| {
                    Diagnostic::attribute_error(
                        path.clone().attr("provider"),
                        "Invalid target provider",
                        "provider must be aws, azure or gcp.",
                    )
                })?,
            region: attrs::string(target, "region").unwrap_or_default(),
            instance_type: attrs::string(target, "instance_type"),
            node: None,
        };
        // Sticky with an unbeatable threshold: the engine keeps the wanted place exactly when
        // it is feasible, and prices and scores it like any placement.
        let options = PlaceOptions {
            top_k: 0,
            current: Some(wanted.clone()),
            replace_threshold_percent: 1_000_000.0,
            ..PlaceOptions::default()
        };
        let decision = ctx
            .placements
            .place(ctx.catalog, &wl.requirements, &wl.strategy, &options)
            .map_err(|e| {
                Diagnostic::attribute_error(
                    path.clone(),
                    "No placement for the workload",
                    e.to_string(),
                )
            })?;
        if decision.placement.key() != wanted {
            return Err(Diagnostic::attribute_error(
                path,
                "Target does not fit the workload",
                format!(
                    "{} {} {} is not a feasible placement for workload {}: it is not in the catalog or violates the workload's requirements (resources, compliance, residency, budget, latency). The engine would choose {} {} instead.",
                    wanted.provider.as_str(),
                    wanted.region,
                    wanted.instance_type.as_deref().unwrap_or(""),
                    wl.instance.workload_id,
                    decision.placement.provider,
                    decision.placement.region,
                ),
            ));
        }
        return Ok(placement_value(&decision.placement));
    }
    let name = attrs::string(config, "target_strategy").unwrap_or_default();
    let path = AttributePath::root().attr("target_strategy");
    let strategy = Strategy::parse(&name, None).map_err(|e| {
        Diagnostic::attribute_error(path.clone(), "Invalid target_strategy", e.message)
    })?;
    let options = PlaceOptions {
        top_k: 0,
        ..PlaceOptions::default()
    };
    ctx.placements
        .place(ctx.catalog, &wl.requirements, &strategy, &options)
        .map(|d| placement_value(&d.placement))
        .map_err(|e| {
            Diagnostic::attribute_error(path, "No placement for the workload", e.to_string())
        })
}

/// Everything plan computes, or the diagnostics that stop it.
pub struct Computed {
    pub values: BTreeMap<&'static str, Value>,
    pub warnings: Vec<Diagnostic>,
    pub workload: StoredWorkload,
    pub spec: MigrationSpec,
}

pub async fn compute(ctx: &ProviderContext, config: &Value) -> Result<Computed, Diagnostics> {
    let workload_id = attrs::string(config, "workload_id").unwrap_or_default();
    let wl = stored_workload(ctx, &workload_id).await?;
    let spec = spec(config, wl.replicas)?;
    let target = resolve_target(ctx, config, &wl)?;
    let source = wl.placement.clone();
    if same_where(&source, &target) {
        let path = if attrs::get(config, "target").is_some() {
            AttributePath::root().attr("target")
        } else {
            AttributePath::root().attr("target_strategy")
        };
        return Err(Diagnostic::attribute_error(
            path,
            "Source equals target",
            format!("Workload {workload_id} already runs on {}; this migration would move nothing. Choose another target, or remove the resource.", describe(&source)),
        )
        .into());
    }
    let mut warnings = Vec::new();
    // Will the workload keep the new place? Its own strategy and threshold decide its next plan.
    if let Some(target_key) = key_of(&target) {
        let options = PlaceOptions {
            top_k: 0,
            current: Some(target_key.clone()),
            replace_threshold_percent: wl.replace_threshold_percent,
            ..PlaceOptions::default()
        };
        if let Ok(d) = ctx
            .placements
            .place(ctx.catalog, &wl.requirements, &wl.strategy, &options)
        {
            if d.placement.key() != target_key {
                warnings.push(Diagnostic::warning(
                    "The workload would move back",
                    format!("hybrid_workload {workload_id} uses strategy {} with replace_threshold_percent {}; after this migration its next plan would prefer {} {} and show a replacement. Align the workload's strategy with the target or raise its replace_threshold_percent.", wl.strategy.name(), wl.replace_threshold_percent, d.placement.provider, d.placement.region),
                ));
            }
        }
    }
    let storage = attrs::number(&wl.state, "storage_gb")
        .unwrap_or(0.0)
        .max(0.0);
    let memory = attrs::number(&wl.state, "memory_gb")
        .unwrap_or(0.0)
        .max(0.0);
    let replicas = f64::from(wl.replicas);
    let gb = attrs::round((storage + memory) * replicas, 2);
    let (sp, sr) = (
        attrs::string(&source, "provider").unwrap_or_default(),
        attrs::string(&source, "region").unwrap_or_default(),
    );
    let (tp, tr) = (
        attrs::string(&target, "provider").unwrap_or_default(),
        attrs::string(&target, "region").unwrap_or_default(),
    );
    let link = link_gb_per_second(&sp, &sr, &tp, &tr);
    let egress_price = match sp.as_str() {
        "aws" => Some(catalog::Cloud::Aws),
        "azure" => Some(catalog::Cloud::Azure),
        "gcp" => Some(catalog::Cloud::Gcp),
        _ => None,
    }
    .and_then(|cloud| ctx.catalog.find_region_in(cloud, &sr))
    .and_then(|r| ctx.catalog.region(r).egress_gb_usd);
    let egress = if sp == tp && sr == tr {
        Some(0.0)
    } else {
        egress_price.map(|p| attrs::round(p * gb, 2))
    };
    let before = attrs::number(&source, "estimated_cost_hourly");
    let after = attrs::number(&target, "estimated_cost_hourly");
    let delta = before.zip(after).map(|(b, a)| attrs::round(a - b, 4));
    let steps = Value::list(spec.steps().iter().enumerate().map(|(i, s)| {
        Value::object([
            ("index", Value::number(i as i64)),
            ("action", Value::string(s.action.as_str())),
            (
                "traffic_percentage",
                Value::number(i64::from(s.traffic_percentage)),
            ),
            ("wait_seconds", Value::number(s.wait_seconds as i64)),
            ("health_gate", Value::Bool(s.health_gate)),
            ("description", Value::string(s.description.clone())),
        ])
    }));
    let memory_state = memory * replicas;
    let values = BTreeMap::from([
        ("source_placement", source),
        ("target_placement", target),
        (
            "estimated_downtime_seconds",
            Value::number(spec.downtime_seconds(memory_state, link) as i64),
        ),
        ("data_transfer_gb", attrs::num_value(Some(gb))),
        (
            "estimated_transfer_seconds",
            Value::number(transfer_seconds(gb, link) as i64),
        ),
        ("estimated_egress_cost", attrs::num_value(egress)),
        ("cost_hourly_before", attrs::num_value(before)),
        ("cost_hourly_after", attrs::num_value(after)),
        ("cost_hourly_delta", attrs::num_value(delta)),
        ("steps", steps),
    ]);
    Ok(Computed {
        values,
        warnings,
        workload: wl,
        spec,
    })
}

/// The record's stored plan (planned values of an interrupted migration), when readable.
fn recorded_values(record: &MigrationRecord, ty: &Type) -> Option<Value> {
    tfvalue::decode_json_value(record.plan.get("state")?, ty).ok()
}

/// Run fields from a journal record.
pub fn with_record(mut state: Value, record: &MigrationRecord) -> Value {
    attrs::set(&mut state, "status", Value::string(record.status.clone()));
    attrs::set(
        &mut state,
        "status_message",
        Value::string(
            record
                .failure
                .clone()
                .unwrap_or_else(|| migration_run::status_line(record)),
        ),
    );
    attrs::set(
        &mut state,
        "current_step",
        Value::number(record.next_step as i64),
    );
    attrs::set(
        &mut state,
        "traffic_percentage",
        Value::number(i64::from(record.traffic_percentage)),
    );
    attrs::set(
        &mut state,
        "source_instance_id",
        Value::string(record.source_instance_id.clone()),
    );
    attrs::set(
        &mut state,
        "target_instance_id",
        attrs::str_value(record.target_instance_id.as_deref()),
    );
    state
}

/// The planned value with apply's fields nulled (JSON, and so the journal, holds no unknowns).
pub fn without_run_fields(planned: &Value) -> Value {
    let mut v = planned.clone();
    set_all(&mut v, RUN_FIELDS, Value::Null);
    v
}

fn set_all(state: &mut Value, names: &[&str], value: Value) {
    for n in names {
        attrs::set(state, n, value.clone());
    }
}

/// A migration not finished yet, that apply would pick up.
fn unfinished(status: &str) -> bool {
    matches!(
        status,
        "in_progress" | "rolling_back" | "awaiting_promotion"
    )
}

#[async_trait]
impl Resource for MigrationPlan {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        check_config(config)
    }

    async fn plan(&self, ctx: &ProviderContext, req: PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        if req.proposed_new_state.is_null() {
            return resp;
        }
        let config = req.config;
        let prior = req.prior_state;
        let mut planned = req.proposed_new_state;
        let config_known = DEFINING.iter().all(|n| !attrs::is_unknown(&config, n));
        let id = if config_known {
            Value::string(migration_id(&config))
        } else {
            Value::Unknown
        };
        attrs::set(&mut planned, "id", id.clone());
        attrs::set(&mut planned, "migration_id", id.clone());
        resp.planned_private = req.prior_private;

        // The same migration as in state: keep what was planned and done; only a due schedule
        // or a promotion turned on makes apply run again.
        if !prior.is_null() && prior.get("migration_id") == Some(&id) {
            for n in PLAN_FIELDS.iter().chain(RUN_FIELDS) {
                attrs::set(
                    &mut planned,
                    n,
                    prior.get(n).cloned().unwrap_or(Value::Null),
                );
            }
            let status = attrs::string(&prior, "status").unwrap_or_default();
            let promote_now = attrs::get(&config, "blue_green")
                .and_then(|b| attrs::boolean(b, "auto_promote"))
                .unwrap_or(true);
            let due = status == "scheduled" && scheduled_ahead(&config).is_none();
            if due || (status == "awaiting_promotion" && promote_now) || unfinished_run(&status) {
                set_all(&mut planned, RUN_FIELDS, Value::Unknown);
            }
            resp.planned_state = planned;
            return resp;
        }
        if !prior.is_null() {
            resp.requires_replace = DEFINING
                .iter()
                .map(|n| AttributePath::root().attr(*n))
                .collect();
        }
        set_all(&mut planned, RUN_FIELDS, Value::Unknown);
        if !config_known || attrs::is_unknown(&config, "workload_id") {
            set_all(&mut planned, PLAN_FIELDS, Value::Unknown);
            resp.planned_state = planned;
            return resp;
        }
        let ty = self.value_type();
        // An interrupted migration with this id: show what is running, which apply resumes.
        let id_text = migration_id(&config);
        match ctx.sim.migration(&id_text) {
            Ok(Some(record)) if unfinished(&record.status) || record.status == "completed" => {
                if let Some(recorded) = recorded_values(&record, &ty) {
                    for n in PLAN_FIELDS {
                        attrs::set(
                            &mut planned,
                            n,
                            recorded.get(n).cloned().unwrap_or(Value::Null),
                        );
                    }
                    let detail = if record.status == "completed" {
                        format!("Migration {id_text} was completed by an earlier apply whose state was not saved. Apply records it without moving anything.")
                    } else {
                        format!("Migration {id_text} was started by an earlier apply and stopped at step {} ({}% of traffic on the new side, status {}). Apply resumes it from there.", record.next_step, record.traffic_percentage, record.status)
                    };
                    resp.diagnostics
                        .push(Diagnostic::warning("Migration already under way", detail));
                    resp.planned_state = planned;
                    return resp;
                }
            }
            Ok(_) => {}
            Err(e) => {
                resp.diagnostics.push(Diagnostic::error(
                    "Could not read the migration journal",
                    e.to_string(),
                ));
                return resp;
            }
        }
        match compute(ctx, &config).await {
            Ok(computed) => {
                for (n, v) in computed.values {
                    attrs::set(&mut planned, n, v);
                }
                resp.diagnostics.extend(computed.warnings);
                if scheduled_ahead(&config).is_some() {
                    attrs::set(&mut planned, "status", Value::string("scheduled"));
                }
                resp.planned_state = planned;
            }
            Err(diags) => resp.diagnostics = diags,
        }
        resp
    }

    async fn apply(&self, ctx: &ProviderContext, req: ApplyRequest) -> ApplyResponse {
        let mut resp = ApplyResponse {
            private: req.planned_private,
            ..ApplyResponse::default()
        };
        if req.planned_state.is_null() {
            // Destroy forgets the plan; an unfinished migration is aborted first.
            let id = attrs::string(&req.prior_state, "migration_id").unwrap_or_default();
            match migration_run::abort(ctx, &id).await {
                Ok(()) => resp.new_state = Value::Null,
                Err(d) => {
                    resp.new_state = req.prior_state;
                    resp.diagnostics.push(d);
                }
            }
            return resp;
        }
        let ty = self.value_type();
        let config = req.config;
        let mut planned = req.planned_state;
        let id = migration_id(&config);
        attrs::set(&mut planned, "id", Value::string(id.clone()));
        attrs::set(&mut planned, "migration_id", Value::string(id.clone()));

        // Plan values may be unknown (the workload was created in the same run).
        if PLAN_FIELDS.iter().any(|n| attrs::is_unknown(&planned, n)) {
            match compute(ctx, &config).await {
                Ok(computed) => {
                    for (n, v) in computed.values {
                        attrs::set(&mut planned, n, v);
                    }
                    resp.diagnostics.extend(computed.warnings);
                }
                Err(diags) => {
                    resp.new_state = req.prior_state;
                    resp.diagnostics.extend(diags);
                    return resp;
                }
            }
        }
        if scheduled_ahead(&config).is_some() {
            let mut state = planned;
            set_all(&mut state, RUN_FIELDS, Value::Null);
            attrs::set(&mut state, "status", Value::string("scheduled"));
            attrs::set(
                &mut state,
                "status_message",
                Value::string(format!(
                    "waiting for scheduled_time {}; the first apply after it runs the migration",
                    attrs::string(&config, "scheduled_time").unwrap_or_default()
                )),
            );
            attrs::set(&mut state, "current_step", Value::number(0i64));
            attrs::set(&mut state, "traffic_percentage", Value::number(0i64));
            resp.new_state = state;
            return resp;
        }
        let outcome = migration_run::run(ctx, &config, &planned, &ty, &id).await;
        match outcome {
            Ok((record, failure)) => {
                resp.new_state = with_record(planned, &record);
                if let Some(d) = failure {
                    resp.diagnostics.push(d);
                }
            }
            Err(d) => {
                // Nothing the state can describe yet (or a journal error): keep the prior state;
                // the journal lets the next apply resume.
                resp.new_state = if req.prior_state.is_null() {
                    Value::Null
                } else {
                    req.prior_state
                };
                resp.diagnostics.push(d);
            }
        }
        resp
    }

    async fn read(&self, ctx: &ProviderContext, state: Value, private: Vec<u8>) -> ReadResponse {
        let mut resp = ReadResponse {
            private,
            new_state: state.clone(),
            ..ReadResponse::default()
        };
        let Some(id) = attrs::string(&state, "migration_id") else {
            return resp;
        };
        // The journal is the truth of how far the migration got (another apply may have moved it).
        match ctx.sim.migration(&id) {
            Ok(Some(record)) => resp.new_state = with_record(state, &record),
            Ok(None) => {}
            Err(e) => resp.diagnostics.push(Diagnostic::warning(
                "Could not read the migration journal",
                e.to_string(),
            )),
        }
        resp
    }

    async fn import(&self, _ctx: &ProviderContext, id: &str) -> ImportResponse {
        let mut resp = ImportResponse::default();
        resp.diagnostics.push(Diagnostic::error(
            "hybrid_migration_plan cannot be imported",
            format!("A migration plan's configuration (strategy blocks, health check) is not stored in the cloud, so {id:?} cannot be turned back into one. Write the resource with the same configuration instead: its migration_id is derived from that configuration, and apply picks up the journal of a migration already under way or done."),
        ));
        resp
    }

    fn upgrade(&self, version: i64, state_json: &[u8]) -> Result<Value, Diagnostics> {
        decode_stored_state(TYPE_NAME, &self.schema, version, state_json)
    }
}

/// A status that means apply stopped before the end (it was interrupted or killed).
fn unfinished_run(status: &str) -> bool {
    matches!(status, "in_progress" | "rolling_back")
}

/// The workload's stored description with the target placement: what the new side carries so
/// that `hybrid_workload` reads it as its own once the old side is gone.
pub fn target_metadata(wl: &StoredWorkload, target: &Value) -> Option<clouds::Metadata> {
    let mut state = wl.state.clone();
    attrs::set(&mut state, "placement", target.clone());
    let ty = workload::Workload::new().schema().block.value_type();
    workload::metadata_document(None, |out| tfvalue::write_json(&state, &ty, out))
}

/// The new side, created with the same idempotency key `hybrid_workload` would use there.
pub fn target_spec(wl: &StoredWorkload, target: &Value, migration_id: &str) -> InstanceSpec {
    let mut tags = clouds::user_tags(&wl.instance.tags);
    tags.insert(
        migration_run::TAG_MIGRATION_ID.to_string(),
        migration_id.to_string(),
    );
    InstanceSpec {
        idempotency_key: workload::idempotency_key(&wl.instance.name, target),
        workload_id: wl.instance.workload_id.clone(),
        name: wl.instance.name.clone(),
        provider: attrs::string(target, "provider").unwrap_or_default(),
        region: attrs::string(target, "region").unwrap_or_default(),
        zone: attrs::string(target, "zone"),
        instance_type: attrs::string(target, "instance_type"),
        node: attrs::string(target, "node"),
        image: wl.instance.image.clone(),
        tags,
        metadata: target_metadata(wl, target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(strategy: &str) -> Value {
        let ty = MigrationPlan::new().value_type();
        let mut v = tfvalue::decode_json_value(&serde_json::json!({}), &ty).expect("null object");
        attrs::set(&mut v, "workload_id", Value::string("wl-1"));
        attrs::set(&mut v, "target_strategy", Value::string("cost_optimized"));
        attrs::set(&mut v, "strategy", Value::string(strategy));
        v
    }

    #[test]
    fn the_id_is_stable_and_ignores_auto_promote_only() {
        let mut a = config("blue_green");
        attrs::set(
            &mut a,
            "blue_green",
            Value::object([
                ("validation_checks", Value::Null),
                ("auto_promote", Value::Bool(false)),
                ("promote_after_seconds", Value::Null),
                ("scale_down_delay_seconds", Value::Null),
            ]),
        );
        let mut b = a.clone();
        if let Some(mut bg) = b.get("blue_green").cloned() {
            attrs::set(&mut bg, "auto_promote", Value::Bool(true));
            attrs::set(&mut b, "blue_green", bg);
        }
        assert_eq!(migration_id(&a), migration_id(&b));
        assert_ne!(migration_id(&a), migration_id(&config("canary")));
        assert!(migration_id(&a).starts_with("mig-"));
    }

    #[test]
    fn config_checks_name_the_attribute() {
        let mut c = config("canary");
        attrs::set(&mut c, "scheduled_time", Value::string("next tuesday"));
        attrs::set(
            &mut c,
            "target",
            Value::object([
                ("provider", Value::string("edge")),
                ("region", Value::string("berlin")),
                ("instance_type", Value::string("x")),
            ]),
        );
        let diags = check_config(&c);
        let paths: Vec<String> = diags
            .0
            .iter()
            .filter_map(|d| d.path.as_ref().map(|p| format!("{p:?}")))
            .collect();
        assert!(
            paths.iter().any(|p| p.contains("scheduled_time")),
            "{paths:?}"
        );
        assert!(paths.iter().any(|p| p.contains("provider")), "{paths:?}");
        assert!(diags.0.iter().any(|d| d.summary == "Conflicting targets"));
        assert!(
            diags.0.iter().any(|d| d.summary == "Invalid canary"),
            "{diags:?}"
        );
    }
}
