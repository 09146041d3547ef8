//! The one fit / constraint filter every strategy and the batch mode share.

use super::model::{Capability, EdgeNode, EdgeRequest, EdgeResources, NodeType};
use crate::candidates::{great_circle_km, rtt_ms};
use crate::requirements::UserLocation;
use catalog::LatencyModel;
use std::fmt;

/// Why an edge node cannot take even one replica. Checked in this order; only the first
/// failure of a node is reported and counted.
#[derive(Clone, Debug, PartialEq)]
pub enum EdgeRejection {
    /// Cordoned / offline.
    Unschedulable,
    /// The node's type is not in `node_types`.
    NodeType(NodeType),
    /// The first required capability (in `Capability::ALL` order) the node lacks.
    MissingCapability(Capability),
    /// The first affinity label (key order) the node does not carry.
    Affinity {
        label: String,
    },
    /// The first anti-affinity label (key order) the node carries.
    AntiAffinity {
        label: String,
    },
    /// Worst RTT to any user location exceeds `max_latency_ms`.
    OverLatency {
        ms: f64,
        max: f64,
    },
    InsufficientCpu,
    InsufficientMemory,
    InsufficientStorage,
    InsufficientNetwork,
}

impl fmt::Display for EdgeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdgeRejection::Unschedulable => f.write_str("not schedulable"),
            EdgeRejection::NodeType(t) => write!(f, "wrong node type ({t})"),
            EdgeRejection::MissingCapability(c) => write!(f, "missing capability {c}"),
            EdgeRejection::Affinity { label } => write!(f, "lacks affinity label {label}"),
            EdgeRejection::AntiAffinity { label } => {
                write!(f, "carries anti-affinity label {label}")
            }
            EdgeRejection::OverLatency { ms, max } => {
                write!(f, "{ms:.1} ms exceeds max latency {max:.1} ms")
            }
            EdgeRejection::InsufficientCpu => f.write_str("insufficient cpu"),
            EdgeRejection::InsufficientMemory => f.write_str("insufficient memory"),
            EdgeRejection::InsufficientStorage => f.write_str("insufficient storage"),
            EdgeRejection::InsufficientNetwork => f.write_str("insufficient network"),
        }
    }
}

/// How many nodes failed on each check (first failure only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeRejectionCounts {
    pub unschedulable: usize,
    pub node_type: usize,
    /// Indexed like `Capability::ALL`.
    pub missing_capability: [usize; 6],
    pub affinity: usize,
    pub anti_affinity: usize,
    pub over_latency: usize,
    pub insufficient_cpu: usize,
    pub insufficient_memory: usize,
    pub insufficient_storage: usize,
    pub insufficient_network: usize,
}

impl EdgeRejectionCounts {
    pub fn add(&mut self, r: &EdgeRejection) {
        match r {
            EdgeRejection::Unschedulable => self.unschedulable += 1,
            EdgeRejection::NodeType(_) => self.node_type += 1,
            EdgeRejection::MissingCapability(c) => self.missing_capability[c.index()] += 1,
            EdgeRejection::Affinity { .. } => self.affinity += 1,
            EdgeRejection::AntiAffinity { .. } => self.anti_affinity += 1,
            EdgeRejection::OverLatency { .. } => self.over_latency += 1,
            EdgeRejection::InsufficientCpu => self.insufficient_cpu += 1,
            EdgeRejection::InsufficientMemory => self.insufficient_memory += 1,
            EdgeRejection::InsufficientStorage => self.insufficient_storage += 1,
            EdgeRejection::InsufficientNetwork => self.insufficient_network += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.phrase_counts().iter().map(|(n, _)| n).sum()
    }

    fn phrase_counts(&self) -> Vec<(usize, String)> {
        let mut v = vec![
            (self.unschedulable, "not schedulable".to_string()),
            (self.node_type, "wrong node type".to_string()),
        ];
        for c in Capability::ALL {
            v.push((
                self.missing_capability[c.index()],
                format!("missing capability {c}"),
            ));
        }
        v.extend([
            (self.affinity, "affinity labels missing".to_string()),
            (
                self.anti_affinity,
                "anti-affinity label present".to_string(),
            ),
            (self.over_latency, "over max latency".to_string()),
            (self.insufficient_cpu, "insufficient cpu".to_string()),
            (self.insufficient_memory, "insufficient memory".to_string()),
            (
                self.insufficient_storage,
                "insufficient storage".to_string(),
            ),
            (
                self.insufficient_network,
                "insufficient network".to_string(),
            ),
        ]);
        v
    }

    /// `["2 wrong node type", "1 insufficient memory"]`, non-zero counts in check order.
    pub fn phrases(&self) -> Vec<String> {
        self.phrase_counts()
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, p)| format!("{n} {p}"))
            .collect()
    }
}

/// A node that passed the filter.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct NodeFit {
    /// How many replicas the node's free capacity holds (>= 1), capped at `u32::MAX`.
    pub max_replicas: u32,
    /// Weighted mean RTT to the user locations (`None` without user locations).
    pub mean_rtt_ms: Option<f64>,
    /// Worst RTT to any user location (`None` without user locations).
    pub worst_rtt_ms: Option<f64>,
}

/// Relative tolerance of the capacity division, so `3 × 0.1` fits in `0.3`.
const FIT_EPS: f64 = 1e-9;

/// How many replicas of `req` fit into `free`: `min over resources with a request > 0 of
/// floor(free / request + 1e-9)`; a non-finite or negative free amount counts as 0. Returns
/// the count and, when it is 0, the index (cpu, memory, storage, network) of the first
/// resource that cannot hold one replica.
pub fn replica_capacity(free: &EdgeResources, req: &EdgeResources) -> (u32, Option<usize>) {
    let mut best = u32::MAX as f64;
    let mut first_short = None;
    for (i, (f, r)) in free.as_array().into_iter().zip(req.as_array()).enumerate() {
        if r.is_nan() || r <= 0.0 || !r.is_finite() {
            continue;
        }
        let f = if f.is_nan() || f < 0.0 { 0.0 } else { f };
        let k = (f / r + FIT_EPS).floor();
        if k < 1.0 && first_short.is_none() {
            first_short = Some(i);
        }
        best = best.min(k);
    }
    (best.clamp(0.0, u32::MAX as f64) as u32, first_short)
}

/// Weighted mean and worst RTT from `users` to a point (the catalog's model).
pub fn user_rtt(
    model: &LatencyModel,
    users: &[UserLocation],
    lat: f64,
    lng: f64,
) -> Option<(f64, f64)> {
    if users.is_empty() {
        return None;
    }
    let (mut sum, mut wsum, mut worst) = (0.0, 0.0, f64::NEG_INFINITY);
    for u in users {
        let ms = rtt_ms(model, great_circle_km(u.lat, u.lng, lat, lng));
        sum += u.weight * ms;
        wsum += u.weight;
        worst = worst.max(ms);
    }
    let mean = if wsum > 0.0 { sum / wsum } else { worst };
    Some((mean, worst))
}

/// The shared filter: node type, capabilities, affinity, anti-affinity, latency, then
/// capacity (cpu, memory, storage, network) for ONE replica.
pub fn check_node(
    node: &EdgeNode,
    req: &EdgeRequest,
    model: &LatencyModel,
) -> Result<NodeFit, EdgeRejection> {
    check_node_with(node, req, || {
        user_rtt(model, &req.user_locations, node.lat, node.lng)
    })
}

/// [`check_node`] with the RTT computation supplied (the batch mode uses precomputed
/// trigonometry that gives bit-identical values).
pub(crate) fn check_node_with(
    node: &EdgeNode,
    req: &EdgeRequest,
    rtt: impl FnOnce() -> Option<(f64, f64)>,
) -> Result<NodeFit, EdgeRejection> {
    if !node.schedulable {
        return Err(EdgeRejection::Unschedulable);
    }
    if !req.node_types.is_empty() && !req.node_types.contains(&node.node_type) {
        return Err(EdgeRejection::NodeType(node.node_type));
    }
    if let Some(c) = req
        .required_capabilities
        .iter()
        .find(|c| !node.capabilities.contains(c))
    {
        return Err(EdgeRejection::MissingCapability(*c));
    }
    if let Some((k, v)) = req
        .affinity
        .iter()
        .find(|(k, v)| node.labels.get(*k) != Some(*v))
    {
        return Err(EdgeRejection::Affinity {
            label: format!("{k}={v}"),
        });
    }
    if let Some((k, v)) = req
        .anti_affinity
        .iter()
        .find(|(k, v)| node.labels.get(*k) == Some(*v))
    {
        return Err(EdgeRejection::AntiAffinity {
            label: format!("{k}={v}"),
        });
    }
    let rtt = rtt();
    if let (Some(max), Some((_, worst))) = (req.max_latency_ms, rtt) {
        // `!(<=)` also rejects a NaN RTT (node with a non-finite location).
        if worst.is_nan() || worst > max {
            return Err(EdgeRejection::OverLatency { ms: worst, max });
        }
    }
    let (max_replicas, short) = replica_capacity(&node.free, &req.requests);
    if max_replicas == 0 {
        return Err(match short {
            Some(1) => EdgeRejection::InsufficientMemory,
            Some(2) => EdgeRejection::InsufficientStorage,
            Some(3) => EdgeRejection::InsufficientNetwork,
            _ => EdgeRejection::InsufficientCpu,
        });
    }
    Ok(NodeFit {
        max_replicas,
        mean_rtt_ms: rtt.map(|r| r.0),
        worst_rtt_ms: rtt.map(|r| r.1),
    })
}

/// A point with its latitude in radians and the latitude's cosine precomputed.
#[derive(Copy, Clone, Debug)]
pub(crate) struct GeoPoint {
    lat_rad: f64,
    cos_lat: f64,
    lng: f64,
}

impl GeoPoint {
    pub(crate) fn new(lat: f64, lng: f64) -> GeoPoint {
        let lat_rad = lat.to_radians();
        GeoPoint {
            lat_rad,
            cos_lat: lat_rad.cos(),
            lng,
        }
    }

    /// Exactly `great_circle_km(self, other)` (same operations in the same order).
    pub(crate) fn km_to(&self, other: &GeoPoint) -> f64 {
        let dp = other.lat_rad - self.lat_rad;
        let dl = (other.lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + self.cos_lat * other.cos_lat * (dl / 2.0).sin().powi(2);
        2.0 * crate::candidates::EARTH_RADIUS_KM * a.clamp(0.0, 1.0).sqrt().asin()
    }
}

/// [`user_rtt`] over precomputed points (bit-identical).
pub(crate) fn user_rtt_pre(
    model: &LatencyModel,
    users: &[(GeoPoint, f64)],
    node: &GeoPoint,
) -> Option<(f64, f64)> {
    if users.is_empty() {
        return None;
    }
    let (mut sum, mut wsum, mut worst) = (0.0, 0.0, f64::NEG_INFINITY);
    for (u, weight) in users {
        let ms = rtt_ms(model, u.km_to(node));
        sum += weight * ms;
        wsum += weight;
        worst = worst.max(ms);
    }
    let mean = if wsum > 0.0 { sum / wsum } else { worst };
    Some((mean, worst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidates::great_circle_km;

    #[test]
    fn precomputed_distance_is_bit_identical() {
        let pts = [
            (48.1, 11.6),
            (-33.9, 151.2),
            (40.7, -74.0),
            (0.0, 180.0),
            (0.0, -180.0),
            (89.9, 0.1),
            (-90.0, 45.0),
        ];
        for a in pts {
            for b in pts {
                let fast = GeoPoint::new(a.0, a.1).km_to(&GeoPoint::new(b.0, b.1));
                let slow = great_circle_km(a.0, a.1, b.0, b.1);
                assert_eq!(fast.to_bits(), slow.to_bits(), "{a:?} {b:?}");
            }
        }
    }
}
