//! Hard constraints: why a candidate cannot host the workload.
//!
//! Constraints are checked in one documented order (see [`Rejection::stage`]):
//! resources first (cpu, memory, GPU count, GPU model), then the place (compliance, data
//! residency, preferred provider), then money and capacity (price known, capacity left,
//! budget) and last latency. Only the FIRST failing constraint of a candidate is counted, so
//! the counts in [`RejectionCounts`] add up to the number of rejected candidates.

use crate::requirements::{residency_matches, Requirements, Residency};
use catalog::{Compliance, Region};
use std::fmt;

/// Why one candidate was rejected.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Rejection {
    InsufficientCpu,
    InsufficientMemory,
    /// Fewer GPUs than requested.
    NoGpu,
    /// GPUs present but the model does not match `gpu_model`.
    GpuModel,
    /// The first requested regime (in the user's order) the place lacks.
    Compliance(Compliance),
    DataResidency,
    ProviderNotPreferred,
    /// Spot requested but no spot figure, or a budget is set and an edge node has no cost.
    NoPrice,
    /// Edge node cordoned, or too little free capacity for all replicas / storage.
    NoCapacity,
    OverBudget {
        cost: f64,
        budget: f64,
    },
    /// `ms` is the worst RTT to any user location.
    OverLatency {
        ms: f64,
        max: f64,
    },
}

impl Rejection {
    /// Position of this constraint in the check order (0 = checked first).
    pub fn stage(&self) -> usize {
        match self {
            Rejection::InsufficientCpu => 0,
            Rejection::InsufficientMemory => 1,
            Rejection::NoGpu => 2,
            Rejection::GpuModel => 3,
            Rejection::Compliance(_) => 4,
            Rejection::DataResidency => 5,
            Rejection::ProviderNotPreferred => 6,
            Rejection::NoPrice => 7,
            Rejection::NoCapacity => 8,
            Rejection::OverBudget { .. } => 9,
            Rejection::OverLatency { .. } => 10,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::InsufficientCpu => f.write_str("too few vCPUs"),
            Rejection::InsufficientMemory => f.write_str("too little memory"),
            Rejection::NoGpu => f.write_str("too few GPUs"),
            Rejection::GpuModel => f.write_str("wrong GPU model"),
            Rejection::Compliance(c) => write!(f, "not {c} compliant"),
            Rejection::DataResidency => f.write_str("outside the data-residency regions"),
            Rejection::ProviderNotPreferred => f.write_str("provider not preferred"),
            Rejection::NoPrice => f.write_str("no price"),
            Rejection::NoCapacity => f.write_str("no capacity left"),
            Rejection::OverBudget { cost, budget } => {
                write!(f, "${cost:.3}/h exceeds the budget ${budget:.3}/h")
            }
            Rejection::OverLatency { ms, max } => {
                write!(f, "{ms:.1} ms exceeds max latency {max:.1} ms")
            }
        }
    }
}

/// How many candidates failed on each constraint (first failure only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RejectionCounts {
    pub insufficient_cpu: usize,
    pub insufficient_memory: usize,
    pub no_gpu: usize,
    pub gpu_model: usize,
    /// Indexed like `Compliance::ALL`.
    pub compliance: [usize; 6],
    pub data_residency: usize,
    pub provider_not_preferred: usize,
    pub no_price: usize,
    pub no_capacity: usize,
    pub over_budget: usize,
    pub over_latency: usize,
}

impl RejectionCounts {
    pub fn add(&mut self, r: &Rejection) {
        self.add_n(r, 1);
    }

    /// Counts `n` candidates rejected for `r`.
    pub fn add_n(&mut self, r: &Rejection, n: usize) {
        match r {
            Rejection::InsufficientCpu => self.insufficient_cpu += n,
            Rejection::InsufficientMemory => self.insufficient_memory += n,
            Rejection::NoGpu => self.no_gpu += n,
            Rejection::GpuModel => self.gpu_model += n,
            Rejection::Compliance(c) => self.compliance[compliance_index(*c)] += n,
            Rejection::DataResidency => self.data_residency += n,
            Rejection::ProviderNotPreferred => self.provider_not_preferred += n,
            Rejection::NoPrice => self.no_price += n,
            Rejection::NoCapacity => self.no_capacity += n,
            Rejection::OverBudget { .. } => self.over_budget += n,
            Rejection::OverLatency { .. } => self.over_latency += n,
        }
    }

    pub fn total(&self) -> usize {
        self.insufficient_cpu
            + self.insufficient_memory
            + self.no_gpu
            + self.gpu_model
            + self.compliance.iter().sum::<usize>()
            + self.data_residency
            + self.provider_not_preferred
            + self.no_price
            + self.no_capacity
            + self.over_budget
            + self.over_latency
    }

    /// Non-zero counts as phrases in check order: `"3,120 lack a GPU"`.
    pub fn phrases(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |n: usize, what: &str| {
            if n > 0 {
                out.push(format!("{} {what}", thousands(n)));
            }
        };
        push(self.insufficient_cpu, "have too few vCPUs");
        push(self.insufficient_memory, "have too little memory");
        push(self.no_gpu, "lack a GPU");
        push(self.gpu_model, "have the wrong GPU model");
        for (i, c) in Compliance::ALL.iter().enumerate() {
            push(
                self.compliance[i],
                &format!("are outside {} regions", c.as_str().to_uppercase()),
            );
        }
        push(
            self.data_residency,
            "are outside the data-residency regions",
        );
        push(
            self.provider_not_preferred,
            "are not from a preferred provider",
        );
        push(self.no_price, "have no price");
        push(self.no_capacity, "have no capacity left");
        push(self.over_budget, "exceed the budget");
        push(self.over_latency, "exceed the latency limit");
        out
    }
}

fn compliance_index(c: Compliance) -> usize {
    Compliance::ALL.iter().position(|x| *x == c).unwrap_or(0)
}

/// `1234567` -> `"1,234,567"`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The first requested regime the place lacks.
pub(crate) fn first_missing_compliance(
    have: &[Compliance],
    req: &Requirements,
) -> Option<Compliance> {
    req.compliance.iter().copied().find(|c| !have.contains(c))
}

/// Does the place satisfy the residency list (empty list = anywhere)?
pub(crate) fn residency_ok(
    res: &[Residency],
    code: &str,
    country: &str,
    jurisdictions: &[String],
) -> bool {
    res.is_empty()
        || res
            .iter()
            .any(|r| residency_matches(r, code, country, jurisdictions))
}

/// A compliance or residency rule a placement breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ComplianceViolation {
    #[error("region {region} is not {regime} compliant")]
    MissingRegime { region: String, regime: Compliance },
    #[error("region {region} ({country}) is outside the data-residency regions {allowed}")]
    OutsideResidency {
        region: String,
        country: String,
        allowed: String,
    },
}

/// Every compliance and residency rule of `req` that `region` breaks (empty = compliant).
/// Used by the engine's filter and by drift checks on an existing placement.
pub fn validate_compliance(region: &Region, req: &Requirements) -> Vec<ComplianceViolation> {
    let mut out: Vec<ComplianceViolation> = req
        .compliance
        .iter()
        .filter(|c| !region.compliance.contains(c))
        .map(|c| ComplianceViolation::MissingRegime {
            region: region.code.clone(),
            regime: *c,
        })
        .collect();
    if !residency_ok(
        &req.data_residency,
        &region.code,
        &region.country,
        &region.jurisdictions,
    ) {
        out.push(ComplianceViolation::OutsideResidency {
            region: region.code.clone(),
            country: region.country.clone(),
            allowed: req
                .data_residency
                .iter()
                .map(|r| match r {
                    Residency::Region(c) => c.clone(),
                    Residency::Token(t) => t.clone(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    out
}
