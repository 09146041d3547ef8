//! Strategies: how the four dimension scores are combined into one number.
//!
//! A strategy is only a set of weights; presets are published here and in the crate docs so a
//! reviewer can reproduce a score by hand.

use crate::requirements::FieldError;
use std::fmt;

/// Weights of the four dimensions, each >= 0, summing to 1 (±1e-6).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Weights {
    pub cost: f64,
    pub performance: f64,
    pub latency: f64,
    pub resilience: f64,
}

impl Weights {
    /// Validates user weights. Errors use the field names `weights.cost`, ... for a bad single
    /// weight and `weights` for a bad sum.
    pub fn new(
        cost: f64,
        performance: f64,
        latency: f64,
        resilience: f64,
    ) -> Result<Weights, FieldError> {
        for (name, v) in [
            ("weights.cost", cost),
            ("weights.performance", performance),
            ("weights.latency", latency),
            ("weights.resilience", resilience),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(FieldError::new(
                    name,
                    format!("must be a finite number >= 0, got {v}"),
                ));
            }
        }
        let sum = cost + performance + latency + resilience;
        if (sum - 1.0).abs() > 1e-6 {
            return Err(FieldError::new(
                "weights",
                format!("must sum to 1, got {sum} (cost {cost} + performance {performance} + latency {latency} + resilience {resilience})"),
            ));
        }
        Ok(Weights {
            cost,
            performance,
            latency,
            resilience,
        })
    }

    const fn preset(cost: f64, performance: f64, latency: f64, resilience: f64) -> Weights {
        Weights {
            cost,
            performance,
            latency,
            resilience,
        }
    }
}

/// How candidates are ranked.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Strategy {
    /// cost 0.70, performance 0.10, latency 0.10, resilience 0.10
    CostOptimized,
    /// cost 0.10, performance 0.70, latency 0.10, resilience 0.10
    PerformanceOptimized,
    /// cost 0.10, performance 0.10, latency 0.70, resilience 0.10
    LatencyOptimized,
    /// cost 0.10, performance 0.10, latency 0.10, resilience 0.70
    ResilienceOptimized,
    /// 0.25 each (the product guide's hybrid).
    Hybrid,
    Custom(Weights),
}

impl Strategy {
    pub const COST_OPTIMIZED: Weights = Weights::preset(0.7, 0.1, 0.1, 0.1);
    pub const PERFORMANCE_OPTIMIZED: Weights = Weights::preset(0.1, 0.7, 0.1, 0.1);
    pub const LATENCY_OPTIMIZED: Weights = Weights::preset(0.1, 0.1, 0.7, 0.1);
    pub const RESILIENCE_OPTIMIZED: Weights = Weights::preset(0.1, 0.1, 0.1, 0.7);
    pub const HYBRID: Weights = Weights::preset(0.25, 0.25, 0.25, 0.25);

    pub fn weights(&self) -> Weights {
        match self {
            Strategy::CostOptimized => Self::COST_OPTIMIZED,
            Strategy::PerformanceOptimized => Self::PERFORMANCE_OPTIMIZED,
            Strategy::LatencyOptimized => Self::LATENCY_OPTIMIZED,
            Strategy::ResilienceOptimized => Self::RESILIENCE_OPTIMIZED,
            Strategy::Hybrid => Self::HYBRID,
            Strategy::Custom(w) => *w,
        }
    }

    /// Parses the HCL spelling. `custom` requires `weights` (cost, performance, latency,
    /// resilience); giving weights with a preset is an error so nothing is silently ignored.
    pub fn parse(name: &str, weights: Option<[f64; 4]>) -> Result<Strategy, FieldError> {
        let s = match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "cost_optimized" | "cost" => Strategy::CostOptimized,
            "performance_optimized" | "performance" => Strategy::PerformanceOptimized,
            "latency_optimized" | "latency" => Strategy::LatencyOptimized,
            "resilience_optimized" | "resilience" => Strategy::ResilienceOptimized,
            "hybrid" | "balanced" => Strategy::Hybrid,
            "custom" => {
                let [c, p, l, r] = weights.ok_or_else(|| {
                    FieldError::new("weights", "strategy custom requires weights {cost, performance, latency, resilience}")
                })?;
                return Ok(Strategy::Custom(Weights::new(c, p, l, r)?));
            }
            other => {
                return Err(FieldError::new(
                    "strategy",
                    format!(
                        "unknown strategy {other:?}; expected cost_optimized, performance_optimized, latency_optimized, resilience_optimized, hybrid or custom"
                    ),
                ))
            }
        };
        if weights.is_some() {
            return Err(FieldError::new(
                "weights",
                format!(
                    "weights are only used with strategy custom, not {}",
                    s.name()
                ),
            ));
        }
        Ok(s)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::CostOptimized => "cost_optimized",
            Strategy::PerformanceOptimized => "performance_optimized",
            Strategy::LatencyOptimized => "latency_optimized",
            Strategy::ResilienceOptimized => "resilience_optimized",
            Strategy::Hybrid => "hybrid",
            Strategy::Custom(_) => "custom",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
