//! deploy/monitoring/ is tested like code: `promtool check rules` and `promtool test rules` on
//! the alert rules, and every metric name the rules and the Grafana dashboard query must be one
//! the provider registers (so no panel or alert waits for a metric that never comes).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use crate::harness::repo_root;

fn monitoring_dir() -> PathBuf {
    repo_root().join("deploy/monitoring")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(monitoring_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is needed (apt package prometheus; run `make tools`): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {}:\n{text}", args.join(" "));
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let text = promtool(&["check", "rules", "alerts.yml"]);
    assert!(text.contains("SUCCESS: 4 rules found"), "{text}");
    let mut tests: Vec<String> = std::fs::read_dir(monitoring_dir())
        .expect("deploy/monitoring")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("_test.yml"))
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no *_test.yml in deploy/monitoring");
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let text = promtool(&args);
    assert!(text.contains("SUCCESS"), "{text}");
    for alert in [
        "HighCloudCosts",
        "WorkloadPlacementFailed",
        "EdgeNodeDown",
        "EdgeHighLatency",
    ] {
        assert!(
            std::fs::read_to_string(monitoring_dir().join("alerts.yml"))
                .expect("alerts.yml")
                .contains(&format!("alert: {alert}")),
            "{alert} missing"
        );
    }
}

const PROMQL_WORDS: [&str; 11] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
];

/// Removes string literals.
fn strip_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '"' {
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// Removes every `open ... close` span, e.g. label matchers and ranges.
fn strip_between(text: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        if c == open {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

/// The metric names a PromQL expression selects: identifiers that are not functions,
/// keywords, label names (matchers and `by (...)` lists are removed first) or template variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut text = strip_strings(expr);
    text = strip_between(&text, '{', '}');
    text = strip_between(&text, '[', ']');
    // Label lists after by/without/on/ignoring/group_*.
    for word in [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ] {
        while let Some(at) = find_word(&text, word) {
            let rest = &text[at + word.len()..];
            let trimmed = rest.trim_start();
            if !trimmed.starts_with('(') {
                text.replace_range(at..at + word.len(), " ");
                continue;
            }
            let open = at + word.len() + (rest.len() - trimmed.len());
            let close = text[open..]
                .find(')')
                .map(|i| open + i)
                .unwrap_or(text.len() - 1);
            text.replace_range(at..=close, " ");
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts = c.is_ascii_alphabetic() || c == '_' || c == ':';
        let prev_blocks = i > 0
            && (chars[i - 1].is_ascii_alphanumeric()
                || chars[i - 1] == '_'
                || chars[i - 1] == '$'
                || chars[i - 1] == '.');
        if !starts || prev_blocks {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let next = chars[i..].iter().find(|c| !c.is_whitespace());
        if next == Some(&'(') || PROMQL_WORDS.contains(&word.as_str()) {
            continue;
        }
        names.insert(word);
    }
    names
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find(word) {
        let at = from + pos;
        let before = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let end = at + word.len();
        let after =
            end >= bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
        if before && after {
            return Some(at);
        }
        from = end;
    }
    None
}

/// Names a query may use: every registered family, and the series histograms expose.
fn registered() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for name in telemetry::METRIC_NAMES {
        names.insert(name.to_string());
        if name.ends_with("_seconds") {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

fn rule_expressions() -> Vec<String> {
    std::fs::read_to_string(monitoring_dir().join("alerts.yml"))
        .expect("alerts.yml")
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr:"))
        .map(|e| e.trim().to_string())
        .collect()
}

fn dashboard_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(monitoring_dir().join("grafana-dashboard.json"))
        .expect("grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let targets = panel["targets"]
            .as_array()
            .expect("every panel has targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            out.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        let query = var["query"]["query"].as_str().unwrap_or_default();
        // label_values(metric, label): the metric is the first argument.
        if let Some(args) = query
            .strip_prefix("label_values(")
            .and_then(|a| a.strip_suffix(')'))
        {
            let metric = args.split(',').next().unwrap_or_default().trim();
            out.push(metric.to_string());
        }
    }
    out
}

#[test]
fn the_name_extractor_finds_metrics_and_only_metrics() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, job) (rate(edge_latency_seconds_bucket{node=~"a.*"}[5m]))) > on (job) group_left(x) bogus_total offset 5m and $var"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["bogus_total", "edge_latency_seconds_bucket"]
    );
}

#[test]
fn rules_and_dashboard_use_only_metrics_the_provider_registers() {
    let known = registered();
    let mut used = BTreeSet::new();
    for (source, exprs) in [
        ("alerts.yml", rule_expressions()),
        ("grafana-dashboard.json", dashboard_expressions()),
    ] {
        assert!(!exprs.is_empty(), "{source}: no queries found");
        for expr in exprs {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "{source}: no metric in {expr:?}");
            for name in names {
                assert!(
                    known.contains(&name),
                    "{source} uses {name}, which the provider does not register ({expr})"
                );
                used.insert(name);
            }
        }
    }
    for (name, _why) in telemetry::NOT_EMITTED {
        assert!(!used.contains(name), "{name} is not emitted yet");
    }
    // The dashboard covers the guide's views: distribution, costs, edge health, latency.
    for name in [
        "workload_placements_total",
        "cloud_costs_hourly",
        "edge_nodes_active",
        "edge_latency_seconds_bucket",
    ] {
        assert!(used.contains(name), "{name} is not shown anywhere");
    }
}
