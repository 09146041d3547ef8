//! The one error type of the ledger. Messages are written for a Terraform diagnostic: they name
//! the node, what was asked, what is free and who holds the rest.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::types::{Dimension, HolderId, HolderUsage, NodeId, ReservationId, Resources};

/// How many holders an error message lists before saying "and N more".
const MAX_LISTED_HOLDERS: usize = 8;

/// Everything that can go wrong in a ledger call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The node does not fit the request; nothing was reserved.
    #[error("{0}")]
    InsufficientCapacity(Box<Shortage>),

    /// The holder already has a reservation on this node with different amounts.
    #[error("{0}")]
    HolderConflict(Box<HolderConflict>),

    /// The node has no capacity registered in the ledger.
    #[error("node {node} is not registered in the capacity ledger (no hybrid_edge_node set its capacity)")]
    UnknownNode {
        /// The node.
        node: NodeId,
    },

    /// No such reservation (released, never existed, or expired long ago and purged).
    #[error(
        "reservation {id} does not exist: it was released, or its pending lease expired and was purged"
    )]
    ReservationNotFound {
        /// The id asked for.
        id: ReservationId,
    },

    /// `commit` came after the pending lease ran out; the capacity may have been taken since.
    #[error(
        "reservation {id} of {holder} on node {node} expired {ago} before it was committed; \
         reserve again (it fails if someone took the capacity meanwhile)",
        ago = ago(*expired_at)
    )]
    LeaseExpired {
        /// The reservation.
        id: ReservationId,
        /// Its node.
        node: NodeId,
        /// Its holder.
        holder: HolderId,
        /// When the lease ran out.
        expired_at: SystemTime,
    },

    /// `set_capacity` would put the node below what is reserved; nothing was changed.
    #[error("{0}")]
    CapacityBelowReserved(Box<CapacityBelowReserved>),

    /// `remove_node` on a node that still has active reservations; nothing was changed.
    #[error(
        "node {node} still has active reservations ({}); destroy those workloads first",
        name_holders(holders)
    )]
    NodeInUse {
        /// The node.
        node: NodeId,
        /// Who holds it.
        holders: Vec<HolderUsage>,
    },

    /// An identifier failed validation.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidId {
        /// Which kind of id.
        kind: &'static str,
        /// The value (truncated).
        value: String,
        /// Why.
        reason: &'static str,
    },

    /// A resource amount is out of range.
    #[error("{field} = {value} is out of range (at most 2^48)")]
    InvalidAmount {
        /// Field name.
        field: &'static str,
        /// Value given.
        value: u64,
    },

    /// A lease of zero or more than 7 days.
    #[error("lease {lease:?} is out of range (1 ms ..= 7 days)")]
    InvalidLease {
        /// The lease given.
        lease: Duration,
    },

    /// `open` did not recognise the location.
    #[error("unsupported ledger location {location}: {reason}")]
    UnsupportedLocation {
        /// The location, password redacted.
        location: String,
        /// Why.
        reason: String,
    },

    /// SQLite failed.
    #[error("sqlite ledger {path}: {context}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What we were doing.
        context: &'static str,
        /// The driver error.
        #[source]
        source: rusqlite::Error,
    },

    /// Redis failed.
    #[error("redis ledger {url}: {context}: {source}")]
    Redis {
        /// The server URL, password redacted.
        url: String,
        /// What we were doing.
        context: &'static str,
        /// The driver error.
        #[source]
        source: redis::RedisError,
    },

    /// Filesystem error (creating the SQLite file).
    #[error("ledger file {path}: {context}: {source}")]
    Io {
        /// The path.
        path: String,
        /// What we were doing.
        context: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },

    /// The store holds data this code does not understand.
    #[error("ledger store holds unexpected data: {detail}")]
    Corrupt {
        /// What was wrong.
        detail: String,
    },
}

/// Details of [`LedgerError::InsufficientCapacity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    /// The node.
    pub node: NodeId,
    /// What was asked.
    pub requested: Resources,
    /// What is free right now.
    pub free: Resources,
    /// The node's capacity.
    pub capacity: Resources,
    /// The dimensions that ran short.
    pub short: Vec<Dimension>,
    /// Who holds the node, largest first.
    pub holders: Vec<HolderUsage>,
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = list_holders(&self.holders, &self.short);
        let held = if held == "nobody" {
            format!(
                "nobody (its capacity is {})",
                self.capacity.describe(&self.short)
            )
        } else {
            held
        };
        write!(
            f,
            "node {} has {} free, {} requested; held by {held}",
            self.node,
            self.free.describe(&self.short),
            self.requested.describe(&self.short),
        )
    }
}

/// Details of [`LedgerError::HolderConflict`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "holder {holder} already has reservation {existing_id} on node {node} for {existing}, \
     but {requested} was requested; release it first (or destroy the old placement) to change amounts"
)]
pub struct HolderConflict {
    /// The node.
    pub node: NodeId,
    /// The holder.
    pub holder: HolderId,
    /// The reservation it already has.
    pub existing_id: ReservationId,
    /// What that reservation holds.
    pub existing: Resources,
    /// What was asked now.
    pub requested: Resources,
}

/// Details of [`LedgerError::CapacityBelowReserved`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityBelowReserved {
    /// The node.
    pub node: NodeId,
    /// The capacity asked for.
    pub requested_capacity: Resources,
    /// What is reserved on it now.
    pub reserved: Resources,
    /// Who holds it, largest first.
    pub holders: Vec<HolderUsage>,
}

impl fmt::Display for CapacityBelowReserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims = self.reserved.exceeding(&self.requested_capacity);
        write!(
            f,
            "cannot lower capacity of node {} to {}: {} is reserved; held by {}",
            self.node,
            self.requested_capacity.describe(&dims),
            self.reserved.describe(&dims),
            list_holders(&self.holders, &dims)
        )
    }
}

fn name_holders(holders: &[HolderUsage]) -> String {
    let mut parts: Vec<String> = holders
        .iter()
        .take(MAX_LISTED_HOLDERS)
        .map(|h| format!("{} ({}, {})", h.holder, h.amounts, h.state.as_str()))
        .collect();
    if holders.len() > MAX_LISTED_HOLDERS {
        parts.push(format!("and {} more", holders.len() - MAX_LISTED_HOLDERS));
    }
    parts.join(", ")
}

fn list_holders(holders: &[HolderUsage], dims: &[Dimension]) -> String {
    // Only holders that hold something in the dimensions being talked about.
    let holders: Vec<&HolderUsage> = holders
        .iter()
        .filter(|h| dims.iter().any(|&d| h.amounts.get(d) > 0))
        .collect();
    if holders.is_empty() {
        return "nobody".to_string();
    }
    let mut parts: Vec<String> = holders
        .iter()
        .take(MAX_LISTED_HOLDERS)
        .map(|h| {
            format!(
                "{} ({}, {})",
                h.holder,
                h.amounts.describe(dims),
                h.state.as_str()
            )
        })
        .collect();
    if holders.len() > MAX_LISTED_HOLDERS {
        parts.push(format!("and {} more", holders.len() - MAX_LISTED_HOLDERS));
    }
    parts.join(", ")
}

fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{}s ago", d.as_secs()),
        Err(_) => "just now".to_string(),
    }
}
