//! `hybrid_migration_plan` end to end on the sim cloud with the real terraform binary: each
//! strategy's success path, a failing gate that rolls back by itself, a provider killed
//! mid-migration (and terraform asking it to stop) followed by an apply that converges, a rolling
//! batch past its deadline, a schedule under an injected clock, the example, and invalid plans
//! rejected with diagnostics that name the attribute.
//!
//! Waits run under `HYBRID_SIM_TIME_SCALE` (a canary minute is a fraction of a second) and
//! health failures are injected with `HYBRID_SIM_HEALTH` (see `clouds::sim::migration`).

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::harness::{combined, kill_provider, Workspace};

/// A workload that never moves by itself (its threshold is out of reach), so migration plans
/// are how it moves.
fn workload(replicas: u32) -> String {
    format!(
        r#"
provider "hybrid" {{}}

resource "hybrid_workload" "api" {{
  name                      = "orders-api"
  cpu                       = 2
  memory_gb                 = 4
  storage_gb                = 10
  replicas                  = {replicas}
  preferred_providers       = ["aws", "azure", "gcp"]
  replace_threshold_percent = 1000
  tags                      = {{ team = "orders" }}
}}
"#
    )
}

/// An explicit target on another provider than where the workload runs now.
fn other_target(ws: &Workspace) -> (String, &'static str) {
    let api = ws.resource("hybrid_workload.api");
    let provider = api["placement"]["provider"].as_str().unwrap_or_default();
    if provider == "aws" {
        (
            "target {\n    provider = \"gcp\"\n    region = \"europe-west1\"\n    instance_type = \"e2-standard-2\"\n  }".into(),
            "europe-west1",
        )
    } else {
        (
            "target {\n    provider = \"aws\"\n    region = \"eu-west-1\"\n    instance_type = \"m5.large\"\n  }".into(),
            "eu-west-1",
        )
    }
}

fn migration(target: &str, strategy: &str, block: &str) -> String {
    format!(
        r#"
resource "hybrid_migration_plan" "move" {{
  workload_id = hybrid_workload.api.id
  strategy    = "{strategy}"
  {target}
  {block}
  health_check {{
    type               = "http"
    path               = "/healthz"
    port               = 8080
    interval_seconds   = 10
    failure_threshold  = 2
    recovery_threshold = 2
  }}
}}
"#
    )
}

const CANARY: &str = r#"canary {
    steps = [
      { traffic_percentage = 25, duration_minutes = 1 },
      { traffic_percentage = 50, duration_minutes = 1 },
      { traffic_percentage = 100, duration_minutes = 0 },
    ]
    check_interval_seconds   = 20
    scale_down_delay_seconds = 30
  }"#;

fn applied_workload(name: &str, replicas: u32) -> Workspace {
    let ws = Workspace::new(name).env("HYBRID_SIM_TIME_SCALE", "0.01");
    ws.config(&workload(replicas));
    ws.apply();
    ws
}

fn sim(ws: &Workspace) -> clouds::sim::SimCloud {
    clouds::sim::SimCloud::open(&ws.state_db, clouds::faults::FaultPlan::none())
        .expect("open sim state")
}

fn only_instance_region(ws: &Workspace) -> String {
    let instances = ws.sim_instances();
    assert_eq!(instances.len(), 1, "{instances:#?}");
    instances[0].region.clone()
}

#[test]
fn migration_canary_moves_the_workload_and_the_workload_follows_without_churn() {
    let ws = applied_workload("mig-canary", 1);
    let source = ws.resource("hybrid_workload.api");
    let (target, target_region) = other_target(&ws);
    let hcl = format!("{}{}", workload(1), migration(&target, "canary", CANARY));
    ws.config(&hcl);

    // The reviewer sees the whole migration in the plan.
    let plan = ws.plan_json();
    let after = plan["resource_changes"]
        .as_array()
        .and_then(|rcs| {
            rcs.iter()
                .find(|rc| rc["address"] == "hybrid_migration_plan.move")
        })
        .map(|rc| rc["change"]["after"].clone())
        .expect("planned migration");
    assert_eq!(after["estimated_downtime_seconds"], 0, "{after:#}");
    assert_eq!(after["data_transfer_gb"], 14, "{after:#}");
    assert_eq!(after["target_placement"]["region"], target_region);
    assert_eq!(after["source_placement"], source["placement"]);
    assert!(after["estimated_transfer_seconds"]
        .as_f64()
        .is_some_and(|s| s > 0.0));
    assert!(after["cost_hourly_delta"].is_number(), "{after:#}");
    let actions: Vec<&str> = after["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        actions,
        [
            "create_target",
            "shift_traffic",
            "shift_traffic",
            "shift_traffic",
            "remove_source"
        ]
    );
    assert!(after["migration_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("mig-")));

    let started = Instant::now();
    ws.apply();
    eprintln!("canary apply took {:?}", started.elapsed());
    let moved = ws.resource("hybrid_migration_plan.move");
    assert_eq!(moved["status"], "completed", "{moved:#}");
    assert_eq!(moved["traffic_percentage"], 100);
    assert_eq!(moved["current_step"], 5);
    assert_eq!(only_instance_region(&ws), target_region);
    let instance = &ws.sim_instances()[0];
    assert_eq!(
        instance.tags["team"], "orders",
        "user tags move with the workload"
    );
    assert_eq!(
        sim(&ws).traffic(&instance.workload_id).expect("traffic")[&instance.instance_id],
        100
    );

    // The workload reads the new side as its own: no re-create, no placement change.
    ws.expect_empty_plan();
    ws.run(&["refresh", "-input=false"]);
    let api = ws.resource("hybrid_workload.api");
    assert_eq!(api["placement"]["region"], target_region);
    assert_eq!(api["instance_id"], instance.instance_id.as_str());

    // Destroying the completed plan does not undo the migration.
    ws.config(&workload(1));
    ws.apply();
    assert_eq!(only_instance_region(&ws), target_region);
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn migration_blue_green_waits_for_promotion_then_switches() {
    let ws = applied_workload("mig-bluegreen", 1);
    let (target, target_region) = other_target(&ws);
    let block = |auto: bool| {
        format!("blue_green {{\n    validation_checks = [\"smoke\", \"db-connect\"]\n    auto_promote = {auto}\n    promote_after_seconds = 10\n  }}")
    };
    ws.config(&format!(
        "{}{}",
        workload(1),
        migration(&target, "blue_green", &block(false))
    ));
    ws.apply();
    let waiting = ws.resource("hybrid_migration_plan.move");
    assert_eq!(waiting["status"], "awaiting_promotion", "{waiting:#}");
    assert_eq!(waiting["traffic_percentage"], 0);
    assert_eq!(waiting["estimated_downtime_seconds"], 0);
    assert_eq!(ws.sim_instances().len(), 2, "green runs beside blue");
    ws.expect_empty_plan();

    ws.config(&format!(
        "{}{}",
        workload(1),
        migration(&target, "blue_green", &block(true))
    ));
    let plan = ws.expect_changes();
    assert!(plan.contains("updated in-place"), "{plan}");
    ws.apply();
    let done = ws.resource("hybrid_migration_plan.move");
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(only_instance_region(&ws), target_region);
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn migration_rolling_moves_in_batches_with_derived_downtime() {
    let ws = applied_workload("mig-rolling", 4);
    let (target, target_region) = other_target(&ws);
    let block = "rolling {\n    max_unavailable = \"25%\"\n    max_surge = \"1\"\n    progress_deadline_seconds = 300\n  }";
    ws.config(&format!(
        "{}{}",
        workload(4),
        migration(&target, "rolling", block)
    ));
    ws.apply();
    let done = ws.resource("hybrid_migration_plan.move");
    assert_eq!(done["status"], "completed", "{done:#}");
    // 4 replicas × 4 GB of memory over a 1 Gbit/s cross-provider link: 128 s of cut-over.
    assert_eq!(done["estimated_downtime_seconds"], 128, "{done:#}");
    let shifts: Vec<i64> = done["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|x| x["action"] == "shift_traffic")
                .filter_map(|x| x["traffic_percentage"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(shifts, [50, 100]);
    assert_eq!(only_instance_region(&ws), target_region);
    ws.expect_empty_plan();
    ws.destroy();
}

#[test]
fn migration_failing_gate_rolls_back_by_itself() {
    let mut ws = applied_workload("mig-rollback", 1);
    let source_region = only_instance_region(&ws);
    let (target, _) = other_target(&ws);
    ws.config(&format!(
        "{}{}",
        workload(1),
        migration(&target, "canary", CANARY)
    ));
    ws.set_env("HYBRID_SIM_HEALTH", "fail_step=2");
    ws.expect_error(
        &["apply", "-input=false", "-auto-approve"],
        &[
            "Migration rolled back",
            "step 2 (shift_traffic, 50% of traffic on the new side)",
            "HTTP GET :8080/healthz failed",
        ],
    );
    let state = ws.resource("hybrid_migration_plan.move");
    assert_eq!(state["status"], "rolled_back", "{state:#}");
    assert_eq!(state["traffic_percentage"], 0);
    assert!(state["target_instance_id"].is_null());
    assert_eq!(
        only_instance_region(&ws),
        source_region,
        "the new side is gone"
    );
    let instance = &ws.sim_instances()[0];
    assert_eq!(
        sim(&ws).traffic(&instance.workload_id).expect("traffic")[&instance.instance_id],
        100,
        "all traffic back on the old side"
    );
    // The workload never noticed.
    ws.remove_env("HYBRID_SIM_HEALTH");
    let plan = ws.expect_changes();
    assert!(
        plan.contains("hybrid_migration_plan.move is tainted")
            && !plan.contains("hybrid_workload.api will"),
        "only the tainted migration is retried:\n{plan}"
    );
    // Cause fixed: the retry runs through.
    ws.apply();
    assert_eq!(
        ws.resource("hybrid_migration_plan.move")["status"],
        "completed"
    );
    ws.expect_empty_plan();
    ws.destroy();
}

/// The provider plugin process terraform started.
fn plugin_pid(terraform_pid: u32) -> Option<u32> {
    crate::harness::provider_descendants(terraform_pid)
        .into_iter()
        .next()
}

#[test]
fn migration_killed_mid_way_is_resumed_by_the_next_apply() {
    let ws = Workspace::new("mig-kill").env("HYBRID_SIM_TIME_SCALE", "0.05");
    ws.config(&workload(1));
    ws.apply();
    let (target, target_region) = other_target(&ws);
    ws.config(&format!(
        "{}{}",
        workload(1),
        migration(&target, "canary", CANARY)
    ));

    let child = ws
        .command(&["apply", "-no-color", "-input=false", "-auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start terraform apply");
    // Wait until step 1 holds 25% of traffic on the new side, then kill the provider.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed = false;
    while Instant::now() < deadline {
        let journal = sim(&ws).migrations().unwrap_or_default();
        if journal
            .iter()
            .any(|r| r.next_step == 1 && r.traffic_percentage == 25 && r.status == "in_progress")
        {
            let pid = plugin_pid(child.id()).expect("plugin process");
            assert!(kill_provider(pid), "kill -KILL {pid} failed");
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(killed, "the migration never reached step 1");
    let out = child.wait_with_output().expect("terraform exits");
    assert!(!out.status.success(), "{}", combined(&out));

    // Two live copies, and the journal knows both.
    let journal = sim(&ws).migrations().expect("journal");
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].status, "in_progress");
    let live: Vec<String> = ws
        .sim_instances()
        .into_iter()
        .map(|i| i.instance_id)
        .collect();
    assert_eq!(live.len(), 2);
    assert!(live.contains(&journal[0].source_instance_id));
    assert!(journal[0]
        .target_instance_id
        .as_ref()
        .is_some_and(|t| live.contains(t)));

    // The next plan says it resumes; the next apply converges.
    let plan = ws.plan();
    assert!(plan.contains("Migration already under way"), "{plan}");
    assert!(
        plan.contains("Unfinished migration"),
        "the workload's refresh says so too:\n{plan}"
    );
    ws.apply();
    let done = ws.resource("hybrid_migration_plan.move");
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(
        done["target_instance_id"],
        journal[0]
            .target_instance_id
            .clone()
            .unwrap_or_default()
            .as_str()
    );
    assert_eq!(only_instance_region(&ws), target_region);
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn migration_scheduled_in_the_future_runs_on_the_first_apply_after_its_time() {
    let mut ws = applied_workload("mig-schedule", 1);
    let source_region = only_instance_region(&ws);
    let (target, target_region) = other_target(&ws);
    let hcl = format!("{}{}", workload(1), migration(&target, "canary", CANARY)).replace(
        "strategy    = \"canary\"",
        "strategy    = \"canary\"\n  scheduled_time = \"2030-01-01T02:00:00Z\"",
    );
    ws.config(&hcl);
    ws.set_env("HYBRID_SIM_CLOCK", "2030-01-01T01:00:00Z");
    ws.apply();
    let scheduled = ws.resource("hybrid_migration_plan.move");
    assert_eq!(scheduled["status"], "scheduled", "{scheduled:#}");
    assert_eq!(only_instance_region(&ws), source_region, "nothing ran");
    ws.expect_empty_plan();

    ws.set_env("HYBRID_SIM_CLOCK", "2030-01-01T02:00:01Z");
    let plan = ws.expect_changes();
    assert!(plan.contains("updated in-place"), "{plan}");
    ws.apply();
    assert_eq!(
        ws.resource("hybrid_migration_plan.move")["status"],
        "completed"
    );
    assert_eq!(only_instance_region(&ws), target_region);
    ws.expect_empty_plan();
    ws.destroy();
}

#[test]
fn migration_invalid_plans_are_rejected_with_attribute_paths() {
    let ws = applied_workload("mig-invalid", 1);
    let api: Json = ws.resource("hybrid_workload.api");
    let p = &api["placement"];
    let same = format!(
        "target {{\n    provider = \"{}\"\n    region = \"{}\"\n    instance_type = \"{}\"\n  }}",
        p["provider"].as_str().unwrap_or_default(),
        p["region"].as_str().unwrap_or_default(),
        p["instance_type"].as_str().unwrap_or_default()
    );
    let (target, _) = other_target(&ws);
    let canary = |steps: &str| format!("canary {{\n    steps = [{steps}]\n  }}");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            migration(&target, "canary", &canary("{ traffic_percentage = 50, duration_minutes = 1 }, { traffic_percentage = 25, duration_minutes = 1 }, { traffic_percentage = 100, duration_minutes = 1 }")),
            vec!["canary.steps[1].traffic_percentage", "strictly increase"],
        ),
        (
            migration(&target, "canary", &canary("{ traffic_percentage = 5, duration_minutes = 1 }, { traffic_percentage = 50, duration_minutes = 1 }")),
            vec!["canary.steps[1].traffic_percentage", "100%"],
        ),
        (
            migration(&target, "canary", &canary("{ traffic_percentage = 150, duration_minutes = 1 }")),
            vec!["canary.steps[0].traffic_percentage", "1 to 100"],
        ),
        (
            migration(&target, "canary", &canary("{ traffic_percentage = 100, duration_minutes = -3 }")),
            vec!["canary.steps[0].duration_minutes"],
        ),
        (
            migration(&target, "canary", "rolling {\n    max_surge = \"1\"\n  }"),
            vec!["Invalid rolling", "does not apply to strategy \"canary\""],
        ),
        (
            migration(&target, "rolling", "rolling {\n    max_surge = \"lots\"\n  }"),
            vec!["rolling.max_surge", "25%"],
        ),
        (
            migration(&same, "canary", &canary("{ traffic_percentage = 100, duration_minutes = 1 }")),
            vec!["Source equals target", "already runs on"],
        ),
        (
            migration(&target, "canary", &canary("{ traffic_percentage = 100, duration_minutes = 1 }"))
                .replace("hybrid_workload.api.id", "\"wl-0000000000000000\""),
            vec!["Unknown workload", "wl-0000000000000000", "workload_id"],
        ),
        (
            migration(&target, "canary", &canary("{ traffic_percentage = 100, duration_minutes = 1 }"))
                .replace("strategy    = \"canary\"", "strategy    = \"canary\"\n  scheduled_time = \"tomorrow\""),
            vec!["Invalid scheduled_time", "RFC 3339"],
        ),
        (
            migration(&target, "canary", &canary("{ traffic_percentage = 100, duration_minutes = 1 }"))
                .replace("target {", "target_strategy = \"cheapest\"\n  target {"),
            vec!["Conflicting targets"],
        ),
        (
            migration(
                "target {\n    provider = \"aws\"\n    region = \"eu-west-1\"\n    instance_type = \"t3.nano\"\n  }",
                "canary",
                &canary("{ traffic_percentage = 100, duration_minutes = 1 }"),
            ),
            vec!["Target does not fit the workload", "t3.nano"],
        ),
    ];
    for (migration_hcl, patterns) in cases {
        ws.config(&format!("{}{migration_hcl}", workload(1)));
        ws.expect_error(&["plan", "-input=false"], &patterns);
    }
    assert_eq!(ws.sim_instances().len(), 1, "nothing ran");
    ws.config(&workload(1));
    ws.destroy();
}

#[test]
fn migration_example_applies_in_two_steps() {
    let ws = Workspace::new("mig-example").env("HYBRID_SIM_TIME_SCALE", "0.001");
    let example = std::fs::read_to_string(
        crate::harness::repo_root().join("examples/resources/hybrid_migration_plan/resource.tf"),
    )
    .expect("example");
    // The workload first (a migration needs a running workload), then the migration.
    let (workload_part, _) = example
        .split_once("resource \"hybrid_migration_plan\"")
        .expect("example has a migration");
    ws.config(workload_part);
    ws.apply();
    ws.config(&example);
    let plan = ws.plan();
    assert!(
        plan.contains("hybrid_migration_plan.to_cheapest will be created"),
        "{plan}"
    );
    assert!(!plan.contains("would move back"), "{plan}");
    ws.apply();
    assert_eq!(
        ws.resource("hybrid_migration_plan.to_cheapest")["status"],
        "completed"
    );
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn migration_rolling_batch_past_its_deadline_rolls_back() {
    let mut ws = applied_workload("mig-deadline", 2);
    let source_region = only_instance_region(&ws);
    let (target, _) = other_target(&ws);
    // 10 s of deadline is 0.1 s under the test's time scale; each probe takes 0.3 s.
    let block = "rolling {\n    max_unavailable = \"1\"\n    max_surge = \"0\"\n    progress_deadline_seconds = 10\n  }";
    ws.config(&format!(
        "{}{}",
        workload(2),
        migration(&target, "rolling", block)
    ));
    ws.set_env("HYBRID_SIM_HEALTH", "slow_check_ms=300");
    ws.expect_error(
        &["apply", "-input=false", "-auto-approve"],
        &[
            "Migration rolled back",
            "step 0 (create_target",
            "progress_deadline_seconds = 10",
        ],
    );
    assert_eq!(
        ws.resource("hybrid_migration_plan.move")["status"],
        "rolled_back"
    );
    assert_eq!(only_instance_region(&ws), source_region);
    ws.remove_env("HYBRID_SIM_HEALTH");
    ws.config(&workload(2));
    ws.destroy();
}

#[test]
fn migration_interrupted_by_ctrl_c_stops_cleanly_and_resumes() {
    let ws = Workspace::new("mig-interrupt").env("HYBRID_SIM_TIME_SCALE", "0.05");
    ws.config(&workload(1));
    ws.apply();
    let (target, target_region) = other_target(&ws);
    ws.config(&format!(
        "{}{}",
        workload(1),
        migration(&target, "canary", CANARY)
    ));
    let child = ws
        .command(&["apply", "-no-color", "-input=false", "-auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start terraform apply");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut interrupted = false;
    while Instant::now() < deadline {
        let journal = sim(&ws).migrations().unwrap_or_default();
        if journal
            .iter()
            .any(|r| r.next_step == 1 && r.traffic_percentage == 25)
        {
            // What Ctrl-C does (SIGTERM here: a background test process may have SIGINT ignored):
            // terraform asks the provider to stop.
            let status = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
            interrupted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(interrupted, "the migration never reached step 1");
    let out = child.wait_with_output().expect("terraform exits");
    let text = combined(&out);
    assert!(!out.status.success(), "{text}");
    crate::harness::assert_no_crash(&text);
    assert!(text.contains("Migration interrupted"), "{text}");
    assert_eq!(
        sim(&ws).migrations().expect("journal")[0].status,
        "in_progress"
    );
    ws.apply();
    assert_eq!(
        ws.resource("hybrid_migration_plan.move")["status"],
        "completed"
    );
    assert_eq!(only_instance_region(&ws), target_region);
    ws.destroy();
}
