//! The registry of one provider process: the product guide's metric names, each recorded where
//! the thing it counts really happens (see `docs/architecture.md`, "Metrics").

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::TelemetryError;

/// Every metric family this crate registers (the names rules and dashboards may use).
pub const METRIC_NAMES: [&str; 9] = [
    "cloud_operations_total",
    "workload_placements_total",
    "cloud_costs_hourly",
    "cloud_latency_seconds",
    "edge_operations_total",
    "edge_workloads_active",
    "edge_nodes_active",
    "edge_latency_seconds",
    "edge_resource_utilization",
];

/// Names from the product guide that are deliberately not emitted, with the reason: nothing in
/// the provider measures them yet, and a metric that is always zero would mislead an operator.
pub const NOT_EMITTED: [(&str, &str); 1] = [(
    "edge_bandwidth_utilization",
    "no traffic is measured on edge links; booked bandwidth is edge_resource_utilization{resource=\"network\"}",
)];

/// `target_cloud` of a workload whose placement failed (no feasible candidate, or the planned
/// placement could not be provisioned).
pub const PLACEMENT_FAILED: &str = "none";

/// Driver operation durations: API calls take milliseconds to minutes.
const OPERATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Estimated user latency of edge placements: edge sites are meant to be within a few ms.
const EDGE_LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0,
];

/// What one workload costs where it is placed.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadCost {
    pub provider: String,
    pub region: String,
    pub hourly: f64,
}

/// The metrics of this process. Cheap to record into from any thread.
pub struct Metrics {
    registry: Registry,
    cloud_operations: IntCounterVec,
    workload_placements: IntCounterVec,
    cloud_costs_hourly: GaugeVec,
    cloud_latency: HistogramVec,
    edge_operations: IntCounterVec,
    edge_workloads_active: IntGaugeVec,
    edge_nodes_active: IntGaugeVec,
    edge_latency: Histogram,
    edge_resource_utilization: GaugeVec,
    /// The cost of each workload seen, by workload id; `cloud_costs_hourly` is their sum per
    /// provider and region (so a workload planned twice counts once).
    costs: Mutex<BTreeMap<String, WorkloadCost>>,
    /// How many things were recorded: zero means this process has nothing to report.
    recorded: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("recorded", &self.recorded())
            .finish_non_exhaustive()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric =
        IntCounterVec::new(Opts::new(name, help), labels).expect("constant metric descriptor");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are registered once");
    metric
}

fn int_gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric =
        IntGaugeVec::new(Opts::new(name, help), labels).expect("constant metric descriptor");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let metric = GaugeVec::new(Opts::new(name, help), labels).expect("constant metric descriptor");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are registered once");
    metric
}

impl Metrics {
    /// A fresh registry with every family of [`METRIC_NAMES`]. The descriptors are constants
    /// (checked by this crate's tests), so building them cannot fail at run time.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let cloud_operations = counter(
            &registry,
            "cloud_operations_total",
            "Cloud driver calls made by this provider process, by driver, operation and outcome (success, or the error kind).",
            &["provider", "operation", "status"],
        );
        let workload_placements = counter(
            &registry,
            "workload_placements_total",
            "Workload placements provisioned by apply, by the cloud chosen (\"none\" when the placement failed) and the strategy.",
            &["target_cloud", "strategy"],
        );
        let cloud_costs_hourly = gauge(
            &registry,
            "cloud_costs_hourly",
            "Estimated hourly cost in USD of the workloads this process planned or provisioned, from catalog prices, by chosen provider and region.",
            &["provider", "region"],
        );
        let cloud_latency = HistogramVec::new(
            HistogramOpts::new(
                "cloud_latency_seconds",
                "Duration of cloud driver calls (one observation per attempt), by driver and operation.",
            )
            .buckets(OPERATION_BUCKETS.to_vec()),
            &["provider", "operation"],
        )
        .expect("constant metric descriptor");
        registry
            .register(Box::new(cloud_latency.clone()))
            .expect("metric names are registered once");
        let edge_operations = counter(
            &registry,
            "edge_operations_total",
            "Edge cluster, node and capacity-booking operations applied, by cluster id.",
            &["cluster"],
        );
        let edge_workloads_active = int_gauge(
            &registry,
            "edge_workloads_active",
            "Workloads holding a capacity reservation on an edge node, from the capacity ledger.",
            &["cluster", "node"],
        );
        let edge_nodes_active = int_gauge(
            &registry,
            "edge_nodes_active",
            "1 when an edge node is registered, ready and its capacity is in the ledger (offered to placement); 0 when Terraform has it but its registration or capacity is gone.",
            &["cluster", "node"],
        );
        let edge_latency = Histogram::with_opts(
            HistogramOpts::new(
                "edge_latency_seconds",
                "Estimated latency to users of the edge placements planned (the catalog's latency model, not a probe).",
            )
            .buckets(EDGE_LATENCY_BUCKETS.to_vec()),
        )
        .expect("constant metric descriptor");
        registry
            .register(Box::new(edge_latency.clone()))
            .expect("metric names are registered once");
        let edge_resource_utilization = gauge(
            &registry,
            "edge_resource_utilization",
            "Share (0..1) of an edge node's capacity booked in the capacity ledger, by resource (cpu, memory, storage, gpu, network).",
            &["node", "resource"],
        );
        Metrics {
            registry,
            cloud_operations,
            workload_placements,
            cloud_costs_hourly,
            cloud_latency,
            edge_operations,
            edge_workloads_active,
            edge_nodes_active,
            edge_latency,
            edge_resource_utilization,
            costs: Mutex::new(BTreeMap::new()),
            recorded: AtomicU64::new(0),
        }
    }

    fn note(&self) {
        self.recorded.fetch_add(1, Ordering::Relaxed);
    }

    /// How many observations this process recorded.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// One driver call (one attempt) and its outcome: `success` or the error kind.
    pub fn driver_operation(&self, provider: &str, operation: &str, status: &str, seconds: f64) {
        self.cloud_operations
            .with_label_values(&[provider, operation, status])
            .inc();
        self.cloud_latency
            .with_label_values(&[provider, operation])
            .observe(seconds.max(0.0));
        self.note();
    }

    /// A workload provisioned on the placement its plan showed.
    pub fn placement(&self, target_cloud: &str, strategy: &str) {
        self.workload_placements
            .with_label_values(&[target_cloud, strategy])
            .inc();
        self.note();
    }

    /// A workload that could not be placed or provisioned where its plan said.
    pub fn placement_failed(&self, strategy: &str) {
        self.placement(PLACEMENT_FAILED, strategy);
    }

    /// The cost of a workload where it is (or will be) placed; `None` when it is gone.
    pub fn workload_cost(&self, workload: &str, cost: Option<WorkloadCost>) {
        let Ok(mut costs) = self.costs.lock() else {
            return;
        };
        match cost {
            Some(c) if c.hourly.is_finite() && c.hourly >= 0.0 => {
                costs.insert(workload.to_string(), c);
            }
            _ => {
                costs.remove(workload);
            }
        }
        drop(costs);
        self.note();
    }

    /// One edge operation applied in `cluster` (a cluster or node change, or a booking).
    pub fn edge_operation(&self, cluster: &str) {
        self.edge_operations.with_label_values(&[cluster]).inc();
        self.note();
    }

    /// An edge node as its store reports it: `Some(ready)`, or `None` once it is deleted.
    pub fn edge_node(&self, cluster: &str, node: &str, ready: Option<bool>) {
        match ready {
            Some(ready) => self
                .edge_nodes_active
                .with_label_values(&[cluster, node])
                .set(i64::from(ready)),
            None => {
                let _ = self.edge_nodes_active.remove_label_values(&[cluster, node]);
                let _ = self
                    .edge_workloads_active
                    .remove_label_values(&[cluster, node]);
            }
        }
        self.note();
    }

    /// What the capacity ledger says of a node: how many workloads hold capacity there, and the
    /// booked share of each resource with a non-zero capacity.
    pub fn edge_node_usage(
        &self,
        cluster: &str,
        node: &str,
        workloads: usize,
        utilization: &[(&str, f64)],
    ) {
        self.edge_workloads_active
            .with_label_values(&[cluster, node])
            .set(i64::try_from(workloads).unwrap_or(i64::MAX));
        for (resource, share) in utilization {
            if share.is_finite() {
                self.edge_resource_utilization
                    .with_label_values(&[node, resource])
                    .set(*share);
            }
        }
        self.note();
    }

    /// The estimated user latency of an edge placement.
    pub fn edge_latency(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.edge_latency.observe(seconds);
            self.note();
        }
    }

    /// Sets `cloud_costs_hourly` from the per-workload costs. Done when encoding, not on
    /// every recorded cost: a plan of N workloads records N costs, and summing on each was
    /// O(N²) (2.5% of a 1,000-workload plan's provider CPU).
    fn sum_costs(&self) {
        let Ok(costs) = self.costs.lock() else {
            return;
        };
        let mut sums: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for c in costs.values() {
            *sums.entry((&c.provider, &c.region)).or_default() += c.hourly;
        }
        self.cloud_costs_hourly.reset();
        for ((provider, region), hourly) in sums {
            self.cloud_costs_hourly
                .with_label_values(&[provider, region])
                .set(hourly);
        }
    }

    /// The text exposition format (0.0.4) of every family with at least one sample.
    pub fn encode(&self) -> Result<String, TelemetryError> {
        self.sum_costs();
        let families: Vec<_> = self
            .registry
            .gather()
            .into_iter()
            .filter(|f| !f.get_metric().is_empty())
            .collect();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .map_err(|e| TelemetryError::Encode(e.to_string()))?;
        String::from_utf8(out).map_err(|e| TelemetryError::Encode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
    }

    #[test]
    fn every_family_is_registered_under_its_guide_name() {
        let m = Metrics::new();
        m.driver_operation("sim", "create", "success", 0.02);
        m.placement("gcp", "hybrid");
        m.workload_cost(
            "wl-1",
            Some(WorkloadCost {
                provider: "gcp".into(),
                region: "europe-west1".into(),
                hourly: 0.07,
            }),
        );
        m.edge_operation("ec-1");
        m.edge_node("ec-1", "en-1", Some(true));
        m.edge_node_usage("ec-1", "en-1", 1, &[("cpu", 0.75)]);
        m.edge_latency(0.004);
        let text = m.encode().expect("encode");
        // Exactly the advertised names: rules and dashboards are checked against METRIC_NAMES.
        let mut registered: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        registered.sort_unstable();
        let mut advertised = METRIC_NAMES.to_vec();
        advertised.sort_unstable();
        assert_eq!(registered, advertised, "{text}");
        assert_eq!(
            sample(
                &text,
                "cloud_operations_total{operation=\"create\",provider=\"sim\",status=\"success\"}"
            ),
            Some("1")
        );
        assert_eq!(
            sample(&text, "edge_latency_seconds_bucket{le=\"0.005\"}"),
            Some("1")
        );
    }

    #[test]
    fn families_without_samples_are_left_out() {
        let m = Metrics::new();
        m.placement("aws", "cost");
        let text = m.encode().expect("encode");
        assert!(text.contains("workload_placements_total"));
        assert!(!text.contains("cloud_costs_hourly"), "{text}");
        assert_eq!(m.recorded(), 1);
    }

    #[test]
    fn costs_are_summed_per_place_and_a_workload_counts_once() {
        let m = Metrics::new();
        let at = |provider: &str, hourly: f64| WorkloadCost {
            provider: provider.into(),
            region: "r1".into(),
            hourly,
        };
        m.workload_cost("a", Some(at("aws", 0.25)));
        m.workload_cost("a", Some(at("aws", 0.25)));
        m.workload_cost("b", Some(at("aws", 0.5)));
        m.workload_cost("c", Some(at("gcp", 1.0)));
        let text = m.encode().expect("encode");
        assert_eq!(
            sample(&text, "cloud_costs_hourly{provider=\"aws\",region=\"r1\"}"),
            Some("0.75")
        );
        m.workload_cost("c", None);
        let text = m.encode().expect("encode");
        assert!(!text.contains("provider=\"gcp\""), "{text}");
    }

    #[test]
    fn a_deleted_edge_node_leaves_the_gauges() {
        let m = Metrics::new();
        m.edge_node("c", "n", Some(false));
        m.edge_node_usage("c", "n", 2, &[]);
        assert!(m
            .encode()
            .expect("encode")
            .contains("edge_nodes_active{cluster=\"c\",node=\"n\"} 0"));
        m.edge_node("c", "n", None);
        let text = m.encode().expect("encode");
        assert!(!text.contains("edge_nodes_active"), "{text}");
        assert!(!text.contains("edge_workloads_active"), "{text}");
    }

    #[test]
    fn failed_placements_are_counted_with_target_cloud_none() {
        let m = Metrics::new();
        m.placement_failed("latency");
        let text = m.encode().expect("encode");
        assert!(text
            .contains("workload_placements_total{strategy=\"latency\",target_cloud=\"none\"} 1"));
    }
}
