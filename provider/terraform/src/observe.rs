//! Where the provider's metrics and the placement fields of its log spans come from.
//!
//! The `telemetry` crate holds the registry and the push; this module decides *when* something
//! counts, from what the RPCs really did: a placement planned or provisioned, a driver call and
//! its outcome, an edge node seen or changed, a booking made or released. It reads decoded
//! values only (like `resources/`), so `grpc.rs` calls it with one line per RPC.
//!
//! The `metrics { pushgateway_url = ... }` block of the provider configuration (or
//! `$HYBRID_PUSHGATEWAY_URL`) turns the push on. Metrics are pushed once, when Terraform shuts
//! the plugin down, as one Pushgateway group per job, workspace, root module directory and phase
//! (`plan`, or `apply` when the process applied a change). A gateway that is down costs a
//! warning, never a failed or slow apply: the reachability check at configure time and the push
//! at exit each have a short timeout.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clouds::{Driver, DriverError, Instance, InstanceSpec};
use telemetry::{GroupingKey, Metrics, PushTarget, WorkloadCost};
use tfvalue::{AttributePath, Type, Value};

use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::resources::{workload_edge, ProviderContext};
use crate::schema::{Attr, Block, NestedBlock, Nesting};

/// Turns pushing on when the provider block has no `metrics` block.
pub const ENV_PUSHGATEWAY_URL: &str = "HYBRID_PUSHGATEWAY_URL";
/// The Pushgateway job when the block does not name one.
pub const DEFAULT_JOB: &str = "terraform-provider-hybrid";
/// How long ConfigureProvider waits to learn whether the gateway is reachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the push at exit may take: Terraform kills a plugin 2 s after asking it to stop.
const PUSH_TIMEOUT: Duration = Duration::from_millis(1500);

const WORKLOAD: &str = "hybrid_workload";
const EDGE_NODE: &str = "hybrid_edge_node";
const EDGE_CLUSTER: &str = "hybrid_edge_cluster";

/// The provider block's `metrics { ... }`.
pub fn metrics_block() -> NestedBlock {
    NestedBlock {
        type_name: "metrics",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                Attr::required(
                    "pushgateway_url",
                    Type::String,
                    "Prometheus Pushgateway to push this run's metrics to when Terraform stops the provider: http://[user:password@]host:port[/prefix] (basic auth from the user info). Default: $HYBRID_PUSHGATEWAY_URL, else no push.",
                )
                .sensitive(),
                Attr::optional(
                    "job",
                    Type::String,
                    "Pushgateway job name. Default: terraform-provider-hybrid. The group also carries workspace ($TF_WORKSPACE or the selected workspace), root_module (the working directory's name) and phase (plan or apply).",
                ),
            ],
            blocks: Vec::new(),
            description: "Push metrics (cloud_operations_total, workload_placements_total, cloud_costs_hourly, edge_*) to a Prometheus Pushgateway. A gateway that is down gives a warning, never a failed apply.",
        },
        min_items: 0,
        max_items: 1,
    }
}

/// Where to push, after configuration.
#[derive(Clone, PartialEq)]
pub struct MetricsSettings {
    pub pushgateway_url: String,
    pub job: String,
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = PushTarget::parse(&self.pushgateway_url)
            .map(|t| t.redacted())
            .unwrap_or_else(|_| "(invalid)".into());
        f.debug_struct("MetricsSettings")
            .field("pushgateway_url", &url)
            .field("job", &self.job)
            .finish()
    }
}

fn metrics_path(attr: &str) -> AttributePath {
    AttributePath::root().attr("metrics").attr(attr)
}

/// Checks the `metrics` block (unknown values are skipped).
pub fn validate_metrics(config: &Value, diags: &mut Diagnostics) {
    let Some(block) = attrs::get(config, "metrics").filter(|b| !b.is_unknown() && !b.is_null())
    else {
        return;
    };
    if let Some(url) = attrs::string(block, "pushgateway_url") {
        if let Err(e) = PushTarget::parse(&url) {
            diags.push(Diagnostic::attribute_error(
                metrics_path("pushgateway_url"),
                "Invalid pushgateway_url",
                e.to_string(),
            ));
        }
    }
    if let Some(job) = attrs::string(block, "job") {
        if let Err(e) = GroupingKey::new(&job) {
            diags.push(Diagnostic::attribute_error(
                metrics_path("job"),
                "Invalid metrics job",
                e.to_string(),
            ));
        }
    }
}

/// The push settings from the block, else from `$HYBRID_PUSHGATEWAY_URL`; `None` turns pushing
/// off.
pub fn metrics_settings(config: &Value) -> Option<MetricsSettings> {
    let block = attrs::get(config, "metrics").filter(|b| !b.is_unknown() && !b.is_null());
    let url = block
        .and_then(|b| attrs::string(b, "pushgateway_url"))
        .or_else(|| {
            std::env::var(ENV_PUSHGATEWAY_URL)
                .ok()
                .filter(|v| !v.trim().is_empty())
        })?;
    let job = block
        .and_then(|b| attrs::string(b, "job"))
        .unwrap_or_else(|| DEFAULT_JOB.to_string());
    Some(MetricsSettings {
        pushgateway_url: url,
        job,
    })
}

/// The Terraform workspace the command runs in: `$TF_WORKSPACE`, else the one `terraform
/// workspace select` recorded in the data directory, else `default`.
fn terraform_workspace(cwd: &Path) -> String {
    if let Some(ws) = std::env::var("TF_WORKSPACE")
        .ok()
        .filter(|w| !w.trim().is_empty())
    {
        return ws;
    }
    let data_dir = std::env::var_os("TF_DATA_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| cwd.join(".terraform"));
    std::fs::read_to_string(data_dir.join("environment"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// The metrics of this process and where they go.
#[derive(Default)]
pub struct Telemetry {
    pub metrics: Metrics,
    push: Mutex<Option<(PushTarget, GroupingKey)>>,
    applied: AtomicBool,
}

impl Telemetry {
    /// Remembers where to push (ConfigureProvider) and checks, briefly, that the gateway is
    /// reachable: a warning when it is not, so the user learns it without waiting for logs.
    pub async fn configure(&self, settings: Option<&MetricsSettings>) -> Diagnostics {
        let mut diags = Diagnostics::new();
        let Some(settings) = settings else {
            return diags;
        };
        let target = match PushTarget::parse(&settings.pushgateway_url) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::warning(
                    "Metrics will not be pushed",
                    format!("{e} (from the metrics block or {ENV_PUSHGATEWAY_URL})."),
                ));
                return diags;
            }
        };
        let cwd = std::env::current_dir().unwrap_or_default();
        let root_module = cwd
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = GroupingKey::new(&settings.job)
            .and_then(|k| k.label("workspace", &terraform_workspace(&cwd)))
            .and_then(|k| k.label("root_module", &root_module));
        let key = match key {
            Ok(k) => k,
            Err(e) => {
                diags.push(
                    Diagnostic::warning("Metrics will not be pushed", e.to_string())
                        .at(metrics_path("job")),
                );
                return diags;
            }
        };
        tracing::info!(pushgateway = %target.redacted(), job = %key.job(), "metrics will be pushed when Terraform stops the provider");
        if let Err(e) = target.check_reachable(CHECK_TIMEOUT).await {
            tracing::warn!(pushgateway = %target.redacted(), error = %e, "pushgateway not reachable");
            diags.push(Diagnostic::warning(
                "Pushgateway not reachable",
                format!("{e}. Terraform goes on; this run's metrics will probably not be pushed."),
            ));
        }
        if let Ok(mut push) = self.push.lock() {
            *push = Some((target, key));
        }
        diags
    }

    /// Pushes this process's metrics, if a gateway is configured. Called once, after the plugin
    /// server stopped; a failure is logged (no RPC is left to carry a diagnostic).
    pub async fn push_at_exit(&self) {
        let Some((target, key)) = self.push.lock().ok().and_then(|p| p.clone()) else {
            return;
        };
        let phase = if self.applied.load(Ordering::Relaxed) {
            "apply"
        } else {
            "plan"
        };
        let key = match key.label("phase", phase) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "metrics not pushed");
                return;
            }
        };
        let body = match self.metrics.encode() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "metrics not pushed");
                return;
            }
        };
        let started = Instant::now();
        match target.push(&key, body, PUSH_TIMEOUT).await {
            Ok(()) => tracing::info!(
                pushgateway = %target.redacted(),
                phase,
                recorded = self.metrics.recorded(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "metrics pushed"
            ),
            Err(e) => {
                tracing::warn!(pushgateway = %target.redacted(), error = %e, "metrics not pushed")
            }
        }
    }

    /// After PlanResourceChange: the placement decided (also written to the RPC's span), its
    /// cost, and a placement that could not be made. `inputs` is what was read of the request
    /// before the resource took it.
    pub fn after_plan(&self, type_name: &str, inputs: &PlanInputs, planned: &Value, failed: bool) {
        if type_name != WORKLOAD {
            return;
        }
        let span = tracing::Span::current();
        if let Some(name) = &inputs.name {
            span.record("tf_resource_name", name.as_str());
        }
        if failed {
            if inputs.destroying {
                return; // a failed destroy plan is not a placement
            }
            let strategy = attrs::string(planned, "strategy")
                .or_else(|| inputs.strategy.clone())
                .unwrap_or_else(|| "hybrid".to_string());
            self.metrics.placement_failed(&strategy);
            span.record("placement_outcome", "failed");
            return;
        }
        if planned.is_null() {
            if let Some(id) = &inputs.prior_id {
                self.metrics.workload_cost(id, None);
            }
            return;
        }
        let Some(placement) =
            attrs::get(planned, "placement").filter(|p| p.is_known() && !p.is_null())
        else {
            span.record("placement_outcome", "deferred");
            return;
        };
        let provider = attrs::string(placement, "provider").unwrap_or_default();
        let region = attrs::string(placement, "region").unwrap_or_default();
        span.record("placement_outcome", "decided");
        span.record("placement_provider", provider.as_str());
        span.record("placement_region", region.as_str());
        if let Some(t) = attrs::string(placement, "instance_type") {
            span.record("placement_instance_type", t.as_str());
        }
        if let Some(n) = attrs::string(placement, "node") {
            span.record("placement_node", n.as_str());
        }
        if let Some(score) = attrs::number(placement, "score") {
            span.record("placement_score", score);
        }
        if let Some(cost) = attrs::number(placement, "estimated_cost_hourly") {
            span.record("placement_cost_hourly", cost);
        }
        if provider == "edge" {
            if let Some(ms) = attrs::number(placement, "estimated_latency_ms") {
                self.metrics.edge_latency(ms / 1000.0);
            }
        }
        self.record_cost(planned);
    }

    fn record_cost(&self, state: &Value) {
        let Some(id) = attrs::string(state, "id") else {
            return;
        };
        let cost = attrs::get(state, "placement")
            .filter(|p| p.is_known() && !p.is_null())
            .and_then(|p| {
                Some(WorkloadCost {
                    provider: attrs::string(p, "provider")?,
                    region: attrs::string(p, "region")?,
                    hourly: attrs::number(p, "estimated_cost_hourly")?,
                })
            });
        self.metrics.workload_cost(&id, cost);
    }

    /// After ReadResource: what exists now (costs of workloads, edge nodes and their bookings).
    pub fn after_read(&self, ctx: &ProviderContext, type_name: &str, prior: &Glimpse, now: &Value) {
        match type_name {
            WORKLOAD if now.is_null() => {
                if let Some(id) = attrs::string(prior.value(), "id") {
                    self.metrics.workload_cost(&id, None);
                }
            }
            WORKLOAD => self.record_cost(now),
            // Gone from the store while Terraform still has it: the node is down (plan will
            // re-create it), which is what EdgeNodeDown is for.
            EDGE_NODE if now.is_null() => self.record_node(ctx, prior.value(), NodeSeen::Vanished),
            EDGE_NODE => self.record_node(ctx, now, NodeSeen::Present),
            _ => {}
        }
    }

    /// After ApplyResourceChange: placements provisioned (or not), edge changes and bookings.
    pub fn after_apply(
        &self,
        ctx: &ProviderContext,
        type_name: &str,
        prior: &Glimpse,
        planned: &Glimpse,
        new_state: &Value,
        failed: bool,
    ) {
        self.applied.store(true, Ordering::Relaxed);
        let (prior, planned) = (prior.value(), planned.value());
        match type_name {
            WORKLOAD => self.after_workload_apply(ctx, prior, planned, new_state, failed),
            EDGE_NODE => {
                let state = if new_state.is_null() {
                    prior
                } else {
                    new_state
                };
                if let Some(cluster) = attrs::string(state, "cluster_id") {
                    if !failed {
                        self.metrics.edge_operation(&cluster);
                    }
                }
                let seen = if new_state.is_null() {
                    NodeSeen::Deleted
                } else {
                    NodeSeen::Present
                };
                self.record_node(ctx, state, seen);
            }
            EDGE_CLUSTER if !failed => {
                let state = if new_state.is_null() {
                    prior
                } else {
                    new_state
                };
                if let Some(id) = attrs::string(state, "id") {
                    self.metrics.edge_operation(&id);
                }
            }
            _ => {}
        }
    }

    fn after_workload_apply(
        &self,
        ctx: &ProviderContext,
        prior: &Value,
        planned: &Value,
        new_state: &Value,
        failed: bool,
    ) {
        let creating = !planned.is_null()
            && (prior.is_null()
                || attrs::string(prior, "instance_id") != attrs::string(new_state, "instance_id"));
        let strategy = attrs::string(planned, "strategy")
            .or_else(|| attrs::string(prior, "strategy"))
            .unwrap_or_else(|| "hybrid".to_string());
        if creating {
            let placed = attrs::get(new_state, "placement")
                .filter(|p| p.is_known() && !p.is_null())
                .and_then(|p| attrs::string(p, "provider"));
            match placed {
                Some(cloud) if !failed => self.metrics.placement(&cloud, &strategy),
                _ => self.metrics.placement_failed(&strategy),
            }
        }
        if new_state.is_null() {
            if let Some(id) = attrs::string(prior, "id") {
                self.metrics.workload_cost(&id, None);
            }
        } else {
            self.record_cost(new_state);
        }
        // Bookings changed on the nodes the old and the new placement name.
        let mut nodes: Vec<String> = Vec::new();
        for state in [prior, new_state] {
            for (node, _) in workload_edge::bookings(state) {
                nodes.push(node);
            }
            if let Some(node) = attrs::get(state, "placement")
                .filter(|p| p.is_known() && !p.is_null())
                .filter(|p| {
                    matches!(
                        attrs::string(p, "provider").as_deref(),
                        Some("edge" | "onprem")
                    )
                })
                .and_then(|p| attrs::string(p, "node"))
            {
                nodes.push(node);
            }
        }
        nodes.sort();
        nodes.dedup();
        // A create or replacement books, a destroy releases; an in-place change does neither.
        let booked = !failed && (creating || new_state.is_null());
        for node in nodes {
            if let Ok(Some(record)) = ctx.sim.edge_node(&node) {
                if booked {
                    self.metrics.edge_operation(&record.cluster_id);
                }
                self.record_usage(ctx, &record.cluster_id, &node);
            }
        }
    }

    /// An edge node is up when it is registered and ready and the capacity ledger knows its
    /// capacity (only then is it offered to placement).
    fn record_node(&self, ctx: &ProviderContext, state: &Value, seen: NodeSeen) {
        let (Some(cluster), Some(node)) = (
            attrs::string(state, "cluster_id"),
            attrs::string(state, "id"),
        ) else {
            return;
        };
        match seen {
            NodeSeen::Deleted => self.metrics.edge_node(&cluster, &node, None),
            NodeSeen::Vanished => self.metrics.edge_node(&cluster, &node, Some(false)),
            NodeSeen::Present => {
                let booked = ledger::NodeId::new(node.clone())
                    .ok()
                    .is_some_and(|id| ctx.ledger.usage(&id).is_ok());
                let ready = attrs::string(state, "status").as_deref() == Some("ready");
                self.metrics
                    .edge_node(&cluster, &node, Some(ready && booked));
                self.record_usage(ctx, &cluster, &node);
            }
        }
    }

    /// The ledger's view of a node: workloads holding capacity and the booked share of each
    /// resource that has a capacity.
    fn record_usage(&self, ctx: &ProviderContext, cluster: &str, node: &str) {
        let Ok(id) = ledger::NodeId::new(node.to_string()) else {
            return;
        };
        let Ok(usage) = ctx.ledger.usage(&id) else {
            return;
        };
        let mut holders: Vec<&str> = usage.holders.iter().map(|h| h.holder.as_str()).collect();
        holders.sort_unstable();
        holders.dedup();
        let share = |reserved: u64, capacity: u64| reserved as f64 / capacity as f64;
        let dims = [
            ("cpu", usage.reserved.cpu_millis, usage.capacity.cpu_millis),
            ("memory", usage.reserved.memory_mb, usage.capacity.memory_mb),
            (
                "storage",
                usage.reserved.storage_gb,
                usage.capacity.storage_gb,
            ),
            (
                "gpu",
                u64::from(usage.reserved.gpu),
                u64::from(usage.capacity.gpu),
            ),
            (
                "network",
                usage.reserved.network_mbps,
                usage.capacity.network_mbps,
            ),
        ];
        let utilization: Vec<(&str, f64)> = dims
            .iter()
            .filter(|(_, _, capacity)| *capacity > 0)
            .map(|(name, reserved, capacity)| (*name, share(*reserved, *capacity)))
            .collect();
        self.metrics
            .edge_node_usage(cluster, node, holders.len(), &utilization);
    }
}

/// What a read or apply learned about an edge node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeSeen {
    /// It exists.
    Present,
    /// Terraform has it, the store no longer does.
    Vanished,
    /// Terraform deleted it.
    Deleted,
}

/// A driver that records every call (each retry attempt) with its outcome and duration.
pub struct MeteredDriver {
    inner: Arc<dyn Driver>,
    telemetry: Arc<Telemetry>,
}

impl MeteredDriver {
    pub fn wrap(inner: Arc<dyn Driver>, telemetry: Arc<Telemetry>) -> Arc<dyn Driver> {
        Arc::new(MeteredDriver { inner, telemetry })
    }

    async fn timed<T>(
        &self,
        operation: &str,
        call: impl std::future::Future<Output = Result<T, DriverError>>,
    ) -> Result<T, DriverError> {
        let started = Instant::now();
        let result = call.await;
        let status = match &result {
            Ok(_) => "success",
            Err(e) => error_kind(e),
        };
        self.telemetry.metrics.driver_operation(
            self.inner.name(),
            operation,
            status,
            started.elapsed().as_secs_f64(),
        );
        result
    }
}

/// The `status` label of a failed driver call.
fn error_kind(e: &DriverError) -> &'static str {
    match e {
        DriverError::Throttled { .. } => "throttled",
        DriverError::Unavailable { .. } => "unavailable",
        DriverError::Rejected { .. } => "rejected",
        DriverError::NotFound { .. } => "not_found",
        DriverError::Timeout { .. } => "timeout",
        DriverError::Cancelled { .. } => "cancelled",
        DriverError::Storage { .. } => "storage_error",
    }
}

#[async_trait]
impl Driver for MeteredDriver {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn create(&self, spec: &InstanceSpec) -> Result<Instance, DriverError> {
        self.timed("create", self.inner.create(spec)).await
    }

    async fn read(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        self.timed("read", self.inner.read(instance_id)).await
    }

    async fn read_for_refresh(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        self.timed("read", self.inner.read_for_refresh(instance_id))
            .await
    }

    async fn find_by_workload(&self, workload_id: &str) -> Result<Option<Instance>, DriverError> {
        self.timed("find", self.inner.find_by_workload(workload_id))
            .await
    }

    async fn update_tags(
        &self,
        instance_id: &str,
        tags: &std::collections::BTreeMap<String, String>,
        metadata: Option<&clouds::Metadata>,
    ) -> Result<Instance, DriverError> {
        self.timed(
            "update",
            self.inner.update_tags(instance_id, tags, metadata),
        )
        .await
    }

    async fn delete(&self, instance_id: &str) -> Result<(), DriverError> {
        self.timed("delete", self.inner.delete(instance_id)).await
    }

    async fn list_managed(&self) -> Result<Vec<Instance>, DriverError> {
        self.timed("list", self.inner.list_managed()).await
    }
}

/// What [`Telemetry::after_plan`] reads of a plan request, taken before the resource consumes
/// the request: copying the prior and proposed states whole for it (alternatives and all) was
/// a tenth of a re-plan's CPU.
#[derive(Debug, Clone, Default)]
pub struct PlanInputs {
    name: Option<String>,
    strategy: Option<String>,
    prior_id: Option<String>,
    destroying: bool,
}

impl PlanInputs {
    /// A destroy's, from the name and id of the prior state.
    pub fn destroying(name: Option<&str>, prior_id: Option<&str>) -> PlanInputs {
        PlanInputs {
            name: name.map(str::to_owned),
            strategy: None,
            prior_id: prior_id.map(str::to_owned),
            destroying: true,
        }
    }

    /// Reads them from the request's prior and proposed states.
    pub fn of(prior: &Value, proposed: &Value) -> PlanInputs {
        PlanInputs {
            name: attrs::string(proposed, "name").or_else(|| attrs::string(prior, "name")),
            strategy: attrs::string(proposed, "strategy"),
            prior_id: attrs::string(prior, "id"),
            destroying: proposed.is_null(),
        }
    }
}

/// The attributes of a state that [`Telemetry::after_read`] and [`Telemetry::after_apply`]
/// read of the values a resource consumed: copied before the call, instead of the whole state
/// (its alternatives and all). A hook that reads another attribute of `prior` or `planned` must
/// add it to `Self::ATTRIBUTES`; the hooks only get a `Glimpse`, so they cannot read around it.
#[derive(Debug, Clone)]
pub struct Glimpse(Value);

impl Glimpse {
    const ATTRIBUTES: [&'static str; 8] = [
        "cluster_id",
        "edge",
        "edge_assignments",
        "id",
        "instance_id",
        "placement",
        "status",
        "strategy",
    ];

    /// Copies those attributes of `state` (a null or unknown state as it is).
    pub fn of(state: &Value) -> Glimpse {
        match state {
            Value::Object(all) => Glimpse(Value::Object(
                Self::ATTRIBUTES
                    .iter()
                    .filter_map(|name| all.get_key_value(name))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )),
            other => Glimpse(other.clone()),
        }
    }

    fn value(&self) -> &Value {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_block_and_never_print_credentials() {
        let config = Value::object([(
            "metrics".to_string(),
            Value::object([
                (
                    "pushgateway_url".to_string(),
                    Value::string("http://ops:hunter2@127.0.0.1:9091"),
                ),
                ("job".to_string(), Value::Null),
            ]),
        )]);
        let settings = metrics_settings(&config).expect("settings");
        assert_eq!(settings.job, DEFAULT_JOB);
        assert!(!format!("{settings:?}").contains("hunter2"));
        let mut diags = Diagnostics::new();
        validate_metrics(&config, &mut diags);
        assert!(diags.is_empty());
    }

    #[test]
    fn an_https_gateway_is_refused_at_validation() {
        let config = Value::object([(
            "metrics".to_string(),
            Value::object([
                (
                    "pushgateway_url".to_string(),
                    Value::string("https://gw.example"),
                ),
                ("job".to_string(), Value::string("")),
            ]),
        )]);
        let mut diags = Diagnostics::new();
        validate_metrics(&config, &mut diags);
        assert!(diags.has_errors());
        assert_eq!(diags.into_vec().len(), 2);
    }

    #[test]
    fn driver_errors_have_short_status_labels() {
        let e = DriverError::Throttled {
            target: "sim".into(),
            operation: "create",
            message: "slow down".into(),
        };
        assert_eq!(error_kind(&e), "throttled");
    }
}
