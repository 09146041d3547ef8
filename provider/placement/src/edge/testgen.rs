//! Deterministic synthetic edge fleets and batches for tests and benchmarks (hidden from docs).

use super::batch::BatchWorkload;
use super::model::{
    Capability, DistributionStrategy, EdgeNode, EdgeRequest, EdgeResources, NodeType,
};
use crate::requirements::UserLocation;

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// 40 metro areas (lat, lng).
pub const METROS: [(f64, f64); 40] = [
    (40.7, -74.0),
    (34.1, -118.2),
    (41.9, -87.6),
    (29.8, -95.4),
    (47.6, -122.3),
    (37.8, -122.4),
    (25.8, -80.2),
    (43.7, -79.4),
    (19.4, -99.1),
    (-23.5, -46.6),
    (-34.6, -58.4),
    (51.5, -0.1),
    (48.9, 2.4),
    (52.5, 13.4),
    (50.1, 8.7),
    (48.1, 11.6),
    (52.4, 4.9),
    (59.3, 18.1),
    (40.4, -3.7),
    (45.5, 9.2),
    (41.0, 29.0),
    (55.8, 37.6),
    (30.0, 31.2),
    (-26.2, 28.0),
    (6.5, 3.4),
    (25.2, 55.3),
    (19.1, 72.9),
    (28.6, 77.2),
    (13.1, 80.3),
    (1.35, 103.8),
    (13.8, 100.5),
    (22.3, 114.2),
    (31.2, 121.5),
    (39.9, 116.4),
    (37.6, 127.0),
    (35.7, 139.7),
    (34.7, 135.5),
    (-33.9, 151.2),
    (-37.8, 145.0),
    (-36.8, 174.8),
];

/// Metro index with a skewed (Zipf-like) popularity, so some metros are contended.
pub fn skewed_metro(rng: &mut Rng) -> usize {
    let u = rng.unit();
    ((u * u) * METROS.len() as f64) as usize % METROS.len()
}

/// `n` nodes spread over the metros (uniformly), 8/16/32 vCPU, 4 GB per vCPU, 0-50 % already
/// reserved, random type and capabilities.
pub fn fleet(n: usize, seed: u64) -> Vec<EdgeNode> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let m = i % METROS.len();
            let (lat, lng) = METROS[m];
            let cpu = [8.0, 16.0, 32.0][rng.below(3)];
            let limits = EdgeResources::new(cpu, cpu * 4.0, 1000.0, 10_000.0);
            let used = [0.0, 0.25, 0.5][rng.below(3)];
            let reserved = EdgeResources::new(cpu * used, cpu * 4.0 * used, 100.0, 1000.0);
            let node_type = NodeType::ALL[rng.below(4)];
            let mut caps = vec![Capability::BatchProcessing];
            for c in Capability::ALL {
                if rng.unit() < 0.4 {
                    caps.push(c);
                }
            }
            EdgeNode::new(
                &format!("node-{i:05}"),
                node_type,
                lat + (rng.unit() - 0.5) * 0.5,
                lng + (rng.unit() - 0.5) * 0.5,
                limits,
            )
            .with_ledger(limits, reserved)
            .with_capabilities(&caps)
            .with_region(&format!("cluster-{m}"), &format!("metro-{m}"))
            .with_labels(&[("tier", ["a", "b"][rng.below(2)])])
        })
        .collect()
}

/// `workloads` workloads of `replicas` replicas each: 0.5 or 1 vCPU, 2 or 4 GB per vCPU,
/// users in 1–3 skewed metros; one in ten requires `ml_inference`.
pub fn batch(workloads: usize, replicas: u32, seed: u64) -> Vec<BatchWorkload> {
    batch_with(workloads, replicas, seed, None)
}

/// Like [`batch`] (same users, cpu and constraints), but memory and cpu both bind: even
/// workloads ask 7 GB per vCPU, odd ones 1 GB (the fleet has 4 GB per vCPU), so a node
/// is only filled on both resources by mixing the two kinds.
pub fn batch_two_binding(workloads: usize, replicas: u32, seed: u64) -> Vec<BatchWorkload> {
    batch_with(workloads, replicas, seed, Some([7.0, 1.0]))
}

fn batch_with(
    workloads: usize,
    replicas: u32,
    seed: u64,
    gb_per_vcpu: Option<[f64; 2]>,
) -> Vec<BatchWorkload> {
    let mut rng = Rng(seed);
    (0..workloads)
        .map(|i| {
            let cpu = [0.5, 1.0, 1.0][rng.below(3)];
            let ratio = [2.0, 4.0][rng.below(2)];
            let mem = cpu * gb_per_vcpu.map_or(ratio, |r| r[i % 2]);
            let users: Vec<UserLocation> = (0..1 + rng.below(3))
                .map(|_| {
                    let (lat, lng) = METROS[skewed_metro(&mut rng)];
                    UserLocation {
                        lat,
                        lng,
                        weight: 1.0 + rng.below(4) as f64,
                    }
                })
                .collect();
            let mut request = EdgeRequest::new(cpu, mem, replicas)
                .with_users(&users)
                .with_storage_network(10.0, 50.0)
                .with_strategy(DistributionStrategy::LatencyAware);
            if i % 10 == 0 {
                request = request.with_required(&[Capability::MlInference]);
            }
            BatchWorkload {
                id: format!("wl-{i:05}"),
                request,
            }
        })
        .collect()
}
