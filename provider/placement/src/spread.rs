//! Spreading replicas over several failure domains, modelled on Karmada's spread constraints
//! (`spreadByField` provider | region | zone, `minGroups`, `maxGroups`) and its replica
//! scheduling types (`Duplicated`: every group runs all replicas; `Divided`: the replicas are
//! split across the groups).
//!
//! Uses the same filter and scores as [`crate::place`]. Groups are formed from the ranked
//! (provider, region) group bests: by provider, the best region of each provider; by region,
//! each pair; by zone, each zone of a region in rank order (AWS `<region>a`, GCP
//! `<region>-a`, Azure `1`; an edge node or a zone-less region is one group). The number of
//! groups is `min(max_groups, feasible groups)` (and at most `replicas` when divided), then
//! reduced towards `min_groups` while the total cost exceeds the budget. For `Divided`, the
//! filter checks each candidate with the largest share a group can get,
//! `ceil(replicas / min_groups)`; shares are `replicas / n` with the remainder going to the
//! best-ranked groups.

use crate::candidates::EdgeCandidate;
use crate::constraints::RejectionCounts;
use crate::decision::{NoFeasiblePlacement, PlaceOptions, Placement};
use crate::engine::{money, Evaluation, Src};
use crate::requirements::{FieldError, Provider, Requirements};
use crate::strategy::Strategy;
use catalog::{Catalog, Cloud};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SpreadBy {
    Provider,
    Region,
    Zone,
}

impl SpreadBy {
    fn as_str(self) -> &'static str {
        match self {
            SpreadBy::Provider => "provider",
            SpreadBy::Region => "region",
            SpreadBy::Zone => "zone",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReplicaScheduling {
    /// Every group runs `replicas` replicas.
    Duplicated,
    /// `replicas` are divided across the groups.
    Divided,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SpreadRule {
    pub spread_by: SpreadBy,
    pub min_groups: u32,
    pub max_groups: u32,
    pub scheduling: ReplicaScheduling,
}

impl SpreadRule {
    /// `min_groups >= 1`, `max_groups >= min_groups`.
    pub fn new(
        spread_by: SpreadBy,
        min_groups: u32,
        max_groups: u32,
        scheduling: ReplicaScheduling,
    ) -> Result<SpreadRule, FieldError> {
        if min_groups == 0 {
            return Err(FieldError::new("spread.min_groups", "must be >= 1"));
        }
        if max_groups < min_groups {
            return Err(FieldError::new(
                "spread.max_groups",
                format!("must be >= min_groups ({min_groups}), got {max_groups}"),
            ));
        }
        Ok(SpreadRule {
            spread_by,
            min_groups,
            max_groups,
            scheduling,
        })
    }
}

/// Replicas placed in one group.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// `estimated_cost_hourly` covers this group's replicas.
    pub placement: Placement,
    pub replicas: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpreadDecision {
    /// Best-ranked group first.
    pub assignments: Vec<Assignment>,
    pub total_cost_hourly: f64,
    pub warnings: Vec<String>,
    pub considered: usize,
    pub feasible: usize,
    pub rejected: RejectionCounts,
}

fn zone_name(cloud: Cloud, code: &str, k: u32) -> String {
    let letter = char::from(b'a' + (k % 26) as u8);
    match cloud {
        Cloud::Aws => format!("{code}{letter}"),
        Cloud::Gcp => format!("{code}-{letter}"),
        Cloud::Azure => format!("{}", k + 1),
    }
}

/// Places `req.replicas` over several groups according to `rule`.
pub fn place_spread(
    catalog: &Catalog,
    edge: &[EdgeCandidate],
    req: &Requirements,
    strategy: &Strategy,
    opts: &PlaceOptions,
    rule: &SpreadRule,
) -> Result<SpreadDecision, NoFeasiblePlacement> {
    let rule = SpreadRule {
        min_groups: rule.min_groups.max(1),
        max_groups: rule.max_groups.max(rule.min_groups.max(1)),
        ..*rule
    };
    let mut filter_req = req.clone();
    if rule.scheduling == ReplicaScheduling::Divided {
        filter_req.replicas = req.replicas.div_ceil(rule.min_groups).max(1);
    }
    let mut ev = Evaluation::run(catalog, edge, &filter_req, strategy.weights(), opts);
    let Some(pool) = ev.cands.iter().map(|c| c.pool).min() else {
        return Err(ev.no_feasible(None));
    };
    let ranked = ev.group_bests(|c| c.pool == pool);

    // Groups: (candidate index, zone name).
    let mut groups: Vec<(usize, Option<String>)> = Vec::new();
    match rule.spread_by {
        SpreadBy::Region => groups.extend(ranked.iter().map(|&i| (i, None))),
        SpreadBy::Provider => {
            let mut seen: Vec<Provider> = Vec::new();
            for &i in &ranked {
                let (p, _, _) = ev.ident(ev.cands[i].src);
                if !seen.contains(&p) {
                    seen.push(p);
                    groups.push((i, None));
                }
            }
        }
        SpreadBy::Zone => {
            for &i in &ranked {
                if groups.len() >= rule.max_groups as usize {
                    break;
                }
                match ev.cands[i].src {
                    Src::Offer(o) => {
                        let region = catalog.region(catalog.offers[o as usize].region);
                        if region.zones == 0 {
                            groups.push((i, None));
                        }
                        for k in 0..region.zones {
                            groups.push((i, Some(zone_name(region.cloud, &region.code, k))));
                        }
                    }
                    Src::Edge(_) => groups.push((i, None)),
                }
            }
        }
    }

    let mut n = groups.len().min(rule.max_groups as usize);
    if rule.scheduling == ReplicaScheduling::Divided {
        n = n.min(req.replicas as usize);
    }
    if n < rule.min_groups as usize {
        let why = if rule.scheduling == ReplicaScheduling::Divided
            && (req.replicas as usize) < groups.len()
        {
            format!(
                "spread by {} needs at least {} groups but only {} replicas are divided",
                rule.spread_by.as_str(),
                rule.min_groups,
                req.replicas
            )
        } else {
            format!(
                "spread by {} needs at least {} groups, only {} feasible",
                rule.spread_by.as_str(),
                rule.min_groups,
                groups.len()
            )
        };
        return Err(ev.no_feasible(Some(why)));
    }

    let shares = |n: usize| -> Vec<u32> {
        match rule.scheduling {
            ReplicaScheduling::Duplicated => vec![req.replicas; n],
            ReplicaScheduling::Divided => {
                let (base, rem) = (req.replicas / n as u32, req.replicas % n as u32);
                (0..n as u32).map(|k| base + u32::from(k < rem)).collect()
            }
        }
    };
    let total = |n: usize| -> f64 {
        shares(n)
            .iter()
            .zip(&groups)
            .map(|(s, (i, _))| ev.unit_cost(&ev.cands[*i]).unwrap_or(0.0) * f64::from(*s))
            .sum()
    };
    if let Some(budget) = req.cost_budget_hourly {
        while n > rule.min_groups as usize && total(n) > budget {
            n -= 1;
        }
        let t = total(n);
        if t > budget {
            return Err(ev.no_feasible(Some(format!(
                "spreading over {n} {}s costs ${t:.3}/h, over the budget ${budget:.3}/h",
                rule.spread_by.as_str()
            ))));
        }
    }

    let sh = shares(n);
    let total_cost = total(n);
    let mut assignments = Vec::with_capacity(n);
    for (k, ((i, zone), count)) in groups.iter().take(n).zip(&sh).enumerate() {
        let c = ev.cands[*i];
        let cost = ev.unit_cost(&c).map(|u| u * f64::from(*count));
        let reason = format!(
            "spread by {}: group {} of {n}, {count} replica{} ({}); score {:.1}; {}{}",
            rule.spread_by.as_str(),
            k + 1,
            if *count == 1 { "" } else { "s" },
            match rule.scheduling {
                ReplicaScheduling::Duplicated => "duplicated",
                ReplicaScheduling::Divided => "divided",
            },
            c.score,
            money(cost),
            ev.lat_mean(&c)
                .map(|l| format!("; {l:.1} ms to users"))
                .unwrap_or_default()
        );
        if k == 0 || groups[..k].iter().all(|(j, _)| j != i) {
            ev.warn_about(*i, "spread group");
        }
        let mut p = ev.placement(*i, reason);
        p.zone = zone.clone();
        p.estimated_cost_hourly = cost.unwrap_or(0.0);
        assignments.push(Assignment {
            placement: p,
            replicas: *count,
        });
    }
    Ok(SpreadDecision {
        assignments,
        total_cost_hourly: total_cost,
        warnings: ev.warnings,
        considered: ev.considered,
        feasible: ev.feasible,
        rejected: ev.counts,
    })
}
