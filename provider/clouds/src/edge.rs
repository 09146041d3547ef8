//! Edge sites as the sim cloud knows them: clusters and their nodes.
//!
//! `hybrid_edge_cluster` and `hybrid_edge_node` describe real sites; with the sim driver the
//! description itself is the site, stored in the same SQLite file as the sim instances and the
//! capacity ledger, so every workspace using that file sees the same nodes (which is what lets
//! one workspace place workloads on nodes another workspace declared). Free capacity is not
//! here: it is the ledger's (limits minus reservations).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Driver, DriverError};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeCluster {
    pub id: String,
    pub name: String,
    pub geographic_region: String,
    pub lat: f64,
    pub lng: f64,
    pub distribution_strategy: String,
    pub labels: BTreeMap<String, String>,
    /// Set when the site is a Kubernetes cluster that workloads and node labels go to;
    /// `None`: the sim store is the site. Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeSite>,
}

/// How to reach a site's Kubernetes API. Never holds a secret: a bearer token comes from the
/// cluster's `token` attribute as this process saw it ([`SiteTokens`]), from `$KUBE_TOKEN`, or
/// from the kubeconfig, and is not written to the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeSite {
    pub kubeconfig_path: Option<String>,
    /// The kubeconfig context; its current context when `None`.
    pub context: Option<String>,
    /// The API server URL, when no kubeconfig is used.
    pub host: Option<String>,
    /// Where Deployments and autoscalers go; the context's namespace, else `default`, when
    /// `None`.
    pub namespace: Option<String>,
    /// Skip TLS certificate verification (for lab clusters with self-signed certificates).
    #[serde(default)]
    pub insecure: bool,
    /// The configuration gave a token (its value is kept only in memory).
    #[serde(default)]
    pub token_in_config: bool,
}

/// Bearer tokens from clusters' `token` attributes, by cluster id, as this provider process has
/// been sent them. Memory only.
#[derive(Default)]
pub struct SiteTokens(Mutex<BTreeMap<String, String>>);

impl SiteTokens {
    pub fn remember(&self, cluster_id: &str, token: Option<&str>) {
        if let Ok(mut tokens) = self.0.lock() {
            match token {
                Some(t) => tokens.insert(cluster_id.to_string(), t.to_string()),
                None => tokens.remove(cluster_id),
            };
        }
    }

    pub fn get(&self, cluster_id: &str) -> Option<String> {
        self.0.lock().ok()?.get(cluster_id).cloned()
    }
}

impl std::fmt::Debug for SiteTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteTokens(<redacted>)")
    }
}

/// What the resources need from the driver of Kubernetes edge sites beyond [`Driver`]: one
/// place that knows every site, so that `hybrid_edge_node` can label its Node and
/// `hybrid_edge_cluster` can hand over its token. Implemented by the `kubernetes` feature.
#[async_trait]
pub trait EdgeSites: Send + Sync {
    /// The driver that provisions workloads on any Kubernetes site (instance ids name the site).
    fn driver(self: Arc<Self>) -> Arc<dyn Driver>;
    /// The bearer token from a cluster's configuration (`None`: it has none).
    fn remember_token(&self, cluster_id: &str, token: Option<&str>);
    /// Puts the node's description (type, capabilities, location, labels) on its Kubernetes
    /// Node; `NotFound` when the cluster has no Node of that name.
    async fn label_node(&self, node: &EdgeNode) -> Result<(), DriverError>;
    /// Takes back every label and annotation [`EdgeSites::label_node`] set; a missing Node is
    /// success.
    async fn unlabel_node(&self, node: &EdgeNode) -> Result<(), DriverError>;
    /// Checks that the site answers (its namespace can be listed), for the cluster resource.
    async fn check(&self, cluster: &EdgeCluster) -> Result<(), DriverError>;
    /// How the node's Kubernetes Node compares with the description
    /// [`EdgeSites::label_node`] puts on it, for the node's read (drift).
    async fn node_sync(&self, node: &EdgeNode) -> Result<NodeSync, DriverError>;
}

/// What a read finds on an edge node's Kubernetes Node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeSync {
    /// Every label and annotation of the node's description is there, with its value.
    InSync,
    /// These keys of the description are missing or hold another value (changed outside
    /// Terraform); the node's next apply puts them back.
    Drifted(Vec<String>),
    /// The cluster has no Node of that name any more.
    NodeMissing,
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
