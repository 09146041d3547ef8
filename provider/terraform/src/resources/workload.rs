//! `hybrid_workload`: requirements in, a placement decided at plan time, an instance at apply.
//!
//! - Plan runs the placement engine and puts the whole decision in the plan (provider, region,
//!   type, cost, latency, scores, reason, ranked alternatives), so a reviewer sees it before
//!   anything exists. Same inputs and catalog give the same plan; with state, the engine is
//!   sticky and an unchanged configuration re-plans empty.
//! - A change of where the workload runs (provider, region, zone, node or type) is a
//!   replacement; everything else (tags, estimates) is an in-place update.
//! - Apply provisions exactly the placement the plan showed. The instance's idempotency key is
//!   derived from the name and placement, so a retried or interrupted apply finds the instance it
//!   already made instead of making a second one.
//! - Read notices an instance deleted outside Terraform (state drops it, plan re-creates) and a
//!   changed type or tags (plan shows the drift).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clouds::retry::{with_backoff, RetryPolicy};
use clouds::{Driver, DriverError, Instance, InstanceSpec, Metadata};
use placement::{
    PlaceOptions, PlacementKey, Provider as PlacementProvider, RawRequirements, Requirements,
    Strategy,
};
use tfvalue::{AttributePath, ObjectType, Type, Value};

use super::plan_note::{PlanNote, RecordedPlan};
use super::workload_edge;
use super::{
    decode_stored_state_as, sha256_hex, ApplyRequest, ApplyResponse, ImportResponse, PlanRequest,
    PlanResponse, ProviderContext, ReadResponse, ReplayLookup, Resource,
};
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
pub use crate::engine_values::placement_type;
use crate::engine_values::{field_errors, placement_value, raw_requirements, strategy_weights};
use crate::schema::{timeouts_block, Attr, Block, Nesting, Schema};

pub const TYPE_NAME: &str = "hybrid_workload";
pub const SCHEMA_VERSION: i64 = 1;

/// Attributes that feed the placement engine: if any is unknown at plan, placement waits.
const PLACEMENT_INPUTS: &[&str] = &[
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
    "replace_threshold_percent",
    "edge_cluster_ids",
    "alternatives_count",
    "edge",
];

/// The parts of a placement that say *where*; a change to any of them is a replacement.
const WHERE_FIELDS: &[&str] = &["provider", "region", "zone", "node", "instance_type"];

const DEFAULT_ALTERNATIVES: usize = 3;
const MAX_ALTERNATIVES: i64 = 10;

const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const DEFAULT_UPDATE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Reads (refresh, import) have no `timeouts` entry; retries of a throttled read stop here.
const READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

pub struct Workload {
    schema: Schema,
    /// The schema's object type, built once (plan notes and import encode with it).
    object: ObjectType,
    /// The same as a [`Type`], for encoding whole states (instance metadata) without a clone.
    ty: Type,
}

impl Default for Workload {
    fn default() -> Self {
        Workload::new()
    }
}

impl Workload {
    pub fn new() -> Workload {
        let s = |xs: Type| xs;
        let attributes = vec![
            Attr::computed("id", Type::String, "Stable id of the workload, derived from its name (`wl-` + 16 hex digits)."),
            Attr::required("name", Type::String, "Name of the workload; unique within one cloud account or sim cloud. Changing it replaces the workload."),
            Attr::optional("workload_type", Type::String, "web, api, batch, ml_inference, ml_training, data_analytics, database, cache or streaming."),
            Attr::required("cpu", Type::Number, "vCPUs per replica (> 0)."),
            Attr::required("memory_gb", Type::Number, "Memory per replica in GB (> 0)."),
            Attr::optional_computed("storage_gb", Type::Number, "Block storage per replica in GB (default 0); priced into the estimate."),
            Attr::optional_computed("gpu_count", Type::Number, "GPUs per replica (default 0)."),
            Attr::optional("gpu_model", Type::String, "Required GPU model, matched case-insensitively as a substring (e.g. \"a100\", \"t4\")."),
            Attr::optional("max_latency_ms", Type::Number, "Maximum weighted round-trip latency to user_locations, in ms."),
            Attr::optional("cost_budget_hourly", Type::Number, "Maximum hourly cost in USD for all replicas, storage included."),
            Attr::optional("compliance", Type::set(Type::String), "Required compliance regimes: gdpr, fedramp, soc2, iso27001, hipaa, pci_dss."),
            Attr::optional("preferred_providers", Type::list(Type::String), "Providers allowed to host the workload: aws, azure, gcp, edge, onprem. Empty means any."),
            Attr::optional("data_residency_regions", Type::set(Type::String), "Where the data may live: region codes of any provider (eu-west-1, westeurope, europe-west1) or jurisdictions/countries (EU, EEA, US, DE)."),
            Attr::nested_optional(
                "user_locations",
                Nesting::List,
                vec![
                    Attr::required("lat", Type::Number, "Latitude in degrees (-90..90)."),
                    Attr::required("lng", Type::Number, "Longitude in degrees (-180..180)."),
                    Attr::optional("weight", Type::Number, "Relative share of users here (> 0, default 1)."),
                ],
                "Where users connect from; latency is the weighted mean round trip to these points.",
            ),
            Attr::optional_computed("strategy", Type::String, "cost_optimized, performance_optimized, latency_optimized, resilience_optimized, hybrid (default, 25% each) or custom (with weights)."),
            Attr::optional("weights", s(Type::object([
                ("cost".to_string(), Type::Number),
                ("performance".to_string(), Type::Number),
                ("latency".to_string(), Type::Number),
                ("resilience".to_string(), Type::Number),
            ])), "Scoring weights for strategy = \"custom\"; each >= 0, summing to 1."),
            Attr::optional_computed("replicas", Type::Number, "Number of replicas (default 1); the cost estimate covers all of them."),
            Attr::optional("edge_cluster_ids", Type::set(Type::String), "Edge clusters (hybrid_edge_cluster ids) whose nodes this workload may use; unset means every cluster in the store. Naming a cluster created in the same run defers the placement until that cluster and its nodes exist."),
            Attr::optional("spot_allowed", Type::Bool, "Allow spot/preemptible pricing where the catalog has real spot prices."),
            Attr::optional_computed("replace_threshold_percent", Type::Number, "Keep the current placement unless another scores more than this many percent higher (default 10)."),
            Attr::optional_computed("alternatives_count", Type::Number, "How many ranked alternatives to keep in the plan and state (0..10, default 3). Each costs about 0.8 KB of state; a fleet of thousands of workloads may want 0."),
            Attr::optional("image", Type::String, "Machine or container image to run."),
            Attr::optional("tags", Type::map(Type::String), "Tags for the instance; the provider's default_tags are merged in (these win)."),
            Attr::computed("tags_all", Type::map(Type::String), "All tags applied: default_tags merged with tags."),
            Attr::computed("driver", Type::String, "The driver that provisions the placement (sim unless a cloud driver is configured)."),
            Attr::computed("placement", placement_type(), "Where the workload runs, decided at plan time: provider, region, zone, node, instance_type, estimated_cost_hourly, estimated_latency_ms, score, scores and a one-line reason."),
            Attr::computed("alternatives", Type::list(placement_type()), "The next best placements, best first, one per provider and region."),
            Attr::computed("edge_assignments", Type::list(workload_edge::assignment_type()), "With an edge block: how many replicas run on which edge node, decided at plan time."),
            Attr::computed("instance_id", Type::String, "The instance's id in the target cloud."),
            Attr::computed("private_ip", Type::String, "The instance's private IP address."),
            Attr::computed("status", Type::String, "The instance's state as the cloud reports it (running, stopped, ...)."),
        ];
        let schema = Schema {
            version: SCHEMA_VERSION,
            block: Block {
                attributes,
                blocks: vec![
                    timeouts_block(&["create", "update", "delete"]),
                    workload_edge::edge_block(),
                ],
                description: "A workload placed by the hybrid placement engine: requirements in; at plan time the provider, region, instance type, hourly cost, latency and the reason; at apply time a running instance.",
            },
        };
        let object = schema.block.object_type();
        let ty = Type::Object(object.clone());
        Workload { schema, object, ty }
    }
}

/// `wl-` + 16 hex digits of SHA-256 of the name: stable, so import and re-create agree.
pub fn workload_id(name: &str) -> String {
    format!("wl-{}", sha256_hex(format!("{TYPE_NAME}|{name}"), 8))
}

/// The client token for creating this workload at this placement.
pub(crate) fn idempotency_key(name: &str, placement: &Value) -> String {
    let mut text = format!("{TYPE_NAME}|{name}");
    for field in WHERE_FIELDS {
        text.push('|');
        text.push_str(&attrs::string(placement, field).unwrap_or_default());
    }
    sha256_hex(text, 16)
}

fn placement_key(v: &Value) -> Option<PlacementKey> {
    let provider = PlacementProvider::parse(&attrs::string(v, "provider")?)?;
    Some(PlacementKey {
        provider,
        region: attrs::string(v, "region")?,
        instance_type: attrs::string(v, "instance_type"),
        node: attrs::string(v, "node"),
    })
}

fn same_where(a: &Value, b: &Value) -> bool {
    a.is_known()
        && b.is_known()
        && WHERE_FIELDS
            .iter()
            .all(|f| attrs::str(a, f) == attrs::str(b, f))
}

fn inputs_equal(a: &Value, b: &Value) -> bool {
    PLACEMENT_INPUTS
        .iter()
        .all(|name| a.get(name) == b.get(name))
}

/// Requirements exactly as configured, plus the strategy name, weights and threshold.
struct Inputs {
    raw: RawRequirements,
    alternatives_count: usize,
    strategy: String,
    weights: Option<[f64; 4]>,
    replace_threshold_percent: f64,
}

fn read_inputs(config: &Value) -> Result<Inputs, Diagnostics> {
    let mut diags = Diagnostics::new();
    let raw = raw_requirements(config, &mut diags);
    let weights = strategy_weights(config);
    let alternatives_count = match attrs::integer(config, "alternatives_count") {
        Ok(None) => DEFAULT_ALTERNATIVES,
        Ok(Some(n)) if (0..=MAX_ALTERNATIVES).contains(&n) => n as usize,
        _ => {
            diags.push(Diagnostic::attribute_error(
                AttributePath::root().attr("alternatives_count"),
                "Invalid alternatives_count",
                format!("alternatives_count must be a whole number from 0 to {MAX_ALTERNATIVES}."),
            ));
            DEFAULT_ALTERNATIVES
        }
    };
    let replace_threshold_percent =
        attrs::number(config, "replace_threshold_percent").unwrap_or(10.0);
    if !(replace_threshold_percent.is_finite()
        && (0.0..=1000.0).contains(&replace_threshold_percent))
    {
        diags.push(Diagnostic::attribute_error(
            AttributePath::root().attr("replace_threshold_percent"),
            "Invalid replace_threshold_percent",
            format!("replace_threshold_percent must be between 0 and 1000, got {replace_threshold_percent}."),
        ));
    }
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Inputs {
        raw,
        alternatives_count,
        strategy: attrs::string(config, "strategy").unwrap_or_else(|| "hybrid".to_string()),
        weights,
        replace_threshold_percent,
    })
}

/// Everything the engine needs for this workload, validated.
struct Validated {
    requirements: Requirements,
    strategy: Strategy,
    replace_threshold_percent: f64,
    alternatives_count: usize,
}

fn validated(config: &Value, catalog: &catalog::Catalog) -> Result<Validated, Diagnostics> {
    let inputs = read_inputs(config)?;
    let mut errors = Vec::new();
    let requirements = Requirements::validate(&inputs.raw, catalog).map_err(|e| errors.extend(e));
    let strategy = Strategy::parse(&inputs.strategy, inputs.weights).map_err(|e| errors.push(e));
    match (requirements, strategy) {
        (Ok(requirements), Ok(strategy)) if errors.is_empty() => Ok(Validated {
            requirements,
            strategy,
            replace_threshold_percent: inputs.replace_threshold_percent,
            alternatives_count: inputs.alternatives_count,
        }),
        _ => Err(field_errors(errors, &[])),
    }
}

/// A duration in Terraform's timeouts style: numbers with units h, m and s, e.g. "1h30m".
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut saw_unit = false;
    for ch in trimmed.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => {
                return Err(format!(
                    "unexpected {ch:?}; use units h, m and s, e.g. \"1h30m\""
                ))
            }
        };
        let n: f64 = number
            .parse()
            .map_err(|_| format!("missing number before {ch:?}"))?;
        total += n * unit;
        number.clear();
        saw_unit = true;
    }
    if !number.is_empty() || !saw_unit {
        return Err("every number needs a unit (h, m or s), e.g. \"20m\"".into());
    }
    if total <= 0.0 || total > 7.0 * 86_400.0 {
        return Err("must be more than 0s and at most 168h".into());
    }
    Ok(Duration::from_secs_f64(total))
}

fn timeout(state: &Value, op: &str, default: Duration) -> Duration {
    attrs::get(state, "timeouts")
        .and_then(|t| attrs::string(t, op))
        .and_then(|text| parse_duration(&text).ok())
        .unwrap_or(default)
}

/// Runs a driver call with the shared retries, bounded by the operation's timeout (from the
/// `timeouts` block) and cancelled by StopProvider, also while the driver waits inside a call.
async fn drive<T, F, Fut>(
    ctx: &ProviderContext,
    driver: &Arc<dyn Driver>,
    operation: &'static str,
    limit: Duration,
    attempt: F,
) -> Result<T, DriverError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, DriverError>>,
{
    let policy = RetryPolicy::with_timeout(limit);
    let target = driver.name();
    let mut stop = ctx.stop.clone();
    tokio::select! {
        out = tokio::time::timeout(limit, with_backoff(target, operation, &policy, &ctx.stop, attempt)) => {
            out.unwrap_or_else(|_| Err(DriverError::Timeout { target: target.to_string(), operation, seconds: limit.as_secs() }))
        }
        _ = stop.stopped() => Err(DriverError::Cancelled { target: target.to_string(), operation }),
    }
}

/// The driver that owns the instance in `state` (its `driver` attribute; sim for old state).
fn recorded_driver(ctx: &ProviderContext, state: &Value) -> Result<Arc<dyn Driver>, Diagnostic> {
    let name = attrs::string(state, "driver").unwrap_or_else(|| ctx.driver.name().to_string());
    ctx.driver_named(&name).map_err(|why| {
        Diagnostic::attribute_error(
            AttributePath::root().attr("driver"),
            "Driver not available",
            format!("{why}."),
        )
    })
}

fn driver_error(op: &str, err: &clouds::DriverError) -> Diagnostic {
    Diagnostic::error(
        format!("Could not {op} the workload"),
        format!("{err}. The state records only what is known to exist; running apply again resumes safely (creates are idempotent)."),
    )
}

/// State value with the instance's facts filled in.
fn with_instance(mut state: Value, inst: &Instance) -> Value {
    attrs::set(
        &mut state,
        "instance_id",
        Value::string(inst.instance_id.clone()),
    );
    attrs::set(
        &mut state,
        "private_ip",
        Value::string(inst.private_ip.clone()),
    );
    attrs::set(&mut state, "status", Value::string(inst.status.clone()));
    state
}

impl Workload {
    /// The document stored with the instance for `state`, with the Kubernetes driver's section
    /// when it is the target. Null attributes, and unknowns (what apply is about to fill in),
    /// are left out: read back as null, they take no room (a third of a workload's state is
    /// nulls, and without them two instances share a page of the sim's database).
    fn metadata(
        &self,
        state: &Value,
        kube_section: Option<&serde_json::Value>,
    ) -> Option<Metadata> {
        metadata_document(kube_section, |out| {
            tfvalue::write_json_without_null_attributes(state, &self.ty, out)
        })
    }

    /// A digest of every placement input, so a note is only ever repeated for the same inputs:
    /// each input's name, then its msgpack encoding (canonical: sorted maps and sets, exact
    /// numbers) with its length.
    fn inputs_digest(&self, planned: &Value) -> String {
        let mut bytes = Vec::with_capacity(512);
        for name in PLACEMENT_INPUTS {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
            // The length goes before the value: written after it, into its place.
            let at = bytes.len();
            bytes.extend_from_slice(&[0; 8]);
            let written = match (self.object.attrs.get(*name), planned.get(name)) {
                (Some(ty), Some(v)) => tfvalue::encode_msgpack_into(v, ty, &mut bytes).is_ok(),
                _ => false,
            };
            let len = if written {
                (bytes.len() - at - 8) as u64
            } else {
                u64::MAX
            };
            bytes[at..at + 8].copy_from_slice(&len.to_le_bytes());
        }
        sha256_hex(bytes, 16)
    }

    /// The note's bytes (see [`PlanNote`]). A note that records the plan holds its planned
    /// state as sent; one that does not holds the noted attributes as msgpack (msgpack, not
    /// JSON: it keeps a float64 a float64, and Terraform compares the repeated plan with the
    /// first one exactly).
    fn plan_note_body(&self, planned: &Value, replay: Option<RecordedPlan<'_>>) -> Option<Vec<u8>> {
        let inputs = self.inputs_digest(planned);
        if let Some(plan) = replay {
            return PlanNote::recording(&inputs, plan).to_bytes();
        }
        let mut encoded = Vec::with_capacity(NOTED.len());
        for name in NOTED {
            let (ty, value) = (self.object.attrs.get(name)?, planned.get(name)?);
            encoded.push((name, tfvalue::encode_msgpack(value, ty).ok()?));
        }
        let attributes = encoded.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        PlanNote::decision(&inputs, attributes).to_bytes()
    }

    /// Remembers an edge decision just shown, so that the apply-time plan repeats it (see the
    /// ledger's plan notes). A cloud-only decision needs no note: the catalog does not move.
    ///
    /// `replay` (the request's digest, and whether the plan replaces) records the whole planned
    /// state as well, so that the apply-time plan of the same request is answered with it
    /// (see [`PlanRequest::request_digest`]). Only for a plan that books no edge capacity (whose repeat
    /// must check that the capacity is still there) and that has said nothing (its repeat would
    /// not say it again).
    fn write_plan_note(
        &self,
        ctx: &ProviderContext,
        planned: &Value,
        edge_considered: bool,
        replay: Option<RecordedPlan<'_>>,
        diags: &mut Diagnostics,
    ) {
        let Some(id) = attrs::string(planned, "id") else {
            return;
        };
        let placement = planned.get("placement").unwrap_or(&Value::Null);
        let books_edge = !planned_bookings(planned, placement).is_empty();
        if !edge_considered && !books_edge {
            return;
        }
        let replay = replay.filter(|_| !books_edge && diags.is_empty());
        let Some(body) = self.plan_note_body(planned, replay) else {
            return;
        };
        if let Err(e) = ctx
            .ledger
            .put_plan_note(&plan_note_key(&id), &body, PLAN_NOTE_TTL)
        {
            diags.push(Diagnostic::warning(
                "Edge decision not remembered",
                format!("The ledger at {} could not record this plan's edge placement ({e}); if capacity changes before apply, apply may report an inconsistent plan.", ctx.ledger.location()),
            ));
        }
    }

    /// Repeats the edge decision an earlier plan of the same inputs showed, when there is one:
    /// `Ok(true)` when `planned` now carries it, `Ok(false)` when the decision is to be made
    /// afresh, an error when the capacity it booked was taken since (the note is then dropped,
    /// so the next plan decides afresh).
    ///
    /// `prefetched` is the note under this workload's key when the plan has read it already.
    fn recall_plan_note(
        &self,
        ctx: &ProviderContext,
        same_inputs_as_prior: bool,
        planned: &mut Value,
        prefetched: Option<Option<PlanNote<'_>>>,
    ) -> Result<bool, Diagnostic> {
        if same_inputs_as_prior {
            return Ok(false);
        }
        let Some(id) = attrs::string(planned, "id") else {
            return Ok(false);
        };
        let key = plan_note_key(&id);
        let fetched;
        let note = match prefetched {
            Some(note) => note,
            None => {
                fetched = ctx.ledger.plan_note(&key).ok().flatten();
                fetched.as_deref().and_then(PlanNote::parse)
            }
        };
        let Some(note) = note else {
            return Ok(false);
        };
        if note.inputs != self.inputs_digest(planned) {
            return Ok(false);
        }
        let object = &self.object;
        let mut candidate = planned.clone();
        for name in NOTED {
            let (Some(ty), Some(bytes)) = (object.attrs.get(name), note.attribute(name)) else {
                return Ok(false);
            };
            match tfvalue::decode_msgpack(bytes, ty) {
                Ok(v) => attrs::set(&mut candidate, name, v),
                Err(_) => return Ok(false),
            }
        }
        let placement = candidate.get("placement").unwrap_or(&Value::Null);
        for (node, amounts) in planned_bookings(&candidate, placement) {
            if let Some(why) = shortfall(ctx, &node, &amounts, &id) {
                let _ = ctx.ledger.forget_plan_note(&key);
                return Err(Diagnostic::error(
                    "Edge capacity no longer available",
                    format!("This workload was planned onto edge node {node}, but that capacity was taken since: {why}. Nothing was created and the workload was not moved elsewhere; run terraform plan again to choose another placement."),
                ));
            }
        }
        *planned = candidate;
        Ok(true)
    }

    /// The plan recorded for the request with digest `request_digest` of the workload `name`,
    /// read from its note: by `replayed_plan` before the request is decoded, by `plan` when
    /// that did not look. `Err` with the note's text as read (if any) when it records no plan
    /// for this request.
    fn recorded_plan(
        &self,
        ctx: &ProviderContext,
        name: &str,
        request_digest: &str,
    ) -> Result<PlanResponse, Option<Vec<u8>>> {
        let id = workload_id(name);
        let body = ctx.ledger.plan_note(&plan_note_key(&id)).ok().flatten();
        let replayed = body
            .as_deref()
            .and_then(PlanNote::parse)
            .and_then(|note| self.replayed(&note, request_digest, id, name));
        match replayed {
            Some(out) => {
                tracing::debug!("plan answered with the one recorded for this request");
                Ok(out)
            }
            None => Err(body),
        }
    }

    /// The plan recorded in `note` for the request with digest `request_digest`, as the
    /// response that gives it back: the bytes as sent, with the attributes telemetry reads.
    fn replayed(
        &self,
        note: &PlanNote<'_>,
        request_digest: &str,
        id: String,
        name: &str,
    ) -> Option<PlanResponse> {
        let plan = note.plan.filter(|plan| plan.request == request_digest)?;
        let placement_ty = self.object.attrs.get("placement")?;
        let placement = tfvalue::decode_msgpack(note.attribute("placement")?, placement_ty).ok()?;
        Some(PlanResponse {
            planned_state: Value::object([
                ("id", Value::string(id)),
                ("name", Value::string(name)),
                ("placement", placement),
            ]),
            requires_replace: if plan.replaces {
                replace_paths()
            } else {
                Vec::new()
            },
            planned_msgpack: Some(plan.planned.to_vec()),
            ..PlanResponse::default()
        })
    }

    fn merged_tags(ctx: &ProviderContext, planned: &Value) -> BTreeMap<String, String> {
        let mut tags = ctx.default_tags.clone();
        tags.extend(attrs::string_map(planned, "tags"));
        tags
    }

    async fn create(&self, ctx: &ProviderContext, planned: Value) -> ApplyResponse {
        let mut resp = ApplyResponse::default();
        let (Some(name), Some(id), Some(placement)) = (
            attrs::string(&planned, "name"),
            attrs::string(&planned, "id"),
            attrs::get(&planned, "placement").cloned(),
        ) else {
            resp.diagnostics.push(Diagnostic::error(
                "Placement not decided",
                "The plan has no placement for this workload (its inputs were unknown at plan time and are still unknown). Run terraform apply again once the inputs are known.",
            ));
            return resp;
        };
        let mut spec = InstanceSpec {
            idempotency_key: idempotency_key(&name, &placement),
            workload_id: id,
            name,
            provider: attrs::string(&placement, "provider").unwrap_or_default(),
            region: attrs::string(&placement, "region").unwrap_or_default(),
            zone: attrs::string(&placement, "zone"),
            instance_type: attrs::string(&placement, "instance_type"),
            node: attrs::string(&placement, "node"),
            image: attrs::string(&planned, "image"),
            tags: Self::merged_tags(ctx, &planned),
            metadata: None,
        };
        let driver = match placement_driver(ctx, &planned, &placement) {
            Ok(d) => d,
            Err(d) => {
                resp.diagnostics.push(d);
                return resp;
            }
        };
        let kube =
            (driver.name() == KUBERNETES_DRIVER).then(|| kube_section(ctx, &planned, &placement));
        spec.metadata = self.metadata(&planned, kube.as_ref());
        // The apply-time plan has repeated the noted decision; from here the reservation
        // decides, and a later plan decides afresh.
        let _ = ctx
            .ledger
            .forget_plan_note(&plan_note_key(&spec.workload_id));
        // Edge capacity is booked before anything runs there, exactly as the plan showed it.
        let reservations = match reserve_edge(ctx, &planned, &placement, &spec.workload_id) {
            Ok(r) => r,
            Err(d) => {
                resp.diagnostics.push(d);
                return resp;
            }
        };
        let limit = timeout(&planned, "create", DEFAULT_CREATE_TIMEOUT);
        // Shared by the attempts: the spec carries the whole state as metadata.
        let spec = Arc::new(spec);
        let result = drive(ctx, &driver, "create", limit, |_| {
            let driver = driver.clone();
            let spec = spec.clone();
            async move { driver.create(&spec).await }
        })
        .await;
        match result {
            Ok(inst) => {
                tracing::info!(workload_id = %inst.workload_id, instance_id = %inst.instance_id, "workload created");
                for r in &reservations {
                    if let Err(err) = ctx.ledger.commit(&r.id) {
                        resp.diagnostics.push(Diagnostic::warning(
                            "Edge reservation not committed",
                            format!("The workload runs, but its capacity reservation could not be made durable: {err}. Run terraform apply again to book it."),
                        ));
                    }
                }
                let mut new_state = with_instance(planned, &inst);
                attrs::set(&mut new_state, "driver", Value::string(driver.name()));
                resp.new_state = new_state;
            }
            Err(err) => {
                for r in &reservations {
                    let _ = ctx.ledger.release(&r.id);
                }
                // Nothing known to exist: no state. A repeat apply with the same placement
                // uses the same idempotency key and adopts anything this attempt left behind.
                resp.new_state = Value::Null;
                resp.diagnostics.push(driver_error("create", &err));
            }
        }
        resp
    }

    async fn update(&self, ctx: &ProviderContext, prior: Value, planned: Value) -> ApplyResponse {
        let mut resp = ApplyResponse::default();
        let Some(instance_id) = attrs::string(&prior, "instance_id") else {
            resp.new_state = prior;
            resp.diagnostics.push(Diagnostic::error(
                "Workload has no instance",
                "The state of this workload has no instance_id; run terraform apply -replace to create it again.",
            ));
            return resp;
        };
        let tags = Self::merged_tags(ctx, &planned);
        let mut new_state = planned.clone();
        for computed in ["instance_id", "private_ip", "status"] {
            if let Some(v) = prior.get(computed) {
                attrs::set(&mut new_state, computed, v.clone());
            }
        }
        let driver = match recorded_driver(ctx, &prior) {
            Ok(d) => d,
            Err(d) => {
                resp.new_state = prior;
                resp.diagnostics.push(d);
                return resp;
            }
        };
        let kube = (driver.name() == KUBERNETES_DRIVER).then(|| {
            let placement = attrs::get(&new_state, "placement")
                .cloned()
                .unwrap_or(Value::Null);
            kube_section(ctx, &new_state, &placement)
        });
        let metadata = self.metadata(&new_state, kube.as_ref());
        let limit = timeout(&planned, "update", DEFAULT_UPDATE_TIMEOUT);
        let result = drive(ctx, &driver, "update", limit, |_| {
            let driver = driver.clone();
            let tags = tags.clone();
            let metadata = metadata.clone();
            let instance_id = instance_id.clone();
            async move {
                driver
                    .update_tags(&instance_id, &tags, metadata.as_ref())
                    .await
            }
        })
        .await;
        match result {
            Ok(inst) => resp.new_state = with_instance(new_state, &inst),
            Err(err) => {
                resp.new_state = prior;
                resp.diagnostics.push(driver_error("update", &err));
            }
        }
        resp
    }

    async fn delete(&self, ctx: &ProviderContext, prior: Value) -> ApplyResponse {
        let mut resp = ApplyResponse::default();
        let Some(instance_id) = attrs::string(&prior, "instance_id") else {
            resp.new_state = Value::Null;
            return resp;
        };
        let driver = match recorded_driver(ctx, &prior) {
            Ok(d) => d,
            Err(d) => {
                resp.new_state = prior;
                resp.diagnostics.push(d);
                return resp;
            }
        };
        let limit = timeout(&prior, "delete", DEFAULT_DELETE_TIMEOUT);
        let result = drive(ctx, &driver, "delete", limit, |_| {
            let driver = driver.clone();
            let instance_id = instance_id.clone();
            async move { driver.delete(&instance_id).await }
        })
        .await;
        match result {
            Ok(()) => {
                release_edge(ctx, &prior, &mut resp.diagnostics);
                resp.new_state = Value::Null;
            }
            Err(err) => {
                resp.new_state = prior;
                resp.diagnostics.push(driver_error("delete", &err));
            }
        }
        resp
    }
}

/// The name of the driver of workloads on Kubernetes edge sites.
const KUBERNETES_DRIVER: &str = "kubernetes";

/// The edge node ids a planned placement books (every node of `edge_assignments`, or the one
/// node of an engine placement on edge/on-prem).
fn placement_nodes(planned: &Value, placement: &Value) -> Vec<String> {
    planned_bookings(planned, placement)
        .into_iter()
        .map(|(node, _)| node)
        .collect()
}

/// The driver that provisions a new placement: the Kubernetes driver for nodes of a
/// Kubernetes site, else by provider (see `ProviderContext::driver_for_placement`).
fn placement_driver(
    ctx: &ProviderContext,
    planned: &Value,
    placement: &Value,
) -> Result<Arc<dyn Driver>, Diagnostic> {
    let provider = attrs::string(placement, "provider").unwrap_or_default();
    ctx.driver_for_placement(&provider, &placement_nodes(planned, placement))
        .map_err(|why| {
            Diagnostic::attribute_error(
                AttributePath::root().attr("edge_cluster_ids"),
                "Cannot provision this edge placement",
                format!("{why}."),
            )
        })
}

/// The document stored with a workload's instance (see [`clouds::InstanceSpec::metadata`]):
/// `{"kubernetes": .., "schema_version": .., "state": ..}`, the Kubernetes section only when
/// given, the state as `write_state` writes it (one JSON value, as tfvalue's writers do).
/// Written as text, keys in sorted order: the same text serde_json printed when this was a tree,
/// so documents already stored read the same.
/// `None` when the state cannot be written (then only a Kubernetes section is kept, if any).
pub fn metadata_document(
    kube_section: Option<&serde_json::Value>,
    write_state: impl FnOnce(&mut String) -> Result<(), tfvalue::EncodeError>,
) -> Option<Metadata> {
    // A workload's state is 2 to 5 KB of JSON.
    let mut doc = String::with_capacity(4096);
    doc.push('{');
    if let Some(section) = kube_section {
        doc.push_str("\"kubernetes\":");
        doc.push_str(&section.to_string());
        doc.push(',');
    }
    let before_state = doc.len();
    doc.push_str("\"schema_version\":");
    doc.push_str(&SCHEMA_VERSION.to_string());
    doc.push_str(",\"state\":");
    match (write_state(&mut doc), kube_section) {
        (Ok(()), _) => {}
        // Only the section, without the comma after it.
        (Err(_), Some(_)) => doc.truncate(before_state - 1),
        (Err(_), None) => return None,
    }
    doc.push('}');
    // Trusted: serde_json printed the section, `write_state` (tfvalue's writer) the state.
    Some(Metadata::trusted(doc))
}

/// What the Kubernetes driver reads (`clouds::kubernetes::METADATA_SECTION` of the metadata):
/// replicas, per-replica cpu and memory, image, the Node names of the chosen edge nodes, and
/// the scaling policy.
fn kube_section(ctx: &ProviderContext, planned: &Value, placement: &Value) -> serde_json::Value {
    use serde_json::json;
    let nodes: Vec<String> = placement_nodes(planned, placement)
        .iter()
        .filter_map(|id| ctx.sim.edge_node(id).ok().flatten())
        .map(|n| n.name)
        .collect();
    let policy = attrs::get(planned, "edge").and_then(|e| attrs::get(e, "scaling_policy"));
    let scaling = policy.map(|p| {
        let mut out = serde_json::Map::new();
        if let Some(enabled) = attrs::boolean(p, "enabled") {
            out.insert("enabled".into(), json!(enabled));
        }
        for name in [
            "min_replicas",
            "max_replicas",
            "cpu_threshold",
            "memory_threshold",
            "scale_up_cooldown",
            "scale_down_cooldown",
        ] {
            if let Some(v) = attrs::number(p, name) {
                out.insert(name.into(), json!(v));
            }
        }
        serde_json::Value::Object(out)
    });
    json!({
        "replicas": attrs::number(planned, "replicas"),
        "cpu": attrs::number(planned, "cpu"),
        "memory_gb": attrs::number(planned, "memory_gb"),
        "image": attrs::string(planned, "image"),
        "nodes": nodes,
        "scaling_policy": scaling,
    })
}

/// A driver that reports what actually runs (`observed` in the instance's metadata: replicas,
/// cpu, memory_gb, image) makes changes made outside Terraform show in the plan: the observed
/// value replaces the state's, and the configuration's value is planned back.
fn observed_drift(state: &mut Value, inst: &Instance) {
    let Some(observed) = inst.metadata.as_ref().and_then(|m| m.section("observed")) else {
        return;
    };
    for name in ["replicas", "cpu", "memory_gb"] {
        let Some(actual) = observed.get(name).and_then(serde_json::Value::as_f64) else {
            continue;
        };
        let recorded = attrs::number(state, name);
        if recorded.is_some_and(|r| (r - actual).abs() > 1e-9) {
            tracing::info!(attribute = name, recorded, actual, "drift");
            attrs::set(state, name, attrs::num_value(Some(actual)));
        }
    }
    if let Some(actual) = observed.get("image").and_then(serde_json::Value::as_str) {
        let recorded = attrs::string(state, "image");
        // A workload without an image runs the driver's placeholder: not drift.
        if recorded.as_deref().is_some_and(|r| r != actual) {
            tracing::info!(attribute = "image", "drift");
            attrs::set(state, "image", Value::string(actual.to_string()));
        }
    }
}

/// A `hybrid_migration_plan` moved this workload when its instance is gone and a live one
/// carrying the migration tag has its workload id: read adopts that one (instance and
/// placement), so the next plan keeps the migrated place instead of re-creating the old one.
/// Any other missing instance is gone, as before.
async fn migrated_instance(
    ctx: &ProviderContext,
    state: &Value,
) -> Result<Option<Instance>, clouds::DriverError> {
    let Some(id) = attrs::string(state, "id") else {
        return Ok(None);
    };
    Ok(ctx.driver.find_by_workload(&id).await?.filter(|inst| {
        inst.tags
            .contains_key(super::migration_run::TAG_MIGRATION_ID)
    }))
}

/// The placement a migration recorded on the instance it created.
fn migrated_placement(inst: &Instance) -> Option<Value> {
    if !inst
        .tags
        .contains_key(super::migration_run::TAG_MIGRATION_ID)
    {
        return None;
    }
    let state = inst.metadata.as_ref()?.section("state")?;
    tfvalue::decode_json_value(state.get("placement")?, &placement_type()).ok()
}

/// Edge nodes as placement candidates, with the capacity the ledger says is free. What this
/// workload itself holds counts as free for it, so a re-plan sees its own node as it was.
fn edge_candidates(
    ctx: &ProviderContext,
    holder: Option<&str>,
    clusters: &[String],
) -> Result<Vec<placement::EdgeCandidate>, Diagnostic> {
    let registered = workload_edge::registered_nodes(ctx, holder, clusters)?;
    let mut out = Vec::with_capacity(registered.len());
    for workload_edge::RegisteredNode {
        node,
        cluster,
        free,
    } in registered
    {
        let mut candidate = placement::EdgeCandidate::new(
            &node.id,
            cluster
                .as_ref()
                .map(|c| c.geographic_region.as_str())
                .unwrap_or(node.cluster_id.as_str()),
            "",
            node.lat,
            node.lng,
            free.cpu_millis as f64 / 1000.0,
            free.memory_mb as f64 / 1024.0,
        );
        candidate.cluster = cluster.map(|c| c.name).unwrap_or(node.cluster_id.clone());
        candidate.name = node.name.clone();
        candidate.free_storage_gb = free.storage_gb as f64;
        candidate.free_gpu = free.gpu;
        candidate.gpu_model = node.gpu_model.clone();
        candidate.hourly_cost = node.hourly_cost;
        out.push(candidate);
    }
    Ok(out)
}

/// One line per edge candidate saying what is free and who holds the rest, so a refusal names
/// the workloads (possibly in other workspaces) that took the capacity.
fn edge_holders(ctx: &ProviderContext, edge: &[placement::EdgeCandidate]) -> Vec<String> {
    edge.iter()
        .filter_map(|c| {
            let id = ledger::NodeId::new(c.id.clone()).ok()?;
            let usage = ctx.ledger.usage(&id).ok()?;
            let holders: Vec<String> = usage
                .holders
                .iter()
                .map(|h| {
                    format!(
                        "{} ({} cpu, {} GB)",
                        h.holder.as_str(),
                        h.amounts.cpu_millis as f64 / 1000.0,
                        h.amounts.memory_mb as f64 / 1024.0
                    )
                })
                .collect();
            Some(format!(
                "edge node {} ({}): {} cpu and {} GB free; held by {}",
                c.name,
                c.region,
                c.free_cpu,
                attrs::round(c.free_memory_gb, 2),
                if holders.is_empty() {
                    "nobody".to_string()
                } else {
                    holders.join(", ")
                }
            ))
        })
        .collect()
}

/// What the workload books on its node: every replica's request, rounded up.
fn edge_amounts(planned: &Value) -> ledger::Resources {
    let replicas = attrs::number(planned, "replicas").unwrap_or(1.0).max(1.0);
    let per = |name: &str, unit: f64| workload_edge::scaled(planned, name, unit, replicas);
    ledger::Resources {
        cpu_millis: per("cpu", 1000.0),
        memory_mb: per("memory_gb", 1024.0),
        storage_gb: per("storage_gb", 1.0),
        gpu: per("gpu_count", 1.0) as u32,
        network_mbps: 0,
    }
}

fn edge_node_of(placement: &Value) -> Option<String> {
    let provider = attrs::string(placement, "provider")?;
    matches!(provider.as_str(), "edge" | "onprem")
        .then(|| attrs::string(placement, "node"))
        .flatten()
}

/// The edge capacity a planned workload books: every node of `edge_assignments`, or the one
/// node of an engine placement on edge/on-prem; empty for a cloud placement.
fn planned_bookings(planned: &Value, placement: &Value) -> Vec<(String, ledger::Resources)> {
    let mut wanted = workload_edge::bookings(planned);
    if wanted.is_empty() {
        if let Some(node) = edge_node_of(placement) {
            wanted.push((node, edge_amounts(planned)));
        }
    }
    wanted
}

/// Whether the workload names edge clusters none of which has a node yet: a site being built in
/// the same run (its nodes are created before the workload, which depends on them), as after an
/// apply that stopped between creating the cluster and its nodes.
fn clusters_still_empty(ctx: &ProviderContext, planned: &Value) -> bool {
    let clusters = attrs::strings(planned, "edge_cluster_ids");
    if clusters.is_empty() {
        return false;
    }
    match ctx.sim.edge_nodes() {
        Ok(nodes) => nodes.iter().all(|n| !clusters.contains(&n.cluster_id)),
        Err(_) => false,
    }
}

/// Leaves the placement to the apply-time plan (as when a named cluster's id is not known yet),
/// saying so in a warning the reviewer sees.
fn defer_to_apply(planned: &mut Value, diags: &mut Diagnostics) {
    for name in NOTED {
        attrs::set(planned, name, Value::Unknown);
    }
    diags.push(Diagnostic::warning(
        "Placement decided at apply",
        "The edge clusters this workload names have no nodes yet. When their nodes are created in this run (the workload should depend on them), the placement is decided once they exist, at apply; if none exists then, apply fails with the reason.",
    ));
}

/// How long a plan's edge decision is remembered for the apply-time plan of the same run (or a
/// saved plan applied later).
const PLAN_NOTE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What Terraform compares to decide a replacement: when one of these differs between prior and
/// planned, it replaces.
fn replace_paths() -> Vec<AttributePath> {
    let mut paths = Vec::with_capacity(WHERE_FIELDS.len() + 2);
    paths.push(AttributePath::root().attr("name"));
    for field in WHERE_FIELDS {
        paths.push(AttributePath::root().attr("placement").attr(*field));
    }
    paths.push(AttributePath::root().attr("edge_assignments"));
    paths
}

/// The planned attributes a plan note carries.
const NOTED: [&str; 3] = ["placement", "alternatives", "edge_assignments"];

fn plan_note_key(workload_id: &str) -> String {
    format!("{TYPE_NAME}/{workload_id}")
}

/// Why `amounts` no longer fit on `node` for `holder` (its own holdings count as free), or
/// `None` when they do.
fn shortfall(
    ctx: &ProviderContext,
    node: &str,
    amounts: &ledger::Resources,
    holder: &str,
) -> Option<String> {
    let Ok(id) = ledger::NodeId::new(node.to_string()) else {
        return Some(format!("{node:?} is not a valid node id"));
    };
    let usage = match ctx.ledger.usage(&id) {
        Ok(u) => u,
        Err(e) => return Some(e.to_string()),
    };
    let free = workload_edge::free_for(&usage, Some(holder));
    if amounts.fits_within(&free) {
        return None;
    }
    let others: Vec<String> = usage
        .holders
        .iter()
        .filter(|h| h.holder.as_str() != holder)
        .map(|h| format!("{} ({})", h.holder, h.amounts))
        .collect();
    Some(format!(
        "{amounts} needed, {free} free; held by {}",
        if others.is_empty() {
            "nobody else".to_string()
        } else {
            others.join(", ")
        }
    ))
}

/// Reserves the planned edge capacity (pending until the instance runs): the one node of an
/// engine placement, or every node of `edge_assignments`. All or nothing: when any node's
/// capacity was taken after this plan, what was reserved is released and the error names the
/// holders.
fn reserve_edge(
    ctx: &ProviderContext,
    planned: &Value,
    placement: &Value,
    workload_id: &str,
) -> Result<Vec<ledger::Reservation>, Diagnostic> {
    let wanted = planned_bookings(planned, placement);
    let bad_id =
        |e: ledger::LedgerError| Diagnostic::error("Invalid edge reservation", e.to_string());
    let holder = ledger::HolderId::new(workload_id.to_string()).map_err(bad_id)?;
    let mut taken = Vec::with_capacity(wanted.len());
    for (node, amounts) in wanted {
        let node_id = ledger::NodeId::new(node.clone()).map_err(bad_id)?;
        match ctx.ledger.reserve(&node_id, &amounts, &holder, None) {
            Ok(r) => taken.push(r),
            Err(e) => {
                for r in &taken {
                    let _ = ctx.ledger.release(&r.id);
                }
                return Err(Diagnostic::error(
                    "Edge capacity no longer available",
                    format!("The plan placed this workload on edge node {node}, but the capacity is not free any more: {e}. Nothing was created; run terraform plan again to choose another placement."),
                ));
            }
        }
    }
    Ok(taken)
}

/// Releases this workload's reservations on the node its placement names (only there, so a
/// create-before-destroy replacement keeps the new node's booking).
fn release_edge(ctx: &ProviderContext, prior: &Value, diags: &mut Diagnostics) {
    let Some(holder) = attrs::string(prior, "id") else {
        return;
    };
    let mut nodes: Vec<String> = workload_edge::bookings(prior)
        .into_iter()
        .map(|(node, _)| node)
        .collect();
    if let Some(node) = attrs::get(prior, "placement").and_then(edge_node_of) {
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    for node in nodes {
        let Ok(node_id) = ledger::NodeId::new(node) else {
            continue;
        };
        match ctx.ledger.list(Some(&node_id)) {
            Ok(reservations) => {
                for r in reservations.iter().filter(|r| r.holder.as_str() == holder) {
                    if let Err(e) = ctx.ledger.release(&r.id) {
                        diags.push(Diagnostic::warning(
                            "Edge reservation not released",
                            e.to_string(),
                        ));
                    }
                }
            }
            Err(e) => diags.push(Diagnostic::warning(
                "Edge reservation not released",
                e.to_string(),
            )),
        }
    }
}

#[async_trait]
impl Resource for Workload {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let mut diags = Diagnostics::new();
        let root = AttributePath::root;
        crate::checks::name(config, root().attr("name"), "name", &mut diags);
        crate::checks::non_empty(config, root().attr("image"), "image", &mut diags);
        crate::checks::map_keys(
            config,
            root().attr("tags"),
            "tags",
            Some(crate::checks::RESERVED_TAG_PREFIX),
            &mut diags,
        );
        if let Some(edge) = attrs::get(config, "edge") {
            for labels in [
                "affinity_labels",
                "anti_affinity_labels",
                "preferred_labels",
            ] {
                crate::checks::map_keys(
                    edge,
                    root().attr("edge").attr(labels),
                    labels,
                    None,
                    &mut diags,
                );
            }
        }
        if let Some(p) = attrs::number(config, "replace_threshold_percent") {
            if !(p.is_finite() && p >= 0.0) {
                diags.push(Diagnostic::attribute_error(
                    root().attr("replace_threshold_percent"),
                    "Invalid replace_threshold_percent",
                    format!("replace_threshold_percent must be 0 or more (a large value keeps the workload where it runs while that stays feasible), got {p}."),
                ));
            }
        }
        if !attrs::is_unknown(config, "edge_cluster_ids") {
            for id in attrs::strings(config, "edge_cluster_ids") {
                super::edge_cluster::check_cluster_id(
                    &id,
                    root().attr("edge_cluster_ids"),
                    "edge_cluster_ids",
                    &mut diags,
                );
            }
        }
        if let Some(timeouts) = attrs::get(config, "timeouts") {
            for op in ["create", "update", "delete"] {
                if let Some(text) = attrs::string(timeouts, op) {
                    if let Err(why) = parse_duration(&text) {
                        diags.push(Diagnostic::attribute_error(
                            AttributePath::root().attr("timeouts").attr(op),
                            "Invalid timeout",
                            format!("timeouts.{op} = {text:?}: {why}."),
                        ));
                    }
                }
            }
        }
        // The edge block needs only its own inputs (a cluster id may still be unknown).
        if [
            "edge",
            "cpu",
            "memory_gb",
            "storage_gb",
            "replicas",
            "max_latency_ms",
            "user_locations",
        ]
        .iter()
        .all(|n| !attrs::is_unknown(config, n))
        {
            if let Err(errors) = workload_edge::request(config) {
                diags.extend(errors);
            }
        }
        // Requirements can be checked only when every input is known.
        if PLACEMENT_INPUTS
            .iter()
            .any(|n| attrs::is_unknown(config, n))
        {
            return diags;
        }
        diags.extend(crate::engine_values::check_with_catalog(|catalog| {
            validated(config, catalog)
        }));
        diags
    }

    async fn plan(&self, ctx: &ProviderContext, req: PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        if req.proposed_new_state.is_null() {
            resp.planned_state = Value::Null;
            return resp;
        }
        // The apply-time repeat of a plan recorded for this very request: its answer as sent
        // (usually found before the request was decoded, by `replayed_plan`). Otherwise the
        // note read for it (and parsed) serves the recall below.
        let prefetched_body;
        let mut prefetched_note = None;
        if let (Some(digest), Some(name)) = (&req.request_digest, attrs::str(&req.config, "name")) {
            prefetched_body = match req.looked_up {
                Some(read) => read,
                None => match self.recorded_plan(ctx, name, digest) {
                    Ok(mut replayed) => {
                        replayed.planned_private = req.prior_private;
                        return replayed;
                    }
                    Err(read) => read,
                },
            };
            prefetched_note = Some(prefetched_body.as_deref().and_then(PlanNote::parse));
        }
        let prior = req.prior_state;
        let config = req.config;
        let mut planned = req.proposed_new_state;
        let has_prior = !prior.is_null();
        // A decision to remember for the apply-time plan (see `write_plan_note`), written once
        // the planned state is complete: `Some(edge_considered)`.
        let mut note = None;

        // Defaults for optional attributes the user left out.
        for (name, default) in [
            ("strategy", Value::string("hybrid")),
            ("replicas", Value::number(1i64)),
            ("storage_gb", Value::number(0i64)),
            ("gpu_count", Value::number(0i64)),
            ("replace_threshold_percent", Value::number(10i64)),
            (
                "alternatives_count",
                Value::number(DEFAULT_ALTERNATIVES as i64),
            ),
        ] {
            if config.get(name).is_none_or(Value::is_null) {
                attrs::set(&mut planned, name, default);
            }
        }
        let tags_all = if attrs::is_unknown(&config, "tags") {
            Value::Unknown
        } else {
            attrs::string_map_value(&Self::merged_tags(ctx, &planned))
        };
        attrs::set(&mut planned, "tags_all", tags_all);

        let name = attrs::string(&planned, "name");
        let name_changed = has_prior && attrs::string(&prior, "name") != name;
        attrs::set(
            &mut planned,
            "id",
            match &name {
                Some(n) => Value::string(workload_id(n)),
                None => Value::Unknown,
            },
        );

        // Every placement input is final from here on (defaults are in).
        let same_inputs = has_prior && inputs_equal(&prior, &planned);

        // Placement, at plan time, whenever the inputs are known.
        if PLACEMENT_INPUTS
            .iter()
            .any(|n| attrs::is_unknown(&planned, n))
        {
            attrs::set(&mut planned, "placement", Value::Unknown);
            attrs::set(&mut planned, "alternatives", Value::Unknown);
            attrs::set(&mut planned, "edge_assignments", Value::Unknown);
        } else if let Some(request) = match workload_edge::request(&planned) {
            Ok(r) => r,
            Err(diags) => {
                resp.diagnostics = diags;
                return resp;
            }
        } {
            // An edge workload: replicas distributed over edge nodes.
            let prior_assignments = prior
                .get("edge_assignments")
                .cloned()
                .unwrap_or(Value::Null);
            if same_inputs && prior_assignments.is_known() && !prior_assignments.is_null() {
                // Same inputs: keep the booked distribution (our own holdings keep it feasible).
                attrs::set(
                    &mut planned,
                    "placement",
                    prior.get("placement").cloned().unwrap_or(Value::Null),
                );
                attrs::set(&mut planned, "edge_assignments", prior_assignments);
            } else {
                attrs::set(&mut planned, "alternatives", Value::list([]));
                match self.recall_plan_note(ctx, same_inputs, &mut planned, prefetched_note.take())
                {
                    Ok(true) => {}
                    Ok(false) => match workload_edge::plan(
                        ctx,
                        &planned,
                        &request,
                        attrs::string(&planned, "id").as_deref(),
                    ) {
                        Ok((placement, assignments)) => {
                            attrs::set(&mut planned, "placement", placement);
                            attrs::set(&mut planned, "edge_assignments", assignments);
                            note = Some(true);
                        }
                        Err(_) if !has_prior && clusters_still_empty(ctx, &planned) => {
                            defer_to_apply(&mut planned, &mut resp.diagnostics);
                        }
                        Err(d) => {
                            resp.diagnostics.push(d);
                            return resp;
                        }
                    },
                    Err(d) => {
                        resp.diagnostics.push(d);
                        return resp;
                    }
                }
            }
            attrs::set(&mut planned, "alternatives", Value::list([]));
        } else {
            attrs::set(&mut planned, "edge_assignments", Value::list([]));
            let Validated {
                requirements,
                strategy,
                replace_threshold_percent: threshold,
                alternatives_count,
            } = match validated(&planned, ctx.catalog) {
                Ok(v) => v,
                Err(diags) => {
                    resp.diagnostics = diags;
                    return resp;
                }
            };
            let prior_placement = prior.get("placement").unwrap_or(&Value::Null);
            let options = PlaceOptions {
                top_k: alternatives_count,
                current: if has_prior {
                    placement_key(prior_placement)
                } else {
                    None
                },
                replace_threshold_percent: threshold,
                ..PlaceOptions::default()
            };
            let wants_edge = requirements.preferred_providers.is_empty()
                || requirements
                    .preferred_providers
                    .iter()
                    .any(|p| matches!(p, PlacementProvider::Edge | PlacementProvider::Onprem));
            let holder = attrs::string(&planned, "id");
            let edge = if wants_edge {
                let clusters = attrs::strings(&planned, "edge_cluster_ids");
                match edge_candidates(ctx, holder.as_deref(), &clusters) {
                    Ok(e) => e,
                    Err(d) => {
                        resp.diagnostics.push(d);
                        return resp;
                    }
                }
            } else {
                Vec::new()
            };
            // Any decision that could have gone to an edge node is noted and repeated: edge
            // nodes registered between plan and apply (in this run or by another workspace)
            // must not change what the reviewer saw, even when the plan chose a cloud.
            let recalled = if wants_edge {
                self.recall_plan_note(ctx, same_inputs, &mut planned, prefetched_note.take())
            } else {
                Ok(false)
            };
            let decided = match recalled {
                Err(d) => {
                    resp.diagnostics.push(d);
                    return resp;
                }
                // The apply-time plan of a decision already shown: repeat it exactly.
                Ok(true) => None,
                Ok(false) if edge.is_empty() => {
                    Some(
                        ctx.placements
                            .place(ctx.catalog, &requirements, &strategy, &options),
                    )
                }
                Ok(false) => Some(placement::place(
                    ctx.catalog,
                    &edge,
                    &requirements,
                    &strategy,
                    &options,
                )),
            };
            match decided {
                None => {}
                Some(Ok(decision)) => {
                    let chosen = placement_value(&decision.placement);
                    tracing::debug!(
                        provider = %decision.placement.provider,
                        region = %decision.placement.region,
                        considered = decision.considered,
                        feasible = decision.feasible,
                        "placement decided"
                    );
                    for warning in &decision.warnings {
                        resp.diagnostics
                            .push(Diagnostic::warning("Placement warning", warning.clone()));
                    }
                    // No churn: same inputs and same place keep the recorded decision verbatim.
                    if same_inputs && same_where(prior_placement, &chosen) {
                        attrs::set(&mut planned, "placement", prior_placement.clone());
                        attrs::set(
                            &mut planned,
                            "alternatives",
                            prior.get("alternatives").cloned().unwrap_or(Value::Null),
                        );
                    } else {
                        let alternatives =
                            Value::list(decision.alternatives.iter().map(placement_value));
                        attrs::set(&mut planned, "placement", chosen);
                        attrs::set(&mut planned, "alternatives", alternatives);
                        note = Some(wants_edge);
                    }
                }
                Some(Err(_)) if !has_prior && clusters_still_empty(ctx, &planned) => {
                    defer_to_apply(&mut planned, &mut resp.diagnostics);
                }
                Some(Err(no_fit)) => {
                    let mut detail = no_fit.to_string();
                    for line in edge_holders(ctx, &edge) {
                        detail.push('\n');
                        detail.push_str(&line);
                    }
                    resp.diagnostics.push(Diagnostic::error(
                        "No placement satisfies the requirements",
                        detail,
                    ));
                    return resp;
                }
            }
        }

        let new_placement = planned.get("placement").unwrap_or(&Value::Null);
        let replacing = has_prior
            && (name_changed
                || !same_where(
                    prior.get("placement").unwrap_or(&Value::Null),
                    new_placement,
                )
                || prior.get("edge_assignments") != planned.get("edge_assignments"));
        // An existing instance stays with the driver that made it; a new one goes to the
        // driver for its placement's provider.
        let driver = if has_prior && !replacing {
            prior
                .get("driver")
                .filter(|v| v.is_known() && !v.is_null())
                .cloned()
                .unwrap_or_else(|| Value::string(ctx.driver.name()))
        } else if !new_placement.is_known() {
            Value::Unknown
        } else {
            match placement_driver(ctx, &planned, new_placement) {
                Ok(d) => Value::string(d.name()),
                Err(d) => {
                    resp.diagnostics.push(d);
                    return resp;
                }
            }
        };
        attrs::set(&mut planned, "driver", driver);
        for computed in ["instance_id", "private_ip", "status"] {
            let value = if !has_prior || replacing {
                Value::Unknown
            } else {
                prior.get(computed).cloned().unwrap_or(Value::Null)
            };
            attrs::set(&mut planned, computed, value);
        }
        // Terraform replaces when one of these paths differs between prior and planned; when
        // none does (`replacing` is false), listing them would change nothing.
        if replacing {
            resp.requires_replace = replace_paths();
        }
        if let Some(edge_considered) = note {
            // Recorded for the repeat, these bytes are also the response: encoded once.
            let encoded = req.request_digest.as_ref().and_then(|_| {
                let mut bytes = Vec::with_capacity(4096);
                tfvalue::encode_msgpack_into(&planned, &self.ty, &mut bytes)
                    .ok()
                    .map(|()| bytes)
            });
            let replay =
                req.request_digest
                    .as_deref()
                    .zip(encoded.as_deref())
                    .map(|(digest, bytes)| RecordedPlan {
                        request: digest,
                        planned: bytes,
                        replaces: !resp.requires_replace.is_empty(),
                    });
            self.write_plan_note(
                ctx,
                &planned,
                edge_considered,
                replay,
                &mut resp.diagnostics,
            );
            resp.planned_msgpack = encoded;
        }
        resp.planned_private = req.prior_private;
        resp.planned_state = planned;
        resp
    }

    fn replays_plans(&self) -> bool {
        true
    }

    fn replayed_plan(
        &self,
        ctx: &ProviderContext,
        config_msgpack: &[u8],
        request_digest: &str,
    ) -> ReplayLookup {
        let Some(name) = tfvalue::msgpack_object_str(config_msgpack, "name") else {
            return ReplayLookup::NotLooked;
        };
        match self.recorded_plan(ctx, name, request_digest) {
            Ok(out) => ReplayLookup::Replayed(out),
            Err(read) => ReplayLookup::Missed(read),
        }
    }

    /// A destroy plans null without looking at the prior state (see `plan`).
    fn destroy_plan_reads_prior(&self) -> bool {
        false
    }

    /// Apply works from the planned state alone (which carries the configuration's values).
    fn apply_reads_config(&self) -> bool {
        false
    }

    async fn apply(&self, ctx: &ProviderContext, req: ApplyRequest) -> ApplyResponse {
        let mut resp = match (req.prior_state.is_null(), req.planned_state.is_null()) {
            (_, true) => self.delete(ctx, req.prior_state).await,
            (true, false) => self.create(ctx, req.planned_state).await,
            (false, false) => self.update(ctx, req.prior_state, req.planned_state).await,
        };
        resp.private = req.planned_private;
        resp
    }

    async fn read(&self, ctx: &ProviderContext, state: Value, private: Vec<u8>) -> ReadResponse {
        let mut resp = ReadResponse {
            private,
            ..ReadResponse::default()
        };
        if state.is_null() {
            return resp;
        }
        let driver = match recorded_driver(ctx, &state) {
            Ok(d) => d,
            Err(d) => {
                resp.new_state = state;
                resp.diagnostics.push(d);
                return resp;
            }
        };
        let instance_id = attrs::string(&state, "instance_id");
        let workload_id = attrs::string(&state, "id");
        let mut found = drive(ctx, &driver, "read", READ_TIMEOUT, |_| {
            let driver = driver.clone();
            let instance_id = instance_id.clone();
            let workload_id = workload_id.clone();
            async move {
                match (instance_id, workload_id) {
                    (Some(instance_id), _) => driver.read_for_refresh(&instance_id).await,
                    (None, Some(id)) => driver.find_by_workload(&id).await,
                    (None, None) => Ok(None),
                }
            }
        })
        .await;
        // Migrations run on the sim cloud only: a workload whose instance a migration replaced
        // follows it there.
        if matches!(found, Ok(None)) {
            found = migrated_instance(ctx, &state).await;
        }
        if let Some(id) = attrs::string(&state, "id") {
            resp.diagnostics
                .extend(super::migration_run::unfinished_warnings(ctx, &id));
        }
        match found {
            Ok(None) => {
                tracing::info!("instance no longer exists; removing the workload from state");
                resp.new_state = Value::Null;
            }
            Ok(Some(inst)) => {
                let mut new_state = with_instance(state, &inst);
                observed_drift(&mut new_state, &inst);
                if let Some(moved) = migrated_placement(&inst) {
                    attrs::set(&mut new_state, "placement", moved);
                }
                // Drift: the cloud's view of type and tags wins in state, so plan shows it.
                if let Some(mut placement) = attrs::get(&new_state, "placement").cloned() {
                    if let Some(actual) = &inst.instance_type {
                        if attrs::string(&placement, "instance_type").as_deref() != Some(actual) {
                            attrs::set(
                                &mut placement,
                                "instance_type",
                                Value::string(actual.clone()),
                            );
                            attrs::set(&mut new_state, "placement", placement);
                        }
                    }
                }
                let user_tags = clouds::user_tags(&inst.tags);
                attrs::set(
                    &mut new_state,
                    "tags_all",
                    attrs::string_map_value(&user_tags),
                );
                resp.new_state = new_state;
            }
            Err(err) => {
                resp.new_state = state;
                resp.diagnostics.push(driver_error("read", &err));
            }
        }
        resp
    }

    async fn import(&self, ctx: &ProviderContext, id: &str) -> ImportResponse {
        let mut resp = ImportResponse::default();
        // Sim ids start with sim-; anything else is a cloud id when a cloud driver is
        // configured. A workload id is looked up in every configured driver, cloud first.
        // Kubernetes instance ids name their edge cluster (`ec-...:<namespace>/<name>`).
        let mut drivers: Vec<Arc<dyn Driver>> = Vec::new();
        let kube_id = id.starts_with("ec-") && id.contains(':');
        if kube_id {
            drivers.extend(ctx.kubernetes.iter().cloned());
        } else if id.starts_with("wl-") || !id.starts_with("sim-") {
            // An ARM resource id can only be Azure's (other drivers would misread its slashes).
            let arm_id = id.starts_with("/subscriptions/");
            drivers.extend(
                ctx.clouds
                    .values()
                    .filter(|d| !arm_id || d.name() == "azure")
                    .cloned(),
            );
        }
        if id.starts_with("wl-") || drivers.is_empty() {
            drivers.push(ctx.driver.clone());
        }
        if id.starts_with("wl-") {
            drivers.extend(ctx.kubernetes.iter().cloned());
        }
        let mut found = Ok(None);
        let mut used = ctx.driver.clone();
        for driver in drivers {
            let id = id.to_string();
            found = drive(ctx, &driver, "read", READ_TIMEOUT, |_| {
                let driver = driver.clone();
                let id = id.clone();
                async move {
                    if id.starts_with("wl-") {
                        driver.find_by_workload(&id).await
                    } else {
                        driver.read(&id).await
                    }
                }
            })
            .await;
            used = driver;
            if !matches!(found, Ok(None)) {
                break;
            }
        }
        let inst = match found {
            Ok(Some(inst)) => inst,
            Ok(None) => {
                resp.diagnostics.push(Diagnostic::error(
                    "Cannot import non-existent workload",
                    format!("No live workload with id {id:?} exists in the {} cloud. Import takes the workload id (wl-...) or the instance id (for aws: i-... in $AWS_REGION, or region/i-...; for gcp: project/zone/name; for azure: the VM's ARM resource id; for kubernetes: <cluster_id>:<namespace>/<name>).", used.name()),
                ));
                return resp;
            }
            Err(err) => {
                resp.diagnostics.push(driver_error("import", &err));
                return resp;
            }
        };
        let stored = inst
            .metadata
            .as_ref()
            .and_then(|m| m.section("state"))
            .map(|s| s.to_string());
        let Some(stored) = stored else {
            resp.diagnostics.push(Diagnostic::error(
                "Workload cannot be imported",
                format!("Instance {} carries no workload description, so its requirements cannot be recovered.", inst.instance_id),
            ));
            return resp;
        };
        match tfvalue::decode_json(stored.as_bytes(), &self.ty) {
            Ok(state) => {
                let mut state = with_instance(state, &inst);
                attrs::set(&mut state, "timeouts", Value::Null);
                attrs::set(&mut state, "driver", Value::string(used.name()));
                resp.states.push(state);
            }
            Err(err) => resp
                .diagnostics
                .push(Diagnostic::decode("stored workload", &err)),
        }
        resp
    }

    fn upgrade(&self, version: i64, state_json: &[u8]) -> Result<Value, Diagnostics> {
        match version {
            0 => decode_stored_state_as(
                TYPE_NAME,
                &self.schema,
                &self.ty,
                SCHEMA_VERSION,
                &upgrade_v0(state_json)?,
            ),
            _ => decode_stored_state_as(TYPE_NAME, &self.schema, &self.ty, version, state_json),
        }
    }
}

/// Schema version 0 (the prototype) kept the placement as flat top-level attributes
/// (`placement_provider`, `placement_region`, `instance_type`, `estimated_cost_hourly`,
/// `placement_reason`) and had no `driver` or `tags_all`. Version 1 nests them in `placement`.
fn upgrade_v0(state_json: &[u8]) -> Result<Vec<u8>, Diagnostics> {
    let mut state: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(state_json)
        .map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Unreadable state",
                format!("hybrid_workload state version 0 is not a JSON object: {e}"),
            ))
        })?;
    let mut take = |k: &str| state.remove(k).unwrap_or(serde_json::Value::Null);
    let placement = serde_json::json!({
        "provider": take("placement_provider"),
        "region": take("placement_region"),
        "zone": null,
        "node": null,
        "instance_type": take("instance_type"),
        "estimated_cost_hourly": take("estimated_cost_hourly"),
        "estimated_latency_ms": null,
        "score": null,
        "scores": null,
        "reason": take("placement_reason"),
    });
    state.insert("placement".into(), placement);
    // Version 0 provisioned on the sim cloud only and had no default_tags.
    state
        .entry("driver")
        .or_insert_with(|| serde_json::Value::String("sim".into()));
    if state.get("tags_all").is_none_or(serde_json::Value::is_null) {
        let tags = state
            .get("tags")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        state.insert("tags_all".into(), tags);
    }
    serde_json::to_vec(&state)
        .map_err(|e| Diagnostics::from(Diagnostic::error("Unwritable state", e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A planned state with what the document must carry alike: unknowns, nulls, fractions,
    /// negative and big numbers, escapes, unicode, maps, sets, lists and nested objects.
    fn planned_state(wl: &Workload) -> Value {
        let mut state = Value::null_of(&wl.object);
        let num = |s: &str| Value::Number(tfvalue::Number::parse(s).expect("number"));
        attrs::set(&mut state, "id", Value::string("wl-0123456789abcdef"));
        attrs::set(
            &mut state,
            "name",
            Value::string("api \"blue\"\n\tç😀\u{1}"),
        );
        attrs::set(&mut state, "cpu", num("0.5"));
        attrs::set(&mut state, "memory_gb", num("2"));
        attrs::set(
            &mut state,
            "cost_budget_hourly",
            num("123456789012345678901234567890.25"),
        );
        attrs::set(&mut state, "instance_id", Value::Unknown);
        attrs::set(
            &mut state,
            "compliance",
            Value::set([Value::string("gdpr")]),
        );
        attrs::set(
            &mut state,
            "tags",
            Value::map([("b", Value::string("2")), ("a\\", Value::string("1"))]),
        );
        attrs::set(
            &mut state,
            "placement",
            Value::object([
                ("provider", Value::string("aws")),
                ("score", num("-0.125")),
                ("scores", Value::map([("cost", num("1e-3"))])),
                ("estimated_latency_ms", Value::Unknown),
            ]),
        );
        state
    }

    /// A JSON tree without its null object members (the state's maps here hold no nulls).
    fn without_nulls(j: serde_json::Value) -> serde_json::Value {
        match j {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, without_nulls(v)))
                    .collect(),
            ),
            serde_json::Value::Array(xs) => {
                serde_json::Value::Array(xs.into_iter().map(without_nulls).collect())
            }
            other => other,
        }
    }

    /// What the document was when it was built as a serde_json tree, without the state's nulls.
    fn tree_document(wl: &Workload, state: &Value, kube: Option<&serde_json::Value>) -> String {
        let mut doc = serde_json::Map::new();
        if let Some(section) = kube {
            doc.insert("kubernetes".into(), section.clone());
        }
        doc.insert("schema_version".into(), SCHEMA_VERSION.into());
        doc.insert(
            "state".into(),
            without_nulls(
                tfvalue::encode_json_value_unknown_as_null(state, &wl.ty).expect("encode"),
            ),
        );
        serde_json::Value::Object(doc).to_string()
    }

    #[test]
    fn the_metadata_document_is_the_text_the_tree_was() {
        let wl = Workload::new();
        let state = planned_state(&wl);
        let kube = serde_json::json!({"replicas": 2, "nodes": ["n1"], "scaling_policy": null});
        for section in [None, Some(&kube)] {
            let doc = wl.metadata(&state, section).expect("document");
            assert_eq!(doc.as_str(), tree_document(&wl, &state, section));
            let parsed = doc.parse().expect("valid JSON");
            assert_eq!(
                parsed["state"].get("instance_id"),
                None,
                "unknown: left out"
            );
            assert_eq!(doc.section("kubernetes").as_ref(), section);
            // Read back, the state is what the text with its nulls reads as.
            let stored = doc.section("state").expect("state").to_string();
            let back = tfvalue::decode_json(stored.as_bytes(), &wl.ty).expect("decodes");
            let mut full = String::new();
            tfvalue::write_json_unknown_as_null(&state, &wl.ty, &mut full).expect("writes");
            let expected = tfvalue::decode_json(full.as_bytes(), &wl.ty).expect("decodes");
            assert_eq!(back, expected);
            assert!(stored.len() < full.len());
        }
        // A state that is not the schema's: no document, or only the Kubernetes section.
        let wrong = Value::string("not an object");
        assert_eq!(wl.metadata(&wrong, None), None);
        let only_kube = wl.metadata(&wrong, Some(&kube)).expect("section");
        assert_eq!(
            only_kube.parse(),
            Some(serde_json::json!({ "kubernetes": kube }))
        );
    }

    #[test]
    fn import_reads_the_state_back_from_the_document() {
        let wl = Workload::new();
        let mut state = planned_state(&wl);
        attrs::set(&mut state, "instance_id", Value::string("sim-1"));
        // Known and whole, as applied states are.
        let placement = serde_json::json!({"provider": "aws", "score": -0.125, "scores": {}});
        attrs::set(
            &mut state,
            "placement",
            tfvalue::decode_json_value(&placement, &placement_type()).expect("placement"),
        );
        let doc = wl.metadata(&state, None).expect("document");
        let stored = doc.section("state").expect("state").to_string();
        let back = tfvalue::decode_json(stored.as_bytes(), &wl.ty).expect("decode");
        assert_eq!(back, state);
    }

    #[test]
    fn inputs_digest_is_the_one_notes_were_written_with() {
        // The digest as earlier versions computed it (one buffer per value): notes written by
        // them must still match.
        fn reference(wl: &Workload, planned: &Value) -> String {
            let mut bytes = Vec::new();
            for name in PLACEMENT_INPUTS {
                bytes.extend_from_slice(name.as_bytes());
                bytes.push(0);
                let encoded = match (wl.object.attrs.get(*name), planned.get(name)) {
                    (Some(ty), Some(v)) => tfvalue::encode_msgpack(v, ty).ok(),
                    _ => None,
                };
                match encoded {
                    Some(e) => {
                        bytes.extend_from_slice(&(e.len() as u64).to_le_bytes());
                        bytes.extend_from_slice(&e);
                    }
                    None => bytes.extend_from_slice(&u64::MAX.to_le_bytes()),
                }
            }
            sha256_hex(bytes, 16)
        }
        let wl = Workload::new();
        let mut planned = planned_state(&wl);
        assert_eq!(wl.inputs_digest(&planned), reference(&wl, &planned));
        attrs::set(
            &mut planned,
            "compliance",
            Value::list([Value::string("gdpr")]),
        );
        attrs::set(&mut planned, "cpu", Value::from(3i64));
        let digest = wl.inputs_digest(&planned);
        assert_eq!(digest, reference(&wl, &planned));
        // A value that cannot be encoded is marked, not skipped.
        attrs::set(&mut planned, "cpu", Value::string("not a number"));
        assert_eq!(wl.inputs_digest(&planned), reference(&wl, &planned));
        assert_ne!(wl.inputs_digest(&planned), digest);
    }

    #[test]
    fn a_plan_note_gives_back_the_noted_attributes_with_or_without_the_plan() {
        let wl = Workload::new();
        let mut planned = planned_state(&wl);
        let placement =
            serde_json::json!({"provider": "aws", "score": 0.1, "scores": {"cost": 1.5}});
        attrs::set(
            &mut planned,
            "placement",
            tfvalue::decode_json_value(&placement, &placement_type()).expect("placement"),
        );
        attrs::set(&mut planned, "alternatives", Value::list([]));
        attrs::set(&mut planned, "edge_assignments", Value::list([]));
        let planned_msgpack = tfvalue::encode_msgpack(&planned, &wl.ty).expect("encodes");
        let replay = RecordedPlan {
            request: "d1g",
            planned: &planned_msgpack,
            replaces: true,
        };
        for replay in [None, Some(replay)] {
            let body = wl.plan_note_body(&planned, replay).expect("a note");
            let note = PlanNote::parse(&body).expect("parses");
            assert_eq!(note.inputs, wl.inputs_digest(&planned));
            for name in NOTED {
                let ty = wl.object.attrs.get(name).expect("noted attribute");
                let bytes = note.attribute(name).expect("noted");
                assert_eq!(
                    tfvalue::decode_msgpack(bytes, ty).expect("decodes"),
                    *planned.get(name).expect("set"),
                    "{name}"
                );
            }
            assert_eq!(note.plan, replay);
        }
        // A note that records the plan holds the noted attributes once, in the planned state.
        let recording = wl.plan_note_body(&planned, Some(replay)).expect("a note");
        assert!(recording.len() < planned_msgpack.len() + 100);
        // msgpack holds unknowns, so a noted attribute still unknown is noted too.
        attrs::set(&mut planned, "placement", Value::Unknown);
        let body = wl.plan_note_body(&planned, None).expect("a note");
        let note = PlanNote::parse(&body).expect("parses");
        assert_eq!(note.attribute("placement"), Some(&[0xd4, 0, 0][..]));
    }

    #[test]
    fn durations_parse_like_terraform_timeouts() {
        assert_eq!(parse_duration("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "20", "m", "5d", "0s", "200h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn workload_ids_are_stable_and_distinct() {
        assert_eq!(workload_id("api"), workload_id("api"));
        assert_ne!(workload_id("api"), workload_id("web"));
        assert!(workload_id("api").starts_with("wl-"));
        assert_eq!(workload_id("api").len(), 19);
    }

    #[test]
    fn idempotency_key_changes_with_the_place() {
        let a = Value::object([
            ("provider", Value::string("aws")),
            ("region", Value::string("eu-west-1")),
        ]);
        let b = Value::object([
            ("provider", Value::string("aws")),
            ("region", Value::string("eu-west-2")),
        ]);
        assert_ne!(idempotency_key("x", &a), idempotency_key("x", &b));
        assert_eq!(idempotency_key("x", &a), idempotency_key("x", &a));
    }

    #[test]
    fn version_zero_state_upgrades_into_the_placement_object() {
        let v0 = serde_json::json!({
            "id": "wl-0123456789abcdef", "name": "api", "cpu": 2, "memory_gb": 4,
            "placement_provider": "aws", "placement_region": "eu-west-1",
            "instance_type": "m5.large", "estimated_cost_hourly": 0.107,
            "placement_reason": "cheapest", "instance_id": "sim-1", "status": "running"
        });
        let upgraded = Workload::new()
            .upgrade(0, v0.to_string().as_bytes())
            .expect("upgrade");
        let placement = upgraded.get("placement").expect("placement");
        assert_eq!(attrs::string(placement, "provider").as_deref(), Some("aws"));
        assert_eq!(
            attrs::string(placement, "instance_type").as_deref(),
            Some("m5.large")
        );
        assert_eq!(
            attrs::number(placement, "estimated_cost_hourly"),
            Some(0.107)
        );
        assert_eq!(
            attrs::string(&upgraded, "instance_id").as_deref(),
            Some("sim-1")
        );
    }

    #[test]
    fn newer_state_versions_are_refused_with_a_reason() {
        let err = Workload::new().upgrade(7, b"{}").expect_err("newer");
        assert!(err.0[0].detail.contains("schema version 7"));
    }
}
