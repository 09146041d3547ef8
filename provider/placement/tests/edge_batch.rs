//! Batch placement: hand-made cases with an obvious optimum, and a mid-size synthetic fleet.

use placement::edge::testgen::{self, batch, fleet};
use placement::edge::*;
use placement::testutil::latency_model;
use placement::UserLocation;
use std::collections::BTreeMap;

const MUNICH: (f64, f64) = (48.1, 11.6);
const BERLIN: (f64, f64) = (52.5, 13.4);
const LISBON: (f64, f64) = (38.7, -9.1);

fn node(id: &str, p: (f64, f64), cpu: f64) -> EdgeNode {
    EdgeNode::new(
        id,
        NodeType::Compute,
        p.0,
        p.1,
        EdgeResources::new(cpu, 4.0 * cpu, 100.0, 1000.0),
    )
}

fn wl(id: &str, user: (f64, f64), replicas: u32) -> BatchWorkload {
    BatchWorkload {
        id: id.to_string(),
        request: EdgeRequest::new(1.0, 1.0, replicas).with_users(&[UserLocation {
            lat: user.0,
            lng: user.1,
            weight: 1.0,
        }]),
    }
}

#[test]
fn contended_node_goes_to_the_workload_that_loses_most_elsewhere() {
    // One slot in Munich, both workloads' users are in Munich. "a" can fall back to Berlin;
    // "b" may not use Berlin (anti-affinity), so its fallback is Lisbon: b loses more, so
    // the optimum gives Munich to b (a greedy pass in id order would give it to a).
    let nodes = vec![
        node("munich", MUNICH, 1.0),
        node("berlin", BERLIN, 1.0),
        node("lisbon", LISBON, 1.0),
    ];
    let mut b = wl("b", MUNICH, 1);
    b.request.anti_affinity = BTreeMap::from([("city".to_string(), "berlin".to_string())]);
    let mut nodes = nodes;
    nodes[1].labels.insert("city".into(), "berlin".into());
    let r = place_batch(
        &nodes,
        &[wl("a", MUNICH, 1), b],
        &latency_model(),
        &BatchOptions::default(),
    );
    let got: Vec<(String, Vec<(String, u32)>)> = r
        .workloads
        .iter()
        .map(|w| (w.id.clone(), w.assignments.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a".to_string(), vec![("berlin".to_string(), 1)]),
            ("b".to_string(), vec![("munich".to_string(), 1)]),
        ]
    );
    assert_eq!(r.unplaced, 0);
    assert!(r.gap.abs() < 1e-12, "{}", r.gap);
    assert_eq!(r.workloads[1].rejected.anti_affinity, 1);
}

#[test]
fn unplaceable_replicas_are_reported_with_the_penalty() {
    let nodes = vec![node("only", MUNICH, 2.0)];
    let r = place_batch(
        &nodes,
        &[wl("a", MUNICH, 3)],
        &latency_model(),
        &BatchOptions::default(),
    );
    assert_eq!((r.placed, r.unplaced), (2, 1));
    assert_eq!(r.workloads[0].unplaced, 1);
    assert!(r.total_cost >= 1.0e6);
    assert!(r.gap >= 0.0);
}

#[test]
fn mid_size_fleet_is_near_optimal_within_capacity_and_deterministic() {
    let nodes = fleet(120, 3);
    let workloads = batch(60, 12, 5);
    let model = latency_model();
    let r = place_batch(&nodes, &workloads, &model, &BatchOptions::default());
    assert_eq!(r.replicas, 720);
    assert_eq!(r.unplaced, 0);
    assert!(r.gap <= 0.01, "gap {}", r.gap);
    assert!(r.lower_bound <= r.total_cost);
    // Capacity per node and resource.
    let by_id: BTreeMap<&str, &EdgeNode> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let reqs: BTreeMap<&str, &EdgeRequest> = workloads
        .iter()
        .map(|w| (w.id.as_str(), &w.request))
        .collect();
    let mut used: BTreeMap<&str, [f64; 4]> = BTreeMap::new();
    for w in &r.workloads {
        let q = reqs[w.id.as_str()].requests.as_array();
        for (id, k) in &w.assignments {
            let n = by_id[id.as_str()];
            assert!(check_node(n, reqs[w.id.as_str()], &model).is_ok());
            let u = used.entry(by_id[id.as_str()].id.as_str()).or_default();
            for i in 0..4 {
                u[i] += f64::from(*k) * q[i];
            }
        }
    }
    for (id, u) in used {
        let f = by_id[id].free.as_array();
        for i in 0..4 {
            assert!(
                u[i] <= f[i] + 1e-9,
                "{id} resource {i}: {} > {}",
                u[i],
                f[i]
            );
        }
    }
    let mut rev_nodes = nodes.clone();
    rev_nodes.reverse();
    let mut rev_w = workloads.clone();
    rev_w.reverse();
    assert_eq!(
        place_batch(&rev_nodes, &rev_w, &model, &BatchOptions::default()),
        r
    );
}

/// Regression for issue #5: cpu and memory both bind (half the workloads at 7 GB per vCPU,
/// half at 1 GB, on 4 GB-per-vCPU nodes). Rounding the cpu flow and moving single replicas
/// left a certified gap of 14.9 % on this scaled-down instance (2,000 replicas on 200
/// nodes), the ejection-refill repair 2.8 %; the LP phase (bound at the LP value, its
/// solution rounded) brings it to about 0.2 %.
#[test]
fn two_binding_resources_gap_stays_small() {
    const GAP_LIMIT: f64 = 0.005;
    let nodes = fleet(200, 7);
    let workloads = testgen::batch_two_binding(100, 20, 11);
    let model = latency_model();
    let r = place_batch(&nodes, &workloads, &model, &BatchOptions::default());
    eprintln!(
        "two-binding 2k/200: cost {:.1}, bound {:.1}, gap {:.4}, unplaced {}",
        r.total_cost, r.lower_bound, r.gap, r.unplaced
    );
    assert_eq!(r.replicas, 2000);
    assert_eq!(r.unplaced, 0);
    assert!(r.lower_bound <= r.total_cost);
    assert!(r.gap <= GAP_LIMIT, "gap {} > {GAP_LIMIT}", r.gap);
}

/// With both resources binding, the LP phase's bound (the Lagrangian at the LP prices)
/// beats the dominant-resource flow bound that `max_iterations: 0` stops at, and its
/// placement is no worse.
#[test]
fn lp_phase_tightens_the_flow_bound_when_two_resources_bind() {
    let nodes = fleet(200, 7);
    let workloads = testgen::batch_two_binding(100, 20, 11);
    let model = latency_model();
    let flow_only = place_batch(
        &nodes,
        &workloads,
        &model,
        &BatchOptions {
            max_iterations: 0,
            ..BatchOptions::default()
        },
    );
    let lp = place_batch(&nodes, &workloads, &model, &BatchOptions::default());
    assert_eq!(flow_only.iterations, 0);
    assert!(lp.iterations > 0);
    assert!(
        lp.lower_bound > flow_only.lower_bound * (1.0 + 1e-4),
        "LP bound {} vs flow bound {}",
        lp.lower_bound,
        flow_only.lower_bound
    );
    assert!(lp.total_cost <= flow_only.total_cost);
    assert!(lp.gap < flow_only.gap);
}

/// Both bounds are valid whatever the LP iterations did: on random small two-binding
/// instances, the LP phase's bound is at least the flow bound and at most the cost of the
/// flow-only run's placement (an independent feasible solution), and vice versa.
#[test]
fn lp_and_flow_bounds_bracket_each_others_placements() {
    let model = latency_model();
    let mut lp_runs = 0;
    for seed in 1..=6u64 {
        let nodes = fleet(40, seed);
        let workloads = testgen::batch_two_binding(24, 6, seed * 31);
        let flow_only = place_batch(
            &nodes,
            &workloads,
            &model,
            &BatchOptions {
                max_iterations: 0,
                ..BatchOptions::default()
            },
        );
        let lp = place_batch(
            &nodes,
            &workloads,
            &model,
            &BatchOptions {
                target_gap: 0.0,
                ..BatchOptions::default()
            },
        );
        let tol = 1e-9 * lp.total_cost.max(1.0);
        assert!(lp.lower_bound + tol >= flow_only.lower_bound, "seed {seed}");
        assert!(lp.lower_bound <= flow_only.total_cost + tol, "seed {seed}");
        assert!(flow_only.lower_bound <= lp.total_cost + tol, "seed {seed}");
        assert!(
            lp.gap >= 0.0 && lp.gap.is_finite(),
            "seed {seed}: gap {}",
            lp.gap
        );
        assert_eq!(lp.placed + lp.unplaced, lp.replicas);
        eprintln!(
            "seed {seed}: flow bound {:.1} cost {:.1}; LP bound {:.1} cost {:.1}, {} iterations",
            flow_only.lower_bound,
            flow_only.total_cost,
            lp.lower_bound,
            lp.total_cost,
            lp.iterations
        );
        lp_runs += usize::from(lp.iterations > 0);
    }
    assert!(lp_runs > 0, "the LP phase never ran");
}
