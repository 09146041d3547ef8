//! `hybrid_workload` end to end: plan shows the placement, apply provisions it on the sim cloud,
//! re-plan is empty, updates and replacements do what the plan said, import round-trips,
//! destroy leaves the sim cloud empty, and bad input gets a diagnostic naming the attribute.

use serde_json::Value as Json;

use crate::harness::{repo_root, Workspace};

const API: &str = r#"
provider "hybrid" {
  default_tags = { owner = "acceptance" }
}

resource "hybrid_workload" "api" {
  name                   = "checkout-api"
  workload_type          = "api"
  cpu                    = 2
  memory_gb              = 8
  storage_gb             = 20
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 0.7 },
    { lat = 48.86, lng = 2.35 },
  ]
  tags = { team = "payments" }
}
"#;

fn placement(values: &Json) -> &Json {
    &values["placement"]
}

#[test]
fn quickstart_example_inits_from_a_mirror_and_applies() {
    let ws = Workspace::with_mirror("quickstart", "0.1.0");
    let example =
        std::fs::read_to_string(repo_root().join("examples/terraform/quickstart/main.tf"))
            .expect("quickstart example");
    ws.write("main.tf", &example);
    ws.init();
    let plan = ws.plan();
    assert!(
        plan.contains("hybrid_workload.checkout_api will be created"),
        "{plan}"
    );
    ws.apply();
    let api = ws.resource("hybrid_workload.checkout_api");
    let p = placement(&api);
    assert!(p["region"].is_string(), "{api:#}");
    assert!(
        p["estimated_cost_hourly"]
            .as_f64()
            .is_some_and(|c| c > 0.0 && c <= 0.5),
        "{p:#}"
    );
    assert!(
        p["estimated_latency_ms"]
            .as_f64()
            .is_some_and(|ms| ms <= 60.0),
        "{p:#}"
    );
    assert_eq!(ws.sim_instances().len(), 1);
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn workload_lifecycle_plan_apply_update_replace_import_destroy() {
    let ws = Workspace::new("lifecycle");
    ws.config(API);

    // The placement is known in the plan, before anything exists.
    let plan = ws.plan_json();
    let change = plan["resource_changes"]
        .as_array()
        .and_then(|rcs| rcs.iter().find(|rc| rc["address"] == "hybrid_workload.api"))
        .expect("planned change")
        .clone();
    assert_eq!(change["change"]["actions"], serde_json::json!(["create"]));
    let planned = &change["change"]["after"];
    assert!(planned["placement"]["provider"].is_string(), "{planned:#}");
    assert!(planned["placement"]["reason"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert!(planned["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("wl-")));
    assert_eq!(change["change"]["after_unknown"]["instance_id"], true);
    assert_ne!(
        change["change"]["after_unknown"]["placement"], true,
        "placement is known at plan"
    );

    ws.apply();
    let applied = ws.resource("hybrid_workload.api");
    assert_eq!(
        placement(&applied),
        &planned["placement"],
        "apply used the plan's placement"
    );
    assert_eq!(applied["status"], "running");
    assert!(applied["instance_id"]
        .as_str()
        .is_some_and(|i| i.starts_with("sim-")));
    assert_eq!(applied["tags_all"]["owner"], "acceptance");
    assert_eq!(applied["tags_all"]["team"], "payments");
    let instances = ws.sim_instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(
        instances[0].tags["hybrid:workload-id"],
        applied["id"].as_str().unwrap_or_default()
    );
    assert_eq!(
        instances[0].region,
        placement(&applied)["region"].as_str().unwrap_or_default()
    );
    ws.expect_empty_plan();

    // Tags change in place: same instance.
    ws.config(&API.replace("team = \"payments\"", "team = \"checkout\""));
    let plan = ws.expect_changes();
    assert!(plan.contains("updated in-place"), "{plan}");
    ws.apply();
    let updated = ws.resource("hybrid_workload.api");
    assert_eq!(updated["instance_id"], applied["instance_id"]);
    assert_eq!(ws.sim_instances()[0].tags["team"], "checkout");
    ws.expect_empty_plan();

    // Import round-trips to the same state.
    let before = ws.resource("hybrid_workload.api");
    ws.state_rm("hybrid_workload.api");
    ws.import(
        "hybrid_workload.api",
        before["id"].as_str().unwrap_or_default(),
    );
    let imported = ws.resource("hybrid_workload.api");
    assert_eq!(imported, before, "import reproduces the applied state");
    ws.expect_empty_plan();

    // A requirement that moves the workload out of the EU is a replacement.
    let us = API
        .replace(
            "compliance             = [\"gdpr\"]",
            "compliance = [\"fedramp\"]",
        )
        .replace(
            "data_residency_regions = [\"EU\"]",
            "data_residency_regions = [\"US\"]",
        );
    ws.config(&us);
    let plan = ws.expect_changes();
    assert!(plan.contains("must be replaced"), "{plan}");
    assert!(plan.contains("forces replacement"), "{plan}");
    ws.apply();
    let moved = ws.resource("hybrid_workload.api");
    assert_ne!(moved["instance_id"], applied["instance_id"]);
    assert!(
        moved["placement"]["region"]
            .as_str()
            .is_some_and(|r| r.contains("gov")),
        "{moved:#}"
    );
    let live = ws.sim_instances();
    assert_eq!(live.len(), 1, "the old instance is gone: {live:?}");
    ws.expect_empty_plan();

    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn alternatives_count_bounds_what_plan_and_state_carry() {
    let ws = Workspace::new("alternatives");
    ws.config(&API.replace(
        "storage_gb             = 20",
        "storage_gb = 20\n  alternatives_count = 0",
    ));
    ws.apply();
    let state = ws.resource("hybrid_workload.api");
    assert_eq!(state["alternatives"], serde_json::json!([]), "{state:#}");
    assert!(state["placement"]["provider"].is_string());
    ws.expect_empty_plan();
    ws.destroy();
}

#[test]
fn an_instance_deleted_outside_terraform_is_planned_for_re_creation() {
    let ws = Workspace::new("drift");
    ws.config(API);
    ws.apply();
    let instance_id = ws.resource("hybrid_workload.api")["instance_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let conn = rusqlite::Connection::open(&ws.state_db).expect("open sim db");
    conn.execute(
        "UPDATE sim_instances SET terminated = 1, status = 'terminated' WHERE instance_id = ?1",
        [&instance_id],
    )
    .expect("delete behind terraform's back");
    let plan = ws.expect_changes();
    assert!(plan.contains("will be created"), "{plan}");
    ws.apply();
    assert_eq!(ws.sim_instances().len(), 1);
    ws.destroy();
}

#[test]
fn bad_input_gets_a_diagnostic_that_names_the_attribute() {
    let ws = Workspace::new("bad-input");
    let cases: &[(&str, &str, &[&str])] = &[
        ("cpu                    = 2", "cpu = -1", &["Invalid cpu", "cpu"]),
        ("compliance             = [\"gdpr\"]", "compliance = [\"gdpr\", \"sox\"]", &["compliance", "sox"]),
        ("data_residency_regions = [\"EU\"]", "data_residency_regions = [\"mars-north-1\"]", &["data_residency_regions", "mars-north-1"]),
        ("workload_type          = \"api\"", "workload_type = \"api\"\n  strategy = \"custom\"\n  weights = { cost = 0.5, performance = 0.5, latency = 0.5, resilience = 0.5 }", &["weights", "sum"]),
        ("user_locations = [", "user_locations = [\n    { lat = 123, lng = 0 },", &["user_locations[0].lat"]),
        ("tags = { team = \"payments\" }", "tags = { team = \"payments\" }\n  timeouts {\n    create = \"soon\"\n  }", &["timeouts.create"]),
        ("storage_gb             = 20", "storage_gb = 20\n  alternatives_count = 11", &["alternatives_count", "0 to 10"]),
        ("cpu                    = 2", "cpu = 1e400", &["cpu"]),
        ("memory_gb              = 8", "memory_gb = 8\n  replicas = 1e20", &["replicas"]),
        ("memory_gb              = 8", "memory_gb = 8\n  gpu_count = -1", &["gpu_count"]),
        ("memory_gb              = 8", "memory_gb = 8\n  strategy = \"custom\"", &["weights"]),
        ("memory_gb              = 8", "memory_gb = 8\n  preferred_providers = [\"aws\", \"sim\"]", &["preferred_providers[1]"]),
        ("{ lat = 48.86, lng = 2.35 },", "{ lat = 48.86, lng = 2.35, weight = 0 },", &["user_locations[1].weight"]),
    ];
    for (from, to, patterns) in cases {
        assert!(
            API.contains(from),
            "test case must change the config: {from:?}"
        );
        ws.config(&API.replace(from, to));
        ws.expect_error(&["plan", "-input=false"], patterns);
    }
    // Impossible constraints: says how many candidates failed on what.
    ws.config(&API.replace(
        "storage_gb             = 20",
        "storage_gb = 20\n  gpu_count = 8\n  cost_budget_hourly = 0.01",
    ));
    ws.expect_error(
        &["plan", "-input=false"],
        &["No placement satisfies the requirements"],
    );
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn a_failed_create_leaves_no_state_and_a_retry_converges() {
    let mut ws = Workspace::new("faults");
    ws.config(API);
    ws.set_env("HYBRID_SIM_FAULTS", "create:reject=1");
    ws.expect_error(
        &["apply", "-input=false", "-auto-approve"],
        &["Could not create the workload", "injected fault"],
    );
    let state = ws.show_json();
    assert!(
        state["values"].is_null() || state["values"]["root_module"]["resources"].is_null(),
        "{state:#}"
    );
    assert!(ws.sim_instances().is_empty());

    // Throttling and lost responses half the time: apply converges on exactly one instance.
    ws.set_env(
        "HYBRID_SIM_FAULTS",
        "create:throttle=0.5,create:lost_response=0.5",
    );
    ws.apply();
    assert_eq!(ws.sim_instances().len(), 1);
    ws.remove_env("HYBRID_SIM_FAULTS");
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn placement_is_known_at_plan_even_when_other_attributes_are_not() {
    let ws = Workspace::new("unknowns");
    ws.config(&format!(
        "{API}\nresource \"hybrid_workload\" \"worker\" {{\n  name = \"${{hybrid_workload.api.instance_id}}-worker\"\n  cpu = 1\n  memory_gb = 2\n}}\n"
    ));
    let plan = ws.plan_json();
    let worker = plan["resource_changes"]
        .as_array()
        .and_then(|rcs| {
            rcs.iter()
                .find(|rc| rc["address"] == "hybrid_workload.worker")
        })
        .expect("worker change")
        .clone();
    assert_eq!(worker["change"]["after_unknown"]["name"], true);
    assert_eq!(worker["change"]["after_unknown"]["id"], true);
    assert!(
        worker["change"]["after"]["placement"]["provider"].is_string(),
        "{worker:#}"
    );
    ws.apply();
    ws.expect_empty_plan();
    assert_eq!(ws.sim_instances().len(), 2);
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}
