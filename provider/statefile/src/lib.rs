//! The provider's local state file: one SQLite database that the sim cloud, the capacity ledger
//! and the plan notes share, and that several processes (the plugin processes of one run, and
//! separate `terraform` runs) open at the same time.
//!
//! Every connection to it must be opened the same way, so this crate is the one place that does
//! it: the file is created owner-only (it holds instance metadata and reservations), waits for
//! other writers instead of failing (`busy_timeout`), uses WAL so readers never block writers,
//! and keeps a small page cache (the OS caches the file anyway).
//!
//! Within one process, the parts that write with the same durability share one connection
//! ([`shared`]): SQLite drops a connection's whole page cache when it finds that another
//! connection has written to the file since its last transaction, so two connections of one
//! process taking turns (the sim's create, then the next plan note's read) re-read every page
//! from the file on every turn.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// What failed while opening the file, with the file named.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused one of the opening steps.
    #[error("{path}: {step}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// The step, e.g. "switching to WAL".
        step: &'static str,
        /// SQLite's answer.
        source: rusqlite::Error,
    },
    /// The file is on a filesystem or in a state where WAL cannot be used.
    #[error("{path} refused WAL journal mode (got {mode})")]
    NotWal {
        /// The file.
        path: String,
        /// The journal mode SQLite kept.
        mode: String,
    },
}

/// How a connection's commits wait for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit waits for fsync (`synchronous = FULL`): for what must survive power loss.
    Full,
    /// Commits survive a killed process at once and power loss from the next checkpoint on
    /// (`synchronous = NORMAL`, safe with WAL).
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// Page cache per connection, in KiB: a lookup touches three or four pages, and SQLite's
/// default (2 MB) would hold most of a thousand-instance file in the plugin's own memory.
const CACHE_KIB: i64 = 512;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Creates `path` with mode 0600 when it does not exist; an existing file is left as it is.
pub fn create_owner_only(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens a connection to the shared file at `path` (created owner-only if missing): WAL,
/// `busy_timeout`, the given durability and a small page cache.
pub fn open(
    path: &Path,
    busy_timeout: Duration,
    durability: Durability,
) -> Result<Connection, OpenError> {
    let shown = || path.display().to_string();
    let sqlite = |step| {
        move |source| OpenError::Sqlite {
            path: path.display().to_string(),
            step,
            source,
        }
    };
    create_owner_only(path).map_err(|source| OpenError::Create {
        path: shown(),
        source,
    })?;
    let conn = Connection::open(path).map_err(sqlite("opening"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(sqlite("setting busy_timeout"))?;
    // Switching to WAL takes an exclusive lock, and SQLite may answer SQLITE_BUSY at once
    // (without its busy handler) while another process is switching or recovering the same
    // fresh file: retry that, within the same bound as every other wait.
    let started = Instant::now();
    let mode: String = loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
            Ok(mode) => break mode,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && started.elapsed() < busy_timeout =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(sqlite("switching to WAL")(e)),
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::NotWal {
            path: shown(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", durability.pragma())
        .map_err(sqlite("setting synchronous"))?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)
        .map_err(sqlite("setting cache_size"))?;
    // The sim and the plan notes share a connection (see [`shared`]), with about twenty
    // statements between them: rusqlite's default of sixteen would evict and re-parse them.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// A connection that several parts of one process use in turn (see [`shared`]).
pub type SharedConnection = Arc<Mutex<Connection>>;

/// The shared connections that are still in use, by file and durability. A connection closes
/// when its last user lets go of it; the entry is then dead and is pruned by the next lookup.
type Registry = Vec<(PathBuf, Durability, Weak<Mutex<Connection>>)>;

static SHARED: Mutex<Registry> = Mutex::new(Vec::new());

/// The process's connection to `path` with `durability`, opened with [`open`] by the first
/// caller and handed to every later one while any of them holds it. The file is named by its
/// canonical path, so two spellings of one file share a connection. `busy_timeout` is the
/// first caller's.
///
/// Lock it with [`lock`] for the span of one statement or transaction, and never while holding
/// another lock that a user of the same connection takes after it.
pub fn shared(
    path: &Path,
    busy_timeout: Duration,
    durability: Durability,
) -> Result<SharedConnection, OpenError> {
    create_owner_only(path).map_err(|source| OpenError::Create {
        path: path.display().to_string(),
        source,
    })?;
    let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // Held while opening, so that two threads asking at once still get one connection.
    let mut registry = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    registry.retain(|(_, _, conn)| conn.strong_count() > 0);
    let existing = registry
        .iter()
        .filter(|(f, d, _)| *f == file && *d == durability)
        .find_map(|(_, _, conn)| conn.upgrade());
    if let Some(conn) = existing {
        return Ok(conn);
    }
    let conn = Arc::new(Mutex::new(open(path, busy_timeout, durability)?));
    registry.push((file, durability, Arc::downgrade(&conn)));
    Ok(conn)
}

/// Locks a shared connection. A panic while it was held cannot have left a transaction half
/// done (an open transaction rolls back when dropped), so a poisoned lock is still usable.
pub fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a [`Tx`] begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Takes no lock until the first statement: a read sees one consistent snapshot and never
    /// blocks a writer.
    Deferred,
    /// Takes the write lock at once, so that what the transaction reads stays true until it
    /// commits (waiting up to the busy timeout for another writer).
    Immediate,
}

/// A transaction on one connection: committed with [`Tx::commit`], rolled back when dropped
/// without it. It derefs to the connection for its statements.
///
/// Unlike `rusqlite::Transaction`, which parses its `BEGIN` and `COMMIT` anew each time, it
/// prepares them once per connection (a thousand sim creates parsed them two thousand times).
pub struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    /// Begins a transaction on `conn`.
    pub fn begin(conn: &'c Connection, begin: Begin) -> rusqlite::Result<Tx<'c>> {
        let sql = match begin {
            Begin::Deferred => "BEGIN DEFERRED",
            Begin::Immediate => "BEGIN IMMEDIATE",
        };
        conn.prepare_cached(sql)?.execute([])?;
        Ok(Tx { conn, open: true })
    }

    /// Commits. On failure the transaction is rolled back (when this value is dropped).
    pub fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            // Nothing to report to: a rollback that fails leaves SQLite to roll back when the
            // connection closes, and the next BEGIN fails loudly meanwhile.
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut stmt| stmt.execute([]));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pragma(conn: &Connection, name: &str) -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap()
    }

    #[test]
    fn opens_owner_only_in_wal_with_the_asked_durability() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let full = open(&path, Duration::from_secs(5), Durability::Full).unwrap();
        let normal = open(&path, Duration::from_secs(5), Durability::Normal).unwrap();
        assert_eq!(pragma(&full, "journal_mode"), "wal");
        assert_eq!(pragma(&full, "synchronous"), "2");
        assert_eq!(pragma(&normal, "synchronous"), "1");
        assert_eq!(pragma(&normal, "cache_size"), (-CACHE_KIB).to_string());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_existing_file_keeps_its_permissions_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let conn = open(&path, Duration::from_secs(5), Durability::Full).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (7);")
            .unwrap();
        drop(conn);
        let again = open(&path, Duration::from_secs(5), Durability::Normal).unwrap();
        let x: i64 = again
            .query_row("SELECT x FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 7);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("state.db");
        let err = open(&path, Duration::from_secs(1), Durability::Full).unwrap_err();
        assert!(matches!(err, OpenError::Create { .. }), "{err}");
        assert!(err.to_string().contains("state.db"), "{err}");
    }

    #[test]
    fn one_connection_per_file_and_durability_while_it_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = shared(&path, Duration::from_secs(5), Durability::Normal).unwrap();
        // Another spelling of the same file.
        let b = shared(
            &dir.path().join(".").join("state.db"),
            Duration::from_secs(5),
            Durability::Normal,
        )
        .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let full = shared(&path, Duration::from_secs(5), Durability::Full).unwrap();
        assert!(!Arc::ptr_eq(&a, &full));
        assert_eq!(pragma(&lock(&full), "synchronous"), "2");
        let other = shared(
            &dir.path().join("other.db"),
            Duration::from_secs(5),
            Durability::Normal,
        )
        .unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        // Once every user has let go, the connection closes and the next caller opens anew.
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none());
        let again = shared(&path, Duration::from_secs(5), Durability::Normal).unwrap();
        lock(&again)
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        assert_eq!(pragma(&lock(&again), "synchronous"), "1");
    }

    #[test]
    fn a_tx_commits_or_rolls_back_and_reuses_its_statements() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let conn = open(&path, Duration::from_secs(5), Durability::Normal).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        for round in 0..3 {
            let tx = Tx::begin(&conn, Begin::Immediate).unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", [round]).unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(count(&conn), 3);
        {
            let tx = Tx::begin(&conn, Begin::Immediate).unwrap();
            tx.execute("INSERT INTO t VALUES (9)", []).unwrap();
            // Dropped without a commit.
        }
        assert!(conn.is_autocommit(), "the dropped transaction ended");
        assert_eq!(count(&conn), 3);
        // An immediate transaction holds the write lock from BEGIN: another connection's
        // writer waits, and gives up after its busy timeout.
        let other = open(&path, Duration::from_millis(50), Durability::Normal).unwrap();
        let tx = Tx::begin(&conn, Begin::Immediate).unwrap();
        assert!(Tx::begin(&other, Begin::Immediate).is_err());
        let read = Tx::begin(&other, Begin::Deferred).unwrap();
        assert_eq!(count(&read), 3);
        drop(read);
        tx.commit().unwrap();
        assert!(Tx::begin(&other, Begin::Immediate)
            .unwrap()
            .commit()
            .is_ok());
    }
}
