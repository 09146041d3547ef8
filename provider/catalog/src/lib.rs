//! Embedded catalog of real cloud data: regions, instance types, on-demand and spot prices,
//! compliance per region and a calibrated latency model, for AWS, Azure and GCP.
//!
//! Why: placement (`plan`) must be deterministic and offline, so it reads a snapshot built from
//! registry packages by `scripts/catalog/build_catalog.py` and embedded in the binary
//! (`data/catalog.json`). Sources, versions, licences and dates travel with the data
//! (`Catalog::sources`); the derivation rules are in this crate's README.md.
//!
//! Rules the data follows:
//! - A price is a real figure from the source or absent: no offer is stored for a missing or
//!   zero price (libcloud writes 0.0 for "no price").
//! - Compliance: `gdpr` for regions in an EU/EEA country (27 EU + IS, LI, NO); `fedramp` for US
//!   government partition regions (AWS GovCloud, Azure US Government; GCP has none, so no GCP
//!   region carries it); `soc2`, `iso27001`, `hipaa`, `pci_dss` are provider-level attestations
//!   that cover each provider's commercial and government regions, and are not set on
//!   China-partition regions (operated by local partners under separate audits).
//! - Latency: `rtt_ms = 2 * km / 200 * route_factor + base_ms`, fitted by least squares to the
//!   Azure inter-region RTT table (see `Catalog::latency.calibration`).
//!
//! Entry points: [`embedded`] (the catalog), [`latency::great_circle_km`],
//! `LatencyModel::rtt_ms`, the lookups on [`Catalog`] and [`residency`].

pub mod error;
pub mod latency;
mod load;
mod lookup;
pub mod model;
pub mod residency;

pub use error::CatalogError;
pub use load::{
    embedded, embedded_notes, parse_snapshot, try_embedded, try_embedded_snapshot, Snapshot,
    EMBEDDED_JSON, FORMAT_VERSION,
};
pub use model::*;
pub use residency::ResidencyEntry;
