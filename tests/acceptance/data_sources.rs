//! The data sources end to end with the real Terraform: values checked against the embedded
//! catalog (and against `hybrid_workload` for the same requirements), and bad input reported on
//! the attribute path.

use serde_json::Value as Json;

use crate::harness::Workspace;

fn strs(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn regions_filter_by_compliance_provider_residency_and_gpu() {
    let ws = Workspace::new("ds-regions");
    ws.config(
        r#"
provider "hybrid" {}

data "hybrid_regions" "gdpr" {
  compliance = ["gdpr"]
}

data "hybrid_regions" "gcp_germany" {
  providers              = ["gcp"]
  data_residency_regions = ["DE"]
}

data "hybrid_regions" "a100" {
  gpu_model = "a100"
}

output "gdpr_codes" {
  value = data.hybrid_regions.gdpr.codes
}
"#,
    );
    ws.apply();
    let catalog = catalog::embedded();

    // gdpr: exactly the catalog regions in an EU/EEA country.
    let gdpr = ws.resource("data.hybrid_regions.gdpr");
    let regions = gdpr["regions"].as_array().expect("regions").clone();
    let expected: Vec<&str> = catalog
        .regions
        .iter()
        .filter(|r| r.jurisdictions.iter().any(|j| j == "EEA"))
        .map(|r| r.code.as_str())
        .collect();
    assert_eq!(strs(&gdpr["codes"]), expected, "{gdpr:#}");
    assert!(regions.len() > 10);
    for r in &regions {
        assert!(
            strs(&r["jurisdictions"]).iter().any(|j| j == "EEA"),
            "{r:#}"
        );
        assert!(strs(&r["compliance"]).iter().any(|c| c == "gdpr"), "{r:#}");
        let code = r["code"].as_str().unwrap_or_default();
        let id = catalog.find_region(code).expect("region in catalog");
        let c = catalog.region(id);
        assert_eq!(r["provider"], c.cloud.as_str());
        assert_eq!(r["country"], c.country.as_str());
        assert_eq!(r["display_name"], c.display_name.as_str());
        assert_eq!(r["lat"].as_f64(), Some(c.lat));
        assert_eq!(r["lng"].as_f64(), Some(c.lng));
        assert_eq!(r["zones"].as_u64(), Some(u64::from(c.zones)));
    }

    // Provider and residency filters combine.
    let de = ws.resource("data.hybrid_regions.gcp_germany");
    let de_regions = de["regions"].as_array().expect("regions");
    assert!(!de_regions.is_empty(), "{de:#}");
    for r in de_regions {
        assert_eq!(r["provider"], "gcp");
        assert_eq!(r["country"], "DE");
    }

    // GPU model: every region lists it among its priced GPU models.
    let a100 = ws.resource("data.hybrid_regions.a100");
    let a100_regions = a100["regions"].as_array().expect("regions");
    assert!(!a100_regions.is_empty(), "{a100:#}");
    for r in a100_regions {
        assert!(
            strs(&r["gpu_models"])
                .iter()
                .any(|m| m.to_ascii_lowercase().contains("a100")),
            "{r:#}"
        );
    }
    ws.expect_empty_plan();
}

#[test]
fn regions_report_bad_input_on_the_element() {
    let ws = Workspace::new("ds-regions-bad");
    ws.config("data \"hybrid_regions\" \"x\" {\n  compliance = [\"gdpr\", \"sox\"]\n}\n");
    let out = ws.expect_error(
        &["plan", "-input=false"],
        &["Invalid compliance", "compliance[1]", "sox"],
    );
    // Terraform points at the attribute in the configuration.
    assert!(out.contains("compliance = [\"gdpr\", \"sox\"]"), "{out}");
    ws.config("data \"hybrid_regions\" \"x\" {\n  providers = [\"aws\", \"edge\"]\n}\n");
    ws.expect_error(
        &["plan", "-input=false"],
        &["Invalid providers", "providers[1]"],
    );
    ws.config(
        "data \"hybrid_regions\" \"x\" {\n  data_residency_regions = [\"mars-north-1\"]\n}\n",
    );
    ws.expect_error(
        &["plan", "-input=false"],
        &["data_residency_regions[0]", "mars-north-1"],
    );
}

const REQUIREMENTS: &str = r#"
  cpu                    = 2
  memory_gb              = 8
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 0.7 },
    { lat = 48.86, lng = 2.35 },
  ]
"#;

#[test]
fn placement_data_source_agrees_with_the_workload_resource() {
    let ws = Workspace::new("ds-placement");
    ws.config(&format!(
        "provider \"hybrid\" {{}}\n\ndata \"hybrid_placement\" \"p\" {{\n{REQUIREMENTS}  top_k = 4\n}}\n\nresource \"hybrid_workload\" \"w\" {{\n  name = \"ds-agree\"\n{REQUIREMENTS}}}\n"
    ));
    ws.apply();
    let p = ws.resource("data.hybrid_placement.p");
    let w = ws.resource("hybrid_workload.w");
    let chosen = &p["placement"];
    for field in [
        "provider",
        "region",
        "instance_type",
        "estimated_cost_hourly",
        "estimated_latency_ms",
        "score",
        "scores",
    ] {
        assert_eq!(
            chosen[field], w["placement"][field],
            "{field}: {p:#}\n{w:#}"
        );
    }
    assert_eq!(p["strategy"], "hybrid");
    let ranked = p["ranked"].as_array().expect("ranked");
    assert_eq!(ranked.len(), 4);
    assert_eq!(&ranked[0], chosen);
    for pair in ranked.windows(2) {
        assert!(
            pair[0]["score"].as_f64() >= pair[1]["score"].as_f64(),
            "{pair:#?}"
        );
    }
    for r in ranked {
        for dim in ["cost", "performance", "latency", "resilience"] {
            assert!(
                r["scores"][dim]
                    .as_f64()
                    .is_some_and(|s| (0.0..=100.0).contains(&s)),
                "{r:#}"
            );
        }
    }
    // Counts add up: considered = feasible + every rejection.
    let considered = p["considered"].as_u64().expect("considered");
    let feasible = p["feasible"].as_u64().expect("feasible");
    let rejected: u64 = p["rejections"]
        .as_object()
        .expect("rejections")
        .values()
        .filter_map(Json::as_u64)
        .sum();
    assert_eq!(considered, feasible + rejected, "{p:#}");
    assert!(
        p["rejections"]["compliance_gdpr"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{p:#}"
    );
    assert_eq!(considered as usize, catalog::embedded().offers.len());
    // The winner is in the EU and priced from the catalog.
    let region = chosen["region"].as_str().unwrap_or_default();
    let c = catalog::embedded();
    let r = c.region(c.find_region(region).expect("region"));
    assert!(r.jurisdictions.iter().any(|j| j == "EU"), "{region}");
    let monthly = p["estimated_cost_monthly"].as_f64().expect("monthly");
    let hourly = chosen["estimated_cost_hourly"].as_f64().expect("hourly");
    assert!(
        (monthly - hourly * 730.0).abs() < 0.01,
        "{monthly} vs {hourly}"
    );
    ws.expect_empty_plan();
    ws.destroy();
}

#[test]
fn placement_data_source_reports_bad_input_and_impossible_requirements() {
    let ws = Workspace::new("ds-placement-bad");
    let cases: &[(&str, &[&str])] = &[
        ("cpu = -1\n  memory_gb = 4", &["Invalid cpu", "greater than 0"]),
        ("cpu = 1\n  memory_gb = 4\n  compliance = [\"gdpr\", \"sox\"]", &["compliance[1]", "sox"]),
        ("cpu = 1\n  memory_gb = 4\n  strategy = \"fastest\"", &["Invalid strategy", "fastest"]),
        ("cpu = 1\n  memory_gb = 4\n  top_k = 0", &["Invalid top_k"]),
        ("cpu = 1\n  memory_gb = 4\n  user_locations = [{ lat = 0, lng = 0 }, { lat = 95, lng = 0 }]", &["user_locations[1].lat"]),
        ("cpu = 1\n  memory_gb = 4\n  preferred_providers = [\"sim\"]", &["Invalid preferred provider", "driver"]),
        ("cpu = 2\n  memory_gb = 8\n  gpu_count = 8\n  cost_budget_hourly = 0.01", &["No placement satisfies the requirements", "exceed the budget"]),
    ];
    for (body, patterns) in cases {
        ws.config(&format!(
            "data \"hybrid_placement\" \"p\" {{\n  {body}\n}}\n"
        ));
        ws.expect_error(&["plan", "-input=false"], patterns);
    }
}

#[test]
fn region_recommendation_ranks_by_weighted_latency_with_prices() {
    let ws = Workspace::new("ds-recommend");
    ws.config(
        r#"
data "hybrid_region_recommendation" "eu" {
  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 3, name = "berlin" },
    { lat = 40.71, lng = -74.01, name = "new-york" },
  ]
  compliance = ["gdpr"]
  cpu        = 2
  memory_gb  = 4
  top_k      = 3
}
"#,
    );
    ws.apply();
    let rec = ws.resource("data.hybrid_region_recommendation.eu");
    let list = rec["recommendations"].as_array().expect("recommendations");
    assert_eq!(list.len(), 3, "{rec:#}");
    assert!(rec["regions_considered"].as_u64().is_some_and(|n| n >= 3));
    let catalog = catalog::embedded();
    let mut last = 0.0;
    for (i, r) in list.iter().enumerate() {
        assert_eq!(r["rank"].as_u64(), Some(i as u64 + 1));
        let id = catalog
            .find_region(r["region"].as_str().unwrap_or_default())
            .expect("region");
        let region = catalog.region(id);
        assert!(region.compliance.contains(&catalog::Compliance::Gdpr));
        // Latency per group and the weighted mean, from the catalog's model.
        let berlin = catalog.rtt_to_region(52.52, 13.40, id);
        let ny = catalog.rtt_to_region(40.71, -74.01, id);
        let lat = r["latencies"].as_array().expect("latencies");
        assert_eq!(lat[0]["name"], "berlin");
        assert_eq!(lat[1]["name"], "new-york");
        assert!((lat[0]["latency_ms"].as_f64().unwrap_or_default() - berlin).abs() < 0.06);
        assert!((lat[1]["latency_ms"].as_f64().unwrap_or_default() - ny).abs() < 0.06);
        let weighted = r["weighted_latency_ms"].as_f64().expect("weighted");
        assert!((weighted - (3.0 * berlin + ny) / 4.0).abs() < 0.06, "{r:#}");
        assert!(weighted >= last);
        last = weighted;
        // The cheapest fitting type and its real price.
        let ty = r["instance_type"].as_str().expect("type");
        let t = catalog
            .find_instance_type(region.cloud, ty)
            .expect("type in catalog");
        let offer = catalog.offer(id, t).expect("offer");
        assert!(catalog.instance_type(t).vcpu >= 2 && catalog.instance_type(t).memory_gib >= 4.0);
        assert!(
            (r["hourly_price"].as_f64().unwrap_or_default() - offer.on_demand_hourly_usd).abs()
                < 1e-4
        );
    }
    // Berlin dominates: the best region is in Germany.
    assert_eq!(list[0]["country"], "DE", "{rec:#}");

    ws.config("data \"hybrid_region_recommendation\" \"x\" {\n  user_locations = [{ lat = 1, lng = 2 }]\n  cpu = 2\n}\n");
    ws.expect_error(&["plan", "-input=false"], &["Missing memory_gb"]);
    ws.config("data \"hybrid_region_recommendation\" \"x\" {\n  user_locations = [{ lat = 1, lng = 2, weight = -1 }]\n}\n");
    ws.expect_error(&["plan", "-input=false"], &["user_locations[0].weight"]);
}

const TWO_WORKLOADS: &str = r#"
provider "hybrid" {}

resource "hybrid_workload" "api" {
  name                   = "cost-api"
  cpu                    = 4
  memory_gb              = 16
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  strategy               = "performance_optimized"
}

resource "hybrid_workload" "batch" {
  name      = "cost-batch"
  cpu       = 2
  memory_gb = 4
  replicas  = 3
  strategy  = "cost_optimized"
}
"#;

#[test]
fn cost_report_prices_managed_workloads_from_the_catalog() {
    let ws = Workspace::new("ds-cost");
    ws.config(TWO_WORKLOADS);
    ws.apply();
    let api = ws.resource("hybrid_workload.api");
    let batch = ws.resource("hybrid_workload.batch");
    let api_id = api["id"].as_str().unwrap_or_default().to_string();
    ws.config(&format!(
        "{TWO_WORKLOADS}\ndata \"hybrid_cost_report\" \"all\" {{\n  spot_allowed = true\n  utilization = [\n    {{ workload_id = \"{api_id}\", cpu_utilization = 0.1, memory_utilization = 0.2 }},\n  ]\n}}\n"
    ));
    ws.apply();
    let report = ws.resource("data.hybrid_cost_report.all");
    let workloads = report["workloads"].as_array().expect("workloads");
    assert_eq!(workloads.len(), 2, "{report:#}");
    let catalog = catalog::embedded();
    let mut total = 0.0;
    for (w, state, replicas) in [(&workloads[0], &api, 1.0), (&workloads[1], &batch, 3.0)] {
        assert_eq!(w["workload_id"], state["id"]);
        assert_eq!(w["region"], state["placement"]["region"]);
        assert_eq!(w["instance_type"], state["placement"]["instance_type"]);
        assert_eq!(w["replicas"].as_f64(), Some(replicas));
        assert_eq!(w["price_known"], true);
        let cloud = catalog::Cloud::ALL
            .into_iter()
            .find(|c| w["provider"] == c.as_str())
            .expect("cloud");
        let rid = catalog
            .find_region_in(cloud, w["region"].as_str().unwrap_or_default())
            .expect("region");
        let tid = catalog
            .find_instance_type(cloud, w["instance_type"].as_str().unwrap_or_default())
            .expect("type");
        let unit = catalog.offer(rid, tid).expect("offer").on_demand_hourly_usd;
        let hourly = w["hourly_cost"].as_f64().expect("hourly");
        assert!((hourly - unit * replicas).abs() < 1e-4, "{w:#}");
        assert!(
            (w["monthly_cost"].as_f64().unwrap_or_default() - unit * replicas * 730.0).abs() < 0.01
        );
        total += unit * replicas;
    }
    assert!(
        (report["total_hourly"].as_f64().unwrap_or_default() - total).abs() < 1e-3,
        "{report:#}"
    );
    assert!((report["total_monthly"].as_f64().unwrap_or_default() - total * 730.0).abs() < 0.1);
    assert_eq!(report["unpriced_workloads"], serde_json::json!([]));
    let by_region_total: f64 = report["by_region"]
        .as_array()
        .expect("by_region")
        .iter()
        .filter_map(|g| g["hourly_cost"].as_f64())
        .sum();
    assert!((by_region_total - total).abs() < 1e-3);
    assert!(!report["by_provider"]
        .as_array()
        .expect("by_provider")
        .is_empty());

    // Right-sizing for the under-used api workload: fewer vCPUs, same region, a real saving.
    let recs = report["recommendations"]
        .as_array()
        .expect("recommendations");
    let right = recs
        .iter()
        .find(|r| r["kind"] == "right_size" && r["workload_id"] == api_id.as_str())
        .unwrap_or_else(|| panic!("right-size suggestion for {api_id}: {report:#}"));
    assert_eq!(right["suggested_region"], api["placement"]["region"]);
    assert!(
        right["savings_percentage"]
            .as_f64()
            .is_some_and(|p| p > 0.0 && p < 100.0),
        "{right:#}"
    );
    for r in recs {
        let current = r["current_hourly"].as_f64().unwrap_or_default();
        let suggested = r["suggested_hourly"].as_f64().unwrap_or_default();
        assert!(suggested < current, "{r:#}");
        let pct = r["savings_percentage"].as_f64().unwrap_or_default();
        assert!(
            (pct - (current - suggested) / current * 100.0).abs() < 0.2,
            "{r:#}"
        );
        if r["kind"] == "spot" {
            assert_ne!(r["provider"], "aws", "the snapshot has no AWS spot figures");
        }
    }

    // Bad utilisation is a diagnostic on the element.
    ws.config(&format!(
        "{TWO_WORKLOADS}\ndata \"hybrid_cost_report\" \"all\" {{\n  utilization = [\n    {{ workload_id = \"{api_id}\", cpu_utilization = 45, memory_utilization = 0.2 }},\n  ]\n}}\n"
    ));
    ws.expect_error(
        &["plan", "-input=false"],
        &["Invalid cpu_utilization", "utilization[0].cpu_utilization"],
    );
    ws.config(TWO_WORKLOADS);
    ws.destroy();
}
