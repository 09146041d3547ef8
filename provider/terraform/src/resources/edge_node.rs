//! `hybrid_edge_node`: one machine of an edge site, with its hardware, the share of it that
//! workloads may use (`resource_limits`, the capacity registered in the ledger), capabilities,
//! connectivity and labels.
//!
//! Apply registers the limits with the capacity ledger first and the node's description second,
//! so a node is never offered to placement before its capacity is booked; lowering limits below
//! what workloads hold, or deleting a node that still hosts workloads, is refused with the
//! holders named.
//!
//! On a Kubernetes site (a cluster with a `kubernetes` block) the node is the Kubernetes Node of
//! the same name: apply puts its description on that Node as `hybrid.io/*` labels and
//! annotations (before anything else, so a missing Node fails the apply with nothing booked),
//! and destroy takes exactly those keys back.

use std::collections::BTreeMap;

use async_trait::async_trait;
use clouds::edge::{EdgeNode, NodeSync};
use tfvalue::{AttributePath, Type, Value};

use super::edge_cluster::{location_block, read_location, stable_id};
use super::{
    ApplyRequest, ApplyResponse, ImportResponse, PlanRequest, PlanResponse, ProviderContext,
    ReadResponse, Resource,
};
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::schema::{Attr, Block, NestedBlock, Nesting, Schema};

pub const TYPE_NAME: &str = "hybrid_edge_node";
pub const NODE_TYPES: &[&str] = &["gateway", "compute", "storage", "inference"];
/// How an edge node reaches the network.
pub const CONNECTIVITY_TYPES: &[&str] = &[
    "ethernet",
    "fiber",
    "wifi",
    "4g",
    "lte",
    "5g",
    "satellite",
    "microwave",
];
pub const CAPABILITIES: &[&str] = &[
    "ml_inference",
    "real_time_processing",
    "data_caching",
    "ml_training",
    "analytics",
    "batch_processing",
];

pub struct EdgeNodeResource {
    schema: Schema,
}

impl Default for EdgeNodeResource {
    fn default() -> Self {
        EdgeNodeResource::new()
    }
}

fn single_block(
    type_name: &'static str,
    min_items: i64,
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
        min_items,
        max_items: 1,
    }
}

impl EdgeNodeResource {
    pub fn new() -> Self {
        let blocks = vec![
            location_block(0, "Where the node is; defaults to its cluster's location."),
            single_block(
                "hardware_specs",
                1,
                vec![
                    Attr::required("cpu_cores", Type::Number, "CPU cores (> 0)."),
                    Attr::required("memory_gb", Type::Number, "Memory in GB (> 0)."),
                    Attr::optional("storage_gb", Type::Number, "Local storage in GB (>= 0)."),
                    Attr::optional("gpu_count", Type::Number, "GPUs (whole number, >= 0)."),
                    Attr::optional("gpu_model", Type::String, "GPU model, e.g. \"T4\"."),
                ],
                "The node's hardware.",
            ),
            single_block(
                "resource_limits",
                0,
                vec![
                    Attr::optional("cpu", Type::Number, "Cores workloads may use (default: all)."),
                    Attr::optional("memory_gb", Type::Number, "Memory workloads may use, GB (default: all)."),
                    Attr::optional("storage_gb", Type::Number, "Storage workloads may use, GB (default: all)."),
                    Attr::optional("network_mbps", Type::Number, "Bandwidth workloads may use, Mbps (default: the connectivity's bandwidth)."),
                ],
                "The share of the hardware workloads may use; this is the capacity the ledger books against. Cannot exceed the hardware.",
            ),
            single_block(
                "connectivity",
                0,
                vec![
                    Attr::optional("type", Type::String, "How the node reaches the network: ethernet, fiber, wifi, 4g, lte, 5g, satellite or microwave."),
                    Attr::optional("bandwidth_gbps", Type::Number, "Uplink bandwidth in Gbps (> 0)."),
                ],
                "How the node is connected.",
            ),
        ];
        EdgeNodeResource {
            schema: Schema {
                version: 0,
                block: Block {
                    attributes: vec![
                        Attr::computed("id", Type::String, "Id derived from cluster and name (`en-` + 16 hex digits), known after the first apply."),
                        Attr::required("cluster_id", Type::String, "The hybrid_edge_cluster this node belongs to; changing it replaces the node."),
                        Attr::required("name", Type::String, "Node name, unique in its cluster; changing it replaces the node. On a cluster with a kubernetes block, the name of its Kubernetes Node, which gets this node's description as hybrid.io/* labels and annotations."),
                        Attr::required("node_type", Type::String, "gateway, compute, storage or inference."),
                        Attr::optional("capabilities", Type::set(Type::String), "What the node offers: ml_inference, real_time_processing, data_caching, ml_training, analytics, batch_processing."),
                        Attr::optional("hourly_cost", Type::Number, "Amortised USD per replica-hour, used to compare this node with cloud offers. Unset means unknown: never treated as free."),
                        Attr::optional("labels", Type::map(Type::String), "Key/value labels that a workload's edge block matches: affinity_labels (must carry all), anti_affinity_labels (must carry none), preferred_labels (ranked by affinity_based)."),
                        Attr::computed("status", Type::String, "The node's state in its site: ready once registered and bookable. On a Kubernetes site a refresh may find drifted (labels or annotations of the node's description missing or changed on its Node) or node_missing; the next apply labels the Node again."),
                    ],
                    blocks,
                    description: "A machine of an edge site. Its resource_limits are the capacity the shared ledger books workloads against.",
                },
            },
        }
    }
}

/// The node as configured, checked; `Err` carries every problem with its attribute path.
fn node_from(
    config: &Value,
    cluster_location: Option<(f64, f64)>,
) -> Result<EdgeNode, Diagnostics> {
    let mut diags = Diagnostics::new();
    let path = |a: &str| AttributePath::root().attr(a);
    let bad = |diags: &mut Diagnostics, p: AttributePath, what: &str, msg: String| {
        diags.push(Diagnostic::attribute_error(
            p,
            &format!("Invalid {what}"),
            msg,
        ));
    };
    let node_type = attrs::string(config, "node_type").unwrap_or_default();
    if !NODE_TYPES.contains(&node_type.as_str()) {
        bad(
            &mut diags,
            path("node_type"),
            "node_type",
            format!(
                "unknown node type {node_type:?}; expected one of {}",
                NODE_TYPES.join(", ")
            ),
        );
    }
    let capabilities = attrs::strings(config, "capabilities");
    for cap in &capabilities {
        if !CAPABILITIES.contains(&cap.as_str()) {
            bad(
                &mut diags,
                path("capabilities"),
                "capabilities",
                format!(
                    "unknown capability {cap:?}; expected any of {}",
                    CAPABILITIES.join(", ")
                ),
            );
        }
    }
    let location = read_location(config, &mut diags).or(cluster_location);
    let hw = attrs::get(config, "hardware_specs")
        .cloned()
        .unwrap_or(Value::Null);
    let hw_path = |a: &str| AttributePath::root().attr("hardware_specs").attr(a);
    let cpu_cores = attrs::number(&hw, "cpu_cores").unwrap_or(f64::NAN);
    let memory_gb = attrs::number(&hw, "memory_gb").unwrap_or(f64::NAN);
    let storage_gb = attrs::number(&hw, "storage_gb").unwrap_or(0.0);
    for (name, v, min_exclusive) in [
        ("cpu_cores", cpu_cores, true),
        ("memory_gb", memory_gb, true),
        ("storage_gb", storage_gb, false),
    ] {
        let ok = v.is_finite() && if min_exclusive { v > 0.0 } else { v >= 0.0 } && v <= 1e6;
        if !ok {
            bad(
                &mut diags,
                hw_path(name),
                "hardware_specs",
                format!(
                    "hardware_specs.{name} must be {} and at most 1e6, got {v}.",
                    if min_exclusive { "> 0" } else { ">= 0" }
                ),
            );
        }
    }
    let gpu_count = match attrs::integer(&hw, "gpu_count") {
        Ok(Some(n)) if (0..=1024).contains(&n) => n as u32,
        Ok(None) => 0,
        Ok(Some(n)) => {
            bad(
                &mut diags,
                hw_path("gpu_count"),
                "hardware_specs",
                format!("hardware_specs.gpu_count must be between 0 and 1024, got {n}."),
            );
            0
        }
        Err(attrs::NotAWholeNumber) => {
            bad(
                &mut diags,
                hw_path("gpu_count"),
                "hardware_specs",
                "hardware_specs.gpu_count must be a whole number.".into(),
            );
            0
        }
    };
    let conn = attrs::get(config, "connectivity")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(kind) = attrs::string(&conn, "type") {
        if !CONNECTIVITY_TYPES.contains(&kind.as_str()) {
            bad(
                &mut diags,
                AttributePath::root().attr("connectivity").attr("type"),
                "connectivity",
                format!(
                    "unknown connectivity type {kind:?}; expected one of {}",
                    CONNECTIVITY_TYPES.join(", ")
                ),
            );
        }
    }
    let bandwidth_gbps = attrs::number(&conn, "bandwidth_gbps");
    if let Some(b) = bandwidth_gbps {
        if !(b.is_finite() && b > 0.0 && b <= 1e4) {
            bad(
                &mut diags,
                AttributePath::root()
                    .attr("connectivity")
                    .attr("bandwidth_gbps"),
                "connectivity",
                format!("connectivity.bandwidth_gbps must be > 0, got {b}."),
            );
        }
    }
    let limits = attrs::get(config, "resource_limits")
        .cloned()
        .unwrap_or(Value::Null);
    let limit = |name: &str, hardware: f64, diags: &mut Diagnostics| -> f64 {
        match attrs::number(&limits, name) {
            None => hardware,
            Some(v) => {
                let p = AttributePath::root().attr("resource_limits").attr(name);
                if !(v.is_finite() && v >= 0.0) {
                    bad(
                        diags,
                        p,
                        "resource_limits",
                        format!("resource_limits.{name} must be >= 0, got {v}."),
                    );
                } else if hardware.is_finite() && v > hardware {
                    bad(diags, p, "resource_limits", format!("resource_limits.{name} = {v} exceeds the hardware ({hardware}); limits cannot exceed hardware_specs."));
                }
                v
            }
        }
    };
    let limit_cpu = limit("cpu", cpu_cores, &mut diags);
    let limit_memory_gb = limit("memory_gb", memory_gb, &mut diags);
    let limit_storage_gb = limit("storage_gb", storage_gb, &mut diags);
    let link_mbps = bandwidth_gbps.map(|b| b * 1000.0).unwrap_or(1000.0);
    let limit_network_mbps = limit("network_mbps", link_mbps, &mut diags);
    let hourly_cost = attrs::number(config, "hourly_cost");
    if let Some(c) = hourly_cost {
        if !(c.is_finite() && c >= 0.0) {
            bad(
                &mut diags,
                path("hourly_cost"),
                "hourly_cost",
                format!("hourly_cost must be >= 0, got {c}."),
            );
        }
    }
    let (lat, lng) = location.unwrap_or((f64::NAN, f64::NAN));
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(EdgeNode {
        id: attrs::string(config, "id").unwrap_or_default(),
        cluster_id: attrs::string(config, "cluster_id").unwrap_or_default(),
        name: attrs::string(config, "name").unwrap_or_default(),
        node_type,
        lat,
        lng,
        cpu_cores,
        memory_gb,
        storage_gb,
        gpu_count,
        gpu_model: attrs::string(&hw, "gpu_model"),
        limit_cpu,
        limit_memory_gb,
        limit_storage_gb,
        limit_network_mbps,
        capabilities,
        connectivity_type: attrs::string(&conn, "type"),
        bandwidth_gbps,
        hourly_cost,
        labels: attrs::string_map(config, "labels"),
    })
}

/// What the ledger books against: the limits, in the ledger's integer units.
pub fn ledger_capacity(node: &EdgeNode) -> ledger::Resources {
    ledger::Resources {
        cpu_millis: (node.limit_cpu * 1000.0).round() as u64,
        memory_mb: (node.limit_memory_gb * 1024.0).round() as u64,
        storage_gb: node.limit_storage_gb.floor() as u64,
        gpu: node.gpu_count,
        network_mbps: node.limit_network_mbps.round() as u64,
    }
}

/// The configuration without the attributes validation does not look at (ids and names may be
/// unknown until the cluster exists; the specs are what must be checked early).
fn checkable(config: &Value) -> Value {
    let mut c = config.clone();
    for name in ["id", "status", "cluster_id", "name"] {
        attrs::set(&mut c, name, Value::Null);
    }
    c
}

fn ledger_error(op: &str, err: &ledger::LedgerError) -> Diagnostic {
    Diagnostic::error(
        format!("Could not {op} the edge node's capacity"),
        err.to_string(),
    )
}

fn store_error(op: &str, err: &clouds::DriverError) -> Diagnostic {
    Diagnostic::error(format!("Could not {op} the edge node"), err.to_string())
}

/// On a Kubernetes site, the node's description goes onto the Node of the same name. A
/// cluster without that Node is an error: the node would be offered to placement while no
/// kubelet could run what lands on it.
async fn label_kube_node(ctx: &ProviderContext, node: &EdgeNode) -> Result<(), Diagnostic> {
    let Some(sites) = &ctx.edge_sites else {
        return Err(Diagnostic::attribute_error(
            AttributePath::root().attr("cluster_id"),
            "Kubernetes driver not available",
            "This node's cluster is a Kubernetes site, and this terraform-provider-hybrid binary was built without the Kubernetes driver (cargo feature `kubernetes`).",
        ));
    };
    match sites.label_node(node).await {
        Ok(()) => Ok(()),
        Err(clouds::DriverError::NotFound { .. }) => Err(Diagnostic::attribute_error(
            AttributePath::root().attr("name"),
            "Kubernetes Node not found",
            format!("The cluster {} has no Node named {:?}. The name of a hybrid_edge_node on a Kubernetes site must be the name of its Node (kubectl get nodes); join the node to the cluster first.", node.cluster_id, node.name),
        )),
        Err(err) => Err(Diagnostic::error(
            "Could not label the Kubernetes Node",
            format!("{err}. Running apply again retries."),
        )),
    }
}

/// The Kubernetes sites' driver when the node's cluster is a Kubernetes site and this build
/// has the driver; `None` otherwise.
fn kube_sites_of<'a>(
    ctx: &'a ProviderContext,
    node: &EdgeNode,
) -> Result<Option<&'a std::sync::Arc<dyn clouds::edge::EdgeSites>>, Diagnostic> {
    let kube = ctx
        .sim
        .edge_cluster(&node.cluster_id)
        .map_err(|e| store_error("read the cluster of", &e))?
        .is_some_and(|c| c.kubernetes.is_some());
    Ok(if kube { ctx.edge_sites.as_ref() } else { None })
}

/// The node's status as its read finds it on a Kubernetes site, with a warning that says what
/// changed outside Terraform: `ready`, `drifted` (labels or annotations of its description
/// missing or changed on the Node) or `node_missing`. `None` off Kubernetes sites (and in
/// builds without the driver), where the store is the whole truth.
async fn kube_node_status(
    ctx: &ProviderContext,
    node: &EdgeNode,
) -> Result<Option<(&'static str, Option<Diagnostic>)>, Diagnostic> {
    let Some(sites) = kube_sites_of(ctx, node)? else {
        return Ok(None);
    };
    let sync = sites.node_sync(node).await.map_err(|err| {
        Diagnostic::error(
            "Could not read the Kubernetes Node",
            format!(
                "Reading the Node {:?} of cluster {}: {err}.",
                node.name, node.cluster_id
            ),
        )
    })?;
    Ok(Some(match sync {
        NodeSync::InSync => ("ready", None),
        NodeSync::Drifted(keys) => (
            "drifted",
            Some(Diagnostic::warning(
                "Kubernetes Node changed outside Terraform",
                format!(
                    "The Node {:?} of cluster {} no longer carries this edge node's description: {} missing or changed. Apply puts them back; until then the Kubernetes scheduler may place this site's workloads without them.",
                    node.name,
                    node.cluster_id,
                    keys.join(", ")
                ),
            )),
        ),
        NodeSync::NodeMissing => (
            "node_missing",
            Some(Diagnostic::warning(
                "Kubernetes Node not found",
                format!(
                    "The cluster {} has no Node named {:?} any more. Apply fails until the node joins the cluster again, or remove this hybrid_edge_node from the configuration.",
                    node.cluster_id, node.name
                ),
            )),
        ),
    }))
}

/// Takes our labels off the node's Kubernetes Node, when its cluster is a Kubernetes site; a
/// Node that is already gone is fine.
async fn unlabel_kube_node(ctx: &ProviderContext, id: &str) -> Result<(), Diagnostic> {
    let Some(node) = ctx.sim.edge_node(id).map_err(|e| store_error("read", &e))? else {
        return Ok(());
    };
    let Some(sites) = kube_sites_of(ctx, &node)? else {
        return Ok(());
    };
    sites.unlabel_node(&node).await.map_err(|err| {
        Diagnostic::error(
            "Could not remove our labels from the Kubernetes Node",
            format!("{err}. Running destroy again retries."),
        )
    })
}

fn node_id(id: &str) -> Result<ledger::NodeId, Diagnostic> {
    ledger::NodeId::new(id).map_err(|e| ledger_error("register", &e))
}

#[async_trait]
impl Resource for EdgeNodeResource {
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
        crate::checks::map_keys(config, root().attr("labels"), "labels", None, &mut diags);
        if let Some(hw) = attrs::get(config, "hardware_specs") {
            crate::checks::non_empty(
                hw,
                root().attr("hardware_specs").attr("gpu_model"),
                "gpu_model",
                &mut diags,
            );
        }
        if let Some(id) = attrs::string(config, "cluster_id") {
            super::edge_cluster::check_cluster_id(
                &id,
                root().attr("cluster_id"),
                "cluster_id",
                &mut diags,
            );
        }
        let config = &checkable(config);
        if !config.is_known() {
            // Check what is known; unknown parts are checked at plan/apply.
            read_location(config, &mut diags);
            return diags;
        }
        diags.extend(
            node_from(config, Some((0.0, 0.0)))
                .err()
                .unwrap_or_default(),
        );
        diags
    }

    async fn plan(&self, ctx: &ProviderContext, req: PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        if req.proposed_new_state.is_null() {
            return resp;
        }
        let mut planned = req.proposed_new_state;
        let id = match (
            attrs::string(&planned, "cluster_id"),
            attrs::string(&planned, "name"),
        ) {
            (Some(c), Some(n)) => Value::string(stable_id("en-", &[TYPE_NAME, &c, &n])),
            _ => Value::Unknown,
        };
        attrs::set(&mut planned, "id", id);
        // A node its read found drifted (or its Node gone) plans an update back to ready: the
        // apply labels the Node again (or says it is missing).
        let status = match req.prior_state.get("status") {
            _ if req.prior_state.is_null() => Value::Unknown,
            Some(Value::String(s)) if s.as_str() != "ready" => Value::string("ready"),
            Some(v) => v.clone(),
            None => Value::Unknown,
        };
        attrs::set(&mut planned, "status", status);
        let checkable = checkable(&planned);
        if checkable.is_known() {
            let cluster = attrs::string(&planned, "cluster_id")
                .and_then(|c| ctx.sim.edge_cluster(&c).ok().flatten());
            if let Err(diags) = node_from(
                &planned,
                cluster.map(|c| (c.lat, c.lng)).or(Some((0.0, 0.0))),
            ) {
                resp.diagnostics = diags;
                return resp;
            }
        }
        if !req.prior_state.is_null() {
            resp.requires_replace
                .push(AttributePath::root().attr("cluster_id"));
            resp.requires_replace
                .push(AttributePath::root().attr("name"));
        }
        resp.planned_private = req.prior_private;
        resp.planned_state = planned;
        resp
    }

    async fn apply(&self, ctx: &ProviderContext, req: ApplyRequest) -> ApplyResponse {
        let mut resp = ApplyResponse {
            private: req.planned_private,
            new_state: req.prior_state.clone(),
            ..ApplyResponse::default()
        };
        if req.planned_state.is_null() {
            let id = attrs::string(&req.prior_state, "id").unwrap_or_default();
            let node = match node_id(&id) {
                Ok(n) => n,
                Err(d) => {
                    resp.diagnostics.push(d);
                    return resp;
                }
            };
            if let Err(d) = unlabel_kube_node(ctx, &id).await {
                resp.diagnostics.push(d);
                return resp;
            }
            if let Err(err) = ctx.ledger.remove_node(&node) {
                resp.diagnostics.push(ledger_error("remove", &err));
                return resp;
            }
            match ctx.sim.delete_edge_node(&id) {
                Ok(()) => resp.new_state = Value::Null,
                Err(err) => resp.diagnostics.push(store_error("delete", &err)),
            }
            return resp;
        }
        let cluster_id = attrs::string(&req.planned_state, "cluster_id").unwrap_or_default();
        let mut planned = req.planned_state;
        let name = attrs::string(&planned, "name").unwrap_or_default();
        attrs::set(
            &mut planned,
            "id",
            Value::string(stable_id("en-", &[TYPE_NAME, &cluster_id, &name])),
        );
        let cluster = match ctx.sim.edge_cluster(&cluster_id) {
            Ok(Some(c)) => c,
            Ok(None) => {
                resp.diagnostics.push(Diagnostic::attribute_error(
                    AttributePath::root().attr("cluster_id"),
                    "Unknown edge cluster",
                    format!("No hybrid_edge_cluster with id {cluster_id:?} exists."),
                ));
                return resp;
            }
            Err(err) => {
                resp.diagnostics
                    .push(store_error("read the cluster of", &err));
                return resp;
            }
        };
        let node = match node_from(&planned, Some((cluster.lat, cluster.lng))) {
            Ok(n) => n,
            Err(diags) => {
                resp.diagnostics = diags;
                return resp;
            }
        };
        let id = match node_id(&node.id) {
            Ok(n) => n,
            Err(d) => {
                resp.diagnostics.push(d);
                return resp;
            }
        };
        if cluster.kubernetes.is_some() {
            if let Err(d) = label_kube_node(ctx, &node).await {
                resp.diagnostics.push(d);
                return resp;
            }
        }
        // Capacity first: the node is offered to placement only once it is booked.
        if let Err(err) = ctx.ledger.set_capacity(&id, &ledger_capacity(&node)) {
            resp.diagnostics.push(ledger_error("register", &err));
            return resp;
        }
        match ctx.sim.put_edge_node(&node) {
            Ok(()) => {
                attrs::set(&mut planned, "status", Value::string("ready"));
                resp.new_state = planned;
            }
            Err(err) => resp.diagnostics.push(store_error("save", &err)),
        }
        resp
    }

    async fn read(&self, ctx: &ProviderContext, state: Value, private: Vec<u8>) -> ReadResponse {
        let mut resp = ReadResponse {
            private,
            new_state: state.clone(),
            ..ReadResponse::default()
        };
        let id = attrs::string(&state, "id").unwrap_or_default();
        match ctx.sim.edge_node(&id) {
            Ok(Some(node)) => match kube_node_status(ctx, &node).await {
                Ok(Some((status, warning))) => {
                    attrs::set(&mut resp.new_state, "status", Value::string(status));
                    resp.diagnostics.extend(warning);
                }
                Ok(None) => {}
                Err(d) => resp.diagnostics.push(d),
            },
            Ok(None) => resp.new_state = Value::Null,
            Err(err) => resp.diagnostics.push(store_error("read", &err)),
        }
        resp
    }

    async fn import(&self, ctx: &ProviderContext, id: &str) -> ImportResponse {
        let mut resp = ImportResponse::default();
        let node = match ctx.sim.edge_node(id) {
            Ok(Some(n)) => n,
            Ok(None) => {
                resp.diagnostics.push(Diagnostic::error(
                    "Cannot import non-existent edge node",
                    format!("No edge node with id {id:?} exists in the sim state."),
                ));
                return resp;
            }
            Err(err) => {
                resp.diagnostics.push(store_error("import", &err));
                return resp;
            }
        };
        let opt_map = |m: &BTreeMap<String, String>| {
            if m.is_empty() {
                Value::Null
            } else {
                attrs::string_map_value(m)
            }
        };
        // The store keeps resolved values; what equals the default it was resolved from is
        // given back as unset, so that a configuration leaving it out imports into an empty
        // plan (the common case; one that spells out a default sees a one-off diff).
        let unless = |value: f64, default: f64| {
            if value == default {
                Value::Null
            } else {
                attrs::num_value(Some(value))
            }
        };
        let block_or_null = |fields: Vec<(&'static str, Value)>| {
            if fields.iter().all(|(_, v)| v.is_null()) {
                Value::Null
            } else {
                Value::object(fields)
            }
        };
        let link_mbps = node.bandwidth_gbps.map(|b| b * 1000.0).unwrap_or(1000.0);
        let cluster_location = match ctx.sim.edge_cluster(&node.cluster_id) {
            Ok(Some(c)) => Some((c.lat, c.lng)),
            _ => None,
        };
        let location = if cluster_location == Some((node.lat, node.lng)) {
            Value::Null
        } else {
            Value::object([
                ("lat", attrs::num_value(Some(node.lat))),
                ("lng", attrs::num_value(Some(node.lng))),
            ])
        };
        resp.states.push(Value::object([
            ("id", Value::string(node.id.clone())),
            ("cluster_id", Value::string(node.cluster_id.clone())),
            ("name", Value::string(node.name.clone())),
            ("node_type", Value::string(node.node_type.clone())),
            (
                "capabilities",
                if node.capabilities.is_empty() {
                    Value::Null
                } else {
                    Value::set(node.capabilities.iter().cloned().map(Value::string))
                },
            ),
            ("hourly_cost", attrs::num_value(node.hourly_cost)),
            ("labels", opt_map(&node.labels)),
            ("status", Value::string("ready")),
            ("location", location),
            (
                "hardware_specs",
                Value::object([
                    ("cpu_cores", attrs::num_value(Some(node.cpu_cores))),
                    ("memory_gb", attrs::num_value(Some(node.memory_gb))),
                    ("storage_gb", unless(node.storage_gb, 0.0)),
                    ("gpu_count", unless(f64::from(node.gpu_count), 0.0)),
                    ("gpu_model", attrs::str_value(node.gpu_model.as_deref())),
                ]),
            ),
            (
                "resource_limits",
                block_or_null(vec![
                    ("cpu", unless(node.limit_cpu, node.cpu_cores)),
                    ("memory_gb", unless(node.limit_memory_gb, node.memory_gb)),
                    ("storage_gb", unless(node.limit_storage_gb, node.storage_gb)),
                    ("network_mbps", unless(node.limit_network_mbps, link_mbps)),
                ]),
            ),
            (
                "connectivity",
                block_or_null(vec![
                    ("type", attrs::str_value(node.connectivity_type.as_deref())),
                    ("bandwidth_gbps", attrs::num_value(node.bandwidth_gbps)),
                ]),
            ),
        ]));
        resp
    }

    fn upgrade(&self, version: i64, state_json: &[u8]) -> Result<Value, Diagnostics> {
        super::decode_stored_state(TYPE_NAME, &self.schema, version, state_json)
    }
}
