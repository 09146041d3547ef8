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
    pub cands: Vec<Cand>,
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
                        residency_matches(&Residency::Region(r.clone()), code, country, jurisdictions)
                            || residency_matches(&Residency::Token(r.clone()), code, country, jurisdictions)
                    }))
        })
        .map(|i| i as u32)
}

/// Weighted mean and maximum RTT from a point to the user locations.
fn rtts(model: &LatencyModel, req: &Requirements, lat: f64, lng: f64) -> (Option<f64>, Option<f64>) {
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
                let pool = pool_of(&opts.fallback_groups, p, &r.code, &r.country, &r.jurisdictions);
                let reject = if let Some(c) = first_missing_compliance(&r.compliance, req) {
                    Some(Rejection::Compliance(c))
                } else if !residency_ok(&req.data_residency, &r.code, &r.country, &r.jurisdictions) {
                    Some(Rejection::DataResidency)
                } else if !provider_ok(req, p) || pool.is_none() {
                    Some(Rejection::ProviderNotPreferred)
                } else {
                    None
                };
                let (lat_mean, lat_max) = rtts(&catalog.latency, req, r.lat, r.lng);
                let storage_hourly = if req.storage_gb > 0.0 {
                    match r.storage_gb_month_usd.filter(|p| p.is_finite() && *p >= 0.0) {
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
                    perf: scoring::performance(f64::from(t.vcpu), t.memory_gib, req.cpu, req.memory_gb, gen, gpu),
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
            cands: Vec::with_capacity(catalog.offers.len() + edge.len()),
            considered: catalog.offers.len() + edge.len(),
            counts: RejectionCounts::default(),
            warnings,
            current: None,
            current_problem: None,
            closest: None,
            unpriced_storage,
        };
        let mut cur_seen = false;

        for (i, o) in catalog.offers.iter().enumerate() {
            let src = Src::Offer(i as u32);
            let (Some(r), Some(t)) = (
                regions.get(o.region.0 as usize),
                types.get(o.instance_type.0 as usize),
            ) else {
                ev.considered -= 1;
                continue;
            };
            let is_current = cur_region == Some(o.region.0) && cur_type == Some(o.instance_type.0);
            cur_seen |= is_current;
            let price = match req.pricing_model {
                PricingModel::OnDemand => Some(o.on_demand_hourly_usd),
                PricingModel::Spot => o.spot_hourly_usd,
            }
            .filter(|p| p.is_finite() && *p >= 0.0);
            let cost = price.map(|p| (p + r.storage_hourly.unwrap_or(0.0)) * replicas);
            let rejection = if let Some(x) = t.reject {
                Some(x)
            } else if let Some(x) = r.reject {
                Some(x)
            } else if price.is_none() {
                Some(Rejection::NoPrice)
            } else if let (Some(b), Some(c)) = (budget, cost.filter(|c| Some(*c) > budget)) {
                Some(Rejection::OverBudget { cost: c, budget: b })
            } else if let (Some(max), Some(ms)) = (latency_limit, r.lat_max.filter(|m| Some(*m) > latency_limit)) {
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
                    if is_current {
                        ev.current = Some(ev.cands.len());
                    }
                    ev.cands.push(Cand {
                        src,
                        group: o.region.0,
                        pool: r.pool,
                        cost,
                        // The bound-independent part; cost and latency are added below.
                        score: weights.performance * t.perf + weights.resilience * r.resilience,
                    });
                }
            }
        }

        for (i, e) in edge.iter().enumerate() {
            let src = Src::Edge(i as u32);
            let is_current = cur_edge == Some(i as u32);
            cur_seen |= is_current;
            let pool = pool_of(&opts.fallback_groups, e.provider, &e.region, &e.country, &e.jurisdictions);
            let cost = e.hourly_cost.filter(|c| c.is_finite() && *c >= 0.0).map(|u| u * replicas);
            let fits_all = e.schedulable
                && e.free_cpu >= req.cpu * replicas
                && e.free_memory_gb >= req.memory_gb * replicas
                && e.free_storage_gb >= req.storage_gb * replicas
                && f64::from(e.free_gpu) >= f64::from(req.gpu_count) * replicas;
            let (lat_mean, lat_max) = rtts(&catalog.latency, req, e.lat, e.lng);
            let gpu = (req.gpu_count > 0).then(|| scoring::gpu_class(e.gpu_model.as_deref()));
            let perf = scoring::performance(e.free_cpu, e.free_memory_gb, req.cpu, req.memory_gb, None, gpu);
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
            } else if let (Some(max), Some(ms)) = (latency_limit, lat_max.filter(|m| Some(*m) > latency_limit)) {
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
                    if is_current {
                        ev.current = Some(ev.cands.len());
                    }
                    ev.cands.push(Cand {
                        src,
                        group: (catalog.regions.len() + i) as u32,
                        pool: pool.unwrap_or(0),
                        cost,
                        score: weights.performance * perf + weights.resilience * scoring::RESILIENCE_EDGE,
                    });
                }
            }
            ev.edge_facts.push((perf, lat_mean));
        }
        if let (Some(cur), false) = (&opts.current, cur_seen) {
            ev.current_problem = Some(format!("{cur} is not among the candidates"));
        }

        // Normalise over the feasible set: bounds, then per-group latency scores, then one
        // pass adding the cost and latency terms.
        let mut cb = Bounds::empty();
        let mut group_lat = vec![100.0; catalog.regions.len() + edge.len()];
        for c in &ev.cands {
            if let Some(v) = c.cost {
                cb.add(v);
            }
        }
        let mut seen = vec![false; group_lat.len()];
        let mut lbf = Bounds::empty();
        for c in &ev.cands {
            let g = c.group as usize;
            if !seen[g] {
                seen[g] = true;
                if let Some(v) = ev.group_lat_mean(&regions, g) {
                    lbf.add(v);
                }
            }
        }
        for (g, slot) in group_lat.iter_mut().enumerate() {
            if seen[g] {
                *slot = scoring::latency_score(ev.group_lat_mean(&regions, g), lbf);
            }
        }
        let cost_norm = scoring::CostNorm::new(cb);
        for c in &mut ev.cands {
            c.score += weights.cost * cost_norm.score(c.cost) + weights.latency * group_lat[c.group as usize];
        }
        ev.cost_bounds = cb;
        ev.lat_bounds = lbf;
        ev.regions = regions;
        ev.types = types;
        ev
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
        let stage = rej.stage();
        let c = cost.unwrap_or(f64::INFINITY);
        let better = match &self.closest {
            None => true,
            Some((s, bc, bsrc, _)) => {
                stage > *s
                    || (stage == *s
                        && (c.total_cmp(bc).is_lt() || (c.total_cmp(bc).is_eq() && self.ident_cmp(src, *bsrc).is_lt())))
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
                (Provider::from_cloud(r.cloud), r.code.as_str(), t.name.as_str())
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
            rejected: self.counts.clone(),
            closest: self.closest.map(|(_, cost, src, rejection)| {
                let (p, r, n) = self.ident(src);
                ClosestMiss {
                    candidate: format!("{p} {r} {n}"),
                    cost_hourly: cost.is_finite().then_some(cost),
                    rejection,
                    passed: passed_phrase(self.req, rejection.stage()),
                }
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
