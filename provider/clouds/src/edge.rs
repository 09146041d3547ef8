//! Edge sites as the sim cloud knows them: clusters and their nodes.
//!
//! `hybrid_edge_cluster` and `hybrid_edge_node` describe real sites; with the sim driver the
//! description itself is the site, stored in the same SQLite file as the sim instances and the
//! capacity ledger, so every workspace using that file sees the same nodes (which is what lets
//! one workspace place workloads on nodes another workspace declared). Free capacity is not
//! here: it is the ledger's (limits minus reservations).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeCluster {
    pub id: String,
    pub name: String,
    pub geographic_region: String,
    pub lat: f64,
    pub lng: f64,
    pub distribution_strategy: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeNode {
    pub id: String,
    pub cluster_id: String,
    pub name: String,
    /// gateway, compute, storage or inference.
    pub node_type: String,
    pub lat: f64,
    pub lng: f64,
    /// What the hardware has.
    pub cpu_cores: f64,
    pub memory_gb: f64,
    pub storage_gb: f64,
    pub gpu_count: u32,
    pub gpu_model: Option<String>,
    /// What workloads may use (<= hardware); the ledger's capacity for the node.
    pub limit_cpu: f64,
    pub limit_memory_gb: f64,
    pub limit_storage_gb: f64,
    pub limit_network_mbps: f64,
    pub capabilities: Vec<String>,
    pub connectivity_type: Option<String>,
    pub bandwidth_gbps: Option<f64>,
    /// Amortised cost the operator assigns to running one replica-hour here, if any.
    pub hourly_cost: Option<f64>,
    pub labels: BTreeMap<String, String>,
}
