//! The `edge { ... }` block of `hybrid_workload`: spreading a workload's replicas over edge
//! nodes with one of the six distribution strategies (`placement::edge`), booked per node in
//! the capacity ledger.
//!
//! Without the block, an edge node is one more candidate of the general engine and takes all
//! replicas; with it, the workload is an edge workload: its replicas are distributed over the
//! nodes that pass its constraints (capabilities, node types, affinity labels, latency), never
//! past a node's free capacity, and `edge_assignments` in the plan says how many replicas go
//! where.

use std::collections::BTreeMap;

use placement::edge::{
    distribute, DistributionStrategy, EdgeDistribution, EdgeNode, EdgeRequest, EdgeResources,
    NodeType, RawEdgeRequest, ScalingPolicy,
};
use tfvalue::{Type, Value};

use super::ProviderContext;
use crate::attrs;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::engine_values::{field_errors, user_locations, whole};
use crate::schema::{Attr, Block, NestedBlock, Nesting};

/// The block's schema.
pub fn edge_block() -> NestedBlock {
    let scaling = NestedBlock {
        type_name: "scaling_policy",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                Attr::optional("enabled", Type::Bool, "Scale replicas with load (default true when the block is present)."),
                Attr::optional("min_replicas", Type::Number, "Fewest replicas (>= 0, <= max_replicas)."),
                Attr::optional("max_replicas", Type::Number, "Most replicas (>= 1)."),
                Attr::optional("cpu_threshold", Type::Number, "CPU utilisation that triggers scaling up, in (0, 1]."),
                Attr::optional("memory_threshold", Type::Number, "Memory utilisation that triggers scaling up, in (0, 1]."),
                Attr::optional("scale_up_cooldown", Type::Number, "Seconds between scale-ups (>= 0)."),
                Attr::optional("scale_down_cooldown", Type::Number, "Seconds between scale-downs (>= 0)."),
            ],
            blocks: Vec::new(),
            description: "How the replica count may follow load (validated; carried to the Kubernetes driver's autoscaler).",
        },
        min_items: 0,
        max_items: 1,
    };
    NestedBlock {
        type_name: "edge",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                Attr::optional("distribution_strategy", Type::String, "round_robin, least_loaded (default), capability_based, latency_aware, geographic or affinity_based."),
                Attr::optional("required_capabilities", Type::set(Type::String), "A node must offer all of these (ml_inference, real_time_processing, data_caching, ml_training, analytics, batch_processing)."),
                Attr::optional("preferred_capabilities", Type::set(Type::String), "Capabilities that make a node rank higher under capability_based (nodes without them stay eligible)."),
                Attr::optional("node_types", Type::set(Type::String), "Allowed node types (gateway, compute, storage, inference); empty means any."),
                Attr::optional("affinity_labels", Type::map(Type::String), "A node must carry every one of these labels."),
                Attr::optional("anti_affinity_labels", Type::map(Type::String), "A node must carry none of these labels."),
                Attr::optional("preferred_labels", Type::map(Type::String), "Labels that make a node rank higher under affinity_based (nodes without them stay eligible)."),
                Attr::optional("network_mbps", Type::Number, "Network bandwidth each replica needs, in Mbps; booked against the node's resource_limits.network_mbps."),
            ],
            blocks: vec![scaling],
            description: "Run this workload's replicas on edge nodes, spread by a distribution strategy.",
        },
        min_items: 0,
        max_items: 1,
    }
}

/// The computed `edge_assignments` element type.
pub fn assignment_type() -> Type {
    Type::object([
        ("node".to_string(), Type::String),
        ("cluster".to_string(), Type::String),
        ("replicas".to_string(), Type::Number),
    ])
}

/// The engine's error field names, as this resource's attribute paths.
const RENAMES: &[(&str, &str)] = &[
    ("edge.requests.cpu", "cpu"),
    ("edge.requests.memory_gb", "memory_gb"),
    ("edge.requests.storage_gb", "storage_gb"),
    ("edge.requests.network_mbps", "edge.network_mbps"),
    ("edge.constraints.max_latency_ms", "max_latency_ms"),
    (
        "edge.constraints.anti_affinity",
        "edge.anti_affinity_labels",
    ),
    ("edge.constraints", "edge"),
    ("edge.replicas", "replicas"),
    ("edge.user_locations", "user_locations"),
];

fn scaling_policy(block: &Value, diags: &mut Diagnostics) -> Option<ScalingPolicy> {
    let s = attrs::get(block, "scaling_policy")?;
    let d = ScalingPolicy::default();
    let policy = ScalingPolicy {
        enabled: attrs::boolean(s, "enabled").unwrap_or(true),
        min_replicas: whole(s, "min_replicas", diags).unwrap_or(d.min_replicas),
        max_replicas: whole(s, "max_replicas", diags).unwrap_or(d.max_replicas),
        cpu_threshold: attrs::number(s, "cpu_threshold").unwrap_or(d.cpu_threshold),
        memory_threshold: attrs::number(s, "memory_threshold").unwrap_or(d.memory_threshold),
        scale_up_cooldown: attrs::number(s, "scale_up_cooldown").unwrap_or(d.scale_up_cooldown),
        scale_down_cooldown: attrs::number(s, "scale_down_cooldown")
            .unwrap_or(d.scale_down_cooldown),
    };
    Some(policy)
}

/// The validated edge request of a workload whose `edge` block is set (`None` without one).
pub fn request(config: &Value) -> Result<Option<EdgeRequest>, Diagnostics> {
    let Some(block) = attrs::get(config, "edge") else {
        return Ok(None);
    };
    let mut diags = Diagnostics::new();
    let replicas = whole(config, "replicas", &mut diags);
    let policy = scaling_policy(block, &mut diags);
    let raw = RawEdgeRequest {
        cpu: attrs::number(config, "cpu"),
        memory_gb: attrs::number(config, "memory_gb"),
        storage_gb: attrs::number(config, "storage_gb"),
        network_mbps: attrs::number(block, "network_mbps"),
        required_capabilities: attrs::strings(block, "required_capabilities"),
        preferred_capabilities: attrs::strings(block, "preferred_capabilities"),
        max_latency_ms: attrs::number(config, "max_latency_ms"),
        node_types: attrs::strings(block, "node_types"),
        affinity: attrs::string_map(block, "affinity_labels"),
        anti_affinity: attrs::string_map(block, "anti_affinity_labels"),
        preferred_labels: attrs::string_map(block, "preferred_labels"),
        replicas,
        user_locations: user_locations(config),
        distribution_strategy: attrs::string(block, "distribution_strategy"),
    };
    let mut errors = Vec::new();
    if let Some(p) = &policy {
        errors.extend(p.validate());
    }
    let request = EdgeRequest::validate(&raw).map_err(|e| errors.extend(e));
    diags.extend(field_errors(errors, RENAMES));
    match request {
        Ok(r) if !diags.has_errors() => Ok(Some(r)),
        _ => Err(diags),
    }
}

/// A node's free capacity as `holder` sees it: what it already holds there counts as free.
pub fn free_for(usage: &ledger::NodeUsage, holder: Option<&str>) -> ledger::Resources {
    let own = ledger::Resources::sum(
        usage
            .holders
            .iter()
            .filter(|h| Some(h.holder.as_str()) == holder)
            .map(|h| &h.amounts),
    );
    usage.free.saturating_add(&own)
}

/// An edge node from the registry with its cluster and the capacity free for `holder`.
pub struct RegisteredNode {
    pub node: clouds::edge::EdgeNode,
    pub cluster: Option<clouds::edge::EdgeCluster>,
    pub free: ledger::Resources,
}

/// Registry nodes (optionally only those of `clusters`) with the capacity the ledger says is
/// free; what `holder` already holds counts as free for it, so a re-plan sees its own nodes as
/// they were. Nodes without registered capacity are left out: they cannot take anything.
pub fn registered_nodes(
    ctx: &ProviderContext,
    holder: Option<&str>,
    clusters: &[String],
) -> Result<Vec<RegisteredNode>, Diagnostic> {
    let records = ctx
        .sim
        .edge_nodes()
        .map_err(|e| Diagnostic::error("Could not list edge nodes", e.to_string()))?;
    let mut out = Vec::with_capacity(records.len());
    for node in records {
        if !clusters.is_empty() && !clusters.contains(&node.cluster_id) {
            continue;
        }
        let Ok(id) = ledger::NodeId::new(node.id.clone()) else {
            continue;
        };
        let usage = match ctx.ledger.usage(&id) {
            Ok(u) => u,
            Err(ledger::LedgerError::UnknownNode { .. }) => continue,
            Err(e) => {
                return Err(Diagnostic::error(
                    "Could not read edge capacity",
                    format!("{}: {e}", ctx.ledger.location()),
                ))
            }
        };
        let free = free_for(&usage, holder);
        let cluster = ctx.sim.edge_cluster(&node.cluster_id).ok().flatten();
        out.push(RegisteredNode {
            node,
            cluster,
            free,
        });
    }
    Ok(out)
}

/// Registry nodes as distribution candidates.
pub fn nodes(
    ctx: &ProviderContext,
    holder: Option<&str>,
    clusters: &[String],
) -> Result<Vec<EdgeNode>, Diagnostic> {
    let mut out = Vec::new();
    for RegisteredNode {
        node: n,
        cluster,
        free,
    } in registered_nodes(ctx, holder, clusters)?
    {
        let node_type = NodeType::parse(&n.node_type).unwrap_or(NodeType::Compute);
        let mut node = EdgeNode::new(
            &n.id,
            node_type,
            n.lat,
            n.lng,
            EdgeResources::new(
                free.cpu_millis as f64 / 1000.0,
                free.memory_mb as f64 / 1024.0,
                free.storage_gb as f64,
                free.network_mbps as f64,
            ),
        );
        node.cluster = n.cluster_id.clone();
        node.region = cluster.map(|c| c.geographic_region).unwrap_or_default();
        node.capabilities = n
            .capabilities
            .iter()
            .filter_map(|c| placement::edge::Capability::parse(c))
            .collect();
        node.labels = n.labels.clone();
        node.bandwidth_gbps = n.bandwidth_gbps.unwrap_or(0.0);
        node.hourly_cost = n.hourly_cost;
        out.push(node);
    }
    Ok(out)
}

/// The placement object and `edge_assignments` for a distribution.
pub fn values(dist: &EdgeDistribution, nodes: &[EdgeNode]) -> (Value, Value) {
    let by_id: BTreeMap<&str, &EdgeNode> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let first = dist.assignments.first();
    let first_node = first.and_then(|a| by_id.get(a.node_id.as_str()));
    let cost: Option<f64> = dist
        .assignments
        .iter()
        .map(|a| {
            by_id
                .get(a.node_id.as_str())
                .and_then(|n| n.hourly_cost)
                .map(|c| c * f64::from(a.replicas))
        })
        .sum();
    let spread: Vec<String> = dist
        .assignments
        .iter()
        .map(|a| format!("{}×{}", a.node_id, a.replicas))
        .collect();
    let reason = format!(
        "{}: {} replica(s) on {} edge node(s) [{}]; {} of {} nodes meet the constraints",
        strategy_name(dist.strategy),
        dist.total,
        dist.assignments.len(),
        spread.join(", "),
        dist.feasible,
        dist.considered
    );
    let placement = Value::object([
        ("provider", Value::string("edge")),
        (
            "region",
            Value::string(first_node.map(|n| n.region.clone()).unwrap_or_default()),
        ),
        ("zone", Value::Null),
        ("node", attrs::str_value(first.map(|a| a.node_id.as_str()))),
        ("instance_type", Value::Null),
        (
            "estimated_cost_hourly",
            attrs::num_value(cost.map(|c| attrs::round(c, 4))),
        ),
        (
            "estimated_latency_ms",
            attrs::num_value(dist.mean_latency_ms.map(|ms| attrs::round(ms, 1))),
        ),
        ("score", Value::Null),
        ("scores", Value::Null),
        ("reason", Value::string(reason)),
    ]);
    let assignments = Value::list(dist.assignments.iter().map(|a| {
        Value::object([
            ("node", Value::string(a.node_id.clone())),
            (
                "cluster",
                Value::string(
                    by_id
                        .get(a.node_id.as_str())
                        .map(|n| n.cluster.clone())
                        .unwrap_or_default(),
                ),
            ),
            ("replicas", Value::number(i64::from(a.replicas))),
        ])
    }));
    (placement, assignments)
}

fn strategy_name(s: DistributionStrategy) -> &'static str {
    s.as_str()
}

/// Runs the distribution for a plan.
pub fn plan(
    ctx: &ProviderContext,
    config: &Value,
    request: &EdgeRequest,
    holder: Option<&str>,
) -> Result<(Value, Value), Diagnostic> {
    let clusters = attrs::strings(config, "edge_cluster_ids");
    let nodes = nodes(ctx, holder, &clusters)?;
    match distribute(&nodes, request, &ctx.catalog.latency) {
        Ok(dist) => Ok(values(&dist, &nodes)),
        Err(shortfall) => Err(Diagnostic::error(
            "Not all replicas fit on the edge nodes",
            shortfall.to_string(),
        )),
    }
}

/// `n` replicas' worth of the per-replica request `name`, in ledger units (`unit` per input
/// unit), rounded up so a booking never undercounts.
pub fn scaled(planned: &Value, name: &str, unit: f64, n: f64) -> u64 {
    (attrs::number(planned, name).unwrap_or(0.0).max(0.0) * unit * n).ceil() as u64
}

/// Per-node amounts to book for the planned `edge_assignments`.
pub fn bookings(planned: &Value) -> Vec<(String, ledger::Resources)> {
    let per = |name: &str, unit: f64, n: f64| scaled(planned, name, unit, n);
    let network = attrs::get(planned, "edge")
        .and_then(|e| attrs::number(e, "network_mbps"))
        .unwrap_or(0.0)
        .max(0.0);
    attrs::get(planned, "edge_assignments")
        .and_then(|v| v.as_elements())
        .unwrap_or(&[])
        .iter()
        .filter_map(|a| {
            let node = attrs::string(a, "node")?;
            let n = attrs::number(a, "replicas")?.max(0.0);
            Some((
                node,
                ledger::Resources {
                    cpu_millis: per("cpu", 1000.0, n),
                    memory_mb: per("memory_gb", 1024.0, n),
                    storage_gb: per("storage_gb", 1.0, n),
                    gpu: 0,
                    network_mbps: (network * n).ceil() as u64,
                },
            ))
        })
        .collect()
}
