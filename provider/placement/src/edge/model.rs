//! Edge inputs: nodes, the workload's edge request, the scaling policy, and their validation.
//!
//! Every user-controlled number goes through a `validate` function that collects *all*
//! problems as [`FieldError`]s naming the attribute path (`edge.requests.cpu`,
//! `edge.user_locations[0].lat`, `edge.scaling_policy.min_replicas`, ...), never panicking on
//! NaN, infinities or negative values.

use crate::requirements::{FieldError, RawUserLocation, UserLocation};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What an edge node is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeType {
    Gateway,
    Compute,
    Storage,
    Inference,
}

impl NodeType {
    pub const ALL: [NodeType; 4] = [
        NodeType::Gateway,
        NodeType::Compute,
        NodeType::Storage,
        NodeType::Inference,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Gateway => "gateway",
            NodeType::Compute => "compute",
            NodeType::Storage => "storage",
            NodeType::Inference => "inference",
        }
    }

    /// Case-insensitive.
    pub fn parse(text: &str) -> Option<NodeType> {
        NodeType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for NodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability an edge node advertises.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    MlInference,
    RealTimeProcessing,
    DataCaching,
    MlTraining,
    Analytics,
    BatchProcessing,
}

impl Capability {
    pub const ALL: [Capability; 6] = [
        Capability::MlInference,
        Capability::RealTimeProcessing,
        Capability::DataCaching,
        Capability::MlTraining,
        Capability::Analytics,
        Capability::BatchProcessing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::MlInference => "ml_inference",
            Capability::RealTimeProcessing => "real_time_processing",
            Capability::DataCaching => "data_caching",
            Capability::MlTraining => "ml_training",
            Capability::Analytics => "analytics",
            Capability::BatchProcessing => "batch_processing",
        }
    }

    /// Case-insensitive; `-` and `_` are interchangeable.
    pub fn parse(text: &str) -> Option<Capability> {
        let norm = text.trim().replace('-', "_");
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(&norm))
    }

    /// The node type a workload needing this capability is best served by (used by
    /// `capability_based`): ml_inference → inference, data_caching → storage,
    /// real_time_processing → gateway, ml_training / analytics / batch_processing → compute.
    pub fn affine_node_type(self) -> NodeType {
        match self {
            Capability::MlInference => NodeType::Inference,
            Capability::DataCaching => NodeType::Storage,
            Capability::RealTimeProcessing => NodeType::Gateway,
            Capability::MlTraining | Capability::Analytics | Capability::BatchProcessing => {
                NodeType::Compute
            }
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Amounts of the four schedulable edge resources (per replica in a request; free or limit on
/// a node).
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct EdgeResources {
    pub cpu: f64,
    pub memory_gb: f64,
    pub storage_gb: f64,
    pub network_mbps: f64,
}

impl EdgeResources {
    pub fn new(cpu: f64, memory_gb: f64, storage_gb: f64, network_mbps: f64) -> EdgeResources {
        EdgeResources {
            cpu,
            memory_gb,
            storage_gb,
            network_mbps,
        }
    }

    /// In the fixed order cpu, memory, storage, network.
    pub fn as_array(&self) -> [f64; 4] {
        [self.cpu, self.memory_gb, self.storage_gb, self.network_mbps]
    }

    /// `limits - reserved` per resource, never below 0 (NaN becomes 0).
    pub fn saturating_sub(&self, reserved: &EdgeResources) -> EdgeResources {
        let s = |a: f64, b: f64| {
            let v = a - b;
            if v > 0.0 {
                v
            } else {
                0.0
            }
        };
        EdgeResources {
            cpu: s(self.cpu, reserved.cpu),
            memory_gb: s(self.memory_gb, reserved.memory_gb),
            storage_gb: s(self.storage_gb, reserved.storage_gb),
            network_mbps: s(self.network_mbps, reserved.network_mbps),
        }
    }
}

pub(crate) const RESOURCE_NAMES: [&str; 4] = ["cpu", "memory_gb", "storage_gb", "network_mbps"];

/// One edge node as the distribution strategies see it. `free` is what the capacity ledger
/// leaves (`limits - reserved`); `limits` is used only for utilisation (`current_load`).
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeNode {
    /// Stable, unique identifier; every tie is broken by it.
    pub id: String,
    pub cluster: String,
    /// The cluster's geographic region (e.g. `eu-munich`); empty when unknown, in which case
    /// `geographic` groups by a 1°×1° lat/lng cell.
    pub region: String,
    pub node_type: NodeType,
    pub lat: f64,
    pub lng: f64,
    pub capabilities: BTreeSet<Capability>,
    pub labels: BTreeMap<String, String>,
    /// Connectivity (informational; `free.network_mbps` is what the filter checks).
    pub bandwidth_gbps: f64,
    pub limits: EdgeResources,
    pub free: EdgeResources,
    pub free_gpu: u32,
    /// Configured cost per replica-hour; `None` is unknown (never $0).
    pub hourly_cost: Option<f64>,
    /// False when cordoned / offline.
    pub schedulable: bool,
}

impl EdgeNode {
    /// A schedulable node with `limits == free` (empty load), no labels, capabilities or cost.
    pub fn new(id: &str, node_type: NodeType, lat: f64, lng: f64, free: EdgeResources) -> Self {
        EdgeNode {
            id: id.to_string(),
            cluster: String::new(),
            region: String::new(),
            node_type,
            lat,
            lng,
            capabilities: BTreeSet::new(),
            labels: BTreeMap::new(),
            bandwidth_gbps: free.network_mbps / 1000.0,
            limits: free,
            free,
            free_gpu: 0,
            hourly_cost: None,
            schedulable: true,
        }
    }

    /// Sets `limits` and derives `free = limits - reserved` (the ledger's view).
    pub fn with_ledger(mut self, limits: EdgeResources, reserved: EdgeResources) -> Self {
        self.limits = limits;
        self.free = limits.saturating_sub(&reserved);
        self
    }
    pub fn with_capabilities(mut self, caps: &[Capability]) -> Self {
        self.capabilities = caps.iter().copied().collect();
        self
    }
    pub fn with_labels(mut self, labels: &[(&str, &str)]) -> Self {
        self.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }
    pub fn with_region(mut self, cluster: &str, region: &str) -> Self {
        self.cluster = cluster.to_string();
        self.region = region.to_string();
        self
    }
    pub fn with_cost(mut self, usd_per_hour: f64) -> Self {
        self.hourly_cost = Some(usd_per_hour);
        self
    }

    /// `used / limit`, the max over cpu and memory (`used = limit - free`), in `[0, 1]`;
    /// 1 when a limit is missing (0, negative or not finite).
    pub fn current_load(&self) -> f64 {
        utilisation(self.limits.cpu, self.free.cpu, 0.0).max(utilisation(
            self.limits.memory_gb,
            self.free.memory_gb,
            0.0,
        ))
    }

    /// Checks the node's numbers; `path` is the attribute prefix, e.g. `edge_nodes[3]`.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.id.trim().is_empty() {
            errs.push(FieldError::new(format!("{path}.id"), "must not be empty"));
        }
        if !self.lat.is_finite() || !(-90.0..=90.0).contains(&self.lat) {
            errs.push(FieldError::new(
                format!("{path}.location.lat"),
                format!("must be within [-90, 90], got {}", self.lat),
            ));
        }
        if !self.lng.is_finite() || !(-180.0..=180.0).contains(&self.lng) {
            errs.push(FieldError::new(
                format!("{path}.location.lng"),
                format!("must be within [-180, 180], got {}", self.lng),
            ));
        }
        non_negative(
            &format!("{path}.connectivity.bandwidth_gbps"),
            self.bandwidth_gbps,
            &mut errs,
        );
        for (name, (limit, free)) in RESOURCE_NAMES
            .iter()
            .zip(self.limits.as_array().into_iter().zip(self.free.as_array()))
        {
            non_negative(&format!("{path}.limits.{name}"), limit, &mut errs);
            non_negative(&format!("{path}.free.{name}"), free, &mut errs);
            if limit.is_finite() && free.is_finite() && free > limit + 1e-9 {
                errs.push(FieldError::new(
                    format!("{path}.free.{name}"),
                    format!("must not exceed the limit {limit}, got {free}"),
                ));
            }
        }
        if let Some(c) = self.hourly_cost {
            non_negative(&format!("{path}.hourly_cost"), c, &mut errs);
        }
        errs
    }
}

/// Validates every node and that ids are unique (`edge_nodes[i]...`).
pub fn validate_nodes(nodes: &[EdgeNode]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        errs.extend(n.validate(&format!("edge_nodes[{i}]")));
        if let Some(j) = seen.insert(n.id.as_str(), i) {
            errs.push(FieldError::new(
                format!("edge_nodes[{i}].id"),
                format!("duplicate id {:?} (also edge_nodes[{j}])", n.id),
            ));
        }
    }
    errs
}

/// `(limit - free + extra) / limit` clamped to `[0, 1]`-ish (may exceed 1 only if `extra`
/// exceeds `free`, which callers never do); 1 for a missing limit.
pub(crate) fn utilisation(limit: f64, free: f64, extra: f64) -> f64 {
    let free = if free.is_finite() && free > 0.0 {
        free
    } else {
        0.0
    };
    let limit = if limit.is_finite() && limit >= free {
        limit
    } else {
        free
    };
    if limit <= 0.0 {
        return 1.0;
    }
    ((limit - free + extra) / limit).max(0.0)
}

fn non_negative(field: &str, v: f64, errs: &mut Vec<FieldError>) {
    if !v.is_finite() || v < 0.0 {
        errs.push(FieldError::new(
            field,
            format!("must be a finite number >= 0, got {v}"),
        ));
    }
}

/// How replicas are spread over the feasible edge nodes (see the module docs of
/// [`crate::edge`] for each rule).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum DistributionStrategy {
    RoundRobin,
    #[default]
    LeastLoaded,
    CapabilityBased,
    LatencyAware,
    Geographic,
    AffinityBased,
}

impl DistributionStrategy {
    pub const ALL: [DistributionStrategy; 6] = [
        DistributionStrategy::RoundRobin,
        DistributionStrategy::LeastLoaded,
        DistributionStrategy::CapabilityBased,
        DistributionStrategy::LatencyAware,
        DistributionStrategy::Geographic,
        DistributionStrategy::AffinityBased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DistributionStrategy::RoundRobin => "round_robin",
            DistributionStrategy::LeastLoaded => "least_loaded",
            DistributionStrategy::CapabilityBased => "capability_based",
            DistributionStrategy::LatencyAware => "latency_aware",
            DistributionStrategy::Geographic => "geographic",
            DistributionStrategy::AffinityBased => "affinity_based",
        }
    }

    /// Case-insensitive; accepts `capability` / `affinity` for the `_based` names and `-`
    /// for `_`.
    pub fn parse(text: &str) -> Option<DistributionStrategy> {
        let norm = text.trim().to_ascii_lowercase().replace('-', "_");
        match norm.as_str() {
            "capability" => Some(DistributionStrategy::CapabilityBased),
            "affinity" => Some(DistributionStrategy::AffinityBased),
            _ => DistributionStrategy::ALL
                .into_iter()
                .find(|s| s.as_str() == norm),
        }
    }
}

impl fmt::Display for DistributionStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The edge block of a workload exactly as decoded (possibly invalid).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawEdgeRequest {
    pub cpu: Option<f64>,
    pub memory_gb: Option<f64>,
    pub storage_gb: Option<f64>,
    pub network_mbps: Option<f64>,
    pub required_capabilities: Vec<String>,
    pub preferred_capabilities: Vec<String>,
    pub max_latency_ms: Option<f64>,
    pub node_types: Vec<String>,
    pub affinity: BTreeMap<String, String>,
    pub anti_affinity: BTreeMap<String, String>,
    pub preferred_labels: BTreeMap<String, String>,
    pub replicas: Option<i64>,
    pub user_locations: Vec<RawUserLocation>,
    pub distribution_strategy: Option<String>,
}

/// A validated edge request. Build with [`EdgeRequest::validate`] (user input) or
/// [`EdgeRequest::new`] plus the `with_*` builders (already-valid values).
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeRequest {
    /// Per replica; cpu and memory > 0, storage and network >= 0.
    pub requests: EdgeResources,
    /// Hard: a node must have all of them.
    pub required_capabilities: BTreeSet<Capability>,
    /// Soft, used by `capability_based` only.
    pub preferred_capabilities: BTreeSet<Capability>,
    /// Hard: worst RTT to any user location must not exceed it.
    pub max_latency_ms: Option<f64>,
    /// Hard: empty = any type.
    pub node_types: BTreeSet<NodeType>,
    /// Hard: a node must carry every one of these labels (key and value).
    pub affinity: BTreeMap<String, String>,
    /// Hard: a node must carry none of these labels (key and value).
    pub anti_affinity: BTreeMap<String, String>,
    /// Soft, used by `affinity_based` only.
    pub preferred_labels: BTreeMap<String, String>,
    /// >= 1.
    pub replicas: u32,
    pub user_locations: Vec<UserLocation>,
    pub strategy: DistributionStrategy,
}

impl EdgeRequest {
    /// `replicas` replicas of `cpu` / `memory_gb` each, no other constraint, `least_loaded`.
    pub fn new(cpu: f64, memory_gb: f64, replicas: u32) -> EdgeRequest {
        EdgeRequest {
            requests: EdgeResources::new(cpu, memory_gb, 0.0, 0.0),
            required_capabilities: BTreeSet::new(),
            preferred_capabilities: BTreeSet::new(),
            max_latency_ms: None,
            node_types: BTreeSet::new(),
            affinity: BTreeMap::new(),
            anti_affinity: BTreeMap::new(),
            preferred_labels: BTreeMap::new(),
            replicas,
            user_locations: Vec::new(),
            strategy: DistributionStrategy::default(),
        }
    }
    pub fn with_strategy(mut self, s: DistributionStrategy) -> Self {
        self.strategy = s;
        self
    }
    pub fn with_storage_network(mut self, storage_gb: f64, network_mbps: f64) -> Self {
        self.requests.storage_gb = storage_gb;
        self.requests.network_mbps = network_mbps;
        self
    }
    pub fn with_required(mut self, caps: &[Capability]) -> Self {
        self.required_capabilities = caps.iter().copied().collect();
        self
    }
    pub fn with_preferred_capabilities(mut self, caps: &[Capability]) -> Self {
        self.preferred_capabilities = caps.iter().copied().collect();
        self
    }
    pub fn with_node_types(mut self, types: &[NodeType]) -> Self {
        self.node_types = types.iter().copied().collect();
        self
    }
    pub fn with_max_latency_ms(mut self, ms: f64) -> Self {
        self.max_latency_ms = Some(ms);
        self
    }
    pub fn with_users(mut self, users: &[UserLocation]) -> Self {
        self.user_locations = users.to_vec();
        self
    }
    pub fn with_affinity(mut self, labels: &[(&str, &str)]) -> Self {
        self.affinity = to_map(labels);
        self
    }
    pub fn with_anti_affinity(mut self, labels: &[(&str, &str)]) -> Self {
        self.anti_affinity = to_map(labels);
        self
    }
    pub fn with_preferred_labels(mut self, labels: &[(&str, &str)]) -> Self {
        self.preferred_labels = to_map(labels);
        self
    }

    /// Validates the raw edge block; returns every problem, in attribute order.
    pub fn validate(raw: &RawEdgeRequest) -> Result<EdgeRequest, Vec<FieldError>> {
        let mut errs = Vec::new();
        let cpu = positive("edge.requests.cpu", raw.cpu, &mut errs);
        let memory_gb = positive("edge.requests.memory_gb", raw.memory_gb, &mut errs);
        let storage_gb =
            optional_non_negative("edge.requests.storage_gb", raw.storage_gb, &mut errs);
        let network_mbps =
            optional_non_negative("edge.requests.network_mbps", raw.network_mbps, &mut errs);

        let caps = |name: &str, list: &[String], errs: &mut Vec<FieldError>| {
            let mut out = BTreeSet::new();
            for (i, c) in list.iter().enumerate() {
                match Capability::parse(c) {
                    Some(c) => {
                        out.insert(c);
                    }
                    None => errs.push(FieldError::new(
                        format!("{name}[{i}]"),
                        format!(
                            "unknown capability {c:?}; expected one of ml_inference, real_time_processing, data_caching, ml_training, analytics, batch_processing"
                        ),
                    )),
                }
            }
            out
        };
        let required_capabilities = caps(
            "edge.constraints.required_capabilities",
            &raw.required_capabilities,
            &mut errs,
        );
        let max_latency_ms = match raw.max_latency_ms {
            Some(x) if !x.is_finite() || x <= 0.0 => {
                errs.push(FieldError::new(
                    "edge.constraints.max_latency_ms",
                    format!("must be a finite number > 0, got {x}"),
                ));
                None
            }
            other => other,
        };
        let mut node_types = BTreeSet::new();
        for (i, t) in raw.node_types.iter().enumerate() {
            match NodeType::parse(t) {
                Some(t) => {
                    node_types.insert(t);
                }
                None => errs.push(FieldError::new(
                    format!("edge.constraints.node_types[{i}]"),
                    format!(
                        "unknown node type {t:?}; expected one of gateway, compute, storage, inference"
                    ),
                )),
            }
        }
        for (k, v) in &raw.affinity {
            if raw.anti_affinity.get(k) == Some(v) {
                errs.push(FieldError::new(
                    format!("edge.constraints.anti_affinity.{k}"),
                    format!("{k}={v} is also required by affinity; no node can satisfy both"),
                ));
            }
        }
        let preferred_capabilities = caps(
            "edge.preferred_capabilities",
            &raw.preferred_capabilities,
            &mut errs,
        );
        let replicas = match raw.replicas {
            None => 1,
            Some(n) if !(1..=u32::MAX as i64).contains(&n) => {
                errs.push(FieldError::new(
                    "edge.replicas",
                    format!("must be >= 1, got {n}"),
                ));
                1
            }
            Some(n) => n as u32,
        };
        let user_locations = crate::requirements::validate_user_locations(
            &raw.user_locations,
            "edge.user_locations",
            &mut errs,
        );
        let strategy = match raw.distribution_strategy.as_deref() {
            None => DistributionStrategy::default(),
            Some(s) => DistributionStrategy::parse(s).unwrap_or_else(|| {
                errs.push(FieldError::new(
                    "edge.distribution_strategy",
                    format!(
                        "unknown strategy {s:?}; expected round_robin, least_loaded, capability_based, latency_aware, geographic or affinity_based"
                    ),
                ));
                DistributionStrategy::default()
            }),
        };
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(EdgeRequest {
            requests: EdgeResources::new(cpu, memory_gb, storage_gb, network_mbps),
            required_capabilities,
            preferred_capabilities,
            max_latency_ms,
            node_types,
            affinity: raw.affinity.clone(),
            anti_affinity: raw.anti_affinity.clone(),
            preferred_labels: raw.preferred_labels.clone(),
            replicas,
            user_locations,
            strategy,
        })
    }
}

fn to_map(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn positive(name: &str, v: Option<f64>, errs: &mut Vec<FieldError>) -> f64 {
    match v {
        None => {
            errs.push(FieldError::new(name, "is required"));
            0.0
        }
        Some(x) if !x.is_finite() || x <= 0.0 => {
            errs.push(FieldError::new(
                name,
                format!("must be a finite number > 0, got {x}"),
            ));
            0.0
        }
        Some(x) => x,
    }
}

fn optional_non_negative(name: &str, v: Option<f64>, errs: &mut Vec<FieldError>) -> f64 {
    match v {
        None => 0.0,
        Some(x) if !x.is_finite() || x < 0.0 => {
            errs.push(FieldError::new(
                name,
                format!("must be a finite number >= 0, got {x}"),
            ));
            0.0
        }
        Some(x) => x,
    }
}

/// Horizontal autoscaling policy of an edge workload, as written (validated by
/// [`ScalingPolicy::validate`]). Thresholds are utilisation fractions; cooldowns are seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingPolicy {
    pub enabled: bool,
    pub min_replicas: i64,
    pub max_replicas: i64,
    pub cpu_threshold: f64,
    pub memory_threshold: f64,
    pub scale_up_cooldown: f64,
    pub scale_down_cooldown: f64,
}

impl Default for ScalingPolicy {
    fn default() -> Self {
        ScalingPolicy {
            enabled: false,
            min_replicas: 1,
            max_replicas: 10,
            cpu_threshold: 0.8,
            memory_threshold: 0.8,
            scale_up_cooldown: 60.0,
            scale_down_cooldown: 300.0,
        }
    }
}

impl ScalingPolicy {
    /// Every problem as a [`FieldError`] under `edge.scaling_policy.*` (checked whether or
    /// not `enabled`): `0 <= min_replicas <= max_replicas`, `max_replicas >= 1`, thresholds in
    /// `(0, 1]`, cooldowns finite and `>= 0`. Empty when valid.
    pub fn validate(&self) -> Vec<FieldError> {
        const P: &str = "edge.scaling_policy";
        let mut errs = Vec::new();
        if self.min_replicas < 0 {
            errs.push(FieldError::new(
                format!("{P}.min_replicas"),
                format!("must be >= 0, got {}", self.min_replicas),
            ));
        }
        if self.max_replicas < 1 {
            errs.push(FieldError::new(
                format!("{P}.max_replicas"),
                format!("must be >= 1, got {}", self.max_replicas),
            ));
        }
        if self.min_replicas > self.max_replicas {
            errs.push(FieldError::new(
                format!("{P}.min_replicas"),
                format!(
                    "must be <= max_replicas ({}), got {}",
                    self.max_replicas, self.min_replicas
                ),
            ));
        }
        for (name, v) in [
            ("cpu_threshold", self.cpu_threshold),
            ("memory_threshold", self.memory_threshold),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                errs.push(FieldError::new(
                    format!("{P}.{name}"),
                    format!("must be in (0, 1], got {v}"),
                ));
            }
        }
        for (name, v) in [
            ("scale_up_cooldown", self.scale_up_cooldown),
            ("scale_down_cooldown", self.scale_down_cooldown),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                errs.push(FieldError::new(
                    format!("{P}.{name}"),
                    format!("must be a finite number of seconds >= 0, got {v}"),
                ));
            }
        }
        errs
    }
}
