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
mod examples;
mod harness;
mod metrics;
mod migration;
mod monitoring;
#[cfg(any(feature = "aws", feature = "azure"))]
mod moto;
mod protocol;
mod release;
mod review;
mod schema;
mod stress;
mod workload;
