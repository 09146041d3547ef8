//! Dimension scores. Raw facts per candidate (price, RTT, headroom, zones) become 0..100
//! numbers here; the formulas are the ones published in the crate docs, and the property
//! tests' oracle re-implements them independently.

/// The four dimension scores of one candidate, each 0..100 (higher is better).
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Scores {
    pub cost: f64,
    pub performance: f64,
    pub latency: f64,
    pub resilience: f64,
}

/// Relative class of a GPU model (0..1), by case-insensitive substring; unknown models 0.5.
pub fn gpu_class(model: Option<&str>) -> f64 {
    let Some(m) = model else { return 0.0 };
    let m = m.to_ascii_lowercase();
    const TABLE: &[(&str, f64)] = &[
        ("gb200", 1.0),
        ("b200", 1.0),
        ("h200", 1.0),
        ("h100", 1.0),
        ("mi300", 1.0),
        ("a100", 0.85),
        ("l40", 0.7),
        ("a10", 0.6),
        ("l4", 0.55),
        ("v100", 0.5),
        ("t4", 0.4),
        ("p100", 0.3),
        ("k80", 0.2),
        ("m60", 0.2),
    ];
    TABLE
        .iter()
        .find(|(k, _)| m.contains(k))
        .map(|(_, v)| *v)
        .unwrap_or(0.5)
}

/// Performance score, 0..100 on an absolute scale (not min-max):
/// `h = clamp(log2(min(vcpu/cpu, mem/memory_gb)), 0, 1)` (1x → 0, 2x or more → 1: headroom
/// earns a little, never enough to pay for an oversized type under balanced weights);
/// `g = generation / newest generation of that cloud in the catalog`, 0.5 when unknown;
/// without a GPU request `100·(0.6h + 0.4g)`, with one `100·(0.4h + 0.2g + 0.4·gpu_class)`.
pub fn performance(
    vcpu: f64,
    mem: f64,
    req_cpu: f64,
    req_mem: f64,
    gen_ratio: Option<f64>,
    gpu: Option<f64>,
) -> f64 {
    let ratio = (vcpu / req_cpu).min(mem / req_mem);
    let h = if ratio.is_finite() && ratio > 0.0 {
        ratio.log2().clamp(0.0, 1.0)
    } else if ratio.is_infinite() {
        1.0
    } else {
        0.0
    };
    let g = gen_ratio.unwrap_or(0.5).clamp(0.0, 1.0);
    match gpu {
        None => 100.0 * (0.3 * h + 0.7 * g),
        Some(q) => 100.0 * (0.2 * h + 0.3 * g + 0.5 * q.clamp(0.0, 1.0)),
    }
}

/// Resilience score, absolute: zones >= 3 → 100, 2 → 75, 1 → 50; 0 means the catalog does
/// not know the zone count (no registry source has it for Azure, GCP and AWS GovCloud) → 60,
/// between one and two zones, so unknown is neither rewarded nor punished as "no zones";
/// an edge/on-prem node (one machine) → 25.
pub fn resilience_cloud(zones: u32) -> f64 {
    match zones {
        0 => 60.0,
        1 => 50.0,
        2 => 75.0,
        _ => 100.0,
    }
}

/// See [`resilience_cloud`].
pub const RESILIENCE_EDGE: f64 = 25.0;

/// Min-max bounds over the feasible set for cost (log scale) and latency (linear).
#[derive(Copy, Clone, Debug)]
pub(crate) struct Bounds {
    pub min: f64,
    pub max: f64,
}

impl Bounds {
    pub fn empty() -> Bounds {
        Bounds {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
    pub fn add(&mut self, v: f64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

/// Smallest cost used in ratios, so a configured $0 edge node stays finite.
pub const COST_FLOOR: f64 = 1e-6;

/// `100 · cheapest / cost` over the feasible set: the cheapest scores 100, one twice as
/// expensive 50, four times 25. A ratio (not a min-max) keeps the score independent of how
/// expensive the priciest feasible candidate happens to be, so a candidate costing four times
/// the cheapest can never look "almost as cheap" because a $30/h type is also feasible.
/// Unknown cost scores 0.
#[derive(Copy, Clone, Debug)]
pub(crate) struct CostNorm {
    min: f64,
}

impl CostNorm {
    pub fn new(b: Bounds) -> CostNorm {
        CostNorm {
            min: if b.min.is_finite() {
                b.min.max(COST_FLOOR)
            } else {
                COST_FLOOR
            },
        }
    }

    /// An upper bound of `score(Some(cost))`; the ratio is cheap, so it is the score itself.
    /// The engine uses it to skip candidates that cannot beat their group's best.
    pub fn score_upper_bound(&self, cost: f64) -> f64 {
        self.score(Some(cost))
    }

    pub fn score(&self, cost: Option<f64>) -> f64 {
        match cost {
            None => 0.0,
            Some(c) if !c.is_finite() => 0.0,
            Some(c) => (100.0 * self.min / c.max(COST_FLOOR)).clamp(0.0, 100.0),
        }
    }
}

/// `100·(max − rtt)/(max − min)`; all equal or no user locations → 100.
pub(crate) fn latency_score(lat: Option<f64>, b: Bounds) -> f64 {
    let Some(x) = lat else { return 100.0 };
    if b.max - b.min <= 1e-12 {
        100.0
    } else {
        (100.0 * (b.max - x) / (b.max - b.min)).clamp(0.0, 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_score_is_the_ratio_to_the_cheapest() {
        let n = CostNorm::new(Bounds {
            min: 0.1,
            max: 98.0,
        });
        assert_eq!(n.score(Some(0.1)), 100.0);
        assert!((n.score(Some(0.2)) - 50.0).abs() < 1e-9);
        assert!((n.score(Some(0.4)) - 25.0).abs() < 1e-9);
        assert_eq!(n.score(None), 0.0);
        assert_eq!(n.score(Some(f64::INFINITY)), 0.0);
        assert_eq!(n.score_upper_bound(0.3), n.score(Some(0.3)));
    }

    #[test]
    fn headroom_never_pays_for_doubling_the_price_under_balanced_weights() {
        let right = performance(2.0, 8.0, 2.0, 8.0, Some(1.0), None);
        let double = performance(4.0, 16.0, 2.0, 8.0, Some(1.0), None);
        let cost = CostNorm::new(Bounds { min: 0.1, max: 0.2 });
        let balanced = |perf: f64, price: f64| 0.25 * perf + 0.25 * cost.score(Some(price));
        assert!(balanced(right, 0.1) > balanced(double, 0.2));
    }
}
