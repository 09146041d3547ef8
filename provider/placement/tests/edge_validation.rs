//! Validation of user-controlled edge numbers: never panics, names every bad field.

use placement::edge::*;
use placement::RawUserLocation;
use std::collections::BTreeMap;

fn fields(errs: &[placement::FieldError]) -> Vec<&str> {
    errs.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn valid_request_round_trips() {
    let raw = RawEdgeRequest {
        cpu: Some(0.5),
        memory_gb: Some(1.0),
        storage_gb: Some(10.0),
        network_mbps: None,
        required_capabilities: vec!["ML-Inference".into()],
        node_types: vec!["Inference".into()],
        replicas: Some(3),
        user_locations: vec![RawUserLocation {
            lat: 48.1,
            lng: 11.6,
            weight: None,
        }],
        distribution_strategy: Some("capability".into()),
        max_latency_ms: Some(20.0),
        ..RawEdgeRequest::default()
    };
    let r = EdgeRequest::validate(&raw).expect("valid");
    assert_eq!(r.replicas, 3);
    assert_eq!(r.strategy, DistributionStrategy::CapabilityBased);
    assert!(r.required_capabilities.contains(&Capability::MlInference));
    assert!(r.node_types.contains(&NodeType::Inference));
    assert_eq!(r.requests, EdgeResources::new(0.5, 1.0, 10.0, 0.0));
    assert_eq!(r.user_locations[0].weight, 1.0);
}

#[test]
fn every_bad_number_is_a_field_error() {
    let mut affinity = BTreeMap::new();
    affinity.insert("site".to_string(), "a".to_string());
    let raw = RawEdgeRequest {
        cpu: Some(f64::NAN),
        memory_gb: Some(-1.0),
        storage_gb: Some(f64::INFINITY),
        network_mbps: Some(-0.5),
        required_capabilities: vec!["teleportation".into()],
        preferred_capabilities: vec!["nope".into()],
        max_latency_ms: Some(0.0),
        node_types: vec!["mainframe".into()],
        anti_affinity: affinity.clone(),
        affinity,
        replicas: Some(0),
        user_locations: vec![RawUserLocation {
            lat: 91.0,
            lng: f64::NEG_INFINITY,
            weight: Some(f64::NAN),
        }],
        distribution_strategy: Some("random".into()),
        ..RawEdgeRequest::default()
    };
    let errs = EdgeRequest::validate(&raw).expect_err("invalid");
    assert_eq!(
        fields(&errs),
        [
            "edge.requests.cpu",
            "edge.requests.memory_gb",
            "edge.requests.storage_gb",
            "edge.requests.network_mbps",
            "edge.constraints.required_capabilities[0]",
            "edge.constraints.max_latency_ms",
            "edge.constraints.node_types[0]",
            "edge.constraints.anti_affinity.site",
            "edge.preferred_capabilities[0]",
            "edge.replicas",
            "edge.user_locations[0].lat",
            "edge.user_locations[0].lng",
            "edge.user_locations[0].weight",
            "edge.distribution_strategy",
        ]
    );
    assert!(errs[0].message.contains("NaN"), "{}", errs[0]);
    let missing = EdgeRequest::validate(&RawEdgeRequest::default()).expect_err("cpu required");
    assert_eq!(
        fields(&missing),
        ["edge.requests.cpu", "edge.requests.memory_gb"]
    );
}

#[test]
fn scaling_policy_rules() {
    assert!(ScalingPolicy::default().validate().is_empty());
    let ok = ScalingPolicy {
        enabled: true,
        min_replicas: 0,
        max_replicas: 1,
        cpu_threshold: 1.0,
        memory_threshold: 0.01,
        scale_up_cooldown: 0.0,
        scale_down_cooldown: 600.0,
    };
    assert!(ok.validate().is_empty());
    let bad = ScalingPolicy {
        enabled: true,
        min_replicas: 5,
        max_replicas: 2,
        cpu_threshold: 0.0,
        memory_threshold: f64::NAN,
        scale_up_cooldown: -1.0,
        scale_down_cooldown: f64::INFINITY,
    };
    assert_eq!(
        fields(&bad.validate()),
        [
            "edge.scaling_policy.min_replicas",
            "edge.scaling_policy.cpu_threshold",
            "edge.scaling_policy.memory_threshold",
            "edge.scaling_policy.scale_up_cooldown",
            "edge.scaling_policy.scale_down_cooldown",
        ]
    );
    let neg = ScalingPolicy {
        min_replicas: -1,
        max_replicas: 0,
        cpu_threshold: 1.5,
        ..ScalingPolicy::default()
    };
    assert_eq!(
        fields(&neg.validate()),
        [
            "edge.scaling_policy.min_replicas",
            "edge.scaling_policy.max_replicas",
            "edge.scaling_policy.cpu_threshold",
        ]
    );
}

#[test]
fn node_validation_and_duplicates() {
    let good = EdgeNode::new(
        "a",
        NodeType::Gateway,
        1.0,
        2.0,
        EdgeResources::new(1.0, 1.0, 1.0, 1.0),
    );
    let mut bad = good.clone();
    bad.lat = f64::NAN;
    bad.free.cpu = -1.0;
    bad.free.memory_gb = 5.0; // above its limit 1.0
    bad.hourly_cost = Some(f64::INFINITY);
    let errs = validate_nodes(&[good.clone(), bad]);
    assert_eq!(
        fields(&errs),
        [
            "edge_nodes[1].location.lat",
            "edge_nodes[1].free.cpu",
            "edge_nodes[1].free.memory_gb",
            "edge_nodes[1].hourly_cost",
            "edge_nodes[1].id",
        ]
    );
    assert!(validate_nodes(&[good]).is_empty());
}

#[test]
fn batch_options_validation() {
    assert!(BatchOptions::default().validate().is_empty());
    let bad = BatchOptions {
        ms_per_usd_hour: -1.0,
        unplaced_penalty: 0.0,
        max_iterations: 0,
        target_gap: f64::NAN,
    };
    assert_eq!(
        fields(&bad.validate()),
        [
            "edge.batch.ms_per_usd_hour",
            "edge.batch.unplaced_penalty",
            "edge.batch.target_gap",
        ]
    );
}

#[test]
fn strategy_names_parse() {
    for s in DistributionStrategy::ALL {
        assert_eq!(DistributionStrategy::parse(s.as_str()), Some(s));
    }
    assert_eq!(
        DistributionStrategy::parse("Latency-Aware"),
        Some(DistributionStrategy::LatencyAware)
    );
    assert_eq!(
        DistributionStrategy::parse("affinity"),
        Some(DistributionStrategy::AffinityBased)
    );
    assert_eq!(DistributionStrategy::parse("random"), None);
}
