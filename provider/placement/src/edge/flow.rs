//! Min-cost flow relaxation of the batch problem on its dominant resource (successive
//! shortest paths with Dijkstra and potentials, one workload source at a time).

use super::batch::{Inst, Key};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Optimal fractional flow: per pair, the flow in units of the dominant resource; the
/// objective value (a lower bound on the batch optimum).
pub(crate) struct FlowResult {
    pub flow: Vec<f64>,
    pub value: f64,
    /// Dominant-resource amount of one replica, per workload.
    pub unit: Vec<f64>,
    /// False if a safety limit stopped the augmentation early (then `value` is no bound).
    pub complete: bool,
    /// Node prices of the dominant resource (cost per unit, >= 0) from the final
    /// potentials: 0 on nodes with room left.
    pub price: Vec<f64>,
}

/// The resource with the highest total demand / total free capacity (cpu or memory; both
/// are > 0 for every validated request).
pub(crate) fn dominant(inst: &Inst) -> usize {
    let mut best = (0usize, f64::NEG_INFINITY);
    for r in 0..2 {
        let demand: f64 = inst
            .size
            .iter()
            .zip(&inst.reps)
            .map(|(s, &n)| s[r] * f64::from(n))
            .sum();
        let cap: f64 = inst
            .capacity
            .iter()
            .map(|c| if c[r].is_finite() { c[r] } else { 0.0 })
            .sum();
        let ratio = if cap > 0.0 {
            demand / cap
        } else {
            f64::INFINITY
        };
        if ratio > best.1 {
            best = (r, ratio);
        }
    }
    best.0
}

/// Relaxation units: the dominant resource alone (value = lower bound).
pub(crate) fn relaxation(inst: &Inst) -> (Vec<f64>, Vec<f64>) {
    let r = dominant(inst);
    let unit = inst.size.iter().map(|s| s[r]).collect();
    let cap = inst.capacity.iter().map(|c| c[r]).collect();
    (unit, cap)
}

/// Arcs of a settled workload relaxed per scan event (64 measured fastest on the benchmark
/// instances; 16 and 128 were 20-50 % slower). Relaxing an arc early is always
/// valid (the workload's distance is final); a chunk trades a few extra relaxations for
/// far fewer heap operations than one event per arc.
const SCAN_CHUNK: usize = 64;

pub(crate) fn solve(inst: &Inst, unit: &[f64], node_cap: &[f64]) -> FlowResult {
    let nw = inst.reps.len();
    let nn = inst.capacity.len();
    // Vertices: workloads 0..nw, nodes nw..nw+nn, the "unplaced" vertex nw+nn.
    let nv = nw + nn + 1;
    let dummy = nw + nn;
    let unit: Vec<f64> = unit
        .iter()
        .map(|&u| if u > 1e-12 && u.is_finite() { u } else { 1e-12 })
        .collect();
    let node_cap: Vec<f64> = node_cap
        .iter()
        .map(|&c| {
            if c.is_nan() || c < 0.0 {
                0.0
            } else if c.is_finite() {
                c
            } else {
                f64::MAX / 4.0
            }
        })
        .collect();
    let mut used = vec![0.0f64; nn];
    let mut flow = vec![0.0f64; inst.node.len()];
    let mut pair_w = vec![0u32; inst.node.len()];
    for w in 0..nw {
        for p in inst.pairs(w) {
            pair_w[p] = w as u32;
        }
    }
    // Pairs with positive flow, per node (may hold stale zero-flow entries).
    let mut on_node: Vec<Vec<u32>> = vec![Vec::new(); nn];
    let mut pot = vec![0.0f64; nv];
    let mut dist = vec![f64::INFINITY; nv];
    let mut done = vec![false; nv];
    let mut pred = vec![usize::MAX; nv];
    let mut cursor = vec![0usize; nw];
    let mut max_node_pot = 0.0f64;
    let mut touched: Vec<usize> = Vec::new();
    let mut heap: BinaryHeap<Reverse<Key>> = BinaryHeap::new();
    let eps = 1e-9;
    let mut complete = true;

    for w in 0..nw {
        let mut supply = f64::from(inst.reps[w]) * unit[w];
        let mut guard = 0usize;
        while supply > eps * unit[w] && guard < 4 * (nw + nn) + 64 {
            guard += 1;
            heap.clear();
            touched.clear();
            dist[w] = 0.0;
            touched.push(w);
            heap.push(Reverse(Key(0.0, w as u32)));
            let mut target = None;
            let mut dummy_from = w;
            while let Some(Reverse(Key(d, u))) = heap.pop() {
                let u = u as usize;
                if u >= nv {
                    // Scan event: relax the next SCAN_CHUNK arcs of workload `uw`; its key
                    // is a lower bound of the first one's tentative distance (arcs are sorted by cost and
                    // every node potential is <= max_node_pot).
                    let uw = u - nv;
                    let first = cursor[uw];
                    let end = inst.start[uw + 1];
                    let last = (first + SCAN_CHUNK).min(end);
                    let du = dist[uw];
                    if last < end {
                        cursor[uw] = last;
                        let key = du + inst.cost[last] / unit[uw] + pot[uw] - max_node_pot;
                        heap.push(Reverse(Key(key.max(d), (nv + uw) as u32)));
                    }
                    for (p, &f) in flow.iter().enumerate().take(last).skip(first) {
                        if f >= f64::from(inst.cap[p]) * unit[uw] - eps * unit[uw] {
                            continue;
                        }
                        let v = nw + inst.node[p] as usize;
                        if done[v] {
                            continue;
                        }
                        let rc = inst.cost[p] / unit[uw] + pot[uw] - pot[v];
                        let nd = du + rc.max(0.0);
                        if nd < dist[v] {
                            if dist[v].is_infinite() {
                                touched.push(v);
                            }
                            dist[v] = nd;
                            pred[v] = p;
                            heap.push(Reverse(Key(nd, v as u32)));
                        }
                    }
                    continue;
                }
                if done[u] || d > dist[u] {
                    continue;
                }
                done[u] = true;
                if u == dummy {
                    target = Some(u);
                    break;
                }
                if u >= nw {
                    let n = u - nw;
                    if node_cap[n] - used[n] > eps * node_cap[n].max(1.0) {
                        target = Some(u);
                        break;
                    }
                    // Backward arcs: push another workload's flow off this node.
                    for &p in &on_node[n] {
                        let p = p as usize;
                        if flow[p] <= 0.0 {
                            continue;
                        }
                        let w2 = pair_w[p] as usize;
                        if done[w2] {
                            continue;
                        }
                        let rc = -inst.cost[p] / unit[w2] + pot[u] - pot[w2];
                        let nd = d + rc.max(0.0);
                        if nd < dist[w2] {
                            if dist[w2].is_infinite() {
                                touched.push(w2);
                            }
                            dist[w2] = nd;
                            pred[w2] = p;
                            heap.push(Reverse(Key(nd, w2 as u32)));
                        }
                    }
                } else {
                    // Lazy scan of u's arcs in cost order (see `scan_key`).
                    let first = inst.start[u];
                    if first < inst.start[u + 1] {
                        cursor[u] = first;
                        let key = d + inst.cost[first] / unit[u] + pot[u] - max_node_pot;
                        heap.push(Reverse(Key(key, (nv + u) as u32)));
                    }
                    let rc = inst.penalty / unit[u] + pot[u] - pot[dummy];
                    let nd = d + rc.max(0.0);
                    if nd < dist[dummy] {
                        if dist[dummy].is_infinite() {
                            touched.push(dummy);
                        }
                        dist[dummy] = nd;
                        dummy_from = u;
                        heap.push(Reverse(Key(nd, dummy as u32)));
                    }
                }
            }
            let mut amount = 0.0;
            if let Some(t) = target {
                // Bottleneck along the path t <- ... <- w.
                amount = supply;
                if t != dummy {
                    let n = t - nw;
                    amount = amount.min(node_cap[n] - used[n]);
                }
                let mut v = t;
                while v != w {
                    if v == dummy {
                        v = dummy_from;
                    } else if v >= nw {
                        let p = pred[v];
                        let uw = pair_w[p] as usize;
                        amount = amount.min(f64::from(inst.cap[p]) * unit[uw] - flow[p]);
                        v = uw;
                    } else {
                        let p = pred[v];
                        amount = amount.min(flow[p]);
                        v = nw + inst.node[p] as usize;
                    }
                }
                if amount > 0.0 {
                    if t != dummy {
                        used[t - nw] += amount;
                    }
                    let mut v = t;
                    while v != w {
                        if v == dummy {
                            v = dummy_from;
                        } else if v >= nw {
                            let p = pred[v];
                            if flow[p] <= 0.0 {
                                on_node[v - nw].push(p as u32);
                            }
                            flow[p] += amount;
                            v = pair_w[p] as usize;
                        } else {
                            let p = pred[v];
                            flow[p] -= amount;
                            if flow[p] < eps * unit[v] {
                                flow[p] = 0.0;
                            }
                            v = nw + inst.node[p] as usize;
                        }
                    }
                    supply -= amount;
                    // Potentials: settled vertices move by d(v) - d(t).
                    let dt = dist[t];
                    for &v in &touched {
                        if done[v] {
                            pot[v] += dist[v] - dt;
                        }
                    }
                    max_node_pot = pot[nw..nw + nn]
                        .iter()
                        .copied()
                        .fold(f64::NEG_INFINITY, f64::max)
                        .min(0.0);
                }
            }
            for &v in &touched {
                dist[v] = f64::INFINITY;
                done[v] = false;
            }
            if amount <= 0.0 {
                break;
            }
        }
        if supply > eps * unit[w] {
            complete = false;
        }
    }
    // Objective: pair costs plus the penalty for what went to the dummy.
    let mut total = 0.0;
    let mut placed = vec![0.0f64; nw];
    for w in 0..nw {
        for p in inst.pairs(w) {
            total += flow[p] / unit[w] * inst.cost[p];
            placed[w] += flow[p] / unit[w];
        }
        total += (f64::from(inst.reps[w]) - placed[w]).max(0.0) * inst.penalty;
    }
    // Only full nodes are ever settled before the augmentation's target, so a node with
    // room keeps potential 0 and a full node's price is -potential.
    let price = (0..nn)
        .map(|n| {
            let v = -pot[nw + n];
            if v.is_finite() && v > 0.0 {
                v
            } else {
                0.0
            }
        })
        .collect();
    FlowResult {
        flow,
        value: total,
        unit,
        complete,
        price,
    }
}
