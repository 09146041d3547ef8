//! Distance-based round-trip latency between two points on Earth.
//!
//! Why: placement needs an RTT estimate between users and regions of any cloud, and the only
//! measured table we can ship (Azure inter-region RTT) covers one cloud. The model
//! `rtt_ms = 2 * km / fibre_km_per_ms * route_factor + base_ms` is calibrated against that table
//! by the generator (`scripts/catalog/build_catalog.py`), which records the fit in
//! `LatencyModel::calibration`. Everything here is a pure function.

use crate::model::{Catalog, LatencyModel, RegionId};

/// Mean Earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance in km between two (latitude, longitude) points in degrees
/// (haversine formula).
pub fn great_circle_km(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

impl LatencyModel {
    /// Round-trip time in ms for a great-circle distance of `km`.
    pub fn rtt_ms_for_km(&self, km: f64) -> f64 {
        2.0 * km / self.fibre_km_per_ms * self.route_factor + self.base_ms
    }

    /// Round-trip time in ms between two (latitude, longitude) points in degrees.
    pub fn rtt_ms(&self, lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
        self.rtt_ms_for_km(great_circle_km(lat1, lng1, lat2, lng2))
    }
}

impl Catalog {
    /// Modelled round-trip time in ms between two regions (any clouds). A region to itself is
    /// `base_ms`: the model has no intra-region figure.
    pub fn rtt_between(&self, a: RegionId, b: RegionId) -> f64 {
        let (ra, rb) = (self.region(a), self.region(b));
        self.latency.rtt_ms(ra.lat, ra.lng, rb.lat, rb.lng)
    }

    /// Modelled round-trip time in ms from a point (e.g. a user location) to a region.
    pub fn rtt_to_region(&self, lat: f64, lng: f64, region: RegionId) -> f64 {
        let r = self.region(region);
        self.latency.rtt_ms(lat, lng, r.lat, r.lng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_distance_and_known_distance() {
        assert!(great_circle_km(10.0, 20.0, 10.0, 20.0).abs() < 1e-9);
        // London -> Paris is about 344 km.
        let d = great_circle_km(51.5074, -0.1278, 48.8566, 2.3522);
        assert!((d - 344.0).abs() < 5.0, "{d}");
        // Antipodes: half the circumference.
        let d = great_circle_km(0.0, 0.0, 0.0, 180.0);
        assert!((d - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
    }

    #[test]
    fn rtt_formula() {
        let m = LatencyModel {
            fibre_km_per_ms: 200.0,
            route_factor: 1.5,
            base_ms: 2.0,
            calibration: String::new(),
        };
        assert!((m.rtt_ms_for_km(1000.0) - (2.0 * 1000.0 / 200.0 * 1.5 + 2.0)).abs() < 1e-12);
    }
}
