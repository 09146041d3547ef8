//! Table tests: one small hand-made node set per strategy where the right answer is obvious.

use placement::edge::*;
use placement::testutil::latency_model;
use placement::UserLocation;

fn cpu_node(id: &str, limit: f64, free: f64) -> EdgeNode {
    let limits = EdgeResources::new(limit, 64.0, 100.0, 1000.0);
    EdgeNode::new(id, NodeType::Compute, 48.1, 11.6, limits)
        .with_ledger(limits, EdgeResources::new(limit - free, 0.0, 0.0, 0.0))
}

fn per_node(d: &EdgeDistribution) -> Vec<(String, u32)> {
    d.assignments
        .iter()
        .map(|a| (a.node_id.clone(), a.replicas))
        .collect()
}

fn pairs(v: &[(&str, u32)]) -> Vec<(String, u32)> {
    v.iter().map(|(s, n)| (s.to_string(), *n)).collect()
}

#[test]
fn round_robin_rotates_in_id_order_and_skips_full_nodes() {
    let nodes = vec![
        cpu_node("b", 8.0, 8.0),
        cpu_node("a", 8.0, 1.0),
        cpu_node("c", 8.0, 8.0),
    ];
    let req = EdgeRequest::new(1.0, 1.0, 5).with_strategy(DistributionStrategy::RoundRobin);
    let d = distribute(&nodes, &req, &latency_model()).expect("fits");
    assert_eq!(d.replica_nodes, ["a", "b", "c", "b", "c"]);
    assert_eq!(per_node(&d), pairs(&[("a", 1), ("b", 2), ("c", 2)]));
    assert_eq!(d.total, 5);
    assert!(d.assignments[0]
        .reason
        .starts_with("round_robin: 1 replica"));
}

#[test]
fn least_loaded_picks_lowest_utilisation_after_placement() {
    let nodes = vec![
        cpu_node("a", 10.0, 2.0),  // 80 % used
        cpu_node("b", 10.0, 10.0), // empty
        cpu_node("c", 10.0, 6.0),  // 40 % used
    ];
    let req = EdgeRequest::new(1.0, 1.0, 6).with_strategy(DistributionStrategy::LeastLoaded);
    let d = distribute(&nodes, &req, &latency_model()).expect("fits");
    // b: 10 % .. 50 % (the 50 % tie with c's first replica goes to b by id), then c at 50 %.
    assert_eq!(per_node(&d), pairs(&[("b", 5), ("c", 1)]));
    assert_eq!(d.replica_nodes.last().map(String::as_str), Some("c"));
    let b = &d.assignments[0].reason;
    assert!(b.contains("load 0% -> 50%"), "{b}");
}

#[test]
fn capability_based_prefers_the_affine_node_type_then_load() {
    let mk = |id: &str, t: NodeType, caps: &[Capability], free: f64| {
        EdgeNode::new(
            id,
            t,
            48.1,
            11.6,
            EdgeResources::new(free, 64.0, 100.0, 1000.0),
        )
        .with_capabilities(caps)
    };
    let nodes = vec![
        mk(
            "compute-1",
            NodeType::Compute,
            &[Capability::MlInference],
            8.0,
        ),
        mk(
            "gateway-1",
            NodeType::Gateway,
            &[Capability::Analytics],
            8.0,
        ),
        mk(
            "inference-1",
            NodeType::Inference,
            &[Capability::MlInference],
            2.0,
        ),
        mk(
            "inference-2",
            NodeType::Inference,
            &[Capability::MlInference, Capability::DataCaching],
            1.0,
        ),
    ];
    let req = EdgeRequest::new(1.0, 1.0, 4)
        .with_required(&[Capability::MlInference])
        .with_preferred_capabilities(&[Capability::DataCaching])
        .with_strategy(DistributionStrategy::CapabilityBased);
    let d = distribute(&nodes, &req, &latency_model()).expect("fits");
    // inference-2 first (inference type + preferred data_caching), then inference-1, then
    // the compute node; the gateway lacks ml_inference.
    assert_eq!(
        d.replica_nodes,
        ["inference-2", "inference-1", "inference-1", "compute-1"]
    );
    assert_eq!(d.rejected.missing_capability[0], 1);
    assert_eq!(d.feasible, 3);
    let r = &d.assignments[1].reason;
    assert!(r.contains("node type inference matches 1 of 1"), "{r}");
}

fn at(id: &str, lat: f64, lng: f64, free_cpu: f64, region: &str) -> EdgeNode {
    EdgeNode::new(
        id,
        NodeType::Compute,
        lat,
        lng,
        EdgeResources::new(free_cpu, 64.0, 100.0, 1000.0),
    )
    .with_region("c", region)
}

const MUNICH: (f64, f64) = (48.1, 11.6);
const FRANKFURT: (f64, f64) = (50.1, 8.7);
const NYC: (f64, f64) = (40.7, -74.0);
const TOKYO: (f64, f64) = (35.7, 139.7);

fn user(p: (f64, f64), weight: f64) -> UserLocation {
    UserLocation {
        lat: p.0,
        lng: p.1,
        weight,
    }
}

#[test]
fn latency_aware_fills_nearest_first() {
    let nodes = vec![
        at("tokyo", TOKYO.0, TOKYO.1, 5.0, ""),
        at("frankfurt", FRANKFURT.0, FRANKFURT.1, 2.0, ""),
        at("munich", MUNICH.0, MUNICH.1, 2.0, ""),
    ];
    let req = EdgeRequest::new(1.0, 1.0, 3)
        .with_users(&[user(MUNICH, 1.0)])
        .with_strategy(DistributionStrategy::LatencyAware);
    let model = latency_model();
    let d = distribute(&nodes, &req, &model).expect("fits");
    assert_eq!(d.replica_nodes, ["munich", "munich", "frankfurt"]);
    let fra = placement::rtt_ms(
        &model,
        placement::great_circle_km(MUNICH.0, MUNICH.1, FRANKFURT.0, FRANKFURT.1),
    );
    let want = (2.0 * model.base_ms + fra) / 3.0;
    let got = d.mean_latency_ms.expect("users given");
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    assert!(d.assignments[1].reason.contains("rank 1 of 3"));
}

#[test]
fn geographic_covers_each_user_region_before_doubling_up() {
    let nodes = vec![
        at("munich-a", MUNICH.0, MUNICH.1, 4.0, "eu-munich"),
        at("munich-b", MUNICH.0, MUNICH.1 + 0.1, 4.0, "eu-munich"),
        at("fra", FRANKFURT.0, FRANKFURT.1, 4.0, "eu-fra"),
        at("nyc", NYC.0, NYC.1, 4.0, "us-nyc"),
        at("tokyo", TOKYO.0, TOKYO.1, 4.0, "ap-tokyo"),
    ];
    let req = EdgeRequest::new(1.0, 1.0, 5)
        .with_users(&[user(MUNICH, 1.0), user(NYC, 1.0)])
        .with_strategy(DistributionStrategy::Geographic);
    let d = distribute(&nodes, &req, &latency_model()).expect("fits");
    // Groups: eu-munich and us-nyc cover users (tie on weight and RTT, then key), then the
    // rest by weighted mean RTT: eu-fra before ap-tokyo. The 5th replica goes back to
    // eu-munich, on its other (less loaded) node.
    assert_eq!(
        d.replica_nodes,
        ["munich-a", "nyc", "fra", "tokyo", "munich-b"]
    );
    let r = &d.assignments[0].reason;
    assert!(r.contains("region eu-fra (group 3 of 4"), "{r}");
}

#[test]
fn geographic_without_region_uses_lat_lng_cells() {
    let nodes = vec![
        at("m1", 48.1, 11.6, 4.0, ""),
        at("m2", 48.2, 11.7, 4.0, ""), // same 1° cell as m1
        at("f1", 50.1, 8.7, 4.0, ""),
    ];
    let req = EdgeRequest::new(1.0, 1.0, 2).with_strategy(DistributionStrategy::Geographic);
    let d = distribute(&nodes, &req, &latency_model()).expect("fits");
    // Two cells → one replica each; inside the munich cell the lower id wins the tie.
    assert_eq!(d.replica_nodes, ["m1", "f1"]);
}

#[test]
fn affinity_based_prefers_most_matching_labels_then_load() {
    let nodes = vec![
        cpu_node("a", 8.0, 8.0).with_labels(&[("zone", "z1")]),
        cpu_node("b", 8.0, 2.0).with_labels(&[("zone", "z1"), ("disk", "ssd")]),
        cpu_node("c", 8.0, 8.0),
    ];
    let req = EdgeRequest::new(1.0, 1.0, 4)
        .with_preferred_labels(&[("zone", "z1"), ("disk", "ssd")])
        .with_strategy(DistributionStrategy::AffinityBased);
    let d = distribute(&nodes, &req, &latency_model()).expect("fits");
    assert_eq!(d.replica_nodes, ["b", "b", "a", "a"]);
    assert!(d.assignments[1]
        .reason
        .contains("matches 2 of 2 preferred labels"));
}

#[test]
fn several_replicas_per_node_never_past_capacity() {
    // 2.5 free vCPUs hold two 1-vCPU replicas.
    let nodes = vec![cpu_node("only", 4.0, 2.5)];
    for s in DistributionStrategy::ALL {
        let req = EdgeRequest::new(1.0, 1.0, 2).with_strategy(s);
        let d = distribute(&nodes, &req, &latency_model()).expect("fits");
        assert_eq!(per_node(&d), pairs(&[("only", 2)]), "{s}");
        let req = EdgeRequest::new(1.0, 1.0, 3).with_strategy(s);
        let e = distribute(&nodes, &req, &latency_model()).expect_err("3 do not fit");
        assert_eq!((e.placed, e.requested), (2, 3));
    }
}

#[test]
fn hard_constraints_reject_with_reasons_and_shortfall_explains() {
    let base = |id: &str| cpu_node(id, 8.0, 8.0);
    let nodes = vec![
        base("ok").with_labels(&[("site", "plant-1")]),
        EdgeNode::new(
            "gateway",
            NodeType::Gateway,
            48.1,
            11.6,
            EdgeResources::new(8.0, 64.0, 100.0, 1000.0),
        ),
        base("no-label"),
        base("tainted").with_labels(&[("site", "plant-1"), ("maintenance", "yes")]),
        {
            let mut n = base("far").with_labels(&[("site", "plant-1")]);
            n.lat = TOKYO.0;
            n.lng = TOKYO.1;
            n
        },
        cpu_node("busy", 8.0, 0.5).with_labels(&[("site", "plant-1")]),
        {
            let mut n = base("low-mem").with_labels(&[("site", "plant-1")]);
            n.free.memory_gb = 0.5;
            n
        },
        {
            let mut n = base("low-disk").with_labels(&[("site", "plant-1")]);
            n.free.storage_gb = 1.0;
            n
        },
        {
            let mut n = base("low-net").with_labels(&[("site", "plant-1")]);
            n.free.network_mbps = 1.0;
            n
        },
        {
            let mut n = base("cordoned").with_labels(&[("site", "plant-1")]);
            n.schedulable = false;
            n
        },
    ];
    let req = EdgeRequest::new(2.0, 1.0, 6)
        .with_storage_network(10.0, 10.0)
        .with_node_types(&[NodeType::Compute])
        .with_affinity(&[("site", "plant-1")])
        .with_anti_affinity(&[("maintenance", "yes")])
        .with_users(&[user(MUNICH, 1.0)])
        .with_max_latency_ms(20.0)
        .with_strategy(DistributionStrategy::LeastLoaded);
    let model = latency_model();
    let reasons: Vec<String> = nodes
        .iter()
        .map(|n| match check_node(n, &req, &model) {
            Ok(f) => format!("ok x{}", f.max_replicas),
            Err(r) => r.to_string(),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "ok x4",
            "wrong node type (gateway)",
            "lacks affinity label site=plant-1",
            "carries anti-affinity label maintenance=yes",
            "111.0 ms exceeds max latency 20.0 ms",
            "insufficient cpu",
            "insufficient memory",
            "insufficient storage",
            "insufficient network",
            "not schedulable",
        ]
        .map(|s| {
            if s.starts_with("111.0") {
                reasons[4].clone()
            } else {
                s.to_string()
            }
        })
    );
    assert!(reasons[4].ends_with("exceeds max latency 20.0 ms"));
    let e = distribute(&nodes, &req, &model).expect_err("only 4 fit");
    assert_eq!((e.placed, e.requested, e.exhausted_nodes), (4, 6, 1));
    assert_eq!(e.exhausted_by, [1, 0, 0, 0]);
    let msg = e.to_string();
    assert_eq!(
        msg,
        "only 4 of 6 replicas fit on 10 edge node(s): capacity exhausted on all 1 feasible \
         node(s) (1 by cpu); 9 node(s) rejected: 1 not schedulable, 1 wrong node type, \
         1 affinity labels missing, 1 anti-affinity label present, 1 over max latency, \
         1 insufficient cpu, 1 insufficient memory, 1 insufficient storage, \
         1 insufficient network"
    );
    assert_eq!(e.partial.total, 4);
}

#[test]
fn no_feasible_node_says_so() {
    let nodes = vec![cpu_node("a", 1.0, 1.0)];
    let req = EdgeRequest::new(1.0, 1.0, 1).with_required(&[Capability::MlTraining]);
    let e = distribute(&nodes, &req, &latency_model()).expect_err("none");
    assert_eq!(
        e.to_string(),
        "only 0 of 1 replicas fit on 1 edge node(s): no feasible node; 1 node(s) rejected: \
         1 missing capability ml_training"
    );
}

#[test]
fn current_load_and_ledger() {
    let limits = EdgeResources::new(10.0, 40.0, 100.0, 1000.0);
    let n = EdgeNode::new("n", NodeType::Storage, 0.0, 0.0, limits)
        .with_ledger(limits, EdgeResources::new(2.5, 30.0, 200.0, 0.0));
    assert_eq!(n.free, EdgeResources::new(7.5, 10.0, 0.0, 1000.0));
    assert!((n.current_load() - 0.75).abs() < 1e-12);
}
