//! End-to-end tests: the real Terraform CLI drives the provider binary cargo built.
//! See `harness.rs` for how each test is isolated.

#[cfg(feature = "aws")]
mod aws;
mod data_sources;
mod edge;
mod harness;
#[cfg(feature = "aws")]
mod moto;
mod protocol;
mod review;
mod schema;
mod workload;
