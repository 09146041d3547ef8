//! The engine's inputs beside requirements (options) and its outputs (decision, error), kept
//! apart from the algorithm so the Terraform layer can depend on these shapes alone.

use crate::constraints::{thousands, Rejection, RejectionCounts};
use crate::requirements::Provider;
use crate::scoring::Scores;
use std::fmt;

/// Identifies an existing placement for stickiness: a cloud `(provider, region, type)` or an
/// edge/on-prem `(provider, region, node)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementKey {
    pub provider: Provider,
    pub region: String,
    pub instance_type: Option<String>,
    pub node: Option<String>,
}

impl fmt::Display for PlacementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.provider, self.region)?;
        if let Some(t) = &self.instance_type {
            write!(f, " {t}")?;
        }
        if let Some(n) = &self.node {
            write!(f, " node {n}")?;
        }
        Ok(())
    }
}

/// Where a disaster-recovery secondary must differ from the primary.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SecondaryRule {
    /// A different (provider, region) pair.
    DifferentRegion,
    /// A different provider.
    DifferentProvider,
}

/// One ordered fallback group, like Karmada's `clusterAffinities`: the first group with a
/// feasible candidate wins. Empty `providers` / `regions` match anything; `regions` entries
/// match a region code (case-insensitive), a jurisdiction token or a country code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FallbackGroup {
    pub name: String,
    pub providers: Vec<Provider>,
    pub regions: Vec<String>,
}

/// Knobs of one `place` call.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaceOptions {
    /// Number of alternatives returned (default 5).
    pub top_k: usize,
    /// The placement in state, if any, for stickiness.
    pub current: Option<PlacementKey>,
    /// Keep `current` unless another candidate's combined score is more than this many
    /// percent higher (default 10).
    pub replace_threshold_percent: f64,
    /// Also choose a disaster-recovery secondary.
    pub secondary: Option<SecondaryRule>,
    /// Ordered fallback groups; empty = one group matching everything.
    pub fallback_groups: Vec<FallbackGroup>,
}

impl Default for PlaceOptions {
    fn default() -> Self {
        PlaceOptions {
            top_k: 5,
            current: None,
            replace_threshold_percent: 10.0,
            secondary: None,
            fallback_groups: Vec::new(),
        }
    }
}

/// One chosen (or alternative) place.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// `aws`, `azure`, `gcp`, `edge` or `onprem`.
    pub provider: String,
    pub region: String,
    /// `None` for single cloud placements (the driver picks the zone); set by zone spreading.
    pub zone: Option<String>,
    /// Edge / on-prem node id.
    pub node: Option<String>,
    pub instance_type: Option<String>,
    /// Whole workload (all replicas placed here, storage included), USD/h; NaN never appears:
    /// candidates with unknown cost report 0 here and say so in `Decision::warnings`.
    pub estimated_cost_hourly: f64,
    /// Weighted mean RTT to the user locations; `None` without user locations.
    pub estimated_latency_ms: Option<f64>,
    /// Combined score, 0..100.
    pub score: f64,
    pub scores: Scores,
    /// One line for the plan.
    pub reason: String,
    /// False when the cost is unknown (edge node without a configured cost).
    pub cost_known: bool,
}

impl Placement {
    pub fn key(&self) -> PlacementKey {
        PlacementKey {
            provider: Provider::parse(&self.provider).unwrap_or(Provider::Edge),
            region: self.region.clone(),
            instance_type: self.instance_type.clone(),
            node: self.node.clone(),
        }
    }
}

/// The engine's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub placement: Placement,
    /// Up to `top_k`, best first: the best candidate of each other (provider, region) pair
    /// (each edge node is its own pair).
    pub alternatives: Vec<Placement>,
    pub secondary: Option<Placement>,
    pub warnings: Vec<String>,
    /// Candidates examined (catalog offers + edge nodes).
    pub considered: usize,
    /// Feasible candidates (all fallback groups).
    pub feasible: usize,
    pub rejected: RejectionCounts,
}

/// Nothing satisfies the hard constraints. `Display` gives the counts per constraint and the
/// closest miss.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub struct NoFeasiblePlacement {
    pub considered: usize,
    /// Boxed to keep `Result<Decision, NoFeasiblePlacement>` small.
    pub rejected: Box<RejectionCounts>,
    /// The candidate that passed the most checks (cheapest among equals) and why it failed.
    pub closest: Option<Box<ClosestMiss>>,
    /// Extra explanation (e.g. spread rules that could not be met).
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClosestMiss {
    /// `aws eu-west-1 g4dn.xlarge`.
    pub candidate: String,
    /// Whole-workload cost, when known.
    pub cost_hourly: Option<f64>,
    pub rejection: Rejection,
    /// The constraints it passed, e.g. `"meets gdpr, has the GPU"`.
    pub passed: String,
}

impl NoFeasiblePlacement {
    fn render(&self) -> String {
        let mut s = String::from("no placement satisfies the requirements");
        if self.considered == 0 {
            s.push_str(": there are no candidates (empty catalog and no edge nodes)");
        }
        let phrases = self.rejected.phrases();
        if !phrases.is_empty() {
            s.push_str(&format!(
                ": of {} candidates, {}",
                thousands(self.considered),
                phrases.join(", ")
            ));
        }
        if let Some(c) = &self.closest {
            let cost = c
                .cost_hourly
                .map(|v| format!(" at ${v:.3}/h"))
                .unwrap_or_default();
            s.push_str(&format!(
                "; closest miss is {}{cost}{}, rejected: {}",
                c.candidate,
                if c.passed.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.passed)
                },
                c.rejection
            ));
        }
        if let Some(d) = &self.detail {
            s.push_str("; ");
            s.push_str(d);
        }
        s
    }
}
