//! End-to-end tests: the real Terraform CLI drives the provider binary cargo built.
//! See `harness.rs` for how each test is isolated.

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "azure")]
mod azure;
mod bad_input;
mod data_sources;
mod docs;
mod edge;
#[cfg(feature = "kubernetes")]
mod edge_kubernetes;
mod examples;
#[cfg(feature = "gcp")]
mod gcp;
mod harness;
mod metrics;
mod migration;
mod monitoring;
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
mod moto;
mod protocol;
mod release;
mod review;
mod schema;
mod stress;
mod workload;
