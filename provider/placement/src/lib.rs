//! The pure placement engine: given validated [`Requirements`], a [`Strategy`], the catalog
//! and optional edge nodes, decide where a workload runs and explain why in one line.
//!
//! No IO, no async, no cloud SDK: everything is a function of its inputs, so the same inputs
//! and catalog always give the identical [`Decision`] (property-tested, including with the
//! catalog's vectors shuffled).
//!
//! # Candidates
//! Every catalog offer (one (region, instance type) pair with a real price) plus every
//! [`EdgeCandidate`] the caller passes (edge / on-prem nodes with free capacity from the
//! ledger). Every fitting instance type of a region is a candidate; alternatives are reported
//! per (provider, region) pair, with the best type of each pair, so the list is diverse. Each
//! edge node is its own pair.
//!
//! # Hard constraints, in check order
//! Only the first failing constraint of a candidate is counted in [`RejectionCounts`]:
//! 1. `InsufficientCpu`: type vCPUs (edge: free CPU) < `cpu`.
//! 2. `InsufficientMemory`: type GiB (edge: free GB) < `memory_gb` (GB and GiB compared 1:1).
//! 3. `NoGpu`: fewer GPUs than `gpu_count` (setting `gpu_model` implies `gpu_count >= 1`).
//! 4. `GpuModel`: `gpu_model` is not a case-insensitive substring of the type's GPU model.
//! 5. `Compliance(c)`: the region (`Region::compliance`) lacks `c`, the first missing regime
//!    in the user's order.
//! 6. `DataResidency`: with a residency list, the region must match one entry: a region code
//!    (case-insensitive), or a token equal to one of `Region::jurisdictions` or to
//!    `Region::country`.
//! 7. `ProviderNotPreferred`: provider outside `preferred_providers`, or region outside every
//!    fallback group.
//! 8. `NoPrice`: `pricing_model = spot` and the offer has no spot figure; or a budget is set and
//!    an edge node has no configured cost.
//! 9. `NoCapacity`: edge node not schedulable, or its free CPU / memory / storage / GPUs cannot
//!    hold all `replicas`.
//! 10. `OverBudget`: whole-workload cost (below) > `cost_budget_hourly`.
//! 11. `OverLatency`: the WORST RTT to any user location > `max_latency_ms` (ignored with a
//!     warning when there are no user locations).
//!
//! # Scores (0..100 each, higher is better)
//! * **cost** = whole-workload USD/h: `price × replicas + storage_gb × storage_usd_gb_month /
//!   730 × replicas` (price = on-demand, or spot with `pricing_model = spot`; edge: configured
//!   cost × replicas). As a ratio to the cheapest feasible candidate: `100 × min / c`
//!   (cheapest = 100, twice the price = 50), independent of how expensive the priciest
//!   feasible candidate is. A
//!   candidate with unknown cost is left out of the min/max, scores 0 and gets a warning; it
//!   is never priced $0. Unpriced storage is left out of the estimate with a warning.
//! * **performance** (absolute scale): `h = clamp(log2(min(vcpu/cpu, mem/memory_gb)), 0,
//!   1)` (headroom; 2× or more = 1), `g = generation / newest generation of that cloud in the
//!   catalog` (0.5 unknown, always 0.5 for edge), `q = gpu class` ([`scoring::gpu_class`]:
//!   H100 1.0, A100 0.85, L40 0.7, A10 0.6, L4 0.55, V100 0.5, T4 0.4, ...). Without a GPU
//!   request `100 × (0.3h + 0.7g)`, with one `100 × (0.2h + 0.3g + 0.5q)`. Headroom earns
//!   little on purpose: under balanced weights a right-sized type beats one twice its size
//!   at twice the price (the cost ratio loses 50 points, headroom gains at most 30).
//! * **latency** = weighted mean RTT to `user_locations`, RTT from the catalog's model
//!   `2 × great_circle_km / fibre_km_per_ms × route_factor + base_ms`, linear min-max over
//!   the feasible set (lowest = 100). Without user locations every candidate scores 100 (the
//!   dimension cannot discriminate and does not change the ranking).
//! * **resilience** (absolute): region zones ≥ 3 → 100, 2 → 75, 1 → 50, unknown (0 in the
//!   catalog) → 60; an edge or
//!   on-prem node → 25.
//!
//! Combined score = `Σ weight × dimension score` (0..100).
//!
//! # Strategies (weights cost / performance / latency / resilience)
//! | strategy | cost | performance | latency | resilience |
//! |---|---|---|---|---|
//! | `cost_optimized` | 0.70 | 0.10 | 0.10 | 0.10 |
//! | `performance_optimized` | 0.10 | 0.70 | 0.10 | 0.10 |
//! | `latency_optimized` | 0.10 | 0.10 | 0.70 | 0.10 |
//! | `resilience_optimized` | 0.10 | 0.10 | 0.10 | 0.70 |
//! | `hybrid` | 0.25 | 0.25 | 0.25 | 0.25 |
//! | `custom` | user weights, each ≥ 0, sum 1 ± 1e-6 | | | |
//!
//! # Ranking and ties
//! Score desc, then cost asc (unknown last), then provider name, region code, type name / node
//! id. The winner is the top candidate of the first non-empty fallback group; alternatives
//! are the next `top_k` (provider, region) group bests of that fallback group.
//!
//! # Stickiness
//! See [`sticky`]: the current placement is kept unless the best beats it by more than
//! `replace_threshold_percent` (default 10 %).
//!
//! # Zones
//! `Placement::zone` is `None` for single cloud placements (the driver picks); zone spreading
//! ([`spread`]) names zones deterministically: AWS `<region>a/b/c…`, GCP `<region>-a/-b…`,
//! Azure `1/2/3`.
//!
//! # Pricing
//! `pricing_model = on_demand` (default) uses `Offer::on_demand_hourly_usd`; `spot` (requires
//! `spot_allowed`) uses `Offer::spot_hourly_usd` and rejects offers without a real spot figure
//! (`NoPrice`); edge nodes always use their configured cost.
//!
//! # Performance
//! Per call: one pass over regions and types to precompute every pair-independent fact, a
//! first pass over the offers that classifies each with byte look-ups and counters, and a
//! second pass over the feasible ones that scores them and keeps only the best per (provider,
//! region) group, skipping the logarithm when an upper bound already loses. Nothing is
//! allocated per candidate. About 0.8 ms for 50k offers; see `benches/placement.rs`.
//!
//! # Secondary and fallback groups
//! A [`SecondaryRule`] asks for a disaster-recovery placement: the best feasible candidate of
//! any fallback group in a different (provider, region) pair or a different provider.
//! [`FallbackGroup`]s are tried in order, like Karmada's `clusterAffinities`.

pub mod candidates;
pub mod constraints;
pub mod decision;
pub mod edge;
mod engine;
pub mod migration;
pub mod requirements;
pub mod scoring;
pub mod spread;
pub mod sticky;
pub mod strategy;
#[doc(hidden)]
pub mod testutil;

pub use candidates::{great_circle_km, rtt_ms, EdgeCandidate};
pub use constraints::{validate_compliance, ComplianceViolation, Rejection, RejectionCounts};
pub use decision::{
    ClosestMiss, Decision, FallbackGroup, NoFeasiblePlacement, PlaceOptions, Placement,
    PlacementKey, SecondaryRule,
};
pub use edge::{
    distribute, place_batch, BatchOptions, BatchPlacement, BatchWorkload, DistributionStrategy,
    EdgeDistribution, EdgeNode, EdgeRequest, EdgeShortfall,
};
pub use requirements::{
    FieldError, PricingModel, Provider, RawRequirements, RawUserLocation, Requirements, Residency,
    UserLocation, WorkloadType,
};
pub use scoring::Scores;
pub use spread::{
    place_spread, Assignment, ReplicaScheduling, SpreadBy, SpreadDecision, SpreadRule,
};
pub use strategy::{Strategy, Weights};

use catalog::Catalog;
use constraints::thousands;
use engine::{money, Evaluation};
use sticky::Outcome;

/// Chooses a placement, up to `opts.top_k` alternatives and (if asked) a secondary.
pub fn place(
    catalog: &Catalog,
    edge: &[EdgeCandidate],
    req: &Requirements,
    strategy: &Strategy,
    opts: &PlaceOptions,
) -> Result<Decision, NoFeasiblePlacement> {
    let mut ev = Evaluation::run(catalog, edge, req, strategy.weights(), opts);
    let Some(pool) = ev.cands.iter().map(|c| c.pool).min() else {
        return Err(ev.no_feasible(None));
    };
    let ranked = ev.group_bests(|c| c.pool == pool);
    let (chosen, outcome) = sticky::choose(&ev, &ranked, pool, opts);
    let feasible = ev.feasible;
    let pool_note = if opts.fallback_groups.len() > 1 {
        let g = &opts.fallback_groups[pool as usize];
        let name = if g.name.is_empty() {
            format!("#{}", pool + 1)
        } else {
            format!("'{}'", g.name)
        };
        format!(
            "fallback group {name} ({} of {}): ",
            pool + 1,
            opts.fallback_groups.len()
        )
    } else {
        String::new()
    };
    let reason = format!(
        "{pool_note}{}",
        winner_reason(&ev, chosen, &outcome, strategy, feasible, opts)
    );
    ev.warn_about(chosen, "placement");
    let placement = ev.placement(chosen, reason);

    let top = ranked[0];
    let alternatives: Vec<_> = ranked
        .iter()
        .copied()
        .filter(|i| *i != chosen)
        .take(opts.top_k)
        .enumerate()
        .map(|(n, i)| {
            let c = &ev.cands[i];
            let delta = c.score - ev.cands[chosen].score;
            let note = if i == top { " (best score)" } else { "" };
            let r = format!(
                "alternative #{}: score {:.1} ({:+.1} vs chosen){note}; {}{}",
                n + 1,
                c.score,
                delta,
                money(c.cost),
                lat_text(ev.lat_mean(c))
            );
            ev.placement(i, r)
        })
        .collect();

    let secondary = opts.secondary.and_then(|rule| {
        let (pp, pr, _) = ev.ident(ev.cands[chosen].src);
        let all = ev.group_bests(|_| true);
        let pick = all.into_iter().find(|&i| {
            let (p, r, _) = ev.ident(ev.cands[i].src);
            match rule {
                SecondaryRule::DifferentRegion => (p, r) != (pp, pr),
                SecondaryRule::DifferentProvider => p != pp,
            }
        });
        match pick {
            Some(i) => {
                ev.warn_about(i, "secondary");
                let what = match rule {
                    SecondaryRule::DifferentRegion => "region",
                    SecondaryRule::DifferentProvider => "provider",
                };
                let c = &ev.cands[i];
                let r = format!(
                    "disaster-recovery secondary: best candidate in a different {what} (score {:.1}); {}{}",
                    c.score,
                    money(c.cost),
                    lat_text(ev.lat_mean(c))
                );
                Some(ev.placement(i, r))
            }
            None => {
                ev.warnings.push(format!(
                    "no feasible secondary placement in a different {}",
                    match rule {
                        SecondaryRule::DifferentRegion => "region",
                        SecondaryRule::DifferentProvider => "provider",
                    }
                ));
                None
            }
        }
    });

    Ok(Decision {
        placement,
        alternatives,
        secondary,
        warnings: ev.warnings,
        considered: ev.considered,
        feasible,
        rejected: ev.counts,
    })
}

fn lat_text(lat: Option<f64>) -> String {
    lat.map(|l| format!("; {l:.1} ms to users"))
        .unwrap_or_default()
}

fn winner_reason(
    ev: &Evaluation,
    i: usize,
    outcome: &Outcome,
    strategy: &Strategy,
    feasible: usize,
    opts: &PlaceOptions,
) -> String {
    let c = &ev.cands[i];
    let scores = ev.scores(c);
    if let Outcome::Kept { best, pct } = outcome {
        let (p, r, n) = ev.ident(ev.cands[*best].src);
        return format!(
            "kept current placement: best alternative {p} {r} {n} scores only {pct:.1}% higher (threshold {}%); {}{}",
            trim_num(opts.replace_threshold_percent),
            money(c.cost),
            lat_text(ev.lat_mean(c))
        );
    }
    let lead = match strategy {
        Strategy::CostOptimized if scores.cost >= 100.0 => "cheapest".to_string(),
        Strategy::LatencyOptimized if scores.latency >= 100.0 && ev.lat_mean(c).is_some() => {
            "lowest latency".to_string()
        }
        _ => format!("best {strategy} score {:.1}", c.score),
    };
    let mut meeting: Vec<String> = ev
        .req
        .compliance
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    if !ev.req.data_residency.is_empty() {
        meeting.push("data residency".to_string());
    }
    let meeting = if meeting.is_empty() {
        String::new()
    } else {
        format!(" meeting {}", meeting.join(", "))
    };
    let tail = match outcome {
        Outcome::Replaced { pct } => {
            format!("; replaces current placement (scores {pct:.1}% higher)")
        }
        Outcome::Gone(why) => format!("; replaces current placement: {why}"),
        Outcome::CurrentIsBest => "; current placement is still the best".to_string(),
        _ => String::new(),
    };
    format!(
        "{lead} of {} feasible candidates{meeting}{}; {}{tail}",
        thousands(feasible),
        lat_text(ev.lat_mean(c)),
        money(c.cost)
    )
}

fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}
