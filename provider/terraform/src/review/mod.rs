//! `terraform-provider-hybrid review`: a reviewer's summary of a plan, and a CI gate.
//!
//! Reads the JSON of `terraform show -json plan.tfplan` and, for every `hybrid_workload` change,
//! says what happens (create, update, replace, delete), where the workload runs before and
//! after, what it costs per hour and month before and after, its latency, its compliance and
//! the placement's reason; lists `hybrid_migration_plan` changes with their downtime; totals
//! the cost change; and checks the policies asked for on the command line.
//!
//! Everything here is pure (JSON in, text out) so it is tested on recorded plans; the command
//! line and file reading live in [`cli`].

pub mod cli;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{json, Value as Json};

use crate::data_sources::common::HOURS_PER_MONTH;

pub const WORKLOAD_TYPE: &str = "hybrid_workload";
pub const MIGRATION_TYPE: &str = "hybrid_migration_plan";

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

/// The gate's policies (all off by default: the summary alone never fails).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// Fail when the plan raises the monthly cost of hybrid workloads by more than this (USD).
    pub max_monthly_increase: Option<f64>,
    /// Fail when a workload's `compliance` or `data_residency_regions` change.
    pub fail_on_compliance_change: bool,
    /// Fail when a workload moves to another provider or region without a
    /// `hybrid_migration_plan` in the same plan that refers to it.
    pub require_migration_plan: bool,
}

/// The input is not a plan we can read; the message says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a workload runs and what the plan estimates for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Where {
    pub provider: String,
    pub region: String,
    pub instance_type: Option<String>,
    pub node: Option<String>,
    /// Whole workload, USD/h; `None` when the plan has no known cost.
    pub cost_hourly: Option<f64>,
    pub latency_ms: Option<f64>,
    pub reason: Option<String>,
}

impl Where {
    fn label(&self) -> String {
        let mut s = format!("{} {}", self.provider, self.region);
        if let Some(t) = &self.instance_type {
            s.push(' ');
            s.push_str(t);
        }
        if let Some(n) = &self.node {
            s.push_str(" node ");
            s.push_str(n);
        }
        s
    }
}

/// A placement side of a change: absent (create/delete), known, or decided only at apply.
#[derive(Clone, Debug, PartialEq)]
pub enum Side {
    None,
    Known(Where),
    Unknown,
}

impl Side {
    fn cost(&self) -> Result<f64, ()> {
        match self {
            Side::None => Ok(0.0),
            Side::Known(w) => w.cost_hourly.ok_or(()),
            Side::Unknown => Err(()),
        }
    }

    fn label(&self) -> String {
        match self {
            Side::None => "(none)".to_string(),
            Side::Known(w) => w.label(),
            Side::Unknown => "(known after apply)".to_string(),
        }
    }

    fn latency(&self) -> Option<f64> {
        match self {
            Side::Known(w) => w.latency_ms,
            _ => None,
        }
    }

    fn to_json(&self) -> Json {
        match self {
            Side::None => Json::Null,
            Side::Unknown => json!("unknown"),
            Side::Known(w) => json!({
                "provider": w.provider,
                "region": w.region,
                "instance_type": w.instance_type,
                "node": w.node,
                "estimated_cost_hourly": w.cost_hourly,
                "estimated_latency_ms": w.latency_ms,
            }),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadChange {
    pub address: String,
    pub action: &'static str,
    pub id: Option<String>,
    pub name: Option<String>,
    pub before: Side,
    pub after: Side,
    pub compliance_before: Vec<String>,
    pub compliance_after: Vec<String>,
    pub residency_before: Vec<String>,
    pub residency_after: Vec<String>,
    pub reason: String,
}

impl WorkloadChange {
    /// Hourly cost change; `None` when either side's cost is unknown.
    pub fn delta_hourly(&self) -> Option<f64> {
        Some(self.after.cost().ok()? - self.before.cost().ok()?)
    }

    /// The largest the hourly increase can be: exact when both costs are known; when only the
    /// old cost is unknown, the new cost (the old one was at least 0); `None` when the new cost
    /// is unknown (a deletion never raises the cost).
    pub fn max_increase_hourly(&self) -> Option<f64> {
        let before = self.before.cost().unwrap_or(0.0);
        match self.after.cost() {
            Ok(after) => Some(after - before),
            Err(()) => None,
        }
    }

    /// Provider or region changes (a move that may need a migration).
    pub fn moves(&self) -> bool {
        match (&self.before, &self.after) {
            (Side::Known(a), Side::Known(b)) => a.provider != b.provider || a.region != b.region,
            (Side::Known(_), Side::Unknown) => self.action == "replace",
            _ => false,
        }
    }

    pub fn compliance_changed(&self) -> bool {
        matches!(self.action, "update" | "replace")
            && (sorted(&self.compliance_before) != sorted(&self.compliance_after)
                || sorted(&self.residency_before) != sorted(&self.residency_after))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MigrationChange {
    pub address: String,
    pub action: &'static str,
    pub strategy: Option<String>,
    /// `(attribute, value)` of the plan's downtime estimate, as the resource names it.
    pub downtime: Option<(String, String)>,
    /// Every string in the migration's values (to find the workload it refers to).
    strings: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    pub terraform_version: Option<String>,
    pub workloads: Vec<WorkloadChange>,
    pub migrations: Vec<MigrationChange>,
    pub policy: Policy,
    pub violations: Vec<String>,
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

fn action_of(actions: &Json) -> Result<&'static str, String> {
    let list: Vec<&str> = actions
        .as_array()
        .ok_or("change.actions is not a list")?
        .iter()
        .filter_map(Json::as_str)
        .collect();
    Ok(match list.as_slice() {
        ["no-op"] => "no-op",
        ["create"] => "create",
        ["read"] => "read",
        ["update"] => "update",
        ["delete"] => "delete",
        ["delete", "create"] | ["create", "delete"] => "replace",
        other => return Err(format!("unknown change actions {other:?}")),
    })
}

fn str_list(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn side(values: &Json, unknown: &Json) -> Side {
    if values.is_null() {
        return Side::None;
    }
    if unknown.get("placement") == Some(&Json::Bool(true)) {
        return Side::Unknown;
    }
    let p = &values["placement"];
    let (Some(provider), Some(region)) = (p["provider"].as_str(), p["region"].as_str()) else {
        return Side::Unknown;
    };
    let s = |k: &str| p[k].as_str().map(str::to_string);
    Side::Known(Where {
        provider: provider.to_string(),
        region: region.to_string(),
        instance_type: s("instance_type"),
        node: s("node"),
        cost_hourly: p["estimated_cost_hourly"].as_f64(),
        latency_ms: p["estimated_latency_ms"].as_f64(),
        reason: s("reason"),
    })
}

fn collect_strings(v: &Json, out: &mut BTreeSet<String>) {
    match v {
        Json::String(s) => {
            out.insert(s.clone());
        }
        Json::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Json::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

fn scalar_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn migration(address: &str, action: &'static str, change: &Json) -> MigrationChange {
    let values = if change["after"].is_null() {
        &change["before"]
    } else {
        &change["after"]
    };
    let mut strings = BTreeSet::new();
    collect_strings(values, &mut strings);
    let downtime = values.as_object().and_then(|m| {
        m.iter()
            .filter(|(k, _)| k.contains("downtime"))
            .find_map(|(k, v)| scalar_text(v).map(|t| (k.clone(), t)))
            .or_else(|| {
                m.keys()
                    .find(|k| k.contains("downtime"))
                    .filter(|k| change["after_unknown"][k.as_str()] == Json::Bool(true))
                    .map(|k| (k.clone(), "(known after apply)".to_string()))
            })
    });
    MigrationChange {
        address: address.to_string(),
        action,
        strategy: values["strategy"].as_str().map(str::to_string),
        downtime,
        strings,
    }
}

/// Reads a plan (`terraform show -json plan.tfplan`) and applies the policy.
pub fn review(plan: &Json, policy: &Policy) -> Result<Review, InputError> {
    let obj = plan
        .as_object()
        .ok_or_else(|| InputError("the file is JSON but not an object; expected the output of `terraform show -json plan.tfplan`".into()))?;
    if !obj.contains_key("format_version") {
        return Err(InputError("no \"format_version\": this is not Terraform's JSON output; expected the output of `terraform show -json plan.tfplan`".into()));
    }
    if !obj.contains_key("planned_values") && !obj.contains_key("resource_changes") {
        let what = if obj.contains_key("values") {
            "this is state JSON (`terraform show -json` without a plan file)"
        } else {
            "it has neither \"resource_changes\" nor \"planned_values\""
        };
        return Err(InputError(format!(
            "not a plan: {what}; run `terraform plan -out=plan.tfplan` and `terraform show -json plan.tfplan`"
        )));
    }
    let empty = Vec::new();
    let changes = match obj.get("resource_changes") {
        None | Some(Json::Null) => &empty,
        Some(Json::Array(a)) => a,
        Some(_) => return Err(InputError("\"resource_changes\" is not a list".into())),
    };
    let mut workloads = Vec::new();
    let mut migrations = Vec::new();
    for (i, rc) in changes.iter().enumerate() {
        let ty = rc["type"].as_str().unwrap_or_default();
        if rc["mode"].as_str() == Some("data") || (ty != WORKLOAD_TYPE && ty != MIGRATION_TYPE) {
            continue;
        }
        let address = rc["address"]
            .as_str()
            .ok_or_else(|| InputError(format!("resource_changes[{i}] has no \"address\"")))?;
        let change = &rc["change"];
        let action = action_of(&change["actions"])
            .map_err(|e| InputError(format!("resource_changes[{i}] ({address}): {e}")))?;
        if ty == MIGRATION_TYPE {
            migrations.push(migration(address, action, change));
            continue;
        }
        if matches!(action, "no-op" | "read") {
            continue;
        }
        let before = side(&change["before"], &Json::Null);
        let after = side(&change["after"], &change["after_unknown"]);
        let values = if change["after"].is_null() {
            &change["before"]
        } else {
            &change["after"]
        };
        let reason = match (&after, action) {
            (_, "delete") => "destroyed".to_string(),
            (Side::Known(w), _) => w.reason.clone().unwrap_or_default(),
            _ => "placement is decided at apply (some inputs are unknown at plan time)".to_string(),
        };
        workloads.push(WorkloadChange {
            address: address.to_string(),
            action,
            id: values["id"].as_str().map(str::to_string),
            name: values["name"].as_str().map(str::to_string),
            before,
            after,
            compliance_before: str_list(&change["before"]["compliance"]),
            compliance_after: str_list(&change["after"]["compliance"]),
            residency_before: str_list(&change["before"]["data_residency_regions"]),
            residency_after: str_list(&change["after"]["data_residency_regions"]),
            reason,
        });
    }
    let mut review = Review {
        terraform_version: obj
            .get("terraform_version")
            .and_then(Json::as_str)
            .map(str::to_string),
        workloads,
        migrations,
        policy: policy.clone(),
        violations: Vec::new(),
    };
    review.violations = violations(&review);
    Ok(review)
}

impl Review {
    /// Sum of the known hourly deltas and how many are unknown.
    pub fn delta_hourly(&self) -> (f64, Vec<&str>) {
        let mut total = 0.0;
        let mut unknown = Vec::new();
        for w in &self.workloads {
            match w.delta_hourly() {
                Some(d) => total += d,
                None => unknown.push(w.address.as_str()),
            }
        }
        (total, unknown)
    }

    fn side_total(&self, f: impl Fn(&WorkloadChange) -> &Side) -> Option<f64> {
        self.workloads
            .iter()
            .map(|w| f(w).cost().ok())
            .sum::<Option<f64>>()
    }

    pub fn exit_code(&self) -> u8 {
        u8::from(!self.violations.is_empty())
    }

    fn migration_for(&self, w: &WorkloadChange) -> Option<&MigrationChange> {
        let keys: Vec<&str> = [w.id.as_deref(), w.name.as_deref(), Some(w.address.as_str())]
            .into_iter()
            .flatten()
            .collect();
        self.migrations
            .iter()
            .filter(|m| m.action != "delete")
            .find(|m| keys.iter().any(|k| m.strings.contains(*k)))
    }
}

fn violations(r: &Review) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(limit) = r.policy.max_monthly_increase {
        let unknown: Vec<&str> = r
            .workloads
            .iter()
            .filter(|w| w.max_increase_hourly().is_none())
            .map(|w| w.address.as_str())
            .collect();
        let bound: f64 = r
            .workloads
            .iter()
            .filter_map(WorkloadChange::max_increase_hourly)
            .sum();
        let exact = r.workloads.iter().all(|w| w.delta_hourly().is_some());
        if !unknown.is_empty() {
            out.push(format!(
                "monthly cost increase cannot be checked against ${limit:.2}: the new cost of {} is unknown at plan time",
                unknown.join(", ")
            ));
        } else if bound * HOURS_PER_MONTH > limit + 1e-9 {
            out.push(format!(
                "monthly cost increases by {}${:.2}, more than the allowed ${limit:.2}",
                if exact { "" } else { "up to " },
                bound * HOURS_PER_MONTH
            ));
        }
    }
    if r.policy.fail_on_compliance_change {
        for w in r.workloads.iter().filter(|w| w.compliance_changed()) {
            out.push(format!(
                "{} changes compliance [{}] -> [{}] and data residency [{}] -> [{}]",
                w.address,
                w.compliance_before.join(", "),
                w.compliance_after.join(", "),
                w.residency_before.join(", "),
                w.residency_after.join(", ")
            ));
        }
    }
    if r.policy.require_migration_plan {
        for w in r.workloads.iter().filter(|w| w.moves()) {
            if r.migration_for(w).is_none() {
                out.push(format!(
                    "{} moves from {} to {} without a hybrid_migration_plan that refers to it",
                    w.address,
                    w.before.label(),
                    w.after.label()
                ));
            }
        }
    }
    out
}

fn signed(v: Option<f64>, decimals: usize) -> String {
    match v {
        None => "unknown".to_string(),
        Some(v) if v.abs() < 0.5 * 10f64.powi(-(decimals as i32)) => {
            format!("{:.*}", decimals, 0.0)
        }
        Some(v) if v > 0.0 => format!("+{v:.decimals$}"),
        Some(v) => format!("{v:.decimals$}"),
    }
}

fn plain(v: Option<f64>, decimals: usize) -> String {
    v.map_or("unknown".to_string(), |v| format!("{v:.decimals$}"))
}

fn latency_text(w: &WorkloadChange) -> String {
    let ms = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1} ms"));
    let (before, after) = (w.before.latency(), w.after.latency());
    match w.action {
        "create" => ms(after),
        "delete" => ms(before),
        _ if before == after => ms(after),
        _ => format!("{} → {}", ms(before), ms(after)),
    }
}

fn compliance_text(w: &WorkloadChange) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            sorted(v).join(", ")
        }
    };
    match w.action {
        "create" => list(&w.compliance_after),
        "delete" => list(&w.compliance_before),
        _ if w.compliance_changed() => {
            format!(
                "**{} → {}**",
                list(&w.compliance_before),
                list(&w.compliance_after)
            ) + if sorted(&w.residency_before) != sorted(&w.residency_after) {
                " (residency changes)"
            } else {
                ""
            }
        }
        _ => list(&w.compliance_after),
    }
}

fn placement_text(w: &WorkloadChange) -> String {
    match w.action {
        "create" => w.after.label(),
        "delete" => w.before.label(),
        _ if w.before == w.after => w.after.label(),
        _ => format!("{} → {}", w.before.label(), w.after.label()),
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The reviewer's summary as GitHub-flavoured Markdown.
pub fn render_markdown(r: &Review) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Hybrid placement review\n");
    let (delta, unknown) = r.delta_hourly();
    if r.workloads.is_empty() {
        let _ = writeln!(s, "No `hybrid_workload` changes in this plan.\n");
    } else {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for w in &r.workloads {
            match counts.iter_mut().find(|(a, _)| *a == w.action) {
                Some((_, n)) => *n += 1,
                None => counts.push((w.action, 1)),
            }
        }
        let counts: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
        let _ = writeln!(
            s,
            "{} workload change{}: {}. Monthly cost {} USD ({} USD/h){}.\n",
            r.workloads.len(),
            if r.workloads.len() == 1 { "" } else { "s" },
            counts.join(", "),
            signed(Some(delta * HOURS_PER_MONTH), 2),
            signed(Some(delta), 4),
            if unknown.is_empty() {
                String::new()
            } else {
                format!(", not counting {} with unknown cost", unknown.len())
            }
        );
        let _ = writeln!(
            s,
            "| Workload | Action | Placement | Δ USD/h | Δ USD/month | Latency | Compliance |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---:|---|---|");
        for w in &r.workloads {
            let d = w.delta_hourly();
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {} | {} | {} |",
                w.address,
                w.action,
                md_escape(&placement_text(w)),
                signed(d, 4),
                signed(d.map(|d| d * HOURS_PER_MONTH), 2),
                latency_text(w),
                compliance_text(w)
            );
        }
        let _ = writeln!(s, "\n**Why**\n");
        for w in &r.workloads {
            let _ = writeln!(s, "- `{}`: {}", w.address, md_escape(&w.reason));
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "### Migrations\n");
    let listed: Vec<&MigrationChange> = r
        .migrations
        .iter()
        .filter(|m| m.action != "no-op")
        .collect();
    if listed.is_empty() {
        let _ = writeln!(s, "No `hybrid_migration_plan` changes.\n");
    } else {
        let _ = writeln!(s, "| Migration | Action | Strategy | Downtime |");
        let _ = writeln!(s, "|---|---|---|---|");
        for m in listed {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                m.address,
                m.action,
                m.strategy.as_deref().unwrap_or("-"),
                m.downtime
                    .as_ref()
                    .map_or("-".to_string(), |(k, v)| format!("{} ({k})", md_escape(v)))
            );
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "### Totals\n");
    let _ = writeln!(s, "| | USD/h | USD/month |");
    let _ = writeln!(s, "|---|---:|---:|");
    let before = r.side_total(|w| &w.before);
    let after = r.side_total(|w| &w.after);
    let _ = writeln!(
        s,
        "| Before (changed workloads) | {} | {} |",
        plain(before, 4),
        plain(before.map(|v| v * HOURS_PER_MONTH), 2)
    );
    let _ = writeln!(
        s,
        "| After (changed workloads) | {} | {} |",
        plain(after, 4),
        plain(after.map(|v| v * HOURS_PER_MONTH), 2)
    );
    let _ = writeln!(
        s,
        "| **Change** | **{}** | **{}** |",
        signed(Some(delta), 4),
        signed(Some(delta * HOURS_PER_MONTH), 2)
    );
    if !unknown.is_empty() {
        let _ = writeln!(
            s,
            "\nCost unknown at plan time (not counted): {}.",
            unknown
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(s, "\n### Policy\n");
    let mut checks = Vec::new();
    if let Some(limit) = r.policy.max_monthly_increase {
        checks.push(format!("monthly cost increase at most {limit:.2} USD"));
    }
    if r.policy.fail_on_compliance_change {
        checks.push("no compliance or data-residency change".to_string());
    }
    if r.policy.require_migration_plan {
        checks.push(
            "a hybrid_migration_plan for every move to another provider or region".to_string(),
        );
    }
    if checks.is_empty() {
        let _ = writeln!(s, "No policy checks requested.");
    } else {
        let _ = writeln!(s, "Checked: {}.\n", checks.join("; "));
        if r.violations.is_empty() {
            let _ = writeln!(s, "**All checks passed.**");
        } else {
            let _ = writeln!(s, "**Policy violated:**\n");
            for v in &r.violations {
                let _ = writeln!(s, "- {}", md_escape(v));
            }
        }
    }
    s
}

fn round(v: f64, decimals: i32) -> f64 {
    crate::attrs::round(v, decimals)
}

/// The same summary as JSON (for other tools).
pub fn render_json(r: &Review) -> String {
    let (delta, unknown) = r.delta_hourly();
    let workloads: Vec<Json> = r
        .workloads
        .iter()
        .map(|w| {
            let d = w.delta_hourly();
            json!({
                "address": w.address,
                "action": w.action,
                "id": w.id,
                "name": w.name,
                "before": w.before.to_json(),
                "after": w.after.to_json(),
                "cost_delta_hourly": d.map(|d| round(d, 4)),
                "cost_delta_monthly": d.map(|d| round(d * HOURS_PER_MONTH, 2)),
                "moves": w.moves(),
                "compliance_before": sorted(&w.compliance_before),
                "compliance_after": sorted(&w.compliance_after),
                "data_residency_before": sorted(&w.residency_before),
                "data_residency_after": sorted(&w.residency_after),
                "compliance_changed": w.compliance_changed(),
                "reason": w.reason,
            })
        })
        .collect();
    let migrations: Vec<Json> = r
        .migrations
        .iter()
        .filter(|m| m.action != "no-op")
        .map(|m| {
            json!({
                "address": m.address,
                "action": m.action,
                "strategy": m.strategy,
                "downtime": m.downtime.as_ref().map(|(k, v)| json!({"attribute": k, "value": v})),
            })
        })
        .collect();
    let before = r.side_total(|w| &w.before);
    let after = r.side_total(|w| &w.after);
    let doc = json!({
        "format_version": "1",
        "terraform_version": r.terraform_version,
        "workloads": workloads,
        "migrations": migrations,
        "totals": {
            "before_hourly": before.map(|v| round(v, 4)),
            "after_hourly": after.map(|v| round(v, 4)),
            "delta_hourly": round(delta, 4),
            "delta_monthly": round(delta * HOURS_PER_MONTH, 2),
            "unknown_cost": unknown,
        },
        "policy": {
            "max_monthly_increase": r.policy.max_monthly_increase,
            "fail_on_compliance_change": r.policy.fail_on_compliance_change,
            "require_migration_plan": r.policy.require_migration_plan,
        },
        "violations": r.violations,
        "ok": r.violations.is_empty(),
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(name: &str, region: &str, cost: f64, compliance: &[&str]) -> Json {
        json!({
            "id": format!("wl-{name}"),
            "name": name,
            "compliance": compliance,
            "data_residency_regions": null,
            "placement": {
                "provider": "aws", "region": region, "instance_type": "m5.large", "zone": null,
                "node": null, "estimated_cost_hourly": cost, "estimated_latency_ms": 10.0,
                "score": 80.0, "scores": {}, "reason": format!("best in {region}")
            }
        })
    }

    fn plan(changes: Vec<Json>) -> Json {
        json!({"format_version": "0.2", "terraform_version": "1.0.3", "planned_values": {}, "resource_changes": changes})
    }

    fn rc(address: &str, ty: &str, actions: &[&str], before: Json, after: Json) -> Json {
        json!({"address": address, "mode": "managed", "type": ty, "change": {
            "actions": actions, "before": before, "after": after, "after_unknown": {}}})
    }

    #[test]
    fn cost_deltas_and_actions() {
        let p = plan(vec![
            rc(
                "hybrid_workload.a",
                WORKLOAD_TYPE,
                &["create"],
                Json::Null,
                workload("a", "eu-west-1", 0.1, &[]),
            ),
            rc(
                "hybrid_workload.b",
                WORKLOAD_TYPE,
                &["delete", "create"],
                workload("b", "eu-west-1", 0.1, &["gdpr"]),
                workload("b", "us-east-1", 0.3, &["soc2"]),
            ),
            rc(
                "hybrid_workload.c",
                WORKLOAD_TYPE,
                &["delete"],
                workload("c", "eu-west-1", 0.05, &[]),
                Json::Null,
            ),
            rc(
                "hybrid_workload.d",
                WORKLOAD_TYPE,
                &["no-op"],
                workload("d", "eu-west-1", 0.05, &[]),
                workload("d", "eu-west-1", 0.05, &[]),
            ),
        ]);
        let r = review(&p, &Policy::default()).expect("review");
        assert_eq!(r.workloads.len(), 3);
        assert_eq!(r.workloads[1].action, "replace");
        assert!(r.workloads[1].moves());
        let (delta, unknown) = r.delta_hourly();
        assert!(unknown.is_empty());
        assert!((delta - (0.1 + 0.2 - 0.05)).abs() < 1e-9);
        assert_eq!(r.exit_code(), 0);
        let md = render_markdown(&r);
        assert!(
            md.contains("aws eu-west-1 m5.large → aws us-east-1 m5.large"),
            "{md}"
        );
        assert!(md.contains("+182.50"), "{md}");
        assert!(!md.to_lowercase().contains("panic"));
    }

    #[test]
    fn policies_fail_with_reasons() {
        let p = plan(vec![rc(
            "hybrid_workload.b",
            WORKLOAD_TYPE,
            &["delete", "create"],
            workload("b", "eu-west-1", 0.1, &["gdpr"]),
            workload("b", "us-east-1", 0.3, &["soc2"]),
        )]);
        let policy = Policy {
            max_monthly_increase: Some(100.0),
            fail_on_compliance_change: true,
            require_migration_plan: true,
        };
        let r = review(&p, &policy).expect("review");
        assert_eq!(r.violations.len(), 3, "{:?}", r.violations);
        assert_eq!(r.exit_code(), 1);
        // A migration plan that names the workload satisfies the migration rule.
        let mut with_migration = p.clone();
        if let Some(list) = with_migration["resource_changes"].as_array_mut() {
            list.push(rc(
                "hybrid_migration_plan.b",
                MIGRATION_TYPE,
                &["create"],
                Json::Null,
                json!({"workload_id": "wl-b", "strategy": "blue_green", "estimated_downtime_seconds": 0}),
            ));
        }
        let r = review(&with_migration, &policy).expect("review");
        assert_eq!(r.violations.len(), 2, "{:?}", r.violations);
        assert_eq!(
            r.migrations[0].downtime,
            Some(("estimated_downtime_seconds".into(), "0".into()))
        );
        let md = render_markdown(&r);
        assert!(md.contains("| `hybrid_migration_plan.b` | create | blue_green | 0 (estimated_downtime_seconds) |"), "{md}");
    }

    #[test]
    fn unknown_costs_are_not_zero() {
        let mut after = workload("a", "eu-west-1", 0.1, &[]);
        after["placement"]["estimated_cost_hourly"] = Json::Null;
        let p = plan(vec![rc(
            "hybrid_workload.a",
            WORKLOAD_TYPE,
            &["create"],
            Json::Null,
            after,
        )]);
        let r = review(
            &p,
            &Policy {
                max_monthly_increase: Some(1000.0),
                ..Policy::default()
            },
        )
        .expect("review");
        assert_eq!(r.workloads[0].delta_hourly(), None);
        assert_eq!(r.violations.len(), 1);
        assert!(r.violations[0].contains("unknown"));
        assert!(render_markdown(&r).contains("| unknown | unknown |"));
    }

    #[test]
    fn deleting_a_workload_of_unknown_cost_passes_a_cost_limit() {
        let mut before = workload("e", "edge-berlin", 0.1, &[]);
        before["placement"]["estimated_cost_hourly"] = Json::Null;
        let p = plan(vec![rc(
            "hybrid_workload.e",
            WORKLOAD_TYPE,
            &["delete"],
            before.clone(),
            Json::Null,
        )]);
        let policy = Policy {
            max_monthly_increase: Some(0.0),
            ..Policy::default()
        };
        let r = review(&p, &policy).expect("review");
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        // Replacing it with a known cost is checked against the new cost alone.
        let p = plan(vec![rc(
            "hybrid_workload.e",
            WORKLOAD_TYPE,
            &["delete", "create"],
            before,
            workload("e", "eu-west-1", 0.1, &[]),
        )]);
        let r = review(&p, &policy).expect("review");
        assert_eq!(r.violations.len(), 1);
        assert!(
            r.violations[0].contains("up to $73.00"),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn inputs_that_are_not_plans_are_explained() {
        for (doc, needle) in [
            (json!([1, 2]), "not an object"),
            (json!({"a": 1}), "format_version"),
            (json!({"format_version": "0.2", "values": {}}), "state JSON"),
            (
                json!({"format_version": "0.2", "planned_values": {}, "resource_changes": 3}),
                "not a list",
            ),
        ] {
            let err = review(&doc, &Policy::default()).expect_err("invalid");
            assert!(err.0.contains(needle), "{err}");
        }
    }

    #[test]
    fn empty_plans_render() {
        let r = review(
            &json!({"format_version": "0.2", "planned_values": {}}),
            &Policy::default(),
        )
        .expect("review");
        assert!(render_markdown(&r).contains("No `hybrid_workload` changes"));
        let j: Json = serde_json::from_str(&render_json(&r)).expect("json");
        assert_eq!(j["ok"], true);
    }
}
