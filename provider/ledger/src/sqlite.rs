//! SQLite backend: the default, sharing the file of the `sim` cloud so that separate terraform
//! runs on one machine see one ledger.
//!
//! Tables `ledger_meta`, `ledger_nodes` and `ledger_reservations` (one row per reservation;
//! released rows are deleted; expired pending rows are kept for [`EXPIRED_GRACE`] so `commit` can
//! say "lease expired"). Multi-process safety: WAL journal, a busy timeout, and every
//! read-check-write in a `BEGIN IMMEDIATE` transaction, which takes the database write lock
//! before reading, so two processes can never both see the same free capacity. The file is
//! created with mode 0600 (SQLite gives its `-wal`/`-shm` files the same mode). Lease times use
//! this machine's wall clock.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use statefile::Durability;
use statefile::{Begin, Tx};

use crate::types::{
    lease_millis, ms_to_time, now_ms, HolderId, NodeId, NodeUsage, Reservation, ReservationId,
    ReservationState, Resources, EXPIRED_GRACE,
};
use crate::{CapacityBelowReserved, HolderConflict, Ledger, LedgerError, Shortage};

/// How long a call waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('schema_version', '1');
CREATE TABLE IF NOT EXISTS ledger_nodes (
    node          TEXT PRIMARY KEY,
    cpu_millis    INTEGER NOT NULL CHECK (cpu_millis >= 0),
    memory_mb     INTEGER NOT NULL CHECK (memory_mb >= 0),
    storage_gb    INTEGER NOT NULL CHECK (storage_gb >= 0),
    gpu           INTEGER NOT NULL CHECK (gpu >= 0),
    network_mbps  INTEGER NOT NULL CHECK (network_mbps >= 0),
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_reservations (
    id            TEXT PRIMARY KEY,
    node          TEXT NOT NULL,
    holder        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'committed')),
    cpu_millis    INTEGER NOT NULL CHECK (cpu_millis >= 0),
    memory_mb     INTEGER NOT NULL CHECK (memory_mb >= 0),
    storage_gb    INTEGER NOT NULL CHECK (storage_gb >= 0),
    gpu           INTEGER NOT NULL CHECK (gpu >= 0),
    network_mbps  INTEGER NOT NULL CHECK (network_mbps >= 0),
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    CHECK ((state = 'pending') = (expires_at_ms IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS ledger_reservations_node ON ledger_reservations (node);
CREATE INDEX IF NOT EXISTS ledger_reservations_holder ON ledger_reservations (holder);
DROP TABLE IF EXISTS ledger_plan_notes;
CREATE TABLE IF NOT EXISTS ledger_plan_notes_by_slot (
    slot          INTEGER PRIMARY KEY,
    key           TEXT NOT NULL,
    body          BLOB NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
";

const COLUMNS: &str = "id, node, holder, state, cpu_millis, memory_mb, storage_gb, gpu, \
                       network_mbps, created_at_ms, expires_at_ms";

/// A ledger in a SQLite file. Reservations have one connection per instance (behind a mutex);
/// plan notes use the process's shared `synchronous = NORMAL` connection. Open one instance per
/// process and share it (`Arc`), or several — both are safe.
pub struct SqliteLedger {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The plan notes' connection, with `synchronous = NORMAL` (see [`Self::lock_notes`]),
    /// and the note changes waiting for the next batch.
    notes: Mutex<Notes>,
    /// Expired plan notes are purged by the first batch of notes this handle writes, not by
    /// every one: a plan of a thousand workloads writes a thousand notes.
    notes_purged: std::sync::atomic::AtomicBool,
}

/// The plan notes' connection and the changes this handle has not yet written through it.
struct Notes {
    /// The process's `synchronous = NORMAL` connection to the file, which the sim cloud uses
    /// too (see [`statefile::shared`]). Locked after the notes, never before.
    conn: statefile::SharedConnection,
    /// Notes written through this handle and not yet in the file (see
    /// [`SqliteLedger::put_plan_note`]). This handle reads them from here.
    pending: Vec<PendingNote>,
    /// Notes forgotten since the last batch (see [`SqliteLedger::forget_plan_note`]). This
    /// handle no longer reads them. A key is never both pending and forgotten.
    forgotten: Vec<String>,
}

/// A note waiting for the next batch.
struct PendingNote {
    key: String,
    body: Vec<u8>,
    expires_at_ms: i64,
}

/// Where a note is stored: the row id in `ledger_plan_notes_by_slot`, from the key's 64-bit
/// FNV-1a hash (stable across builds and processes, unlike std's hasher) cut to 63 bits, since
/// row ids are signed. Notes were keyed by their text key, which SQLite indexes in a B-tree of
/// its own: every note read, write and delete went down two trees and wrote a page of each.
/// The row keeps its key; a read or delete that finds another key in the slot (two keys
/// whose hashes agree in 63 bits) misses, and a write replaces it: notes are a cache, so a
/// collision costs the apply-time plan a fresh decision, never a wrong one.
fn note_slot(key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::try_from(hash >> 1).unwrap_or(i64::MAX)
}

/// How many note changes (writes and forgets) go to the file in one transaction. A plan
/// writes one note per workload and an apply forgets one per workload it creates: a
/// transaction each was about a third of a 1,000-workload plan's provider CPU (seven page
/// writes and ten file locks per note), and a twentieth of an apply's.
const NOTE_BATCH: usize = 64;

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sq<'a>(
    path: &'a Path,
    context: &'static str,
) -> impl FnOnce(rusqlite::Error) -> LedgerError + 'a {
    move |source| LedgerError::Sqlite {
        path: path.display().to_string(),
        context,
        source,
    }
}

fn to_u64(v: i64, what: &str) -> Result<u64, LedgerError> {
    u64::try_from(v).map_err(|_| LedgerError::Corrupt {
        detail: format!("negative {what} {v}"),
    })
}

fn to_i64(v: u64) -> i64 {
    // Amounts are validated <= MAX_AMOUNT (2^48) and times are milliseconds since 1970.
    i64::try_from(v).unwrap_or(i64::MAX)
}

type RawRow = (String, String, String, String, [i64; 5], i64, Option<i64>);

fn read_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        [
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
        ],
        row.get(9)?,
        row.get(10)?,
    ))
}

fn from_raw(raw: RawRow) -> Result<Reservation, LedgerError> {
    let (id, node, holder, state, amounts, created, expires) = raw;
    let mut vals = [0u64; 5];
    for (v, a) in vals.iter_mut().zip(amounts) {
        *v = to_u64(a, "amount")?;
    }
    Ok(Reservation {
        id: ReservationId::new(id)?,
        node: NodeId::new(node)?,
        holder: HolderId::new(holder)?,
        amounts: Resources::from_array(vals)?,
        state: ReservationState::parse(&state)?,
        created_at: ms_to_time(to_u64(created, "created_at_ms")?),
        expires_at: match expires {
            Some(e) => Some(ms_to_time(to_u64(e, "expires_at_ms")?)),
            None => None,
        },
    })
}

/// One connection to the ledger file: busy timeout, WAL journal, the given `synchronous`
/// setting and a small page cache.
fn open_connection(path: &Path, durability: Durability) -> Result<Connection, LedgerError> {
    statefile::open(path, BUSY_TIMEOUT, durability).map_err(open_error)
}

/// The ledger's error for a file that would not open.
fn open_error(e: statefile::OpenError) -> LedgerError {
    match e {
        statefile::OpenError::Create { path, source } => LedgerError::Io {
            path,
            context: "creating the database file",
            source,
        },
        statefile::OpenError::Sqlite { path, step, source } => LedgerError::Sqlite {
            path,
            context: step,
            source,
        },
        e @ statefile::OpenError::NotWal { .. } => LedgerError::Corrupt {
            detail: e.to_string(),
        },
    }
}

/// Writes the pending notes and deletes the forgotten ones in one transaction (purging the
/// expired notes of every workload too, when `purge_expired`). On failure both lists stay as
/// they were, for the next batch.
fn write_note_batch(
    path: &Path,
    notes: &mut Notes,
    purge_expired: bool,
) -> Result<(), LedgerError> {
    if notes.pending.is_empty() && notes.forgotten.is_empty() && !purge_expired {
        return Ok(());
    }
    let Notes {
        conn,
        pending,
        forgotten,
    } = notes;
    tx_on(
        path,
        &statefile::lock(conn),
        Begin::Immediate,
        "writing plan notes",
        |tx, path| {
            if purge_expired {
                tx.execute(
                    "DELETE FROM ledger_plan_notes_by_slot WHERE expires_at_ms <= ?1",
                    params![to_i64(now_ms())],
                )
                .map_err(sq(path, "purging expired plan notes"))?;
            }
            if !forgotten.is_empty() {
                let mut delete = tx
                    .prepare_cached(
                        "DELETE FROM ledger_plan_notes_by_slot WHERE slot = ?1 AND key = ?2",
                    )
                    .map_err(sq(path, "forgetting plan notes"))?;
                for key in forgotten.iter() {
                    delete
                        .execute(params![note_slot(key), key])
                        .map_err(sq(path, "forgetting plan notes"))?;
                }
            }
            if !pending.is_empty() {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO ledger_plan_notes_by_slot \
                         (slot, key, body, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(sq(path, "writing a plan note"))?;
                for note in pending.iter() {
                    insert
                        .execute(params![
                            note_slot(&note.key),
                            note.key,
                            note.body,
                            note.expires_at_ms
                        ])
                        .map_err(sq(path, "writing a plan note"))?;
                }
            }
            Ok(())
        },
    )?;
    pending.clear();
    forgotten.clear();
    Ok(())
}

/// [`SqliteLedger::run_tx`] on a connection already locked.
fn tx_on<T>(
    path: &Path,
    conn: &Connection,
    behavior: Begin,
    context: &'static str,
    f: impl FnOnce(&Tx<'_>, &Path) -> Result<T, LedgerError>,
) -> Result<T, LedgerError> {
    let tx = Tx::begin(conn, behavior).map_err(sq(path, context))?;
    let out = f(&tx, path)?;
    tx.commit().map_err(sq(path, context))?;
    Ok(out)
}

impl SqliteLedger {
    /// Opens (creating with mode 0600 if missing) the database file at `path` and creates the
    /// `ledger_` tables if needed. The parent directory must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_path_buf();
        // Reservations wait for fsync (FULL) on a connection of their own; plan notes, a cache
        // of decisions, use the process's NORMAL connection, which the sim shares
        // (`lock_notes`), so neither switches the other's setting.
        let conn = open_connection(&path, Durability::Full)?;
        let notes =
            statefile::shared(&path, BUSY_TIMEOUT, Durability::Normal).map_err(open_error)?;
        let ledger = SqliteLedger {
            path,
            conn: Mutex::new(conn),
            notes: Mutex::new(Notes {
                conn: notes,
                pending: Vec::new(),
                forgotten: Vec::new(),
            }),
            notes_purged: std::sync::atomic::AtomicBool::new(false),
        };
        ledger.with_tx("creating tables", |tx, path| {
            tx.execute_batch(SCHEMA)
                .map_err(sq(path, "creating tables"))
        })?;
        Ok(ledger)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction: the write lock is held from the first read.
    fn with_tx<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Tx<'_>, &Path) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.with_behavior(Begin::Immediate, context, f)
    }

    /// The notes connection, for data that may be lost with the machine (plan notes, which
    /// are a cache of decisions): its commits do not wait for fsync. WAL mode keeps the
    /// database consistent either way; a commit is durable against a killed process at once,
    /// and against power loss from the next synchronous commit on. Plans write one note per
    /// workload, so an fsync each was a third of a 1,000-workload plan's provider CPU;
    /// switching one connection's setting back and forth around each note cost another two
    /// statements per note. With it come the pending and forgotten notes (poisoning: see
    /// [`statefile::lock`]).
    fn lock_notes(&self) -> MutexGuard<'_, Notes> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in a transaction on the notes connection (see [`Self::lock_notes`]).
    #[cfg(test)]
    fn with_notes_tx<T>(
        &self,
        behavior: Begin,
        context: &'static str,
        f: impl FnOnce(&Tx<'_>, &Path) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        tx_on(
            &self.path,
            &statefile::lock(&self.lock_notes().conn),
            behavior,
            context,
            f,
        )
    }

    /// Runs a read-only `f` in a deferred transaction: one consistent WAL snapshot that does not
    /// block writers.
    fn with_read<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Tx<'_>, &Path) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.with_behavior(Begin::Deferred, context, f)
    }

    fn with_behavior<T>(
        &self,
        behavior: Begin,
        context: &'static str,
        f: impl FnOnce(&Tx<'_>, &Path) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.run_tx(&self.conn, behavior, context, f)
    }

    /// Locks `conn` and runs `f` in one transaction of the given behaviour, committed when `f`
    /// succeeds and rolled back (dropped) when it fails.
    fn run_tx<T>(
        &self,
        conn: &Mutex<Connection>,
        behavior: Begin,
        context: &'static str,
        f: impl FnOnce(&Tx<'_>, &Path) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        tx_on(&self.path, &statefile::lock(conn), behavior, context, f)
    }

    fn capacity_of(
        tx: &Tx<'_>,
        path: &Path,
        node: &NodeId,
    ) -> Result<Option<Resources>, LedgerError> {
        let raw: Option<[i64; 5]> = tx
            .query_row(
                "SELECT cpu_millis, memory_mb, storage_gb, gpu, network_mbps \
                 FROM ledger_nodes WHERE node = ?1",
                [node.as_str()],
                |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]),
            )
            .optional()
            .map_err(sq(path, "reading node capacity"))?;
        match raw {
            None => Ok(None),
            Some(raw) => {
                let mut vals = [0u64; 5];
                for (v, a) in vals.iter_mut().zip(raw) {
                    *v = to_u64(a, "capacity")?;
                }
                Ok(Some(Resources::from_array(vals)?))
            }
        }
    }

    fn query(
        tx: &Tx<'_>,
        path: &Path,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Reservation>, LedgerError> {
        let mut stmt = tx
            .prepare_cached(sql)
            .map_err(sq(path, "listing reservations"))?;
        let raws = stmt
            .query_map(params, read_raw)
            .map_err(sq(path, "listing reservations"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sq(path, "listing reservations"))?;
        raws.into_iter().map(from_raw).collect()
    }

    fn active_on(
        tx: &Tx<'_>,
        path: &Path,
        node: &NodeId,
        now: u64,
    ) -> Result<Vec<Reservation>, LedgerError> {
        Self::query(
            tx,
            path,
            &format!(
                "SELECT {COLUMNS} FROM ledger_reservations WHERE node = ?1 \
                 AND (state = 'committed' OR expires_at_ms > ?2) ORDER BY created_at_ms, id"
            ),
            params![node.as_str(), to_i64(now)],
        )
    }

    fn apply_capacity(
        &self,
        node: &NodeId,
        capacity: &Resources,
        force: bool,
    ) -> Result<NodeUsage, LedgerError> {
        capacity.validate()?;
        self.with_tx("setting capacity", |tx, path| {
            let now = now_ms();
            let active = Self::active_on(tx, path, node, now)?;
            let usage = NodeUsage::new(node.clone(), *capacity, &active);
            if !force && !usage.reserved.fits_within(capacity) {
                return Err(LedgerError::CapacityBelowReserved(Box::new(
                    CapacityBelowReserved {
                        node: node.clone(),
                        requested_capacity: *capacity,
                        reserved: usage.reserved,
                        holders: usage.holders,
                    },
                )));
            }
            let c = capacity.to_array().map(to_i64);
            tx.execute(
                "INSERT INTO ledger_nodes \
                 (node, cpu_millis, memory_mb, storage_gb, gpu, network_mbps, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (node) DO UPDATE SET cpu_millis = excluded.cpu_millis, \
                 memory_mb = excluded.memory_mb, storage_gb = excluded.storage_gb, \
                 gpu = excluded.gpu, network_mbps = excluded.network_mbps, \
                 updated_at_ms = excluded.updated_at_ms",
                params![node.as_str(), c[0], c[1], c[2], c[3], c[4], to_i64(now)],
            )
            .map_err(sq(path, "setting capacity"))?;
            Ok(usage)
        })
    }
}

impl Ledger for SqliteLedger {
    fn location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn set_capacity(&self, node: &NodeId, capacity: &Resources) -> Result<NodeUsage, LedgerError> {
        self.apply_capacity(node, capacity, false)
    }

    fn force_capacity(
        &self,
        node: &NodeId,
        capacity: &Resources,
    ) -> Result<NodeUsage, LedgerError> {
        self.apply_capacity(node, capacity, true)
    }

    fn remove_node(&self, node: &NodeId) -> Result<bool, LedgerError> {
        self.with_tx("removing node", |tx, path| {
            if Self::capacity_of(tx, path, node)?.is_none() {
                return Ok(false);
            }
            let active = Self::active_on(tx, path, node, now_ms())?;
            if !active.is_empty() {
                let usage = NodeUsage::new(node.clone(), Resources::ZERO, &active);
                return Err(LedgerError::NodeInUse {
                    node: node.clone(),
                    holders: usage.holders,
                });
            }
            tx.execute(
                "DELETE FROM ledger_reservations WHERE node = ?1",
                [node.as_str()],
            )
            .map_err(sq(path, "removing node"))?;
            tx.execute("DELETE FROM ledger_nodes WHERE node = ?1", [node.as_str()])
                .map_err(sq(path, "removing node"))?;
            Ok(true)
        })
    }

    fn reserve(
        &self,
        node: &NodeId,
        amounts: &Resources,
        holder: &HolderId,
        lease: Option<Duration>,
    ) -> Result<Reservation, LedgerError> {
        amounts.validate()?;
        let lease_ms = lease_millis(lease)?;
        self.with_tx("reserving", |tx, path| {
            let now = now_ms();
            let capacity = Self::capacity_of(tx, path, node)?
                .ok_or_else(|| LedgerError::UnknownNode { node: node.clone() })?;
            let grace = u64::try_from(EXPIRED_GRACE.as_millis()).unwrap_or(u64::MAX);
            tx.execute(
                "DELETE FROM ledger_reservations WHERE state = 'pending' AND expires_at_ms <= ?1",
                [to_i64(now.saturating_sub(grace))],
            )
            .map_err(sq(path, "purging expired leases"))?;
            let active = Self::active_on(tx, path, node, now)?;
            if let Some(existing) = active.iter().find(|r| &r.holder == holder) {
                if existing.amounts == *amounts {
                    return Ok(existing.clone());
                }
                return Err(LedgerError::HolderConflict(Box::new(HolderConflict {
                    node: node.clone(),
                    holder: holder.clone(),
                    existing_id: existing.id.clone(),
                    existing: existing.amounts,
                    requested: *amounts,
                })));
            }
            let usage = NodeUsage::new(node.clone(), capacity, &active);
            let wanted = usage.reserved.saturating_add(amounts);
            if !wanted.fits_within(&capacity) {
                return Err(LedgerError::InsufficientCapacity(Box::new(Shortage {
                    node: node.clone(),
                    requested: *amounts,
                    free: usage.free,
                    capacity,
                    short: wanted.exceeding(&capacity),
                    holders: usage.holders,
                })));
            }
            let reservation = Reservation {
                id: ReservationId::generate(),
                node: node.clone(),
                holder: holder.clone(),
                amounts: *amounts,
                state: ReservationState::Pending,
                created_at: ms_to_time(now),
                expires_at: Some(ms_to_time(now.saturating_add(lease_ms))),
            };
            let a = amounts.to_array().map(to_i64);
            tx.execute(
                &format!(
                    "INSERT INTO ledger_reservations ({COLUMNS}) \
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    reservation.id.as_str(),
                    node.as_str(),
                    holder.as_str(),
                    a[0],
                    a[1],
                    a[2],
                    a[3],
                    a[4],
                    to_i64(now),
                    to_i64(now.saturating_add(lease_ms)),
                ],
            )
            .map_err(sq(path, "reserving"))?;
            Ok(reservation)
        })
    }

    fn commit(&self, id: &ReservationId) -> Result<Reservation, LedgerError> {
        self.with_tx("committing", |tx, path| {
            let mut found = Self::query(
                tx,
                path,
                &format!("SELECT {COLUMNS} FROM ledger_reservations WHERE id = ?1"),
                [id.as_str()],
            )?;
            let Some(mut r) = found.pop() else {
                return Err(LedgerError::ReservationNotFound { id: id.clone() });
            };
            if r.state == ReservationState::Committed {
                return Ok(r);
            }
            let expires_at = r.expires_at.unwrap_or(r.created_at);
            if expires_at <= ms_to_time(now_ms()) {
                return Err(LedgerError::LeaseExpired {
                    id: r.id,
                    node: r.node,
                    holder: r.holder,
                    expired_at: expires_at,
                });
            }
            tx.execute(
                "UPDATE ledger_reservations SET state = 'committed', expires_at_ms = NULL \
                 WHERE id = ?1",
                [id.as_str()],
            )
            .map_err(sq(path, "committing"))?;
            r.state = ReservationState::Committed;
            r.expires_at = None;
            Ok(r)
        })
    }

    fn release(&self, id: &ReservationId) -> Result<bool, LedgerError> {
        self.with_tx("releasing", |tx, path| {
            let n = tx
                .execute(
                    "DELETE FROM ledger_reservations WHERE id = ?1",
                    [id.as_str()],
                )
                .map_err(sq(path, "releasing"))?;
            Ok(n > 0)
        })
    }

    fn release_holder(&self, holder: &HolderId) -> Result<usize, LedgerError> {
        self.with_tx("releasing holder", |tx, path| {
            tx.execute(
                "DELETE FROM ledger_reservations WHERE holder = ?1",
                [holder.as_str()],
            )
            .map_err(sq(path, "releasing holder"))
        })
    }

    fn list(&self, node: Option<&NodeId>) -> Result<Vec<Reservation>, LedgerError> {
        self.with_read("listing", |tx, path| {
            let now = now_ms();
            match node {
                Some(node) => Self::active_on(tx, path, node, now),
                None => Self::query(
                    tx,
                    path,
                    &format!(
                        "SELECT {COLUMNS} FROM ledger_reservations \
                         WHERE state = 'committed' OR expires_at_ms > ?1 \
                         ORDER BY node, created_at_ms, id"
                    ),
                    [to_i64(now)],
                ),
            }
        })
    }

    fn usage(&self, node: &NodeId) -> Result<NodeUsage, LedgerError> {
        self.with_read("reading usage", |tx, path| {
            let capacity = Self::capacity_of(tx, path, node)?
                .ok_or_else(|| LedgerError::UnknownNode { node: node.clone() })?;
            let active = Self::active_on(tx, path, node, now_ms())?;
            Ok(NodeUsage::new(node.clone(), capacity, &active))
        })
    }

    fn nodes(&self) -> Result<Vec<NodeId>, LedgerError> {
        self.with_read("listing nodes", |tx, path| {
            let mut stmt = tx
                .prepare("SELECT node FROM ledger_nodes ORDER BY node")
                .map_err(sq(path, "listing nodes"))?;
            let names = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(sq(path, "listing nodes"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sq(path, "listing nodes"))?;
            names.into_iter().map(NodeId::new).collect()
        })
    }

    /// The note joins this handle's batch: it reaches the file with the next full batch of
    /// `NOTE_BATCH` (64) changes, with [`Ledger::flush_plan_notes`], or when the handle is
    /// dropped (the provider process ends), whichever comes first. The apply-time plan that
    /// reads it runs in a later process (Terraform closes a walk's providers before the next
    /// walk starts), and this handle reads its own pending notes. A note lost with a killed
    /// process is a cache miss: the apply-time plan decides afresh.
    fn put_plan_note(&self, key: &str, body: &[u8], ttl: Duration) -> Result<(), LedgerError> {
        let expires = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let note = PendingNote {
            key: key.to_owned(),
            body: body.to_vec(),
            expires_at_ms: to_i64(expires),
        };
        let mut notes = self.lock_notes();
        // A new note under a forgotten key replaces the old one instead of being deleted with it.
        notes.forgotten.retain(|k| k != key);
        match notes.pending.iter_mut().find(|n| n.key == key) {
            Some(earlier) => *earlier = note,
            None => notes.pending.push(note),
        }
        self.write_batch_if_full(&mut notes)
    }

    fn plan_note(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let notes = self.lock_notes();
        if notes.forgotten.iter().any(|k| k == key) {
            return Ok(None);
        }
        if let Some(note) = notes.pending.iter().find(|n| n.key == key) {
            return Ok((note.expires_at_ms > to_i64(now_ms())).then(|| note.body.clone()));
        }
        // One statement reads one consistent snapshot by itself: no BEGIN and COMMIT around it.
        let conn = statefile::lock(&notes.conn);
        let found = conn
            .prepare_cached(
                "SELECT key, body FROM ledger_plan_notes_by_slot \
                 WHERE slot = ?1 AND expires_at_ms > ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![note_slot(key), to_i64(now_ms())], |r| {
                    // Another key in the slot (see `note_slot`) is a miss.
                    Ok((r.get_ref(0)?.as_str()? == key).then(|| r.get::<_, Vec<u8>>(1)))
                })
                .optional()
            })
            .map_err(sq(&self.path, "reading a plan note"))?;
        found
            .flatten()
            .transpose()
            .map_err(sq(&self.path, "reading a plan note"))
    }

    /// This handle stops reading the note at once; the file loses it with the next batch (see
    /// [`Self::put_plan_note`]). Until then other handles may still read it, and a process
    /// killed before that leaves it to expire with its TTL, as a failed delete always did: a
    /// note is a cache of a decision, checked against its inputs and against capacity before
    /// it is used.
    fn forget_plan_note(&self, key: &str) -> Result<(), LedgerError> {
        let mut notes = self.lock_notes();
        // A pending note may still have an older version in the file: delete it there too.
        notes.pending.retain(|n| n.key != key);
        if !notes.forgotten.iter().any(|k| k == key) {
            notes.forgotten.push(key.to_owned());
        }
        self.write_batch_if_full(&mut notes)
    }

    fn flush_plan_notes(&self) -> Result<(), LedgerError> {
        let mut notes = self.lock_notes();
        self.write_batch(&mut notes)
    }
}

impl SqliteLedger {
    fn write_batch_if_full(&self, notes: &mut Notes) -> Result<(), LedgerError> {
        if notes.pending.len() + notes.forgotten.len() < NOTE_BATCH {
            return Ok(());
        }
        self.write_batch(notes)
    }

    /// Writes the batch. Expired notes of every workload go with the first batch of each
    /// handle (each plan or apply), so the table stays small without a scan per note.
    fn write_batch(&self, notes: &mut Notes) -> Result<(), LedgerError> {
        let purge = !self.notes_purged.load(std::sync::atomic::Ordering::Relaxed)
            && !notes.pending.is_empty();
        write_note_batch(&self.path, notes, purge)?;
        if purge {
            self.notes_purged
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Drop for SqliteLedger {
    fn drop(&mut self) {
        // Best effort (the provider flushes first and logs a failure): a note not written is a
        // cache miss for the apply-time plan, and a note not deleted expires with its TTL.
        let _ = self.flush_plan_notes();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rows(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM ledger_plan_notes_by_slot", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    #[test]
    fn plan_notes_skip_fsync_but_reservations_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SqliteLedger::open(dir.path().join("ledger.db")).unwrap();
        let synchronous = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(
            synchronous(&statefile::lock(&ledger.conn)),
            2,
            "reservations: FULL"
        );
        ledger
            .with_notes_tx(Begin::Immediate, "test", |tx, _| {
                assert_eq!(synchronous(tx), 1, "NORMAL inside a note write");
                Ok(())
            })
            .unwrap();
        let failed: Result<(), _> = ledger.with_notes_tx(Begin::Immediate, "test", |_, _| {
            Err(LedgerError::Corrupt {
                detail: "test".into(),
            })
        });
        assert!(failed.is_err());
        ledger
            .put_plan_note("wl-a", b"a", Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            ledger.plan_note("wl-a").unwrap().as_deref(),
            Some(&b"a"[..])
        );
        ledger.flush_plan_notes().unwrap();
        assert_eq!(
            synchronous(&statefile::lock(&ledger.conn)),
            2,
            "reservations still FULL after note writes, failed or not"
        );
        // What the notes connection wrote, the reservations connection (and so every other
        // process) reads.
        let seen: Vec<u8> = statefile::lock(&ledger.conn)
            .query_row(
                "SELECT body FROM ledger_plan_notes_by_slot WHERE key = 'wl-a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(seen, b"a");
        ledger.forget_plan_note("wl-a").unwrap();
        assert_eq!(ledger.plan_note("wl-a").unwrap(), None);
    }

    #[test]
    fn notes_reach_the_file_in_batches_and_when_the_handle_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let in_file = |key: &str| -> Option<Vec<u8>> {
            let conn = Connection::open(&path).unwrap();
            conn.query_row(
                "SELECT body FROM ledger_plan_notes_by_slot WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
        };
        let ttl = Duration::from_secs(60);
        let ledger = SqliteLedger::open(&path).unwrap();
        for i in 0..NOTE_BATCH - 1 {
            ledger.put_plan_note(&format!("wl-{i}"), b"n", ttl).unwrap();
        }
        assert_eq!(in_file("wl-0"), None, "the batch is not full yet");
        assert_eq!(
            ledger.plan_note("wl-0").unwrap().as_deref(),
            Some(&b"n"[..]),
            "this handle reads its pending notes"
        );
        // A second write of one key replaces its pending note instead of adding another.
        ledger.put_plan_note("wl-0", b"n2", ttl).unwrap();
        assert_eq!(in_file("wl-0"), None);
        ledger.put_plan_note("wl-last", b"n", ttl).unwrap();
        assert_eq!(
            in_file("wl-0").as_deref(),
            Some(&b"n2"[..]),
            "a full batch is written"
        );
        assert_eq!(in_file("wl-last").as_deref(), Some(&b"n"[..]));

        // Forgetting: gone for this handle at once, from the file with the next batch.
        ledger.forget_plan_note("wl-0").unwrap();
        ledger.forget_plan_note("wl-0").unwrap();
        assert_eq!(ledger.plan_note("wl-0").unwrap(), None);
        assert!(
            in_file("wl-0").is_some(),
            "still in the file: the batch is not full"
        );
        // A note written again under a forgotten key is not deleted by the pending batch.
        ledger.forget_plan_note("wl-1").unwrap();
        ledger.put_plan_note("wl-1", b"again", ttl).unwrap();
        assert_eq!(
            ledger.plan_note("wl-1").unwrap().as_deref(),
            Some(&b"again"[..])
        );
        // A pending note that is forgotten is not written, and its file version is deleted.
        ledger.put_plan_note("wl-2", b"pending", ttl).unwrap();
        ledger.forget_plan_note("wl-2").unwrap();
        assert_eq!(ledger.plan_note("wl-2").unwrap(), None);
        for i in 3..NOTE_BATCH {
            ledger.forget_plan_note(&format!("wl-{i}")).unwrap();
        }
        assert_eq!(in_file("wl-0"), None, "a full batch is deleted");
        assert_eq!(in_file("wl-2"), None);
        assert_eq!(in_file("wl-1").as_deref(), Some(&b"again"[..]));
        assert_eq!(
            ledger.plan_note("wl-1").unwrap().as_deref(),
            Some(&b"again"[..])
        );

        ledger.forget_plan_note("wl-1").unwrap();
        ledger.put_plan_note("wl-new", b"kept", ttl).unwrap();
        assert!(in_file("wl-1").is_some());
        assert_eq!(in_file("wl-new"), None);
        drop(ledger);
        assert_eq!(in_file("wl-1"), None, "deleted when the handle is dropped");
        assert_eq!(
            in_file("wl-new").as_deref(),
            Some(&b"kept"[..]),
            "written when dropped"
        );
        let next = SqliteLedger::open(&path).unwrap();
        assert_eq!(next.plan_note("wl-1").unwrap(), None);
        assert_eq!(
            next.plan_note("wl-new").unwrap().as_deref(),
            Some(&b"kept"[..])
        );
    }

    #[test]
    fn a_note_slot_holding_another_key_is_a_miss_and_stays_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let ledger = SqliteLedger::open(&path).unwrap();
        assert_ne!(note_slot("wl-a"), note_slot("wl-b"));
        assert!(note_slot("wl-a") >= 0 && note_slot("") >= 0);
        // Two keys whose hashes agree (made here by writing the row by hand).
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO ledger_plan_notes_by_slot (slot, key, body, expires_at_ms) \
                 VALUES (?1, 'wl-other', x'6f', ?2)",
                params![note_slot("wl-a"), i64::MAX],
            )
            .unwrap();
        assert_eq!(ledger.plan_note("wl-a").unwrap(), None);
        ledger.forget_plan_note("wl-a").unwrap();
        ledger.flush_plan_notes().unwrap();
        assert_eq!(rows(&path), 1, "a forget deletes its own key only");
        // A write takes the slot over.
        ledger
            .put_plan_note("wl-a", b"mine", Duration::from_secs(60))
            .unwrap();
        ledger.flush_plan_notes().unwrap();
        let next = SqliteLedger::open(&path).unwrap();
        assert_eq!(
            next.plan_note("wl-a").unwrap().as_deref(),
            Some(&b"mine"[..])
        );
        assert_eq!(rows(&path), 1);
    }

    #[test]
    fn notes_in_the_earlier_text_keyed_table_are_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE ledger_plan_notes (key TEXT PRIMARY KEY, body TEXT NOT NULL, \
                 expires_at_ms INTEGER NOT NULL); \
                 INSERT INTO ledger_plan_notes VALUES ('wl-a', '{}', 9999999999999);",
            )
            .unwrap();
        let ledger = SqliteLedger::open(&path).unwrap();
        assert_eq!(ledger.plan_note("wl-a").unwrap(), None);
        let left: i64 = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'ledger_plan_notes'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_pending_note_expires_like_a_written_one() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SqliteLedger::open(dir.path().join("l.db")).unwrap();
        ledger
            .put_plan_note("wl-a", b"a", Duration::from_millis(1))
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(ledger.plan_note("wl-a").unwrap(), None);
    }

    #[test]
    fn a_failed_batch_keeps_its_notes_for_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let ledger = SqliteLedger::open(&path).unwrap();
        ledger
            .put_plan_note("wl-a", b"a", Duration::from_secs(60))
            .unwrap();
        ledger.forget_plan_note("wl-old").unwrap();
        // Another connection holds the write lock past the notes connection's busy timeout.
        statefile::lock(&ledger.lock_notes().conn)
            .busy_timeout(Duration::from_millis(10))
            .unwrap();
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert!(ledger.flush_plan_notes().is_err());
        blocker.execute_batch("COMMIT").unwrap();
        assert_eq!(
            ledger.plan_note("wl-a").unwrap().as_deref(),
            Some(&b"a"[..])
        );
        ledger.flush_plan_notes().unwrap();
        assert_eq!(rows(&path), 1);
        assert_eq!(
            SqliteLedger::open(&path)
                .unwrap()
                .plan_note("wl-a")
                .unwrap()
                .as_deref(),
            Some(&b"a"[..])
        );
    }

    #[test]
    fn expired_plan_notes_go_with_the_first_batch_each_handle_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let first = SqliteLedger::open(&path).unwrap();
        first
            .put_plan_note("wl-old", b"stale", Duration::from_millis(1))
            .unwrap();
        first.flush_plan_notes().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        // The same handle does not scan again...
        first
            .put_plan_note("wl-a", b"a", Duration::from_secs(60))
            .unwrap();
        first.flush_plan_notes().unwrap();
        assert_eq!(rows(&path), 2);
        // ...the next process (a new handle) purges with its first batch.
        let next = SqliteLedger::open(&path).unwrap();
        next.put_plan_note("wl-b", b"b", Duration::from_secs(60))
            .unwrap();
        next.flush_plan_notes().unwrap();
        assert_eq!(rows(&path), 2);
        assert_eq!(next.plan_note("wl-old").unwrap(), None);
        assert_eq!(next.plan_note("wl-a").unwrap().as_deref(), Some(&b"a"[..]));
    }
}
