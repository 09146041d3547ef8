//! The one error type of the ledger. Messages are written for a Terraform diagnostic: they name
//! the node, what was asked, what is free and who holds the rest.

use std::time::{Duration, SystemTime};

use crate::types::{Dimension, HolderId, HolderUsage, NodeId, ReservationId, Resources};

/// How many holders an error message lists before saying "and N more".
const MAX_LISTED_HOLDERS: usize = 8;

/// Everything that can go wrong in a ledger call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The node does not fit the request; nothing was reserved.
    #[error("{}", insufficient_message(node, requested, free, capacity, short, holders))]
    InsufficientCapacity {
        /// The node.
        node: NodeId,
        /// What was asked.
        requested: Resources,
        /// What is free right now.
        free: Resources,
        /// The node's capacity.
        capacity: Resources,
        /// The dimensions that ran short.
        short: Vec<Dimension>,
        /// Who holds the node, largest first.
        holders: Vec<HolderUsage>,
    },

    /// The holder already has a reservation on this node with different amounts.
    #[error(
        "holder {holder} already has reservation {existing_id} on node {node} for {existing}, \
         but {requested} was requested; release it first (or destroy the old placement) to change amounts"
    )]
    HolderConflict {
        /// The node.
        node: NodeId,
        /// The holder.
        holder: HolderId,
        /// The reservation it already has.
        existing_id: ReservationId,
        /// What that reservation holds.
        existing: Resources,
        /// What was asked now.
        requested: Resources,
    },

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
    #[error("{}", below_message(node, requested_capacity, reserved, holders))]
    CapacityBelowReserved {
        /// The node.
        node: NodeId,
        /// The capacity asked for.
        requested_capacity: Resources,
        /// What is reserved on it now.
        reserved: Resources,
        /// Who holds it, largest first.
        holders: Vec<HolderUsage>,
    },

    /// `remove_node` on a node that still has active reservations; nothing was changed.
    #[error(
        "node {node} still has active reservations ({}); destroy those workloads first",
        list_holders(holders, &Dimension::ALL)
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

fn insufficient_message(
    node: &NodeId,
    requested: &Resources,
    free: &Resources,
    capacity: &Resources,
    short: &[Dimension],
    holders: &[HolderUsage],
) -> String {
    let held = list_holders(holders, short);
    let held = if held == "nobody" {
        format!("nobody (its capacity is {})", capacity.describe(short))
    } else {
        held
    };
    format!(
        "node {node} has {} free, {} requested; held by {held}",
        free.describe(short),
        requested.describe(short),
    )
}

fn below_message(
    node: &NodeId,
    requested: &Resources,
    reserved: &Resources,
    holders: &[HolderUsage],
) -> String {
    let dims = reserved.exceeding(requested);
    format!(
        "cannot lower capacity of node {node} to {}: {} is reserved; held by {}",
        requested.describe(&dims),
        reserved.describe(&dims),
        list_holders(holders, &dims)
    )
}

fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{}s ago", d.as_secs()),
        Err(_) => "just now".to_string(),
    }
}
