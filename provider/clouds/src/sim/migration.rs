//! The sim cloud's side of migrations: a durable journal of each migration's progress, the
//! traffic split between a workload's instances, and health probes that tests can steer.
//!
//! Real clouds keep these facts in their load balancers and health checkers; the sim keeps them
//! in the same SQLite file as its instances, so a provider killed mid-migration leaves a record
//! the next process reads to resume or roll back.
//!
//! Steering (environment of the provider process):
//! - `HYBRID_SIM_HEALTH`: comma-separated `fail_step=N` (every probe during step N fails),
//!   `fail_check=NAME` (the named validation check fails) and `slow_check_ms=M` (each probe
//!   takes M ms), e.g. `fail_step=2,slow_check_ms=200`.
//! - `HYBRID_SIM_TIME_SCALE`: a factor in (0, 1] applied to every wait of a migration (step
//!   durations, check intervals, promotion and scale-down delays) so tests run minutes of
//!   canary analysis in seconds. Default 1.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{storage, SimCloud};
use crate::{DriverError, Instance};

pub const ENV_HEALTH: &str = "HYBRID_SIM_HEALTH";
pub const ENV_TIME_SCALE: &str = "HYBRID_SIM_TIME_SCALE";

/// Where a migration stands, written after every step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrationRecord {
    pub migration_id: String,
    pub workload_id: String,
    /// `in_progress`, `awaiting_promotion`, `rolling_back`, `completed`, `rolled_back`.
    pub status: String,
    /// Index of the first step not yet done.
    pub next_step: usize,
    /// Share of traffic on the new side.
    pub traffic_percentage: u32,
    pub source_instance_id: String,
    pub target_instance_id: Option<String>,
    /// Why a migration was rolled back (the step and check that failed).
    pub failure: Option<String>,
    /// What the resource layer needs to resume exactly the reviewed plan (placements, steps).
    pub plan: serde_json::Value,
}

impl SimCloud {
    /// Writes the record (one statement, so it is all or nothing).
    pub fn put_migration(&self, record: &MigrationRecord) -> Result<(), DriverError> {
        let doc = serde_json::to_string(record).map_err(|e| storage("migration", e))?;
        let conn = self.lock();
        conn.execute(
            "INSERT INTO sim_migrations (migration_id, doc) VALUES (?1, ?2)
             ON CONFLICT(migration_id) DO UPDATE SET doc = excluded.doc",
            params![record.migration_id, doc],
        )
        .map_err(|e| storage("migration", e))?;
        Ok(())
    }

    /// The record of one migration, if there is one.
    pub fn migration(&self, migration_id: &str) -> Result<Option<MigrationRecord>, DriverError> {
        let conn = self.lock();
        let doc: Option<String> = conn
            .query_row(
                "SELECT doc FROM sim_migrations WHERE migration_id = ?1",
                [migration_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| storage("migration", e))?;
        doc.map(|d| serde_json::from_str(&d).map_err(|e| storage("migration", e)))
            .transpose()
    }

    /// Every migration record (for tests and cleanup).
    pub fn migrations(&self) -> Result<Vec<MigrationRecord>, DriverError> {
        self.records("SELECT doc FROM sim_migrations ORDER BY migration_id", [])
    }

    /// The workload's migrations that stopped before the end (`in_progress` or
    /// `rolling_back`): every refresh of a workload asks, so SQLite picks them out.
    pub fn unfinished_migrations(
        &self,
        workload_id: &str,
    ) -> Result<Vec<MigrationRecord>, DriverError> {
        self.records(
            "SELECT doc FROM sim_migrations
             WHERE json_extract(doc, '$.workload_id') = ?1
               AND json_extract(doc, '$.status') IN ('in_progress', 'rolling_back')
             ORDER BY migration_id",
            [workload_id],
        )
    }

    /// The migration records a `SELECT doc` statement finds.
    fn records<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<MigrationRecord>, DriverError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(sql)
            .map_err(|e| storage("migration", e))?;
        let docs = stmt
            .query_map(params, |r| r.get::<_, String>(0))
            .map_err(|e| storage("migration", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| storage("migration", e))?;
        docs.iter()
            .map(|d| serde_json::from_str(d).map_err(|e| storage("migration", e)))
            .collect()
    }

    /// Sets the traffic split of a workload: instance id to percentage (summing to 100).
    pub fn set_traffic(
        &self,
        workload_id: &str,
        weights: &BTreeMap<String, u32>,
    ) -> Result<(), DriverError> {
        let total: u32 = weights.values().sum();
        if total != 100 {
            return Err(DriverError::Rejected {
                target: "sim".into(),
                operation: "traffic",
                message: format!("traffic weights must sum to 100, got {total}"),
            });
        }
        let doc = serde_json::to_string(weights).map_err(|e| storage("traffic", e))?;
        let conn = self.lock();
        conn.execute(
            "INSERT INTO sim_traffic (workload_id, doc) VALUES (?1, ?2)
             ON CONFLICT(workload_id) DO UPDATE SET doc = excluded.doc",
            params![workload_id, doc],
        )
        .map_err(|e| storage("traffic", e))?;
        tracing::info!(workload_id, ?weights, "sim traffic split set");
        Ok(())
    }

    /// The workload's traffic split; empty when nothing was ever split (all to its instance).
    pub fn traffic(&self, workload_id: &str) -> Result<BTreeMap<String, u32>, DriverError> {
        let conn = self.lock();
        let doc: Option<String> = conn
            .query_row(
                "SELECT doc FROM sim_traffic WHERE workload_id = ?1",
                [workload_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| storage("traffic", e))?;
        match doc {
            Some(d) => serde_json::from_str(&d).map_err(|e| storage("traffic", e)),
            None => Ok(BTreeMap::new()),
        }
    }
}

/// Health probe behaviour for this process, from [`ENV_HEALTH`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthPlan {
    pub fail_step: Option<usize>,
    pub fail_check: Option<String>,
    pub slow_check: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ENV_HEALTH} entry {entry:?}: expected fail_step=N, fail_check=NAME or slow_check_ms=M")]
pub struct HealthPlanError {
    pub entry: String,
}

impl HealthPlan {
    pub fn parse(spec: &str) -> Result<HealthPlan, HealthPlanError> {
        let mut plan = HealthPlan::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || HealthPlanError {
                entry: entry.to_string(),
            };
            let (key, value) = entry.split_once('=').ok_or_else(bad)?;
            match key.trim() {
                "fail_step" => plan.fail_step = Some(value.trim().parse().map_err(|_| bad())?),
                "fail_check" => plan.fail_check = Some(value.trim().to_string()),
                "slow_check_ms" => {
                    let ms: u64 = value.trim().parse().map_err(|_| bad())?;
                    plan.slow_check = Duration::from_millis(ms.min(600_000));
                }
                _ => return Err(bad()),
            }
        }
        Ok(plan)
    }

    pub fn from_env() -> Result<HealthPlan, HealthPlanError> {
        HealthPlan::parse(&std::env::var(ENV_HEALTH).unwrap_or_default())
    }

    /// One probe of the new side during step `step`: the instance must exist and be running,
    /// and no injected failure may hit. `check` is the probe or validation check's name.
    pub async fn probe(
        &self,
        instance: Option<&Instance>,
        step: usize,
        check: &str,
    ) -> Result<(), String> {
        if !self.slow_check.is_zero() {
            tokio::time::sleep(self.slow_check).await;
        }
        match instance {
            None => return Err("the new side does not exist".into()),
            Some(i) if i.status != "running" => {
                return Err(format!("the new side is {}", i.status));
            }
            Some(_) => {}
        }
        if self.fail_step == Some(step) {
            return Err(format!("{check} failed (injected by {ENV_HEALTH})"));
        }
        if self.fail_check.as_deref() == Some(check) {
            return Err(format!("{check} failed (injected by {ENV_HEALTH})"));
        }
        Ok(())
    }
}

/// The factor applied to every migration wait, from [`ENV_TIME_SCALE`]; out-of-range or
/// unreadable values count as 1 (real time), never as "no waiting" by accident.
pub fn time_scale() -> f64 {
    std::env::var(ENV_TIME_SCALE)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1.0)
        .unwrap_or(1.0)
}

/// `seconds` of migration time as wall-clock time under [`time_scale`].
pub fn scaled(seconds: u64) -> Duration {
    Duration::from_secs_f64(seconds as f64 * time_scale())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultPlan;

    #[test]
    fn records_and_traffic_survive_reopening() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sim.db");
        let sim = SimCloud::open(&path, FaultPlan::none()).expect("open");
        let record = MigrationRecord {
            migration_id: "mig-1".into(),
            workload_id: "wl-1".into(),
            status: "in_progress".into(),
            next_step: 2,
            traffic_percentage: 25,
            source_instance_id: "sim-a".into(),
            target_instance_id: Some("sim-b".into()),
            failure: None,
            plan: serde_json::json!({"steps": 5}),
        };
        sim.put_migration(&record).expect("put");
        sim.set_traffic(
            "wl-1",
            &BTreeMap::from([("sim-a".into(), 75), ("sim-b".into(), 25)]),
        )
        .expect("traffic");
        drop(sim);
        let again = SimCloud::open(&path, FaultPlan::none()).expect("reopen");
        assert_eq!(again.migration("mig-1").expect("get"), Some(record));
        assert_eq!(again.traffic("wl-1").expect("traffic")["sim-b"], 25);
        assert!(again
            .set_traffic("wl-1", &BTreeMap::from([("sim-a".into(), 50)]))
            .is_err());
        assert_eq!(again.migration("mig-2").expect("get"), None);
        let fresh = SimCloud::open(&dir.path().join("fresh.db"), FaultPlan::none()).expect("open");
        assert_eq!(fresh.migration("mig-1").expect("none yet"), None);
        assert!(fresh.migrations().expect("none yet").is_empty());
        assert!(fresh.traffic("wl-1").expect("none yet").is_empty());
    }

    #[test]
    fn unfinished_migrations_are_those_of_the_workload_that_stopped_midway() {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = SimCloud::open(&dir.path().join("sim.db"), FaultPlan::none()).expect("open");
        let record = |id: &str, workload: &str, status: &str| MigrationRecord {
            migration_id: id.into(),
            workload_id: workload.into(),
            status: status.into(),
            next_step: 1,
            traffic_percentage: 10,
            source_instance_id: "sim-a".into(),
            target_instance_id: None,
            failure: None,
            plan: serde_json::json!({}),
        };
        for r in [
            record("mig-1", "wl-1", "in_progress"),
            record("mig-2", "wl-1", "completed"),
            record("mig-3", "wl-1", "rolling_back"),
            record("mig-4", "wl-2", "in_progress"),
            record("mig-5", "wl-1", "rolled_back"),
            record("mig-6", "wl-1", "awaiting_promotion"),
        ] {
            sim.put_migration(&r).expect("put");
        }
        let ids = |w: &str| -> Vec<String> {
            sim.unfinished_migrations(w)
                .expect("query")
                .into_iter()
                .map(|r| r.migration_id)
                .collect()
        };
        assert_eq!(ids("wl-1"), ["mig-1", "mig-3"]);
        assert_eq!(ids("wl-2"), ["mig-4"]);
        assert!(ids("wl-3").is_empty());
    }

    #[test]
    fn health_plans_parse_and_reject_nonsense() {
        let plan = HealthPlan::parse("fail_step=2, slow_check_ms=5,fail_check=smoke").expect("ok");
        assert_eq!(plan.fail_step, Some(2));
        assert_eq!(plan.fail_check.as_deref(), Some("smoke"));
        assert_eq!(plan.slow_check, Duration::from_millis(5));
        for bad in ["fail_step", "fail_step=x", "explode=1"] {
            assert!(HealthPlan::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn probes_fail_where_told_and_when_the_side_is_gone() {
        let plan = HealthPlan::parse("fail_step=1").expect("ok");
        assert!(plan.probe(None, 0, "tcp").await.is_err());
        let inst = Instance {
            instance_id: "sim-1".into(),
            workload_id: "wl".into(),
            idempotency_key: "k".into(),
            name: "n".into(),
            provider: "aws".into(),
            region: "eu-west-1".into(),
            zone: None,
            instance_type: None,
            node: None,
            image: None,
            private_ip: "10.0.0.1".into(),
            status: "running".into(),
            tags: BTreeMap::new(),
            metadata: None,
        };
        assert!(plan.probe(Some(&inst), 0, "tcp").await.is_ok());
        let err = plan.probe(Some(&inst), 1, "tcp").await.expect_err("step 1");
        assert!(err.contains("tcp failed"), "{err}");
    }
}
