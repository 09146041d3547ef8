//! Capacity ledger (being written).
