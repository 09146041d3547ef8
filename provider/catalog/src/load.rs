//! Loading the snapshot: the JSON document written by `scripts/catalog/build_catalog.py` is
//! embedded in the binary with `include_str!` and parsed once, on first use, into the
//! `Catalog` the placement engine reads.
//!
//! Why a separate on-disk shape: offers are ~19k rows, so the file stores each as a compact
//! `[region, type, on_demand, spot]` array instead of a keyed object (a third of the size,
//! and faster to parse). The rest maps 1:1 onto `model.rs`.

use crate::error::CatalogError;
use crate::model::{Catalog, InstanceType, LatencyModel, Offer, Region, RegionId, Source, TypeId};
use serde::Deserialize;
use std::sync::OnceLock;

/// The snapshot format this loader reads (the generator's `FORMAT_VERSION`).
pub const FORMAT_VERSION: u32 = 1;

/// The embedded snapshot document, as committed in `data/catalog.json`.
pub static EMBEDDED_JSON: &str = include_str!("../data/catalog.json");

/// A parsed snapshot: the catalog plus the generator's notes on what was left out and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub catalog: Catalog,
    /// Human-readable notes from the generator (gaps, dropped rows and the reason).
    pub notes: Vec<String>,
}

#[derive(Deserialize)]
struct Wire {
    format: u32,
    snapshot_date: String,
    #[serde(default)]
    notes: Vec<String>,
    sources: Vec<Source>,
    latency: LatencyModel,
    regions: Vec<Region>,
    instance_types: Vec<InstanceType>,
    offers: Vec<(u32, u32, f64, Option<f64>)>,
}

/// Parses a snapshot document (the format of `data/catalog.json`). Does not validate: call
/// `Catalog::validate` for the invariants.
pub fn parse_snapshot(json: &str) -> Result<Snapshot, CatalogError> {
    let wire: Wire = serde_json::from_str(json).map_err(|e| CatalogError::Parse(e.to_string()))?;
    if wire.format != FORMAT_VERSION {
        return Err(CatalogError::Format {
            found: wire.format,
            expected: FORMAT_VERSION,
        });
    }
    let offers = wire
        .offers
        .into_iter()
        .map(|(r, t, od, spot)| Offer {
            region: RegionId(r),
            instance_type: TypeId(t),
            on_demand_hourly_usd: od,
            spot_hourly_usd: spot,
        })
        .collect();
    Ok(Snapshot {
        catalog: Catalog {
            snapshot_date: wire.snapshot_date,
            regions: wire.regions,
            instance_types: wire.instance_types,
            offers,
            latency: wire.latency,
            sources: wire.sources,
        },
        notes: wire.notes,
    })
}

static EMBEDDED: OnceLock<Result<Snapshot, CatalogError>> = OnceLock::new();

/// The embedded snapshot, parsed and validated once per process.
pub fn try_embedded_snapshot() -> Result<&'static Snapshot, CatalogError> {
    EMBEDDED
        .get_or_init(|| {
            let snap = parse_snapshot(EMBEDDED_JSON)?;
            snap.catalog.validate()?;
            Ok(snap)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The embedded catalog, or the reason it cannot be used.
pub fn try_embedded() -> Result<&'static Catalog, CatalogError> {
    try_embedded_snapshot().map(|s| &s.catalog)
}

/// The embedded catalog, parsed on first use (a few ms) and shared afterwards.
///
/// # Panics
/// Only if the committed `data/catalog.json` does not parse or validate, which the crate's
/// tests rule out for every build; use [`try_embedded`] to handle that case instead.
pub fn embedded() -> &'static Catalog {
    match try_embedded() {
        Ok(c) => c,
        Err(e) => panic!("the embedded catalog is broken (a build defect): {e}"),
    }
}

/// The generator's notes on the embedded snapshot (what was left out, and why).
pub fn embedded_notes() -> &'static [String] {
    match try_embedded_snapshot() {
        Ok(s) => &s.notes,
        Err(_) => &[],
    }
}
