//! Running a migration: the steps `hybrid_migration_plan` showed in the plan, through the
//! driver, with health gates, journaled in the sim store after every step.
//!
//! The journal ([`MigrationRecord`]) is written before each action that changes the world and
//! after each step, so a provider killed at any point leaves a record the next apply resumes
//! from: the new side's create is idempotent (same key), a traffic shift is a set, not an add,
//! and a step whose gate had not passed is run again from its start. The order of the steps
//! keeps the invariants: the old side is removed only by the last step, after the new side
//! carries all traffic and passed every gate; a failed gate sends all traffic back to the old
//! side before the new one is removed.

use std::collections::BTreeMap;
use std::time::Duration;

use clouds::retry::{with_backoff, RetryPolicy};
use clouds::sim::migration::{scaled, HealthPlan, MigrationRecord};
use clouds::InstanceSpec;
use placement::migration::{Action, Method, MigrationSpec};
use tfvalue::{Type, Value};

use super::migration_plan::{spec, stored_workload, target_spec, without_run_fields};
use super::ProviderContext;
use crate::attrs;
use crate::diagnostics::Diagnostic;

/// Tag on the new side naming the migration that made it; `hybrid_workload` adopts an
/// instance carrying it when its old instance is gone.
pub const TAG_MIGRATION_ID: &str = "hybrid:migration-id";

const DRIVER_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Warnings for migrations of `workload_id` that an apply left unfinished, so a refresh of the
/// workload says when two copies of it are live (e.g. the provider was killed mid-migration and
/// the plan was then removed from the configuration).
pub fn unfinished_warnings(ctx: &ProviderContext, workload_id: &str) -> Vec<Diagnostic> {
    ctx.sim
        .unfinished_migrations(workload_id)
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            Diagnostic::warning(
                "Unfinished migration",
                format!(
                    "Migration {} of workload {workload_id} stopped at step {} with {}% of traffic on the new side {} (old side {}). Apply its hybrid_migration_plan (the same configuration) to resume it, then destroy the plan if it is no longer wanted.",
                    r.migration_id,
                    r.next_step,
                    r.traffic_percentage,
                    r.target_instance_id.as_deref().unwrap_or("(not created yet)"),
                    r.source_instance_id
                ),
            )
        })
        .collect()
}

/// One line for `status_message`.
pub fn status_line(record: &MigrationRecord) -> String {
    match record.status.as_str() {
        "completed" => format!(
            "completed: all traffic on {}, old side {} removed",
            record
                .target_instance_id
                .as_deref()
                .unwrap_or("the new side"),
            record.source_instance_id
        ),
        "awaiting_promotion" => format!(
            "new side {} validated; set blue_green.auto_promote = true and apply to promote",
            record.target_instance_id.as_deref().unwrap_or("?")
        ),
        other => format!(
            "{other} at step {} with {}% of traffic on the new side",
            record.next_step, record.traffic_percentage
        ),
    }
}

struct StepPlan {
    action: Action,
    traffic_percentage: u32,
    wait_seconds: u64,
    health_gate: bool,
}

fn steps_of(planned: &Value) -> Vec<StepPlan> {
    attrs::get(planned, "steps")
        .and_then(|s| s.as_elements())
        .map(|elems| {
            elems
                .iter()
                .filter_map(|e| {
                    Some(StepPlan {
                        action: Action::parse(&attrs::string(e, "action")?)?,
                        traffic_percentage: u32::try_from(
                            attrs::integer(e, "traffic_percentage").ok()??,
                        )
                        .ok()?,
                        wait_seconds: u64::try_from(attrs::integer(e, "wait_seconds").ok()??)
                            .ok()?,
                        health_gate: attrs::boolean(e, "health_gate").unwrap_or(true),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

struct Runner<'a> {
    ctx: &'a ProviderContext,
    spec: MigrationSpec,
    health: HealthPlan,
    auto_promote: bool,
    validation_checks: Vec<String>,
}

fn journal_error(e: clouds::DriverError) -> Diagnostic {
    Diagnostic::error(
        "Could not write the migration journal",
        format!("{e}. The migration stopped where it was; apply again to resume."),
    )
}

fn interrupted(record: &MigrationRecord) -> Diagnostic {
    Diagnostic::error(
        "Migration interrupted",
        format!(
            "Terraform asked the provider to stop during step {} of migration {} ({}% of traffic on the new side). The journal keeps its progress; apply again to resume or destroy to roll back.",
            record.next_step, record.migration_id, record.traffic_percentage
        ),
    )
}

impl Runner<'_> {
    fn put(&self, record: &MigrationRecord) -> Result<(), Diagnostic> {
        self.ctx.sim.put_migration(record).map_err(journal_error)
    }

    /// Sleeps `d`, waking early when Terraform asks the provider to stop; false then.
    async fn wait(&self, d: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            if self.ctx.stop.is_stopped() {
                return false;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return true;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(100))).await;
        }
    }

    fn scale_down_delay(&self) -> u64 {
        match &self.spec.method {
            Method::BlueGreen {
                scale_down_delay_seconds,
                ..
            }
            | Method::Canary {
                scale_down_delay_seconds,
                ..
            } => *scale_down_delay_seconds,
            Method::Rolling { .. } => 0,
        }
    }

    /// Probes the new side for a step: `wait_seconds` of observation (at least
    /// `recovery_threshold` probes), failing on `failure_threshold` consecutive failed probes
    /// or, for canary, on the step's total failed checks. The error names the check.
    async fn gate(
        &self,
        record: &MigrationRecord,
        step: usize,
        wait_seconds: u64,
        checks: &[String],
    ) -> Result<(), String> {
        let hc = &self.spec.health_check;
        let (interval, max_failed) = match &self.spec.method {
            Method::Canary {
                check_interval_seconds,
                failure_threshold,
                ..
            } => (*check_interval_seconds, *failure_threshold),
            _ => (hc.interval_seconds, hc.failure_threshold),
        };
        let interval = interval.max(1);
        let probes = u64::from(hc.recovery_threshold).max(wait_seconds.div_ceil(interval));
        let mut names = vec![hc.probe.describe()];
        names.extend(checks.iter().cloned());
        let (mut consecutive, mut total, mut passing) = (0u32, 0u32, 0u32);
        let mut last = String::new();
        for i in 0..probes {
            let target = match &record.target_instance_id {
                Some(id) => self.ctx.driver.read(id).await.ok().flatten(),
                None => None,
            };
            let mut failed = None;
            for name in &names {
                if let Err(why) = self.health.probe(target.as_ref(), step, name).await {
                    failed = Some(why);
                    break;
                }
            }
            match failed {
                Some(why) => {
                    consecutive += 1;
                    total += 1;
                    passing = 0;
                    last = why;
                    if consecutive >= hc.failure_threshold || total >= max_failed {
                        return Err(format!("{last} ({total} failed probe(s))"));
                    }
                }
                None => {
                    passing += 1;
                    if passing >= hc.recovery_threshold {
                        consecutive = 0;
                    }
                }
            }
            if i + 1 < probes && !self.wait(scaled(interval)).await {
                return Err("stopped".into());
            }
        }
        if consecutive > 0 {
            return Err(format!(
                "{last} (not recovered: {passing} passing probe(s) of {} needed)",
                hc.recovery_threshold
            ));
        }
        Ok(())
    }

    async fn set_traffic(
        &self,
        record: &MigrationRecord,
        to_target: u32,
    ) -> Result<(), Diagnostic> {
        let mut weights = BTreeMap::new();
        weights.insert(record.source_instance_id.clone(), 100 - to_target.min(100));
        if let Some(t) = &record.target_instance_id {
            weights.insert(t.clone(), to_target.min(100));
        }
        weights.retain(|_, w| *w > 0);
        if weights.is_empty() {
            return Ok(());
        }
        self.ctx
            .sim
            .set_traffic(&record.workload_id, &weights)
            .map_err(|e| Diagnostic::error("Could not shift traffic", e.to_string()))
    }

    async fn delete(&self, instance_id: &str) -> Result<(), clouds::DriverError> {
        let driver = self.ctx.driver.clone();
        let policy = RetryPolicy::with_timeout(DRIVER_TIMEOUT);
        with_backoff(driver.name(), "delete", &policy, &self.ctx.stop, |_| {
            let driver = driver.clone();
            let id = instance_id.to_string();
            async move { driver.delete(&id).await }
        })
        .await
    }

    /// Traffic back to the old side, then (after the scale-down delay) the new side removed.
    async fn roll_back(&self, record: &mut MigrationRecord, why: String) -> Result<(), Diagnostic> {
        if record.status != "rolling_back" {
            record.status = "rolling_back".into();
            record.failure = Some(why);
            self.put(record)?;
        }
        let source_alive = matches!(
            self.ctx.driver.read(&record.source_instance_id).await,
            Ok(Some(_))
        );
        if !source_alive {
            // Without the old side, removing the new one would leave nothing running.
            record.status = "rolled_back".into();
            let kept = record.target_instance_id.clone().unwrap_or_default();
            record.failure = Some(format!(
                "{}; the old side {} no longer exists, so the new side {kept} was kept serving",
                record.failure.clone().unwrap_or_default(),
                record.source_instance_id
            ));
            if record.target_instance_id.is_some() {
                self.set_traffic(record, 100).await?;
                record.traffic_percentage = 100;
            }
            return self.put(record);
        }
        self.set_traffic(record, 0).await?;
        record.traffic_percentage = 0;
        self.put(record)?;
        if let Some(target) = record.target_instance_id.clone() {
            if !self.wait(scaled(self.scale_down_delay())).await {
                return Err(interrupted(record));
            }
            self.delete(&target).await.map_err(|e| {
                Diagnostic::error(
                    "Rollback could not remove the new side",
                    format!("{e}. Traffic is back on the old side; apply again (or destroy) to finish the rollback."),
                )
            })?;
            record.target_instance_id = None;
        }
        record.status = "rolled_back".into();
        self.put(record)
    }

    /// Runs from `record.next_step` to the end, or to a rollback, or to a pause for promotion.
    async fn drive(
        &self,
        record: &mut MigrationRecord,
        steps: &[StepPlan],
        target: &InstanceSpec,
    ) -> Result<(), Diagnostic> {
        if record.status == "awaiting_promotion" {
            record.status = "in_progress".into();
        }
        while record.next_step < steps.len() {
            let i = record.next_step;
            let step = &steps[i];
            if self.ctx.stop.is_stopped() {
                return Err(interrupted(record));
            }
            let mut checks: &[String] = &[];
            match step.action {
                Action::CreateTarget => {
                    let driver = self.ctx.driver.clone();
                    let policy = RetryPolicy::with_timeout(DRIVER_TIMEOUT);
                    let made = with_backoff(driver.name(), "create", &policy, &self.ctx.stop, |_| {
                        let driver = driver.clone();
                        let spec = target.clone();
                        async move { driver.create(&spec).await }
                    })
                    .await
                    .map_err(|e| {
                        Diagnostic::error(
                            "Could not create the new side",
                            format!("{e}. Nothing moved: all traffic is on the old side; apply again to retry."),
                        )
                    })?;
                    record.target_instance_id = Some(made.instance_id);
                    self.put(record)?;
                }
                Action::AwaitPromotion => checks = &self.validation_checks,
                Action::ShiftTraffic => {
                    self.set_traffic(record, step.traffic_percentage).await?;
                    record.traffic_percentage = step.traffic_percentage;
                    self.put(record)?;
                }
                Action::RemoveSource => {
                    if !self.wait(scaled(step.wait_seconds)).await {
                        return Err(interrupted(record));
                    }
                    self.delete(&record.source_instance_id.clone())
                        .await
                        .map_err(|e| {
                            Diagnostic::error(
                                "Could not remove the old side",
                                format!(
                                    "{e}. All traffic is on the new side; apply again to finish."
                                ),
                            )
                        })?;
                    self.set_traffic(record, 100).await?;
                }
            }
            if step.health_gate {
                let observe = if step.action == Action::AwaitPromotion {
                    0
                } else {
                    step.wait_seconds
                };
                let gate = self.gate(record, i, observe, checks);
                let result = match &self.spec.method {
                    Method::Rolling {
                        progress_deadline_seconds,
                        ..
                    } => tokio::time::timeout(scaled(*progress_deadline_seconds), gate)
                        .await
                        .unwrap_or_else(|_| {
                            Err(format!(
                                "the batch did not become healthy within progress_deadline_seconds = {progress_deadline_seconds}"
                            ))
                        }),
                    _ => gate.await,
                };
                match result {
                    Err(why) if why == "stopped" => return Err(interrupted(record)),
                    Err(why) => {
                        let message = format!(
                            "step {i} ({}, {}% of traffic on the new side) failed its health check: {why}",
                            step.action.as_str(),
                            step.traffic_percentage
                        );
                        return self.roll_back(record, message).await;
                    }
                    Ok(()) => {}
                }
            }
            if step.action == Action::AwaitPromotion {
                if !self.auto_promote {
                    record.next_step = i + 1;
                    record.status = "awaiting_promotion".into();
                    return self.put(record);
                }
                if !self.wait(scaled(step.wait_seconds)).await {
                    return Err(interrupted(record));
                }
            }
            record.next_step = i + 1;
            if record.next_step == steps.len() {
                record.status = "completed".into();
                record.failure = None;
            }
            self.put(record)?;
        }
        Ok(())
    }
}

fn runner<'a>(ctx: &'a ProviderContext, config: &Value) -> Result<Runner<'a>, Diagnostic> {
    let spec = spec(config, 1).map_err(|d| {
        d.0.into_iter()
            .next()
            .unwrap_or_else(|| Diagnostic::error("Invalid migration", "the migration is invalid"))
    })?;
    let health = HealthPlan::from_env()
        .map_err(|e| Diagnostic::error("Invalid sim health plan", e.to_string()))?;
    let bg = attrs::get(config, "blue_green");
    Ok(Runner {
        ctx,
        spec,
        health,
        auto_promote: bg
            .and_then(|b| attrs::boolean(b, "auto_promote"))
            .unwrap_or(true),
        validation_checks: bg
            .map(|b| attrs::strings(b, "validation_checks"))
            .unwrap_or_default(),
    })
}

/// Runs (or resumes) migration `id`. `Ok` carries the final record, plus the diagnostic of a
/// rollback; `Err` is a stop that left the journal to resume from.
pub async fn run(
    ctx: &ProviderContext,
    config: &Value,
    planned: &Value,
    ty: &Type,
    id: &str,
) -> Result<(MigrationRecord, Option<Diagnostic>), Diagnostic> {
    let runner = runner(ctx, config)?;
    let existing = ctx.sim.migration(id).map_err(journal_error)?;
    let (mut record, steps, target) = match existing {
        Some(r) if r.status == "completed" => return Ok((r, None)),
        Some(r) if r.status != "rolled_back" => {
            let recorded_state = r
                .plan
                .get("state")
                .and_then(|s| tfvalue::decode_json_value(s, ty).ok())
                .unwrap_or_else(|| planned.clone());
            let target: InstanceSpec = r
                .plan
                .get("target_spec")
                .and_then(|s| serde_json::from_value(s.clone()).ok())
                .ok_or_else(|| {
                    Diagnostic::error(
                        "Unreadable migration journal",
                        format!("The journal of {id} has no readable target; destroy the resource to roll it back."),
                    )
                })?;
            tracing::info!(migration_id = id, step = r.next_step, status = %r.status, "resuming migration");
            (r, steps_of(&recorded_state), target)
        }
        _ => {
            let workload_id = attrs::string(config, "workload_id").unwrap_or_default();
            let wl = stored_workload(ctx, &workload_id).await?;
            let planned_source = attrs::get(planned, "source_placement").cloned();
            let moved = planned_source.as_ref().is_some_and(|p| {
                ["provider", "region", "instance_type"]
                    .iter()
                    .any(|f| attrs::string(p, f) != attrs::string(&wl.placement, f))
            });
            if moved {
                return Err(Diagnostic::error(
                    "The workload moved since the plan",
                    format!("Workload {workload_id} no longer runs where the plan said it did; nothing was changed. Run terraform plan again and review the new migration."),
                ));
            }
            let target_placement = attrs::get(planned, "target_placement")
                .cloned()
                .unwrap_or(Value::Null);
            let target = target_spec(&wl, &target_placement, id);
            let state_json = tfvalue::encode_json_value(&without_run_fields(planned), ty)
                .map_err(|e| Diagnostic::error("Could not journal the migration", e.to_string()))?;
            let record = MigrationRecord {
                migration_id: id.to_string(),
                workload_id: workload_id.clone(),
                status: "in_progress".into(),
                next_step: 0,
                traffic_percentage: 0,
                source_instance_id: wl.instance.instance_id.clone(),
                target_instance_id: None,
                failure: None,
                plan: serde_json::json!({
                    "state": state_json,
                    "target_spec": serde_json::to_value(&target).unwrap_or_default(),
                }),
            };
            runner.put(&record)?;
            (record, steps_of(planned), target)
        }
    };
    if steps.is_empty() {
        return Err(Diagnostic::error(
            "Migration has no steps",
            "The planned steps are missing; run terraform plan again.",
        ));
    }
    if record.status == "rolling_back" {
        let why = record.failure.clone().unwrap_or_default();
        runner.roll_back(&mut record, why).await?;
    } else {
        runner.drive(&mut record, &steps, &target).await?;
    }
    let failure = (record.status == "rolled_back").then(|| {
        Diagnostic::error(
            "Migration rolled back",
            format!(
                "{}. All traffic is back on the old side {}{}. Fix the cause and apply again to retry (the resource is tainted), or remove it.",
                record.failure.clone().unwrap_or_default(),
                record.source_instance_id,
                if record.target_instance_id.is_none() { " and the new side was removed" } else { "" }
            ),
        )
    });
    Ok((record, failure))
}

/// Destroy: an unfinished migration is rolled back; a finished one is left as it is.
pub async fn abort(ctx: &ProviderContext, id: &str) -> Result<(), Diagnostic> {
    let Some(mut record) = ctx.sim.migration(id).map_err(journal_error)? else {
        return Ok(());
    };
    if !matches!(
        record.status.as_str(),
        "in_progress" | "rolling_back" | "awaiting_promotion"
    ) {
        return Ok(());
    }
    let config_free = Runner {
        ctx,
        spec: MigrationSpec {
            method: Method::Rolling {
                max_unavailable: 1,
                max_surge: 1,
                progress_deadline_seconds: 600,
            },
            health_check: Default::default(),
            replicas: 1,
        },
        health: HealthPlan::default(),
        auto_promote: false,
        validation_checks: Vec::new(),
    };
    let why = record
        .failure
        .clone()
        .unwrap_or_else(|| format!("aborted by destroy at step {}", record.next_step));
    config_free.roll_back(&mut record, why).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement::migration::{RawCanary, RawCanaryStep, RawMigration};
    use std::sync::Arc;

    fn context(dir: &tempfile::TempDir) -> ProviderContext {
        let path = dir.path().join("state.db");
        let sim = Arc::new(
            clouds::sim::SimCloud::open(&path, clouds::faults::FaultPlan::none()).expect("sim"),
        );
        let ledger: Arc<dyn ledger::Ledger> =
            Arc::from(ledger::open(&path.display().to_string()).expect("ledger"));
        ProviderContext {
            catalog: catalog::embedded(),
            driver: sim.clone(),
            clouds: BTreeMap::new(),
            sim,
            ledger,
            default_tags: BTreeMap::new(),
            stop: clouds::retry::StopSignal::never(),
            placements: Arc::default(),
            edge_sites: None,
            kubernetes: None,
            config_digest: String::new(),
        }
    }

    fn instance(region: &str, key: &str) -> InstanceSpec {
        InstanceSpec {
            idempotency_key: key.into(),
            workload_id: "wl-1".into(),
            name: "api".into(),
            provider: "aws".into(),
            region: region.into(),
            zone: None,
            instance_type: None,
            node: None,
            image: None,
            tags: BTreeMap::new(),
            metadata: None,
        }
    }

    /// Whatever step's gate fails, the old side is never removed and the new one never stays;
    /// with no failure the old side goes only in the last step.
    #[tokio::test]
    async fn a_failed_gate_at_any_step_leaves_exactly_the_old_side_serving() {
        // Every wait in this test is a thousandth of its configured length.
        std::env::set_var(clouds::sim::migration::ENV_TIME_SCALE, "0.001");
        let spec = MigrationSpec::validate(&RawMigration {
            strategy: Some("canary".into()),
            canary: Some(RawCanary {
                steps: [25.0, 50.0, 100.0]
                    .iter()
                    .map(|p| RawCanaryStep {
                        traffic_percentage: Some(*p),
                        duration_minutes: Some(1.0),
                    })
                    .collect(),
                ..RawCanary::default()
            }),
            replicas: 1,
            ..RawMigration::default()
        })
        .expect("valid");
        let steps: Vec<StepPlan> = spec
            .steps()
            .iter()
            .map(|s| StepPlan {
                action: s.action,
                traffic_percentage: s.traffic_percentage,
                wait_seconds: s.wait_seconds,
                health_gate: s.health_gate,
            })
            .collect();
        for fail_step in [None, Some(0), Some(1), Some(2), Some(3)] {
            let dir = tempfile::tempdir().expect("tmp");
            let ctx = context(&dir);
            let source = ctx
                .driver
                .create(&instance("eu-west-1", "old"))
                .await
                .expect("source");
            let runner = Runner {
                ctx: &ctx,
                spec: spec.clone(),
                health: HealthPlan {
                    fail_step,
                    ..HealthPlan::default()
                },
                auto_promote: true,
                validation_checks: Vec::new(),
            };
            let mut record = MigrationRecord {
                migration_id: "mig-1".into(),
                workload_id: "wl-1".into(),
                status: "in_progress".into(),
                next_step: 0,
                traffic_percentage: 0,
                source_instance_id: source.instance_id.clone(),
                target_instance_id: None,
                failure: None,
                plan: serde_json::Value::Null,
            };
            runner
                .drive(&mut record, &steps, &instance("eu-central-1", "new"))
                .await
                .expect("drive");
            let live = ctx.driver.list_managed().await.expect("list");
            let journal = ctx
                .sim
                .migration("mig-1")
                .expect("journal")
                .expect("record");
            assert_eq!(journal, record, "the journal holds the final record");
            assert_eq!(live.len(), 1, "{fail_step:?}: {live:#?}");
            let traffic = ctx.sim.traffic("wl-1").expect("traffic");
            match fail_step {
                None => {
                    assert_eq!(record.status, "completed");
                    assert_eq!(live[0].region, "eu-central-1");
                    assert_eq!(traffic.get(&live[0].instance_id), Some(&100));
                }
                Some(step) => {
                    assert_eq!(record.status, "rolled_back", "{fail_step:?}");
                    assert_eq!(live[0].instance_id, source.instance_id);
                    assert_eq!(record.traffic_percentage, 0);
                    assert!(record.target_instance_id.is_none());
                    let failure = record.failure.clone().unwrap_or_default();
                    assert!(failure.starts_with(&format!("step {step} (")), "{failure}");
                    assert_eq!(traffic.get(&source.instance_id), Some(&100));
                }
            }
        }
    }
}
