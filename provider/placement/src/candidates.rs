//! Candidates beyond the catalog (edge / on-prem nodes) and the geometry shared by all
//! candidates (great-circle distance, the catalog's RTT model).
//!
//! Cloud candidates are the catalog's offers themselves and are never copied: the engine
//! iterates `Catalog::offers` with precomputed per-region and per-type facts. Edge nodes are
//! supplied by the caller (later: `hybrid_edge_node` resources and their capacity ledger), so
//! [`EdgeCandidate`] carries everything the filter and the scores need.

use crate::requirements::Provider;
use catalog::{Compliance, LatencyModel};

/// An edge or on-prem node the caller offers as a candidate. Free resources are what is left
/// after the ledger's existing allocations.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeCandidate {
    /// Stable identifier (used for ties, stickiness and `Placement::node`).
    pub id: String,
    /// `Provider::Edge` or `Provider::Onprem` (a cloud provider here is treated like edge).
    pub provider: Provider,
    pub cluster: String,
    pub name: String,
    pub lat: f64,
    pub lng: f64,
    pub free_cpu: f64,
    pub free_memory_gb: f64,
    pub free_storage_gb: f64,
    pub free_gpu: u32,
    pub gpu_model: Option<String>,
    /// Configured cost per replica-hour, if the operator set one. `None` is "unknown", never $0.
    pub hourly_cost: Option<f64>,
    /// Free-form region label, e.g. `factory-munich`; shown as `Placement::region`.
    pub region: String,
    /// ISO country code.
    pub country: String,
    /// Jurisdiction tokens, e.g. `["EU"]`.
    pub jurisdictions: Vec<String>,
    pub compliance: Vec<Compliance>,
    /// False when the node is cordoned / offline: rejected with `Rejection::NoCapacity`.
    pub schedulable: bool,
}

impl EdgeCandidate {
    /// A schedulable edge node with no GPU, no cost and no compliance; fill the rest as needed.
    pub fn new(
        id: &str,
        region: &str,
        country: &str,
        lat: f64,
        lng: f64,
        free_cpu: f64,
        free_memory_gb: f64,
    ) -> Self {
        EdgeCandidate {
            id: id.to_string(),
            provider: Provider::Edge,
            cluster: String::new(),
            name: id.to_string(),
            lat,
            lng,
            free_cpu,
            free_memory_gb,
            free_storage_gb: f64::INFINITY,
            free_gpu: 0,
            gpu_model: None,
            hourly_cost: None,
            region: region.to_string(),
            country: country.to_string(),
            jurisdictions: Vec::new(),
            compliance: Vec::new(),
            schedulable: true,
        }
    }
}

/// Mean Earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Haversine great-circle distance in km. Total for any finite input (clamps rounding).
pub fn great_circle_km(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.clamp(0.0, 1.0).sqrt().asin()
}

/// `rtt_ms = 2 * km / fibre_km_per_ms * route_factor + base_ms` (the catalog's model).
pub fn rtt_ms(model: &LatencyModel, km: f64) -> f64 {
    let speed = if model.fibre_km_per_ms > 0.0 {
        model.fibre_km_per_ms
    } else {
        200.0
    };
    2.0 * km / speed * model.route_factor + model.base_ms
}
