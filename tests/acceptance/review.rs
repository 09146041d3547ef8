//! `terraform-provider-hybrid review`: golden outputs on plans recorded from the real Terraform
//! (create, in-place update, a replacement that moves regions, destroy), and the CI gate's exit
//! codes on live plans: plan -> show -json -> review.
//!
//! Re-record the plans and expected outputs with `UPDATE_GOLDEN=1` (then review the diff under
//! tests/acceptance/testdata/review/).

use std::path::PathBuf;
use std::process::Command;

use terraform_provider_hybrid::review::cli::{parse_args, run_on, Parsed};

use crate::harness::{combined, repo_root, Workspace};

fn testdata() -> PathBuf {
    repo_root().join("tests/acceptance/testdata/review")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

const API: &str = r#"
provider "hybrid" {}

resource "hybrid_workload" "api" {
  name                   = "review-api"
  workload_type          = "api"
  cpu                    = 2
  memory_gb              = 8
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 0.7 },
    { lat = 48.86, lng = 2.35 },
  ]
  tags = { team = "payments" }
}

resource "hybrid_workload" "worker" {
  name      = "review-worker"
  cpu       = 1
  memory_gb = 2
  replicas  = 2
  strategy  = "cost_optimized"
}
"#;

fn moved_to_us() -> String {
    API.replace(
        "compliance             = [\"gdpr\"]",
        "compliance             = [\"fedramp\"]",
    )
    .replace(
        "data_residency_regions = [\"EU\"]",
        "data_residency_regions = [\"US\"]",
    )
    .replace("team = \"payments\"", "team = \"checkout\"")
}

/// `terraform plan -out` + `show -json`, as text (what CI would write to plan.json).
fn plan_json_text(ws: &Workspace, extra: &[&str]) -> String {
    let mut args = vec!["plan", "-input=false", "-out=review.tfplan"];
    args.extend(extra);
    ws.run(&args);
    let out = ws.run(&["show", "-json", "review.tfplan"]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .expect("plan JSON line");
    let value: serde_json::Value = serde_json::from_str(line).expect("plan JSON");
    format!(
        "{}\n",
        serde_json::to_string_pretty(&value).expect("pretty")
    )
}

/// Golden cases: (plan, output file, arguments, expected exit code).
const CASES: &[(&str, &str, &[&str], u8)] = &[
    ("create", "create.md", &[], 0),
    (
        "create",
        "create.json",
        &["--format", "json", "--max-monthly-increase", "1000"],
        0,
    ),
    (
        "create",
        "create-over-budget.md",
        &["--max-monthly-increase", "10"],
        1,
    ),
    (
        "update",
        "update.md",
        &["--fail-on-compliance-change", "--require-migration-plan"],
        0,
    ),
    ("update", "update.json", &["--format", "json"], 0),
    (
        "replace",
        "replace.md",
        &[
            "--max-monthly-increase",
            "0",
            "--fail-on-compliance-change",
            "--require-migration-plan",
        ],
        1,
    ),
    (
        "replace",
        "replace.json",
        &[
            "--format",
            "json",
            "--fail-on-compliance-change",
            "--require-migration-plan",
        ],
        1,
    ),
    ("destroy", "destroy.md", &["--max-monthly-increase", "0"], 0),
    ("destroy", "destroy.json", &["--format", "json"], 0),
];

fn run_case(plan: &str, args: &[&str]) -> (u8, String) {
    let mut list: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    list.push(format!("{plan}.plan.json"));
    let Ok(Parsed::Run(parsed)) = parse_args(&list) else {
        unreachable!("golden case arguments are valid: {list:?}")
    };
    let input = std::fs::read(testdata().join(format!("{plan}.plan.json"))).unwrap_or_else(|e| {
        panic!("recorded plan {plan}.plan.json: {e} (record with UPDATE_GOLDEN=1)")
    });
    let (code, out, _) = run_on(&parsed, &input, &format!("{plan}.plan.json"));
    (code, out)
}

fn write_goldens() {
    for (plan, file, args, _) in CASES {
        let (_, out) = run_case(plan, args);
        std::fs::write(testdata().join(file), out).expect("write golden");
    }
}

#[test]
fn review_outputs_match_the_golden_files() {
    if updating() {
        // The recording test writes the plans and then the goldens.
        return;
    }
    for (plan, file, args, code) in CASES {
        let (got_code, out) = run_case(plan, args);
        let expected = std::fs::read_to_string(testdata().join(file))
            .unwrap_or_else(|e| panic!("golden {file}: {e} (record with UPDATE_GOLDEN=1)"));
        assert_eq!(
            out,
            expected,
            "{file} differs from `review {}`; re-record with UPDATE_GOLDEN=1 and review the diff",
            args.join(" ")
        );
        assert_eq!(got_code, *code, "{file}: exit code");
        assert!(!out.to_lowercase().contains("panic"), "{file}");
    }
    // The recorded plans are what the golden files say they are.
    let replace: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testdata().join("replace.plan.json")).expect("replace plan"),
    )
    .expect("json");
    let api = replace["resource_changes"]
        .as_array()
        .and_then(|l| l.iter().find(|rc| rc["address"] == "hybrid_workload.api"))
        .expect("api change");
    assert_eq!(
        api["change"]["actions"],
        serde_json::json!(["delete", "create"])
    );
    assert_ne!(
        api["change"]["before"]["placement"]["region"],
        api["change"]["after"]["placement"]["region"]
    );
}

/// Records the plans from the real Terraform (with `UPDATE_GOLDEN=1`), and in every run checks
/// the gate's exit codes through the built binary on the live plans.
#[test]
fn review_gates_live_plans_through_the_binary() {
    let ws = Workspace::new("review");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-hybrid"));
    let review = |plan: &str, args: &[&str]| -> (i32, String, String) {
        let path = ws.dir.join(format!("{plan}.plan.json"));
        let out = Command::new(&binary)
            .arg("review")
            .args(args)
            .arg(&path)
            .env_clear()
            .output()
            .expect("run review");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            combined(&out),
        )
    };
    let record = |step: &str, text: &str| {
        std::fs::write(ws.dir.join(format!("{step}.plan.json")), text).expect("write plan");
        if updating() {
            std::fs::create_dir_all(testdata()).expect("testdata dir");
            std::fs::write(testdata().join(format!("{step}.plan.json")), text)
                .expect("record plan");
        }
    };

    // Create.
    ws.config(API);
    record("create", &plan_json_text(&ws, &[]));
    let (code, md, all) = review("create", &[]);
    assert_eq!(code, 0, "{all}");
    assert!(md.contains("| `hybrid_workload.api` | create |"), "{md}");
    let (code, _, all) = review("create", &["--max-monthly-increase", "1"]);
    assert_eq!(
        code, 1,
        "creating two workloads costs more than $1/month: {all}"
    );
    assert!(all.contains("policy violated"), "{all}");
    let (code, json, all) = review(
        "create",
        &["--format", "json", "--max-monthly-increase", "100000"],
    );
    assert_eq!(code, 0, "{all}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("review JSON");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["workloads"].as_array().map(Vec::len), Some(2));
    ws.apply();

    // In-place update (tags only): no cost change, no move.
    ws.config(&API.replace("team = \"payments\"", "team = \"checkout\""));
    record("update", &plan_json_text(&ws, &[]));
    let (code, md, all) = review(
        "update",
        &[
            "--max-monthly-increase",
            "0",
            "--fail-on-compliance-change",
            "--require-migration-plan",
        ],
    );
    assert_eq!(code, 0, "{all}");
    assert!(md.contains("| update |"), "{md}");
    ws.apply();

    // Replacement that moves out of the EU: compliance changes, no migration plan.
    ws.config(&moved_to_us());
    record("replace", &plan_json_text(&ws, &[]));
    let (code, md, _) = review("replace", &[]);
    assert_eq!(code, 0);
    assert!(md.contains("| replace |"), "{md}");
    let (code, _, all) = review("replace", &["--fail-on-compliance-change"]);
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains("hybrid_workload.api changes compliance"),
        "{all}"
    );
    let (code, _, all) = review("replace", &["--require-migration-plan"]);
    assert_eq!(code, 1, "{all}");
    assert!(all.contains("without a hybrid_migration_plan"), "{all}");
    ws.apply();

    // Destroy: the cost goes down, so any increase limit passes.
    record("destroy", &plan_json_text(&ws, &["-destroy"]));
    let (code, md, all) = review("destroy", &["--max-monthly-increase", "0"]);
    assert_eq!(code, 0, "{all}");
    assert!(md.contains("| delete |"), "{md}");

    // Usage and input errors exit 2 and say what is wrong.
    let (code, _, all) = review("destroy", &["--format", "yaml"]);
    assert_eq!(code, 2, "{all}");
    assert!(all.contains("markdown or json"), "{all}");
    std::fs::write(ws.dir.join("state.plan.json"), ws.show_json().to_string())
        .expect("write state");
    let (code, _, all) = review("state", &[]);
    assert_eq!(code, 2, "{all}");
    assert!(
        all.contains("state JSON") || all.contains("not a plan"),
        "{all}"
    );
    std::fs::write(
        ws.dir.join("garbage.plan.json"),
        "Terraform will perform the following actions",
    )
    .expect("write");
    let (code, _, all) = review("garbage", &[]);
    assert_eq!(code, 2, "{all}");
    assert!(all.contains("not valid JSON"), "{all}");
    let (code, _, all) = review("missing", &[]);
    assert_eq!(code, 2, "{all}");
    assert!(all.contains("cannot read"), "{all}");

    ws.destroy();
    if updating() {
        write_goldens();
    }
}

#[test]
fn ci_review_example_applies_and_passes_its_gate() {
    let ws = Workspace::new("ci-review-example");
    let example = std::fs::read_to_string(repo_root().join("examples/terraform/ci-review/main.tf"))
        .expect("ci-review example");
    ws.write("main.tf", &example);
    std::fs::write(ws.dir.join("plan.plan.json"), plan_json_text(&ws, &[])).expect("write plan");
    let out = Command::new(env!("CARGO_BIN_EXE_terraform-provider-hybrid"))
        .args([
            "review",
            "--max-monthly-increase",
            "200",
            "--fail-on-compliance-change",
            "--require-migration-plan",
        ])
        .arg(ws.dir.join("plan.plan.json"))
        .output()
        .expect("run review");
    let text = combined(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("| `hybrid_workload.checkout_api` | create |"),
        "{text}"
    );
    assert!(text.contains("All checks passed"), "{text}");
    ws.apply();
    let placement = ws.resource("data.hybrid_placement.checkout_api");
    let workload = ws.resource("hybrid_workload.checkout_api");
    assert_eq!(
        placement["placement"]["region"],
        workload["placement"]["region"]
    );
    // The cost report was read before the workload existed; the next apply prices it, and
    // then the configuration is stable.
    ws.apply();
    let report = ws.resource("data.hybrid_cost_report.fleet");
    assert_eq!(
        report["workloads"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert!(
        report["total_monthly"].as_f64().is_some_and(|m| m > 0.0),
        "{report:#}"
    );
    ws.expect_empty_plan();
    ws.destroy();
}
