//! Every attribute of every resource and data source, given an invalid value, through the real
//! Terraform CLI: each case must end in an error diagnostic that Terraform anchors on the line
//! of that very attribute (which it does only when the diagnostic carries the attribute's path),
//! and the plugin must never crash.
//!
//! All cases run as one configuration (one resource or data block per case), first through
//! `terraform validate -json` (ValidateResourceConfig / ValidateDataResourceConfig), then the
//! cases validation let through in one `terraform plan` (PlanResourceChange / ReadDataSource).
//! A table test of ~100 cases costs two Terraform runs instead of a hundred.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::harness::{assert_no_crash, combined, Workspace};

/// One invalid value: block kind and type, the attribute's path (dots for nested blocks and
/// nested attributes), the HCL that replaces the base value.
struct Case {
    kind: &'static str,
    type_name: &'static str,
    path: &'static str,
    value: &'static str,
}

const fn case(
    kind: &'static str,
    type_name: &'static str,
    path: &'static str,
    value: &'static str,
) -> Case {
    Case {
        kind,
        type_name,
        path,
        value,
    }
}

const R: &str = "resource";
const D: &str = "data";
const WL: &str = "hybrid_workload";
const EC: &str = "hybrid_edge_cluster";
const EN: &str = "hybrid_edge_node";
const PL: &str = "hybrid_placement";
const RG: &str = "hybrid_regions";
const RR: &str = "hybrid_region_recommendation";
const CR: &str = "hybrid_cost_report";

/// Attributes with a nested type (lists of objects). Terraform 1.0 cannot follow a diagnostic's
/// path into such a value and anchors it on the block instead; for these the test asks for an
/// error on the block whose text names the attribute.
const NESTED_ATTRIBUTES: &[&str] = &["user_locations", "utilization"];

/// A valid body per type: the values each case starts from.
fn base(type_name: &str) -> Vec<(&'static str, &'static str)> {
    match type_name {
        WL => vec![("name", "\"bad-input\""), ("cpu", "2"), ("memory_gb", "4")],
        EC => vec![
            ("name", "\"bad-input-site\""),
            ("geographic_region", "\"eu-central\""),
            ("location.lat", "52.5"),
            ("location.lng", "13.4"),
        ],
        EN => vec![
            ("cluster_id", "\"ec-0000000000000000\""),
            ("name", "\"n1\""),
            ("node_type", "\"compute\""),
            ("hardware_specs.cpu_cores", "8"),
            ("hardware_specs.memory_gb", "32"),
            ("location.lat", "52.5"),
            ("location.lng", "13.4"),
        ],
        PL => vec![("cpu", "2"), ("memory_gb", "4")],
        RR => vec![
            ("user_locations", "[{ lat = 52.5, lng = 13.4 }]"),
            ("cpu", "2"),
            ("memory_gb", "4"),
        ],
        _ => Vec::new(),
    }
}

fn cases() -> Vec<Case> {
    vec![
        // hybrid_workload
        case(R, WL, "name", "\"\""),
        case(R, WL, "cpu", "-1"),
        case(R, WL, "memory_gb", "0"),
        case(R, WL, "storage_gb", "-1"),
        case(R, WL, "gpu_count", "1.5"),
        case(R, WL, "gpu_model", "\"no-such-gpu\""),
        case(R, WL, "max_latency_ms", "-5"),
        case(R, WL, "cost_budget_hourly", "-1"),
        case(R, WL, "compliance", "[\"not-a-standard\"]"),
        case(R, WL, "preferred_providers", "[\"mars\"]"),
        case(R, WL, "data_residency_regions", "[\"atlantis\"]"),
        case(R, WL, "user_locations", "[{ lat = 100, lng = 0 }]"),
        case(R, WL, "strategy", "\"fastest\""),
        case(
            R,
            WL,
            "weights",
            "{ cost = -1, latency = 0, performance = 0, resilience = 0 }",
        ),
        case(R, WL, "replicas", "0"),
        case(R, WL, "spot_allowed", "\"maybe\""),
        case(R, WL, "replace_threshold_percent", "-5"),
        case(R, WL, "alternatives_count", "11"),
        case(R, WL, "workload_type", "\"quantum\""),
        case(R, WL, "edge_cluster_ids", "[\"not-a-cluster\"]"),
        case(R, WL, "image", "\"\""),
        case(R, WL, "tags", "{ \"\" = \"x\" }"),
        case(R, WL, "edge.distribution_strategy", "\"random\""),
        case(R, WL, "edge.network_mbps", "-1"),
        case(R, WL, "edge.node_types", "[\"router\"]"),
        case(R, WL, "edge.required_capabilities", "[\"teleport\"]"),
        case(R, WL, "edge.preferred_capabilities", "[\"teleport\"]"),
        case(R, WL, "edge.affinity_labels", "{ \"\" = \"x\" }"),
        case(R, WL, "edge.anti_affinity_labels", "{ \"\" = \"x\" }"),
        case(R, WL, "edge.preferred_labels", "{ \"\" = \"x\" }"),
        case(R, WL, "edge.scaling_policy.enabled", "\"sometimes\""),
        case(R, WL, "edge.scaling_policy.min_replicas", "-1"),
        case(R, WL, "edge.scaling_policy.max_replicas", "0"),
        case(R, WL, "edge.scaling_policy.cpu_threshold", "1.5"),
        case(R, WL, "edge.scaling_policy.memory_threshold", "0"),
        case(R, WL, "edge.scaling_policy.scale_up_cooldown", "-1"),
        case(R, WL, "edge.scaling_policy.scale_down_cooldown", "-1"),
        case(R, WL, "timeouts.create", "\"soon\""),
        case(R, WL, "timeouts.update", "\"-5m\""),
        case(R, WL, "timeouts.delete", "\"1x\""),
        // hybrid_edge_cluster
        case(R, EC, "name", "\"\""),
        case(R, EC, "geographic_region", "\"\""),
        case(R, EC, "distribution_strategy", "\"random\""),
        case(R, EC, "labels", "{ \"\" = \"x\" }"),
        case(R, EC, "location.lat", "91"),
        case(R, EC, "location.lng", "-181"),
        // hybrid_edge_node
        case(R, EN, "cluster_id", "\"\""),
        case(R, EN, "name", "\"\""),
        case(R, EN, "node_type", "\"router\""),
        case(R, EN, "capabilities", "[\"teleport\"]"),
        case(R, EN, "hourly_cost", "-1"),
        case(R, EN, "labels", "{ \"\" = \"x\" }"),
        case(R, EN, "connectivity.type", "\"carrier-pigeon\""),
        case(R, EN, "connectivity.bandwidth_gbps", "-1"),
        case(R, EN, "hardware_specs.cpu_cores", "0"),
        case(R, EN, "hardware_specs.memory_gb", "-1"),
        case(R, EN, "hardware_specs.storage_gb", "-1"),
        case(R, EN, "hardware_specs.gpu_count", "-1"),
        case(R, EN, "hardware_specs.gpu_model", "\"\""),
        case(R, EN, "location.lat", "91"),
        case(R, EN, "location.lng", "200"),
        case(R, EN, "resource_limits.cpu", "16"),
        case(R, EN, "resource_limits.memory_gb", "64"),
        case(R, EN, "resource_limits.storage_gb", "-1"),
        case(R, EN, "resource_limits.network_mbps", "-1"),
        // hybrid_placement
        case(D, PL, "cpu", "-1"),
        case(D, PL, "memory_gb", "0"),
        case(D, PL, "storage_gb", "-1"),
        case(D, PL, "gpu_count", "-1"),
        case(D, PL, "gpu_model", "\"no-such-gpu\""),
        case(D, PL, "max_latency_ms", "-1"),
        case(D, PL, "cost_budget_hourly", "-1"),
        case(D, PL, "compliance", "[\"not-a-standard\"]"),
        case(D, PL, "preferred_providers", "[\"mars\"]"),
        case(D, PL, "data_residency_regions", "[\"atlantis\"]"),
        case(D, PL, "replicas", "0"),
        case(D, PL, "spot_allowed", "\"maybe\""),
        case(D, PL, "strategy", "\"fastest\""),
        case(D, PL, "top_k", "0"),
        case(D, PL, "user_locations", "[{ lat = 100, lng = 0 }]"),
        case(
            D,
            PL,
            "weights",
            "{ cost = -1, latency = 0, performance = 0, resilience = 0 }",
        ),
        case(D, PL, "workload_type", "\"quantum\""),
        // hybrid_regions
        case(D, RG, "compliance", "[\"not-a-standard\"]"),
        case(D, RG, "data_residency_regions", "[\"atlantis\"]"),
        case(D, RG, "gpu", "\"maybe\""),
        case(D, RG, "gpu_model", "\"no-such-gpu\""),
        case(D, RG, "providers", "[\"mars\"]"),
        // hybrid_region_recommendation
        case(D, RR, "user_locations", "[{ lat = 100, lng = 0 }]"),
        case(D, RR, "cpu", "-1"),
        case(D, RR, "memory_gb", "-1"),
        case(D, RR, "compliance", "[\"not-a-standard\"]"),
        case(D, RR, "data_residency_regions", "[\"atlantis\"]"),
        case(D, RR, "max_latency_ms", "-1"),
        case(D, RR, "preferred_providers", "[\"mars\"]"),
        case(D, RR, "top_k", "0"),
        // hybrid_cost_report
        case(D, CR, "spot_allowed", "\"maybe\""),
        case(
            D,
            CR,
            "utilization",
            "[{ workload_id = \"wl-0\", cpu_utilization = 45, memory_utilization = 0.2 }]",
        ),
    ]
}

/// Renders one block; returns the HCL and the 0-based line (within it) of the bad value.
fn render(case: &Case, label: &str) -> (String, usize) {
    let mut assignments: Vec<(&str, &str)> = base(case.type_name)
        .into_iter()
        .filter(|(p, _)| *p != case.path)
        .collect();
    assignments.push((case.path, case.value));
    // Group by block path; blocks render in first-seen order.
    let mut out = format!("{} \"{}\" \"{label}\" {{\n", case.kind, case.type_name);
    let mut bad_line = 0;
    render_level(&assignments, "", 1, case.path, &mut out, &mut bad_line);
    out.push_str("}\n");
    (out, bad_line)
}

fn render_level(
    assignments: &[(&str, &str)],
    prefix: &str,
    depth: usize,
    bad_path: &str,
    out: &mut String,
    bad_line: &mut usize,
) {
    let indent = "  ".repeat(depth);
    let mut blocks: Vec<&str> = Vec::new();
    for (path, value) in assignments {
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        match rest.split_once('.') {
            None => {
                if *path == bad_path {
                    *bad_line = out.lines().count();
                }
                out.push_str(&format!("{indent}{rest} = {value}\n"));
            }
            Some((block, _)) => {
                if !blocks.contains(&block) {
                    blocks.push(block);
                }
            }
        }
    }
    for block in blocks {
        out.push_str(&format!("{indent}{block} {{\n"));
        render_level(
            assignments,
            &format!("{prefix}{block}."),
            depth + 1,
            bad_path,
            out,
            bad_line,
        );
        out.push_str(&format!("{indent}}}\n"));
    }
}

/// The configuration of `selected` cases, and each case's address and 1-based line of the bad
/// value in main.tf (the harness prepends the `terraform` block).
type Where = BTreeMap<usize, (String, usize, usize)>;

fn configuration(all: &[Case], selected: &[usize]) -> (String, Where) {
    const HEADER_LINES: usize = 8; // what Workspace::config puts before our text
    let mut hcl = String::from("provider \"hybrid\" {}\n\n");
    let mut where_ = BTreeMap::new();
    for &i in selected {
        let c = &all[i];
        let label = format!("case_{i:03}");
        let (block, bad) = render(c, &label);
        let start = hcl.lines().count();
        let address = match c.kind {
            "data" => format!("data.{}.{label}", c.type_name),
            _ => format!("{}.{label}", c.type_name),
        };
        where_.insert(
            i,
            (
                address,
                HEADER_LINES + start + bad + 1,
                HEADER_LINES + start + 1,
            ),
        );
        hcl.push_str(&block);
        hcl.push('\n');
    }
    (hcl, where_)
}

/// (snippet, line, summary and detail) of every error diagnostic in `terraform validate -json`.
fn validate_errors(json: &Json) -> Vec<(String, Option<usize>, String)> {
    let mut out = Vec::new();
    for d in json["diagnostics"].as_array().into_iter().flatten() {
        if d["severity"] != "error" {
            continue;
        }
        let line = d["range"]["start"]["line"].as_u64().map(|l| l as usize);
        let snippet = d["snippet"]["code"].as_str().unwrap_or("").to_string();
        let text = format!(
            "{} {}",
            d["summary"].as_str().unwrap_or(""),
            d["detail"].as_str().unwrap_or("")
        );
        out.push((snippet, line, text));
    }
    out
}

/// (address, line, whole text) of every error block in a human-readable plan output.
fn plan_errors(text: &str) -> Vec<(String, Option<usize>, String)> {
    let mut out = Vec::new();
    for block in text.split("Error: ").skip(1) {
        let summary = block.lines().next().unwrap_or("").trim().to_string();
        let address = block
            .lines()
            .find_map(|l| {
                let l = l.trim_start_matches(['│', ' ']);
                l.strip_prefix("with ")
                    .map(|a| a.trim_end_matches(',').to_string())
            })
            .unwrap_or_default();
        let line = block.lines().find_map(|l| {
            let l = l.trim_start_matches(['│', ' ']);
            let rest = l.strip_prefix("on main.tf line ")?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        });
        let _ = summary;
        out.push((address, line, block.to_string()));
    }
    out
}

/// Whether an error anchored at `line` with `text` answers the case.
fn answers(c: &Case, line: Option<usize>, text: &str, bad_line: usize, header: usize) -> bool {
    line == Some(bad_line)
        || (NESTED_ATTRIBUTES.contains(&c.path) && line == Some(header) && text.contains(c.path))
}

#[test]
fn every_attribute_with_an_invalid_value_gets_a_diagnostic_on_its_own_line() {
    let all = cases();
    let ws = Workspace::new("bad-input");
    let everything: Vec<usize> = (0..all.len()).collect();
    let (hcl, where_) = configuration(&all, &everything);
    ws.config(&hcl);

    // Phase 1: validation. Terraform's JSON names the line of each diagnostic.
    let out = ws.try_run(&["validate", "-json"]);
    let text = combined(&out);
    assert_no_crash(&text);
    let json: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("validate -json output is not JSON ({e}):\n{text}");
    });
    let errors = validate_errors(&json);
    let mut caught_by_validate = BTreeSet::new();
    for (&i, (_, line, header)) in &where_ {
        if errors
            .iter()
            .any(|(_, l, text)| answers(&all[i], *l, text, *line, *header))
        {
            caught_by_validate.insert(i);
        }
    }

    // Phase 2: what validation let through, planned.
    let rest: Vec<usize> = everything
        .iter()
        .copied()
        .filter(|i| !caught_by_validate.contains(i))
        .collect();
    let (hcl, rest_where) = configuration(&all, &rest);
    ws.config(&hcl);
    let out = ws.try_run(&["plan", "-input=false"]);
    let text = combined(&out);
    assert_no_crash(&text);
    let errors = plan_errors(&text);
    let mut caught_by_plan = BTreeSet::new();
    let mut missed = Vec::new();
    for (&i, (address, line, header)) in &rest_where {
        let on_line = errors
            .iter()
            .any(|(a, l, text)| a == address && answers(&all[i], *l, text, *line, *header));
        if on_line {
            caught_by_plan.insert(i);
        } else {
            let c = &all[i];
            let said: Vec<_> = errors
                .iter()
                .filter(|(a, _, _)| a == address)
                .map(|(_, l, s)| format!("{:?} at line {l:?}", s.lines().next().unwrap_or("")))
                .collect();
            missed.push(format!(
                "{} {}.{} = {}: {}",
                c.kind,
                c.type_name,
                c.path,
                c.value,
                if said.is_empty() {
                    "no error".to_string()
                } else {
                    format!(
                        "errors not on the attribute's line {line}: {}",
                        said.join("; ")
                    )
                }
            ));
        }
    }
    println!(
        "bad input: {} cases over {} types; {} caught by validation, {} by plan, {} missed",
        all.len(),
        all.iter()
            .map(|c| c.type_name)
            .collect::<BTreeSet<_>>()
            .len(),
        caught_by_validate.len(),
        caught_by_plan.len(),
        missed.len()
    );
    assert!(
        missed.is_empty(),
        "{} invalid values without a diagnostic on their attribute:\n{}",
        missed.len(),
        missed.join("\n")
    );
}
