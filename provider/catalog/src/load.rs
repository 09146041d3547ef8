//! Loading the snapshot: the JSON document written by `scripts/catalog/build_catalog.py` is
//! embedded in the binary and parsed once, on first use, into the `Catalog` the placement engine
//! reads. Its offers are the exception: `build.rs` compiles them into a static table, so a
//! plugin process neither parses them nor keeps a copy (the test below checks that the result
//! equals parsing the whole document).
//!
//! Why a separate on-disk shape: offers are ~19k rows, so the file stores each as a compact
//! `[region, type, on_demand, spot]` array instead of a keyed object (a third of the size,
//! and faster to parse). The rest maps 1:1 onto `model.rs`.

use crate::error::CatalogError;
use crate::model::{Catalog, InstanceType, LatencyModel, Offer, Region, RegionId, Source, TypeId};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::OnceLock;

/// The snapshot format this loader reads (the generator's `FORMAT_VERSION`).
pub const FORMAT_VERSION: u32 = 1;

/// The snapshot document as committed in `data/catalog.json` (for tools and tests; the plugin
/// loads the split form below).
pub static EMBEDDED_JSON: &str = include_str!("../data/catalog.json");

/// `data/catalog.json` with an empty `offers` array (written by `build.rs`).
static EMBEDDED_WITHOUT_OFFERS: &str =
    include_str!(concat!(env!("OUT_DIR"), "/catalog-without-offers.json"));

/// The offers of `data/catalog.json`, in its order, as `build.rs` compiled them.
static EMBEDDED_OFFERS: &[Offer] = include!(concat!(env!("OUT_DIR"), "/offers.rs"));

/// An offer without a spot price (the generated table's shorthand; prices as IEEE-754 bits).
const fn o(region: u32, instance_type: u32, on_demand_bits: u64) -> Offer {
    Offer {
        region: RegionId(region),
        instance_type: TypeId(instance_type),
        on_demand_hourly_usd: f64::from_bits(on_demand_bits),
        spot_hourly_usd: None,
    }
}

/// An offer with a spot price (see [`o`]).
const fn s(region: u32, instance_type: u32, on_demand_bits: u64, spot_bits: u64) -> Offer {
    Offer {
        spot_hourly_usd: Some(f64::from_bits(spot_bits)),
        ..o(region, instance_type, on_demand_bits)
    }
}

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
        .collect::<Vec<_>>()
        .into();
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
            let mut snap = parse_snapshot(EMBEDDED_WITHOUT_OFFERS)?;
            snap.catalog.offers = Cow::Borrowed(EMBEDDED_OFFERS);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The split embedding (JSON without offers + the compiled table) is the same catalog as
    /// parsing the committed document whole, price bits included.
    #[test]
    fn compiled_offers_equal_the_parsed_document() {
        let whole = parse_snapshot(EMBEDDED_JSON).expect("the committed document parses");
        let split = try_embedded_snapshot().expect("the embedded snapshot loads");
        assert_eq!(whole.catalog.offers.len(), EMBEDDED_OFFERS.len());
        assert!(EMBEDDED_OFFERS.len() > 10_000);
        for (a, b) in whole.catalog.offers.iter().zip(EMBEDDED_OFFERS) {
            assert_eq!((a.region, a.instance_type), (b.region, b.instance_type));
            assert_eq!(
                a.on_demand_hourly_usd.to_bits(),
                b.on_demand_hourly_usd.to_bits()
            );
            assert_eq!(
                a.spot_hourly_usd.map(f64::to_bits),
                b.spot_hourly_usd.map(f64::to_bits)
            );
        }
        assert_eq!(&whole, split);
        assert!(matches!(split.catalog.offers, Cow::Borrowed(_)));
    }
}
