//! Protocol paths that only a real Terraform exercises: state written by an older schema version
//! is upgraded through UpgradeResourceState, and our logs reach TF_LOG as hclog JSON.

use serde_json::Value as Json;

use crate::harness::Workspace;

const SMALL: &str = r#"
provider "hybrid" {}

resource "hybrid_workload" "api" {
  name      = "upgrade-me"
  cpu       = 1
  memory_gb = 2
  tags      = { team = "core" }
}
"#;

/// Rewrites the applied state into the version-0 layout (flat placement attributes).
fn downgrade_to_v0(state: &mut Json) {
    let resource = &mut state["resources"][0];
    resource["instances"][0]["schema_version"] = Json::from(0);
    let attrs = resource["instances"][0]["attributes"]
        .as_object_mut()
        .expect("attributes");
    let placement = attrs.remove("placement").expect("placement");
    for key in ["alternatives", "driver", "tags_all"] {
        attrs.remove(key);
    }
    attrs.insert("placement_provider".into(), placement["provider"].clone());
    attrs.insert("placement_region".into(), placement["region"].clone());
    attrs.insert("instance_type".into(), placement["instance_type"].clone());
    attrs.insert(
        "estimated_cost_hourly".into(),
        placement["estimated_cost_hourly"].clone(),
    );
    attrs.insert("placement_reason".into(), placement["reason"].clone());
}

#[test]
fn version_zero_state_is_upgraded_and_re_plans_without_changes_to_where() {
    let ws = Workspace::new("upgrade");
    ws.config(SMALL);
    ws.apply();
    let applied = ws.resource("hybrid_workload.api");

    let path = ws.dir.join("terraform.tfstate");
    let mut state: Json =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state")).expect("json");
    downgrade_to_v0(&mut state);
    std::fs::write(&path, serde_json::to_string_pretty(&state).expect("json")).expect("write");

    ws.run(&["apply", "-refresh-only", "-auto-approve", "-input=false"]);
    let upgraded = ws.resource("hybrid_workload.api");
    for field in ["provider", "region", "instance_type", "reason"] {
        assert_eq!(
            upgraded["placement"][field], applied["placement"][field],
            "{field}"
        );
    }
    assert_eq!(upgraded["instance_id"], applied["instance_id"]);
    assert_eq!(upgraded["driver"], "sim");
    let raw: Json =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state")).expect("json");
    assert_eq!(raw["resources"][0]["instances"][0]["schema_version"], 1);
    // Same place: no replacement. (Estimates dropped by v0 come back in place.)
    let plan = ws.try_run(&["plan", "-input=false"]);
    let text = crate::harness::combined(&plan);
    assert!(!text.contains("must be replaced"), "{text}");
    ws.destroy();
}

#[test]
fn provider_logs_reach_tf_log_as_hclog_json() {
    let ws = Workspace::new("logs").env("TF_LOG", "DEBUG");
    ws.config(SMALL);
    let out = ws.run(&["plan", "-input=false"]);
    // go-plugin re-logs our JSON lines under the plugin's name, with our fields.
    assert!(out.contains("placement decided"), "{out}");
    assert!(out.contains("tf_rpc=PlanResourceChange"), "{out}");
    assert!(
        !out.contains("panic"),
        "nothing may look like a crash: {out}"
    );
}
