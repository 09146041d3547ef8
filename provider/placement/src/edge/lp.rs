//! LP relaxation of the batch problem on all four resources, solved approximately by a
//! restarted primal-dual hybrid gradient method (PDHG, diagonally preconditioned) over a
//! restricted set of pairs that grows by column generation. Nothing here is trusted for
//! certification: the bound returned is the exact Lagrangian `L(μ)` over every pair at the
//! prices of a round (valid for any μ >= 0, however rough the iteration), and the caller
//! rounds and repairs the returned fractional `x`.

use super::batch::{lagrangian, Inst, R};

/// Approximate LP solution: fractional replicas per pair (indexed like `Inst::node`) and
/// node prices `μ[n][r]` (cost per unit of resource r on node n, >= 0) of the last round,
/// and the best Lagrangian bound over the rounds' prices.
pub(crate) struct LpResult {
    pub x: Vec<f64>,
    pub mu: Vec<[f64; R]>,
    /// max over rounds of the exact `L(μ)` (all pairs): a valid lower bound.
    pub bound: f64,
    /// PDHG iterations run (over all column-generation rounds).
    pub iterations: u32,
}

/// How often (in iterations) the restart test runs.
const CHECK: u32 = 64;
/// PDHG iterations between two pricing rounds.
const PER_ROUND: u32 = 200;
/// Columns that join the master per workload and pricing round, at most.
const PER_WORKLOAD: usize = 3;
/// Relative tolerance of the restricted master (duality gap and scaled residual).
const TOL: f64 = 1e-4;
/// Cheapest pairs per workload in the initial restricted set.
const FIRST_PAIRS: usize = 6;

/// Restricted LP over the columns `cols` (pair indices), in scaled form: the row of
/// workload w is divided by `reps_w`, the row of (n, r) by `C_nr`, so every rhs is 1.
struct Master {
    cols: Vec<usize>,
    /// Per column: cost, cap, and its capacity-row entries `ent[start[j]..start[j + 1]]`
    /// as (row, scaled coefficient).
    cost: Vec<f64>,
    cap: Vec<f64>,
    start: Vec<usize>,
    ent: Vec<(u32, f64)>,
    inv_reps: Vec<f64>,
    reps: Vec<f64>,
    penalty: f64,
    /// Per column: its workload.
    cw: Vec<u32>,
    /// Per column: primal step.
    tau: Vec<f64>,
    /// Row index of (n, r) or `usize::MAX` when the row is left out (cannot bind).
    row: Vec<[usize; R]>,
    /// Per capacity row: dual step.
    sig_cap: Vec<f64>,
    /// Per workload row: dual step.
    sig_w: Vec<f64>,
    /// Primal step of the unplaced column of each workload.
    tau_u: Vec<f64>,
    ncap: usize,
}

impl Master {
    fn build(inst: &Inst, cols: Vec<usize>, pair_w: &[u32]) -> Master {
        let nn = inst.capacity.len();
        let nw = inst.reps.len();
        // Rows that can bind: Σ size × cap over the columns on the node exceeds capacity.
        let mut load = vec![[0.0f64; R]; nn];
        for &p in &cols {
            let w = pair_w[p] as usize;
            let n = inst.node[p] as usize;
            for (l, sz) in load[n].iter_mut().zip(&inst.size[w]) {
                *l += sz * f64::from(inst.cap[p]);
            }
        }
        let mut row = vec![[usize::MAX; R]; nn];
        let mut ncap = 0;
        for ((rw, l), inv) in row.iter_mut().zip(&load).zip(&inst.inv_cap) {
            for r in 0..R {
                if inv[r] > 0.0 && l[r] * inv[r] > 1.0 + 1e-9 {
                    rw[r] = ncap;
                    ncap += 1;
                }
            }
        }
        let mut sig_cap = vec![0.0f64; ncap];
        let mut sig_w = vec![0.0f64; nw];
        let mut tau = Vec::with_capacity(cols.len());
        let mut cw = Vec::with_capacity(cols.len());
        let mut start = vec![0usize];
        let mut ent = Vec::new();
        for &p in &cols {
            let w = pair_w[p] as usize;
            let n = inst.node[p] as usize;
            let inv_reps = 1.0 / f64::from(inst.reps[w].max(1));
            let mut colsum = inv_reps;
            sig_w[w] += inv_reps;
            for (r, &i) in row[n].iter().enumerate() {
                if i != usize::MAX {
                    let a = inst.size[w][r] * inst.inv_cap[n][r];
                    colsum += a;
                    sig_cap[i] += a;
                    ent.push((i as u32, a));
                }
            }
            start.push(ent.len());
            tau.push(1.0 / colsum);
            cw.push(w as u32);
        }
        let cost = cols.iter().map(|&p| inst.cost[p]).collect();
        let cap = cols.iter().map(|&p| f64::from(inst.cap[p])).collect();
        let inv_reps = inst
            .reps
            .iter()
            .map(|&r| 1.0 / f64::from(r.max(1)))
            .collect();
        let mut tau_u = Vec::with_capacity(nw);
        for (w, s) in sig_w.iter_mut().enumerate() {
            let inv_reps = 1.0 / f64::from(inst.reps[w].max(1));
            *s = 1.0 / (*s + inv_reps);
            tau_u.push(f64::from(inst.reps[w].max(1)));
        }
        for s in sig_cap.iter_mut() {
            *s = if *s > 0.0 { 1.0 / *s } else { 0.0 };
        }
        Master {
            reps: inst.reps.iter().map(|&r| f64::from(r)).collect(),
            penalty: inst.penalty,
            cols,
            cost,
            cap,
            start,
            ent,
            inv_reps,
            cw,
            tau,
            row,
            sig_cap,
            sig_w,
            tau_u,
            ncap,
        }
    }
}

/// State of the primal-dual iteration: column values, unplaced values, scaled duals.
#[derive(Clone)]
struct Point {
    x: Vec<f64>,
    u: Vec<f64>,
    pi: Vec<f64>,
    mu: Vec<f64>,
}

/// Solves the LP relaxation approximately: rounds of [`PER_ROUND`] PDHG iterations on the
/// restricted master, each followed by pricing every pair at the current duals (the
/// [`PER_WORKLOAD`] most negative reduced costs of each workload join the master), until
/// no column prices out and the iteration has converged, or after `budget` iterations.
/// Warm start: `x0` (replicas per pair), the pairs of the feasible solution `feasible`
/// (so the restricted master is feasible) and node prices `mu0`.
pub(crate) fn solve(
    inst: &Inst,
    x0: &[f64],
    feasible: &[Vec<(usize, u32)>],
    mu0: &[[f64; R]],
    budget: u32,
) -> LpResult {
    let nw = inst.reps.len();
    let mut pair_w = vec![0u32; inst.node.len()];
    for w in 0..nw {
        for p in inst.pairs(w) {
            pair_w[p] = w as u32;
        }
    }
    let mut in_set = vec![false; inst.node.len()];
    let mut cols: Vec<usize> = Vec::new();
    for (w, feasible_w) in feasible.iter().enumerate().take(nw) {
        let mut cum = 0u64;
        for (i, p) in inst.pairs(w).enumerate() {
            let cheap = i < FIRST_PAIRS || cum < 2 * u64::from(inst.reps[w]);
            if (cheap || x0[p] > 0.0) && inst.cost[p] < inst.penalty {
                in_set[p] = true;
                cols.push(p);
                cum += u64::from(inst.cap[p]);
            }
        }
        for &(p, _) in feasible_w {
            if !in_set[p] && inst.cost[p] < inst.penalty {
                in_set[p] = true;
                cols.push(p);
            }
        }
    }
    // Warm start: x from x0, unplaced the rest; π̂_w = the dearest pair w uses.
    let mut xs: Vec<f64> = vec![0.0; inst.node.len()];
    let mut pi_hat = vec![0.0f64; nw];
    let mut u = vec![0.0f64; nw];
    for w in 0..nw {
        let mut placed = 0.0;
        for p in inst.pairs(w) {
            if in_set[p] {
                xs[p] = x0[p].clamp(0.0, f64::from(inst.cap[p]));
                placed += xs[p];
                if xs[p] > 0.0 {
                    let m = &mu0[inst.node[p] as usize];
                    let s = inst.size[w];
                    let rc = inst.cost[p] + s[0] * m[0] + s[1] * m[1] + s[2] * m[2] + s[3] * m[3];
                    pi_hat[w] = pi_hat[w].max(rc);
                }
            }
        }
        u[w] = (f64::from(inst.reps[w]) - placed).max(0.0);
        if u[w] > 0.0 {
            pi_hat[w] = inst.penalty;
        }
    }
    let mut mu_hat = mu0.to_vec();
    let mut iterations = 0u32;
    let mut omega = 0.0;
    let mut bound = f64::NEG_INFINITY;
    loop {
        let m = Master::build(inst, std::mem::take(&mut cols), &pair_w);
        let mut z = Point {
            x: m.cols.iter().map(|&p| xs[p]).collect(),
            u: u.clone(),
            pi: (0..nw)
                .map(|w| pi_hat[w] * f64::from(inst.reps[w].max(1)))
                .collect(),
            mu: vec![0.0; m.ncap],
        };
        for ((rw, mh), c) in m.row.iter().zip(&mu_hat).zip(&inst.capacity) {
            for r in 0..R {
                if rw[r] != usize::MAX {
                    z.mu[rw[r]] = mh[r] * c[r];
                }
            }
        }
        if omega <= 0.0 {
            // Primal weight: a tenth of the mean column cost (the dual prices live on the
            // cost scale, the primal on the replica scale; 0.1 gave the smallest worst gap
            // after 1,000 iterations on four 10k-replica two-binding instances, against
            // 0.03, 0.06, 0.15, 0.25, 0.5 and 1).
            let mean = m.cost.iter().sum::<f64>() / m.cost.len().max(1) as f64;
            omega = if mean.is_finite() && mean > 0.0 {
                0.1 * mean
            } else {
                1.0
            };
        }
        let left = budget.saturating_sub(iterations).min(PER_ROUND);
        let (ran, converged) = pdhg(&m, &mut z, left, omega);
        iterations += ran;
        // Unscaled prices.
        for (w, ph) in pi_hat.iter_mut().enumerate() {
            *ph = sanitize(z.pi[w] * m.inv_reps[w]);
        }
        u.clone_from(&z.u);
        for ((mh, rw), inv) in mu_hat.iter_mut().zip(&m.row).zip(&inst.inv_cap) {
            for r in 0..R {
                mh[r] = if rw[r] == usize::MAX {
                    0.0
                } else {
                    sanitize(z.mu[rw[r]] * inv[r]).max(0.0)
                };
            }
        }
        for (j, &p) in m.cols.iter().enumerate() {
            xs[p] = z.x[j];
        }
        bound = bound.max(lagrangian(inst, &mu_hat));
        // Pricing over every pair: rc = c + Σ size μ̂ − π̂ < 0 only if c < π̂.
        cols = m.cols;
        let mut added = 0usize;
        let mut neg: Vec<(f64, usize)> = Vec::new();
        for (w, &ph) in pi_hat.iter().enumerate() {
            let s = inst.size[w];
            neg.clear();
            for p in inst.pairs(w) {
                let c = inst.cost[p];
                if c >= ph || c >= inst.penalty {
                    break;
                }
                if in_set[p] {
                    continue;
                }
                let mu = &mu_hat[inst.node[p] as usize];
                let rc = c + s[0] * mu[0] + s[1] * mu[1] + s[2] * mu[2] + s[3] * mu[3] - ph;
                if rc < -1e-6 * (1.0 + c.abs()) {
                    neg.push((rc, p));
                }
            }
            neg.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for &(_, p) in neg.iter().take(PER_WORKLOAD) {
                in_set[p] = true;
                cols.push(p);
                added += 1;
            }
        }
        if (added == 0 && converged) || iterations >= budget || ran == 0 {
            break;
        }
    }
    LpResult {
        x: xs,
        mu: mu_hat,
        bound,
        iterations,
    }
}

fn sanitize(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Primal and dual objective (unscaled) and the scaled primal residual of a point. The dual
/// objective counts each column's bound (`min(0, rc) × cap`), so it is the restricted
/// master's Lagrangian value at the point's duals.
fn measure(m: &Master, z: &Point, act_w: &mut [f64], act_c: &mut [f64]) -> (f64, f64, f64) {
    act_w.iter_mut().for_each(|a| *a = 0.0);
    act_c.iter_mut().for_each(|a| *a = 0.0);
    let mut pobj = 0.0;
    let mut dobj = 0.0;
    for (j, &x) in z.x.iter().enumerate() {
        pobj += m.cost[j] * x;
        act_w[m.cw[j] as usize] += x;
        for &(i, a) in &m.ent[m.start[j]..m.start[j + 1]] {
            act_c[i as usize] += x * a;
        }
        dobj += reduced(m, z, j).min(0.0) * m.cap[j];
    }
    let mut res = 0.0f64;
    for (w, &reps) in m.reps.iter().enumerate() {
        pobj += m.penalty * z.u[w];
        if reps > 0.0 {
            let e = (act_w[w] + z.u[w]) * m.inv_reps[w] - 1.0;
            res += e * e;
            dobj += z.pi[w];
        }
        dobj += (m.penalty - z.pi[w] * m.inv_reps[w]).min(0.0) * reps;
    }
    for (i, &a) in act_c.iter().enumerate() {
        let e = (a - 1.0).max(0.0);
        res += e * e;
        dobj -= z.mu[i];
    }
    (pobj, dobj, res.sqrt())
}

/// Unscaled reduced cost of column j.
#[inline]
fn reduced(m: &Master, z: &Point, j: usize) -> f64 {
    let w = m.cw[j] as usize;
    let mut g = m.cost[j] - z.pi[w] * m.inv_reps[w];
    for &(i, a) in &m.ent[m.start[j]..m.start[j + 1]] {
        g += z.mu[i as usize] * a;
    }
    g
}

/// Restarted PDHG on the restricted master from `z` with primal weight `omega` (primal
/// steps `tau / omega`, dual steps `sigma × omega`; the diagonal steps satisfy the
/// Pock–Chambolle condition, so any weight converges). Every [`CHECK`] iterations the
/// current point and the running average are measured; the iteration restarts from the
/// better one once its error fell to a fifth of the last restart's. Returns (iterations,
/// converged).
fn pdhg(m: &Master, z: &mut Point, budget: u32, omega: f64) -> (u32, bool) {
    let nw = m.reps.len();
    let ncol = m.cols.len();
    let mut act_w = vec![0.0f64; nw];
    let mut act_c = vec![0.0f64; m.ncap];
    let mut avg = z.clone();
    let mut navg = 0.0f64;
    let err_of = |(pobj, dobj, res): (f64, f64, f64)| {
        let gap = (pobj - dobj).abs() / (1.0 + pobj.abs() + dobj.abs());
        gap.max(res)
    };
    let mut last_err = err_of(measure(m, z, &mut act_w, &mut act_c));
    if last_err <= TOL {
        return (0, true);
    }
    let inv_omega = 1.0 / omega;
    let mut it = 0u32;
    while it < budget {
        it += 1;
        // Primal step (projected on the bounds), extrapolation, and the row activities of
        // the extrapolated point.
        act_w.iter_mut().for_each(|a| *a = 0.0);
        act_c.iter_mut().for_each(|a| *a = 0.0);
        navg += 1.0;
        let k = 1.0 / navg;
        for j in 0..ncol {
            let w = m.cw[j] as usize;
            let ents = &m.ent[m.start[j]..m.start[j + 1]];
            let mut g = m.cost[j] - z.pi[w] * m.inv_reps[w];
            for &(i, a) in ents {
                g += z.mu[i as usize] * a;
            }
            let old = z.x[j];
            let new = (old - m.tau[j] * inv_omega * g).clamp(0.0, m.cap[j]);
            z.x[j] = new;
            avg.x[j] += (new - avg.x[j]) * k;
            let xt = 2.0 * new - old;
            act_w[w] += xt;
            for &(i, a) in ents {
                act_c[i as usize] += xt * a;
            }
        }
        for (w, aw) in act_w.iter_mut().enumerate() {
            let g = m.penalty - z.pi[w] * m.inv_reps[w];
            let old = z.u[w];
            let new = (old - m.tau_u[w] * inv_omega * g).clamp(0.0, m.reps[w]);
            z.u[w] = new;
            avg.u[w] += (new - avg.u[w]) * k;
            *aw += 2.0 * new - old;
        }
        for (w, aw) in act_w.iter().enumerate() {
            if m.reps[w] > 0.0 {
                z.pi[w] += m.sig_w[w] * omega * (1.0 - aw * m.inv_reps[w]);
            }
        }
        for (i, &a) in act_c.iter().enumerate() {
            z.mu[i] = (z.mu[i] + m.sig_cap[i] * omega * (a - 1.0)).max(0.0);
        }
        // Running average since the last restart (x and u above).
        for (a, v) in avg.pi.iter_mut().zip(&z.pi) {
            *a += (v - *a) * k;
        }
        for (a, v) in avg.mu.iter_mut().zip(&z.mu) {
            *a += (v - *a) * k;
        }
        if !it.is_multiple_of(CHECK) && it < budget {
            continue;
        }
        let ec = err_of(measure(m, z, &mut act_w, &mut act_c));
        let ea = err_of(measure(m, &avg, &mut act_w, &mut act_c));
        let best = ec.min(ea);
        if ea < ec && (best <= TOL || best <= 0.2 * last_err || it == budget) {
            z.clone_from(&avg);
        }
        if best <= TOL {
            return (it, true);
        }
        if best <= 0.2 * last_err {
            last_err = best;
            avg.clone_from(z);
            navg = 0.0;
        }
    }
    (it, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes: "near" (cost 0) with 2 vCPU / 7 GB free, "far" with plenty. A memory-heavy
    /// workload (0.5 vCPU, 3.5 GB; saves 20 per replica near) and a light one (0.5 vCPU,
    /// 0.5 GB; saves 10), 4 replicas each. Near, x_h + x_l <= 4 (cpu) and
    /// 7 x_h + x_l <= 14 (memory) meet at x_h = 5/3, x_l = 7/3: LP optimum 120 − 56.67 =
    /// 63.33; the integer optimum is 70 (x_h = 1, x_l = 3); the memory-only flow bound is
    /// 51.43.
    fn two_binding() -> Inst {
        let capacity = vec![[2.0, 7.0, 0.0, 0.0], [100.0, 400.0, 0.0, 0.0]];
        let inv_cap = capacity
            .iter()
            .map(|c: &[f64; R]| c.map(|v| if v > 0.0 { 1.0 / v } else { 0.0 }))
            .collect();
        Inst {
            size: vec![[0.5, 3.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]],
            reps: vec![4, 4],
            start: vec![0, 2, 4],
            node: vec![0, 1, 0, 1],
            cost: vec![0.0, 20.0, 0.0, 10.0],
            rtt: vec![0.0, 20.0, 0.0, 10.0],
            cap: vec![2, 4, 4, 4],
            capacity,
            inv_cap,
            penalty: 1000.0,
        }
    }

    #[test]
    fn lp_bound_reaches_the_lp_value_and_stays_below_the_integer_optimum() {
        let inst = two_binding();
        let x0 = vec![0.0; 4];
        // Everything on the far node: feasible.
        let feasible = vec![vec![(1, 4)], vec![(3, 4)]];
        let mu0 = vec![[0.0; R]; 2];
        let lr = solve(&inst, &x0, &feasible, &mu0, 20_000);
        let lp = 120.0 - (20.0 * 5.0 / 3.0 + 10.0 * 7.0 / 3.0);
        assert!(
            lr.bound <= lp + 1e-6,
            "bound {} above the LP {}",
            lr.bound,
            lp
        );
        assert!(
            lr.bound >= lp - 0.01 * lp,
            "bound {} far below the LP {}",
            lr.bound,
            lp
        );
        assert!(lr.bound <= 70.0);
        // The fractional solution is the LP vertex.
        assert!((lr.x[0] - 5.0 / 3.0).abs() < 0.05, "x_h near = {}", lr.x[0]);
        assert!((lr.x[2] - 7.0 / 3.0).abs() < 0.05, "x_l near = {}", lr.x[2]);
        // The exact Lagrangian at the returned prices is the bound reported.
        assert!(lagrangian(&inst, &lr.mu) <= lr.bound + 1e-9);
    }

    #[test]
    fn zero_budget_and_empty_instances_return_at_once() {
        let inst = two_binding();
        let lr = solve(&inst, &[0.0; 4], &[vec![], vec![]], &[[0.0; R]; 2], 0);
        assert_eq!(lr.iterations, 0);
        let empty = Inst {
            size: vec![],
            reps: vec![],
            start: vec![0],
            node: vec![],
            cost: vec![],
            rtt: vec![],
            cap: vec![],
            capacity: vec![],
            inv_cap: vec![],
            penalty: 1.0,
        };
        let lr = solve(&empty, &[], &[], &[], 1000);
        assert_eq!(lr.bound, 0.0);
    }
}
