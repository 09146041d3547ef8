//! The six distribution strategies (rules in the [`crate::edge`] module docs).

use super::filter::{check_node, EdgeRejectionCounts};
use super::model::{utilisation, DistributionStrategy, EdgeNode, EdgeRequest};
use crate::candidates::{great_circle_km, rtt_ms};
use catalog::LatencyModel;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// Replicas on one node, with the one-line reason.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeAssignment {
    pub node_id: String,
    pub replicas: u32,
    pub reason: String,
}

/// The outcome of [`distribute`] (also carried, partial, by [`EdgeShortfall`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeDistribution {
    pub strategy: DistributionStrategy,
    /// One entry per node that got replicas, in node-id order.
    pub assignments: Vec<NodeAssignment>,
    /// `replica_nodes[i]` = node id of replica `i`, in placement order.
    pub replica_nodes: Vec<String>,
    /// Replicas placed.
    pub total: u32,
    /// Mean over placed replicas of their node's weighted mean RTT to the user locations.
    pub mean_latency_ms: Option<f64>,
    pub considered: usize,
    pub feasible: usize,
    pub rejected: EdgeRejectionCounts,
}

/// Not all requested replicas fit. `Display` says how many did and why the others did not.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeShortfall {
    pub requested: u32,
    pub placed: u32,
    /// Feasible nodes that are full after placement (every feasible node, since placement
    /// only stops when none has room).
    pub exhausted_nodes: usize,
    /// For the exhausted nodes: how many are limited by cpu, memory, storage, network.
    pub exhausted_by: [usize; 4],
    /// What did fit (`partial.rejected` holds the rejection counts).
    pub partial: Box<EdgeDistribution>,
}

impl fmt::Display for EdgeShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.partial;
        write!(
            f,
            "only {} of {} replicas fit on {} edge node(s)",
            self.placed, self.requested, p.considered
        )?;
        let mut parts = Vec::new();
        if p.feasible > 0 {
            let by: Vec<String> = ["cpu", "memory", "storage", "network"]
                .iter()
                .zip(self.exhausted_by)
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| format!("{n} by {r}"))
                .collect();
            parts.push(format!(
                "capacity exhausted on all {} feasible node(s) ({})",
                self.exhausted_nodes,
                by.join(", ")
            ));
        } else {
            parts.push("no feasible node".to_string());
        }
        let rej = p.rejected.phrases();
        if !rej.is_empty() {
            parts.push(format!(
                "{} node(s) rejected: {}",
                p.rejected.total(),
                rej.join(", ")
            ));
        }
        write!(f, ": {}", parts.join("; "))
    }
}

impl std::error::Error for EdgeShortfall {}

/// Per feasible node state while placing.
struct Slot<'a> {
    node: &'a EdgeNode,
    cap: u32,
    used: u32,
    rtt: Option<f64>,
    /// rank keys computed once
    type_affinity: usize,
    pref_caps: usize,
    pref_labels: usize,
    group: usize,
    /// per resource (cpu, memory, storage, network): the binding one when full
    binding: usize,
}

impl Slot<'_> {
    fn room(&self) -> bool {
        self.used < self.cap
    }
    /// Utilisation (max of cpu, memory) with `k` of this request's replicas added.
    fn util_with(&self, req: &EdgeRequest, k: u32) -> f64 {
        let k = f64::from(k);
        let n = self.node;
        utilisation(n.limits.cpu, n.free.cpu, k * req.requests.cpu).max(utilisation(
            n.limits.memory_gb,
            n.free.memory_gb,
            k * req.requests.memory_gb,
        ))
    }
    fn util_after(&self, req: &EdgeRequest) -> f64 {
        self.util_with(req, self.used + 1)
    }
}

fn cmp_f(a: f64, b: f64) -> Ordering {
    a.total_cmp(&b)
}

/// Geographic group key of a node: its region, or a 1°×1° lat/lng cell.
pub(crate) fn group_key(node: &EdgeNode) -> String {
    if !node.region.trim().is_empty() {
        format!("region {}", node.region.trim())
    } else {
        let cell = |v: f64| if v.is_finite() { v.floor() as i64 } else { 0 };
        format!("cell {:+},{:+}", cell(node.lat), cell(node.lng))
    }
}

/// Distributes `req.replicas` replicas over `nodes` with `req.strategy`. Deterministic and
/// independent of the order of `nodes` (ties by node id; ids should be unique, see
/// [`super::validate_nodes`]).
pub fn distribute(
    nodes: &[EdgeNode],
    req: &EdgeRequest,
    latency: &LatencyModel,
) -> Result<EdgeDistribution, EdgeShortfall> {
    let mut sorted: Vec<&EdgeNode> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));

    let mut rejected = EdgeRejectionCounts::default();
    let mut slots: Vec<Slot> = Vec::new();
    let affine: Vec<_> = req
        .required_capabilities
        .iter()
        .map(|c| c.affine_node_type())
        .collect();
    for node in sorted {
        match check_node(node, req, latency) {
            Err(r) => rejected.add(&r),
            Ok(fit) => slots.push(Slot {
                node,
                cap: fit.max_replicas.min(req.replicas),
                used: 0,
                rtt: fit.mean_rtt_ms,
                type_affinity: affine.iter().filter(|t| **t == node.node_type).count(),
                pref_caps: req
                    .preferred_capabilities
                    .iter()
                    .filter(|c| node.capabilities.contains(c))
                    .count(),
                pref_labels: req
                    .preferred_labels
                    .iter()
                    .filter(|(k, v)| node.labels.get(*k) == Some(*v))
                    .count(),
                group: 0,
                binding: 0,
            }),
        }
    }

    // Geographic groups, in visiting order.
    let mut groups: Vec<(String, f64, f64)> = Vec::new(); // (key, covered weight, best rtt)
    if req.strategy == DistributionStrategy::Geographic {
        let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, s) in slots.iter().enumerate() {
            by_key.entry(group_key(s.node)).or_default().push(i);
        }
        for (g, (key, members)) in by_key.iter().enumerate() {
            let best = members
                .iter()
                .filter_map(|&i| slots[i].rtt)
                .fold(f64::INFINITY, f64::min);
            for &i in members {
                slots[i].group = g;
            }
            groups.push((key.clone(), 0.0, best));
        }
        // Each user location credits its weight to the group of its nearest feasible node.
        for u in &req.user_locations {
            let nearest = slots
                .iter()
                .map(|s| {
                    (
                        rtt_ms(
                            latency,
                            great_circle_km(u.lat, u.lng, s.node.lat, s.node.lng),
                        ),
                        s.group,
                    )
                })
                .min_by(|a, b| cmp_f(a.0, b.0).then(a.1.cmp(&b.1)));
            if let Some((_, g)) = nearest {
                groups[g].1 += u.weight;
            }
        }
    }
    let mut group_order: Vec<usize> = (0..groups.len()).collect();
    group_order.sort_by(|&a, &b| {
        cmp_f(groups[b].1, groups[a].1)
            .then(cmp_f(groups[a].2, groups[b].2))
            .then(groups[a].0.cmp(&groups[b].0))
    });
    let mut group_rank = vec![0usize; groups.len()];
    for (r, &g) in group_order.iter().enumerate() {
        group_rank[g] = r;
    }

    // Static orders.
    let mut by_latency: Vec<usize> = (0..slots.len()).collect();
    by_latency.sort_by(|&a, &b| {
        cmp_f(slots[a].rtt.unwrap_or(0.0), slots[b].rtt.unwrap_or(0.0))
            .then(slots[a].node.id.cmp(&slots[b].node.id))
    });
    let mut latency_rank = vec![0usize; slots.len()];
    for (r, &i) in by_latency.iter().enumerate() {
        latency_rank[i] = r;
    }

    let mut replica_nodes: Vec<usize> = Vec::new();
    let mut rr_cursor = 0usize;
    let mut geo_cursor = 0usize;
    for _ in 0..req.replicas {
        let pick = match req.strategy {
            DistributionStrategy::RoundRobin => {
                let n = slots.len();
                let found = (0..n)
                    .map(|k| (rr_cursor + k) % n)
                    .find(|&i| slots[i].room());
                if let Some(i) = found {
                    rr_cursor = (i + 1) % n.max(1);
                }
                found
            }
            DistributionStrategy::LatencyAware => {
                by_latency.iter().copied().find(|&i| slots[i].room())
            }
            DistributionStrategy::LeastLoaded => {
                best_by(&slots, |a, b| cmp_f(a.util_after(req), b.util_after(req)))
            }
            DistributionStrategy::CapabilityBased => best_by(&slots, |a, b| {
                b.type_affinity
                    .cmp(&a.type_affinity)
                    .then(b.pref_caps.cmp(&a.pref_caps))
                    .then(cmp_f(a.util_after(req), b.util_after(req)))
            }),
            DistributionStrategy::AffinityBased => best_by(&slots, |a, b| {
                b.pref_labels
                    .cmp(&a.pref_labels)
                    .then(cmp_f(a.util_after(req), b.util_after(req)))
            }),
            DistributionStrategy::Geographic => {
                let ng = group_order.len();
                let mut found = None;
                for k in 0..ng {
                    let g = group_order[(geo_cursor + k) % ng];
                    let inside = best_by_filtered(
                        &slots,
                        |s| s.group == g,
                        |a, b| {
                            cmp_f(a.util_after(req), b.util_after(req))
                                .then(cmp_f(a.rtt.unwrap_or(0.0), b.rtt.unwrap_or(0.0)))
                        },
                    );
                    if let Some(i) = inside {
                        geo_cursor = (geo_cursor + k + 1) % ng;
                        found = Some(i);
                        break;
                    }
                }
                found
            }
        };
        let Some(i) = pick else { break };
        slots[i].used += 1;
        replica_nodes.push(i);
    }

    let total = replica_nodes.len() as u32;
    let mean_latency_ms = if req.user_locations.is_empty() || total == 0 {
        None
    } else {
        Some(
            replica_nodes
                .iter()
                .map(|&i| slots[i].rtt.unwrap_or(0.0))
                .sum::<f64>()
                / f64::from(total),
        )
    };
    let feasible = slots.len();
    let assignments = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.used > 0)
        .map(|(i, s)| NodeAssignment {
            node_id: s.node.id.clone(),
            replicas: s.used,
            reason: reason(req, s, latency_rank[i], feasible, &groups, &group_rank),
        })
        .collect();
    let dist = EdgeDistribution {
        strategy: req.strategy,
        assignments,
        replica_nodes: replica_nodes
            .iter()
            .map(|&i| slots[i].node.id.clone())
            .collect(),
        total,
        mean_latency_ms,
        considered: nodes.len(),
        feasible,
        rejected,
    };
    if total >= req.replicas {
        return Ok(dist);
    }
    let mut exhausted_by = [0usize; 4];
    for s in slots.iter_mut() {
        s.binding = binding_resource(s.node, req, s.used);
        exhausted_by[s.binding] += 1;
    }
    Err(EdgeShortfall {
        requested: req.replicas,
        placed: total,
        exhausted_nodes: feasible,
        exhausted_by,
        partial: Box::new(dist),
    })
}

/// Which resource (cpu, memory, storage, network) stops one more replica after `used`.
fn binding_resource(node: &EdgeNode, req: &EdgeRequest, used: u32) -> usize {
    let next = f64::from(used) + 1.0;
    node.free
        .as_array()
        .into_iter()
        .zip(req.requests.as_array())
        .position(|(f, r)| {
            let k = f / r + 1e-9;
            r > 0.0 && (k.is_nan() || k < next)
        })
        .unwrap_or(0)
}

/// Index of the slot with room that is smallest by `cmp`, ties by node id (slots are in id
/// order, so the first minimum wins).
fn best_by(slots: &[Slot], cmp: impl Fn(&Slot, &Slot) -> Ordering) -> Option<usize> {
    best_by_filtered(slots, |_| true, cmp)
}

fn best_by_filtered(
    slots: &[Slot],
    keep: impl Fn(&Slot) -> bool,
    cmp: impl Fn(&Slot, &Slot) -> Ordering,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, s) in slots.iter().enumerate() {
        if !s.room() || !keep(s) {
            continue;
        }
        best = match best {
            Some(b) if cmp(s, &slots[b]) != Ordering::Less => Some(b),
            _ => Some(i),
        };
    }
    best
}

fn reason(
    req: &EdgeRequest,
    s: &Slot,
    lat_rank: usize,
    feasible: usize,
    groups: &[(String, f64, f64)],
    group_rank: &[usize],
) -> String {
    let n = s.used;
    let plural = if n == 1 { "replica" } else { "replicas" };
    let load = format!(
        "load {:.0}% -> {:.0}%",
        s.util_with(req, 0) * 100.0,
        s.util_with(req, n) * 100.0
    );
    let lat = s
        .rtt
        .map(|ms| format!("; {ms:.1} ms to users"))
        .unwrap_or_default();
    match req.strategy {
        DistributionStrategy::RoundRobin => {
            format!("round_robin: {n} {plural} in node-id rotation over {feasible} feasible node(s); {load}{lat}")
        }
        DistributionStrategy::LeastLoaded => {
            format!("least_loaded: {n} {plural}, lowest utilisation after placement; {load}{lat}")
        }
        DistributionStrategy::CapabilityBased => {
            let types = if req.required_capabilities.is_empty() {
                String::new()
            } else {
                format!(
                    "node type {} matches {} of {} required capabilities; ",
                    s.node.node_type,
                    s.type_affinity,
                    req.required_capabilities.len()
                )
            };
            format!(
                "capability_based: {n} {plural}; {types}{} of {} preferred capabilities; {load}{lat}",
                s.pref_caps,
                req.preferred_capabilities.len()
            )
        }
        DistributionStrategy::LatencyAware => format!(
            "latency_aware: {n} {plural}; nearest-first rank {} of {feasible}{lat}",
            lat_rank + 1
        ),
        DistributionStrategy::Geographic => {
            let (key, covered, _) = &groups[s.group];
            format!(
                "geographic: {n} {plural} in {key} (group {} of {}, nearest group for user weight {covered}); {load}{lat}",
                group_rank[s.group] + 1,
                groups.len()
            )
        }
        DistributionStrategy::AffinityBased => format!(
            "affinity_based: {n} {plural}; matches {} of {} preferred labels; {load}{lat}",
            s.pref_labels,
            req.preferred_labels.len()
        ),
    }
}
