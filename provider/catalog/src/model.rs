//! The catalog's data model: the contract between the embedded snapshot (this crate) and the
//! placement engine (which only reads it).
//!
//! Everything here is plain data. Indices (`RegionId`, `TypeId`) point into the `Catalog`'s
//! vectors so that an offer costs a few bytes and the whole catalog loads in milliseconds.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A public cloud whose regions, types and prices come from the embedded snapshot.
/// Edge and on-prem capacity is not here: it comes from `hybrid_edge_node` resources.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Aws,
    Azure,
    Gcp,
}

impl Cloud {
    pub const ALL: [Cloud; 3] = [Cloud::Aws, Cloud::Azure, Cloud::Gcp];

    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
            Cloud::Gcp => "gcp",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compliance regimes a region can satisfy. The rule for each lives in the catalog's docs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compliance {
    Gdpr,
    Fedramp,
    Soc2,
    Iso27001,
    Hipaa,
    PciDss,
}

impl Compliance {
    pub const ALL: [Compliance; 6] = [
        Compliance::Gdpr,
        Compliance::Fedramp,
        Compliance::Soc2,
        Compliance::Iso27001,
        Compliance::Hipaa,
        Compliance::PciDss,
    ];

    /// The spelling users write in HCL and that diagnostics print.
    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Gdpr => "gdpr",
            Compliance::Fedramp => "fedramp",
            Compliance::Soc2 => "soc2",
            Compliance::Iso27001 => "iso27001",
            Compliance::Hipaa => "hipaa",
            Compliance::PciDss => "pci_dss",
        }
    }

    /// Accepts the common spellings case-insensitively: `GDPR`, `pci-dss`, `PCI_DSS`, `iso-27001`.
    pub fn parse(text: &str) -> Option<Compliance> {
        let norm: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match norm.as_str() {
            "gdpr" => Some(Compliance::Gdpr),
            "fedramp" => Some(Compliance::Fedramp),
            "soc2" => Some(Compliance::Soc2),
            "iso27001" => Some(Compliance::Iso27001),
            "hipaa" => Some(Compliance::Hipaa),
            "pcidss" => Some(Compliance::PciDss),
            _ => None,
        }
    }
}

impl fmt::Display for Compliance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Index of a region in `Catalog::regions`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RegionId(pub u32);

/// Index of an instance type in `Catalog::instance_types`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TypeId(pub u32);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub cloud: Cloud,
    /// The provider's own code: `eu-west-1`, `westeurope`, `europe-west1`.
    pub code: String,
    pub display_name: String,
    /// ISO 3166-1 alpha-2 country code of the metro.
    pub country: String,
    /// Jurisdictions the region sits in, e.g. `["EU", "EEA"]`, `["US"]`, `["US-GOV"]`.
    pub jurisdictions: Vec<String>,
    pub lat: f64,
    pub lng: f64,
    /// Availability zones in the region (0 when the provider has none there).
    pub zones: u32,
    /// A government / sovereign partition region (AWS GovCloud, Azure US Gov, ...).
    pub government: bool,
    pub compliance: Vec<Compliance>,
    /// Block storage (general purpose SSD) price, USD per GB-month, when the source has it.
    pub storage_gb_month_usd: Option<f64>,
    /// Internet egress price, USD per GB (first paid tier), when the source has it.
    pub egress_gb_usd: Option<f64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Arm64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    pub cloud: Cloud,
    /// The provider's own name: `m5.large`, `Standard_D2s_v5`, `n2-standard-2`.
    pub name: String,
    pub family: String,
    pub vcpu: u32,
    pub memory_gib: f64,
    pub gpu_count: u32,
    pub gpu_model: Option<String>,
    pub gpu_memory_gib: Option<f64>,
    /// Local instance storage, GB, when the type has any.
    pub local_storage_gb: Option<f64>,
    pub arch: Arch,
    /// Generation number parsed from the name where the provider encodes one (m5 -> 5,
    /// D2s_v5 -> 5, n2 -> 2); used by the performance score.
    pub generation: Option<u32>,
}

/// A real on-demand Linux price of one type in one region. Absent prices are absent offers:
/// the catalog never stores a zero as a price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub region: RegionId,
    pub instance_type: TypeId,
    pub on_demand_hourly_usd: f64,
    /// Spot / preemptible hourly price when the source has a real figure.
    pub spot_hourly_usd: Option<f64>,
}

/// Where a data file came from, kept beside the data and printed by `catalog sources`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// What the source provides, e.g. "AWS on-demand Linux prices".
    pub provides: String,
    /// Registry and package, e.g. "PyPI apache-libcloud".
    pub package: String,
    pub version: String,
    /// Path of the file inside the package.
    pub path: String,
    pub licence: String,
    /// Date of the data as the source states it (or the date it was fetched).
    pub date: String,
}

/// Round-trip latency from distance: `rtt_ms = 2 * km / fibre_km_per_ms * route_factor + base_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyModel {
    pub fibre_km_per_ms: f64,
    pub route_factor: f64,
    pub base_ms: f64,
    /// How the factor was obtained (which table, how many pairs, the fit's error).
    pub calibration: String,
}

/// The whole snapshot. Offers are sorted by (region, instance_type) so lookups can binary-search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The date of the newest source the snapshot was built from (YYYY-MM-DD).
    pub snapshot_date: String,
    pub regions: Vec<Region>,
    pub instance_types: Vec<InstanceType>,
    /// Borrowed from the binary for the embedded snapshot (see `load.rs`), owned otherwise.
    pub offers: Cow<'static, [Offer]>,
    pub latency: LatencyModel,
    pub sources: Vec<Source>,
}

impl Catalog {
    pub fn region(&self, id: RegionId) -> &Region {
        &self.regions[id.0 as usize]
    }

    pub fn instance_type(&self, id: TypeId) -> &InstanceType {
        &self.instance_types[id.0 as usize]
    }
}
