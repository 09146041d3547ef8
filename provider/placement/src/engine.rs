//! The filter-and-score pass shared by single placement, stickiness and spreading.
//!
//! Work per call: one pass over regions and one over instance types to precompute every fact
//! that does not depend on the pair (compliance, residency, provider, RTT, storage price,
//! resilience; resource fit, performance), then one pass over the offers doing only O(1)
//! look-ups and no allocation, then one pass over the feasible set to normalise. Ranking
//! reduces the feasible set to the best candidate per (provider, region) group in O(n), so
//! only the groups (hundreds) are sorted.

use crate::candidates::{great_circle_km, rtt_ms, EdgeCandidate};
use crate::constraints::{first_missing_compliance, residency_ok, Rejection, RejectionCounts};
use crate::decision::{ClosestMiss, FallbackGroup, NoFeasiblePlacement, PlaceOptions};
use crate::requirements::{residency_matches, PricingModel, Provider, Requirements, Residency};
use crate::scoring::{self, Bounds, Scores};
use crate::strategy::Weights;
use catalog::{Catalog, Cloud, LatencyModel};
use std::cmp::Ordering;

/// Where a candidate comes from: an index into `Catalog::offers` or into the edge slice.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    Offer(u32),
    Edge(u32),
}

/// A feasible candidate: 40 bytes, facts shared per region / type are looked up by index.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Cand {
    pub src: Src,
    /// Region index, or `regions.len() + edge index`.
    pub group: u32,
    /// Index of the first fallback group it belongs to (0 without fallback groups).
    pub pool: u32,
    /// Whole workload (`(price + storage) × replicas`); `None` when unknown.
    pub cost: Option<f64>,
    /// Combined score (after normalisation).
    pub score: f64,
}

struct RegionCtx {
    reject: Option<Rejection>,
    pool: u32,
    lat_mean: Option<f64>,
    lat_max: Option<f64>,
    /// Storage cost per replica-hour; `None` when storage is requested but unpriced.
    storage_hourly: Option<f64>,
    resilience: f64,
}

struct TypeCtx {
    reject: Option<Rejection>,
    perf: f64,
}

/// Everything one filter-and-score pass learned.
pub(crate) struct Evaluation<'a> {
    pub catalog: &'a Catalog,
    regions: Vec<RegionCtx>,
    types: Vec<TypeCtx>,
    /// Per edge node: (performance, weighted mean RTT).
    edge_facts: Vec<(f64, Option<f64>)>,
    cost_bounds: Bounds,
    lat_bounds: Bounds,
    pub edge: &'a [EdgeCandidate],
    pub req: &'a Requirements,
    /// The best feasible candidate of each (provider, region) group / edge node, plus the
    /// current placement when it is feasible but not its group's best.
    pub cands: Vec<Cand>,
    /// Number of feasible candidates.
    pub feasible: usize,
    pub considered: usize,
    pub counts: RejectionCounts,
    pub warnings: Vec<String>,
    /// Index into `cands` of the current placement when it is still feasible.
    pub current: Option<usize>,
    /// Why the current placement is infeasible (or absent from the candidates).
    pub current_problem: Option<String>,
    closest: Option<(usize, f64, Src, Rejection)>,
    /// Regions whose storage price is unknown while storage is requested.
    unpriced_storage: Vec<bool>,
}

/// NaN capacity counts as lacking.
fn lacks(have: f64, need: f64) -> bool {
    have.is_nan() || have < need
}

fn provider_ok(req: &Requirements, p: Provider) -> bool {
    req.preferred_providers.is_empty() || req.preferred_providers.contains(&p)
}

fn pool_of(
    groups: &[FallbackGroup],
    p: Provider,
    code: &str,
    country: &str,
    jurisdictions: &[String],
) -> Option<u32> {
    if groups.is_empty() {
        return Some(0);
    }
    groups
        .iter()
        .position(|g| {
            (g.providers.is_empty() || g.providers.contains(&p))
                && (g.regions.is_empty()
                    || g.regions.iter().any(|r| {
                        residency_matches(
                            &Residency::Region(r.clone()),
                            code,
                            country,
                            jurisdictions,
                        ) || residency_matches(
                            &Residency::Token(r.clone()),
                            code,
                            country,
                            jurisdictions,
                        )
                    }))
        })
        .map(|i| i as u32)
}

/// Weighted mean and maximum RTT from a point to the user locations.
fn rtts(
    model: &LatencyModel,
    req: &Requirements,
    lat: f64,
    lng: f64,
) -> (Option<f64>, Option<f64>) {
    if req.user_locations.is_empty() {
        return (None, None);
    }
    let (mut sum, mut wsum, mut max) = (0.0, 0.0, f64::NEG_INFINITY);
    for u in &req.user_locations {
        let ms = rtt_ms(model, great_circle_km(lat, lng, u.lat, u.lng));
        sum += ms * u.weight;
        wsum += u.weight;
        max = max.max(ms);
    }
    (Some(sum / wsum), Some(max))
}

fn gen_ratio(catalog: &Catalog) -> [u32; 3] {
    let mut newest = [0u32; 3];
    for t in &catalog.instance_types {
        let i = t.cloud as usize;
        newest[i] = newest[i].max(t.generation.unwrap_or(0));
    }
    newest
}

fn gpu_model_ok(req: &Requirements, model: Option<&str>) -> bool {
    match &req.gpu_model {
        None => true,
        Some(want) => model.is_some_and(|m| m.to_ascii_lowercase().contains(want.as_str())),
    }
}

impl<'a> Evaluation<'a> {
    /// Filters and scores every candidate.
    pub fn run(
        catalog: &'a Catalog,
        edge: &'a [EdgeCandidate],
        req: &'a Requirements,
        weights: Weights,
        opts: &PlaceOptions,
    ) -> Evaluation<'a> {
        let mut warnings = Vec::new();
        let latency_limit = match (req.max_latency_ms, req.user_locations.is_empty()) {
            (Some(_), true) => {
                warnings.push("max_latency_ms is ignored: no user_locations given".to_string());
                None
            }
            (m, _) => m,
        };
        let budget = req.cost_budget_hourly;
        let replicas = f64::from(req.replicas);

        // Per-region facts.
        let mut unpriced_storage = vec![false; catalog.regions.len()];
        let regions: Vec<RegionCtx> = catalog
            .regions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let p = Provider::from_cloud(r.cloud);
                let pool = pool_of(
                    &opts.fallback_groups,
                    p,
                    &r.code,
                    &r.country,
                    &r.jurisdictions,
                );
                let reject = if let Some(c) = first_missing_compliance(&r.compliance, req) {
                    Some(Rejection::Compliance(c))
                } else if !residency_ok(&req.data_residency, &r.code, &r.country, &r.jurisdictions)
                {
                    Some(Rejection::DataResidency)
                } else if !provider_ok(req, p) || pool.is_none() {
                    Some(Rejection::ProviderNotPreferred)
                } else {
                    None
                };
                let (lat_mean, lat_max) = rtts(&catalog.latency, req, r.lat, r.lng);
                let storage_hourly = if req.storage_gb > 0.0 {
                    match r
                        .storage_gb_month_usd
                        .filter(|p| p.is_finite() && *p >= 0.0)
                    {
                        Some(p) => Some(req.storage_gb * p / 730.0),
                        None => {
                            unpriced_storage[i] = true;
                            None
                        }
                    }
                } else {
                    Some(0.0)
                };
                RegionCtx {
                    reject,
                    pool: pool.unwrap_or(0),
                    lat_mean,
                    lat_max,
                    storage_hourly,
                    resilience: scoring::resilience_cloud(r.zones),
                }
            })
            .collect();

        // Per-type facts.
        let newest = gen_ratio(catalog);
        let types: Vec<TypeCtx> = catalog
            .instance_types
            .iter()
            .map(|t| {
                let reject = if f64::from(t.vcpu) < req.cpu {
                    Some(Rejection::InsufficientCpu)
                } else if t.memory_gib < req.memory_gb {
                    Some(Rejection::InsufficientMemory)
                } else if t.gpu_count < req.gpu_count {
                    Some(Rejection::NoGpu)
                } else if !gpu_model_ok(req, t.gpu_model.as_deref()) {
                    Some(Rejection::GpuModel)
                } else {
                    None
                };
                let newest = newest[t.cloud as usize];
                let gen = t
                    .generation
                    .filter(|_| newest > 0)
                    .map(|g| f64::from(g) / f64::from(newest));
                let gpu = (req.gpu_count > 0).then(|| scoring::gpu_class(t.gpu_model.as_deref()));
                TypeCtx {
                    reject,
                    perf: scoring::performance(
                        f64::from(t.vcpu),
                        t.memory_gib,
                        req.cpu,
                        req.memory_gb,
                        gen,
                        gpu,
                    ),
                }
            })
            .collect();

        // Current placement, resolved to indices once.
        let (mut cur_region, mut cur_type, mut cur_edge) = (None, None, None);
        if let Some(cur) = &opts.current {
            match cur.provider {
                Provider::Aws | Provider::Azure | Provider::Gcp => {
                    let cloud = match cur.provider {
                        Provider::Aws => Cloud::Aws,
                        Provider::Azure => Cloud::Azure,
                        _ => Cloud::Gcp,
                    };
                    cur_region = catalog
                        .regions
                        .iter()
                        .position(|r| r.cloud == cloud && r.code.eq_ignore_ascii_case(&cur.region))
                        .map(|i| i as u32);
                    cur_type = cur.instance_type.as_ref().and_then(|n| {
                        catalog
                            .instance_types
                            .iter()
                            .position(|t| t.cloud == cloud && t.name == *n)
                            .map(|i| i as u32)
                    });
                }
                Provider::Edge | Provider::Onprem => {
                    cur_edge = cur
                        .node
                        .as_ref()
                        .and_then(|n| edge.iter().position(|e| e.id == *n))
                        .map(|i| i as u32);
                }
            }
        }

        let mut ev = Evaluation {
            catalog,
            regions: Vec::new(),
            types: Vec::new(),
            edge_facts: Vec::with_capacity(edge.len()),
            cost_bounds: Bounds::empty(),
            lat_bounds: Bounds::empty(),
            edge,
            req,
            cands: Vec::new(),
            feasible: 0,
            considered: catalog.offers.len() + edge.len(),
            counts: RejectionCounts::default(),
            warnings,
            current: None,
            current_problem: None,
            closest: None,
            unpriced_storage,
        };
        let mut cur_seen = false;

        // Pass 1 over offers: classify. Region and type verdicts are one byte each so the common
        // rejections cost a look-up and a counter; the closest-miss bookkeeping runs only for
        // candidates that got at least as far as the closest miss so far.
        const OK: u8 = u8::MAX;
        let t_stage: Vec<u8> = types
            .iter()
            .map(|t| t.reject.map_or(OK, |r| r.stage() as u8))
            .collect();
        let r_stage: Vec<u8> = regions
            .iter()
            .map(|r| r.reject.map_or(OK, |x| x.stage() as u8))
            .collect();
        let mut stage_counts = [0usize; 7];
        let mut region_compliance_fails = vec![0usize; regions.len()];
        let mut feasible_offers: Vec<u32> = Vec::new();
        let mut group_feasible = vec![false; regions.len() + edge.len()];
        let mut cb = Bounds::empty();
        let cur_pair = cur_region.zip(cur_type);
        let offer_cost = |o: &catalog::Offer, r: &RegionCtx| -> Option<f64> {
            match req.pricing_model {
                PricingModel::OnDemand => Some(o.on_demand_hourly_usd),
                PricingModel::Spot => o.spot_hourly_usd,
            }
            .filter(|p| p.is_finite() && *p >= 0.0)
            .map(|p| (p + r.storage_hourly.unwrap_or(0.0)) * replicas)
        };
        for (i, o) in catalog.offers.iter().enumerate() {
            let (ri, ti) = (o.region.0 as usize, o.instance_type.0 as usize);
            if ri >= regions.len() || ti >= types.len() {
                ev.considered -= 1;
                continue;
            }
            let is_current = cur_pair == Some((o.region.0, o.instance_type.0));
            cur_seen |= is_current;
            let ts = t_stage[ti];
            let stage = if ts != OK { ts } else { r_stage[ri] };
            let src = Src::Offer(i as u32);
            let r = &regions[ri];
            if stage != OK {
                stage_counts[stage as usize] += 1;
                if stage == 4 {
                    region_compliance_fails[ri] += 1;
                }
                let interesting =
                    is_current || ev.closest.as_ref().is_none_or(|c| stage as usize >= c.0);
                if interesting {
                    // Rare path: materialise the rejection only when it is needed.
                    let rej = if ts != OK {
                        &types[ti].reject
                    } else {
                        &r.reject
                    };
                    if let Some(rej) = *rej {
                        if ev.closest.as_ref().is_none_or(|c| stage as usize >= c.0) {
                            ev.track_closest(src, rej, offer_cost(o, r));
                        }
                        if is_current {
                            ev.current_problem = Some(rej.to_string());
                        }
                    }
                }
                continue;
            }
            let cost = offer_cost(o, r);
            let rejection = match cost {
                None => Some(Rejection::NoPrice),
                Some(c) if budget.is_some_and(|b| c > b) => Some(Rejection::OverBudget {
                    cost: c,
                    budget: budget.unwrap_or(0.0),
                }),
                Some(_) => match (latency_limit, r.lat_max) {
                    (Some(max), Some(ms)) if ms > max => Some(Rejection::OverLatency { ms, max }),
                    _ => None,
                },
            };
            match (rejection, cost) {
                (None, Some(c)) => {
                    feasible_offers.push(i as u32);
                    group_feasible[ri] = true;
                    cb.add(c);
                }
                (rej, _) => {
                    let rej = rej.unwrap_or(Rejection::NoPrice);
                    ev.reject(src, rej, cost);
                    if is_current {
                        ev.current_problem = Some(rej.to_string());
                    }
                }
            }
        }
        ev.counts.insufficient_cpu += stage_counts[0];
        ev.counts.insufficient_memory += stage_counts[1];
        ev.counts.no_gpu += stage_counts[2];
        ev.counts.gpu_model += stage_counts[3];
        ev.counts.data_residency += stage_counts[5];
        ev.counts.provider_not_preferred += stage_counts[6];
        for (r, n) in regions.iter().zip(&region_compliance_fails) {
            if let (Some(rej @ Rejection::Compliance(_)), true) = (r.reject, *n > 0) {
                ev.counts.add_n(&rej, *n);
            }
        }

        // Edge nodes: few, checked directly.
        let mut edge_feasible: Vec<(u32, u32, Option<f64>, f64)> = Vec::new();
        for (i, e) in edge.iter().enumerate() {
            let src = Src::Edge(i as u32);
            let is_current = cur_edge == Some(i as u32);
            cur_seen |= is_current;
            let pool = pool_of(
                &opts.fallback_groups,
                e.provider,
                &e.region,
                &e.country,
                &e.jurisdictions,
            );
            let cost = e
                .hourly_cost
                .filter(|c| c.is_finite() && *c >= 0.0)
                .map(|u| u * replicas);
            let fits_all = e.schedulable
                && e.free_cpu >= req.cpu * replicas
                && e.free_memory_gb >= req.memory_gb * replicas
                && e.free_storage_gb >= req.storage_gb * replicas
                && f64::from(e.free_gpu) >= f64::from(req.gpu_count) * replicas;
            let (lat_mean, lat_max) = rtts(&catalog.latency, req, e.lat, e.lng);
            let gpu = (req.gpu_count > 0).then(|| scoring::gpu_class(e.gpu_model.as_deref()));
            let perf = scoring::performance(
                e.free_cpu,
                e.free_memory_gb,
                req.cpu,
                req.memory_gb,
                None,
                gpu,
            );
            ev.edge_facts.push((perf, lat_mean));
            let rejection = if lacks(e.free_cpu, req.cpu) {
                Some(Rejection::InsufficientCpu)
            } else if lacks(e.free_memory_gb, req.memory_gb) {
                Some(Rejection::InsufficientMemory)
            } else if e.free_gpu < req.gpu_count {
                Some(Rejection::NoGpu)
            } else if !gpu_model_ok(req, e.gpu_model.as_deref()) {
                Some(Rejection::GpuModel)
            } else if let Some(c) = first_missing_compliance(&e.compliance, req) {
                Some(Rejection::Compliance(c))
            } else if !residency_ok(&req.data_residency, &e.region, &e.country, &e.jurisdictions) {
                Some(Rejection::DataResidency)
            } else if !provider_ok(req, e.provider) || pool.is_none() {
                Some(Rejection::ProviderNotPreferred)
            } else if budget.is_some() && cost.is_none() {
                Some(Rejection::NoPrice)
            } else if !fits_all {
                Some(Rejection::NoCapacity)
            } else if let (Some(b), Some(c)) = (budget, cost.filter(|c| Some(*c) > budget)) {
                Some(Rejection::OverBudget { cost: c, budget: b })
            } else if let (Some(max), Some(ms)) =
                (latency_limit, lat_max.filter(|m| Some(*m) > latency_limit))
            {
                Some(Rejection::OverLatency { ms, max })
            } else {
                None
            };
            match rejection {
                Some(rej) => {
                    ev.reject(src, rej, cost);
                    if is_current {
                        ev.current_problem = Some(rej.to_string());
                    }
                }
                None => {
                    if let Some(c) = cost {
                        cb.add(c);
                    }
                    group_feasible[regions.len() + i] = true;
                    edge_feasible.push((i as u32, pool.unwrap_or(0), cost, perf));
                }
            }
        }
        if let (Some(cur), false) = (&opts.current, cur_seen) {
            ev.current_problem = Some(format!("{cur} is not among the candidates"));
        }
        ev.feasible = feasible_offers.len() + edge_feasible.len();

        // Normalisation bounds over the feasible set; latency scores once per group.
        let mut lb = Bounds::empty();
        for (g, ok) in group_feasible.iter().enumerate() {
            if *ok {
                if let Some(v) = ev.group_lat_mean(&regions, g) {
                    lb.add(v);
                }
            }
        }
        let group_lat: Vec<f64> = (0..group_feasible.len())
            .map(|g| scoring::latency_score(ev.group_lat_mean(&regions, g), lb))
            .collect();
        let cost_norm = scoring::CostNorm::new(cb);
        ev.cost_bounds = cb;
        ev.lat_bounds = lb;

        // Pass 2: score the feasible candidates and keep the best per group (plus the
        // current placement). A candidate whose score cannot reach its group's best even with
        // a perfect cost score skips the logarithm.
        let mut best: Vec<Option<Cand>> = vec![None; group_feasible.len()];
        let mut current: Option<Cand> = None;
        for &i in &feasible_offers {
            let o = &catalog.offers[i as usize];
            let (ri, ti) = (o.region.0 as usize, o.instance_type.0 as usize);
            let r = &regions[ri];
            let base = weights.performance * types[ti].perf
                + weights.resilience * r.resilience
                + weights.latency * group_lat[ri];
            let is_current = cur_pair == Some((o.region.0, o.instance_type.0));
            let cost = offer_cost(o, r);
            if let (Some(b), Some(c)) = (&best[ri], cost) {
                // 1e-9 of slack keeps near-ties on the exact path.
                if !is_current
                    && base + weights.cost * cost_norm.score_upper_bound(c) + 1e-9 < b.score
                {
                    continue;
                }
            }
            let cand = Cand {
                src: Src::Offer(i),
                group: ri as u32,
                pool: r.pool,
                cost,
                score: base + weights.cost * cost_norm.score(cost),
            };
            if is_current {
                current = Some(cand);
            }
            ev.keep_best(&mut best[ri], cand);
        }
        for &(i, pool, cost, perf) in &edge_feasible {
            let g = regions.len() + i as usize;
            let cand = Cand {
                src: Src::Edge(i),
                group: g as u32,
                pool,
                cost,
                score: weights.performance * perf
                    + weights.resilience * scoring::RESILIENCE_EDGE
                    + weights.latency * group_lat[g]
                    + weights.cost * cost_norm.score(cost),
            };
            if cur_edge == Some(i) {
                current = Some(cand);
            }
            best[g] = Some(cand);
        }
        ev.cands = best.into_iter().flatten().collect();
        if let Some(c) = current {
            ev.current = match ev.cands.iter().position(|x| x.src == c.src) {
                Some(p) => Some(p),
                None => {
                    ev.cands.push(c);
                    Some(ev.cands.len() - 1)
                }
            };
        }
        ev.regions = regions;
        ev.types = types;
        ev
    }

    fn keep_best(&self, slot: &mut Option<Cand>, cand: Cand) {
        match slot {
            Some(b) if self.rank_cmp(b, &cand).is_le() => {}
            _ => *slot = Some(cand),
        }
    }

    fn group_lat_mean(&self, regions: &[RegionCtx], g: usize) -> Option<f64> {
        match regions.get(g) {
            Some(r) => r.lat_mean,
            None => self.edge_facts.get(g - regions.len()).and_then(|e| e.1),
        }
    }

    /// Weighted mean RTT of a candidate.
    pub fn lat_mean(&self, c: &Cand) -> Option<f64> {
        self.group_lat_mean(&self.regions, c.group as usize)
    }

    /// Per-replica cost (the whole-workload cost divided by the replicas it was computed for).
    pub fn unit_cost(&self, c: &Cand) -> Option<f64> {
        c.cost.map(|v| v / f64::from(self.req.replicas))
    }

    /// The four dimension scores of a candidate (recomputed from the stored facts).
    pub fn scores(&self, c: &Cand) -> Scores {
        let (performance, resilience) = match c.src {
            Src::Offer(i) => {
                let o = &self.catalog.offers[i as usize];
                (
                    self.types[o.instance_type.0 as usize].perf,
                    self.regions[o.region.0 as usize].resilience,
                )
            }
            Src::Edge(i) => (self.edge_facts[i as usize].0, scoring::RESILIENCE_EDGE),
        };
        Scores {
            cost: scoring::CostNorm::new(self.cost_bounds).score(c.cost),
            performance,
            latency: scoring::latency_score(self.lat_mean(c), self.lat_bounds),
            resilience,
        }
    }

    fn reject(&mut self, src: Src, rej: Rejection, cost: Option<f64>) {
        self.counts.add(&rej);
        self.track_closest(src, rej, cost);
    }

    fn track_closest(&mut self, src: Src, rej: Rejection, cost: Option<f64>) {
        let stage = rej.stage();
        let c = cost.unwrap_or(f64::INFINITY);
        let better = match &self.closest {
            None => true,
            Some((s, bc, bsrc, _)) => {
                stage > *s
                    || (stage == *s
                        && (c.total_cmp(bc).is_lt()
                            || (c.total_cmp(bc).is_eq() && self.ident_cmp(src, *bsrc).is_lt())))
            }
        };
        if better {
            self.closest = Some((stage, c, src, rej));
        }
    }

    /// (provider, region, type or node) of a candidate.
    pub fn ident(&self, src: Src) -> (Provider, &'a str, &'a str) {
        match src {
            Src::Offer(i) => {
                let o = &self.catalog.offers[i as usize];
                let r = self.catalog.region(o.region);
                let t = self.catalog.instance_type(o.instance_type);
                (
                    Provider::from_cloud(r.cloud),
                    r.code.as_str(),
                    t.name.as_str(),
                )
            }
            Src::Edge(i) => {
                let e = &self.edge[i as usize];
                (e.provider, e.region.as_str(), e.id.as_str())
            }
        }
    }

    fn ident_cmp(&self, a: Src, b: Src) -> Ordering {
        let (pa, ra, na) = self.ident(a);
        let (pb, rb, nb) = self.ident(b);
        pa.as_str()
            .cmp(pb.as_str())
            .then_with(|| ra.cmp(rb))
            .then_with(|| na.cmp(nb))
            .then_with(|| match (a, b) {
                (Src::Offer(x), Src::Offer(y)) | (Src::Edge(x), Src::Edge(y)) => x.cmp(&y),
                (Src::Offer(_), Src::Edge(_)) => Ordering::Less,
                (Src::Edge(_), Src::Offer(_)) => Ordering::Greater,
            })
    }

    /// The ranking order: score desc, cost asc (unknown last), provider, region, type/node.
    pub fn rank_cmp(&self, a: &Cand, b: &Cand) -> Ordering {
        b.score
            .total_cmp(&a.score)
            .then_with(|| match (a.cost, b.cost) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| self.ident_cmp(a.src, b.src))
    }

    /// Indices of the best candidate per group among `cands` accepted by `keep`, best first.
    pub fn group_bests(&self, keep: impl Fn(&Cand) -> bool) -> Vec<usize> {
        let mut best: Vec<Option<usize>> = vec![None; self.catalog.regions.len() + self.edge.len()];
        for (i, c) in self.cands.iter().enumerate() {
            if !keep(c) {
                continue;
            }
            let slot = &mut best[c.group as usize];
            match slot {
                Some(j) if self.rank_cmp(&self.cands[*j], c).is_le() => {}
                _ => *slot = Some(i),
            }
        }
        let mut out: Vec<usize> = best.into_iter().flatten().collect();
        out.sort_by(|a, b| self.rank_cmp(&self.cands[*a], &self.cands[*b]));
        out
    }

    pub fn storage_unpriced(&self, c: &Cand) -> bool {
        match c.src {
            Src::Offer(i) => {
                let r = self.catalog.offers[i as usize].region.0 as usize;
                self.unpriced_storage.get(r).copied().unwrap_or(false)
            }
            Src::Edge(_) => false,
        }
    }

    pub fn no_feasible(&self, detail: Option<String>) -> NoFeasiblePlacement {
        NoFeasiblePlacement {
            considered: self.considered,
            rejected: Box::new(self.counts.clone()),
            closest: self.closest.map(|(_, cost, src, rejection)| {
                let (p, r, n) = self.ident(src);
                Box::new(ClosestMiss {
                    candidate: format!("{p} {r} {n}"),
                    cost_hourly: cost.is_finite().then_some(cost),
                    rejection,
                    passed: passed_phrase(self.req, rejection.stage()),
                })
            }),
            detail,
        }
    }
}

/// What a candidate that failed at `stage` is known to satisfy (only the interesting parts).
fn passed_phrase(req: &Requirements, stage: usize) -> String {
    let mut parts = Vec::new();
    if stage > 3 && req.gpu_count > 0 {
        parts.push("has the GPU".to_string());
    }
    if stage > 4 && !req.compliance.is_empty() {
        let list: Vec<&str> = req.compliance.iter().map(|c| c.as_str()).collect();
        parts.push(format!("meets {}", list.join(", ")));
    }
    if stage > 5 && !req.data_residency.is_empty() {
        parts.push("inside the residency regions".to_string());
    }
    parts.join(", ")
}

impl Evaluation<'_> {
    /// Builds the output record of candidate `i` with `reason`.
    pub fn placement(&self, i: usize, reason: String) -> crate::decision::Placement {
        let c = &self.cands[i];
        let (p, region, name) = self.ident(c.src);
        let (instance_type, node) = match c.src {
            Src::Offer(_) => (Some(name.to_string()), None),
            Src::Edge(_) => (None, Some(name.to_string())),
        };
        crate::decision::Placement {
            provider: p.as_str().to_string(),
            region: region.to_string(),
            zone: None,
            node,
            instance_type,
            estimated_cost_hourly: c.cost.unwrap_or(0.0),
            estimated_latency_ms: self.lat_mean(c),
            score: c.score,
            scores: self.scores(c),
            reason,
            cost_known: c.cost.is_some(),
        }
    }

    /// Warnings about one chosen candidate (unknown cost, unpriced storage).
    pub fn warn_about(&mut self, i: usize, role: &str) {
        let c = self.cands[i];
        let (p, r, n) = self.ident(c.src);
        if c.cost.is_none() {
            self.warnings.push(format!(
                "{role} {p} {r} {n} has no configured cost: excluded from cost ranking (cost score 0), estimated cost shown as 0"
            ));
        }
        if self.storage_unpriced(&c) {
            self.warnings.push(format!(
                "{role} {p} {r} {n}: no storage price for region {r}; the estimate excludes {} GB of storage",
                self.req.storage_gb
            ));
        }
    }
}

/// `$0.096/h`, or `cost unknown`.
pub(crate) fn money(c: Option<f64>) -> String {
    match c {
        Some(v) if v < 10.0 => format!("${v:.3}/h"),
        Some(v) => format!("${v:.2}/h"),
        None => "cost unknown".to_string(),
    }
}
