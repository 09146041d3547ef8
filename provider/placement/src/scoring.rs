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
/// `h = clamp(log2(min(vcpu/cpu, mem/memory_gb)) / 2, 0, 1)` (1x → 0, 4x or more → 1);
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
        (ratio.log2() / 2.0).clamp(0.0, 1.0)
    } else if ratio.is_infinite() {
        1.0
    } else {
        0.0
    };
    let g = gen_ratio.unwrap_or(0.5).clamp(0.0, 1.0);
    match gpu {
        None => 100.0 * (0.6 * h + 0.4 * g),
        Some(q) => 100.0 * (0.4 * h + 0.2 * g + 0.4 * q.clamp(0.0, 1.0)),
    }
}

/// Resilience score, absolute: zones >= 3 → 100, 2 → 75, 1 → 50, 0 → 40; an edge/on-prem
/// node (one machine) → 25.
pub fn resilience_cloud(zones: u32) -> f64 {
    match zones {
        0 => 40.0,
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

/// Smallest cost used on the log scale, so a configured $0 edge node stays finite.
pub const COST_FLOOR: f64 = 1e-6;

/// `100·(ln max − ln c)/(ln max − ln min)`; all equal → 100; unknown cost → 0. The logs of
/// the bounds and the scale are computed once per placement.
#[derive(Copy, Clone, Debug)]
pub(crate) struct CostNorm {
    hi: f64,
    scale: Option<f64>,
}

impl CostNorm {
    pub fn new(b: Bounds) -> CostNorm {
        let (lo, hi) = (b.min.max(COST_FLOOR).ln(), b.max.max(COST_FLOOR).ln());
        CostNorm {
            hi,
            scale: (hi - lo > 1e-12).then(|| 100.0 / (hi - lo)),
        }
    }

    /// A cheap upper bound of `score(Some(cost))` (never below it by more than rounding):
    /// uses `ln(2^e·(1+x)) >= e·ln2 + 2x/(2+x)` instead of the logarithm, so the engine can
    /// skip candidates that cannot beat their group's best.
    pub fn score_upper_bound(&self, cost: f64) -> f64 {
        let Some(k) = self.scale else { return 100.0 };
        let c = cost.max(COST_FLOOR);
        if !c.is_finite() {
            return 100.0;
        }
        let bits = c.to_bits();
        let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        let x = m - 1.0;
        let ln_low = e as f64 * std::f64::consts::LN_2 + 2.0 * x / (2.0 + x);
        ((self.hi - ln_low) * k).clamp(0.0, 100.0)
    }

    pub fn score(&self, cost: Option<f64>) -> f64 {
        match (cost, self.scale) {
            (None, _) => 0.0,
            (Some(_), None) => 100.0,
            (Some(c), Some(k)) => ((self.hi - c.max(COST_FLOOR).ln()) * k).clamp(0.0, 100.0),
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
    fn cost_upper_bound_is_an_upper_bound() {
        let n = CostNorm::new(Bounds {
            min: 0.004,
            max: 98.0,
        });
        let mut c = 0.004;
        while c <= 98.0 {
            let exact = n.score(Some(c));
            let ub = n.score_upper_bound(c);
            assert!(ub + 1e-12 >= exact, "{c}: {ub} < {exact}");
            assert!(ub - exact < 1.0, "{c}: bound too loose {ub} vs {exact}");
            c *= 1.013;
        }
    }
}
