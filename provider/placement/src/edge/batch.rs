//! Batch placement of many workloads' replicas at once (method and guarantee in the
//! [`crate::edge`] module docs).

use super::filter::{
    check_node_with, replica_capacity, user_rtt_pre, EdgeRejectionCounts, GeoPoint,
};
use super::model::{EdgeNode, EdgeRequest, EdgeResources};
use crate::requirements::FieldError;
use catalog::LatencyModel;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One workload of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchWorkload {
    /// Unique; output order and ties follow it.
    pub id: String,
    pub request: EdgeRequest,
}

/// Knobs of [`place_batch`].
#[derive(Clone, Debug, PartialEq)]
pub struct BatchOptions {
    /// How many ms of weighted latency one USD per replica-hour is worth (0 = latency only).
    /// A node without a configured cost is charged the highest configured cost.
    pub ms_per_usd_hour: f64,
    /// Cost of leaving one replica unplaced, in the same unit (ms); large so that placing
    /// wins over latency.
    pub unplaced_penalty: f64,
    /// Iterations at most of the LP phase (primal-dual steps over all column-generation
    /// rounds); 0 skips it (the flow phase and its repair only).
    pub max_iterations: u32,
    /// Stop as soon as `(cost - lower_bound) / lower_bound <= target_gap`.
    pub target_gap: f64,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            ms_per_usd_hour: 0.0,
            unplaced_penalty: 1.0e6,
            max_iterations: 1000,
            target_gap: 0.002,
        }
    }
}

impl BatchOptions {
    /// Field errors under `edge.batch.*`; [`place_batch`] falls back to the defaults for
    /// invalid values instead of panicking.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let check = |name: &str, v: f64, strict: bool, errs: &mut Vec<FieldError>| {
            if !v.is_finite() || v < 0.0 || (strict && v == 0.0) {
                let what = if strict { "> 0" } else { ">= 0" };
                errs.push(FieldError::new(
                    format!("edge.batch.{name}"),
                    format!("must be a finite number {what}, got {v}"),
                ));
            }
        };
        check("ms_per_usd_hour", self.ms_per_usd_hour, false, &mut errs);
        check("unplaced_penalty", self.unplaced_penalty, true, &mut errs);
        check("target_gap", self.target_gap, false, &mut errs);
        errs
    }
}

/// Where one workload's replicas went.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchWorkloadPlacement {
    pub id: String,
    /// `(node id, replicas)` in node-id order.
    pub assignments: Vec<(String, u32)>,
    pub placed: u32,
    pub unplaced: u32,
    /// Σ replicas × pair cost (without the unplaced penalty).
    pub cost: f64,
    /// Mean over placed replicas of the node's weighted mean RTT to the workload's users.
    pub mean_latency_ms: Option<f64>,
    /// Nodes that passed the shared filter for this workload.
    pub feasible_nodes: usize,
    pub rejected: EdgeRejectionCounts,
}

/// The batch result.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPlacement {
    /// In workload-id order.
    pub workloads: Vec<BatchWorkloadPlacement>,
    pub replicas: u64,
    pub placed: u64,
    pub unplaced: u64,
    pub nodes: usize,
    /// Objective: Σ placed pair costs + `unplaced_penalty` × unplaced.
    pub total_cost: f64,
    /// Lower bound on the optimal objective: the larger of the dominant-resource flow
    /// relaxation and the best Lagrangian bound.
    pub lower_bound: f64,
    /// `(total_cost - lower_bound) / lower_bound` (0 when both are 0; infinite when only the
    /// bound is 0).
    pub gap: f64,
    /// LP iterations run (0 when the flow phase already met `target_gap`).
    pub iterations: u32,
}

#[derive(Copy, Clone, PartialEq)]
pub(crate) struct Key(pub f64, pub u32);
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

pub(crate) const R: usize = 4;

/// The instance in dense form: workloads and nodes sorted by id; per workload its feasible
/// pairs sorted by (cost, node).
#[derive(Clone)]
pub(crate) struct Inst {
    pub(crate) size: Vec<[f64; R]>,
    pub(crate) reps: Vec<u32>,
    pub(crate) start: Vec<usize>,
    pub(crate) node: Vec<u32>,
    pub(crate) cost: Vec<f64>,
    pub(crate) rtt: Vec<f64>,
    pub(crate) cap: Vec<u32>,
    pub(crate) capacity: Vec<[f64; R]>,
    pub(crate) inv_cap: Vec<[f64; R]>,
    pub(crate) penalty: f64,
}

impl Inst {
    pub(crate) fn pairs(&self, w: usize) -> std::ops::Range<usize> {
        self.start[w]..self.start[w + 1]
    }
}

/// A primal solution: per workload the `(pair index, count)` list, residual capacities.
#[derive(Clone)]
struct Sol {
    x: Vec<Vec<(usize, u32)>>,
    unplaced: Vec<u32>,
    resid: Vec<[f64; R]>,
}

impl Sol {
    fn empty(inst: &Inst) -> Sol {
        Sol {
            x: vec![Vec::new(); inst.reps.len()],
            unplaced: inst.reps.clone(),
            resid: inst.capacity.clone(),
        }
    }
    fn room(&self, inst: &Inst, w: usize, n: usize) -> u32 {
        let r = res(&self.resid[n]);
        replica_capacity(&r, &res(&inst.size[w])).0
    }
    fn add(&mut self, inst: &Inst, w: usize, p: usize, k: u32) {
        let n = inst.node[p] as usize;
        for r in 0..R {
            self.resid[n][r] -= f64::from(k) * inst.size[w][r];
        }
        self.unplaced[w] -= k;
        match self.x[w].iter_mut().find(|(q, _)| *q == p) {
            Some(e) => e.1 += k,
            None => self.x[w].push((p, k)),
        }
    }
    fn remove(&mut self, inst: &Inst, w: usize, p: usize, k: u32) {
        let n = inst.node[p] as usize;
        for r in 0..R {
            self.resid[n][r] += f64::from(k) * inst.size[w][r];
        }
        self.unplaced[w] += k;
        if let Some(e) = self.x[w].iter_mut().find(|(q, _)| *q == p) {
            e.1 -= k;
        }
        self.x[w].retain(|e| e.1 > 0);
    }
    fn objective(&self, inst: &Inst) -> f64 {
        let mut t = 0.0;
        for (w, xs) in self.x.iter().enumerate() {
            for &(p, k) in xs {
                t += f64::from(k) * inst.cost[p];
            }
            t += f64::from(self.unplaced[w]) * inst.penalty;
        }
        t
    }
}

fn res(a: &[f64; R]) -> EdgeResources {
    EdgeResources::new(a[0], a[1], a[2], a[3])
}

fn sane(v: f64, default: f64) -> f64 {
    if v.is_finite() && v >= 0.0 {
        v
    } else {
        default
    }
}

/// Places every workload's replicas at once, minimising Σ pair cost (weighted mean RTT of the
/// workload's users to the node, plus `ms_per_usd_hour` × the node's hourly cost) subject to
/// every node's free cpu, memory, storage and network, and reports the optimality gap
/// against a Lagrangian lower bound. Deterministic and independent of input order.
pub fn place_batch(
    nodes: &[EdgeNode],
    workloads: &[BatchWorkload],
    latency: &LatencyModel,
    opts: &BatchOptions,
) -> BatchPlacement {
    let defaults = BatchOptions::default();
    let ms_per_usd = sane(opts.ms_per_usd_hour, 0.0);
    let penalty = match opts.unplaced_penalty {
        p if p.is_finite() && p > 0.0 => p,
        _ => defaults.unplaced_penalty,
    };
    let target_gap = sane(opts.target_gap, defaults.target_gap);

    let mut ns: Vec<&EdgeNode> = nodes.iter().collect();
    ns.sort_by(|a, b| a.id.cmp(&b.id));
    let mut ws: Vec<&BatchWorkload> = workloads.iter().collect();
    ws.sort_by(|a, b| a.id.cmp(&b.id));
    let max_cost = ns
        .iter()
        .filter_map(|n| n.hourly_cost)
        .filter(|c| c.is_finite() && *c >= 0.0)
        .fold(0.0, f64::max);

    let capacity: Vec<[f64; R]> = ns
        .iter()
        .map(|n| {
            n.free
                .as_array()
                .map(|v| if v.is_nan() || v < 0.0 { 0.0 } else { v })
        })
        .collect();
    let inv_cap: Vec<[f64; R]> = capacity
        .iter()
        .map(|c| {
            c.map(|v| {
                if v > 0.0 && v.is_finite() {
                    1.0 / v
                } else {
                    0.0
                }
            })
        })
        .collect();

    let mut inst = Inst {
        size: Vec::with_capacity(ws.len()),
        reps: Vec::with_capacity(ws.len()),
        start: vec![0],
        node: Vec::new(),
        cost: Vec::new(),
        rtt: Vec::new(),
        cap: Vec::new(),
        capacity,
        inv_cap,
        penalty,
    };
    let points: Vec<GeoPoint> = ns.iter().map(|n| GeoPoint::new(n.lat, n.lng)).collect();
    let mut outs: Vec<BatchWorkloadPlacement> = Vec::with_capacity(ws.len());
    let mut scratch: Vec<(f64, u32, f64, u32)> = Vec::new();
    for w in &ws {
        let req = &w.request;
        let mut rejected = EdgeRejectionCounts::default();
        let users: Vec<(GeoPoint, f64)> = req
            .user_locations
            .iter()
            .map(|u| (GeoPoint::new(u.lat, u.lng), u.weight))
            .collect();
        scratch.clear();
        for (ni, n) in ns.iter().enumerate() {
            match check_node_with(n, req, || user_rtt_pre(latency, &users, &points[ni])) {
                Err(r) => rejected.add(&r),
                Ok(fit) => {
                    let hourly = match n.hourly_cost {
                        Some(c) if c.is_finite() && c >= 0.0 => c,
                        _ => max_cost,
                    };
                    let rtt = fit.mean_rtt_ms.unwrap_or(0.0);
                    let rtt = if rtt.is_finite() { rtt } else { 0.0 };
                    let c = rtt + ms_per_usd * hourly;
                    scratch.push((c, ni as u32, rtt, fit.max_replicas.min(req.replicas)));
                }
            }
        }
        scratch.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(c, ni, rtt, cap) in &scratch {
            inst.node.push(ni);
            inst.cost.push(c);
            inst.rtt.push(rtt);
            inst.cap.push(cap);
        }
        inst.start.push(inst.node.len());
        let s = req.requests.as_array().map(|v| sane(v, 0.0));
        inst.size.push(s);
        inst.reps.push(req.replicas);
        outs.push(BatchWorkloadPlacement {
            id: w.id.clone(),
            assignments: Vec::new(),
            placed: 0,
            unplaced: req.replicas,
            cost: 0.0,
            mean_latency_ms: None,
            feasible_nodes: scratch.len(),
            rejected,
        });
    }

    let (best, lower_bound, iterations) = optimise(&inst, opts.max_iterations, target_gap);

    let mut placed_total = 0u64;
    for (w, out) in outs.iter_mut().enumerate() {
        let mut xs = best.x[w].clone();
        xs.sort_by_key(|&(p, _)| inst.node[p]);
        let mut lat = 0.0;
        for &(p, k) in &xs {
            out.cost += f64::from(k) * inst.cost[p];
            lat += f64::from(k) * inst.rtt[p];
            out.placed += k;
            out.assignments
                .push((ns[inst.node[p] as usize].id.clone(), k));
        }
        out.unplaced = best.unplaced[w];
        placed_total += u64::from(out.placed);
        if out.placed > 0 && !ws[w].request.user_locations.is_empty() {
            out.mean_latency_ms = Some(lat / f64::from(out.placed));
        }
    }
    let total_cost = best.objective(&inst);
    let lower_bound = lower_bound.min(total_cost);
    let gap = if lower_bound > 0.0 {
        ((total_cost - lower_bound) / lower_bound).max(0.0)
    } else if total_cost <= 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    let replicas: u64 = inst.reps.iter().map(|&r| u64::from(r)).sum();
    BatchPlacement {
        workloads: outs,
        replicas,
        placed: placed_total,
        unplaced: replicas - placed_total,
        nodes: ns.len(),
        total_cost,
        lower_bound,
        gap,
        iterations,
    }
}

/// Ejection-refill rounds and local search until they stop paying (at most 8 rounds). The
/// first round visits every node, later ones only the nodes whose residual capacity the
/// previous round changed.
fn polish(inst: &Inst, by_node: &[Vec<(u32, u32)>], sol: &mut Sol, bound: f64, target_gap: f64) {
    let mut visit = vec![true; inst.capacity.len()];
    // Per node, the largest request per resource among its pairs: a node with that much
    // left holds one more replica of every workload, so no eviction can pay there (the
    // local search already moved what is cheaper on it).
    let widest: Vec<[f64; R]> = by_node
        .iter()
        .map(|pairs| {
            let mut m = [0.0f64; R];
            for &(w, p) in pairs {
                if inst.cost[p as usize] < inst.penalty {
                    for (a, b) in m.iter_mut().zip(&inst.size[w as usize]) {
                        *a = a.max(*b);
                    }
                }
            }
            m
        })
        .collect();
    for _ in 0..8 {
        let before = sol.objective(inst);
        let resid = sol.resid.clone();
        for ((v, resid), wide) in visit.iter_mut().zip(&sol.resid).zip(&widest) {
            *v = *v && !fits(resid, wide);
        }
        if !eject_refill(inst, by_node, &visit, sol) {
            break;
        }
        improve(inst, sol);
        let ub = sol.objective(inst);
        if ub - bound <= target_gap * bound || ub > before * (1.0 - 1e-4) {
            break;
        }
        for ((v, old), new) in visit.iter_mut().zip(&resid).zip(&sol.resid) {
            *v = old != new;
        }
    }
}

/// Phase 1: exact min-cost flow on the dominant resource (bound, prices, rounded primal).
/// Phase 2 unless the gap already meets `target_gap`: the LP relaxation on all resources
/// (primal-dual iterations warm-started from the flow, column generation), the exact
/// Lagrangian bound at its prices, and its solution rounded and repaired. Returns (best
/// primal, best bound, LP iterations).
fn optimise(inst: &Inst, max_iterations: u32, target_gap: f64) -> (Sol, f64, u32) {
    let nn = inst.capacity.len();
    let nw = inst.reps.len();
    let (unit, cap) = super::flow::relaxation(inst);
    let fr = super::flow::solve(inst, &unit, &cap);
    let mut best = round_flow(inst, &fr.flow, &fr.unit);
    improve(inst, &mut best);
    let mut ub = best.objective(inst);
    let flow_bound = if fr.complete { fr.value.max(0.0) } else { 0.0 };
    if ub - flow_bound <= target_gap * flow_bound || max_iterations == 0 {
        if ub - flow_bound > target_gap * flow_bound {
            polish(inst, &node_pairs(inst), &mut best, flow_bound, target_gap);
        }
        return (best, flow_bound, 0);
    }
    // Phase 2. Warm start: the flow's replicas per pair and its node prices.
    let mut x0 = vec![0.0f64; inst.node.len()];
    let mut mu0 = vec![[0.0f64; R]; nn];
    if fr.complete {
        for w in 0..nw {
            for p in inst.pairs(w) {
                x0[p] = fr.flow[p] / fr.unit[w];
            }
        }
        let r = super::flow::dominant(inst);
        for (m, &v) in mu0.iter_mut().zip(&fr.price) {
            m[r] = v;
        }
    }
    let lr = super::lp::solve(inst, &x0, &best.x, &mu0, max_iterations);
    let bound = lr.bound.max(flow_bound);
    let mut s = round_lp(inst, &lr.x, &lr.mu);
    improve(inst, &mut s);
    if s.objective(inst) < ub {
        best = s;
        ub = best.objective(inst);
    }
    if ub - bound > target_gap * bound {
        polish(inst, &node_pairs(inst), &mut best, bound, target_gap);
    }
    (best, bound, lr.iterations)
}

/// An LP solution rounded: pairs by decreasing fractional value (then pair index) take
/// `round(x)` replicas within the real residual of every resource; the rest are placed by
/// [`fill`] in reduced-cost order at the LP prices.
fn round_lp(inst: &Inst, x: &[f64], mu: &[[f64; R]]) -> Sol {
    let mut pair_w = vec![0u32; inst.node.len()];
    for w in 0..inst.reps.len() {
        for p in inst.pairs(w) {
            pair_w[p] = w as u32;
        }
    }
    let mut order: Vec<usize> = (0..x.len()).filter(|&p| x[p] >= 0.5).collect();
    order.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
    let mut sol = Sol::empty(inst);
    for p in order {
        let w = pair_w[p] as usize;
        let k = ((x[p] + 0.5).floor() as u32)
            .min(sol.unplaced[w])
            .min(sol.room(inst, w, inst.node[p] as usize));
        if k > 0 {
            sol.add(inst, w, p, k);
        }
    }
    let order = regret_order(inst, mu);
    fill(inst, mu, &order, &mut sol);
    sol
}

/// The Lagrangian bound `L(μ)`: every workload independently takes its cheapest pairs by
/// reduced cost `c + Σ_r μ_nr · size_r` (each up to its cap) or pays the penalty, minus
/// `Σ μ_nr · capacity_nr`. Valid for every μ >= 0.
pub(crate) fn lagrangian(inst: &Inst, mu: &[[f64; R]]) -> f64 {
    let mut heap: BinaryHeap<Key> = BinaryHeap::new();
    let mut chosen: Vec<(f64, u32)> = Vec::new();
    let mut l = 0.0;
    for w in 0..inst.reps.len() {
        let need = inst.reps[w] as usize;
        let s = inst.size[w];
        heap.clear();
        for p in inst.pairs(w) {
            let c = inst.cost[p];
            if c >= inst.penalty {
                break;
            }
            if heap.len() == need && heap.peek().is_some_and(|top| c >= top.0) {
                break;
            }
            let m = &mu[inst.node[p] as usize];
            let rc = c + s[0] * m[0] + s[1] * m[1] + s[2] * m[2] + s[3] * m[3];
            if rc >= inst.penalty {
                continue;
            }
            let key = Key(rc, p as u32);
            if heap.len() < need {
                heap.push(key);
            } else if heap.peek().is_some_and(|t| key < *t) {
                heap.pop();
                heap.push(key);
            }
        }
        chosen.clear();
        chosen.extend(heap.drain().map(|k| (k.0, k.1)));
        chosen.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut left = inst.reps[w];
        for &(rc, p) in &chosen {
            if left == 0 {
                break;
            }
            let k = inst.cap[p as usize].min(left);
            left -= k;
            l += f64::from(k) * rc;
        }
        l += f64::from(left) * inst.penalty;
    }
    for (m, c) in mu.iter().zip(&inst.capacity) {
        for r in 0..R {
            if m[r] > 0.0 && c[r].is_finite() {
                l -= m[r] * c[r];
            }
        }
    }
    l
}

/// `floor(flow / unit)` replicas per pair, within the real residual of every resource.
fn round_flow(inst: &Inst, flow: &[f64], unit: &[f64]) -> Sol {
    let mut sol = Sol::empty(inst);
    for (w, &u) in unit.iter().enumerate().take(inst.reps.len()) {
        for p in inst.pairs(w) {
            if flow[p] > 0.0 {
                let k = ((flow[p] / u) + 1e-6).floor() as u32;
                let k = k
                    .min(sol.unplaced[w])
                    .min(sol.room(inst, w, inst.node[p] as usize));
                if k > 0 {
                    sol.add(inst, w, p, k);
                }
            }
        }
    }
    sol
}

/// Workloads by decreasing regret of reduced cost (best vs second-best pair), ties by id.
fn regret_order(inst: &Inst, mu: &[[f64; R]]) -> Vec<usize> {
    let nw = inst.reps.len();
    let rc_of = |w: usize, p: usize| {
        let s = inst.size[w];
        let m = &mu[inst.node[p] as usize];
        inst.cost[p] + s[0] * m[0] + s[1] * m[1] + s[2] * m[2] + s[3] * m[3]
    };
    let mut regret: Vec<(f64, usize)> = (0..nw)
        .map(|w| {
            let (mut b1, mut b2) = (f64::INFINITY, f64::INFINITY);
            for p in inst.pairs(w) {
                let v = rc_of(w, p);
                if v < b1 {
                    b2 = b1;
                    b1 = v;
                } else if v < b2 {
                    b2 = v;
                }
            }
            let r = if b2.is_finite() { b2 - b1 } else { f64::MAX };
            (r, w)
        })
        .collect();
    regret.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    regret.into_iter().map(|(_, w)| w).collect()
}

/// Places the unplaced replicas of `sol`, workloads in `order`, each filling its pairs in
/// reduced-cost order up to the real residual capacity.
fn fill(inst: &Inst, mu: &[[f64; R]], order: &[usize], sol: &mut Sol) {
    let rc_of = |w: usize, p: usize| {
        let s = inst.size[w];
        let m = &mu[inst.node[p] as usize];
        inst.cost[p] + s[0] * m[0] + s[1] * m[1] + s[2] * m[2] + s[3] * m[3]
    };
    let mut list: Vec<(f64, usize)> = Vec::new();
    for &w in order {
        if sol.unplaced[w] == 0 {
            continue;
        }
        list.clear();
        list.extend(inst.pairs(w).map(|p| (rc_of(w, p), p)));
        let head = (2 * inst.reps[w] as usize + 16).min(list.len());
        let cmp = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        if head < list.len() && head > 0 {
            list.select_nth_unstable_by(head - 1, cmp);
            list[..head].sort_by(cmp);
        } else {
            list.sort_by(cmp);
        }
        let mut sorted_rest = head >= list.len();
        let mut i = 0;
        while sol.unplaced[w] > 0 && i < list.len() {
            if i == head && !sorted_rest {
                list[head..].sort_by(cmp);
                sorted_rest = true;
            }
            let p = list[i].1;
            i += 1;
            if inst.cost[p] >= inst.penalty {
                continue;
            }
            let n = inst.node[p] as usize;
            let k = sol.room(inst, w, n).min(sol.unplaced[w]);
            if k > 0 {
                sol.add(inst, w, p, k);
            }
        }
    }
}

/// Local search with real costs: place unplaced replicas anywhere with room (cheapest
/// first), then move replicas to cheaper pairs with room, until no move helps (at most 4
/// passes).
fn improve(inst: &Inst, sol: &mut Sol) {
    for _ in 0..4 {
        let mut changed = false;
        for w in 0..inst.reps.len() {
            // Repair.
            for p in inst.pairs(w) {
                if sol.unplaced[w] == 0 || inst.cost[p] >= inst.penalty {
                    break;
                }
                let k = sol
                    .room(inst, w, inst.node[p] as usize)
                    .min(sol.unplaced[w]);
                if k > 0 {
                    sol.add(inst, w, p, k);
                    changed = true;
                }
            }
            // Moves: the most expensive assigned pair first; targets in cost order.
            let mut xs = sol.x[w].clone();
            xs.sort_by(|a, b| {
                inst.cost[b.0]
                    .total_cmp(&inst.cost[a.0])
                    .then(a.0.cmp(&b.0))
            });
            for (p_from, k_from) in xs {
                let mut left = k_from;
                for q in inst.pairs(w) {
                    if left == 0 || inst.cost[q] >= inst.cost[p_from] {
                        break;
                    }
                    let k = sol.room(inst, w, inst.node[q] as usize).min(left);
                    if k > 0 {
                        sol.remove(inst, w, p_from, k);
                        sol.add(inst, w, q, k);
                        left -= k;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// For every node, the feasible pairs `(workload, pair)` that end on it.
fn node_pairs(inst: &Inst) -> Vec<Vec<(u32, u32)>> {
    let mut by_node: Vec<Vec<(u32, u32)>> = vec![Vec::new(); inst.capacity.len()];
    for w in 0..inst.reps.len() {
        for p in inst.pairs(w) {
            by_node[inst.node[p] as usize].push((w as u32, p as u32));
        }
    }
    by_node
}

/// `a += k × b`.
fn axpy(a: &mut [f64; R], k: f64, b: &[f64; R]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += k * y;
    }
}

fn fits(resid: &[f64; R], size: &[f64; R]) -> bool {
    (0..R).all(|r| size[r] <= resid[r] + 1e-9 * resid[r].abs().max(1.0))
}

/// One replica that could move onto the node under repair: `(gain, workload, pair on the
/// node, source pair or usize::MAX for an unplaced replica)`.
type Item = (f64, u32, u32, usize);

/// Ejection move on every node in turn: evict one or two replicas of one workload v from
/// node b, use the freed room (with what was already free) for replicas that are cheaper on
/// b than where they are (unplaced ones first, then most gain first; first fit), and send
/// the evicted replicas to v's cheapest pairs with room, counting the room the refilled
/// replicas leave behind (so a swap is one move). Applied when the total cost drops. This mixes replicas with complementary resource
/// profiles on contended nodes (memory-heavy with cpu-heavy), which neither the rounding
/// nor single moves can do. Returns whether anything changed.
fn eject_refill(inst: &Inst, by_node: &[Vec<(u32, u32)>], visit: &[bool], sol: &mut Sol) -> bool {
    const PER_WORKLOAD: usize = 8;
    const EVICT: u32 = 2;
    let mut changed = false;
    let mut dests: Vec<usize> = Vec::new();
    let mut freed: Vec<(u32, [f64; R])> = Vec::new();
    let mut best_dests: Vec<usize> = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    let mut on_b: Vec<(usize, usize)> = Vec::new();
    let mut pick: Vec<usize> = Vec::new();
    let mut best_pick: Vec<usize> = Vec::new();
    for (b, pairs) in by_node.iter().enumerate() {
        if !visit[b] {
            continue;
        }
        for _round in 0..16 {
            items.clear();
            on_b.clear();
            for &(w, p) in pairs {
                let (w, p) = (w as usize, p as usize);
                let cb = inst.cost[p];
                if cb >= inst.penalty {
                    continue;
                }
                let start = items.len();
                let limit = (inst.cap[p] as usize).min(PER_WORKLOAD);
                for _ in 0..(sol.unplaced[w] as usize).min(limit) {
                    items.push((inst.penalty - cb, w as u32, p as u32, usize::MAX));
                }
                for &(q, k) in &sol.x[w] {
                    if q == p {
                        on_b.push((w, p));
                    } else if inst.cost[q] > cb {
                        for _ in 0..(k as usize).min(limit) {
                            items.push((inst.cost[q] - cb, w as u32, p as u32, q));
                        }
                    }
                }
                if items.len() - start > limit {
                    items[start..].sort_by(|a, b| b.0.total_cmp(&a.0).then(a.3.cmp(&b.3)));
                    items.truncate(start + limit);
                }
            }
            if items.is_empty() || on_b.is_empty() {
                break;
            }
            items.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.3.cmp(&b.3)));
            // (net gain, evicted workload, its pair on b, destination pair)
            let mut best: Option<(f64, usize, usize, u32)> = None;
            for &(v, pv) in &on_b {
                let on = sol.x[v].iter().find(|e| e.0 == pv).map_or(0, |e| e.1);
                for e in 1..=on.min(EVICT) {
                    let mut resid = sol.resid[b];
                    axpy(&mut resid, f64::from(e), &inst.size[v]);
                    // Refill: most gain first, first fit.
                    let mut gain = 0.0;
                    pick.clear();
                    freed.clear();
                    for (i, it) in items.iter().enumerate() {
                        let w = it.1 as usize;
                        if w == v || !fits(&resid, &inst.size[w]) {
                            continue;
                        }
                        axpy(&mut resid, -1.0, &inst.size[w]);
                        gain += it.0;
                        pick.push(i);
                        if it.3 != usize::MAX {
                            freed.push((inst.node[it.3], inst.size[w]));
                        }
                    }
                    // The e evicted replicas go to v's cheapest pairs with room, counting
                    // the room the refill frees where its replicas come from (a swap).
                    dests.clear();
                    let mut loss = -f64::from(e) * inst.cost[pv];
                    for q in inst.pairs(v) {
                        if dests.len() == e as usize || inst.cost[q] >= inst.penalty {
                            break;
                        }
                        if q == pv {
                            continue;
                        }
                        let n = inst.node[q];
                        let mut room = sol.resid[n as usize];
                        for (fnode, fsize) in &freed {
                            if *fnode == n {
                                axpy(&mut room, 1.0, fsize);
                            }
                        }
                        while dests.len() < e as usize && fits(&room, &inst.size[v]) {
                            axpy(&mut room, -1.0, &inst.size[v]);
                            dests.push(q);
                            loss += inst.cost[q];
                        }
                    }
                    if dests.len() < e as usize {
                        break;
                    }
                    let net = gain - loss;
                    if net > 1e-9 * inst.cost[pv].abs().max(1.0)
                        && best.is_none_or(|(g, ..)| net > g)
                    {
                        best = Some((net, v, pv, e));
                        best_pick.clone_from(&pick);
                        best_dests.clone_from(&dests);
                    }
                }
            }
            let Some((_, v, pv, k)) = best else {
                break;
            };
            sol.remove(inst, v, pv, k);
            for &i in &best_pick {
                let (_, w, p, q) = items[i];
                let (w, p) = (w as usize, p as usize);
                if q == usize::MAX {
                    if sol.unplaced[w] == 0 {
                        continue;
                    }
                } else if sol.x[w].iter().all(|&(pq, k)| pq != q || k == 0) {
                    continue;
                } else {
                    sol.remove(inst, w, q, 1);
                }
                if fits(&sol.resid[b], &inst.size[w]) {
                    sol.add(inst, w, p, 1);
                } else if q != usize::MAX {
                    sol.add(inst, w, q, 1);
                }
            }
            for &dest in &best_dests {
                let n = inst.node[dest] as usize;
                // The planned room is there unless a refill replica could not move; then
                // the cheapest pair with room (possibly back on b), else unplaced.
                let q = if sol.room(inst, v, n) > 0 {
                    Some(dest)
                } else {
                    inst.pairs(v)
                        .take_while(|&q| inst.cost[q] < inst.penalty)
                        .find(|&q| sol.room(inst, v, inst.node[q] as usize) > 0)
                };
                if let Some(q) = q {
                    sol.add(inst, v, q, 1);
                }
            }
            changed = true;
        }
    }
    changed
}
