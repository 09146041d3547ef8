//! Failure on demand, so that tests can walk every error path of apply against a real driver.
//!
//! A fault plan is a comma-separated list of `operation:kind=rate`, read from the provider's
//! `sim_faults` setting or the `HYBRID_SIM_FAULTS` environment variable, e.g.
//! `create:throttle=0.3,create:lost_response=1,delete:error=1`.
//!
//! - `throttle`: the call fails as throttled (retryable) before doing anything.
//! - `error`: the call fails with a server error (retryable) before doing anything.
//! - `reject`: the call fails with a final error before doing anything.
//! - `lost_response`: the call takes effect, then reports a server error, as when a response is
//!   lost on the wire. This is what idempotency keys exist for.
//!
//! Rates are probabilities in [0, 1]; 1 means every call.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use crate::retry::Jitter;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    Throttle,
    Error,
    Reject,
    LostResponse,
}

impl FaultKind {
    fn parse(text: &str) -> Option<FaultKind> {
        match text {
            "throttle" => Some(FaultKind::Throttle),
            "error" => Some(FaultKind::Error),
            "reject" => Some(FaultKind::Reject),
            "lost_response" => Some(FaultKind::LostResponse),
            _ => None,
        }
    }
}

/// Operations a fault can target.
pub const OPERATIONS: [&str; 5] = ["create", "read", "update", "delete", "list"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault plan entry {entry:?}: {reason}")]
pub struct FaultPlanError {
    pub entry: String,
    pub reason: String,
}

/// Parsed fault plan; draws are seeded so a test run is reproducible.
pub struct FaultPlan {
    rates: BTreeMap<(String, FaultKind), f64>,
    rng: Mutex<Jitter>,
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultPlan")
            .field("rates", &self.rates)
            .finish()
    }
}

impl FaultPlan {
    pub fn none() -> FaultPlan {
        FaultPlan {
            rates: BTreeMap::new(),
            rng: Mutex::new(Jitter::seeded(1)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }

    pub fn parse(spec: &str) -> Result<FaultPlan, FaultPlanError> {
        let mut rates = BTreeMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let err = |reason: &str| FaultPlanError {
                entry: entry.to_string(),
                reason: reason.to_string(),
            };
            let (target, rate) = entry
                .split_once('=')
                .ok_or_else(|| err("expected operation:kind=rate"))?;
            let (operation, kind) = target
                .split_once(':')
                .ok_or_else(|| err("expected operation:kind=rate"))?;
            if !OPERATIONS.contains(&operation) {
                return Err(err(
                    "operation must be one of create, read, update, delete, list",
                ));
            }
            let kind = FaultKind::parse(kind)
                .ok_or_else(|| err("kind must be one of throttle, error, reject, lost_response"))?;
            let rate: f64 = rate
                .parse()
                .map_err(|_| err("rate must be a number between 0 and 1"))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(err("rate must be a number between 0 and 1"));
            }
            rates.insert((operation.to_string(), kind), rate);
        }
        Ok(FaultPlan {
            rates,
            rng: Mutex::new(Jitter::seeded(0xFA17)),
        })
    }

    /// Draws whether `kind` hits this call of `operation`.
    pub fn hits(&self, operation: &str, kind: FaultKind) -> bool {
        let Some(rate) = self.rates.get(&(operation.to_string(), kind)) else {
            return false;
        };
        if *rate >= 1.0 {
            return true;
        }
        let draw = match self.rng.lock() {
            Ok(mut rng) => rng.next_unit(),
            Err(poisoned) => poisoned.into_inner().next_unit(),
        };
        draw < *rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plan() {
        let plan = FaultPlan::parse("create:throttle=0.5, delete:error=1").expect("valid plan");
        assert!(plan.hits("delete", FaultKind::Error));
        assert!(!plan.hits("read", FaultKind::Error));
        let hits = (0..1000)
            .filter(|_| plan.hits("create", FaultKind::Throttle))
            .count();
        assert!(
            (350..650).contains(&hits),
            "about half of the calls: {hits}"
        );
    }

    #[test]
    fn rejects_bad_entries_with_a_reason() {
        for bad in [
            "create",
            "create:boom=1",
            "fly:error=1",
            "create:error=2",
            "create:error=x",
        ] {
            let err = FaultPlan::parse(bad).expect_err(bad);
            assert_eq!(err.entry, bad);
        }
        assert!(FaultPlan::parse("").expect("empty plan").is_empty());
    }
}
