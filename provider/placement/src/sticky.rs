//! Stickiness: an existing placement is kept unless something is clearly better, so plans do
//! not flap between near-equal candidates when prices move by a cent.
//!
//! Rule: the current placement is kept when it is still feasible, it lies in the fallback group
//! being used, and the best candidate's combined score is at most `replace_threshold_percent`
//! percent higher than the current one's (`(best − current) / current × 100`; a current score
//! of 0 is beaten by any positive score).

use crate::decision::PlaceOptions;
use crate::engine::{Cand, Evaluation};

/// What happened to the current placement.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// No current placement given.
    Fresh,
    /// The current placement is the best candidate anyway.
    CurrentIsBest,
    /// Kept although `best` scores `pct` percent higher.
    Kept { best: usize, pct: f64 },
    /// Replaced because the best scores `pct` percent higher.
    Replaced { pct: f64 },
    /// Replaced because the current one is no longer feasible / not in the preferred group.
    Gone(String),
}

fn pct_higher(best: &Cand, cur: &Cand) -> f64 {
    if cur.score > 0.0 {
        (best.score - cur.score) / cur.score * 100.0
    } else if best.score > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Picks the index (into `ev.cands`) to place on, given the ranked group bests of the pool.
pub(crate) fn choose(
    ev: &Evaluation,
    ranked: &[usize],
    pool: u32,
    opts: &PlaceOptions,
) -> (usize, Outcome) {
    let best = ranked[0];
    if opts.current.is_none() {
        return (best, Outcome::Fresh);
    }
    let Some(cur) = ev.current else {
        let why = ev
            .current_problem
            .clone()
            .unwrap_or_else(|| "no longer feasible".to_string());
        return (best, Outcome::Gone(why));
    };
    if ev.cands[cur].pool != pool {
        return (
            best,
            Outcome::Gone(
                "a higher-priority fallback group now has a feasible candidate".to_string(),
            ),
        );
    }
    if cur == best {
        return (best, Outcome::CurrentIsBest);
    }
    let pct = pct_higher(&ev.cands[best], &ev.cands[cur]);
    let threshold = if opts.replace_threshold_percent.is_finite() {
        opts.replace_threshold_percent.max(0.0)
    } else {
        0.0
    };
    if pct <= threshold {
        (cur, Outcome::Kept { best, pct })
    } else {
        (best, Outcome::Replaced { pct })
    }
}
