//! What the provider measures and decides, as Prometheus metrics, and the push that hands them
//! to a Pushgateway.
//!
//! A provider process lives for one terraform command, far too short for Prometheus to scrape,
//! so the process keeps its metrics in a private registry ([`Metrics`]) and, when a Pushgateway
//! is configured, sends them once before it exits ([`PushTarget::push`]), grouped by workspace.
//!
//! This crate knows the metric names of the product guide and the Pushgateway's HTTP API; it
//! knows nothing of Terraform, clouds or placement: callers record what happened in their own
//! words (`driver_operation`, `placement`, `edge_node_usage`, ...). It never makes an apply
//! wait long or fail: every network call has a bounded timeout and returns an error to log.

mod error;
mod metrics;
mod push;

pub use error::TelemetryError;
pub use metrics::{Metrics, WorkloadCost, METRIC_NAMES, NOT_EMITTED};
pub use push::{GroupingKey, PushTarget};
