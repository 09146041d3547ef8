//! Every example in the repository runs for real on the sim cloud:
//!
//! - examples/resources/<type>/resource.tf: validate, apply, re-plan empty, then every
//!   `terraform import` line of import.sh (whose id must be the one apply produced) re-imports
//!   into an empty plan, then destroy;
//! - examples/data-sources/<type>/data-source.tf: validate, apply, re-plan empty, destroy;
//! - examples/terraform/<name>: init from a filesystem mirror, apply, re-plan empty, destroy,
//!   each in its own state, with checks of what the example is about.
//!
//! The lists come from the provider itself, so a new resource or data source without examples
//! fails here by name.

use std::path::Path;

use serde_json::Value as Json;

use crate::harness::{repo_root, Workspace};

/// The examples/terraform directories and the test that applies each (quickstart and ci-review
/// are applied in workload.rs and review.rs).
const APPLIED_EXAMPLES: &[(&str, &str)] = &[
    ("quickstart", "workload.rs"),
    ("ci-review", "review.rs"),
    ("edge-site", "examples.rs"),
    ("multi-cloud-compliance", "examples.rs"),
    ("edge-fleet", "examples.rs"),
    ("modules/edge-site", "examples.rs (through edge-fleet)"),
    ("migration", "examples.rs"),
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A dev_overrides workspace holding examples/provider/provider.tf (the `terraform` block and
/// the provider configuration) next to the example.
fn snippet_workspace(name: &str, example: &Path) -> Workspace {
    let ws = Workspace::new(name);
    ws.write(
        "provider.tf",
        &read(&repo_root().join("examples/provider/provider.tf")),
    );
    ws.write("main.tf", &read(example));
    ws
}

/// Resources whose configuration lives nowhere but in Terraform (a migration's strategy and
/// checks), so import cannot rebuild them.
const NOT_IMPORTABLE: &[&str] = &["hybrid_migration_plan"];

#[test]
fn every_resource_example_applies_imports_and_destroys() {
    let root = repo_root();
    let mut missing = Vec::new();
    for resource in terraform_provider_hybrid::resources::all() {
        let type_name = resource.type_name();
        let dir = root.join("examples/resources").join(type_name);
        if NOT_IMPORTABLE.contains(&type_name) {
            // Applied by its own test (migration.rs, with the sim's time scale); its example
            // must say why there is no import.sh.
            let example = read(&dir.join("resource.tf"));
            assert!(
                example.contains("not importable"),
                "examples/resources/{type_name}/resource.tf must say why it is not importable"
            );
            continue;
        }
        for file in ["resource.tf", "import.sh"] {
            if !dir.join(file).exists() {
                missing.push(format!("examples/resources/{type_name}/{file}"));
            }
        }
        if !missing.is_empty() {
            continue;
        }
        let ws = snippet_workspace(&format!("example-{type_name}"), &dir.join("resource.tf"));
        ws.run(&["validate"]);
        ws.apply();
        ws.expect_empty_plan();

        let imports: Vec<(String, String)> = read(&dir.join("import.sh"))
            .lines()
            .filter_map(|l| l.trim().strip_prefix("terraform import "))
            .filter_map(|rest| {
                let mut words = rest.split_whitespace();
                Some((words.next()?.to_string(), words.next()?.to_string()))
            })
            .collect();
        assert!(
            !imports.is_empty(),
            "examples/resources/{type_name}/import.sh has no `terraform import ADDRESS ID` line"
        );
        for (address, id) in imports {
            let applied = ws.resource(&address);
            assert_eq!(
                applied["id"].as_str(),
                Some(id.as_str()),
                "import.sh of {type_name} must show the id apply really produces"
            );
            ws.state_rm(&address);
            ws.import(&address, &id);
        }
        // Import restores the resources exactly (root outputs are recomputed by the apply).
        let reapplied = ws.apply();
        assert!(
            reapplied.contains("Resources: 0 added, 0 changed, 0 destroyed"),
            "{type_name}: the imported state differs from the applied one:\n{reapplied}"
        );
        ws.expect_empty_plan();
        ws.destroy();
        assert!(ws.sim_instances().is_empty());
    }
    assert!(
        missing.is_empty(),
        "every resource needs an example and an import command for the docs; missing:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_data_source_example_applies() {
    let root = repo_root();
    let mut missing = Vec::new();
    for source in terraform_provider_hybrid::data_sources::all() {
        let type_name = source.type_name();
        let file = root
            .join("examples/data-sources")
            .join(type_name)
            .join("data-source.tf");
        if !file.exists() {
            missing.push(format!("examples/data-sources/{type_name}/data-source.tf"));
            continue;
        }
        let ws = snippet_workspace(&format!("example-{type_name}"), &file);
        ws.run(&["validate"]);
        let out = ws.apply();
        assert!(out.contains("Apply complete!"), "{out}");
        assert!(
            !out.contains("Unknown workload"),
            "the example must not warn:\n{out}"
        );
        ws.expect_empty_plan();
        ws.destroy();
    }
    assert!(
        missing.is_empty(),
        "every data source needs an example for the docs; missing:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn examples_are_formatted_and_every_configuration_is_listed_and_applied() {
    let ws = Workspace::new("examples-fmt");
    let examples = repo_root().join("examples");
    let out = ws
        .command(&["fmt", "-check", "-recursive", "-diff"])
        .arg(&examples)
        .output()
        .expect("run terraform fmt");
    assert!(
        out.status.success(),
        "examples/ is not `terraform fmt`-formatted (run `terraform fmt -recursive examples`):\n{}",
        crate::harness::combined(&out)
    );

    let dir = examples.join("terraform");
    let readme = read(&dir.join("README.md"));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/terraform") {
        let entry = entry.expect("entry");
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        if name == "modules" {
            for module in std::fs::read_dir(entry.path()).expect("modules") {
                let module = module.expect("entry");
                found.push(format!("modules/{}", module.file_name().to_string_lossy()));
            }
        } else {
            found.push(name);
        }
    }
    found.sort();
    for name in &found {
        assert!(
            APPLIED_EXAMPLES.iter().any(|(n, _)| n == name),
            "examples/terraform/{name} is applied by no acceptance test: add one and list it in APPLIED_EXAMPLES (tests/acceptance/examples.rs)"
        );
        assert!(
            readme.contains(&format!("[`{name}`]")),
            "examples/terraform/README.md needs a line for {name}"
        );
    }
}

/// Copies examples/terraform into a mirror workspace (modules travel with it) and runs terraform
/// in the example's directory.
fn example_workspace(name: &str) -> Workspace {
    let ws = Workspace::with_mirror(&format!("example-{name}"), env!("CARGO_PKG_VERSION"));
    copy_dir(
        &repo_root().join("examples/terraform"),
        &ws.dir.join("examples"),
    );
    ws.run_in(&format!("examples/{name}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read example dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        // Leftovers of someone running an example by hand are not part of it.
        if name == ".terraform" || name.to_string_lossy().ends_with(".tfstate") {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy example file");
        }
    }
}

fn outputs(ws: &Workspace) -> Json {
    let out = ws.run(&["output", "-json"]);
    let start = out.find('{').unwrap_or(0);
    serde_json::from_str(&out[start..]).expect("terraform output -json")
}

fn assignments(workload: &Json) -> Vec<(String, f64)> {
    workload["edge_assignments"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    (
                        a["node"].as_str().unwrap_or_default().to_string(),
                        a["replicas"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn edge_site_example_spreads_replicas_over_its_nodes() {
    let ws = example_workspace("edge-site");
    ws.init();
    ws.apply();
    let ingest = ws.resource("hybrid_workload.sensor_ingest");
    let inspection = ws.resource("hybrid_workload.visual_inspection");
    let gateway = ws.resource("hybrid_edge_node.node[\"gw-1\"]");
    let gpu = ws.resource("hybrid_edge_node.node[\"inference-1\"]");

    assert_eq!(ingest["placement"]["provider"], "edge", "{ingest:#}");
    let spread = assignments(&ingest);
    assert_eq!(
        spread.iter().map(|(_, r)| r).sum::<f64>(),
        6.0,
        "{spread:?}"
    );
    assert!(
        spread.len() >= 2,
        "six replicas over several nodes: {spread:?}"
    );
    assert!(
        spread
            .iter()
            .all(|(node, _)| Some(node.as_str()) != gateway["id"].as_str()),
        "anti-affinity keeps replicas off the gateway: {spread:?}"
    );
    assert_eq!(inspection["placement"]["node"], gpu["id"], "{inspection:#}");
    assert_eq!(inspection["placement"]["region"], "eu-central");
    assert!(!ws.sim_instances().is_empty());

    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn multi_cloud_compliance_example_keeps_data_in_its_jurisdiction() {
    let ws = example_workspace("multi-cloud-compliance");
    ws.init();
    ws.apply();
    let eu = ws.resource("hybrid_workload.eu_accounts");
    let us = ws.resource("hybrid_workload.us_records");
    let catalogue = ws.resource("hybrid_workload.catalogue");
    assert_eq!(eu["placement"]["provider"], "azure", "{eu:#}");
    assert_eq!(us["placement"]["provider"], "aws", "{us:#}");
    assert_eq!(catalogue["placement"]["provider"], "gcp", "{catalogue:#}");

    // The EU workload's region is one the catalog lists as GDPR-compliant and in the EU.
    let gdpr = ws.show_json();
    let codes: Vec<String> = gdpr["values"]["root_module"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == "data.hybrid_regions.gdpr_eu")
        .and_then(|r| r["values"]["codes"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let eu_region = eu["placement"]["region"].as_str().unwrap_or_default();
    assert!(
        codes.iter().any(|c| c == eu_region),
        "{eu_region} not among the GDPR/EU regions {codes:?}"
    );
    let us_region = us["placement"]["region"].as_str().unwrap_or_default();
    assert!(us_region.starts_with("us-"), "{us_region}");

    let out = outputs(&ws);
    let placements = out["placements"]["value"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(placements.len(), 3, "{out:#}");
    assert_eq!(ws.sim_instances().len(), 3);

    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn edge_fleet_example_uses_the_edge_site_module_for_each_site() {
    let ws = example_workspace("edge-fleet");
    let init = ws.init();
    assert!(init.contains("../modules/edge-site"), "{init}");
    ws.apply();
    let out = outputs(&ws);
    for site in ["berlin", "munich"] {
        let cluster = ws.resource(&format!("module.site[\"{site}\"].hybrid_edge_cluster.this"));
        assert_eq!(cluster["name"], format!("{site}-factory"));
        let nodes = out["sites"]["value"][site]["nodes"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(!nodes.is_empty(), "{out:#}");
        let pos = ws.resource(&format!("hybrid_workload.pos_backend[\"{site}\"]"));
        assert_eq!(pos["placement"]["provider"], "edge", "{pos:#}");
        let spread = assignments(&pos);
        assert_eq!(
            spread.iter().map(|(_, r)| r).sum::<f64>(),
            2.0,
            "{spread:?}"
        );
        for (node, _) in &spread {
            let name = nodes
                .iter()
                .find(|(_, id)| id.as_str() == Some(node.as_str()))
                .map(|(name, _)| name.clone());
            assert!(
                name.as_deref().is_some_and(|n| n.starts_with("compute-")),
                "{site}: replicas only on its own standard nodes, got {node} ({name:?}) of {nodes:?}"
            );
        }
    }
    ws.expect_empty_plan();
    ws.destroy();
    assert!(ws.sim_instances().is_empty());
}

#[test]
fn migration_example_moves_the_workload_when_asked() {
    // The sim runs the migration's waits (promotion, scale-down delay) at 1/1000 speed.
    let ws = example_workspace("migration").env("HYBRID_SIM_TIME_SCALE", "0.001");
    ws.init();
    ws.apply();
    let before = ws.resource("hybrid_workload.orders_api");
    let from = before["placement"]["region"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ws.expect_empty_plan();

    let plan = ws.run(&["plan", "-input=false", "-var", "migrate=true"]);
    assert!(
        plan.contains("hybrid_migration_plan.to_cheaper[0] will be created"),
        "{plan}"
    );
    ws.run(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-var",
        "migrate=true",
    ]);
    let migration = ws.resource("hybrid_migration_plan.to_cheaper[0]");
    assert_eq!(migration["status"], "completed", "{migration:#}");
    assert_eq!(migration["source_placement"]["region"], from.as_str());
    assert!(
        migration["cost_hourly_delta"].as_f64().unwrap_or(0.0) < 0.0,
        "a move to the cheapest place saves money: {migration:#}"
    );
    let live = ws.sim_instances();
    assert_eq!(live.len(), 1, "exactly one side left running: {live:?}");
    assert_eq!(
        live[0].region,
        migration["target_placement"]["region"]
            .as_str()
            .unwrap_or_default()
    );
    let out = ws.try_run(&[
        "plan",
        "-input=false",
        "-detailed-exitcode",
        "-var",
        "migrate=true",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "re-plan after the migration must be empty:\n{}",
        crate::harness::combined(&out)
    );
    ws.run(&[
        "destroy",
        "-input=false",
        "-auto-approve",
        "-var",
        "migrate=true",
    ]);
    assert!(ws.sim_instances().is_empty());
}
