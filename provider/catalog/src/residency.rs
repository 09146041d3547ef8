//! Data residency: does a region satisfy a user's `data_residency_regions` entry?
//!
//! Why: users write residency either as exact regions of any provider (`eu-west-1`,
//! `westeurope`) or as a place (`EU`, `EEA`, `US`, `DE`, `US-GOV`). The rule, also in the
//! crate's README: an entry matches a region when it is that region's code (case-insensitive,
//! optionally `cloud:`-prefixed), or one of the region's `jurisdictions` (which hold its ISO
//! country code plus `EU`/`EEA` for EU and EEA members and `US-GOV` for US government
//! partitions), or its country code. `EU` therefore means the 27 EU member states and `EEA`
//! adds Iceland, Liechtenstein and Norway; `US` includes the US government regions.

use crate::error::CatalogError;
use crate::model::{Catalog, Region, RegionId};

/// A parsed residency entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResidencyEntry {
    /// Exactly this region.
    Region(RegionId),
    /// A jurisdiction or ISO 3166-1 alpha-2 country code, upper-cased (`EU`, `EEA`, `DE`).
    Jurisdiction(String),
}

impl ResidencyEntry {
    /// Whether the region `id` (described by `region`) satisfies this entry.
    pub fn matches(&self, id: RegionId, region: &Region) -> bool {
        match self {
            ResidencyEntry::Region(r) => *r == id,
            ResidencyEntry::Jurisdiction(j) => {
                region.country.eq_ignore_ascii_case(j)
                    || region
                        .jurisdictions
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(j))
            }
        }
    }
}

impl Catalog {
    /// Reads one residency entry: a region code of any cloud wins over a jurisdiction token;
    /// otherwise a token that is a jurisdiction used in the catalog, or any two-letter country
    /// code (which may match no region: then nothing satisfies it).
    pub fn parse_residency(&self, entry: &str) -> Result<ResidencyEntry, CatalogError> {
        let e = entry.trim();
        if let Some(id) = self.find_region(e) {
            return Ok(ResidencyEntry::Region(id));
        }
        let up = e.to_ascii_uppercase();
        let known = self.regions.iter().any(|r| r.jurisdictions.contains(&up));
        let country_like = up.len() == 2 && up.bytes().all(|b| b.is_ascii_uppercase());
        if known || country_like {
            Ok(ResidencyEntry::Jurisdiction(up))
        } else {
            Err(CatalogError::UnknownResidency(entry.to_string()))
        }
    }

    /// Whether `region` satisfies the single residency `entry`. An entry that is neither a
    /// region nor a jurisdiction matches nothing.
    pub fn region_matches_residency(&self, region: RegionId, entry: &str) -> bool {
        self.parse_residency(entry)
            .map(|p| p.matches(region, self.region(region)))
            .unwrap_or(false)
    }

    /// Whether `region` satisfies a residency list: true when the list is empty (no
    /// constraint) or any entry matches.
    pub fn region_satisfies_residency<S: AsRef<str>>(
        &self,
        region: RegionId,
        entries: &[S],
    ) -> bool {
        entries.is_empty()
            || entries
                .iter()
                .any(|e| self.region_matches_residency(region, e.as_ref()))
    }
}
