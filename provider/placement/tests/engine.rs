//! Table-driven unit tests of the engine on the small synthetic catalog: each hard constraint,
//! each strategy, validation, stickiness, secondary, fallback groups, edge nodes and spreading.

use catalog::Compliance;
use placement::testutil::small_catalog;
use placement::*;

fn users_at(lat: f64, lng: f64) -> Vec<UserLocation> {
    vec![UserLocation {
        lat,
        lng,
        weight: 1.0,
    }]
}

fn region_res(code: &str) -> Residency {
    Residency::Region(code.to_ascii_lowercase())
}

fn token(t: &str) -> Residency {
    Residency::Token(t.to_string())
}

/// (name, requirements, expected (provider, region, type) of the winner).
#[test]
fn each_constraint_steers_the_winner() {
    let cat = small_catalog();
    let base = || Requirements::new(2.0, 8.0);
    let cases: Vec<(&str, Requirements, (&str, &str, &str))> = vec![
        (
            "baseline cheapest",
            base(),
            ("gcp", "us-central1", "e2-standard-2"),
        ),
        (
            "cpu 8",
            Requirements::new(8.0, 8.0),
            ("aws", "us-east-1", "c5.2xlarge"),
        ),
        (
            "memory 20",
            Requirements::new(2.0, 20.0),
            ("azure", "westeurope", "Standard_NC4as_T4_v3"),
        ),
        (
            "gpu any",
            base().with_gpu(1, None),
            ("aws", "us-east-1", "g4dn.xlarge"),
        ),
        (
            "gpu a100",
            base().with_gpu(1, Some("A100")),
            ("aws", "us-east-1", "p4d.24xlarge"),
        ),
        (
            "gpu l4",
            base().with_gpu(1, Some("l4")),
            ("gcp", "us-central1", "g2-standard-4"),
        ),
        (
            "gdpr",
            base().with_compliance(&[Compliance::Gdpr]),
            ("gcp", "europe-west3", "e2-standard-2"),
        ),
        (
            "fedramp",
            base().with_compliance(&[Compliance::Fedramp]),
            ("azure", "eastus", "Standard_D2s_v5"),
        ),
        (
            "residency DE",
            base().with_residency(vec![token("DE")]),
            ("gcp", "europe-west3", "e2-standard-2"),
        ),
        (
            "residency code",
            base().with_residency(vec![region_res("EastUS")]),
            ("azure", "eastus", "Standard_D2s_v5"),
        ),
        (
            "residency EU",
            base().with_residency(vec![token("EU")]),
            ("gcp", "europe-west3", "e2-standard-2"),
        ),
        (
            "provider azure",
            base().with_providers(&[Provider::Azure]),
            ("azure", "eastus", "Standard_D2s_v5"),
        ),
        (
            "budget",
            base().with_budget(0.07),
            ("gcp", "us-central1", "e2-standard-2"),
        ),
        (
            "latency 5ms from Frankfurt",
            base()
                .with_users(&users_at(50.1, 8.7))
                .with_max_latency_ms(5.0),
            ("gcp", "europe-west3", "e2-standard-2"),
        ),
        (
            "spot",
            base().with_spot(),
            ("azure", "eastus", "Standard_D2s_v5"),
        ),
        (
            "gdpr + gpu",
            base()
                .with_gpu(1, None)
                .with_compliance(&[Compliance::Gdpr]),
            ("aws", "eu-west-1", "g4dn.xlarge"),
        ),
    ];
    for (name, req, (p, r, t)) in cases {
        let d = place(
            &cat,
            &[],
            &req,
            &Strategy::CostOptimized,
            &PlaceOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = &d.placement;
        assert_eq!(
            (
                got.provider.as_str(),
                got.region.as_str(),
                got.instance_type.as_deref()
            ),
            (p, r, Some(t)),
            "{name}: {}",
            got.reason
        );
        assert_eq!(d.considered, cat.offers.len(), "{name}");
        assert_eq!(d.rejected.total() + d.feasible, d.considered, "{name}");
    }
}

/// (name, requirements, predicate on the counts, substring of the message).
#[test]
fn infeasible_requirements_explain_themselves() {
    let cat = small_catalog();
    let base = || Requirements::new(2.0, 8.0);
    type Check = fn(&RejectionCounts) -> bool;
    let cases: Vec<(&str, Requirements, Check, &str)> = vec![
        ("cpu", Requirements::new(200.0, 1.0), |c| c.insufficient_cpu == 21, "21 have too few vCPUs"),
        ("memory", Requirements::new(1.0, 5000.0), |c| c.insufficient_memory == 21, "too little memory"),
        ("gpu model", base().with_gpu(1, Some("h100")), |c| c.no_gpu == 15 && c.gpu_model == 6, "6 have the wrong GPU model"),
        (
            "compliance",
            base().with_compliance(&[Compliance::Gdpr, Compliance::Fedramp]),
            |c| c.compliance[0] > 0 && c.compliance[1] > 0,
            "are outside FEDRAMP regions",
        ),
        (
            "residency",
            base().with_residency(vec![token("JP")]),
            |c| c.data_residency == 21,
            "outside the data-residency regions",
        ),
        (
            "provider",
            base().with_providers(&[Provider::Edge]),
            |c| c.provider_not_preferred == 21,
            "not from a preferred provider",
        ),
        ("spot", base().with_spot().with_gpu(1, Some("a100")), |c| c.no_price == 1, "1 have no price"),
        ("budget", base().with_budget(0.01), |c| c.over_budget == 21, "exceed the budget"),
        (
            "latency",
            base().with_users(&users_at(-33.9, 151.2)).with_max_latency_ms(10.0),
            |c| c.over_latency == 21,
            "exceeds max latency",
        ),
        (
            "gdpr + gpu + budget",
            base().with_gpu(1, None).with_compliance(&[Compliance::Gdpr]).with_budget(0.5),
            |c| c.over_budget == 2 && c.no_gpu == 15,
            "closest miss is aws eu-west-1 g4dn.xlarge at $0.587/h (has the GPU, meets gdpr), rejected: $0.587/h exceeds the budget $0.500/h",
        ),
    ];
    for (name, req, check, text) in cases {
        let e =
            place(&cat, &[], &req, &Strategy::Hybrid, &PlaceOptions::default()).expect_err(name);
        assert!(check(&e.rejected), "{name}: {:?}", e.rejected);
        assert_eq!(e.rejected.total(), 21, "{name}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("no placement satisfies the requirements: of 21 candidates"),
            "{msg}"
        );
        assert!(msg.contains(text), "{name}: {msg}");
    }
}

#[test]
fn strategies_pick_their_dimension() {
    let cat = small_catalog();
    let singapore = users_at(1.3, 103.8);
    let req = Requirements::new(2.0, 8.0).with_users(&singapore);
    let cases: Vec<(Strategy, &str, &str)> = vec![
        // Cost is a ratio to the cheapest: a 1.8x price is not worth 10 % latency weight.
        (Strategy::CostOptimized, "us-central1", "e2-standard-2"),
        (Strategy::LatencyOptimized, "ap-southeast-1", "m5.large"),
        // 70 % performance still weighs p4d's $32.77/h (cost score 0): a newest-generation 4 vCPU wins.
        (
            Strategy::PerformanceOptimized,
            "westeurope",
            "Standard_D4s_v5",
        ),
        // Headroom saturates at 2x: a 96-vCPU p4d is not "faster" for a 2-vCPU workload than a
        // newest-generation 4-vCPU type; ties go to the cheaper one.
        (
            Strategy::Custom(Weights::new(0.0, 1.0, 0.0, 0.0).expect("weights")),
            "eastus",
            "Standard_D4s_v5",
        ),
        (
            Strategy::Custom(Weights::new(1.0, 0.0, 0.0, 0.0).expect("weights")),
            "us-central1",
            "e2-standard-2",
        ),
        (
            Strategy::Custom(Weights::new(0.0, 0.0, 1.0, 0.0).expect("weights")),
            "ap-southeast-1",
            "m5.large",
        ),
    ];
    for (s, r, t) in cases {
        let d = place(&cat, &[], &req, &s, &PlaceOptions::default()).expect("feasible");
        assert_eq!(
            (
                d.placement.region.as_str(),
                d.placement.instance_type.as_deref()
            ),
            (r, Some(t)),
            "{s}: {}",
            d.placement.reason
        );
    }
    // Resilience: the winner sits in a region with >= 3 zones.
    let d = place(
        &cat,
        &[],
        &req,
        &Strategy::ResilienceOptimized,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    assert_eq!(d.placement.scores.resilience, 100.0);
    // Every score is Σ weight × dimension.
    for s in [
        Strategy::CostOptimized,
        Strategy::PerformanceOptimized,
        Strategy::LatencyOptimized,
        Strategy::ResilienceOptimized,
        Strategy::Hybrid,
    ] {
        let w = s.weights();
        assert!((w.cost + w.performance + w.latency + w.resilience - 1.0).abs() < 1e-12);
        let d = place(&cat, &[], &req, &s, &PlaceOptions::default()).expect("feasible");
        for p in std::iter::once(&d.placement).chain(&d.alternatives) {
            let sc = p.scores;
            let want = w.cost * sc.cost
                + w.performance * sc.performance
                + w.latency * sc.latency
                + w.resilience * sc.resilience;
            assert!((p.score - want).abs() < 1e-9, "{s}");
            for v in [sc.cost, sc.performance, sc.latency, sc.resilience, p.score] {
                assert!((0.0..=100.0).contains(&v), "{s}: {v}");
            }
        }
    }
}

#[test]
fn alternatives_are_distinct_regions_best_first() {
    let cat = small_catalog();
    let d = place(
        &cat,
        &[],
        &Requirements::new(2.0, 8.0),
        &Strategy::Hybrid,
        &PlaceOptions {
            top_k: 10,
            ..Default::default()
        },
    )
    .expect("feasible");
    assert_eq!(d.alternatives.len(), 7, "8 regions, winner excluded");
    let mut pairs: Vec<(String, String)> = d
        .alternatives
        .iter()
        .map(|p| (p.provider.clone(), p.region.clone()))
        .collect();
    pairs.push((d.placement.provider.clone(), d.placement.region.clone()));
    let n = pairs.len();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), n);
    let mut prev = d.placement.score;
    for a in &d.alternatives {
        assert!(a.score <= prev);
        prev = a.score;
        assert!(a.reason.starts_with("alternative #"), "{}", a.reason);
    }
    assert!(
        d.placement.reason.contains("of 21 feasible candidates"),
        "{}",
        d.placement.reason
    );
    let d = place(
        &cat,
        &[],
        &Requirements::new(2.0, 8.0),
        &Strategy::Hybrid,
        &PlaceOptions {
            top_k: 2,
            ..Default::default()
        },
    )
    .expect("feasible");
    assert_eq!(d.alternatives.len(), 2);
}

#[test]
fn reason_reads_like_the_guide() {
    let cat = small_catalog();
    let req = Requirements::new(2.0, 8.0)
        .with_compliance(&[Compliance::Gdpr])
        .with_users(&users_at(52.5, 13.4));
    let d = place(
        &cat,
        &[],
        &req,
        &Strategy::CostOptimized,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    let r = &d.placement.reason;
    assert!(
        r.starts_with("cheapest of 8 feasible candidates meeting gdpr; "),
        "{r}"
    );
    assert!(r.contains(" ms to users; $0.087/h"), "{r}");
    assert!(!r.contains('\n'));
}

#[test]
fn sticky_keeps_or_replaces() {
    let cat = small_catalog();
    let req = Requirements::new(2.0, 8.0);
    let current = PlacementKey {
        provider: Provider::Aws,
        region: "us-east-1".into(),
        instance_type: Some("m5.large".into()),
        node: None,
    };
    let opts = PlaceOptions {
        current: Some(current.clone()),
        replace_threshold_percent: 50.0,
        ..Default::default()
    };
    let d = place(&cat, &[], &req, &Strategy::CostOptimized, &opts).expect("feasible");
    assert_eq!(d.placement.instance_type.as_deref(), Some("m5.large"));
    assert!(
        d.placement.reason.starts_with(
            "kept current placement: best alternative gcp us-central1 e2-standard-2 scores only"
        ),
        "{}",
        d.placement.reason
    );
    assert!(
        d.placement.reason.contains("higher (threshold 50%)"),
        "{}",
        d.placement.reason
    );
    assert_eq!(
        d.alternatives[0].instance_type.as_deref(),
        Some("e2-standard-2")
    );

    let strict = PlaceOptions {
        replace_threshold_percent: 1.0,
        ..opts.clone()
    };
    let d = place(&cat, &[], &req, &Strategy::CostOptimized, &strict).expect("feasible");
    assert_eq!(d.placement.region, "us-central1");
    assert!(
        d.placement
            .reason
            .contains("replaces current placement (scores"),
        "{}",
        d.placement.reason
    );

    // Current no longer fits (needs 4 vCPUs now).
    let d = place(
        &cat,
        &[],
        &Requirements::new(4.0, 8.0),
        &Strategy::CostOptimized,
        &opts,
    )
    .expect("feasible");
    assert_ne!(d.placement.instance_type.as_deref(), Some("m5.large"));
    assert!(
        d.placement
            .reason
            .contains("replaces current placement: too few vCPUs"),
        "{}",
        d.placement.reason
    );

    // Current is the best: says so.
    let best = PlacementKey {
        provider: Provider::Gcp,
        region: "us-central1".into(),
        instance_type: Some("e2-standard-2".into()),
        node: None,
    };
    let d = place(
        &cat,
        &[],
        &req,
        &Strategy::CostOptimized,
        &PlaceOptions {
            current: Some(best),
            ..Default::default()
        },
    )
    .expect("feasible");
    assert!(
        d.placement
            .reason
            .ends_with("current placement is still the best"),
        "{}",
        d.placement.reason
    );
}

#[test]
fn secondary_differs() {
    let cat = small_catalog();
    let req = Requirements::new(2.0, 8.0);
    for (rule, check) in [
        (
            SecondaryRule::DifferentRegion,
            (|a: &Placement, b: &Placement| {
                (a.provider.clone(), a.region.clone()) != (b.provider.clone(), b.region.clone())
            }) as fn(&Placement, &Placement) -> bool,
        ),
        (
            SecondaryRule::DifferentProvider,
            |a: &Placement, b: &Placement| a.provider != b.provider,
        ),
    ] {
        let d = place(
            &cat,
            &[],
            &req,
            &Strategy::CostOptimized,
            &PlaceOptions {
                secondary: Some(rule),
                ..Default::default()
            },
        )
        .expect("feasible");
        let s = d.secondary.expect("secondary");
        assert!(check(&d.placement, &s), "{rule:?}");
        assert!(
            s.reason.starts_with("disaster-recovery secondary"),
            "{}",
            s.reason
        );
    }
    // Only one provider feasible: no secondary in another provider, a warning instead.
    let d = place(
        &cat,
        &[],
        &req.clone().with_providers(&[Provider::Gcp]),
        &Strategy::CostOptimized,
        &PlaceOptions {
            secondary: Some(SecondaryRule::DifferentProvider),
            ..Default::default()
        },
    )
    .expect("feasible");
    assert!(d.secondary.is_none());
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("no feasible secondary")),
        "{:?}",
        d.warnings
    );
}

fn edge_node(id: &str, cost: Option<f64>) -> EdgeCandidate {
    let mut e = EdgeCandidate::new(id, "factory-munich", "DE", 48.1, 11.6, 8.0, 32.0);
    e.jurisdictions = vec!["EU".into()];
    e.compliance = vec![Compliance::Gdpr];
    e.hourly_cost = cost;
    e
}

#[test]
fn fallback_groups_in_order() {
    let cat = small_catalog();
    let req = Requirements::new(2.0, 8.0);
    let groups = vec![
        FallbackGroup {
            name: "edge".into(),
            providers: vec![Provider::Edge],
            regions: vec![],
        },
        FallbackGroup {
            name: "aws".into(),
            providers: vec![Provider::Aws],
            regions: vec![],
        },
        FallbackGroup {
            name: "anything".into(),
            providers: vec![],
            regions: vec![],
        },
    ];
    let opts = PlaceOptions {
        fallback_groups: groups,
        ..Default::default()
    };
    let d = place(&cat, &[], &req, &Strategy::CostOptimized, &opts).expect("feasible");
    assert_eq!(d.placement.provider, "aws");
    assert!(
        d.placement
            .reason
            .starts_with("fallback group 'aws' (2 of 3): "),
        "{}",
        d.placement.reason
    );
    assert!(d.alternatives.iter().all(|a| a.provider == "aws"));
    let d = place(
        &cat,
        &[edge_node("n1", Some(5.0))],
        &req,
        &Strategy::CostOptimized,
        &opts,
    )
    .expect("feasible");
    assert_eq!(d.placement.node.as_deref(), Some("n1"));
    assert!(
        d.placement
            .reason
            .starts_with("fallback group 'edge' (1 of 3): "),
        "{}",
        d.placement.reason
    );
    // Regions filter by jurisdiction.
    let opts = PlaceOptions {
        fallback_groups: vec![FallbackGroup {
            name: "eu".into(),
            providers: vec![],
            regions: vec!["EU".into()],
        }],
        ..Default::default()
    };
    let d = place(&cat, &[], &req, &Strategy::CostOptimized, &opts).expect("feasible");
    assert_eq!(d.placement.region, "europe-west3");
}

#[test]
fn edge_nodes_are_candidates() {
    let cat = small_catalog();
    let munich = users_at(48.1, 11.6);
    let req = Requirements::new(2.0, 8.0).with_users(&munich);
    let d = place(
        &cat,
        &[edge_node("n1", Some(0.01))],
        &req,
        &Strategy::CostOptimized,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    assert_eq!(d.placement.provider, "edge", "{:#?}", d);
    assert_eq!(d.placement.node.as_deref(), Some("n1"));
    assert_eq!(d.placement.region, "factory-munich");
    assert_eq!(d.considered, 22);

    // Unknown cost: allowed without a budget (cost score 0 + warning), NoPrice with one.
    let d = place(
        &cat,
        &[edge_node("n2", None)],
        &req.clone().with_providers(&[Provider::Edge]),
        &Strategy::Hybrid,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    assert_eq!(d.placement.scores.cost, 0.0);
    assert!(!d.placement.cost_known);
    assert!(
        d.warnings.iter().any(|w| w.contains("no configured cost")),
        "{:?}",
        d.warnings
    );
    let e = place(
        &cat,
        &[edge_node("n2", None)],
        &req.clone()
            .with_providers(&[Provider::Edge])
            .with_budget(1.0),
        &Strategy::Hybrid,
        &PlaceOptions::default(),
    )
    .expect_err("no price");
    assert_eq!(e.rejected.no_price, 1);

    // Capacity: cordoned, or too small for all replicas.
    let mut cordoned = edge_node("n3", Some(0.01));
    cordoned.schedulable = false;
    let only_edge = req.clone().with_providers(&[Provider::Edge]);
    let e = place(
        &cat,
        &[cordoned],
        &only_edge,
        &Strategy::Hybrid,
        &PlaceOptions::default(),
    )
    .expect_err("cordoned");
    assert_eq!(e.rejected.no_capacity, 1);
    let e = place(
        &cat,
        &[edge_node("n4", Some(0.01))],
        &only_edge.clone().with_replicas(5),
        &Strategy::Hybrid,
        &PlaceOptions::default(),
    )
    .expect_err("5 × 2 vCPU > 8");
    assert_eq!(e.rejected.no_capacity, 1);
    let e = place(
        &cat,
        &[edge_node("n5", Some(0.01))],
        &Requirements::new(16.0, 8.0).with_providers(&[Provider::Edge]),
        &Strategy::Hybrid,
        &PlaceOptions::default(),
    )
    .expect_err("cpu");
    // p4d.24xlarge has the vCPUs and fails on the provider instead.
    assert_eq!(e.rejected.insufficient_cpu, 21);
    assert_eq!(e.rejected.provider_not_preferred, 1);

    // Sticky on an edge node.
    let cur = PlacementKey {
        provider: Provider::Edge,
        region: "factory-munich".into(),
        instance_type: None,
        node: Some("n1".into()),
    };
    let d = place(
        &cat,
        &[edge_node("n1", Some(0.01))],
        &req,
        &Strategy::CostOptimized,
        &PlaceOptions {
            current: Some(cur),
            ..Default::default()
        },
    )
    .expect("feasible");
    assert!(
        d.placement
            .reason
            .ends_with("current placement is still the best"),
        "{}",
        d.placement.reason
    );
}

#[test]
fn replicas_storage_and_spot_pricing() {
    let cat = small_catalog();
    let req = Requirements::new(2.0, 8.0)
        .with_replicas(3)
        .with_storage_gb(73.0);
    let d = place(
        &cat,
        &[],
        &req,
        &Strategy::CostOptimized,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    // 3 × (0.067 + 73 × 0.08 / 730)
    assert!((d.placement.estimated_cost_hourly - 3.0 * (0.067 + 0.008)).abs() < 1e-12);
    let d = place(
        &cat,
        &[],
        &Requirements::new(2.0, 8.0).with_spot(),
        &Strategy::CostOptimized,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    assert!((d.placement.estimated_cost_hourly - 0.019).abs() < 1e-12);
    // Storage price unknown in a region: warning, never $0 storage silently.
    let mut cat2 = cat.clone();
    for r in &mut cat2.regions {
        r.storage_gb_month_usd = None;
    }
    let d = place(
        &cat2,
        &[],
        &req,
        &Strategy::CostOptimized,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    assert!(
        d.warnings.iter().any(|w| w.contains("no storage price")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn latency_warning_and_estimate() {
    let cat = small_catalog();
    let d = place(
        &cat,
        &[],
        &Requirements::new(2.0, 8.0).with_max_latency_ms(5.0),
        &Strategy::Hybrid,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    assert!(d
        .warnings
        .iter()
        .any(|w| w.contains("max_latency_ms is ignored")));
    assert_eq!(d.placement.estimated_latency_ms, None);
    assert_eq!(d.placement.scores.latency, 100.0);
    let d = place(
        &cat,
        &[],
        &Requirements::new(2.0, 8.0).with_users(&users_at(50.1, 8.7)),
        &Strategy::LatencyOptimized,
        &PlaceOptions::default(),
    )
    .expect("feasible");
    // Same point: rtt = base_ms.
    assert_eq!(d.placement.estimated_latency_ms, Some(2.0));
}

#[test]
fn great_circle_and_rtt() {
    // London – New York ≈ 5,570 km.
    let km = great_circle_km(51.5074, -0.1278, 40.7128, -74.0060);
    assert!((km - 5570.0).abs() < 15.0, "{km}");
    assert_eq!(great_circle_km(10.0, 20.0, 10.0, 20.0), 0.0);
    let m = placement::testutil::latency_model();
    assert!((rtt_ms(&m, 1000.0) - (2.0 * 1000.0 / 200.0 * 1.5 + 2.0)).abs() < 1e-12);
}

#[test]
fn compliance_validation() {
    let cat = small_catalog();
    let us = &cat.regions[0];
    let req = Requirements::new(1.0, 1.0)
        .with_compliance(&[Compliance::Gdpr, Compliance::Hipaa])
        .with_residency(vec![token("EU")]);
    let v = validate_compliance(us, &req);
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[0].to_string(), "region us-east-1 is not gdpr compliant");
    assert!(v[1]
        .to_string()
        .contains("outside the data-residency regions EU"));
    assert!(validate_compliance(&cat.regions[1], &req).is_empty());
}

#[test]
fn validation_reports_every_field() {
    let cat = small_catalog();
    let ok = RawRequirements {
        cpu: Some(2.0),
        memory_gb: Some(4.0),
        ..Default::default()
    };
    assert!(Requirements::validate(&ok, &cat).is_ok());
    let cases: Vec<(&str, RawRequirements, &[&str])> = vec![
        ("missing", RawRequirements::default(), &["cpu", "memory_gb"]),
        (
            "nan cpu",
            RawRequirements {
                cpu: Some(f64::NAN),
                ..ok.clone()
            },
            &["cpu"],
        ),
        (
            "inf memory",
            RawRequirements {
                memory_gb: Some(f64::INFINITY),
                ..ok.clone()
            },
            &["memory_gb"],
        ),
        (
            "zero cpu",
            RawRequirements {
                cpu: Some(0.0),
                ..ok.clone()
            },
            &["cpu"],
        ),
        (
            "neg storage",
            RawRequirements {
                storage_gb: Some(-1.0),
                ..ok.clone()
            },
            &["storage_gb"],
        ),
        (
            "neg gpu",
            RawRequirements {
                gpu_count: Some(-1),
                ..ok.clone()
            },
            &["gpu_count"],
        ),
        (
            "budget nan",
            RawRequirements {
                cost_budget_hourly: Some(f64::NAN),
                ..ok.clone()
            },
            &["cost_budget_hourly"],
        ),
        (
            "latency 0",
            RawRequirements {
                max_latency_ms: Some(0.0),
                ..ok.clone()
            },
            &["max_latency_ms"],
        ),
        (
            "compliance",
            RawRequirements {
                compliance: vec!["gdpr".into(), "sox".into()],
                ..ok.clone()
            },
            &["compliance[1]"],
        ),
        (
            "provider",
            RawRequirements {
                preferred_providers: vec!["aws".into(), "oracle".into()],
                ..ok.clone()
            },
            &["preferred_providers[1]"],
        ),
        (
            "residency",
            RawRequirements {
                data_residency_regions: vec!["eu-west-1".into(), "eu-wst-1".into(), "DE".into()],
                ..ok.clone()
            },
            &["data_residency_regions[1]"],
        ),
        (
            "user loc",
            RawRequirements {
                user_locations: vec![
                    RawUserLocation {
                        lat: 91.0,
                        lng: 0.0,
                        weight: None,
                    },
                    RawUserLocation {
                        lat: 0.0,
                        lng: f64::NAN,
                        weight: Some(0.0),
                    },
                ],
                ..ok.clone()
            },
            &[
                "user_locations[0].lat",
                "user_locations[1].lng",
                "user_locations[1].weight",
            ],
        ),
        (
            "replicas",
            RawRequirements {
                replicas: Some(0),
                ..ok.clone()
            },
            &["replicas"],
        ),
        (
            "workload",
            RawRequirements {
                workload_type: Some("quantum".into()),
                ..ok.clone()
            },
            &["workload_type"],
        ),
        (
            "pricing",
            RawRequirements {
                pricing_model: Some("reserved".into()),
                ..ok.clone()
            },
            &["pricing_model"],
        ),
        (
            "spot not allowed",
            RawRequirements {
                pricing_model: Some("spot".into()),
                spot_allowed: Some(false),
                ..ok.clone()
            },
            &["pricing_model"],
        ),
    ];
    for (name, raw, fields) in cases {
        let errs = Requirements::validate(&raw, &cat).expect_err(name);
        let got: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(got, fields, "{name}: {errs:?}");
    }
    let full = RawRequirements {
        cpu: Some(2.0),
        memory_gb: Some(4.0),
        gpu_model: Some("T4".into()),
        compliance: vec!["GDPR".into(), "pci-dss".into(), "gdpr".into()],
        preferred_providers: vec!["AWS".into(), "on-prem".into()],
        data_residency_regions: vec!["EU-WEST-1".into(), "eu".into()],
        pricing_model: Some("spot".into()),
        ..Default::default()
    };
    let r = Requirements::validate(&full, &cat).expect("valid");
    assert_eq!(r.gpu_count, 1);
    assert_eq!(r.gpu_model.as_deref(), Some("t4"));
    assert_eq!(r.compliance, vec![Compliance::Gdpr, Compliance::PciDss]);
    assert_eq!(r.preferred_providers, vec![Provider::Aws, Provider::Onprem]);
    assert_eq!(
        r.data_residency,
        vec![
            Residency::Region("eu-west-1".into()),
            Residency::Token("EU".into())
        ]
    );
    assert!(r.spot_allowed);
    assert_eq!(r.pricing_model, PricingModel::Spot);
}

#[test]
fn strategy_parsing_and_weights() {
    type Case<'a> = (&'a str, Option<[f64; 4]>, Result<Strategy, &'a str>);
    let cases: Vec<Case> = vec![
        ("cost_optimized", None, Ok(Strategy::CostOptimized)),
        (
            "Performance-Optimized",
            None,
            Ok(Strategy::PerformanceOptimized),
        ),
        ("latency_optimized", None, Ok(Strategy::LatencyOptimized)),
        (
            "resilience_optimized",
            None,
            Ok(Strategy::ResilienceOptimized),
        ),
        ("hybrid", None, Ok(Strategy::Hybrid)),
        (
            "custom",
            Some([0.4, 0.3, 0.2, 0.1]),
            Ok(Strategy::Custom(Weights {
                cost: 0.4,
                performance: 0.3,
                latency: 0.2,
                resilience: 0.1,
            })),
        ),
        ("custom", None, Err("weights")),
        ("custom", Some([0.5, 0.5, 0.5, 0.0]), Err("weights")),
        (
            "custom",
            Some([1.2, -0.2, 0.0, 0.0]),
            Err("weights.performance"),
        ),
        (
            "custom",
            Some([f64::NAN, 0.0, 0.0, 1.0]),
            Err("weights.cost"),
        ),
        ("hybrid", Some([0.25; 4]), Err("weights")),
        ("random", None, Err("strategy")),
    ];
    for (name, w, want) in cases {
        match (Strategy::parse(name, w), want) {
            (Ok(s), Ok(w)) => assert_eq!(s, w, "{name}"),
            (Err(e), Err(field)) => assert_eq!(e.field, field, "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(
        Strategy::Hybrid.weights(),
        Weights {
            cost: 0.25,
            performance: 0.25,
            latency: 0.25,
            resilience: 0.25
        }
    );
    assert_eq!(Strategy::CostOptimized.weights().cost, 0.7);
}

#[test]
fn spread_rules() {
    let cat = small_catalog();
    let req = Requirements::new(2.0, 8.0).with_replicas(5);
    let opts = PlaceOptions::default();
    // Divided by region: 3 groups, 2/2/1.
    let rule = SpreadRule::new(SpreadBy::Region, 2, 3, ReplicaScheduling::Divided).expect("rule");
    let d = place_spread(&cat, &[], &req, &Strategy::CostOptimized, &opts, &rule).expect("spread");
    let counts: Vec<u32> = d.assignments.iter().map(|a| a.replicas).collect();
    assert_eq!(counts, vec![2, 2, 1]);
    let mut regions: Vec<&str> = d
        .assignments
        .iter()
        .map(|a| a.placement.region.as_str())
        .collect();
    regions.dedup();
    assert_eq!(regions.len(), 3);
    let sum: f64 = d
        .assignments
        .iter()
        .map(|a| a.placement.estimated_cost_hourly)
        .sum();
    assert!((sum - d.total_cost_hourly).abs() < 1e-12);
    // Duplicated by provider: every provider runs all 5.
    let rule =
        SpreadRule::new(SpreadBy::Provider, 3, 3, ReplicaScheduling::Duplicated).expect("rule");
    let d = place_spread(&cat, &[], &req, &Strategy::CostOptimized, &opts, &rule).expect("spread");
    let mut provs: Vec<&str> = d
        .assignments
        .iter()
        .map(|a| a.placement.provider.as_str())
        .collect();
    provs.sort();
    assert_eq!(provs, vec!["aws", "azure", "gcp"]);
    assert!(d.assignments.iter().all(|a| a.replicas == 5));
    // Zones: 3 zones of the best region, named deterministically.
    let rule = SpreadRule::new(SpreadBy::Zone, 3, 3, ReplicaScheduling::Divided).expect("rule");
    let d = place_spread(&cat, &[], &req, &Strategy::CostOptimized, &opts, &rule).expect("spread");
    let zones: Vec<Option<&str>> = d
        .assignments
        .iter()
        .map(|a| a.placement.zone.as_deref())
        .collect();
    assert_eq!(
        zones,
        vec![
            Some("us-central1-a"),
            Some("us-central1-b"),
            Some("us-central1-c")
        ]
    );
    // Too few groups.
    let rule =
        SpreadRule::new(SpreadBy::Provider, 4, 4, ReplicaScheduling::Duplicated).expect("rule");
    let e = place_spread(&cat, &[], &req, &Strategy::CostOptimized, &opts, &rule)
        .expect_err("4 providers");
    assert!(
        e.to_string()
            .contains("spread by provider needs at least 4 groups, only 3 feasible"),
        "{e}"
    );
    // Budget shrinks the group count towards min_groups.
    let rule =
        SpreadRule::new(SpreadBy::Region, 1, 8, ReplicaScheduling::Duplicated).expect("rule");
    let d = place_spread(
        &cat,
        &[],
        &req.clone().with_budget(1.0),
        &Strategy::CostOptimized,
        &opts,
        &rule,
    )
    .expect("spread");
    assert!(d.total_cost_hourly <= 1.0);
    assert_eq!(
        d.assignments.len(),
        2,
        "5 × 0.067 + 5 × 0.074 fits, a third does not"
    );
    assert!(SpreadRule::new(SpreadBy::Zone, 0, 1, ReplicaScheduling::Divided).is_err());
    assert!(SpreadRule::new(SpreadBy::Zone, 3, 2, ReplicaScheduling::Divided).is_err());
}

#[test]
fn empty_inputs_never_panic() {
    let empty = placement::testutil::CatalogBuilder::default().build();
    let e = place(
        &empty,
        &[],
        &Requirements::new(1.0, 1.0),
        &Strategy::Hybrid,
        &PlaceOptions::default(),
    )
    .expect_err("empty");
    assert!(e.to_string().contains("there are no candidates"), "{e}");
    let d = place(
        &empty,
        &[edge_node("n1", None)],
        &Requirements::new(1.0, 1.0),
        &Strategy::Hybrid,
        &PlaceOptions {
            top_k: 0,
            ..Default::default()
        },
    )
    .expect("edge only");
    assert!(d.alternatives.is_empty());
}

#[test]
fn large_synthetic_catalog_is_deterministic_under_shuffling() {
    use placement::testutil::{shuffled, synthetic_catalog};
    let cat = synthetic_catalog(30, 300, 0.8, 3);
    let req = Requirements::new(4.0, 16.0)
        .with_storage_gb(50.0)
        .with_compliance(&[Compliance::Soc2])
        .with_users(&[UserLocation {
            lat: 48.0,
            lng: 2.0,
            weight: 1.0,
        }]);
    for s in [
        Strategy::CostOptimized,
        Strategy::Hybrid,
        Strategy::LatencyOptimized,
    ] {
        let opts = PlaceOptions {
            secondary: Some(SecondaryRule::DifferentProvider),
            ..Default::default()
        };
        let a = place(&cat, &[], &req, &s, &opts).expect("feasible");
        for seed in 0..3 {
            assert_eq!(
                Ok(&a),
                place(&shuffled(&cat, seed), &[], &req, &s, &opts).as_ref(),
                "{s} seed {seed}"
            );
        }
    }
}
