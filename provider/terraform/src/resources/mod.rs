//! Resources and the one interface the gRPC layer drives them through.
//!
//! A resource sees decoded [`Value`]s and returns [`Value`]s and [`Diagnostics`]; it never sees
//! protobuf or msgpack. That keeps each resource a readable file of schema + plan + CRUD (the
//! shape of terraform-provider-random), testable without a Terraform binary.

pub mod edge_cluster;
pub mod edge_node;
pub mod migration_plan;
pub mod migration_run;
pub(crate) mod plan_note;
pub mod workload;
pub mod workload_edge;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use clouds::retry::StopSignal;
use clouds::Driver;
use tfvalue::{AttributePath, Type, Value};

use crate::diagnostics::Diagnostics;
use crate::schema::Schema;

/// What resources get from the configured provider.
#[derive(Clone)]
pub struct ProviderContext {
    pub catalog: &'static catalog::Catalog,
    /// The default driver (the sim cloud); see [`ProviderContext::driver_for`].
    pub driver: Arc<dyn Driver>,
    /// The real cloud drivers configured in the provider block (`aws {}`, and the others as
    /// their features land), keyed by the placement provider they serve (`aws`, `gcp`, ...).
    /// A cloud without an entry is provisioned on the sim cloud.
    pub clouds: BTreeMap<&'static str, Arc<dyn Driver>>,
    /// The sim cloud's own store, which also holds the edge sites' descriptions.
    pub sim: Arc<clouds::sim::SimCloud>,
    /// Edge capacity reservations, shared by every workspace using the same store.
    pub ledger: Arc<dyn ledger::Ledger>,
    pub default_tags: BTreeMap<String, String>,
    pub stop: StopSignal,
    /// Decisions already made in this process, for identical inputs over the catalog alone.
    pub placements: Arc<PlacementCache>,
    /// The Kubernetes edge sites (builds with the `kubernetes` feature): node labels, tokens,
    /// and [`ProviderContext::kubernetes`], the driver of workloads placed on their nodes.
    pub edge_sites: Option<Arc<dyn clouds::edge::EdgeSites>>,
    /// The (metered) driver of workloads on Kubernetes edge sites, named `kubernetes`.
    pub kubernetes: Option<Arc<dyn Driver>>,
    /// Identifies the provider configuration and this build, so a plan recorded for replay
    /// (see [`PlanRequest::request_digest`]) is only ever repeated under the same ones.
    pub config_digest: String,
}

impl ProviderContext {
    /// The driver that provisions a new placement on `provider`: the configured cloud driver
    /// (aws, gcp, azure) when there is one, the sim cloud for everything else.
    pub fn driver_for(&self, provider: &str) -> Arc<dyn Driver> {
        self.clouds
            .get(provider)
            .cloned()
            .unwrap_or_else(|| self.driver.clone())
    }

    /// The driver for a new placement: a workload on edge nodes of a cluster with a
    /// `kubernetes` block goes to the Kubernetes driver (all its nodes must be in that one
    /// cluster); anything else as [`ProviderContext::driver_for`]. `nodes` are edge node ids.
    pub fn driver_for_placement(
        &self,
        provider: &str,
        nodes: &[String],
    ) -> Result<Arc<dyn Driver>, String> {
        if !matches!(provider, "edge" | "onprem") || nodes.is_empty() {
            return Ok(self.driver_for(provider));
        }
        // Nodes or clusters the store no longer has are not Kubernetes sites as far as we know;
        // the sim path reports them where it always has.
        let mut clusters = BTreeMap::new();
        for id in nodes {
            let Some(node) = self.sim.edge_node(id).map_err(|e| e.to_string())? else {
                continue;
            };
            let kube = self
                .sim
                .edge_cluster(&node.cluster_id)
                .map_err(|e| e.to_string())?
                .is_some_and(|c| c.kubernetes.is_some());
            clusters.insert(node.cluster_id, kube);
        }
        match (clusters.len(), clusters.values().any(|kube| *kube)) {
            (_, false) => Ok(self.driver_for(provider)),
            (1, true) => self.kubernetes.clone().ok_or_else(|| {
                "the chosen edge cluster is a Kubernetes site, and this terraform-provider-hybrid binary was built without the kubernetes driver (cargo feature `kubernetes`)".to_string()
            }),
            (_, true) => Err(format!(
                "the replicas would be spread over edge clusters {}, and at least one of them is a Kubernetes site: one workload's Deployment lives in one cluster. Name one cluster in edge_cluster_ids",
                clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The driver recorded in a resource's state (`driver` attribute), which keeps owning the
    /// instance whatever the current configuration would pick for a new one.
    pub fn driver_named(&self, name: &str) -> Result<Arc<dyn Driver>, String> {
        if name == self.driver.name() {
            return Ok(self.driver.clone());
        }
        if let Some(driver) = self.clouds.values().find(|d| d.name() == name) {
            return Ok(driver.clone());
        }
        if let Some(driver) = self.kubernetes.as_ref().filter(|d| d.name() == name) {
            return Ok(driver.clone());
        }
        match name {
            "kubernetes" => Err("this workload was made by the kubernetes driver, and this terraform-provider-hybrid binary was built without it (cargo feature `kubernetes`)".to_string()),
            "aws" => Err("this instance was made by the aws driver, which is not configured: add an aws {} block to the provider (credentials from the AWS environment) to manage it".to_string()),
            "gcp" => Err("this instance was made by the gcp driver, which is not configured: add a gcp {} block to the provider (credentials from Application Default Credentials) to manage it".to_string()),
            "azure" => Err("this instance was made by the azure driver, which is not configured: add an azure {} block to the provider (service principal from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET) to manage it".to_string()),
            _ => Err(format!("this instance was made by the {name} driver, which this provider does not have configured: add a {name} {{}} block to the provider to manage it")),
        }
    }
}

/// Terraform asks for the same decision several times per run (plan, then again at apply) and
/// a `count` of identical workloads asks for it once per instance; the engine is deterministic,
/// so the answer for identical inputs is computed once per process. Only catalog-only
/// decisions are cached: edge capacity changes as other workspaces book it.
#[derive(Default)]
pub struct PlacementCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Placed>>,
    /// The last few distinct inputs, compared field by field: a fleet of like workloads
    /// asks the same question again and again, and comparing is much cheaper than printing
    /// the key the map needs.
    recent: std::sync::Mutex<Vec<RecentPlacement>>,
}

type Placed = Result<placement::Decision, placement::NoFeasiblePlacement>;

struct RecentPlacement {
    requirements: placement::Requirements,
    strategy: placement::Strategy,
    options: placement::PlaceOptions,
    placed: Placed,
}

impl PlacementCache {
    const MAX_ENTRIES: usize = 4096;
    const MAX_RECENT: usize = 8;

    pub fn place(
        &self,
        catalog: &catalog::Catalog,
        requirements: &placement::Requirements,
        strategy: &placement::Strategy,
        options: &placement::PlaceOptions,
    ) -> Placed {
        if let Ok(recent) = self.recent.lock() {
            if let Some(hit) = recent.iter().find(|r| {
                r.requirements == *requirements && r.strategy == *strategy && r.options == *options
            }) {
                return hit.placed.clone();
            }
        }
        let key = format!("{requirements:?}|{strategy:?}|{options:?}");
        let cached = self
            .entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(&key).cloned());
        let placed = match cached {
            Some(hit) => hit,
            None => {
                let result = placement::place(catalog, &[], requirements, strategy, options);
                if let Ok(mut entries) = self.entries.lock() {
                    if entries.len() >= Self::MAX_ENTRIES {
                        entries.clear();
                    }
                    entries.insert(key, result.clone());
                }
                result
            }
        };
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= Self::MAX_RECENT {
                recent.remove(0);
            }
            recent.push(RecentPlacement {
                requirements: requirements.clone(),
                strategy: *strategy,
                options: options.clone(),
                placed: placed.clone(),
            });
        }
        placed
    }
}

pub struct PlanRequest {
    pub prior_state: Value,
    pub proposed_new_state: Value,
    pub config: Value,
    pub prior_private: Vec<u8>,
    /// For a resource that [replays plans](Resource::replays_plans): the digest of this request
    /// as it came (every value's bytes and the provider configuration). Terraform repeats every
    /// plan at apply with the same request and requires the same answer: a plan recorded under
    /// this digest can be given back as it was sent ([`PlanResponse::planned_msgpack`]).
    /// Absent for a plan that keeps the prior state or destroys.
    pub request_digest: Option<String>,
    /// What [`Resource::replayed_plan`] read while looking this request up and did not use
    /// (`Some(None)`: it found nothing), so that the plan does not read it again; `None` when
    /// the request was not looked up.
    pub looked_up: Option<Option<Vec<u8>>>,
}

/// The outcome of [`Resource::replayed_plan`].
pub enum ReplayLookup {
    /// The plan recorded for this very request, as the response that gives it back.
    Replayed(PlanResponse),
    /// Nothing recorded for this request: the plan is made, with what the lookup read
    /// ([`PlanRequest::looked_up`]).
    Missed(Option<Vec<u8>>),
    /// Not looked up (the request names nothing to look up by).
    NotLooked,
}

pub struct PlanResponse {
    pub planned_state: Value,
    pub requires_replace: Vec<AttributePath>,
    pub planned_private: Vec<u8>,
    pub diagnostics: Diagnostics,
    /// The planned state already encoded, when the resource needed the bytes itself (to record
    /// them) or has them from a recorded plan: sent as they are. `planned_state` then holds at
    /// least the attributes telemetry reads (`id`, `name`, `placement`).
    pub planned_msgpack: Option<Vec<u8>>,
}

pub struct ApplyRequest {
    pub prior_state: Value,
    pub planned_state: Value,
    pub config: Value,
    pub planned_private: Vec<u8>,
}

pub struct ApplyResponse {
    pub new_state: Value,
    pub private: Vec<u8>,
    pub diagnostics: Diagnostics,
}

pub struct ReadResponse {
    /// `Value::Null` when the object no longer exists (Terraform then plans a re-create).
    pub new_state: Value,
    pub private: Vec<u8>,
    pub diagnostics: Diagnostics,
}

#[derive(Default)]
pub struct ImportResponse {
    /// The imported objects' states (Terraform reads each afterwards).
    pub states: Vec<Value>,
    pub diagnostics: Diagnostics,
}

#[async_trait]
pub trait Resource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> &Schema;

    /// Checks that need only the configuration (values may be unknown: skip those).
    fn validate(&self, config: &Value) -> Diagnostics;

    async fn plan(&self, ctx: &ProviderContext, req: PlanRequest) -> PlanResponse;

    /// Whether this resource answers a repeated plan request with the plan it recorded for it
    /// (see [`PlanRequest::request_digest`]); the digest is only computed for those that do.
    fn replays_plans(&self) -> bool {
        false
    }

    /// For a resource that replays plans: the plan recorded for the request with digest
    /// `request_digest`, looked up from the configuration's msgpack bytes as sent, before any
    /// value of the request is decoded (most apply-time plans end here).
    fn replayed_plan(
        &self,
        _ctx: &ProviderContext,
        _config_msgpack: &[u8],
        _request_digest: &str,
    ) -> ReplayLookup {
        ReplayLookup::NotLooked
    }

    /// Whether the plan of a destroy (a null proposed state) reads [`PlanRequest::prior_state`];
    /// when it does not, the prior state is not decoded for it and arrives null.
    fn destroy_plan_reads_prior(&self) -> bool {
        true
    }

    /// Whether [`Resource::apply`] reads [`ApplyRequest::config`]; when it does not, the
    /// configuration is not decoded for it and arrives null.
    fn apply_reads_config(&self) -> bool {
        true
    }
    async fn apply(&self, ctx: &ProviderContext, req: ApplyRequest) -> ApplyResponse;
    async fn read(&self, ctx: &ProviderContext, state: Value, private: Vec<u8>) -> ReadResponse;
    async fn import(&self, ctx: &ProviderContext, id: &str) -> ImportResponse;

    /// Turns stored state JSON written by schema `version` into a value of the current schema.
    /// At the current version this must be [`decode_stored_state`] and nothing more: the gRPC
    /// layer hands such state back to Terraform unchanged and calls this only for older
    /// versions (tests and fuzzing call it for every version).
    fn upgrade(&self, version: i64, state_json: &[u8]) -> Result<Value, Diagnostics>;
}

/// The stable ids and idempotency keys derived from configuration use the clouds' one digest.
pub use clouds::sha256_hex;

/// Decodes stored state JSON written by `version` of `schema`, once any older layout has been
/// upgraded to it; state from a newer provider is refused with a diagnostic that says so.
pub fn decode_stored_state(
    type_name: &str,
    schema: &Schema,
    version: i64,
    state_json: &[u8],
) -> Result<Value, Diagnostics> {
    decode_stored_state_as(
        type_name,
        schema,
        &schema.block.value_type(),
        version,
        state_json,
    )
}

/// [`decode_stored_state`] with the schema's value type built beforehand (Terraform upgrades
/// every resource's state on every plan, so a resource with many instances keeps it).
pub fn decode_stored_state_as(
    type_name: &str,
    schema: &Schema,
    ty: &Type,
    version: i64,
    state_json: &[u8],
) -> Result<Value, Diagnostics> {
    if version != schema.version {
        let relation = if version > schema.version {
            "newer"
        } else {
            "older"
        };
        return Err(crate::diagnostics::Diagnostic::error(
            format!("State written by a {relation} provider"),
            format!(
                "This {type_name} state has schema version {version}; this provider understands {}. Use the provider version that wrote it.",
                schema.version
            ),
        )
        .into());
    }
    tfvalue::decode_json(state_json, ty)
        .map_err(|e| crate::diagnostics::Diagnostic::decode("stored state", &e).into())
}

/// Every resource the provider serves, by type name.
pub fn all() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(workload::Workload::new()),
        Arc::new(edge_cluster::EdgeClusterResource::new()),
        Arc::new(edge_node::EdgeNodeResource::new()),
        Arc::new(migration_plan::MigrationPlan::new()),
    ]
}

// `Value` has no `Default` (null is not an obvious default for every use), so these are spelled
// out: an empty response carries a null value and no diagnostics.
impl Default for PlanResponse {
    fn default() -> Self {
        PlanResponse {
            planned_state: Value::Null,
            requires_replace: Vec::new(),
            planned_private: Vec::new(),
            diagnostics: Diagnostics::new(),
            planned_msgpack: None,
        }
    }
}

impl Default for ApplyResponse {
    fn default() -> Self {
        ApplyResponse {
            new_state: Value::Null,
            private: Vec::new(),
            diagnostics: Diagnostics::new(),
        }
    }
}

impl Default for ReadResponse {
    fn default() -> Self {
        ReadResponse {
            new_state: Value::Null,
            private: Vec::new(),
            diagnostics: Diagnostics::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether answered by the recent list, by the map or afresh, the cache gives what
    /// `placement::place` gives for the same inputs, and never another input's answer.
    #[test]
    fn the_placement_cache_answers_each_input_with_its_own_decision() {
        let catalog = catalog::embedded();
        let cache = PlacementCache::default();
        let options = placement::PlaceOptions::default();
        let strategies = [
            placement::Strategy::Hybrid,
            placement::Strategy::CostOptimized,
            placement::Strategy::LatencyOptimized,
        ];
        // More distinct inputs than the recent list holds, asked twice, in two orders.
        let inputs: Vec<_> = (1..=6)
            .flat_map(|cpu| {
                strategies
                    .iter()
                    .map(move |s| (placement::Requirements::new(f64::from(cpu), 4.0), *s))
            })
            .collect();
        assert!(inputs.len() > PlacementCache::MAX_RECENT);
        for (requirements, strategy) in inputs.iter().chain(inputs.iter().rev()) {
            let expected = placement::place(catalog, &[], requirements, strategy, &options);
            let got = cache.place(catalog, requirements, strategy, &options);
            assert_eq!(
                format!("{got:?}"),
                format!("{expected:?}"),
                "{requirements:?} {strategy:?}"
            );
        }
    }
}
