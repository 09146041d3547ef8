//! Edge sites end to end: a cluster and a node, a workload placed on the node through the
//! capacity ledger, and a second workspace sharing the same store that cannot take capacity the
//! first one holds, neither at plan time nor by racing an apply.

use crate::harness::Workspace;

const SITE: &str = r#"
provider "hybrid" {}

resource "hybrid_edge_cluster" "berlin" {
  name              = "berlin-factory"
  geographic_region = "eu-central"
  location {
    lat = 52.52
    lng = 13.40
  }
}

resource "hybrid_edge_node" "n1" {
  cluster_id   = hybrid_edge_cluster.berlin.id
  name         = "n1"
  node_type    = "compute"
  capabilities = ["real_time_processing", "data_caching"]
  hourly_cost  = 0.02
  hardware_specs {
    cpu_cores  = 8
    memory_gb  = 32
    storage_gb = 500
  }
  resource_limits {
    cpu       = 4
    memory_gb = 16
  }
}

resource "hybrid_workload" "sensor_ingest" {
  name                = "sensor-ingest"
  cpu                 = 3
  memory_gb           = 4
  preferred_providers = ["edge"]
  edge_cluster_ids    = [hybrid_edge_cluster.berlin.id]
  user_locations      = [{ lat = 52.5, lng = 13.4 }]
  depends_on          = [hybrid_edge_node.n1]
}
"#;

fn edge_workload(name: &str, cpu: u32) -> String {
    format!(
        "provider \"hybrid\" {{}}\n\nresource \"hybrid_workload\" \"w\" {{\n  name = \"{name}\"\n  cpu = {cpu}\n  memory_gb = 1\n  preferred_providers = [\"edge\"]\n}}\n"
    )
}

#[test]
fn workloads_are_placed_on_edge_nodes_and_capacity_is_never_double_booked() {
    let site = Workspace::new("edge-site");
    site.config(SITE);
    site.apply();
    let node = site.resource("hybrid_edge_node.n1");
    let ingest = site.resource("hybrid_workload.sensor_ingest");
    assert_eq!(ingest["placement"]["provider"], "edge", "{ingest:#}");
    assert_eq!(ingest["placement"]["node"], node["id"]);
    assert_eq!(ingest["placement"]["region"], "eu-central");
    assert_eq!(ingest["placement"]["estimated_cost_hourly"], 0.02);
    assert_eq!(node["status"], "ready");
    site.expect_empty_plan();

    // A second workspace on the same store: 1 cpu is left, 2 do not fit at plan time.
    let state = site.state_db.to_string_lossy().to_string();
    let other = Workspace::new("edge-other").env("HYBRID_STATE_PATH", &state);
    other.config(&edge_workload("analytics", 2));
    other.expect_error(
        &["plan", "-input=false"],
        &[
            "No placement satisfies the requirements",
            "1 cpu",
            "held by wl-",
        ],
    );

    // Two workspaces plan for the last cpu; the first to apply gets it. The other is refused
    // when its apply re-checks the placement (never silently moved elsewhere), with the
    // holders named, and creates nothing.
    let first = Workspace::new("edge-first").env("HYBRID_STATE_PATH", &state);
    first.config(&edge_workload("first", 1));
    let second = Workspace::new("edge-second").env("HYBRID_STATE_PATH", &state);
    second.config(&edge_workload("second", 1));
    second.run(&["plan", "-input=false", "-out=second.tfplan"]);
    first.apply();
    second.expect_error(
        &["apply", "-input=false", "second.tfplan"],
        &[
            "Edge capacity no longer available",
            "held by wl-",
            "not moved elsewhere",
        ],
    );
    let live: Vec<String> = site.sim_instances().into_iter().map(|i| i.name).collect();
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(!live.contains(&"second".to_string()));

    // Releasing capacity makes it available again.
    first.destroy();
    second.apply();
    second.destroy();
    site.destroy();
    assert!(site.sim_instances().is_empty());
}

#[test]
fn invalid_edge_node_specs_get_diagnostics_naming_the_attribute() {
    let ws = Workspace::new("edge-invalid");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "cpu       = 4",
            "cpu       = 12",
            &["resource_limits.cpu", "exceeds the hardware"],
        ),
        (
            "node_type    = \"compute\"",
            "node_type = \"mainframe\"",
            &["node_type", "mainframe"],
        ),
        (
            "capabilities = [\"real_time_processing\", \"data_caching\"]",
            "capabilities = [\"teleportation\"]",
            &["capabilities", "teleportation"],
        ),
        ("lat = 52.52", "lat = 152.52", &["location.lat"]),
    ];
    for (from, to, patterns) in cases {
        assert!(
            SITE.contains(from),
            "test case must change the config: {from:?}"
        );
        ws.config(&SITE.replace(from, to));
        ws.expect_error(&["plan", "-input=false"], patterns);
    }
    ws.config(&SITE.replace(
        "resource_limits {",
        "resource_limits {\n    storage_gb = -1",
    ));
    ws.expect_error(&["plan", "-input=false"], &["resource_limits.storage_gb"]);
}

const SPREAD_SITE: &str = r#"
provider "hybrid" {}

resource "hybrid_edge_cluster" "munich" {
  name              = "munich-plant"
  geographic_region = "eu-munich"
  location {
    lat = 48.14
    lng = 11.58
  }
}

resource "hybrid_edge_node" "node" {
  for_each     = toset(["a", "b", "c"])
  cluster_id   = hybrid_edge_cluster.munich.id
  name         = each.key
  node_type    = "inference"
  capabilities = ["ml_inference"]
  hourly_cost  = 0.01
  hardware_specs {
    cpu_cores = 4
    memory_gb = 8
  }
  resource_limits {
    cpu = 2
  }
}

resource "hybrid_workload" "vision" {
  name             = "vision"
  cpu              = 1
  memory_gb        = 1
  replicas         = 4
  edge_cluster_ids = [hybrid_edge_cluster.munich.id]
  edge {
    distribution_strategy = "round_robin"
    required_capabilities = ["ml_inference"]
    node_types            = ["inference"]
    scaling_policy {
      min_replicas = 2
      max_replicas = 6
      cpu_threshold = 0.7
    }
  }
  depends_on = [hybrid_edge_node.node]
}
"#;

#[test]
fn an_edge_block_spreads_replicas_over_nodes_by_its_strategy() {
    let site = Workspace::new("edge-spread");
    site.config(SPREAD_SITE);
    site.apply();
    let vision = site.resource("hybrid_workload.vision");
    let assignments = vision["edge_assignments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total: f64 = assignments
        .iter()
        .filter_map(|a| a["replicas"].as_f64())
        .sum();
    assert_eq!(total, 4.0, "{vision:#}");
    assert_eq!(
        assignments.len(),
        3,
        "round robin uses every node: {assignments:?}"
    );
    assert!(assignments
        .iter()
        .all(|a| a["replicas"].as_f64().unwrap_or(9.0) <= 2.0));
    assert_eq!(vision["placement"]["provider"], "edge");
    assert_eq!(vision["placement"]["estimated_cost_hourly"], 0.04);
    assert!(vision["placement"]["reason"]
        .as_str()
        .unwrap_or("")
        .starts_with("round_robin: 4 replica(s) on 3 edge node(s)"));
    site.expect_empty_plan();

    // 2 cpu are left in the cluster: 3 more replicas do not fit, and the error says so.
    let state = site.state_db.to_string_lossy().to_string();
    let other = Workspace::new("edge-spread-other").env("HYBRID_STATE_PATH", &state);
    let cluster_id = site.resource("hybrid_edge_cluster.munich")["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    other.config(&format!(
        "provider \"hybrid\" {{}}\n\nresource \"hybrid_workload\" \"more\" {{\n  name = \"more\"\n  cpu = 1\n  memory_gb = 1\n  replicas = 3\n  edge_cluster_ids = [\"{cluster_id}\"]\n  edge {{\n    distribution_strategy = \"least_loaded\"\n  }}\n}}\n"
    ));
    other.expect_error(
        &["plan", "-input=false"],
        &["Not all replicas fit on the edge nodes", "only 2 of 3"],
    );

    site.destroy();
    assert!(site.sim_instances().is_empty());
}

#[test]
fn edge_block_input_is_validated_with_attribute_paths() {
    let ws = Workspace::new("edge-block-invalid");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "distribution_strategy = \"round_robin\"",
            "distribution_strategy = \"random\"",
            &["edge.distribution_strategy", "random"],
        ),
        (
            "min_replicas = 2",
            "min_replicas = 9",
            &["edge.scaling_policy"],
        ),
        (
            "cpu_threshold = 0.7",
            "cpu_threshold = 1.7",
            &["edge.scaling_policy.cpu_threshold"],
        ),
        (
            "required_capabilities = [\"ml_inference\"]",
            "required_capabilities = [\"telepathy\"]",
            &["edge.required_capabilities", "telepathy"],
        ),
    ];
    for (from, to, patterns) in cases {
        assert!(
            SPREAD_SITE.contains(from),
            "test case must change the config: {from:?}"
        );
        ws.config(&SPREAD_SITE.replace(from, to));
        ws.expect_error(&["plan", "-input=false"], patterns);
    }
}

/// A site whose cluster exists but whose nodes do not yet (an apply stopped in between): the
/// workload's placement waits for the nodes created in the same run instead of failing the plan.
#[test]
fn a_workload_on_a_cluster_whose_nodes_are_still_being_created_is_placed_at_apply() {
    let ws = Workspace::new("edge-nodes-later");
    ws.config(SITE);
    ws.run(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-target=hybrid_edge_cluster.berlin",
    ]);
    let plan = ws.plan();
    assert!(plan.contains("Placement decided at apply"), "{plan}");
    ws.apply();
    let node = ws.resource("hybrid_edge_node.n1");
    let ingest = ws.resource("hybrid_workload.sensor_ingest");
    assert_eq!(ingest["placement"]["node"], node["id"], "{ingest:#}");
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}
