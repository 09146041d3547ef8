//! Lookups and invariant checks on a `Catalog`.
//!
//! Why: the placement engine asks the same few questions many times per plan (which region is
//! this code, what does this region offer, what is this type). The snapshot is sorted so that
//! these are binary searches or contiguous slices, with no index to build at load time;
//! `validate` proves the sort orders and references the lookups rely on.

use crate::error::CatalogError;
use crate::model::{Catalog, Cloud, InstanceType, Offer, Region, RegionId, TypeId};

impl Catalog {
    /// Every GPU model the catalog names, lower-case, sorted, without duplicates.
    pub fn gpu_models(&self) -> Vec<String> {
        let mut models: Vec<String> = self
            .instance_types
            .iter()
            .filter_map(|t| t.gpu_model.as_deref())
            .map(str::to_ascii_lowercase)
            .collect();
        models.sort();
        models.dedup();
        models
    }

    /// Whether `wanted` matches some GPU model of the catalog the way placement matches it
    /// (case-insensitive substring: "a100" matches "nvidia a100 80gb").
    pub fn knows_gpu_model(&self, wanted: &str) -> bool {
        let wanted = wanted.trim().to_ascii_lowercase();
        self.instance_types.iter().any(|t| {
            t.gpu_model
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains(&wanted))
        })
    }

    /// Finds a region by its provider code, for any cloud: `eu-west-1`, `westeurope`,
    /// `europe-west1`. Case-insensitive; a `cloud:` or `cloud/` prefix (`aws:eu-west-1`)
    /// restricts the search to that cloud. Codes are unique across clouds in the snapshot
    /// (`validate` checks it), so an unprefixed code never matches two regions.
    pub fn find_region(&self, code: &str) -> Option<RegionId> {
        let code = code.trim();
        if let Some((prefix, rest)) = code.split_once([':', '/']) {
            let cloud = Cloud::ALL
                .into_iter()
                .find(|c| c.as_str().eq_ignore_ascii_case(prefix.trim()))?;
            return self.find_region_in(cloud, rest.trim());
        }
        self.regions
            .iter()
            .position(|r| r.code.eq_ignore_ascii_case(code))
            .map(|i| RegionId(i as u32))
    }

    /// Finds a region of one cloud by its code (case-insensitive).
    pub fn find_region_in(&self, cloud: Cloud, code: &str) -> Option<RegionId> {
        self.regions
            .iter()
            .position(|r| r.cloud == cloud && r.code.eq_ignore_ascii_case(code))
            .map(|i| RegionId(i as u32))
    }

    /// All region ids, in catalog order.
    pub fn region_ids(&self) -> impl Iterator<Item = RegionId> + '_ {
        (0..self.regions.len()).map(|i| RegionId(i as u32))
    }

    /// The regions of one cloud, sorted by code.
    pub fn regions_of(&self, cloud: Cloud) -> impl Iterator<Item = (RegionId, &Region)> + '_ {
        self.regions
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.cloud == cloud)
            .map(|(i, r)| (RegionId(i as u32), r))
    }

    /// The instance types of one cloud, sorted by name.
    pub fn instance_types_of(
        &self,
        cloud: Cloud,
    ) -> impl Iterator<Item = (TypeId, &InstanceType)> + '_ {
        self.instance_types
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.cloud == cloud)
            .map(|(i, t)| (TypeId(i as u32), t))
    }

    /// Every priced offer in a region, sorted by instance type. Empty for a region without
    /// prices in the sources (e.g. China-partition regions).
    pub fn offers_in_region(&self, region: RegionId) -> &[Offer] {
        let start = self.offers.partition_point(|o| o.region < region);
        let end = self.offers.partition_point(|o| o.region <= region);
        &self.offers[start..end]
    }

    /// The offer of one type in one region, if the sources price it there.
    pub fn offer(&self, region: RegionId, instance_type: TypeId) -> Option<&Offer> {
        self.offers
            .binary_search_by(|o| (o.region, o.instance_type).cmp(&(region, instance_type)))
            .ok()
            .map(|i| &self.offers[i])
    }

    /// Finds an instance type by its provider name. Exact match first; then, for Azure, the
    /// name compared without case and `_` (`standard_d2s_v3` finds `Standard_D2s_v3`).
    pub fn find_instance_type(&self, cloud: Cloud, name: &str) -> Option<TypeId> {
        let name = name.trim();
        if let Ok(i) = self
            .instance_types
            .binary_search_by(|t| (t.cloud, t.name.as_str()).cmp(&(cloud, name)))
        {
            return Some(TypeId(i as u32));
        }
        let norm = |s: &str| -> String {
            s.chars()
                .filter(|c| *c != '_' && *c != '-' && *c != '.')
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let want = norm(name);
        self.instance_types
            .iter()
            .position(|t| t.cloud == cloud && norm(&t.name) == want)
            .map(|i| TypeId(i as u32))
    }

    /// Checks the invariants the lookups and the placement engine rely on: every price finite
    /// and positive, every id in range and of the same cloud, offers sorted by (region, type)
    /// without duplicates, types sorted by (cloud, name), region codes unique across clouds,
    /// every region with valid coordinates, latency model parameters finite and positive.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let mut errs = Vec::new();
        let pos = |x: f64| x.is_finite() && x > 0.0;
        let mut codes = std::collections::BTreeMap::new();
        for (i, r) in self.regions.iter().enumerate() {
            if let Some(prev) = codes.insert(r.code.to_ascii_lowercase(), r.cloud) {
                errs.push(format!(
                    "region code {} is used by {} and {}",
                    r.code, prev, r.cloud
                ));
            }
            if !(r.lat.is_finite() && r.lng.is_finite())
                || r.lat.abs() > 90.0
                || r.lng.abs() > 180.0
                || (r.lat == 0.0 && r.lng == 0.0)
            {
                errs.push(format!("region {} has no valid coordinates", r.code));
            }
            if r.country.len() != 2 {
                errs.push(format!("region {} has country {:?}", r.code, r.country));
            }
            for (what, v) in [
                ("storage", r.storage_gb_month_usd),
                ("egress", r.egress_gb_usd),
            ] {
                if v.is_some_and(|v| !pos(v)) {
                    errs.push(format!("region {} has a non-positive {what} price", r.code));
                }
            }
            if i > 0 {
                let p = &self.regions[i - 1];
                if (p.cloud, &p.code) >= (r.cloud, &r.code) {
                    errs.push(format!("regions not sorted at {}", r.code));
                }
            }
        }
        for (i, t) in self.instance_types.iter().enumerate() {
            if t.vcpu == 0 || !pos(t.memory_gib) {
                errs.push(format!("type {} has no vCPU or memory", t.name));
            }
            if t.gpu_count == 0 && (t.gpu_memory_gib.is_some() || t.gpu_model.is_some()) {
                errs.push(format!(
                    "type {} has a GPU model or memory without GPUs",
                    t.name
                ));
            }
            if i > 0 {
                let p = &self.instance_types[i - 1];
                if (p.cloud, &p.name) >= (t.cloud, &t.name) {
                    errs.push(format!("instance types not sorted at {}", t.name));
                }
            }
        }
        let (nr, nt) = (self.regions.len(), self.instance_types.len());
        for (i, o) in self.offers.iter().enumerate() {
            let (r, t) = (o.region.0 as usize, o.instance_type.0 as usize);
            if r >= nr || t >= nt {
                errs.push(format!("offer {i} points outside the catalog"));
                continue;
            }
            if self.regions[r].cloud != self.instance_types[t].cloud {
                errs.push(format!("offer {i} mixes clouds"));
            }
            if !pos(o.on_demand_hourly_usd) || o.spot_hourly_usd.is_some_and(|s| !pos(s)) {
                errs.push(format!(
                    "offer {} in {} has a zero, negative or NaN price",
                    self.instance_types[t].name, self.regions[r].code
                ));
            }
            if i > 0 {
                let p = &self.offers[i - 1];
                if (p.region, p.instance_type) >= (o.region, o.instance_type) {
                    errs.push(format!("offers not sorted (or duplicated) at index {i}"));
                }
            }
        }
        let l = &self.latency;
        if !(pos(l.fibre_km_per_ms)
            && pos(l.route_factor)
            && l.base_ms.is_finite()
            && l.base_ms >= 0.0)
        {
            errs.push("latency model parameters are not finite and positive".to_string());
        }
        if self.sources.is_empty() {
            errs.push("no sources recorded".to_string());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::Invalid(errs))
        }
    }
}
