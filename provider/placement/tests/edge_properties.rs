//! Property tests for edge distribution and batch placement against brute-force oracles.
//!
//! The oracles share nothing with the implementation but `great_circle_km` / `rtt_ms`: they
//! check each hard constraint directly and count a node's capacity by enumeration. Numbers
//! are on dyadic grids (multiples of 0.25 / 0.5) so float arithmetic is exact on both sides.

use placement::edge::*;
use placement::testutil::latency_model;
use placement::{great_circle_km, rtt_ms, UserLocation};
use proptest::prelude::*;
use proptest::strategy::Strategy as Gen;
use std::collections::BTreeMap;

const SPOTS: [(f64, f64); 5] = [
    (48.1, 11.6),
    (50.1, 8.7),
    (52.5, 13.4),
    (40.7, -74.0),
    (35.7, 139.7),
];
const LABELS: [(&str, &str); 3] = [("zone", "a"), ("disk", "ssd"), ("gpu", "yes")];

#[derive(Clone, Debug)]
struct NodeSpec {
    spot: usize,
    t: usize,
    caps: u8,
    labels: u8,
    region: bool,
    free: [u8; 4],
    limit_extra: u8,
    schedulable: bool,
}

fn node_spec() -> impl Gen<Value = NodeSpec> {
    (
        0..SPOTS.len(),
        0..4usize,
        0u8..64,
        0u8..8,
        any::<bool>(),
        [0u8..12, 0u8..12, 0u8..12, 0u8..12],
        0u8..8,
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(spot, t, caps, labels, region, free, limit_extra, schedulable)| NodeSpec {
                spot,
                t,
                caps,
                labels,
                region,
                free,
                limit_extra,
                schedulable,
            },
        )
}

fn build_node(i: usize, s: &NodeSpec) -> EdgeNode {
    let f = s.free.map(|v| f64::from(v) * 0.5);
    let free = EdgeResources::new(f[0], f[1], f[2] * 10.0, f[3] * 100.0);
    let extra = f64::from(s.limit_extra);
    let limits = EdgeResources::new(
        free.cpu + extra,
        free.memory_gb + extra,
        free.storage_gb,
        free.network_mbps,
    );
    let (lat, lng) = SPOTS[s.spot];
    let caps: Vec<Capability> = Capability::ALL
        .into_iter()
        .enumerate()
        .filter(|(k, _)| s.caps & (1 << k) != 0)
        .map(|(_, c)| c)
        .collect();
    let labels: Vec<(&str, &str)> = LABELS
        .iter()
        .enumerate()
        .filter(|(k, _)| s.labels & (1 << k) != 0)
        .map(|(_, l)| *l)
        .collect();
    let mut n = EdgeNode::new(&format!("n{i:02}"), NodeType::ALL[s.t], lat, lng, limits)
        .with_ledger(limits, limits.saturating_sub(&free))
        .with_capabilities(&caps)
        .with_labels(&labels);
    if s.region {
        n.region = format!("spot-{}", s.spot);
    }
    n.schedulable = s.schedulable;
    n
}

#[derive(Clone, Debug)]
struct ReqSpec {
    req: [u8; 4],
    required: u8,
    types: u8,
    affinity: u8,
    anti: u8,
    preferred: u8,
    pref_caps: u8,
    replicas: u32,
    users: Vec<(usize, u8)>,
    max_latency: Option<u8>,
    strategy: usize,
}

fn req_spec() -> impl Gen<Value = ReqSpec> {
    (
        [1u8..5, 1u8..5, 0u8..4, 0u8..4],
        prop::sample::select(vec![0u8, 0, 1, 4, 5]),
        prop::sample::select(vec![0u8, 0, 3, 9, 14]),
        prop::sample::select(vec![0u8, 0, 1, 2]),
        prop::sample::select(vec![0u8, 0, 4]),
        0u8..8,
        0u8..64,
        1u32..14,
        prop::collection::vec((0..SPOTS.len(), 1u8..4), 0..3),
        prop::option::of(prop::sample::select(vec![5u8, 20, 60, 200])),
        0..6usize,
    )
        .prop_map(
            |(
                req,
                required,
                types,
                affinity,
                anti,
                preferred,
                pref_caps,
                replicas,
                users,
                max_latency,
                strategy,
            )| {
                ReqSpec {
                    req,
                    required,
                    types,
                    affinity,
                    anti,
                    preferred,
                    pref_caps,
                    replicas,
                    users,
                    max_latency,
                    strategy,
                }
            },
        )
}

fn labels_of(mask: u8) -> Vec<(&'static str, &'static str)> {
    LABELS
        .iter()
        .enumerate()
        .filter(|(k, _)| mask & (1 << k) != 0)
        .map(|(_, l)| *l)
        .collect()
}

fn caps_of(mask: u8) -> Vec<Capability> {
    Capability::ALL
        .into_iter()
        .enumerate()
        .filter(|(k, _)| mask & (1 << k) != 0)
        .map(|(_, c)| c)
        .collect()
}

fn build_req(s: &ReqSpec) -> EdgeRequest {
    let r = s.req.map(|v| f64::from(v) * 0.5);
    let mut req = EdgeRequest::new(r[0], r[1], s.replicas)
        .with_storage_network(r[2] * 10.0, r[3] * 100.0)
        .with_required(&caps_of(s.required))
        .with_preferred_capabilities(&caps_of(s.pref_caps))
        .with_node_types(
            &NodeType::ALL
                .into_iter()
                .enumerate()
                .filter(|(k, _)| s.types & (1 << k) != 0)
                .map(|(_, t)| t)
                .collect::<Vec<_>>(),
        )
        .with_affinity(&labels_of(s.affinity))
        .with_anti_affinity(&labels_of(s.anti))
        .with_preferred_labels(&labels_of(s.preferred))
        .with_users(
            &s.users
                .iter()
                .map(|&(spot, w)| UserLocation {
                    lat: SPOTS[spot].0,
                    lng: SPOTS[spot].1,
                    weight: f64::from(w),
                })
                .collect::<Vec<_>>(),
        )
        .with_strategy(DistributionStrategy::ALL[s.strategy]);
    req.max_latency_ms = s.max_latency.map(f64::from);
    req
}

/// Oracle: replicas the node can hold (0 = infeasible), checking every constraint directly.
fn oracle_capacity(n: &EdgeNode, req: &EdgeRequest) -> u32 {
    let model = latency_model();
    let ok = n.schedulable
        && (req.node_types.is_empty() || req.node_types.contains(&n.node_type))
        && req
            .required_capabilities
            .iter()
            .all(|c| n.capabilities.contains(c))
        && req.affinity.iter().all(|(k, v)| n.labels.get(k) == Some(v))
        && req
            .anti_affinity
            .iter()
            .all(|(k, v)| n.labels.get(k) != Some(v))
        && match req.max_latency_ms {
            Some(max) => req
                .user_locations
                .iter()
                .all(|u| rtt_ms(&model, great_circle_km(u.lat, u.lng, n.lat, n.lng)) <= max),
            None => true,
        };
    if !ok {
        return 0;
    }
    let fits = |k: u32| {
        let k = f64::from(k);
        let r = &req.requests;
        k * r.cpu <= n.free.cpu
            && k * r.memory_gb <= n.free.memory_gb
            && k * r.storage_gb <= n.free.storage_gb
            && k * r.network_mbps <= n.free.network_mbps
    };
    let mut k = 0;
    while k < req.replicas && fits(k + 1) {
        k += 1;
    }
    k
}

fn oracle_rtt(n: &EdgeNode, users: &[UserLocation]) -> f64 {
    let model = latency_model();
    let w: f64 = users.iter().map(|u| u.weight).sum();
    users
        .iter()
        .map(|u| u.weight * rtt_ms(&model, great_circle_km(u.lat, u.lng, n.lat, n.lng)))
        .sum::<f64>()
        / w
}

fn shuffle<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut s = seed | 1;
    for i in (1..out.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.swap(i, (s % (i as u64 + 1)) as usize);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn distribution_matches_oracle(
        specs in prop::collection::vec(node_spec(), 0..8),
        rs in req_spec(),
        seed in any::<u64>(),
    ) {
        let nodes: Vec<EdgeNode> = specs.iter().enumerate().map(|(i, s)| build_node(i, s)).collect();
        let req = build_req(&rs);
        let model = latency_model();
        let caps: BTreeMap<String, u32> =
            nodes.iter().map(|n| (n.id.clone(), oracle_capacity(n, &req))).collect();
        let total_cap: u32 = caps.values().sum();
        let feasible = caps.values().filter(|&&c| c > 0).count();

        let out = distribute(&nodes, &req, &model);
        let d = match &out {
            Ok(d) => d.clone(),
            Err(e) => *e.partial.clone(),
        };
        // Places all N iff the oracle says N fit; otherwise as many as fit.
        prop_assert_eq!(out.is_ok(), total_cap >= req.replicas);
        prop_assert_eq!(d.total, req.replicas.min(total_cap));
        prop_assert_eq!(d.feasible, feasible);
        prop_assert_eq!(d.rejected.total() + feasible, nodes.len());
        prop_assert_eq!(d.replica_nodes.len() as u32, d.total);
        // Never past capacity, never on an infeasible node; assignments agree with replicas.
        let mut counted: BTreeMap<String, u32> = BTreeMap::new();
        for id in &d.replica_nodes {
            *counted.entry(id.clone()).or_default() += 1;
        }
        for a in &d.assignments {
            prop_assert!(a.replicas <= caps[&a.node_id], "{} > cap {}", a.replicas, caps[&a.node_id]);
            prop_assert_eq!(counted.get(&a.node_id).copied(), Some(a.replicas));
        }
        prop_assert_eq!(counted.len(), d.assignments.len());
        if let Err(e) = &out {
            prop_assert_eq!(e.exhausted_nodes, feasible);
            prop_assert!(!e.to_string().is_empty());
        }
        // latency_aware reaches the minimum mean latency.
        if req.strategy == DistributionStrategy::LatencyAware && !req.user_locations.is_empty() && d.total > 0 {
            let mut by: Vec<(f64, u32)> = nodes
                .iter()
                .filter(|n| caps[&n.id] > 0)
                .map(|n| (oracle_rtt(n, &req.user_locations), caps[&n.id]))
                .collect();
            by.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (mut left, mut sum) = (d.total, 0.0);
            for (ms, c) in by {
                let k = c.min(left);
                sum += f64::from(k) * ms;
                left -= k;
            }
            let best = sum / f64::from(d.total);
            let got = d.mean_latency_ms.unwrap_or(f64::NAN);
            prop_assert!((got - best).abs() < 1e-9 * best.max(1.0), "{} vs {}", got, best);
        }
        // Deterministic: identical on repeat and on shuffled input.
        prop_assert_eq!(&distribute(&nodes, &req, &model), &out);
        prop_assert_eq!(&distribute(&shuffle(&nodes, seed), &req, &model), &out);
    }

    #[test]
    fn garbage_numbers_never_panic(
        vals in prop::collection::vec(
            prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, 1e308, 2.0]),
            12,
        ),
        s in 0..6usize,
    ) {
        let mut n = EdgeNode::new("x", NodeType::Compute, vals[0], vals[1],
            EdgeResources::new(vals[2], vals[3], vals[4], vals[5]));
        n.limits = EdgeResources::new(vals[6], vals[7], vals[8], vals[9]);
        let mut req = EdgeRequest::new(vals[10], vals[11], 3).with_strategy(DistributionStrategy::ALL[s]);
        req.user_locations = vec![UserLocation { lat: vals[0], lng: vals[11], weight: vals[10] }];
        req.max_latency_ms = Some(vals[9]);
        let nodes = vec![n.clone(), n];
        let _ = distribute(&nodes, &req, &latency_model());
        let w = vec![BatchWorkload { id: "w".into(), request: req }];
        let b = place_batch(&nodes, &w, &latency_model(), &BatchOptions {
            ms_per_usd_hour: vals[3], unplaced_penalty: vals[4], max_iterations: 5, target_gap: vals[5],
        });
        prop_assert!(b.gap >= 0.0, "gap {}", b.gap);
        prop_assert!(b.placed + b.unplaced == b.replicas);
        prop_assert!(!validate_nodes(&nodes).is_empty() || vals[..10].iter().all(|v| v.is_finite() && *v >= 0.0));
    }
}

#[derive(Clone, Debug)]
struct TinyWorkload {
    req: [u8; 2],
    replicas: u32,
    user: usize,
    required: u8,
}

fn tiny_workload() -> impl Gen<Value = TinyWorkload> {
    (
        [1u8..4, 1u8..4],
        1u32..3,
        0..SPOTS.len(),
        prop::sample::select(vec![0u8, 0, 1]),
    )
        .prop_map(|(req, replicas, user, required)| TinyWorkload {
            req,
            replicas,
            user,
            required,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Batch: capacity and constraints respected, gap >= 0, and the brute-force optimum of
    /// a tiny instance lies in [lower bound, reported cost].
    #[test]
    fn batch_bound_is_valid_against_brute_force(
        specs in prop::collection::vec(node_spec(), 1..4),
        tws in prop::collection::vec(tiny_workload(), 1..4),
        seed in any::<u64>(),
    ) {
        let nodes: Vec<EdgeNode> = specs.iter().enumerate().map(|(i, s)| {
            let mut n = build_node(i, s);
            n.labels.clear();
            n
        }).collect();
        let workloads: Vec<BatchWorkload> = tws.iter().enumerate().map(|(i, t)| {
            let mut request = EdgeRequest::new(f64::from(t.req[0]) * 0.5, f64::from(t.req[1]) * 0.5, t.replicas)
                .with_required(&caps_of(t.required))
                .with_users(&[UserLocation { lat: SPOTS[t.user].0, lng: SPOTS[t.user].1, weight: 1.0 }]);
            request.requests.storage_gb = 0.0;
            BatchWorkload { id: format!("w{i}"), request }
        }).collect();
        let opts = BatchOptions { unplaced_penalty: 1000.0, ..BatchOptions::default() };
        let model = latency_model();
        let r = place_batch(&nodes, &workloads, &model, &opts);
        prop_assert!(r.gap >= 0.0);
        prop_assert!(r.lower_bound <= r.total_cost + 1e-9);
        prop_assert_eq!(r.placed + r.unplaced, r.replicas);

        // Oracle pair costs (None = infeasible pair).
        let cost: Vec<Vec<Option<f64>>> = workloads.iter().map(|w| nodes.iter().map(|n| {
            (oracle_capacity(n, &w.request) > 0).then(|| oracle_rtt(n, &w.request.user_locations))
        }).collect()).collect();
        // Reported placement: feasible pairs only, capacity respected, cost consistent.
        let mut used = vec![[0.0f64; 2]; nodes.len()];
        let mut total = 0.0;
        for (w, p) in workloads.iter().zip(&r.workloads) {
            prop_assert_eq!(&w.id, &p.id);
            prop_assert_eq!(p.placed + p.unplaced, w.request.replicas);
            for (id, k) in &p.assignments {
                let ni = nodes.iter().position(|n| &n.id == id).expect("known node");
                let wi = workloads.iter().position(|x| x.id == w.id).expect("known workload");
                let c = cost[wi][ni];
                prop_assert!(c.is_some(), "infeasible pair used");
                total += f64::from(*k) * c.unwrap_or(0.0);
                used[ni][0] += f64::from(*k) * w.request.requests.cpu;
                used[ni][1] += f64::from(*k) * w.request.requests.memory_gb;
            }
            total += f64::from(p.unplaced) * 1000.0;
        }
        for (n, u) in nodes.iter().zip(&used) {
            prop_assert!(u[0] <= n.free.cpu && u[1] <= n.free.memory_gb, "over capacity on {}", n.id);
        }
        prop_assert!((total - r.total_cost).abs() < 1e-6 * total.max(1.0));

        // Brute force: every replica on some node or unplaced.
        let reps: Vec<usize> = workloads.iter().enumerate()
            .flat_map(|(w, x)| std::iter::repeat_n(w, x.request.replicas as usize)).collect();
        let choices = nodes.len() + 1;
        let mut best = f64::INFINITY;
        let combos = choices.pow(reps.len() as u32);
        for mut code in 0..combos {
            let mut load = vec![[0.0f64; 2]; nodes.len()];
            let mut c = 0.0;
            let mut ok = true;
            for &w in &reps {
                let pick = code % choices;
                code /= choices;
                if pick == nodes.len() {
                    c += 1000.0;
                    continue;
                }
                match cost[w][pick] {
                    None => { ok = false; break; }
                    Some(x) => {
                        c += x;
                        load[pick][0] += workloads[w].request.requests.cpu;
                        load[pick][1] += workloads[w].request.requests.memory_gb;
                    }
                }
            }
            if ok && nodes.iter().zip(&load).all(|(n, l)| l[0] <= n.free.cpu && l[1] <= n.free.memory_gb) {
                best = best.min(c);
            }
        }
        prop_assert!(best >= r.lower_bound - 1e-6 * best.max(1.0), "optimum {} < bound {}", best, r.lower_bound);
        prop_assert!(r.total_cost >= best - 1e-6 * best.max(1.0));

        // Deterministic and input-order independent.
        let again = place_batch(&shuffle(&nodes, seed), &shuffle(&workloads, seed ^ 7), &model, &opts);
        prop_assert_eq!(again, r);
    }
}

#[derive(Clone, Debug)]
struct MixedWorkload {
    heavy: bool,
    replicas: u32,
    user: usize,
    storage: bool,
    compute_only: bool,
}

fn mixed_workload() -> impl Gen<Value = MixedWorkload> {
    (
        any::<bool>(),
        1u32..4,
        0..SPOTS.len(),
        any::<bool>(),
        prop::sample::select(vec![false, false, true]),
    )
        .prop_map(
            |(heavy, replicas, user, storage, compute_only)| MixedWorkload {
                heavy,
                replicas,
                user,
                storage,
                compute_only,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Batch with two binding resources: memory-heavy (7 GB per vCPU) and light (1 GB per
    /// vCPU) replicas on 4 GB-per-vCPU nodes, some storage-bound, some restricted to compute
    /// nodes. `target_gap: 0` forces every repair phase to run. The result respects all four
    /// resources and the filter, and the brute-force optimum lies in [bound, cost].
    #[test]
    fn two_binding_batch_is_feasible_and_brackets_the_optimum(
        free in prop::collection::vec((1u8..7, 1u8..5, 0..SPOTS.len(), 0..4usize), 1..4),
        mut mws in prop::collection::vec(mixed_workload(), 1..5),
    ) {
        // At most 8 replicas in all, so (nodes + 1)^replicas stays small.
        mws.retain({
            let mut seen = 0;
            move |m| { seen += m.replicas; seen <= 8 }
        });
        let nodes: Vec<EdgeNode> = free.iter().enumerate().map(|(i, &(cpu, disk, spot, t))| {
            let cpu = f64::from(cpu) * 0.5;
            EdgeNode::new(
                &format!("n{i}"),
                NodeType::ALL[t],
                SPOTS[spot].0,
                SPOTS[spot].1,
                EdgeResources::new(cpu, 4.0 * cpu, f64::from(disk) * 10.0, 1000.0),
            )
        }).collect();
        let workloads: Vec<BatchWorkload> = mws.iter().enumerate().map(|(i, m)| {
            let gb = if m.heavy { 3.5 } else { 0.5 };
            let mut request = EdgeRequest::new(0.5, gb, m.replicas)
                .with_users(&[UserLocation { lat: SPOTS[m.user].0, lng: SPOTS[m.user].1, weight: 1.0 }])
                .with_storage_network(if m.storage { 10.0 } else { 0.0 }, 100.0);
            if m.compute_only {
                request = request.with_node_types(&[NodeType::Compute]);
            }
            BatchWorkload { id: format!("w{i}"), request }
        }).collect();
        let penalty = 1000.0;
        let opts = BatchOptions { unplaced_penalty: penalty, target_gap: 0.0, ..BatchOptions::default() };
        let model = latency_model();
        let r = place_batch(&nodes, &workloads, &model, &opts);
        prop_assert!(r.gap >= 0.0);
        prop_assert!(r.lower_bound <= r.total_cost + 1e-9);
        prop_assert_eq!(r.placed + r.unplaced, r.replicas);

        let cost: Vec<Vec<Option<f64>>> = workloads.iter().map(|w| nodes.iter().map(|n| {
            (oracle_capacity(n, &w.request) > 0).then(|| oracle_rtt(n, &w.request.user_locations))
        }).collect()).collect();
        let mut used = vec![[0.0f64; 4]; nodes.len()];
        let mut got = 0.0;
        for (wi, (w, p)) in workloads.iter().zip(&r.workloads).enumerate() {
            prop_assert_eq!(&w.id, &p.id);
            prop_assert_eq!(p.placed + p.unplaced, w.request.replicas);
            for (id, k) in &p.assignments {
                let ni = nodes.iter().position(|n| &n.id == id).expect("known node");
                prop_assert!(cost[wi][ni].is_some(), "pair {} / {} rejected by the filter", w.id, id);
                got += f64::from(*k) * cost[wi][ni].unwrap_or(0.0);
                let q = w.request.requests.as_array();
                for (u, q) in used[ni].iter_mut().zip(q) {
                    *u += f64::from(*k) * q;
                }
            }
            got += f64::from(p.unplaced) * penalty;
        }
        for (n, u) in nodes.iter().zip(&used) {
            let f = n.free.as_array();
            for i in 0..4 {
                prop_assert!(u[i] <= f[i] + 1e-9, "{} resource {}: {} > {}", n.id, i, u[i], f[i]);
            }
        }
        prop_assert!((got - r.total_cost).abs() < 1e-6 * got.max(1.0));

        // Brute force over every replica's node (or unplaced).
        let reps: Vec<usize> = workloads.iter().enumerate()
            .flat_map(|(w, x)| std::iter::repeat_n(w, x.request.replicas as usize)).collect();
        let choices = nodes.len() + 1;
        let mut best = f64::INFINITY;
        for mut code in 0..choices.pow(reps.len() as u32) {
            let mut load = vec![[0.0f64; 4]; nodes.len()];
            let mut c = 0.0;
            let mut ok = true;
            for &w in &reps {
                let pick = code % choices;
                code /= choices;
                if pick == nodes.len() {
                    c += penalty;
                    continue;
                }
                match cost[w][pick] {
                    None => { ok = false; break; }
                    Some(x) => {
                        c += x;
                        for (l, q) in load[pick].iter_mut().zip(workloads[w].request.requests.as_array()) {
                            *l += q;
                        }
                    }
                }
            }
            if ok && nodes.iter().zip(&load).all(|(n, l)| {
                let f = n.free.as_array();
                (0..4).all(|i| l[i] <= f[i])
            }) {
                best = best.min(c);
            }
        }
        prop_assert!(best >= r.lower_bound - 1e-6 * best.max(1.0), "optimum {} < bound {}", best, r.lower_bound);
        prop_assert!(r.total_cost >= best - 1e-6 * best.max(1.0), "cost {} < optimum {}", r.total_cost, best);
    }
}
