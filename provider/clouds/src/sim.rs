//! The embedded `sim` cloud: a local cloud that needs no account, the default target.
//!
//! Instances live in an SQLite file (the same file as the capacity ledger), so separate
//! `terraform` runs, and separate processes in one run, see one consistent world. The file uses
//! WAL mode and a busy timeout, and every write is one `BEGIN IMMEDIATE` transaction, which is
//! what makes `create` idempotent across processes: the live instance with a given idempotency
//! key is unique (a partial unique index enforces it).
//!
//! Deleted instances stay in the table as `terminated` (as EC2 shows them for a while) but are
//! invisible to `read`, so Terraform sees them as gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use statefile::{Begin, Tx};

pub mod migration;

use crate::edge::{EdgeCluster, EdgeNode};
use crate::faults::{FaultKind, FaultPlan};
use crate::{managed_tags, Driver, DriverError, Instance, InstanceSpec, Metadata};

const TARGET: &str = "sim";
const SCHEMA_VERSION: i64 = 1;

/// The sim cloud over one SQLite file.
pub struct SimCloud {
    path: PathBuf,
    /// The process's `synchronous = NORMAL` connection to the file, which the plan notes use
    /// too (see [`statefile::shared`]).
    conn: statefile::SharedConnection,
    faults: FaultPlan,
    catalog: Option<&'static catalog::Catalog>,
}

impl std::fmt::Debug for SimCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCloud")
            .field("path", &self.path)
            .field("faults", &self.faults)
            .finish()
    }
}

fn storage(operation: &'static str, err: impl std::fmt::Display) -> DriverError {
    DriverError::Storage {
        target: TARGET.to_string(),
        operation,
        message: err.to_string(),
    }
}

impl SimCloud {
    /// Opens (creating if needed) the sim cloud stored at `path`.
    pub fn open(path: &Path, faults: FaultPlan) -> Result<SimCloud, DriverError> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    storage(
                        "open",
                        format!("cannot create directory {}: {e}", parent.display()),
                    )
                })?;
            }
        }
        // The sim's instances are a record of what runs (a lost commit after power loss is an
        // instance the next read does not see, as if its create had failed), hence NORMAL.
        let conn = statefile::shared(path, Duration::from_secs(30), statefile::Durability::Normal)
            .map_err(|e| storage("open", e))?;
        SimCloud::on_connection(path, conn, faults)
    }

    /// The sim cloud over `conn`, a connection to `path`: creates the tables if needed.
    fn on_connection(
        path: &Path,
        conn: statefile::SharedConnection,
        faults: FaultPlan,
    ) -> Result<SimCloud, DriverError> {
        let db = statefile::lock(&conn);
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS sim_instances (
                instance_id     TEXT PRIMARY KEY,
                idempotency_key TEXT NOT NULL,
                workload_id     TEXT NOT NULL,
                name            TEXT NOT NULL,
                provider        TEXT NOT NULL,
                region          TEXT NOT NULL,
                zone            TEXT,
                instance_type   TEXT,
                node            TEXT,
                image           TEXT,
                private_ip      TEXT NOT NULL,
                status          TEXT NOT NULL,
                tags            TEXT NOT NULL,
                metadata        TEXT,
                created_seq     INTEGER NOT NULL,
                terminated      INTEGER NOT NULL DEFAULT 0
            );
            CREATE UNIQUE INDEX IF NOT EXISTS sim_live_key
                ON sim_instances(idempotency_key) WHERE terminated = 0;
            CREATE INDEX IF NOT EXISTS sim_workload ON sim_instances(workload_id);
            CREATE TABLE IF NOT EXISTS sim_edge_clusters (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS sim_edge_nodes (
                id         TEXT PRIMARY KEY,
                cluster_id TEXT NOT NULL,
                doc        TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS sim_migrations (migration_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS sim_traffic (workload_id TEXT PRIMARY KEY, doc TEXT NOT NULL);",
        )
        .map_err(|e| storage("open", e))?;
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| storage("open", e))?;
        if version == 0 {
            db.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(|e| storage("open", e))?;
        } else if version > SCHEMA_VERSION {
            return Err(storage(
                "open",
                format!(
                    "{} was written by a newer provider (schema {version}, this one knows {SCHEMA_VERSION})",
                    path.display()
                ),
            ));
        }
        drop(db);
        Ok(SimCloud {
            path: path.to_path_buf(),
            conn,
            faults,
            catalog: None,
        })
    }

    /// Makes the sim cloud behave like the clouds it stands in for: a create in a region or of
    /// an instance type the catalog does not offer is rejected, as AWS rejects an unknown
    /// instance type.
    pub fn with_catalog(mut self, catalog: &'static catalog::Catalog) -> SimCloud {
        self.catalog = Some(catalog);
        self
    }

    fn check_offer(&self, spec: &InstanceSpec) -> Result<(), DriverError> {
        let Some(catalog) = self.catalog else {
            return Ok(());
        };
        let cloud = match spec.provider.as_str() {
            "aws" => catalog::Cloud::Aws,
            "azure" => catalog::Cloud::Azure,
            "gcp" => catalog::Cloud::Gcp,
            // Edge and on-prem capacity is described by the user's nodes, not the catalog.
            _ => return Ok(()),
        };
        let reject = |message: String| DriverError::Rejected {
            target: TARGET.into(),
            operation: "create",
            message,
        };
        let region = catalog
            .find_region_in(cloud, &spec.region)
            .ok_or_else(|| reject(format!("{} has no region {:?}", spec.provider, spec.region)))?;
        if let Some(type_name) = &spec.instance_type {
            let offered = catalog
                .find_instance_type(cloud, type_name)
                .and_then(|t| catalog.offer(region, t));
            if offered.is_none() {
                return Err(reject(format!(
                    "instance type {type_name:?} is not offered in {} {}",
                    spec.provider, spec.region
                )));
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The live instance `instance_id`, its metadata read with `parse_metadata` (`read` and
    /// `read_for_refresh` differ only there).
    fn read_live(
        &self,
        instance_id: &str,
        parse_metadata: fn(String) -> Option<Metadata>,
    ) -> Result<Option<Instance>, DriverError> {
        self.inject("read")?;
        select_one_with(
            &self.lock(),
            select_instances!("WHERE instance_id = ?1 AND terminated = 0"),
            instance_id,
            parse_metadata,
        )
        .map_err(|e| storage("read", e))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        statefile::lock(&self.conn)
    }

    fn inject(&self, operation: &'static str) -> Result<(), DriverError> {
        if self.faults.hits(operation, FaultKind::Throttle) {
            return Err(DriverError::Throttled {
                target: TARGET.into(),
                operation,
                message: "injected fault: RequestLimitExceeded".into(),
            });
        }
        if self.faults.hits(operation, FaultKind::Error) {
            return Err(DriverError::Unavailable {
                target: TARGET.into(),
                operation,
                message: "injected fault: 503 Service Unavailable".into(),
            });
        }
        if self.faults.hits(operation, FaultKind::Reject) {
            return Err(DriverError::Rejected {
                target: TARGET.into(),
                operation,
                message: "injected fault: request rejected".into(),
            });
        }
        Ok(())
    }

    fn lost_response(&self, operation: &'static str) -> Result<(), DriverError> {
        if self.faults.hits(operation, FaultKind::LostResponse) {
            return Err(DriverError::Unavailable {
                target: TARGET.into(),
                operation,
                message: "injected fault: the response was lost after the request took effect"
                    .into(),
            });
        }
        Ok(())
    }

    /// Creates or replaces an edge cluster's description.
    pub fn put_edge_cluster(&self, cluster: &EdgeCluster) -> Result<(), DriverError> {
        let doc = serde_json::to_string(cluster).map_err(|e| storage("edge", e))?;
        self.lock()
            .execute(
                "INSERT INTO sim_edge_clusters (id, doc) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                params![cluster.id, doc],
            )
            .map_err(|e| storage("edge", e))?;
        Ok(())
    }

    pub fn edge_cluster(&self, id: &str) -> Result<Option<EdgeCluster>, DriverError> {
        let doc: Option<String> = self
            .lock()
            .query_row(
                "SELECT doc FROM sim_edge_clusters WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| storage("edge", e))?;
        doc.map(|d| serde_json::from_str(&d).map_err(|e| storage("edge", e)))
            .transpose()
    }

    /// Deletes a cluster; refused while nodes still belong to it.
    pub fn delete_edge_cluster(&self, id: &str) -> Result<(), DriverError> {
        let conn = self.lock();
        let nodes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sim_edge_nodes WHERE cluster_id = ?1",
                [id],
                |r| r.get(0),
            )
            .map_err(|e| storage("edge", e))?;
        if nodes > 0 {
            return Err(DriverError::Rejected {
                target: TARGET.into(),
                operation: "delete",
                message: format!("edge cluster {id} still has {nodes} node(s)"),
            });
        }
        conn.execute("DELETE FROM sim_edge_clusters WHERE id = ?1", [id])
            .map_err(|e| storage("edge", e))?;
        Ok(())
    }

    pub fn put_edge_node(&self, node: &EdgeNode) -> Result<(), DriverError> {
        let doc = serde_json::to_string(node).map_err(|e| storage("edge", e))?;
        self.lock()
            .execute(
                "INSERT INTO sim_edge_nodes (id, cluster_id, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET cluster_id = excluded.cluster_id, doc = excluded.doc",
                params![node.id, node.cluster_id, doc],
            )
            .map_err(|e| storage("edge", e))?;
        Ok(())
    }

    pub fn edge_node(&self, id: &str) -> Result<Option<EdgeNode>, DriverError> {
        let doc: Option<String> = self
            .lock()
            .query_row("SELECT doc FROM sim_edge_nodes WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| storage("edge", e))?;
        doc.map(|d| serde_json::from_str(&d).map_err(|e| storage("edge", e)))
            .transpose()
    }

    pub fn delete_edge_node(&self, id: &str) -> Result<(), DriverError> {
        self.lock()
            .execute("DELETE FROM sim_edge_nodes WHERE id = ?1", [id])
            .map_err(|e| storage("edge", e))?;
        Ok(())
    }

    /// Every edge cluster, in id order.
    pub fn edge_clusters(&self) -> Result<Vec<EdgeCluster>, DriverError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT doc FROM sim_edge_clusters ORDER BY id")
            .map_err(|e| storage("edge", e))?;
        let docs = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| storage("edge", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| storage("edge", e))?;
        docs.iter()
            .map(|d| serde_json::from_str(d).map_err(|e| storage("edge", e)))
            .collect()
    }

    /// Every edge node, in id order (deterministic input for placement).
    pub fn edge_nodes(&self) -> Result<Vec<EdgeNode>, DriverError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT doc FROM sim_edge_nodes ORDER BY id")
            .map_err(|e| storage("edge", e))?;
        let docs = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| storage("edge", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| storage("edge", e))?;
        docs.iter()
            .map(|d| serde_json::from_str(d).map_err(|e| storage("edge", e)))
            .collect()
    }

    fn create_now(&self, spec: &InstanceSpec) -> Result<Instance, DriverError> {
        let conn = self.lock();
        let tx = Tx::begin(&conn, Begin::Immediate).map_err(|e| storage("create", e))?;
        // The instance sequence (ids, IPs) continues from the newest row: rows are only ever
        // added, in sequence order, under the write lock this transaction holds, and never
        // deleted (terminated instances stay). Reading it touches the page the new row goes to,
        // where a counter row would have been one more page to write per create. (Files written
        // before kept a `sim_counters` row; it always equalled the newest row's sequence.)
        let seq: i64 = tx
            .prepare_cached("SELECT created_seq FROM sim_instances ORDER BY rowid DESC LIMIT 1")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0)).optional())
            .map_err(|e| storage("create", e))?
            .unwrap_or(0)
            .saturating_add(1);
        let instance_id = instance_id_for(&spec.idempotency_key, seq);
        let tags = managed_tags(&spec.tags, &spec.workload_id);
        let instance = Instance {
            instance_id,
            workload_id: spec.workload_id.clone(),
            idempotency_key: spec.idempotency_key.clone(),
            name: spec.name.clone(),
            provider: spec.provider.clone(),
            region: spec.region.clone(),
            zone: spec.zone.clone(),
            instance_type: spec.instance_type.clone(),
            node: spec.node.clone(),
            image: spec.image.clone(),
            private_ip: private_ip_for(seq),
            status: "running".to_string(),
            tags,
            metadata: spec.metadata.clone(),
        };
        let inserted = tx
            .prepare_cached(
            "INSERT INTO sim_instances (instance_id, idempotency_key, workload_id, name, provider,
                region, zone, instance_type, node, image, private_ip, status, tags, metadata,
                created_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (idempotency_key) WHERE terminated = 0 DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                instance.instance_id,
                instance.idempotency_key,
                instance.workload_id,
                instance.name,
                instance.provider,
                instance.region,
                instance.zone,
                instance.instance_type,
                instance.node,
                instance.image,
                instance.private_ip,
                instance.status,
                to_json(&instance.tags),
                instance.metadata.as_ref().map(Metadata::as_str),
                seq,
            ])
        })
        .map_err(|e| storage("create", e))?;
        if inserted == 0 {
            // A live instance already has this key (the live key is unique, and the insert
            // gave way to it): this create is a repeat. Nothing was written; the transaction
            // ends with the lookup.
            let existing = select_one(
                &tx,
                select_instances!("WHERE idempotency_key = ?1 AND terminated = 0"),
                &spec.idempotency_key,
            )
            .map_err(|e| storage("create", e))?
            .ok_or_else(|| {
                storage(
                    "create",
                    "the insert met a live instance with this key that the lookup then missed",
                )
            })?;
            tracing::info!(instance_id = %existing.instance_id, key = %spec.idempotency_key, "create is a repeat: returning the existing instance");
            return Ok(existing);
        }
        tx.commit().map_err(|e| storage("create", e))?;
        tracing::info!(instance_id = %instance.instance_id, provider = %instance.provider, region = %instance.region, "sim instance created");
        Ok(instance)
    }
}

fn to_json(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".to_string())
}

/// Deterministic per (key, sequence) so ids are unique even when a key is reused after delete.
fn instance_id_for(key: &str, seq: i64) -> String {
    let hex = crate::sha256_hex(format!("{key}/{seq}"), 9);
    format!("sim-{}", &hex[..17])
}

/// 10.0.0.1, 10.0.0.2, ... skipping .0 and .255 host octets.
fn private_ip_for(seq: i64) -> String {
    let n = seq.max(1) - 1;
    let host = n % 254 + 1;
    let rest = n / 254;
    format!("10.{}.{}.{}", (rest / 256) % 256, rest % 256, host)
}

fn row_to_instance(row: &rusqlite::Row<'_>) -> rusqlite::Result<Instance> {
    row_to_instance_with(row, full_metadata)
}

/// Stored metadata, whole (checked: the file is anyone's to edit).
fn full_metadata(text: String) -> Option<Metadata> {
    Metadata::from_text(text).ok()
}

/// The sections of stored metadata a refresh uses (see [`Driver::read_for_refresh`]): the rest,
/// the whole workload state, is skipped over without being built, and the two sections are
/// copied as the text they are stored as.
fn refresh_sections(text: String) -> Option<Metadata> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct Sections<'a> {
        #[serde(default, borrow)]
        observed: Option<&'a RawValue>,
        #[serde(default, borrow)]
        state: Option<StateSections<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct StateSections<'a> {
        #[serde(default, borrow)]
        placement: Option<&'a RawValue>,
    }
    let found: Sections<'_> = serde_json::from_str(&text).ok()?;
    let placement = found.state.and_then(|s| s.placement);
    // Keys in sorted order, as a serde_json map would print them.
    let mut out = String::with_capacity(
        32 + found.observed.map_or(0, |o| o.get().len()) + placement.map_or(0, |p| p.get().len()),
    );
    out.push('{');
    if let Some(observed) = found.observed {
        out.push_str("\"observed\":");
        out.push_str(observed.get());
    }
    if let Some(placement) = placement {
        if found.observed.is_some() {
            out.push(',');
        }
        out.push_str("\"state\":{\"placement\":");
        out.push_str(placement.get());
        out.push('}');
    }
    out.push('}');
    // Valid JSON: an object around two values serde_json has just parsed.
    Some(Metadata::trusted(out))
}

/// A `SELECT` of the columns [`row_to_instance_with`] reads, in its order, followed by the rest
/// of the statement. Columns are read by position: looking each up by name compared it with
/// every column name before it, about a fifth of reading a row.
macro_rules! select_instances {
    ($rest:literal) => {
        concat!(
            "SELECT instance_id, workload_id, idempotency_key, name, provider, region, zone,
                    instance_type, node, image, private_ip, status, tags, metadata
             FROM sim_instances ",
            $rest
        )
    };
}
use select_instances;

/// Reads a row of [`select_instances`].
fn row_to_instance_with(
    row: &rusqlite::Row<'_>,
    parse_metadata: fn(String) -> Option<Metadata>,
) -> rusqlite::Result<Instance> {
    let tags: String = row.get(12)?;
    let metadata: Option<String> = row.get(13)?;
    Ok(Instance {
        instance_id: row.get(0)?,
        workload_id: row.get(1)?,
        idempotency_key: row.get(2)?,
        name: row.get(3)?,
        provider: row.get(4)?,
        region: row.get(5)?,
        zone: row.get(6)?,
        instance_type: row.get(7)?,
        node: row.get(8)?,
        image: row.get(9)?,
        private_ip: row.get(10)?,
        status: row.get(11)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        metadata: metadata.and_then(parse_metadata),
    })
}

/// Statements are prepared once per connection and reused (a thousand workloads in one run
/// would otherwise re-parse the same SQL a thousand times).
fn select_one(conn: &Connection, sql: &str, arg: &str) -> rusqlite::Result<Option<Instance>> {
    select_one_with(conn, sql, arg, full_metadata)
}

/// [`select_one`], reading the metadata column with `parse_metadata`.
fn select_one_with(
    conn: &Connection,
    sql: &str,
    arg: &str,
    parse_metadata: fn(String) -> Option<Metadata>,
) -> rusqlite::Result<Option<Instance>> {
    conn.prepare_cached(sql)?
        .query_row([arg], |row| row_to_instance_with(row, parse_metadata))
        .optional()
}

#[async_trait]
impl Driver for SimCloud {
    fn name(&self) -> &'static str {
        TARGET
    }

    async fn create(&self, spec: &InstanceSpec) -> Result<Instance, DriverError> {
        self.inject("create")?;
        self.check_offer(spec)?;
        let instance = self.create_now(spec)?;
        self.lost_response("create")?;
        Ok(instance)
    }

    async fn read(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        self.read_live(instance_id, full_metadata)
    }

    async fn read_for_refresh(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        self.read_live(instance_id, refresh_sections)
    }

    async fn find_by_workload(&self, workload_id: &str) -> Result<Option<Instance>, DriverError> {
        self.inject("read")?;
        select_one(
            &self.lock(),
            select_instances!(
                "WHERE workload_id = ?1 AND terminated = 0 ORDER BY created_seq DESC LIMIT 1"
            ),
            workload_id,
        )
        .map_err(|e| storage("read", e))
    }

    async fn update_tags(
        &self,
        instance_id: &str,
        tags: &BTreeMap<String, String>,
        metadata: Option<&Metadata>,
    ) -> Result<Instance, DriverError> {
        self.inject("update")?;
        let instance = {
            let conn = self.lock();
            let tx = Tx::begin(&conn, Begin::Immediate).map_err(|e| storage("update", e))?;
            // The stored metadata is about to be replaced: not read.
            let current = select_one_with(
                &tx,
                select_instances!("WHERE instance_id = ?1 AND terminated = 0"),
                instance_id,
                |_| None,
            )
            .map_err(|e| storage("update", e))?
            .ok_or_else(|| DriverError::NotFound {
                target: TARGET.into(),
                operation: "update",
                instance_id: instance_id.to_string(),
            })?;
            let new_tags = managed_tags(tags, &current.workload_id);
            tx.prepare_cached(
                "UPDATE sim_instances SET tags = ?2, metadata = ?3 WHERE instance_id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    instance_id,
                    to_json(&new_tags),
                    metadata.map(Metadata::as_str)
                ])
            })
            .map_err(|e| storage("update", e))?;
            tx.commit().map_err(|e| storage("update", e))?;
            Instance {
                tags: new_tags,
                metadata: metadata.cloned(),
                ..current
            }
        };
        self.lost_response("update")?;
        Ok(instance)
    }

    async fn delete(&self, instance_id: &str) -> Result<(), DriverError> {
        self.inject("delete")?;
        // A cached statement: a destroy of a thousand workloads parsed this SQL a thousand times.
        let changed = self
            .lock()
            .prepare_cached(
                "UPDATE sim_instances SET terminated = 1, status = 'terminated'
                 WHERE instance_id = ?1 AND terminated = 0",
            )
            .and_then(|mut stmt| stmt.execute([instance_id]))
            .map_err(|e| storage("delete", e))?;
        if changed > 0 {
            tracing::info!(instance_id, "sim instance terminated");
        }
        self.lost_response("delete")?;
        Ok(())
    }

    async fn list_managed(&self) -> Result<Vec<Instance>, DriverError> {
        self.inject("list")?;
        let conn = self.lock();
        let mut stmt = conn
            .prepare(select_instances!(
                "WHERE terminated = 0 ORDER BY created_seq"
            ))
            .map_err(|e| storage("list", e))?;
        let rows = stmt
            .query_map([], row_to_instance)
            .map_err(|e| storage("list", e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| storage("list", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TAG_MANAGED_BY, TAG_WORKLOAD_ID};

    fn spec(key: &str) -> InstanceSpec {
        InstanceSpec {
            idempotency_key: key.to_string(),
            workload_id: format!("wl-{key}"),
            name: "web".into(),
            provider: "aws".into(),
            region: "eu-west-1".into(),
            zone: Some("eu-west-1a".into()),
            instance_type: Some("m5.large".into()),
            node: None,
            image: None,
            tags: BTreeMap::from([("team".to_string(), "web".to_string())]),
            metadata: Some(Metadata::from_value(&serde_json::json!({"cpu": 2}))),
        }
    }

    fn open(dir: &tempfile::TempDir, faults: &str) -> SimCloud {
        SimCloud::open(
            &dir.path().join("state/sim.db"),
            FaultPlan::parse(faults).expect("plan"),
        )
        .expect("open")
    }

    #[tokio::test]
    async fn a_refresh_read_keeps_only_the_metadata_sections_refresh_uses() {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = open(&dir, "");
        let mut with_state = spec("k-refresh");
        with_state.metadata = Some(Metadata::from_value(&serde_json::json!({
            "schema_version": 1,
            "observed": {"replicas": 2},
            "state": {"name": "web", "placement": {"provider": "aws"}, "alternatives": [1, 2]},
        })));
        let made = sim.create(&with_state).await.expect("create");
        let full = sim
            .read(&made.instance_id)
            .await
            .expect("read")
            .expect("live");
        assert_eq!(full.metadata, with_state.metadata);
        let lite = sim
            .read_for_refresh(&made.instance_id)
            .await
            .expect("read")
            .expect("live");
        assert_eq!(
            lite.metadata.as_ref().map(Metadata::as_str),
            Some(r#"{"observed":{"replicas":2},"state":{"placement":{"provider":"aws"}}}"#)
        );
        assert_eq!(
            Instance {
                metadata: None,
                ..lite
            },
            Instance {
                metadata: None,
                ..full
            }
        );
        sim.delete(&made.instance_id).await.expect("delete");
        assert_eq!(
            sim.read_for_refresh(&made.instance_id).await.expect("read"),
            None
        );
        // One section, or none, is kept as it is.
        for (i, (stored, kept)) in [
            (
                serde_json::json!({"state": {"placement": {"region": "eu-west-1", "score": 0.25}}}),
                r#"{"state":{"placement":{"region":"eu-west-1","score":0.25}}}"#,
            ),
            (
                serde_json::json!({"observed": null, "state": {"name": "x"}}),
                "{}",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let mut one = spec(&format!("k-refresh-{i}"));
            one.metadata = Some(Metadata::from_value(&stored));
            let made = sim.create(&one).await.expect("create");
            let lite = sim
                .read_for_refresh(&made.instance_id)
                .await
                .expect("read")
                .expect("live");
            assert_eq!(lite.metadata.as_ref().map(Metadata::as_str), Some(kept));
        }
    }

    #[tokio::test]
    async fn create_read_delete_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = open(&dir, "");
        let made = sim.create(&spec("k1")).await.expect("create");
        assert!(made.instance_id.starts_with("sim-"));
        assert_eq!(made.private_ip, "10.0.0.1");
        assert_eq!(made.tags[TAG_MANAGED_BY], "terraform-provider-hybrid");
        assert_eq!(made.tags[TAG_WORKLOAD_ID], "wl-k1");
        let read = sim.read(&made.instance_id).await.expect("read");
        assert_eq!(read.as_ref(), Some(&made));
        sim.delete(&made.instance_id).await.expect("delete");
        assert_eq!(sim.read(&made.instance_id).await.expect("read"), None);
        // Deleting again is fine.
        sim.delete(&made.instance_id).await.expect("delete twice");
        assert!(sim.list_managed().await.expect("list").is_empty());
    }

    /// A handle with its own connection, as another process has.
    fn open_apart(dir: &tempfile::TempDir) -> SimCloud {
        let path = dir.path().join("state/sim.db");
        let conn = statefile::open(&path, Duration::from_secs(5), statefile::Durability::Normal)
            .expect("connection");
        SimCloud::on_connection(
            &path,
            std::sync::Arc::new(std::sync::Mutex::new(conn)),
            FaultPlan::none(),
        )
        .expect("open")
    }

    #[tokio::test]
    async fn handles_of_one_process_share_a_connection() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = open(&dir, "");
        let b = open(&dir, "");
        assert!(std::sync::Arc::ptr_eq(&a.conn, &b.conn));
        assert!(!std::sync::Arc::ptr_eq(&a.conn, &open_apart(&dir).conn));
    }

    #[tokio::test]
    async fn create_is_idempotent_on_the_key_even_across_handles() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = open(&dir, "");
        let b = open_apart(&dir);
        let first = a.create(&spec("same")).await.expect("create");
        let again = b.create(&spec("same")).await.expect("create again");
        assert_eq!(first, again);
        assert_eq!(a.list_managed().await.expect("list").len(), 1);
        // After delete, the same key makes a new instance with a new id.
        a.delete(&first.instance_id).await.expect("delete");
        let third = b.create(&spec("same")).await.expect("recreate");
        assert_ne!(third.instance_id, first.instance_id);
    }

    #[tokio::test]
    async fn a_repeated_create_uses_no_sequence_number_and_a_new_create_continues_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = open(&dir, "");
        let first = sim.create(&spec("a")).await.expect("create");
        assert_eq!(first.private_ip, "10.0.0.1");
        assert_eq!(sim.create(&spec("a")).await.expect("repeat"), first);
        let second = sim.create(&spec("b")).await.expect("create b");
        assert_eq!(second.private_ip, "10.0.0.2");
        // Terminated instances keep their numbers: the sequence never goes back.
        sim.delete(&second.instance_id).await.expect("delete");
        let third = sim.create(&spec("b")).await.expect("recreate b");
        assert_eq!(third.private_ip, "10.0.0.3");
        assert_ne!(third.instance_id, second.instance_id);
    }

    #[tokio::test]
    async fn a_file_from_the_counter_days_continues_its_sequence() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("state/sim.db");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        // What an earlier provider left: its counter table, and rows numbered by it.
        {
            let sim = open(&dir, "");
            sim.create(&spec("old-1")).await.expect("create");
            sim.create(&spec("old-2")).await.expect("create");
            statefile::lock(&sim.conn)
                .execute_batch(
                    "CREATE TABLE sim_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                     INSERT INTO sim_counters VALUES ('instances', 2);",
                )
                .expect("counter");
        }
        let sim = open(&dir, "");
        let next = sim.create(&spec("new")).await.expect("create");
        assert_eq!(next.private_ip, "10.0.0.3");
    }

    #[tokio::test]
    async fn lost_response_then_retry_yields_one_instance() {
        let dir = tempfile::tempdir().expect("tmp");
        let flaky = open(&dir, "create:lost_response=1");
        let err = flaky.create(&spec("k")).await.expect_err("lost response");
        assert!(err.is_retryable());
        let healthy = open(&dir, "");
        let got = healthy.create(&spec("k")).await.expect("retry");
        let all = healthy.list_managed().await.expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].instance_id, got.instance_id);
    }

    #[tokio::test]
    async fn concurrent_creates_with_one_key_make_one_instance() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("state/sim.db");
        let mut handles = Vec::new();
        for _ in 0..8 {
            let path = path.clone();
            handles.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("rt");
                let sim = SimCloud::open(&path, FaultPlan::none()).expect("open");
                rt.block_on(sim.create(&spec("race")))
                    .expect("create")
                    .instance_id
            }));
        }
        let ids: std::collections::BTreeSet<String> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        assert_eq!(ids.len(), 1);
    }

    #[tokio::test]
    async fn update_keeps_our_tags_and_replaces_user_tags() {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = open(&dir, "");
        let made = sim.create(&spec("k")).await.expect("create");
        let user = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let updated = sim
            .update_tags(&made.instance_id, &user, None)
            .await
            .expect("update");
        assert_eq!(updated.tags.get("env").map(String::as_str), Some("prod"));
        assert!(!updated.tags.contains_key("team"));
        assert_eq!(updated.tags[TAG_WORKLOAD_ID], "wl-k");
        let err = sim
            .update_tags("sim-missing", &user, None)
            .await
            .expect_err("missing");
        assert!(matches!(err, DriverError::NotFound { .. }));
    }

    #[tokio::test]
    async fn injected_faults_surface_as_driver_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = open(&dir, "create:reject=1,read:throttle=1");
        assert!(matches!(
            sim.create(&spec("k")).await,
            Err(DriverError::Rejected { .. })
        ));
        assert!(matches!(
            sim.read("sim-x").await,
            Err(DriverError::Throttled { .. })
        ));
    }

    #[tokio::test]
    async fn with_a_catalog_unknown_regions_and_types_are_rejected() {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = open(&dir, "").with_catalog(catalog::embedded());
        sim.create(&spec("ok"))
            .await
            .expect("m5.large is offered in eu-west-1");
        let mut bad_type = spec("t");
        bad_type.instance_type = Some("m5.gigantic".into());
        assert!(matches!(
            sim.create(&bad_type).await,
            Err(DriverError::Rejected { .. })
        ));
        let mut bad_region = spec("r");
        bad_region.region = "mars-north-1".into();
        let err = sim.create(&bad_region).await.expect_err("unknown region");
        assert!(err.to_string().contains("mars-north-1"), "{err}");
        let mut edge = spec("e");
        edge.provider = "edge".into();
        edge.region = "berlin".into();
        sim.create(&edge)
            .await
            .expect("edge placements are not checked against the catalog");
    }

    #[test]
    fn edge_sites_round_trip_and_a_cluster_with_nodes_cannot_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = open(&dir, "");
        let cluster = EdgeCluster {
            kubernetes: None,
            id: "ec-1".into(),
            name: "berlin".into(),
            geographic_region: "eu-central".into(),
            lat: 52.5,
            lng: 13.4,
            distribution_strategy: "least_loaded".into(),
            labels: BTreeMap::new(),
        };
        sim.put_edge_cluster(&cluster).expect("put cluster");
        assert_eq!(
            sim.edge_cluster("ec-1").expect("get"),
            Some(cluster.clone())
        );
        let node = EdgeNode {
            id: "en-1".into(),
            cluster_id: "ec-1".into(),
            name: "n1".into(),
            node_type: "compute".into(),
            lat: 52.5,
            lng: 13.4,
            cpu_cores: 8.0,
            memory_gb: 32.0,
            storage_gb: 500.0,
            gpu_count: 0,
            gpu_model: None,
            limit_cpu: 6.0,
            limit_memory_gb: 24.0,
            limit_storage_gb: 400.0,
            limit_network_mbps: 1000.0,
            capabilities: vec!["data_caching".into()],
            connectivity_type: Some("fiber".into()),
            bandwidth_gbps: Some(10.0),
            hourly_cost: Some(0.05),
            labels: BTreeMap::new(),
        };
        sim.put_edge_node(&node).expect("put node");
        assert_eq!(sim.edge_nodes().expect("list"), vec![node.clone()]);
        assert!(sim.delete_edge_cluster("ec-1").is_err());
        sim.delete_edge_node("en-1").expect("delete node");
        sim.delete_edge_cluster("ec-1").expect("delete cluster");
        assert_eq!(sim.edge_cluster("ec-1").expect("get"), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_database_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let sim = open(&dir, "");
        let mode = std::fs::metadata(sim.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn private_ips_skip_network_and_broadcast_octets() {
        assert_eq!(private_ip_for(1), "10.0.0.1");
        assert_eq!(private_ip_for(254), "10.0.0.254");
        assert_eq!(private_ip_for(255), "10.0.1.1");
    }
}
