//! Capacity ledger: makes sure separate Terraform runs (separate workspaces, even separate
//! machines sharing one Redis) never double-book an edge node.
//!
//! `terraform plan` reads [`Ledger::free`]; `terraform apply` calls [`Ledger::reserve`] for exactly
//! what the plan showed — which fails with [`LedgerError::InsufficientCapacity`] naming the
//! holders if someone took the capacity meanwhile (the provider must then fail the apply, never
//! re-place silently) — creates the workload, and then [`Ledger::commit`]s; destroy calls
//! [`Ledger::release`] / [`Ledger::release_holder`].
//!
//! # Lifecycle
//!
//! ```text
//!   reserve ──▶ PENDING (lease, default 15 min) ──commit──▶ COMMITTED ──release──▶ (gone)
//!                  │                                                ▲
//!                  ├── lease runs out ──▶ stops counting ───────────┘ purged after 1 h
//!                  └── release / release_holder ──▶ (gone)
//! ```
//!
//! * A reservation counts against capacity while it is committed, or pending and unexpired.
//!   `reserve` succeeds only if `committed + unexpired pending + amounts <= capacity` in every
//!   dimension, checked and written atomically (SQLite `BEGIN IMMEDIATE`, a Redis Lua script).
//! * **Recovery rule.** A holder killed between `reserve` and `commit` (crashed apply, SIGKILL,
//!   lost machine) leaks nothing: its pending lease stops counting when it expires. A committed
//!   reservation stands for a workload that exists, so it lasts until destroy releases it; an
//!   operator recovers one whose workload is gone with `release_holder(workload id)`.
//! * `commit` after the lease ran out fails with [`LedgerError::LeaseExpired`]; the caller may
//!   `reserve` again, which fails loudly if the capacity is gone.
//! * Re-reserving with the same holder on the same node is idempotent: the existing active
//!   reservation is returned (unchanged: its lease is not extended) if the amounts are equal,
//!   and [`LedgerError::HolderConflict`] is returned if they differ.
//! * `release` and `release_holder` are idempotent (releasing twice is not an error).
//! * [`Ledger::set_capacity`] refuses to go below what is reserved
//!   ([`LedgerError::CapacityBelowReserved`]); [`Ledger::force_capacity`] applies it anyway
//!   (the hardware really shrank) and reports the overcommit in [`NodeUsage::overcommitted`];
//!   an overcommitted node simply has zero free until enough is released.
//!
//! # Plan notes
//!
//! Terraform plans a resource twice: at `terraform plan`, and again during apply, with nothing in
//! the second request that says what the first one decided. An edge placement depends on free
//! capacity, which other workspaces change in between, so the second plan could pick another
//! node, and Terraform rejects that as an inconsistent plan. The provider therefore writes the
//! decision it showed as a *plan note* (keyed by workload and inputs, with a time to live) in the
//! same store as the reservations, so every machine sharing the ledger sees it; the apply-time
//! plan repeats it, and the reservation then succeeds or fails loudly. A note is not a
//! reservation: it never holds capacity. The SQLite backend stores notes in batches, and the
//! rest when the handle closes: the apply-time plan always runs in a later provider process
//! than the plan that wrote the note, and Redis, shared between machines, writes each at once.
//!
//! # Why a synchronous trait
//!
//! Both drivers are blocking (rusqlite has no async API; the sync `redis` API avoids pulling a
//! runtime and feature flags into this crate), every call is one short transaction or one script,
//! and the provider calls it a handful of times per apply, straight from its handlers: a call
//! holds the provider's one runtime thread for about as long as a context switch to a blocking
//! pool would take. An async trait would need `async-trait` or boxed futures and a runtime
//! choice here, for no throughput gain.
//!
//! # Backends
//!
//! [`open`] picks one from a location: `redis://`, `rediss://` → [`RedisLedger`];
//! `sqlite://path` or a plain path → [`SqliteLedger`]. See each type for its storage layout.

mod error;
mod redis_backend;
mod sqlite;
mod types;

use std::time::Duration;

pub use error::{CapacityBelowReserved, HolderConflict, LedgerError, Shortage};
pub use redis_backend::{RedactedUrl, RedisLedger};
pub use sqlite::SqliteLedger;
pub use types::{
    Dimension, HolderId, HolderUsage, NodeId, NodeUsage, Reservation, ReservationId,
    ReservationState, Resources, DEFAULT_LEASE, EXPIRED_GRACE, MAX_AMOUNT, MAX_ID_LEN, MAX_LEASE,
};

/// The capacity ledger. Every method is atomic with respect to every other process using the
/// same store.
pub trait Ledger: Send + Sync + std::fmt::Debug {
    /// A description of the store for logs, with any password redacted.
    fn location(&self) -> String;

    /// Registers `node` or changes its capacity. Refuses (changing nothing) if the new capacity
    /// is below what is reserved in any dimension.
    fn set_capacity(&self, node: &NodeId, capacity: &Resources) -> Result<NodeUsage, LedgerError>;

    /// Like [`Ledger::set_capacity`] but applies a capacity below what is reserved; the result's
    /// [`NodeUsage::overcommitted`] says which dimensions are over, so the caller can warn.
    fn force_capacity(&self, node: &NodeId, capacity: &Resources)
        -> Result<NodeUsage, LedgerError>;

    /// Forgets a node. Returns `false` if it was not registered. Refuses with
    /// [`LedgerError::NodeInUse`] while it has active reservations.
    fn remove_node(&self, node: &NodeId) -> Result<bool, LedgerError>;

    /// Reserves `amounts` on `node` for `holder` as a pending reservation with `lease`
    /// (`None` = [`DEFAULT_LEASE`]). Atomic: succeeds only if it fits next to every committed and
    /// unexpired pending reservation. Idempotent per (node, holder), see the crate docs.
    fn reserve(
        &self,
        node: &NodeId,
        amounts: &Resources,
        holder: &HolderId,
        lease: Option<Duration>,
    ) -> Result<Reservation, LedgerError>;

    /// Turns a pending reservation into a durable one (idempotent on a committed one).
    fn commit(&self, id: &ReservationId) -> Result<Reservation, LedgerError>;

    /// Releases one reservation. Returns `false` if it did not exist (idempotent).
    fn release(&self, id: &ReservationId) -> Result<bool, LedgerError>;

    /// Releases every reservation of `holder` on every node; returns how many existed.
    fn release_holder(&self, holder: &HolderId) -> Result<usize, LedgerError>;

    /// Active reservations (committed, or pending and unexpired) on `node`, or on every node.
    fn list(&self, node: Option<&NodeId>) -> Result<Vec<Reservation>, LedgerError>;

    /// Capacity, reserved, free and holders of one node.
    fn usage(&self, node: &NodeId) -> Result<NodeUsage, LedgerError>;

    /// Free capacity of `node` (what plan shows).
    fn free(&self, node: &NodeId) -> Result<Resources, LedgerError> {
        Ok(self.usage(node)?.free)
    }

    /// Every registered node, sorted.
    fn nodes(&self) -> Result<Vec<NodeId>, LedgerError>;

    /// Remembers a plan-time decision (`body`, opaque to the ledger) under `key` for `ttl`,
    /// replacing an earlier one. See [the plan-notes section](crate#plan-notes).
    fn put_plan_note(&self, key: &str, body: &[u8], ttl: Duration) -> Result<(), LedgerError>;

    /// The note under `key`, unless it expired or was never written.
    fn plan_note(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError>;

    /// Forgets the note under `key` (idempotent): this handle no longer reads it. A backend
    /// may delete it from its store later (the SQLite one does, in batches); until then other
    /// handles may still read it, and a note never deleted expires with its TTL.
    fn forget_plan_note(&self, key: &str) -> Result<(), LedgerError>;

    /// Writes the notes this handle holds back, if it holds any: a backend may keep written and
    /// forgotten notes in the handle and store them in batches (the SQLite one does, and also
    /// when the handle is dropped). Called when the provider process ends.
    fn flush_plan_notes(&self) -> Result<(), LedgerError> {
        Ok(())
    }
}

/// Opens a ledger from a location: `redis://[:password@]host:port/db` or `rediss://...` for
/// Redis; `sqlite://path`, `sqlite:///abs/path` or a plain filesystem path for SQLite.
pub fn open(location: &str) -> Result<Box<dyn Ledger>, LedgerError> {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("redis://") || lower.starts_with("rediss://") {
        return Ok(Box::new(RedisLedger::open(location)?));
    }
    if let Some(path) = lower
        .starts_with("sqlite://")
        .then(|| &location["sqlite://".len()..])
    {
        if path.is_empty() {
            return Err(LedgerError::UnsupportedLocation {
                location: location.to_string(),
                reason: "sqlite:// needs a file path".to_string(),
            });
        }
        return Ok(Box::new(SqliteLedger::open(path)?));
    }
    if let Some((scheme, _)) = location.split_once("://") {
        return Err(LedgerError::UnsupportedLocation {
            location: RedactedUrl::new(location).to_string(),
            reason: format!(
                "scheme {scheme}:// is not supported (use redis://, rediss://, sqlite:// or a path)"
            ),
        });
    }
    if location.is_empty() {
        return Err(LedgerError::UnsupportedLocation {
            location: String::new(),
            reason: "empty location".to_string(),
        });
    }
    Ok(Box::new(SqliteLedger::open(location)?))
}
