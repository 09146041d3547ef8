//! Synthetic catalogs for tests and benchmarks (hidden from docs). The real catalog is being
//! filled in by another crate; the engine's tests must not depend on its data, so they build
//! small hand-written catalogs and large deterministic pseudo-random ones here.

use catalog::{
    Arch, Catalog, Cloud, Compliance, InstanceType, LatencyModel, Offer, Region, RegionId, TypeId,
};

/// `rtt = 2·km/200·1.5 + 2`.
pub fn latency_model() -> LatencyModel {
    LatencyModel {
        fibre_km_per_ms: 200.0,
        route_factor: 1.5,
        base_ms: 2.0,
        calibration: "synthetic".to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn region(
    cloud: Cloud,
    code: &str,
    country: &str,
    jurisdictions: &[&str],
    lat: f64,
    lng: f64,
    zones: u32,
    compliance: &[Compliance],
) -> Region {
    Region {
        cloud,
        code: code.to_string(),
        display_name: code.to_string(),
        country: country.to_string(),
        jurisdictions: jurisdictions.iter().map(|s| s.to_string()).collect(),
        lat,
        lng,
        zones,
        government: false,
        compliance: compliance.to_vec(),
        storage_gb_month_usd: Some(0.08),
        egress_gb_usd: Some(0.09),
    }
}

pub fn itype(
    cloud: Cloud,
    name: &str,
    vcpu: u32,
    mem: f64,
    gpus: u32,
    gpu_model: Option<&str>,
    gen: Option<u32>,
) -> InstanceType {
    InstanceType {
        cloud,
        name: name.to_string(),
        family: name
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect(),
        vcpu,
        memory_gib: mem,
        gpu_count: gpus,
        gpu_model: gpu_model.map(str::to_string),
        gpu_memory_gib: None,
        local_storage_gb: None,
        arch: Arch::X86_64,
        generation: gen,
    }
}

/// Builds a catalog by names; `build` sorts offers by (region, type) as the catalog promises.
#[derive(Default)]
pub struct CatalogBuilder {
    pub regions: Vec<Region>,
    pub types: Vec<InstanceType>,
    pub offers: Vec<Offer>,
}

impl CatalogBuilder {
    pub fn region(mut self, r: Region) -> Self {
        self.regions.push(r);
        self
    }
    pub fn itype(mut self, t: InstanceType) -> Self {
        self.types.push(t);
        self
    }
    /// Adds an offer; unknown names are ignored (test helper, never panics).
    pub fn offer(
        mut self,
        cloud: Cloud,
        region: &str,
        ty: &str,
        price: f64,
        spot: Option<f64>,
    ) -> Self {
        let r = self
            .regions
            .iter()
            .position(|x| x.cloud == cloud && x.code == region);
        let t = self
            .types
            .iter()
            .position(|x| x.cloud == cloud && x.name == ty);
        if let (Some(r), Some(t)) = (r, t) {
            self.offers.push(Offer {
                region: RegionId(r as u32),
                instance_type: TypeId(t as u32),
                on_demand_hourly_usd: price,
                spot_hourly_usd: spot,
            });
        }
        self
    }
    pub fn build(mut self) -> Catalog {
        self.offers.sort_by_key(|o| (o.region, o.instance_type));
        Catalog {
            snapshot_date: "2026-01-01".to_string(),
            regions: self.regions,
            instance_types: self.types,
            offers: self.offers.into(),
            latency: latency_model(),
            sources: Vec::new(),
        }
    }
}

/// A small hand-written catalog resembling real data (prices are illustrative).
pub fn small_catalog() -> Catalog {
    use Cloud::*;
    use Compliance::*;
    let b = CatalogBuilder::default()
        .region(region(
            Aws,
            "us-east-1",
            "US",
            &["US"],
            38.9,
            -77.4,
            6,
            &[Soc2, Iso27001, Hipaa, PciDss, Fedramp],
        ))
        .region(region(
            Aws,
            "eu-west-1",
            "IE",
            &["EU", "EEA"],
            53.3,
            -6.3,
            3,
            &[Gdpr, Soc2, Iso27001, Hipaa, PciDss],
        ))
        .region(region(
            Aws,
            "ap-southeast-1",
            "SG",
            &["APAC"],
            1.35,
            103.8,
            3,
            &[Soc2, Iso27001, PciDss],
        ))
        .region(region(
            Azure,
            "westeurope",
            "NL",
            &["EU", "EEA"],
            52.4,
            4.9,
            3,
            &[Gdpr, Soc2, Iso27001, Hipaa],
        ))
        .region(region(
            Azure,
            "eastus",
            "US",
            &["US"],
            37.4,
            -79.2,
            3,
            &[Soc2, Iso27001, Hipaa, Fedramp],
        ))
        .region(region(
            Gcp,
            "europe-west3",
            "DE",
            &["EU", "EEA"],
            50.1,
            8.7,
            3,
            &[Gdpr, Soc2, Iso27001],
        ))
        .region(region(
            Gcp,
            "us-central1",
            "US",
            &["US"],
            41.3,
            -95.9,
            4,
            &[Soc2, Iso27001, Hipaa],
        ))
        .region(region(Gcp, "me-west1", "IL", &[], 32.1, 34.8, 1, &[Soc2]))
        .itype(itype(Aws, "m5.large", 2, 8.0, 0, None, Some(5)))
        .itype(itype(Aws, "m7i.xlarge", 4, 16.0, 0, None, Some(7)))
        .itype(itype(Aws, "c5.2xlarge", 8, 16.0, 0, None, Some(5)))
        .itype(itype(
            Aws,
            "g4dn.xlarge",
            4,
            16.0,
            1,
            Some("NVIDIA T4"),
            Some(4),
        ))
        .itype(itype(
            Aws,
            "p4d.24xlarge",
            96,
            1152.0,
            8,
            Some("NVIDIA A100"),
            Some(4),
        ))
        .itype(itype(Azure, "Standard_D2s_v5", 2, 8.0, 0, None, Some(5)))
        .itype(itype(Azure, "Standard_D4s_v5", 4, 16.0, 0, None, Some(5)))
        .itype(itype(
            Azure,
            "Standard_NC4as_T4_v3",
            4,
            28.0,
            1,
            Some("NVIDIA T4"),
            Some(3),
        ))
        .itype(itype(Gcp, "e2-standard-2", 2, 8.0, 0, None, None))
        .itype(itype(Gcp, "n2-standard-4", 4, 16.0, 0, None, Some(2)))
        .itype(itype(
            Gcp,
            "g2-standard-4",
            4,
            16.0,
            1,
            Some("NVIDIA L4"),
            Some(2),
        ));
    let b = b
        .offer(Aws, "us-east-1", "m5.large", 0.096, Some(0.035))
        .offer(Aws, "us-east-1", "m7i.xlarge", 0.2016, Some(0.08))
        .offer(Aws, "us-east-1", "c5.2xlarge", 0.34, None)
        .offer(Aws, "us-east-1", "g4dn.xlarge", 0.526, Some(0.21))
        .offer(Aws, "us-east-1", "p4d.24xlarge", 32.77, None)
        .offer(Aws, "eu-west-1", "m5.large", 0.107, Some(0.04))
        .offer(Aws, "eu-west-1", "m7i.xlarge", 0.2248, None)
        .offer(Aws, "eu-west-1", "g4dn.xlarge", 0.587, Some(0.25))
        .offer(Aws, "ap-southeast-1", "m5.large", 0.12, None)
        .offer(Aws, "ap-southeast-1", "g4dn.xlarge", 0.736, None)
        .offer(Azure, "westeurope", "Standard_D2s_v5", 0.115, Some(0.023))
        .offer(Azure, "westeurope", "Standard_D4s_v5", 0.23, None)
        .offer(Azure, "westeurope", "Standard_NC4as_T4_v3", 0.6, None)
        .offer(Azure, "eastus", "Standard_D2s_v5", 0.096, Some(0.019))
        .offer(Azure, "eastus", "Standard_D4s_v5", 0.192, None)
        .offer(Gcp, "europe-west3", "e2-standard-2", 0.087, Some(0.026))
        .offer(Gcp, "europe-west3", "n2-standard-4", 0.25, None)
        .offer(Gcp, "us-central1", "e2-standard-2", 0.067, Some(0.02))
        .offer(Gcp, "us-central1", "n2-standard-4", 0.194, None)
        .offer(Gcp, "us-central1", "g2-standard-4", 0.707, Some(0.28))
        .offer(Gcp, "me-west1", "e2-standard-2", 0.074, None);
    b.build()
}

/// SplitMix64: a tiny deterministic generator so tests and benches need no RNG crate.
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
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// A large pseudo-random catalog: `n_regions` regions, `n_types` types, every type offered in
/// every region of its cloud with probability `density`.
pub fn synthetic_catalog(n_regions: usize, n_types: usize, density: f64, seed: u64) -> Catalog {
    let mut rng = Rng(seed);
    let clouds = Cloud::ALL;
    let jur = [
        ("US", "US"),
        ("DE", "EU"),
        ("IE", "EU"),
        ("JP", "APAC"),
        ("BR", "LATAM"),
        ("GB", "UK"),
    ];
    let gpus = [
        "NVIDIA T4",
        "NVIDIA A10G",
        "NVIDIA L4",
        "NVIDIA A100",
        "NVIDIA H100",
    ];
    let mut b = CatalogBuilder::default();
    for i in 0..n_regions {
        let cloud = clouds[i % 3];
        let (country, j) = jur[rng.below(jur.len() as u64) as usize];
        let mut comp = vec![Compliance::Soc2, Compliance::Iso27001];
        if j == "EU" {
            comp.push(Compliance::Gdpr);
        }
        if rng.unit() < 0.5 {
            comp.push(Compliance::Hipaa);
        }
        if rng.unit() < 0.3 {
            comp.push(Compliance::PciDss);
        }
        let mut r = region(
            cloud,
            &format!("{}-region-{i}", cloud.as_str()),
            country,
            &[j],
            rng.unit() * 120.0 - 60.0,
            rng.unit() * 360.0 - 180.0,
            rng.below(5) as u32,
            &comp,
        );
        if rng.unit() < 0.1 {
            r.storage_gb_month_usd = None;
        }
        b.regions.push(r);
    }
    for i in 0..n_types {
        let cloud = clouds[i % 3];
        let vcpu = 1u32 << rng.below(8);
        let mem = f64::from(vcpu) * [1.0, 2.0, 4.0, 8.0][rng.below(4) as usize];
        let (g, gm) = if rng.unit() < 0.1 {
            (
                1u32 << rng.below(4),
                Some(gpus[rng.below(gpus.len() as u64) as usize]),
            )
        } else {
            (0, None)
        };
        let gen = (rng.unit() < 0.9).then(|| 1 + rng.below(7) as u32);
        b.types.push(itype(
            cloud,
            &format!("{}-type-{i}", cloud.as_str()),
            vcpu,
            mem,
            g,
            gm,
            gen,
        ));
    }
    for (ri, r) in b.regions.iter().enumerate() {
        let factor = 0.9 + rng.unit() * 0.4;
        for (ti, t) in b.types.iter().enumerate() {
            if t.cloud != r.cloud || rng.unit() >= density {
                continue;
            }
            let base =
                0.012 * f64::from(t.vcpu) + 0.004 * t.memory_gib + 0.5 * f64::from(t.gpu_count);
            let price = (base * factor * 1000.0).round() / 1000.0 + 0.001;
            let spot = (rng.unit() < 0.6).then(|| (price * 0.35 * 1000.0).round() / 1000.0 + 0.001);
            b.offers.push(Offer {
                region: RegionId(ri as u32),
                instance_type: TypeId(ti as u32),
                on_demand_hourly_usd: price,
                spot_hourly_usd: spot,
            });
        }
    }
    b.build()
}

/// The same catalog with regions, types and offers permuted (ids remapped, offers re-sorted).
pub fn shuffled(c: &Catalog, seed: u64) -> Catalog {
    let mut rng = Rng(seed);
    let perm = |n: usize, rng: &mut Rng| -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, rng.below(i as u64 + 1) as usize);
        }
        p
    };
    let rp = perm(c.regions.len(), &mut rng); // new index -> old index
    let tp = perm(c.instance_types.len(), &mut rng);
    let mut r_new = vec![0u32; rp.len()];
    for (new, old) in rp.iter().enumerate() {
        r_new[*old] = new as u32;
    }
    let mut t_new = vec![0u32; tp.len()];
    for (new, old) in tp.iter().enumerate() {
        t_new[*old] = new as u32;
    }
    let mut offers: Vec<Offer> = c
        .offers
        .iter()
        .map(|o| Offer {
            region: RegionId(r_new[o.region.0 as usize]),
            instance_type: TypeId(t_new[o.instance_type.0 as usize]),
            ..o.clone()
        })
        .collect();
    offers.sort_by_key(|o| (o.region, o.instance_type));
    Catalog {
        snapshot_date: c.snapshot_date.clone(),
        regions: rp.iter().map(|i| c.regions[*i].clone()).collect(),
        instance_types: tp.iter().map(|i| c.instance_types[*i].clone()).collect(),
        offers: offers.into(),
        latency: c.latency.clone(),
        sources: c.sources.clone(),
    }
}
